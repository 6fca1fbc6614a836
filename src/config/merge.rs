//! The assembled configuration: layers merged in precedence order. Tables
//! merge deeply; arrays and scalars replace. Every leaf keeps the origin that
//! won and the chain of values it overrode.

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::tree::{Entry, Tree};
use crate::source::Origin;

#[derive(Debug, Clone)]
pub struct Leaf {
    pub value: Json,
    pub origin: Origin,
    /// Values this leaf overrode, oldest first.
    pub history: Vec<(Json, Origin)>,
    pub secret: bool,
    /// The value arrived as text (env, dotenv, `--set`, interpolation):
    /// the schema may give it a type.
    pub coercible: bool,
}

#[derive(Debug, Clone)]
pub enum Node {
    Table {
        children: IndexMap<String, Node>,
        /// Every place this table was opened, lowest precedence first.
        origins: Vec<Origin>,
    },
    Leaf(Leaf),
}

impl Default for Node {
    fn default() -> Self {
        Node::Table {
            children: IndexMap::new(),
            origins: Vec::new(),
        }
    }
}

impl Node {
    /// Merge one layer's table into this node.
    pub fn merge_table(&mut self, layer: &IndexMap<String, Entry>) {
        let Node::Table { children, .. } = self else {
            unreachable!("root is a table")
        };
        for (k, e) in layer {
            match (&e.node, children.get_mut(k)) {
                (Tree::Table(t), Some(existing @ Node::Table { .. })) => {
                    if let Node::Table { origins, .. } = existing {
                        origins.push(e.origin.clone());
                    }
                    existing.merge_table(t);
                }
                (Tree::Table(t), _) => {
                    let mut n = Node::Table {
                        children: IndexMap::new(),
                        origins: vec![e.origin.clone()],
                    };
                    n.merge_table(t);
                    children.insert(k.clone(), n);
                }
                (Tree::Leaf(v), Some(Node::Leaf(old))) => {
                    let mut history = std::mem::take(&mut old.history);
                    history.push((old.value.clone(), old.origin.clone()));
                    *old = Leaf {
                        value: v.clone(),
                        origin: e.origin.clone(),
                        history,
                        secret: false,
                        coercible: e.origin.untyped,
                    };
                }
                (Tree::Leaf(v), _) => {
                    children.insert(
                        k.clone(),
                        Node::Leaf(Leaf {
                            value: v.clone(),
                            origin: e.origin.clone(),
                            history: Vec::new(),
                            secret: false,
                            coercible: e.origin.untyped,
                        }),
                    );
                }
            }
        }
    }

    /// [`Node::merge_table`] for a table this node may keep: moved, not copied.
    pub fn merge_owned(&mut self, layer: IndexMap<String, Entry>) {
        let Node::Table { children, .. } = self else {
            unreachable!("root is a table")
        };
        for (k, e) in layer {
            let Entry { node, origin } = e;
            match (node, children.get_mut(&k)) {
                (Tree::Table(t), Some(existing @ Node::Table { .. })) => {
                    if let Node::Table { origins, .. } = existing {
                        origins.push(origin);
                    }
                    existing.merge_owned(t);
                }
                (Tree::Table(t), _) => {
                    let mut n = Node::Table {
                        children: IndexMap::with_capacity(t.len()),
                        origins: vec![origin],
                    };
                    n.merge_owned(t);
                    children.insert(k, n);
                }
                (Tree::Leaf(v), Some(Node::Leaf(old))) => {
                    let mut history = std::mem::take(&mut old.history);
                    let coercible = origin.untyped;
                    let previous = std::mem::replace(
                        old,
                        Leaf {
                            value: v,
                            origin,
                            history: Vec::new(),
                            secret: false,
                            coercible,
                        },
                    );
                    history.push((previous.value, previous.origin));
                    old.history = history;
                }
                (Tree::Leaf(v), _) => {
                    let coercible = origin.untyped;
                    children.insert(
                        k,
                        Node::Leaf(Leaf {
                            value: v,
                            origin,
                            history: Vec::new(),
                            secret: false,
                            coercible,
                        }),
                    );
                }
            }
        }
    }

    pub fn get(&self, path: &[String]) -> Option<&Node> {
        let mut cur = self;
        for p in path {
            match cur {
                Node::Table { children, .. } => cur = children.get(p)?,
                Node::Leaf(_) => return None,
            }
        }
        Some(cur)
    }

    pub fn get_mut(&mut self, path: &[String]) -> Option<&mut Node> {
        let mut cur = self;
        for p in path {
            match cur {
                Node::Table { children, .. } => cur = children.get_mut(p)?,
                Node::Leaf(_) => return None,
            }
        }
        Some(cur)
    }

    pub fn leaf(&self, path: &[String]) -> Option<&Leaf> {
        match self.get(path)? {
            Node::Leaf(l) => Some(l),
            Node::Table { .. } => None,
        }
    }

