//! What a probe run says while it runs, on stderr. On a terminal: a bar
//! naming the probes still running and the elapsed time, each failure
//! printed above it as it happens. Elsewhere (CI logs, cron): one line per
//! finished probe as it finishes, so a long `--wait` shows progress. It
//! consumes the runner's events; the runner itself never draws.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indexmap::IndexSet;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::secrets::redact_url_passwords;
use crate::config::units::format_duration;
use crate::outcome::Status;
use crate::runner::{Event, Finished, Observer};

/// `-q`, the default, or `-v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

impl Verbosity {
    pub fn from_flags(quiet: bool, verbose: bool) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, true) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        }
    }
}

/// `envgate probe`, which prints its own line per target at the end: the
/// bar on a terminal; elsewhere a line per failed attempt while it waits.
pub fn observer() -> Option<Observer> {
    if std::io::stderr().is_terminal() {
        return Some(bar(Verbosity::Normal));
    }
    Some(Arc::new(|e: &Event| {
        if let Event::Retrying { .. } = e
            && let Some(l) = retry_line(e)
        {
            let _ = writeln!(std::io::stderr().lock(), "{l}");
        }
    }))
}

/// `retry   dev/db: attempt 2 failed: connection refused ...; next in 400ms`
fn retry_line(e: &Event) -> Option<String> {
    let Event::Retrying {
        group,
        name,
        attempt,
        message,
        pause,
        ..
    } = e
    else {
        return None;
    };
    let who = if group.is_empty() {
        name.to_string()
    } else {
        format!("{group}/{name}")
    };
    Some(format!(
        "{:<7} {who}: attempt {attempt} failed: {}; next in {}",
        "retry",
        redact_url_passwords(&message.replace('\n', " ")),
        format_duration(Duration::from_millis(pause.as_millis() as u64))
    ))
}

/// `check`: the bar on a terminal, a line per finished probe elsewhere.
pub fn observer_for(v: Verbosity) -> Option<Observer> {
    if std::io::stderr().is_terminal() {
        Some(bar(v))
    } else {
        Some(lines(v))
    }
}

fn is_problem(r: &Finished) -> bool {
    matches!(r.status, Status::Fail | Status::Blocked | Status::Warn)
}

/// `fail    staging/database (2 attempts, 2s): connection refused by ...`
pub fn line(group: &str, name: &str, r: &Finished) -> String {
    let who = if group.is_empty() {
        name.to_string()
    } else {
        format!("{group}/{name}")
    };
    let took = format_duration(Duration::from_millis(r.duration.as_millis() as u64));
    let attempts = if r.attempts > 1 {
        format!("{} attempts, ", r.attempts)
    } else {
        String::new()
    };
    let message = redact_url_passwords(&r.message.replace('\n', " "));
    format!("{:<7} {who} ({attempts}{took}): {message}", r.status.as_str())
}

/// Not a terminal: a line per finished probe (`-q`: problems only).
fn lines(v: Verbosity) -> Observer {
    Arc::new(move |e: &Event| {
        if v != Verbosity::Quiet
            && let Some(l) = retry_line(e)
        {
            let _ = writeln!(std::io::stderr().lock(), "{l}");
            return;
        }
        if let Event::Finished {
            group, name, result, ..
        } = e
        {
            if result.status == Status::Skipped && v != Verbosity::Verbose {
                return;
            }
            if v == Verbosity::Quiet && !is_problem(result) {
                return;
            }
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}", line(group, name, result));
        }
    })
}

struct Bar {
    bar: Option<ProgressBar>,
    running: IndexSet<String>,
}

/// What the bar's message says: the probes in flight, a few by name.
fn running_text(running: &IndexSet<String>) -> String {
    const SHOWN: usize = 3;
    let mut names: Vec<&str> = running.iter().take(SHOWN).map(String::as_str).collect();
    let more = running.len().saturating_sub(SHOWN);
    let more = if more > 0 { format!(" +{more}") } else { String::new() };
    if names.is_empty() {
        return String::new();
    }
    names.sort_unstable();
    format!("running {}{more}", names.join(", "))
}

fn bar(v: Verbosity) -> Observer {
    let state = Mutex::new(Bar {
        bar: None,
        running: IndexSet::new(),
    });
    Arc::new(move |e: &Event| {
        let mut s = state.lock().expect("no poisoning");
        match e {
            Event::Planned { total } => {
                let b = ProgressBar::new(*total as u64);
                b.set_style(
                    ProgressStyle::with_template("{spinner} {elapsed:>4} probes {pos}/{len} {bar:24} {wide_msg}")
                        .expect("valid template"),
                );
                b.enable_steady_tick(Duration::from_millis(200));
                s.bar = Some(b);
            }
            Event::Started { group, name, .. } => {
                let who = if group.is_empty() {
                    name.to_string()
                } else {
                    format!("{group}/{name}")
                };
                s.running.insert(who);
                let text = running_text(&s.running);
                if let Some(b) = s.bar.as_ref() {
                    b.set_message(text);
                }
            }
            Event::Retrying { .. } => {
                if v == Verbosity::Verbose
                    && let (Some(b), Some(l)) = (s.bar.as_ref(), retry_line(e))
                {
                    b.println(l);
                }
            }
            Event::Finished {
                group, name, result, ..
            } => {
                let who = if group.is_empty() {
                    name.to_string()
                } else {
                    format!("{group}/{name}")
                };
                s.running.shift_remove(&who);
                let text = running_text(&s.running);
                if let Some(b) = s.bar.as_ref() {
                    let show = is_problem(result) || (v == Verbosity::Verbose && result.status != Status::Skipped);
                    if show {
                        b.println(line(group, name, result));
                    }
                    b.set_message(text);
                    b.inc(1);
                    if b.position() >= b.length().unwrap_or(0) {
                        b.finish_and_clear();
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_names_a_few_running_probes_and_counts_the_rest() {
        let mut r = IndexSet::new();
        assert_eq!(running_text(&r), "");
        for n in ["prod/db", "prod/cache", "prod/api", "prod/queue", "prod/mail"] {
            r.insert(n.to_string());
        }
        assert_eq!(running_text(&r), "running prod/api, prod/cache, prod/db +2");
    }

    #[test]
    fn a_finished_line_says_status_name_attempts_time_and_why_without_passwords() {
        let mut f = Finished::preset(
            Status::Fail,
            crate::findings::Category::Probe,
            None,
            "cannot connect to postgres://app:hunter2@db:5432/x:\nrefused".into(),
        );
        f.attempts = 3;
        f.duration = Duration::from_millis(2100);
        let l = line("staging", "db", &f);
        assert!(l.starts_with("fail    staging/db (3 attempts, "), "{l}");
        assert!(l.contains("postgres://app:***@db:5432/x: refused"), "{l}");
        assert!(!l.contains("hunter2"));
    }
}
