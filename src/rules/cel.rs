//! CEL rules (the language of Kubernetes validation rules), evaluated with the
//! `cel` crate. Durations and byte sizes reach CEL typed: `x-unit: duration`
//! values as CEL durations, `x-unit: bytes` as integers of bytes.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::{Context, Program, Value};
use regex::Regex;
use serde_json::Value as Json;

use super::checks::{Rule, RuleSeverity, Scope};
use super::explain::{explain, type_name};
use crate::config::assemble::Assembled;
use crate::config::merge::{Node, key_string};
use crate::config::schema::Schema;
use crate::config::secrets::{Redactor, mask_value};
use crate::config::units::{self, Unit};
use crate::diagnostic::Problem;
use crate::findings::{Category, Finding};
use crate::outcome::{CheckResult, Severity, Status};
use crate::source::Origin;

static CONFIG_READ: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bconfig((?:\.[A-Za-z_][A-Za-z0-9_]*)+)").expect("valid regex"));
static ENVS_READ: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\benvs\.([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)").expect("valid regex")
});

/// A rule compiled once per run.
pub struct Compiled {
    pub rule: Rule,
    when: Option<Program>,
    assert: Program,
    /// Key paths the expressions read from `config` (scope env) or, for
    /// all-envs rules, `(env, path)` pairs from `envs.<env>.…`.
    reads: Vec<Vec<String>>,
    env_reads: Vec<(String, Vec<String>)>,
}

impl Compiled {
    pub fn id(&self) -> &str {
        self.rule.def.id.get_ref()
    }

    pub fn scope(&self) -> Scope {
        self.rule.def.scope
    }

    /// Environments an all-envs rule names.
    pub fn envs_named(&self) -> Vec<String> {
        let mut v: Vec<String> = self.env_reads.iter().map(|(e, _)| e.clone()).collect();
        v.dedup();
        v.sort();
        v.dedup();
        v
    }
}

