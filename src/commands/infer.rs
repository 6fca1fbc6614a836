//! `envgate schema infer`: a starting JSON Schema (draft 2020-12) from the
//! environments a project already has. Values are read, never written out,
//! except the few words of an inferred `enum` (never a secret's).

use std::io::Write;

use indexmap::IndexMap;
use serde_json::{Map, Value as Json, json};

use super::io;
use crate::config::merge::Node;
use crate::config::project::Project;
use crate::config::secrets::is_secret_name;
use crate::config::units::{parse_bytes, parse_duration};
use crate::diagnostic::Problems;
use crate::exit_codes;

/// At most this many distinct words make an `enum`.
const ENUM_MAX: usize = 5;

pub fn infer(p: &Project, envs: &[String], out: &mut dyn Write) -> Result<i32, Problems> {
    let envs = if envs.is_empty() {
        p.environments.clone()
    } else {
        let mut v = Vec::new();
        for e in envs
            .iter()
            .flat_map(|e| e.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            if !p.environments.iter().any(|x| x == e) {
                return Err(p.unknown_env(e).into());
            }
            v.push(e.to_string());
        }
        v
    };
    let mut roots = Vec::new();
    for env in &envs {
        roots.push(p.assemble(env, &[])?.root);
    }
    let nodes: Vec<&Node> = roots.iter().collect();
    let mut schema = Map::new();
    schema.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
    schema.insert(
        "title".into(),
        json!(format!(
            "{} configuration (inferred by envgate from {})",
            p.manifest.project.name,
            envs.join(", ")
        )),
    );
    if let Json::Object(body) = table(&nodes) {
        schema.extend(body);
    }
    let mut text = serde_json::to_string_pretty(&Json::Object(schema)).expect("a schema serializes");
    text.push('\n');
    out.write_all(text.as_bytes()).map_err(io)?;
    Ok(exit_codes::OK)
}

