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

struct Ctx<'a> {
    root: &'a Node,
    project_root: &'a Path,
    vars: &'a IndexMap<String, String>,
    offline: bool,
    state: HashMap<Vec<String>, State>,
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

    fn resolve(&mut self, path: &[String]) -> Result<(Json, bool), ()> {
        match self.state.get(path) {
            Some(State::Done(r)) => return r.clone(),
            Some(State::Visiting) => {
                let start = self.stack.iter().position(|p| p == path).unwrap_or(0);
                let mut chain: Vec<String> = self.stack[start..].iter().map(|p| key_string(p)).collect();
                chain.push(key_string(path));
                let leaf = self.root.leaf(path).expect("leaf");
                let p = Problem::new(
                    "envgate::config::interpolation-cycle",
                    format!("interpolation cycle: {}", chain.join(" → ")),
                )
                .label("this reference closes the cycle")
                .help("break the chain: one of these keys must hold a value, not a reference")
                .at_origin(&leaf.origin);
                self.push(path, p);
                return Err(());
            }
            None => {}
        }
        let Some(leaf) = self.root.leaf(path) else {
            return Err(());
        };
        let (value, origin) = (leaf.value.clone(), leaf.origin.clone());
        let already_secret = leaf.secret;
        self.state.insert(path.to_vec(), State::Visiting);
        self.stack.push(path.to_vec());
        let r = self.value(&value, path, &origin).map(|(v, s)| (v, s || already_secret));
        self.stack.pop();
        self.state.insert(path.to_vec(), State::Done(r.clone()));
        r
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
        let mut out = String::new();
        let mut secret = false;
        let mut rest = s;
        let mut whole: Option<Json> = None;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i..];
            if let Some(tail) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = tail;
                continue;
            }
            let Some(tail) = after.strip_prefix("${") else {
                out.push('$');
                rest = &after[1..];
                continue;
            };
            let Some(end) = tail.find('}') else {
                let p = Problem::new(
                    "envgate::config::interpolation",
                    format!("`{}`: unterminated `${{` in value", key_string(path)),
                )
                .label("missing `}`")
                .at_origin(origin);
                self.push(path, p);
                return Err(());
            };
            let expr = &tail[..end];
            let is_whole = out.is_empty() && tail[end + 1..].is_empty() && i == 0;
            let (v, sec) = self.reference(expr, path, origin)?;
            secret |= sec;
            if is_whole && !matches!(v, Json::String(_)) {
                whole = Some(v.clone());
            }
            match v {
                Json::String(t) => out.push_str(&t),
                Json::Null => {}
                other => out.push_str(&other.to_string()),
            }
            rest = &tail[end + 1..];
        }
        out.push_str(rest);
        Ok((whole.unwrap_or(Json::String(out)), secret))
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
            return match std::fs::read_to_string(&path_on_disk) {
                Ok(text) => {
                    let value = text.trim_end_matches(['\n', '\r']).to_string();
                    if secret {
                        self.secrets.push(value.clone());
                    }
                    Ok((Json::String(value), secret))
                }
                Err(e) => fail(
                    self,
                    format!(
                        "cannot read {file}: {}",
                        e.to_string()
                            .split(" (os error")
                            .next()
                            .unwrap_or_default()
                            .to_lowercase()
                    ),
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
            Some(Node::Leaf(_)) => {
                let Ok((v, s)) = self.resolve(&target) else {
                    // The cycle or dangling reference is reported where it starts.
                    return Err(());
                };
                Ok((v, s))
            }
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
