//! `[audit]` and `[[audit.notify]]` in the manifest: where the audit's
//! history is kept, when a check's state changes, and who hears about it.
//! Durations and store URLs are checked while the manifest is read, so a bad
//! value is reported at its line and column like any other manifest mistake.
//! Channel URLs and keys are usually `${secret:env:NAME}` references; they are
//! resolved only when a notification is sent, never here.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};

/// The default store, relative to the project root.
pub const DEFAULT_STORE: &str = "sqlite:.envgate/history.db";

#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditTable {
    /// `sqlite:PATH` (relative to the project; the default is
    /// `sqlite:.envgate/history.db`) or `postgres://...` shared by many runners.
    /// May contain `${secret:env:NAME}`.
    #[serde(default, deserialize_with = "store_url")]
    pub store: Option<String>,
    /// Consecutive failing runs before an incident opens (default 2).
    #[serde(default, deserialize_with = "at_least_one")]
    pub fail_after: Option<u32>,
    /// Consecutive passing runs before an incident resolves (default 2).
    #[serde(default, deserialize_with = "at_least_one")]
    pub recover_after: Option<u32>,
    /// Repeat an open incident's notice this often (default "4h"; "0s" = never).
    #[serde(default, deserialize_with = "duration_text")]
    pub remind_every: Option<String>,
    /// How long raw results are kept (default "30d"); daily roll-ups are kept
    /// for `retain_rollups`.
    #[serde(default, deserialize_with = "duration_text")]
    pub retain: Option<String>,
    /// How long daily roll-ups (uptime) and resolved incidents are kept (default "400d").
    #[serde(default, deserialize_with = "duration_text")]
    pub retain_rollups: Option<String>,
    /// Where incident events go.
    #[serde(default)]
    pub notify: Vec<NotifyDef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// One JSON `POST` per event (envgate's own body).
    Webhook,
    /// A Slack incoming webhook: readable blocks.
    Slack,
    /// PagerDuty Events API v2: `dedup_key` per incident, `resolve` on recovery.
    Pagerduty,
    /// Prometheus Alertmanager: `POST /api/v2/alerts`, `endsAt` on resolve.
    Alertmanager,
}

impl NotifyKind {
    pub fn name(self) -> &'static str {
        match self {
            NotifyKind::Webhook => "webhook",
            NotifyKind::Slack => "slack",
            NotifyKind::Pagerduty => "pagerduty",
            NotifyKind::Alertmanager => "alertmanager",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyDef {
    /// Unique name; the notification outbox refers to the channel by it.
    pub name: String,
    pub kind: NotifyKind,
    /// Where to send: the webhook URL, the Alertmanager base URL, or the
    /// PagerDuty Events API endpoint (default
    /// `https://events.pagerduty.com/v2/enqueue`). A secret: write
    /// `${secret:env:NAME}`.
    #[serde(default)]
    pub url: Option<String>,
    /// PagerDuty: the integration's routing key (a secret).
    #[serde(default)]
    pub routing_key: Option<String>,
    /// Extra request headers, e.g. `Authorization = "${secret:env:TOKEN}"`.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Only these environments' events (default: every environment).
    #[serde(default)]
    pub envs: Option<Vec<String>>,
    /// Each delivery attempt's budget (default "10s").
    #[serde(default, deserialize_with = "duration_text")]
    pub timeout: Option<String>,
    /// Alertmanager: how long a firing alert stays active without a
    /// reminder refreshing it (default "24h").
    #[serde(default, deserialize_with = "duration_text")]
    pub ttl: Option<String>,
}

fn duration_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    super::units::duration_param(&s).map_err(serde::de::Error::custom)?;
    Ok(Some(s))
}

fn at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let n = u32::deserialize(d)?;
    if n == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(Some(n))
}

fn store_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    // `${secret:env:STORE_URL}` is checked once it is resolved.
    let known = ["sqlite:", "postgres://", "postgresql://", "${"];
    if !known.iter().any(|p| s.starts_with(p)) {
        return Err(serde::de::Error::custom(
            "a store is `sqlite:PATH` or `postgres://USER@HOST/DATABASE`",
        ));
    }
    Ok(Some(s))
}
