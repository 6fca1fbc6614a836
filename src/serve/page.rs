//! The status page at `/`: one self-contained HTML page (no scripts, no
//! external assets) that refreshes itself. Each environment with its
//! readiness; each check with its state, how long it has been in it, its
//! uptime and a bar of its recent runs, lettered (colour is never the only
//! signal); each open incident with where the value was set and what
//! configuration changed since the check last passed.

use std::fmt::Write;
use std::time::Duration;

use super::{EnvView, word};
use crate::audit::event::{human_duration, rfc3339};
use crate::audit::history::{CheckHistory, History};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn pct(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("{:.2}%", r * 100.0))
}

fn parse(rfc: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc).ok().map(|d| d.timestamp())
}

/// One letter per status, so the bar reads without colour.
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

fn symbol(state: &str) -> &'static str {
    match state {
        "failing" => "✗",
        "flapping" => "~",
        _ => "✓",
    }
}

const CSS: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:1.5rem auto;max-width:72rem;padding:0 1rem;color:#1b1f24;background:#fff}\
h1{font-size:1.4rem}h2{font-size:1.2rem;margin:1.8rem 0 .4rem}.muted{color:#57606a}\
.pill{display:inline-block;padding:.05rem .55rem;border-radius:1rem;font-weight:600;border:2px solid}\
.pill.ready{color:#1a7f37;border-color:#1a7f37}.pill.not-ready{color:#cf222e;border-color:#cf222e}.pill.none{color:#57606a;border-color:#8c959f}\
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem}th,td{padding:.3rem .5rem;text-align:left;border-bottom:1px solid #d0d7de;vertical-align:top}\
.bar{display:flex;gap:1px;flex-wrap:wrap}.cell{display:inline-block;width:12px;height:18px;font:9px/18px monospace;text-align:center;color:#fff;border-radius:2px}\
.cell.pass,.cell.flaky{background:#1a7f37}.cell.warn{background:#9a6700}.cell.fail{background:#cf222e}.cell.blocked{background:#8250df}.cell.skipped{background:#8c959f}\
.state-failing{color:#cf222e;font-weight:600}.state-flapping{color:#9a6700;font-weight:600}.state-ok{color:#1a7f37}\
.incident{border-left:4px solid #cf222e;padding:.3rem .8rem;margin:.5rem 0;background:#fff8f8}.msg{font-family:monospace;white-space:pre-wrap;overflow-wrap:anywhere}\
@media (prefers-color-scheme:dark){body{background:#0d1117;color:#e6edf3}.muted{color:#8b949e}th,td{border-color:#30363d}.incident{background:#1c1214}}";

/// The page, as of `now`.
pub fn render(project: &str, h: &History, envs: &[EnvView], interval: Duration, now: i64) -> String {
    let refresh = interval.as_secs().clamp(5, 60);
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta http-equiv=\"refresh\" content=\"{refresh}\"><title>{p} status</title><style>{CSS}</style></head><body>\
<h1>{p} status</h1><p class=\"muted\">as of {at}; this page refreshes every {refresh}s</p>",
        p = esc(project),
        at = esc(&rfc3339(now)),
    );
    out.push_str("<table><thead><tr><th>environment</th><th>readiness</th><th>last run</th><th>checks not ok</th></tr></thead><tbody>");
    for e in envs {
        let _ = write!(
            out,
            "<tr><td><a href=\"#env-{n}\">{n}</a></td><td>{pill}</td><td>{last}</td><td>{bad} of {all}</td></tr>",
            n = esc(&e.name),
            pill = pill(e),
            last = e.last_run.map_or("never".into(), |t| format!(
                "{} ({} ago)",
                esc(&rfc3339(t)),
                human_duration(now - t)
            )),
            bad = e.not_ok,
            all = e.checks,
        );
    }
    out.push_str("</tbody></table>");
    for e in envs {
        let _ = write!(
            out,
            "<section id=\"env-{n}\" class=\"env\" data-env=\"{n}\" data-ready=\"{r}\"><h2>{n} {pill}</h2>",
            n = esc(&e.name),
            r = e.ready,
            pill = pill(e)
        );
        let Some(eh) = h.environments.iter().find(|x| x.name == e.name) else {
            out.push_str("<p>no run recorded yet</p></section>");
            continue;
        };
        let open: Vec<_> = eh.incidents.iter().filter(|i| i.open).collect();
        if !open.is_empty() {
            let _ = write!(out, "<h3>open incidents ({})</h3>", open.len());
        }
        for i in open {
            let _ = write!(
                out,
                "<div class=\"incident\" data-check=\"{c}\"><strong>● open{fl}</strong> <code>{c}</code> since {at} (for {dur})\
<div class=\"msg\">{m}</div>",
                c = esc(&i.check),
                fl = if i.flapping { ", flapping" } else { "" },
                at = esc(&i.opened_at),
                dur = esc(&human_duration(i.duration_s)),
                m = esc(&i.message),
            );
            if let Some(w) = &i.where_set {
                let _ = write!(out, "<div>where it was set: <code>{}</code></div>", esc(w));
            }
            if !i.config_changed.is_empty() {
                let _ = write!(
                    out,
                    "<div>configuration changed since it last passed: <code>{}</code></div>",
                    esc(&i.config_changed.join(", "))
                );
            }
            if !i.blocks.is_empty() {
                let _ = write!(
                    out,
                    "<div>also blocked: <code>{}</code></div>",
                    esc(&i.blocks.join(", "))
                );
            }
            out.push_str("</div>");
        }
        out.push_str(
            "<table><thead><tr><th>check</th><th>state</th><th>for</th><th>uptime 1d</th><th>7d</th><th>30d</th>\
<th>recent runs (oldest first; P pass, W warn, F fail, B blocked, R passed on retry, S skipped)</th></tr></thead><tbody>",
        );
        for c in &eh.checks {
            row(&mut out, c, now);
        }
        out.push_str("</tbody></table></section>");
    }
    out.push_str("</body></html>\n");
    out
}

fn pill(e: &EnvView) -> String {
    let (class, sym) = match (&e.status, e.ready) {
        (None, _) => ("none", "?"),
        (Some(_), true) => ("ready", "✓"),
        (Some(_), false) => ("not-ready", "✗"),
    };
    format!("<span class=\"pill {class}\">{sym} {}</span>", word(e))
}

fn row(out: &mut String, c: &CheckHistory, now: i64) {
    let since = parse(&c.since).map_or("–".into(), |t| human_duration(now - t));
    let _ = write!(
        out,
        "<tr class=\"check\" data-check=\"{id}\" data-state=\"{s}\"><td><code>{id}</code>{msg}</td>\
<td class=\"state-{s}\">{sym} {s}</td><td>{since}</td><td>{d1}</td><td>{d7}</td><td>{d30}</td><td><span class=\"bar\">",
        id = esc(&c.id),
        s = esc(&c.state),
        sym = symbol(&c.state),
        msg = match (&c.last_message, c.state.as_str()) {
            (Some(m), "failing" | "flapping") => format!("<div class=\"msg muted\">{}</div>", esc(m)),
            _ => String::new(),
        },
        d1 = pct(c.uptime.d1),
        d7 = pct(c.uptime.d7),
        d30 = pct(c.uptime.d30),
    );
    for cell in &c.recent {
        let _ = write!(
            out,
            "<span class=\"cell {s}\" title=\"{at}: {s}\">{l}</span>",
            s = esc(&cell.status),
            at = esc(&cell.at),
            l = letter(&cell.status)
        );
    }
    out.push_str("</span></td></tr>");
}
