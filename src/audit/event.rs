//! An incident event as the channels receive it. The generic webhook gets
//! this body as is; Slack, PagerDuty and Alertmanager get it in their own
//! shapes (see `notify`). Built from redacted results only.

use serde::{Deserialize, Serialize};

use super::state::EventKind;

pub const EVENT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub version: u32,
    pub event: EventKind,
    pub project: String,
    pub env: String,
    pub check: String,
    pub incident: IncidentInfo,
    pub status: String,
    pub message: String,
    pub location: Option<Loc>,
    pub target: Option<String>,
    pub consecutive_failures: u32,
    /// Keys whose values differ from the last run in which the check passed.
    pub config_changed: Vec<String>,
    /// Unique per event: receivers may use it to drop a repeat.
    pub event_id: String,
    /// When the event happened (RFC 3339).
    pub at: String,
    /// Probe kind, for probes.
    pub kind: Option<String>,
    /// The failure class (`refused`, `timeout`, `schema`, ...).
    pub class: Option<String>,
    /// Where the blamed value came from, as a sentence fragment.
    pub origin: Option<String>,
    /// Checks that did not run because this one failed.
    pub blocks: Vec<String>,
    /// The state the check is in: `failing`, `flapping` or `ok`.
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentInfo {
    pub id: String,
    pub opened_at: String,
    pub resolved_at: Option<String>,
    pub duration_s: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loc {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

/// Unix seconds as RFC 3339 UTC: `2026-11-28T14:30:00Z`.
pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// `2h13m`, `45s`: how long an outage lasted, for people.
pub fn human_duration(secs: i64) -> String {
    crate::config::units::format_duration(std::time::Duration::from_secs(secs.max(0) as u64))
}

impl Event {
    /// One line for people: `prod probe/orders-db failing: refused: ...`.
    pub fn headline(&self) -> String {
        match self.event {
            EventKind::Trigger => format!("[{}] {} is failing: {}", self.env, self.check, self.message),
            EventKind::Reminder => format!(
                "[{}] {} still failing after {}: {}",
                self.env,
                self.check,
                human_duration(self.incident.duration_s),
                self.message
            ),
            EventKind::Flapping => format!(
                "[{}] {} is flapping (passing and failing by turns): {}",
                self.env, self.check, self.message
            ),
            EventKind::Resolve => format!(
                "[{}] {} recovered after {}",
                self.env,
                self.check,
                human_duration(self.incident.duration_s)
            ),
        }
    }

    /// "where it was set", for people: `environments/prod.toml:8:7`, or the
    /// origin when no file is to blame.
    pub fn where_set(&self) -> Option<String> {
        match (&self.location, &self.origin) {
            (Some(l), _) => Some(format!("{}:{}:{}", l.file, l.line, l.column)),
            (None, Some(o)) => Some(o.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_rfc3339() {
        assert_eq!(rfc3339(1_764_340_200), "2025-11-28T14:30:00Z");
        assert_eq!(human_duration(7980), "2h13m");
    }
}
