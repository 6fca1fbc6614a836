//! One audit run: take the environments (one runner at a time), run the
//! checks as `check` does, then record everything the run changed in one
//! transaction per environment (run, results, states, incidents, outbox,
//! roll-ups, retention), and deliver what is due. A server calls [`cycle`]
//! on its schedule; the `audit` command calls it once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};

use regex::Regex;

use super::classify::{failure_class, not_after, resolver_gone};
use super::clock::Clock;
use super::digest::{self, Leaves, Snapshot};
use super::event::{Event, IncidentInfo, Loc, rfc3339};
use super::notify::{self, Channel, Sent};
use super::state::{self, CheckState, EventKind, Health, Obs, Policy};
use super::store::{IncidentRow, Last, OutboxItem, ResultRow, RunRow, Store, StoreError, Tx};
use crate::check::{CheckOptions, run_observed};
use crate::config::project::Project;
use crate::config::secrets::Redactor;
use crate::diagnostic::Problems;
use crate::findings::Category;
use crate::outcome::{CheckResult, EnvReport, Report, Status};

/// What the manifest's `[audit]` says, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: Policy,
    /// Seconds raw results are kept.
    pub retain: i64,
    /// Seconds roll-ups and resolved incidents are kept.
    pub retain_rollups: i64,
    pub channels: Vec<Channel>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            policy: Policy::default(),
            retain: 30 * 86_400,
            retain_rollups: 400 * 86_400,
            channels: Vec::new(),
        }
    }
}

pub struct AuditOptions {
    pub check: CheckOptions,
    pub fail_on_warn: bool,
    /// Who started the run: `cron`, `manual`, `serve`.
    pub trigger: String,
    /// This runner, for notification claims: `host:pid`.
    pub runner: String,
    pub host: String,
}

/// What changed for one check in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub check: String,
    pub from: Health,
    pub to: Health,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct EnvOutcome {
    pub env: String,
    /// Another runner holds this environment: nothing was run or recorded.
    pub busy: bool,
    pub run: Option<i64>,
    pub changes: Vec<Change>,
    /// Events queued this run: (kind, check).
    pub events: Vec<(EventKind, String)>,
    /// Each check's state after the run, for the audit's Prometheus series.
    pub states: Vec<(String, Option<String>, CheckState)>,
}

pub struct CycleOutcome {
    pub report: Report,
    pub envs: Vec<EnvOutcome>,
    pub sent: Vec<Sent>,
    /// Notifications still owed or refused, for the run's output.
    pub undelivered: Vec<OutboxItem>,
    pub started_at: i64,
}

/// Why an audit could not run (exit 2); no check's state changed.
#[derive(Debug)]
pub enum Trouble {
    Store(StoreError),
    Config(Problems),
    /// Every probe that had to resolve a name failed to: the auditor's own
    /// resolver, not the environment, is most likely gone.
    Resolver(usize),
}

impl std::fmt::Display for Trouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trouble::Store(e) => write!(f, "the history store: {e}"),
            Trouble::Config(p) => write!(f, "the configuration does not assemble: {p}"),
            Trouble::Resolver(n) => write!(
                f,
                "all {n} probes that resolve a host name failed to: this machine's DNS resolver looks broken, \
                 so nothing was recorded"
            ),
        }
    }
}

