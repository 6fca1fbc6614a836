//! YAML into a [`Spanned`] document, resolved with the YAML 1.2 core schema
//! (what a conforming 1.2 parser such as ruamel.yaml reads), with the
//! features real files use: anchors, aliases and `<<` merge keys (compose,
//! GitLab CI, CircleCI), and the standard `!!str`/`!!int`/`!!float`/`!!bool`/
//! `!!null` tags. The walk over parser events is iterative with a depth
//! limit, and alias expansion is bounded, so no document can overflow the
//! stack or expand without limit. One document per file.

use std::collections::HashMap;
use std::rc::Rc;

use indexmap::IndexMap;
use serde_json::Value as Json;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::spanned::{MAX_DEPTH, SVal, Span, Spanned, finite, too_deep};
use super::tree::ParseFailure;
use crate::source::SourceFile;

/// Values aliases may add to a document, beyond the ones written in it: a
/// "billion laughs" file stops here instead of exhausting memory.
pub const MAX_ALIAS_VALUES: usize = 200_000;

const CORE: &str = "tag:yaml.org,2002:";

pub fn parse(file: &SourceFile) -> Result<Option<Spanned>, ParseFailure> {
    let mut b = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        expanded: 0,
        root: None,
    };
    let mut parser = Parser::new_from_str(&file.text);
    let mut documents = 0;
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| {
            let m = e.marker();
            ParseFailure {
                message: e.info().to_string(),
                offset: file.offset_of(m.line(), m.col()),
                len: 1,
            }
        })?;
        let at = b.offset(&mark);
        match ev {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(ParseFailure {
                        message: "a second YAML document in one file: envgate reads one document per file".into(),
                        offset: at,
                        len: 3.min(file.text.len() - at),
                    });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let len = match style {
                    TScalarStyle::Plain => text.len(),
                    TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => text.len() + 2,
                    _ => 1,
                }
                .clamp(1, (file.text.len() - at).max(1));
                let merge = style == TScalarStyle::Plain
                    && text == "<<"
                    && tag.as_ref().is_none_or(|t| full(t) == format!("{CORE}merge"));
                let value = scalar(&text, style, tag.as_ref()).map_err(|message| ParseFailure {
                    message,
                    offset: at,
                    len,
                })?;
                b.produce(Spanned::scalar(value, at, len), anchor, merge, 1)?;
            }
            Event::SequenceStart(anchor, tag) => {
                b.check_collection_tag(tag.as_ref(), "seq", at)?;
                b.push(
                    Frame::Seq {
                        items: Vec::new(),
                        start: at,
                        anchor,
                    },
                    at,
                )?;
            }
            Event::MappingStart(anchor, tag) => {
                b.check_collection_tag(tag.as_ref(), "map", at)?;
                b.push(
                    Frame::Map {
                        entries: IndexMap::new(),
                        merges: Vec::new(),
                        key: None,
                        start: at,
                        anchor,
                    },
                    at,
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = b.stack.pop().ok_or_else(|| ParseFailure {
                    message: "unbalanced YAML structure".into(),
                    offset: at,
                    len: 1,
                })?;
                let (node, anchor, depth) = b.close(frame)?;
                b.produce(node, anchor, false, depth)?;
            }
            Event::Alias(id) => {
                let Some((node, count, depth)) = b.anchors.get(&id).cloned() else {
                    return Err(ParseFailure {
                        message: "alias to a node that contains it: recursive aliases are not supported".into(),
                        offset: at,
                        len: 1,
                    });
                };
                b.expanded += count;
                if b.expanded > MAX_ALIAS_VALUES {
                    return Err(ParseFailure {
                        message: format!(
                            "aliases expand this document past {MAX_ALIAS_VALUES} values (a \"billion laughs\" document?)"
                        ),
                        offset: at,
                        len: 1,
                    });
                }
                if b.stack.len() + depth > MAX_DEPTH {
                    return Err(ParseFailure {
                        message: too_deep(),
                        offset: at,
                        len: 1,
                    });
                }
                b.produce((*node).clone(), 0, false, depth)?;
            }
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(b.root)
}

enum Frame {
    Seq {
        items: Vec<Spanned>,
        start: usize,
        anchor: usize,
    },
    Map {
        entries: IndexMap<String, (Span, Spanned)>,
        merges: Vec<Spanned>,
        key: Option<Key>,
        start: usize,
        anchor: usize,
    },
}

enum Key {
    Name(String, Span),
    Merge,
}

