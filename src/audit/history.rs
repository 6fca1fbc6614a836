//! What `envgate history` shows (and a server answers): per check its
//! state, streak, last pass, uptime over 1d/7d/30d and recent runs; the
//! incidents with their durations; notifications not delivered. Read from
//! the store with a handful of indexed queries per environment.

use serde::Serialize;

use super::event::rfc3339;
use super::store::{IncidentRow, Store, StoreError, Uptime};

/// Runs shown in each check's strip.
pub const STRIP: i64 = 48;

#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub version: u32,
    pub generated_at: String,
    /// Incidents resolved before this are left out.
    pub since: String,
    pub environments: Vec<EnvHistory>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvHistory {
    pub name: String,
    pub last_run: Option<RunInfo>,
    pub checks: Vec<CheckHistory>,
    pub incidents: Vec<IncidentView>,
    /// Notifications still owed (a channel is down) or refused by a channel.
    pub undelivered: Vec<Undelivered>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub started_at: String,
    pub status: String,
    pub host: String,
    pub version: String,
    pub trigger: String,
    pub runs_last_day: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckHistory {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `ok`, `failing` or `flapping`.
    pub state: String,
    /// When it entered that state.
    pub since: String,
    /// Consecutive passes (positive) or failures (negative).
    pub streak: i64,
    pub last_status: Option<String>,
    pub last_message: Option<String>,
    pub last_pass: Option<String>,
    pub uptime: UptimeView,
    /// The last runs, oldest first.
    pub recent: Vec<Cell>,
    pub open_incident: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_not_after: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UptimeView {
    #[serde(rename = "1d")]
    pub d1: Option<f64>,
    #[serde(rename = "7d")]
    pub d7: Option<f64>,
    #[serde(rename = "30d")]
    pub d30: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub at: String,
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    pub id: String,
    pub check: String,
    pub opened_at: String,
    pub resolved_at: Option<String>,
    /// Until resolution, or until now while open.
    pub duration_s: i64,
    pub open: bool,
    pub flapping: bool,
    pub status: String,
    pub message: String,
    pub where_set: Option<String>,
    pub config_changed: Vec<String>,
    pub blocks: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Undelivered {
    pub channel: String,
    pub event: String,
    pub incident: String,
    /// `pending` (will be retried) or `rejected` (the channel said no).
    pub state: String,
    pub attempts: i64,
    pub error: Option<String>,
    pub next_attempt: Option<String>,
}

pub struct Query<'a> {
    /// Environments to show (default: every one in the store).
    pub envs: Vec<String>,
    /// A check id or glob.
    pub check: Option<&'a str>,
    pub since: i64,
    pub now: i64,
    /// The most resolved incidents to list per environment, newest first
    /// (open ones are always listed); `None` lists every one since `since`.
    pub resolved: Option<usize>,
}

pub fn load(store: &mut Store, q: &Query<'_>) -> Result<History, StoreError> {
    let envs = if q.envs.is_empty() {
        store.envs()?
    } else {
        q.envs.clone()
    };
    let matcher = q.check.map(|c| globset::Glob::new(c).map(|g| g.compile_matcher()));
    let wanted = |id: &str| match (&matcher, q.check) {
        (Some(Ok(m)), _) => m.is_match(id),
        (_, Some(c)) => c == id,
        _ => true,
    };
    let today = q.now.div_euclid(86_400);
    let mut out = Vec::new();
    for env in envs {
        let d1 = store.uptime_raw(&env, q.now - 86_400)?;
        let d7 = store.uptime_days(&env, today - 6)?;
        let d30 = store.uptime_days(&env, today - 29)?;
        let find = |list: &[(i64, Uptime)], id: i64| list.iter().find(|(c, _)| *c == id).and_then(|(_, u)| u.ratio());
        let mut recents = store.recent(&env, STRIP)?;
        let mut checks = Vec::new();
        for c in store.checks(Some(&env))?.into_iter().filter(|c| wanted(&c.check)) {
            let mut recent: Vec<Cell> = recents
                .remove(&c.id)
                .unwrap_or_default()
                .into_iter()
                .map(|(at, status)| Cell {
                    at: rfc3339(at),
                    status,
                })
                .collect();
            recent.reverse();
            checks.push(CheckHistory {
                kind: c.kind.clone(),
                state: c.state.health.as_str().into(),
                since: rfc3339(c.state.since),
                streak: c.state.streak(),
                last_status: c.last.status.clone(),
                last_message: c.last.message.clone(),
                last_pass: c.state.last_pass_at.map(rfc3339),
                uptime: UptimeView {
                    d1: find(&d1, c.id),
                    d7: find(&d7, c.id),
                    d30: find(&d30, c.id),
                },
                recent,
                open_incident: c.state.incident.as_ref().map(|i| i.id.clone()),
                tls_not_after: c.last.not_after.map(rfc3339),
                id: c.check,
            });
        }
        // Failing first, then flapping, then by name.
        checks.sort_by(|a, b| rank(&a.state).cmp(&rank(&b.state)).then(a.id.cmp(&b.id)));
        let incidents = match q.resolved {
            Some(n) => store.incidents_recent(&env, q.since, n)?,
            None => store.incidents(Some(&env), q.since)?,
        };
        let incidents = incidents
            .into_iter()
            .filter(|i| wanted(&i.check))
            .map(|i| view(i, q.now))
            .collect();
        let undelivered = store
            .undelivered(Some(&env))?
            .into_iter()
            .map(|o| Undelivered {
                next_attempt: (o.state == "pending").then(|| rfc3339(o.next_at)),
                channel: o.channel,
                event: o.kind,
                incident: o.incident,
                state: o.state,
                attempts: o.attempts,
                error: o.last_error,
            })
            .collect();
        let last_run = store.latest_run(&env)?.map(|r| RunInfo {
            started_at: rfc3339(r.started_at),
            status: r.status,
            host: r.host,
            version: r.version,
            trigger: r.trigger,
            runs_last_day: 0,
        });
        let last_run = match last_run {
            Some(mut r) => {
                r.runs_last_day = store.run_count(&env, q.now - 86_400)?;
                Some(r)
            }
            None => None,
        };
        out.push(EnvHistory {
            name: env,
            last_run,
            checks,
            incidents,
            undelivered,
        });
    }
    Ok(History {
        version: 1,
        generated_at: rfc3339(q.now),
        since: rfc3339(q.since),
        environments: out,
    })
}

fn rank(state: &str) -> u8 {
    match state {
        "failing" => 0,
        "flapping" => 1,
        _ => 2,
    }
}

fn view(i: IncidentRow, now: i64) -> IncidentView {
    let end = i.resolved_at.unwrap_or(now);
    let where_set = match (
        i.location
            .as_deref()
            .and_then(|l| serde_json::from_str::<super::event::Loc>(l).ok()),
        &i.origin,
    ) {
        (Some(l), _) => Some(format!("{}:{}:{}", l.file, l.line, l.column)),
        (None, Some(o)) => Some(o.clone()),
        _ => None,
    };
    IncidentView {
        opened_at: rfc3339(i.opened_at),
        resolved_at: i.resolved_at.map(rfc3339),
        duration_s: (end - i.opened_at).max(0),
        open: i.resolved_at.is_none(),
        flapping: i.flapping,
        status: i.status,
        message: i.message,
        where_set,
        config_changed: i.config_changed,
        blocks: i.blocks,
        id: i.id,
        check: i.check,
    }
}
