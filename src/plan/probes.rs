//! From one environment's assembled configuration to jobs for the runner:
//! select, resolve `${key}` in targets and parameters (remembering the line
//! that set them), refuse hosts of other environments, build each probe (no
//! I/O); and, once the runner is done, turn what happened into results.

use std::ops::Range;
use std::sync::{Arc, LazyLock};

use regex::Regex;

use crate::config::assemble::Assembled;
use crate::config::merge::{key_string, parse_key};
use crate::config::project::Project;
use crate::diagnostic::{Problem, Problems};
use crate::findings::Category;
use crate::outcome::{CheckResult, Location, Severity, Status};
use crate::probes::def::{Located, SeverityName};
use crate::probes::{self, Class, Spec};
use crate::rules::isolation::{HostMap, Verdict};
use crate::runner::{Finished, Job};
use crate::select::{Selection, Shard};
use crate::source::{Origin, SourceFile};

static REF: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\$\{([^}]*)\}").expect("valid regex"));

/// Where a result points and how it is named.
struct Meta {
    name: String,
    kind: String,
    key: Option<String>,
    origin: Option<Origin>,
    file: Arc<SourceFile>,
    span: Range<usize>,
    target: Option<String>,
    warning: bool,
    /// Parameters taken from the configuration (`access_key = "${storage.access_key}"`):
    /// a failure about credentials or a bucket points at the line that set them.
    params: ParamOrigins,
    /// Where each parameter's value was written in the check file: a
    /// missing table or queue points at its entry.
    values: Vec<(String, Range<usize>)>,
}

/// Which probes run: `--only/--skip/--tag` and `--shard`.
#[derive(Clone, Default)]
pub struct Choice {
    pub select: Selection,
    pub shard: Option<Shard>,
}

/// One environment's probes, ready for the runner, and what each result
/// needs to point at the line that set it.
pub struct Planned {
    pub env: String,
    pub jobs: Vec<Job>,
    metas: Vec<Meta>,
}

impl Planned {
    /// Results in the order the probes were planned; `finished` holds one
    /// entry per job, in the same order.
    pub fn results(self, finished: Vec<Finished>) -> Vec<CheckResult> {
        self.metas
            .into_iter()
            .zip(finished)
            .map(|(m, f)| result(m, f))
            .collect()
    }
}

/// Plan one environment's probes. Problems (exit 2) are check-file mistakes
/// that no configuration can make work.
pub fn plan_env(
    project: &Project,
    a: &Assembled,
    probes: &[Located],
    choice: &Choice,
    hosts: &HostMap,
) -> Result<Planned, Problems> {
    let env = a.env.as_str();
    let mine: Vec<&Located> = probes
        .iter()
        .filter(|l| l.def.envs.as_ref().is_none_or(|e| e.iter().any(|x| x == env)))
        .collect();
    let mut problems = Vec::new();
    let mut jobs = Vec::new();
    let mut metas = Vec::new();
    for l in &mine {
        let (job, meta) = plan_one(project, a, l, &mine, choice, hosts, &mut problems);
        jobs.push(job);
        metas.push(meta);
    }
    if problems.is_empty() {
        Ok(Planned {
            env: env.to_string(),
            jobs,
            metas,
        })
    } else {
        Err(Problems(problems))
    }
}

