//! `[[rule]]` tables from `checks/*.toml`. Probes live in the same files and
//! are parsed by the probe engine; each parser is strict about its own
//! tables and leaves the other's alone.

use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::config::project::Project;
use crate::config::tree::SourceFile;
use crate::diagnostic::Problem;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksDoc {
    #[serde(default)]
    rule: Vec<RuleDef>,
    /// Parsed by `crate::probes`.
    #[serde(default)]
    #[expect(dead_code, reason = "probes are parsed by the probe engine")]
    probe: Option<toml::Value>,
}

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

/// Every rule of the project, in file then declaration order.
pub fn load(project: &Project) -> Result<Vec<Rule>, Vec<Problem>> {
    let (files, mut problems) = project.check_files();
    let mut rules = Vec::new();
    for file in files {
        let rel = &file.name;
        match toml::from_str::<ChecksDoc>(&file.text) {
            Ok(doc) => rules.extend(doc.rule.into_iter().map(|def| Rule {
                def,
                file: file.clone(),
            })),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let msg = e.message().trim().to_string();
                let (line, col) = file.line_col(span.start);
                problems.push(
                    Problem::new(
                        "envgate::checks::invalid",
                        format!("invalid {rel}: {msg} (line {line}, column {col})"),
                    )
                    .label(msg)
                    .help("see schemas/checks.schema.json for the keys a rule accepts")
                    .at(&file, span.start, span.len().max(1)),
                );
            }
        }
    }
    let mut seen = std::collections::HashMap::new();
    for r in &rules {
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
    if problems.is_empty() { Ok(rules) } else { Err(problems) }
}
