//! Secret handling. Secret values (from `${secret:...}` references or keys the
//! schema marks `writeOnly` / `x-secret`) and passwords inside URLs and DSNs
//! are replaced before any text leaves the library. Everything that formats
//! user-visible text passes through a [`Redactor`].

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use regex::Regex;

use crate::diagnostic::Problem;
use crate::source::SourceFile;

pub const MASK: &str = "***";

static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)@").expect("valid regex")
});
static KV_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?P<pre>\b(?:password|passwd|pwd|secret|token|api_key|apikey)\s*=\s*)(?P<pw>'[^']*'|"[^"]*"|[^\s&;]+)"#,
    )
    .expect("valid regex")
});

/// `postgres://app:hunter2@db/x` → `postgres://app:***@db/x`; also
/// `password=...` pairs in libpq-style DSNs and query strings.
pub fn redact_url_passwords(s: &str) -> String {
    if !s.contains("://") && !s.contains('=') {
        return s.to_string();
    }
    let s = URL_PASSWORD.replace_all(s, |c: &regex::Captures<'_>| {
        if is_reference(&c["pw"]) {
            c[0].to_string()
        } else {
            format!("{}{MASK}@", &c["pre"])
        }
    });
    KV_PASSWORD
        .replace_all(&s, |c: &regex::Captures<'_>| {
            if is_reference(&c["pw"]) {
                c[0].to_string()
            } else {
                format!("{}{MASK}", &c["pre"])
            }
        })
        .into_owned()
}

/// `${secret:env:DB_PASSWORD}` names where a secret comes from; it is not one.
fn is_reference(s: &str) -> bool {
    let s = s.trim_matches(['"', '\'']);
    s.starts_with("${") && s.ends_with('}')
}

/// Byte ranges of URL/DSN passwords in `s`, for masking source snippets.
fn url_password_ranges(s: &str) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<_> = URL_PASSWORD
        .captures_iter(s)
        .filter_map(|c| c.name("pw"))
        .filter(|m| !is_reference(m.as_str()))
        .map(|m| m.range())
        .collect();
    out.extend(
        KV_PASSWORD
            .captures_iter(s)
            .filter_map(|c| c.name("pw"))
            .filter(|m| !is_reference(m.as_str()))
            .map(|m| m.range()),
    );
    out
}

/// Knows every secret value of a run and scrubs them from text.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn add(&mut self, secret: &str) {
        // Very short values would mangle unrelated text and give little away.
        if secret.chars().count() >= 3 && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_string());
            // Longest first, so a secret containing another is masked whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn extend(&mut self, other: &Redactor) {
        for s in &other.secrets {
            self.add(s);
        }
    }

    /// Text for messages: each secret becomes `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        redact_url_passwords(&out)
    }

    /// Every string inside a JSON value, scrubbed.
    pub fn scrub_json(&self, v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value as J;
        match v {
            J::String(s) => J::String(self.scrub(s)),
            J::Array(a) => J::Array(a.iter().map(|x| self.scrub_json(x)).collect()),
            J::Object(o) => J::Object(o.iter().map(|(k, x)| (k.clone(), self.scrub_json(x))).collect()),
            J::Number(n) if self.secrets.iter().any(|s| *s == n.to_string()) => J::String(MASK.into()),
            other => other.clone(),
        }
    }

    /// Source text for snippets: secrets become `*` of the same length so
    /// spans still point at the right columns.
    pub fn mask_source(&self, text: &str) -> String {
        let mut bytes = text.as_bytes().to_vec();
        let mut mask = |r: std::ops::Range<usize>| {
            for b in &mut bytes[r] {
                // Keep UTF-8 valid: continuation bytes become stars too.
                *b = b'*';
            }
        };
        for s in &self.secrets {
            for (i, _) in text.match_indices(s.as_str()) {
                mask(i..i + s.len());
            }
        }
        for r in url_password_ranges(text) {
            mask(r);
        }
        String::from_utf8(bytes).unwrap_or_default()
    }
}

/// A problem with every secret masked: message, help, label, related
/// problems, and its source snippet (masked in place, so spans still line
/// up). `cache` keeps one masked copy of each source file per run.
pub fn redact_problem(p: &Problem, r: &Redactor, cache: &mut HashMap<String, Arc<SourceFile>>) -> Problem {
    let mut p = p.clone();
    p.message = r.scrub(&p.message);
    p.help = p.help.map(|h| r.scrub(&h));
    p.label = p.label.map(|l| r.scrub(&l));
    p.src = p.src.as_ref().map(|src| {
        cache
            .entry(src.name.clone())
            .or_insert_with(|| SourceFile::new(src.name.clone(), r.mask_source(&src.text)))
            .clone()
    });
    p.related = p.related.iter().map(|q| redact_problem(q, r, cache)).collect();
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            redact_url_passwords("postgres://app:hunter2@db.internal:5432/orders"),
            "postgres://app:***@db.internal:5432/orders"
        );
        assert_eq!(
            redact_url_passwords("redis://:pw@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            redact_url_passwords("host=db password=s3cr3t user=x"),
            "host=db password=*** user=x"
        );
        assert_eq!(
            redact_url_passwords("https://api.example.com/v1"),
            "https://api.example.com/v1"
        );
    }

    #[test]
    fn secrets_are_scrubbed_and_masked_in_place() {
        let mut r = Redactor::default();
        r.add("hunter2");
        assert_eq!(r.scrub("pw is hunter2!"), "pw is ***!");
        assert_eq!(r.mask_source("pw = \"hunter2\""), "pw = \"*******\"");
        assert_eq!(r.mask_source("u = \"amqp://a:bc@h\""), "u = \"amqp://a:**@h\"");
    }
}
