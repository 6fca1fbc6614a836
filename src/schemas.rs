//! JSON Schemas of envgate's own formats, generated from the types and
//! checked in under `schemas/`; a test fails when code and files drift.

use serde_json::Value;

pub fn report() -> Value {
    serde_json::to_value(schemars::schema_for!(crate::report::model::Report)).expect("schema serializes")
}

pub fn manifest() -> Value {
    serde_json::to_value(schemars::schema_for!(crate::config::manifest::Manifest)).expect("schema serializes")
}

/// A `checks/*.toml` file: rules and probes.
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
#[expect(dead_code, reason = "exists only to describe the file format")]
struct ChecksFile {
    /// CEL rules over the assembled configuration.
    #[serde(default)]
    rule: Vec<crate::rules::checks::RuleDef>,
    /// Probes of the components the configuration names.
    #[serde(default)]
    probe: Vec<crate::probes::ProbeDef>,
}

pub fn checks() -> Value {
    serde_json::to_value(schemars::schema_for!(ChecksFile)).expect("schema serializes")
}

/// `(file under schemas/, schema)` for every generated schema.
pub fn all() -> Vec<(&'static str, Value)> {
    vec![
        ("report.schema.json", report()),
        ("manifest.schema.json", manifest()),
        ("checks.schema.json", checks()),
    ]
}