fn plan_one(
    project: &Project,
    a: &Assembled,
    l: &Located,
    mine: &[&Located],
    choice: &Choice,
    hosts: &HostMap,
    problems: &mut Vec<Problem>,
) -> (Job, Meta) {
    let env = a.env.as_str();
    let d = &l.def;
    let kind = probes::kind(&d.kind).expect("kinds were checked at load");
    let warning = d.severity == Some(SeverityName::Warning) || d.warn_in.iter().any(|e| e == env);
    let span = l.keys.get("target").map_or(l.span.clone(), |(_, v)| v.clone());
    let mut meta = Meta {
        name: l.name.clone(),
        kind: d.kind.clone(),
        key: None,
        origin: None,
        file: l.file.clone(),
        span,
        target: None,
        warning,
        params: Vec::new(),
        values: l.keys.iter().map(|(k, (_, v))| (k.clone(), v.clone())).collect(),
    };
    let deps = d
        .depends_on
        .iter()
        .filter_map(|n| mine.iter().position(|m| &m.name == n))
        .collect();
    let mut job = Job {
        group: env.to_string(),
        name: l.name.clone(),
        probe: None,
        preset: None,
        timeout: d.timeout,
        retries: d.retries.unwrap_or(0),
        warning,
        deps,
    };
    let preset = |status, category, class, message: String| Some(Finished::preset(status, category, class, message));
    if !choice.select.matches(&l.name, &d.tags) {
        job.preset = preset(
            Status::Skipped,
            Category::Probe,
            None,
            "filtered out by --only/--skip/--tag".into(),
        );
        return (job, meta);
    }
    if let Some(s) = choice.shard.filter(|s| !s.contains(&l.name)) {
        job.preset = preset(
            Status::Skipped,
            Category::Probe,
            None,
            format!("runs in another shard than {}/{}", s.index, s.count),
        );
        return (job, meta);
    }
    let resolved = resolve(l, a, project).and_then(|(t, from)| Ok((t, from, with_params(&d.params, a, project)?)));
    let (target, from, (params, origins)) = match resolved {
        Ok(r) => r,
        Err(Missing(key)) => {
            let status = if l.schema_key.is_some() {
                Status::Skipped
            } else {
                Status::Fail
            };
            job.preset = preset(
                status,
                Category::Probe,
                None,
                format!("`{key}` is not set in the configuration of `{env}`"),
            );
            return (job, meta);
        }
    };
    meta.params = origins;
    if let Some((key, origin)) = from {
        meta.key = Some(key);
        meta.origin = Some(origin);
    }
    meta.target = Some(crate::config::secrets::redact_url_passwords(&a.redactor.scrub(&target)));
    match (kind.build)(&Spec {
        target: &target,
        params: &params,
    }) {
        Ok(p) => {
            match isolation(hosts, env, &p.hosts()) {
                Some(refusal) => job.preset = preset(Status::Fail, Category::Isolation, None, refusal),
                None => job.probe = Some(p),
            };
        }
        // A bad value in the configuration is a finding about this
        // environment, pointed at the line that set it.
        Err(e) if e.param == "target" && meta.origin.is_some() => {
            job.preset = preset(Status::Fail, Category::Probe, None, e.message);
        }
        Err(e) => {
            let param = if l.keys.contains_key(&e.param) {
                e.param.as_str()
            } else {
                "target"
            };
            problems.push(l.problem(param, format!("probe `{}`: {}", l.name, e.message)));
        }
    }
    (job, meta)
}

struct Missing(String);

/// A configuration value as text, and where it was set.
fn leaf_text(a: &Assembled, path: &[String]) -> Result<(String, Origin), Missing> {
    let leaf = a.root.leaf(path).ok_or_else(|| Missing(key_string(path)))?;
    let text = match &leaf.value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok((text, leaf.origin.clone()))
}

/// The target with `${key}` (and `${env:NAME}`) replaced, and the key and
/// origin it came from. `x-probe` targets are the annotated key's value.
fn resolve(l: &Located, a: &Assembled, project: &Project) -> Result<(String, Option<(String, Origin)>), Missing> {
    if let Some(path) = &l.schema_key {
        let (text, origin) = leaf_text(a, path)?;
        return Ok((text, Some((key_string(path), origin))));
    }
    interpolate(l.def.target.as_deref().unwrap_or_default(), a, project)
}

/// Where each parameter filled from the configuration was set: a failure
/// about credentials or a bucket points at that line.
type ParamOrigins = Vec<(String, String, Origin)>;

