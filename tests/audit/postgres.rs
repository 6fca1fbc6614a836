//! The shared store on this machine's PostgreSQL (each test its own
//! database, dropped after): the same records as SQLite, runners that
//! overlap never both act, and each notification goes out once however
//! many runners share the store.

use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::sync::atomic::{AtomicU32, Ordering};

use super::recorder::Recorder;
use super::support::*;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A database of its own, dropped with it.
struct Db {
    name: String,
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("psql: run `sudo bash scripts/setup/services.sh`");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Db {
    fn new() -> Db {
        let name = format!(
            "envgate_audit_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        psql(&format!("CREATE DATABASE {name}"));
        Db { name }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}?sslmode=disable", self.name)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

fn fixture(db: &Db, rec: &Recorder, policy: &str) -> Fixture {
    let mut f = Fixture::new(
        &format!(
            "[audit]\nstore = \"${{secret:env:STORE}}\"\n{policy}\n{}",
            webhook("ops", "HOOK")
        ),
        ONE_PROBE,
    );
    f.vars.insert("STORE".into(), db.url());
    f.vars.insert("HOOK".into(), rec.url("/hook"));
    f
}

#[test]
fn the_shared_store_records_an_outage_like_the_embedded_one() {
    let db = Db::new();
    let rec = Recorder::start();
    let f = fixture(&db, &rec, "fail_after = 2\nrecover_after = 2");
    f.up("db");
    f.tick();
    f.down("db");
    f.tick();
    f.tick();
    f.up("db");
    f.tick();
    f.tick();
    assert_eq!(rec.events(), ["trigger", "resolve"]);
    assert_eq!(rec.received()[1].body["incident"]["duration_s"], 600);
    let mut store = f.store();
    assert_eq!(store.kind(), "postgres");
    let h = envgate::audit::history::load(
        &mut store,
        &envgate::audit::history::Query {
            envs: vec!["prod".into()],
            check: Some("probe/*"),
            since: 0,
            now: f.clock.now_secs(),
            resolved: None,
        },
    )
    .unwrap();
    let c = &h.environments[0].checks[0];
    assert_eq!(
        (c.id.as_str(), c.state.as_str(), c.streak),
        ("probe/orders-db", "ok", 2)
    );
    assert_eq!(c.recent.len(), 5);
    assert_eq!(h.environments[0].incidents[0].duration_s, 600);
}

#[test]
fn two_runners_sharing_the_postgresql_store_send_each_event_once() {
    let db = Db::new();
    let rec = Recorder::start();
    let f = fixture(&db, &rec, "fail_after = 2\nrecover_after = 2\nremind_every = \"0s\"");
    const RUNNERS: usize = 4;
    let mut stores: Vec<_> = (0..RUNNERS).map(|_| f.store()).collect();
    f.up("db");
    for round in 0..16 {
        // Failing for rounds 4..10, passing around it: one outage.
        if round == 4 {
            f.down("db");
        }
        if round == 10 {
            f.up("db");
        }
        let start = Barrier::new(RUNNERS);
        std::thread::scope(|s| {
            for (i, store) in stores.iter_mut().enumerate() {
                let (f, start) = (&f, &start);
                s.spawn(move || {
                    start.wait();
                    f.run_on(store, &format!("runner-{i}"));
                });
            }
        });
        f.clock.advance(300);
    }
    assert_eq!(rec.events(), ["trigger", "resolve"], "each event once");
    let mut store = f.store();
    for o in store.outbox("prod").unwrap() {
        assert_eq!(o.state, "sent");
        assert_eq!(o.attempts, 1, "claimed by one runner: {o:?}");
    }
}

#[test]
fn a_postgresql_store_from_a_newer_envgate_is_refused() {
    let db = Db::new();
    let rec = Recorder::start();
    let f = fixture(&db, &rec, "");
    let mut store = f.store();
    drop(store.query("UPDATE meta SET value = '99' WHERE key = 'schema_version'", &[]));
    drop(store.query("UPDATE meta SET value = '9.9.9' WHERE key = 'written_by'", &[]));
    drop(store);
    let project = f.project();
    let err = match envgate::audit::Store::open(&db.url(), f.root(), &project.manifest.project.name, T0) {
        Ok(_) => panic!("a newer store was opened"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("newer envgate (9.9.9, schema version 99)"), "{err}");
}
