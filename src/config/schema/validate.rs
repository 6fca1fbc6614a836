//! One environment's schema findings: units, unknown keys, then every error
//! the JSON Schema validator reports, each at the line and column that set
//! the value (inside arrays too). The verdict is the validator's; strictness
//! only adds unknown-key findings, each for a name no subschema at that
//! location declares.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use jsonschema::error::ValidationErrorKind;
use serde_json::Value as Json;

use super::docs::UNREACHABLE_KEYWORD;
use super::graph::NodeId;
use super::load::{Schema, pointer_segments};
use crate::config::assemble::Assembled;
use crate::config::merge::{Leaf, Node, key_string};
use crate::config::parse;
use crate::config::spanned::{MAX_DEPTH, Spanned};
use crate::config::suggest::did_you_mean;
use crate::config::units;
use crate::diagnostic::Problem;
use crate::findings::{Category, Finding};
use crate::source::{Loc, Origin};

/// A value in the assembled configuration: a table or leaf of the layered
/// tree, or a part of a leaf's value (an item of an array, a nested object).
#[derive(Clone, Copy)]
enum At<'a> {
    Node(&'a Node),
    Json(&'a Json, &'a Leaf),
}

struct Walk<'s, 'a> {
    schema: &'s Schema,
    arena: Vec<NodeId>,
    /// Path segments and whether each one is an array index.
    path: Vec<String>,
    index: Vec<bool>,
    findings: Vec<Finding>,
    unit_paths: Vec<Vec<String>>,
    unknown: HashSet<Vec<String>>,
    locator: Locator,
    a: &'a Assembled,
}

impl Schema {
    /// Every schema problem of one environment, all of them at once.
    pub fn validate(&self, a: &Assembled) -> Vec<Finding> {
        let mut w = Walk {
            schema: self,
            arena: Vec::new(),
            path: Vec::new(),
            index: Vec::new(),
            findings: Vec::new(),
            unit_paths: Vec::new(),
            unknown: HashSet::new(),
            locator: Locator::default(),
            a,
        };
        let set = self.graph.at_path(&mut w.arena, &[]);
        w.visit(At::Node(&a.root), set, 0);

        let instance = a.root.to_json();
        for err in self.validator.iter_errors(&instance) {
            let segs = pointer_segments(err.instance_path().as_str());
            if w.unit_paths.iter().any(|u| segs.starts_with(u)) {
                continue;
            }
            match err.kind() {
                ValidationErrorKind::AdditionalProperties { unexpected }
                | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                    for name in unexpected {
                        let mut path = segs.clone();
                        path.push(name.clone());
                        w.unexpected(&instance, &err, path);
                    }
                }
                ValidationErrorKind::Required { property } => {
                    let prop = property.as_str().unwrap_or_default().to_string();
                    let f = w.missing(&instance, &segs, &prop);
                    w.findings.push(f);
                }
                _ => {
                    let f = w.error(&instance, &segs, &err);
                    w.findings.push(f);
                }
            }
        }
        w.findings
    }
}

