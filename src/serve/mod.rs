//! `envgate serve`: the audit on a schedule, and an HTTP server that answers
//! from what the audit recorded. A request never starts a probe run, except
//! `/probe` (rate-limited, one run shared by concurrent callers).
//!
//! Three parts share one [`Shared`]: the [`schedule`] thread runs the audit
//! cycle (the same recording, states, incidents and notifications as
//! `envgate audit`) and, after each run, rebuilds the [`View`] every cheap
//! answer is read from; [`http`] serves it; [`probe`] runs one configured
//! check on demand.

pub mod badge;
pub mod expo;
pub mod http;
pub mod page;
pub mod probe;
pub mod schedule;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use indexmap::IndexMap;

use crate::audit::history::{self, History};
use crate::audit::store::{Store, StoreError};
use crate::config::project::Project;
use crate::diagnostic::Problems;
use crate::outcome::Report;

/// Loads the project afresh (each run sees the files as they are now).
#[derive(Clone)]
pub struct Loader {
    pub root: PathBuf,
    pub env_vars: IndexMap<String, String>,
}

impl Loader {
    pub fn load(&self) -> Result<Project, Problems> {
        let mut p = Project::load(&self.root, self.env_vars.clone())?;
        p.offline = false;
        p.lenient_secrets = false;
        Ok(p)
    }
}

/// What the server was told.
pub struct Config {
    pub envs: Vec<String>,
    pub interval: Duration,
    pub jitter: u8,
    pub read_only: bool,
    /// SHA-256 of the bearer token, when one guards `/api` and `/probe`.
    pub token: Option<[u8; 32]>,
    pub json_logs: bool,
    pub probe_rate: u32,
    pub fail_on_warn: bool,
    pub project: String,
    pub sets: Vec<String>,
    pub runner: crate::runner::Options,
}

/// Counters the server keeps about itself (for `/metrics`).
#[derive(Default)]
pub struct Counters {
    pub runs: AtomicU64,
    /// Scheduled runs not started because the previous one overran.
    pub skipped: AtomicU64,
    /// Runs that could not run (store unreachable, configuration broken).
    pub troubles: AtomicU64,
    pub last_run_ms: AtomicU64,
    pub probe_runs: AtomicU64,
    pub probe_shared: AtomicU64,
    pub probe_limited: AtomicU64,
    pub probe_unknown: AtomicU64,
    pub unauthorized: AtomicU64,
}

/// Everything the HTTP side and the scheduler share.
pub struct Shared {
    pub config: Config,
    pub view: RwLock<Arc<View>>,
    /// A read connection to the store, for answers that take parameters
    /// (`/history?since=`). The scheduler writes through its own.
    pub reader: Mutex<Store>,
    pub counters: Counters,
    pub loader: Loader,
    pub started_at: i64,
    /// The reports of this server's own last run, by environment (every
    /// format can be rendered from them; from the store only JSON can).
    pub reports: Mutex<HashMap<String, Arc<Report>>>,
    pub stopping: AtomicBool,
    pub probes: probe::Prober,
    /// Unix time the last view was built.
    pub refreshed_at: AtomicI64,
    /// The last `/metrics` answer in each format, with the second it was
    /// made: scrapes within that second share it.
    pub metrics_cache: Mutex<[Option<(i64, u64, axum::body::Bytes)>; 2]>,
    /// Bumped each time a new view is published.
    pub generation: AtomicU64,
}

