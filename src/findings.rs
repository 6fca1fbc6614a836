//! A finding: one thing wrong (or right) with an environment, before any
//! reporter formats it.

use crate::diagnostic::Problem;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Assembly and interpolation of the configuration.
    Config,
    Schema,
    Rule,
    Isolation,
    Probe,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub category: Category,
    pub id: String,
    pub key: Option<String>,
    pub problem: Problem,
    /// A warning does not fail the run unless `--fail-on warn`.
    pub warning: bool,
}

impl Finding {
    pub fn new(category: Category, id: String, key: Option<String>, problem: Problem) -> Self {
        Self {
            category,
            id,
            key,
            problem,
            warning: false,
        }
    }

    pub fn warning(mut self) -> Self {
        self.warning = true;
        self.problem.severity = miette::Severity::Warning;
        self
    }
}
