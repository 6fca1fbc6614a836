//! The probe runner: a pure scheduler. Every job of the run (all
//! environments together, on one runtime) at once, bounded by
//! `--concurrency`; each attempt under its timeout, the whole run under one
//! deadline; retries with backoff, `--wait`, `depends_on`, `--fail-fast`. It
//! emits [`Event`]s and returns one [`Finished`] per job; it never reads
//! configuration and never formats.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, watch};

use crate::config::units::format_duration;
use crate::findings::Category;
use crate::outcome::{Metric, Status};
use crate::probes::{Class, Ctx, Guard, Net, Outcome, Probe, Verdict};

/// Default time budget of one attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default deadline of a whole run without `--wait`.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
/// Default `--concurrency`: 1,000 probes start at once.
pub const DEFAULT_CONCURRENCY: usize = 1024;

/// Receives the runner's events (a progress bar, a live log).
pub type Observer = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// How a run is scheduled. `Default` is what `envgate check` uses.
#[derive(Clone)]
pub struct Options {
    pub concurrency: usize,
    pub fail_fast: bool,
    /// Keep retrying failing probes until they pass or this much time passed.
    pub wait: Option<Duration>,
    /// The whole run's deadline (default: `wait`, else [`DEFAULT_DEADLINE`]).
    pub deadline: Option<Duration>,
    pub default_timeout: Duration,
    /// Receives every event, e.g. to draw a progress bar.
    pub observer: Option<Observer>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: DEFAULT_CONCURRENCY,
            fail_fast: false,
            wait: None,
            deadline: None,
            default_timeout: DEFAULT_TIMEOUT,
            observer: None,
        }
    }
}

/// One probe to run, or one whose result is already known (filtered out,
/// refused by isolation, target missing).
pub struct Job {
    /// The environment the job belongs to (progress and logs show it).
    pub group: String,
    pub name: String,
    pub probe: Option<Box<dyn Probe>>,
    pub preset: Option<Finished>,
    /// Each attempt's budget (default: `Options::default_timeout`).
    pub timeout: Option<Duration>,
    pub retries: u32,
    /// `severity = "warning"`: a failure is `warn`.
    pub warning: bool,
    /// Indices of the jobs this one waits for, in the same list.
    pub deps: Vec<usize>,
    /// The environment's isolation, applied to everything the probe dials
    /// (`None`: no isolation, as for ad-hoc probes).
    pub guard: Option<Arc<dyn Guard>>,
}

/// What happened to one probe.
#[derive(Debug, Clone)]
pub struct Finished {
    pub status: Status,
    pub category: Category,
    pub class: Option<Class>,
    pub message: String,
    pub attempts: u32,
    pub duration: Duration,
    /// The probe itself failed (even if its severity made that a warning):
    /// its dependents do not run.
    pub failed: bool,
    /// What blocked or cancelled this probe: the root cause's name and message.
    pub root: Option<(String, String)>,
    /// Measurements the last attempt reported.
    pub metrics: Vec<Metric>,
    /// The entry of a list parameter the failure is about (`tables`, `orders`).
    pub about: Option<(String, String)>,
    /// The id the failed HTTP request carried.
    pub request_id: Option<String>,
    /// What a `[probe.load]` measured.
    pub load: Option<Box<crate::outcome::LoadReport>>,
}

impl Finished {
    pub fn preset(status: Status, category: Category, class: Option<Class>, message: String) -> Finished {
        let failed = matches!(status, Status::Fail | Status::Blocked);
        Finished {
            status,
            category,
            class,
            message,
            attempts: 0,
            duration: Duration::ZERO,
            failed,
            root: None,
            metrics: Vec::new(),
            about: None,
            request_id: None,
            load: None,
        }
    }
}

#[derive(Debug)]
pub enum Event<'a> {
    Planned {
        total: usize,
    },
    Started {
        index: usize,
        group: &'a str,
        name: &'a str,
    },
    /// An attempt failed and another follows after `pause`.
    Retrying {
        index: usize,
        group: &'a str,
        name: &'a str,
        attempt: u32,
        message: &'a str,
        pause: Duration,
    },
    Finished {
        index: usize,
        group: &'a str,
        name: &'a str,
        result: &'a Finished,
    },
}

/// Run jobs on a fresh runtime: for synchronous callers (`check`, `probe`).
pub fn run_blocking(jobs: Vec<Job>, opts: &Options) -> Vec<Finished> {
    crate::probes::fds::raise();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(run(jobs, opts, Net::new())),
        // Out of threads or file descriptors: every probe is a failure that
        // says why, not a panic.
        Err(e) => jobs
            .iter()
            .map(|_| {
                Finished::preset(
                    Status::Fail,
                    Category::Probe,
                    Some(Class::Io),
                    format!("io: cannot start the probe runtime: {e}"),
                )
            })
            .collect(),
    }
}

enum Msg {
    Started(usize),
    Retrying(usize, u32, String, Duration),
    Finished(usize, Finished),
}

