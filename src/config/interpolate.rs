//! `${...}` interpolation over the assembled tree: references to other keys,
//! `env:NAME[:-default]`, `file:path`, and `secret:env:` / `secret:file:`.
//! `$${` writes a literal `${`. A string that is exactly one reference to a
//! non-string key takes that key's value and type.

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::merge::{Node, key_string, parse_key};
use super::secrets::Redactor;
use super::suggest::did_you_mean;
use crate::diagnostic::Problem;
use crate::findings::{Category, Finding};

enum State {
    Visiting,
    Done(Result<(Json, bool), ()>),
}

/// One piece of a string value: text, or a `${...}` reference.
#[derive(Debug, PartialEq)]
pub(crate) enum Piece<'s> {
    Text(&'s str),
    Ref(&'s str),
}

/// Split a value into text and references; `$${` is a literal `${`. `Err`
/// when a `${` is never closed.
pub(crate) fn pieces(s: &str) -> Result<Vec<Piece<'_>>, ()> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push(Piece::Text(&rest[..i]));
            out.push(Piece::Text("${"));
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or(())?;
            out.push(Piece::Text(&rest[..i]));
            out.push(Piece::Ref(&tail[..end]));
            rest = &tail[end + 1..];
        } else {
            out.push(Piece::Text(&rest[..=i]));
            rest = &after[1..];
        }
    }
    out.push(Piece::Text(rest));
    out.retain(|p| *p != Piece::Text(""));
    Ok(out)
}

/// A reference to another key (not `env:`, `file:` or `secret:`).
fn key_reference(expr: &str) -> Option<Vec<String>> {
    let is_other = ["env:", "file:", "secret:"].iter().any(|p| expr.starts_with(p));
    (!is_other).then(|| parse_key(expr.trim()))
}

/// A key waiting for the keys it refers to.
struct Frame {
    path: Vec<String>,
    deps: Vec<Vec<String>>,
    next: usize,
}

struct Ctx<'a> {
    root: &'a Node,
    project_root: &'a Path,
    vars: &'a IndexMap<String, String>,
    offline: bool,
    state: HashMap<Vec<String>, State>,
    /// Keys being resolved, outermost first: the chain a cycle names.
    stack: Vec<Vec<String>>,
    problems: Vec<Finding>,
    secrets: Vec<String>,
    all_keys: Vec<String>,
}

/// Resolve every string leaf in place. Returns the problems found; leaves
/// that fail keep their raw text.
/// Offline (the PR gate, where production secrets are absent), an unset
/// `${secret:env:NAME}` is a warning and resolves to a placeholder.
pub fn resolve_all(
    root: &mut Node,
    project_root: &Path,
    vars: &IndexMap<String, String>,
    offline: bool,
    redactor: &mut Redactor,
) -> Vec<Finding> {
    let paths = root.paths_where(&|l| needs_work(&l.value));
    let mut results = Vec::new();
    let (problems, secrets) = {
        let mut ctx = Ctx {
            root: &*root,
            project_root,
            vars,
            offline,
            state: HashMap::new(),
            stack: Vec::new(),
            problems: Vec::new(),
            secrets: Vec::new(),
            all_keys: Vec::new(),
        };
        for p in &paths {
            if needs_work(&ctx.root.leaf(p).expect("leaf").value)
                && let Ok(r) = ctx.resolve(p)
            {
                results.push((p.clone(), r));
            }
        }
        (ctx.problems, ctx.secrets)
    };
    for (p, (value, secret)) in results {
        if let Some(Node::Leaf(l)) = root.get_mut(&p) {
            l.value = value;
            l.coercible = true;
            l.secret |= secret;
        }
    }
    for s in secrets {
        redactor.add(&s);
    }
    problems
}

fn needs_work(v: &Json) -> bool {
    match v {
        Json::String(s) => s.contains("${"),
        Json::Array(a) => a.iter().any(needs_work),
        _ => false,
    }
}

