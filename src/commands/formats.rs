//! The formats `envgate render` prints, each written so that the
//! ecosystem's own reader reads back exactly the configuration shown:
//! PyYAML (YAML 1.1) and YAML 1.2 readers, TOML parsers, JSON parsers, and
//! for `env` both python-dotenv and `docker --env-file` (one `KEY=value` a
//! line, no quoting). A value a format cannot hold is refused, by key and
//! reason, never written wrong.

use std::collections::HashMap;

use serde_json::Value as Json;

use crate::config::merge::key_string;

/// A value a format cannot hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The dotted key.
    pub key: String,
    pub reason: String,
}

fn refuse(path: &[String], reason: impl Into<String>) -> Refusal {
    Refusal {
        key: key_string(path),
        reason: reason.into(),
    }
}

/// Every leaf (a scalar, an array or an empty table) with its path.
pub fn leaves(v: &Json) -> Vec<(Vec<String>, &Json)> {
    let mut out = Vec::new();
    let mut stack: Vec<(Vec<String>, &Json)> = vec![(Vec::new(), v)];
    while let Some((path, v)) = stack.pop() {
        match v {
            Json::Object(o) if !o.is_empty() || path.is_empty() => {
                for (k, c) in o.iter().rev() {
                    let mut p = path.clone();
                    p.push(k.clone());
                    stack.push((p, c));
                }
            }
            other => out.push((path, other)),
        }
    }
    out
}

pub fn json(v: &Json) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(v).expect("a JSON value serialises")
    )
}

// ---- TOML ---------------------------------------------------------------