pub async fn run(jobs: Vec<Job>, opts: &Options, net: Arc<Net>) -> Vec<Finished> {
    let start = Instant::now();
    let deadline = start + opts.deadline.or(opts.wait).unwrap_or(DEFAULT_DEADLINE);
    let names: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
    let groups: Vec<String> = jobs.iter().map(|j| j.group.clone()).collect();
    let emit = |e: Event<'_>| {
        if let Some(o) = &opts.observer {
            o(&e);
        }
    };
    emit(Event::Planned { total: jobs.len() });
    // Never more at once than the file descriptor limit leaves room for:
    // envgate's own exhaustion must not read as the targets' failure.
    let concurrency = crate::probes::fds::concurrency(opts.concurrency);
    let sem = Arc::new(Semaphore::new(concurrency.clamp(1, Semaphore::MAX_PERMITS)));
    let (cancel_tx, cancel_rx) = watch::channel::<Option<String>>(None);
    let cancel_tx = Arc::new(cancel_tx);
    // A job's result is watched only where another job waits for it.
    let awaited: std::collections::HashSet<usize> = jobs.iter().flat_map(|j| j.deps.iter().copied()).collect();
    let (done_tx, done_rxs): (Vec<_>, Vec<_>) = (0..jobs.len())
        .map(|i| {
            if awaited.contains(&i) {
                let (tx, rx) = watch::channel::<Option<Finished>>(None);
                (Some(tx), Some(rx))
            } else {
                (None, None)
            }
        })
        .unzip();
    let (msg_tx, mut msg_rx) = mpsc::unbounded_channel();
    let mut handles = Vec::new();
    for ((index, job), done) in jobs.into_iter().enumerate().zip(done_tx) {
        let dep_rx: Vec<_> = job
            .deps
            .iter()
            .filter_map(|&d| Some((names[d].clone(), done_rxs[d].clone()?)))
            .collect();
        let t = Task {
            index,
            sem: sem.clone(),
            net: net.clone(),
            cancel: cancel_rx.clone(),
            cancel_tx: cancel_tx.clone(),
            fail_fast: opts.fail_fast,
            wait: opts.wait.is_some(),
            deadline,
            default_timeout: opts.default_timeout,
            msg: msg_tx.clone(),
        };
        handles.push(tokio::spawn(async move {
            let r = t.run(job, dep_rx).await;
            if let Some(done) = done {
                let _ = done.send(Some(r.clone()));
            }
            let _ = t.msg.send(Msg::Finished(t.index, r.clone()));
            r
        }));
    }
    drop(msg_tx);
    while let Some(m) = msg_rx.recv().await {
        match m {
            Msg::Started(i) => emit(Event::Started {
                index: i,
                group: &groups[i],
                name: &names[i],
            }),
            Msg::Retrying(i, attempt, message, pause) => emit(Event::Retrying {
                index: i,
                group: &groups[i],
                name: &names[i],
                attempt,
                message: &message,
                pause,
            }),
            Msg::Finished(i, r) => emit(Event::Finished {
                index: i,
                group: &groups[i],
                name: &names[i],
                result: &r,
            }),
        }
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap_or_else(|e| {
            Finished::preset(
                Status::Fail,
                Category::Probe,
                Some(Class::Unknown),
                format!("probe panicked: {e}"),
            )
        }));
    }
    out
}

struct Task {
    index: usize,
    sem: Arc<Semaphore>,
    net: Arc<Net>,
    cancel: watch::Receiver<Option<String>>,
    cancel_tx: Arc<watch::Sender<Option<String>>>,
    fail_fast: bool,
    wait: bool,
    deadline: Instant,
    default_timeout: Duration,
    msg: mpsc::UnboundedSender<Msg>,
}

/// Grace beyond a probe's own timeout before the runner drops the attempt: a
/// probe reports its own timeout (it knows what it was waiting for); this is
/// the safety net for one that does not, generous enough for a loaded machine.
const GRACE: Duration = Duration::from_millis(500);
/// No attempt starts with less than this left before the deadline.
const MIN_ATTEMPT: Duration = Duration::from_millis(10);

