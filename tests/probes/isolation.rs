//! Isolation as a user meets it, through the built binary: a probe of one
//! environment never reaches another's hosts, however the address is
//! written, whatever a name resolves to, wherever a redirect points, and
//! whichever kind dials; the configuration rule reads every form of address;
//! a probe whose secret is not set never runs; probe parameters are filled in
//! like configuration values. Loopback addresses stand in for environments:
//! all of 127.0.0.0/8 reaches this machine, so a server on 127.0.0.2 is
//! "prod" when prod's hosts are `127.0.0.2/32`, and `localhost` is a name
//! that resolves into `127.0.0.1/32`.

use super::envs::{named, project, run_staging};
use super::*;
use wiremock::matchers::header;

fn assert_refused(r: &serde_json::Value, needle: &str) {
    assert_eq!(
        (r["category"].as_str(), r["status"].as_str()),
        (Some("isolation"), Some("fail")),
        "{r:#}"
    );
    let m = r["message"].as_str().unwrap();
    assert!(m.starts_with("isolation: "), "{m}");
    assert!(m.contains(needle), "{m:?} does not contain {needle:?}");
}

/// A wiremock server on one loopback address.
async fn server_on(ip: &str) -> MockServer {
    MockServer::builder()
        .listener(std::net::TcpListener::bind((ip, 0)).unwrap())
        .start()
        .await
}

/// A listening port nobody may connect to: any connection, even one closed
/// at once, waits in its accept queue, so "nothing to accept" proves that
/// nothing connected.
struct Untouched(std::net::TcpListener);

