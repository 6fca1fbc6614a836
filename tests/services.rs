//! Service probes against real servers (scripts/setup/services.sh installs
//! and starts them): PostgreSQL, MariaDB, Redis, RabbitMQ, NATS with
//! JetStream and Mosquitto on their usual loopback ports. Every test makes
//! its own database, role, ACL user, vhost, stream or bucket and removes it.
//! Failure modes the shared servers cannot show (PostgreSQL trusts local
//! logins, NATS and Mosquitto accept anonymous clients) use throwaway
//! instances of the same installed servers on free ports, stopped on drop.
//! services/tls.rs runs PostgreSQL, Redis, Mosquitto and NATS over TLS
//! with certificates made in the test; services/check_s3.rs runs `envgate
//! check` with S3 credentials from the configuration against moto;
//! services/isolation.rs probes every host of a multi-host DSN, refuses a
//! name that resolves into another environment, and fills probe parameters
//! in from the configuration.
//! services/queries.rs proves a `query` never writes.
//! services/storage.rs probes S3 (web identity, shared profiles), Azure
//! Blob Storage (Azurite) and GCS (fake-gcs-server) through their
//! credential chains; services/storage_load.rs runs `[probe.load]` on them.
//! services/kafka.rs runs each Kafka test against its own tansu broker;
//! services/amqp_tls.rs a RabbitMQ node that requires client certificates.
//! No test sleeps to wait for something; every wait polls with a bound.

#[path = "services/support.rs"]
mod support;

#[path = "services/tls.rs"]
mod tls;

#[path = "services/check_s3.rs"]
mod check_s3;

#[path = "services/storage.rs"]
mod storage;

#[path = "services/storage_load.rs"]
mod storage_load;

#[path = "services/client_certs.rs"]
mod client_certs;

#[path = "common/envs.rs"]
mod envs;
#[path = "services/isolation.rs"]
mod isolation;
#[path = "services/queries.rs"]
mod queries;

#[path = "services/nats_auth.rs"]
mod nats_auth;

#[path = "services/kafka.rs"]
mod kafka;

#[path = "services/amqp_tls.rs"]
mod amqp_tls;

#[path = "services/redis_topologies.rs"]
mod redis_topologies;

use std::time::{Duration, Instant};

use assert_cmd::Command;
use envgate::outcome::Status;
use support::*;

#[tokio::test]
async fn postgres_passes_with_tables_and_query_and_finds_missing_ones() {
    let db = unique("pg");
    psql(&format!("CREATE ROLE {db} LOGIN PASSWORD 'pw_{db}'"));
    psql(&format!("CREATE DATABASE {db} OWNER {db}"));
    let _drop = Cleanup(Box::new({
        let db = db.clone();
        move || {
            psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
            psql(&format!("DROP ROLE IF EXISTS {db}"));
        }
    }));
    psql_db(
        &db,
        &format!(
            "CREATE TABLE orders (id int); CREATE TABLE schema_version (v int); INSERT INTO schema_version VALUES (42); ALTER TABLE orders OWNER TO {db}; ALTER TABLE schema_version OWNER TO {db}"
        ),
    );
    let url = format!("postgres://{db}:pw_{db}@127.0.0.1:5432/{db}");
    let f = probe("postgres", &url, |d| {
        d.set(
            "tables",
            vec!["orders".to_string(), "public.schema_version".to_string()],
        );
        d.set("query", "SELECT max(v) FROM schema_version".to_string());
        d.set("expect", serde_json::json!(42));
    })
    .await;
    assert_status(&f, Status::Pass, "SELECT 1");
    let f = probe("postgres", &url, |d| d.set("tables", vec!["invoices".to_string()])).await;
    assert_status(&f, Status::Fail, "not_found: PostgreSQL");
    assert!(f.message.contains("table `invoices` does not exist"), "{}", f.message);
    let f = probe("postgres", &url, |d| {
        d.set("query", "SELECT max(v) FROM schema_version".to_string());
        d.set("expect", serde_json::json!("43"));
    })
    .await;
    assert_status(&f, Status::Fail, "expected `query` to return \"43\", got \"42\"");
    let missing = format!("postgres://{db}:pw_{db}@127.0.0.1:5432/{db}_missing");
    let f = probe("postgres", &missing, |_| {}).await;
    assert_status(&f, Status::Fail, "not_found: PostgreSQL");
    assert!(
        f.message.contains("does not exist") && !f.message.contains(&format!("pw_{db}")),
        "{}",
        f.message
    );
}

