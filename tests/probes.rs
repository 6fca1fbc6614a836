//! Probes and the runner against real local servers: wiremock for HTTP, real
//! TCP listeners, TLS servers with certificates made here (rcgen), a real
//! Nagios plugin (Debian's monitoring-plugins-basic, scripts/setup/probes.sh).
//! No test sleeps to wait for something; every wait is bounded.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use envgate::outcome::Status;
use envgate::probes::{self, Net, ProbeDef};
use envgate::runner::{self, Finished, Job, Options};
use proptest::prelude::*;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn def(kind: &str, f: impl FnOnce(&mut ProbeDef)) -> ProbeDef {
    let mut d = ProbeDef::new(kind);
    f(&mut d);
    d
}

fn job(name: &str, d: &ProbeDef, target: &str, timeout: Duration) -> Job {
    let kind = probes::kind(&d.kind).expect("known kind");
    let spec = probes::Spec {
        target,
        params: &d.params,
    };
    let probe = (kind.build)(&spec).unwrap_or_else(|e| panic!("{name}: {}", e.message));
    Job {
        group: String::new(),
        name: name.into(),
        probe: Some(probe),
        preset: None,
        timeout: Some(timeout),
        retries: d.retries.unwrap_or(0),
        warning: false,
        deps: Vec::new(),
        guard: None,
    }
}

async fn run(jobs: Vec<Job>, opts: Options) -> Vec<Finished> {
    runner::run(jobs, &opts, Net::new()).await
}

async fn one(kind: &str, target: &str, f: impl FnOnce(&mut ProbeDef)) -> Finished {
    let d = def(kind, f);
    run(vec![job("p", &d, target, Duration::from_secs(2))], Options::default())
        .await
        .remove(0)
}

fn assert_status(f: &Finished, s: Status, needle: &str) {
    assert_eq!(f.status, s, "{f:?}");
    assert!(
        f.message.contains(needle),
        "{:?} does not contain {needle:?}",
        f.message
    );
}

/// A listener that accepts every connection and never answers.
async fn silent_listener() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

#[path = "common/envs.rs"]
mod envs;
#[path = "common/ports.rs"]
mod ports;
use ports::ClosedPort;

