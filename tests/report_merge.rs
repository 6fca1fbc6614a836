//! `envgate report merge`: the JSON reports of `--shard K/N` runs combined
//! into one, as a CI matrix's last job does.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

const PROBES: [&str; 6] = ["orders-db", "cache", "queue", "payments", "search", "mail"];

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A project with six tcp probes of one local listener (the kernel accepts
/// connections into the backlog; nobody needs to call accept).
fn project(name: &str, port: u16) -> TempDir {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "envgate.toml",
        &format!("[project]\nname = \"{name}\"\nenvironments = [\"eu\", \"us\"]\n"),
    );
    write(
        dir.path(),
        "environments/base.toml",
        &format!("[upstream]\naddr = \"127.0.0.1:{port}\"\n"),
    );
    write(dir.path(), "environments/eu.toml", "");
    write(dir.path(), "environments/us.toml", "");
    let mut checks = String::new();
    for p in PROBES {
        checks.push_str(&format!(
            "[[probe]]\nname = \"{p}\"\nkind = \"tcp\"\ntarget = \"${{upstream.addr}}\"\ntimeout = \"2s\"\n\n"
        ));
    }
    write(dir.path(), "checks/probes.toml", &checks);
    dir
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn envgate(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .current_dir(dir)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs shard K/N of `dir` into `dir/shard-K.json`.
fn shard(dir: &Path, k: u32, n: u32) {
    let r = envgate(
        dir,
        &[
            "check",
            "--all-envs",
            "--shard",
            &format!("{k}/{n}"),
            "--report",
            &format!("json=shard-{k}.json"),
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

fn statuses(report: &serde_json::Value, env: &str) -> Vec<(String, String)> {
    let env = report["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == env)
        .unwrap();
    let mut v: Vec<(String, String)> = env["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn merging_every_shard_gives_each_probe_once_from_the_shard_that_ran_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = project("orders-api", listener.local_addr().unwrap().port());
    for k in 1..=3 {
        shard(dir.path(), k, 3);
    }
    // Each shard skipped the probes of the others.
    let one = json(&std::fs::read_to_string(dir.path().join("shard-1.json")).unwrap());
    assert_eq!(one["shard"], serde_json::json!({"index": 1, "count": 3}));
    assert_eq!(one["project"], "orders-api");
    assert!(statuses(&one, "eu").iter().any(|(_, s)| s == "skipped"));

    let r = envgate(
        dir.path(),
        &[
            "report",
            "merge",
            "shard-1.json",
            "shard-2.json",
            "shard-3.json",
            "--format",
            "json",
            "--report",
            "junit=merged.xml",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let merged = json(&r.stdout);
    assert!(merged.get("shard").is_none(), "the merged report covers every shard");
    for env in ["eu", "us"] {
        let got = statuses(&merged, env);
        let probes: Vec<_> = got.iter().filter(|(id, _)| id.starts_with("probe/")).collect();
        assert_eq!(probes.len(), PROBES.len(), "{got:?}");
        assert!(probes.iter().all(|(_, s)| s == "pass"), "{got:?}");
    }
    let env = &merged["environments"][0];
    assert_eq!(
        env["summary"]["pass"].as_u64().unwrap() as usize,
        env["results"].as_array().unwrap().len()
    );
    let junit = std::fs::read_to_string(dir.path().join("merged.xml")).unwrap();
    assert!(
        junit.contains("probe/orders-db") || junit.contains("orders-db"),
        "{junit}"
    );
    // Human output by default, with the verdict.
    let human = envgate(
        dir.path(),
        &["report", "merge", "shard-2.json", "shard-1.json", "shard-3.json"],
    );
    assert_eq!(human.code, 0);
    assert!(human.stdout.contains("2 environments ready"), "{}", human.stdout);
}

#[test]
fn a_missing_shard_is_refused_naming_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = project("orders-api", listener.local_addr().unwrap().port());
    for k in [1, 3] {
        shard(dir.path(), k, 4);
    }
    let r = envgate(dir.path(), &["report", "merge", "shard-1.json", "shard-3.json"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("shards 2/4, 4/4 are missing"), "{}", r.stderr);
}

#[test]
fn a_shard_given_twice_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = project("orders-api", listener.local_addr().unwrap().port());
    for k in 1..=2 {
        shard(dir.path(), k, 2);
    }
    std::fs::copy(dir.path().join("shard-2.json"), dir.path().join("again.json")).unwrap();
    let r = envgate(
        dir.path(),
        &["report", "merge", "shard-1.json", "shard-2.json", "again.json"],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("shard 2/2 is given twice: shard-2.json and again.json"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_report_claiming_an_impossible_shard_is_exit_2_not_a_crash() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = project("orders-api", listener.local_addr().unwrap().port());
    shard(dir.path(), 1, 1);
    let mut report = json(&std::fs::read_to_string(dir.path().join("shard-1.json")).unwrap());
    report["shard"] = serde_json::json!({"index": 1, "count": 0});
    std::fs::write(dir.path().join("forged.json"), report.to_string()).unwrap();
    let r = envgate(dir.path(), &["report", "merge", "forged.json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("forged.json says it is shard 1/0"), "{}", r.stderr);
}

#[test]
fn reports_of_different_projects_or_versions_are_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let a = project("orders-api", port);
    let b = project("billing", port);
    shard(a.path(), 1, 2);
    shard(b.path(), 2, 2);
    std::fs::copy(b.path().join("shard-2.json"), a.path().join("billing-2.json")).unwrap();
    let r = envgate(a.path(), &["report", "merge", "shard-1.json", "billing-2.json"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("billing-2.json is a report of project `billing` but shard-1.json of project `orders-api`"),
        "{}",
        r.stderr
    );

    shard(a.path(), 2, 2);
    let text = std::fs::read_to_string(a.path().join("shard-2.json")).unwrap();
    let older = text.replace(
        &format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION")),
        "\"version\": \"0.0.9\"",
    );
    assert_ne!(older, text);
    std::fs::write(a.path().join("older-2.json"), older).unwrap();
    let r = envgate(a.path(), &["report", "merge", "shard-1.json", "older-2.json"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(&format!(
            "older-2.json was written by envgate 0.0.9 but shard-1.json by envgate {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn reports_of_different_environments_merge_and_one_environment_twice_does_not() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = project("orders-api", listener.local_addr().unwrap().port());
    for env in ["eu", "us"] {
        let r = envgate(
            dir.path(),
            &["check", "--env", env, "--report", &format!("json={env}.json")],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let r = envgate(
        dir.path(),
        &["report", "merge", "eu.json", "us.json", "--format", "json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let names: Vec<_> = json(&r.stdout)["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["eu", "us"]);
    let r = envgate(dir.path(), &["report", "merge", "eu.json", "eu.json"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("environment `eu` is in both eu.json and eu.json"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_file_that_is_not_a_report_is_exit_2_with_its_line() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "bad.json", "{\n  \"version\": 1,\n  oops\n}\n");
    let r = envgate(dir.path(), &["report", "merge", "bad.json"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.json:3:"), "{}", r.stderr);
    let r = envgate(dir.path(), &["report", "merge", "nothere.json"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read nothere.json"), "{}", r.stderr);
}

#[test]
fn a_failing_probe_in_one_shard_fails_the_merged_report() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = project("orders-api", port);
    drop(listener);
    for k in 1..=2 {
        let r = envgate(
            dir.path(),
            &[
                "check",
                "--env",
                "eu",
                "--shard",
                &format!("{k}/2"),
                "--report",
                &format!("json=shard-{k}.json"),
            ],
        );
        assert_eq!(r.code, 1, "{}", r.stdout);
    }
    let r = envgate(
        dir.path(),
        &["report", "merge", "shard-1.json", "shard-2.json", "--format", "json"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let merged = json(&r.stdout);
    let failed = statuses(&merged, "eu").into_iter().filter(|(_, s)| s == "fail").count();
    assert_eq!(failed, PROBES.len());
}