#[tokio::test]
async fn postgres_fails_auth_on_a_wrong_password_against_a_password_only_server() {
    let pg = Postgres::start();
    let ok = format!("postgres://postgres:{}@127.0.0.1:{}/postgres", pg.password, pg.port);
    wait_until_passes("postgres", &ok).await;
    let f = probe(
        "postgres",
        &format!("postgres://postgres:wrong-Pa55@127.0.0.1:{}/postgres", pg.port),
        |_| {},
    )
    .await;
    assert_status(&f, Status::Fail, "auth: PostgreSQL postgres://postgres:***@127.0.0.1");
    assert!(
        f.message.contains("password authentication failed") && !f.message.contains("wrong-Pa55"),
        "{}",
        f.message
    );
}

#[tokio::test]
async fn mysql_passes_and_fails_auth_and_not_found() {
    let db = unique("my");
    mariadb(&format!(
        "CREATE DATABASE {db}; CREATE USER '{db}'@'%' IDENTIFIED BY 'pw_{db}'; CREATE USER '{db}'@'localhost' IDENTIFIED BY 'pw_{db}'; \
         GRANT ALL ON `{db}%`.* TO '{db}'@'%'; GRANT ALL ON `{db}%`.* TO '{db}'@'localhost'; CREATE TABLE {db}.orders (id int); \
         CREATE TABLE {db}.schema_version (v int); INSERT INTO {db}.schema_version VALUES (7)"
    ));
    let _drop = Cleanup(Box::new({
        let db = db.clone();
        move || {
            mariadb(&format!(
                "DROP DATABASE IF EXISTS {db}; DROP USER IF EXISTS '{db}'@'%'; DROP USER IF EXISTS '{db}'@'localhost'"
            ))
        }
    }));
    let url = format!("mysql://{db}:pw_{db}@127.0.0.1:3306/{db}");
    let f = probe("mysql", &url, |d| {
        d.set("tables", vec!["orders".to_string()]);
        d.set("query", "SELECT v FROM schema_version".to_string());
        d.set("expect", serde_json::json!(7));
    })
    .await;
    assert_status(&f, Status::Pass, "SELECT 1");
    let f = probe("mysql", &url, |d| d.set("tables", vec!["invoices".to_string()])).await;
    assert_status(&f, Status::Fail, "not_found: MySQL");
    let f = probe("mysql", &format!("mysql://{db}:wrong-Pa55@127.0.0.1:3306/{db}"), |_| {}).await;
    assert_status(&f, Status::Fail, "auth: MySQL mysql://");
    assert!(
        f.message.contains("Access denied") && !f.message.contains("wrong-Pa55"),
        "{}",
        f.message
    );
    let f = probe(
        "mysql",
        &format!("mysql://{db}:pw_{db}@127.0.0.1:3306/{db}_missing"),
        |_| {},
    )
    .await;
    assert_status(&f, Status::Fail, "not_found: MySQL");
}

#[tokio::test]
async fn redis_checks_acl_users_databases_and_keys() {
    let user = unique("rd");
    redis_cli(&[
        "ACL",
        "SETUSER",
        &user,
        "on",
        &format!(">pw_{user}"),
        &format!("~{user}:*"),
        "+@connection",
        "+exists",
        "+select",
        "+set",
        "+del",
    ]);
    redis_cli(&["-n", "3", "SET", &format!("{user}:ready"), "1"]);
    let _drop = Cleanup(Box::new({
        let user = user.clone();
        move || {
            redis_cli(&["-n", "3", "DEL", &format!("{user}:ready")]);
            redis_cli(&["ACL", "DELUSER", &user]);
        }
    }));
    let url = format!("redis://{user}:pw_{user}@127.0.0.1:6379/3");
    assert_status(
        &probe("redis", &url, |d| d.set("keys", vec![format!("{user}:ready")])).await,
        Status::Pass,
        "PONG",
    );
    let f = probe("redis", &url, |d| d.set("keys", vec![format!("{user}:missing")])).await;
    assert_status(&f, Status::Fail, "not_found: Redis");
    let f = probe("redis", &format!("redis://{user}:wrong-Pa55@127.0.0.1:6379/3"), |_| {}).await;
    assert_status(&f, Status::Fail, "auth: Redis redis://");
    assert!(!f.message.contains("wrong-Pa55"), "{}", f.message);
    let f = probe(
        "redis",
        &format!("redis://{user}:pw_{user}@127.0.0.1:6379/9999"),
        |_| {},
    )
    .await;
    assert_status(&f, Status::Fail, "not_found: Redis");
    let f = probe("redis", &url, |d| d.set("keys", vec!["outside:prefix".to_string()])).await;
    assert_status(&f, Status::Fail, "permission: Redis");
}

