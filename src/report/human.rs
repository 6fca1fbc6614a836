//! `--format human`: every failing check as a diagnostic with its source
//! line and a caret, then one table row per environment, then the verdict.

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use miette::{GraphicalReportHandler, GraphicalTheme, Severity as MSeverity};

use super::text::grouped;
use super::{Reporter, Style};
use crate::diagnostic::Problem;
use crate::outcome::{Report, Status};

pub struct Human;

pub fn handler(style: Style) -> GraphicalReportHandler {
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    GraphicalReportHandler::new_themed(theme)
        .with_width(style.width)
        .with_links(false)
        .with_context_lines(1)
}

/// Render one diagnostic to text.
pub fn diagnostic(p: &Problem, style: Style) -> String {
    let mut out = String::new();
    handler(style)
        .render_report(&mut out, p)
        .expect("writing to a String cannot fail");
    out
}

/// `-q`: the problems and the verdict, or nothing at all when every
/// environment passed without a warning.
pub fn quiet(report: &Report, style: Style) -> String {
    let clean = report
        .environments
        .iter()
        .all(|e| e.status == Status::Pass && e.summary.warn == 0);
    if clean {
        return String::new();
    }
    let mut out = diagnostics(report, style);
    out.push_str(&verdict_line(report));
    out
}

/// `-v`: every passing check with its latency, before the usual output.
pub fn passing(report: &Report) -> String {
    let mut out = String::new();
    for env in &report.environments {
        for r in env
            .results
            .iter()
            .filter(|r| matches!(r.status, Status::Pass | Status::Flaky))
        {
            let took = r
                .duration_ms
                .map(|ms| {
                    format!(
                        " in {}",
                        crate::config::units::format_duration(std::time::Duration::from_millis(ms))
                    )
                })
                .unwrap_or_default();
            out.push_str(&format!("  ✓ [{}] {}{took}: {}\n", env.name, r.id, r.message));
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn diagnostics(report: &Report, style: Style) -> String {
    let mut out = String::new();
    let problems = grouped(report, |r| {
        !matches!(r.status, Status::Pass | Status::Skipped | Status::Flaky)
    });
    for g in problems {
        let r = g.result;
        let mut p = match &r.problem {
            Some(p) => p.clone(),
            None => Problem::new(format!("envgate::{}", r.id), r.message.clone()),
        };
        p.message = format!("[{}] {}", g.envs(), p.message);
        if r.status == Status::Warn {
            p.severity = MSeverity::Warning;
        }
        out.push_str(&diagnostic(&p, style));
        if let (Some(id), None) = (&r.request_id, &r.load) {
            out.push_str(&format!("  request id: {id}\n"));
        }
        out.push('\n');
    }
    for env in &report.environments {
        for r in env.results.iter().filter(|r| r.id == crate::check::SECRETS_OFFLINE) {
            out.push_str(&format!("  ℹ [{}] {}\n", env.name, r.message));
        }
    }
    out
}

impl Reporter for Human {
    fn render(&self, report: &Report, style: Style) -> String {
        let mut out = diagnostics(report, style);

        // Every load, passed or not: its percentiles and budgets.
        for env in &report.environments {
            for r in env.results.iter().filter(|r| r.load.is_some()) {
                let lines = super::text::load_lines(r).join("; ");
                let lines = lines.strip_prefix("load: ").unwrap_or(&lines);
                out.push_str(&format!("load [{}] {}: {lines}\n", env.name, r.name));
            }
        }
        let mut table = Table::new();
        table
            .load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header([
                "environment",
                "status",
                "pass",
                "warn",
                "fail",
                "flaky",
                "blocked",
                "skipped",
            ]);
        if !style.color {
            table.force_no_tty();
        }
        for env in &report.environments {
            let s = &env.summary;
            let mut status = Cell::new(verdict(env.status));
            if style.color {
                status = status.fg(match env.status {
                    Status::Pass => Color::Green,
                    Status::Warn | Status::Flaky => Color::Yellow,
                    _ => Color::Red,
                });
            }
            table.add_row(vec![
                Cell::new(&env.name),
                status,
                Cell::new(s.pass),
                Cell::new(s.warn),
                Cell::new(s.fail),
                Cell::new(s.flaky),
                Cell::new(s.blocked),
                Cell::new(s.skipped),
            ]);
        }
        out.push_str(&table.to_string());
        out.push('\n');
        out.push_str(&verdict_line(report));
        out
    }
}

fn verdict_line(report: &Report) -> String {
    let mut out = String::new();
    let failed: Vec<&str> = report
        .environments
        .iter()
        .filter(|e| matches!(e.status, Status::Fail | Status::Blocked))
        .map(|e| e.name.as_str())
        .collect();
    let problems: u32 = report
        .environments
        .iter()
        .map(|e| e.summary.fail + e.summary.blocked)
        .sum();
    let n = report.environments.len();
    if failed.is_empty() {
        out.push_str(&format!("✓ {n} environment{} ready\n", plural(n)));
    } else {
        out.push_str(&format!(
            "✗ {} of {n} environment{} not ready ({}): {problems} problem{}\n",
            failed.len(),
            plural(n),
            failed.join(", "),
            plural(problems as usize)
        ));
    }
    out
}

fn verdict(s: Status) -> &'static str {
    match s {
        Status::Pass => "✓ pass",
        Status::Warn => "! warn",
        Status::Flaky => "~ flaky",
        Status::Skipped => "- skipped",
        Status::Blocked => "✗ blocked",
        Status::Fail => "✗ fail",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
