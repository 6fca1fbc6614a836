//! envgate's own file descriptors: two thousand probes under a low
//! `ulimit -n` wait for a descriptor instead of blaming their targets, and
//! the soft limit is raised to the hard limit (but not for plugins).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// `envgate` with RLIMIT_NOFILE set to `soft` and `hard` before it starts.
fn envgate_limited(soft: u64, hard: u64) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_envgate"));
    c.env_clear().env("NO_COLOR", "1");
    // SAFETY: setrlimit is async-signal-safe; nothing is allocated.
    unsafe {
        c.pre_exec(move || {
            let rl = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

#[test]
fn two_thousand_probes_under_ulimit_256_all_pass() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            drop(s);
        }
    });
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for _ in 0..2000 {
        writeln!(file, "tcp://{addr}").unwrap();
    }
    let out = envgate_limited(256, 256)
        .args(["probe", "--timeout", "10s", "--format", "json", "--targets-file"])
        .arg(file.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("too many open files"), "{text}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = report["environments"][0]["results"].as_array().unwrap();
    let failed: Vec<_> = results.iter().filter(|r| r["status"] != "pass").collect();
    assert_eq!(results.len(), 2000);
    assert!(failed.is_empty(), "{} failed, e.g. {}", failed.len(), failed[0]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_soft_file_limit_is_raised_for_envgate_and_restored_for_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("envgate.toml", "[project]\nname = \"h\"\nenvironments = [\"t\"]\n");
    w("environments/base.toml", "");
    w("environments/t.toml", "");
    // The plugin reads its parent's (envgate's) limit and its own.
    w(
        "checks/p.toml",
        r#"[[probe]]
name = "limits"
kind = "exec"
target = "/bin/sh"
args = ["-c", "echo envgate $(grep 'Max open files' /proc/$PPID/limits | tr -s ' ' | cut -d ' ' -f 4) plugin $(ulimit -Sn)"]
"#,
    );
    let out = envgate_limited(256, 4096)
        .args(["check", "--env", "t", "--format", "json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = report["environments"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "probe/limits")
        .unwrap()
        .clone();
    assert_eq!(r["message"], "envgate 4096 plugin 256", "{r}");
}
