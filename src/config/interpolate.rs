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
    /// reference's text; `key` is the configuration key whose value holds
    /// the reference, when a key does.
    Secret { what: String, key: Option<Vec<String>> },
    /// `${key}` names a key the configuration does not have.
    Missing { key: String },
    /// Anything else: an unset variable, an unreadable file, a cycle.
    Other { message: String },
}

/// Leaves that could not be resolved, and why: they keep their raw text, so
/// whatever reads them (a probe) must ask here first.
pub type UnresolvedLeaves = HashMap<Vec<String>, Unresolved>;

type Resolved = Result<(Json, bool), Unresolved>;

enum State {
    Visiting,
    Done(Resolved),
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
    /// `${secret:cmd:...}` commands may run.
    commands: bool,
    state: HashMap<Vec<String>, State>,
    /// Keys being resolved, outermost first: the chain a cycle names.
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
    commands: bool,
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
            commands,
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
    /// reference to a non-string.
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
    commands: bool,
) -> Result<Filled, Unresolved> {
    let parts = pieces(text).map_err(|()| Unresolved::Other {
        message: "unterminated `${` (write `$${` for a literal `${`)".into(),
    })?;
    let whole = matches!(parts.as_slice(), [Piece::Ref(_)]);
    let mut filled = Filled {
        value: Json::Null,
        secrets: Vec::new(),
        keys: Vec::new(),
    };
    let mut out = String::new();
    for part in parts {
        let expr = match part {
            Piece::Text(t) => {
                out.push_str(t);
                continue;
            }
            Piece::Ref(expr) => expr,
        };
        let v = match source(expr, project_root, vars, commands) {
            Ok(Source::Value { text, secret }) => {
                if secret {
                    filled.secrets.push(text.clone());
                }
                Json::String(text)
            }
            Ok(Source::Key(path)) => {
                if let Some(cause) = unresolved.get(&path) {
                    return Err(cause.clone());
                }
                match root.get(&path) {
                    Some(Node::Leaf(l)) => {
                        filled.keys.push(path);
                        l.value.clone()
                    }
                    Some(Node::Table { .. }) => {
                        return Err(Unresolved::Other {
                            message: format!("`${{{}}}` refers to a table, not a value", expr.trim()),
                        });
                    }
                    None => return Err(Unresolved::Missing { key: key_string(&path) }),
                }
            }
            Err(e) => return Err(e.cause(None)),
        };
        if whole && !matches!(v, Json::String(_)) {
            filled.value = v;
            return Ok(filled);
        }
        match v {
            Json::String(t) => out.push_str(&t),
            Json::Null => {}
            other => out.push_str(&other.to_string()),
        }
    }
    filled.value = Json::String(out);
    Ok(filled)
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
    Var {
        name: String,
        secret: bool,
    },
    File {
        file: String,
        reason: String,
        secret: bool,
    },
    UnknownSecret {
        expr: String,
    },
    /// `${secret:cmd:...}` failed: the command as written and why.
    Cmd {
        cmd: String,
        reason: String,
    },
    /// `${secret:cmd:...}` while commands may not run (offline, without
    /// `--allow-secret-commands`).
    CmdNotRun {
        cmd: String,
    },
}

impl SourceError {
    fn message(&self) -> String {
        match self {
            SourceError::Var { name, .. } => format!("environment variable {name} is not set"),
            SourceError::File { file, reason, .. } => format!("cannot read {file}: {reason}"),
            SourceError::UnknownSecret { expr } => format!("unknown secret reference `secret:{expr}`"),
            SourceError::Cmd { reason, .. } => format!("secret command {reason}"),
            SourceError::CmdNotRun { cmd } => {
                format!("secret command `{cmd}` not run (offline: pass --allow-secret-commands to run it)")
            }
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
            SourceError::UnknownSecret { .. } => {
                "write ${secret:env:NAME}, ${secret:file:path} or ${secret:cmd:COMMAND ARGS}".into()
            }
            SourceError::Cmd { cmd, .. } => {
                format!("run `{cmd}` where envgate runs: it must print the secret on standard output and exit 0")
            }
            SourceError::CmdNotRun { .. } => "offline runs do not run secret commands unless allowed".into(),
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
            SourceError::Cmd { reason, .. } => Unresolved::Secret {
                what: format!("command {reason}"),
                key,
            },
            SourceError::CmdNotRun { cmd } => Unresolved::Secret {
                what: format!("command `{cmd}` was not run (offline)"),
                key,
            },
            other => Unresolved::Other {
                message: other.message(),
            },
        }
    }
}

