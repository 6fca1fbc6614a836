//! Isolation and probe parameters against the real servers: every host of a
//! multi-host PostgreSQL DSN is probed, a MySQL probe of a name that resolves
//! into prod never logs in (and does once prod is elsewhere), and the keys a
//! Redis probe checks are filled in from the configuration.

use envgate::outcome::Status;

use super::envs::{named, project, run_staging};
use super::support::*;

#[tokio::test]
async fn postgres_checks_every_host_of_a_multi_host_dsn() {
    let up = probe(
        "postgres",
        "postgres://postgres@127.0.0.1:5432,localhost:5432/postgres?sslmode=disable",
        |_| {},
    )
    .await;
    assert_status(&up, Status::Pass, "(all 2 hosts: 127.0.0.1:5432, localhost:5432)");
    let closed = ClosedPort::new();
    let port = closed.port;
    let one_down = probe(
        "postgres",
        &format!("host=127.0.0.1,127.0.0.1 port=5432,{port} user=postgres dbname=postgres sslmode=disable"),
        |_| {},
    )
    .await;
    assert_status(
        &one_down,
        Status::Warn,
        &format!("connection refused by 127.0.0.1:{port}"),
    );
    assert!(
        one_down.message.contains("answered on 127.0.0.1:5432"),
        "{}",
        one_down.message
    );
}

#[test]
fn mysql_never_logs_in_to_a_name_that_resolves_into_prod() {
    let checks = "[[probe]]\nname = \"db\"\nkind = \"mysql\"\ntarget = \"${db.url}\"\n";
    let staging = "[db]\nurl = \"mysql://root@localhost:3306/mysql\"\n";
    let dir = project("[isolation.prod]\nhosts = [\"127.0.0.1/32\"]\n", staging, checks);
    let (code, results, _) = run_staging(dir.path(), "check");
    assert_eq!(code, Some(1));
    let r = named(&results, "db");
    assert_eq!(r["category"], "isolation", "{r:#}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("`localhost` from `staging`: it resolves to 127.0.0.1, an address of environment `prod`"),
        "{r:#}"
    );
    let dir = project("[isolation.prod]\nhosts = [\"127.0.0.2/32\"]\n", staging, checks);
    let (code, results, all) = run_staging(dir.path(), "check");
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(named(&results, "db")["status"], "pass", "{results:#?}");
}

#[test]
fn redis_keys_named_by_the_configuration_are_filled_in() {
    let key = unique("iso");
    redis_cli(&["-n", "4", "SET", &format!("{key}:ready"), "1"]);
    let _drop = Cleanup(Box::new({
        let key = key.clone();
        move || redis_cli(&["-n", "4", "DEL", &format!("{key}:ready")])
    }));
    let staging =
        format!("[cache]\nurl = \"redis://127.0.0.1:6379/4\"\nready = \"{key}:ready\"\nmissing = \"{key}:missing\"\n");
    let checks = "[[probe]]\nname = \"ready\"\nkind = \"redis\"\ntarget = \"${cache.url}\"\nkeys = [\"${cache.ready}\"]\n\n\
                  [[probe]]\nname = \"missing\"\nkind = \"redis\"\ntarget = \"${cache.url}\"\n\
                  keys = [\"${cache.ready}\", \"${cache.missing}\"]\n";
    let dir = project("", &staging, checks);
    let (code, results, all) = run_staging(dir.path(), "check");
    assert_eq!(code, Some(1), "{all}");
    assert_eq!(named(&results, "ready")["status"], "pass", "{results:#?}");
    let missing = named(&results, "missing");
    assert_eq!(missing["status"], "fail");
    let m = missing["message"].as_str().unwrap();
    assert!(
        m.starts_with("not_found: ") && m.contains(&format!("{key}:missing")),
        "{m}"
    );
}
