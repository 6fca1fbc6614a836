//! `envgate history`: each check's state, streak, last pass, uptime and
//! recent runs, and the incidents with their durations, from the store.

use std::io::Write;

use super::io;
use crate::audit::history::{Query, load};
use crate::audit::store::Store;
use crate::audit::{Clock, SystemClock};
use crate::cli::{HistoryArgs, HistoryFormat};
use crate::config::project::Project;
use crate::config::secrets::Redactor;
use crate::diagnostic::{Problem, Problems};
use crate::exit_codes;
use crate::report::Style;

pub fn history(project: &Project, a: &HistoryArgs, style: Style, out: &mut dyn Write) -> Result<i32, Problems> {
    let now = SystemClock.now();
    let mut redactor = Redactor::default();
    let url = crate::audit::settings::store_url(project, a.store.as_deref(), &mut redactor)?;
    for e in &a.envs {
        if !project.environments.iter().any(|x| x == e) {
            return Err(project.unknown_env(e).into());
        }
    }
    // Reading never creates a store.
    if let Some(path) = url.strip_prefix("sqlite:")
        && !project.root.join(path).exists()
    {
        writeln!(
            out,
            "no audit runs recorded yet ({path} does not exist): run `envgate audit --env ENV` first"
        )
        .map_err(io)?;
        return Ok(exit_codes::OK);
    }
    let fail = |e: crate::audit::store::StoreError| {
        Problems::from(Problem::new(
            "envgate::audit::store",
            redactor.scrub(&format!("cannot read the history store: {e}")),
        ))
    };
    let mut store = Store::open(&url, &project.root, &project.manifest.project.name, now).map_err(fail)?;
    let h = load(
        &mut store,
        &Query {
            envs: a.envs.clone(),
            check: a.check.as_deref(),
            since: now - a.since.as_secs() as i64,
            now,
            resolved: None,
        },
    )
    .map_err(fail)?;
    let text = match a.format {
        HistoryFormat::Human => crate::audit::render::human(&h, style.color),
        HistoryFormat::Json => format!("{}\n", serde_json::to_string_pretty(&h).unwrap_or_default()),
        HistoryFormat::Html => crate::audit::render::html(&h),
    };
    out.write_all(text.as_bytes()).map_err(io)?;
    Ok(exit_codes::OK)
}
