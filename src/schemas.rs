//! JSON Schemas of envgate's own formats, generated from the types and
//! checked in under `schemas/`; a test fails when code and files drift.

use serde_json::Value;

pub fn report() -> Value {
    serde_json::to_value(schemars::schema_for!(crate::report::model::Report)).expect("schema serializes")
}

pub fn manifest() -> Value {
    serde_json::to_value(schemars::schema_for!(crate::config::manifest::Manifest)).expect("schema serializes")
}

/// `(file under schemas/, schema)` for every generated schema.
pub fn all() -> Vec<(&'static str, Value)> {
    vec![("report.schema.json", report()), ("manifest.schema.json", manifest())]
}