impl<'a> Walk<'_, 'a> {
    fn visit(&mut self, at: At<'a>, set: Range<usize>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let g = &self.schema.graph;
        match at {
            At::Node(Node::Table { children, .. }) => {
                let strict = self.schema.options.strict && g.strict_at(&self.arena[set.clone()]);
                for (k, c) in children {
                    let from = self.arena.len();
                    let declared = g.property(&mut self.arena, set.clone(), k);
                    self.push(k, false);
                    // `$schema` at the top of a document names its schema
                    // for editors; it is not a setting.
                    let convention = depth == 0 && k == "$schema";
                    if strict && !declared && !convention {
                        let origin = match c {
                            Node::Leaf(l) => Some(l.origin.clone()),
                            Node::Table { origins, .. } => origins.last().cloned(),
                        };
                        self.unknown_key(&set, origin);
                    } else {
                        self.visit(At::Node(c), from..self.arena.len(), depth + 1);
                    }
                    self.pop();
                    self.arena.truncate(from);
                }
            }
            At::Node(Node::Leaf(l)) => {
                self.units(&l.value, l, set.clone());
                self.visit(At::Json(&l.value, l), set, depth + 1);
            }
            At::Json(Json::Object(o), leaf) => {
                let strict = self.schema.options.strict && g.strict_at(&self.arena[set.clone()]);
                for (k, v) in o {
                    let from = self.arena.len();
                    let declared = g.property(&mut self.arena, set.clone(), k);
                    self.push(k, false);
                    if strict && !declared {
                        let origin = self.inside(leaf, true);
                        self.unknown_key(&set, Some(origin));
                    } else {
                        let child = from..self.arena.len();
                        self.units(v, leaf, child.clone());
                        self.visit(At::Json(v, leaf), child, depth + 1);
                    }
                    self.pop();
                    self.arena.truncate(from);
                }
            }
            At::Json(Json::Array(items), leaf) => {
                for (i, v) in items.iter().enumerate() {
                    let from = self.arena.len();
                    g.item(&mut self.arena, set.clone(), i);
                    self.push(&i.to_string(), true);
                    let child = from..self.arena.len();
                    self.units(v, leaf, child.clone());
                    self.visit(At::Json(v, leaf), child, depth + 1);
                    self.pop();
                    self.arena.truncate(from);
                }
            }
            At::Json(..) => {}
        }
    }

    fn push(&mut self, seg: &str, index: bool) {
        self.path.push(seg.to_string());
        self.index.push(index);
    }

    fn pop(&mut self) {
        self.path.pop();
        self.index.pop();
    }

    fn key(&self) -> String {
        display(&self.path, &self.index)
    }

    /// The origin of the current path inside `leaf`'s value.
    fn inside(&mut self, leaf: &Leaf, key: bool) -> Origin {
        self.locator.refine(&leaf.origin, &self.path, key)
    }

    /// A unit the schema declares for the current path (value at `at`).
    fn units(&mut self, value: &Json, leaf: &Leaf, set: Range<usize>) {
        let g = &self.schema.graph;
        let s = &self.arena[set];
        let Some(unit) = g.fact(s, |f| f.unit) else { return };
        let min = g.fact(s, |f| f.x_minimum.as_ref());
        let max = g.fact(s, |f| f.x_maximum.as_ref());
        if let Err(e) = units::check(unit, value, min, max) {
            let key = self.key();
            let origin = if std::ptr::eq(value, &leaf.value) {
                leaf.origin.clone()
            } else {
                self.inside(leaf, false)
            };
            let mut p =
                Problem::new("envgate::schema::unit", format!("`{key}`: {}", e.message)).label(e.message.clone());
            if let Some(h) = e.help {
                p = p.help(h);
            }
            self.findings.push(Finding::new(
                Category::Schema,
                format!("schema/{key}"),
                Some(key),
                p.at_origin(&origin),
            ));
            self.unit_paths.push(self.path.clone());
        }
    }

    /// The current path is a name no subschema of its object declares.
    fn unknown_key(&mut self, parent: &Range<usize>, origin: Option<Origin>) {
        if !self.unknown.insert(self.path.clone()) {
            return;
        }
        let names: Vec<String> = self
            .schema
            .graph
            .names(&self.arena[parent.clone()])
            .into_iter()
            .map(str::to_string)
            .collect();
        let f = unknown_finding(&self.path, &self.index, &names, origin);
        self.findings.push(f);
    }

    /// An `additionalProperties`/`unevaluatedProperties` error, once per
    /// name: an unknown key when no subschema at that location declares the
    /// name, else the validator's own message (the name is declared only by
    /// a part of the schema that does not apply to this value).
    fn unexpected(&mut self, instance: &Json, err: &jsonschema::ValidationError<'_>, path: Vec<String>) {
        if self.unknown.contains(&path) {
            return;
        }
        let index = indices(instance, &path);
        let g = &self.schema.graph;
        let mut arena = Vec::new();
        let mut set = g.at_path(&mut arena, &[]);
        for (seg, is_index) in path[..path.len() - 1].iter().zip(&index) {
            let from = arena.len();
            if *is_index {
                g.item(&mut arena, set, seg.parse().unwrap_or(0));
            } else {
                g.property(&mut arena, set, seg);
            }
            set = from..arena.len();
        }
        let name = path.last().cloned().unwrap_or_default();
        let declared = g.property(&mut arena, set.clone(), &name);
        if declared {
            let key = display(&path, &index);
            let msg = format!("`{key}` is not allowed here ({})", err.kind().keyword());
            let mut p = Problem::new(format!("envgate::schema::{}", err.kind().keyword()), msg.clone())
                .label(msg)
                .help(format!(
                    "the schema declares `{name}`, but not in a part that applies to this value: {}",
                    err.masked_with("***")
                ));
            if let Some(o) = self.origin_at(&path, true) {
                p = p.at_origin(&o);
            }
            self.findings
                .push(Finding::new(Category::Schema, format!("schema/{key}"), Some(key), p));
            return;
        }
        self.unknown.insert(path.clone());
        let names: Vec<String> = g.names(&arena[set]).into_iter().map(str::to_string).collect();
        let origin = self.origin_at(&path, true);
        let f = unknown_finding(&path, &index, &names, origin);
        self.findings.push(f);
    }

    /// Where the value at `segs` was set: the deepest table or leaf of the
    /// layered tree, refined inside the leaf's value when its file has it.
    fn origin_at(&mut self, segs: &[String], key: bool) -> Option<Origin> {
        let (depth, node) = deepest(&self.a.root, segs);
        match node {
            Node::Leaf(l) if depth < segs.len() => Some(self.locator.refine(&l.origin, segs, key)),
            Node::Leaf(l) => Some(l.origin.clone()),
            Node::Table { origins, .. } => origins.last().cloned(),
        }
    }

    fn missing(&mut self, instance: &Json, table: &[String], prop: &str) -> Finding {
        let mut full = table.to_vec();
        full.push(prop.to_string());
        let index = indices(instance, &full);
        let key = display(&full, &index);
        let in_array = index.iter().any(|&i| i);
        let header = if table.is_empty() {
            "the top level".to_string()
        } else {
            format!("[{}]", display(table, &index))
        };
        let mut p = Problem::new(
            "envgate::schema::required",
            format!("`{key}` is required but not set in `{}`", self.a.env),
        )
        .label(format!("`{prop}` belongs in {header}"));
        let (depth, node) = deepest(&self.a.root, table);
        p = match node {
            // Point at the table in this environment's overlay if it opens
            // it, else wherever the table was opened, else the overlay itself.
            Node::Table { origins, .. } if depth == table.len() => {
                let own = origins.iter().rev().find(|o| o.layer == self.a.env).or(origins.last());
                match own {
                    Some(o) => p.at_origin(o),
                    None => p.at(&self.a.overlay, 0, 0),
                }
            }
            Node::Leaf(l) => p.at_origin(&self.locator.refine(&l.origin, table, false)),
            _ => p.at(&self.a.overlay, 0, 0),
        };
        let mut arena = Vec::new();
        let set = self.schema.graph.at_path(&mut arena, &full);
        let described = self.schema.graph.fact(&arena[set], |f| f.description.clone());
        let hint = if in_array {
            format!("add `{prop}` to this item")
        } else {
            format!("add `{prop} = ...` under {header} in {}", self.a.overlay.name)
        };
        let hint = match described {
            Some(d) => format!("{hint} ({d})"),
            None => hint,
        };
        Finding::new(Category::Schema, format!("schema/{key}"), Some(key), p.help(hint))
    }

    fn error(&mut self, instance: &Json, segs: &[String], err: &jsonschema::ValidationError<'_>) -> Finding {
        let index = indices(instance, segs);
        let key = display(segs, &index);
        let (depth, node) = deepest(&self.a.root, segs);
        let secret = matches!(node, Node::Leaf(l) if l.secret);
        let mut msg = if secret {
            err.masked_with("***").to_string()
        } else {
            err.to_string()
        };
        let shown = err.instance().to_string();
        if !secret && shown.len() > 60 && msg.starts_with(&shown) {
            msg = format!("{}{}", abbreviate(err.instance()), &msg[shown.len()..]);
        }
        let mut p = Problem::new(
            format!("envgate::schema::{}", err.kind().keyword()),
            if key.is_empty() {
                msg.clone()
            } else {
                format!("`{key}`: {msg}")
            },
        )
        .label(msg);
        let mut arena = Vec::new();
        let set = self.schema.graph.at_path(&mut arena, &segs[..depth.min(segs.len())]);
        match err.kind() {
            ValidationErrorKind::Custom { keyword, .. } if keyword == UNREACHABLE_KEYWORD => {
                p = p.help(
                    "put a copy of that schema in one of `project.schema_dirs` in envgate.toml (it is found by its `$id`, or by its file name)",
                );
            }
            ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
                if let Some(h) = closest(context, segs) {
                    p = p.help(h);
                }
            }
            _ => {
                if let Some(d) = self.schema.graph.fact(&arena[set], |f| f.description.clone()) {
                    p = p.help(format!("`{key}`: {d}"));
                }
            }
        }
        if let Some(o) = self.origin_at(segs, false) {
            p = p.at_origin(&o);
        }
        let id = if key.is_empty() {
            "schema".to_string()
        } else {
            format!("schema/{key}")
        };
        Finding::new(Category::Schema, id, (!key.is_empty()).then_some(key), p)
    }
}