/// What TOML cannot hold under `v`: nulls and integers beyond 64-bit signed.
fn toml_refusals(v: &Json, path: &mut Vec<String>, out: &mut Vec<Refusal>) {
    match v {
        Json::Null => out.push(refuse(path, "is null, which TOML cannot represent")),
        Json::Number(n) if n.is_u64() && n.as_i64().is_none() => {
            out.push(refuse(path, "is an integer beyond TOML's 64-bit signed range"));
        }
        Json::Array(a) => {
            if a.iter().any(|x| matches!(x, Json::Null)) {
                out.push(refuse(path, "holds a null, which TOML cannot represent"));
            }
            for x in a.iter().filter(|x| !x.is_null()) {
                toml_refusals(x, path, out);
            }
        }
        Json::Object(o) => {
            for (k, c) in o {
                path.push(k.clone());
                toml_refusals(c, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

pub fn toml(v: &Json) -> Result<String, Vec<Refusal>> {
    let mut refusals = Vec::new();
    toml_refusals(v, &mut Vec::new(), &mut refusals);
    if !refusals.is_empty() {
        return Err(refusals);
    }
    toml::to_string_pretty(v).map_err(|e| vec![refuse(&[], format!("cannot be written as TOML: {e}"))])
}

/// One value in TOML syntax (`"text"`, `[1, 2]`, `{ a = 1 }`).
pub fn toml_value(path: &[String], v: &Json) -> Result<String, Vec<Refusal>> {
    let mut refusals = Vec::new();
    toml_refusals(v, &mut path.to_vec(), &mut refusals);
    if !refusals.is_empty() {
        return Err(refusals);
    }
    let t = toml::to_string(&serde_json::json!({ "v": v }))
        .map_err(|e| vec![refuse(path, format!("cannot be written as TOML: {e}"))])?;
    Ok(t.trim_start_matches("v = ").trim_end().to_string())
}

// ---- YAML ---------------------------------------------------------------

/// Words some YAML reader (1.1 or 1.2) takes for a boolean or null.
const YAML_WORDS: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"];

/// Can `s` be written as a plain (unquoted) YAML scalar and read back as
/// this very string by YAML 1.1 and 1.2 readers alike? Only a conservative
/// shape: a letter or `_` first, then letters, digits and `_ . / -`.
fn yaml_plain(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
        && !YAML_WORDS.contains(&s.to_ascii_lowercase().as_str())
}

/// A string as a YAML scalar: plain when [`yaml_plain`], else double-quoted
/// with every character a reader could misread escaped (controls, DEL, the
/// C1 range, line and paragraph separators, non-characters).
fn yaml_string(s: &str) -> String {
    if yaml_plain(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            '\u{feff}' | '\u{fffe}' | '\u{ffff}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A number as YAML 1.1 (PyYAML) and 1.2 read it: floats always have a
/// `.` and a signed exponent (`1.0e+100`), or they would read as text.
fn yaml_number(n: &serde_json::Number) -> String {
    let s = n.to_string();
    if !n.is_f64() {
        return s;
    }
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m.to_string(), Some(e)),
        None => (s.clone(), None),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa
    } else {
        format!("{mantissa}.0")
    };
    match exp {
        Some(e) if e.starts_with(['-', '+']) => format!("{mantissa}e{e}"),
        Some(e) => format!("{mantissa}e+{e}"),
        None => mantissa,
    }
}

fn yaml_flow(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => yaml_number(n),
        Json::String(s) => yaml_string(s),
        Json::Array(_) => "[]".into(),
        Json::Object(_) => "{}".into(),
    }
}

/// Keys longer than this are written as explicit `? key` entries: readers
/// only look 1024 characters ahead for the `:` of an implicit key.
const YAML_KEY_MAX: usize = 1000;

fn yaml_map(o: &serde_json::Map<String, Json>, indent: usize, out: &mut String) {
    for (k, v) in o {
        let key = yaml_string(k);
        out.push_str(&" ".repeat(indent));
        if key.chars().count() > YAML_KEY_MAX {
            out.push_str("? ");
            out.push_str(&key);
            out.push('\n');
            out.push_str(&" ".repeat(indent));
        } else {
            out.push_str(&key);
        }
        out.push(':');
        yaml_after_indicator(v, indent, out);
    }
}

fn yaml_seq(a: &[Json], indent: usize, out: &mut String) {
    for v in a {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v {
            Json::Object(o) if !o.is_empty() => {
                // `- key: value`, the entry's other keys under its first.
                let mut inner = String::new();
                yaml_map(o, indent + 2, &mut inner);
                out.push(' ');
                out.push_str(&inner[indent + 2..]);
            }
            Json::Array(a) if !a.is_empty() => {
                let mut inner = String::new();
                yaml_seq(a, indent + 2, &mut inner);
                out.push(' ');
                out.push_str(&inner[indent + 2..]);
            }
            other => {
                out.push(' ');
                out.push_str(&yaml_flow(other));
                out.push('\n');
            }
        }
    }
}

/// The node after a `key:`: a nested block on the next lines, or a scalar.
fn yaml_after_indicator(v: &Json, indent: usize, out: &mut String) {
    match v {
        Json::Object(o) if !o.is_empty() => {
            out.push('\n');
            yaml_map(o, indent + 2, out);
        }
        Json::Array(a) if !a.is_empty() => {
            out.push('\n');
            yaml_seq(a, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&yaml_flow(other));
            out.push('\n');
        }
    }
}

pub fn yaml(v: &Json) -> String {
    let mut out = String::new();
    match v {
        Json::Object(o) if !o.is_empty() => yaml_map(o, 0, &mut out),
        Json::Array(a) if !a.is_empty() => yaml_seq(a, 0, &mut out),
        other => {
            out.push_str(&yaml_flow(other));
            out.push('\n');
        }
    }
    out
}

// ---- env ----------------------------------------------------------------

/// `database.pool-size` → `DATABASE__POOL_SIZE`; `None` unless the result
/// is a portable variable name (letters, digits, `_`; no digit first).
pub fn env_name(path: &[String]) -> Option<String> {
    let name = path
        .iter()
        .map(|s| s.to_ascii_uppercase().replace(['-', '.'], "_"))
        .collect::<Vec<_>>()
        .join("__");
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some(name)
}

/// The longest line `docker --env-file` reads (its line scanner's limit).
const ENV_LINE_MAX: usize = 64 * 1024 - 1;

/// The text of a value in an env file, or why it cannot be one. docker
/// takes everything after `=` as it is; python-dotenv strips blanks,
/// comments and quotes, and expands `${...}`: only text both read alike
/// is written.
fn env_text(v: &Json) -> Result<String, &'static str> {
    let s = match v {
        Json::Null => return Err("is null, which an environment variable cannot be"),
        Json::String(s) => s.clone(),
        Json::Array(_) | Json::Object(_) => serde_json::to_string(v).expect("a JSON value serialises"),
        other => other.to_string(),
    };
    if s.contains(['\n', '\r']) {
        return Err("has a line break, which an env file would read as the start of another variable");
    }
    if s.contains(|c: char| c.is_control() && c != '\t') {
        return Err("has a control character");
    }
    if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return Err("starts or ends with a blank, which dotenv readers strip");
    }
    if s.starts_with(['"', '\'']) {
        return Err("starts with a quote, which dotenv readers take as quoting");
    }
    if s.char_indices()
        .any(|(i, c)| c == '#' && s[..i].ends_with(char::is_whitespace))
    {
        return Err("has a blank before `#`, which dotenv readers take as a comment");
    }
    if s.contains("${") {
        return Err("has `${`, which python-dotenv and docker compose expand");
    }
    Ok(s)
}

/// `KEY=value` for one leaf.
pub fn env_line(path: &[String], v: &Json) -> Result<String, Refusal> {
    let name = env_name(path).ok_or_else(|| {
        refuse(
            path,
            "cannot be a variable name (letters, digits, `_`, `-` and `.` only; no digit first)",
        )
    })?;
    let value = env_text(v).map_err(|r| refuse(path, r))?;
    let line = format!("{name}={value}");
    if line.len() > ENV_LINE_MAX {
        return Err(refuse(
            path,
            "is longer than 64 KiB, which `docker --env-file` cannot read",
        ));
    }
    Ok(line)
}

/// Each variable on its own line; two keys that would become one variable
/// are refused.
pub fn env(v: &Json) -> Result<String, Vec<Refusal>> {
    let mut out = String::new();
    let mut refusals = Vec::new();
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for (path, leaf) in leaves(v) {
        if let Some(name) = env_name(&path)
            && let Some(first) = seen.insert(name.clone(), path.clone())
        {
            refusals.push(refuse(
                &path,
                format!("becomes {name}, as `{}` does", key_string(&first)),
            ));
            continue;
        }
        match env_line(&path, leaf) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(r) => refusals.push(r),
        }
    }
    if refusals.is_empty() { Ok(out) } else { Err(refusals) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_quotes_what_yaml_readers_would_misread() {
        let v = json!({
            "del": "a\u{7f}b", "ls": "a\u{2028}b", "bin": "0b101", "under": "1_0",
            "yes": "yes", "on": "On", "plain": "db.internal", "empty": "",
            "float": 1e100, "neg": -0.5, "int": 7, "nil": null, "list": [1, {"a": "b", "c": []}],
        });
        assert_eq!(
            yaml(&v),
            "del: \"a\\x7fb\"\nls: \"a\\Lb\"\nbin: \"0b101\"\nunder: \"1_0\"\n\"yes\": \"yes\"\n\"on\": \"On\"\n\
             plain: db.internal\nempty: \"\"\nfloat: 1.0e+100\nneg: -0.5\nint: 7\nnil: null\n\
             list:\n  - 1\n  - a: b\n    c: []\n"
        );
    }

    #[test]
    fn toml_refuses_nulls_and_huge_integers_by_key() {
        let r = toml(&json!({"a": {"b": null}, "c": [1, null], "d": u64::MAX})).unwrap_err();
        let keys: Vec<_> = r.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["a.b", "c", "d"]);
    }

    #[test]
    fn env_refuses_what_docker_and_python_dotenv_would_read_differently() {
        let r = env(&json!({"a": "x\ny", "b": " pad", "c": "'q'", "d": "v #c", "e": "${X}", "f-g": 1, "f_g": 2, "ok": "p@ss w#rd"}))
            .unwrap_err();
        let keys: Vec<_> = r.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c", "d", "e", "f_g"]);
        assert_eq!(
            env(&json!({"ok": "p@ss w#rd", "n": [1, "a"]})).unwrap(),
            "OK=p@ss w#rd\nN=[1,\"a\"]\n"
        );
    }
}
