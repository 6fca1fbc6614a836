//! `/badge/{env}.svg` and `/badge/{env}.json` (a shields.io endpoint): the
//! environment's readiness in words (colour is never the only signal).

use super::{EnvView, word};

fn colour(e: &EnvView) -> (&'static str, &'static str) {
    match (&e.status, e.ready) {
        (None, _) => ("#9f9f9f", "lightgrey"),
        (Some(_), true) => ("#2e7d32", "brightgreen"),
        (Some(_), false) => ("#c62828", "red"),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Text width in the badge's 11px sans-serif, roughly.
fn width(s: &str) -> usize {
    s.chars().count() * 7 + 12
}

pub fn svg(e: &EnvView) -> String {
    let label = format!("envgate {}", e.name);
    let message = word(e);
    let (fill, _) = colour(e);
    let (lw, mw) = (width(&label), width(message));
    let total = lw + mw;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{total}\" height=\"20\" role=\"img\" aria-label=\"{l}: {m}\">\
<title>{l}: {m}</title>\
<rect width=\"{lw}\" height=\"20\" fill=\"#555\"/><rect x=\"{lw}\" width=\"{mw}\" height=\"20\" fill=\"{fill}\"/>\
<g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,DejaVu Sans,sans-serif\" font-size=\"11\">\
<text x=\"{lx}\" y=\"14\">{l}</text><text x=\"{mx}\" y=\"14\">{m}</text></g></svg>\n",
        l = esc(&label),
        m = esc(message),
        lx = lw / 2,
        mx = lw + mw / 2,
    )
}

/// <https://shields.io/badges/endpoint-badge>
pub fn shields(e: &EnvView) -> String {
    let (_, colour) = colour(e);
    let v = serde_json::json!({
        "schemaVersion": 1,
        "label": format!("envgate {}", e.name),
        "message": word(e),
        "color": colour,
        "isError": e.status.is_some() && !e.ready,
    });
    format!("{v}\n")
}
