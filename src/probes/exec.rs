//! `exec`: run a program under the Nagios plugin convention (exit 0/1/2/3 =
//! pass/warn/fail/unknown, the first line of output is the message, perfdata
//! after `|`). A program that outlives its timeout is killed with its whole
//! process group, so a plugin's children cannot hang the gate either.

use std::process::Stdio;

use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec, Verdict};
use crate::config::units::format_duration;

pub static KIND: Kind = Kind {
    name: "exec",
    doc: "a program (any Nagios/Icinga plugin) exits 0; 1 is a warning, 2 and 3 are failures",
    target: "the program's path",
    schemes: &[],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The program's arguments, a list.
    #[serde(default)]
    args: Vec<String>,
}

struct Exec {
    program: String,
    args: Vec<String>,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let target = spec.target;
    if target.trim().is_empty() {
        return Err(ParamError::new("target", "an exec probe needs the program's path"));
    }
    let p: Params = spec.params()?;
    Ok(Box::new(Exec {
        program: target.to_string(),
        args: p.args,
    }))
}

/// Kills a process group when dropped: on timeout, and when the runner
/// cancels the attempt (`--fail-fast`, the run's deadline).
struct GroupKill(Option<i32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // SAFETY: plain syscall; a negative pid addresses the process group we created.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// One perfdata value: `label=value[UOM];warn;crit;min;max`.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub label: String,
    pub value: f64,
    pub unit: String,
}

pub fn parse_perfdata(s: &str) -> Vec<Metric> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (label, after) = if let Some(r) = rest.strip_prefix('\'') {
            match r.split_once("'=") {
                Some((l, a)) => (l.to_string(), a),
                None => break,
            }
        } else {
            match rest.split_once('=') {
                Some((l, a)) => (l.trim().to_string(), a),
                None => break,
            }
        };
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let value = after[..end].split(';').next().unwrap_or_default();
        let num_end = value
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
            .unwrap_or(value.len());
        if let Ok(v) = value[..num_end].parse::<f64>() {
            out.push(Metric {
                label,
                value: v,
                unit: value[num_end..].to_string(),
            });
        }
        rest = after[end..].trim_start();
    }
    out
}

impl Probe for Exec {
    /// A plugin's own connections are its business: envgate cannot see
    /// them, so isolation cannot refuse them (the README says so).
    fn hosts(&self) -> Vec<Endpoint> {
        Vec::new()
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let mut cmd = tokio::process::Command::new(&self.program);
            cmd.args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            let child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Outcome::fail(Class::NotFound, format!("no program at {}", self.program));
                }
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    return Outcome::fail(Class::Permission, format!("{} is not executable", self.program));
                }
                Err(e) => {
                    return Outcome::fail(
                        Class::Exec,
                        format!("cannot run {}: {}", self.program, super::net::plain(&e.to_string())),
                    );
                }
            };
            let mut guard = GroupKill(child.id().map(|p| p as i32));
            let out = match tokio::time::timeout(ctx.timeout, child.wait_with_output()).await {
                Err(_) => {
                    return Outcome::fail(
                        Class::Timeout,
                        format!(
                            "{} did not finish within {}: killed its process group",
                            self.program,
                            format_duration(ctx.timeout)
                        ),
                    );
                }
                Ok(Err(e)) => {
                    return Outcome::fail(
                        Class::Exec,
                        format!("{}: {}", self.program, super::net::plain(&e.to_string())),
                    );
                }
                Ok(Ok(o)) => o,
            };
            guard.0 = None;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let text = if stdout.trim().is_empty() {
                stderr.trim()
            } else {
                stdout.trim()
            };
            let first = text.lines().next().unwrap_or_default();
            let (msg, perf) = first.split_once('|').unwrap_or((first, ""));
            let mut metrics = parse_perfdata(perf);
            for l in text.lines().skip(1) {
                if let Some((_, p)) = l.split_once('|') {
                    metrics.extend(parse_perfdata(p));
                }
            }
            let mut msg = msg.trim().to_string();
            if msg.is_empty() {
                msg = "no output".into();
            }
            if !metrics.is_empty() {
                let m: Vec<String> = metrics
                    .iter()
                    .map(|m| format!("{}={}{}", m.label, m.value, m.unit))
                    .collect();
                msg = format!("{msg} ({})", m.join(", "));
            }
            let reported: Vec<crate::outcome::Metric> = metrics
                .iter()
                .map(|m| crate::outcome::Metric {
                    name: m.label.clone(),
                    value: m.value,
                    unit: m.unit.clone(),
                })
                .collect();
            let outcome = match out.status.code() {
                Some(0) => Outcome::pass(msg),
                Some(1) => Outcome {
                    verdict: Verdict::Warn,
                    class: Some(Class::Exec),
                    message: format!("exit 1 (warning): {msg}"),
                    metrics: Vec::new(),
                },
                Some(2) => Outcome::fail(Class::Exec, format!("exit 2 (critical), expected 0: {msg}")),
                Some(3) => Outcome::fail(Class::Unknown, format!("exit 3 (unknown), expected 0: {msg}")),
                Some(c) => Outcome::fail(Class::Exec, format!("exit {c}, expected 0: {msg}")),
                None => Outcome::fail(Class::Exec, format!("{} was killed by a signal: {msg}", self.program)),
            };
            outcome.with_metrics(reported)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfdata_is_parsed() {
        let m = parse_perfdata("time=0.002s;1;2;0 'free space'=42% size=10B");
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0],
            Metric {
                label: "time".into(),
                value: 0.002,
                unit: "s".into()
            }
        );
        assert_eq!(m[1].label, "free space");
        assert_eq!(m[1].unit, "%");
    }
}
