//! A two-environment project (`staging`, `prod`) in a temp dir, and
//! `envgate` run on it with a cleared environment, for tests that read the
//! JSON report.

#![allow(dead_code, reason = "each test binary uses the part it needs")]

use assert_cmd::Command;

/// `envgate.toml` (with `manifest_extra` appended), an empty base and prod,
/// `staging.toml` and `checks/probes.toml`.
pub fn project(manifest_extra: &str, staging: &str, checks: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w(
        "envgate.toml",
        &format!("[project]\nname = \"t\"\nenvironments = [\"staging\", \"prod\"]\n{manifest_extra}"),
    );
    w("environments/base.toml", "");
    w("environments/staging.toml", staging);
    w("environments/prod.toml", "");
    w("checks/probes.toml", checks);
    dir
}

/// `envgate COMMAND --env staging --format json`: exit code, the results,
/// and everything printed.
pub fn run_staging(dir: &std::path::Path, command: &str) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let out = Command::cargo_bin("envgate")
        .unwrap()
        .current_dir(dir)
        .env_clear()
        .env("NO_COLOR", "1")
        .args([command, "--env", "staging", "--format", "json"])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {all}"));
    let results = report["environments"][0]["results"].as_array().unwrap().clone();
    (out.status.code(), results, all)
}

/// The result named `name`.
pub fn named<'a>(results: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    results
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result `{name}` in {results:#?}"))
}
