//! Spanned value trees: every parsed document (TOML, JSON, YAML, dotenv,
//! environment variables, `--set`) becomes a [`Tree`] whose nodes remember
//! where they were written. This module parses and nothing else: it never
//! merges, interpolates or validates.

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value as Json;

/// A source document kept in memory so diagnostics can show the offending
/// line without a reporter ever re-reading the file.
#[derive(Debug)]
pub struct SourceFile {
    /// Path as shown to the user (relative to the project root).
    pub name: String,
    pub text: String,
    /// Byte offset of each line's start, built on first use.
    lines: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            text: text.into(),
            lines: std::sync::OnceLock::new(),
        })
    }

    fn line_starts(&self) -> &[usize] {
        self.lines.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let starts = self.line_starts();
        let line = starts.partition_point(|&s| s <= offset).max(1);
        let column = self.text[starts[line - 1]..offset].chars().count() + 1;
        (line as u32, column as u32)
    }

    /// Byte offset of a 1-based line and 0-based character column.
    pub fn offset_of(&self, line: usize, col0: usize) -> usize {
        let starts = self.line_starts();
        let Some(&start) = starts.get(line.max(1) - 1) else {
            return self.text.len();
        };
        let end = starts.get(line).copied().unwrap_or(self.text.len());
        let l = &self.text[start..end];
        start
            + l.char_indices()
                .nth(col0)
                .map_or(l.trim_end_matches('\n').len(), |(b, _)| b)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Where a value was set.
#[derive(Debug, Clone)]
pub enum Loc {
    File {
        file: Arc<SourceFile>,
        offset: usize,
        len: usize,
    },
    EnvVar(String),
    Url(String),
    Cli(String),
}

/// The layer a value came from and the exact place inside it.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Layer name: `base`, `prod`, a `[[source]]` name, or `--set`.
    pub layer: String,
    pub loc: Loc,
    /// The value arrived as text with no type of its own (environment
    /// variables, dotenv, `--set`, interpolation), so the schema decides its type.
    pub untyped: bool,
}

impl Origin {
    pub fn file_pos(&self) -> Option<(&str, u32, u32)> {
        match &self.loc {
            Loc::File { file, offset, .. } => {
                let (l, c) = file.line_col(*offset);
                Some((&file.name, l, c))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Loc::File { .. } => {
                let (file, line, col) = self.file_pos().expect("file loc");
                write!(f, "{file}:{line}:{col}")
            }
            Loc::EnvVar(v) => write!(f, "env:{v}"),
            Loc::Url(u) => write!(f, "{}", crate::config::secrets::redact_url_passwords(u)),
            Loc::Cli(a) => write!(f, "--set {a}"),
        }
    }
}

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
        return match parse_dotenv(file, &origin)? {
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

/// `KEY=value` lines; `export`, comments and single/double quotes as in
/// docker-compose and dotenv. Keys keep their case here; the source decides.
fn parse_dotenv(file: &SourceFile, origin: &dyn Fn(usize, usize) -> Origin) -> Result<Tree, ParseFailure> {
    let mut map = IndexMap::new();
    let mut offset = 0;
    for line in file.text.split_inclusive('\n') {
        let line_off = offset;
        offset += line.len();
        let trimmed = line.trim_end_matches(['\n', '\r']);
        let body = trimmed.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = trimmed.len() - body.len();
        let body_off = line_off + indent;
        let (body, body_off) = match body.strip_prefix("export ") {
            Some(rest) => (rest.trim_start(), body_off + (body.len() - rest.trim_start().len())),
            None => (body, body_off),
        };
        let Some(eq) = body.find('=') else {
            return Err(ParseFailure {
                message: "expected KEY=value".into(),
                offset: body_off,
                len: body.len().max(1),
            });
        };
        let key = body[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return Err(ParseFailure {
                message: format!("invalid variable name `{key}`"),
                offset: body_off,
                len: eq.max(1),
            });
        }
        let raw = &body[eq + 1..];
        let lead = raw.len() - raw.trim_start().len();
        let raw = raw.trim_start();
        let voff = body_off + eq + 1 + lead;
        let value = if let Some(rest) = raw.strip_prefix('"') {
            let end = rest.find('"').ok_or(ParseFailure {
                message: "unterminated double quote".into(),
                offset: voff,
                len: 1,
            })?;
            rest[..end].replace("\\n", "\n").replace("\\\"", "\"")
        } else if let Some(rest) = raw.strip_prefix('\'') {
            let end = rest.find('\'').ok_or(ParseFailure {
                message: "unterminated single quote".into(),
                offset: voff,
                len: 1,
            })?;
            rest[..end].to_string()
        } else {
            let v = match raw.find(" #") {
                Some(i) => &raw[..i],
                None => raw,
            };
            v.trim_end().to_string()
        };
        map.insert(
            key.to_string(),
            Entry {
                node: Tree::Leaf(Json::String(value)),
                origin: origin(voff, raw.trim_end().len().max(1)),
            },
        );
    }
    Ok(Tree::Table(map))
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

    #[test]
    fn dotenv_values_are_located() {
        let f = SourceFile::new("a.env", "# c\nexport A=1\nB='x y'\n");
        let t = parse(&f, Format::Dotenv, "d").unwrap();
        assert_eq!(pos(&t, &["A"]), (2, 10));
        assert_eq!(t["B"].node.to_json(), "x y");
    }
}
