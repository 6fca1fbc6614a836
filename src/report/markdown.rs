//! `--format markdown`: a pull-request comment (also what envgate appends to
//! `$GITHUB_STEP_SUMMARY`). One summary line with the verdict and counts,
//! then a table of failures, blocked checks and warnings, then everything
//! else folded in `<details>`.
//!
//! GitHub refuses comments over 65,536 characters, so rows are dropped from
//! the end (passes before problems) and a line says how many were cut. Cells
//! are escaped: pipes, newlines, HTML and emphasis characters in a message
//! cannot break the table.

use super::text::{counts, file_line, grouped, ok, totals, verdict};
use super::{Reporter, Style};
use crate::outcome::{CheckResult, Report, Status};

pub struct Markdown;

/// GitHub's limit for a comment body and a step summary.
pub const LIMIT: usize = 65_536;
/// Kept free for the closing tags and the truncation note.
const RESERVE: usize = 400;

impl Reporter for Markdown {
    fn render(&self, report: &Report, style: Style) -> String {
        render_linked(report, LIMIT, style.source_links)
    }
}

/// What a path segment may not hold as is in a Markdown link's URL.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'[')
    .add(b']')
    .add(b'(')
    .add(b')')
    .add(b'|')
    .add(b'\\');

/// The origin cell: `` `file:line` ``, linked to that line on the forge when known.
fn origin(r: &CheckResult, links: Option<&str>) -> String {
    let Some(text) = file_line(r) else {
        return String::new();
    };
    match (links, &r.location) {
        (Some(base), Some(l)) => {
            let path: String = l
                .file
                .split('/')
                .map(|s| percent_encoding::utf8_percent_encode(s, PATH_SEGMENT).to_string())
                .collect::<Vec<_>>()
                .join("/");
            format!("[`{}`]({base}{path}#L{})", code(&text), l.line)
        }
        _ => format!("`{}`", code(&text)),
    }
}

fn render_linked(report: &Report, limit: usize, links: Option<&str>) -> String {
    let budget = limit.saturating_sub(RESERVE);
    let mut out = summary_line(report);

    // A problem that several environments share is one row naming them all.
    let problem = |r: &CheckResult| matches!(r.status, Status::Fail | Status::Blocked | Status::Warn);
    let mut problems: Vec<(String, &CheckResult)> = grouped(report, problem)
        .into_iter()
        .map(|g| (g.envs(), g.result))
        .collect();
    let mut others: Vec<(&str, &CheckResult)> = Vec::new();
    for env in &report.environments {
        for r in env.results.iter().filter(|r| !problem(r)) {
            others.push((env.name.as_str(), r));
        }
    }
    // Failures first, then blocked, then warnings; report order within each.
    problems.sort_by_key(|(_, r)| std::cmp::Reverse(r.status));
    others.sort_by_key(|(_, r)| std::cmp::Reverse(r.status));

    let mut cut = 0;
    if !problems.is_empty() {
        out.push_str("\n| status | check | environment | message | origin |\n|---|---|---|---|---|\n");
        for (i, (env, r)) in problems.iter().enumerate() {
            let origin = origin(r, links);
            let row = format!(
                "| {} | `{}` | {} | {} | {origin} |\n",
                badge(r.status),
                code(&r.id),
                cell(env),
                cell(&message(r))
            );
            if out.len() + row.len() > budget {
                cut += problems.len() - i;
                break;
            }
            out.push_str(&row);
        }
    }
    if !others.is_empty() {
        let head = format!(
            "\n<details><summary>{}</summary>\n\n| status | check | environment | message |\n|---|---|---|---|\n",
            counts_of_others(&others)
        );
        if cut > 0 || out.len() + head.len() > budget {
            cut += others.len();
        } else {
            out.push_str(&head);
            for (i, (env, r)) in others.iter().enumerate() {
                let row = format!(
                    "| {} | `{}` | {} | {} |\n",
                    badge(r.status),
                    code(&r.id),
                    cell(env),
                    cell(&with_load(r))
                );
                if out.len() + row.len() > budget {
                    cut += others.len() - i;
                    break;
                }
                out.push_str(&row);
            }
            out.push_str("\n</details>\n");
        }
    }
    if cut > 0 {
        out.push_str(&format!(
            "\n_{cut} more result{} not shown: a comment holds at most {LIMIT} characters. \
             Write the full report with `--report json=envgate.json` or `--report html=envgate.html`._\n",
            if cut == 1 { "" } else { "s" }
        ));
    }
    out
}

