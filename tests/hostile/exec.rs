//! Plugins that misbehave: gigantic output, a child left holding the
//! output pipe, bytes that are not text, a plugin that never ends.

use std::time::Duration;

use super::{MIB, baseline, check};

fn exec(script: &str, timeout: &str) -> super::Run {
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
    check(&format!(
        "kind = \"exec\"\ntarget = \"/bin/sh\"\nargs = [\"-c\", \"{script}\"]\ntimeout = \"{timeout}\""
    ))
}

#[test]
fn a_plugin_printing_a_gigantic_line_stays_bounded_and_says_it_was_cut() {
    // 50 MB on one line, then the plugin's verdict: critical.
    let r = exec("head -c 50000000 /dev/zero | tr '\\0' A; exit 2", "20s");
    assert_eq!((r.status.as_str(), r.class.as_str()), ("fail", "exec"), "{r:?}");
    assert!(
        r.message.contains("output cut: kept the first 8KiB of 50000000 bytes"),
        "{r:?}"
    );
    assert!(r.message.len() < 600, "a {}-byte message", r.message.len());
    assert!(
        r.peak < baseline() + 8 * MIB,
        "peak {} MiB, baseline {} MiB",
        r.peak / MIB,
        baseline() / MIB
    );
}

#[test]
fn a_plugin_that_exits_0_and_leaves_a_child_holding_stdout_passes() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("pid");
    // The child is in a session of its own: killing the plugin's process
    // group does not reach it, and it keeps the output pipe open for 30 s.
    let r = exec(
        &format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 30' & echo 'OK - up | t=1s'; exit 0",
            pid.display()
        ),
        "5s",
    );
    if let Ok(p) = std::fs::read_to_string(&pid) {
        // SAFETY: a plain kill of the sleep this test started.
        unsafe { libc::kill(p.trim().parse().unwrap(), libc::SIGKILL) };
    }
    assert_eq!(r.status, "pass", "{r:?}");
    assert!(r.message.starts_with("OK - up (t=1s)"), "{r:?}");
    assert!(r.elapsed < Duration::from_secs(4), "took {:?}", r.elapsed);
}

#[test]
fn a_plugin_printing_binary_bytes_gets_a_printable_message() {
    let r = exec("printf 'WARN \\033[2J\\377\\376 disk\\n'; exit 1", "5s");
    assert_eq!(r.status, "warn", "{r:?}");
    assert!(
        !r.message.contains('\u{1b}'),
        "a terminal escape reached the report: {r:?}"
    );
    assert!(r.message.contains("WARN \\u{1b}[2J"), "{r:?}");
}

#[test]
fn a_plugin_that_never_ends_is_killed_at_the_timeout() {
    let r = exec("echo started; exec sleep 30", "500ms");
    assert_eq!((r.status.as_str(), r.class.as_str()), ("fail", "timeout"), "{r:?}");
    assert!(r.elapsed < Duration::from_secs(3), "took {:?}", r.elapsed);
}