#[tokio::test]
async fn amqp_checks_vhosts_queues_exchanges_and_credentials() {
    let vhost = unique("mq");
    rabbitmqctl(&["add_vhost", &vhost]);
    let _drop = Cleanup(Box::new({
        let vhost = vhost.clone();
        move || {
            rabbitmqctl(&["delete_vhost", &vhost]);
            rabbitmqctl(&["delete_user", &vhost]);
        }
    }));
    rabbitmqctl(&["add_user", &vhost, &format!("pw_{vhost}")]);
    rabbitmqctl(&["set_permissions", "-p", &vhost, &vhost, ".*", ".*", ".*"]);
    python(&format!(
        "import pika\nc = pika.BlockingConnection(pika.URLParameters('amqp://{vhost}:pw_{vhost}@127.0.0.1:5672/{vhost}'))\n\
         ch = c.channel(); ch.queue_declare('orders'); ch.exchange_declare('events', 'topic'); c.close()"
    ));
    let url = format!("amqp://{vhost}:pw_{vhost}@127.0.0.1:5672/{vhost}");
    let f = probe("amqp", &url, |d| {
        d.set("queues", vec!["orders".to_string()]);
        d.set("exchanges", vec!["events".to_string()]);
    })
    .await;
    assert_status(&f, Status::Pass, "queue `orders` (0 messages, 0 consumers)");
    let f = probe("amqp", &url, |d| d.set("queues", vec!["invoices".to_string()])).await;
    assert_status(&f, Status::Fail, "not_found: AMQP");
    assert!(f.message.contains("queue `invoices`"), "{}", f.message);
    let f = probe("amqp", &url, |d| d.set("exchanges", vec!["nope".to_string()])).await;
    assert_status(&f, Status::Fail, "not_found: AMQP");
    let f = probe(
        "amqp",
        &format!("amqp://{vhost}:pw_{vhost}@127.0.0.1:5672/{vhost}_missing"),
        |_| {},
    )
    .await;
    assert_status(&f, Status::Fail, "not_found: AMQP");
    let f = probe(
        "amqp",
        &format!("amqp://{vhost}:wrong-Pa55@127.0.0.1:5672/{vhost}"),
        |_| {},
    )
    .await;
    assert_status(&f, Status::Fail, "auth: AMQP amqp://");
    assert!(!f.message.contains("wrong-Pa55"), "{}", f.message);
    // Passive declares never create anything.
    let out = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "-p", &vhost, "name"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("invoices"));
}

