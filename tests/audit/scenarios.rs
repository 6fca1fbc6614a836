//! What the people on call see, run by run: the audit in-process on a real
//! SQLite file, a receiver that records what it is sent, a clock the test
//! moves five minutes per run.

use super::recorder::Recorder;
use super::support::*;
use envgate::audit::store::sql::Val;

const POLICY: &str = "[audit]\nfail_after = 2\nrecover_after = 2\nremind_every = \"1h\"\n";

fn with_hook(extra: &str, checks: &str) -> (Fixture, Recorder) {
    let rec = Recorder::start();
    let mut f = Fixture::new(
        &format!("{POLICY}{extra}\n{}", webhook("ops", "OPS_WEBHOOK_URL")),
        checks,
    );
    f.vars
        .insert("OPS_WEBHOOK_URL".into(), rec.url(&format!("/hook/{CANARY}")));
    (f, rec)
}

#[test]
fn a_blip_shorter_than_fail_after_notifies_nobody() {
    let (f, rec) = with_hook("", ONE_PROBE);
    f.up("db");
    f.tick();
    f.tick();
    f.down("db");
    f.tick();
    f.up("db");
    for _ in 0..3 {
        f.tick();
    }
    assert!(rec.received().is_empty(), "{:?}", rec.events());
    let mut store = f.store();
    let checks = store.checks(Some("prod")).unwrap();
    let db = checks.iter().find(|c| c.check == "probe/orders-db").unwrap();
    assert_eq!(db.state.health.as_str(), "ok");
    assert!(store.incidents(Some("prod"), 0).unwrap().is_empty());
}

