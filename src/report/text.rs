//! Small pieces of wording several reporters share, so the verdict reads the
//! same in a PR comment, an annotation, a TAP stream and an HTML banner.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::findings::Category;
use crate::outcome::{CheckResult, Report, Severity, Status, Summary};

pub(crate) fn category(c: Category) -> &'static str {
    match c {
        Category::Config => "config",
        Category::Schema => "schema",
        Category::Rule => "rule",
        Category::Isolation => "isolation",
        Category::Probe => "probe",
    }
}

pub(crate) fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// What kind of problem a result is, for grouping (SARIF rules): the
/// diagnostic code without the `envgate::` prefix (`schema/unit`), else the
/// category and probe kind (`probe/postgres`), else the category.
pub(crate) fn rule_id(r: &CheckResult) -> String {
    if let Some(p) = &r.problem {
        let code = p.code.strip_prefix("envgate::").unwrap_or(&p.code);
        return code.replace("::", "/");
    }
    match &r.kind {
        Some(kind) => format!("{}/{kind}", category(r.category)),
        None => category(r.category).to_string(),
    }
}

/// `file:line`, when a file is to blame.
pub(crate) fn file_line(r: &CheckResult) -> Option<String> {
    r.location.as_ref().map(|l| format!("{}:{}", l.file, l.line))
}

/// Every environment's summary added up.
pub(crate) fn totals(report: &Report) -> Summary {
    let mut t = Summary::default();
    for s in report.environments.iter().map(|e| &e.summary) {
        t.pass += s.pass;
        t.warn += s.warn;
        t.fail += s.fail;
        t.flaky += s.flaky;
        t.blocked += s.blocked;
        t.skipped += s.skipped;
    }
    t
}

/// Environments that are not ready.
pub(crate) fn failed_envs(report: &Report) -> Vec<&str> {
    report
        .environments
        .iter()
        .filter(|e| matches!(e.status, Status::Fail | Status::Blocked))
        .map(|e| e.name.as_str())
        .collect()
}

/// `2 fail, 1 blocked, 1 warn, 1 flaky, 8 pass, 1 skipped`: problems first,
/// zero counts left out (except pass, so the line is never empty).
pub(crate) fn counts(s: &Summary) -> String {
    let parts = [
        (s.fail, "fail"),
        (s.blocked, "blocked"),
        (s.warn, "warn"),
        (s.flaky, "flaky"),
        (s.pass, "pass"),
        (s.skipped, "skipped"),
    ];
    parts
        .iter()
        .filter(|(n, name)| *n > 0 || *name == "pass")
        .map(|(n, name)| format!("{n} {name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `1 of 2 environments not ready (prod)` or `2 environments ready`.
pub(crate) fn verdict(report: &Report) -> String {
    let failed = failed_envs(report);
    let n = report.environments.len();
    let s = if n == 1 { "" } else { "s" };
    if failed.is_empty() {
        let warned = report.environments.iter().any(|e| e.status == Status::Warn);
        format!(
            "{n} environment{s} ready{}",
            if warned { ", with warnings" } else { "" }
        )
    } else {
        format!(
            "{} of {n} environment{s} not ready ({})",
            failed.len(),
            failed.join(", ")
        )
    }
}

/// Whether any environment failed (warnings do not count here; the exit
/// code's `--fail-on warn` is the caller's business).
pub(crate) fn ok(report: &Report) -> bool {
    failed_envs(report).is_empty()
}

/// Seconds since the Unix epoch (0 for a clock before 1970).
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2023-11-14T22:13:20Z`, without pulling in a date crate.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = unix_seconds(t);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// For text inside HTML elements and attributes.
/// Milliseconds as a load report shows them: "50.3ms", "0.82ms", "250ms".
pub(crate) fn load_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}ms")
    } else if v >= 10.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.2}ms")
    }
}

/// Every budget of a load, held or not: "p95 50.3ms > 40ms ✗, error rate 0.0% ≤ 1% ✓".
pub(crate) fn load_budgets(l: &crate::outcome::LoadReport) -> String {
    l.budgets
        .iter()
        .map(|b| {
            let (name, ok, bad) = match b.name.as_str() {
                "max_error_rate" => ("error rate", "≤", ">"),
                "min_throughput" => ("throughput", "≥", "<"),
                n => (n, "≤", ">"),
            };
            let (op, mark) = if b.held { (ok, "✓") } else { (bad, "✗") };
            format!("{name} {} {op} {} {mark}", b.measured, b.limit)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a load measured and which request to look for, one `name: value`
/// per line, plus a single probe's failed request id.
pub(crate) fn load_lines(r: &CheckResult) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(l) = &r.load {
        out.push(format!(
            "load: {} requests, {} errors, p50 {}, p90 {}, p95 {}, p99 {}, max {}, {}/s",
            l.count,
            l.errors,
            load_ms(l.p50_ms),
            load_ms(l.p90_ms),
            load_ms(l.p95_ms),
            load_ms(l.p99_ms),
            load_ms(l.max_ms),
            l.throughput.round()
        ));
        if !l.budgets.is_empty() {
            out.push(format!("budgets: {}", load_budgets(l)));
        }
        if let Some(id) = &l.slowest_request_id {
            out.push(format!("slowest request: {id}"));
        }
        if let Some(id) = &l.failed_request_id {
            out.push(format!("first failed request: {id}"));
        }
    }
    if let Some(id) = &r.request_id {
        out.push(format!("request id: {id}"));
    }
    out
}

pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One problem as the formats a person reads (or that annotate lines) show
/// it: once, with every environment it affects. A value in `base.toml` that
/// fails in three environments is one mistake on one line, not three
/// annotations.
pub(crate) struct Grouped<'a> {
    pub envs: Vec<&'a str>,
    pub result: &'a crate::outcome::CheckResult,
}

impl Grouped<'_> {
    /// `prod` or `staging, prod`.
    pub fn envs(&self) -> String {
        self.envs.join(", ")
    }
}

/// The results `keep` selects, grouped by what they say and where they point
/// (status, check, message, location, target), in report order.
pub(crate) fn grouped(report: &Report, keep: impl Fn(&crate::outcome::CheckResult) -> bool) -> Vec<Grouped<'_>> {
    let mut out: Vec<Grouped<'_>> = Vec::new();
    let key = |r: &crate::outcome::CheckResult| {
        (
            r.status,
            r.id.clone(),
            r.message.clone(),
            r.location.as_ref().map(|l| (l.file.clone(), l.line, l.column)),
            r.target.clone(),
        )
    };
    let mut index = std::collections::HashMap::new();
    for env in &report.environments {
        for r in env.results.iter().filter(|r| keep(r)) {
            match index.get(&key(r)) {
                Some(&i) => {
                    let g: &mut Grouped<'_> = &mut out[i];
                    g.envs.push(env.name.as_str());
                }
                None => {
                    index.insert(key(r), out.len());
                    out.push(Grouped {
                        envs: vec![env.name.as_str()],
                        result: r,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_dates_in_utc() {
        let at = |s| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
    }
}