struct Builder<'f> {
    file: &'f SourceFile,
    stack: Vec<Frame>,
    /// Completed anchored nodes: the node, its number of values, its depth.
    anchors: HashMap<usize, (Rc<Spanned>, usize, usize)>,
    expanded: usize,
    root: Option<Spanned>,
}

impl Builder<'_> {
    fn offset(&self, m: &Marker) -> usize {
        self.file.offset_of(m.line(), m.col())
    }

    fn push(&mut self, frame: Frame, at: usize) -> Result<(), ParseFailure> {
        if self.stack.len() + 1 > MAX_DEPTH {
            return Err(ParseFailure {
                message: too_deep(),
                offset: at,
                len: 1,
            });
        }
        self.stack.push(frame);
        Ok(())
    }

    fn check_collection_tag(&self, tag: Option<&Tag>, kind: &str, at: usize) -> Result<(), ParseFailure> {
        let Some(t) = tag else { return Ok(()) };
        let name = full(t);
        if name == "!" || name == format!("{CORE}{kind}") {
            return Ok(());
        }
        Err(ParseFailure {
            message: format!(
                "unsupported YAML tag `{}` on a {}",
                shown(t),
                if kind == "map" { "mapping" } else { "sequence" }
            ),
            offset: at,
            len: 1,
        })
    }

    /// A finished sequence or mapping, its anchor and its depth.
    fn close(&mut self, frame: Frame) -> Result<(Spanned, usize, usize), ParseFailure> {
        match frame {
            Frame::Seq { items, start, anchor } => {
                let depth = 1 + items.iter().map(depth_of).max().unwrap_or(0);
                Ok((
                    Spanned {
                        value: SVal::Seq(items),
                        offset: start,
                        len: 1,
                    },
                    anchor,
                    depth,
                ))
            }
            Frame::Map {
                entries,
                merges,
                start,
                anchor,
                ..
            } => {
                let entries = if merges.is_empty() {
                    entries
                } else {
                    merged(entries, merges)?
                };
                let depth = 1 + entries.values().map(|(_, v)| depth_of(v)).max().unwrap_or(0);
                Ok((
                    Spanned {
                        value: SVal::Map(entries),
                        offset: start,
                        len: 1,
                    },
                    anchor,
                    depth,
                ))
            }
        }
    }

    /// Hand a finished node to its parent (or make it the document).
    fn produce(&mut self, node: Spanned, anchor: usize, merge: bool, depth: usize) -> Result<(), ParseFailure> {
        if anchor != 0 {
            let count = node.count();
            self.anchors.insert(anchor, (Rc::new(node.clone()), count, depth));
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                entries, merges, key, ..
            }) => match key.take() {
                None => {
                    if merge {
                        *key = Some(Key::Merge);
                        return Ok(());
                    }
                    let name = match &node.value {
                        SVal::Scalar(Json::String(s)) => s.clone(),
                        SVal::Scalar(Json::Null) => "null".to_string(),
                        SVal::Scalar(other) => other.to_string(),
                        _ => {
                            return Err(ParseFailure {
                                message: "a sequence or mapping as a key: only scalar keys are supported".into(),
                                offset: node.offset,
                                len: node.len,
                            });
                        }
                    };
                    *key = Some(Key::Name(name, (node.offset, node.len)));
                    Ok(())
                }
                Some(Key::Merge) => {
                    if !merges.is_empty() {
                        return Err(ParseFailure {
                            message: "duplicate key `<<`".into(),
                            offset: node.offset,
                            len: node.len,
                        });
                    }
                    merges.push(node);
                    Ok(())
                }
                Some(Key::Name(name, span)) => {
                    if entries.contains_key(&name) {
                        return Err(ParseFailure {
                            message: format!("duplicate key `{name}`"),
                            offset: span.0,
                            len: span.1,
                        });
                    }
                    entries.insert(name, (span, node));
                    Ok(())
                }
            },
        }
    }
}

fn depth_of(s: &Spanned) -> usize {
    match &s.value {
        SVal::Scalar(_) => 0,
        SVal::Seq(items) => 1 + items.iter().map(depth_of).max().unwrap_or(0),
        SVal::Map(m) => 1 + m.values().map(|(_, v)| depth_of(v)).max().unwrap_or(0),
    }
}

