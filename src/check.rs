//! `check` / `validate`: assemble, validate and plan each selected
//! environment, run every environment's probes together, and build the
//! report. Secrets are scrubbed here, before any reporter sees it.

use std::collections::HashMap;
use std::time::Instant;

use crate::config::assemble::Assembled;
use crate::config::merge::parse_key;
use crate::config::project::Project;
use crate::config::secrets::{Redactor, redact_problem};
use crate::diagnostic::{Problem, Problems};
use crate::findings::{Category, Finding};
use crate::outcome::{CheckResult, EnvReport, Report, Severity, Status};
use crate::plan::{Checks, Choice, Planned, origin_info, plan_env};
use crate::probes::def::Located;
use crate::rules::{Reported, Rules};

pub struct CheckOptions {
    pub envs: Vec<String>,
    pub sets: Vec<String>,
    /// Which rules and probes run (`--only/--skip/--tag`, `--shard`).
    pub choice: Choice,
    /// How the probes of every environment run, together (unless `project.offline`).
    pub runner: crate::runner::Options,
}

/// What one environment's evaluation hands back to the run.
struct Evaluated {
    env: String,
    results: Vec<CheckResult>,
    redactor: Redactor,
    planned: Option<Planned>,
    /// Kept only when cross-environment rules or parity need it.
    kept: Option<(Assembled, ::cel::Value)>,
}

pub fn run(project: &Project, opts: &CheckOptions) -> Result<Report, Problems> {
    run_observed(project, opts, &|_| {}, None)
}

/// Sees each environment's assembled configuration once, while the run
/// still holds it (the audit digests it to tell which keys changed); called
/// from the threads that evaluate environments.
pub type Observe<'a> = &'a (dyn Fn(&Assembled) + Sync);

/// Called once, after every environment is evaluated and before any probe
/// starts: the environments that go on to be probed and reported (the audit
/// takes its hold on each here, having opened its store while the
/// configuration was evaluated). An error ends the run with nothing probed.
pub type Admit<'a> = &'a mut dyn FnMut() -> Result<Vec<String>, Problems>;

/// [`run`], showing each assembled configuration to `observe`, and probing
/// only the environments `admit` returns.
pub fn run_observed(
    project: &Project,
    opts: &CheckOptions,
    observe: Observe<'_>,
    admit: Option<Admit<'_>>,
) -> Result<Report, Problems> {
    let start = Instant::now();
    let Checks { rules, probes } = Checks::load(project)?;
    let mut rules = Rules::new(project, rules)?;
    if !opts.choice.select.is_all() {
        rules.retain(|id, tags| opts.choice.select.matches(id, tags));
    }
    // Configurations are kept for the whole run only when a cross-environment
    // rule or parity needs them; otherwise each is dropped once evaluated.
    let keep = rules.needs_all_envs(project);
    // Environments are independent: evaluate and plan them on every core,
    // then collect in the order they were asked for.
    let outcomes = parallel_map(&opts.envs, |env| {
        evaluate(project, env, &opts.sets, &rules, &probes, &opts.choice).map(|(results, planned, a, value)| {
            observe(&a);
            Evaluated {
                env: a.env.clone(),
                results,
                // The plan's redactor also knows the secrets the probes' own
                // parameters read.
                redactor: planned
                    .as_ref()
                    .map_or_else(|| a.redactor.clone(), |p| p.redactor.clone()),
                planned,
                kept: keep.then_some((a, value)),
            }
        })
    });
    let mut problems = Vec::new();
    let mut evaluated = Vec::new();
    let mut redactor = Redactor::default();
    for outcome in outcomes {
        match outcome {
            Ok(e) => {
                redactor.extend(&e.redactor);
                evaluated.push(e);
            }
            Err(Problems(mut ps)) => problems.append(&mut ps),
        }
    }
    if !problems.is_empty() {
        return Err(redacted(Problems(problems), &redactor));
    }
    let cross = {
        let list: Vec<_> = evaluated
            .iter()
            .filter_map(|e| e.kept.as_ref().map(|(a, v)| (a, v.clone())))
            .collect();
        let reported: Reported = evaluated
            .iter()
            .map(|e| {
                let keys = e
                    .results
                    .iter()
                    .filter(|r| r.category == Category::Schema && r.status == Status::Fail)
                    .filter_map(|r| r.key.clone())
                    .collect();
                (e.env.clone(), keys)
            })
            .collect();
        rules
            .cross_env(project, &list, &reported)
            .map_err(|ps| redacted(ps, &redactor))?
    };
    for e in &mut evaluated {
        e.kept = None;
    }
    if let Some(admit) = admit {
        let admitted = admit()?;
        evaluated.retain(|e| admitted.contains(&e.env));
    }
    // What the run says while it runs is masked as the report will be.
    let runner = crate::runner::Options {
        concurrency: opts.runner.concurrency,
        fail_fast: opts.runner.fail_fast,
        wait: opts.runner.wait,
        deadline: opts.runner.deadline,
        default_timeout: opts.runner.default_timeout,
        observer: opts.runner.observer.clone().map(|o| scrubbed(o, redactor.clone())),
    };
    let probed = probe_all(evaluated.iter_mut().filter_map(|e| e.planned.take()).collect(), &runner);
    let envs: Vec<EnvReport> = evaluated
        .into_iter()
        .map(|e| {
            let mut results = e.results;
            if let Some((_, r)) = probed.iter().find(|(env, _)| *env == e.env) {
                results.extend(r.iter().cloned());
            }
            results.extend(cross.iter().filter(|(env, _)| *env == e.env).map(|(_, r)| r.clone()));
            EnvReport::new(e.env, results)
        })
        .collect();
    let mut report = Report::new(envs, start.elapsed().as_millis() as u64);
    report.project = Some(project.manifest.project.name.clone());
    report.shard = opts.choice.shard.map(|s| crate::outcome::ShardInfo {
        index: s.index,
        count: s.count,
    });
    report.redact(&redactor);
    Ok(report)
}

