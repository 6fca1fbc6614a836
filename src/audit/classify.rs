//! What a result says beyond its status: its failure class (from a fixed
//! list, never free text), the certificate expiry it saw, and whether a
//! run's failures look like the auditor's own resolver being gone.

use crate::findings::Category;
use crate::outcome::{CheckResult, Report, Status};

/// Probe failure classes: the first word of a failure's message.
const CLASSES: &[&str] = &[
    "refused",
    "timeout",
    "dns",
    "tls",
    "status",
    "body",
    "latency",
    "permission",
    "not_found",
    "capacity",
    "exec",
    "unknown",
    "io",
    "auth",
    "protocol",
];

/// The fixed list a failure's class comes from (never free text).
pub fn failure_class(r: &CheckResult) -> Option<&'static str> {
    if matches!(r.status, Status::Pass | Status::Skipped | Status::Flaky) {
        return None;
    }
    if r.status == Status::Blocked {
        return Some("blocked");
    }
    Some(match r.category {
        Category::Probe => {
            let first = r.message.split(':').next().unwrap_or_default();
            CLASSES.iter().find(|c| **c == first).copied().unwrap_or("failed")
        }
        Category::Schema => "schema",
        Category::Rule => "rule",
        Category::Isolation => "isolation",
        Category::Config => "config",
    })
}

/// The certificate not-after a probe reported (unix seconds).
pub fn not_after(r: &CheckResult) -> Option<i64> {
    r.metrics
        .iter()
        .find(|m| m.name == "tls_not_after")
        .map(|m| m.value as i64)
}

/// `Some(n)` when every one of n ≥ 2 probes whose target names a host (not
/// an address) failed to resolve it.
pub fn resolver_gone(report: &Report) -> Option<usize> {
    let named: Vec<&CheckResult> = report
        .environments
        .iter()
        .flat_map(|e| &e.results)
        .filter(|r| r.category == Category::Probe && !matches!(r.status, Status::Skipped | Status::Blocked))
        .filter(|r| r.target.as_deref().and_then(host_name).is_some())
        .collect();
    let all_dns = named
        .iter()
        .all(|r| r.status == Status::Fail && failure_class(r) == Some("dns"));
    (named.len() >= 2 && all_dns).then_some(named.len())
}

/// The host name a target names, if it names one (not an IP address, not a path).
fn host_name(target: &str) -> Option<String> {
    let host = if target.contains("://") {
        url::Url::parse(target).ok()?.host_str()?.to_string()
    } else if target.starts_with('/') || target.starts_with('.') {
        return None;
    } else {
        target.rsplit_once(':').map_or(target, |(h, _)| h).to_string()
    };
    let bare = host.trim_matches(['[', ']']);
    (bare.parse::<std::net::IpAddr>().is_err() && bare.contains(|c: char| c.is_ascii_alphabetic()))
        .then(|| bare.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(target: &str, status: Status, message: &str) -> CheckResult {
        let mut r = CheckResult::pass(Category::Probe, "probe/x", "x", message.into());
        r.status = status;
        r.target = Some(target.into());
        r
    }

    #[test]
    fn every_named_host_failing_to_resolve_is_the_auditors_trouble() {
        let report = |results| Report::new(vec![crate::outcome::EnvReport::new("prod".into(), results)], 1);
        let dns = |t: &str| probe(t, Status::Fail, "dns: cannot resolve `x`");
        assert_eq!(
            resolver_gone(&report(vec![
                dns("postgres://db.prod:5432/x"),
                dns("redis://cache.prod:6379")
            ])),
            Some(2)
        );
        // One name that resolved: the environment's DNS, not ours.
        assert_eq!(
            resolver_gone(&report(vec![
                dns("postgres://db.prod:5432/x"),
                dns("redis://cache.prod:6379"),
                probe("https://api.prod/health", Status::Pass, "200 in 3ms"),
            ])),
            None
        );
        assert_eq!(resolver_gone(&report(vec![dns("postgres://db.prod:5432/x")])), None);
        assert_eq!(failure_class(&dns("x")), Some("dns"));
    }

    #[test]
    fn host_names_are_told_from_addresses_and_paths() {
        assert_eq!(
            host_name("postgres://app:***@db.prod:5432/x").as_deref(),
            Some("db.prod")
        );
        assert_eq!(host_name("127.0.0.1:5432"), None);
        assert_eq!(host_name("/var/lib/x"), None);
        assert_eq!(host_name("cache.internal:6379").as_deref(), Some("cache.internal"));
    }
}
