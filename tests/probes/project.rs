//! Probes inside a project: check files, `x-probe`, isolation, load errors,
//! and the ad-hoc `envgate probe` command, through the built binary.

use super::*;

/// A project in a temp dir: manifest, one environment, a check file.
fn project(manifest_extra: &str, env_toml: &str, checks: &str) -> tempfile::TempDir {
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
    w("environments/staging.toml", env_toml);
    w("environments/prod.toml", "");
    w("checks/probes.toml", checks);
    dir
}

fn envgate(dir: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("envgate").unwrap();
    c.current_dir(dir).env_clear().env("NO_COLOR", "1");
    c
}

#[tokio::test]
async fn an_isolation_refused_probe_never_connects() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let dir = project(
        "[isolation.prod]\nhosts = [\"127.0.0.1\"]\n",
        &format!("[api]\nurl = \"{}\"\n", server.uri()),
        "[[probe]]\nname = \"api\"\nkind = \"http\"\ntarget = \"${api.url}\"\n",
    );
    let out = envgate(dir.path())
        .args(["check", "--env", "staging", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &report["environments"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "api")
        .unwrap()
        .clone();
    assert_eq!(r["category"], "isolation");
    assert_eq!(r["status"], "fail");
    assert_eq!(r["key"], "api.url");
    assert_eq!(r["location"]["file"], "environments/staging.toml");
    assert!(
        r["message"].as_str().unwrap().contains("belongs to environment `prod`"),
        "{r}"
    );
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "the refused probe connected"
    );
}

#[test]
fn a_dependency_cycle_is_a_load_error_at_its_line() {
    let checks = "[[probe]]\nname = \"a\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:1\"\ndepends_on = [\"b\"]\n\n\
                  [[probe]]\nname = \"b\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:1\"\ndepends_on = [\"a\"]\n";
    let dir = project("", "", checks);
    let out = envgate(dir.path())
        .args(["check", "--env", "staging"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("depends_on forms a cycle: a → b → a (checks/probes.toml:5:15)"),
        "{err}"
    );
}

#[test]
fn a_parameter_of_another_kind_is_a_load_error_at_its_line() {
    let dir = project(
        "",
        "",
        "[[probe]]\nname = \"a\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:1\"\nstatus = 200\n",
    );
    let out = envgate(dir.path())
        .args(["check", "--env", "staging"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`status` is not a parameter of tcp probes (checks/probes.toml:5:1)"),
        "{err}"
    );
    assert!(err.contains("tcp probes take: send, expect"), "{err}");
}

#[tokio::test]
async fn schema_x_probe_yields_a_probe_and_warn_in_makes_failures_warnings() {
    let closed = ClosedPort::new();
    let server = MockServer::start().await;
    Mock::given(path("/health"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let dir = project(
        "schema = \"schema.json\"\n",
        &format!(
            "[api]\nurl = \"{}\"\n[db]\nurl = \"127.0.0.1:{}\"\n",
            server.uri(),
            closed.port
        ),
        "[[probe]]\nname = \"db\"\nkind = \"tcp\"\ntarget = \"${db.url}\"\nwarn_in = [\"staging\"]\n",
    );
    std::fs::write(
        dir.path().join("schema.json"),
        r#"{"type": "object", "properties": {
             "api": {"type": "object", "properties": {"url": {"type": "string", "x-probe": {"kind": "http", "path": "/health"}}}},
             "db": {"type": "object", "properties": {"url": {"type": "string"}}}}}"#,
    )
    .unwrap();
    let out = envgate(dir.path())
        .args(["check", "--env", "staging", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = report["environments"][0]["results"].as_array().unwrap().clone();
    let api = results.iter().find(|r| r["name"] == "api.url").expect("x-probe result");
    assert_eq!(api["status"], "pass");
    let db = results.iter().find(|r| r["name"] == "db").unwrap();
    assert_eq!(
        (db["status"].as_str(), db["severity"].as_str()),
        (Some("warn"), Some("warning"))
    );
    assert_eq!(db["location"]["line"], 4);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[test]
fn adhoc_probe_waits_for_a_late_server_then_execs_the_command() {
    let closed = ClosedPort::new();
    let port = closed.port;
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let l = closed.open();
        let _ = l.accept();
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("targets"),
        format!("# one a line\ntcp://127.0.0.1:{port}\n"),
    )
    .unwrap();
    let out = envgate(dir.path())
        .args([
            "probe",
            "--targets-file",
            "targets",
            "--wait",
            "10s",
            "--timeout",
            "1s",
            "--",
            "/bin/echo",
            "started",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("✓ pass  tcp://127.0.0.1:{port}")));
    late.join().unwrap();
}

#[test]
fn adhoc_probe_fails_without_running_the_command() {
    let closed = ClosedPort::new();
    let port = closed.port;
    let out = Command::cargo_bin("envgate")
        .unwrap()
        .args([
            "probe",
            &format!("tcp://127.0.0.1:{port}"),
            "--",
            "/bin/echo",
            "started",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("✗ fail"));
}
