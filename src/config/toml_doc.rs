//! TOML into a [`Spanned`] document, with the `toml` crate's spans.
//! Tables point at their header or key, everything else at its value.

use indexmap::IndexMap;
use serde_json::Value as Json;
use toml::de::{DeTable, DeValue};

use super::spanned::{MAX_DEPTH, SVal, Spanned, finite, too_deep};
use super::tree::ParseFailure;

pub fn parse(text: &str) -> Result<Spanned, ParseFailure> {
    let doc = DeTable::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        ParseFailure {
            message: e.message().trim().to_string(),
            offset: span.start,
            len: span.len().max(1),
        }
    })?;
    let map = table(doc.get_ref(), 1)?;
    Ok(Spanned {
        value: SVal::Map(map),
        offset: 0,
        len: 0,
    })
}

type Map = IndexMap<String, ((usize, usize), Spanned)>;

fn table(t: &DeTable<'_>, depth: usize) -> Result<Map, ParseFailure> {
    let mut out = IndexMap::with_capacity(t.len());
    for (k, v) in t.iter() {
        let ks = k.span();
        let span = v.span();
        let value = value(v.get_ref(), span.clone(), depth)?;
        out.insert(k.get_ref().to_string(), ((ks.start, ks.len()), value));
    }
    Ok(out)
}

fn value(v: &DeValue<'_>, span: std::ops::Range<usize>, depth: usize) -> Result<Spanned, ParseFailure> {
    let fail = |message: String| ParseFailure {
        message,
        offset: span.start,
        len: span.len().max(1),
    };
    if depth > MAX_DEPTH {
        return Err(fail(too_deep()));
    }
    let v = match v {
        DeValue::String(s) => SVal::Scalar(Json::String(s.to_string())),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            let n =
                i64::from_str_radix(&digits, i.radix()).map_err(|e| fail(format!("integer {}: {e}", i.as_str())))?;
            SVal::Scalar(Json::from(n))
        }
        DeValue::Float(f) => {
            let s = f.as_str().replace('_', "");
            let x: f64 = match s.trim_start_matches(['+', '-']) {
                "inf" | "nan" => {
                    return Err(fail(finite(f64::INFINITY, f.as_str()).unwrap_err()));
                }
                _ => s.parse().map_err(|_| fail(format!("invalid float {s}")))?,
            };
            SVal::Scalar(finite(x, f.as_str()).map_err(fail)?)
        }
        DeValue::Boolean(b) => SVal::Scalar(Json::Bool(*b)),
        DeValue::Datetime(d) => SVal::Scalar(Json::String(d.to_string())),
        DeValue::Array(a) => SVal::Seq(
            a.iter()
                .map(|e| value(e.get_ref(), e.span(), depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        DeValue::Table(t) => SVal::Map(table(t, depth + 1)?),
    };
    Ok(Spanned {
        value: v,
        offset: span.start,
        len: span.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinity_and_nan_are_refused_where_they_are_written() {
        for (text, at) in [("limit = -inf\n", 8), ("[t]\nx = nan\n", 8), ("a = [1, +inf]\n", 8)] {
            let e = parse(text).unwrap_err();
            assert!(e.message.contains("not a finite number"), "{}", e.message);
            assert_eq!(e.offset, at, "{text}");
        }
    }

    #[test]
    fn array_elements_keep_their_spans() {
        let text = "a = [1, {b = 2}]\n[[steps]]\nrun = 'x'\n[[steps]]\nrun = 'y'\n";
        let doc = parse(text).unwrap();
        let at = |p: &[&str]| {
            let segs: Vec<String> = p.iter().map(|s| s.to_string()).collect();
            let l = doc.locate(&segs);
            &text[l.value.0..l.value.0 + l.value.1]
        };
        assert_eq!(at(&["a", "1", "b"]), "2");
        assert_eq!(at(&["steps", "1", "run"]), "'y'");
    }
}
