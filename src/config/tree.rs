//! Spanned value trees: every parsed document (TOML, JSON, YAML, dotenv,
//! environment variables, `--set`) becomes a [`Tree`] whose nodes remember
//! where they were written. This module parses and nothing else: it never
//! merges, interpolates or validates.

use std::sync::Arc;

pub use crate::source::{Loc, Origin, SourceFile};

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
    let tree = match format {
        Format::Toml => parse_toml(&file.text, &origin)?,
        Format::Json => {
            // serde_json gives the precise syntax error; the YAML event parser
            // (JSON is a subset of YAML 1.2) then gives the spans.
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&file.text) {
                let offset = file.offset_of(e.line(), e.column().saturating_sub(1));
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                return Err(ParseFailure {
                    message: msg,
                    offset,
                    len: 1,
                });
            }
            parse_yaml(file, &origin)?
        }
        Format::Yaml => parse_yaml(file, &origin)?,
        Format::Dotenv => super::dotenv::parse(file, layer)?,
    };
    match tree {
        Tree::Table(t) => Ok(t),
        Tree::Leaf(Json::Null) => Ok(IndexMap::new()),
        Tree::Leaf(v) => Err(ParseFailure {
            message: format!("expected a table of keys at the top level, found {}", json_type(&v)),
            offset: 0,
            len: file.text.len().min(1),
        }),
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

fn parse_toml(text: &str, origin: &dyn Fn(usize, usize) -> Origin) -> Result<Tree, ParseFailure> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        ParseFailure {
            message: e.message().trim().to_string(),
            offset: span.start,
            len: span.len().max(1),
        }
    })?;
    fn conv(v: &DeValue<'_>) -> Result<Json, String> {
        Ok(match v {
            DeValue::String(s) => Json::String(s.to_string()),
            DeValue::Integer(i) => {
                let digits = i.as_str().replace('_', "");
                let n = i64::from_str_radix(&digits, i.radix()).map_err(|e| e.to_string())?;
                Json::from(n)
            }
            DeValue::Float(f) => {
                let s = f.as_str().replace('_', "");
                let x: f64 = match s.as_str() {
                    "inf" | "+inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    _ => s.parse().map_err(|_| format!("invalid float {s}"))?,
                };
                serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number)
            }
            DeValue::Boolean(b) => Json::Bool(*b),
            DeValue::Datetime(d) => Json::String(d.to_string()),
            DeValue::Array(a) => Json::Array(a.iter().map(|e| conv(e.get_ref())).collect::<Result<_, _>>()?),
            DeValue::Table(t) => Json::Object(
                t.iter()
                    .map(|(k, v)| Ok((k.get_ref().to_string(), conv(v.get_ref())?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }
    fn walk(t: &DeTable<'_>, origin: &dyn Fn(usize, usize) -> Origin) -> Result<IndexMap<String, Entry>, ParseFailure> {
        let mut out = IndexMap::new();
        for (k, v) in t.iter() {
            let span = v.span();
            let node = match v.get_ref() {
                DeValue::Table(inner) => Tree::Table(walk(inner, origin)?),
                other => Tree::Leaf(conv(other).map_err(|message| ParseFailure {
                    message,
                    offset: span.start,
                    len: span.len(),
                })?),
            };
            // Tables point at their key (header), leaves at their value.
            let span = if matches!(node, Tree::Table(_)) { k.span() } else { span };
            out.insert(
                k.get_ref().to_string(),
                Entry {
                    node,
                    origin: origin(span.start, span.len()),
                },
            );
        }
        Ok(out)
    }
    Ok(Tree::Table(walk(doc.get_ref(), origin)?))
}

fn parse_yaml(file: &SourceFile, origin: &dyn Fn(usize, usize) -> Origin) -> Result<Tree, ParseFailure> {
    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
    use yaml_rust2::scanner::{Marker, TScalarStyle};

    struct Rx {
        events: Vec<(Event, Marker)>,
    }
    impl MarkedEventReceiver for Rx {
        fn on_event(&mut self, ev: Event, mark: Marker) {
            self.events.push((ev, mark));
        }
    }
    let mut rx = Rx { events: Vec::new() };
    let mut parser = Parser::new_from_str(&file.text);
    parser.load(&mut rx, false).map_err(|e| {
        let m = e.marker();
        ParseFailure {
            message: e.info().to_string(),
            offset: file.offset_of(m.line(), m.col()),
            len: 1,
        }
    })?;

    let offset_of = |m: &Marker| file.offset_of(m.line(), m.col());
    let scalar = |s: &str, style: TScalarStyle| -> Json {
        if style != TScalarStyle::Plain {
            return Json::String(s.to_string());
        }
        match s {
            "" | "~" | "null" | "Null" | "NULL" => Json::Null,
            "true" | "True" | "TRUE" => Json::Bool(true),
            "false" | "False" | "FALSE" => Json::Bool(false),
            _ => {
                if let Ok(i) = s.parse::<i64>() {
                    Json::from(i)
                } else if let Some(f) = s
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && s.chars().any(|c| c.is_ascii_digit()))
                {
                    serde_json::Number::from_f64(f).map_or(Json::String(s.to_string()), Json::Number)
                } else {
                    Json::String(s.to_string())
                }
            }
        }
    };

    struct Cursor<'e> {
        events: &'e [(Event, Marker)],
        pos: usize,
    }
    fn node(
        c: &mut Cursor<'_>,
        file: &SourceFile,
        origin: &dyn Fn(usize, usize) -> Origin,
        offset_of: &dyn Fn(&Marker) -> usize,
        scalar: &dyn Fn(&str, TScalarStyle) -> Json,
    ) -> Result<(Tree, usize, usize), ParseFailure> {
        let (ev, mark) = c.events.get(c.pos).cloned().ok_or(ParseFailure {
            message: "unexpected end of document".into(),
            offset: file.text.len(),
            len: 0,
        })?;
        c.pos += 1;
        let start = offset_of(&mark);
        match ev {
            Event::Scalar(s, style, _, _) => {
                let len = s.len().max(1);
                Ok((Tree::Leaf(scalar(&s, style)), start, len))
            }
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                loop {
                    if matches!(c.events.get(c.pos), Some((Event::SequenceEnd, _))) {
                        c.pos += 1;
                        break;
                    }
                    let (t, _, _) = node(c, file, origin, offset_of, scalar)?;
                    items.push(t.to_json());
                }
                Ok((Tree::Leaf(Json::Array(items)), start, 1))
            }
            Event::MappingStart(..) => {
                let mut map = IndexMap::new();
                loop {
                    if matches!(c.events.get(c.pos), Some((Event::MappingEnd, _))) {
                        c.pos += 1;
                        break;
                    }
                    let (k, kstart, klen) = node(c, file, origin, offset_of, scalar)?;
                    let key = match k {
                        Tree::Leaf(Json::String(s)) => s,
                        Tree::Leaf(other @ (Json::Number(_) | Json::Bool(_))) => other.to_string(),
                        _ => {
                            return Err(ParseFailure {
                                message: "only plain keys are supported".into(),
                                offset: kstart,
                                len: klen,
                            });
                        }
                    };
                    let (v, vstart, vlen) = node(c, file, origin, offset_of, scalar)?;
                    let (o, l) = if matches!(v, Tree::Table(_)) {
                        (kstart, klen)
                    } else {
                        (vstart, vlen)
                    };
                    if map.contains_key(&key) {
                        return Err(ParseFailure {
                            message: format!("duplicate key `{key}`"),
                            offset: kstart,
                            len: klen,
                        });
                    }
                    map.insert(
                        key,
                        Entry {
                            node: v,
                            origin: origin(o, l),
                        },
                    );
                }
                Ok((Tree::Table(map), start, 1))
            }
            Event::Alias(_) => Err(ParseFailure {
                message: "YAML aliases are not supported in configuration files".into(),
                offset: start,
                len: 1,
            }),
            _ => Err(ParseFailure {
                message: "unexpected YAML structure".into(),
                offset: start,
                len: 1,
            }),
        }
    }

    let events = &rx.events;
    let Some(first) = events.iter().position(|(e, _)| matches!(e, Event::DocumentStart)) else {
        return Ok(Tree::Leaf(Json::Null));
    };
    if matches!(events.get(first + 1), Some((Event::DocumentEnd, _)) | None) {
        return Ok(Tree::Leaf(Json::Null));
    }
    let mut c = Cursor { events, pos: first + 1 };
    let (t, _, _) = node(&mut c, file, origin, &offset_of, &scalar)?;
    Ok(t)
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