/// The kind's parameters with every `${...}` in every string (at any depth:
/// lists and tables too) replaced like `target`.
fn with_params(params: &toml::Table, a: &Assembled, project: &Project) -> Result<(toml::Table, ParamOrigins), Missing> {
    fn fill(
        v: &mut toml::Value,
        name: &str,
        a: &Assembled,
        project: &Project,
        origins: &mut ParamOrigins,
    ) -> Result<(), Missing> {
        match v {
            toml::Value::String(s) if s.contains("${") => {
                let (text, from) = interpolate(s, a, project)?;
                *s = text;
                if let Some((key, origin)) = from {
                    origins.push((name.to_string(), key, origin));
                }
            }
            toml::Value::Array(items) => {
                for i in items {
                    fill(i, name, a, project, origins)?;
                }
            }
            toml::Value::Table(t) => {
                for (_, i) in t.iter_mut() {
                    fill(i, name, a, project, origins)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    let mut params = params.clone();
    let mut origins = Vec::new();
    for (name, v) in params.iter_mut() {
        fill(v, name, a, project, &mut origins)?;
    }
    Ok((params, origins))
}

/// The parameter a failure class is about, among those set from the configuration.
fn blamed(class: Option<Class>, params: &[(String, String, Origin)]) -> Option<(String, Origin)> {
    let wanted: &[&str] = match class? {
        Class::Auth | Class::Permission => &["secret_key", "access_key", "password", "token", "user"],
        Class::NotFound => &["bucket", "prefix", "tables", "queues", "exchanges", "streams", "keys"],
        _ => return None,
    };
    wanted
        .iter()
        .find_map(|w| params.iter().find(|(n, _, _)| n == w))
        .map(|(_, k, o)| (k.clone(), o.clone()))
}

/// The span of `item` (quoted) in the value of the list parameter a
/// failure is about, when the check file wrote it there.
fn entry(m: &Meta, about: Option<&(String, String)>) -> Option<(Range<usize>, String)> {
    let (param, item) = about?;
    let (_, v) = m.values.iter().find(|(k, _)| k == param)?;
    let text = m.file.text.get(v.clone())?;
    ["\"", "'"].iter().find_map(|q| {
        let at = text.find(&format!("{q}{item}{q}"))?;
        Some((v.start + at..v.start + at + item.len() + 2, item.clone()))
    })
}

/// `raw` with `${key}` and `${env:NAME[:-default]}` replaced, and the first
/// key's name and origin.
fn interpolate(raw: &str, a: &Assembled, project: &Project) -> Result<(String, Option<(String, Origin)>), Missing> {
    let mut from = None;
    let mut missing = None;
    let out = REF.replace_all(raw, |c: &regex::Captures<'_>| {
        let inner = c[1].trim();
        if let Some(var) = inner.strip_prefix("env:") {
            let (name, default) = var.split_once(":-").map_or((var, None), |(n, d)| (n, Some(d)));
            return project
                .env_vars
                .get(name)
                .cloned()
                .or(default.map(String::from))
                .unwrap_or_else(|| {
                    missing.get_or_insert_with(|| format!("env:{name}"));
                    String::new()
                });
        }
        let path = parse_key(inner);
        match leaf_text(a, &path) {
            Ok((text, origin)) => {
                from.get_or_insert((key_string(&path), origin));
                text
            }
            Err(Missing(k)) => {
                missing.get_or_insert(k);
                String::new()
            }
        }
    });
    match missing {
        Some(k) => Err(Missing(k)),
        None => Ok((out.into_owned(), from)),
    }
}

/// Network probes never connect to a host of another environment (nor,
/// with `deny_unknown_hosts`, to a host of no environment): every host the
/// probe says it will dial is checked before it runs.
fn isolation(hosts: &HostMap, env: &str, dials: &[probes::Endpoint]) -> Option<String> {
    if hosts.is_empty() {
        return None;
    }
    dials.iter().find_map(|d| match hosts.verdict(env, &d.host) {
        Verdict::Foreign { env: other, pattern } => Some(format!(
            "refused to probe `{}` from `{env}`: it belongs to environment `{other}` ({pattern}); envgate never connects to it",
            d.host
        )),
        Verdict::Unknown { denied: true } => Some(format!(
            "refused to probe `{}` from `{env}`: it matches no environment's hosts and `{env}` sets deny_unknown_hosts",
            d.host
        )),
        _ => None,
    })
}

fn help(class: Option<Class>, category: Category) -> Option<&'static str> {
    if category == Category::Isolation {
        return Some("point this environment's configuration at its own hosts, or fix [isolation] in envgate.toml");
    }
    Some(match class? {
        Class::Refused => "nothing accepts connections there: is the service running, and on this address and port?",
        Class::Timeout => {
            "the peer accepted nothing or answered nothing in time: check firewalls, load, or raise `timeout`"
        }
        Class::Dns => "the name does not resolve from here: check the host name and the DNS configuration",
        Class::Tls => "check the certificate (expiry, host name, issuer) or set `ca_file` for a private CA",
        Class::Status | Class::Body => "the service answered, but not as expected: check its health endpoint and logs",
        Class::Latency => "the service is slow: check its load, or raise `max_latency`",
        Class::Permission => {
            "check permissions: a path's owner and mode and which user runs envgate, or the grants of the user the configuration names"
        }
        Class::NotFound => {
            "create what is missing (path, database, table, key, vhost, queue, stream, bucket) or fix the configuration that names it"
        }
        Class::Capacity => "free some space or grow the volume",
        Class::Auth => {
            "the credentials were refused: check the user and password the configuration names, and that the user exists"
        }
        Class::Protocol => "something answered that does not speak this protocol: check the port and the URL's scheme",
        Class::Exec | Class::Unknown | Class::Io => return None,
    })
}

fn result(mut m: Meta, f: Finished) -> CheckResult {
    let mut label = None;
    if let Some((key, origin)) = blamed(f.class, &m.params) {
        m.key = Some(key);
        m.origin = Some(origin);
    } else if let Some((span, item)) = entry(&m, f.about.as_ref()) {
        // A missing table or queue written in the check file: point there,
        // not at the line that set the target.
        m.key = None;
        m.origin = None;
        m.span = span;
        label = Some(format!("`{item}` listed here"));
    }
    let (file, line, column) = match m.origin.as_ref().and_then(Origin::file_pos) {
        Some((file, l, c)) => (file.to_string(), l, c),
        None => {
            let (l, c) = m.file.line_col(m.span.start);
            (m.file.name.clone(), l, c)
        }
    };
    let help = help(f.class, f.category).map(String::from);
    let problem = (!matches!(f.status, Status::Pass | Status::Skipped)).then(|| {
        let code = format!(
            "envgate::{}::{}",
            if f.category == Category::Isolation {
                "isolation"
            } else {
                "probe"
            },
            f.class.map_or("failed", Class::as_str)
        );
        let target = m.target.as_deref().map(|t| format!(" {t}")).unwrap_or_default();
        let mut p = Problem::new(code, format!("{} probe `{}`{target}: {}", m.kind, m.name, f.message));
        p = match &m.origin {
            Some(o) if o.file_pos().is_some() => p
                .at_origin(o)
                .label(format!("{} set here", m.key.as_deref().unwrap_or("target"))),
            _ => p
                .at(&m.file, m.span.start, m.span.len().max(1))
                .label(label.unwrap_or_else(|| "probe defined here".into())),
        };
        if let Some(h) = &help {
            p = p.help(h.clone());
        }
        if f.status == Status::Warn {
            p.severity = miette::Severity::Warning;
        }
        p
    });
    CheckResult {
        id: format!("probe/{}", m.name),
        category: f.category,
        kind: Some(m.kind),
        name: m.name,
        status: f.status,
        severity: if m.warning {
            Severity::Warning
        } else {
            Severity::Critical
        },
        message: f.message,
        help,
        key: m.key,
        location: Some(Location { file, line, column }),
        target: m.target,
        attempts: (f.attempts > 0).then_some(f.attempts),
        duration_ms: (f.attempts > 0).then_some(f.duration.as_millis() as u64),
        metrics: f.metrics,
        problem,
    }
}
