//! Building the [`Graph`]: walk every subschema reachable from the root,
//! resolving `$ref`s with `referencing` (the validator's own resolver), and
//! refuse schemas whose validation could never end: a chain of `$ref`,
//! `allOf`, `anyOf`, `oneOf`, `not` or `if`/`then`/`else` that comes back to
//! where it started without descending into a property or an item.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use jsonschema::{Draft, Registry};
use referencing::{Resolver, ResourceRef};
use serde_json::Value as Json;

use super::docs::{Doc, UNREACHABLE_KEYWORD};
use super::graph::{Edge, Extra, Facts, Graph, Kind, Node, NodeId, Patterns};

/// Something wrong in a schema document, at a JSON pointer.
#[derive(Debug)]
pub struct SchemaFault {
    pub doc: u32,
    pub pointer: String,
    pub code: &'static str,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

/// A `$ref` into a document envgate does not have: where it is written.
#[derive(Debug, Clone)]
pub struct Unreachable {
    pub doc: u32,
    /// The schema object holding the `$ref`.
    pub pointer: String,
    pub reference: String,
    pub draft: Draft,
}

pub struct Compiled {
    pub graph: Graph,
    pub unreachable: Vec<Unreachable>,
}

/// Where the children of one subschema are read.
struct Cx<'r> {
    doc: u32,
    resolver: Resolver<'r>,
    draft: Draft,
}

struct Compiler<'r> {
    docs: &'r [Doc],
    nodes: Vec<Node>,
    by_addr: HashMap<usize, NodeId>,
    /// Address of every object or boolean in the documents → (doc, pointer),
    /// built on the first `$ref` whose target was not reached by descent.
    index: Option<HashMap<usize, (u32, String)>>,
    queue: Vec<(NodeId, &'r Json, Resolver<'r>, Draft)>,
    patterns: Vec<(String, Option<jsonschema::Validator>)>,
    pattern_ids: HashMap<String, usize>,
    unreachable: Vec<Unreachable>,
    faults: Vec<SchemaFault>,
    placeholders: HashSet<String>,
}

fn addr(v: &Json) -> usize {
    std::ptr::from_ref(v) as usize
}

fn escape(seg: &str) -> String {
    seg.replace('~', "~0").replace('/', "~1")
}

/// Compile the graph of `docs[0]` (the root schema) in `registry`.
pub fn compile<'r>(
    docs: &'r [Doc],
    registry: &'r Registry<'r>,
    draft: Draft,
    pattern_options: &dyn Fn(&str) -> Option<jsonschema::Validator>,
) -> Result<Compiled, Vec<SchemaFault>> {
    let mut c = Compiler {
        docs,
        nodes: Vec::new(),
        by_addr: HashMap::new(),
        index: None,
        queue: Vec::new(),
        patterns: Vec::new(),
        pattern_ids: HashMap::new(),
        unreachable: Vec::new(),
        faults: Vec::new(),
        placeholders: docs
            .iter()
            .filter(|d| d.placeholder)
            .flat_map(|d| d.uris.clone())
            .collect(),
    };
    let root_json: &Json = &docs[0].json;
    let base = referencing::uri::from_str(&docs[0].uris[0]).map_err(|e| {
        vec![SchemaFault {
            doc: 0,
            pointer: String::new(),
            code: "envgate::schema::invalid",
            message: format!("cannot use {} as the schema's base URI: {e}", docs[0].uris[0]),
            label: "here".into(),
            help: None,
        }]
    })?;
    let resolver = registry.resolver(base);
    let root = c.intern(root_json, 0, String::new(), resolver, draft);
    while let Some((id, json, resolver, draft)) = c.queue.pop() {
        c.fill(id, json, resolver, draft, pattern_options);
    }
    if c.faults.is_empty() {
        c.find_cycles();
    }
    if !c.faults.is_empty() {
        return Err(c.faults);
    }
    let by_addr = c.by_addr;
    Ok(Compiled {
        graph: Graph::new(c.nodes, root, Patterns { list: c.patterns }, by_addr),
        unreachable: c.unreachable,
    })
}

