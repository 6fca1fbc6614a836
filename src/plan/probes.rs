//! From one environment's assembled configuration to jobs for the runner:
//! select, fill in `${...}` in targets and in every string of the parameters
//! (the configuration's own interpolation, remembering the line that set
//! them), block a probe whose secret is not set, refuse hosts of other
//! environments, build each probe (no I/O) and give it its environment's
//! isolation guard; and, once the runner is done, turn what happened into
//! results.

use std::net::IpAddr;
use std::ops::Range;
use std::sync::Arc;

use crate::config::assemble::Assembled;
use crate::config::interpolate::{Unresolved, fill};
use crate::config::merge::key_string;
use crate::config::project::Project;
use crate::config::secrets::Redactor;
use crate::diagnostic::{Problem, Problems};
use crate::findings::Category;
use crate::outcome::{CheckResult, Location, OriginInfo, Severity, Status};
use crate::probes::def::{Located, SeverityName};
use crate::probes::{self, Class, Guard, Spec};
use crate::rules::isolation::{HostMap, Verdict};
use crate::runner::{Finished, Job};
use crate::select::{Selection, Shard};
use crate::source::{Origin, SourceFile};

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
    /// `origin` as the report shows it, for the key blamed.
    origin_info: Option<OriginInfo>,
    /// Parameters taken from the configuration (`access_key = "${storage.access_key}"`):
    /// a failure about credentials or a bucket points at the line that set them.
    params: Blamable,
    /// Where each parameter's value was written in the check file: a
    /// missing table or queue points at its entry.
    values: Vec<(String, Range<usize>)>,
}

/// Which probes run: `--only/--skip/--tag` and `--shard`.
#[derive(Clone, Default)]
pub struct Choice {
    pub select: Selection,
    pub shard: Option<Shard>,
    /// `--no-load`: probes with a `[probe.load]` run once, without it.
    pub no_load: bool,
}

