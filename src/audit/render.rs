//! `envgate history` for people: a table per environment and its incidents
//! (human), or one self-contained HTML page where each check's recent runs
//! are a strip of cells, coloured and lettered (colour is never the only
//! signal).

use std::fmt::Write;

use super::event::human_duration;
use super::history::{CheckHistory, History};

fn pct(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("{:.2}%", r * 100.0))
}

fn streak(n: i64) -> String {
    match n {
        0 => "–".into(),
        n if n > 0 => format!("{n} pass"),
        n => format!("{} fail", -n),
    }
}

fn short_time(rfc: &str) -> String {
    rfc.replace('T', " ").trim_end_matches('Z').to_string()
}

pub fn human(h: &History, color: bool) -> String {
    let mut out = String::new();
    if h.environments.is_empty() {
        out.push_str("no audit runs recorded yet: run `envgate audit --env ENV` first\n");
        return out;
    }
    for e in &h.environments {
        let last = e.last_run.as_ref().map_or("never".to_string(), |r| {
            format!(
                "{} ({}, {} runs in the last day, on {})",
                short_time(&r.started_at),
                r.status,
                r.runs_last_day,
                r.host
            )
        });
        let _ = writeln!(out, "{}: last run {last}", e.name);
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
        if !color {
            t.force_no_tty();
        }
        t.set_header(["check", "state", "streak", "last pass", "1d", "7d", "30d"]);
        for c in &e.checks {
            t.add_row([
                c.id.clone(),
                state_text(c),
                streak(c.streak),
                c.last_pass.as_deref().map_or("never".into(), short_time),
                pct(c.uptime.d1),
                pct(c.uptime.d7),
                pct(c.uptime.d30),
            ]);
        }
        let _ = writeln!(out, "{t}");
        if !e.incidents.is_empty() {
            let _ = writeln!(out, "incidents since {}:", short_time(&h.since));
        }
        for i in &e.incidents {
            let head = if i.open {
                format!(
                    "● open      {} since {} ({}{})",
                    i.check,
                    short_time(&i.opened_at),
                    human_duration(i.duration_s),
                    if i.flapping { ", flapping" } else { "" }
                )
            } else {
                format!(
                    "✓ resolved  {} {} → {} (lasted {})",
                    i.check,
                    short_time(&i.opened_at),
                    i.resolved_at.as_deref().map(short_time).unwrap_or_default(),
                    human_duration(i.duration_s)
                )
            };
            let _ = writeln!(out, "  {head}");
            let _ = writeln!(out, "            {}", i.message);
            if let Some(w) = &i.where_set {
                let _ = writeln!(out, "            set at {w}");
            }
            if !i.config_changed.is_empty() {
                let _ = writeln!(
                    out,
                    "            configuration changed since it last passed: {}",
                    i.config_changed.join(", ")
                );
            }
            if !i.blocks.is_empty() {
                let _ = writeln!(out, "            also blocked: {}", i.blocks.join(", "));
            }
        }
        for u in &e.undelivered {
            let _ = writeln!(
                out,
                "  ! notification `{}` of {} to `{}` {}{}",
                u.event,
                u.incident,
                u.channel,
                if u.state == "rejected" {
                    "was rejected"
                } else {
                    "is not delivered yet"
                },
                u.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
            );
        }
    }
    out
}

fn state_text(c: &CheckHistory) -> String {
    match c.state.as_str() {
        "failing" => format!("✗ failing since {}", short_time(&c.since)),
        "flapping" => format!("~ flapping since {}", short_time(&c.since)),
        _ => "✓ ok".into(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1b1f24}\
table{border-collapse:collapse;margin:0 0 1.5rem}th,td{padding:.3rem .6rem;text-align:left;border-bottom:1px solid #d0d7de;vertical-align:top}\
.strip{display:flex;gap:2px}.cell{display:inline-block;width:14px;height:18px;font:10px/18px monospace;text-align:center;color:#fff;border-radius:2px}\
.cell.pass,.cell.flaky{background:#1a7f37}.cell.warn{background:#9a6700}.cell.fail{background:#cf222e}.cell.blocked{background:#8250df}.cell.skipped{background:#8c959f}\
.state-failing{color:#cf222e;font-weight:600}.state-flapping{color:#9a6700;font-weight:600}.state-ok{color:#1a7f37}\
.incident{margin:.3rem 0 .8rem}.incident .msg{font-family:monospace;white-space:pre-wrap}";

/// One letter per status, so the strip reads without colour.
fn letter(status: &str) -> &'static str {
    match status {
        "pass" => "P",
        "flaky" => "R",
        "warn" => "W",
        "fail" => "F",
        "blocked" => "B",
        _ => "S",
    }
}

pub fn html(h: &History) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>envgate history</title>\
         <style>{CSS}</style></head><body><h1>envgate history</h1><p>generated {}</p>",
        esc(&short_time(&h.generated_at))
    );
    for e in &h.environments {
        let _ = write!(
            out,
            "<section class=\"env\" data-env=\"{0}\"><h2>{0}</h2>",
            esc(&e.name)
        );
        if let Some(r) = &e.last_run {
            let _ = write!(
                out,
                "<p>last run {} ({}), {} runs in the last day</p>",
                esc(&short_time(&r.started_at)),
                esc(&r.status),
                r.runs_last_day
            );
        }
        out.push_str(
            "<table><thead><tr><th>check</th><th>state</th><th>streak</th><th>last pass</th><th>1d</th><th>7d</th>\
             <th>30d</th><th>recent runs (oldest first)</th></tr></thead><tbody>",
        );
        for c in &e.checks {
            let _ = write!(
                out,
                "<tr class=\"check\" data-check=\"{}\" data-state=\"{}\"><td>{}</td><td class=\"state-{}\">{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"strip\">",
                esc(&c.id),
                esc(&c.state),
                esc(&c.id),
                esc(&c.state),
                esc(&state_text(c)),
                esc(&streak(c.streak)),
                esc(&c.last_pass.as_deref().map_or("never".into(), short_time)),
                pct(c.uptime.d1),
                pct(c.uptime.d7),
                pct(c.uptime.d30)
            );
            for cell in &c.recent {
                let _ = write!(
                    out,
                    "<span class=\"cell {0}\" data-status=\"{0}\" title=\"{1}: {0}\">{2}</span>",
                    esc(&cell.status),
                    esc(&short_time(&cell.at)),
                    letter(&cell.status)
                );
            }
            out.push_str("</span></td></tr>");
        }
        out.push_str("</tbody></table>");
        if !e.incidents.is_empty() {
            out.push_str("<h3>incidents</h3>");
        }
        for i in &e.incidents {
            let _ = write!(
                out,
                "<div class=\"incident\" data-open=\"{}\"><strong>{}</strong> {} — {}, {} {}<div class=\"msg\">{}</div>",
                i.open,
                if i.open { "● open" } else { "✓ resolved" },
                esc(&i.check),
                esc(&short_time(&i.opened_at)),
                if i.open { "for" } else { "lasted" },
                esc(&human_duration(i.duration_s)),
                esc(&i.message)
            );
            if let Some(w) = &i.where_set {
                let _ = write!(out, "<div>set at <code>{}</code></div>", esc(w));
            }
            if !i.config_changed.is_empty() {
                let _ = write!(
                    out,
                    "<div>configuration changed since it last passed: <code>{}</code></div>",
                    esc(&i.config_changed.join(", "))
                );
            }
            out.push_str("</div>");
        }
        out.push_str("</section>");
    }
    out.push_str("</body></html>\n");
    out
}