pub fn compile(rules: Vec<Rule>) -> Result<Vec<Compiled>, Vec<Problem>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for rule in rules {
        let assert = compile_one(&rule, &rule.def.assert, "assert");
        let when = rule.def.when.as_ref().map(|w| compile_one(&rule, w, "when"));
        match (assert, when.transpose()) {
            (Ok(assert), Ok(when)) => {
                let mut text = rule.def.assert.get_ref().clone();
                if let Some(w) = &rule.def.when {
                    text.push(' ');
                    text.push_str(w.get_ref());
                }
                let reads = match config_reads(&rule, &text) {
                    Ok(r) => r,
                    Err(p) => {
                        problems.push(p);
                        continue;
                    }
                };
                let env_reads = ENVS_READ
                    .captures_iter(&text)
                    .map(|c| {
                        let path = c[2]
                            .trim_start_matches('.')
                            .split('.')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect();
                        (c[1].to_string(), path)
                    })
                    .collect();
                out.push(Compiled {
                    rule,
                    when,
                    assert,
                    reads,
                    env_reads,
                });
            }
            (a, w) => {
                problems.extend(a.err());
                problems.extend(w.err());
            }
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

/// CEL's methods on the values a configuration holds: `config.t.getSeconds`
/// without `()` would read a key named `getSeconds`.
const METHODS: &[&str] = &[
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
];

/// The key paths an expression reads from `config`, method calls left out;
/// a method named without its call is a mistake the user should hear about.
fn config_reads(rule: &Rule, text: &str) -> Result<Vec<Vec<String>>, Problem> {
    let mut reads = Vec::new();
    for c in CONFIG_READ.captures_iter(text) {
        let mut path: Vec<String> = c[1].trim_start_matches('.').split('.').map(str::to_string).collect();
        let called = text[c.get(0).map_or(0, |m| m.end())..].trim_start().starts_with('(');
        if let Some(last) = path.last().filter(|l| METHODS.contains(&l.as_str())).cloned() {
            if !called {
                let s = rule.def.assert.span();
                let (line, col) = rule.file.line_col(s.start);
                let whole = &c[0];
                return Err(Problem::new(
                    "envgate::rule::syntax",
                    format!(
                        "rule `{}`: `{whole}` reads a key named `{last}`; `{last}` is a method: write `{whole}()` ({}:{line}:{col})",
                        rule.def.id.get_ref(),
                        rule.file.name
                    ),
                )
                .label("call the method with ()")
                .help(format!("`{whole}()` calls it; a key named `{last}` would be written config[\"{last}\"]"))
                .at(&rule.file, s.start, s.len()));
            }
            path.pop();
        }
        if !path.is_empty() {
            reads.push(path);
        }
    }
    Ok(reads)
}

fn compile_one(rule: &Rule, expr: &toml::Spanned<String>, field: &str) -> Result<Program, Problem> {
    Program::compile(expr.get_ref()).map_err(|errs| {
        let first = errs.errors.first();
        let (line, col) = first.map_or((1, 1), |e| (e.pos.0.max(1) as usize, e.pos.1.max(1) as usize));
        let msg = first.map_or_else(|| "syntax error".to_string(), |e| e.msg.clone());
        let offset = expr_offset(&rule.file.text, expr.span(), line, col);
        let (fl, fc) = rule.file.line_col(offset);
        Problem::new(
            "envgate::rule::syntax",
            format!(
                "rule `{}`: `{field}` is not valid CEL: {msg} ({}:{fl}:{fc})",
                rule.def.id.get_ref(),
                rule.file.name
            ),
        )
        .label(msg)
        .help("CEL reference: https://github.com/google/cel-spec/blob/master/doc/langdef.md")
        .at(&rule.file, offset, 1)
    })
}

/// Byte offset in the checks file of (line, col) inside a TOML string value.
fn expr_offset(text: &str, span: std::ops::Range<usize>, line: usize, col: usize) -> usize {
    let raw = &text[span.clone()];
    let mut start = span.start
        + if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3 + usize::from(raw[3..].starts_with('\n'))
        } else {
            1
        };
    for _ in 1..line {
        match text[start..span.end].find('\n') {
            Some(i) => start += i + 1,
            None => break,
        }
    }
    let line_text = &text[start..span.end];
    start + line_text.char_indices().nth(col - 1).map_or(0, |(b, _)| b)
}

/// The configuration as a CEL value, typed by the schema's units.
pub fn to_cel(node: &Node, schema: Option<&Schema>) -> Value {
    fn walk(node: &Node, schema: Option<&Schema>, sub: Option<&Json>) -> Value {
        match node {
            Node::Table { children, .. } => {
                let mut m: HashMap<String, Value> = HashMap::with_capacity(children.len());
                for (k, c) in children {
                    let child = schema.zip(sub).and_then(|(s, sub)| s.child_of(sub, k));
                    m.insert(k.clone(), walk(c, schema, child));
                }
                Value::from(m)
            }
            Node::Leaf(l) => {
                let unit = sub
                    .and_then(|s| s.get("x-unit"))
                    .and_then(Json::as_str)
                    .and_then(Unit::from_schema);
                json_to_cel(&l.value, unit)
            }
        }
    }
    walk(node, schema, schema.map(Schema::root))
}

fn json_to_cel(v: &Json, unit: Option<Unit>) -> Value {
    match (v, unit) {
        (Json::String(s), Some(Unit::Duration)) => match units::parse_duration(s) {
            Some(d) => Value::Duration(chrono::Duration::nanoseconds(d.as_nanos() as i64)),
            None => Value::String(Arc::new(s.clone())),
        },
        (Json::String(s), Some(Unit::Bytes)) => match units::parse_bytes(s) {
            Some(b) => Value::Int(b as i64),
            None => Value::String(Arc::new(s.clone())),
        },
        (Json::Null, _) => Value::Null,
        (Json::Bool(b), _) => Value::Bool(*b),
        (Json::Number(n), _) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        (Json::String(s), _) => Value::String(Arc::new(s.clone())),
        (Json::Array(a), _) => Value::List(Arc::new(a.iter().map(|x| json_to_cel(x, None)).collect())),
        (Json::Object(o), _) => {
            let m: HashMap<String, Value> = o.iter().map(|(k, v)| (k.clone(), json_to_cel(v, None))).collect();
            Value::from(m)
        }
    }
}

/// What a rule found about a configuration.
enum Verdict {
    Holds,
    Skipped(String),
    Fails,
    /// It read a key the configuration does not set.
    Missing,
}

/// The rule itself is wrong: which field, what, and a hint.
struct Broken(&'static str, String, String);

fn run(c: &Compiled, ctx: &Context<'_, '_>) -> Result<Verdict, Broken> {
    let outcome = |field: &'static str, r: Result<Value, cel::ExecutionError>| match r {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(Err(Broken(
            field,
            format!("`{field}` must be true or false, but it is {}", type_name(&other)),
            "end the expression in a comparison, e.g. `config.pool_size >= 5`".into(),
        ))),
        Err(e) => Err(match explain(&e) {
            None => Ok(Verdict::Missing),
            Some((message, hint)) => Err(Broken(field, message, hint)),
        }),
    };
    if let Some(when) = &c.when {
        match outcome("when", when.execute(ctx)) {
            Ok(true) => {}
            Ok(false) => {
                return Ok(Verdict::Skipped(format!(
                    "when `{}` is false",
                    c.rule.def.when.as_ref().map(|w| w.get_ref().as_str()).unwrap_or("")
                )));
            }
            Err(v) => return v,
        }
    }
    match outcome("assert", c.assert.execute(ctx)) {
        Ok(true) => Ok(Verdict::Holds),
        Ok(false) => Ok(Verdict::Fails),
        Err(v) => v,
    }
}

