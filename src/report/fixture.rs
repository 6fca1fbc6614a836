//! One report with every status, for the golden files of every format
//! (tests/report_formats.rs) and the reporters' own unit tests. Not API.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::Style;
use crate::diagnostic::Problem;
use crate::findings::Category;
use crate::outcome::{CheckResult, EnvReport, Location, Report, Severity, Status};
use crate::source::SourceFile;

/// The prod overlay the fixture's findings point into.
pub const PROD_TOML: &str = r#"[http.client]
timeout = 30

[database]
url = "${secret:env:DATABASE_URL}"
pool_size = 5

[payments]
url = "https://pay.stg.example.com/v2"
"#;

/// A fixed, colourless style with a fixed "now" (2023-11-14T22:13:20Z).
pub fn style() -> Style {
    Style {
        color: false,
        width: 100,
        now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        source_links: None,
    }
}

/// Two environments: `prod` with one check of every status, `staging` all
/// green.
pub fn report() -> Report {
    let prod = SourceFile::new("environments/prod.toml", PROD_TOML);
    let prod_results = vec![
        CheckResult::pass(
            Category::Config,
            "config",
            "config",
            "assembled from base → prod".into(),
        ),
        schema_error(&prod),
        rule_warning(&prod),
        CheckResult {
            key: Some("payments.url".into()),
            location: Some(Location {
                file: "environments/prod.toml".into(),
                line: 9,
                column: 7,
            }),
            help: Some("point payments.url at a prod host (*.prod.example.com)".into()),
            ..result(
                Category::Isolation,
                "isolation/payments.url",
                "payments.url",
                Status::Fail,
                "payments.url names pay.stg.example.com, a host of environment `staging`",
            )
        },
        CheckResult {
            severity: Severity::Critical,
            target: Some("postgres://app:***@db.prod.example.com:5432/orders".into()),
            attempts: Some(3),
            duration_ms: Some(2004),
            help: Some("is the database provisioned and listening?".into()),
            ..probe(
                "orders-db",
                "postgres",
                Status::Fail,
                "cannot connect to postgres://app:***@db.prod.example.com:5432/orders: connection refused",
            )
        },
        CheckResult {
            severity: Severity::Critical,
            target: Some("/usr/lib/nagios/plugins/check_migrations".into()),
            metrics: vec![crate::outcome::Metric {
                name: "pending".into(),
                value: 2.0,
                unit: String::new(),
            }],
            attempts: Some(1),
            duration_ms: Some(310),
            ..probe(
                "migrations",
                "exec",
                Status::Fail,
                "CRITICAL: 2 pending migrations\n0042_add_orders_index\n0043_drop_legacy_<tmp>_table",
            )
        },
        CheckResult {
            target: Some("https://orders.prod.example.com/health".into()),
            help: Some("fix orders-db first".into()),
            ..probe(
                "orders-api",
                "http",
                Status::Blocked,
                "not probed: depends on orders-db, which failed",
            )
        },
        CheckResult {
            severity: Severity::Warning,
            target: Some("redis://cache.prod.example.com:6379/0".into()),
            attempts: Some(2),
            duration_ms: Some(812),
            ..probe(
                "cache",
                "redis",
                Status::Flaky,
                "PONG on attempt 2 of 3; attempt 1: timed out after 500ms",
            )
        },
        CheckResult {
            target: Some("s3://orders-assets-prod".into()),
            ..probe("assets-bucket", "s3", Status::Skipped, "filtered out by --tag db")
        },
        CheckResult {
            target: Some("https://orders.prod.example.com/v1/orders".into()),
            attempts: Some(1),
            duration_ms: Some(1290),
            help: Some(
                "a [probe.load] budget failed: look up the slowest or first failed request by its id in the service's logs"
                    .into(),
            ),
            load: Some(Box::new(load())),
            ..probe(
                "orders-latency",
                "http",
                Status::Fail,
                "latency: p95 50.3ms is over its budget of 40ms by 10.3ms (500 requests, 20 at once, in 1.27s: \
                 p50 50.1ms, p90 50.2ms, p95 50.3ms, p99 51.0ms, max 53.0ms; 394/s; 2 errors (2 status))",
            )
        },
        CheckResult {
            target: Some("db.prod.example.com".into()),
            attempts: Some(1),
            duration_ms: Some(4),
            ..probe(
                "dns-db",
                "dns",
                Status::Pass,
                "db.prod.example.com resolves to 10.20.0.15",
            )
        },
    ];
    let staging_results = vec![
        CheckResult::pass(
            Category::Config,
            "config",
            "config",
            "assembled from base → staging".into(),
        ),
        CheckResult::pass(
            Category::Schema,
            "schema",
            "schema",
            "14 keys valid against schemas/orders-api.schema.json".into(),
        ),
        CheckResult::pass(
            Category::Rule,
            "rule/min-pool-size",
            "min-pool-size",
            "database.pool_size is 20".into(),
        ),
        CheckResult {
            target: Some("postgres://app:***@db.stg.example.com:5432/orders".into()),
            attempts: Some(1),
            duration_ms: Some(12),
            ..probe("orders-db", "postgres", Status::Pass, "connected, server version 16.4")
        },
    ];
    Report::new(
        vec![
            EnvReport::new("prod".into(), prod_results),
            EnvReport::new("staging".into(), staging_results),
        ],
        2345,
    )
}

