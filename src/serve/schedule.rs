//! The audit on a schedule: one run at a time (a run that overruns its
//! interval is never stacked: the ticks it covered are skipped and
//! counted), the same cycle as `envgate audit`, one log line per run, and a
//! fresh view after each. Stopping lets the run in flight finish.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::Shared;
use crate::audit::store::Store;
use crate::audit::{AuditOptions, Clock, CycleOutcome, SystemClock, cycle};
use crate::check::CheckOptions;
use crate::config::secrets::Redactor;
use crate::plan::Choice;

/// Wakes the scheduler early (to stop).
#[derive(Default)]
pub struct Bell {
    rung: Mutex<bool>,
    cv: Condvar,
}

impl Bell {
    pub fn ring(&self) {
        *self.rung.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Sleep `d` or until rung; true when rung.
    fn sleep(&self, d: Duration) -> bool {
        let guard = self.rung.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, d, |rung| !*rung)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }
}

/// What one scheduled run needs besides the shared state.
pub struct Runner {
    pub store: Store,
    pub store_url: String,
    pub choice: Choice,
    pub host: String,
}

/// A random fraction in [0, 1).
fn random_fraction() -> f64 {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Run until stopped (read-only: only refresh the view).
pub fn run(shared: &Arc<Shared>, bell: &Bell, runner: Option<Runner>, log: &mut dyn Write) {
    let interval = shared.config.interval;
    let Some(mut runner) = runner else {
        // Read-only: the store is written by someone else; look at it often
        // enough that a cron run shows within seconds.
        let every = interval.min(Duration::from_secs(5));
        loop {
            if let Err(e) = shared.refresh(super::now()) {
                line(
                    log,
                    shared.config.json_logs,
                    "error",
                    &format!("cannot read the store: {e}"),
                    None,
                );
            }
            if bell.sleep(every) || shared.stopping.load(Ordering::SeqCst) {
                return;
            }
        }
    };
    let start = Instant::now();
    let mut tick: u64 = 0;
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        one(shared, &mut runner, log);
        // The next tick on the schedule that has not started yet.
        let elapsed = start.elapsed();
        let next = (elapsed.as_nanos() / interval.as_nanos().max(1)) as u64 + 1;
        let missed = next.saturating_sub(tick + 1);
        if missed > 0 {
            shared.counters.skipped.fetch_add(missed, Ordering::Relaxed);
            line(
                log,
                shared.config.json_logs,
                "warn",
                &format!("the run overran its interval: {missed} scheduled run(s) skipped"),
                Some(&[("skipped", missed.to_string())]),
            );
        }
        tick = next;
        let due = Duration::from_nanos((interval.as_nanos() as u64).saturating_mul(tick));
        let jitter = interval.mul_f64(f64::from(shared.config.jitter) / 100.0 * random_fraction());
        let wait = (due + jitter).saturating_sub(start.elapsed());
        if bell.sleep(wait) || shared.stopping.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// One audit run, its log line and the view after it.
fn one(shared: &Shared, runner: &mut Runner, log: &mut dyn Write) {
    let t0 = Instant::now();
    let clock = SystemClock;
    let mut redactor = Redactor::default();
    redactor.add(&runner.store_url);
    let result = shared.loader.load().map_err(|p| p.to_string()).and_then(|project| {
        let settings = crate::audit::settings::settings(&project, &mut redactor).map_err(|p| p.to_string())?;
        let opts = AuditOptions {
            check: CheckOptions {
                envs: shared.config.envs.clone(),
                sets: shared.config.sets.clone(),
                choice: runner.choice.clone(),
                runner: shared.config.runner.clone(),
            },
            fail_on_warn: shared.config.fail_on_warn,
            trigger: "serve".into(),
            runner: format!("{}:{}", runner.host, std::process::id()),
            host: runner.host.clone(),
        };
        cycle(&project, &mut runner.store, &settings, &opts, &clock, &redactor).map_err(|t| t.to_string())
    });
    let took = t0.elapsed();
    shared
        .counters
        .last_run_ms
        .store(took.as_millis() as u64, Ordering::Relaxed);
    match result {
        Ok(outcome) => {
            let n = shared.counters.runs.fetch_add(1, Ordering::Relaxed) + 1;
            keep_reports(shared, &outcome);
            log_run(log, shared.config.json_logs, n, took, &outcome);
        }
        Err(why) => {
            shared.counters.troubles.fetch_add(1, Ordering::Relaxed);
            let why = redactor.scrub(&why);
            line(
                log,
                shared.config.json_logs,
                "error",
                &format!("cannot audit: {why}; nothing was recorded"),
                None,
            );
        }
    }
    if let Err(e) = shared.refresh(clock.now()) {
        line(
            log,
            shared.config.json_logs,
            "error",
            &format!("cannot read the store: {e}"),
            None,
        );
    }
}

fn keep_reports(shared: &Shared, o: &CycleOutcome) {
    let mut mine: HashMap<String, Arc<crate::outcome::Report>> = HashMap::new();
    for e in &o.report.environments {
        mine.insert(
            e.name.clone(),
            Arc::new(crate::outcome::Report {
                environments: vec![e.clone()],
                ..o.report.clone()
            }),
        );
    }
    let mut reports = shared.reports.lock().unwrap_or_else(|p| p.into_inner());
    for (k, v) in mine {
        reports.insert(k, v);
    }
}

fn log_run(log: &mut dyn Write, json: bool, n: u64, took: Duration, o: &CycleOutcome) {
    let sent = o
        .sent
        .iter()
        .filter(|s| s.outcome == crate::audit::store::Delivery::Sent)
        .count();
    if json {
        let envs: Vec<serde_json::Value> = o
            .envs
            .iter()
            .map(|e| {
                let status = o
                    .report
                    .environments
                    .iter()
                    .find(|r| r.name == e.env)
                    .map(|r| r.status.as_str());
                serde_json::json!({
                    "env": e.env,
                    "busy": e.busy,
                    "status": status,
                    "checks": e.states.len(),
                    "not_ok": e.states.iter().filter(|(_, _, s)| s.health != crate::audit::state::Health::Ok).count(),
                    "changes": e.changes.iter().map(|c| serde_json::json!({"check": c.check, "to": c.to.as_str()})).collect::<Vec<_>>(),
                })
            })
            .collect();
        let v = serde_json::json!({
            "ts": crate::audit::event::rfc3339(super::now()),
            "level": "info",
            "msg": "audit run",
            "run": n,
            "duration_ms": took.as_millis() as u64,
            "envs": envs,
            "notifications_sent": sent,
            "undelivered": o.undelivered.len(),
        });
        let _ = writeln!(log, "{v}");
    } else {
        let parts: Vec<String> = o
            .envs
            .iter()
            .map(|e| {
                if e.busy {
                    return format!("{} skipped (another runner holds it)", e.env);
                }
                let status = o
                    .report
                    .environments
                    .iter()
                    .find(|r| r.name == e.env)
                    .map_or("-", |r| r.status.as_str());
                let not_ok = e
                    .states
                    .iter()
                    .filter(|(_, _, s)| s.health != crate::audit::state::Health::Ok)
                    .count();
                format!(
                    "{} {status} ({} checks, {not_ok} not ok, {} changed)",
                    e.env,
                    e.states.len(),
                    e.changes.len()
                )
            })
            .collect();
        let _ = writeln!(
            log,
            "{} info audit run {n} took {:.2}s: {}; {sent} notification(s) sent",
            crate::audit::event::rfc3339(super::now()),
            took.as_secs_f64(),
            parts.join("; ")
        );
    }
}

/// A log line that is not a run: `level` and a message, plus fields.
pub fn line(log: &mut dyn Write, json: bool, level: &str, msg: &str, fields: Option<&[(&str, String)]>) {
    let ts = crate::audit::event::rfc3339(super::now());
    if json {
        let mut v = serde_json::json!({"ts": ts, "level": level, "msg": msg});
        for (k, val) in fields.unwrap_or_default() {
            v[*k] = serde_json::Value::String(val.clone());
        }
        let _ = writeln!(log, "{v}");
    } else {
        let _ = writeln!(log, "{ts} {level} {msg}");
    }
}
