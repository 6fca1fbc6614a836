use std::io::Write;

use super::{Context, io};
use crate::check::{CheckOptions, run};
use crate::cli::{CheckArgs, Cli, Output, Selection, ValidateArgs, Verbosity};
use crate::config::project::Project;
use crate::diagnostic::{Problem, Problems};
use crate::exit_codes;
use crate::outcome::Report;
use crate::plan::Choice;
use crate::report::{Format, Style};

pub fn check(cli: &Cli, ctx: &Context, a: &CheckArgs, style: Style, out: &mut dyn Write) -> Result<i32, Problems> {
    if a.select.envs.is_empty() && !a.select.all_envs {
        return Err(Problem::new(
            "envgate::cli::env",
            "choose the environments to check: --env NAME or --all-envs",
        )
        .help("`envgate validate` checks every environment offline")
        .into());
    }
    let mut project = ctx.project(cli, a.offline, a.offline)?;
    project.require_secrets = a.require_secrets;
    let choice = Choice {
        select: a.filter.selection()?,
        shard: a.filter.shard,
        no_load: a.run.no_load,
    };
    let runner = crate::runner::Options {
        concurrency: a.run.concurrency,
        fail_fast: a.run.fail_fast,
        wait: a.run.wait,
        observer: super::progress::observer_for(super::progress::Verbosity::from_flags(
            a.verbosity.quiet,
            a.verbosity.verbose,
        )),
        ..Default::default()
    };
    execute(
        ctx,
        &project,
        &a.select,
        choice,
        runner,
        &a.output,
        a.verbosity,
        a.fail_on_warn(),
        style,
        out,
    )
}

pub fn validate(
    cli: &Cli,
    ctx: &Context,
    a: &ValidateArgs,
    style: Style,
    out: &mut dyn Write,
) -> Result<i32, Problems> {
    let mut project = ctx.project(cli, true, true)?;
    project.require_secrets = a.require_secrets;
    let choice = Choice {
        select: a.filter.selection()?,
        shard: a.filter.shard,
        no_load: true,
    };
    execute(
        ctx,
        &project,
        &a.select,
        choice,
        crate::runner::Options::default(),
        &a.output,
        a.verbosity,
        a.fail_on_warn(),
        style,
        out,
    )
}

#[expect(clippy::too_many_arguments, reason = "two callers, each passing its own pieces")]
fn execute(
    ctx: &Context,
    project: &Project,
    select: &Selection,
    choice: Choice,
    runner: crate::runner::Options,
    output: &Output,
    verbosity: Verbosity,
    fail_on_warn: bool,
    style: Style,
    out: &mut dyn Write,
) -> Result<i32, Problems> {
    let reports = parse_reports(&output.reports)?;
    let envs = selected_envs(project, select)?;
    let report = run(
        project,
        &CheckOptions {
            envs,
            sets: select.sets.clone(),
            choice,
            runner,
        },
    )?;
    for (format, path) in &reports {
        super::report_file::write_report(
            path,
            &format.reporter().render(&report, Style { color: false, ..style }),
        )?;
    }
    let format = output.format.unwrap_or(Format::Human);
    let text = match format {
        Format::Human if verbosity.quiet => crate::report::human::quiet(&report, style),
        Format::Human if verbosity.verbose => {
            crate::report::human::passing(&report) + &format.reporter().render(&report, style)
        }
        _ => format.reporter().render(&report, style),
    };
    out.write_all(text.as_bytes()).map_err(io)?;
    if format == Format::Github || reports.iter().any(|(f, _)| *f == Format::Github) {
        append_step_summary(ctx, &report, style)?;
    }
    Ok(verdict(&report, fail_on_warn))
}

/// The environments `--env` names (comma-separated too), or every one.
pub(super) fn selected_envs(project: &Project, select: &Selection) -> Result<Vec<String>, Problems> {
    if select.envs.is_empty() {
        return Ok(project.environments.clone());
    }
    let mut v = Vec::new();
    for e in &select.envs {
        for name in e.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !project.environments.iter().any(|x| x == name) {
                return Err(project.unknown_env(name).into());
            }
            v.push(name.to_string());
        }
    }
    Ok(v)
}

pub(super) fn verdict(report: &Report, fail_on_warn: bool) -> i32 {
    if report.passed(fail_on_warn) {
        exit_codes::OK
    } else {
        exit_codes::NOT_READY
    }
}

pub(super) fn parse_reports(specs: &[String]) -> Result<Vec<(Format, std::path::PathBuf)>, Problems> {
    specs
        .iter()
        .map(|s| {
            let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
            let (f, p) = s.split_once('=').ok_or_else(|| {
                Problem::new(
                    "envgate::cli::report",
                    format!("--report {s:?}: expected FORMAT=PATH, e.g. --report json=report.json"),
                )
                .help(format!("formats: {}", names.join(", ")))
            })?;
            let format = Format::parse(f).ok_or_else(|| {
                Problem::new(
                    "envgate::cli::report",
                    format!("--report: unknown format `{f}`; valid formats: {}", names.join(", ")),
                )
                .help(format!("e.g. --report json={p}"))
            })?;
            Ok((format, std::path::PathBuf::from(p)))
        })
        .collect::<Result<_, Problem>>()
        .map_err(Problems::from)
}

/// GitHub Actions shows `$GITHUB_STEP_SUMMARY` on the run's page: with the
/// github format, the markdown report is appended there too.
fn append_step_summary(ctx: &Context, report: &Report, style: Style) -> Result<(), Problems> {
    let Some(path) = ctx.env_vars.get("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let path = ctx.cwd.join(path);
    let fail = |e: std::io::Error| {
        Problems::from(Problem::new(
            "envgate::io",
            format!("cannot write {}: {e}", path.display()),
        ))
    };
    let text = Format::Markdown
        .reporter()
        .render(report, Style { color: false, ..style });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)
}