    /// Every leaf with its path, in document order.
    pub fn leaves(&self) -> Vec<(Vec<String>, &Leaf)> {
        fn walk<'a>(n: &'a Node, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, &'a Leaf)>) {
            match n {
                Node::Leaf(l) => out.push((path.clone(), l)),
                Node::Table { children, .. } => {
                    for (k, c) in children {
                        path.push(k.clone());
                        walk(c, path, out);
                        path.pop();
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }

    /// How many leaves there are, without building their paths.
    pub fn leaf_count(&self) -> usize {
        match self {
            Node::Leaf(_) => 1,
            Node::Table { children, .. } => children.values().map(Node::leaf_count).sum(),
        }
    }

    /// Paths of the leaves that satisfy `pred`; paths are built only for those.
    pub fn paths_where(&self, pred: &dyn Fn(&Leaf) -> bool) -> Vec<Vec<String>> {
        fn walk(n: &Node, path: &mut Vec<String>, pred: &dyn Fn(&Leaf) -> bool, out: &mut Vec<Vec<String>>) {
            match n {
                Node::Leaf(l) => {
                    if pred(l) {
                        out.push(path.clone());
                    }
                }
                Node::Table { children, .. } => {
                    for (k, c) in children {
                        path.push(k.clone());
                        walk(c, path, pred, out);
                        path.pop();
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), pred, &mut out);
        out
    }

    pub fn leaf_paths(&self) -> Vec<Vec<String>> {
        self.leaves().into_iter().map(|(p, _)| p).collect()
    }

    pub fn to_json(&self) -> Json {
        match self {
            Node::Leaf(l) => l.value.clone(),
            Node::Table { children, .. } => {
                Json::Object(children.iter().map(|(k, c)| (k.clone(), c.to_json())).collect())
            }
        }
    }

    /// The JSON with every secret leaf replaced by `***`.
    pub fn to_redacted_json(&self) -> Json {
        match self {
            Node::Leaf(l) => super::secrets::mask_value(&l.value, l.secret, &super::secrets::Redactor::default()),
            Node::Table { children, .. } => Json::Object(
                children
                    .iter()
                    .map(|(k, c)| (k.clone(), c.to_redacted_json()))
                    .collect(),
            ),
        }
    }
}

/// `a.b.c`; segments that contain dots or spaces are quoted as in TOML.
pub fn key_string(path: &[String]) -> String {
    path.iter()
        .map(|s| {
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                s.clone()
            } else {
                format!("\"{s}\"")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The most parts a key path may have (`a.b.c` has 3). Deeper trees are
/// refused where they are written, before any walk over them: no real
/// configuration comes close, and every walk stays shallow.
pub const MAX_KEY_DEPTH: usize = 64;

/// Inverse of [`key_string`] for the simple (unquoted) case used on the command line.
pub fn parse_key(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in key.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::table as parse;
    use crate::config::tree::Format;
    use crate::source::{Loc, SourceFile};
    use proptest::prelude::*;

    fn layer(name: &str, text: &str) -> IndexMap<String, Entry> {
        let f = SourceFile::new(format!("{name}.toml"), text);
        parse(&f, Format::Toml, name).unwrap()
    }

    #[test]
    fn tables_merge_and_scalars_replace_with_history() {
        let mut root = Node::default();
        root.merge_table(&layer("base", "[db]\npool = 5\nhosts = [\"a\", \"b\"]\nname = \"x\"\n"));
        root.merge_table(&layer("prod", "[db]\npool = 20\nhosts = [\"c\"]\n"));
        let pool = root.leaf(&parse_key("db.pool")).unwrap();
        assert_eq!(pool.value, 20);
        assert_eq!(pool.origin.layer, "prod");
        assert_eq!(pool.history.len(), 1);
        assert_eq!(pool.history[0].1.layer, "base");
        assert_eq!(
            root.leaf(&parse_key("db.hosts")).unwrap().value,
            serde_json::json!(["c"])
        );
        assert_eq!(root.leaf(&parse_key("db.name")).unwrap().origin.layer, "base");
    }

    // Generated layers of small integer-valued keys: the last layer that sets
    // a key wins, its origin names that layer, and history lists the rest.
    proptest! {
        #[test]
        fn precedence_holds_and_origins_point_at_the_winning_layer(
            layers in proptest::collection::vec(
                proptest::collection::btree_map("[a-c]\\.[x-z]", 0i64..100, 0..6), 1..6)
        ) {
            let mut root = Node::default();
            for (i, l) in layers.iter().enumerate() {
                let mut text = String::new();
                for (k, v) in l {
                    text.push_str(&format!("{k} = {v}\n"));
                }
                root.merge_table(&layer(&format!("l{i}"), &text));
            }
            let mut expected: std::collections::BTreeMap<&String, (usize, i64, usize)> = Default::default();
            for (i, l) in layers.iter().enumerate() {
                for (k, v) in l {
                    let e = expected.entry(k).or_insert((i, *v, 0));
                    e.2 += 1;
                    e.0 = i;
                    e.1 = *v;
                }
            }
            prop_assert_eq!(root.leaves().len(), expected.len());
            for (k, (i, v, times)) in expected {
                let leaf = root.leaf(&parse_key(k)).unwrap();
                prop_assert_eq!(&leaf.value, &serde_json::json!(v));
                prop_assert_eq!(&leaf.origin.layer, &format!("l{i}"));
                prop_assert_eq!(leaf.history.len(), times - 1);
                let Loc::File { file, .. } = &leaf.origin.loc else { panic!() };
                prop_assert_eq!(&file.name, &format!("l{i}.toml"));
            }
        }

        // Merging a table by value gives the same tree as merging a copy,
        // tables replacing leaves and leaves replacing tables included.
        #[test]
        fn merging_by_value_equals_merging_a_copy(
            layers in proptest::collection::vec(
                proptest::collection::btree_map("[a-b](\\.[x-y]){0,2}", 0i64..100, 0..6), 1..5)
        ) {
            let (mut copied, mut moved) = (Node::default(), Node::default());
            for (i, l) in layers.iter().enumerate() {
                let mut text = String::new();
                for (k, v) in l {
                    text.push_str(&format!("{k} = {v}\n"));
                }
                let Ok(table) = parse(&SourceFile::new(format!("l{i}.toml"), text), Format::Toml, "l") else {
                    continue; // a key both a table and a value in one layer
                };
                copied.merge_table(&table);
                moved.merge_owned(table);
            }
            prop_assert_eq!(format!("{copied:?}"), format!("{moved:?}"));
        }
    }
}
