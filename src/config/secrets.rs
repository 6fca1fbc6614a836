//! Secret handling. Secret values (from `${secret:...}` references or keys the
//! schema marks `writeOnly` / `x-secret`) and passwords inside URLs and DSNs
//! are replaced before any text leaves the library. Everything that formats
//! user-visible text passes through a [`Redactor`].
//!
//! Credentials are found by reading the text the way clients read it, not by
//! a pattern: a URL's user information runs to the last `@` before the next
//! blank (clients disagree on where the authority ends, so the widest reading
//! wins), the password is everything after the first `:` in it, and a lone
//! user information is a token for the schemes that use it so (`nats://`).
//! A user name is never masked. Every mask is the same `***`, whatever the
//! length of what it hides.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use crate::diagnostic::Problem;
use crate::source::SourceFile;

pub const MASK: &str = "***";

/// Schemes whose user information, when it has no `:`, is a token, not a
/// user name (`nats://TOKEN@host`).
const TOKEN_SCHEMES: &[&str] = &["nats", "tls"];

/// `postgres://app:hunter2@db/x` → `postgres://app:***@db/x`; also the values
/// of `password=...` pairs in keyword DSNs and query strings.
pub fn redact_url_passwords(s: &str) -> String {
    if !s.contains("://") && !s.contains('=') {
        return s.to_string();
    }
    Masked::new(s, credential_ranges(s)).text
}

/// The credentials (URL passwords and tokens, `password=` values) found in
/// `s`, as sorted, non-overlapping byte ranges.
pub fn credential_ranges(s: &str) -> Vec<Range<usize>> {
    let mut out = url_credentials(s);
    out.extend(keyword_credentials(s));
    out.sort_by_key(|r| r.start);
    out
}

/// `${secret:env:DB_PASSWORD}` names where a secret comes from; it is not one.
fn is_reference(s: &str) -> bool {
    let s = s.trim_matches(['"', '\'']);
    s.starts_with("${") && s.ends_with('}') && !s[2..].contains("${")
}

fn is_scheme_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

/// Passwords and tokens in every `scheme://user:password@host` of `s`.
fn url_credentials(s: &str) -> Vec<Range<usize>> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = s[from..].find("://") {
        let sep = from + p;
        let authority = sep + 3;
        let mut start = sep;
        while start > 0 && is_scheme_byte(bytes[start - 1]) {
            start -= 1;
        }
        while start < sep && !bytes[start].is_ascii_alphabetic() {
            start += 1;
        }
        // Only ASCII blanks end a URL in text: a password may hold any
        // other character, and must not end the URL early.
        let end = s[authority..]
            .find(|c: char| c.is_ascii_whitespace() || c.is_control())
            .map_or(s.len(), |e| authority + e);
        from = end.max(authority);
        if start == sep {
            continue;
        }
        let scheme = s[start..sep].to_ascii_lowercase();
        let token = &s[authority..end];
        let Some(at) = token.rfind('@') else { continue };
        let userinfo = &token[..at];
        let secret = match first_colon_outside_references(userinfo) {
            Some(colon) => authority + colon + 1..authority + at,
            None if TOKEN_SCHEMES.contains(&scheme.as_str()) => authority..authority + at,
            None => continue,
        };
        if !secret.is_empty() && !is_reference(&s[secret.clone()]) {
            out.push(secret);
        }
    }
    out
}

/// The first `:` of a URL's user information that is not inside `${...}`.
fn first_colon_outside_references(userinfo: &str) -> Option<usize> {
    let mut depth = 0usize;
    let b = userinfo.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth > 0 => depth -= 1,
            b':' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Does a `name=value` pair's name say its value is a credential?
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('-', "_");
    n == "pass"
        || [
            "password", "passwd", "pwd", "secret", "token", "apikey", "api_key", "_pass",
        ]
        .iter()
        .any(|s| n.ends_with(s))
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// Values of `password=...` pairs: libpq keyword DSNs (`password='a b'`),
/// query strings (`?password=x&...`), JDBC properties (`;password=x;`).
fn keyword_credentials(s: &str) -> Vec<Range<usize>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !is_name_byte(b[i]) || (i > 0 && is_name_byte(b[i - 1])) {
            i += 1;
            continue;
        }
        let name_start = i;
        while i < b.len() && is_name_byte(b[i]) {
            i += 1;
        }
        let name = &s[name_start..i];
        let mut j = i;
        while j < b.len() && matches!(b[j], b' ' | b'\t') {
            j += 1;
        }
        if b.get(j) != Some(&b'=') || !is_secret_name(name) {
            continue;
        }
        j += 1;
        while j < b.len() && matches!(b[j], b' ' | b'\t') {
            j += 1;
        }
        let value_start = j;
        match b.get(j) {
            Some(&q @ (b'\'' | b'"')) => {
                j += 1;
                while j < b.len() && b[j] != q {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                j = (j + 1).min(b.len());
            }
            _ => {
                while j < b.len() && !(b[j].is_ascii_whitespace() || matches!(b[j], b'&' | b';')) {
                    j += 1;
                }
            }
        }
        let value = value_start..j;
        if !value.is_empty() && !is_reference(&s[value.clone()]) {
            out.push(value);
        }
        i = j.max(i);
    }
    out
}