/// A rule that cannot be evaluated: exit 2, at the expression, in the
/// user's terms.
fn broken(c: &Compiled, Broken(field, message, hint): Broken) -> Problem {
    let expr = if field == "when" {
        c.rule.def.when.as_ref().unwrap_or(&c.rule.def.assert)
    } else {
        &c.rule.def.assert
    };
    let s = expr.span();
    let (line, col) = c.rule.file.line_col(s.start);
    Problem::new(
        "envgate::rule::evaluation",
        format!(
            "rule `{}` cannot be evaluated: {message} ({}:{line}:{col})",
            c.id(),
            c.rule.file.name
        ),
    )
    .label(format!("in `{field}`"))
    .help(hint)
    .at(&c.rule.file, s.start, s.len())
}

/// Evaluate every env-scoped rule against one environment. A rule that
/// cannot be evaluated is a problem (exit 2), not a finding.
pub fn eval_env(compiled: &[Compiled], a: &Assembled, config: &Value) -> Result<Vec<CheckResult>, Vec<Problem>> {
    // A CEL context registers the whole standard library: only for rules.
    if !compiled.iter().any(|c| c.scope() == Scope::Env) {
        return Ok(Vec::new());
    }
    let mut ctx = Context::default();
    ctx.add_variable_from_value("config", config.clone());
    ctx.add_variable_from_value("env", Value::String(Arc::new(a.env.clone())));
    let mut results = Vec::new();
    let mut problems = Vec::new();
    for c in compiled.iter().filter(|c| c.scope() == Scope::Env) {
        match run(c, &ctx) {
            Err(b) => problems.push(broken(c, b)),
            Ok(verdict) => {
                let reads: Vec<(&Assembled, &[String])> = c.reads.iter().map(|p| (a, p.as_slice())).collect();
                results.push(result(c, verdict, &reads, &a.env));
            }
        }
    }
    if problems.is_empty() {
        Ok(results)
    } else {
        Err(problems)
    }
}

/// Evaluate one all-envs rule over every environment of the run.
pub fn eval_all(c: &Compiled, envs: &[(&Assembled, Value)]) -> Result<CheckResult, Problem> {
    let mut ctx = Context::default();
    let m: HashMap<String, Value> = envs.iter().map(|(a, v)| (a.env.clone(), v.clone())).collect();
    ctx.add_variable_from_value("envs", Value::from(m));
    let verdict = run(c, &ctx).map_err(|b| broken(c, b))?;
    let reads: Vec<(&Assembled, &[String])> = c
        .env_reads
        .iter()
        .filter_map(|(e, p)| envs.iter().find(|(a, _)| a.env == *e).map(|(a, _)| (*a, p.as_slice())))
        .collect();
    Ok(result(c, verdict, &reads, ""))
}