impl Untouched {
    fn on(ip: &str) -> Untouched {
        let l = std::net::TcpListener::bind((ip, 0)).unwrap();
        l.set_nonblocking(true).unwrap();
        Untouched(l)
    }

    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }

    fn assert_untouched(&self) {
        match self.0.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok((_, peer)) => panic!("{peer} connected to {}", self.0.local_addr().unwrap()),
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn staging_never_connects_to_a_name_that_resolves_into_prod() {
    let server = server_on("127.0.0.1").await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let staging = format!("[api]\nurl = \"http://localhost:{}/health\"\n", server.address().port());
    let checks = "[[probe]]\nname = \"api\"\nkind = \"http\"\ntarget = \"${api.url}\"\n";
    let dir = project("[isolation.prod]\nhosts = [\"127.0.0.1/32\"]\n", &staging, checks);
    let (code, results, _) = run_staging(dir.path(), "check");
    assert_eq!(code, Some(1));
    let r = named(&results, "api");
    assert_refused(
        r,
        "refused to probe `localhost` from `staging`: it resolves to 127.0.0.1, an address of environment `prod` (127.0.0.1/32)",
    );
    assert_eq!(r["key"], "api.url");
    assert_eq!(r["location"]["file"], "environments/staging.toml");
    assert!(server.received_requests().await.unwrap().is_empty(), "prod was reached");

    // The same probe, with prod elsewhere, reaches the server: the refusal
    // above was isolation's, not a failure to connect.
    let dir = project("[isolation.prod]\nhosts = [\"127.0.0.2/32\"]\n", &staging, checks);
    let (code, results, all) = run_staging(dir.path(), "check");
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(named(&results, "api")["status"], "pass");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_http_redirect_into_prod_is_never_followed() {
    let prod_by_ip = server_on("127.0.0.2").await;
    let prod_by_name = server_on("127.0.0.1").await;
    for s in [&prod_by_ip, &prod_by_name] {
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200))
            .mount(s)
            .await;
    }
    let staging = server_on("127.0.0.3").await;
    let (ip_port, name_port) = (prod_by_ip.address().port(), prod_by_name.address().port());
    for (from, to) in [
        ("/to-ip", format!("http://127.0.0.2:{ip_port}/orders")),
        ("/to-spelled-ip", format!("http://0x7f.0.0.2:{ip_port}/orders")),
        ("/to-name", format!("http://localhost:{name_port}/orders")),
        ("/to-own", format!("{}/ok", staging.uri())),
    ] {
        Mock::given(path(from))
            .respond_with(ResponseTemplate::new(302).insert_header("location", to.as_str()))
            .mount(&staging)
            .await;
    }
    Mock::given(path("/ok"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&staging)
        .await;
    let checks: String = ["to-ip", "to-spelled-ip", "to-name", "to-own"]
        .iter()
        .map(|p| {
            format!(
                "[[probe]]\nname = \"{p}\"\nkind = \"http\"\ntarget = \"{}/{p}\"\n\n",
                staging.uri()
            )
        })
        .collect();
    let dir = project(
        "[isolation.prod]\nhosts = [\"127.0.0.1/32\", \"127.0.0.2/32\"]\n",
        "",
        &checks,
    );
    let (code, results, _) = run_staging(dir.path(), "check");
    assert_eq!(code, Some(1));
    assert_refused(
        named(&results, "to-ip"),
        "refused to probe `127.0.0.2` from `staging`: it belongs to environment `prod` (127.0.0.2/32)",
    );
    assert_refused(named(&results, "to-spelled-ip"), "`127.0.0.2`");
    assert_refused(
        named(&results, "to-name"),
        "`localhost` from `staging`: it resolves to 127.0.0.1, an address of environment `prod`",
    );
    assert_eq!(
        named(&results, "to-own")["status"],
        "pass",
        "an own redirect is followed"
    );
    assert!(prod_by_ip.received_requests().await.unwrap().is_empty());
    assert!(prod_by_name.received_requests().await.unwrap().is_empty());
}

#[test]
fn a_prod_address_in_any_spelling_is_refused_before_connecting() {
    let prod = Untouched::on("127.0.0.2");
    let p = prod.port();
    let targets = [
        ("http", format!("http://2130706434:{p}/")),
        ("http", format!("http://127.2:{p}/")),
        ("http", format!("http://0x7f.0.0.2:{p}/")),
        ("http", format!("http://%31%32%37.0.0.2:{p}/")),
        ("http", format!("http://[::ffff:127.0.0.2]:{p}/")),
        ("http", format!("http://127.0.0.2\\\\@127.0.0.1:{p}/")),
        ("tcp", format!("127.2:{p}")),
        ("tls", format!("0x7f000002:{p}")),
        ("redis", format!("redis://[::ffff:7f00:2]:{p}/0")),
        ("postgres", format!("postgres:///orders?host=127.0.0.2&port={p}")),
        ("postgres", format!("host=127.0.0.1,127.0.0.2 port={p} dbname=orders")),
        ("s3", format!("s3://orders?endpoint=http://0177.0.0.2:{p}")),
    ];
    let checks: String = targets
        .iter()
        .enumerate()
        .map(|(i, (kind, t))| format!("[[probe]]\nname = \"p{i}\"\nkind = \"{kind}\"\ntarget = \"{t}\"\n\n"))
        .collect();
    let dir = project("[isolation.prod]\nhosts = [\"127.0.0.2/32\"]\n", "", &checks);
    let (code, results, _) = run_staging(dir.path(), "check");
    assert_eq!(code, Some(1));
    for (i, (_, t)) in targets.iter().enumerate() {
        let r = named(&results, &format!("p{i}"));
        assert_refused(
            r,
            "refused to probe `127.0.0.2` from `staging`: it belongs to environment `prod`",
        );
        assert_eq!(r["attempts"], serde_json::Value::Null, "{t} ran");
    }
    prod.assert_untouched();
}

#[test]
fn every_kind_checks_what_a_name_resolves_to_before_dialing() {
    let prod = Untouched::on("127.0.0.1");
    let p = prod.port();
    let targets = [
        ("http", format!("http://localhost:{p}/health")),
        ("tcp", format!("localhost:{p}")),
        ("tls", format!("localhost:{p}")),
        ("postgres", format!("postgres://app@localhost:{p}/orders")),
        ("mysql", format!("mysql://root@localhost:{p}/orders")),
        ("redis", format!("redis://localhost:{p}/0")),
        ("amqp", format!("amqp://localhost:{p}/")),
        ("nats", format!("nats://localhost:{p}")),
        ("kafka", format!("kafka://localhost:{p}")),
        ("mqtt", format!("mqtt://localhost:{p}")),
        ("s3", format!("http://localhost:{p}/orders")),
        ("gcs", format!("gs://orders?endpoint=http://localhost:{p}")),
        ("azblob", format!("http://localhost:{p}/devstoreaccount1/orders")),
    ];
    // Every kind that connects to what its target names is here: a new
    // one must be added.
    let mut covered: Vec<&str> = targets.iter().map(|(k, _)| *k).collect();
    covered.extend(["dns", "disk", "file", "exec"]);
    for k in probes::KINDS {
        assert!(covered.contains(&k.name), "add the `{}` kind to this test", k.name);
    }
    let checks: String = targets
        .iter()
        .map(|(kind, t)| format!("[[probe]]\nname = \"{kind}\"\nkind = \"{kind}\"\ntarget = \"{t}\"\n\n"))
        .collect();
    let dir = project("[isolation.prod]\nhosts = [\"127.0.0.1/32\"]\n", "", &checks);
    let (code, results, _) = run_staging(dir.path(), "check");
    assert_eq!(code, Some(1));
    for (kind, _) in &targets {
        assert_refused(
            named(&results, kind),
            "refused to probe `localhost` from `staging`: it resolves to 127.0.0.1, an address of environment `prod`",
        );
    }
    prod.assert_untouched();
}

#[test]
fn validate_fails_wherever_staging_writes_a_prod_address() {
    let staging = r#"[db]
dsn = "host=db.prod.example.com port=5432 dbname=orders"
jdbc = "jdbc:postgresql://db.stg.example.com,db.prod.example.com/orders"
go = "app:pw@tcp(db.prod.example.com:3306)/orders"
local = "postgres:///orders?host=10.20.1.5"
[kafka]
brokers = "k1.stg.example.com:9092,k2.prod.example.com:9092"
[api]
numeric = "http://169083141:8000/"
octal = "http://012.024.1.5/"
mapped = "http://[::ffff:10.20.1.5]/"
backslash = "http://10.20.1.5\\@api.stg.example.com/"
[storage]
url = "s3://orders?endpoint=http://10.20.1.5:9000"
[cache]
host = "cache-prod"
[backup]
command = "pg_dump -h db.prod.example.com orders"
[service]
version = "1.2.3"
log_level = "info"
timeout = "30s"
description = "Orders API, see docs.example.com e.g. for help"
own = "https://api.stg.example.com/v1"
"#;
    let dir = project(
        "[isolation.prod]\nhosts = [\"*.prod.example.com\", \"10.20.0.0/16\", \"cache-prod\"]\n\
         [isolation.staging]\nhosts = [\"*.stg.example.com\"]\ndeny_unknown_hosts = true\n",
        staging,
        "",
    );
    let (code, results, _) = run_staging(dir.path(), "validate");
    assert_eq!(code, Some(1));
    let crossing: Vec<&str> = results
        .iter()
        .filter(|r| r["category"] == "isolation")
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        crossing,
        [
            "db.dsn",
            "db.jdbc",
            "db.go",
            "db.local",
            "kafka.brokers",
            "api.numeric",
            "api.octal",
            "api.mapped",
            "api.backslash",
            "storage.url",
            "cache.host",
            "backup.command"
        ],
        "{results:#?}"
    );
    let r = results.iter().find(|r| r["id"] == "isolation/api.numeric").unwrap();
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("names 10.20.1.5, a host of `prod` (10.20.0.0/16)"),
        "{r:#}"
    );
}