static BLOCKED_BY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^blocked: depends on `([^`]+)`").expect("valid regex"));

fn observe(r: &CheckResult, fail_on_warn: bool) -> Obs {
    match r.status {
        Status::Pass | Status::Flaky => Obs::Pass,
        Status::Warn if fail_on_warn => Obs::Fail,
        Status::Warn => Obs::Pass,
        Status::Fail => Obs::Fail,
        Status::Blocked => Obs::Blocked,
        Status::Skipped => Obs::Skipped,
    }
}

fn up(status: Status) -> Option<bool> {
    match status {
        Status::Pass | Status::Flaky | Status::Warn => Some(true),
        Status::Fail | Status::Blocked => Some(false),
        Status::Skipped => None,
    }
}

/// Run the audit once on an open store (a server's).
pub fn cycle(
    project: &Project,
    store: &mut Store,
    settings: &Settings,
    opts: &AuditOptions,
    clock: &dyn Clock,
    redactor: &Redactor,
) -> Result<CycleOutcome, Trouble> {
    let started_at = clock.now();
    let (mine, busy) = hold(store, &opts.check.envs).map_err(Trouble::Store)?;
    let ran = if mine.is_empty() {
        Ok(Checked::default())
    } else {
        run_checks(project, opts, &mine, None)
    };
    finish(store, settings, opts, clock, redactor, started_at, &mine, busy, ran)
}

/// Run the audit once, opening the store with `open` on another thread while
/// the configuration is assembled and evaluated, so a run that opens its own
/// store (a cron run) does not wait for it first. The environments are held
/// before any probe starts, as in [`cycle`]. Returns the store too.
pub fn cycle_opening(
    project: &Project,
    open: &(dyn Fn() -> Result<Store, Problems> + Sync),
    settings: &Settings,
    opts: &AuditOptions,
    clock: &dyn Clock,
    redactor: &Redactor,
) -> Result<(CycleOutcome, Store), Trouble> {
    let started_at = clock.now();
    let (ran, held) = std::thread::scope(|s| {
        let (told, admitted) = std::sync::mpsc::channel();
        let opening = s.spawn(move || -> Held {
            let held = open().map_err(Trouble::Config).and_then(|mut store| {
                let (mine, busy) = hold(&mut store, &opts.check.envs).map_err(Trouble::Store)?;
                Ok((store, mine, busy))
            });
            let _ = told.send(held.as_ref().map(|(_, mine, _)| mine.clone()).map_err(|_| ()));
            let (mut store, mine, busy) = held?;
            // What the last run left in the write-ahead log goes into the
            // database while this run's probes run.
            if let Err(e) = store.fold_log() {
                release(&mut store, &mine);
                return Err(Trouble::Store(e));
            }
            Ok((store, mine, busy))
        });
        let ran = run_checks(
            project,
            opts,
            &opts.check.envs,
            // Nothing is probed when the store failed; its trouble is returned below.
            Some(&mut || admitted.recv().ok().and_then(Result::ok).ok_or(Problems(Vec::new()))),
        );
        let held = opening
            .join()
            .unwrap_or_else(|_| Err(Trouble::Store(StoreError::new("the thread opening the store panicked"))));
        (ran, held)
    });
    let (mut store, mine, busy) = held?;
    let outcome = finish(
        &mut store, settings, opts, clock, redactor, started_at, &mine, busy, ran,
    )?;
    Ok((outcome, store))
}

/// The opened store, the environments this runner holds and those another
/// runner does.
type Held = Result<(Store, Vec<String>, Vec<String>), Trouble>;

/// Hold every environment another runner is not auditing right now:
/// `(held, busy)`.
fn hold(store: &mut Store, envs: &[String]) -> Result<(Vec<String>, Vec<String>), StoreError> {
    let mut mine = Vec::new();
    let mut busy = Vec::new();
    for env in envs {
        match store.try_lock(env) {
            Ok(true) => mine.push(env.clone()),
            Ok(false) => busy.push(env.clone()),
            Err(e) => {
                release(store, &mine);
                return Err(e);
            }
        }
    }
    Ok((mine, busy))
}

fn release(store: &mut Store, envs: &[String]) {
    for env in envs {
        let _ = store.unlock(env);
    }
}

/// A run's report, and each environment's configuration leaves, read while
/// the run held them, for the snapshot the store keeps.
#[derive(Default)]
struct Checked {
    report: Option<Report>,
    leaves: HashMap<String, Leaves>,
}

fn run_checks(
    project: &Project,
    opts: &AuditOptions,
    envs: &[String],
    admit: Option<crate::check::Admit<'_>>,
) -> Result<Checked, Trouble> {
    let leaves: Mutex<HashMap<String, Leaves>> = Mutex::new(HashMap::new());
    let check = CheckOptions {
        envs: envs.to_vec(),
        sets: opts.check.sets.clone(),
        choice: opts.check.choice.clone(),
        runner: opts.check.runner.clone(),
    };
    let report = run_observed(
        project,
        &check,
        &|a| {
            let l = digest::leaves(a);
            leaves.lock().expect("no poisoning").insert(a.env.clone(), l);
        },
        admit,
    )
    .map_err(Trouble::Config)?;
    Ok(Checked {
        report: Some(report),
        leaves: leaves.into_inner().expect("no poisoning"),
    })
}

/// Record the run for the environments held, let go of them, and deliver
/// what is due.
#[expect(clippy::too_many_arguments, reason = "the run's pieces, each used once")]
fn finish(
    store: &mut Store,
    settings: &Settings,
    opts: &AuditOptions,
    clock: &dyn Clock,
    redactor: &Redactor,
    started_at: i64,
    mine: &[String],
    busy: Vec<String>,
    ran: Result<Checked, Trouble>,
) -> Result<CycleOutcome, Trouble> {
    let result = ran.and_then(|checked| record_run(store, settings, opts, clock, started_at, checked));
    release(store, mine);
    let (report, mut outcomes) = result?;
    outcomes.extend(busy.into_iter().map(|env| EnvOutcome {
        env,
        busy: true,
        ..Default::default()
    }));
    outcomes.sort_by_key(|o| opts.check.envs.iter().position(|e| *e == o.env));
    let now = clock.now();
    let sent = notify::deliver(store, &settings.channels, mine, &opts.runner, now, redactor).map_err(Trouble::Store)?;
    let mut undelivered = Vec::new();
    for env in mine {
        undelivered.extend(store.undelivered(Some(env)).map_err(Trouble::Store)?);
    }
    Ok(CycleOutcome {
        report,
        envs: outcomes,
        sent,
        undelivered,
        started_at,
    })
}

fn record_run(
    store: &mut Store,
    settings: &Settings,
    opts: &AuditOptions,
    clock: &dyn Clock,
    started_at: i64,
    checked: Checked,
) -> Result<(Report, Vec<EnvOutcome>), Trouble> {
    let Some(report) = checked.report else {
        return Ok((Report::new(Vec::new(), 0), Vec::new()));
    };
    if let Some(n) = resolver_gone(&report) {
        return Err(Trouble::Resolver(n));
    }
    let finished_at = clock.now();
    let snapshots: HashMap<String, Snapshot> = checked
        .leaves
        .into_iter()
        .map(|(env, l)| (env, store.digester().digest(l)))
        .collect();
    let unfiltered = opts.check.choice.select.is_all() && opts.check.choice.shard.is_none();
    let meta = RunMeta {
        project: report.project.as_deref().unwrap_or_default(),
        started_at,
        finished_at,
        host: &opts.host,
        trigger: &opts.trigger,
        fail_on_warn: opts.fail_on_warn,
        unfiltered,
    };
    let outcomes = record_report(store, settings, &meta, &report, &snapshots).map_err(Trouble::Store)?;
    Ok((report, outcomes))
}

/// What a recorded run says about itself.
pub struct RunMeta<'a> {
    pub project: &'a str,
    pub started_at: i64,
    pub finished_at: i64,
    pub host: &'a str,
    pub trigger: &'a str,
    pub fail_on_warn: bool,
    /// Every check ran (no `--only`, `--skip`, `--tag`, `--shard`): a check
    /// missing from the report is gone.
    pub unfiltered: bool,
}

/// Record a report's environments, one transaction each: the run, results,
/// states, incidents, outbox, roll-ups and retention. `snapshots` holds each
/// environment's configuration digests. For a server that ran the checks
/// itself, and for generating history.
pub fn record_report(
    store: &mut Store,
    settings: &Settings,
    meta: &RunMeta<'_>,
    report: &Report,
    snapshots: &HashMap<String, Snapshot>,
) -> Result<Vec<EnvOutcome>, StoreError> {
    let mut outcomes = Vec::new();
    for e in &report.environments {
        let snapshot = snapshots.get(&e.name).cloned().unwrap_or_default();
        let config_id = store.digester().id(&snapshot);
        let one = Report {
            environments: vec![e.clone()],
            ..report.clone()
        };
        let json = serde_json::to_string(&one).unwrap_or_default();
        let run = RunRow {
            id: 0,
            env: e.name.clone(),
            started_at: meta.started_at,
            finished_at: meta.finished_at,
            version: env!("CARGO_PKG_VERSION").into(),
            host: meta.host.to_string(),
            config_digest: config_id.clone(),
            trigger: meta.trigger.to_string(),
            status: e.status.as_str().into(),
            summary: serde_json::to_string(&e.summary).unwrap_or_default(),
        };
        let mut outcome = EnvOutcome::default();
        store.transaction(|tx| {
            outcome = record(
                tx,
                &Recording {
                    project: meta.project,
                    env: e,
                    run: &run,
                    snapshot: &snapshot,
                    config_id: &config_id,
                    report_json: &json,
                    settings,
                    fail_on_warn: meta.fail_on_warn,
                    unfiltered: meta.unfiltered,
                },
            )?;
            Ok(())
        })?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Everything one environment's transaction needs.
struct Recording<'a> {
    project: &'a str,
    env: &'a EnvReport,
    run: &'a RunRow,
    snapshot: &'a Snapshot,
    config_id: &'a str,
    report_json: &'a str,
    settings: &'a Settings,
    fail_on_warn: bool,
    unfiltered: bool,
}

fn record(tx: &mut Tx<'_>, r: &Recording<'_>) -> Result<EnvOutcome, StoreError> {
    let env = r.env.name.as_str();
    let now = r.run.started_at;
    let mut prev = tx.states(env)?;
    let first_run = tx.first_run(env)?;
    let silences = tx.silenced(env, now)?;
    let silenced = |check: &str| {
        silences.iter().any(|p| {
            globset::Glob::new(p)
                .map(|g| g.compile_matcher().is_match(check))
                .unwrap_or(p == check)
        })
    };
    tx.save_snapshot(r.config_id, r.snapshot, now)?;
    let run_id = tx.insert_run(r.run)?;
    // The root cause of every blocked check: its incident lists them.
    let mut blocks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for res in &r.env.results {
        if res.status == Status::Blocked
            && let Some(c) = BLOCKED_BY.captures(&res.message)
        {
            blocks
                .entry(format!("probe/{}", &c[1]))
                .or_default()
                .push(res.id.clone());
        }
    }
    let mut out = EnvOutcome {
        env: env.to_string(),
        run: Some(run_id),
        ..Default::default()
    };
    let day = now.div_euclid(86_400);
    // Written after the loop, a statement per hundred checks.
    let mut saves = Vec::with_capacity(r.env.results.len());
    let mut results = Vec::with_capacity(r.env.results.len());
    let mut rollups = Vec::with_capacity(r.env.results.len());
    for res in &r.env.results {
        let before = prev.remove(&res.id);
        let obs = observe(res, r.fail_on_warn);
        let key = format!("{env}:{}", res.id);
        let run = state::Run {
            now,
            first_run,
            silenced: silenced(&res.id),
            config: r.config_id,
            key: &key,
        };
        let step = state::step(before.as_ref().map(|b| &b.state), obs, &run, &r.settings.policy);
        let class = failure_class(res).map(String::from);
        let last = Last {
            run: Some(run_id),
            status: Some(res.status.as_str().into()),
            class: class.clone(),
            message: Some(res.message.clone()),
            duration_ms: res.duration_ms.map(|d| d as i64),
            not_after: not_after(res),
        };
        if obs != Obs::Skipped {
            results.push((
                res.id.as_str(),
                run_id,
                now,
                ResultRow {
                    status: res.status.as_str().into(),
                    class: class.clone(),
                    message: res.message.clone(),
                    duration_ms: last.duration_ms,
                    attempts: res.attempts.map(i64::from),
                    target: res.target.clone(),
                    not_after: last.not_after,
                },
            ));
        }
        if let Some(u) = up(res.status) {
            rollups.push((res.id.as_str(), u));
        }
        let from = before.as_ref().map_or(Health::Ok, |b| b.state.health);
        if from != step.state.health {
            out.changes.push(Change {
                check: res.id.clone(),
                from,
                to: step.state.health,
                message: res.message.clone(),
            });
        }
        // The incident row follows the check while it is open.
        let open = step.state.incident.as_ref().map(|i| (i.id.clone(), i.opened_at));
        if let Some((inc_id, opened_at)) = &open
            && (obs == Obs::Fail || step.opened.is_some())
        {
            let changed = match (
                &step.opened,
                before.as_ref().and_then(|b| b.state.last_pass_config.clone()),
            ) {
                (Some(_), Some(last_pass)) if last_pass != r.config_id => match tx.snapshot(&last_pass)? {
                    Some(then) => first_key_first(digest::changed(&then, r.snapshot), res.key.as_deref()),
                    None => Vec::new(),
                },
                (Some(_), _) => Vec::new(),
                (None, _) => tx.incident(inc_id)?.map(|i| i.config_changed).unwrap_or_default(),
            };
            tx.save_incident(&IncidentRow {
                id: inc_id.clone(),
                env: env.to_string(),
                check: res.id.clone(),
                opened_at: *opened_at,
                resolved_at: None,
                flapping: step.state.health == Health::Flapping,
                status: res.status.as_str().into(),
                class: class.clone(),
                message: res.message.clone(),
                location: res
                    .location
                    .as_ref()
                    .map(|l| serde_json::json!({"file": l.file, "line": l.line, "column": l.column}).to_string()),
                origin: res.origin.as_ref().map(|o| o.describe()),
                target: res.target.clone(),
                blocks: blocks.get(&res.id).cloned().unwrap_or_default(),
                config_changed: changed,
                consecutive_failures: i64::from(step.state.consecutive_failures),
            })?;
        }
        if let Some((inc_id, at)) = &step.closed {
            tx.close_incident(inc_id, *at)?;
        }
        for n in &step.notices {
            let Some(inc) = tx.incident(&n.incident)? else {
                continue;
            };
            let event = event_of(r.project, env, res, &step.state, n, &inc, now);
            enqueue(tx, &r.settings.channels, &event, now)?;
            out.events.push((n.kind, res.id.clone()));
        }
        saves.push((res.id.as_str(), res.kind.as_deref(), step.state.clone(), last));
        out.states.push((res.id.clone(), res.kind.clone(), step.state));
    }
    let saves: Vec<_> = saves.iter().map(|(c, k, s, l)| (*c, *k, s, l)).collect();
    let ids = tx.save_checks(env, &saves)?;
    let id = |check: &str| ids.get(check).copied().unwrap_or(0);
    let results: Vec<_> = results
        .into_iter()
        .map(|(c, run, at, row)| (id(c), run, at, row))
        .collect();
    let rollups: Vec<_> = rollups.into_iter().map(|(c, u)| (id(c), u)).collect();
    tx.insert_results(&results)?;
    tx.rollups(day, &rollups)?;
    // Checks this run did not report: a finding that went away passed; a
    // probe that is gone from the checks files leaves, resolving its
    // incident. Only a run of every check can tell.
    if r.unfiltered {
        for (check, gone) in prev {
            let is_probe = check.starts_with("probe/");
            let key = format!("{env}:{check}");
            let run = state::Run {
                now,
                first_run: false,
                silenced: silenced(&check),
                config: r.config_id,
                key: &key,
            };
            let mut st = gone.state.clone();
            if is_probe && let Some(inc) = &mut st.incident {
                inc.resolved_at.get_or_insert(now);
            }
            let step = if is_probe {
                state::step(Some(&st), Obs::Skipped, &run, &r.settings.policy)
            } else {
                state::step(Some(&st), Obs::Pass, &run, &r.settings.policy)
            };
            if let Some((inc_id, at)) = &step.closed {
                tx.close_incident(inc_id, *at)?;
            }
            for n in &step.notices {
                if let Some(inc) = tx.incident(&n.incident)? {
                    let message = if is_probe {
                        format!("`{check}` is no longer in the checks files")
                    } else {
                        "the finding is gone".to_string()
                    };
                    let res = CheckResult::pass(Category::Probe, &check, &check, message);
                    let event = event_of(r.project, env, &res, &step.state, n, &inc, now);
                    enqueue(tx, &r.settings.channels, &event, now)?;
                    out.events.push((n.kind, check.clone()));
                }
            }
            if step.state.incident.is_none() {
                tx.delete_check(gone.id)?;
            } else {
                tx.save_check(env, &check, gone.kind.as_deref(), &step.state, &gone.last)?;
            }
        }
    }
    tx.set_latest(env, run_id, r.report_json)?;
    tx.prune_env(env, now - r.settings.retain)?;
    // The rest of retention scans whole tables: once an hour is plenty.
    let last_full = tx.meta("pruned_at")?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    if now - last_full >= 3600 || now < last_full {
        tx.prune_store(now - r.settings.retain, now - r.settings.retain_rollups)?;
        tx.set_meta("pruned_at", &now.to_string())?;
    }
    Ok(out)
}

/// The changed keys, the check's own key first when it is among them; at most 50.
fn first_key_first(mut keys: Vec<String>, own: Option<&str>) -> Vec<String> {
    if let Some(own) = own
        && let Some(i) = keys.iter().position(|k| k == own)
    {
        let k = keys.remove(i);
        keys.insert(0, k);
    }
    keys.truncate(50);
    keys
}

fn event_of(
    project: &str,
    env: &str,
    res: &CheckResult,
    st: &CheckState,
    n: &state::Notice,
    inc: &IncidentRow,
    now: i64,
) -> Event {
    let end = n.resolved_at.unwrap_or(now);
    let resolve = n.kind == EventKind::Resolve;
    Event {
        version: super::event::EVENT_VERSION,
        event: n.kind,
        project: project.to_string(),
        env: env.to_string(),
        check: res.id.clone(),
        incident: IncidentInfo {
            id: n.incident.clone(),
            opened_at: rfc3339(n.opened_at),
            resolved_at: n.resolved_at.map(rfc3339),
            duration_s: (end - n.opened_at).max(0),
        },
        // A resolve tells what the check says now; the rest tell the failure.
        status: if resolve {
            res.status.as_str().into()
        } else {
            inc.status.clone()
        },
        message: if resolve {
            res.message.clone()
        } else {
            inc.message.clone()
        },
        location: inc
            .location
            .as_deref()
            .and_then(|l| serde_json::from_str::<Loc>(l).ok()),
        target: inc.target.clone(),
        consecutive_failures: st.consecutive_failures,
        config_changed: inc.config_changed.clone(),
        event_id: format!("{}:{}:{now}", n.incident, n.kind.as_str()),
        at: rfc3339(now),
        kind: res.kind.clone(),
        class: inc.class.clone(),
        origin: inc.origin.clone(),
        blocks: inc.blocks.clone(),
        state: st.health.as_str().into(),
    }
}

fn enqueue(tx: &mut Tx<'_>, channels: &[Channel], e: &Event, now: i64) -> Result<(), StoreError> {
    let payload = serde_json::to_string(e).unwrap_or_default();
    for ch in channels.iter().filter(|c| c.hears(&e.env)) {
        tx.enqueue(
            &e.event_id,
            &ch.name,
            &e.env,
            &e.incident.id,
            e.event.as_str(),
            &payload,
            now,
        )?;
    }
    Ok(())
}
