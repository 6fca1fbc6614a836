//! Every endpoint of the real server: status codes, content types, what
//! the answers say as checks pass and fail; runs on a schedule, never
//! stacked; SIGTERM; read-only from a store cron writes.

use crate::support::{CANARY, Fixture};

fn ready_run(s: &crate::support::Server) -> bool {
    s.get("/readyz").code == 200
}

#[test]
fn every_endpoint_answers_with_its_status_code_and_content_type() {
    let f = Fixture::new("");
    let s = f.serve(&["--all-envs", "--interval", "1s"]);
    s.until(20, "the first run", ready_run);

    let h = s.get("/healthz");
    assert_eq!((h.code, h.content_type()), (200, "text/plain; charset=utf-8"));
    let r = s.get("/readyz");
    assert_eq!(r.code, 200, "{}", r.body);
    assert!(r.body.starts_with("ready"), "{}", r.body);

    let e = s.get("/api/v1/envs");
    assert_eq!((e.code, e.content_type()), (200, "application/json"));
    let v: serde_json::Value = serde_json::from_str(&e.body).unwrap();
    let names: Vec<&str> = v["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["staging", "prod"]);
    assert_eq!(v["environments"][1]["ready"], true);

    let st = s.get("/api/v1/envs/prod/status");
    assert_eq!((st.code, st.content_type()), (200, "application/json"));
    let report: serde_json::Value = serde_json::from_str(&st.body).unwrap();
    assert_eq!(report["environments"][0]["name"], "prod");
    assert_eq!(st.header("vary"), Some("Accept"));

    for (accept, ct, must) in [
        ("text/markdown", "text/markdown; charset=utf-8", "prod"),
        ("text/html", "text/html; charset=utf-8", "<html"),
        ("application/xml", "application/xml; charset=utf-8", "<testsuite"),
        ("application/sarif+json", "application/sarif+json", "\"runs\""),
        ("text/plain", "text/plain; charset=utf-8", "TAP version 14"),
        (
            "text/markdown;q=0.5, application/sarif+json",
            "application/sarif+json",
            "\"runs\"",
        ),
        ("*/*", "application/json", "\"environments\""),
    ] {
        let a = s.get_with("/api/v1/envs/prod/status", &[("Accept", accept)]);
        assert_eq!((a.code, a.content_type()), (200, ct), "Accept: {accept}");
        assert!(a.body.contains(must), "Accept: {accept}: {}", a.body);
    }
    let md = s.get("/api/v1/envs/prod/status?format=markdown");
    assert_eq!(md.content_type(), "text/markdown; charset=utf-8");
    let no = s.get_with("/api/v1/envs/prod/status", &[("Accept", "image/png")]);
    assert_eq!((no.code, no.content_type()), (406, "application/json"));
    assert_eq!(s.get("/api/v1/envs/qa/status").code, 404);

    let hist = s.get("/api/v1/envs/prod/history?since=1h");
    assert_eq!((hist.code, hist.content_type()), (200, "application/json"));
    let hv: serde_json::Value = serde_json::from_str(&hist.body).unwrap();
    assert_eq!(hv["environments"][0]["name"], "prod");
    assert!(hv["environments"][0]["checks"].as_array().unwrap().len() >= 2);
    assert_eq!(s.get("/api/v1/envs/prod/history?since=soon").code, 400);
    assert_eq!(s.get("/api/v1/envs/qa/history").code, 404);

    let svg = s.get("/badge/prod.svg");
    assert_eq!((svg.code, svg.content_type()), (200, "image/svg+xml"));
    assert!(
        svg.body.contains("<svg") && svg.body.contains(">ready<"),
        "{}",
        svg.body
    );
    let sh = s.get("/badge/prod.json");
    assert_eq!((sh.code, sh.content_type()), (200, "application/json"));
    let shv: serde_json::Value = serde_json::from_str(&sh.body).unwrap();
    assert_eq!(
        (shv["schemaVersion"].as_i64(), shv["message"].as_str()),
        (Some(1), Some("ready"))
    );
    assert_eq!(s.get("/badge/qa.svg").code, 404);
    assert_eq!(s.get("/badge/prod.png").code, 404);

    let m = s.get("/metrics");
    assert_eq!(
        (m.code, m.content_type()),
        (200, "text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        m.body
            .contains("envgate_check_success{env=\"prod\",check=\"probe/orders-db\",kind=\"file\"} 1"),
        "{}",
        m.body
    );
    assert!(m.body.contains("envgate_env_up{env=\"prod\"} 1"));
    assert!(m.body.contains("# TYPE envgate_serve_runs_total counter"));
    assert!(m.body.contains("process_resident_memory_bytes "));
    assert!(!m.body.contains("# EOF"));
    let om = s.get_with("/metrics", &[("Accept", "application/openmetrics-text; version=1.0.0")]);
    assert_eq!(
        om.content_type(),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.body.ends_with("# EOF\n"));
    assert!(
        om.body
            .contains("# TYPE envgate_serve_runs counter\nenvgate_serve_runs_total ")
    );

    let page = s.get("/");
    assert_eq!((page.code, page.content_type()), (200, "text/html; charset=utf-8"));
    assert!(page.body.contains("probe/orders-db") && page.body.contains("✓ ok"));
    assert!(page.body.contains("http-equiv=\"refresh\""));
    // Self-contained: no script, no stylesheet or image from elsewhere.
    for never in ["<script", "src=", "<link", "url("] {
        assert!(!page.body.contains(never), "the page has {never}");
    }
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );

    assert_eq!(s.get("/nowhere").code, 404);
    let post = s
        .raw(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(post.code, 405);
    assert!(!s.log_text().contains(CANARY));
}

#[test]
fn a_failing_check_makes_status_503_and_shows_its_incident_where_it_was_set() {
    let f = Fixture::new("");
    let s = f.serve(&["--env", "prod", "--interval", "1s"]);
    s.until(20, "the first run", ready_run);
    f.down("prod-db");
    s.until(20, "the incident to open", |s| {
        s.get("/api/v1/envs/prod/status").code == 503 && s.get("/").body.contains("open incidents")
    });
    let page = s.get("/").body;
    assert!(page.contains("✗ failing"), "{page}");
    assert!(
        page.contains("where it was set: <code>environments/prod.toml:"),
        "{page}"
    );
    assert!(page.contains("data-ready=\"false\"") && page.contains("✗ not ready"));
    let svg = s.get("/badge/prod.svg").body;
    assert!(svg.contains(">not ready<"), "{svg}");
    assert!(
        s.get("/metrics")
            .body
            .contains("envgate_check_state{env=\"prod\",check=\"probe/orders-db\",state=\"failing\"} 1")
    );
    let md = s.get_with("/api/v1/envs/prod/status", &[("Accept", "text/markdown")]);
    assert_eq!(md.code, 503);
    f.up("prod-db");
    s.until(20, "recovery", |s| s.get("/api/v1/envs/prod/status").code == 200);
    assert!(!s.get("/").body.contains(CANARY));
}

#[test]
fn a_run_that_overruns_its_interval_is_skipped_and_counted_never_stacked() {
    let f = Fixture::new(
        "[[probe]]\nname = \"slow\"\nkind = \"exec\"\ntarget = \"/bin/sleep\"\nargs = [\"1.6\"]\ntimeout = \"5s\"\n",
    );
    let s = f.serve(&["--env", "prod", "--interval", "1s", "--log-format", "json"]);
    s.until(30, "three runs", |s| {
        s.metric("envgate_serve_runs_total").unwrap_or(0.0) >= 3.0
    });
    assert!(s.metric("envgate_serve_runs_skipped_total").unwrap() >= 2.0);
    // The store's runs never overlap.
    let h = s.get("/api/v1/envs/prod/history?since=1h");
    assert_eq!(h.code, 200);
    let log = s.log_text();
    let runs: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["msg"] == "audit run")
        .collect();
    assert!(runs.len() >= 3, "{log}");
    for r in &runs {
        assert!(r["duration_ms"].as_u64().unwrap() >= 1500, "{r}");
        assert_eq!(r["envs"][0]["env"], "prod");
    }
    assert!(log.contains("\"skipped\""), "{log}");
    let store = f.root().join(".envgate/history.db");
    let db = rusqlite::Connection::open(store).unwrap();
    let mut q = db
        .prepare("SELECT started_at, finished_at FROM runs WHERE env = 'prod' ORDER BY id")
        .unwrap();
    let spans: Vec<(i64, i64)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for w in spans.windows(2) {
        assert!(w[1].0 >= w[0].1, "runs overlap: {spans:?}");
    }
}

#[test]
fn sigterm_lets_the_run_in_flight_finish_and_exits_0() {
    let f = Fixture::new(
        "[[probe]]\nname = \"slow\"\nkind = \"exec\"\ntarget = \"/bin/sleep\"\nargs = [\"2\"]\ntimeout = \"5s\"\n",
    );
    let mut s = f.serve(&["--env", "prod", "--interval", "1h"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let t = std::time::Instant::now();
    let status = s.terminate(15);
    assert!(status.success(), "{status}: {}", s.log_text());
    assert!(t.elapsed().as_millis() >= 1000, "it did not wait for the run");
    let log = s.log_text();
    assert!(log.contains("audit run 1 took"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    let db = rusqlite::Connection::open(f.root().join(".envgate/history.db")).unwrap();
    let n: i64 = db
        .query_row("SELECT COUNT(*) FROM runs WHERE env = 'prod'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn read_only_answers_from_the_store_cron_writes_and_turns_stale() {
    let f = Fixture::new("");
    let out = f.envgate(&["audit", "--env", "prod"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = f.serve(&["--env", "prod", "--read-only", "--interval", "1s"]);
    s.until(10, "the view of the store", |s| {
        s.get("/api/v1/envs/prod/status").code == 200
    });
    let st = s.get("/api/v1/envs/prod/status");
    assert!(st.body.contains("probe/orders-db"));
    // The store keeps the JSON report only.
    assert_eq!(
        s.get_with("/api/v1/envs/prod/status", &[("Accept", "text/markdown")])
            .code,
        406
    );
    // Nothing runs the audit: twice the interval later, it is stale.
    s.until(10, "readiness to go stale", |s| s.get("/readyz").code == 503);
    assert!(s.get("/readyz").body.starts_with("stale"));
    let runs_before = f.hits();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(f.hits(), runs_before, "a read-only server probed");
    assert_eq!(s.metric("envgate_serve_runs_total"), Some(0.0));
}

#[test]
fn refuses_to_start_without_environments_or_with_a_bad_address() {
    let f = Fixture::new("");
    let out = f.envgate(&["serve"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--env NAME or --all-envs"));
    let out = f.envgate(&["serve", "--env", "prod", "--listen", "localhost"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
    let out = f.envgate(&["serve", "--env", "prod", "--read-only"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store"));
}
