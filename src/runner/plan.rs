//! From a project and one environment's assembled configuration to jobs:
//! select, resolve `${key}` targets (remembering the line that set them),
//! refuse hosts of other environments, build each probe (no I/O), run, and
//! turn what happened into report results.

use std::ops::Range;
use std::sync::{Arc, LazyLock};

use regex::Regex;

use super::{Finished, Job, Options};
use crate::config::assemble::Assembled;
use crate::config::merge::{key_string, parse_key};
use crate::config::project::Project;
use crate::config::tree::{Origin, SourceFile};
use crate::diagnostic::{Problem, Problems};
use crate::findings::Category;
use crate::probes::ProbeDef;
use crate::probes::def::{Located, SeverityName};
use crate::probes::{self, Class};
use crate::report::model::{CheckResult, Location, Severity, Status};
use crate::rules::isolation::{HostMap, Verdict, hosts_in};

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
    params: Vec<(&'static str, String, Origin)>,
}

/// Run one environment's probes and return their results (exit 2 problems
/// for check files that cannot be used).
pub fn probe_env(project: &Project, a: &Assembled, opts: &Options) -> Result<Vec<CheckResult>, Problems> {
    let defs = probes::def::load(project)?;
    let hosts = HostMap::from_manifest(&project.manifest).map_err(Problems)?;
    let (jobs, metas) = plan(project, a, &defs, opts, &hosts)?;
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let finished = super::run_blocking(jobs, opts);
    Ok(metas.into_iter().zip(finished).map(|(m, f)| result(m, f)).collect())
}

fn plan(
    project: &Project,
    a: &Assembled,
    defs: &[Located],
    opts: &Options,
    hosts: &HostMap,
) -> Result<(Vec<Job>, Vec<Meta>), Problems> {
    let env = a.env.as_str();
    let mine: Vec<&Located> = defs
        .iter()
        .filter(|l| l.def.envs.as_ref().is_none_or(|e| e.iter().any(|x| x == env)))
        .collect();
    let mut problems = Vec::new();
    let mut jobs = Vec::new();
    let mut metas = Vec::new();
    for l in &mine {
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
        };
        let deps = d
            .depends_on
            .iter()
            .filter_map(|n| mine.iter().position(|m| &m.name == n))
            .collect();
        let timeout = d
            .timeout
            .as_deref()
            .and_then(|t| probes::def::duration(t).ok())
            .unwrap_or(opts.default_timeout);
        let mut job = Job {
            name: l.name.clone(),
            probe: None,
            preset: None,
            timeout,
            retries: d.retries.unwrap_or(0),
            warning,
            deps,
        };
        let preset =
            |status, category, class, message: String| Some(Finished::preset(status, category, class, message));

        if !opts.select.matches(&l.name, &d.tags) {
            job.preset = preset(
                Status::Skipped,
                Category::Probe,
                None,
                "filtered out by --only/--skip/--tag".into(),
            );
        } else if let Some(s) = opts.shard.filter(|s| !s.contains(&l.name)) {
            job.preset = preset(
                Status::Skipped,
                Category::Probe,
                None,
                format!("runs in another shard than {}/{}", s.index, s.count),
            );
        } else {
            match resolve(l, a, project).and_then(|(t, from)| Ok((t, from, with_params(d, a, project)?))) {
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
                }
                Ok((target, from, (d, params))) => {
                    let d = &d;
                    meta.params = params;
                    if let Some((key, origin)) = from {
                        meta.key = Some(key);
                        meta.origin = Some(origin);
                    }
                    meta.target = Some(crate::config::secrets::redact_url_passwords(&a.redactor.scrub(&target)));
                    match (kind.build)(d, &target) {
                        Ok(p) => {
                            job.probe = Some(p);
                            if let Some(refusal) = isolation(hosts, env, &d.kind, &target) {
                                job.probe = None;
                                job.preset = preset(Status::Fail, Category::Isolation, None, refusal);
                            }
                        }
                        // A bad value in the configuration is a finding about
                        // this environment, pointed at the line that set it.
                        Err(e) if e.param == "target" && meta.origin.is_some() => {
                            job.preset = preset(Status::Fail, Category::Probe, None, e.message);
                        }
                        Err(e) => {
                            let param = if l.keys.contains_key(e.param) {
                                e.param
                            } else {
                                "target"
                            };
                            problems.push(l.problem(
                                "envgate::checks::invalid",
                                param,
                                format!("probe `{}`: {}", l.name, e.message),
                            ));
                        }
                    }
                }
            }
        }
        jobs.push(job);
        metas.push(meta);
    }
    if problems.is_empty() {
        Ok((jobs, metas))
    } else {
        Err(Problems(problems))
    }
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

/// The parameters that may name configuration keys (`${storage.secret_key}`)
/// or environment variables, resolved like `target`.
type ParamOrigins = Vec<(&'static str, String, Origin)>;

fn with_params(d: &ProbeDef, a: &Assembled, project: &Project) -> Result<(ProbeDef, ParamOrigins), Missing> {
    let mut d = d.clone();
    let mut origins = Vec::new();
    for (name, p) in [
        ("endpoint", &mut d.endpoint),
        ("bucket", &mut d.bucket),
        ("region", &mut d.region),
        ("access_key", &mut d.access_key),
        ("secret_key", &mut d.secret_key),
        ("prefix", &mut d.prefix),
    ] {
        if let Some(v) = p.as_mut().filter(|v| v.contains("${")) {
            let (text, from) = interpolate(v, a, project)?;
            *v = text;
            if let Some((key, origin)) = from {
                origins.push((name, key, origin));
            }
        }
    }
    Ok((d, origins))
}

/// The parameter a failure class is about, among those set from the configuration.
fn blamed(class: Option<Class>, params: &[(&'static str, String, Origin)]) -> Option<(String, Origin)> {
    let wanted: &[&str] = match class? {
        Class::Auth | Class::Permission => &["secret_key", "access_key"],
        Class::NotFound => &["bucket", "prefix"],
        _ => return None,
    };
    wanted
        .iter()
        .find_map(|w| params.iter().find(|(n, _, _)| n == w))
        .map(|(_, k, o)| (k.clone(), o.clone()))
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
/// with `deny_unknown_hosts`, to a host of no environment).
fn isolation(hosts: &HostMap, env: &str, kind: &str, target: &str) -> Option<String> {
    if hosts.is_empty() || matches!(kind, "disk" | "file" | "exec") {
        return None;
    }
    let mut found = hosts_in(target);
    if found.is_empty() && kind == "dns" {
        found.push(
            target
                .trim_start_matches("dns://")
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string(),
        );
    }
    found.into_iter().find_map(|h| match hosts.verdict(env, &h) {
        Verdict::Foreign { env: other, pattern } => Some(format!(
            "refused to probe `{h}` from `{env}`: it belongs to environment `{other}` ({pattern}); envgate never connects to it"
        )),
        Verdict::Unknown { denied: true } => Some(format!(
            "refused to probe `{h}` from `{env}`: it matches no environment's hosts and `{env}` sets deny_unknown_hosts"
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
    if let Some((key, origin)) = blamed(f.class, &m.params) {
        m.key = Some(key);
        m.origin = Some(origin);
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
                .label("probe defined here"),
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