#[tokio::test]
async fn http_checks_status_lists_and_ranges() {
    let server = MockServer::start().await;
    Mock::given(path("/a"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(path("/b"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let a = format!("{}/a", server.uri());
    let b = format!("{}/b", server.uri());
    assert_status(
        &one("http", &a, |d| d.set("status", json!([200, 204]))).await,
        Status::Pass,
        "204 No Content",
    );
    assert_status(
        &one("http", &b, |d| d.set("status", json!("200-299"))).await,
        Status::Fail,
        "expected 200-299, got 503",
    );
    assert_status(
        &one("http", &b, |d| d.set("status", json!("5xx"))).await,
        Status::Pass,
        "503",
    );
}

#[tokio::test]
async fn http_checks_body_json_and_headers() {
    let server = MockServer::start().await;
    let body = json!({"status": "ok", "version": 3});
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(&body)
                .insert_header("x-app", "orders"),
        )
        .mount(&server)
        .await;
    let u = server.uri();
    let pass = one("http", &u, |d| {
        d.set("body_regex", r#""status":\s*"ok""#.to_string());
        d.set("json", json!({"/status": "ok"}));
        d.set("expect_headers", json!({"x-app": "orders"}));
    })
    .await;
    assert_status(&pass, Status::Pass, "200 OK");
    let f = one("http", &u, |d| {
        d.set(
            "json",
            [("/version".to_string(), json!(4))]
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
    })
    .await;
    assert_status(&f, Status::Fail, "expected /version = 4, got 3");
    assert_eq!(f.class, Some(probes::Class::Body));
    let f = one("http", &u, |d| d.set("body_contains", "degraded".to_string())).await;
    assert_status(&f, Status::Fail, "expected the body to contain \"degraded\"");
    let f = one("http", &u, |d| {
        d.set(
            "expect_headers",
            [("x-app".to_string(), "billing".to_string())]
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
    })
    .await;
    assert_status(
        &f,
        Status::Fail,
        "expected header `x-app: billing`, got `x-app: orders`",
    );
}

#[tokio::test]
async fn http_500_is_reported_without_waiting_for_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let d = def("http", |_| {});
    let start = Instant::now();
    // A minute's timeout, a fraction of it allowed: the answer decides, not
    // the clock, however loaded the machine.
    let r = run(
        vec![job("p", &d, &server.uri(), Duration::from_secs(60))],
        Options::default(),
    )
    .await;
    assert_status(&r[0], Status::Fail, "got 500 Internal Server Error");
    assert_eq!(r[0].attempts, 1);
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
}

#[tokio::test]
async fn http_slower_than_max_latency_fails_as_latency() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(250)))
        .mount(&server)
        .await;
    let f = one("http", &server.uri(), |d| d.set("max_latency", "100ms".to_string())).await;
    assert_status(&f, Status::Fail, "expected an answer within 100ms");
    assert_eq!(f.class, Some(probes::Class::Latency));
}

#[tokio::test]
async fn a_listener_that_never_answers_times_out_at_the_configured_bound() {
    let addr = silent_listener().await;
    let d = def("http", |_| {});
    let t = def("tcp", |d| d.set("expect", "SSH-"));
    let start = Instant::now();
    let r = run(
        vec![
            job("http", &d, &format!("http://{addr}/"), Duration::from_millis(300)),
            job("banner", &t, &addr.to_string(), Duration::from_millis(300)),
        ],
        Options::default(),
    )
    .await;
    let took = start.elapsed();
    assert_status(&r[0], Status::Fail, "within 300ms");
    assert_status(&r[1], Status::Fail, "within 300ms");
    assert_eq!(r[0].class, Some(probes::Class::Timeout));
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(10),
        "took {took:?}"
    );
}

#[tokio::test]
async fn a_closed_port_is_refused_without_waiting_for_the_timeout() {
    let closed = ClosedPort::new();
    let port = closed.port;
    let start = Instant::now();
    let d = def("tcp", |_| {});
    let f = run(
        vec![job("p", &d, &format!("127.0.0.1:{port}"), Duration::from_secs(60))],
        Options::default(),
    )
    .await
    .remove(0);
    assert_status(&f, Status::Fail, &format!("connection refused by 127.0.0.1:{port}"));
    assert_eq!(f.class, Some(probes::Class::Refused));
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_dns_failure() {
    let f = one("dns", "dns://no-such-host.invalid", |_| {}).await;
    assert_status(&f, Status::Fail, "does not exist");
    assert_eq!(f.class, Some(probes::Class::Dns));
    let f = one("http", "http://no-such-host.invalid/health", |_| {}).await;
    assert_status(&f, Status::Fail, "cannot resolve `no-such-host.invalid`");
    let f = one("dns", "localhost", |d| d.set("expect", json!(["127.0.0.1"]))).await;
    assert_status(&f, Status::Pass, "localhost A = 127.0.0.1");
}

#[path = "probes/isolation.rs"]
mod isolation;
#[path = "probes/project.rs"]
mod project;
#[path = "probes/tls_exec.rs"]
mod tls_exec;

#[tokio::test]
async fn passes_after_retry_and_reports_flaky() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&server)
        .await;
    let f = one("http", &server.uri(), |d| d.retries = Some(2)).await;
    assert_status(&f, Status::Flaky, "passed on attempt 2");
    assert_eq!(f.attempts, 2);
}

#[tokio::test]
async fn wait_retries_until_a_late_server_comes_up() {
    let closed = ClosedPort::new();
    let port = closed.port;
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let l = closed.listen();
        let _ = l.accept().await;
    });
    let d = def("tcp", |_| {});
    let opts = Options {
        wait: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    let start = Instant::now();
    let f = run(
        vec![job("late", &d, &format!("127.0.0.1:{port}"), Duration::from_secs(1))],
        opts,
    )
    .await;
    assert_status(&f[0], Status::Pass, "connected");
    assert!(f[0].attempts > 1);
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    late.abort();
}

