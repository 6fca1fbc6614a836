//! `[probe.load]`: a short, bounded load against the component a probe
//! names, held to latency, error-rate and throughput budgets.
//!
//! The probe runs once first, exactly as without a load (a component that
//! is not ready is reported as such, and nothing more is sent). Then
//! `concurrency` workers, each with its own session (an HTTP connection
//! pool, a logged-in database connection, a Redis connection, an object
//! store's client; for `tcp` a fresh connection per request), send
//! requests until the bound (`requests` after `warmup`, or `duration`) or
//! the run's deadline, and then undo what the load left behind (an object
//! store's canaries). Closed model: each worker sends its next request
//! when the previous one is answered. Open model (`rate`): request i is
//! due at start + i / rate whatever the answers' pace, and its latency
//! counts from when it was due, so a server that stalls is charged for the
//! queue it causes (coordinated omission).
//! Successful latencies go into an HDR histogram (microseconds, three
//! significant digits: every percentile within 0.1%).
//!
//! Every connection goes through the probe's [`Ctx`], so isolation applies
//! to a load exactly as to a single probe.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::param::Dur;
use super::{BoxFuture, Class, Ctx, Endpoint, Outcome, Probe, Verdict};
use crate::config::units::format_duration;
use crate::outcome::{Budget, LoadReport, Percentile};

/// The kinds that can run a load.
pub const KINDS: &[&str] = &["http", "tcp", "postgres", "mysql", "redis", "s3", "gcs", "azblob"];

/// Most requests one load may measure, concurrency, duration and rate.
const MAX_REQUESTS: u64 = 10_000_000;
const MAX_CONCURRENCY: u32 = 1_000;
const MAX_DURATION: Duration = Duration::from_secs(600);
const MAX_RATE: f64 = 1_000_000.0;
/// The least time the cleanup after a load gets (one request's timeout
/// when that is longer).
const CLEANUP: Duration = Duration::from_secs(10);

/// `[probe.load]` as written (checks.schema.json and the loader read it).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
pub struct LoadParams {
    /// Requests to measure after the warmup, e.g. 500 (this or `duration`).
    pub requests: Option<u64>,
    /// How long to measure, e.g. "10s" (this or `requests`).
    pub duration: Option<Dur>,
    /// Requests in flight at most: workers, each with its own connection (default 10).
    pub concurrency: Option<u32>,
    /// Open model: requests start at this rate, e.g. "200/s", however slowly the answers come.
    pub rate: Option<String>,
    /// Requests sent first and not measured (default 0).
    pub warmup: Option<u64>,
    /// Budget: the median latency at most, e.g. "50ms".
    pub p50: Option<Dur>,
    /// Budget: the 95th percentile latency at most, e.g. "100ms".
    pub p95: Option<Dur>,
    /// Budget: the 99th percentile latency at most, e.g. "250ms".
    pub p99: Option<Dur>,
    /// Budget: the share of failed requests at most, e.g. "1%".
    pub max_error_rate: Option<String>,
    /// Budget: successful requests per second at least, e.g. "150/s".
    pub min_throughput: Option<String>,
}

/// How long a load runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Requests(u64),
    Duration(Duration),
}

/// A checked `[probe.load]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    pub bound: Bound,
    pub concurrency: u32,
    /// Requests per second (open model).
    pub rate: Option<f64>,
    pub warmup: u64,
    pub p50: Option<Duration>,
    pub p95: Option<Duration>,
    pub p99: Option<Duration>,
    /// A fraction (0.01 for "1%"), and the text as written.
    pub max_error_rate: Option<(f64, String)>,
    /// Per second, and the text as written.
    pub min_throughput: Option<(f64, String)>,
}

