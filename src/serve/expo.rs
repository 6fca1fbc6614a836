//! `/metrics`: the audit's series (built after each run), the server's own
//! counters and the process's, in Prometheus text format 0.0.4, or in
//! OpenMetrics 1.0 when the scraper asks for it. Labels are fixed words;
//! never a URL, a DSN or a message.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::Shared;

pub const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The scraper asked for OpenMetrics.
pub fn wants_openmetrics(accept: &str) -> bool {
    accept
        .split(',')
        .any(|part| part.trim().starts_with("application/openmetrics-text") && !q_zero(part))
}

fn q_zero(part: &str) -> bool {
    part.split(';')
        .skip(1)
        .any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"))
}

enum Kind {
    Counter,
    Gauge,
}

fn family(out: &mut String, om: bool, name: &str, kind: Kind, help: &str, samples: &[(&str, f64)]) {
    let (type_name, sample_name) = match kind {
        // OpenMetrics names the counter family without `_total`.
        Kind::Counter if om => (name.trim_end_matches("_total"), name),
        Kind::Counter => (name, name),
        Kind::Gauge => (name, name),
    };
    let t = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
    };
    let _ = writeln!(out, "# HELP {type_name} {help}\n# TYPE {type_name} {t}");
    for (labels, v) in samples {
        let _ = writeln!(out, "{sample_name}{labels} {v}");
    }
}

/// The exposition, made at most once a second per format and view (a
/// scrape sees counters and process figures at most a second old).
pub fn cached(shared: &Shared, om: bool) -> axum::body::Bytes {
    let now = super::now();
    // Read before the view: an answer is never tagged newer than it is.
    let generation = shared.generation.load(Ordering::SeqCst);
    let i = usize::from(om);
    {
        let cache = shared.metrics_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, g, body)) = &cache[i]
            && (*at, *g) == (now, generation)
        {
            return body.clone();
        }
    }
    let body = axum::body::Bytes::from(render(shared, om));
    let mut cache = shared.metrics_cache.lock().unwrap_or_else(|p| p.into_inner());
    cache[i] = Some((now, generation, body.clone()));
    body
}

/// The whole exposition.
pub fn render(shared: &Shared, om: bool) -> String {
    let view = shared.view();
    let c = &shared.counters;
    let mut out = String::with_capacity(view.metrics.len() + 4096);
    out.push_str(&view.metrics);
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    family(
        &mut out,
        om,
        "envgate_serve_runs_total",
        Kind::Counter,
        "Audit runs this server completed.",
        &[("", load(&c.runs))],
    );
    family(
        &mut out,
        om,
        "envgate_serve_runs_skipped_total",
        Kind::Counter,
        "Scheduled runs skipped because the run before overran its interval.",
        &[("", load(&c.skipped))],
    );
    family(
        &mut out,
        om,
        "envgate_serve_run_failures_total",
        Kind::Counter,
        "Runs that could not audit (store unreachable, configuration broken).",
        &[("", load(&c.troubles))],
    );
    family(
        &mut out,
        om,
        "envgate_serve_last_run_duration_seconds",
        Kind::Gauge,
        "Time the last audit run took.",
        &[("", load(&c.last_run_ms) / 1000.0)],
    );
    family(
        &mut out,
        om,
        "envgate_serve_probe_requests_total",
        Kind::Counter,
        "Calls of /probe by outcome.",
        &[
            ("{outcome=\"run\"}", load(&c.probe_runs)),
            ("{outcome=\"shared\"}", load(&c.probe_shared)),
            ("{outcome=\"rate_limited\"}", load(&c.probe_limited)),
            ("{outcome=\"unknown_check\"}", load(&c.probe_unknown)),
        ],
    );
    family(
        &mut out,
        om,
        "envgate_serve_unauthorized_requests_total",
        Kind::Counter,
        "Requests refused for a missing or wrong bearer token.",
        &[("", load(&c.unauthorized))],
    );
    let p = process();
    family(
        &mut out,
        om,
        "process_cpu_seconds_total",
        Kind::Counter,
        "User and system CPU time spent, in seconds.",
        &[("", p.cpu_seconds)],
    );
    family(
        &mut out,
        om,
        "process_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory size in bytes.",
        &[("", p.resident)],
    );
    family(
        &mut out,
        om,
        "process_virtual_memory_bytes",
        Kind::Gauge,
        "Virtual memory size in bytes.",
        &[("", p.virtual_)],
    );
    family(
        &mut out,
        om,
        "process_open_fds",
        Kind::Gauge,
        "Open file descriptors.",
        &[("", p.open_fds)],
    );
    family(
        &mut out,
        om,
        "process_max_fds",
        Kind::Gauge,
        "The limit of open file descriptors.",
        &[("", p.max_fds)],
    );
    family(
        &mut out,
        om,
        "process_start_time_seconds",
        Kind::Gauge,
        "Start time of the process since the Unix epoch, in seconds.",
        &[("", shared.started_at as f64)],
    );
    if om {
        out.push_str("# EOF\n");
    }
    out
}

#[derive(Default)]
struct Process {
    cpu_seconds: f64,
    resident: f64,
    virtual_: f64,
    open_fds: f64,
    max_fds: f64,
}

fn process() -> Process {
    let mut p = Process::default();
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as f64;
    // SAFETY: as above.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        let mut f = statm.split_whitespace().map(|x| x.parse::<f64>().unwrap_or(0.0));
        p.virtual_ = f.next().unwrap_or(0.0) * page;
        p.resident = f.next().unwrap_or(0.0) * page;
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may hold spaces, in parentheses).
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15; `rest` starts at field 3.
            let ut = f.get(11).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
            let st = f.get(12).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
            p.cpu_seconds = (ut + st) / ticks;
        }
    }
    p.open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()) as f64;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        p.max_fds = lim.rlim_cur as f64;
    }
    p
}