fn result(c: &Compiled, verdict: Verdict, reads: &[(&Assembled, &[String])], env: &str) -> CheckResult {
    let id = format!("rule/{}", c.id());
    let severity = match c.rule.def.severity {
        RuleSeverity::Error => Severity::Error,
        RuleSeverity::Warning => Severity::Warning,
    };
    let mut r = match verdict {
        Verdict::Holds => {
            let mut r = CheckResult::pass(Category::Rule, &id, c.id(), format!("holds: {}", c.rule.def.message));
            r.severity = severity;
            return r;
        }
        Verdict::Skipped(why) => {
            let mut r = CheckResult::pass(Category::Rule, &id, c.id(), format!("skipped: {why}"));
            r.status = Status::Skipped;
            r.severity = severity;
            return r;
        }
        Verdict::Fails => failed(c, &id, &Reads::describe(reads, env), severity),
        Verdict::Missing => missing_key(c, &id, Reads::describe(reads, env).missing, env),
    };
    r.name = c.id().to_string();
    if r.key.is_none() {
        r.key = reads.first().map(|(_, p)| key_string(p));
    }
    r
}

/// The keys a rule read, each with its value (secrets masked) and where it
/// was set, and the first it found unset.
struct Reads {
    missing: Option<String>,
    described: Vec<String>,
    first_origin: Option<Origin>,
}

impl Reads {
    fn describe(reads: &[(&Assembled, &[String])], env: &str) -> Reads {
        let mut out = Reads {
            missing: None,
            described: Vec::new(),
            first_origin: None,
        };
        for (a, path) in reads {
            let prefix = if env.is_empty() {
                format!("envs.{}.", a.env)
            } else {
                String::new()
            };
            match a.root.get(path) {
                Some(Node::Leaf(l)) => {
                    let shown = mask_value(&l.value, l.secret, &Redactor::default());
                    out.described
                        .push(format!("{prefix}{} = {shown} ({})", key_string(path), l.origin));
                    out.first_origin.get_or_insert_with(|| l.origin.clone());
                }
                Some(Node::Table { .. }) => {}
                None => {
                    // `has(config.x)` may read keys that are legitimately absent.
                    out.missing
                        .get_or_insert_with(|| format!("{prefix}{}", key_string(path)));
                }
            }
        }
        out
    }
}

fn rule_position(c: &Compiled) -> String {
    let s = c.rule.def.id.span();
    let (l, col) = c.rule.file.line_col(s.start);
    format!("{}:{l}:{col}", c.rule.file.name)
}

/// The rule evaluated to false: a finding at the value it read first.
fn failed(c: &Compiled, id: &str, reads: &Reads, severity: Severity) -> CheckResult {
    let rule_pos = rule_position(c);
    let mut p = Problem::new(
        format!("envgate::rule::{}", c.id()),
        format!("rule `{}`: {}", c.id(), c.rule.def.message),
    )
    .label(format!("read by rule `{}`", c.id()))
    .help(if reads.described.is_empty() {
        format!("rule defined at {rule_pos}")
    } else {
        format!("it read {}; rule defined at {rule_pos}", reads.described.join(", "))
    });
    if let Some(o) = &reads.first_origin {
        p = p.at_origin(o);
    } else {
        let s = c.rule.def.assert.span();
        p = p.at(&c.rule.file, s.start, s.len());
    }
    let status = match c.rule.def.severity {
        RuleSeverity::Error => Status::Fail,
        RuleSeverity::Warning => Status::Warn,
    };
    CheckResult::from_finding(Finding::new(Category::Rule, id.to_string(), None, p), status, severity)
}

/// The rule read a key that is not set: always an error, at the expression.
fn missing_key(c: &Compiled, id: &str, missing: Option<String>, env: &str) -> CheckResult {
    let message = match &missing {
        Some(k) => format!(
            "rule `{}` reads `{k}`, which is not set{}",
            c.id(),
            if env.is_empty() {
                String::new()
            } else {
                format!(" in `{env}`")
            }
        ),
        None => format!("rule `{}` reads a key that is not set", c.id()),
    };
    let s = c.rule.def.assert.span();
    let p = Problem::new("envgate::rule::evaluation", message)
        .label("this expression")
        .help(match &missing {
            Some(k) => format!(
                "set `{k}`, or guard the rule with `when = \"has(config.{})\"`",
                k.trim_start_matches("envs.")
            ),
            None => format!("rule defined at {}", rule_position(c)),
        })
        .at(&c.rule.file, s.start, s.len());
    CheckResult::from_finding(
        Finding::new(Category::Rule, id.to_string(), missing, p),
        Status::Fail,
        Severity::Error,
    )
}
