//! Notification channels and delivery from the outbox. Each channel kind is
//! one file that turns an [`Event`] into a request; this file resolves the
//! channels' secrets, sends what a runner claimed, and records how each
//! attempt ended. Channel URLs, keys and headers are secrets: they are
//! resolved here, from the environment, at send time; they are never
//! stored, and every error text is scrubbed of them before it is shown.

pub mod alertmanager;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;

use super::event::Event;
use super::store::{Delivery, OutboxItem, Store, StoreError};
use crate::config::audit::{NotifyDef, NotifyKind};
use crate::config::secrets::Redactor;
use crate::config::units::parse_duration;
use crate::diagnostic::Problem;

/// Bound on a receiver's answer kept for a rejection message.
const MAX_ERROR_BODY: usize = 300;
/// A delivery attempt's default budget.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A configured channel with its secrets resolved.
#[derive(Clone)]
pub struct Channel {
    pub name: String,
    pub kind: NotifyKind,
    pub url: Option<String>,
    pub routing_key: Option<String>,
    pub headers: IndexMap<String, String>,
    pub envs: Option<Vec<String>>,
    pub timeout: Duration,
    /// Alertmanager: seconds a firing alert stays active unless refreshed.
    pub ttl: i64,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL, key or headers.
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Channel {
    pub fn hears(&self, env: &str) -> bool {
        self.envs.as_ref().is_none_or(|e| e.iter().any(|x| x == env))
    }
}

/// A request to send: where, and the JSON body.
pub struct Request {
    pub url: String,
    pub body: serde_json::Value,
}

/// The request a channel's kind makes of an event.
pub fn request(ch: &Channel, e: &Event, now: i64) -> Result<Request, String> {
    match ch.kind {
        NotifyKind::Webhook => webhook::request(ch, e),
        NotifyKind::Slack => slack::request(ch, e),
        NotifyKind::Pagerduty => pagerduty::request(ch, e),
        NotifyKind::Alertmanager => alertmanager::request(ch, e, now),
    }
}

/// Resolve every `[[audit.notify]]`: `${secret:env:NAME}`, `${env:NAME}`
/// (with `:-default`) and `${secret:file:PATH}` in `url`, `routing_key` and
/// header values. Every resolved value joins `redactor`.
pub fn channels(
    defs: &[NotifyDef],
    vars: &IndexMap<String, String>,
    root: &Path,
    redactor: &mut Redactor,
) -> Result<Vec<Channel>, Vec<Problem>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for d in defs {
        let mut resolve = |what: &str, s: &Option<String>| -> Option<String> {
            let s = s.as_ref()?;
            match interpolate(s, vars, root) {
                Ok(v) => {
                    // The whole value is a secret: a webhook URL is a credential.
                    redactor.add(&v);
                    Some(v)
                }
                Err(e) => {
                    problems.push(
                        Problem::new(
                            "envgate::audit::notify",
                            format!("[[audit.notify]] `{}`: {what}: {e}", d.name),
                        )
                        .help("export the variable, or fix the reference in envgate.toml"),
                    );
                    None
                }
            }
        };
        let url = resolve("url", &d.url);
        let routing_key = resolve("routing_key", &d.routing_key);
        let headers = d
            .headers
            .iter()
            .filter_map(|(k, v)| resolve(&format!("header {k}"), &Some(v.clone())).map(|v| (k.clone(), v)))
            .collect();
        if out.iter().any(|c: &Channel| c.name == d.name) {
            problems.push(Problem::new(
                "envgate::audit::notify",
                format!("[[audit.notify]] `{}` is defined twice", d.name),
            ));
        }
        let missing = match d.kind {
            NotifyKind::Pagerduty => d.routing_key.is_none().then_some("routing_key"),
            _ => d.url.is_none().then_some("url"),
        };
        if let Some(m) = missing {
            problems.push(
                Problem::new(
                    "envgate::audit::notify",
                    format!("[[audit.notify]] `{}` ({}) needs `{m}`", d.name, d.kind.name()),
                )
                .help(format!("add `{m} = \"${{secret:env:NAME}}\"`")),
            );
        }
        out.push(Channel {
            name: d.name.clone(),
            kind: d.kind,
            url,
            routing_key,
            headers,
            envs: d.envs.clone(),
            timeout: d.timeout.as_deref().and_then(parse_duration).unwrap_or(DEFAULT_TIMEOUT),
            ttl: d
                .ttl
                .as_deref()
                .and_then(parse_duration)
                .map_or(alertmanager::DEFAULT_TTL, |d| d.as_secs() as i64),
        });
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

/// `${secret:env:NAME}`, `${env:NAME}`, `${env:NAME:-default}`,
/// `${secret:file:PATH}` in `s`; anything else is left as written.
pub fn interpolate(s: &str, vars: &IndexMap<String, String>, root: &Path) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in `{}`", short(s)))?;
        let inner = &after[..end];
        let name = inner.strip_prefix("secret:").unwrap_or(inner);
        let value = if let Some(var) = name.strip_prefix("env:") {
            let (var, default) = match var.split_once(":-") {
                Some((v, d)) => (v, Some(d)),
                None => (var, None),
            };
            match (vars.get(var).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => d.to_string(),
                (None, None) => return Err(format!("environment variable {var} is not set")),
            }
        } else if let Some(path) = name.strip_prefix("file:") {
            std::fs::read_to_string(root.join(path))
                .map(|t| t.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("cannot read {path}: {e}"))?
        } else {
            return Err(format!(
                "`${{{inner}}}`: write ${{secret:env:NAME}}, ${{env:NAME}} or ${{secret:file:PATH}}"
            ));
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn short(s: &str) -> String {
    crate::config::secrets::redact_url_passwords(s)
}

/// How one claimed notification went, for the run's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub channel: String,
    pub env: String,
    pub kind: String,
    pub incident: String,
    pub outcome: Delivery,
}

/// Back-off after `attempts` failed attempts: 30 s, doubling, at most an hour.
pub fn backoff(attempts: i64) -> i64 {
    (30i64 << attempts.clamp(0, 7)).min(3600)
}

/// Claim what is due for `envs`, send it, record each outcome. A channel
/// that fails is not tried again in this round (its events keep their
/// order); its later events wait with it.
pub fn deliver(
    store: &mut Store,
    channels: &[Channel],
    envs: &[String],
    runner: &str,
    now: i64,
    redactor: &Redactor,
) -> Result<Vec<Sent>, StoreError> {
    if channels.is_empty() && store.undelivered(None)?.iter().all(|o| o.state != "pending") {
        return Ok(Vec::new());
    }
    let lease = now + 120;
    let items = store.claim(envs, now, runner, lease)?;
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return Err(StoreError(format!("cannot start the delivery runtime: {e}"))),
    };
    let client = client().map_err(StoreError)?;
    let mut down: IndexMap<String, (String, i64)> = IndexMap::new();
    let mut out = Vec::new();
    for item in items {
        let outcome = match (
            channels.iter().find(|c| c.name == item.channel),
            down.get(&item.channel),
        ) {
            (None, _) => Delivery::Dropped(format!("channel `{}` is no longer in [[audit.notify]]", item.channel)),
            (Some(_), Some((why, at))) => Delivery::Retry(why.clone(), *at),
            (Some(ch), None) => {
                let d = rt.block_on(send(&client, ch, &item, now, redactor));
                if let Delivery::Retry(why, at) = &d {
                    down.insert(ch.name.clone(), (why.clone(), *at));
                }
                d
            }
        };
        store.finish(item.id, &outcome, now)?;
        out.push(Sent {
            channel: item.channel.clone(),
            env: item.env.clone(),
            kind: item.kind.clone(),
            incident: item.incident.clone(),
            outcome,
        });
    }
    Ok(out)
}

fn client() -> Result<reqwest::Client, String> {
    let net = crate::probes::Net::new();
    let verifier = net.verifier(None)?;
    reqwest::Client::builder()
        .use_preconfigured_tls(net.tls_config(verifier))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("envgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

async fn send(client: &reqwest::Client, ch: &Channel, item: &OutboxItem, now: i64, redactor: &Redactor) -> Delivery {
    let retry = |why: String| Delivery::Retry(redactor.scrub(&why), now + backoff(item.attempts));
    let event: Event = match serde_json::from_str(&item.payload) {
        Ok(e) => e,
        Err(e) => return Delivery::Rejected(format!("the stored event is unreadable: {e}")),
    };
    let req = match request(ch, &event, now) {
        Ok(r) => r,
        Err(e) => return Delivery::Rejected(e),
    };
    let mut b = client
        .post(&req.url)
        .timeout(ch.timeout)
        .header("Idempotency-Key", &item.event_id)
        .json(&req.body);
    for (k, v) in &ch.headers {
        b = b.header(k, v);
    }
    match b.send().await {
        Ok(resp) => {
            let status = resp.status();
            if status.is_success() {
                return Delivery::Sent;
            }
            let body = read_bounded(resp).await;
            let why = redactor.scrub(&format!("HTTP {}: {body}", status.as_u16()));
            let code = status.as_u16();
            if code == 408 || code == 429 || status.is_server_error() {
                retry(why)
            } else {
                Delivery::Rejected(why)
            }
        }
        Err(e) => {
            let what = if e.is_timeout() {
                format!(
                    "timeout: no answer within {}",
                    crate::config::units::format_duration(ch.timeout)
                )
            } else if e.is_connect() {
                "refused: cannot connect".to_string()
            } else {
                format!("{}", e.without_url())
            };
            retry(what)
        }
    }
}

async fn read_bounded(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        if buf.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    let text: String = String::from_utf8_lossy(&buf).chars().take(MAX_ERROR_BODY).collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Ping a cron monitor: `url` + `suffix` (`/start`, ``, `/fail`). Returns
/// why it failed, scrubbed, or `None`.
pub fn heartbeat(url: &str, suffix: &str, redactor: &Redactor) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let client = match client() {
        Ok(c) => c,
        Err(e) => return Some(e),
    };
    let full = format!("{}{suffix}", url.trim_end_matches('/'));
    rt.block_on(async {
        match client.get(&full).timeout(Duration::from_secs(10)).send().await {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("HTTP {}", r.status().as_u16())),
            Err(e) => Some(redactor.scrub(&e.without_url().to_string())),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_30s_up_to_an_hour() {
        assert_eq!(backoff(0), 30);
        assert_eq!(backoff(1), 60);
        assert_eq!(backoff(2), 120);
        assert_eq!(backoff(10), 3600);
    }

    #[test]
    fn channel_urls_come_from_secrets_and_join_the_redactor() {
        let vars: IndexMap<String, String> = [("HOOK".to_string(), "https://hooks.example/T0/XYZ".to_string())].into();
        assert_eq!(
            interpolate("${secret:env:HOOK}", &vars, Path::new(".")).unwrap(),
            "https://hooks.example/T0/XYZ"
        );
        assert_eq!(
            interpolate("${env:MISSING:-http://127.0.0.1:9}/x", &vars, Path::new(".")).unwrap(),
            "http://127.0.0.1:9/x"
        );
        assert!(
            interpolate("${secret:env:NOPE}", &vars, Path::new("."))
                .unwrap_err()
                .contains("NOPE")
        );
    }
}