impl Ctx<'_> {
    fn push(&mut self, path: &[String], p: Problem) {
        let key = key_string(path);
        self.problems
            .push(Finding::new(Category::Config, format!("config/{key}"), Some(key), p));
    }

    /// Keys this leaf's value refers to, in order.
    fn deps_of(&self, v: &Json) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut strings = Vec::new();
        match v {
            Json::String(s) => strings.push(s.as_str()),
            Json::Array(a) => strings.extend(a.iter().filter_map(Json::as_str)),
            _ => {}
        }
        for s in strings {
            for p in pieces(s).unwrap_or_default() {
                if let Piece::Ref(expr) = p
                    && let Some(target) = key_reference(expr)
                    && matches!(self.root.get(&target), Some(Node::Leaf(_)))
                {
                    out.push(target);
                }
            }
        }
        out
    }

    /// Resolve `path` and every key it depends on, depth first with an
    /// explicit stack: a chain of thousands of references needs no more
    /// native stack than one.
    fn resolve(&mut self, path: &[String]) -> Result<(Json, bool), ()> {
        let mut frames: Vec<Frame> = Vec::new();
        self.enter(path, &mut frames);
        while let Some(top) = frames.last_mut() {
            if let Some(dep) = top.deps.get(top.next).cloned() {
                top.next += 1;
                match self.state.get(&dep) {
                    Some(State::Done(_)) => {}
                    Some(State::Visiting) => {
                        self.report_cycle(&dep);
                        // The key that closes the cycle fails; its dependents
                        // fail with it, silently: the cycle is reported once.
                        let failed = frames.pop().expect("top frame");
                        self.finish(&failed.path, Err(()));
                    }
                    None => self.enter(&dep, &mut frames),
                }
            } else {
                let done = frames.pop().expect("top frame");
                let r = self.evaluate(&done.path);
                self.finish(&done.path, r);
            }
        }
        match self.state.get(path) {
            Some(State::Done(r)) => r.clone(),
            _ => Err(()),
        }
    }

    fn enter(&mut self, path: &[String], frames: &mut Vec<Frame>) {
        if self.state.contains_key(path) {
            return;
        }
        let Some(leaf) = self.root.leaf(path) else {
            self.state.insert(path.to_vec(), State::Done(Err(())));
            return;
        };
        if !needs_work(&leaf.value) {
            let r = Ok((leaf.value.clone(), leaf.secret));
            self.state.insert(path.to_vec(), State::Done(r));
            return;
        }
        let deps = self.deps_of(&leaf.value);
        self.state.insert(path.to_vec(), State::Visiting);
        self.stack.push(path.to_vec());
        frames.push(Frame {
            path: path.to_vec(),
            deps,
            next: 0,
        });
    }

    fn finish(&mut self, path: &[String], r: Result<(Json, bool), ()>) {
        if self.stack.last().is_some_and(|p| p == path) {
            self.stack.pop();
        }
        self.state.insert(path.to_vec(), State::Done(r));
    }

    fn report_cycle(&mut self, path: &[String]) {
        let start = self.stack.iter().position(|p| p == path).unwrap_or(0);
        let mut chain: Vec<String> = self.stack[start..].iter().map(|p| key_string(p)).collect();
        chain.push(key_string(path));
        let Some(leaf) = self.root.leaf(path) else { return };
        let p = Problem::new(
            "envgate::config::interpolation-cycle",
            format!("interpolation cycle: {}", cut_chain(&chain)),
        )
        .label("this reference closes the cycle")
        .help("break the chain: one of these keys must hold a value, not a reference")
        .at_origin(&leaf.origin);
        self.push(path, p);
    }

    /// A leaf's value once every key it refers to is done.
    fn evaluate(&mut self, path: &[String]) -> Result<(Json, bool), ()> {
        let Some(leaf) = self.root.leaf(path) else {
            return Err(());
        };
        let (value, origin) = (leaf.value.clone(), leaf.origin.clone());
        let already_secret = leaf.secret;
        self.value(&value, path, &origin).map(|(v, s)| (v, s || already_secret))
    }

    fn value(&mut self, v: &Json, path: &[String], origin: &super::tree::Origin) -> Result<(Json, bool), ()> {
        match v {
            Json::String(s) if s.contains("${") => self.string(s, path, origin),
            Json::Array(a) => {
                let mut out = Vec::new();
                let mut secret = false;
                for item in a {
                    let (v, s) = self.value(item, path, origin)?;
                    secret |= s;
                    out.push(v);
                }
                Ok((Json::Array(out), secret))
            }
            other => Ok((other.clone(), false)),
        }
    }

    fn string(&mut self, s: &str, path: &[String], origin: &super::tree::Origin) -> Result<(Json, bool), ()> {
        let Ok(parts) = pieces(s) else {
            let p = Problem::new(
                "envgate::config::interpolation",
                format!("`{}`: unterminated `${{` in value", key_string(path)),
            )
            .label("missing `}`")
            .at_origin(origin);
            self.push(path, p);
            return Err(());
        };
        let whole = matches!(parts.as_slice(), [Piece::Ref(_)]);
        let mut out = String::new();
        let mut secret = false;
        for part in parts {
            match part {
                Piece::Text(t) => out.push_str(t),
                Piece::Ref(expr) => {
                    let (v, sec) = self.reference(expr, path, origin)?;
                    secret |= sec;
                    if whole && !matches!(v, Json::String(_)) {
                        return Ok((v, secret));
                    }
                    match v {
                        Json::String(t) => out.push_str(&t),
                        Json::Null => {}
                        other => out.push_str(&other.to_string()),
                    }
                }
            }
        }
        Ok((Json::String(out), secret))
    }

    fn reference(&mut self, expr: &str, path: &[String], origin: &super::tree::Origin) -> Result<(Json, bool), ()> {
        let here = key_string(path);
        if let Some((msg, help)) = foreign_syntax(expr, &origin.layer) {
            let p = Problem::new("envgate::config::interpolation", format!("`{here}`: {msg}"))
                .label(msg)
                .help(help)
                .at_origin(origin);
            self.push(path, p);
            return Err(());
        }
        let (secret, expr) = match expr.strip_prefix("secret:") {
            Some(e) => (true, e),
            None => (false, expr),
        };
        let fail = |this: &mut Self, msg: String, help: String| {
            let p = Problem::new("envgate::config::interpolation", format!("`{here}`: {msg}"))
                .label(msg.clone())
                .help(help)
                .at_origin(origin);
            this.push(path, p);
            Err(())
        };
        if let Some(var) = expr.strip_prefix("env:") {
            let (name, default) = match var.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (var, None),
            };
            let value = match (self.vars.get(name), default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => d.to_string(),
                (None, None) if secret && self.offline => {
                    let p = Problem::new(
                        "envgate::config::secret-unset",
                        format!("`{here}`: secret {name} is not set (offline: not checked)"),
                    )
                    .label(format!("{name} is read from the environment"))
                    .help(format!("set {name} where this environment is deployed; `envgate check --env ...` without --offline requires it"))
                    .at_origin(origin);
                    let key = key_string(path);
                    self.problems
                        .push(Finding::new(Category::Config, format!("config/{key}"), Some(key), p).warning());
                    format!("unset-secret-{name}")
                }
                (None, None) => {
                    return fail(
                        self,
                        format!("environment variable {name} is not set"),
                        format!(
                            "set {name}, or give a default: ${{{}env:{name}:-value}}",
                            if secret { "secret:" } else { "" }
                        ),
                    );
                }
            };
            if secret {
                self.secrets.push(value.clone());
            }
            return Ok((Json::String(value), secret));
        }
        if let Some(file) = expr.strip_prefix("file:") {
            let path_on_disk = self.project_root.join(file);
            return match super::read::read_text(&path_on_disk) {
                Ok(text) => {
                    let value = text.trim_end_matches(['\n', '\r']).to_string();
                    if secret {
                        self.secrets.push(value.clone());
                    }
                    Ok((Json::String(value), secret))
                }
                Err(e) => fail(
                    self,
                    format!("cannot read {file}: {e}"),
                    "paths are relative to the project root".into(),
                ),
            };
        }
        if secret {
            return fail(
                self,
                format!("unknown secret reference `secret:{expr}`"),
                "write ${secret:env:NAME} or ${secret:file:path}".into(),
            );
        }
        let target = parse_key(expr.trim());
        match self.root.get(&target) {
            // Resolved before this key (it is a dependency); a failure there
            // is reported where it starts.
            Some(Node::Leaf(_)) => match self.state.get(&target) {
                Some(State::Done(r)) => r.clone(),
                _ => Err(()),
            },
            Some(Node::Table { .. }) => fail(
                self,
                format!("`${{{expr}}}` refers to a table, not a value"),
                "reference a single key, e.g. ${database.host}".into(),
            ),
            None => {
                if self.all_keys.is_empty() {
                    self.all_keys = self.root.leaf_paths().iter().map(|p| key_string(p)).collect();
                }
                let best = did_you_mean(expr.trim(), self.all_keys.iter().map(String::as_str)).map(str::to_string);
                fail(
                    self,
                    format!("reference to missing key `{}`", expr.trim()),
                    match best {
                        Some(b) => format!("did you mean `${{{b}}}`?"),
                        None => "define the key, or use ${env:NAME} for an environment variable".into(),
                    },
                )
            }
        }
    }
}

