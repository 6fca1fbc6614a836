//! `[[rule]]` tables: what a rule says. The plan reads `checks/*.toml` once
//! and hands the rules here; the probes in the same files go to the probes.

use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::Problem;
use crate::source::SourceFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleSeverity {
    Error,
    Warning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Evaluated once per environment over `config` and `env`.
    Env,
    /// Evaluated once per run over `envs.<name>`.
    AllEnvs,
}

/// One `[[rule]]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    #[serde(default = "default_severity")]
    pub severity: RuleSeverity,
    /// Shown when the assertion fails.
    pub message: String,
    /// CEL: the rule applies only when this is true.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub when: Option<Spanned<String>>,
    /// CEL: must be true.
    #[schemars(with = "String")]
    pub assert: Spanned<String>,
    #[serde(default = "default_scope")]
    pub scope: Scope,
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_severity() -> RuleSeverity {
    RuleSeverity::Error
}
fn default_scope() -> Scope {
    Scope::Env
}

/// A rule and the file it was written in.
#[derive(Debug, Clone)]
pub struct Rule {
    pub def: RuleDef,
    pub file: Arc<SourceFile>,
}

/// Rule ids are unique across every check file.
pub fn check_ids(rules: &[Rule], problems: &mut Vec<Problem>) {
    let mut seen = std::collections::HashMap::new();
    for r in rules {
        if let Some(first) = seen.insert(r.def.id.get_ref().clone(), r.file.name.clone()) {
            let s = r.def.id.span();
            problems.push(
                Problem::new(
                    "envgate::checks::duplicate",
                    format!("rule id `{}` is used twice (first in {first})", r.def.id.get_ref()),
                )
                .label("duplicate id")
                .at(&r.file, s.start, s.len()),
            );
        }
    }
}
