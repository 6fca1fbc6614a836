//! The bearer token on /api and /probe; /probe runs only configured probes
//! (an unknown one is 404 with no network traffic), shares one run between
//! concurrent callers and is rate-limited; a canary secret is absent from
//! every answer and the log; request heads are bounded.

use std::time::Duration;

use crate::support::{CANARY, Fixture};

const TOKEN: &str = "t0ken-2b7e9f41c6d8";

#[test]
fn api_and_probe_need_the_bearer_token_and_the_rest_does_not() {
    let f = Fixture::new("");
    let s = f.serve_with(&["--env", "prod", "--interval", "1h"], &[("ENVGATE_TOKEN", TOKEN)]);
    s.until(20, "the first run", |s| s.get("/readyz").code == 200);
    let bearer = format!("Bearer {TOKEN}");
    for path in [
        "/api/v1/envs",
        "/api/v1/envs/prod/status",
        "/api/v1/envs/prod/history",
        "/probe?env=prod&check=probe/api",
    ] {
        let none = s.get(path);
        assert_eq!(none.code, 401, "{path}");
        assert_eq!(none.header("www-authenticate"), Some("Bearer realm=\"envgate\""));
        let wrong = s.get_with(path, &[("Authorization", "Bearer t0ken-2b7e9f41c6d9")]);
        assert_eq!(wrong.code, 401, "{path}");
        let prefix = s.get_with(path, &[("Authorization", "Bearer t0ken")]);
        assert_eq!(prefix.code, 401, "{path}");
        let basic = s.get_with(path, &[("Authorization", &format!("Basic {TOKEN}"))]);
        assert_eq!(basic.code, 401, "{path}");
    }
    assert_eq!(s.get_with("/api/v1/envs", &[("Authorization", &bearer)]).code, 200);
    assert_eq!(
        s.get_with("/api/v1/envs/prod/status", &[("Authorization", &bearer)])
            .code,
        200
    );
    for open in ["/healthz", "/readyz", "/metrics", "/", "/badge/prod.svg"] {
        assert_eq!(s.get(open).code, 200, "{open}");
    }
    assert!(s.metric("envgate_serve_unauthorized_requests_total").unwrap() >= 16.0);
    assert!(!s.log_text().contains(TOKEN));
}

#[test]
fn probe_runs_only_configured_probes_and_an_unknown_one_touches_no_network() {
    let f = Fixture::new("");
    let s = f.serve(&["--env", "prod", "--interval", "1h"]);
    s.until(20, "the first run", |s| s.get("/readyz").code == 200);
    let before = f.hits();
    assert_eq!(before, 1, "the first run probes the api once");
    let target = format!("http://127.0.0.1:{}/health", f.api_port);
    for q in [
        "env=prod&check=probe/nope".to_string(),
        format!("env=prod&check={target}"),
        format!("env=prod&check=probe/api&target={target}"),
        "env=qa&check=probe/api".to_string(),
        "env=prod&check=schema".to_string(),
    ] {
        let r = s.get(&format!("/probe?{q}"));
        if q.contains("target=") {
            // Extra parameters change nothing: the configured probe runs.
            assert_eq!(r.code, 200, "{q}: {}", r.body);
        } else {
            assert_eq!(r.code, 404, "{q}: {}", r.body);
        }
    }
    assert_eq!(s.get("/probe?env=prod").code, 400);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(f.hits(), before + 1, "only the configured probe reached the network");
    let ok = s.get("/probe?env=prod&check=probe/orders-db");
    assert_eq!((ok.code, ok.content_type()), (200, "application/json"));
    f.down("prod-db");
    let down = s.get("/probe?env=prod&check=probe/orders-db");
    assert_eq!(down.code, 503, "{}", down.body);
    let v: serde_json::Value = serde_json::from_str(&down.body).unwrap();
    let r = v["environments"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "probe/orders-db")
        .unwrap()
        .clone();
    assert_eq!(r["status"], "fail");
    // A probe run records nothing: the audit's state is unchanged.
    assert!(
        s.get("/metrics")
            .body
            .contains("envgate_check_success{env=\"prod\",check=\"probe/orders-db\",kind=\"file\"} 1")
    );
}

