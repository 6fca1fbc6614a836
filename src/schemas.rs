//! JSON Schemas of envgate's own formats, generated from the types and
//! checked in under `schemas/`; a test fails when code and files drift.

use serde_json::Value;

pub fn report() -> Value {
    serde_json::to_value(schemars::schema_for!(crate::outcome::Report)).expect("schema serializes")
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
    probe: Vec<ProbeTable>,
}

/// A `[[probe]]` table: the common fields, and the parameters of its kind
/// (each kind's own parameter struct says which).
struct ProbeTable;

impl schemars::JsonSchema for ProbeTable {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ProbeDef".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let common =
            serde_json::to_value(generator.root_schema_for::<crate::probes::def::Common>()).expect("schema serializes");
        // The common fields refer to this by `$ref`: define it in the file's `$defs`.
        generator.subschema_for::<crate::probes::def::SeverityName>();
        let mut properties = common["properties"].clone();
        properties["kind"]["enum"] = crate::probes::KINDS.iter().map(|k| Value::from(k.name)).collect();
        let per_kind: Vec<Value> = crate::probes::KINDS
            .iter()
            .map(|k| {
                let params = serde_json::to_value((k.params)()).expect("schema serializes");
                serde_json::json!({
                    "if": {"properties": {"kind": {"const": k.name}}, "required": ["kind"]},
                    "then": {"properties": params.get("properties").cloned().unwrap_or_else(|| serde_json::json!({}))},
                })
            })
            .collect();
        schemars::json_schema!({
            "description": "A probe: the common fields, and the parameters of its kind.",
            "type": "object",
            "required": ["kind"],
            "properties": properties,
            "allOf": per_kind,
            "unevaluatedProperties": false,
        })
    }
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