/// One environment's probes, ready for the runner, and what each result
/// needs to point at the line that set it.
pub struct Planned {
    pub env: String,
    pub jobs: Vec<Job>,
    metas: Vec<Meta>,
    /// Secrets the probes' own parameters read (`${secret:env:...}`).
    pub redactor: Redactor,
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
    let mut redactor = a.redactor.clone();
    let guard: Option<Arc<dyn Guard>> = (!hosts.is_empty()).then(|| {
        Arc::new(EnvGuard {
            env: env.to_string(),
            hosts: hosts.clone(),
        }) as Arc<dyn Guard>
    });
    for l in &mine {
        let (job, meta) = plan_one(
            project,
            a,
            l,
            &mine,
            choice,
            guard.as_ref(),
            &mut redactor,
            &mut problems,
        );
        jobs.push(job);
        metas.push(meta);
    }
    if problems.is_empty() {
        Ok(Planned {
            env: env.to_string(),
            jobs,
            metas,
            redactor,
        })
    } else {
        Err(Problems(problems))
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one probe's inputs and the plan's accumulators"
)]
fn plan_one(
    project: &Project,
    a: &Assembled,
    l: &Located,
    mine: &[&Located],
    choice: &Choice,
    guard: Option<&Arc<dyn Guard>>,
    redactor: &mut Redactor,
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
        origin_info: None,
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
        guard: guard.cloned(),
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
    let mut secrets = Vec::new();
    let filled = target(l, a, project, &mut secrets)
        .map_err(|c| ("target".to_string(), c))
        .and_then(|(t, from)| Ok((t, from, with_params(&d.params, a, project, &mut secrets)?)));
    for s in &secrets {
        redactor.add(s);
    }
    let (target, from, (params, origins)) = match filled {
        Ok(r) => r,
        Err((param, cause)) => {
            if let Unresolved::Secret { key: Some(k), .. } = &cause
                && let Some(leaf) = a.root.leaf(k)
            {
                // Point at the line that reads the missing secret.
                meta.key = Some(key_string(k));
                meta.origin = Some(leaf.origin.clone());
            }
            job.preset = Some(unfilled(a, l, &param, cause));
            return (job, meta);
        }
    };
    meta.params = origins
        .into_iter()
        .map(|(name, key, o)| {
            let info = super::origin_info(project, &o);
            (name, key, o, info)
        })
        .collect();
    if let Some((key, origin)) = from {
        meta.key = Some(key);
        meta.origin_info = Some(super::origin_info(project, &origin));
        meta.origin = Some(origin);
    }
    meta.target = Some(crate::config::secrets::redact_url_passwords(&redactor.scrub(&target)));
    match (kind.build)(&Spec {
        target: &target,
        params: &params,
    }) {
        Ok(p) => {
            // Every host it will dial, before it runs; what they resolve to
            // is checked as they are dialed (the job's guard).
            let refusal = guard.and_then(|g| p.hosts().iter().find_map(|h| g.host(&h.host)));
            match refusal {
                Some(why) => {
                    job.preset = preset(
                        Status::Fail,
                        Category::Isolation,
                        Some(Class::Isolation),
                        format!("isolation: {why}"),
                    );
                }
                None => job.probe = Some(with_load(p, d, env, choice, &mut job)),
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

/// The probe with its `[probe.load]` when this environment is one of its
/// `load_envs` and `--no-load` was not given; else the probe alone. A load
/// gets the rest of the run's deadline (each request keeps the probe's
/// `timeout`) and is not retried: its budgets judge it.
fn with_load(
    p: Box<dyn probes::Probe>,
    d: &probes::ProbeDef,
    env: &str,
    choice: &Choice,
    job: &mut Job,
) -> Box<dyn probes::Probe> {
    let Some(spec) = d.load.clone() else {
        return p;
    };
    if choice.no_load || !d.load_envs.iter().any(|e| e == env) {
        return p;
    }
    let per_request = job.timeout.unwrap_or(crate::runner::DEFAULT_TIMEOUT);
    job.timeout = Some(std::time::Duration::from_secs(24 * 3600));
    job.retries = 0;
    Box::new(probes::load::LoadProbe {
        inner: p,
        spec,
        per_request,
    })
}

/// Where each parameter filled from the configuration was set: a failure
/// about credentials or a bucket points at that line.
type ParamOrigins = Vec<(String, String, Origin)>;
/// The same, with each origin as the report shows it.
type Blamable = Vec<(String, String, Origin, OriginInfo)>;

/// `text` with every `${...}` filled in by the configuration's own rules;
/// the first key read and where it was set.
fn fill_in(
    text: &str,
    a: &Assembled,
    project: &Project,
    secrets: &mut Vec<String>,
) -> Result<(serde_json::Value, Option<(String, Origin)>), Unresolved> {
    let f = fill(
        text,
        &a.root,
        &a.unresolved,
        &project.root,
        &project.env_vars,
        project.secret_commands,
    )?;
    secrets.extend(f.secrets);
    let from = f
        .keys
        .first()
        .and_then(|k| a.root.leaf(k).map(|leaf| (key_string(k), leaf.origin.clone())));
    Ok((f.value, from))
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The target, and the key and origin it came from. `x-probe` targets are
/// the annotated key's value.
fn target(
    l: &Located,
    a: &Assembled,
    project: &Project,
    secrets: &mut Vec<String>,
) -> Result<(String, Option<(String, Origin)>), Unresolved> {
    if let Some(path) = &l.schema_key {
        if let Some(cause) = a.unresolved.get(path) {
            return Err(cause.clone());
        }
        let leaf = a
            .root
            .leaf(path)
            .ok_or_else(|| Unresolved::Missing { key: key_string(path) })?;
        return Ok((text(&leaf.value), Some((key_string(path), leaf.origin.clone()))));
    }
    let (v, from) = fill_in(l.def.target.as_deref().unwrap_or_default(), a, project, secrets)?;
    Ok((text(&v), from))
}

/// The kind's parameters with every `${...}` in every string (at any depth:
/// lists and tables too) filled in like `target`. A string that is exactly
/// one reference to a number, boolean or list takes that value.
fn with_params(
    params: &toml::Table,
    a: &Assembled,
    project: &Project,
    secrets: &mut Vec<String>,
) -> Result<(toml::Table, ParamOrigins), (String, Unresolved)> {
    struct Filler<'a> {
        a: &'a Assembled,
        project: &'a Project,
        secrets: &'a mut Vec<String>,
        origins: ParamOrigins,
    }
    impl Filler<'_> {
        fn fill(&mut self, v: &mut toml::Value, name: &str) -> Result<(), (String, Unresolved)> {
            match v {
                toml::Value::String(s) if s.contains("${") => {
                    let (value, from) =
                        fill_in(s, self.a, self.project, self.secrets).map_err(|c| (name.to_string(), c))?;
                    *v = match value {
                        serde_json::Value::String(t) => toml::Value::String(t),
                        serde_json::Value::Null => toml::Value::String(String::new()),
                        other => {
                            toml::Value::try_from(&other).unwrap_or_else(|_| toml::Value::String(other.to_string()))
                        }
                    };
                    if let Some((key, origin)) = from {
                        self.origins.push((name.to_string(), key, origin));
                    }
                }
                toml::Value::Array(items) => {
                    for i in items {
                        self.fill(i, name)?;
                    }
                }
                toml::Value::Table(t) => {
                    for (_, i) in t.iter_mut() {
                        self.fill(i, name)?;
                    }
                }
                _ => {}
            }
            Ok(())
        }
    }
    let mut params = params.clone();
    let mut f = Filler {
        a,
        project,
        secrets,
        origins: Vec::new(),
    };
    for (name, v) in params.iter_mut() {
        f.fill(v, name)?;
    }
    Ok((params, f.origins))
}

/// A probe whose target or parameter could not be filled in: never run on
/// the unfilled text. A missing secret blocks it, naming the secret and the
/// line that reads it (never the reference itself).
fn unfilled(a: &Assembled, l: &Located, param: &str, cause: Unresolved) -> Finished {
    let env = a.env.as_str();
    match cause {
        Unresolved::Secret { what, key } => {
            let reader = match &key {
                Some(k) => {
                    let at = a
                        .root
                        .leaf(k)
                        .map(|leaf| format!(", {}", leaf.origin))
                        .unwrap_or_default();
                    format!("`{}`{at}", key_string(k))
                }
                None => {
                    let span = l.keys.get(param).map_or(l.span.start, |(_, v)| v.start);
                    let (line, col) = l.file.line_col(span);
                    format!("`{param}` of this probe, {}:{line}:{col}", l.file.name)
                }
            };
            Finished::preset(
                Status::Blocked,
                Category::Probe,
                None,
                format!("blocked: a secret is missing: {what} ({reader} reads it); the probe did not run"),
            )
        }
        Unresolved::Missing { key } => {
            let status = if l.schema_key.is_some() {
                Status::Skipped
            } else {
                Status::Fail
            };
            Finished::preset(
                status,
                Category::Probe,
                None,
                format!("`{key}` is not set in the configuration of `{env}`"),
            )
        }
        Unresolved::Other { message } => Finished::preset(
            Status::Fail,
            Category::Probe,
            None,
            format!("`{param}` cannot be filled in: {message}; the probe did not run"),
        ),
    }
}

/// The parameter a failure class is about, among those set from the configuration.
fn blamed(class: Option<Class>, params: &Blamable) -> Option<(String, Origin, OriginInfo)> {
    let wanted: &[&str] = match class? {
        Class::Auth | Class::Permission => &["secret_key", "access_key", "password", "token", "user"],
        Class::NotFound => &["bucket", "prefix", "tables", "queues", "exchanges", "streams", "keys"],
        _ => return None,
    };
    wanted
        .iter()
        .find_map(|w| params.iter().find(|(n, _, _, _)| n == w))
        .map(|(_, k, o, i)| (k.clone(), o.clone(), i.clone()))
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

/// One environment's isolation at probe time: names are checked before a
/// probe runs, and every address they resolve to before it is dialed.
struct EnvGuard {
    env: String,
    hosts: HostMap,
}

impl Guard for EnvGuard {
    fn scope(&self) -> &str {
        &self.env
    }

    fn host(&self, host: &str) -> Option<String> {
        let env = &self.env;
        match self.hosts.verdict(env, host) {
            Verdict::Foreign { env: other, pattern } => Some(format!(
                "refused to probe `{host}` from `{env}`: it belongs to environment `{other}` ({pattern}); envgate never connects to it"
            )),
            Verdict::Unknown { denied: true } => Some(format!(
                "refused to probe `{host}` from `{env}`: it matches no environment's hosts and `{env}` sets deny_unknown_hosts"
            )),
            _ => None,
        }
    }

    /// Only another environment's address is refused: an address of no
    /// environment behind a name of this one is this environment's own.
    fn addr(&self, host: &str, ip: IpAddr) -> Option<String> {
        let env = &self.env;
        match self.hosts.verdict(env, &ip.to_string()) {
            Verdict::Foreign { env: other, pattern } if host == ip.to_string() => Some(format!(
                "refused to connect to {ip} from `{env}`: it belongs to environment `{other}` ({pattern}); envgate never connects to it"
            )),
            Verdict::Foreign { env: other, pattern } => Some(format!(
                "refused to probe `{host}` from `{env}`: it resolves to {ip}, an address of environment `{other}` ({pattern}); envgate never connects to it"
            )),
            _ => None,
        }
    }
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
        Class::Isolation => {
            "point this environment's configuration at its own hosts, or fix [isolation] in envgate.toml"
        }
        Class::Exec | Class::Unknown | Class::Io => return None,
    })
}

fn result(mut m: Meta, f: Finished) -> CheckResult {
    let mut label = None;
    if let Some((key, origin, info)) = blamed(f.class, &m.params) {
        m.key = Some(key);
        m.origin = Some(origin);
        m.origin_info = Some(info);
    } else if let Some((span, item)) = entry(&m, f.about.as_ref()) {
        // A missing table or queue written in the check file: point there,
        // not at the line that set the target.
        m.key = None;
        m.origin = None;
        m.origin_info = None;
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
    let help = match &f.load {
        Some(l) if l.budgets.iter().any(|b| !b.held) => Some(
            "a [probe.load] budget failed: look up the slowest or first failed request by its id in the service's logs"
                .to_string(),
        ),
        _ => help(f.class, f.category).map(String::from),
    };
    let problem = (!matches!(f.status, Status::Pass | Status::Skipped)).then(|| {
        let code = format!(
            "envgate::{}::{}",
            if f.category == Category::Isolation {
                "isolation"
            } else {
                "probe"
            },
            f.class.map_or(
                if f.status == Status::Blocked {
                    "blocked"
                } else {
                    "failed"
                },
                Class::as_str
            )
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
        origin: m.origin_info,
        target: m.target,
        attempts: (f.attempts > 0).then_some(f.attempts),
        duration_ms: (f.attempts > 0).then_some(f.duration.as_millis() as u64),
        metrics: f.metrics,
        request_id: f.request_id,
        load: f.load,
        problem,
    }
}
