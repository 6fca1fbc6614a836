//! `check` / `validate`: assemble and validate each selected environment and
//! build the report. Secrets are scrubbed here, before any reporter sees it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::config::project::Project;
use crate::config::secrets::{Masked, Redactor};
use crate::config::tree::SourceFile;
use crate::diagnostic::{Problem, Problems};
use crate::findings::{Category, Finding};
use crate::report::model::{CheckResult, EnvReport, Report, Severity, Status};

pub struct CheckOptions {
    pub envs: Vec<String>,
    pub sets: Vec<String>,
    /// Selection and scheduling of probes (they run unless `project.offline`).
    pub probes: crate::runner::Options,
}

pub fn run(project: &Project, opts: &CheckOptions) -> Result<Report, Problems> {
    let start = Instant::now();
    let mut problems = Vec::new();
    let mut evaluated: Vec<(String, Vec<CheckResult>)> = Vec::new();
    let mut kept = Vec::new();
    let mut redactor = Redactor::default();
    let mut rules = crate::rules::Rules::load(project)?;
    if !opts.probes.select.is_all() {
        rules.retain(|id, tags| opts.probes.select.matches(id, tags));
    }
    // Configurations are kept for the whole run only when a cross-environment
    // rule or parity needs them; otherwise each is dropped once evaluated.
    let keep = rules.needs_all_envs(project);
    // Environments are independent: evaluate them on every core, then
    // collect in the order they were asked for.
    let outcomes = parallel_map(&opts.envs, |env| {
        evaluate(project, env, &opts.sets, &rules, &opts.probes).map(|(results, a, value)| {
            let redactor = a.redactor.clone();
            let env = a.env.clone();
            (env, results, redactor, keep.then_some((a, value)))
        })
    });
    for outcome in outcomes {
        match outcome {
            Ok((env, results, r, k)) => {
                redactor.extend(&r);
                evaluated.push((env, results));
                kept.extend(k);
            }
            Err(Problems(mut ps)) => problems.append(&mut ps),
        }
    }
    let cross = {
        let list: Vec<_> = kept.iter().map(|(a, v)| (a, v.clone())).collect();
        rules.cross_env(project, &list)
    };
    drop(kept);
    let mut envs: Vec<EnvReport> = evaluated
        .into_iter()
        .map(|(env, mut results)| {
            results.extend(cross.iter().filter(|(e, _)| *e == env).map(|(_, r)| r.clone()));
            EnvReport::new(env, results)
        })
        .collect();
    if !problems.is_empty() {
        dedup(&mut problems);
        return Err(Problems(
            problems
                .iter()
                .map(|p| redact_problem(p, &redactor, &mut HashMap::new()))
                .collect(),
        ));
    }
    let mut masked = HashMap::new();
    for e in &mut envs {
        for r in &mut e.results {
            redact_result(r, &redactor, &mut masked);
        }
    }
    Ok(Report::new(envs, start.elapsed().as_millis() as u64))
}

/// One environment: findings from assembly, units, strictness, schema,
/// isolation and rules, then (unless offline) its probes. Returns the
/// results, the assembled configuration and its CEL value for cross-env rules.
pub fn evaluate(
    project: &Project,
    env: &str,
    sets: &[String],
    rules: &crate::rules::Rules,
    probes: &crate::runner::Options,
) -> Result<(Vec<CheckResult>, crate::config::assemble::Assembled, ::cel::Value), Problems> {
    let mut a = project.assemble(env, sets)?;
    let mut results = Vec::new();
    let config_findings: Vec<Finding> = std::mem::take(&mut a.problems);
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
    if let Some(schema) = &project.schema {
        schema.coerce(&mut a);
        let findings = schema.validate(&a);
        if findings.is_empty() {
            results.push(CheckResult::pass(
                Category::Schema,
                "schema",
                "schema",
                format!("{} keys valid against {}", a.root.leaves().len(), schema.file.name),
            ));
        }
        results.extend(
            findings
                .into_iter()
                .map(|f| CheckResult::from_finding(f, Status::Fail, Severity::Error)),
        );
    }
    let (rule_results, value) = rules.per_env(project, &a);
    results.extend(rule_results);
    if !project.offline {
        results.extend(crate::runner::probe_env(project, &a, probes)?);
    }
    Ok((results, a, value))
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

/// Masked copies of source files, by name, with the way to move spans onto them.
pub type MaskedSources = HashMap<String, (Arc<SourceFile>, Arc<Masked>)>;

fn masked_source(src: &Arc<SourceFile>, r: &Redactor, cache: &mut MaskedSources) -> (Arc<SourceFile>, Arc<Masked>) {
    cache
        .entry(src.name.clone())
        .or_insert_with(|| {
            let m = r.mask_source(&src.text);
            (SourceFile::new(src.name.clone(), m.text.clone()), Arc::new(m))
        })
        .clone()
}

pub fn redact_problem(p: &Problem, r: &Redactor, cache: &mut MaskedSources) -> Problem {
    let mut p = p.clone();
    p.message = r.scrub(&p.message);
    p.help = p.help.map(|h| r.scrub(&h));
    p.label = p.label.map(|l| r.scrub(&l));
    if let Some(src) = &p.src {
        let (shown, masked) = masked_source(src, r, cache);
        p.span = p.span.map(|s| masked.map_span(s));
        p.src = Some(shown);
    }
    p.related = p.related.iter().map(|q| redact_problem(q, r, cache)).collect();
    p
}

fn redact_result(res: &mut CheckResult, r: &Redactor, cache: &mut MaskedSources) {
    res.message = r.scrub(&res.message);
    res.help = res.help.as_ref().map(|h| r.scrub(h));
    res.target = res.target.as_ref().map(|t| r.scrub(t));
    res.problem = res.problem.as_ref().map(|p| redact_problem(p, r, cache));
}
