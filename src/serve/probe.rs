//! `/probe?env=&check=`: run one configured probe now. Only probes the
//! environment's last run had can run (never a target from the request);
//! runs are rate-limited (a token bucket for all checks together), and
//! callers asking for the same check while it runs share that one run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

use crate::check::CheckOptions;
use crate::outcome::{Report, Status};
use crate::plan::Choice;

/// What one run of one probe found.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The JSON report of the run (redacted), or why it could not run.
    pub body: Result<String, String>,
    pub ok: bool,
}

type Slot = watch::Receiver<Option<Arc<Answer>>>;

pub struct Prober {
    inner: Mutex<Inner>,
    per_minute: u32,
}

struct Inner {
    running: HashMap<(String, String), Slot>,
    tokens: f64,
    refilled: Instant,
}

/// What a caller got.
pub enum Ticket {
    /// A run was started for this caller; wait on it.
    Started(Slot),
    /// The same check is running: share it.
    Shared(Slot),
    /// Too many runs: try again after this many seconds.
    Limited(u64),
}

impl Prober {
    pub fn new(per_minute: u32) -> Prober {
        Prober {
            inner: Mutex::new(Inner {
                running: HashMap::new(),
                tokens: f64::from(per_minute),
                refilled: Instant::now(),
            }),
            per_minute,
        }
    }

    /// Join the run of `(env, check)` in flight, or take a token and start
    /// one with `start` (which must publish its answer on the sender).
    pub fn ticket(&self, env: &str, check: &str, start: impl FnOnce(watch::Sender<Option<Arc<Answer>>>)) -> Ticket {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let key = (env.to_string(), check.to_string());
        if let Some(rx) = inner.running.get(&key) {
            return Ticket::Shared(rx.clone());
        }
        let rate = f64::from(self.per_minute) / 60.0;
        let now = Instant::now();
        let earned = now.duration_since(inner.refilled).as_secs_f64() * rate;
        inner.tokens = (inner.tokens + earned).min(f64::from(self.per_minute));
        inner.refilled = now;
        if inner.tokens < 1.0 {
            let wait = if rate > 0.0 {
                ((1.0 - inner.tokens) / rate).ceil() as u64
            } else {
                60
            };
            return Ticket::Limited(wait.max(1));
        }
        inner.tokens -= 1.0;
        let (tx, rx) = watch::channel(None);
        inner.running.insert(key, rx.clone());
        drop(inner);
        start(tx);
        Ticket::Started(rx)
    }

    /// The run of `(env, check)` is over: the next call starts a new one.
    pub fn done(&self, env: &str, check: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.running.remove(&(env.to_string(), check.to_string()));
    }
}

/// Run one probe of `env` (blocking: the check builds its own runtime).
pub fn run_one(
    project: &crate::config::project::Project,
    env: &str,
    check: &str,
    sets: &[String],
    runner: &crate::runner::Options,
) -> Answer {
    let select = match crate::select::Selection::new(
        &[globset::escape(check.strip_prefix("probe/").unwrap_or(check))],
        &[],
        &[],
    ) {
        Ok(s) => s,
        Err(p) => {
            return Answer {
                body: Err(p.to_string()),
                ok: false,
            };
        }
    };
    let opts = CheckOptions {
        envs: vec![env.to_string()],
        sets: sets.to_vec(),
        choice: Choice {
            select,
            shard: None,
            no_load: true,
        },
        runner: runner.clone(),
    };
    match crate::check::run(project, &opts) {
        Ok(report) => Answer {
            ok: passed(&report, check),
            body: Ok(crate::report::Format::Json.reporter().render(&report, style())),
        },
        Err(p) => Answer {
            body: Err(p.to_string()),
            ok: false,
        },
    }
}

/// How reports are rendered for HTTP: no colour, the time now.
pub fn style() -> crate::report::Style {
    crate::report::Style {
        color: false,
        width: 100,
        now: std::time::SystemTime::now(),
        source_links: None,
    }
}

fn passed(report: &Report, check: &str) -> bool {
    report
        .environments
        .iter()
        .flat_map(|e| &e.results)
        .find(|r| r.id == check)
        .is_some_and(|r| matches!(r.status, Status::Pass | Status::Flaky | Status::Warn))
}