fn unknown_finding(path: &[String], index: &[bool], names: &[String], origin: Option<Origin>) -> Finding {
    let key = display(path, index);
    let name = path.last().map(String::as_str).unwrap_or_default();
    let mut p = Problem::new("envgate::schema::unknown-key", format!("unknown key `{key}`")).label("not in the schema");
    p = match did_you_mean(name, names.iter().map(String::as_str)) {
        Some(best) => p.help(format!("did you mean `{best}`?")),
        None => p.help(format!(
            "the schema allows: {}",
            if names.is_empty() {
                "no keys here".to_string()
            } else {
                names.join(", ")
            }
        )),
    };
    if let Some(o) = origin {
        p = p.at_origin(&o);
    }
    Finding::new(Category::Schema, format!("schema/{key}"), Some(key), p)
}

/// The alternative of an `anyOf`/`oneOf` that came closest, as a hint.
fn closest(context: &[Vec<jsonschema::ValidationError<'static>>], at: &[String]) -> Option<String> {
    let best = context
        .iter()
        .filter(|errs| !errs.is_empty())
        .min_by_key(|errs| (errs.len(), std::cmp::Reverse(errs[0].instance_path().as_str().len())))?;
    let e = &best[0];
    let segs = pointer_segments(e.instance_path().as_str());
    let rel: Vec<&str> = segs.iter().skip(at.len()).map(String::as_str).collect();
    let mut msg = e.to_string();
    let shown = e.instance().to_string();
    if shown.len() > 60 && msg.starts_with(&shown) {
        msg = format!("{}{}", abbreviate(e.instance()), &msg[shown.len()..]);
    }
    Some(if rel.is_empty() {
        format!("closest alternative: {msg}")
    } else {
        format!("closest alternative: `{}`: {msg}", rel.join("."))
    })
}

/// A short rendering of a large value for a message.
fn abbreviate(v: &Json) -> String {
    match v {
        Json::Object(o) => {
            let keys: Vec<String> = o.keys().take(4).map(|k| format!("{k:?}: …")).collect();
            let more = if o.len() > 4 { ", …" } else { "" };
            format!("{{{}{more}}}", keys.join(", "))
        }
        Json::Array(a) => format!("[… {} items]", a.len()),
        Json::String(s) => {
            let cut: String = s.chars().take(40).collect();
            format!("{cut:?}…")
        }
        other => other.to_string(),
    }
}

/// `a.b[0].c`: keys as in TOML, array items by index.
pub fn display(path: &[String], index: &[bool]) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        if index.get(i).copied().unwrap_or(false) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&key_string(std::slice::from_ref(seg)));
        }
    }
    out
}