/// The tables of one place, one per environment that has it.
fn table(nodes: &[&Node]) -> Json {
    let mut keys: IndexMap<&str, Vec<&Node>> = IndexMap::new();
    for n in nodes {
        if let Node::Table { children, .. } = n {
            for (k, c) in children {
                keys.entry(k.as_str()).or_default().push(c);
            }
        }
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (k, children) in &keys {
        if children.len() == nodes.len() {
            required.push(json!(k));
        }
        properties.insert((*k).to_string(), property(k, children, nodes.len()));
    }
    let mut s = Map::new();
    s.insert("type".into(), json!("object"));
    s.insert("properties".into(), Json::Object(properties));
    if !required.is_empty() {
        s.insert("required".into(), Json::Array(required));
    }
    Json::Object(s)
}

fn property(key: &str, nodes: &[&Node], envs: usize) -> Json {
    let tables: Vec<&Node> = nodes
        .iter()
        .copied()
        .filter(|n| matches!(n, Node::Table { .. }))
        .collect();
    if tables.len() == nodes.len() {
        return table(&tables);
    }
    let mut secret = is_secret_name(key);
    let mut values = Vec::new();
    for n in nodes {
        match n {
            Node::Leaf(l) => {
                secret |= l.secret;
                values.push(l.value.clone());
            }
            // A table in one environment and a value in another: say nothing.
            Node::Table { .. } => return json!({}),
        }
    }
    let mut s = leaf(key, &values, secret, envs);
    if secret {
        s.insert("writeOnly".into(), json!(true));
    }
    Json::Object(s)
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn leaf(key: &str, values: &[Json], secret: bool, envs: usize) -> Map<String, Json> {
    let mut s = Map::new();
    let mut types: Vec<&str> = values.iter().map(type_name).collect();
    types.sort_unstable();
    types.dedup();
    // Integers and fractions together are numbers.
    if types == ["integer", "number"] {
        types = vec!["number"];
    }
    match types.as_slice() {
        [one] => {
            s.insert("type".into(), json!(one));
        }
        many => {
            s.insert("type".into(), json!(many));
            return s;
        }
    }
    match types[0] {
        "string" => {
            let texts: Vec<&str> = values.iter().filter_map(Json::as_str).collect();
            let unit_text = |t: &&str| {
                t.chars().any(|c| c.is_ascii_alphabetic()) && t.chars().next().is_some_and(|c| c.is_ascii_digit())
            };
            if !secret && texts.iter().all(unit_text) {
                if texts.iter().all(|t| parse_duration(t).is_some()) {
                    s.insert("x-unit".into(), json!("duration"));
                    return s;
                }
                if texts.iter().all(|t| parse_bytes(t).is_some()) {
                    s.insert("x-unit".into(), json!("bytes"));
                    return s;
                }
            }
            let mut distinct: Vec<&str> = texts.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let word = |t: &&str| {
                !t.is_empty() && t.len() <= 24 && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            };
            if !secret
                && distinct.len() >= 2
                && distinct.len() < envs
                && distinct.len() <= ENUM_MAX
                && distinct.iter().all(word)
            {
                s.insert("enum".into(), json!(distinct));
            }
        }
        "integer" => {
            if let Some(unit) = integer_unit(key) {
                s.insert("x-unit".into(), json!(unit));
            }
        }
        "array" => {
            let mut item_types: Vec<&str> = values
                .iter()
                .filter_map(Json::as_array)
                .flatten()
                .map(type_name)
                .collect();
            item_types.sort_unstable();
            item_types.dedup();
            if let [one] = item_types.as_slice()
                && *one != "object"
                && *one != "array"
            {
                s.insert("items".into(), json!({"type": one}));
            }
        }
        _ => {}
    }
    s
}

/// `timeout_ms` counts milliseconds, `ttl_seconds` seconds, `max_bytes` bytes.
fn integer_unit(key: &str) -> Option<&'static str> {
    let k = key.to_ascii_lowercase();
    [
        ("_ms", "ms"),
        ("_millis", "ms"),
        ("_milliseconds", "ms"),
        ("_seconds", "s"),
        ("_secs", "s"),
        ("_sec", "s"),
        ("_s", "s"),
        ("_minutes", "m"),
        ("_mins", "m"),
        ("_hours", "h"),
        ("_bytes", "B"),
        ("_kib", "KiB"),
        ("_mib", "MiB"),
        ("_gib", "GiB"),
    ]
    .iter()
    .find(|(suffix, _)| k.ends_with(suffix))
    .map(|(_, unit)| *unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_units_come_from_the_key_name() {
        assert_eq!(integer_unit("statement_timeout_ms"), Some("ms"));
        assert_eq!(integer_unit("ttl_seconds"), Some("s"));
        assert_eq!(integer_unit("max_body_bytes"), Some("B"));
        assert_eq!(integer_unit("pool_size"), None);
    }

    #[test]
    fn a_few_words_across_environments_are_an_enum_and_hosts_are_not() {
        let v = |xs: &[&str]| xs.iter().map(|x| json!(x)).collect::<Vec<_>>();
        let levels = leaf("log_level", &v(&["debug", "info", "info"]), false, 3);
        assert_eq!(levels["enum"], json!(["debug", "info"]));
        let urls = leaf(
            "url",
            &v(&["redis://a:6379", "redis://b:6379", "redis://c:6379"]),
            false,
            3,
        );
        assert!(!urls.contains_key("enum"));
        let secret = leaf("mode", &v(&["a", "b", "b"]), true, 3);
        assert!(!secret.contains_key("enum"), "a secret's values are never written");
        let timeouts = leaf("timeout", &v(&["30s", "1m", "250ms"]), false, 3);
        assert_eq!(timeouts["x-unit"], json!("duration"));
        let sizes = leaf("max_body", &v(&["1MiB", "512KiB"]), false, 3);
        assert_eq!(sizes["x-unit"], json!("bytes"));
    }
}
