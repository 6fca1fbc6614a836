//! `envgate validate --watch`: validate, then again on every save of a
//! project file (inotify through the notify crate, not polling), clearing
//! the screen on a terminal, until interrupted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};

use super::{Context, io, report_problems};
use crate::cli::{Cli, ValidateArgs};
use crate::diagnostic::{Problem, Problems};
use crate::report::Style;

/// Saves come in bursts (an editor writes, renames, touches): one run per burst.
const SETTLE: Duration = Duration::from_millis(150);

pub fn watch(
    cli: &Cli,
    ctx: &Context,
    a: &ValidateArgs,
    style: Style,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, Problems> {
    let root = ctx.project(cli, true, true)?.root.clone();
    let reports: Vec<PathBuf> = super::check::parse_reports(&a.output.reports)?
        .into_iter()
        .map(|(_, p)| if p.is_absolute() { p } else { ctx.cwd.join(p) })
        .collect();
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(tx).map_err(|e| cannot_watch(&root, &e))?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|e| cannot_watch(&root, &e))?;
    loop {
        if ctx.tty {
            write!(out, "\x1b[2J\x1b[H").map_err(io)?;
        }
        // A broken file is a diagnostic to fix, not the end of the watch.
        if let Err(problems) = super::check::validate(cli, ctx, a, style, out) {
            report_problems(&problems, style, err).map_err(io)?;
        }
        writeln!(out, "\nwatching {} for changes (Ctrl-C to stop)", root.display()).map_err(io)?;
        out.flush().map_err(io)?;
        // Wait for a change that matters, then let the burst settle.
        loop {
            let event = rx
                .recv()
                .map_err(|_| Problems::from(Problem::new("envgate::watch", "the file watcher stopped")))?;
            if relevant(&root, &reports, &event) {
                break;
            }
        }
        std::thread::sleep(SETTLE);
        while rx.try_recv().is_ok() {}
    }
}

fn cannot_watch(root: &Path, e: &notify::Error) -> Problems {
    Problem::new("envgate::watch", format!("cannot watch {}: {e}", root.display())).into()
}

/// A write, creation, removal or rename of a project file: not under a
/// hidden directory or `target/`, and not a report this watch writes.
fn relevant(root: &Path, reports: &[PathBuf], event: &notify::Result<notify::Event>) -> bool {
    let Ok(event) = event else {
        return false;
    };
    if matches!(event.kind, EventKind::Access(_) | EventKind::Other) {
        return false;
    }
    event.paths.iter().any(|p| {
        let rel = p.strip_prefix(root).unwrap_or(p);
        let hidden = rel.components().any(|c| {
            let s = c.as_os_str().to_string_lossy();
            s.starts_with('.') || s == "target"
        });
        !hidden && !reports.iter().any(|r| r == p)
    })
}
