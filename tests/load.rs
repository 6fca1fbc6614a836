//! `[probe.load]` and `envgate probe --load` through the built binary,
//! against real servers with known behaviour: a wiremock server that answers
//! in a fixed 50 ms, one that fails every 20th request, and the shared
//! PostgreSQL, MariaDB and Redis (each test with its own database or key).

use std::io::Write;
use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Latencies are measured here: the tests of this file take turns, so one
/// test's load does not slow another's server.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A project in a temp dir: two environments, one check file.
fn project(manifest_extra: &str, checks: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::File::create(p).unwrap().write_all(text.as_bytes()).unwrap();
    };
    w(
        "envgate.toml",
        &format!("[project]\nname = \"t\"\nenvironments = [\"staging\", \"prod\"]\n{manifest_extra}"),
    );
    w("environments/base.toml", "");
    w("environments/staging.toml", "");
    w("environments/prod.toml", "");
    w("checks/probes.toml", checks);
    dir
}

fn envgate(dir: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("envgate").unwrap();
    c.current_dir(dir).env_clear().env("NO_COLOR", "1");
    c
}

/// `check --env ENV --format json`: the exit code and the named probe's result.
fn check(dir: &std::path::Path, env: &str, extra: &[&str], probe: &str) -> (i32, Value) {
    let out = envgate(dir)
        .args(["check", "--env", env, "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let r = report["environments"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == probe)
        .unwrap_or_else(|| panic!("no result for {probe}: {report}"))
        .clone();
    (out.status.code().unwrap(), r)
}

fn http_probe(url: &str, load: &str) -> String {
    format!(
        "[[probe]]\nname = \"api\"\nkind = \"http\"\ntarget = \"{url}\"\nload_envs = [\"staging\"]\n\n[probe.load]\n{load}\n"
    )
}

async fn fixed_delay_server(ms: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(ms)))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn percentiles_match_a_server_that_answers_in_50ms_and_a_40ms_p95_budget_fails_naming_it() {
    let _turn = SERIAL.lock().await;
    let server = fixed_delay_server(50).await;
    let dir = project(
        "",
        &http_probe(
            &server.uri(),
            "requests = 60\nconcurrency = 2\nwarmup = 4\np95 = \"40ms\"\nmax_error_rate = \"1%\"",
        ),
    );
    // On a shared machine every wake-up can be late: a thread that sleeps
    // 50 ms while the load runs measures how late, and that lateness (its
    // median) is allowed on top of "a few ms".
    let late = std::thread::spawn(|| {
        let mut over: Vec<f64> = (0..30)
            .map(|_| {
                let t = std::time::Instant::now();
                std::thread::sleep(Duration::from_millis(50));
                t.elapsed().as_secs_f64() * 1000.0 - 50.0
            })
            .collect();
        over.sort_by(f64::total_cmp);
        over[over.len() / 2]
    });
    let (code, r) = check(dir.path(), "staging", &[], "api");
    let late = late.join().unwrap();
    assert_eq!(code, 1, "{r}");
    let load = &r["load"];
    let p50 = load["p50_ms"].as_f64().unwrap();
    assert!(
        // 10%: a debug build behind wiremock adds 3-5 ms of its own.
        (49.5..=60.0 + late).contains(&p50),
        "p50 {p50} is not within a few ms of 50 (wake-ups {late:.1} ms late): {load}"
    );
    assert_eq!(load["count"], 60);
    assert_eq!(load["errors"], 0);
    let msg = r["message"].as_str().unwrap();
    let p95 = load["p95_ms"].as_f64().unwrap();
    assert!(
        msg.starts_with(&format!("latency: p95 {p95:.1}ms is over its budget of 40ms by ")),
        "{msg}"
    );
    assert!(msg.contains(&format!("p50 {p50:.1}ms")), "{msg}");
    let budgets = load["budgets"].as_array().unwrap();
    assert_eq!(budgets[0]["name"], "p95");
    assert_eq!(budgets[0]["held"], false);
    assert_eq!(budgets[1]["name"], "max_error_rate");
    assert_eq!(budgets[1]["held"], true);
    // The probe once, then the warmup and the measured requests.
    assert_eq!(server.received_requests().await.unwrap().len(), 1 + 4 + 60);
}

#[tokio::test]
async fn budgets_that_hold_pass_and_the_human_output_prints_the_percentiles() {
    let _turn = SERIAL.lock().await;
    let server = fixed_delay_server(5).await;
    let dir = project(
        "",
        &http_probe(
            &server.uri(),
            "requests = 100\nconcurrency = 10\np99 = \"2s\"\nmin_throughput = \"10/s\"",
        ),
    );
    let out = envgate(dir.path())
        .args(["check", "--env", "staging"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("load [staging] api: 100 requests, 0 errors, p50 "),
        "{text}"
    );
    assert!(text.contains("budgets: p99 "), "{text}");
    assert!(text.contains("≤ 2s ✓, throughput "), "{text}");
}

/// Every 20th request (counting from 0: the 20th, 40th, ...) answers 500.
struct EveryTwentieth(AtomicUsize);

impl Respond for EveryTwentieth {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        if self.0.fetch_add(1, Ordering::SeqCst) % 20 == 19 {
            ResponseTemplate::new(500)
        } else {
            ResponseTemplate::new(200)
        }
    }
}

#[tokio::test]
async fn a_server_failing_5_percent_breaks_a_1_percent_error_budget_and_names_the_failed_request() {
    let _turn = SERIAL.lock().await;
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(EveryTwentieth(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    let dir = project(
        "",
        &http_probe(
            &server.uri(),
            "requests = 200\nconcurrency = 1\nmax_error_rate = \"1%\"",
        ),
    );
    let (code, r) = check(dir.path(), "staging", &[], "api");
    assert_eq!(code, 1, "{r}");
    let load = &r["load"];
    // The probe's own request is the first of 201: 10 of the 200 measured fail.
    assert_eq!(load["count"], 200, "{load}");
    assert_eq!(load["errors"], 10, "{load}");
    assert_eq!(load["errors_by_class"]["status"], 10, "{load}");
    let msg = r["message"].as_str().unwrap();
    assert!(
        msg.starts_with("status: error rate 5.0% is over its budget of 1%"),
        "{msg}"
    );
    assert!(msg.contains("first error: status: expected 200-299, got 500"), "{msg}");
    // The failed request's id is in the report, and the server saw that
    // request answer 500: the 20th it received.
    let id = load["failed_request_id"].as_str().unwrap();
    let seen = server.received_requests().await.unwrap();
    let at = seen
        .iter()
        .position(|q| q.headers.get("x-request-id").and_then(|v| v.to_str().ok()) == Some(id))
        .unwrap_or_else(|| panic!("no request carried {id}"));
    assert_eq!(at, 19, "{id}");
}

#[tokio::test]
async fn every_request_carries_a_unique_request_id_with_the_run_and_probe() {
    let _turn = SERIAL.lock().await;
    let server = fixed_delay_server(0).await;
    let dir = project("", &http_probe(&server.uri(), "requests = 30\nconcurrency = 3"));
    let out = envgate(dir.path())
        .env("ENVGATE_RUN_ID", "ci-42")
        .args(["check", "--env", "staging"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let mut ids: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|q| q.headers["x-request-id"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 31);
    assert!(ids.iter().all(|i| i.starts_with("envgate-ci-42-api-")), "{ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 31, "request ids repeat");
}

#[tokio::test]
async fn the_request_id_header_can_be_renamed_or_turned_off() {
    let _turn = SERIAL.lock().await;
    let server = fixed_delay_server(0).await;
    let url = server.uri();
    let checks = format!(
        "[[probe]]\nname = \"renamed\"\nkind = \"http\"\ntarget = \"{url}/a\"\nrequest_id = \"X-Correlation-Id\"\n\n\
         [[probe]]\nname = \"off\"\nkind = \"http\"\ntarget = \"{url}/b\"\nrequest_id = false\n"
    );
    let dir = project("", &checks);
    let out = envgate(dir.path())
        .args(["check", "--env", "staging"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    for q in server.received_requests().await.unwrap() {
        match q.url.path() {
            "/a" => {
                assert!(q.headers.get("x-request-id").is_none());
                let v = q.headers["x-correlation-id"].to_str().unwrap();
                assert!(v.starts_with("envgate-") && v.ends_with("-renamed-1"), "{v}");
            }
            _ => {
                assert!(q.headers.get("x-request-id").is_none());
                assert!(q.headers.get("x-correlation-id").is_none());
            }
        }
    }
}

#[tokio::test]
async fn a_failed_single_probe_reports_its_request_id() {
    let _turn = SERIAL.lock().await;
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let dir = project(
        "",
        &format!(
            "[[probe]]\nname = \"api\"\nkind = \"http\"\ntarget = \"{}\"\n",
            server.uri()
        ),
    );
    let (code, r) = check(dir.path(), "staging", &[], "api");
    assert_eq!(code, 1);
    let id = r["request_id"].as_str().unwrap();
    let seen = server.received_requests().await.unwrap();
    assert_eq!(seen[0].headers["x-request-id"].to_str().unwrap(), id);
    let out = envgate(dir.path())
        .env("ENVGATE_RUN_ID", "ci-7")
        .args(["check", "--env", "staging"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("request id: envgate-ci-7-api-1"), "{text}");
}

#[tokio::test]
async fn no_load_and_environments_outside_load_envs_send_the_probe_once() {
    let _turn = SERIAL.lock().await;
    let server = fixed_delay_server(0).await;
    let dir = project("", &http_probe(&server.uri(), "requests = 50\nconcurrency = 5"));
    let (code, r) = check(dir.path(), "staging", &["--no-load"], "api");
    assert_eq!(code, 0, "{r}");
    assert!(r.get("load").is_none(), "{r}");
    let (code, r) = check(dir.path(), "prod", &[], "api");
    assert_eq!(code, 0, "{r}");
    assert!(r.get("load").is_none(), "{r}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    // validate never probes, so never loads.
    let out = envgate(dir.path()).args(["validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_load_against_another_environments_host_is_refused_and_sends_nothing() {
    let _turn = SERIAL.lock().await;
    let server = fixed_delay_server(0).await;
    let dir = project(
        "[isolation.prod]\nhosts = [\"127.0.0.1\"]\n",
        &http_probe(&server.uri(), "requests = 50\nconcurrency = 5"),
    );
    let (code, r) = check(dir.path(), "staging", &[], "api");
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["category"], "isolation", "{r}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_open_model_load_charges_a_stalled_server_for_its_queue() {
    let _turn = SERIAL.lock().await;
    // One connection, requests due every 25 ms, each answered in 50 ms: a
    // closed-model tool would report 50 ms; counted from when each was due,
    // the queue shows.
    let server = fixed_delay_server(50).await;
    let dir = project(
        "",
        &http_probe(&server.uri(), "requests = 20\nconcurrency = 1\nrate = \"40/s\""),
    );
    let (_, r) = check(dir.path(), "staging", &[], "api");
    let load = &r["load"];
    assert_eq!(load["rate"], 40.0, "{load}");
    let p50 = load["p50_ms"].as_f64().unwrap();
    let max = load["max_ms"].as_f64().unwrap();
    assert!(p50 > 200.0, "p50 {p50}: the queue is not counted: {load}");
    assert!(max > 450.0, "max {max}: the queue is not counted: {load}");
}

#[test]
fn a_load_on_a_kind_without_load_or_without_load_envs_is_exit_2_at_its_line() {
    let _turn = SERIAL.blocking_lock();
    let dir = project(
        "",
        "[[probe]]\nname = \"d\"\nkind = \"dns\"\ntarget = \"localhost\"\nload_envs = [\"staging\"]\n\n[probe.load]\nrequests = 5\n",
    );
    let out = envgate(dir.path())
        .args(["check", "--env", "staging"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("dns probes do not support `load`"), "{err}");
    assert!(
        err.contains("kinds that run a load: http, tcp, postgres, mysql, redis, s3, gcs, azblob"),
        "{err}"
    );

    let dir = project(
        "",
        "[[probe]]\nname = \"t\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:1\"\n\n[probe.load]\nrequests = 5\np95 = 40\n",
    );
    let out = envgate(dir.path()).args(["validate"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`load.p95`"), "{err}");
    assert!(err.contains("checks/probes.toml:"), "{err}");

    let dir = project(
        "",
        "[[probe]]\nname = \"t\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:1\"\n\n[probe.load]\nrequests = 5\n",
    );
    let out = envgate(dir.path()).args(["validate"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("has a `load` but no `load_envs`"), "{err}");
}

#[test]
fn a_load_on_an_object_store_with_nothing_to_request_is_exit_2_at_its_line() {
    let _turn = SERIAL.blocking_lock();
    let dir = project(
        "",
        "[[probe]]\nname = \"files\"\nkind = \"s3\"\ntarget = \"s3://orders/app-\"\nendpoint = \"http://127.0.0.1:1\"\nload_envs = [\"staging\"]\n\n[probe.load]\nrequests = 5\n",
    );
    let out = envgate(dir.path()).args(["validate"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // The message is wrapped to the terminal's width: compare its words.
    let flat = err.replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("probe `files`: s3 probes need something for a load to request: `load_object =")
            && flat.contains("or `write = true`"),
        "{err}"
    );
    assert!(err.contains("checks/probes.toml:"), "{err}");

    // Ad hoc, an object store has no way to say what to request.
    let out = envgate(dir.path())
        .args([
            "probe",
            "--load",
            "5x1",
            "s3://orders?endpoint=http%3A%2F%2F127.0.0.1%3A1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let flat = err.replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("need something for a load to request"), "{err}");

    // A canary larger than envgate reads is named at its parameter.
    let dir = project(
        "",
        "[[probe]]\nname = \"files\"\nkind = \"s3\"\ntarget = \"s3://orders/app-\"\nendpoint = \"http://127.0.0.1:1\"\nwrite = true\nload_object_size = \"1MiB\"\nload_envs = [\"staging\"]\n\n[probe.load]\nrequests = 5\n",
    );
    let out = envgate(dir.path())
        .args(["check", "--env", "staging"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let flat = err.replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("load_object_size") && flat.contains("`1MiB` is not between 1B and 256KiB"),
        "{err}"
    );
}

#[tokio::test]
async fn adhoc_load_prints_the_percentiles() {
    let _turn = SERIAL.lock().await;
    let server = fixed_delay_server(10).await;
    let out = Command::cargo_bin("envgate")
        .unwrap()
        .env("NO_COLOR", "1")
        .args(["probe", "--load", "60x6", &server.uri()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("load: 60 requests, 6 at once, in "), "{text}");
    for p in ["p50 ", "p90 ", "p95 ", "p99 ", "max "] {
        assert!(text.contains(p), "{text}");
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 61);
    let out = Command::cargo_bin("envgate")
        .unwrap()
        .args(["probe", "--load", "60", &server.uri()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REQUESTSxCONCURRENCY"));
}

/// A unique name for this test's database or keys.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("eg_load_{prefix}_{}_{}", std::process::id(), nanos % 1_000_000)
}

fn run(cmd: &mut StdCommand) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs its closure on drop: removes what a test created, even on failure.
struct Cleanup(Box<dyn Fn()>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        (self.0)();
    }
}

fn psql(sql: &str) {
    run(StdCommand::new("psql").args([
        "-X",
        "-q",
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        "postgres",
        "-c",
        sql,
    ]));
}

#[test]
fn postgres_load_runs_the_probes_query_and_holds_its_budget() {
    let _turn = SERIAL.blocking_lock();
    let db = unique("pg");
    psql(&format!("CREATE DATABASE {db}"));
    let _drop = Cleanup(Box::new({
        let db = db.clone();
        move || psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
    }));
    let dir = project(
        "",
        &format!(
            "[[probe]]\nname = \"db\"\nkind = \"postgres\"\ntarget = \"postgres://postgres@127.0.0.1:5432/{db}?sslmode=disable\"\n\
             query = \"SELECT count(*) FROM pg_class\"\nload_envs = [\"staging\"]\n\n\
             [probe.load]\nrequests = 300\nconcurrency = 4\np99 = \"2s\"\nmax_error_rate = \"0%\"\n"
        ),
    );
    let (code, r) = check(dir.path(), "staging", &[], "db");
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["load"]["count"], 300, "{r}");
    assert_eq!(r["load"]["errors"], 0, "{r}");
    assert!(r["load"]["p50_ms"].as_f64().unwrap() > 0.0, "{r}");
}

fn mariadb(sql: &str) {
    run(StdCommand::new("mariadb").args(["-h", "127.0.0.1", "-uroot", "-e", sql]));
}

#[test]
fn mariadb_load_runs_the_probes_query_over_prepared_statements() {
    let _turn = SERIAL.blocking_lock();
    let db = unique("my");
    mariadb(&format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.items (id INT); INSERT INTO {db}.items VALUES (1), (2), (3)"
    ));
    let _drop = Cleanup(Box::new({
        let db = db.clone();
        move || mariadb(&format!("DROP DATABASE IF EXISTS {db}"))
    }));
    let dir = project(
        "",
        &format!(
            "[[probe]]\nname = \"db\"\nkind = \"mysql\"\ntarget = \"mysql://root@127.0.0.1:3306/{db}\"\n\
             query = \"SELECT count(*) FROM items\"\nexpect = 3\nload_envs = [\"staging\"]\n\n\
             [probe.load]\nduration = \"300ms\"\nconcurrency = 3\nmax_error_rate = \"0%\"\n"
        ),
    );
    let (code, r) = check(dir.path(), "staging", &[], "db");
    assert_eq!(code, 0, "{r}");
    assert!(r["load"]["count"].as_u64().unwrap() > 10, "{r}");
    assert_eq!(r["load"]["errors"], 0, "{r}");
}

fn redis_cli(args: &[&str]) {
    run(StdCommand::new("redis-cli").args(args));
}

#[test]
fn redis_load_pings_or_gets_a_key() {
    let _turn = SERIAL.blocking_lock();
    let key = unique("key");
    redis_cli(&["SET", &key, "ready"]);
    let _drop = Cleanup(Box::new({
        let key = key.clone();
        move || redis_cli(&["DEL", &key])
    }));
    let dir = project(
        "",
        &format!(
            "[[probe]]\nname = \"ping\"\nkind = \"redis\"\ntarget = \"redis://127.0.0.1:6379/0\"\nload_envs = [\"staging\"]\n\n\
             [probe.load]\nrequests = 500\nconcurrency = 5\np99 = \"1s\"\n\n\
             [[probe]]\nname = \"get\"\nkind = \"redis\"\ntarget = \"redis://127.0.0.1:6379/0\"\nload_key = \"{key}\"\nload_envs = [\"staging\"]\n\n\
             [probe.load]\nrequests = 500\nconcurrency = 5\nmax_error_rate = \"0%\"\n"
        ),
    );
    for name in ["ping", "get"] {
        let (code, r) = check(dir.path(), "staging", &[], name);
        assert_eq!(code, 0, "{r}");
        assert_eq!(r["load"]["count"], 500, "{r}");
        assert_eq!(r["load"]["errors"], 0, "{r}");
    }
}

#[test]
fn tcp_load_measures_connect_time() {
    let _turn = SERIAL.blocking_lock();
    let dir = project(
        "",
        "[[probe]]\nname = \"port\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:6379\"\nload_envs = [\"staging\"]\n\n\
         [probe.load]\nrequests = 200\nconcurrency = 4\np99 = \"1s\"\n",
    );
    let (code, r) = check(dir.path(), "staging", &[], "port");
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["load"]["count"], 200, "{r}");
}

/// A server on 127.0.0.1 that answers each request `ok` over raw HTTP/1.1
/// with `extra` headers, and then closes the connection when `close`, or
/// after `idle` without a next request. Returns its URL and the count of
/// connections it accepted.
fn raw_server(extra: &'static str, close: bool, idle: Duration) -> (String, std::sync::Arc<AtomicUsize>) {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let conns = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = conns.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(idle));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    // One request: its head, up to the blank line.
                    let mut line = String::new();
                    let mut got = false;
                    while reader.read_line(&mut line).unwrap_or(0) > 0 {
                        got = true;
                        if line == "\r\n" {
                            break;
                        }
                        line.clear();
                    }
                    if !got {
                        return;
                    }
                    let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n{extra}\r\nok");
                    if out.write_all(answer.as_bytes()).is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    (url, conns)
}

fn adhoc_load(url: &str, shape: &str) -> Value {
    let out = Command::cargo_bin("envgate")
        .unwrap()
        .args(["probe", "--format", "json", "--load", shape, url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&text).unwrap();
    report["environments"][0]["results"][0]["load"].clone()
}

#[test]
fn a_server_that_closes_every_connection_costs_a_load_no_errors() {
    let _turn = SERIAL.blocking_lock();
    let (url, conns) = raw_server("connection: close\r\n", true, Duration::from_secs(5));
    let load = adhoc_load(&url, "40x4");
    assert_eq!(load["count"], 40, "{load}");
    assert_eq!(load["errors"], 0, "{load}");
    // Each request on a connection of its own (and the probe's own one).
    assert_eq!(conns.load(Ordering::SeqCst), 41);
}

#[test]
fn a_load_reuses_its_connections_and_redials_one_the_server_let_go_idle() {
    let _turn = SERIAL.blocking_lock();
    // Keep-alive: four workers, four connections for 200 requests.
    let (url, conns) = raw_server("", false, Duration::from_secs(5));
    let load = adhoc_load(&url, "200x4");
    assert_eq!(load["errors"], 0, "{load}");
    assert_eq!(conns.load(Ordering::SeqCst), 1 + 4, "{load}");
    // A server that drops a connection idle for 20 ms, and an open-model
    // load slower than that: every request finds its connection closed and
    // dials again rather than failing.
    let (url, conns) = raw_server("", false, Duration::from_millis(20));
    let dir = project(
        "",
        &format!(
            "[[probe]]\nname = \"idle\"\nkind = \"http\"\ntarget = \"{url}\"\nload_envs = [\"staging\"]\n\
             [probe.load]\nrequests = 12\nconcurrency = 1\nrate = \"20/s\"\n"
        ),
    );
    let (code, result) = check(dir.path(), "staging", &[], "idle");
    assert_eq!(code, 0, "{result}");
    assert_eq!(result["load"]["count"], 12, "{result}");
    assert_eq!(result["load"]["errors"], 0, "{result}");
    // The server did let them go: nearly every request dialed anew.
    assert!(
        conns.load(Ordering::SeqCst) >= 12,
        "{} connections",
        conns.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_follows_a_redirect_as_the_probe_does() {
    let _turn = SERIAL.lock().await;
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/old"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/new"))
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::path("/new"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let url = format!("{}/old", server.uri());
    let load = tokio::task::spawn_blocking(move || adhoc_load(&url, "30x3"))
        .await
        .unwrap();
    assert_eq!(load["errors"], 0, "{load}");
    let at_new = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/new")
        .count();
    // The probe's request, and each of the load's, ended at the new place.
    assert_eq!(at_new, 31, "{load}");
}
