//! One function per subcommand. Each writes to the given streams and returns
//! the exit code; load errors come back as `Problems` (exit 2).

mod audit;
mod check;
mod completions;
mod diff;
mod explain;
pub mod formats;
mod history;
mod infer;
mod init;
mod list;
mod merge;
mod probe;
pub mod progress;
mod render;
mod report_file;
mod serve;
mod watch;

use std::io::Write;
use std::path::PathBuf;

use indexmap::IndexMap;

use crate::cli::{Cli, ColorChoice, Command};
use crate::config::project::{Project, discover};
use crate::diagnostic::Problems;
use crate::exit_codes;
use crate::report::Style;

/// What a command may know about the outside world; tests pass their own.
pub struct Context {
    pub cwd: PathBuf,
    pub env_vars: IndexMap<String, String>,
    /// stdout is a terminal.
    pub tty: bool,
    pub width: usize,
}

impl Context {
    pub fn from_process() -> Self {
        use std::io::IsTerminal;
        Context {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            env_vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            tty: std::io::stdout().is_terminal(),
            width: std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(100),
        }
    }

    pub fn style(&self, choice: ColorChoice) -> Style {
        let no_color = self.env_vars.get("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => self.tty && !no_color,
        };
        Style {
            color,
            width: self.width,
            now: std::time::SystemTime::now(),
            source_links: self.source_links(),
        }
    }

    /// `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/blob/$GITHUB_SHA/` plus where the
    /// current directory is inside the checkout (`$GITHUB_WORKSPACE`).
    fn source_links(&self) -> Option<&'static str> {
        let var = |k: &str| self.env_vars.get(k).filter(|v| !v.is_empty());
        let repo = var("GITHUB_REPOSITORY")?;
        let sha = var("GITHUB_SHA")?;
        let server = var("GITHUB_SERVER_URL").map_or("https://github.com", |s| s.as_str());
        let sub = var("GITHUB_WORKSPACE")
            .and_then(|w| self.cwd.strip_prefix(w).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
            .map(|p| format!("{p}/"))
            .unwrap_or_default();
        // Once per run: the style is copied into every reporter.
        Some(Box::leak(
            format!("{}/{repo}/blob/{sha}/{sub}", server.trim_end_matches('/')).into_boxed_str(),
        ))
    }

    fn project(&self, cli: &Cli, offline: bool, lenient_secrets: bool) -> Result<Project, Problems> {
        let start = match &cli.project {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => self.cwd.join(p),
            None => self.cwd.clone(),
        };
        let root = if cli.project.is_some() {
            start
        } else {
            discover(&start)?
        };
        let mut p = Project::load(&root, self.env_vars.clone())?;
        p.offline = offline;
        p.lenient_secrets = lenient_secrets;
        p.secret_commands = !offline || cli.allow_secret_commands;
        Ok(p)
    }
}

/// Run a parsed command line. Diagnostics go to `err`, results to `out`.
pub fn run(cli: Cli, ctx: &Context, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<i32> {
    let style = ctx.style(cli.color);
    let result = match &cli.command {
        Command::Check(a) => check::check(&cli, ctx, a, style, out),
        Command::Validate(a) if a.watch => watch::watch(&cli, ctx, a, style, out, err),
        Command::Validate(a) => check::validate(&cli, ctx, a, style, out),
        // Printing real values needs real values: an unset secret is an error then.
        Command::Render(a) => ctx
            .project(&cli, a.offline, !a.show_secrets)
            .and_then(|p| render::render(&p, a, out, err)),
        Command::Explain(a) => ctx
            .project(&cli, a.offline, true)
            .and_then(|p| explain::explain(&p, a, out)),
        Command::Diff(a) => ctx
            .project(&cli, a.offline, true)
            .and_then(|p| diff::diff(&p, a, style, out)),
        Command::List(a) => ctx.project(&cli, true, true).and_then(|p| match a.format {
            crate::cli::DiffFormat::Human => list::list(&p, out),
            crate::cli::DiffFormat::Json => list::list_json(&p, out),
        }),
        Command::Init(a) => init::init(ctx, a, out),
        Command::Probe(a) => probe::probe(ctx, a, style, out, err),
        Command::Audit(a) => audit::audit(&cli, ctx, a, style, out, err),
        Command::History(a) => ctx
            .project(&cli, true, true)
            .and_then(|p| history::history(&p, a, style, out)),
        Command::Report(a) => match &a.action {
            crate::cli::ReportAction::Merge(m) => merge::merge(ctx, m, style, out),
        },
        Command::Schema(a) => match &a.action {
            crate::cli::SchemaAction::Infer { envs } => {
                ctx.project(&cli, true, true).and_then(|p| infer::infer(&p, envs, out))
            }
        },
        Command::Completions(a) => completions::completions(a.shell, out),
        Command::Man => completions::man(out),
        Command::Complete(a) => completions::names(ctx.project(&cli, true, true), a.what, out),
        Command::Serve(a) => serve::serve(&cli, ctx, a, err),
    };
    match result {
        Ok(code) => Ok(code),
        // The reader went away (`envgate render | head -1`): main exits 0, quietly.
        Err(problems) if problems.0.iter().any(|p| p.code == BROKEN_PIPE) => Err(std::io::ErrorKind::BrokenPipe.into()),
        Err(problems) => {
            report_problems(&problems, style, err)?;
            Ok(exit_codes::CANNOT_EVALUATE)
        }
    }
}

const BROKEN_PIPE: &str = "envgate::io::broken-pipe";

pub fn report_problems(problems: &Problems, style: Style, err: &mut dyn Write) -> std::io::Result<()> {
    for p in &problems.0 {
        write!(err, "{}", crate::report::human::diagnostic(p, style))?;
    }
    if problems.0.len() > 1 {
        writeln!(err, "error: {problems}")?;
    }
    Ok(())
}

/// Errors writing to stdout are I/O errors, not evaluation problems; a
/// closed pipe is not an error at all.
fn io(e: std::io::Error) -> Problems {
    let code = if e.kind() == std::io::ErrorKind::BrokenPipe {
        BROKEN_PIPE
    } else {
        "envgate::io"
    };
    crate::diagnostic::Problem::new(code, format!("cannot write output: {e}")).into()
}