impl<'r> Compiler<'r> {
    fn intern(&mut self, json: &'r Json, doc: u32, pointer: String, resolver: Resolver<'r>, draft: Draft) -> NodeId {
        if let Some(&id) = self.by_addr.get(&addr(json)) {
            return id;
        }
        let id = self.nodes.len() as NodeId;
        let kind = match json {
            Json::Bool(b) => Kind::Bool(*b),
            Json::Object(o) => match o.get(UNREACHABLE_KEYWORD).and_then(Json::as_str) {
                Some(uri) => Kind::Unreachable(uri.to_string()),
                None => Kind::Object,
            },
            // Not a schema; meta-validation reports it where it matters.
            _ => Kind::Bool(true),
        };
        self.nodes.push(Node::new(doc, pointer, kind));
        self.by_addr.insert(addr(json), id);
        self.queue.push((id, json, resolver, draft));
        id
    }

    fn child(&mut self, cx: &Cx<'r>, v: &'r Json, pointer: String) -> NodeId {
        self.intern(v, cx.doc, pointer, cx.resolver.clone(), cx.draft)
    }

    fn extra(&mut self, cx: &Cx<'r>, v: Option<&'r Json>, pointer: String) -> Extra {
        match v {
            None => Extra::Absent,
            Some(Json::Bool(false)) => Extra::False,
            Some(v) => Extra::Schema(self.child(cx, v, pointer)),
        }
    }

    fn locate(&mut self, json: &Json) -> Option<(u32, String)> {
        let index = self.index.get_or_insert_with(|| {
            let mut index = HashMap::new();
            for (d, doc) in self.docs.iter().enumerate() {
                let mut stack: Vec<(&Json, String)> = vec![(&doc.json, String::new())];
                while let Some((v, ptr)) = stack.pop() {
                    match v {
                        Json::Object(o) => {
                            for (k, c) in o {
                                stack.push((c, format!("{ptr}/{}", escape(k))));
                            }
                        }
                        Json::Array(a) => {
                            for (i, c) in a.iter().enumerate() {
                                stack.push((c, format!("{ptr}/{i}")));
                            }
                        }
                        Json::Bool(_) => {}
                        _ => continue,
                    }
                    index.insert(addr(v), (d as u32, ptr));
                }
            }
            index
        });
        index.get(&addr(json)).cloned()
    }

    fn fault(
        &mut self,
        id: NodeId,
        suffix: &str,
        code: &'static str,
        message: String,
        label: &str,
        help: Option<String>,
    ) {
        let n = &self.nodes[id as usize];
        self.faults.push(SchemaFault {
            doc: n.doc,
            pointer: format!("{}{suffix}", n.pointer),
            code,
            message,
            label: label.into(),
            help,
        });
    }

    fn pattern(&mut self, p: &str, compile: &dyn Fn(&str) -> Option<jsonschema::Validator>) -> usize {
        if let Some(&i) = self.pattern_ids.get(p) {
            return i;
        }
        let i = self.patterns.len();
        self.patterns.push((p.to_string(), compile(p)));
        self.pattern_ids.insert(p.to_string(), i);
        i
    }