/// The longest a `${secret:cmd:...}` command may run.
pub const SECRET_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Read `${expr}`'s source: `[secret:]env:NAME[:-default]`,
/// `[secret:]file:path` (a regular file, bounded), `secret:cmd:COMMAND`
/// (run without a shell when `commands`, its standard output), or a key.
fn source(
    expr: &str,
    project_root: &Path,
    vars: &IndexMap<String, String>,
    commands: bool,
) -> Result<Source, SourceError> {
    let (secret, expr) = match expr.strip_prefix("secret:") {
        Some(e) => (true, e),
        None => (false, expr),
    };
    if secret && let Some(line) = expr.strip_prefix("cmd:") {
        let line = line.trim();
        let argv = super::command::split(line).map_err(|e| SourceError::Cmd {
            cmd: line.to_string(),
            reason: format!("`{line}` {e}"),
        })?;
        if !commands {
            return Err(SourceError::CmdNotRun { cmd: line.to_string() });
        }
        return match super::command::run_in(&argv, SECRET_COMMAND_TIMEOUT, Some(project_root)) {
            Ok(out) => Ok(Source::Value {
                text: out.trim_end_matches(['\n', '\r']).to_string(),
                secret: true,
            }),
            Err(reason) => Err(SourceError::Cmd {
                cmd: line.to_string(),
                reason,
            }),
        };
    }
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
        return match super::read::read_text(&project_root.join(file)) {
            Ok(text) => Ok(Source::Value {
                text: text.trim_end_matches(['\n', '\r']).to_string(),
                secret,
            }),
            Err(e) => Err(SourceError::File {
                file: file.to_string(),
                reason: e.to_string(),
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
    fn resolve(&mut self, path: &[String]) -> Resolved {
        let mut frames: Vec<Frame> = Vec::new();
        self.enter(path, &mut frames);
        while let Some(top) = frames.last_mut() {
            if let Some(dep) = top.deps.get(top.next).cloned() {
                top.next += 1;
                match self.state.get(&dep) {
                    Some(State::Done(_)) => {}
                    Some(State::Visiting) => {
                        let message = self.report_cycle(&dep);
                        // The key that closes the cycle fails; its dependents
                        // fail with it, silently: the cycle is reported once.
                        let failed = frames.pop().expect("top frame");
                        self.finish(&failed.path, Err(Unresolved::Other { message }));
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
            _ => Err(Unresolved::Missing { key: key_string(path) }),
        }
    }

    fn enter(&mut self, path: &[String], frames: &mut Vec<Frame>) {
        if self.state.contains_key(path) {
            return;
        }
        let Some(leaf) = self.root.leaf(path) else {
            let missing = Unresolved::Missing { key: key_string(path) };
            self.state.insert(path.to_vec(), State::Done(Err(missing)));
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

    fn finish(&mut self, path: &[String], r: Resolved) {
        if self.stack.last().is_some_and(|p| p == path) {
            self.stack.pop();
        }
        self.state.insert(path.to_vec(), State::Done(r));
    }

    /// Report the cycle `path` closes, once; returns its message.
    fn report_cycle(&mut self, path: &[String]) -> String {
        let start = self.stack.iter().position(|p| p == path).unwrap_or(0);
        let mut chain: Vec<String> = self.stack[start..].iter().map(|p| key_string(p)).collect();
        chain.push(key_string(path));
        let message = format!("interpolation cycle: {}", cut_chain(&chain));
        if let Some(leaf) = self.root.leaf(path) {
            let p = Problem::new("envgate::config::interpolation-cycle", message.clone())
                .label("this reference closes the cycle")
                .help("break the chain: one of these keys must hold a value, not a reference")
                .at_origin(&leaf.origin);
            self.push(path, p);
        }
        message
    }

    /// A leaf's value once every key it refers to is done.
    fn evaluate(&mut self, path: &[String]) -> Resolved {
        let Some(leaf) = self.root.leaf(path) else {
            return Err(Unresolved::Missing { key: key_string(path) });
        };
        let (value, origin) = (leaf.value.clone(), leaf.origin.clone());
        let already_secret = leaf.secret;
        self.value(&value, path, &origin).map(|(v, s)| (v, s || already_secret))
    }

    fn value(&mut self, v: &Json, path: &[String], origin: &crate::source::Origin) -> Resolved {
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

    fn string(&mut self, s: &str, path: &[String], origin: &crate::source::Origin) -> Resolved {
        let Ok(parts) = pieces(s) else {
            let p = Problem::new(
                "envgate::config::interpolation",
                format!("`{}`: unterminated `${{` in value", key_string(path)),
            )
            .label("missing `}`")
            .at_origin(origin);
            self.push(path, p);
            return Err(Unresolved::Other {
                message: "unterminated `${` in value".into(),
            });
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

    fn reference(&mut self, expr: &str, path: &[String], origin: &crate::source::Origin) -> Resolved {
        let here = key_string(path);
        let fail = |this: &mut Self, msg: String, help: String, cause: Unresolved| {
            let p = Problem::new("envgate::config::interpolation", format!("`{here}`: {msg}"))
                .label(msg.clone())
                .help(help)
                .at_origin(origin);
            this.push(path, p);
            Err(cause)
        };
        if let Some((msg, help)) = foreign_syntax(expr, &origin.layer) {
            let cause = Unresolved::Other { message: msg.clone() };
            return fail(self, msg, help, cause);
        }
        let target = match source(expr, self.project_root, self.vars, self.commands) {
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
                self.problems
                    .push(Finding::new(Category::Config, format!("config/{here}"), Some(here.clone()), p).warning());
                let value = format!("unset-secret-{name}");
                self.secrets.push(value.clone());
                return Ok((Json::String(value), true));
            }
            Err(SourceError::CmdNotRun { cmd }) if self.offline => {
                let p = Problem::new(
                    "envgate::config::secret-command-not-run",
                    format!("`{here}`: secret command `{cmd}` not run (offline: not checked)"),
                )
                .label("read from a command's output")
                .help("pass --allow-secret-commands to run secret commands offline")
                .at_origin(origin);
                self.problems
                    .push(Finding::new(Category::Config, format!("config/{here}"), Some(here.clone()), p).warning());
                let value = "unread-secret-command".to_string();
                return Ok((Json::String(value), true));
            }
            Err(e) => {
                let cause = e.cause(Some(path));
                return fail(self, e.message(), e.help(), cause);
            }
        };
        match self.root.get(&target) {
            // Resolved before this key (it is a dependency); a failure there
            // is reported where it starts, and its cause travels on.
            Some(Node::Leaf(_)) => match self.state.get(&target) {
                Some(State::Done(r)) => r.clone(),
                _ => Err(Unresolved::Missing {
                    key: key_string(&target),
                }),
            },
            Some(Node::Table { .. }) => fail(
                self,
                format!("`${{{expr}}}` refers to a table, not a value"),
                "reference a single key, e.g. ${database.host}".into(),
                Unresolved::Other {
                    message: format!("`${{{}}}` refers to a table, not a value", expr.trim()),
                },
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
                    Unresolved::Missing {
                        key: key_string(&target),
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
    use crate::config::parse::table as parse;
    use crate::config::tree::Format;
    use crate::source::SourceFile;
    use proptest::prelude::*;

    fn resolve(toml: &str) -> (Node, Vec<Finding>) {
        let f = SourceFile::new("t.toml", toml);
        let mut root = Node::default();
        root.merge_table(&parse(&f, Format::Toml, "t").unwrap());
        let (problems, _) = resolve_all(
            &mut root,
            Path::new("."),
            &IndexMap::new(),
            false,
            true,
            &mut Redactor::default(),
        );
        (root, problems)
    }

    #[test]
    fn a_secret_command_prints_the_secret_and_a_failure_names_the_command() {
        let f = SourceFile::new(
            "t.toml",
            "[db]\npassword = \"${secret:cmd:printf 'pa ss\\n'}\"\nbad = \"${secret:cmd:sh -c 'exit 4'}\"\n",
        );
        let mut root = Node::default();
        root.merge_table(&parse(&f, Format::Toml, "t").unwrap());
        let mut redactor = Redactor::default();
        let (problems, unresolved) =
            resolve_all(&mut root, Path::new("."), &IndexMap::new(), false, true, &mut redactor);
        assert_eq!(
            root.leaf(&parse_key("db.password")).unwrap().value,
            Json::String("pa ss".into())
        );
        assert!(root.leaf(&parse_key("db.password")).unwrap().secret);
        assert_eq!(redactor.scrub("it was pa ss"), "it was ***");
        assert_eq!(problems.len(), 1, "{problems:?}");
        let text = problems[0].problem.message.clone();
        assert!(text.contains("`sh -c exit 4` exited with 4"), "{text}");
        assert!(unresolved.contains_key(&parse_key("db.bad")));
        // Offline, a command is not run: a warning and a placeholder.
        let mut root = Node::default();
        root.merge_table(&parse(&f, Format::Toml, "t").unwrap());
        let (problems, _) = resolve_all(
            &mut root,
            Path::new("."),
            &IndexMap::new(),
            true,
            false,
            &mut Redactor::default(),
        );
        assert!(
            problems
                .iter()
                .all(|p| p.problem.message.contains("not run (offline: not checked)")),
            "{problems:?}"
        );
        assert_eq!(problems.len(), 2);
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

    /// A resolved tree from one TOML layer, with `vars` as the environment.
    fn resolved(text: &str, vars: &[(&str, &str)]) -> (Node, UnresolvedLeaves, IndexMap<String, String>) {
        let f = SourceFile::new("staging.toml".to_string(), text);
        let mut root = Node::default();
        root.merge_table(&parse(&f, Format::Toml, "staging").unwrap());
        let vars: IndexMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (_, unresolved) = resolve_all(&mut root, Path::new("."), &vars, false, true, &mut Redactor::default());
        (root, unresolved, vars)
    }

    #[test]
    fn probe_text_is_filled_by_the_configuration_rules() {
        let (root, unresolved, vars) =
            resolved("[api]\nport = 8080\nhost = \"api.example.com\"\n", &[("REGION", "eu")]);
        let fill = |t: &str| fill(t, &root, &unresolved, Path::new("."), &vars, true);
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
        let err = fill("${db.url}", &root, &unresolved, Path::new("."), &vars, true).unwrap_err();
        assert_eq!(err, cause);
    }
}