#[tokio::test]
async fn wait_spends_its_whole_budget_so_a_server_up_just_before_the_deadline_passes() {
    let closed = ClosedPort::new();
    let port = closed.port;
    let start = Instant::now();
    // Up 1.7 s into a 2 s wait: after the backoff's steps (0.2, 0.6, 1.4 s)
    // and before the next one (3 s), which would be past the deadline.
    let late = tokio::spawn(async move {
        tokio::time::sleep_until((start + Duration::from_millis(1700)).into()).await;
        let l = closed.listen();
        let _ = l.accept().await;
    });
    let opts = Options {
        wait: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let d = def("tcp", |_| {});
    let f = run(
        vec![job("late", &d, &format!("127.0.0.1:{port}"), Duration::from_secs(1))],
        opts,
    )
    .await;
    let took = start.elapsed();
    assert_status(&f[0], Status::Pass, "connected");
    assert!(took < Duration::from_millis(2100), "took {took:?}");
    late.abort();
}

#[tokio::test]
async fn wait_gives_up_only_at_its_deadline() {
    let closed = ClosedPort::new();
    let opts = Options {
        wait: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    let d = def("tcp", |_| {});
    let start = Instant::now();
    let f = run(
        vec![job(
            "never",
            &d,
            &format!("127.0.0.1:{}", closed.port),
            Duration::from_secs(1),
        )],
        opts,
    )
    .await;
    let took = start.elapsed();
    assert_status(&f[0], Status::Fail, "refused");
    assert!(f[0].message.contains("attempts in"), "{}", f[0].message);
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(1300),
        "gave up after {took:?} of a 1s wait"
    );
}

#[tokio::test]
async fn dependents_of_a_failed_probe_are_blocked_naming_the_root_cause() {
    let closed = ClosedPort::new();
    let port = closed.port;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let tcp = def("tcp", |_| {});
    let http = def("http", |_| {});
    let mut jobs = vec![
        job("db", &tcp, &format!("127.0.0.1:{port}"), Duration::from_secs(1)),
        job("api", &http, &server.uri(), Duration::from_secs(1)),
        job("checkout", &http, &server.uri(), Duration::from_secs(1)),
    ];
    jobs[1].deps = vec![0];
    jobs[2].deps = vec![1];
    let r = run(jobs, Options::default()).await;
    assert_status(&r[0], Status::Fail, "refused");
    assert_status(&r[1], Status::Blocked, "depends on `db`, which failed");
    assert_status(&r[2], Status::Blocked, "depends on `db`, which failed (refused");
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "blocked probes never ran"
    );
}

#[tokio::test]
async fn fail_fast_cancels_in_flight_probes_and_reports_what_finished() {
    let silent = silent_listener().await;
    let closed = ClosedPort::new();
    let port = closed.port;
    let tcp = def("tcp", |d| d.set("expect", "hello"));
    let opts = Options {
        fail_fast: true,
        ..Default::default()
    };
    let start = Instant::now();
    let r = run(
        vec![
            job("slow", &tcp, &silent.to_string(), Duration::from_secs(60)),
            job(
                "down",
                &def("tcp", |_| {}),
                &format!("127.0.0.1:{port}"),
                Duration::from_secs(60),
            ),
        ],
        opts,
    )
    .await;
    assert_status(&r[1], Status::Fail, "refused");
    assert_status(&r[0], Status::Skipped, "cancelled by --fail-fast after `down` failed");
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
}