fn summary_line(report: &Report) -> String {
    let t = totals(report);
    let icon = if !ok(report) {
        "❌"
    } else if t.warn > 0 {
        "⚠️"
    } else {
        "✅"
    };
    format!("### {icon} envgate: {} · {}\n", cell(&verdict(report)), counts(&t))
}

fn counts_of_others(others: &[(&str, &CheckResult)]) -> String {
    let n = |s: Status| others.iter().filter(|(_, r)| r.status == s).count();
    let mut parts = vec![format!("{} passed", n(Status::Pass))];
    if n(Status::Flaky) > 0 {
        parts.push(format!("{} flaky", n(Status::Flaky)));
    }
    if n(Status::Skipped) > 0 {
        parts.push(format!("{} skipped", n(Status::Skipped)));
    }
    parts.join(", ")
}

fn badge(s: Status) -> &'static str {
    match s {
        Status::Pass => "✅ pass",
        Status::Warn => "⚠️ warn",
        Status::Fail => "❌ fail",
        Status::Flaky => "🔁 flaky",
        Status::Blocked => "⛔ blocked",
        Status::Skipped => "⏭️ skipped",
    }
}

/// The message, with what to do about it for problems.
fn message(r: &CheckResult) -> String {
    let mut m = r.message.clone();
    if r.load.is_some() || r.request_id.is_some() {
        m = with_load(r);
    }
    match &r.help {
        Some(h) => format!("{m}\nhelp: {h}"),
        None => m,
    }
}

/// The message, then the load's budgets and the request ids to look up.
fn with_load(r: &CheckResult) -> String {
    let mut m = r.message.clone();
    for l in super::text::load_lines(r)
        .into_iter()
        .skip(usize::from(r.load.is_some()))
    {
        m.push('\n');
        m.push_str(&l);
    }
    m
}

/// Text in a table cell: nothing in it may end the row or the cell, open an
/// HTML tag or start emphasis.
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '*' => out.push_str("\\*"),
            '`' => out.push_str("\\`"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Text inside a code span in a table cell: only the pipe needs escaping
/// (GFM unescapes `\|` there), and a backtick or newline would end the span.
fn code(s: &str) -> String {
    s.replace('|', "\\|").replace(['`', '\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::EnvReport;
    use crate::report::fixture;

    #[test]
    fn escapes_pipes_and_newlines_in_cells() {
        let md = Markdown.render(&fixture::report(), fixture::style());
        assert!(
            md.contains(r"database.pool\_size is 5 \| prod") || md.contains(r"database.pool_size is 5 \| prod"),
            "{md}"
        );
        assert!(md.contains("2 pending migrations<br>0042_add_orders_index"), "{md}");
        assert!(md.contains("&lt;tmp&gt;"), "{md}");
        for line in md.lines().filter(|l| l.starts_with("| ")) {
            let cells = line.replace("\\|", "").matches('|').count();
            assert!(cells == 6 || cells == 5, "row breaks the table: {line}");
        }
    }

    #[test]
    fn stays_under_the_comment_limit_and_says_what_was_cut() {
        let mut report = fixture::report();
        let template = report.environments[0].results[4].clone();
        let results: Vec<_> = (0..2000)
            .map(|i| CheckResult {
                id: format!("probe/db-{i}"),
                message: format!("cannot connect to db-{i}: {}", "connection refused ".repeat(4)),
                ..template.clone()
            })
            .collect();
        report.environments.push(EnvReport::new("big".into(), results));
        let md = Markdown.render(&report, fixture::style());
        assert!(md.len() <= LIMIT, "{} characters", md.len());
        let total: usize = report.environments.iter().map(|e| e.results.len()).sum();
        let rows = md
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| status"))
            .count();
        assert!(rows > 300, "{rows} rows shown");
        assert!(
            md.contains(&format!("_{} more results not shown", total - rows)),
            "{}",
            &md[md.len() - 300..]
        );
        assert!(!md.contains("<details>"), "passes are cut before problems");
    }
}