#[test]
fn concurrent_probe_calls_share_one_run_and_runs_are_rate_limited() {
    let f = Fixture::new(
        "[[probe]]\nname = \"slow\"\nkind = \"exec\"\ntarget = \"/bin/sh\"\nargs = [\"-c\", \"echo run >> $RUNS_FILE; sleep 1\"]\n",
    );
    let runs = f.root().join("runs.txt");
    let runs_s = runs.to_string_lossy().into_owned();
    let s = std::sync::Arc::new(f.serve_with(
        &["--env", "prod", "--interval", "1h", "--probe-rate", "2"],
        &[("RUNS_FILE", &runs_s)],
    ));
    s.until(20, "the first run", |s| s.get("/readyz").code == 200);
    let after_audit = std::fs::read_to_string(&runs).unwrap().lines().count();
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || s.get("/probe?env=prod&check=probe/slow").code)
        })
        .collect();
    let codes: Vec<u16> = calls.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap().lines().count(),
        after_audit + 1,
        "six concurrent calls ran the probe once"
    );
    assert!(
        s.metric("envgate_serve_probe_requests_total{outcome=\"shared\"}")
            .unwrap()
            >= 1.0
    );
    // Two runs a minute: the second passes, the third waits.
    assert_eq!(s.get("/probe?env=prod&check=probe/slow").code, 200);
    let limited = s.get("/probe?env=prod&check=probe/slow");
    assert_eq!(limited.code, 429);
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
}

#[test]
fn a_canary_secret_is_in_no_answer_and_no_log_line() {
    let f = Fixture::new("");
    let s = f.serve(&["--all-envs", "--interval", "1s", "--log-format", "json"]);
    s.until(20, "the first run", |s| s.get("/readyz").code == 200);
    f.down("prod-db");
    s.until(20, "an incident", |s| s.get("/").body.contains("open incidents"));
    let mut paths: Vec<String> = [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/envs",
        "/badge/prod.svg",
        "/badge/prod.json",
        "/probe?env=prod&check=probe/api",
        "/probe?env=prod&check=probe/orders-db",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    for env in ["prod", "staging"] {
        paths.push(format!("/api/v1/envs/{env}/history?since=1d"));
        for fmt in ["json", "markdown", "html", "junit", "sarif", "tap"] {
            paths.push(format!("/api/v1/envs/{env}/status?format={fmt}"));
        }
    }
    for p in &paths {
        let a = s.get(p);
        assert!(matches!(a.code, 200 | 503), "{p}: {}", a.code);
        assert!(!a.raw.contains(CANARY), "{p} shows the secret");
    }
    let om = s.get_with("/metrics", &[("Accept", "application/openmetrics-text")]);
    assert!(!om.raw.contains(CANARY));
    // The HTTP probe's URL carries the secret: it is masked where it shows.
    let st = s.get("/api/v1/envs/prod/status");
    assert!(st.body.contains("probe/api"));
    assert!(!s.log_text().contains(CANARY));
}

#[test]
fn oversized_request_heads_are_refused() {
    let f = Fixture::new("");
    let s = f.serve(&["--env", "prod", "--interval", "1h"]);
    let big = "x".repeat(64 * 1024);
    let r = s.raw(format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n").as_bytes());
    match r {
        Ok(a) => assert_eq!(a.code, 431, "{}", a.raw),
        // hyper may close the connection before the client finished writing.
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::Other
            ),
            "{e}"
        ),
    }
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = s.raw(format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n").as_bytes());
    if let Ok(a) = r {
        assert_eq!(a.code, 431, "{}", a.raw);
    }
    // The server is still there.
    assert_eq!(s.get("/healthz").code, 200);
}

#[test]
fn a_client_that_never_finishes_its_request_head_is_dropped() {
    use std::io::{Read, Write};
    let f = Fixture::new("");
    let s = f.serve(&["--env", "prod", "--interval", "1h"]);
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let t = std::time::Instant::now();
    let mut buf = [0u8; 256];
    let n = c.read(&mut buf).unwrap_or(0);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "dropped after {waited:?}"
    );
    // Closed, perhaps after a 408: never the answer to the unfinished request.
    assert!(!String::from_utf8_lossy(&buf[..n]).contains("200 OK"));
    assert_eq!(s.get("/healthz").code, 200);
}
