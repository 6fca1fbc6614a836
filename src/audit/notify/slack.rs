//! A Slack incoming webhook: a fallback `text` and readable blocks (header,
//! the facts as fields, the message, where it was set). Slack's limits are
//! kept: a header of at most 150 characters, at most 10 fields of at most
//! 2,000, a section of at most 3,000.

use serde_json::{Value, json};

use super::{Channel, Request};
use crate::audit::event::{Event, human_duration};
use crate::audit::state::EventKind;

pub fn request(ch: &Channel, e: &Event) -> Result<Request, String> {
    let url = ch
        .url
        .clone()
        .ok_or("a slack channel needs `url` (the incoming webhook)")?;
    Ok(Request { url, body: body(e) })
}

pub fn body(e: &Event) -> Value {
    let (icon, what) = match e.event {
        EventKind::Trigger => ("🔴", "failing"),
        EventKind::Reminder => ("🔴", "still failing"),
        EventKind::Flapping => ("🟠", "flapping"),
        EventKind::Resolve => ("✅", "recovered"),
    };
    let header = cut(&format!("{icon} {}: {} {what}", e.env, e.check), 150);
    let mut fields = vec![
        field("Environment", &e.env),
        field("Check", &format!("`{}`", e.check)),
        field("Status", &e.status),
    ];
    let duration = human_duration(e.incident.duration_s);
    fields.push(field(
        if e.event == EventKind::Resolve {
            "Outage lasted"
        } else {
            "Failing for"
        },
        &duration,
    ));
    if let Some(w) = e.where_set() {
        fields.push(field("Where it was set", &format!("`{w}`")));
    }
    if let Some(t) = &e.target {
        fields.push(field("Target", &format!("`{t}`")));
    }
    if !e.config_changed.is_empty() {
        let keys: Vec<String> = e.config_changed.iter().map(|k| format!("`{k}`")).collect();
        fields.push(field("Configuration changed", &keys.join(", ")));
    }
    if !e.blocks.is_empty() {
        fields.push(field("Also blocked", &e.blocks.join(", ")));
    }
    fields.truncate(10);
    let blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
        json!({"type": "section", "fields": fields}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("```{}```", e.message), 3000)}}),
        json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": cut(&format!("{} · incident {} · envgate", e.project, e.incident.id), 300)}
        ]}),
    ];
    json!({"text": cut(&e.headline(), 3000), "blocks": blocks})
}

fn field(title: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": cut(&format!("*{title}*\n{value}"), 2000)})
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}
