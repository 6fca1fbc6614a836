//! `envgate probe` as a container entrypoint uses it: `host:port` targets,
//! a line per attempt while waiting, HTTP expectations on the command line.

use std::net::TcpListener;
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn envgate(args: Vec<String>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .current_dir(dir.path())
        .env_clear()
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_host_and_port_without_a_scheme_is_probed_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let r = envgate(args(&["probe", &target, "localhost:1"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&format!("✓ pass  {target}  ")), "{}", r.stdout);
    assert!(r.stdout.contains("✗ fail  localhost:1  refused"), "{}", r.stdout);
}

#[test]
fn waiting_prints_a_line_per_failed_attempt() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let target = format!("127.0.0.1:{port}");
    let r = envgate(args(&["probe", &target, "--wait", "800ms"]));
    assert_eq!(r.code, 1);
    let retries: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("retry ")).collect();
    assert!(retries.len() >= 2, "{}", r.stderr);
    assert!(
        retries[0].starts_with(&format!("retry   {target}: attempt 1 failed: refused")),
        "{}",
        r.stderr
    );
    assert!(retries[1].contains("attempt 2 failed"), "{}", r.stderr);
}

#[test]
fn help_lists_every_kind_it_understands() {
    let r = envgate(args(&["probe", "--help"]));
    assert_eq!(r.code, 0);
    let help = r.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for scheme in [
        "http://",
        "https://",
        "HOST:PORT",
        "tcp://",
        "tls://",
        "dns://",
        "postgres://",
        "mysql://",
        "redis://",
        "amqp://",
        "nats://",
        "mqtt://",
        "s3://",
        "--expect-status",
        "--expect-body",
        "--expect-json",
    ] {
        assert!(help.contains(scheme), "{scheme} missing from:\n{}", r.stdout);
    }
}

#[tokio::test]
async fn http_expectations_on_the_command_line_pass_and_fail_with_what_was_seen() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"status": "ok", "ready": true, "workers": 4}"#))
        .mount(&server)
        .await;
    let url = format!("{}/health", server.uri());
    let run = |a: Vec<String>| tokio::task::spawn_blocking(move || envgate(a));

    let ok = run(args(&[
        "probe",
        &url,
        "--expect-status",
        "200",
        "--expect-body",
        "\"ok\"",
        "--expect-json",
        "/status=ok",
        "--expect-json",
        "/ready=true",
        "--expect-json",
        "/workers=4",
    ]))
    .await
    .unwrap();
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);

    let wrong_status = run(args(&["probe", &url, "--expect-status", "204"])).await.unwrap();
    assert_eq!(wrong_status.code, 1);
    assert!(wrong_status.stdout.contains("got 200"), "{}", wrong_status.stdout);

    let wrong_json = run(args(&["probe", &url, "--expect-json", "/status=degraded"]))
        .await
        .unwrap();
    assert_eq!(wrong_json.code, 1);
    assert!(wrong_json.stdout.contains("/status"), "{}", wrong_json.stdout);

    let bad = run(args(&["probe", &url, "--expect-json", "status=ok"])).await.unwrap();
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("expected /JSON/POINTER=VALUE"), "{}", bad.stderr);

    let not_http = run(args(&["probe", "127.0.0.1:1", "--expect-status", "200"]))
        .await
        .unwrap();
    assert_eq!(not_http.code, 2);
    assert!(
        not_http.stderr.contains("apply to http:// and https:// targets"),
        "{}",
        not_http.stderr
    );
}

/// `AnonHugePages` of a running process, in KiB.
fn huge_pages_kib(pid: u32) -> u64 {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("AnonHugePages:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_running_probe_holds_no_transparent_huge_pages() {
    // The allocator's first arena is reserved before `main`; were it to ask
    // for huge pages, the kernel would back its first bytes with a 2 MiB page.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .env_clear()
        .args(["probe", &url, "--timeout", "30s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Accepted and never answered: the probe is in flight, its runtime up.
    let (_conn, _) = listener.accept().unwrap();
    let huge = huge_pages_kib(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(huge, 0, "{huge} KiB of transparent huge pages");
}

#[test]
fn the_allocator_commits_as_it_goes_and_asks_for_no_huge_pages_from_the_start() {
    // mimalloc lists its options by name when it starts (MIMALLOC_VERBOSE):
    // envgate's settings are already in place then, under the names meant.
    let out = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .env_clear()
        .env("MIMALLOC_VERBOSE", "1")
        .arg("--version")
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stderr);
    for option in ["arena_eager_commit", "allow_thp"] {
        let line = format!("option '{option}': 0");
        assert!(listing.lines().any(|l| l.trim() == line), "no `{line}` in:\n{listing}");
    }
}
