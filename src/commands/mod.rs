//! One function per subcommand. Each writes to the given streams and returns
//! the exit code; load errors come back as `Problems` (exit 2).

mod audit;
mod check;
mod diff;
mod explain;
pub mod formats;
mod history;
mod init;
mod list;
mod probe;
mod progress;
mod render;
mod report_file;
mod serve;

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
        }
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
        Ok(p)
    }
}

/// Run a parsed command line. Diagnostics go to `err`, results to `out`.
pub fn run(cli: Cli, ctx: &Context, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<i32> {
    let style = ctx.style(cli.color);
    let result = match &cli.command {
        Command::Check(a) => check::check(&cli, ctx, a, style, out),
        Command::Validate(a) => check::validate(&cli, ctx, a, style, out),
        Command::Render(a) => ctx
            .project(&cli, a.offline, true)
            .and_then(|p| render::render(&p, a, out)),
        Command::Explain(a) => ctx
            .project(&cli, a.offline, true)
            .and_then(|p| explain::explain(&p, a, out)),
        Command::Diff(a) => ctx
            .project(&cli, a.offline, true)
            .and_then(|p| diff::diff(&p, a, style, out)),
        Command::List => ctx.project(&cli, true, true).and_then(|p| list::list(&p, out)),
        Command::Init(a) => init::init(ctx, a, out),
        Command::Probe(a) => probe::probe(ctx, a, style, out, err),
        Command::Audit(a) => audit::audit(&cli, ctx, a, style, out, err),
        Command::History(a) => ctx
            .project(&cli, true, true)
            .and_then(|p| history::history(&p, a, style, out)),
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
