//! The schema compiled once per run into a graph of subschemas with every
//! `$ref` resolved (by the same resolver the validator uses, so both agree on
//! what a reference means). Walks over a configuration use it to find, for
//! each instance location, every subschema that applies there — through
//! `properties`, `patternProperties`, `additionalProperties`, items, `allOf`,
//! `anyOf`, `oneOf`, `if`/`then`/`else`, dependent schemas and `$ref` — which
//! is what strictness, units, secrets and coercion need. It never validates:
//! the JSON Schema verdict is the validator's alone.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::super::units::Unit;

pub type NodeId = u32;

/// An edge to another subschema at the same instance location, with the
/// keyword path (relative to the node) that makes it, for diagnostics.
#[derive(Debug, Clone)]
pub struct Edge {
    pub to: NodeId,
    pub via: Box<str>,
}

/// What a schema says about names not in `properties`/`patternProperties`
/// (or items beyond the tuple).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    Absent,
    False,
    Schema(NodeId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Bool(bool),
    Object,
    /// A `$ref` to a document that is not available locally.
    Unreachable(String),
}

/// One subschema.
#[derive(Debug)]
pub struct Node {
    /// The document and JSON pointer it was written at.
    pub doc: u32,
    pub pointer: String,
    pub kind: Kind,
    /// Subschemas that apply at the same location (`$ref`, `allOf`, `anyOf`,
    /// `oneOf`, `if`/`then`/`else`, dependent schemas).
    pub inplace: Vec<Edge>,
    /// `not`: same location, but names in it are not declarations.
    pub negated: Vec<Edge>,
    pub props: IndexMap<String, NodeId>,
    /// `patternProperties`: index into the pattern table, subschema.
    pub patterns: Vec<(usize, NodeId)>,
    pub additional: Extra,
    pub unevaluated: Extra,
    /// Tuple items, then the schema for the rest.
    pub prefix: Vec<NodeId>,
    pub rest: Extra,
    /// `contains`, `unevaluatedItems`: may apply to any item.
    pub any_item: Vec<NodeId>,
    /// Names the schema mentions without a subschema: `required`,
    /// dependent requirements, `propertyNames` enums.
    pub declared: Vec<String>,
    pub facts: Facts,
}

/// The annotations envgate reads itself.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    pub unit: Option<Unit>,
    pub x_minimum: Option<Json>,
    pub x_maximum: Option<Json>,
    pub secret: bool,
    pub types: Vec<String>,
    pub description: Option<String>,
}

impl Facts {
    pub fn of(o: &serde_json::Map<String, Json>) -> Facts {
        Facts {
            unit: o.get("x-unit").and_then(Json::as_str).and_then(Unit::from_schema),
            x_minimum: o.get("x-minimum").cloned(),
            x_maximum: o.get("x-maximum").cloned(),
            secret: o.get("writeOnly").and_then(Json::as_bool) == Some(true)
                || o.get("x-secret").and_then(Json::as_bool) == Some(true),
            types: match o.get("type") {
                Some(Json::String(t)) => vec![t.clone()],
                Some(Json::Array(a)) => a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect(),
                _ => Vec::new(),
            },
            description: o.get("description").and_then(Json::as_str).map(str::to_string),
        }
    }
}

impl Node {
    pub fn new(doc: u32, pointer: String, kind: Kind) -> Node {
        Node {
            doc,
            pointer,
            kind,
            inplace: Vec::new(),
            negated: Vec::new(),
            props: IndexMap::new(),
            patterns: Vec::new(),
            additional: Extra::Absent,
            unevaluated: Extra::Absent,
            prefix: Vec::new(),
            rest: Extra::Absent,
            any_item: Vec::new(),
            declared: Vec::new(),
            facts: Facts::default(),
        }
    }
}

/// `patternProperties` regexes, matched by the validator's own engine so the
/// two never disagree on whether a name matches.
pub struct Patterns {
    pub list: Vec<(String, Option<jsonschema::Validator>)>,
}

impl Patterns {
    /// Whether the engine can judge names against pattern `i`.
    pub fn compiles(&self, i: usize) -> bool {
        self.list.get(i).is_some_and(|p| p.1.is_some())
    }

    /// `None` when the engine cannot tell (the pattern does not compile).
    pub fn matches(&self, i: usize, name: &str) -> Option<bool> {
        let v = self.list.get(i)?.1.as_ref()?;
        Some(v.is_valid(&Json::String(name.to_string())))
    }
}

pub struct Graph {
    pub nodes: Vec<Node>,
    pub root: NodeId,
    pub patterns: Patterns,
    /// Address of each subschema's JSON in the schema documents, for callers
    /// that walk the schema by `&Json` (CEL typing).
    pub by_addr: HashMap<usize, NodeId>,
    closures: Vec<OnceLock<Box<[NodeId]>>>,
}