/// An observer that sees every message with the run's secrets masked.
fn scrubbed(inner: crate::runner::Observer, r: Redactor) -> crate::runner::Observer {
    use crate::runner::Event;
    std::sync::Arc::new(move |e: &Event| match e {
        Event::Finished {
            index,
            group,
            name,
            result,
        } => {
            let mut f = (*result).clone();
            f.message = r.scrub(&f.message);
            if let Some((_, why)) = &mut f.root {
                *why = r.scrub(why);
            }
            inner(&Event::Finished {
                index: *index,
                group,
                name,
                result: &f,
            });
        }
        Event::Retrying {
            index,
            group,
            name,
            attempt,
            message,
            pause,
        } => {
            let m = r.scrub(message);
            inner(&Event::Retrying {
                index: *index,
                group,
                name,
                attempt: *attempt,
                message: &m,
                pause: *pause,
            });
        }
        other => inner(other),
    })
}

/// Every environment's probes in one run of the runner, on one runtime:
/// `--concurrency`, `--fail-fast`, the deadline and the DNS cache are the
/// run's, not each environment's.
fn probe_all(plans: Vec<Planned>, opts: &crate::runner::Options) -> Vec<(String, Vec<CheckResult>)> {
    let mut jobs = Vec::new();
    let mut sizes = Vec::new();
    let mut plans = plans;
    for p in &mut plans {
        let offset = jobs.len();
        sizes.push(p.jobs.len());
        jobs.extend(std::mem::take(&mut p.jobs).into_iter().map(|mut j| {
            for d in &mut j.deps {
                *d += offset;
            }
            j
        }));
    }
    if jobs.is_empty() {
        return Vec::new();
    }
    let mut finished = crate::runner::run_blocking(jobs, opts).into_iter();
    plans
        .into_iter()
        .zip(sizes)
        .map(|(p, n)| {
            let mine: Vec<_> = finished.by_ref().take(n).collect();
            (p.env.clone(), p.results(mine))
        })
        .collect()
}

const SECRET_UNSET: &str = "envgate::config::secret-unset";

/// The id of the one informational result that lists, per environment, the
/// secrets an offline run could not see.
pub const SECRETS_OFFLINE: &str = "config/secrets-offline";

/// Offline, production secrets are rightly absent (pull-request CI): one
/// `skipped` result per environment saying which and where they are set,
/// not a warning each, so `--fail-on warn` stays usable.
fn secrets_not_checked(unset: &[Finding]) -> Option<CheckResult> {
    let first = unset.first()?;
    let mut names: Vec<String> = Vec::new();
    let mut places: Vec<String> = Vec::new();
    for f in unset {
        let name = f
            .problem
            .message
            .split_once("secret ")
            .and_then(|(_, rest)| rest.split_once(" is not set"))
            .map(|(n, _)| n.to_string())
            .unwrap_or_default();
        let at = match f.problem.position() {
            Some((file, line, column)) => format!("{file}:{line}:{column}"),
            None => f.key.clone().unwrap_or_default(),
        };
        let key = f.key.clone().unwrap_or_default();
        if !names.contains(&name) {
            names.push(name.clone());
        }
        places.push(format!("{name} (`{key}`, {at})"));
    }
    let mut r = CheckResult::pass(
        Category::Config,
        SECRETS_OFFLINE,
        "secrets",
        format!(
            "offline: {} secret{} not set, not checked: {}",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            places.join(", ")
        ),
    );
    r.status = Status::Skipped;
    r.severity = Severity::Warning;
    r.help = Some("`envgate check` without --offline, or --require-secrets, requires them".into());
    r.location = first
        .problem
        .position()
        .map(|(file, line, column)| crate::outcome::Location { file, line, column });
    Some(r)
}

