//! `envgate probe URL... [-- CMD]`: ad-hoc probes, no project. The kind comes
//! from the URL's scheme; with `--`, CMD replaces envgate once all pass (the
//! container entrypoint use of wait-for-it).

use std::io::Write;

use super::{Context, io};
use crate::cli::{ProbeArgs, ProbeFormat};
use crate::config::secrets::redact_url_passwords;
use crate::diagnostic::{Problem, Problems};
use crate::exit_codes;
use crate::findings::Category;
use crate::outcome::{CheckResult, EnvReport, Report, Severity, Status};
use crate::probes;
use crate::report::{Format, Style};
use crate::runner::{self, Job};

pub fn probe(
    ctx: &Context,
    a: &ProbeArgs,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Problems> {
    let start = std::time::Instant::now();
    let mut targets: Vec<String> = a.urls.clone();
    if let Some(path) = &a.targets_file {
        let path = if path.is_absolute() {
            path.clone()
        } else {
            ctx.cwd.join(path)
        };
        let text = crate::config::read::read_text(&path)
            .map_err(|e| Problem::new("envgate::io", format!("cannot read {}: {e}", path.display())))?;
        targets.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    if targets.is_empty() {
        return Err(Problem::new("envgate::cli::probe", "give at least one URL to probe")
            .help("e.g. envgate probe http://127.0.0.1:8080/health tcp://127.0.0.1:5432 -- ./server")
            .into());
    }
    let load = a
        .load
        .as_deref()
        .map(probes::load::LoadSpec::adhoc)
        .transpose()
        .map_err(|m| Problem::new("envgate::cli::probe", m))?;
    let mut jobs = Vec::new();
    let mut names: Vec<(String, &'static str, &str)> = Vec::new();
    let mut problems = Vec::new();
    let expectations = http_expectations(a)?;
    let mut used_expectations = false;
    for given in &targets {
        // `db:5432` (as wait-for-it takes it) is a TCP target.
        let with_scheme = (!given.contains("://") && is_host_port(given)).then(|| format!("tcp://{given}"));
        let t = with_scheme.as_ref().unwrap_or(given);
        let scheme = t.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        let Some(kind) = scheme.as_deref().and_then(probes::kind_for_scheme) else {
            problems.push(
                Problem::new(
                    "envgate::cli::probe",
                    format!("cannot tell what to probe in `{}`", redact_url_passwords(t)),
                )
                .help("start it with http://, https://, tcp://HOST:PORT, dns://NAME or tls://HOST:PORT"),
            );
            continue;
        };
        let params = if kind.name == "http" {
            used_expectations = true;
            expectations.clone()
        } else {
            toml::Table::new()
        };
        match (kind.build)(&probes::Spec {
            target: t,
            params: &params,
        }) {
            Ok(_) if load.is_some() && !probes::load::KINDS.contains(&kind.name) => problems.push(
                Problem::new(
                    "envgate::cli::probe",
                    format!(
                        "`{}`: {} probes do not support --load",
                        redact_url_passwords(t),
                        kind.name
                    ),
                )
                .help(format!("kinds that run a load: {}", probes::load::KINDS.join(", "))),
            ),
            Ok(_) if load.is_some() && probes::load_refusal(kind.name, &params).is_some() => problems.push(
                Problem::new(
                    "envgate::cli::probe",
                    format!(
                        "`{}`: {}",
                        redact_url_passwords(t),
                        probes::load_refusal(kind.name, &params).unwrap_or_default()
                    ),
                )
                .help("those are parameters of a [[probe]] in a check file: give the load a probe there"),
            ),
            Ok(mut p) => {
                let mut timeout = a.timeout;
                if let Some(spec) = &load {
                    p = Box::new(probes::load::LoadProbe {
                        inner: p,
                        spec: spec.clone(),
                        per_request: a.timeout,
                    });
                    // The run's deadline bounds the load; each request keeps --timeout.
                    timeout = std::time::Duration::from_secs(24 * 3600);
                }
                let shown = redact_url_passwords(given);
                let n = names
                    .iter()
                    .filter(|(x, _, _)| x.split(" #").next() == Some(shown.as_str()))
                    .count();
                let name = if n == 0 { shown } else { format!("{shown} #{}", n + 1) };
                jobs.push(Job {
                    group: String::new(),
                    name: name.clone(),
                    probe: Some(p),
                    preset: None,
                    timeout: Some(timeout),
                    retries: if load.is_some() { 0 } else { a.retries },
                    warning: false,
                    deps: Vec::new(),
                    guard: None,
                });
                names.push((name, kind.name, given.as_str()));
            }
            Err(e) => problems.push(Problem::new(
                "envgate::cli::probe",
                format!("`{}`: {}", redact_url_passwords(t), scrub_for(t, &e.message)),
            )),
        }
    }
    if !expectations.is_empty() && !used_expectations {
        problems.push(
            Problem::new(
                "envgate::cli::probe",
                "--expect-status, --expect-body and --expect-json apply to http:// and https:// targets, and none was given",
            )
            .help("e.g. envgate probe http://127.0.0.1:8080/health --expect-status 200"),
        );
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let opts = runner::Options {
        concurrency: a.concurrency,
        wait: a.wait,
        default_timeout: a.timeout,
        observer: super::progress::observer(),
        ..Default::default()
    };
    let finished = runner::run_blocking(jobs, &opts);
    let results: Vec<CheckResult> = names
        .into_iter()
        .zip(finished)
        .map(|((name, kind, target), f)| CheckResult {
            id: format!("probe/{name}"),
            category: Category::Probe,
            kind: Some(kind.into()),
            target: Some(name.clone()),
            name,
            status: f.status,
            severity: Severity::Critical,
            message: scrub_for(target, &f.message),
            help: None,
            key: None,
            location: None,
            origin: None,
            attempts: (f.attempts > 0).then_some(f.attempts),
            duration_ms: Some(f.duration.as_millis() as u64),
            metrics: f.metrics,
            request_id: f.request_id,
            load: f.load,
            problem: None,
        })
        .collect();
    let ok = results
        .iter()
        .all(|r| !matches!(r.status, Status::Fail | Status::Blocked));
    // With `-- CMD`, CMD owns stdout: envgate's lines go to stderr.
    let sink: &mut dyn Write = if a.exec.is_empty() { out } else { err };
    let text = match a.format {
        ProbeFormat::Json => {
            let report = Report::new(
                vec![EnvReport::new("probe".into(), results)],
                start.elapsed().as_millis() as u64,
            );
            Format::Json.reporter().render(&report, style)
        }
        ProbeFormat::Human => lines(&results, style),
    };
    sink.write_all(text.as_bytes()).map_err(io)?;
    sink.flush().map_err(io)?;
    if !ok {
        return Ok(exit_codes::NOT_READY);
    }
    if let Some((cmd, args)) = a.exec.split_first() {
        use std::os::unix::process::CommandExt;
        let e = std::process::Command::new(cmd).args(args).exec();
        return Err(Problem::new(
            "envgate::cli::exec",
            format!("cannot run `{cmd}`: {}", crate::diagnostic::plain(&e.to_string())),
        )
        .into());
    }
    Ok(exit_codes::OK)
}

/// `HOST:PORT`, `[v6]:PORT`: a name or address and a port number, nothing else.
fn is_host_port(t: &str) -> bool {
    let Some((host, port)) = t.rsplit_once(':') else {
        return false;
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// `--expect-status`, `--expect-body`, `--expect-json /ptr=value` as the
/// `http` kind's own parameters (`status`, `body_contains`, `json`).
fn http_expectations(a: &ProbeArgs) -> Result<toml::Table, Problems> {
    let mut t = toml::Table::new();
    if let Some(s) = &a.expect_status {
        let v = match s.parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => toml::Value::String(s.clone()),
        };
        t.insert("status".into(), v);
    }
    if let Some(b) = &a.expect_body {
        t.insert("body_contains".into(), toml::Value::String(b.clone()));
    }
    if !a.expect_json.is_empty() {
        let mut json = toml::Table::new();
        for e in &a.expect_json {
            let Some((ptr, value)) = e.split_once('=').filter(|(p, _)| p.starts_with('/')) else {
                return Err(Problem::new(
                    "envgate::cli::probe",
                    format!("--expect-json {e:?}: expected /JSON/POINTER=VALUE, e.g. /status=ok"),
                )
                .into());
            };
            // `/ready=true` and `/count=3` mean the JSON values; anything else is text.
            let v = match serde_json::from_str::<serde_json::Value>(value) {
                Ok(serde_json::Value::Bool(b)) => toml::Value::Boolean(b),
                Ok(serde_json::Value::Number(n)) if n.is_i64() => toml::Value::Integer(n.as_i64().expect("i64")),
                Ok(serde_json::Value::Number(n)) => toml::Value::Float(n.as_f64().unwrap_or_default()),
                _ => toml::Value::String(value.to_string()),
            };
            json.insert(ptr.to_string(), v);
        }
        t.insert("json".into(), toml::Value::Table(json));
    }
    Ok(t)
}

/// A message about `target` with the target's credentials masked wherever
/// they appear, however the message quotes them. A password that is also
/// the user name (`guest:guest`) is masked only where it is a password: a
/// user name is never masked.
fn scrub_for(target: &str, message: &str) -> String {
    let mut out = redact_url_passwords(message);
    let user = target
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once(':'))
        .map(|(user, _)| user);
    for r in crate::config::secrets::credential_ranges(target) {
        let secret = &target[r];
        if secret.chars().count() >= 3 && Some(secret) != user {
            out = out.replace(secret, crate::config::secrets::MASK);
        }
    }
    out
}

fn lines(results: &[CheckResult], style: Style) -> String {
    let mut s = String::new();
    for r in results {
        let (mark, colour) = match r.status {
            Status::Pass => ("✓", "32"),
            Status::Flaky => ("~", "33"),
            Status::Warn => ("!", "33"),
            Status::Skipped => ("-", "2"),
            Status::Fail | Status::Blocked => ("✗", "31"),
        };
        let status = format!("{mark} {:<5}", r.status.as_str());
        let status = if style.color {
            format!("\x1b[{colour}m{status}\x1b[0m")
        } else {
            status
        };
        s.push_str(&format!("{status} {}  {}\n", r.name, r.message));
    }
    let failed = results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Blocked))
        .count();
    if failed == 0 {
        s.push_str(&format!(
            "✓ {} target{} ready\n",
            results.len(),
            if results.len() == 1 { "" } else { "s" }
        ));
    } else {
        s.push_str(&format!(
            "✗ {failed} of {} target{} not ready\n",
            results.len(),
            if results.len() == 1 { "" } else { "s" }
        ));
    }
    s
}
