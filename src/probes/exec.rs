//! `exec`: run a program under the Nagios plugin convention (exit 0/1/2/3 =
//! pass/warn/fail/unknown, the first line of output is the message, perfdata
//! after `|`). A program that outlives its timeout is killed with its whole
//! process group, so a plugin's children cannot hang the gate either.
//!
//! The verdict is the plugin's exit status: once it exits, its output is
//! read for at most [`AFTER_EXIT`] more, so a child it left behind holding
//! the output pipe (and then killed with the group) cannot turn a pass
//! into a timeout. Bounds: the first 8 KiB of standard output and of
//! standard error are kept (Nagios' own limit on plugin output), the rest
//! is read and dropped, and the message shows at most the first 300
//! characters of the first line, saying when either was cut.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec, Verdict};
use crate::config::units::{format_bytes, format_duration};

/// Output kept from each of standard output and standard error.
const OUTPUT: usize = 8 << 10;
/// The longest first line shown in a message.
const LINE: usize = 300;
/// How long output is still read once the plugin has exited.
const AFTER_EXIT: Duration = Duration::from_millis(100);

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
            // SAFETY: the closure only makes async-signal-safe system calls
            // (getrlimit, setrlimit) and allocates nothing.
            unsafe {
                cmd.pre_exec(super::fds::restore_for_child);
            }
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Outcome::fail(Class::NotFound, format!("no program at {}", self.program));
                }
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    return Outcome::fail(Class::Permission, format!("{} is not executable", self.program));
                }
                Err(e) if super::fds::exhausted(&e) => {
                    return Outcome::fail(Class::Io, super::fds::exhausted_message());
                }
                Err(e) => {
                    return Outcome::fail(
                        Class::Exec,
                        format!(
                            "cannot run {}: {}",
                            self.program,
                            crate::diagnostic::plain(&e.to_string())
                        ),
                    );
                }
            };
            let mut guard = GroupKill(child.id().map(|p| p as i32));
            let (mut out, mut err) = (Capture::default(), Capture::default());
            let (mut so, mut se) = (child.stdout.take(), child.stderr.take());
            let ended = {
                let reading = async { tokio::join!(drain(so.as_mut(), &mut out), drain(se.as_mut(), &mut err)) };
                tokio::pin!(reading);
                tokio::time::timeout(ctx.timeout, async {
                    let mut read_all = false;
                    let status = loop {
                        tokio::select! {
                            st = child.wait() => break st,
                            _ = &mut reading, if !read_all => read_all = true,
                        }
                    };
                    if !read_all {
                        read_all = tokio::time::timeout(AFTER_EXIT, &mut reading).await.is_ok();
                    }
                    (status, read_all)
                })
                .await
            };
            let status = match ended {
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
                Ok((Err(e), _)) => {
                    return Outcome::fail(
                        Class::Exec,
                        format!("{}: {}", self.program, crate::diagnostic::plain(&e.to_string())),
                    );
                }
                // Whatever still holds the output pipes after the plugin
                // exited is in its process group: killed with it.
                Ok((Ok(st), read_all)) => {
                    if read_all {
                        guard.0 = None;
                    }
                    st
                }
            };
            drop(guard);
            verdict(status, &out, &err, &self.program)
        })
    }
}

/// The first [`OUTPUT`] bytes of a stream, and how many it had in all.
#[derive(Default)]
struct Capture {
    kept: Vec<u8>,
    total: u64,
}

impl Capture {
    fn cut(&self) -> bool {
        self.total > self.kept.len() as u64
    }
}

/// Read a pipe to its end, keeping the first [`OUTPUT`] bytes.
async fn drain<R: AsyncRead + Unpin>(pipe: Option<&mut R>, into: &mut Capture) {
    let Some(pipe) = pipe else { return };
    let mut chunk = [0u8; 8192];
    while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
        let room = OUTPUT - into.kept.len();
        into.kept.extend_from_slice(&chunk[..n.min(room)]);
        into.total += n as u64;
    }
}

/// The exit status decides; the output is the message and the metrics.
fn verdict(status: std::process::ExitStatus, out: &Capture, err: &Capture, program: &str) -> Outcome {
    let stdout = String::from_utf8_lossy(&out.kept);
    let stderr = String::from_utf8_lossy(&err.kept);
    let (text, from) = if stdout.trim().is_empty() {
        (stderr.trim(), err)
    } else {
        (stdout.trim(), out)
    };
    let first = text.lines().next().unwrap_or_default();
    let (msg, perf) = first.split_once('|').unwrap_or((first, ""));
    let mut metrics = parse_perfdata(perf);
    for l in text.lines().skip(1) {
        if let Some((_, p)) = l.split_once('|') {
            metrics.extend(parse_perfdata(p));
        }
    }
    let mut msg = super::bounded::cut(msg.trim(), LINE);
    if msg.is_empty() {
        msg = "no output".into();
    }
    if from.cut() {
        msg.push_str(&format!(
            " (output cut: kept the first {} of {} bytes)",
            format_bytes(OUTPUT as u64),
            from.total
        ));
    } else if first.chars().count() > LINE {
        msg.push_str(&format!(" (first line cut at {LINE} characters)"));
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
    let outcome = match status.code() {
        Some(0) => Outcome::pass(msg),
        Some(1) => Outcome {
            verdict: Verdict::Warn,
            class: Some(Class::Exec),
            message: format!("exit 1 (warning): {msg}"),
            metrics: Vec::new(),
            about: None,
            request_id: None,
            load: None,
        },
        Some(2) => Outcome::fail(Class::Exec, format!("exit 2 (critical), expected 0: {msg}")),
        Some(3) => Outcome::fail(Class::Unknown, format!("exit 3 (unknown), expected 0: {msg}")),
        Some(c) => Outcome::fail(Class::Exec, format!("exit {c}, expected 0: {msg}")),
        None => Outcome::fail(Class::Exec, format!("{program} was killed by a signal: {msg}")),
    };
    outcome.with_metrics(reported)
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