/// Which segments of a path into `instance` are array indices.
fn indices(instance: &Json, path: &[String]) -> Vec<bool> {
    let mut cur = Some(instance);
    path.iter()
        .map(|seg| {
            let is_index = matches!(cur, Some(Json::Array(_)));
            cur = match cur {
                Some(Json::Array(a)) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                Some(Json::Object(o)) => o.get(seg),
                _ => None,
            };
            is_index
        })
        .collect()
}

/// The deepest table or leaf of the layered tree on `segs`, and its depth.
fn deepest<'n>(root: &'n Node, segs: &[String]) -> (usize, &'n Node) {
    let mut cur = root;
    for (i, s) in segs.iter().enumerate() {
        match cur {
            Node::Table { children, .. } => match children.get(s) {
                Some(c) => cur = c,
                None => return (i, cur),
            },
            Node::Leaf(_) => return (i, cur),
        }
    }
    (segs.len(), cur)
}

/// Spans inside array values, read back from the leaf's file in memory on
/// the error path only, once per file per validation.
#[derive(Default)]
struct Locator {
    docs: HashMap<String, Option<Spanned>>,
}

impl Locator {
    /// The origin of the value at `path` (from the root of the file that set
    /// `origin`); the key's span when `key`. Falls back to `origin`.
    fn refine(&mut self, origin: &Origin, path: &[String], key: bool) -> Origin {
        let Loc::File { file, .. } = &origin.loc else {
            return origin.clone();
        };
        let doc = self.docs.entry(file.name.clone()).or_insert_with(|| {
            let format = crate::config::tree::Format::from_path(&file.name)?;
            parse::document(file, format).ok().flatten()
        });
        let Some(doc) = doc else { return origin.clone() };
        let l = doc.locate(path);
        if l.depth == 0 {
            return origin.clone();
        }
        let (offset, len) = match (key, l.key) {
            (true, Some(k)) if l.depth == path.len() => k,
            _ => l.value,
        };
        Origin {
            layer: origin.layer.clone(),
            loc: Loc::File {
                file: file.clone(),
                offset,
                len,
            },
            untyped: origin.untyped,
        }
    }
}