/// A load that broke its p95 budget and kept its error budget.
fn load() -> crate::outcome::LoadReport {
    use crate::outcome::{Budget, LoadReport, Percentile};
    let dist = [
        (0.0, 49.8),
        (10.0, 49.9),
        (25.0, 50.0),
        (50.0, 50.1),
        (75.0, 50.2),
        (90.0, 50.2),
        (95.0, 50.3),
        (99.0, 51.0),
        (99.9, 52.7),
        (100.0, 53.0),
    ];
    LoadReport {
        count: 500,
        errors: 2,
        errors_by_class: [("status".to_string(), 2)].into_iter().collect(),
        concurrency: 20,
        rate: None,
        duration_ms: 1270,
        p50_ms: 50.1,
        p90_ms: 50.2,
        p95_ms: 50.3,
        p99_ms: 51.0,
        max_ms: 53.0,
        throughput: 393.7,
        distribution: dist
            .iter()
            .map(|&(percentile, ms)| Percentile { percentile, ms })
            .collect(),
        budgets: vec![
            Budget {
                name: "p95".into(),
                limit: "40ms".into(),
                measured: "50.3ms".into(),
                held: false,
            },
            Budget {
                name: "max_error_rate".into(),
                limit: "1%".into(),
                measured: "0.4%".into(),
                held: true,
            },
        ],
        slowest_request_id: Some("envgate-5f3a9c1e-orders-latency-318".into()),
        failed_request_id: Some("envgate-5f3a9c1e-orders-latency-77".into()),
        first_error: Some("status: expected 200-299, got 503 from 10.20.0.30:443".into()),
        stopped: None,
    }
}

fn result(category: Category, id: &str, name: &str, status: Status, message: &str) -> CheckResult {
    CheckResult {
        status,
        severity: Severity::Error,
        ..CheckResult::pass(category, id, name, message.into())
    }
}

fn probe(name: &str, kind: &str, status: Status, message: &str) -> CheckResult {
    CheckResult {
        kind: Some(kind.into()),
        severity: Severity::Critical,
        ..result(Category::Probe, &format!("probe/{name}"), name, status, message)
    }
}

/// A finding built the way the schema validator builds one, so the human
/// format shows its snippet.
fn schema_error(src: &Arc<SourceFile>) -> CheckResult {
    let at = src.text.find("30").expect("fixture has a timeout");
    let problem = Problem::new(
        "envgate::schema::unit",
        "bare number 30 for a duration: write \"30s\" or \"30ms\"",
    )
    .label("30 what?")
    .help("http.client.timeout is a duration: a number with a unit, e.g. \"30s\"")
    .at(src, at, 2);
    CheckResult::from_finding(
        crate::findings::Finding::new(
            Category::Schema,
            "schema/http.client.timeout".into(),
            Some("http.client.timeout".into()),
            problem,
        ),
        Status::Fail,
        Severity::Error,
    )
}

/// A rule warning whose message has a pipe, to exercise table escaping.
fn rule_warning(src: &Arc<SourceFile>) -> CheckResult {
    let at = src.text.find("pool_size = 5").expect("fixture has a pool size") + "pool_size = ".len();
    let problem = Problem::new(
        "envgate::rule::min-pool-size",
        "database.pool_size is 5 | prod expects at least 10",
    )
    .label("set here")
    .help("raise database.pool_size in environments/prod.toml")
    .at(src, at, 1);
    let finding = crate::findings::Finding::new(
        Category::Rule,
        "rule/min-pool-size".into(),
        Some("database.pool_size".into()),
        problem,
    )
    .warning();
    CheckResult {
        name: "min-pool-size".into(),
        ..CheckResult::from_finding(finding, Status::Warn, Severity::Warning)
    }
}
