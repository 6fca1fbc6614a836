//! What cron runs: the real binary, its output, exit codes, heartbeats, a
//! kill -9 in the middle of a run, a store from a newer envgate, the
//! Prometheus output read by prometheus-client and the history page in
//! headless Chromium.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::recorder::Recorder;
use super::support::*;

fn command(f: &Fixture, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_envgate"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(f.vars.iter())
        .arg("-C")
        .arg(f.root())
        .args(args)
        .stdin(Stdio::null());
    cmd
}

fn envgate(f: &Fixture, args: &[&str]) -> Output {
    command(f, args).output().unwrap()
}

/// `envgate ARGS` started in the background, returned once its
/// [`holding_probe`] on `hold` has started.
fn held_at_its_probes(f: &Fixture, args: &[&str], hold: &Path) -> std::process::Child {
    let child = command(f, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = hold.with_file_name("hold.started");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the run never reached its probes");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn hooked(policy: &str, checks: &str) -> (Fixture, Recorder) {
    let rec = Recorder::start();
    let mut f = Fixture::new(&format!("[audit]\n{policy}\n{}", webhook("ops", "HOOK")), checks);
    f.vars.insert("HOOK".into(), rec.url(&format!("/hook/{CANARY}")));
    (f, rec)
}

#[test]
fn audit_exits_0_when_it_ran_and_says_in_one_line_what_changed() {
    let (f, rec) = hooked("fail_after = 1", ONE_PROBE);
    f.up("db");
    let o = envgate(&f, &["audit", "--env", "prod", "--heartbeat-url", &rec.url("/ping")]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(out, "prod: no change (2 checks, 0 not ok)\n");
    // Nothing changed: -q keeps cron's mail empty.
    let o = envgate(&f, &["audit", "--env", "prod", "-q"]);
    assert_eq!(text(&o).0, "");
    f.down("db");
    let o = envgate(&f, &["audit", "--env", "prod", "-q"]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0), "the audit ran: exit 0 whatever it found");
    assert!(
        out.starts_with("prod: probe/orders-db failing (not_found: ") && out.ends_with("; 1 notification sent\n"),
        "{out}"
    );
    let o = envgate(&f, &["audit", "--env", "prod", "-q", "--exit-code", "status"]);
    assert_eq!(o.status.code(), Some(1), "--exit-code status exits like check");
    let pings: Vec<String> = rec
        .received()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(pings, ["/ping/start", "/ping"]);
    // The channel URL carries a token: never printed.
    assert!(!out.contains(CANARY));
}

#[test]
fn a_configuration_that_does_not_assemble_is_exit_2_pings_fail_and_changes_no_state() {
    let (f, rec) = hooked("fail_after = 1", ONE_PROBE);
    f.up("db");
    assert_eq!(envgate(&f, &["audit", "--env", "prod"]).status.code(), Some(0));
    f.write("environments/prod.toml", "[database\nsocket = 1\n");
    let o = envgate(&f, &["audit", "--env", "prod", "--heartbeat-url", &rec.url("/hb")]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("environments/prod.toml"), "{err}");
    let pings: Vec<String> = rec.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(pings, ["/hb/start", "/hb/fail"]);
    let mut store = f.store();
    assert_eq!(store.query("SELECT COUNT(*) FROM runs", &[]).unwrap()[0][0].i(), 1);
}

#[test]
fn an_unreachable_store_is_exit_2_probes_nothing_and_masks_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let marks = dir.path().join("marks");
    let (f, _rec) = hooked("", &marking_probe(&marks));
    let closed = super::ports::ClosedPort::new();
    let url = format!("postgres://envgate:{CANARY}@127.0.0.1:{}/audit", closed.port);
    let o = envgate(&f, &["audit", "--env", "prod", "--store", &url]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot use the history store postgres://envgate:***@127.0.0.1:"),
        "{err}"
    );
    assert!(!err.contains(CANARY), "{err}");
    assert!(!marks.exists(), "a run that cannot record must not probe");
}

/// An exec probe that appends a line to `marks` each time it runs.
fn marking_probe(marks: &Path) -> String {
    format!(
        "{ONE_PROBE}\n[[probe]]\nname = \"mark\"\nkind = \"exec\"\ntarget = \"/bin/sh\"\n\
         args = [\"-c\", \"echo ran >> \\\"$0\\\"\", \"{}\"]\n",
        marks.display()
    )
}