#[tokio::test]
async fn nats_checks_jetstream_streams_and_credentials() {
    let stream = unique("ST").to_uppercase();
    let create = format!(r#"{{"name":"{stream}","subjects":["{stream}.>"],"storage":"memory"}}"#);
    let reply = nats_request(4222, &format!("$JS.API.STREAM.CREATE.{stream}"), &create);
    assert!(reply.contains("\"config\""), "stream created: {reply}");
    let _drop = Cleanup(Box::new({
        let stream = stream.clone();
        move || {
            nats_request(4222, &format!("$JS.API.STREAM.DELETE.{stream}"), "");
        }
    }));
    let f = probe("nats", "nats://127.0.0.1:4222", |d| {
        d.set("streams", vec![stream.clone()])
    })
    .await;
    assert_status(&f, Status::Pass, "JetStream enabled, 1 stream(s) exist");
    let f = probe("nats", "nats://127.0.0.1:4222", |d| {
        d.set("streams", vec![format!("{stream}_MISSING")])
    })
    .await;
    assert_status(&f, Status::Fail, "not_found: NATS");
    assert!(f.message.contains("stream not found"), "{}", f.message);
    assert!(
        f.message.contains(&format!("(did you mean `{stream}`?)")),
        "{}",
        f.message
    );
    assert_eq!(f.about, Some(("streams".into(), format!("{stream}_MISSING"))));

    let server = Server::nats();
    let ok = format!("nats://app:{}@127.0.0.1:{}", server.secret, server.port);
    wait_until_passes("nats", &ok).await;
    let f = probe(
        "nats",
        &format!("nats://app:wrong-Pa55@127.0.0.1:{}", server.port),
        |_| {},
    )
    .await;
    assert_status(&f, Status::Fail, "auth: NATS nats://app:***@");
    let f = probe("nats", &ok, |d| d.set("jetstream", true)).await;
    assert_status(&f, Status::Fail, "not_found: NATS");
}

#[tokio::test]
async fn mqtt_connects_and_fails_auth_on_a_wrong_password() {
    assert_status(
        &probe("mqtt", "mqtt://127.0.0.1:1883", |_| {}).await,
        Status::Pass,
        "CONNACK",
    );
    let server = Server::mosquitto();
    let ok = format!("mqtt://app:{}@127.0.0.1:{}", server.secret, server.port);
    wait_until_passes("mqtt", &ok).await;
    assert_status(
        &probe("mqtt", &ok, |d| d.set("client_id", unique("client"))).await,
        Status::Pass,
        "CONNACK",
    );
    let f = probe(
        "mqtt",
        &format!("mqtt://app:wrong-Pa55@127.0.0.1:{}", server.port),
        |_| {},
    )
    .await;
    assert_status(&f, Status::Fail, "auth: MQTT mqtt://app:***@");
    let f = probe("mqtt", &format!("mqtt://127.0.0.1:{}", server.port), |_| {}).await;
    assert_status(&f, Status::Fail, "auth: MQTT");
}

#[tokio::test]
async fn s3_lists_writes_a_canary_and_classifies_refusals() {
    let moto = Server::moto();
    let bucket = unique("bk").replace('_', "-");
    let keys = moto_setup(moto.port, &bucket);
    let (ak, sk) = (keys[0].as_str(), keys[1].as_str());
    // Secrets hold `/` and `+`: percent-encoded in a URL's user info.
    let sk_url = sk.replace('/', "%2F").replace('+', "%2B");
    let base = format!("http://127.0.0.1:{}", moto.port);
    let url = format!("http://{ak}:{sk_url}@127.0.0.1:{}/{bucket}", moto.port);
    // moto checks signatures against the decoded query, so `/` in a prefix
    // (sent as %2F, as S3 requires) fails there alone: use a dash.
    assert_status(
        &probe("s3", &url, |d| d.set("prefix", "app-".to_string())).await,
        Status::Pass,
        "listable under `app-`",
    );
    let f = probe("s3", &format!("s3://{bucket}/app-"), |d| {
        d.set("endpoint", base.clone());
        d.set("access_key", ak);
        d.set("secret_key", sk);
        d.set("write", true);
        d.set("max_latency", "5s".to_string());
    })
    .await;
    assert_status(&f, Status::Pass, "canary put");
    assert!(f.message.contains("deleted"), "{}", f.message);
    let left = python(&format!(
        "import boto3\ns3 = boto3.client('s3', endpoint_url='{base}', aws_access_key_id='{ak}', aws_secret_access_key='{sk}', region_name='us-east-1')\n\
         print(s3.list_objects_v2(Bucket='{bucket}')['KeyCount'])"
    ));
    assert_eq!(left.trim(), "0", "the canary was cleaned up");
    let f = probe(
        "s3",
        &format!("http://{ak}:{sk_url}@127.0.0.1:{}/{bucket}-missing", moto.port),
        |_| {},
    )
    .await;
    assert_status(&f, Status::Fail, "not_found: S3");
    let f = probe(
        "s3",
        &format!("http://{ak}:wrong-Pa55@127.0.0.1:{}/{bucket}", moto.port),
        |_| {},
    )
    .await;
    assert_status(&f, Status::Fail, "auth: S3 http://");
    assert!(
        !f.message.contains("wrong-Pa55") && !f.message.contains(sk),
        "{}",
        f.message
    );
    let f = probe(
        "s3",
        &format!("http://AKIANOTAKEY:{sk_url}@127.0.0.1:{}/{bucket}", moto.port),
        |_| {},
    )
    .await;
    assert_status(&f, Status::Fail, "auth: S3");
}

/// Every kind's URL against one address, for the refused and timeout cases.
fn every_kind(port: u16) -> Vec<(&'static str, String)> {
    vec![
        (
            "postgres",
            format!("postgres://app:Sup3rS3cret@127.0.0.1:{port}/orders"),
        ),
        ("mysql", format!("mysql://app:Sup3rS3cret@127.0.0.1:{port}/orders")),
        ("redis", format!("redis://app:Sup3rS3cret@127.0.0.1:{port}/0")),
        ("amqp", format!("amqp://app:Sup3rS3cret@127.0.0.1:{port}/orders")),
        ("nats", format!("nats://app:Sup3rS3cret@127.0.0.1:{port}")),
        ("mqtt", format!("mqtt://app:Sup3rS3cret@127.0.0.1:{port}")),
        ("s3", format!("http://app:Sup3rS3cret@127.0.0.1:{port}/orders")),
    ]
}

#[tokio::test]
async fn every_kind_fails_refused_on_a_closed_port_without_waiting_for_its_timeout() {
    let closed = ClosedPort::new();
    for (kind, url) in every_kind(closed.port) {
        let start = Instant::now();
        let f = probe_within(kind, &url, Duration::from_secs(60), |_| {}).await;
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{kind} took {:?}",
            start.elapsed()
        );
        assert_status(&f, Status::Fail, "refused: ");
        assert!(
            f.message.contains(":***@") && !f.message.contains("Sup3rS3cret"),
            "{kind}: {}",
            f.message
        );
    }
}

