//! Spanned value trees: every parsed document (TOML, JSON, YAML, dotenv,
//! environment variables, `--set`) becomes a [`Tree`] whose nodes remember
//! where they were written. The types only: `super::parse` builds them, and
//! nothing here merges, interpolates or validates.

use crate::source::Origin;

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