impl Shared {
    pub fn view(&self) -> Arc<View> {
        self.view
            .read()
            .map(|v| v.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Rebuild the view from the store (after a run, or on the read-only
    /// poll), and publish it.
    pub fn refresh(&self, now: i64) -> Result<(), StoreError> {
        let reports = self.reports.lock().map(|r| r.clone()).unwrap_or_default();
        let view = {
            let mut store = self.reader.lock().unwrap_or_else(|p| p.into_inner());
            build(&mut store, &self.config, &reports, now)?
        };
        let view = Arc::new(view);
        match self.view.write() {
            Ok(mut v) => *v = view,
            Err(p) => *p.into_inner() = view,
        }
        self.refreshed_at.store(now, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// One environment as the server answers about it.
#[derive(Debug, Clone)]
pub struct EnvView {
    pub name: String,
    /// The last run's status (`pass`, `warn`, `fail`, ...), `None` before any.
    pub status: Option<String>,
    pub ready: bool,
    pub last_run: Option<i64>,
    pub checks: usize,
    pub not_ok: usize,
    /// The last run's JSON report (redacted when it was recorded), ending
    /// in a newline: an answer shares it, never copies it.
    pub report_json: Option<axum::body::Bytes>,
    /// The same report as this server ran it, when it did.
    pub report: Option<Arc<Report>>,
    /// Probe ids in the last report: what `/probe` may run.
    pub probes: Vec<String>,
}

/// Everything cheap answers read, built after each run.
#[derive(Debug)]
pub struct View {
    pub at: i64,
    pub envs: Vec<EnvView>,
    /// The audit's Prometheus series for the served environments.
    pub metrics: String,
    /// The status page, rendered.
    pub page: axum::body::Bytes,
    /// When the most recent recorded run of any served environment finished.
    pub latest_finished: Option<i64>,
}

impl View {
    pub fn empty(config: &Config, now: i64) -> View {
        View {
            at: now,
            envs: config
                .envs
                .iter()
                .map(|e| EnvView {
                    name: e.clone(),
                    status: None,
                    ready: false,
                    last_run: None,
                    checks: 0,
                    not_ok: 0,
                    report_json: None,
                    report: None,
                    probes: Vec::new(),
                })
                .collect(),
            metrics: String::new(),
            page: axum::body::Bytes::new(),
            latest_finished: None,
        }
    }

    pub fn env(&self, name: &str) -> Option<&EnvView> {
        self.envs.iter().find(|e| e.name == name)
    }
}

fn ready(status: &str, fail_on_warn: bool) -> bool {
    match status {
        "fail" | "blocked" => false,
        "warn" => !fail_on_warn,
        _ => true,
    }
}

/// Incidents resolved within this long show on the status page.
const PAGE_SINCE: i64 = 7 * 86_400;
/// Resolved incidents the page lists, the newest (open ones always).
const PAGE_RESOLVED: usize = 50;

fn build(
    store: &mut Store,
    config: &Config,
    reports: &HashMap<String, Arc<Report>>,
    now: i64,
) -> Result<View, StoreError> {
    let mut envs = Vec::new();
    let mut latest_finished: Option<i64> = None;
    for name in &config.envs {
        let run = store.latest_run(name)?;
        let report_json = store.latest_report(name)?.map(|(_, mut j)| {
            j.truncate(j.trim_end().len());
            j.push('\n');
            axum::body::Bytes::from(j)
        });
        let probes = report_json
            .as_deref()
            .and_then(|j| serde_json::from_slice::<serde_json::Value>(j).ok())
            .map(|v| probe_ids(&v))
            .unwrap_or_default();
        let checks = store.checks(Some(name))?;
        let not_ok = checks
            .iter()
            .filter(|c| c.state.health != crate::audit::state::Health::Ok)
            .count();
        if let Some(r) = &run {
            latest_finished = latest_finished.max(Some(r.finished_at));
        }
        envs.push(EnvView {
            name: name.clone(),
            ready: run.as_ref().is_some_and(|r| ready(&r.status, config.fail_on_warn)),
            status: run.as_ref().map(|r| r.status.clone()),
            last_run: run.as_ref().map(|r| r.started_at),
            checks: checks.len(),
            not_ok,
            report_json,
            report: reports.get(name).cloned(),
            probes,
        });
    }
    let metrics = crate::audit::metrics::render(store, &config.envs, now)?;
    let h: History = history::load(
        store,
        &history::Query {
            envs: config.envs.clone(),
            check: None,
            since: now - PAGE_SINCE,
            now,
            resolved: Some(PAGE_RESOLVED),
        },
    )?;
    let page = page::render(&config.project, &h, &envs, config.interval, now).into();
    Ok(View {
        at: now,
        envs,
        metrics,
        page,
        latest_finished,
    })
}

fn probe_ids(report: &serde_json::Value) -> Vec<String> {
    report["environments"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["results"].as_array().into_iter().flatten())
        .filter_map(|r| r["id"].as_str())
        .filter(|id| id.starts_with("probe/"))
        .map(String::from)
        .collect()
}

/// Unix time now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `ready` / `not ready` / `no run yet`: how an environment is said in words.
pub fn word(e: &EnvView) -> &'static str {
    match (&e.status, e.ready) {
        (None, _) => "no run yet",
        (Some(_), true) => "ready",
        (Some(_), false) => "not ready",
    }
}
