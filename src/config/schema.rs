//! The project's JSON Schema (draft 2020-12): strictness, units, secrets,
//! type coercion of text values, and validation with every error mapped back
//! to the line that set the failing value.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value as Json;

use super::assemble::Assembled;
use super::merge::{Leaf, Node, key_string};
use super::project::{ReadError, parse_problem, read_source};
use super::suggest::did_you_mean;
use super::tree::{self, Entry, Format, SourceFile, Tree};
use super::units::{self, Unit};
use crate::diagnostic::Problem;
use crate::findings::{Category, Finding};

/// Called with a leaf's path, its subschema (if the schema declares it) and the leaf.
type LeafVisitor<'f, 's, 'n> = dyn FnMut(&[String], Option<&'s Json>, &'n Leaf) + 'f;

pub struct Schema {
    pub json: Json,
    pub file: Arc<SourceFile>,
    validator: jsonschema::Validator,
}

impl Schema {
    pub fn load(root: &Path, rel: &str, manifest: &Arc<SourceFile>) -> Result<Schema, Vec<Problem>> {
        let file = match read_source(root, rel) {
            Ok(f) => f,
            Err(ReadError::Missing) => {
                let mut p = Problem::new("envgate::schema::missing", format!("schema {rel} does not exist"))
                    .help("fix `project.schema` in envgate.toml, or create the schema");
                if let Some(i) = manifest.text.find(&format!("\"{rel}\"")) {
                    p = p.at(manifest, i, rel.len() + 2).label("named here");
                }
                return Err(vec![p]);
            }
            Err(ReadError::Other(p)) => return Err(vec![p]),
        };
        if file.text.trim().is_empty() {
            return Err(vec![
                Problem::new("envgate::schema::invalid", format!("schema {rel} is empty"))
                    .help("a schema is a JSON object, e.g. {\"type\": \"object\", \"properties\": {}}"),
            ]);
        }
        let format = Format::from_path(rel).unwrap_or(Format::Json);
        let spans = tree::parse(&file, format, "schema").map_err(|f| vec![parse_problem(&file, format, f)])?;
        let spans = Tree::Table(spans);
        let json = spans.to_json();
        let at = |pointer: &str| -> Option<&Entry> { spans.deepest(&pointer_segments(pointer)) };
        // Meta-validation first: every problem in the schema, located.
        let meta = jsonschema::draft202012::meta::validator();
        let problems: Vec<Problem> = meta
            .iter_errors(&json)
            .map(|e| {
                let ptr = e.instance_path().as_str().to_string();
                let mut p = Problem::new(
                    "envgate::schema::invalid",
                    format!(
                        "schema {rel} is not a valid JSON Schema: {e} (at {})",
                        if ptr.is_empty() { "/" } else { &ptr }
                    ),
                )
                .label(e.to_string());
                if let Some(entry) = at(&ptr) {
                    p = p.at_origin(&entry.origin);
                }
                p
            })
            .collect();
        if !problems.is_empty() {
            return Err(problems);
        }
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&json)
            .map_err(|e| {
                vec![Problem::new("envgate::schema::invalid", format!("schema {rel} cannot be compiled: {e}"))
                    .help("envgate resolves only references inside the schema file (`#/$defs/...`); remote $refs are never fetched")]
            })?;
        Ok(Schema { json, file, validator })
    }

    /// The subschema for a key path, following local `$ref`s, `properties`,
    /// `patternProperties`, `additionalProperties` and `allOf`.
    pub fn sub(&self, path: &[String]) -> Option<&Json> {
        let mut cur = self.deref(&self.json);
        for seg in path {
            cur = self.child(cur, seg)?;
        }
        Some(cur)
    }

    fn deref<'a>(&'a self, mut s: &'a Json) -> &'a Json {
        for _ in 0..32 {
            match s.get("$ref").and_then(Json::as_str).and_then(|r| r.strip_prefix('#')) {
                Some(ptr) => match self.json.pointer(ptr) {
                    Some(t) => s = t,
                    None => return s,
                },
                None => return s,
            }
        }
        s
    }

    fn child<'a>(&'a self, s: &'a Json, key: &str) -> Option<&'a Json> {
        if let Some(p) = s.get("properties").and_then(|p| p.get(key)) {
            return Some(self.deref(p));
        }
        if let Some(pp) = s.get("patternProperties").and_then(Json::as_object) {
            for (pat, sub) in pp {
                if regex::Regex::new(pat).is_ok_and(|r| r.is_match(key)) {
                    return Some(self.deref(sub));
                }
            }
        }
        if let Some(all) = s.get("allOf").and_then(Json::as_array) {
            for a in all {
                if let Some(found) = self.child(self.deref(a), key) {
                    return Some(found);
                }
            }
        }
        match s.get("additionalProperties") {
            Some(ap @ Json::Object(_)) => Some(self.deref(ap)),
            _ => None,
        }
    }

    fn is_secret(s: &Json) -> bool {
        s.get("writeOnly").and_then(Json::as_bool) == Some(true)
            || s.get("x-secret").and_then(Json::as_bool) == Some(true)
    }

    /// Mark leaves the schema calls secret (and every leaf under a table it
    /// calls secret) and teach the redactor their values.
    pub fn mark_secrets(&self, a: &mut Assembled) {
        let mut found = Vec::new();
        self.mark(&mut a.root, Some(&self.json), false, &mut found);
        for s in found {
            a.redactor.add(&s);
        }
    }

    fn mark(&self, node: &mut Node, sub: Option<&Json>, inherited: bool, found: &mut Vec<String>) {
        let sub = sub.map(|s| self.deref(s));
        let secret = inherited || sub.is_some_and(Self::is_secret);
        match node {
            Node::Leaf(l) if secret => {
                l.secret = true;
                collect_strings(&l.value, &mut |s| found.push(s.to_string()));
                super::secrets::mask_cli_origin(&mut l.origin);
                for (old, o) in &mut l.history {
                    collect_strings(old, &mut |s| found.push(s.to_string()));
                    super::secrets::mask_cli_origin(o);
                }
            }
            Node::Leaf(_) => {}
            Node::Table { children, .. } => {
                for (k, c) in children.iter_mut() {
                    self.mark(c, sub.and_then(|s| self.child(s, k)), secret, found);
                }
            }
        }
    }

    /// Visit every leaf with its subschema, without building paths.
    fn walk_mut(&self, node: &mut Node, sub: Option<&Json>, f: &mut dyn FnMut(Option<&Json>, &mut Leaf)) {
        match node {
            Node::Leaf(l) => f(sub, l),
            Node::Table { children, .. } => {
                let sub = sub.map(|s| self.deref(s));
                for (k, c) in children.iter_mut() {
                    self.walk_mut(c, sub.and_then(|s| self.child(s, k)), f);
                }
            }
        }
    }

    /// Visit every leaf with its path and subschema.
    fn walk<'n, 's>(
        &'s self,
        node: &'n Node,
        sub: Option<&'s Json>,
        path: &mut Vec<String>,
        f: &mut LeafVisitor<'_, 's, 'n>,
    ) {
        match node {
            Node::Leaf(l) => f(path, sub, l),
            Node::Table { children, .. } => {
                let sub = sub.map(|s| self.deref(s));
                for (k, c) in children {
                    path.push(k.clone());
                    self.walk(c, sub.and_then(|s| self.child(s, k)), path, f);
                    path.pop();
                }
            }
        }
    }

    /// Text values from env vars, dotenv, `--set` and interpolation take the
    /// type the schema asks for.
    pub fn coerce(&self, a: &mut Assembled) {
        self.walk_mut(&mut a.root, Some(&self.json), &mut |sub, l| {
            let Some(sub) = sub else { return };
            if !l.coercible {
                return;
            }
            let Json::String(s) = &l.value else { return };
            let types = types_of(sub);
            if types.iter().any(|t| t == "string") {
                return;
            }
            if let Some(v) = coerce_text(s.trim(), &types) {
                l.value = v;
            }
        });
    }

    /// Every schema problem of one environment: units, unknown keys, then
    /// the JSON Schema itself. All of them, not just the first.
    pub fn validate(&self, a: &Assembled) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut unit_paths: Vec<Vec<String>> = Vec::new();

        // Units
        let mut with_units = Vec::new();
        self.walk(&a.root, Some(&self.json), &mut Vec::new(), &mut |path, sub, leaf| {
            if let Some(sub) = sub
                && let Some(unit) = sub.get("x-unit").and_then(Json::as_str).and_then(Unit::from_schema)
            {
                with_units.push((path.to_vec(), sub, unit, leaf));
            }
        });
        for (path, sub, unit, leaf) in with_units {
            if let Err(e) = units::check(unit, &leaf.value, sub.get("x-minimum"), sub.get("x-maximum")) {
                let key = key_string(&path);
                let mut p =
                    Problem::new("envgate::schema::unit", format!("`{key}`: {}", e.message)).label(e.message.clone());
                if let Some(h) = e.help {
                    p = p.help(h);
                }
                findings.push(Finding::new(
                    Category::Schema,
                    format!("schema/{key}"),
                    Some(key),
                    p.at_origin(&leaf.origin),
                ));
                unit_paths.push(path);
            }
        }

        // Unknown keys (strict unless the schema allows more)
        self.unknown_keys(&a.root, &mut Vec::new(), &mut findings);

        // JSON Schema
        let instance = a.root.to_json();
        for err in self.validator.iter_errors(&instance) {
            if matches!(
                err.kind(),
                jsonschema::error::ValidationErrorKind::AdditionalProperties { .. }
            ) {
                continue; // reported above, with a suggestion
            }
            let segs = pointer_segments(err.instance_path().as_str());
            if unit_paths.iter().any(|u| segs.starts_with(u)) {
                continue;
            }
            if let jsonschema::error::ValidationErrorKind::Required { property } = err.kind() {
                let prop = property.as_str().unwrap_or_default().to_string();
                findings.push(self.missing(a, &segs, &prop));
                continue;
            }
            // Map to the deepest node that exists: a leaf, or the table.
            let (key_path, origin, secret) = deepest(&a.root, &segs);
            let key = key_string(&key_path);
            let msg = if secret {
                err.masked_with("***").to_string()
            } else {
                err.to_string()
            };
            let mut p = Problem::new(
                format!("envgate::schema::{}", err.kind().keyword()),
                if key.is_empty() {
                    msg.clone()
                } else {
                    format!("`{key}`: {msg}")
                },
            )
            .label(msg);
            if let Some(d) = self
                .sub(&key_path)
                .and_then(|s| s.get("description"))
                .and_then(Json::as_str)
            {
                p = p.help(format!("`{key}`: {d}"));
            }
            if let Some(o) = origin {
                p = p.at_origin(&o);
            }
            let id = if key.is_empty() {
                "schema".to_string()
            } else {
                format!("schema/{key}")
            };
            findings.push(Finding::new(Category::Schema, id, (!key.is_empty()).then_some(key), p));
        }
        findings
    }

    fn missing(&self, a: &Assembled, table: &[String], prop: &str) -> Finding {
        let mut full = table.to_vec();
        full.push(prop.to_string());
        let key = key_string(&full);
        let header = if table.is_empty() {
            "the top level".to_string()
        } else {
            format!("[{}]", key_string(table))
        };
        let mut p = Problem::new(
            "envgate::schema::required",
            format!("`{key}` is required but not set in `{}`", a.env),
        )
        .label(format!("`{prop}` belongs in {header}"));
        // Point at the table in this environment's overlay if it opens it,
        // else wherever the table was opened, else the overlay itself.
        let origins = match a.root.get(table) {
            Some(Node::Table { origins, .. }) => origins.clone(),
            _ => Vec::new(),
        };
        let own = origins.iter().rev().find(|o| o.layer == a.env).or(origins.last());
        p = match own {
            Some(o) => p.at_origin(o),
            None => p.at(&a.overlay, 0, 0),
        };
        let hint = match self
            .sub(&full)
            .and_then(|s| s.get("description"))
            .and_then(Json::as_str)
        {
            Some(d) => format!("add `{prop} = ...` under {header} in {} ({d})", a.overlay.name),
            None => format!("add `{prop} = ...` under {header} in {}", a.overlay.name),
        };
        Finding::new(Category::Schema, format!("schema/{key}"), Some(key), p.help(hint))
    }

    fn unknown_keys(&self, node: &Node, path: &mut Vec<String>, out: &mut Vec<Finding>) {
        let Node::Table { children, .. } = node else { return };
        let Some(sub) = self.sub(path) else { return };
        let strict = sub.get("properties").is_some()
            && !matches!(
                sub.get("additionalProperties"),
                Some(Json::Bool(true) | Json::Object(_))
            );
        let props: Vec<&str> = self.all_properties(sub);
        for (k, child) in children {
            path.push(k.clone());
            if strict && self.sub(path).is_none() {
                let key = key_string(path);
                let origin = match child {
                    Node::Leaf(l) => Some(l.origin.clone()),
                    Node::Table { origins, .. } => origins.last().cloned(),
                };
                let mut p = Problem::new("envgate::schema::unknown-key", format!("unknown key `{key}`"))
                    .label("not in the schema");
                p = match did_you_mean(k, props.iter().copied()) {
                    Some(best) => p.help(format!("did you mean `{best}`?")),
                    None => p.help(format!(
                        "the schema allows: {}",
                        if props.is_empty() {
                            "no keys here".to_string()
                        } else {
                            props.join(", ")
                        }
                    )),
                };
                if let Some(o) = origin {
                    p = p.at_origin(&o);
                }
                out.push(Finding::new(Category::Schema, format!("schema/{key}"), Some(key), p));
            } else {
                self.unknown_keys(child, path, out);
            }
            path.pop();
        }
    }

    fn all_properties<'a>(&'a self, s: &'a Json) -> Vec<&'a str> {
        let mut out: Vec<&str> = s
            .get("properties")
            .and_then(Json::as_object)
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        if let Some(all) = s.get("allOf").and_then(Json::as_array) {
            for a in all {
                out.extend(self.all_properties(self.deref(a)));
            }
        }
        out
    }

    /// The root of the schema, for walks that follow the tree.
    pub fn root(&self) -> &Json {
        &self.json
    }

    /// The subschema of `key` under `parent` (already resolved).
    pub fn child_of<'a>(&'a self, parent: &'a Json, key: &str) -> Option<&'a Json> {
        self.child(self.deref(parent), key)
    }

    /// The `x-unit` of a key, if it declares one.
    pub fn unit_of(&self, path: &[String]) -> Option<Unit> {
        self.sub(path)?
            .get("x-unit")
            .and_then(Json::as_str)
            .and_then(Unit::from_schema)
    }
}

