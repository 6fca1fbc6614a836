//! A parsed TOML, JSON or YAML document with a span on every value, array
//! elements included. The readers build this; [`super::tree`] keeps only
//! table spans for layering, and the schema validator asks
//! `super::parse::locate` for the span of a value inside an array when an
//! error lands there (on the error path only, so the common case pays
//! nothing for array spans).

use indexmap::IndexMap;
use serde_json::Value as Json;

/// Deepest nesting of tables and arrays a document may have. Every walk
/// downstream (merging, interpolation, the JSON Schema validator) recurses,
/// so the limit keeps hostile input from overflowing the stack; real
/// configuration and schema files stay far below it (the schemas of GitHub
/// workflows, GitLab CI and compose nest at most 20 deep).
pub const MAX_DEPTH: usize = 128;

/// A value and the byte span that wrote it.
#[derive(Debug, Clone)]
pub struct Spanned {
    pub value: SVal,
    pub offset: usize,
    pub len: usize,
}

#[derive(Debug, Clone)]
pub enum SVal {
    Scalar(Json),
    Seq(Vec<Spanned>),
    /// Each entry keeps its key's span beside the value.
    Map(IndexMap<String, (Span, Spanned)>),
}

/// `(offset, len)` in bytes.
pub type Span = (usize, usize);

impl Spanned {
    pub fn scalar(v: Json, offset: usize, len: usize) -> Self {
        Spanned {
            value: SVal::Scalar(v),
            offset,
            len,
        }
    }

    pub fn to_json(&self) -> Json {
        match &self.value {
            SVal::Scalar(v) => v.clone(),
            SVal::Seq(items) => Json::Array(items.iter().map(Spanned::to_json).collect()),
            SVal::Map(m) => Json::Object(m.iter().map(|(k, (_, v))| (k.clone(), v.to_json())).collect()),
        }
    }

    /// Number of values in this subtree, for bounding alias expansion.
    pub fn count(&self) -> usize {
        match &self.value {
            SVal::Scalar(_) => 1,
            SVal::Seq(items) => 1 + items.iter().map(Spanned::count).sum::<usize>(),
            SVal::Map(m) => 1 + m.values().map(|(_, v)| v.count()).sum::<usize>(),
        }
    }

    /// Follow JSON pointer segments as far as they go: the span of the
    /// deepest value reached, and of its key when the last step was a key.
    pub fn locate(&self, segments: &[String]) -> Located {
        let mut cur = self;
        let mut found = Located {
            value: (self.offset, self.len),
            key: None,
            depth: 0,
        };
        for (i, s) in segments.iter().enumerate() {
            let next = match &cur.value {
                SVal::Map(m) => m.get(s).map(|(k, v)| (Some(*k), v)),
                SVal::Seq(items) => s.parse::<usize>().ok().and_then(|i| items.get(i)).map(|v| (None, v)),
                SVal::Scalar(_) => None,
            };
            let Some((key, v)) = next else { break };
            cur = v;
            found = Located {
                value: (v.offset, v.len),
                key,
                depth: i + 1,
            };
        }
        found
    }
}

/// What [`Spanned::locate`] found.
#[derive(Debug, Clone, Copy)]
pub struct Located {
    pub value: Span,
    pub key: Option<Span>,
    /// How many segments were followed.
    pub depth: usize,
}

/// A finite JSON number, or the reason there is none.
pub fn finite(x: f64, text: &str) -> Result<Json, String> {
    serde_json::Number::from_f64(x).map(Json::Number).ok_or_else(|| {
        format!(
            "`{text}` is not a finite number: configuration values are JSON values, which have no infinity or NaN; write a finite bound"
        )
    })
}

pub fn too_deep() -> String {
    format!("nested more than {MAX_DEPTH} levels deep")
}
