//! What `check` says while it runs, when stderr is not a terminal (CI logs,
//! cron): a line per finished probe as it finishes; `-q` and `-v`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// `api` answers at once; `late` is a port nothing listens on.
fn project(up: u16, down: u16) -> TempDir {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "envgate.toml",
        "[project]\nname = \"svc\"\nenvironments = [\"dev\"]\n",
    );
    write(dir.path(), "environments/base.toml", "");
    write(dir.path(), "environments/dev.toml", "");
    write(
        dir.path(),
        "checks/probes.toml",
        &format!(
            "[[probe]]\nname = \"api\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:{up}\"\ntimeout = \"1s\"\n\n\
             [[probe]]\nname = \"late\"\nkind = \"tcp\"\ntarget = \"127.0.0.1:{down}\"\ntimeout = \"1s\"\n"
        ),
    );
    dir
}

fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn envgate(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .current_dir(dir)
        .env_clear()
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_finished_probe_is_logged_while_others_still_wait() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = project(listener.local_addr().unwrap().port(), closed_port());
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .current_dir(dir.path())
        .env_clear()
        .env("NO_COLOR", "1")
        .args(["check", "--env", "dev", "--wait", "2s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Each line with the time it arrived.
    let timed: Vec<(Duration, String)> = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map(|l| (start.elapsed(), l.unwrap()))
        .collect();
    let status = child.wait().unwrap();
    let done_at = start.elapsed();
    assert_eq!(status.code(), Some(1));
    let (first_at, _) = timed
        .iter()
        .find(|(_, l)| l.starts_with("pass    dev/api ("))
        .unwrap_or_else(|| panic!("{timed:?}"));
    assert!(
        *first_at + Duration::from_millis(1000) < done_at,
        "the passing probe's line came at {first_at:?}, the run ended at {done_at:?}: not streamed"
    );
    let rest: Vec<String> = timed
        .into_iter()
        .map(|(_, l)| l)
        .filter(|l| !l.starts_with("pass "))
        .collect();
    // While it waits, each failed attempt is a line; then its verdict.
    let (retries, finals): (Vec<&String>, Vec<&String>) = rest.iter().partition(|l| l.starts_with("retry "));
    assert!(retries.len() >= 2, "{rest:?}");
    assert!(
        retries[0].starts_with("retry   dev/late: attempt 1 failed: "),
        "{rest:?}"
    );
    assert!(retries[0].contains("; next in "), "{rest:?}");
    assert_eq!(finals.len(), 1, "{rest:?}");
    assert!(finals[0].starts_with("fail    dev/late ("), "{rest:?}");
    assert!(finals[0].contains("attempts"), "{rest:?}");
}

#[test]
fn quiet_logs_only_problems_and_prints_only_problems_and_the_verdict() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = project(listener.local_addr().unwrap().port(), closed_port());
    let (code, stdout, stderr) = envgate(dir.path(), &["check", "--env", "dev", "-q"]);
    assert_eq!(code, 1);
    assert!(!stderr.contains("dev/api"), "{stderr}");
    assert!(stderr.contains("fail    dev/late"), "{stderr}");
    assert!(!stdout.contains("┌"), "no summary table with -q:\n{stdout}");
    assert!(stdout.contains("probe/late") || stdout.contains("late"), "{stdout}");
    assert!(stdout.trim_end().ends_with("1 problem"), "{stdout}");
}

#[test]
fn a_passing_quiet_run_prints_nothing_at_all() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = project(port, port);
    let (code, stdout, stderr) = envgate(dir.path(), &["check", "--env", "dev", "-q"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""));
    let (code, stdout, stderr) = envgate(dir.path(), &["validate", "-q"]);
    assert_eq!(code, 0);
    assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""));
}

#[test]
fn verbose_lists_passing_checks_with_their_latencies() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = project(port, port);
    let (code, stdout, _) = envgate(dir.path(), &["check", "--env", "dev", "-v"]);
    assert_eq!(code, 0);
    let api = stdout
        .lines()
        .find(|l| l.contains("[dev] probe/api"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let re = regex::Regex::new(r"✓ \[dev\] probe/api in \d+(\.\d+)?(ms|s|us|µs): ").unwrap();
    assert!(re.is_match(api), "{api}");
    assert!(stdout.contains("┌"), "the usual table follows:\n{stdout}");
}
