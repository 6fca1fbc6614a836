//! `--format sarif`: SARIF 2.1.0, for GitHub code scanning and other SARIF
//! viewers. One run; only `fail`, `warn` and `blocked` results become SARIF
//! results (passes are not findings). Levels: fail → `error`, warn →
//! `warning`, blocked → `note` (a blocked check is a consequence; its root
//! cause is reported as an error).
//!
//! One rule per kind of problem: the diagnostic code (`schema/unit`), else
//! category and probe kind (`probe/postgres`), else the category. A result
//! with a file to blame gets a `physicalLocation`; every result names its
//! environment and check in a `logicalLocation` and in `properties`.

use indexmap::IndexMap;
use serde_json::{Value, json};

use super::text::{category, grouped, rule_id};
use super::{Reporter, Style};
use crate::outcome::{CheckResult, Report, Status};

pub struct Sarif;

pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

impl Reporter for Sarif {
    fn render(&self, report: &Report, _style: Style) -> String {
        let mut rules: IndexMap<String, Value> = IndexMap::new();
        let mut results = Vec::new();
        for g in grouped(report, |r| level(r.status).is_some()) {
            let r = g.result;
            let Some(level) = level(r.status) else {
                continue;
            };
            let id = rule_id(r);
            let index = match rules.get_index_of(&id) {
                Some(i) => i,
                None => {
                    rules.insert(id.clone(), rule(&id, r));
                    rules.len() - 1
                }
            };
            results.push(result(&g.envs, r, &id, index, level));
        }
        let mut driver = json!({
            "name": report.tool.name,
            "version": report.tool.version,
            "semanticVersion": report.tool.version,
        });
        if !env!("CARGO_PKG_REPOSITORY").is_empty() {
            driver["informationUri"] = env!("CARGO_PKG_REPOSITORY").into();
        }
        driver["rules"] = rules.into_values().collect::<Vec<_>>().into();
        let sarif = json!({
            "$schema": SCHEMA,
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": driver},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }],
        });
        let mut s = serde_json::to_string_pretty(&sarif).expect("SARIF serializes");
        s.push('\n');
        s
    }
}

fn level(s: Status) -> Option<&'static str> {
    match s {
        Status::Fail => Some("error"),
        Status::Warn => Some("warning"),
        Status::Blocked => Some("note"),
        Status::Pass | Status::Flaky | Status::Skipped => None,
    }
}

fn rule(id: &str, first: &CheckResult) -> Value {
    let what = match first.category {
        crate::findings::Category::Probe => "a component this configuration names is not ready",
        crate::findings::Category::Isolation => "the configuration crosses into another environment",
        crate::findings::Category::Rule => "a configuration rule does not hold",
        crate::findings::Category::Schema => "the configuration does not match its schema",
        crate::findings::Category::Config => "the configuration cannot be assembled",
    };
    let mut rule = json!({
        "id": id,
        "shortDescription": {"text": format!("{id}: {what}")},
        "fullDescription": {"text": format!("envgate {} check `{id}`: {what}.", category(first.category))},
        "defaultConfiguration": {"level": if first.status == Status::Warn { "warning" } else { "error" }},
        "properties": {"category": category(first.category)},
    });
    // SARIF wants `name` to differ from `id` (SARIF1001), so `isolation`
    // gets none rather than `Isolation`.
    let name = pascal(id);
    if !name.eq_ignore_ascii_case(id) {
        rule["name"] = name.into();
    }
    rule
}

/// One SARIF result for a problem, however many environments it affects.
fn result(envs: &[&str], r: &CheckResult, rule_id: &str, rule_index: usize, level: &str) -> Value {
    let env = envs.join(", ");
    let mut text = format!("[{env}] {}", r.message);
    if r.status == Status::Blocked {
        text = format!("[{env}] blocked: {}", r.message);
    }
    if let Some(h) = &r.help {
        text.push_str(&format!("\nhelp: {h}"));
    }
    let mut location = serde_json::Map::new();
    if let Some(l) = &r.location {
        location.insert(
            "physicalLocation".into(),
            json!({
                "artifactLocation": {"uri": uri(&l.file)},
                "region": {"startLine": l.line, "startColumn": l.column},
            }),
        );
    }
    location.insert(
        "logicalLocations".into(),
        envs.iter()
            .map(|e| json!({"name": r.name, "fullyQualifiedName": format!("{e}/{}", r.id), "kind": "resource"}))
            .collect::<Vec<_>>()
            .into(),
    );
    let mut properties = serde_json::Map::new();
    properties.insert("environment".into(), env.into());
    properties.insert("environments".into(), envs.to_vec().into());
    properties.insert("check".into(), r.id.clone().into());
    properties.insert("status".into(), r.status.as_str().into());
    for (k, v) in [("kind", &r.kind), ("key", &r.key), ("target", &r.target)] {
        if let Some(v) = v {
            properties.insert(k.into(), v.clone().into());
        }
    }
    if let Some(a) = r.attempts {
        properties.insert("attempts".into(), a.into());
    }
    if let Some(d) = r.duration_ms {
        properties.insert("duration_ms".into(), d.into());
    }
    json!({
        "ruleId": rule_id,
        "ruleIndex": rule_index,
        "level": level,
        "message": {"text": text},
        "locations": [location],
        "properties": properties,
    })
}

/// `schema/unknown-key` → `SchemaUnknownKey`, SARIF's friendly rule name.
fn pascal(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|c| c.to_ascii_uppercase().to_string() + cs.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A relative path as a URI reference: percent-encode all but unreserved
/// characters and `/`.
fn uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn only_problems_become_results_with_their_locations() {
        let v: Value = serde_json::from_str(&Sarif.render(&fixture::report(), fixture::style())).unwrap();
        let results = v["runs"][0]["results"].as_array().unwrap();
        let levels: Vec<_> = results.iter().map(|r| r["level"].as_str().unwrap()).collect();
        assert_eq!(levels, ["error", "warning", "error", "error", "error", "note", "error"]);
        let first = &results[0]["locations"][0]["physicalLocation"];
        assert_eq!(first["artifactLocation"]["uri"], "environments/prod.toml");
        assert_eq!(first["region"]["startLine"], 2);
        assert_eq!(first["region"]["startColumn"], 11);
        assert_eq!(results[0]["ruleId"], "schema/unit");
    }

    #[test]
    fn uris_are_percent_encoded() {
        assert_eq!(uri("environments/my env#1.toml"), "environments/my%20env%231.toml");
        assert_eq!(pascal("schema/unknown-key"), "SchemaUnknownKey");
    }
}
