//! `${secret:cmd:...}`: the real binary runs the command (no shell) and
//! keeps its output out of every report; offline it does not run it
//! unless `--allow-secret-commands`; a failing command is named.

use assert_cmd::Command;

fn project(value: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("envgate.toml", "[project]\nname = \"t\"\nenvironments = [\"prod\"]\n");
    w("environments/base.toml", "[db]\nhost = \"db\"\n");
    w("environments/prod.toml", &format!("[db]\npassword = \"{value}\"\n"));
    w("secret.txt", "Sup3r-S3cret-Value\n");
    dir
}

fn envgate(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::cargo_bin("envgate")
        .unwrap()
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), all)
}

#[test]
fn a_secret_command_runs_online_only_when_allowed_offline_and_never_prints_its_output() {
    let dir = project("${secret:cmd:cat secret.txt}");
    // From elsewhere: the command runs in the project's root.
    let (code, out) = envgate(
        dir.path().parent().unwrap(),
        &[
            "-C",
            &dir.path().to_string_lossy(),
            "render",
            "--env",
            "prod",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"password\": \"***\""), "{out}");
    assert!(!out.contains("Sup3r"), "the secret leaked:\n{out}");

    let (code, out) = envgate(dir.path(), &["validate"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("secret command `cat secret.txt` not run (offline: not checked)"),
        "{out}"
    );
    let (code, out) = envgate(dir.path(), &["validate", "--allow-secret-commands"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("not run") && !out.contains("Sup3r"), "{out}");

    let dir = project("${secret:cmd:cat missing.txt}");
    let (code, out) = envgate(dir.path(), &["check", "--env", "prod"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("secret command `cat missing.txt` exited with 1"), "{out}");
}