/// Text with some byte ranges replaced by `***`, and the way back from an
/// offset in the original to the same place in the masked text. A masked
/// range keeps its line breaks, so line numbers stay right.
#[derive(Debug, Clone)]
pub struct Masked {
    pub text: String,
    /// (start, end) in the original and start in the masked text, sorted.
    edits: Vec<(usize, usize, usize, usize)>,
}

impl Masked {
    /// Replace `ranges` (byte ranges on char boundaries; they may overlap)
    /// of `text` by `***`.
    pub fn new(text: &str, mut ranges: Vec<Range<usize>>) -> Masked {
        ranges.retain(|r| r.start < r.end && r.end <= text.len());
        ranges.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::new();
        for r in ranges {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut edits = Vec::with_capacity(merged.len());
        let mut at = 0;
        for r in merged {
            out.push_str(&text[at..r.start]);
            let new_start = out.len();
            out.push_str(MASK);
            for _ in text[r.clone()].matches('\n') {
                out.push('\n');
            }
            edits.push((r.start, r.end, new_start, out.len()));
            at = r.end;
        }
        out.push_str(&text[at..]);
        Masked { text: out, edits }
    }

    /// Where a byte offset of the original text is in the masked text; an
    /// offset inside a masked range lands on its `***`.
    pub fn map(&self, offset: usize) -> usize {
        let i = self.edits.partition_point(|e| e.0 <= offset);
        match i.checked_sub(1).map(|i| self.edits[i]) {
            None => offset,
            Some((_, end, new_start, _)) if offset < end => new_start,
            Some((_, end, _, new_end)) => new_end + (offset - end),
        }
    }

    /// A span `(offset, len)` of the original, in the masked text.
    pub fn map_span(&self, (offset, len): (usize, usize)) -> (usize, usize) {
        let start = self.map(offset);
        let end = self.map(offset + len).max(start);
        if len > 0 && end == start {
            (start, MASK.len())
        } else {
            (start, end - start)
        }
    }
}

/// `--set api.pin=987654321` names its value; once `api.pin` is known to be
/// secret, its origin reads `--set api.pin=***`.
pub fn mask_cli_origin(origin: &mut crate::source::Origin) {
    if let crate::source::Loc::Cli(arg) = &mut origin.loc
        && let Some((key, _)) = arg.split_once('=')
    {
        *arg = format!("{key}={MASK}");
    }
}

/// Knows every secret value of a run and scrubs them from text.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    secrets: Vec<String>,
}

/// How envgate shows a configuration value anywhere it prints one
/// (`render`, `diff`, `explain`, rule and isolation messages): the secret parts as `***` and the rest as written —
/// `postgres://app:***@db:5432/orders`, not `***` for the whole URL. A secret
/// value with no part the redactor knows (a short literal, a number, a table)
/// is `***` whole: never less masked than that.
pub fn mask_value(value: &serde_json::Value, secret: bool, r: &Redactor) -> serde_json::Value {
    use serde_json::Value as J;
    let masked = r.scrub_json(value);
    match (secret, value) {
        (false, _) => masked,
        (true, J::String(_)) if masked != *value => masked,
        (true, _) => J::String(MASK.into()),
    }
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

    /// Source text for snippets: each secret and credential becomes `***`;
    /// [`Masked::map_span`] moves a span of the original onto it.
    pub fn mask_source(&self, text: &str) -> Masked {
        let mut ranges = credential_ranges(text);
        for s in &self.secrets {
            ranges.extend(text.match_indices(s.as_str()).map(|(i, _)| i..i + s.len()));
        }
        Masked::new(text, ranges)
    }
}

/// Masked copies of source files, by name, with the way to move spans onto them.
pub type MaskedSources = HashMap<String, (Arc<SourceFile>, Arc<Masked>)>;

fn masked_source(src: &Arc<SourceFile>, r: &Redactor, cache: &mut MaskedSources) -> (Arc<SourceFile>, Arc<Masked>) {
    cache
        .entry(src.name.clone())
        .or_insert_with(|| {
            let m = r.mask_source(&src.text);
            (SourceFile::new(src.name.clone(), m.text.clone()), Arc::new(m))
        })
        .clone()
}

