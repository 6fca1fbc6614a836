//! `envgate audit`: one audit run (record, states, notifications), and the
//! store's housekeeping: `prune`, `silence`, `silences`, `unsilence`.

use std::io::Write;

use super::check::{parse_reports, selected_envs, verdict};
use super::report_file::write_report;
use super::{Context, io};
use crate::audit::store::{Delivery, Silence, Store};
use crate::audit::{AuditOptions, Clock, CycleOutcome, Settings, SystemClock, Trouble, cycle_opening};
use crate::check::CheckOptions;
use crate::cli::{AuditAction, AuditArgs, AuditExit, Cli, DiffFormat, FailOn};
use crate::config::project::Project;
use crate::config::secrets::Redactor;
use crate::diagnostic::{Problem, Problems};
use crate::exit_codes;
use crate::plan::Choice;
use crate::report::{Format, Style};

pub fn audit(
    cli: &Cli,
    ctx: &Context,
    a: &AuditArgs,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Problems> {
    let clock = SystemClock;
    if let Some(action) = &a.action {
        let project = ctx.project(cli, true, true)?;
        return manage(&project, action, &clock, out);
    }
    if a.select.envs.is_empty() && !a.select.all_envs {
        return Err(Problem::new(
            "envgate::cli::env",
            "choose the environments to audit: --env NAME or --all-envs",
        )
        .into());
    }
    let mut redactor = Redactor::default();
    if let Some(h) = &a.heartbeat_url {
        redactor.add(h);
    }
    let ping = |suffix: &str, err: &mut dyn Write, redactor: &Redactor| {
        if let Some(url) = &a.heartbeat_url
            && let Some(why) = crate::audit::notify::heartbeat(url, suffix, redactor)
        {
            let _ = writeln!(err, "warning: heartbeat{suffix} ping failed: {why}");
        }
    };
    ping("/start", err, &redactor);
    let ran = run(cli, ctx, a, &clock, &mut redactor);
    match ran {
        Ok((outcome, settings, mut store)) => {
            let code = report(a, &outcome, &settings, &mut store, &clock, style, out, err)?;
            drop(store);
            ping("", err, &redactor);
            Ok(code)
        }
        Err(e) => {
            ping("/fail", err, &redactor);
            Err(e)
        }
    }
}

fn run(
    cli: &Cli,
    ctx: &Context,
    a: &AuditArgs,
    clock: &dyn Clock,
    redactor: &mut Redactor,
) -> Result<(CycleOutcome, Settings, Store), Problems> {
    let project = ctx.project(cli, false, false)?;
    let envs = selected_envs(&project, &a.select)?;
    let settings = crate::audit::settings::settings(&project, redactor)?;
    let host = hostname();
    let opts = AuditOptions {
        check: CheckOptions {
            envs,
            sets: a.select.sets.clone(),
            choice: Choice {
                select: a.filter.selection()?,
                shard: a.filter.shard,
                no_load: a.run.no_load,
            },
            runner: crate::runner::Options {
                concurrency: a.run.concurrency,
                fail_fast: a.run.fail_fast,
                wait: a.run.wait,
                ..Default::default()
            },
        },
        fail_on_warn: a.output.fail_on == FailOn::Warn,
        trigger: if ctx.tty { "manual" } else { "cron" }.into(),
        runner: format!("{host}:{}", std::process::id()),
        host,
    };
    // The store opens on another thread while the configuration is read.
    let url = crate::audit::settings::store_url(&project, a.store.as_deref(), redactor)?;
    let scrub = redactor.clone();
    let now = clock.now();
    let open = || {
        let mut store = open_url(&project, &url, now, &scrub)?;
        store.keep_log_on_close().map_err(|e| store_problem(&url, &e, &scrub))?;
        Ok(store)
    };
    let (outcome, store) =
        cycle_opening(&project, &open, &settings, &opts, clock, redactor).map_err(|t| trouble(t, redactor))?;
    Ok((outcome, settings, store))
}

fn trouble(t: Trouble, redactor: &Redactor) -> Problems {
    match t {
        Trouble::Config(p) => p,
        other => Problem::new("envgate::audit", redactor.scrub(&format!("cannot audit: {other}")))
            .help("nothing was recorded and no check changed state")
            .into(),
    }
}

fn open(project: &Project, flag: Option<&str>, clock: &dyn Clock, redactor: &mut Redactor) -> Result<Store, Problems> {
    let url = crate::audit::settings::store_url(project, flag, redactor)?;
    open_url(project, &url, clock.now(), redactor)
}

fn open_url(project: &Project, url: &str, now: i64, redactor: &Redactor) -> Result<Store, Problems> {
    Store::open(url, &project.root, &project.manifest.project.name, now).map_err(|e| store_problem(url, &e, redactor))
}

fn store_problem(url: &str, e: &dyn std::fmt::Display, redactor: &Redactor) -> Problems {
    Problem::new(
        "envgate::audit::store",
        redactor.scrub(&format!(
            "cannot use the history store {}: {e}",
            crate::config::secrets::redact_url_passwords(url)
        )),
    )
    .into()
}

#[expect(clippy::too_many_arguments, reason = "the run's pieces, each used once")]
fn report(
    a: &AuditArgs,
    o: &CycleOutcome,
    settings: &Settings,
    store: &mut Store,
    clock: &dyn Clock,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Problems> {
    let _ = settings;
    let envs: Vec<String> = o.envs.iter().filter(|e| !e.busy).map(|e| e.env.clone()).collect();
    let render = |format: Format, store: &mut Store, style: Style| -> Result<String, Problems> {
        if format == Format::Prometheus {
            crate::audit::metrics::render(store, &envs, clock.now()).map_err(|e| {
                Problems::from(Problem::new(
                    "envgate::audit::store",
                    format!("cannot read the store: {e}"),
                ))
            })
        } else {
            Ok(format.reporter().render(&o.report, style))
        }
    };
    for (format, path) in parse_reports(&a.output.reports)? {
        write_report(&path, &render(format, store, Style { color: false, ..style })?)?;
    }
    match a.output.format {
        None | Some(Format::Human) => {
            let text = summary(o, a.quiet);
            out.write_all(text.as_bytes()).map_err(io)?;
        }
        Some(f) => out.write_all(render(f, store, style)?.as_bytes()).map_err(io)?,
    }
    for s in &o.sent {
        match &s.outcome {
            Delivery::Sent => {}
            Delivery::Rejected(why) => {
                let _ = writeln!(
                    err,
                    "error: `{}` rejected the {} notification of {}: {why} (kept: see `envgate history`)",
                    s.channel, s.kind, s.incident
                );
            }
            Delivery::Retry(why, at) => {
                let _ = writeln!(
                    err,
                    "warning: the {} notification of {} is not delivered to `{}` ({why}); retrying from {}",
                    s.kind,
                    s.incident,
                    s.channel,
                    crate::audit::event::rfc3339(*at)
                );
            }
            Delivery::Dropped(why) => {
                let _ = writeln!(err, "warning: the {} notification of {}: {why}", s.kind, s.incident);
            }
        }
    }
    Ok(match a.exit_code {
        AuditExit::Run => exit_codes::OK,
        AuditExit::Status => verdict(&o.report, a.output.fail_on == FailOn::Warn),
    })
}

/// One line per environment: what changed; nothing with `quiet` when nothing did.
fn summary(o: &CycleOutcome, quiet: bool) -> String {
    let mut text = String::new();
    for e in &o.envs {
        if e.busy {
            text.push_str(&format!(
                "{}: skipped: another runner is auditing it right now\n",
                e.env
            ));
            continue;
        }
        let sent = o
            .sent
            .iter()
            .filter(|s| s.env == e.env && s.outcome == Delivery::Sent)
            .count();
        let mut parts: Vec<String> = e
            .changes
            .iter()
            .map(|c| match c.to {
                crate::audit::state::Health::Failing => format!("{} failing ({})", c.check, first_line(&c.message)),
                crate::audit::state::Health::Flapping => format!("{} flapping", c.check),
                crate::audit::state::Health::Ok => format!("{} ok again", c.check),
            })
            .collect();
        if sent > 0 {
            parts.push(format!("{sent} notification{} sent", if sent == 1 { "" } else { "s" }));
        }
        if parts.is_empty() {
            if quiet {
                continue;
            }
            let failing = e
                .states
                .iter()
                .filter(|(_, _, s)| s.health != crate::audit::state::Health::Ok)
                .count();
            text.push_str(&format!(
                "{}: no change ({} checks, {} not ok)\n",
                e.env,
                e.states.len(),
                failing
            ));
        } else {
            text.push_str(&format!("{}: {}\n", e.env, parts.join("; ")));
        }
    }
    text
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() > 120 {
        format!("{}…", line.chars().take(119).collect::<String>())
    } else {
        line.to_string()
    }
}

fn manage(project: &Project, action: &AuditAction, clock: &dyn Clock, out: &mut dyn Write) -> Result<i32, Problems> {
    let mut redactor = Redactor::default();
    let store_err = |e: crate::audit::store::StoreError| {
        Problems::from(Problem::new("envgate::audit::store", format!("the history store: {e}")))
    };
    let now = clock.now();
    match action {
        AuditAction::Prune { vacuum, store } => {
            let settings = crate::audit::settings::settings(project, &mut redactor)?;
            let mut s = open(project, store.as_deref(), clock, &mut redactor)?;
            let n = s
                .prune(now - settings.retain, now - settings.retain_rollups, *vacuum)
                .map_err(store_err)?;
            writeln!(
                out,
                "pruned {n} rows{}",
                if *vacuum { " and vacuumed the store" } else { "" }
            )
            .map_err(io)?;
        }
        AuditAction::Silence {
            env,
            check,
            duration,
            reason,
            store,
        } => {
            if !project.environments.iter().any(|e| e == env) {
                return Err(project.unknown_env(env).into());
            }
            globset::Glob::new(check)
                .map_err(|e| Problems::from(Problem::new("envgate::cli::check", format!("--check {check:?}: {e}"))))?;
            let mut s = open(project, store.as_deref(), clock, &mut redactor)?;
            let silence = Silence {
                id: 0,
                env: env.clone(),
                pattern: check.clone(),
                starts_at: now,
                ends_at: now + duration.as_secs() as i64,
                reason: reason.clone(),
                created_by: std::env::var("USER").unwrap_or_else(|_| hostname()),
            };
            let id = s.add_silence(&silence).map_err(store_err)?;
            writeln!(
                out,
                "silence {id}: {env} {check} until {} ({reason})",
                crate::audit::event::rfc3339(silence.ends_at)
            )
            .map_err(io)?;
        }
        AuditAction::Silences { store, format } => {
            let mut s = open(project, store.as_deref(), clock, &mut redactor)?;
            let list = s.silences(now).map_err(store_err)?;
            if *format == DiffFormat::Json {
                let text = serde_json::to_string_pretty(&list).unwrap_or_default();
                writeln!(out, "{text}").map_err(io)?;
            } else if list.is_empty() {
                writeln!(out, "no silences").map_err(io)?;
            } else {
                for x in list {
                    writeln!(
                        out,
                        "{}  {}  {}  until {}  {} (by {})",
                        x.id,
                        x.env,
                        x.pattern,
                        crate::audit::event::rfc3339(x.ends_at),
                        x.reason,
                        x.created_by
                    )
                    .map_err(io)?;
                }
            }
        }
        AuditAction::Unsilence { id, store } => {
            let mut s = open(project, store.as_deref(), clock, &mut redactor)?;
            if !s.expire_silence(*id, now).map_err(store_err)? {
                return Err(
                    Problem::new("envgate::audit::silence", format!("no silence {id} in force"))
                        .help("`envgate audit silences` lists them")
                        .into(),
                );
            }
            writeln!(out, "silence {id} ended").map_err(io)?;
        }
    }
    Ok(exit_codes::OK)
}

pub(super) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
