//! Spanned value trees: every parsed document (TOML, JSON, YAML, dotenv,
//! environment variables, `--set`) becomes a [`Tree`] whose nodes remember
//! where they were written. This module parses and nothing else: it never
//! merges, interpolates or validates.

use std::sync::Arc;

use crate::source::{Loc, Origin, SourceFile};

use indexmap::IndexMap;
use serde_json::Value as Json;

/// A parsed document: tables with spanned keys, leaves as JSON values.
#[derive(Debug, Clone)]
pub enum Tree {
    Table(IndexMap<String, Entry>),
    Leaf(Json),
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub node: Tree,
    /// For leaves, the value's span; for tables, the header or key's span.
    pub origin: Origin,
}

/// A parse failure located in its file.
#[derive(Debug)]
pub struct ParseFailure {
    pub message: String,
    pub offset: usize,
    pub len: usize,
}

impl Tree {
    pub fn empty() -> Self {
        Tree::Table(IndexMap::new())
    }

    pub fn to_json(&self) -> Json {
        match self {
            Tree::Leaf(v) => v.clone(),
            Tree::Table(t) => Json::Object(t.iter().map(|(k, e)| (k.clone(), e.node.to_json())).collect()),
        }
    }

    /// Follow a JSON pointer as far as it goes; returns the deepest entry.
    pub fn deepest<'a>(&'a self, segments: &[String]) -> Option<&'a Entry> {
        let mut cur = self;
        let mut found = None;
        for s in segments {
            match cur {
                Tree::Table(t) => match t.get(s) {
                    Some(e) => {
                        found = Some(e);
                        cur = &e.node;
                    }
                    None => break,
                },
                Tree::Leaf(_) => break,
            }
        }
        found
    }
}

/// The document format, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
    Yaml,
    Dotenv,
}

impl Format {
    pub fn from_path(path: &str) -> Option<Self> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".toml") {
            Some(Format::Toml)
        } else if lower.ends_with(".json") {
            Some(Format::Json)
        } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            Some(Format::Yaml)
        } else if lower.ends_with(".env") || lower.rsplit('/').next().is_some_and(|n| n.starts_with(".env")) {
            Some(Format::Dotenv)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Toml => "TOML",
            Format::Json => "JSON",
            Format::Yaml => "YAML",
            Format::Dotenv => "dotenv",
        }
    }
}

use super::spanned::{self, SVal, Spanned};

/// Parse a document into a table tree. The root must be a table.
pub fn parse(file: &Arc<SourceFile>, format: Format, layer: &str) -> Result<IndexMap<String, Entry>, ParseFailure> {
    let origin = |offset: usize, len: usize| Origin {
        layer: layer.to_string(),
        loc: Loc::File {
            file: file.clone(),
            offset,
            len,
        },
        untyped: format == Format::Dotenv,
    };
    if format == Format::Dotenv {
        return match super::dotenv::parse(file, layer)? {
            Tree::Table(t) => Ok(t),
            Tree::Leaf(_) => Ok(IndexMap::new()),
        };
    }
    match spanned::parse(file, format)? {
        None => Ok(IndexMap::new()),
        Some(Spanned {
            value: SVal::Map(m), ..
        }) => Ok(entries(m, &origin)),
        Some(Spanned {
            value: SVal::Scalar(Json::Null),
            ..
        }) => Ok(IndexMap::new()),
        Some(other) => Err(ParseFailure {
            message: format!(
                "expected a table of keys at the top level, found {}",
                json_type(&other.to_json())
            ),
            offset: other.offset,
            len: other.len.max(1),
        }),
    }
}

/// Tables keep their spans (pointing at their key or header); everything
/// else becomes a leaf pointing at its value.
fn entries(
    m: IndexMap<String, (spanned::Span, Spanned)>,
    origin: &dyn Fn(usize, usize) -> Origin,
) -> IndexMap<String, Entry> {
    m.into_iter()
        .map(|(k, ((ko, kl), v))| {
            let entry = match v.value {
                SVal::Map(inner) => Entry {
                    node: Tree::Table(entries(inner, origin)),
                    origin: origin(ko, kl),
                },
                _ => Entry {
                    origin: origin(v.offset, v.len),
                    node: Tree::Leaf(v.to_json()),
                },
            };
            (k, entry)
        })
        .collect()
}

pub fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(t: &IndexMap<String, Entry>, path: &[&str]) -> (u32, u32) {
        let mut e = &t[path[0]];
        for p in &path[1..] {
            let Tree::Table(inner) = &e.node else { panic!() };
            e = &inner[*p];
        }
        let o = e.origin.file_pos().unwrap();
        (o.1, o.2)
    }

    #[test]
    fn toml_leaves_point_at_their_values() {
        let f = SourceFile::new("a.toml", "[http]\nport = 8080\n\n[http.client]\ntimeout = \"30s\"\n");
        let t = parse(&f, Format::Toml, "base").unwrap();
        assert_eq!(pos(&t, &["http", "port"]), (2, 8));
        assert_eq!(pos(&t, &["http", "client", "timeout"]), (5, 11));
    }

    #[test]
    fn yaml_and_json_leaves_point_at_their_values() {
        let f = SourceFile::new("a.yaml", "http:\n  port: 8080\n  name: \"x\"\n");
        let t = parse(&f, Format::Yaml, "c").unwrap();
        assert_eq!(pos(&t, &["http", "port"]), (2, 9));
        assert_eq!(t["http"].node.to_json()["port"], 8080);
        let f = SourceFile::new("a.json", "{\n  \"http\": {\"port\": 80}\n}");
        let t = parse(&f, Format::Json, "c").unwrap();
        assert_eq!(pos(&t, &["http", "port"]), (2, 20));
    }

    #[test]
    fn json_syntax_errors_are_located() {
        let f = SourceFile::new("a.json", "{\n  \"a\": 1,\n}");
        let e = parse(&f, Format::Json, "c").unwrap_err();
        assert_eq!(f.line_col(e.offset).0, 3);
    }
}