#[test]
fn a_cron_run_while_another_holds_the_environment_says_so_and_probes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hold = dir.path().join("hold");
    let marks = dir.path().join("marks");
    let checks = format!(
        "{}{}",
        holding_probe(&hold),
        marking_probe(&marks).trim_start_matches(ONE_PROBE)
    );
    let (f, _rec) = hooked("", &checks);
    f.up("db");
    std::fs::write(&hold, "").unwrap();
    let mut first = held_at_its_probes(&f, &["audit", "--env", "prod", "-q"], &hold);
    let o = envgate(&f, &["audit", "--env", "prod"]);
    std::fs::remove_file(&hold).unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(out, "prod: skipped: another runner is auditing it right now\n");
    assert!(first.wait().unwrap().success());
    let ran = std::fs::read_to_string(&marks).unwrap();
    assert_eq!(ran.lines().count(), 1, "only the first run probed");
    let mut store = f.store();
    assert_eq!(store.query("SELECT COUNT(*) FROM runs", &[]).unwrap()[0][0].i(), 1);
}

/// An exec probe that signals it started, then holds until `hold` is removed.
fn holding_probe(hold: &Path) -> String {
    format!(
        "{ONE_PROBE}\n[[probe]]\nname = \"slow\"\nkind = \"exec\"\ntarget = \"/bin/sh\"\ntimeout = \"60s\"\n\
         args = [\"-c\", \"touch \\\"$0.started\\\"; while [ -e \\\"$0\\\" ]; do sleep 0.05; done\", \"{}\"]\n",
        hold.display()
    )
}

#[test]
fn kill_9_in_the_middle_of_a_run_loses_and_repeats_no_notification() {
    let closed = super::ports::ClosedPort::new();
    let dir = tempfile::tempdir().unwrap();
    let hold = dir.path().join("hold");
    let mut f = Fixture::new(
        &format!(
            "[audit]\nfail_after = 1\nremind_every = \"0s\"\n{}",
            webhook("ops", "HOOK")
        ),
        &holding_probe(&hold),
    );
    f.vars
        .insert("HOOK".into(), format!("http://127.0.0.1:{}/hook", closed.port));
    f.down("db");
    // Run 1: the incident opens; the receiver is down, so its trigger waits in the outbox.
    let o = envgate(&f, &["audit", "--env", "prod"]);
    assert!(text(&o).1.contains("is not delivered to `ops`"), "{}", text(&o).1);
    // Run 2: killed while a probe holds.
    std::fs::write(&hold, "").unwrap();
    let mut child = held_at_its_probes(&f, &["audit", "--env", "prod"], &hold);
    // SIGKILL: no destructor, no unlock, no rollback runs.
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_file(&hold).unwrap();
    // Runs 3 and 4, ten minutes on (past the delivery back-off): the
    // receiver is back; the store is whole and the trigger goes out once.
    let rec = Recorder::on(closed.open());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    f.clock.set(now + 600);
    f.tick();
    f.tick();
    assert_eq!(rec.events(), ["trigger"]);
    let mut store = f.store();
    let ok = store.query("PRAGMA integrity_check", &[]).unwrap();
    assert_eq!(ok[0][0].t(), "ok");
    assert_eq!(
        store.query("SELECT COUNT(*) FROM runs", &[]).unwrap()[0][0].i(),
        3,
        "the killed run left nothing behind"
    );
    let outbox = store.outbox("prod").unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].state, "sent");
}