    /// Read one subschema's keywords into its node and queue its children.
    fn fill(
        &mut self,
        id: NodeId,
        json: &'r Json,
        resolver: Resolver<'r>,
        draft: Draft,
        compile_pattern: &dyn Fn(&str) -> Option<jsonschema::Validator>,
    ) {
        let Json::Object(o) = json else { return };
        let draft = match draft.detect(json) {
            Draft::Unknown => draft,
            d => d,
        };
        let resolver = match resolver.in_subresource(ResourceRef::new(json, draft)) {
            Ok(r) => r,
            Err(e) => {
                self.fault(
                    id,
                    "",
                    "envgate::schema::invalid",
                    format!("invalid `$id`: {e}"),
                    "this `$id`",
                    None,
                );
                return;
            }
        };
        let (doc, base) = {
            let n = &self.nodes[id as usize];
            (n.doc, n.pointer.clone())
        };
        self.nodes[id as usize].facts = Facts::of(o);
        let modern = draft >= Draft::Draft201909;
        let at = |kw: &str| format!("{base}/{}", escape(kw));

        for kw in ["$ref", "$dynamicRef", "$recursiveRef"] {
            let Some(Json::String(r)) = o.get(kw) else { continue };
            if (kw == "$dynamicRef" && draft != Draft::Draft202012)
                || (kw == "$recursiveRef" && draft != Draft::Draft201909)
            {
                continue;
            }
            let found = if kw == "$recursiveRef" {
                resolver.lookup_recursive_ref()
            } else {
                resolver.lookup(r)
            };
            match found {
                Ok(resolved) => {
                    let (contents, res, target_draft) = resolved.into_inner();
                    let (tdoc, tptr) = self.locate(contents).unwrap_or((doc, String::new()));
                    let to = self.intern(contents, tdoc, tptr, res, target_draft);
                    self.nodes[id as usize].inplace.push(Edge {
                        to,
                        via: format!("/{kw}").into(),
                    });
                }
                Err(e) => {
                    let target = r.split('#').next().unwrap_or_default();
                    let uri = if target.is_empty() {
                        Some(resolver.base_uri().as_str().to_string())
                    } else {
                        resolver
                            .resolve_uri(&resolver.base_uri().borrow(), target)
                            .ok()
                            .map(|u| u.as_str().to_string())
                    };
                    if uri.as_ref().is_some_and(|u| self.placeholders.contains(u)) {
                        let to = self.nodes.len() as NodeId;
                        self.nodes
                            .push(Node::new(doc, base.clone(), Kind::Unreachable(r.clone())));
                        self.nodes[id as usize].inplace.push(Edge {
                            to,
                            via: format!("/{kw}").into(),
                        });
                        self.unreachable.push(Unreachable {
                            doc,
                            pointer: base.clone(),
                            reference: r.clone(),
                            draft,
                        });
                    } else {
                        self.fault(
                            id,
                            &format!("/{}", escape(kw)),
                            "envgate::schema::ref",
                            format!("`{kw}` {r:?} cannot be resolved: {e}"),
                            "this reference",
                            Some("a `#/...` reference must point at a place in the same schema document".into()),
                        );
                    }
                }
            }
        }
        // Before 2019-09, `$ref` replaces every keyword beside it.
        if !modern && o.contains_key("$ref") {
            return;
        }

        let cx = Cx { doc, resolver, draft };
        let mut inplace = Vec::new();
        let mut negated = Vec::new();
        for kw in ["allOf", "anyOf", "oneOf"] {
            if let Some(Json::Array(list)) = o.get(kw) {
                for (i, s) in list.iter().enumerate() {
                    let to = self.child(&cx, s, format!("{}/{i}", at(kw)));
                    inplace.push(Edge {
                        to,
                        via: format!("/{kw}/{i}").into(),
                    });
                }
            }
        }
        let mut singles = vec![("not", true)];
        if draft >= Draft::Draft7 {
            singles.extend([("if", false), ("then", false), ("else", false)]);
        }
        for (kw, is_not) in singles {
            if let Some(s) = o.get(kw) {
                let to = self.child(&cx, s, at(kw));
                let e = Edge {
                    to,
                    via: format!("/{kw}").into(),
                };
                if is_not { negated.push(e) } else { inplace.push(e) }
            }
        }
        let mut declared: Vec<String> = Vec::new();
        let deps: &[&str] = if modern {
            &["dependentSchemas", "dependentRequired"]
        } else {
            &["dependencies"]
        };
        for kw in deps {
            if let Some(Json::Object(m)) = o.get(*kw) {
                for (k, v) in m {
                    declared.push(k.clone());
                    match v {
                        Json::Array(names) => {
                            declared.extend(names.iter().filter_map(Json::as_str).map(str::to_string))
                        }
                        _ if *kw != "dependentRequired" => {
                            let to = self.child(&cx, v, format!("{}/{}", at(kw), escape(k)));
                            inplace.push(Edge {
                                to,
                                via: format!("/{kw}/{}", escape(k)).into(),
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
        if let Some(Json::Array(req)) = o.get("required") {
            declared.extend(req.iter().filter_map(Json::as_str).map(str::to_string));
        }
        if let Some(Json::Object(pn)) = o.get("propertyNames") {
            if let Some(Json::Array(names)) = pn.get("enum") {
                declared.extend(names.iter().filter_map(Json::as_str).map(str::to_string));
            }
            if let Some(Json::String(name)) = pn.get("const") {
                declared.push(name.clone());
            }
        }

        let mut props = IndexMap::new();
        if let Some(Json::Object(m)) = o.get("properties") {
            for (k, v) in m {
                let to = self.child(&cx, v, format!("{}/{}", at("properties"), escape(k)));
                props.insert(k.clone(), to);
            }
        }
        let mut patterns = Vec::new();
        if let Some(Json::Object(m)) = o.get("patternProperties") {
            for (p, v) in m {
                let to = self.child(&cx, v, format!("{}/{}", at("patternProperties"), escape(p)));
                patterns.push((self.pattern(p, compile_pattern), to));
            }
        }
        let additional = self.extra(&cx, o.get("additionalProperties"), at("additionalProperties"));
        let unevaluated = if modern {
            self.extra(&cx, o.get("unevaluatedProperties"), at("unevaluatedProperties"))
        } else {
            Extra::Absent
        };

        let mut prefix = Vec::new();
        let mut rest = Extra::Absent;
        let tuple_kw = if draft == Draft::Draft202012 {
            "prefixItems"
        } else {
            "items"
        };
        if let Some(Json::Array(list)) = o.get(tuple_kw) {
            for (i, s) in list.iter().enumerate() {
                prefix.push(self.child(&cx, s, format!("{}/{i}", at(tuple_kw))));
            }
            if draft != Draft::Draft202012 {
                rest = self.extra(&cx, o.get("additionalItems"), at("additionalItems"));
            }
        }
        if let Some(items @ (Json::Object(_) | Json::Bool(_))) = o.get("items") {
            rest = self.extra(&cx, Some(items), at("items"));
        }
        let mut any_item = Vec::new();
        let mut item_kws = vec!["contains"];
        if modern {
            item_kws.push("unevaluatedItems");
        }
        for kw in item_kws {
            if let Some(s @ (Json::Object(_) | Json::Bool(true))) = o.get(kw) {
                any_item.push(self.child(&cx, s, at(kw)));
            }
        }

        let n = &mut self.nodes[id as usize];
        n.inplace.extend(inplace);
        n.negated = negated;
        n.declared = declared;
        n.props = props;
        n.patterns = patterns;
        n.additional = additional;
        n.unevaluated = unevaluated;
        n.prefix = prefix;
        n.rest = rest;
        n.any_item = any_item;
    }

    /// A cycle of same-location edges: validating any value there would
    /// recurse forever. Reported at the edge that closes it.
    fn find_cycles(&mut self) {
        const WHITE: u8 = 0;
        const GREY: u8 = 1;
        const BLACK: u8 = 2;
        let n = self.nodes.len();
        let mut color = vec![WHITE; n];
        for start in 0..n {
            if color[start] != WHITE {
                continue;
            }
            // (node, next edge index); edges are inplace then negated.
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            color[start] = GREY;
            while let Some(&(node, next)) = stack.last() {
                let edges = &self.nodes[node];
                let edge = edges.inplace.iter().chain(&edges.negated).nth(next).cloned();
                let Some(e) = edge else {
                    color[node] = BLACK;
                    stack.pop();
                    continue;
                };
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                let to = e.to as usize;
                match color[to] {
                    WHITE => {
                        color[to] = GREY;
                        stack.push((to, 0));
                    }
                    GREY => {
                        let target = if self.nodes[to].pointer.is_empty() {
                            "/".to_string()
                        } else {
                            self.nodes[to].pointer.clone()
                        };
                        let doc_name = self.docs[self.nodes[to].doc as usize].display();
                        let here = format!("{}{}", self.nodes[node].pointer, e.via);
                        self.fault(
                            node as NodeId,
                            &e.via,
                            "envgate::schema::cycle",
                            format!(
                                "{here} leads back to {target} in {doc_name} without descending into a property or an item: validating any value here would never end"
                            ),
                            "this closes the cycle",
                            Some("a schema may refer to itself only below `properties`, `items` or another keyword that moves to a part of the value".into()),
                        );
                        return;
                    }
                    _ => {}
                }
            }
        }
    }
}