fn pointer_segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn coerce_text(t: &str, types: &[String]) -> Option<Json> {
    let has = |name: &str| types.iter().any(|t| t == name);
    if has("integer")
        && let Ok(i) = t.parse::<i64>()
    {
        return Some(Json::from(i));
    }
    if has("number")
        && let Some(n) = t.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
    {
        return Some(Json::Number(n));
    }
    if has("boolean") {
        match t.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => return Some(Json::Bool(true)),
            "false" | "no" | "off" | "0" => return Some(Json::Bool(false)),
            _ => {}
        }
    }
    if has("array") || has("object") {
        return serde_json::from_str::<Json>(t).ok();
    }
    None
}

fn types_of(s: &Json) -> Vec<String> {
    match s.get("type") {
        Some(Json::String(t)) => vec![t.clone()],
        Some(Json::Array(a)) => a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

fn collect_strings(v: &Json, f: &mut dyn FnMut(&str)) {
    match v {
        Json::String(s) => f(s),
        Json::Array(a) => a.iter().for_each(|x| collect_strings(x, f)),
        Json::Object(o) => o.values().for_each(|x| collect_strings(x, f)),
        Json::Number(n) => f(&n.to_string()),
        _ => {}
    }
}

fn deepest(root: &Node, segs: &[String]) -> (Vec<String>, Option<super::tree::Origin>, bool) {
    let mut cur = root;
    let mut path = Vec::new();
    let mut origin = None;
    for s in segs {
        match cur {
            Node::Table { children, .. } => match children.get(s) {
                Some(c) => {
                    path.push(s.clone());
                    cur = c;
                    origin = match c {
                        Node::Leaf(l) => Some(l.origin.clone()),
                        Node::Table { origins, .. } => origins.last().cloned(),
                    };
                }
                None => break,
            },
            Node::Leaf(_) => break,
        }
    }
    let secret = matches!(cur, Node::Leaf(l) if l.secret);
    (path, origin, secret)
}