/// A problem with every secret masked: message, help, label, related
/// problems, and its source snippet (masked in place, its span moved onto
/// the masked text). `cache` keeps one masked copy of each file per run.
pub fn redact_problem(p: &Problem, r: &Redactor, cache: &mut MaskedSources) -> Problem {
    let mut p = p.clone();
    p.message = r.scrub(&p.message);
    p.help = p.help.map(|h| r.scrub(&h));
    p.label = p.label.map(|l| r.scrub(&l));
    if let Some(src) = &p.src {
        let (shown, masked) = masked_source(src, r, cache);
        p.span = p.span.map(|s| masked.map_span(s));
        p.src = Some(shown);
    }
    p.related = p.related.iter().map(|q| redact_problem(q, r, cache)).collect();
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn url_passwords_are_masked_with_a_fixed_mask() {
        for (raw, shown) in [
            (
                "postgres://app:hunter2@db.internal:5432/orders",
                "postgres://app:***@db.internal:5432/orders",
            ),
            ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
            ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
            ("host=db password=s3cr3t user=x", "host=db password=*** user=x"),
            ("host=db password='s e c' user=x", "host=db password=*** user=x"),
            (
                "https://api.example.com/v1?api_key=k3y&x=1",
                "https://api.example.com/v1?api_key=***&x=1",
            ),
            ("https://api.example.com/v1", "https://api.example.com/v1"),
            ("amqp://guest@h/", "amqp://guest@h/"),
        ] {
            assert_eq!(redact_url_passwords(raw), shown, "{raw}");
        }
    }

    #[test]
    fn passwords_with_slashes_at_signs_and_tokens_are_masked_whole() {
        assert_eq!(redact_url_passwords("postgres://u:pa/ss@host"), "postgres://u:***@host");
        assert_eq!(redact_url_passwords("redis://:a@b@host"), "redis://:***@host");
        assert_eq!(redact_url_passwords("nats://TOKEN@host:4222"), "nats://***@host:4222");
        assert_eq!(redact_url_passwords("http://u:PASSWORD@[::1/"), "http://u:***@[::1/");
        assert_eq!(
            redact_url_passwords("cannot fetch http://u:p@h/x: refused"),
            "cannot fetch http://u:***@h/x: refused"
        );
    }

    #[test]
    fn references_to_secrets_are_not_secrets() {
        for s in [
            "postgres://app:${secret:env:PW}@db/x",
            "postgres://${env:USER}:${secret:env:PW}@db/x",
            "host=db password=${secret:env:PW}",
        ] {
            assert_eq!(redact_url_passwords(s), s);
        }
    }

    #[test]
    fn secrets_are_scrubbed_and_masked_with_spans_moved() {
        let mut r = Redactor::default();
        r.add("hunter2");
        assert_eq!(r.scrub("pw is hunter2!"), "pw is ***!");
        let m = r.mask_source("pw = \"hunter2\"\nport = 1\n");
        assert_eq!(m.text, "pw = \"***\"\nport = 1\n");
        // `port` moved 4 bytes left, the secret's own span covers the mask.
        assert_eq!(m.map_span((17, 4)), (13, 4));
        assert_eq!(m.map_span((6, 7)), (6, 3));
        let m = r.mask_source("u = \"amqp://a:bc@h\"");
        assert_eq!(m.text, "u = \"amqp://a:***@h\"");
    }

    #[test]
    fn a_masked_secret_keeps_its_line_breaks() {
        let mut r = Redactor::default();
        r.add("line1\nline2");
        let m = r.mask_source("k = \"\"\"line1\nline2\"\"\"\nafter = 1\n");
        assert_eq!(m.text.lines().count(), 3);
        assert!(m.text.lines().nth(2).unwrap().starts_with("after"));
    }

    fn text() -> impl Strategy<Value = String> {
        // Printable text without blanks, so it stays one URL token.
        "[!-~\u{a0}-\u{2ff}]{1,12}"
    }

    // Any password in the user information of any URL is masked whole, the
    // user name and host stay, and the mask says nothing about its length.
    proptest! {
        #[test]
        fn no_url_password_survives_masking(
            scheme in "[a-z][a-z0-9+.-]{0,8}",
            user in "[A-Za-z0-9_.~-]{0,8}",
            password in text(),
            host in "[a-z0-9.-]{1,12}",
            tail in "(/[a-z0-9/]{0,8})?",
        ) {
            let url = format!("{scheme}://{user}:{password}@{host}{tail}");
            let shown = redact_url_passwords(&url);
            prop_assume!(!is_reference(&password));
            prop_assert_eq!(shown, format!("{scheme}://{user}:***@{host}{tail}"));
        }

        #[test]
        fn masking_any_text_never_panics_and_keeps_line_count(s in "\\PC*(\n\\PC*){0,3}", secret in "[a-z]{3,6}") {
            let mut r = Redactor::default();
            r.add(&secret);
            let m = r.mask_source(&s);
            prop_assert_eq!(m.text.matches('\n').count(), s.matches('\n').count());
            prop_assert!(!m.text.contains(&secret) || !s.contains(&secret));
            for off in 0..=s.len() {
                prop_assert!(m.map(off) <= m.text.len());
            }
            let _ = r.scrub(&s);
        }

        #[test]
        fn keyword_passwords_are_masked_whatever_they_hold(
            key in "(password|PASSWORD|sslpassword|client_secret|api-key|token)",
            // printable ASCII but the pair separators `&` `;` and quotes
            value in "[!#-%(-:<-~]{1,16}",
        ) {
            prop_assume!(!is_reference(&value));
            let dsn = format!("host=db {key}={value} port=5432");
            prop_assert_eq!(redact_url_passwords(&dsn), format!("host=db {key}=*** port=5432"));
        }
    }
}
