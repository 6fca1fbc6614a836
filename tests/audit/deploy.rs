//! The deploy recipes, checked by the tools that read them: the CronJob
//! against the Kubernetes API schemas (kubernetes-validate), the systemd
//! service and timer by `systemd-analyze verify`.

use std::path::Path;
use std::process::Command;

const SETUP: &str = "run `sudo bash scripts/setup/audit.sh`";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_cronjob_example_is_a_valid_kubernetes_cronjob_that_never_overlaps_or_retries() {
    let path = repo().join("examples/kubernetes/cronjob.yaml");
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "-k", "1.30.0"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("kubernetes-validate ({e}): {SETUP}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("INFO") && !text.contains("ERROR"), "{text}");
    let y = std::fs::read_to_string(&path).unwrap();
    for must in [
        "concurrencyPolicy: Forbid",
        "backoffLimit: 0",
        "startingDeadlineSeconds:",
        "secretKeyRef:",
        "restartPolicy: Never",
    ] {
        assert!(y.contains(must), "cronjob.yaml lacks {must}");
    }
}

#[test]
fn the_systemd_service_and_timer_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    // `verify` checks that ExecStart's program exists: point it at this build.
    let bin = env!("CARGO_BIN_EXE_envgate");
    for name in ["envgate-audit.service", "envgate-audit.timer"] {
        let text = std::fs::read_to_string(repo().join("examples/systemd").join(name))
            .unwrap()
            .replace("/usr/local/bin/envgate", bin)
            .replace(
                "EnvironmentFile=/etc/envgate/audit.env",
                "EnvironmentFile=-/etc/envgate/audit.env",
            );
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.path().join("envgate-audit.service"))
        .arg(dir.path().join("envgate-audit.timer"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze ({e}): {SETUP}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Vec<&str> = text.lines().filter(|l| l.contains("envgate-audit")).collect();
    assert!(out.status.success() && ours.is_empty(), "{text}");
}