impl Graph {
    pub fn new(nodes: Vec<Node>, root: NodeId, patterns: Patterns, by_addr: HashMap<usize, NodeId>) -> Graph {
        let closures = (0..nodes.len()).map(|_| OnceLock::new()).collect();
        Graph {
            nodes,
            root,
            patterns,
            by_addr,
            closures,
        }
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    /// The node and every subschema that applies at its location (not
    /// through `not`), each once, computed on first use.
    pub fn closure(&self, id: NodeId) -> &[NodeId] {
        self.closures[id as usize].get_or_init(|| {
            let mut seen = vec![id];
            let mut stack = vec![id];
            while let Some(n) = stack.pop() {
                for e in &self.node(n).inplace {
                    if !seen.contains(&e.to) {
                        seen.push(e.to);
                        stack.push(e.to);
                    }
                }
            }
            seen.into_boxed_slice()
        })
    }

    fn push_closure(&self, id: NodeId, arena: &mut Vec<NodeId>, from: usize) {
        for &n in self.closure(id) {
            if !arena[from..].contains(&n) {
                arena.push(n);
            }
        }
    }

    /// Append to `arena` every subschema that applies to property `name` of
    /// an object whose subschemas are `arena[set]`. Returns whether any of
    /// them declares the name. (One arena for a whole walk: sets are ranges
    /// in it, so walking a configuration allocates almost nothing.)
    pub fn property(&self, arena: &mut Vec<NodeId>, set: Range<usize>, name: &str) -> bool {
        let from = arena.len();
        let mut declared = false;
        for i in set.clone() {
            let n = self.node(arena[i]);
            let mut matched = false;
            if let Some(&c) = n.props.get(name) {
                self.push_closure(c, arena, from);
                matched = true;
            }
            for &(p, c) in &n.patterns {
                if self.patterns.matches(p, name) == Some(true) {
                    self.push_closure(c, arena, from);
                    matched = true;
                }
            }
            if !matched && let Extra::Schema(c) = n.additional {
                self.push_closure(c, arena, from);
            }
            declared |= matched || n.declared.iter().any(|d| d == name);
        }
        if !declared {
            for i in set {
                if let Extra::Schema(c) = self.node(arena[i]).unevaluated {
                    self.push_closure(c, arena, from);
                }
            }
        }
        declared
    }

    /// Append to `arena` every subschema that applies to item `index` of an
    /// array whose subschemas are `arena[set]`.
    pub fn item(&self, arena: &mut Vec<NodeId>, set: Range<usize>, index: usize) {
        let from = arena.len();
        for i in set {
            let n = self.node(arena[i]);
            match n.prefix.get(index) {
                Some(&c) => self.push_closure(c, arena, from),
                None => {
                    if let Extra::Schema(c) = n.rest {
                        self.push_closure(c, arena, from);
                    }
                }
            }
            for &c in &n.any_item {
                self.push_closure(c, arena, from);
            }
        }
    }

    /// The subschemas at a key path from the root, appended to `arena`.
    pub fn at_path(&self, arena: &mut Vec<NodeId>, path: &[String]) -> Range<usize> {
        let mut set = arena.len()..arena.len();
        self.push_closure(self.root, arena, set.start);
        set.end = arena.len();
        for seg in path {
            let from = arena.len();
            self.property(arena, set, seg);
            set = from..arena.len();
        }
        set
    }

    /// Whether unknown names are errors at an object location: some
    /// subschema declares properties and none admits other names
    /// (`additionalProperties`/`unevaluatedProperties` other than `false`,
    /// a pattern the engine cannot judge, a reference that cannot be read).
    pub fn strict_at(&self, set: &[NodeId]) -> bool {
        let mut declares = false;
        for &id in set {
            let n = self.node(id);
            if matches!(n.kind, Kind::Unreachable(_))
                || matches!(n.additional, Extra::Schema(_))
                || matches!(n.unevaluated, Extra::Schema(_))
                || n.patterns.iter().any(|&(p, _)| !self.patterns.compiles(p))
            {
                return false;
            }
            declares |= !n.props.is_empty() || !n.patterns.is_empty();
        }
        declares
    }

    /// Every property name declared at a location, for did-you-mean.
    pub fn names(&self, set: &[NodeId]) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for &id in set {
            for k in self.node(id).props.keys() {
                if !out.contains(&k.as_str()) {
                    out.push(k);
                }
            }
        }
        out
    }

    /// The first fact any subschema in `set` gives.
    pub fn fact<'a, T>(&'a self, set: &[NodeId], f: impl Fn(&'a Facts) -> Option<T>) -> Option<T> {
        set.iter().find_map(|&id| f(&self.node(id).facts))
    }
}
