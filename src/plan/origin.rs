//! An origin as the report shows it: which layer set a value, and how.

use crate::config::manifest::SourceDef;
use crate::config::project::Project;
use crate::outcome::OriginInfo;
use crate::source::{Loc, Origin};

/// `origin` of the JSON report, for a value of `project`'s configuration.
pub fn origin_info(project: &Project, origin: &Origin) -> OriginInfo {
    let source = project.manifest.source.iter().find(|s| s.name() == origin.layer);
    let (kind, name) = match &origin.loc {
        Loc::File { file, .. } => {
            let kind = match source {
                Some(SourceDef::Dotenv { .. }) => "dotenv",
                _ => "file",
            };
            (kind, file.name.clone())
        }
        Loc::EnvVar(v) => ("env", v.clone()),
        Loc::Url(u) => ("http", u.clone()),
        Loc::Cli(arg) => ("cli", format!("--set {arg}")),
    };
    OriginInfo {
        layer: origin.layer.clone(),
        kind: kind.to_string(),
        name,
    }
}