/// `<<: *a` or `<<: [*a, *b]`: keys of the merged mappings that the mapping
/// does not set itself; an earlier mapping in the list wins over a later one.
/// Merged keys come first, as PyYAML and ruamel order them.
fn merged(
    explicit: IndexMap<String, (Span, Spanned)>,
    merges: Vec<Spanned>,
) -> Result<IndexMap<String, (Span, Spanned)>, ParseFailure> {
    let mut sources = Vec::new();
    for m in merges {
        match m.value {
            SVal::Map(entries) => sources.push(entries),
            SVal::Seq(items) => {
                for item in items {
                    match item.value {
                        SVal::Map(entries) => sources.push(entries),
                        _ => return Err(not_mergeable(item.offset, item.len)),
                    }
                }
            }
            SVal::Scalar(_) => return Err(not_mergeable(m.offset, m.len)),
        }
    }
    let mut out = IndexMap::new();
    for src in sources {
        for (k, e) in src {
            out.entry(k).or_insert(e);
        }
    }
    for (k, e) in explicit {
        out.insert(k, e);
    }
    Ok(out)
}

fn not_mergeable(offset: usize, len: usize) -> ParseFailure {
    ParseFailure {
        message: "`<<` merges a mapping or a list of mappings".into(),
        offset,
        len,
    }
}

fn full(t: &Tag) -> String {
    format!("{}{}", t.handle, t.suffix)
}

fn shown(t: &Tag) -> String {
    match t.handle.strip_prefix(CORE) {
        Some(rest) => format!("!!{rest}{}", t.suffix),
        None => full(t),
    }
}

/// A scalar's value: plain scalars by the YAML 1.2 core schema, quoted and
/// block scalars as text, tagged ones as their tag says.
fn scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Json, String> {
    let Some(tag) = tag else {
        return if style == TScalarStyle::Plain {
            core(text)
        } else {
            Ok(Json::String(text.to_string()))
        };
    };
    let name = full(tag);
    let bad = |what: &str| format!("`{text}` is not {what} (tagged `{}`)", shown(tag));
    match name.strip_prefix(CORE) {
        _ if name == "!" => Ok(Json::String(text.to_string())),
        Some("str" | "binary" | "timestamp") => Ok(Json::String(text.to_string())),
        Some("null") => match core(text) {
            Ok(Json::Null) => Ok(Json::Null),
            _ => Err(bad("null")),
        },
        Some("bool") => match core(text) {
            Ok(b @ Json::Bool(_)) => Ok(b),
            _ => Err(bad("a boolean")),
        },
        Some("int") => match core(text)? {
            n @ Json::Number(_) if is_int_text(text) => Ok(n),
            _ => Err(bad("an integer")),
        },
        Some("float") => match core(text)? {
            Json::Number(n) => finite(n.as_f64().unwrap_or(f64::NAN), text),
            _ => Err(bad("a number")),
        },
        _ => Err(format!("unsupported YAML tag `{}`", shown(tag))),
    }
}

fn is_int_text(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    (!body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()))
        || s.strip_prefix("0o")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        || s.strip_prefix("0x")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The YAML 1.2 core schema (spec 1.2.2, section 10.3.2). Anything that is
/// not null, a boolean, an integer or a float is a string.
pub fn core(s: &str) -> Result<Json, String> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Json::Null),
        "true" | "True" | "TRUE" => return Ok(Json::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Json::Bool(false)),
        ".nan" | ".NaN" | ".NAN" => return finite(f64::NAN, s),
        _ => {}
    }
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return finite(f64::INFINITY, s);
    }
    if let Some(d) = s.strip_prefix("0o")
        && !d.is_empty()
        && d.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return Ok(radix(d, 8));
    }
    if let Some(d) = s.strip_prefix("0x")
        && !d.is_empty()
        && d.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Ok(radix(d, 16));
    }
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Ok(Json::from(i));
        }
        if let Ok(u) = s.parse::<u64>() {
            return Ok(Json::from(u));
        }
        return finite(s.parse::<f64>().unwrap_or(f64::INFINITY), s);
    }
    if is_float_text(unsigned) {
        return finite(s.parse::<f64>().unwrap_or(f64::NAN), s);
    }
    Ok(Json::String(s.to_string()))
}

fn radix(digits: &str, base: u32) -> Json {
    match u128::from_str_radix(digits, base) {
        Ok(n) if n <= i64::MAX as u128 => Json::from(n as i64),
        Ok(n) if n <= u64::MAX as u128 => Json::from(n as u64),
        // Too big for an integer: the nearest number, as JSON readers do.
        Ok(n) => serde_json::Number::from_f64(n as f64).map_or(Json::Null, Json::Number),
        Err(_) => Json::String(digits.to_string()),
    }
}

