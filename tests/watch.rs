//! `envgate validate --watch`: a change to a file under a running watch is
//! validated again, at once.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Lines of stdout until one contains `want`, or panic after 15 s.
fn until(rx: &mpsc::Receiver<String>, want: &str, seen: &mut Vec<String>) {
    loop {
        match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(line) => {
                let hit = line.contains(want);
                seen.push(line);
                if hit {
                    return;
                }
            }
            Err(_) => panic!("no line with {want:?} within 15s; saw:\n{}", seen.join("\n")),
        }
    }
}

#[test]
fn a_saved_change_is_validated_again_under_a_running_watch() {
    let tmp = tempfile::tempdir().unwrap();
    let init = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .current_dir(tmp.path())
        .args(["init", "--minimal"])
        .output()
        .unwrap();
    assert!(init.status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .current_dir(tmp.path())
        .env_clear()
        .env("NO_COLOR", "1")
        .args(["validate", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    until(&rx, "2 environments ready", &mut seen);
    until(&rx, "watching", &mut seen);

    std::fs::write(
        tmp.path().join("environments/prod.toml"),
        "[http]\nrequest_timeout = 30\n",
    )
    .unwrap();
    until(&rx, "bare number 30 for a duration", &mut seen);
    until(&rx, "1 of 2 environments not ready (prod)", &mut seen);
    until(&rx, "watching", &mut seen);

    std::fs::write(
        tmp.path().join("environments/prod.toml"),
        "[http]\nrequest_timeout = \"30s\"\n",
    )
    .unwrap();
    until(&rx, "2 environments ready", &mut seen);

    assert!(child.try_wait().unwrap().is_none(), "the watch ended by itself");
    child.kill().unwrap();
    child.wait().unwrap();
}
