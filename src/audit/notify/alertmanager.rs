//! Prometheus Alertmanager: `POST {url}/api/v2/alerts` with one alert whose
//! labels name the incident. A firing alert's `endsAt` is `ttl` ahead (each
//! reminder pushes it on), so an audit that stopped running does not leave
//! an alert firing forever; the resolve sets `endsAt` to the recovery time.

use serde_json::json;

use super::{Channel, Request};
use crate::audit::event::{Event, rfc3339};
use crate::audit::state::EventKind;

/// Default `ttl`: a day without a reminder and the alert ends by itself.
pub const DEFAULT_TTL: i64 = 24 * 3600;

pub fn request(ch: &Channel, e: &Event, now: i64) -> Result<Request, String> {
    let base = ch.url.clone().ok_or("an alertmanager channel needs `url`")?;
    let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
    let opened = e.incident.opened_at.clone();
    let ends = match e.event {
        EventKind::Resolve => e.incident.resolved_at.clone().unwrap_or_else(|| rfc3339(now)),
        _ => rfc3339(now + ch.ttl),
    };
    let mut annotations = json!({
        "summary": e.headline(),
        "message": e.message,
        "state": e.state,
        "incident": e.incident.id,
    });
    if let Some(w) = e.where_set() {
        annotations["where_set"] = w.into();
    }
    if let Some(t) = &e.target {
        annotations["target"] = t.clone().into();
    }
    if !e.config_changed.is_empty() {
        annotations["config_changed"] = e.config_changed.join(", ").into();
    }
    let alert = json!({
        "labels": {
            "alertname": "EnvgateCheckFailing",
            "project": e.project,
            "env": e.env,
            "check": e.check,
            "severity": if e.status == "warn" { "warning" } else { "critical" },
        },
        "annotations": annotations,
        "startsAt": opened,
        "endsAt": ends,
    });
    Ok(Request {
        url,
        body: json!([alert]),
    })
}
