//! From the manifest's `[audit]` (already checked when it was read) to the
//! audit's [`Settings`], and the store's URL with its secrets resolved.

use super::cycle::Settings;
use super::notify;
use super::state::Policy;
use crate::config::audit::DEFAULT_STORE;
use crate::config::project::Project;
use crate::config::secrets::Redactor;
use crate::config::units::parse_duration;
use crate::diagnostic::{Problem, Problems};

fn secs(text: Option<&str>, default: i64) -> i64 {
    text.and_then(parse_duration).map_or(default, |d| d.as_secs() as i64)
}

pub fn settings(project: &Project, redactor: &mut Redactor) -> Result<Settings, Problems> {
    let t = project.manifest.audit.clone().unwrap_or_default();
    let d = Settings::default();
    let channels = notify::channels(&t.notify, &project.env_vars, &project.root, redactor).map_err(Problems)?;
    Ok(Settings {
        policy: Policy {
            fail_after: t.fail_after.unwrap_or(d.policy.fail_after),
            recover_after: t.recover_after.unwrap_or(d.policy.recover_after),
            remind_every: secs(t.remind_every.as_deref(), d.policy.remind_every),
        },
        retain: secs(t.retain.as_deref(), d.retain),
        retain_rollups: secs(t.retain_rollups.as_deref(), d.retain_rollups),
        channels,
    })
}

/// The store to use: `--store`, else `[audit] store`, else the default;
/// `${secret:env:NAME}` and `${env:NAME}` resolved (and added to `redactor`).
pub fn store_url(project: &Project, flag: Option<&str>, redactor: &mut Redactor) -> Result<String, Problems> {
    let raw = flag
        .map(String::from)
        .or_else(|| project.manifest.audit.as_ref().and_then(|a| a.store.clone()))
        .unwrap_or_else(|| DEFAULT_STORE.to_string());
    let url = notify::interpolate(&raw, &project.env_vars, &project.root)
        .map_err(|e| Problems::from(Problem::new("envgate::audit::store", format!("the audit store: {e}"))))?;
    if url != raw {
        redactor.add(&url);
    }
    Ok(url)
}
