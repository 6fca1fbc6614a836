//! `envgate init --name NAME [--minimal]`: a new project named for the user.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn envgate(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .current_dir(dir)
        .env_clear()
        .env("NO_COLOR", "1")
        .envs(vars.iter().copied())
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn init_with_a_name_creates_that_directory_and_says_to_cd_into_it() {
    let tmp = TempDir::new().unwrap();
    let r = envgate(tmp.path(), &["init", "--name", "billing-api"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
    let dir = tmp.path().join("billing-api");
    let manifest = std::fs::read_to_string(dir.join("envgate.toml")).unwrap();
    assert!(manifest.contains("name = \"billing-api\""), "{manifest}");
    assert!(manifest.contains("prefix = \"BILLING__\""), "{manifest}");
    assert!(!manifest.contains("orders"), "{manifest}");
    let v = envgate(&dir, &["validate"], &[]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    // The derived prefix is the one the env source reads.
    let r = envgate(
        &dir,
        &["render", "--env", "local", "--format", "json"],
        &[("BILLING__HTTP__PORT", "9191")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let config: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(config["http"]["port"], 9191);
    assert_eq!(config["service"]["name"], "billing-api");
}

#[test]
fn init_minimal_scaffolds_a_small_project_that_validates() {
    let tmp = TempDir::new().unwrap();
    let r = envgate(tmp.path(), &["init", "--name", "search", "--minimal", "svc"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("next: `cd svc`, then `envgate validate`"),
        "{}",
        r.stdout
    );
    let dir = tmp.path().join("svc");
    assert!(dir.join("schemas/search.schema.json").is_file());
    assert!(!dir.join("checks").exists());
    let v = envgate(&dir, &["validate", "--format", "json"], &[]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    let r = envgate(
        &dir,
        &["render", "--env", "prod", "--format", "json"],
        &[("SEARCH__HTTP__PORT", "7000")],
    );
    let config: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(config["http"]["port"], 7000);
    assert_eq!(config["http"]["request_timeout"], "5s");
}

#[test]
fn init_in_the_current_directory_needs_no_cd() {
    let tmp = TempDir::new().unwrap();
    let r = envgate(tmp.path(), &["init", "--minimal"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("\nnext: `envgate validate`"), "{}", r.stdout);
}

#[test]
fn init_refuses_a_name_that_is_not_one() {
    let tmp = TempDir::new().unwrap();
    let r = envgate(tmp.path(), &["init", "--name", "my app"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--name \"my app\""), "{}", r.stderr);
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
        "nothing written"
    );
}