impl Task {
    async fn run(&self, mut job: Job, deps: Vec<(String, watch::Receiver<Option<Finished>>)>) -> Finished {
        if let Some(p) = job.preset.take() {
            return p;
        }
        let Some(probe) = job.probe.take() else {
            return Finished::preset(Status::Skipped, Category::Probe, None, "nothing to run".into());
        };
        for (name, mut rx) in deps {
            let dep = tokio::select! {
                r = async { rx.wait_for(Option::is_some).await.ok().and_then(|v| v.clone()) } => r,
                reason = self.cancelled() => return self.cancelled_result(reason, 0, Duration::ZERO),
            };
            let Some(dep) = dep.filter(|d| d.failed) else {
                continue;
            };
            let (root, why) = dep.root.clone().unwrap_or((name, dep.message.clone()));
            let mut f = if matches!(dep.status, Status::Fail | Status::Blocked) {
                Finished::preset(
                    Status::Blocked,
                    Category::Probe,
                    dep.class,
                    format!("blocked: depends on `{root}`, which failed ({why})"),
                )
            } else {
                // A warning-level root cause: its dependents are not run, and
                // are not failures either.
                Finished::preset(
                    Status::Skipped,
                    Category::Probe,
                    None,
                    format!("not run: depends on `{root}`, which is not ready ({why})"),
                )
            };
            f.failed = true;
            f.root = Some((root, why));
            return f;
        }
        let started = Instant::now();
        let mut attempt = 0u32;
        let mut last = None;
        loop {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            if remaining < MIN_ATTEMPT {
                let o = last.unwrap_or_else(|| {
                    Outcome::fail(Class::Timeout, "the run's deadline passed before this probe could run")
                });
                return self.finish(&job, attempt, started, o);
            }
            attempt += 1;
            let permit = tokio::select! {
                p = self.sem.acquire() => p.expect("the semaphore is never closed"),
                reason = self.cancelled() => return self.cancelled_result(reason, attempt - 1, started.elapsed()),
            };
            if attempt == 1 {
                let _ = self.msg.send(Msg::Started(self.index));
            }
            let budget = job.timeout.unwrap_or(self.default_timeout).min(remaining);
            let ctx = Ctx {
                timeout: budget,
                net: self.net.clone(),
                guard: job.guard.clone(),
                name: Arc::from(job.name.as_str()),
            };
            let outcome = tokio::select! {
                r = tokio::time::timeout(budget + GRACE, probe.run(&ctx)) => match r {
                    Ok(o) => o,
                    Err(_) => timed_out_plain(&job.name, budget),
                },
                reason = self.cancelled() => return self.cancelled_result(reason, attempt, started.elapsed()),
            };
            drop(permit);
            // Isolation refused to dial: asking again cannot change that.
            let retry_left = outcome.class != Some(Class::Isolation) && (attempt <= job.retries || self.wait);
            if outcome.verdict != Verdict::Fail || !retry_left {
                return self.finish(&job, attempt, started, outcome);
            }
            let backoff = if self.wait {
                Duration::from_millis(100 * (1 << attempt.min(4)))
            } else {
                Duration::from_millis(200 * (1 << (attempt - 1).min(5)))
            };
            // The whole budget is spent: a backoff that would pass the
            // deadline is cut short so one more attempt starts before it
            // (and is cut at it), with half of what is left, at most 100ms.
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            let last_slice = (remaining / 2).min(Duration::from_millis(100));
            let pause = backoff.min(remaining.saturating_sub(last_slice));
            let _ = self
                .msg
                .send(Msg::Retrying(self.index, attempt, outcome.message.clone(), pause));
            last = Some(outcome);
            tokio::select! {
                () = tokio::time::sleep(pause) => {},
                reason = self.cancelled() => return self.cancelled_result(reason, attempt, started.elapsed()),
            }
        }
    }

    fn finish(&self, job: &Job, attempts: u32, started: Instant, o: Outcome) -> Finished {
        let isolation = o.class == Some(Class::Isolation);
        let (status, failed) = match o.verdict {
            // Crossing into another environment is a finding about the
            // configuration, whatever the probe's severity.
            Verdict::Fail if isolation => (Status::Fail, true),
            Verdict::Pass if attempts > 1 && !self.wait => (Status::Flaky, false),
            Verdict::Pass => (Status::Pass, false),
            Verdict::Warn => (Status::Warn, false),
            Verdict::Fail if job.warning => (Status::Warn, true),
            Verdict::Fail => (Status::Fail, true),
        };
        let mut message = o.message;
        if attempts > 1 {
            let took = format_duration(Duration::from_millis(started.elapsed().as_millis() as u64));
            message = match status {
                Status::Pass | Status::Flaky => {
                    format!("{message} (passed on attempt {attempts} after {took})")
                }
                _ => format!("{message} (after {attempts} attempts in {took})"),
            };
        }
        if status == Status::Fail && self.fail_fast {
            self.cancel_tx.send_if_modified(|c| {
                if c.is_none() {
                    *c = Some(job.name.clone());
                    true
                } else {
                    false
                }
            });
        }
        Finished {
            metrics: o.metrics,
            about: o.about,
            request_id: o.request_id,
            load: o.load,
            status,
            category: if isolation {
                Category::Isolation
            } else {
                Category::Probe
            },
            class: o.class,
            message,
            attempts,
            duration: started.elapsed(),
            failed,
            root: None,
        }
    }

    /// Resolves with the failing probe's name once `--fail-fast` cancels.
    async fn cancelled(&self) -> String {
        let mut rx = self.cancel.clone();
        let name = rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .map(|v| v.clone().unwrap_or_default());
        match name {
            Some(n) => n,
            None => std::future::pending().await,
        }
    }

    fn cancelled_result(&self, reason: String, attempts: u32, duration: Duration) -> Finished {
        Finished {
            status: Status::Skipped,
            category: Category::Probe,
            class: None,
            message: format!("cancelled by --fail-fast after `{reason}` failed"),
            attempts,
            duration,
            failed: false,
            root: None,
            metrics: Vec::new(),
            about: None,
            request_id: None,
            load: None,
        }
    }
}

fn timed_out_plain(name: &str, budget: Duration) -> Outcome {
    Outcome::fail(
        Class::Timeout,
        format!("`{name}` gave no answer within {}", format_duration(budget)),
    )
}