#[test]
fn a_probe_whose_secret_is_not_set_is_blocked_and_never_connects() {
    let service = Untouched::on("127.0.0.1");
    let p = service.port();
    let staging = format!(
        "[db]\nurl = \"postgres://app:${{secret:env:DB_PASSWORD}}@127.0.0.1:{p}/orders\"\n\
         [api]\nurl = \"http://127.0.0.1:{p}/\"\n"
    );
    let checks = "[[probe]]\nname = \"db\"\nkind = \"postgres\"\ntarget = \"${db.url}\"\n\n\
                  [[probe]]\nname = \"api\"\nkind = \"http\"\ntarget = \"${api.url}\"\n\
                  headers = { authorization = \"Bearer ${secret:env:API_TOKEN}\" }\n\n\
                  [[probe]]\nname = \"orders\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:{p}\"\ndepends_on = [\"db\"]\n";
    let dir = project("", &staging, &checks.replace("{p}", &p.to_string()));
    let (code, results, all) = run_staging(dir.path(), "check");
    assert_eq!(code, Some(1), "{all}");
    let db = named(&results, "db");
    assert_eq!(db["status"], "blocked", "{db:#}");
    assert_eq!(
        db["message"],
        "blocked: a secret is missing: environment variable DB_PASSWORD is not set \
         (`db.url`, environments/staging.toml:2:7 reads it); the probe did not run"
    );
    let api = named(&results, "api");
    assert_eq!(api["status"], "blocked", "{api:#}");
    assert_eq!(
        api["message"],
        "blocked: a secret is missing: environment variable API_TOKEN is not set \
         (`headers` of this probe, checks/probes.toml:10:11 reads it); the probe did not run"
    );
    let orders = named(&results, "orders");
    assert_eq!(orders["status"], "blocked");
    assert!(
        orders["message"].as_str().unwrap().contains("depends on `db`"),
        "{orders:#}"
    );
    assert!(!all.contains("${secret:"), "a secret's reference was printed:\n{all}");
    service.assert_untouched();
}

#[tokio::test]
async fn probe_parameters_are_filled_in_like_configuration_values() {
    let server = MockServer::start().await;
    Mock::given(path("/health"))
        .and(header("x-token", "t0k3n"))
        .and(header("x-literal", "${not.a.reference}"))
        .and(header("x-file", "from a file"))
        .and(header("x-env", "eu-west-1"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let staging = format!(
        "[api]\nurl = \"{}\"\npath = \"/health\"\ntoken = \"t0k3n\"\nok = 204\n",
        server.uri()
    );
    let checks = "[[probe]]\nname = \"api\"\nkind = \"http\"\ntarget = \"${api.url}\"\npath = \"${api.path}\"\n\
                  status = [\"${api.ok}\"]\n\
                  headers = { x-token = \"${api.token}\", x-literal = \"$${not.a.reference}\", \
                  x-file = \"${file:token.txt}\", x-env = \"${env:REGION:-eu-west-1}\" }\n";
    let dir = project("", &staging, checks);
    std::fs::write(dir.path().join("token.txt"), "from a file\n").unwrap();
    let (code, results, all) = run_staging(dir.path(), "check");
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(named(&results, "api")["status"], "pass", "{results:#?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
