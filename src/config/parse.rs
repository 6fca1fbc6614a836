//! Reading a document of any format: the one place that picks a parser
//! by format. TOML, JSON and YAML become a [`Spanned`] document
//! ([`document`]); every format, dotenv included, becomes the table tree
//! layering works on ([`table`]). The parsers below it know nothing of each
//! other or of this dispatch.

use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::spanned::{Located, SVal, Span, Spanned};
use super::tree::{Entry, Format, ParseFailure, Tree, json_type};
use crate::source::{Loc, Origin, SourceFile};

/// Parse a document into a table tree. The root must be a table.
pub fn table(file: &Arc<SourceFile>, format: Format, layer: &str) -> Result<IndexMap<String, Entry>, ParseFailure> {
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
    match document(file, format)? {
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
fn entries(m: IndexMap<String, (Span, Spanned)>, origin: &dyn Fn(usize, usize) -> Origin) -> IndexMap<String, Entry> {
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

/// Parse a TOML, JSON or YAML document. `None` for an empty document.
pub fn document(file: &SourceFile, format: Format) -> Result<Option<Spanned>, ParseFailure> {
    match format {
        Format::Toml => super::toml_doc::parse(&file.text).map(Some),
        Format::Json => super::json::parse(file).map(Some),
        Format::Yaml => super::yaml::parse(file),
        Format::Dotenv => Err(ParseFailure {
            message: "dotenv files have no nested values".into(),
            offset: 0,
            len: 0,
        }),
    }
}

/// The span of the value at `segments` inside a file, re-read from its text
/// in memory. Used only to place an error precisely inside an array.
pub fn locate(file: &SourceFile, segments: &[String]) -> Option<Located> {
    let format = Format::from_path(&file.name).filter(|f| *f != Format::Dotenv)?;
    let doc = document(file, format).ok()??;
    Some(doc.locate(segments))
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
        let t = table(&f, Format::Toml, "base").unwrap();
        assert_eq!(pos(&t, &["http", "port"]), (2, 8));
        assert_eq!(pos(&t, &["http", "client", "timeout"]), (5, 11));
    }

    #[test]
    fn yaml_and_json_leaves_point_at_their_values() {
        let f = SourceFile::new("a.yaml", "http:\n  port: 8080\n  name: \"x\"\n");
        let t = table(&f, Format::Yaml, "c").unwrap();
        assert_eq!(pos(&t, &["http", "port"]), (2, 9));
        assert_eq!(t["http"].node.to_json()["port"], 8080);
        let f = SourceFile::new("a.json", "{\n  \"http\": {\"port\": 80}\n}");
        let t = table(&f, Format::Json, "c").unwrap();
        assert_eq!(pos(&t, &["http", "port"]), (2, 20));
    }

    #[test]
    fn json_syntax_errors_are_located() {
        let f = SourceFile::new("a.json", "{\n  \"a\": 1,\n}");
        let e = table(&f, Format::Json, "c").unwrap_err();
        assert_eq!(f.line_col(e.offset).0, 3);
    }
}
