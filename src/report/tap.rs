//! `--format tap`: TAP version 14, for `prove`, `tap-parser` and any TAP
//! harness. One test point per check, described `<env>: <check id>`.
//! `fail` is `not ok`; `pass`, `flaky` and `warn` are `ok`; `skipped` and
//! `blocked` are `ok ... # SKIP <reason>` (a blocked check's root cause is
//! its own `not ok`). Anything that is not a plain pass carries a YAML
//! diagnostics block with message, severity and `at: file:line`.

use std::fmt::Write;

use super::text::{file_line, severity};
use super::{Reporter, Style};
use crate::outcome::{CheckResult, Report, Status};

pub struct Tap;

impl Reporter for Tap {
    fn render(&self, report: &Report, _style: Style) -> String {
        let n: usize = report.environments.iter().map(|e| e.results.len()).sum();
        let mut out = format!("TAP version 14\n1..{n}\n");
        let mut i = 0;
        for env in &report.environments {
            let _ = writeln!(out, "# {}", env.name.replace('\n', " "));
            for r in &env.results {
                i += 1;
                let ok = if r.status == Status::Fail { "not ok" } else { "ok" };
                let desc = description(&format!("{}: {}", env.name, r.id));
                let directive = match r.status {
                    // `# SKIP <reason>`; a blocked check says so once, and a
                    // message that already starts with its status is not
                    // prefixed again.
                    Status::Skipped | Status::Blocked => {
                        let message = one_line(&r.message);
                        let reason = strip_status(&message, r.status);
                        match r.status {
                            Status::Blocked => format!(" # SKIP blocked: {}", description(reason)),
                            _ => format!(" # SKIP {}", description(reason)),
                        }
                    }
                    _ => String::new(),
                };
                let _ = writeln!(out, "{ok} {i} - {desc}{directive}");
                if r.status != Status::Pass {
                    diagnostics(&mut out, r);
                }
            }
        }
        out
    }
}

/// `skipped: x` → `x`, `blocked: x` → `x`, repeatedly.
fn strip_status(message: &str, status: Status) -> &str {
    let mut m = message.trim_start();
    loop {
        let rest = ["skipped:", "skipped", "blocked:"]
            .iter()
            .chain(std::iter::once(&status.as_str()))
            .find_map(|p| m.strip_prefix(p).filter(|r| r.is_empty() || r.starts_with([' ', ':'])));
        match rest {
            Some(r) => m = r.trim_start_matches(':').trim_start(),
            None => return m,
        }
    }
}

fn diagnostics(out: &mut String, r: &CheckResult) {
    out.push_str("  ---\n");
    let mut field = |k: &str, v: &str| {
        let _ = writeln!(out, "  {k}: {}", yaml(v));
    };
    field("message", &r.message);
    field("status", r.status.as_str());
    field("severity", severity(r.severity));
    if let Some(at) = file_line(r) {
        field("at", &at);
    }
    if let Some(k) = &r.key {
        field("key", k);
    }
    if let Some(k) = &r.kind {
        field("kind", k);
    }
    if let Some(t) = &r.target {
        field("target", t);
    }
    if let Some(h) = &r.help {
        field("help", h);
    }
    if let Some(a) = r.attempts {
        let _ = writeln!(out, "  attempts: {a}");
    }
    if let Some(d) = r.duration_ms {
        let _ = writeln!(out, "  duration_ms: {d}");
    }
    out.push_str("  ...\n");
}

/// A double-quoted YAML scalar (JSON strings are valid YAML).
fn yaml(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

/// TAP 14: `#` starts a directive and `\` escapes, so both are escaped in a
/// description; a newline would end the test line.
fn description(s: &str) -> String {
    one_line(s).replace('\\', "\\\\").replace('#', "\\#")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn plan_matches_test_points() {
        let out = Tap.render(&fixture::report(), fixture::style());
        let points = out
            .lines()
            .filter(|l| l.starts_with("ok ") || l.starts_with("not ok "))
            .count();
        assert!(out.starts_with(&format!("TAP version 14\n1..{points}\n")), "{out}");
        assert!(
            out.contains("not ok 2 - prod: schema/http.client.timeout\n  ---\n"),
            "{out}"
        );
        assert!(out.contains("  at: \"environments/prod.toml:2\"\n"), "{out}");
        assert!(
            out.contains("ok 9 - prod: probe/assets-bucket # SKIP filtered out by --tag db\n"),
            "{out}"
        );
        assert!(
            !out.contains("skipped: skipped:") && !out.contains("# SKIP skipped"),
            "{out}"
        );
        assert_eq!(description("a # b"), "a \\# b");
    }

    #[test]
    fn a_skip_reason_says_its_status_once() {
        assert_eq!(strip_status("skipped: skipped: x", Status::Skipped), "x");
        assert_eq!(
            strip_status("blocked: a secret is missing", Status::Blocked),
            "a secret is missing"
        );
        assert_eq!(strip_status("skippedness", Status::Skipped), "skippedness");
    }
}