/// `( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`, unsigned.
fn is_float_text(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        (i, i - start)
    };
    let mut i = if b.first() == Some(&b'.') {
        let (j, n) = digits(1);
        if n == 0 {
            return false;
        }
        j
    } else {
        let (j, n) = digits(0);
        if n == 0 {
            return false;
        }
        if b.get(j) == Some(&b'.') { digits(j + 1).0 } else { j }
    };
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let (j, n) = digits(i);
        if n == 0 {
            return false;
        }
        i = j;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str) -> Result<Json, ParseFailure> {
        let f = SourceFile::new("a.yaml", text);
        Ok(parse(&f)?.map_or(Json::Null, |s| s.to_json()))
    }

    #[test]
    fn plain_scalars_follow_the_yaml_1_2_core_schema() {
        let doc = read(
            "a: 0o755\nb: 0x1F\nc: 0755\nd: yes\ne: ~\nf: 1.\ng: +.5\nh: 1e3\ni: 'true'\nj: 1_000\nk: 0b101\nl: -0x1F\nm: 2001-12-14\nn: TRUE\no: +12\n",
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"a": 493, "b": 31, "c": 755, "d": "yes", "e": null, "f": 1.0, "g": 0.5, "h": 1000.0,
                   "i": "true", "j": "1_000", "k": "0b101", "l": "-0x1F", "m": "2001-12-14", "n": true, "o": 12})
        );
    }

    #[test]
    fn infinity_and_nan_are_refused_where_they_are_written() {
        for (text, at) in [
            ("a: .inf\n", 3),
            ("a: -.Inf\n", 3),
            ("a: .nan\n", 3),
            ("a: !!float .inf\n", 11),
            ("a: 1e999\n", 3),
        ] {
            let e = read(text).unwrap_err();
            assert!(e.message.contains("not a finite number"), "{text}: {}", e.message);
            assert_eq!(e.offset, at, "{text}");
        }
    }

    #[test]
    fn standard_tags_decide_the_type() {
        let doc =
            read("a: !!str 123\nb: !!int \"42\"\nc: !!float '1'\nd: !!bool 'true'\ne: !!null ''\nf: ! 12\n").unwrap();
        assert_eq!(
            doc,
            json!({"a": "123", "b": 42, "c": 1.0, "d": true, "e": null, "f": "12"})
        );
        let e = read("a: !!int abc\n").unwrap_err();
        assert!(e.message.contains("not an integer"), "{}", e.message);
        let e = read("job:\n  script: !reference [.setup, script]\n").unwrap_err();
        assert_eq!(e.message, "unsupported YAML tag `!reference` on a sequence");
    }

    #[test]
    fn anchors_aliases_and_merge_keys_expand() {
        let doc = read(
            "base: &b\n  image: alpine\n  env: {A: 1}\nextra: &e {B: 2}\nsvc:\n  <<: [*b, *e]\n  image: debian\nlist: [*e, *e]\n",
        )
        .unwrap();
        assert_eq!(doc["svc"], json!({"image": "debian", "env": {"A": 1}, "B": 2}));
        assert_eq!(doc["list"], json!([{"B": 2}, {"B": 2}]));
        // an earlier mapping in the merge list wins
        let doc = read("a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n").unwrap();
        assert_eq!(doc["c"], json!({"x": 1, "y": 2}));
    }

    #[test]
    fn billion_laughs_stops_at_a_bound() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        let e = read(&text).unwrap_err();
        assert!(e.message.contains("billion laughs"), "{}", e.message);
    }

    #[test]
    fn deep_nesting_is_a_located_error_not_a_crash() {
        let text = format!("{}x\n", "- ".repeat(2000));
        assert!(text.len() > 4000);
        let e = read(&text).unwrap_err();
        assert_eq!(e.message, too_deep());
        assert_eq!(e.offset, 2 * MAX_DEPTH);
    }

    #[test]
    fn a_second_document_is_an_error_at_its_start() {
        let e = read("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.offset, 5);
        assert!(e.message.contains("second YAML document"));
    }

    #[test]
    fn keys_are_scalars_and_unique() {
        assert_eq!(
            read("1: a\ntrue: b\n~: c\n").unwrap(),
            json!({"1": "a", "true": "b", "null": "c"})
        );
        assert_eq!(read("a: 1\na: 2\n").unwrap_err().message, "duplicate key `a`");
        assert!(read("? [a]\n: 1\n").unwrap_err().message.contains("only scalar keys"));
    }

    #[test]
    fn array_elements_keep_their_spans() {
        let text = "steps:\n  - run: make\n  - run: test\n    bogus: 1\n";
        let f = SourceFile::new("a.yaml", text);
        let doc = parse(&f).unwrap().unwrap();
        let l = doc.locate(&["steps".into(), "1".into(), "bogus".into()]);
        assert_eq!(f.line_col(l.value.0), (4, 12));
        assert_eq!(f.line_col(l.key.unwrap().0), (4, 5));
    }
}
