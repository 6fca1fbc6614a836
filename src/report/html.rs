//! `--format html`: one self-contained page (inline CSS and JS, nothing
//! fetched) to attach to a CI run or open from disk. A verdict banner, counts
//! per status (click to filter), a table per environment of every check,
//! problems first, filterable by status, environment, category and text,
//! with each check's details (help, origin, target, attempts, duration).
//!
//! Filters live in the URL fragment (`report.html#status=fail&env=prod&q=db`)
//! so a link can point at a view. Every piece of report text is escaped; the
//! page works without JavaScript (all rows shown).

use std::fmt::Write;

use super::text::{category, counts, html_escape as esc, ok, rfc3339, severity, totals, verdict};
use super::{Reporter, Style};
use crate::outcome::{CheckResult, Report, Status};

pub struct Html;

const CSS: &str = include_str!("html.css");
const JS: &str = include_str!("html.js");

const STATUSES: [Status; 6] = [
    Status::Fail,
    Status::Blocked,
    Status::Warn,
    Status::Flaky,
    Status::Pass,
    Status::Skipped,
];

impl Reporter for Html {
    fn render(&self, report: &Report, style: Style) -> String {
        let t = totals(report);
        let verdict_text = verdict(report);
        let banner = if !ok(report) {
            "fail"
        } else if t.warn > 0 {
            "warn"
        } else {
            "pass"
        };
        let mut o = String::new();
        let _ = write!(
            o,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>envgate: {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
            esc(&verdict_text)
        );
        let _ = write!(
            o,
            "<header class=\"banner {banner}\">\n<h1>{} {}</h1>\n<p>{} · {} {} · generated {} · run took {} ms</p>\n</header>\n",
            if banner == "fail" { "✗" } else { "✓" },
            esc(&verdict_text),
            esc(&counts(&t)),
            esc(&report.tool.name),
            esc(&report.tool.version),
            rfc3339(style.now),
            report.duration_ms
        );

        o.push_str("<main>\n<nav class=\"counts\" aria-label=\"counts\">\n");
        for s in STATUSES {
            let n = report
                .environments
                .iter()
                .flat_map(|e| &e.results)
                .filter(|r| r.status == s)
                .count();
            let _ = writeln!(
                o,
                "<button type=\"button\" class=\"count {0}\" data-status=\"{0}\"><b>{n}</b> {0}</button>",
                s.as_str()
            );
        }
        o.push_str("</nav>\n");

        o.push_str("<table class=\"envs\">\n<thead><tr><th>environment</th><th>status</th><th>summary</th></tr></thead>\n<tbody>\n");
        for e in &report.environments {
            let _ = writeln!(
                o,
                "<tr><td>{0}</td><td><span class=\"badge {1}\">{1}</span></td><td>{2}</td></tr>",
                esc(&e.name),
                e.status.as_str(),
                esc(&counts(&e.summary))
            );
        }
        o.push_str("</tbody>\n</table>\n");

        o.push_str("<form id=\"filters\" class=\"filters\" onsubmit=\"return false\">\n");
        select(&mut o, "status", STATUSES.iter().map(|s| s.as_str().to_string()));
        select(&mut o, "env", report.environments.iter().map(|e| e.name.clone()));
        let mut cats: Vec<&str> = report
            .environments
            .iter()
            .flat_map(|e| &e.results)
            .map(|r| category(r.category))
            .collect();
        cats.dedup();
        cats.sort_unstable();
        cats.dedup();
        select(&mut o, "category", cats.into_iter().map(str::to_string));
        o.push_str(
            "<label>search <input type=\"search\" id=\"f-q\" name=\"q\" placeholder=\"check, message, key, file…\"></label>\n\
             <output id=\"shown\"></output>\n</form>\n",
        );

        o.push_str(
            "<table id=\"results\" class=\"results\">\n<thead><tr><th>status</th><th>environment</th><th>category</th>\
             <th>check</th><th>message</th><th>origin</th></tr></thead>\n<tbody>\n",
        );
        let mut rows: Vec<(&str, &CheckResult)> = report
            .environments
            .iter()
            .flat_map(|e| e.results.iter().map(move |r| (e.name.as_str(), r)))
            .collect();
        rows.sort_by_key(|(_, r)| std::cmp::Reverse(r.status));
        for (env, r) in rows {
            row(&mut o, env, r);
        }
        o.push_str("<tr id=\"none\" hidden><td colspan=\"6\">no check matches these filters</td></tr>\n</tbody>\n</table>\n</main>\n");
        let _ = write!(o, "<script>\n{JS}</script>\n</body>\n</html>\n");
        o
    }
}

fn select(o: &mut String, name: &str, values: impl Iterator<Item = String>) {
    let _ = write!(
        o,
        "<label>{name} <select id=\"f-{name}\" name=\"{name}\"><option value=\"\">all</option>"
    );
    for v in values {
        let _ = write!(o, "<option>{}</option>", esc(&v));
    }
    o.push_str("</select></label>\n");
}

fn row(o: &mut String, env: &str, r: &CheckResult) {
    let status = r.status.as_str();
    let cat = category(r.category);
    let origin = r
        .location
        .as_ref()
        .map(|l| format!("<code>{}:{}:{}</code>", esc(&l.file), l.line, l.column))
        .unwrap_or_default();
    let _ = write!(
        o,
        "<tr class=\"{status}\" data-status=\"{status}\" data-env=\"{}\" data-category=\"{cat}\">\
         <td><span class=\"badge {status}\">{status}</span></td><td>{}</td><td>{cat}</td><td><code>{}</code></td>\
         <td><div class=\"msg\">{}</div>",
        esc(env),
        esc(env),
        esc(&r.id),
        inline_code(&r.message)
    );
    let mut details = Vec::new();
    let mut add = |k: &str, v: String| details.push(format!("<dt>{k}</dt><dd>{v}</dd>"));
    if let Some(h) = &r.help {
        add("help", inline_code(h));
    }
    if let Some(l) = &r.location {
        add(
            "origin",
            format!("<code>{}:{}:{}</code>", esc(&l.file), l.line, l.column),
        );
    }
    if let Some(k) = &r.key {
        add("key", format!("<code>{}</code>", esc(k)));
    }
    if let Some(k) = &r.kind {
        add("kind", esc(k));
    }
    if let Some(t) = &r.target {
        add("target", format!("<code>{}</code>", esc(t)));
    }
    if let Some(a) = r.attempts {
        add("attempts", a.to_string());
    }
    if let Some(d) = r.duration_ms {
        add("duration", format!("{d} ms"));
    }
    if let Some(l) = &r.load {
        add("load", load_html(l));
    }
    if let Some(id) = &r.request_id {
        add("request id", format!("<code>{}</code>", esc(id)));
    }
    add("severity", severity(r.severity).to_string());
    let open = if matches!(r.status, Status::Fail | Status::Blocked | Status::Warn) {
        " open"
    } else {
        ""
    };
    let _ = writeln!(
        o,
        "<details{open}><summary>details</summary><dl>{}</dl></details></td><td>{origin}</td></tr>",
        details.concat()
    );
}

/// A load's figures, budgets, request ids and a small latency chart: one
/// bar per percentile of the distribution, inline SVG (nothing fetched).
fn load_html(l: &crate::outcome::LoadReport) -> String {
    use super::text::{load_budgets, load_ms};
    let mut o = format!(
        "{} requests, {} errors, {}/s<br>p50 {} · p90 {} · p95 {} · p99 {} · max {}",
        l.count,
        l.errors,
        l.throughput.round(),
        load_ms(l.p50_ms),
        load_ms(l.p90_ms),
        load_ms(l.p95_ms),
        load_ms(l.p99_ms),
        load_ms(l.max_ms)
    );
    if !l.budgets.is_empty() {
        let _ = write!(o, "<br>budgets: {}", esc(&load_budgets(l)));
    }
    if let Some(id) = &l.slowest_request_id {
        let _ = write!(o, "<br>slowest request: <code>{}</code>", esc(id));
    }
    if let Some(id) = &l.failed_request_id {
        let _ = write!(o, "<br>first failed request: <code>{}</code>", esc(id));
    }
    let top = l.distribution.iter().map(|p| p.ms).fold(0.0_f64, f64::max).max(0.001);
    let (w, h, bar) = (40 * l.distribution.len(), 120usize, 30);
    let _ = write!(
        o,
        "<br><svg class=\"latency\" role=\"img\" aria-label=\"latency by percentile\" width=\"{w}\" height=\"{}\" viewBox=\"0 0 {w} {}\">",
        h + 30,
        h + 30
    );
    for (i, p) in l.distribution.iter().enumerate() {
        let bh = ((p.ms / top) * (h - 14) as f64).round().max(1.0) as usize;
        let x = i * 40 + 5;
        let label = if p.percentile == 100.0 {
            "max".to_string()
        } else {
            format!("p{}", p.percentile)
        };
        let _ = write!(
            o,
            "<rect x=\"{x}\" y=\"{}\" width=\"{bar}\" height=\"{bh}\" fill=\"#4a78c2\"><title>{label}: {}</title></rect>\
             <text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">{}</text>\
             <text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">{label}</text>",
            h - bh,
            load_ms(p.ms),
            x + bar / 2,
            (h - bh).saturating_sub(2).max(9),
            load_ms(p.ms).trim_end_matches("ms"),
            x + bar / 2,
            h + 12
        );
    }
    let _ = write!(
        o,
        "<text x=\"0\" y=\"{}\" font-size=\"9\">latency (ms) by percentile</text></svg>",
        h + 27
    );
    o
}

/// Escaped text in which each `` `span` `` is a `<code>` element, as
/// Markdown would show it; an unpaired backtick stays a backtick.
fn inline_code(text: &str) -> String {
    let mut out = String::new();
    let mut parts = text.split('`').peekable();
    let mut inside = false;
    let mut pieces = 0;
    while let Some(p) = parts.next() {
        pieces += 1;
        // The last piece after an odd number of backticks is unpaired.
        if inside && parts.peek().is_none() && pieces % 2 == 0 {
            out.push('`');
            out.push_str(&esc(p));
            break;
        }
        if inside {
            out.push_str(&format!("<code>{}</code>", esc(p)));
        } else {
            out.push_str(&esc(p));
        }
        inside = !inside;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn inline_code_becomes_code_elements_and_stays_escaped() {
        assert_eq!(
            inline_code("`a.b` is <bad> and `x<y>`"),
            "<code>a.b</code> is &lt;bad&gt; and <code>x&lt;y&gt;</code>"
        );
        assert_eq!(inline_code("no code"), "no code");
        assert_eq!(inline_code("one ` alone"), "one ` alone");
    }

    #[test]
    fn escapes_text_and_fetches_nothing() {
        let page = Html.render(&fixture::report(), fixture::style());
        assert!(page.contains("0043_drop_legacy_&lt;tmp&gt;_table"));
        assert!(!page.contains("<tmp>"));
        for external in ["src=", "href=", "@import", "url(", "http-equiv"] {
            assert!(
                !page.contains(external),
                "page references something external: {external}"
            );
        }
    }
}