proptest! {
    #[test]
    fn shards_partition_the_probes_exactly(names in prop::collection::hash_set("[a-z0-9.-]{1,16}", 0..60), n in 1u32..9) {
        let shards: Vec<envgate::select::Shard> = (1..=n).map(|k| format!("{k}/{n}").parse().unwrap()).collect();
        for name in &names {
            let owners = shards.iter().filter(|s| s.contains(name)).count();
            prop_assert_eq!(owners, 1, "{} is in {} shards", name, owners);
            // Deterministic: asking again gives the same shard.
            prop_assert_eq!(shards.iter().position(|s| s.contains(name)), shards.iter().position(|s| s.contains(name)));
        }
    }
}

/// A GET answered with a redirect is asked again through the HTTP client,
/// which follows it (checking every hop): the server sees the first request
/// twice, under one request id; with `follow_redirects = false`, once.
#[tokio::test]
async fn a_redirected_get_is_asked_again_under_the_same_id_and_followed() {
    let server = MockServer::start().await;
    Mock::given(path("/old"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", "/new"))
        .mount(&server)
        .await;
    Mock::given(path("/new"))
        .respond_with(ResponseTemplate::new(200).set_body_string("moved here"))
        .mount(&server)
        .await;
    let f = one("http", &format!("{}/old", server.uri()), |d| {
        d.set("body_contains", "moved here".to_string());
    })
    .await;
    assert_status(&f, Status::Pass, "200 OK");
    let g = one("http", &format!("{}/old", server.uri()), |d| {
        d.set("follow_redirects", false);
        d.set("status", 301);
    })
    .await;
    assert_status(&g, Status::Pass, "301 Moved Permanently");
    let got = server.received_requests().await.unwrap_or_default();
    let asked: Vec<&str> = got.iter().map(|r| r.url.path()).collect();
    assert_eq!(asked, ["/old", "/old", "/new", "/old"]);
    let ids: Vec<&[u8]> = got
        .iter()
        .map(|r| r.headers.get("x-request-id").map_or(&b""[..], |v| v.as_bytes()))
        .collect();
    assert!(!ids[0].is_empty());
    assert_eq!(ids[0], ids[1], "the request asked again carries the same id");
    assert_eq!(ids[1], ids[2], "the followed hop carries it too");
}

#[tokio::test]
async fn a_post_that_may_be_redirected_is_sent_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/jobs"))
        .respond_with(ResponseTemplate::new(303).insert_header("location", "/jobs/7"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/jobs/7"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let f = one("http", &format!("{}/jobs", server.uri()), |d| {
        d.set("method", "POST".to_string());
        d.set("body", "{}".to_string());
    })
    .await;
    assert_status(&f, Status::Pass, "200 OK");
    let posts = server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    assert_eq!(posts, 1, "the POST was sent {posts} times");
}

#[tokio::test]
async fn a_probe_sends_its_own_host_header_once_and_the_default_headers_otherwise() {
    let server = MockServer::start().await;
    Mock::given(path("/"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let f = one("http", &server.uri(), |d| {
        d.set("headers", json!({"Host": "orders.internal", "X-Team": "payments"}));
    })
    .await;
    assert_status(&f, Status::Pass, "200 OK");
    let plain = one("http", &server.uri(), |_| {}).await;
    assert_status(&plain, Status::Pass, "200 OK");
    let got = server.received_requests().await.unwrap_or_default();
    let hosts: Vec<Vec<String>> = got
        .iter()
        .map(|r| {
            r.headers
                .get_all("host")
                .iter()
                .map(|v| v.to_str().unwrap_or_default().to_string())
                .collect()
        })
        .collect();
    let port = server.address().port();
    assert_eq!(
        hosts,
        [vec!["orders.internal".to_string()], vec![format!("127.0.0.1:{port}")]]
    );
    assert_eq!(
        got[0].headers.get("x-team").map(|v| v.as_bytes()),
        Some(&b"payments"[..])
    );
    let agent = got[1]
        .headers
        .get("user-agent")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    assert_eq!(agent.as_deref(), Some(concat!("envgate/", env!("CARGO_PKG_VERSION"))));
}
