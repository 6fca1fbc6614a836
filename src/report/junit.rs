//! `--format junit`: JUnit XML, as CI servers (Jenkins, GitLab, Azure,
//! CircleCI) read it. One `<testsuite>` per environment, one `<testcase>` per
//! check: `classname` is the category, `name` the check's stable id.
//!
//! How statuses map, since JUnit knows only pass, failure, error and skipped:
//! - `fail` → `<failure>` with the message; its text lists key, target
//!   (already redacted), origin `file:line:column`, attempts, duration, help.
//! - `flaky` → a pass with a `<flakyFailure>` recording the failed attempts
//!   (the Maven Surefire convention; readers that do not know it see a pass).
//! - `warn` → a pass whose `<system-out>` starts with `warning:`. A warning
//!   does not fail the run unless `--fail-on warn`, so a failure element would
//!   turn CI dashboards red for something the exit code calls fine.
//! - `blocked` and `skipped` → `<skipped>` with the reason; a blocked check's
//!   root cause is itself a failure in the same suite.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestRerun, TestSuite};

use super::text::{category, rule_id, severity};
use super::{Reporter, Style};
use crate::outcome::{CheckResult, Report, Status};

pub struct Junit;

impl Reporter for Junit {
    fn render(&self, report: &Report, _style: Style) -> String {
        let mut junit = quick_junit::Report::new("envgate");
        junit.set_time(Duration::from_millis(report.duration_ms));
        for env in &report.environments {
            let mut suite = TestSuite::new(env.name.as_str());
            suite.add_property(Property::new("environment", env.name.as_str()));
            suite.add_property(Property::new("status", env.status.as_str()));
            let total: u64 = env.results.iter().filter_map(|r| r.duration_ms).sum();
            suite.set_time(Duration::from_millis(total));
            suite.add_test_cases(env.results.iter().map(test_case));
            junit.add_test_suite(suite);
        }
        junit.to_string().expect("JUnit XML serializes to a String")
    }
}

fn test_case(r: &CheckResult) -> TestCase {
    let status = match r.status {
        Status::Pass | Status::Warn => TestCaseStatus::success(),
        Status::Flaky => {
            let mut rerun = TestRerun::new(NonSuccessKind::Failure);
            rerun.set_message(format!("passed after {} attempts", r.attempts.unwrap_or(2)));
            rerun.set_type(rule_id(r));
            rerun.set_description(r.message.as_str());
            TestCaseStatus::Success {
                flaky_runs: vec![rerun],
            }
        }
        Status::Fail => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(r.message.as_str());
            s.set_type(rule_id(r));
            s.set_description(details(r));
            s
        }
        Status::Blocked | Status::Skipped => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("{}: {}", r.status.as_str(), r.message));
            s
        }
    };
    let mut tc = TestCase::new(r.id.as_str(), status);
    tc.set_classname(category(r.category));
    if let Some(ms) = r.duration_ms {
        tc.set_time(Duration::from_millis(ms));
    }
    match r.status {
        Status::Warn => {
            tc.set_system_out(format!("warning: {}\n{}", r.message, details(r)));
        }
        Status::Pass | Status::Flaky => {
            tc.set_system_out(format!("{}\n{}", r.message, details(r)));
        }
        _ => {}
    }
    tc
}

/// Everything a reader needs to act, one `name: value` per line.
fn details(r: &CheckResult) -> String {
    let mut lines = Vec::new();
    if let Some(k) = &r.kind {
        lines.push(format!("kind: {k}"));
    }
    if matches!(r.status, Status::Fail | Status::Warn) {
        lines.push(format!("severity: {}", severity(r.severity)));
    }
    if let Some(k) = &r.key {
        lines.push(format!("key: {k}"));
    }
    if let Some(t) = &r.target {
        lines.push(format!("target: {t}"));
    }
    if let Some(l) = &r.location {
        lines.push(format!("at: {}:{}:{}", l.file, l.line, l.column));
    }
    if let Some(a) = r.attempts {
        lines.push(format!("attempts: {a}"));
    }
    if let Some(d) = r.duration_ms {
        lines.push(format!("duration: {d}ms"));
    }
    lines.extend(super::text::load_lines(r));
    if let Some(h) = &r.help {
        lines.push(format!("help: {h}"));
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn failures_carry_origin_and_flaky_records_the_retry() {
        let xml = Junit.render(&fixture::report(), fixture::style());
        assert!(xml.contains(r#"<testsuite name="prod" tests="11""#), "{xml}");
        assert!(
            xml.contains(r#"<failure message="latency: p95 50.3ms is over its budget of 40ms by 10.3ms"#),
            "{xml}"
        );
        assert!(xml.contains("at: environments/prod.toml:2:11"), "{xml}");
        assert!(xml.contains("<flakyFailure"), "{xml}");
        assert!(xml.contains(r#"<skipped message="blocked: not probed"#), "{xml}");
    }
}