/// A cycle of hundreds of keys is named by its ends, not printed whole.
fn cut_chain(chain: &[String]) -> String {
    const SHOWN: usize = 6;
    if chain.len() <= 2 * SHOWN {
        return chain.join(" → ");
    }
    format!(
        "{} → … ({} more) … → {}",
        chain[..SHOWN].join(" → "),
        chain.len() - 2 * SHOWN,
        chain[chain.len() - SHOWN..].join(" → ")
    )
}

/// `${{ ... }}` (GitHub Actions, Gitea, Woodpecker expressions) and shell
/// parameter expansion (`${VAR:-x}`, `${#VAR}`) are other tools' syntax:
/// say so, and how to keep them, instead of "reference to missing key".
fn foreign_syntax(expr: &str, layer: &str) -> Option<(String, String)> {
    let keep = format!(
        "write `$${{` to keep it as text, or, if its [[source]] is meant for another tool, set `interpolate = false` on it (this value comes from `{layer}`)"
    );
    if expr.starts_with('{') {
        return Some((
            format!("`${{{expr}}}}}` is not envgate interpolation (a GitHub Actions-style expression?)"),
            keep,
        ));
    }
    let name_len = expr
        .char_indices()
        .take_while(|&(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
        .count();
    let rest = &expr[name_len..];
    let shell = (name_len > 0 && [":-", ":=", ":?", ":+"].iter().any(|op| rest.starts_with(op)))
        || expr.starts_with('#')
        || expr.starts_with('!');
    shell.then(|| {
        (
            format!("`${{{expr}}}` is shell syntax, not envgate interpolation"),
            format!("for an environment variable write `${{env:NAME:-default}}`; {keep}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::{Format, SourceFile, parse};
    use proptest::prelude::*;

    fn resolve(toml: &str) -> (Node, Vec<Finding>) {
        let f = SourceFile::new("t.toml", toml);
        let mut root = Node::default();
        root.merge_table(&parse(&f, Format::Toml, "t").unwrap());
        let problems = resolve_all(
            &mut root,
            Path::new("."),
            &IndexMap::new(),
            false,
            &mut Redactor::default(),
        );
        (root, problems)
    }

    fn toml_string(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    proptest! {
        // Keys written in any order, each referring to the next: every one
        // resolves to the end of the chain; closing the chain is one cycle.
        #[test]
        fn chains_resolve_in_any_order_and_a_cycle_is_reported_once(
            order in Just((0..40usize).collect::<Vec<_>>()).prop_shuffle(),
            closed in any::<bool>(),
        ) {
            let n = order.len();
            let mut text = String::from("[c]\n");
            for &i in &order {
                let v = if i + 1 < n {
                    format!("\"${{c.k{}}}\"", i + 1)
                } else if closed {
                    "\"${c.k0}\"".to_string()
                } else {
                    "\"end\"".to_string()
                };
                text.push_str(&format!("k{i} = {v}\n"));
            }
            let (root, problems) = resolve(&text);
            if closed {
                prop_assert_eq!(problems.len(), 1);
                prop_assert!(problems[0].problem.message.starts_with("interpolation cycle: "));
            } else {
                prop_assert!(problems.is_empty());
                for i in 0..n {
                    let l = root.leaf(&[String::from("c"), format!("k{i}")]).unwrap();
                    prop_assert_eq!(&l.value, &Json::from("end"));
                }
            }
        }

        // Any text with `$`, braces and references: resolved or reported,
        // never a panic; `$${` always reads as a literal `${`.
        #[test]
        fn any_value_is_resolved_or_reported_without_panic(
            values in proptest::collection::vec("([a-z ]|\\$|\\{|\\}|\\$\\{(a|b|c|env:X|file:|secret:)?\\}?){0,12}", 1..4),
        ) {
            let mut text = String::from("[v]\n");
            for (i, v) in values.iter().enumerate() {
                text.push_str(&format!("{} = {}\n", ["a", "b", "c", "d"][i], toml_string(v)));
            }
            let (_, _problems) = resolve(&text);
            let (root, problems) = resolve(&format!("x = {}\n", toml_string("$${a}$$${b}")));
            prop_assert!(problems.is_empty());
            prop_assert_eq!(&root.leaf(&[String::from("x")]).unwrap().value, &Json::from("${a}$${b}"));
        }
    }

    #[test]
    fn text_splits_into_literals_and_references() {
        assert_eq!(
            pieces("a${b}$${c}$d").unwrap(),
            [
                Piece::Text("a"),
                Piece::Ref("b"),
                Piece::Text("${"),
                Piece::Text("c}$"),
                Piece::Text("d")
            ]
        );
        assert!(pieces("x${y").is_err());
    }
}
