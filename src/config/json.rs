//! JSON into a [`Spanned`] document. serde_json judges the syntax first, for
//! its precise messages; this reader then keeps a span on every value.
//! Duplicate keys are an error (JSON parsers disagree on which one wins).

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::spanned::{MAX_DEPTH, SVal, Spanned, too_deep};
use super::tree::ParseFailure;
use crate::source::SourceFile;

pub fn parse(file: &SourceFile) -> Result<Spanned, ParseFailure> {
    let text = file.text.strip_prefix('\u{feff}').unwrap_or(&file.text);
    let skipped = file.text.len() - text.len();
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        let offset = file.offset_of(e.line(), e.column().saturating_sub(1));
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        return Err(ParseFailure {
            message: msg,
            offset,
            len: 1,
        });
    }
    let mut r = Reader {
        s: text.as_bytes(),
        text,
        pos: 0,
        base: skipped,
    };
    r.ws();
    let v = r.value(1)?;
    Ok(v)
}

struct Reader<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    /// Bytes before `text` in the file (a byte-order mark).
    base: usize,
}

impl Reader<'_> {
    fn fail(&self, message: impl Into<String>, at: usize, len: usize) -> ParseFailure {
        ParseFailure {
            message: message.into(),
            offset: self.base + at,
            len,
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), ParseFailure> {
        self.ws();
        if self.s.get(self.pos) == Some(&b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.fail(format!("expected `{}`", b as char), self.pos, 1))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Spanned, ParseFailure> {
        self.ws();
        let start = self.pos;
        if depth > MAX_DEPTH {
            return Err(self.fail(too_deep(), start, 1));
        }
        let value = match self.s.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                let mut map = IndexMap::new();
                self.ws();
                if self.s.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.ws();
                        let kstart = self.pos;
                        let key = self.string()?;
                        let kspan = (self.base + kstart, self.pos - kstart);
                        self.expect(b':')?;
                        let v = self.value(depth + 1)?;
                        if map.contains_key(&key) {
                            return Err(self.fail(format!("duplicate key `{key}`"), kstart, kspan.1));
                        }
                        map.insert(key, (kspan, v));
                        self.ws();
                        match self.s.get(self.pos) {
                            Some(b',') => self.pos += 1,
                            Some(b'}') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.fail("expected `,` or `}`", self.pos, 1)),
                        }
                    }
                }
                SVal::Map(map)
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                } else {
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.s.get(self.pos) {
                            Some(b',') => self.pos += 1,
                            Some(b']') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.fail("expected `,` or `]`", self.pos, 1)),
                        }
                    }
                }
                SVal::Seq(items)
            }
            Some(b'"') => SVal::Scalar(Json::String(self.string()?)),
            Some(_) => {
                let end = self.s[self.pos..]
                    .iter()
                    .position(|b| matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
                    .map_or(self.s.len(), |i| self.pos + i);
                let tok = &self.text[self.pos..end];
                self.pos = end;
                let v = match tok {
                    "true" => Json::Bool(true),
                    "false" => Json::Bool(false),
                    "null" => Json::Null,
                    _ => serde_json::from_str::<Json>(tok).map_err(|e| {
                        let msg = e.to_string();
                        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                        self.fail(format!("{tok}: {msg}"), start, tok.len())
                    })?,
                };
                SVal::Scalar(v)
            }
            None => return Err(self.fail("EOF while parsing a value", start, 0)),
        };
        Ok(Spanned {
            value,
            offset: self.base + start,
            len: (self.pos - start).max(1),
        })
    }

    fn string(&mut self) -> Result<String, ParseFailure> {
        let start = self.pos;
        if self.s.get(self.pos) != Some(&b'"') {
            return Err(self.fail("key must be a string", start, 1));
        }
        let mut i = self.pos + 1;
        let mut escaped = false;
        loop {
            match self.s.get(i) {
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    i += 2;
                }
                Some(_) => i += 1,
                None => return Err(self.fail("EOF while parsing a string", start, 1)),
            }
        }
        self.pos = i + 1;
        if !escaped {
            return Ok(self.text[start + 1..i].to_string());
        }
        serde_json::from_str::<String>(&self.text[start..=i])
            .map_err(|e| self.fail(e.to_string(), start, i + 1 - start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Result<Spanned, ParseFailure> {
        parse(&SourceFile::new("a.json", text))
    }

    #[test]
    fn values_and_array_elements_keep_their_spans() {
        let text = "{\"a\": [1, {\"b\": \"x\\u00e9\"}], \"c\": -1.5e3}";
        let d = doc(text).unwrap();
        assert_eq!(
            d.to_json(),
            serde_json::json!({"a": [1, {"b": "x\u{e9}"}], "c": -1500.0})
        );
        let l = d.locate(&["a".into(), "1".into(), "b".into()]);
        assert_eq!(&text[l.value.0..l.value.0 + l.value.1], "\"x\\u00e9\"");
        let k = l.key.unwrap();
        assert_eq!(&text[k.0..k.0 + k.1], "\"b\"");
    }

    #[test]
    fn duplicate_keys_and_deep_nesting_are_located_errors() {
        let e = doc("{\"a\": 1,\n \"a\": 2}").unwrap_err();
        assert_eq!((e.message.as_str(), e.offset), ("duplicate key `a`", 10));
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(doc(&deep(MAX_DEPTH)).is_ok());
        let e = doc(&deep(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!((e.message, e.offset), (too_deep(), MAX_DEPTH));
    }

    #[test]
    fn numbers_keep_integer_or_float() {
        let d = doc("[1, 1.0, 18446744073709551615, 1e2]").unwrap().to_json();
        assert!(d[0].is_i64() && d[1].is_f64() && d[2].is_u64() && d[3].is_f64());
    }
}
