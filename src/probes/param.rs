//! Parameter types the kinds share, each with a clear error for the wrong
//! shape (a bare number for a duration gets both readings).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::config::units::duration_param;

/// A duration written with its unit: `"250ms"`, `"2s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> de::Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"500ms\" or \"2s\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                duration_param(s).map(Dur).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(duration_param(&n.to_string()).err().unwrap_or_default()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Dur, E> {
                Err(E::custom(duration_param(&n.to_string()).err().unwrap_or_default()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Dur, E> {
                Err(E::custom(duration_param(&n.to_string()).err().unwrap_or_default()))
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Dur {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "a duration with its unit, e.g. \"500ms\", \"2s\", \"1m\"",
        })
    }
}

/// One text or a list of texts: `"10.0.0.5"` or `["10.0.0.5", "10.0.0.6"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Texts(pub Vec<String>);

impl<'de> de::Deserialize<'de> for Texts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Texts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a text or a list of texts")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Texts, E> {
                Ok(Texts(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Texts, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(Texts(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Texts {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Texts".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct P {
        d: Option<Dur>,
        t: Option<Texts>,
    }

    #[test]
    fn a_duration_parameter_needs_its_unit() {
        let p: P = toml::from_str("d = \"250ms\"").unwrap();
        assert_eq!(p.d, Some(Dur(Duration::from_millis(250))));
        let e = toml::from_str::<P>("d = 30").unwrap_err().to_string();
        assert!(e.contains("write \"30s\" or \"30ms\""), "{e}");
    }

    #[test]
    fn texts_take_one_or_many() {
        let p: P = toml::from_str("t = \"a\"").unwrap();
        assert_eq!(p.t, Some(Texts(vec!["a".into()])));
        let p: P = toml::from_str("t = [\"a\", \"b\"]").unwrap();
        assert_eq!(p.t.unwrap().0.len(), 2);
        assert!(toml::from_str::<P>("t = 3").is_err());
    }
}
