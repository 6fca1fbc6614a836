//! `--format prometheus`: the text exposition format, for node_exporter's
//! textfile collector (`--report prometheus=/var/lib/node_exporter/envgate.prom`
//! from cron; the report is written atomically, as the collector requires).
//!
//! `envgate_check_status` has one series per check, with the check's status
//! in the `status` label and the value 1 (the file is rewritten on every run,
//! so a check's old status disappears with it): alert on
//! `envgate_check_status{status=~"fail|blocked"} == 1`. The timestamp comes
//! from [`Style::now`], never from the clock, so tests can fix it.

use std::fmt::Write;

use super::text::{category, ok, unix_seconds};
use super::{Reporter, Style};
use crate::outcome::Report;

pub struct Prometheus;

impl Reporter for Prometheus {
    fn render(&self, report: &Report, style: Style) -> String {
        let mut out = String::new();
        let checks = || {
            report.environments.iter().flat_map(|e| {
                e.results.iter().map(move |r| {
                    let labels = format!(
                        "env=\"{}\",check=\"{}\",category=\"{}\",kind=\"{}\"",
                        label(&e.name),
                        label(&r.id),
                        category(r.category),
                        label(r.kind.as_deref().unwrap_or(""))
                    );
                    (labels, r)
                })
            })
        };

        header(
            &mut out,
            "envgate_check_status",
            "Status of one check: 1 on the series whose status label is the check's status.",
        );
        for (labels, r) in checks() {
            let _ = writeln!(
                out,
                "envgate_check_status{{{labels},status=\"{}\"}} 1",
                r.status.as_str()
            );
        }
        header(
            &mut out,
            "envgate_check_duration_seconds",
            "Time the check took, all attempts included.",
        );
        for (labels, r) in checks() {
            if let Some(ms) = r.duration_ms {
                let _ = writeln!(out, "envgate_check_duration_seconds{{{labels}}} {}", seconds(ms));
            }
        }
        if report
            .environments
            .iter()
            .flat_map(|e| &e.results)
            .any(|r| r.load.is_some())
        {
            header(
                &mut out,
                "envgate_load_latency_seconds",
                "Latency of a [probe.load]'s successful requests at a quantile (1 is the slowest).",
            );
            for (labels, r) in checks() {
                if let Some(l) = &r.load {
                    for (q, ms) in [
                        ("0.5", l.p50_ms),
                        ("0.9", l.p90_ms),
                        ("0.95", l.p95_ms),
                        ("0.99", l.p99_ms),
                        ("1", l.max_ms),
                    ] {
                        let _ = writeln!(
                            out,
                            "envgate_load_latency_seconds{{{labels},quantile=\"{q}\"}} {}",
                            ms / 1000.0
                        );
                    }
                }
            }
            header(
                &mut out,
                "envgate_load_throughput",
                "Successful requests per second of a [probe.load].",
            );
            for (labels, r) in checks() {
                if let Some(l) = &r.load {
                    let _ = writeln!(out, "envgate_load_throughput{{{labels}}} {}", l.throughput);
                }
            }
            header(
                &mut out,
                "envgate_load_errors",
                "Failed requests of a [probe.load], after the warmup.",
            );
            for (labels, r) in checks() {
                if let Some(l) = &r.load {
                    let _ = writeln!(out, "envgate_load_errors{{{labels}}} {}", l.errors);
                }
            }
        }
        if report
            .environments
            .iter()
            .flat_map(|e| &e.results)
            .any(|r| !r.metrics.is_empty())
        {
            header(
                &mut out,
                "envgate_check_metric",
                "A measurement a probe reported (a Nagios plugin's perfdata), in the plugin's unit.",
            );
            for (labels, r) in checks() {
                for m in &r.metrics {
                    let _ = writeln!(
                        out,
                        "envgate_check_metric{{{labels},metric=\"{}\",unit=\"{}\"}} {}",
                        label(&m.name),
                        label(&m.unit),
                        m.value
                    );
                }
            }
        }
        header(
            &mut out,
            "envgate_env_success",
            "1 when the environment is ready (warnings allowed), else 0.",
        );
        for e in &report.environments {
            let ready = !matches!(e.status, crate::outcome::Status::Fail | crate::outcome::Status::Blocked);
            let _ = writeln!(
                out,
                "envgate_env_success{{env=\"{}\"}} {}",
                label(&e.name),
                u8::from(ready)
            );
        }
        header(
            &mut out,
            "envgate_run_success",
            "1 when every environment is ready (warnings allowed), else 0.",
        );
        let _ = writeln!(out, "envgate_run_success {}", u8::from(ok(report)));
        header(&mut out, "envgate_run_duration_seconds", "Time the whole run took.");
        let _ = writeln!(out, "envgate_run_duration_seconds {}", seconds(report.duration_ms));
        header(
            &mut out,
            "envgate_run_timestamp_seconds",
            "Unix time the report was written.",
        );
        let _ = writeln!(out, "envgate_run_timestamp_seconds {}", unix_seconds(style.now));
        out
    }
}

fn header(out: &mut String, name: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

fn seconds(ms: u64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

/// A label value: backslash, double quote and newline escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn one_status_series_per_check() {
        let out = Prometheus.render(&fixture::report(), fixture::style());
        let checks: usize = fixture::report().environments.iter().map(|e| e.results.len()).sum();
        assert_eq!(
            out.lines().filter(|l| l.starts_with("envgate_check_status{")).count(),
            checks
        );
        assert!(out.contains(
            "envgate_check_status{env=\"prod\",check=\"probe/orders-db\",category=\"probe\",kind=\"postgres\",status=\"fail\"} 1"
        ));
        assert!(out.contains("envgate_run_timestamp_seconds 1700000000\n"));
        assert!(out.contains("envgate_run_success 0\n"));
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