/// One environment: findings from assembly, units, strictness, schema,
/// isolation and rules, and (unless offline) its probes planned. Returns the
/// results, the plan, the assembled configuration and its CEL value for
/// cross-environment rules.
fn evaluate(
    project: &Project,
    env: &str,
    sets: &[String],
    rules: &Rules,
    probes: &[Located],
    choice: &Choice,
) -> Result<(Vec<CheckResult>, Option<Planned>, Assembled, ::cel::Value), Problems> {
    let mut a = project.assemble(env, sets)?;
    let mut results = Vec::new();
    let (unset, config_findings): (Vec<Finding>, Vec<Finding>) = std::mem::take(&mut a.problems)
        .into_iter()
        .partition(|f| f.problem.code == SECRET_UNSET);
    if config_findings.iter().all(|f| f.warning) {
        results.push(CheckResult::pass(
            Category::Config,
            "config",
            "config",
            format!("assembled from {}", a.layers.join(" → ")),
        ));
    }
    results.extend(config_findings.into_iter().map(|f| {
        if f.warning {
            CheckResult::from_finding(f, Status::Warn, Severity::Warning)
        } else {
            CheckResult::from_finding(f, Status::Fail, Severity::Error)
        }
    }));
    if project.require_secrets {
        results.extend(
            unset
                .into_iter()
                .map(|f| CheckResult::from_finding(f, Status::Fail, Severity::Error)),
        );
    } else if let Some(r) = secrets_not_checked(&unset) {
        results.push(r);
    }
    if let Some(schema) = &project.schema {
        schema.coerce(&mut a);
        let findings = schema.validate(&a);
        if findings.is_empty() {
            results.push(CheckResult::pass(
                Category::Schema,
                "schema",
                "schema",
                format!("{} keys valid against {}", a.root.leaf_count(), schema.file.name),
            ));
        }
        results.extend(
            findings
                .into_iter()
                .map(|f| CheckResult::from_finding(f, Status::Fail, Severity::Error)),
        );
    }
    let (rule_results, value) = rules.per_env(project, &a)?;
    results.extend(rule_results);
    attach_origins(project, &a, &mut results);
    let planned = if project.offline {
        None
    } else {
        Some(plan_env(project, &a, probes, choice, &rules.hosts)?)
    };
    Ok((results, planned, a, value))
}

/// Every finding names where its value came from, whatever the layer: a
/// file's line is in its diagnostic already; an environment variable, a
/// dotenv line, an http source or `--set` is named in the message too.
fn attach_origins(project: &Project, a: &Assembled, results: &mut [CheckResult]) {
    for r in results
        .iter_mut()
        .filter(|r| r.origin.is_none() && !matches!(r.status, Status::Pass | Status::Skipped))
    {
        let Some(leaf) = r.key.as_deref().and_then(|k| a.root.leaf(&parse_key(k))) else {
            continue;
        };
        let info = origin_info(project, &leaf.origin);
        if leaf.origin.file_pos().is_none() {
            let note = format!(" (set by {})", info.describe());
            r.message.push_str(&note);
            if let Some(p) = &mut r.problem {
                p.message.push_str(&note);
            }
        }
        r.origin = Some(info);
    }
}

/// `f` over `items` on up to `available_parallelism` threads, results in order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut slots: Vec<Option<R>> = Vec::with_capacity(items.len());
    slots.resize_with(items.len(), || None);
    let slots = std::sync::Mutex::new(slots);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            std::thread::Builder::new()
                .stack_size(main_stack_size())
                .spawn_scoped(scope, || {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        let r = f(item);
                        slots.lock().expect("no poisoning")[i] = Some(r);
                    }
                })
                .expect("spawn an evaluation thread");
        }
    });
    slots
        .into_inner()
        .expect("no poisoning")
        .into_iter()
        .map(|r| r.expect("every item evaluated"))
        .collect()
}

/// Problems once each (every environment meets a broken rule), secrets masked.
fn redacted(Problems(mut problems): Problems, redactor: &Redactor) -> Problems {
    dedup(&mut problems);
    let mut cache = HashMap::new();
    Problems(
        problems
            .iter()
            .map(|p| redact_problem(p, redactor, &mut cache))
            .collect(),
    )
}

/// The main thread's stack (the soft `ulimit -s`, 8 MiB by default):
/// evaluating an environment on another thread must not overflow where the
/// main thread would not. Between 8 and 256 MiB; only touched pages cost memory.
fn main_stack_size() -> usize {
    const MIN: usize = 8 << 20;
    const MAX: usize = 256 << 20;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) } == 0;
    if !ok || lim.rlim_cur == libc::RLIM_INFINITY {
        return MAX;
    }
    usize::try_from(lim.rlim_cur).unwrap_or(MAX).clamp(MIN, MAX)
}

fn dedup(problems: &mut Vec<Problem>) {
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| seen.insert((p.message.clone(), p.position())));
}