#[test]
fn an_outage_notifies_once_reminds_and_resolves_with_its_duration() {
    let (f, rec) = with_hook("", ONE_PROBE);
    f.up("db");
    f.tick();
    f.down("db");
    let first_failure = f.clock.now_secs();
    for _ in 0..14 {
        f.tick();
    }
    f.up("db");
    let first_pass = f.clock.now_secs();
    f.tick();
    f.tick();
    f.tick();
    assert_eq!(rec.events(), ["trigger", "reminder", "resolve"]);
    let got = rec.received();
    let trigger = &got[0].body;
    // The generic webhook body, field by field.
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(trigger["version"], 1);
    assert_eq!(trigger["project"], "orders-api");
    assert_eq!(trigger["env"], "prod");
    assert_eq!(trigger["check"], "probe/orders-db");
    let id = format!("prod:probe/orders-db:{first_failure}");
    assert_eq!(trigger["incident"]["id"], id.as_str());
    assert_eq!(trigger["incident"]["opened_at"], "2026-11-28T14:35:00Z");
    assert_eq!(trigger["incident"]["resolved_at"], serde_json::Value::Null);
    assert_eq!(trigger["status"], "fail");
    assert!(
        trigger["message"].as_str().unwrap().starts_with("not_found"),
        "{trigger}"
    );
    assert_eq!(trigger["location"]["file"], "environments/prod.toml");
    assert_eq!(trigger["location"]["line"], 3);
    assert_eq!(trigger["consecutive_failures"], 2);
    assert!(trigger["config_changed"].as_array().unwrap().is_empty());
    assert_eq!(got[1].body["incident"]["id"], id.as_str());
    let resolve = &got[2].body;
    assert_eq!(resolve["incident"]["id"], id.as_str());
    assert_eq!(resolve["incident"]["duration_s"], first_pass - first_failure);
    assert_eq!(resolve["incident"]["resolved_at"], "2026-11-28T15:45:00Z");
    // Each event once, each with its own id.
    let ids: std::collections::BTreeSet<_> = got.iter().map(|r| r.body["event_id"].to_string()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(got[0].header("idempotency-key"), got[0].body["event_id"].as_str());
}

#[test]
fn an_incident_names_the_configuration_key_that_changed_since_the_check_passed() {
    let (f, rec) = with_hook("", ONE_PROBE);
    f.up("db");
    f.tick();
    // Someone points the database at a socket that does not exist.
    let prod = std::fs::read_to_string(f.root().join("environments/prod.toml")).unwrap();
    f.write(
        "environments/prod.toml",
        &prod.replace("/markers/db\"", "/markers/db-new\""),
    );
    f.tick();
    f.tick();
    assert_eq!(rec.events(), ["trigger"]);
    assert_eq!(
        rec.received()[0].body["config_changed"],
        serde_json::json!(["database.socket"])
    );
    // The store keeps keyed digests of the configuration, never its values
    // (the probe's own message names its target, as the report does).
    let mut store = f.store();
    for row in store.query("SELECT keys FROM snapshots", &[]).unwrap() {
        let keys = row[0].t();
        assert!(keys.contains("database.socket") && !keys.contains("markers"), "{keys}");
    }
    assert!(!contains(&store_bytes(f.root()), CANARY), "a secret reached the store");
}

#[test]
fn a_flapping_check_is_announced_once() {
    let (f, rec) = with_hook("", ONE_PROBE);
    for i in 0..12 {
        if i % 2 == 0 {
            f.up("db");
        } else {
            f.down("db");
        }
        f.tick();
    }
    assert_eq!(rec.events(), ["flapping"], "{:?}", rec.events());
    assert_eq!(rec.received()[0].body["state"], "flapping");
    let mut store = f.store();
    let db = store
        .checks(Some("prod"))
        .unwrap()
        .into_iter()
        .find(|c| c.check == "probe/orders-db")
        .unwrap();
    assert_eq!(db.state.health.as_str(), "flapping");
    // Stable again: reported once more, as a recovery.
    f.up("db");
    for _ in 0..12 {
        f.tick();
    }
    assert_eq!(rec.events(), ["flapping", "resolve"]);
}

const CHAIN: &str = r#"
[[probe]]
name = "dns-db"
kind = "file"
target = "${dns.marker}"

[[probe]]
name = "orders-db"
kind = "file"
target = "${database.socket}"
depends_on = ["dns-db"]

[[probe]]
name = "api"
kind = "file"
target = "${api.marker}"
depends_on = ["dns-db"]
"#;

#[test]
fn a_dependency_failure_opens_one_incident_that_lists_what_it_blocks() {
    let (f, rec) = with_hook("", CHAIN);
    for m in ["dns", "db", "api"] {
        f.up(m);
    }
    f.tick();
    f.down("dns");
    for _ in 0..4 {
        f.tick();
    }
    assert_eq!(rec.events(), ["trigger"]);
    let body = &rec.received()[0].body;
    assert_eq!(body["check"], "probe/dns-db");
    assert_eq!(body["blocks"], serde_json::json!(["probe/orders-db", "probe/api"]));
    let mut store = f.store();
    let incidents = store.incidents(Some("prod"), 0).unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
}

#[test]
fn a_receiver_down_for_two_runs_gets_the_event_on_the_third_once() {
    let closed = super::ports::ClosedPort::new();
    let port = closed.port;
    let mut f = Fixture::new(
        &format!(
            "[audit]\nfail_after = 1\nremind_every = \"0s\"\n{}",
            webhook("ops", "HOOK")
        ),
        ONE_PROBE,
    );
    f.vars.insert("HOOK".into(), format!("http://127.0.0.1:{port}/hook"));
    f.down("db");
    let first = f.tick();
    assert!(matches!(
        first.sent[0].outcome,
        envgate::audit::store::Delivery::Retry(..)
    ));
    let second = f.tick();
    assert_eq!(second.undelivered.len(), 1, "still owed after the second run");
    let rec = Recorder::on(closed.open());
    let third = f.tick();
    assert_eq!(third.sent.len(), 1);
    f.tick();
    f.tick();
    assert_eq!(rec.events(), ["trigger"]);
    let mut store = f.store();
    let outbox = store.outbox("prod").unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!((outbox[0].state.as_str(), outbox[0].attempts), ("sent", 3));
}

#[test]
fn a_channel_that_rejects_an_event_is_reported_not_dropped() {
    let (f, rec) = with_hook("", ONE_PROBE);
    rec.answer(400);
    f.down("db");
    let o = f.tick();
    match &o.sent[0].outcome {
        envgate::audit::store::Delivery::Rejected(why) => {
            assert!(why.starts_with("HTTP 400"), "{why}");
            assert!(!why.contains(CANARY));
        }
        other => panic!("{other:?}"),
    }
    let mut store = f.store();
    let h = envgate::audit::history::load(
        &mut store,
        &envgate::audit::history::Query {
            envs: vec![],
            check: None,
            since: 0,
            now: f.clock.now_secs(),
            resolved: None,
        },
    )
    .unwrap();
    let u = &h.environments[0].undelivered;
    assert_eq!((u[0].state.as_str(), u[0].channel.as_str()), ("rejected", "ops"));
    // Not retried: the channel said no.
    f.tick();
    assert_eq!(rec.received().len(), 1);
}

#[test]
fn a_silence_keeps_recording_notifies_nothing_and_tells_once_it_ends_on_a_failing_check() {
    let (f, rec) = with_hook("", ONE_PROBE);
    f.up("db");
    f.tick();
    let mut store = f.store();
    let now = f.clock.now_secs();
    store
        .add_silence(&envgate::audit::store::Silence {
            id: 0,
            env: "prod".into(),
            pattern: "probe/*".into(),
            starts_at: now,
            ends_at: now + 1800,
            reason: "db maintenance".into(),
            created_by: "test".into(),
        })
        .unwrap();
    f.down("db");
    for _ in 0..6 {
        f.tick();
    }
    assert!(rec.received().is_empty(), "silenced: {:?}", rec.events());
    let runs = store.query("SELECT COUNT(*) FROM runs", &[]).unwrap();
    assert_eq!(runs[0][0], Val::Int(Some(7)), "every run is recorded while silenced");
    f.tick();
    assert_eq!(rec.events(), ["trigger"], "the silence ended on a failing check");
    f.tick();
    assert_eq!(rec.events(), ["trigger"]);
}

#[test]
fn first_run_with_no_history_notifies_failures_and_keeps_passes_quiet() {
    let (f, rec) = with_hook("", CHAIN);
    f.up("dns");
    f.up("api");
    f.down("db");
    f.tick();
    assert_eq!(rec.events(), ["trigger"]);
    assert_eq!(rec.received()[0].body["check"], "probe/orders-db");
}

#[test]
fn retention_keeps_recent_results_and_drops_old_roll_ups() {
    let f = Fixture::new("[audit]\nretain = \"1h\"\nretain_rollups = \"2d\"\n", ONE_PROBE);
    f.up("db");
    for _ in 0..30 {
        f.tick();
    }
    let mut store = f.store();
    let count = |store: &mut envgate::audit::Store, sql: &str| store.query(sql, &[]).unwrap()[0][0].i();
    // 30 runs 5 minutes apart; an hour of them is kept (and the latest).
    let runs = count(&mut store, "SELECT COUNT(*) FROM runs");
    assert!((12..=14).contains(&runs), "{runs} runs kept");
    let checks = count(&mut store, "SELECT COUNT(*) FROM checks");
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM results"), runs * checks);
    assert_eq!(count(&mut store, "SELECT COUNT(DISTINCT day) FROM rollups"), 1);
    f.clock.advance(3 * 86_400);
    f.tick();
    assert_eq!(
        count(&mut store, "SELECT MIN(day) FROM rollups"),
        f.clock.now_secs().div_euclid(86_400)
    );
    assert_eq!(count(&mut store, "SELECT COUNT(*) FROM runs"), 1);
}

#[test]
fn a_probe_removed_from_the_checks_files_resolves_its_incident() {
    let (f, rec) = with_hook("", CHAIN);
    f.up("dns");
    f.up("db");
    f.down("api");
    f.tick();
    f.tick();
    assert_eq!(rec.events(), ["trigger"]);
    // `api` is renamed away: its incident ends; nothing else is told.
    f.write(
        "checks/probes.toml",
        &CHAIN.replace("name = \"api\"", "name = \"api-v2\""),
    );
    f.up("api");
    f.tick();
    assert_eq!(rec.events(), ["trigger", "resolve"]);
    let mut store = f.store();
    let ids: Vec<String> = store
        .checks(Some("prod"))
        .unwrap()
        .into_iter()
        .map(|c| c.check)
        .collect();
    assert!(!ids.contains(&"probe/api".to_string()), "{ids:?}");
}

#[test]
fn an_overlapping_run_leaves_an_environment_another_runner_holds_alone() {
    let (f, rec) = with_hook("", ONE_PROBE);
    f.down("db");
    let mut holder = f.store();
    assert!(holder.try_lock("prod").unwrap());
    let o = f.tick();
    assert!(o.envs[0].busy, "the second runner must not act");
    assert!(rec.received().is_empty());
    assert_eq!(holder.query("SELECT COUNT(*) FROM runs", &[]).unwrap()[0][0].i(), 0);
    holder.unlock("prod").unwrap();
    let o = f.tick();
    assert!(!o.envs[0].busy);
    assert_eq!(rec.events(), ["trigger"]);
}

#[test]
fn a_page_lists_every_open_incident_and_only_the_newest_resolved_ones() {
    let f = Fixture::new("[audit]\nfail_after = 1\nrecover_after = 1\n", ONE_PROBE);
    // Twelve outages, resolved, far enough apart not to count as
    // flapping; then one that is still open.
    for _ in 0..12 {
        f.down("db");
        f.tick();
        f.up("db");
        for _ in 0..10 {
            f.tick();
        }
    }
    f.down("db");
    f.tick();
    let mut store = f.store();
    let load = |store: &mut envgate::audit::store::Store, resolved| {
        envgate::audit::history::load(
            store,
            &envgate::audit::history::Query {
                envs: vec![],
                check: None,
                since: 0,
                now: f.clock.now_secs(),
                resolved,
            },
        )
        .unwrap()
        .environments
        .remove(0)
        .incidents
    };
    let all = load(&mut store, None);
    assert_eq!(all.len(), 13);
    let page = load(&mut store, Some(5));
    assert_eq!(page.len(), 6, "the open one and the five newest resolved");
    assert!(page[0].open, "newest first: the open one");
    assert_eq!(
        page.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        all.iter().take(6).map(|i| i.id.clone()).collect::<Vec<_>>()
    );
}

#[test]
fn a_store_of_the_first_schema_is_migrated_with_its_history_kept() {
    let f = Fixture::new("[audit]\nfail_after = 1\n", ONE_PROBE);
    f.up("db");
    f.tick();
    f.down("db");
    f.tick();
    // Put the store back in the first schema's shape: results and roll-ups
    // clustered by check, schema version 1.
    {
        let mut store = f.store();
        for sql in [
            "CREATE TABLE r1 (check_ref INTEGER NOT NULL, run_id INTEGER NOT NULL, at INTEGER NOT NULL, \
             status TEXT NOT NULL, class TEXT, message TEXT NOT NULL, duration_ms INTEGER, attempts INTEGER, \
             target TEXT, not_after INTEGER, PRIMARY KEY (check_ref, run_id)) WITHOUT ROWID",
            "INSERT INTO r1 SELECT check_ref, run_id, at, status, class, message, duration_ms, attempts, target, \
             not_after FROM results",
            "DROP TABLE results",
            "ALTER TABLE r1 RENAME TO results",
            "CREATE TABLE u1 (check_ref INTEGER NOT NULL, day INTEGER NOT NULL, up INTEGER NOT NULL, \
             down INTEGER NOT NULL, PRIMARY KEY (check_ref, day)) WITHOUT ROWID",
            "INSERT INTO u1 SELECT check_ref, day, up, down FROM rollups",
            "DROP TABLE rollups",
            "ALTER TABLE u1 RENAME TO rollups",
            "UPDATE meta SET value = '1' WHERE key = 'schema_version'",
        ] {
            store.query(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
    // Opened again: migrated forward, nothing lost, and the next run records.
    let mut store = f.store();
    let one = |store: &mut envgate::audit::store::Store, sql: &str| store.query(sql, &[]).unwrap()[0][0].clone();
    assert_eq!(
        one(&mut store, "SELECT value FROM meta WHERE key = 'schema_version'").t(),
        "2"
    );
    assert_eq!(one(&mut store, "SELECT COUNT(*) FROM results").i(), 4);
    assert_eq!(one(&mut store, "SELECT SUM(up) + SUM(down) FROM rollups").i(), 4);
    let ddl = one(&mut store, "SELECT sql FROM sqlite_master WHERE name = 'results'").t();
    assert!(ddl.contains("PRIMARY KEY (run_id, check_ref)"), "{ddl}");
    drop(store);
    f.tick();
    let mut store = f.store();
    assert_eq!(one(&mut store, "SELECT COUNT(*) FROM results").i(), 6);
}