impl LoadSpec {
    /// The table's values, checked; the error names the parameter.
    pub fn parse(table: &toml::Value) -> Result<LoadSpec, String> {
        let p: LoadParams = table.clone().try_into().map_err(|e: toml::de::Error| {
            let text = e.to_string();
            let mut lines: Vec<&str> = text.trim().lines().collect();
            let at = lines
                .last()
                .and_then(|l| l.strip_prefix("in `"))
                .and_then(|l| l.strip_suffix('`'))
                .map(|p| p.to_string());
            if at.is_some() {
                lines.pop();
            }
            match at {
                Some(p) => format!("`load.{p}`: {}", lines.join(" ")),
                None => format!("`load`: {}", lines.join(" ")),
            }
        })?;
        let bound = match (p.requests, p.duration) {
            (Some(_), Some(_)) => return Err("`load`: give `requests` or `duration`, not both".into()),
            (None, None) => {
                return Err("`load` needs a bound: `requests = 500` or `duration = \"10s\"`".into());
            }
            (Some(n), None) if n == 0 || n > MAX_REQUESTS => {
                return Err(format!("`load.requests`: {n} is not between 1 and {MAX_REQUESTS}"));
            }
            (Some(n), None) => Bound::Requests(n),
            (None, Some(d)) if d.0.is_zero() || d.0 > MAX_DURATION => {
                return Err(format!(
                    "`load.duration`: {} is not between 1ms and {}",
                    format_duration(d.0),
                    format_duration(MAX_DURATION)
                ));
            }
            (None, Some(d)) => Bound::Duration(d.0),
        };
        let concurrency = p.concurrency.unwrap_or(10);
        if concurrency == 0 || concurrency > MAX_CONCURRENCY {
            return Err(format!(
                "`load.concurrency`: {concurrency} is not between 1 and {MAX_CONCURRENCY}"
            ));
        }
        let rate = p
            .rate
            .as_deref()
            .map(|r| per_second(r).map_err(|m| format!("`load.rate`: {m}")))
            .transpose()?;
        let max_error_rate = p
            .max_error_rate
            .map(|t| percent(&t).map(|f| (f, t.trim().to_string())))
            .transpose()
            .map_err(|m| format!("`load.max_error_rate`: {m}"))?;
        let min_throughput = p
            .min_throughput
            .map(|t| per_second(&t).map(|f| (f, t.trim().to_string())))
            .transpose()
            .map_err(|m| format!("`load.min_throughput`: {m}"))?;
        let warmup = p.warmup.unwrap_or(0);
        if warmup > MAX_REQUESTS {
            return Err(format!("`load.warmup`: {warmup} is more than {MAX_REQUESTS}"));
        }
        Ok(LoadSpec {
            bound,
            concurrency,
            rate,
            warmup,
            p50: p.p50.map(|d| d.0),
            p95: p.p95.map(|d| d.0),
            p99: p.p99.map(|d| d.0),
            max_error_rate,
            min_throughput,
        })
    }

    /// The ad-hoc form `REQUESTSxCONCURRENCY` (`200x10`), no budgets.
    pub fn adhoc(text: &str) -> Result<LoadSpec, String> {
        let bad = || format!("`{text}` is not REQUESTSxCONCURRENCY, e.g. 200x10");
        let (n, c) = text.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        let c: u32 = c.trim().parse().map_err(|_| bad())?;
        let mut t = toml::Table::new();
        t.insert("requests".into(), toml::Value::Integer(n.min(i64::MAX as u64) as i64));
        t.insert("concurrency".into(), toml::Value::Integer(i64::from(c)));
        LoadSpec::parse(&toml::Value::Table(t)).map_err(|m| format!("--load {text}: {m}"))
    }
}

