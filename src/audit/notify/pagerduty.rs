//! PagerDuty Events API v2: `trigger` with the incident's id as `dedup_key`
//! (a reminder or a flapping notice re-triggers the same alert, which
//! PagerDuty deduplicates), `resolve` on recovery.

use serde_json::json;

use super::{Channel, Request};
use crate::audit::event::Event;
use crate::audit::state::EventKind;

pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

pub fn request(ch: &Channel, e: &Event) -> Result<Request, String> {
    let key = ch
        .routing_key
        .clone()
        .ok_or("a pagerduty channel needs `routing_key`")?;
    let url = ch.url.clone().unwrap_or_else(|| DEFAULT_URL.to_string());
    let body = if e.event == EventKind::Resolve {
        json!({"routing_key": key, "event_action": "resolve", "dedup_key": e.incident.id})
    } else {
        let summary: String = e.headline().chars().take(1024).collect();
        json!({
            "routing_key": key,
            "event_action": "trigger",
            "dedup_key": e.incident.id,
            "payload": {
                "summary": summary,
                "source": format!("{}/{}", e.project, e.env),
                "severity": if e.status == "warn" { "warning" } else { "critical" },
                "timestamp": e.at,
                "component": e.check,
                "group": e.env,
                "class": e.class.clone().unwrap_or_else(|| e.status.clone()),
                "custom_details": {
                    "event": e.event,
                    "state": e.state,
                    "message": e.message,
                    "where_set": e.where_set(),
                    "target": e.target,
                    "consecutive_failures": e.consecutive_failures,
                    "config_changed": e.config_changed,
                    "blocks": e.blocks,
                    "opened_at": e.incident.opened_at,
                }
            },
            "client": "envgate",
        })
    };
    Ok(Request { url, body })
}
