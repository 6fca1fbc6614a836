//! Walks that follow the configuration through the schema graph: text
//! values take the type the schema asks for, keys the schema calls secret
//! are marked, and other modules look up a key's subschema or unit.

use serde_json::Value as Json;

use super::graph::NodeId;
use super::load::Schema;
use crate::config::assemble::Assembled;
use crate::config::merge::{Leaf, Node};
use crate::config::spanned::MAX_DEPTH;
use crate::config::units::Unit;

/// Called with the schema, the subschemas of a leaf, the leaf, and whether a
/// table above it is secret.
type LeafVisitor<'f> = dyn FnMut(&Schema, &[NodeId], &mut Leaf, bool) + 'f;

impl Schema {
    /// The root of the schema, for walks that follow the tree.
    pub fn root(&self) -> &Json {
        &self.json
    }

    /// The subschema of `key` under `parent` (a subschema handed out by
    /// [`Schema::root`] or this method): the one that declares a unit if
    /// several apply, else the first.
    pub fn child_of<'a>(&'a self, parent: &'a Json, key: &str) -> Option<&'a Json> {
        let g = &self.graph;
        let &id = g.by_addr.get(&(std::ptr::from_ref(parent) as usize))?;
        let mut arena: Vec<NodeId> = g.closure(id).to_vec();
        let set = 0..arena.len();
        let from = arena.len();
        g.property(&mut arena, set, key);
        let children = &arena[from..];
        let pick = children
            .iter()
            .find(|&&n| g.node(n).facts.unit.is_some())
            .or(children.first())?;
        self.json_of(*pick)
    }

    pub(super) fn json_of(&self, id: NodeId) -> Option<&Json> {
        let n = self.graph.node(id);
        self.docs.get(n.doc as usize)?.json.pointer(&n.pointer)
    }

    /// The `x-unit` of a key, if it declares one.
    pub fn unit_of(&self, path: &[String]) -> Option<Unit> {
        let mut arena = Vec::new();
        let set = self.graph.at_path(&mut arena, path);
        self.graph.fact(&arena[set], |f| f.unit)
    }

    /// Text values from env vars, dotenv, `--set` and interpolation take the
    /// type the schema asks for.
    pub fn coerce(&self, a: &mut Assembled) {
        self.leaves_mut(&mut a.root, &mut |schema, set, l, _| {
            if !l.coercible {
                return;
            }
            let Json::String(s) = &l.value else { return };
            let mut types: Vec<&str> = Vec::new();
            for &id in set {
                types.extend(schema.graph.node(id).facts.types.iter().map(String::as_str));
            }
            if types.is_empty() || types.contains(&"string") {
                return;
            }
            if let Some(v) = coerce_text(s.trim(), &types) {
                l.value = v;
            }
        });
    }

    /// Mark leaves the schema calls secret (`writeOnly`, `x-secret`, on the
    /// key or on a table or array above it) and teach the redactor their values.
    pub fn mark_secrets(&self, a: &mut Assembled) {
        let mut found = Vec::new();
        self.leaves_mut(&mut a.root, &mut |schema, set, l, inherited| {
            if inherited
                || schema.is_secret(set)
                || (matches!(l.value, Json::Array(_) | Json::Object(_)) && schema.secret_within(set, &l.value))
            {
                l.secret = true;
                collect_strings(&l.value, &mut |s| found.push(s.to_string()));
                super::super::secrets::mask_cli_origin(&mut l.origin);
                for (old, o) in &mut l.history {
                    collect_strings(old, &mut |s| found.push(s.to_string()));
                    super::super::secrets::mask_cli_origin(o);
                }
            }
        });
        for s in found {
            a.redactor.add(&s);
        }
    }

    fn is_secret(&self, set: &[NodeId]) -> bool {
        set.iter().any(|&id| self.graph.node(id).facts.secret)
    }

    /// Whether the schema calls this value, or any part of it, secret.
    fn secret_within(&self, set: &[NodeId], value: &Json) -> bool {
        let mut arena = set.to_vec();
        let mut stack = vec![(value, 0..arena.len(), 0usize)];
        while let Some((v, s, depth)) = stack.pop() {
            if self.is_secret(&arena[s.clone()]) {
                return true;
            }
            if depth > MAX_DEPTH {
                continue;
            }
            match v {
                Json::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let from = arena.len();
                        self.graph.item(&mut arena, s.clone(), i);
                        stack.push((item, from..arena.len(), depth + 1));
                    }
                }
                Json::Object(o) => {
                    for (k, item) in o {
                        let from = arena.len();
                        self.graph.property(&mut arena, s.clone(), k);
                        stack.push((item, from..arena.len(), depth + 1));
                    }
                }
                _ => {}
            }
        }
        false
    }

    /// Visit every leaf with the subschemas that apply to it and whether a
    /// table above it is secret.
    fn leaves_mut(&self, root: &mut Node, f: &mut LeafVisitor<'_>) {
        let mut arena = Vec::new();
        let set = self.graph.at_path(&mut arena, &[]);
        self.visit_mut(root, &mut arena, set, false, 0, f);
    }

    fn visit_mut(
        &self,
        node: &mut Node,
        arena: &mut Vec<NodeId>,
        set: std::ops::Range<usize>,
        secret: bool,
        depth: usize,
        f: &mut LeafVisitor<'_>,
    ) {
        match node {
            Node::Leaf(l) => f(self, &arena[set], l, secret),
            Node::Table { children, .. } => {
                if depth > MAX_DEPTH {
                    return;
                }
                let secret = secret || self.is_secret(&arena[set.clone()]);
                for (k, c) in children.iter_mut() {
                    let from = arena.len();
                    self.graph.property(arena, set.clone(), k);
                    let child = from..arena.len();
                    self.visit_mut(c, arena, child, secret, depth + 1, f);
                    arena.truncate(from);
                }
            }
        }
    }
}

fn coerce_text(t: &str, types: &[&str]) -> Option<Json> {
    let has = |name: &str| types.contains(&name);
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

fn collect_strings(v: &Json, f: &mut dyn FnMut(&str)) {
    match v {
        Json::String(s) => f(s),
        Json::Array(a) => a.iter().for_each(|x| collect_strings(x, f)),
        Json::Object(o) => o.values().for_each(|x| collect_strings(x, f)),
        Json::Number(n) => f(&n.to_string()),
        _ => {}
    }
}