/// "200/s", "12000/m", "5/ms" → per second.
fn per_second(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (n, unit) = t
        .split_once('/')
        .ok_or_else(|| format!("`{t}` is not a rate: write \"200/s\" or \"12000/m\""))?;
    let n: f64 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{t}` is not a rate: write \"200/s\" or \"12000/m\""))?;
    let per = match unit.trim() {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "ms" => 0.001,
        u => return Err(format!("`{t}`: unknown unit `/{u}`, write /s, /m or /h")),
    };
    let r = n / per;
    if !(r.is_finite() && r > 0.0 && r <= MAX_RATE) {
        return Err(format!("`{t}` is not a rate above 0 and at most {MAX_RATE}/s"));
    }
    Ok(r)
}

/// "1%", "0.5%" → a fraction.
fn percent(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let n: f64 = t
        .strip_suffix('%')
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("`{t}` is not a percentage: write \"1%\""))?;
    if !(0.0..=100.0).contains(&n) {
        return Err(format!("`{t}` is not between 0% and 100%"));
    }
    Ok(n / 100.0)
}

/// What a kind gives a load: where to connect and how to open a worker's
/// session there.
pub trait Load: Send + Sync {
    /// The host and port every session connects to (resolved and admitted
    /// once, through the guard).
    fn endpoint(&self) -> Endpoint;
    /// One worker's session to `addr`: a logged-in connection, a pool.
    fn open<'a>(&'a self, ctx: &'a Ctx, addr: SocketAddr) -> BoxFuture<'a, Result<Box<dyn Session>, Outcome>>;
    /// After the last request, whatever stopped the load: undo what it
    /// left behind (an object store's canaries). Bounded by the caller.
    fn finish<'a>(&'a self, _ctx: &'a Ctx, _addr: SocketAddr) -> BoxFuture<'a, Result<(), Outcome>> {
        Box::pin(async { Ok(()) })
    }
}

/// One worker's connection: sends one request at a time.
pub trait Session: Send {
    /// One request; `Err` says why it failed. A failed session is dropped
    /// and opened again for the next request.
    fn call(&mut self) -> BoxFuture<'_, Result<(), Outcome>>;
    /// The id the last request carried (HTTP), for the report.
    fn last_id(&self) -> Option<String> {
        None
    }
    /// Whether the session is still good after this failed request (a
    /// refusal it was answered with); by default it is opened again.
    fn keep_after(&self, _failed: &Outcome) -> bool {
        false
    }
}

/// A probe with a load: the probe once, then the load.
pub struct LoadProbe {
    pub inner: Box<dyn Probe>,
    pub spec: LoadSpec,
    /// Each request's own time budget (the probe's `timeout`).
    pub per_request: Duration,
}

impl Probe for LoadProbe {
    fn hosts(&self) -> Vec<Endpoint> {
        self.inner.hosts()
    }

    /// `ctx.timeout` is what is left of the run's deadline.
    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let deadline = Instant::now() + ctx.timeout;
            let one = Arc::new(Ctx {
                timeout: self.per_request.min(ctx.timeout),
                net: ctx.net.clone(),
                guard: ctx.guard.clone(),
                name: ctx.name.clone(),
            });
            let first = self.inner.run(&one).await;
            if first.verdict == Verdict::Fail {
                let mut o = first;
                o.message = format!("{} (the load did not start)", o.message);
                return o;
            }
            let Some(load) = self.inner.load() else {
                return Outcome::fail(
                    Class::Unknown,
                    "this probe cannot run a load as configured (a Redis behind Sentinel is found only at run time: \
                     give the load a probe of its own that names the master; an object store needs `load_object` \
                     or `write = true`)",
                );
            };
            match drive(load, one, &self.spec, deadline).await {
                Ok(m) => judge(&self.spec, &m, first.verdict),
                Err(o) => o,
            }
        })
    }

    fn load(&self) -> Option<Arc<dyn Load>> {
        self.inner.load()
    }
}

/// What the workers measured together.
pub struct Measured {
    pub hist: Histogram<u64>,
    pub ok: u64,
    pub errors: BTreeMap<&'static str, u64>,
    pub elapsed: Duration,
    pub concurrency: u32,
    pub rate: Option<f64>,
    /// (latency µs, request id) of the slowest measured request.
    pub slowest: Option<(u64, Option<String>)>,
    /// The first failed measured request: its id and why.
    pub failed: Option<(Option<String>, String)>,
    pub stopped: Option<String>,
    /// What the load could not undo when it ended (canaries it could not
    /// delete): the run fails with it, whatever the budgets say.
    pub left: Option<Outcome>,
}

/// One worker's share.
struct Worker {
    hist: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<&'static str, u64>,
    slowest: Option<(u64, Option<String>)>,
    failed: Option<(u64, Option<String>, String)>,
    last_end: Option<Instant>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 1 hour, three significant digits; grows past that if needed.
    let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    h.auto(true);
    h
}

/// Hands out request numbers and says when to stop.
struct Schedule {
    next: AtomicU64,
    start: Instant,
    deadline: Instant,
    warmup: u64,
    total: Option<u64>,
    duration: Option<Duration>,
    rate: Option<f64>,
    /// Nanoseconds after `start` at which the measured part began, plus one
    /// (0: not yet).
    measure_from: AtomicU64,
    /// The deadline stopped the load before its bound.
    cut: std::sync::atomic::AtomicBool,
}

/// A request to send: its number, whether it is measured, when it is due.
struct Ticket {
    n: u64,
    measured: bool,
    due: Instant,
}

impl Schedule {
    fn take(&self) -> Option<Ticket> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        if self.total.is_some_and(|t| n >= t) {
            return None;
        }
        let now = Instant::now();
        let due = match self.rate {
            Some(r) => self.start + Duration::from_secs_f64(n as f64 / r),
            None => now,
        };
        if due >= self.deadline || now >= self.deadline {
            self.cut.store(true, Ordering::Relaxed);
            return None;
        }
        let measured = n >= self.warmup;
        if measured {
            let from = match self.rate {
                // Open model: the measured part starts when its first request is due.
                Some(r) => Duration::from_secs_f64(self.warmup as f64 / r).as_nanos() as u64 + 1,
                None => now.duration_since(self.start).as_nanos() as u64 + 1,
            };
            let _ = self
                .measure_from
                .compare_exchange(0, from, Ordering::Relaxed, Ordering::Relaxed);
            if let Some(d) = self.duration {
                let began = self.start + Duration::from_nanos(self.measure_from.load(Ordering::Relaxed) - 1);
                if due >= began + d {
                    return None;
                }
            }
        }
        Some(Ticket { n, measured, due })
    }

    fn measured_start(&self) -> Option<Instant> {
        match self.measure_from.load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.start + Duration::from_nanos(n - 1)),
        }
    }
}

/// Run the load: resolve and admit the endpoint once, start the workers,
/// merge what they measured.
pub async fn drive(
    load: Arc<dyn Load>,
    ctx: Arc<Ctx>,
    spec: &LoadSpec,
    deadline: Instant,
) -> Result<Measured, Outcome> {
    let e = load.endpoint();
    let ips = ctx.admitted(&e.host).await?;
    let addr = SocketAddr::new(ips[0], e.port.unwrap_or(0));
    let (total, duration) = match spec.bound {
        Bound::Requests(n) => (Some(spec.warmup + n), None),
        Bound::Duration(d) => (None, Some(d)),
    };
    let sched = Arc::new(Schedule {
        next: AtomicU64::new(0),
        start: Instant::now(),
        deadline,
        warmup: spec.warmup,
        total,
        duration,
        rate: spec.rate,
        measure_from: AtomicU64::new(0),
        cut: std::sync::atomic::AtomicBool::new(false),
    });
    let workers: Vec<_> = (0..spec.concurrency)
        .map(|_| {
            let (load, ctx, sched) = (load.clone(), ctx.clone(), sched.clone());
            tokio::spawn(async move { work(load.as_ref(), &ctx, &sched, addr).await })
        })
        .collect();
    let mut m = Measured {
        hist: histogram(),
        ok: 0,
        errors: BTreeMap::new(),
        elapsed: Duration::ZERO,
        concurrency: spec.concurrency,
        rate: spec.rate,
        slowest: None,
        failed: None,
        stopped: None,
        left: None,
    };
    let mut first_failed: Option<(u64, Option<String>, String)> = None;
    let mut last_end: Option<Instant> = None;
    let mut done = Vec::with_capacity(workers.len());
    let mut stopped = None;
    for w in workers {
        match w.await {
            Ok(w) => done.push(w),
            Err(e) => stopped = Some(Outcome::fail(Class::Unknown, format!("a load worker stopped: {e}"))),
        }
    }
    // Whatever ended the load (its bound, the deadline, a worker that
    // stopped), what it left behind is undone. Requests that timed out may
    // be why something was left, so the cleanup gets more than their time,
    // past the run's deadline if need be, and still a bound.
    let tidy = Ctx {
        timeout: ctx.timeout.max(CLEANUP),
        net: ctx.net.clone(),
        guard: ctx.guard.clone(),
        name: ctx.name.clone(),
    };
    m.left = match tokio::time::timeout(tidy.timeout, load.finish(&tidy, addr)).await {
        Ok(Ok(())) => None,
        Ok(Err(o)) => Some(o),
        Err(_) => Some(Outcome::fail(
            Class::Timeout,
            format!(
                "cleaning up after the load took longer than {}",
                format_duration(tidy.timeout)
            ),
        )),
    };
    if let Some(mut o) = stopped {
        if let Some(l) = &m.left {
            o.message = format!("{}; after the load: {}", o.message, l.message);
        }
        return Err(o);
    }
    for w in done {
        let _ = m.hist.add(&w.hist);
        m.ok += w.ok;
        for (k, v) in w.errors {
            *m.errors.entry(k).or_default() += v;
        }
        if w.slowest.as_ref().map(|s| s.0) > m.slowest.as_ref().map(|s| s.0) {
            m.slowest = w.slowest;
        }
        if let Some(f) = w.failed
            && first_failed.as_ref().is_none_or(|g| f.0 < g.0)
        {
            first_failed = Some(f);
        }
        last_end = last_end.max(w.last_end);
    }
    m.failed = first_failed.map(|(_, id, why)| (id, why));
    if let (Some(from), Some(to)) = (sched.measured_start(), last_end) {
        m.elapsed = to.saturating_duration_since(from);
    }
    if sched.cut.load(Ordering::Relaxed) {
        m.stopped = Some("the run's deadline came before the load's bound".into());
    }
    Ok(m)
}

async fn work(load: &dyn Load, ctx: &Ctx, sched: &Schedule, addr: SocketAddr) -> Worker {
    let mut w = Worker {
        hist: histogram(),
        ok: 0,
        errors: BTreeMap::new(),
        slowest: None,
        failed: None,
        last_end: None,
    };
    let mut session: Option<Box<dyn Session>> = None;
    while let Some(t) = sched.take() {
        if sched.rate.is_some() {
            tokio::time::sleep_until(t.due.into()).await;
        }
        let sent = if sched.rate.is_some() { t.due } else { Instant::now() };
        let left = sched.deadline.saturating_duration_since(Instant::now());
        let budget = ctx.timeout.min(left);
        let result = async {
            if session.is_none() {
                session = Some(load.open(ctx, addr).await?);
            }
            match session.as_mut() {
                Some(s) => s.call().await,
                None => Ok(()),
            }
        };
        let result = match tokio::time::timeout(budget, result).await {
            Ok(r) => r,
            Err(_) => Err(super::net::timed_out(addr, budget)),
        };
        let end = Instant::now();
        if !t.measured {
            if let Err(o) = &result
                && !session.as_ref().is_some_and(|s| s.keep_after(o))
            {
                session = None;
            }
            continue;
        }
        w.last_end = Some(end);
        match result {
            Ok(()) => {
                let us = end.saturating_duration_since(sent).as_micros().max(1) as u64;
                let _ = w.hist.record(us);
                w.ok += 1;
                if w.slowest.as_ref().is_none_or(|s| us > s.0) {
                    w.slowest = Some((us, session.as_ref().and_then(|s| s.last_id())));
                }
            }
            Err(o) => {
                *w.errors.entry(o.class.unwrap_or(Class::Unknown).as_str()).or_default() += 1;
                if w.failed.is_none() {
                    let id = o
                        .request_id
                        .clone()
                        .or_else(|| session.as_ref().and_then(|s| s.last_id()));
                    w.failed = Some((t.n, id, o.message.clone()));
                }
                if !session.as_ref().is_some_and(|s| s.keep_after(&o)) {
                    session = None;
                }
            }
        }
    }
    w
}

fn ms(us: u64) -> f64 {
    (us as f64 / 10.0).round() / 100.0
}

fn show_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}ms")
    } else if v >= 10.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.2}ms")
    }
}

/// The percentiles the report and the chart show.
const DISTRIBUTION: &[f64] = &[0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 100.0];

/// The report of a measured load: percentiles and every budget.
pub fn report(spec: &LoadSpec, m: &Measured) -> LoadReport {
    let errors: u64 = m.errors.values().sum();
    let count = m.ok + errors;
    let q = |p: f64| {
        if m.ok == 0 {
            0.0
        } else {
            ms(m.hist.value_at_quantile(p / 100.0))
        }
    };
    let secs = m.elapsed.as_secs_f64();
    let throughput = if secs > 0.0 { m.ok as f64 / secs } else { 0.0 };
    let throughput = (throughput * 10.0).round() / 10.0;
    let mut budgets = Vec::new();
    for (name, limit, measured) in [
        ("p50", spec.p50, q(50.0)),
        ("p95", spec.p95, q(95.0)),
        ("p99", spec.p99, q(99.0)),
    ] {
        if let Some(l) = limit {
            let l_ms = l.as_secs_f64() * 1000.0;
            budgets.push(Budget {
                name: name.into(),
                limit: format_duration(l),
                measured: if m.ok == 0 { "none".into() } else { show_ms(measured) },
                held: m.ok > 0 && measured <= l_ms,
            });
        }
    }
    if let Some((max, text)) = &spec.max_error_rate {
        let rate = if count == 0 { 0.0 } else { errors as f64 / count as f64 };
        budgets.push(Budget {
            name: "max_error_rate".into(),
            limit: text.clone(),
            measured: format!("{:.1}%", rate * 100.0),
            held: rate <= *max,
        });
    }
    if let Some((min, text)) = &spec.min_throughput {
        budgets.push(Budget {
            name: "min_throughput".into(),
            limit: text.clone(),
            measured: format!("{throughput:.0}/s"),
            held: throughput >= *min,
        });
    }
    LoadReport {
        count,
        errors,
        errors_by_class: m.errors.iter().map(|(k, v)| ((*k).to_string(), *v)).collect(),
        concurrency: m.concurrency,
        rate: m.rate,
        duration_ms: m.elapsed.as_millis() as u64,
        p50_ms: q(50.0),
        p90_ms: q(90.0),
        p95_ms: q(95.0),
        p99_ms: q(99.0),
        max_ms: if m.ok == 0 { 0.0 } else { ms(m.hist.max()) },
        throughput,
        distribution: DISTRIBUTION
            .iter()
            .map(|&p| Percentile {
                percentile: p,
                ms: if p == 100.0 && m.ok > 0 { ms(m.hist.max()) } else { q(p) },
            })
            .collect(),
        budgets,
        slowest_request_id: m.slowest.as_ref().and_then(|s| s.1.clone()),
        failed_request_id: m.failed.as_ref().and_then(|f| f.0.clone()),
        first_error: m.failed.as_ref().map(|f| f.1.clone()),
        stopped: m.stopped.clone(),
    }
}

/// The percentiles in one line: `p50 50.1ms, p90 50.4ms, ... max 53ms`.
pub fn summary(r: &LoadReport) -> String {
    let mut s = format!(
        "{} requests, {} at once{}, in {}: p50 {}, p90 {}, p95 {}, p99 {}, max {}; {}/s",
        r.count,
        r.concurrency,
        r.rate.map(|x| format!(", {x}/s due")).unwrap_or_default(),
        format_duration(Duration::from_millis(r.duration_ms)),
        show_ms(r.p50_ms),
        show_ms(r.p90_ms),
        show_ms(r.p95_ms),
        show_ms(r.p99_ms),
        show_ms(r.max_ms),
        r.throughput.round()
    );
    if r.errors > 0 {
        let by: Vec<String> = r.errors_by_class.iter().map(|(k, v)| format!("{v} {k}")).collect();
        s.push_str(&format!("; {} errors ({})", r.errors, by.join(", ")));
    } else {
        s.push_str("; no errors");
    }
    s
}

/// A budget that failed, in words: "p95 50.3ms is over its budget of 40ms by 10.3ms".
fn broken(b: &Budget) -> String {
    let num = |t: &str| {
        t.trim_end_matches("ms")
            .trim_end_matches('%')
            .trim_end_matches("/s")
            .parse::<f64>()
            .ok()
    };
    match b.name.as_str() {
        "max_error_rate" => format!("error rate {} is over its budget of {}", b.measured, b.limit),
        "min_throughput" => format!("throughput {} is under its budget of {}", b.measured, b.limit),
        _ if b.measured == "none" => format!(
            "{}: no request succeeded, so nothing was within its budget of {}",
            b.name, b.limit
        ),
        _ => {
            let limit_ms = crate::config::units::duration_param(&b.limit)
                .map(|d| d.as_secs_f64() * 1000.0)
                .ok();
            match (num(&b.measured), limit_ms) {
                (Some(m), Some(l)) if m > l => format!(
                    "{} {} is over its budget of {} by {}",
                    b.name,
                    b.measured,
                    b.limit,
                    show_ms(((m - l) * 100.0).round() / 100.0)
                ),
                _ => format!("{} {} is over its budget of {}", b.name, b.measured, b.limit),
            }
        }
    }
}

/// The verdict: every budget holds (pass), or which failed, by how much,
/// with the measured percentiles.
pub fn judge(spec: &LoadSpec, m: &Measured, first: Verdict) -> Outcome {
    let r = report(spec, m);
    let failed: Vec<&Budget> = r.budgets.iter().filter(|b| !b.held).collect();
    let mut line = summary(&r);
    if let Some(id) = &r.slowest_request_id {
        line.push_str(&format!("; slowest {id}"));
    }
    if let Some(id) = &r.failed_request_id {
        line.push_str(&format!("; first failed {id}"));
    }
    let mut o = if failed.is_empty() {
        let held: Vec<String> = r.budgets.iter().map(|b| format!("{} ≤ {}", b.name, b.limit)).collect();
        let held = held
            .join(", ")
            .replace("max_error_rate ≤", "error rate ≤")
            .replace("min_throughput ≤", "throughput ≥");
        let mut msg = format!("load: {line}");
        if !held.is_empty() {
            msg.push_str(&format!("; budgets hold ({held})"));
        }
        if let Some(s) = &r.stopped {
            msg.push_str(&format!("; stopped early: {s}"));
        }
        let mut o = Outcome::pass(msg);
        if first == Verdict::Warn || r.stopped.is_some() {
            o.verdict = Verdict::Warn;
            o.class = Some(if r.stopped.is_some() {
                Class::Timeout
            } else {
                Class::Unknown
            });
        }
        o
    } else {
        let class = if failed.iter().any(|b| b.name == "max_error_rate") {
            r.errors_by_class
                .iter()
                .max_by_key(|(_, v)| **v)
                .and_then(|(k, _)| class_named(k))
                .unwrap_or(Class::Status)
        } else {
            Class::Latency
        };
        let why: Vec<String> = failed.iter().map(|b| broken(b)).collect();
        let mut msg = format!("{} ({line})", why.join("; "));
        if let Some(e) = &r.first_error {
            msg.push_str(&format!("; first error: {e}"));
        }
        if let Some(s) = &r.stopped {
            msg.push_str(&format!("; stopped early: {s}"));
        }
        Outcome::fail(class, msg)
    };
    if let Some(l) = &m.left {
        // A load that cannot clean up after itself fails, budgets or not.
        if o.verdict == Verdict::Fail {
            o.message = format!("{}; after the load: {}", o.message, l.message);
        } else {
            o.message = format!("{} (after the {})", l.message, o.message);
            o.class = l.class;
        }
        o.verdict = Verdict::Fail;
    }
    o.load = Some(Box::new(r));
    o
}

fn class_named(name: &str) -> Option<Class> {
    [
        Class::Refused,
        Class::Timeout,
        Class::Dns,
        Class::Tls,
        Class::Status,
        Class::Body,
        Class::Latency,
        Class::Permission,
        Class::NotFound,
        Class::Capacity,
        Class::Exec,
        Class::Unknown,
        Class::Io,
        Class::Auth,
        Class::Protocol,
        Class::Isolation,
    ]
    .into_iter()
    .find(|c| c.as_str() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Result<LoadSpec, String> {
        LoadSpec::parse(&toml::Value::Table(toml::from_str(text).unwrap()))
    }

    #[test]
    fn a_load_needs_exactly_one_bound() {
        assert!(spec("concurrency = 2").unwrap_err().contains("needs a bound"));
        assert!(
            spec("requests = 5\nduration = \"1s\"")
                .unwrap_err()
                .contains("not both")
        );
        let s = spec("requests = 500\nconcurrency = 20\nrate = \"200/s\"\nwarmup = 20\np95 = \"40ms\"\nmax_error_rate = \"1%\"\nmin_throughput = \"150/s\"").unwrap();
        assert_eq!(s.bound, Bound::Requests(500));
        assert_eq!(s.rate, Some(200.0));
        assert_eq!(s.max_error_rate, Some((0.01, "1%".into())));
        assert_eq!(s.min_throughput, Some((150.0, "150/s".into())));
    }

    #[test]
    fn fails_when_a_load_budget_has_no_unit_or_a_bad_shape() {
        let e = spec("requests = 5\np95 = 40").unwrap_err();
        assert!(e.contains("load.p95") && e.contains("\"40s\" or \"40ms\""), "{e}");
        let e = spec("requests = 5\nmax_error_rate = \"1\"").unwrap_err();
        assert!(e.contains("not a percentage"), "{e}");
        let e = spec("requests = 5\nrate = \"200\"").unwrap_err();
        assert!(e.contains("not a rate"), "{e}");
        let e = spec("requests = 5\nconcurency = 3").unwrap_err();
        assert!(e.contains("concurency"), "{e}");
        assert!(spec("requests = 5\nconcurrency = 0").unwrap_err().contains("between 1"));
    }

    #[test]
    fn the_adhoc_form_is_requests_by_concurrency() {
        let s = LoadSpec::adhoc("200x10").unwrap();
        assert_eq!((s.bound, s.concurrency), (Bound::Requests(200), 10));
        assert!(LoadSpec::adhoc("200").unwrap_err().contains("REQUESTSxCONCURRENCY"));
    }

    fn measured(latencies_ms: &[u64], errors: u64) -> Measured {
        let mut hist = histogram();
        for l in latencies_ms {
            hist.record(l * 1000).unwrap();
        }
        let mut e = BTreeMap::new();
        if errors > 0 {
            e.insert("status", errors);
        }
        Measured {
            hist,
            ok: latencies_ms.len() as u64,
            errors: e,
            elapsed: Duration::from_secs(1),
            concurrency: 4,
            rate: None,
            slowest: Some((
                latencies_ms.iter().max().copied().unwrap_or(0) * 1000,
                Some("envgate-r-p-7".into()),
            )),
            failed: None,
            stopped: None,
            left: None,
        }
    }

    #[test]
    fn a_broken_latency_budget_names_the_measured_value_and_the_excess() {
        let s = spec("requests = 100\np95 = \"40ms\"").unwrap();
        let m = measured(&[50; 100], 0);
        let o = judge(&s, &m, Verdict::Pass);
        assert_eq!(o.verdict, Verdict::Fail);
        assert_eq!(o.class, Some(Class::Latency));
        assert!(
            o.message
                .starts_with("latency: p95 50.0ms is over its budget of 40ms by 10.0ms"),
            "{}",
            o.message
        );
        assert!(o.message.contains("p50 50.0ms"), "{}", o.message);
    }

    #[test]
    fn an_error_rate_over_budget_fails_with_the_errors_class() {
        let s = spec("requests = 100\nmax_error_rate = \"1%\"").unwrap();
        let o = judge(&s, &measured(&[5; 95], 5), Verdict::Pass);
        assert_eq!(o.class, Some(Class::Status));
        assert!(
            o.message.contains("error rate 5.0% is over its budget of 1%"),
            "{}",
            o.message
        );
        let r = o.load.unwrap();
        assert_eq!((r.count, r.errors), (100, 5));
    }

    #[test]
    fn a_latency_budget_with_no_successful_request_says_so() {
        let s = spec("requests = 10\np95 = \"40ms\"").unwrap();
        let o = judge(&s, &measured(&[], 10), Verdict::Pass);
        assert_eq!(o.verdict, Verdict::Fail);
        assert!(
            o.message
                .contains("p95: no request succeeded, so nothing was within its budget of 40ms"),
            "{}",
            o.message
        );
    }

    #[test]
    fn budgets_that_hold_pass_and_say_so() {
        let s = spec("requests = 100\np50 = \"10ms\"\nmin_throughput = \"50/s\"").unwrap();
        let o = judge(&s, &measured(&[5; 100], 0), Verdict::Pass);
        assert_eq!(o.verdict, Verdict::Pass, "{}", o.message);
        assert!(
            o.message.contains("budgets hold (p50 ≤ 10ms, throughput ≥ 50/s)"),
            "{}",
            o.message
        );
    }

    #[test]
    fn a_load_that_leaves_canaries_behind_fails_whatever_its_budgets_say() {
        let s = spec("requests = 100\np50 = \"10ms\"").unwrap();
        let mut m = measured(&[5; 100], 0);
        m.left = Some(Outcome::fail(
            Class::Permission,
            "S3 s3://b: the credentials may not delete canary `c` in bucket `b`",
        ));
        let o = judge(&s, &m, Verdict::Pass);
        assert_eq!((o.verdict, o.class), (Verdict::Fail, Some(Class::Permission)));
        assert!(
            o.message
                .starts_with("permission: S3 s3://b: the credentials may not delete canary `c` in bucket `b` (after the load: 100 requests")
                && o.message.contains("budgets hold"),
            "{}",
            o.message
        );
        // A load whose budgets broke says both.
        let s = spec("requests = 100\np50 = \"1ms\"").unwrap();
        let o = judge(&s, &m, Verdict::Pass);
        assert_eq!((o.verdict, o.class), (Verdict::Fail, Some(Class::Latency)));
        assert!(
            o.message.starts_with("latency: p50 5.00ms is over its budget of 1ms")
                && o.message.contains("; after the load: permission: S3"),
            "{}",
            o.message
        );
    }
}