#[test]
fn a_store_from_a_newer_envgate_is_refused_and_left_as_it_was() {
    let (f, _rec) = hooked("", ONE_PROBE);
    f.up("db");
    assert_eq!(envgate(&f, &["audit", "--env", "prod"]).status.code(), Some(0));
    {
        let mut store = f.store();
        store
            .query("UPDATE meta SET value = '7' WHERE key = 'schema_version'", &[])
            .unwrap();
        store
            .query("UPDATE meta SET value = '3.1.0' WHERE key = 'written_by'", &[])
            .unwrap();
    }
    let o = envgate(&f, &["audit", "--env", "prod"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    let flat = err.replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("the store was written by a newer envgate (3.1.0, schema version 7)"),
        "{err}"
    );
    assert!(flat.contains("upgrade envgate"), "{err}");
    let o = envgate(&f, &["history"]);
    assert_eq!(o.status.code(), Some(2), "history refuses it too");
    let db = rusqlite_count(&f.root().join(".envgate/history.db"));
    assert_eq!(db, ("7".to_string(), 1), "schema version and runs untouched");
}

/// (schema version, runs) read straight from the file.
fn rusqlite_count(path: &Path) -> (String, i64) {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             print(c.execute(\"select value from meta where key='schema_version'\").fetchone()[0], \
             c.execute('select count(*) from runs').fetchone()[0])",
        ])
        .arg(path)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (v, n) = s
        .split_once(' ')
        .unwrap_or_else(|| panic!("{s} {}", String::from_utf8_lossy(&out.stderr)));
    (v.to_string(), n.parse().unwrap())
}

#[test]
fn silences_are_set_listed_and_ended_from_the_command_line() {
    let (f, _rec) = hooked("", ONE_PROBE);
    let o = envgate(
        &f,
        &[
            "audit",
            "silence",
            "--env",
            "prod",
            "--check",
            "probe/*",
            "--for",
            "2h",
            "--reason",
            "db maintenance",
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.starts_with("silence 1: prod probe/* until "), "{out}");
    let (out, _) = text(&envgate(&f, &["audit", "silences"]));
    assert!(out.contains("prod  probe/*") && out.contains("db maintenance"), "{out}");
    assert_eq!(text(&envgate(&f, &["audit", "unsilence", "1"])).0, "silence 1 ended\n");
    assert_eq!(text(&envgate(&f, &["audit", "silences"])).0, "no silences\n");
    let o = envgate(
        &f,
        &[
            "audit", "silence", "--env", "prdo", "--check", "x", "--for", "1h", "--reason", "r",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("did you mean `prod`"), "{}", text(&o).1);
}

#[test]
fn audit_prometheus_series_parse_with_prometheus_client_and_carry_no_url() {
    let (f, _rec) = hooked("fail_after = 1", ONE_PROBE);
    f.up("db");
    envgate(&f, &["audit", "--env", "prod"]);
    f.down("db");
    let path = f.root().join("audit.prom");
    let o = envgate(
        &f,
        &[
            "audit",
            "--env",
            "prod",
            "-q",
            "--report",
            &format!("prometheus={}", path.display()),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/consumers/prometheus_parse.py");
    let out = Command::new("python3").arg(&script).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fam: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for name in [
        "envgate_check_success",
        "envgate_check_state",
        "envgate_check_duration_seconds",
        "envgate_check_consecutive_failures",
        "envgate_check_last_success_timestamp_seconds",
        "envgate_check_failure_info",
        "envgate_tls_not_after_timestamp_seconds",
        "envgate_uptime_ratio",
        "envgate_env_up",
        "envgate_audit_last_run_timestamp_seconds",
    ] {
        assert_eq!(fam[name]["type"], "gauge", "{name}: {fam}");
    }
    let sample = |name: &str, check: &str, extra: (&str, &str)| {
        fam[name]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["labels"]["check"] == check && (extra.0.is_empty() || s["labels"][extra.0] == extra.1))
            .map(|s| s["value"].as_f64().unwrap())
    };
    assert_eq!(
        sample("envgate_check_success", "probe/orders-db", ("kind", "file")),
        Some(0.0)
    );
    assert_eq!(
        sample("envgate_check_state", "probe/orders-db", ("state", "failing")),
        Some(1.0)
    );
    assert_eq!(
        sample("envgate_check_consecutive_failures", "probe/orders-db", ("", "")),
        Some(1.0)
    );
    assert_eq!(
        sample("envgate_check_failure_info", "probe/orders-db", ("class", "not_found")),
        Some(1.0)
    );
    assert_eq!(
        sample("envgate_uptime_ratio", "probe/orders-db", ("window", "1d")),
        Some(0.5)
    );
    assert_eq!(fam["envgate_env_up"]["samples"][0]["value"], 0.0);
    for f in fam.as_object().unwrap().values() {
        for s in f["samples"].as_array().unwrap() {
            for v in s["labels"].as_object().unwrap().values() {
                let v = v.as_str().unwrap();
                assert!(
                    !v.contains("://") && !v.contains('/') || v.starts_with("probe/") || v.starts_with("schema"),
                    "{v}"
                );
                assert!(!v.contains(' '), "free text as a label: {v}");
            }
        }
    }
}

#[test]
fn the_history_page_shows_each_check_as_a_strip_of_runs_in_chromium() {
    let (f, _rec) = hooked("fail_after = 2", ONE_PROBE);
    for i in 0..6 {
        if i < 3 {
            f.up("db")
        } else {
            f.down("db")
        }
        envgate(&f, &["audit", "--env", "prod", "-q"]);
    }
    let o = envgate(&f, &["history", "--env", "prod", "--format", "html"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    let page = f.root().join("history.html");
    std::fs::write(&page, &o.stdout).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let chromium = |extra: &[&str]| {
        let out = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .output()
            .expect("chromium: run `sudo bash scripts/setup/reports.sh`");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let url = format!("file://{}", page.display());
    let dom = chromium(&["--dump-dom", &url]);
    let row = regex::Regex::new(r#"<tr class="check" data-check="probe/orders-db" data-state="failing">"#).unwrap();
    assert!(row.is_match(&dom), "{dom}");
    let cells: Vec<&str> = regex::Regex::new(r#"class="cell (\w+)""#)
        .unwrap()
        .captures_iter(&dom)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    // config, schema-less project: the probe's six runs, oldest first, and the config check's.
    let probe_cells: Vec<&str> = dom
        .split("data-check=\"probe/orders-db\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap()
        .matches("class=\"cell ")
        .map(|_| "")
        .collect();
    assert_eq!(probe_cells.len(), 6, "{dom}");
    assert!(cells.contains(&"fail") && cells.contains(&"pass"));
    assert!(
        dom.contains("✗ failing since"),
        "the state is written, not only coloured"
    );
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit-history.png");
    chromium(&[
        "--window-size=1280,600",
        &format!("--screenshot={}", shot.display()),
        &url,
    ]);
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 5_000).unwrap_or(false));
}

#[test]
fn history_json_gives_state_streak_uptime_and_incidents_with_durations() {
    let (f, _rec) = hooked("fail_after = 1\nrecover_after = 1", ONE_PROBE);
    f.down("db");
    envgate(&f, &["audit", "--env", "prod", "-q"]);
    f.up("db");
    envgate(&f, &["audit", "--env", "prod", "-q"]);
    let o = envgate(
        &f,
        &[
            "history",
            "--env",
            "prod",
            "--check",
            "probe/orders-db",
            "--format",
            "json",
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    let env = &h["environments"][0];
    assert_eq!(env["name"], "prod");
    let c = &env["checks"][0];
    assert_eq!(c["id"], "probe/orders-db");
    assert_eq!(c["state"], "ok");
    assert_eq!(c["streak"], 1);
    assert_eq!(c["uptime"]["1d"], 0.5);
    assert_eq!(env["checks"].as_array().unwrap().len(), 1, "--check filters");
    let i = &env["incidents"][0];
    assert_eq!(i["open"], false);
    assert!(i["duration_s"].as_i64().unwrap() >= 0);
    assert!(!out.contains(CANARY));
    let o = envgate(&f, &["history", "--env", "prod"]);
    let (out, _) = text(&o);
    assert!(out.contains("probe/orders-db") && out.contains("✓ resolved"), "{out}");
}

#[test]
fn the_stores_write_ahead_log_does_not_grow_from_one_cron_run_to_the_next() {
    // Each cron run is a new process with one write transaction. It leaves
    // its log for the next run, which folds it into the database while its
    // probes run and then writes its own log from the start: the log holds
    // one run, never the sum of them, and no run reads more than one back.
    let (f, _rec) = hooked("fail_after = 1", ONE_PROBE);
    f.up("db");
    let wal = f.root().join(".envgate").join("history.db-wal");
    let db = f.root().join(".envgate").join("history.db");
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let copy = tempfile::tempdir().unwrap();
    let mut logs = Vec::new();
    for run in 1..=6 {
        let o = envgate(&f, &["audit", "--env", "prod", "-q"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
        logs.push(len(&wal));
        // The database file alone, without the log, holds every earlier run.
        let alone = copy.path().join(format!("run{run}.db"));
        std::fs::copy(&db, &alone).unwrap();
        assert_eq!(rusqlite_count(&alone).1, run - 1, "after run {run}");
    }
    assert!(
        logs.iter().all(|l| *l <= logs[1]),
        "the log grew from run to run: {logs:?}"
    );
    let mut store = f.store();
    assert_eq!(store.query("SELECT COUNT(*) FROM runs", &[]).unwrap()[0][0].i(), 6);
    let ok = store.query("PRAGMA integrity_check", &[]).unwrap();
    assert_eq!(ok[0][0].t(), "ok");
}