#[tokio::test]
async fn every_kind_fails_timeout_against_a_silent_listener_at_the_timeout() {
    let addr = silent_listener().await;
    let timeout = Duration::from_millis(300);
    let runs = every_kind(addr.port()).into_iter().map(|(kind, url)| async move {
        let start = Instant::now();
        let f = probe_within(kind, &url, timeout, |_| {}).await;
        (kind, start.elapsed(), f)
    });
    for (kind, took, f) in futures_join(runs).await {
        assert!(
            took >= timeout && took < timeout + Duration::from_millis(250),
            "{kind} took {took:?}"
        );
        assert_status(&f, Status::Fail, "timeout: ");
        assert!(
            f.message.contains("300ms") && !f.message.contains("Sup3rS3cret"),
            "{kind}: {}",
            f.message
        );
    }
}

#[tokio::test]
async fn the_password_never_appears_in_the_binary_output() {
    let db = unique("leak");
    mariadb(&format!(
        "CREATE USER '{db}'@'%' IDENTIFIED BY 'Right-Pa55'; CREATE USER '{db}'@'localhost' IDENTIFIED BY 'Right-Pa55'"
    ));
    let _drop = Cleanup(Box::new({
        let db = db.clone();
        move || {
            mariadb(&format!(
                "DROP USER IF EXISTS '{db}'@'%'; DROP USER IF EXISTS '{db}'@'localhost'"
            ))
        }
    }));
    let refused = ClosedPort::new();
    let closed = refused.port;
    let urls = [
        format!("mysql://{db}:Right-Pa55@127.0.0.1:3306/"),
        format!("mysql://{db}:Wrong-Pa55@127.0.0.1:3306/"),
        "redis://app:Wrong-Pa55@127.0.0.1:6379/0".to_string(),
        "amqp://guest:Wrong-Pa55@127.0.0.1:5672/".to_string(),
        format!("postgres://app:Wrong-Pa55@127.0.0.1:{closed}/x"),
    ];
    for format in ["human", "json"] {
        let out = Command::cargo_bin("envgate")
            .unwrap()
            .env_clear()
            .env("NO_COLOR", "1")
            .args(["probe", "--timeout", "3s", "--format", format])
            .args(&urls)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(
            all.contains("auth: MySQL") && all.contains("refused: PostgreSQL"),
            "{all}"
        );
        assert!(!all.contains("Pa55"), "a password leaked:\n{all}");
    }
}
