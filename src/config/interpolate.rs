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

/// Why a value or a probe's text could not be filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// A `${secret:...}` whose source is absent. `what` says which, in
    /// words (`environment variable DB_PASSWORD is not set`), never the
    /// reference's text;
    /// `key` is the configuration key whose value holds the reference, when
    /// a key does.
    Secret { what: String, key: Option<Vec<String>> },
    /// `${key}` names a key the configuration does not have.
    Missing { key: String },
    /// Anything else: an unset variable, an unreadable file, a cycle.
    Other { message: String },
}

/// Leaves that could not be resolved, and why: they keep their raw text, so
/// whatever reads them (a probe) must ask here first.
pub type UnresolvedLeaves = HashMap<Vec<String>, Unresolved>;

enum State {
    Visiting,
    Done(Result<(Json, bool), Unresolved>),
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

/// Resolve every string leaf in place. Returns the problems found and the
/// leaves that failed (they keep their raw text), each with its cause.
/// Offline (the PR gate, where production secrets are absent), an unset
/// `${secret:env:NAME}` is a warning and resolves to a placeholder.
pub fn resolve_all(
    root: &mut Node,
    project_root: &Path,
    vars: &IndexMap<String, String>,
    offline: bool,
    redactor: &mut Redactor,
) -> (Vec<Finding>, UnresolvedLeaves) {
    let paths = root.paths_where(&|l| needs_work(&l.value));
    let mut results = Vec::new();
    let mut unresolved = HashMap::new();
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
            if needs_work(&ctx.root.leaf(p).expect("leaf").value) {
                match ctx.resolve(p) {
                    Ok(r) => results.push((p.clone(), r)),
                    Err(cause) => {
                        unresolved.insert(p.clone(), cause);
                    }
                }
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
    (problems, unresolved)
}

/// A probe's text with every `${...}` filled in from an assembled
/// configuration, by the same rules as configuration values.
#[derive(Debug, Clone)]
pub struct Filled {
    /// Text, or the referenced value itself when the text is exactly one
    /// reference to a number or a boolean.
    pub value: Json,
    /// Secret values read directly (`${secret:env:NAME}`), for redaction.
    pub secrets: Vec<String>,
    /// The configuration keys read, in order.
    pub keys: Vec<Vec<String>>,
}

/// Fill `text` in from `root` (already resolved; `unresolved` lists the
/// leaves that are not), the project's files and `vars`. `$${` is a literal
/// `${`. A reference to an unresolved leaf fails with that leaf's cause.
pub fn fill(
    text: &str,
    root: &Node,
    unresolved: &UnresolvedLeaves,
    project_root: &Path,
    vars: &IndexMap<String, String>,
) -> Result<Filled, Unresolved> {
    let mut secrets = Vec::new();
    let mut keys = Vec::new();
    let (value, _) = expand(
        text,
        |expr| match source(expr, project_root, vars) {
            Ok(Source::Value { text, secret }) => {
                if secret {
                    secrets.push(text.clone());
                }
                Ok((Json::String(text), secret))
            }
            Ok(Source::Key(path)) => {
                if let Some(cause) = unresolved.get(&path) {
                    return Err(cause.clone());
                }
                match root.get(&path) {
                    Some(Node::Leaf(l)) => {
                        keys.push(path);
                        Ok((l.value.clone(), l.secret))
                    }
                    Some(Node::Table { .. }) => Err(Unresolved::Other {
                        message: format!("`${{{}}}` refers to a table, not a value", expr.trim()),
                    }),
                    None => Err(Unresolved::Missing { key: key_string(&path) }),
                }
            }
            Err(e) => Err(e.cause(None)),
        },
        || Unresolved::Other {
            message: "unterminated `${` (write `$${` for a literal `${`)".into(),
        },
    )?;
    Ok(Filled { value, secrets, keys })
}

/// Expand `${...}` in `s` with `reference`; `$${` is a literal `${`. A
/// string that is exactly one reference to a non-string takes its value.
fn expand<E>(
    s: &str,
    mut reference: impl FnMut(&str) -> Result<(Json, bool), E>,
    unterminated: impl FnOnce() -> E,
) -> Result<(Json, bool), E> {
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
            return Err(unterminated());
        };
        let expr = &tail[..end];
        let is_whole = out.is_empty() && tail[end + 1..].is_empty() && i == 0;
        let (v, sec) = reference(expr)?;
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

/// What a `${...}` expression reads.
enum Source {
    /// An environment variable or a file's text.
    Value { text: String, secret: bool },
    /// Another configuration key.
    Key(Vec<String>),
}

/// Why an `env:`, `file:` or `secret:` reference has no value.
enum SourceError {
    Var { name: String, secret: bool },
    File { file: String, reason: String, secret: bool },
    UnknownSecret { expr: String },
}

impl SourceError {
    fn message(&self) -> String {
        match self {
            SourceError::Var { name, .. } => format!("environment variable {name} is not set"),
            SourceError::File { file, reason, .. } => format!("cannot read {file}: {reason}"),
            SourceError::UnknownSecret { expr } => format!("unknown secret reference `secret:{expr}`"),
        }
    }

    fn help(&self) -> String {
        match self {
            // A secret has no sensible default: it is set where envgate runs.
            SourceError::Var { name, secret: true } => format!("set {name} in the environment envgate runs in"),
            SourceError::Var { name, secret: false } => {
                format!("set {name}, or give a default: ${{env:{name}:-value}}")
            }
            SourceError::File { .. } => "paths are relative to the project root".into(),
            SourceError::UnknownSecret { .. } => "write ${secret:env:NAME} or ${secret:file:path}".into(),
        }
    }

    /// The cause a reader of the value sees; `key` holds the reference.
    fn cause(&self, key: Option<&[String]>) -> Unresolved {
        let key = key.map(<[String]>::to_vec);
        match self {
            SourceError::Var { name, secret: true } => Unresolved::Secret {
                what: format!("environment variable {name} is not set"),
                key,
            },
            SourceError::File {
                file,
                reason,
                secret: true,
            } => Unresolved::Secret {
                what: format!("file {file} cannot be read ({reason})"),
                key,
            },
            other => Unresolved::Other {
                message: other.message(),
            },
        }
    }
}

/// Read `${expr}`'s source: `[secret:]env:NAME[:-default]`,
/// `[secret:]file:path`, or a key.
fn source(expr: &str, project_root: &Path, vars: &IndexMap<String, String>) -> Result<Source, SourceError> {
    let (secret, expr) = match expr.strip_prefix("secret:") {
        Some(e) => (true, e),
        None => (false, expr),
    };
    if let Some(var) = expr.strip_prefix("env:") {
        let (name, default) = match var.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (var, None),
        };
        return match (vars.get(name), default) {
            (Some(v), _) => Ok(Source::Value {
                text: v.clone(),
                secret,
            }),
            (None, Some(d)) => Ok(Source::Value {
                text: d.to_string(),
                secret,
            }),
            (None, None) => Err(SourceError::Var {
                name: name.to_string(),
                secret,
            }),
        };
    }
    if let Some(file) = expr.strip_prefix("file:") {
        return match std::fs::read_to_string(project_root.join(file)) {
            Ok(text) => Ok(Source::Value {
                text: text.trim_end_matches(['\n', '\r']).to_string(),
                secret,
            }),
            Err(e) => Err(SourceError::File {
                file: file.to_string(),
                reason: e
                    .to_string()
                    .split(" (os error")
                    .next()
                    .unwrap_or_default()
                    .to_lowercase(),
                secret,
            }),
        };
    }
    if secret {
        return Err(SourceError::UnknownSecret { expr: expr.to_string() });
    }
    Ok(Source::Key(parse_key(expr.trim())))
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

    fn resolve(&mut self, path: &[String]) -> Result<(Json, bool), Unresolved> {
        match self.state.get(path) {
            Some(State::Done(r)) => return r.clone(),
            Some(State::Visiting) => {
                let start = self.stack.iter().position(|p| p == path).unwrap_or(0);
                let mut chain: Vec<String> = self.stack[start..].iter().map(|p| key_string(p)).collect();
                chain.push(key_string(path));
                let message = format!("interpolation cycle: {}", chain.join(" → "));
                let leaf = self.root.leaf(path).expect("leaf");
                let p = Problem::new("envgate::config::interpolation-cycle", message.clone())
                    .label("this reference closes the cycle")
                    .help("break the chain: one of these keys must hold a value, not a reference")
                    .at_origin(&leaf.origin);
                self.push(path, p);
                return Err(Unresolved::Other { message });
            }
            None => {}
        }
        let Some(leaf) = self.root.leaf(path) else {
            return Err(Unresolved::Missing { key: key_string(path) });
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

    fn value(&mut self, v: &Json, path: &[String], origin: &super::tree::Origin) -> Result<(Json, bool), Unresolved> {
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

    fn string(&mut self, s: &str, path: &[String], origin: &super::tree::Origin) -> Result<(Json, bool), Unresolved> {
        // `expand` needs `self` for each reference and for the error: the
        // error is built after it returns.
        let mut unterminated = false;
        let r = expand(
            s,
            |expr| self.reference(expr, path, origin),
            || {
                unterminated = true;
                Unresolved::Other {
                    message: "unterminated `${` in value".into(),
                }
            },
        );
        if unterminated {
            let p = Problem::new(
                "envgate::config::interpolation",
                format!("`{}`: unterminated `${{` in value", key_string(path)),
            )
            .label("missing `}`")
            .at_origin(origin);
            self.push(path, p);
        }
        r
    }

    fn reference(
        &mut self,
        expr: &str,
        path: &[String],
        origin: &super::tree::Origin,
    ) -> Result<(Json, bool), Unresolved> {
        let here = key_string(path);
        let fail = |this: &mut Self, msg: String, help: String, cause: Unresolved| {
            let p = Problem::new("envgate::config::interpolation", format!("`{here}`: {msg}"))
                .label(msg.clone())
                .help(help)
                .at_origin(origin);
            this.push(path, p);
            Err(cause)
        };
        let target = match source(expr, self.project_root, self.vars) {
            Ok(Source::Value { text, secret }) => {
                if secret {
                    self.secrets.push(text.clone());
                }
                return Ok((Json::String(text), secret));
            }
            Ok(Source::Key(target)) => target,
            Err(SourceError::Var { name, secret: true }) if self.offline => {
                let p = Problem::new(
                    "envgate::config::secret-unset",
                    format!("`{here}`: secret {name} is not set (offline: not checked)"),
                )
                .label(format!("{name} is read from the environment"))
                .help(format!(
                    "set {name} where this environment is deployed; `envgate check --env ...` without --offline requires it"
                ))
                .at_origin(origin);
                let key = key_string(path);
                self.problems
                    .push(Finding::new(Category::Config, format!("config/{key}"), Some(key), p).warning());
                let value = format!("unset-secret-{name}");
                self.secrets.push(value.clone());
                return Ok((Json::String(value), true));
            }
            Err(e) => {
                let cause = e.cause(Some(path));
                return fail(self, e.message(), e.help(), cause);
            }
        };
        match self.root.get(&target) {
            // The cycle or dangling reference is reported where it starts;
            // this leaf carries its cause.
            Some(Node::Leaf(_)) => self.resolve(&target),
            Some(Node::Table { .. }) => {
                let msg = format!("`${{{expr}}}` refers to a table, not a value");
                let cause = Unresolved::Other { message: msg.clone() };
                fail(self, msg, "reference a single key, e.g. ${database.host}".into(), cause)
            }
            None => {
                if self.all_keys.is_empty() {
                    self.all_keys = self.root.leaf_paths().iter().map(|p| key_string(p)).collect();
                }
                let best = did_you_mean(expr.trim(), self.all_keys.iter().map(String::as_str)).map(str::to_string);
                let msg = format!("reference to missing key `{}`", expr.trim());
                let cause = Unresolved::Other { message: msg.clone() };
                fail(
                    self,
                    msg,
                    match best {
                        Some(b) => format!("did you mean `${{{b}}}`?"),
                        None => "define the key, or use ${env:NAME} for an environment variable".into(),
                    },
                    cause,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::{Format, SourceFile, parse};

    /// A resolved tree from one TOML layer, with `vars` as the environment.
    fn resolved(text: &str, vars: &[(&str, &str)]) -> (Node, UnresolvedLeaves, IndexMap<String, String>) {
        let f = SourceFile::new("staging.toml".to_string(), text);
        let mut root = Node::default();
        root.merge_table(&parse(&f, Format::Toml, "staging").unwrap());
        let vars: IndexMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (_, unresolved) = resolve_all(&mut root, Path::new("."), &vars, false, &mut Redactor::default());
        (root, unresolved, vars)
    }

    #[test]
    fn probe_text_is_filled_by_the_configuration_rules() {
        let (root, unresolved, vars) =
            resolved("[api]\nport = 8080\nhost = \"api.example.com\"\n", &[("REGION", "eu")]);
        let fill = |t: &str| fill(t, &root, &unresolved, Path::new("."), &vars);
        let f = fill("http://${api.host}:${api.port}/${env:REGION}/$${literal}").unwrap();
        assert_eq!(f.value, "http://api.example.com:8080/eu/${literal}");
        assert_eq!(f.keys, [parse_key("api.host"), parse_key("api.port")]);
        assert_eq!(fill("${api.port}").unwrap().value, 8080, "one reference keeps its type");
        assert_eq!(
            fill("${api.nope}").unwrap_err(),
            Unresolved::Missing { key: "api.nope".into() }
        );
        let secret = fill("Bearer ${secret:env:TOKEN}").unwrap_err();
        assert_eq!(
            secret,
            Unresolved::Secret {
                what: "environment variable TOKEN is not set".into(),
                key: None
            }
        );
    }

    #[test]
    fn a_value_that_reads_an_unset_secret_carries_that_cause_to_whoever_reads_it() {
        let (root, unresolved, vars) = resolved(
            "[db]\npassword = \"${secret:env:DB_PASSWORD}\"\nurl = \"postgres://app:${db.password}@db/x\"\n",
            &[],
        );
        let cause = Unresolved::Secret {
            what: "environment variable DB_PASSWORD is not set".into(),
            key: Some(parse_key("db.password")),
        };
        assert_eq!(unresolved.get(&parse_key("db.url")), Some(&cause));
        let err = fill("${db.url}", &root, &unresolved, Path::new("."), &vars).unwrap_err();
        assert_eq!(err, cause);
    }
}
