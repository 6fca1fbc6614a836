//! CEL rules (the language of Kubernetes validation rules), evaluated with the
//! `cel` crate. Durations and byte sizes reach CEL typed: `x-unit: duration`
//! values as CEL durations, `x-unit: bytes` as integers of bytes.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::{Context, Program, Value};
use regex::Regex;
use serde_json::Value as Json;

use super::checks::{Rule, RuleSeverity, Scope};
use crate::config::assemble::Assembled;
use crate::config::merge::{Node, key_string};
use crate::config::schema::Schema;
use crate::config::units::{self, Unit};
use crate::diagnostic::Problem;
use crate::findings::{Category, Finding};
use crate::outcome::{CheckResult, Severity, Status};

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
                let reads = CONFIG_READ
                    .captures_iter(&text)
                    .map(|c| c[1].trim_start_matches('.').split('.').map(str::to_string).collect())
                    .collect();
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

enum Verdict {
    Holds,
    Skipped(String),
    Fails,
    Error(String),
}

fn run(c: &Compiled, ctx: &Context<'_, '_>) -> Verdict {
    if let Some(when) = &c.when {
        match when.execute(ctx) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => {
                return Verdict::Skipped(format!(
                    "when `{}` is false",
                    c.rule.def.when.as_ref().map(|w| w.get_ref().as_str()).unwrap_or("")
                ));
            }
            Ok(other) => return Verdict::Error(format!("`when` must be a boolean, got {}", type_name(&other))),
            Err(e) => return Verdict::Error(format!("`when` could not be evaluated: {e}")),
        }
    }
    match c.assert.execute(ctx) {
        Ok(Value::Bool(true)) => Verdict::Holds,
        Ok(Value::Bool(false)) => Verdict::Fails,
        Ok(other) => Verdict::Error(format!("`assert` must be a boolean, got {}", type_name(&other))),
        Err(e) => Verdict::Error(format!("could not be evaluated: {e}")),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Int(_) | Value::UInt(_) => "an integer",
        Value::Float(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        Value::Null => "null",
        Value::Duration(_) => "a duration",
        _ => "another type",
    }
}

/// Evaluate every env-scoped rule against one environment.
pub fn eval_env(compiled: &[Compiled], a: &Assembled, config: &Value) -> Vec<CheckResult> {
    let mut ctx = Context::default();
    ctx.add_variable_from_value("config", config.clone());
    ctx.add_variable_from_value("env", Value::String(Arc::new(a.env.clone())));
    compiled
        .iter()
        .filter(|c| c.scope() == Scope::Env)
        .map(|c| {
            let verdict = run(c, &ctx);
            let reads: Vec<(&Assembled, &[String])> = c.reads.iter().map(|p| (a, p.as_slice())).collect();
            result(c, verdict, &reads, &a.env)
        })
        .collect()
}

/// Evaluate one all-envs rule over every environment of the run.
pub fn eval_all(c: &Compiled, envs: &[(&Assembled, Value)]) -> CheckResult {
    let mut ctx = Context::default();
    let m: HashMap<String, Value> = envs.iter().map(|(a, v)| (a.env.clone(), v.clone())).collect();
    ctx.add_variable_from_value("envs", Value::from(m));
    let verdict = run(c, &ctx);
    let reads: Vec<(&Assembled, &[String])> = c
        .env_reads
        .iter()
        .filter_map(|(e, p)| envs.iter().find(|(a, _)| a.env == *e).map(|(a, _)| (*a, p.as_slice())))
        .collect();
    let mut r = result(c, verdict, &reads, "");
    // A missing environment is the likeliest cause of an evaluation error.
    if r.status == Status::Fail && r.message.contains("No such key") {
        let missing: Vec<String> = c
            .envs_named()
            .into_iter()
            .filter(|e| !envs.iter().any(|(a, _)| a.env == *e))
            .collect();
        if !missing.is_empty() {
            r.message = format!(
                "rule `{}` reads environments not in this run: {}",
                c.id(),
                missing.join(", ")
            );
        }
    }
    r
}

fn result(c: &Compiled, verdict: Verdict, reads: &[(&Assembled, &[String])], env: &str) -> CheckResult {
    let id = format!("rule/{}", c.id());
    let severity = match c.rule.def.severity {
        RuleSeverity::Error => Severity::Error,
        RuleSeverity::Warning => Severity::Warning,
    };
    let finding_status = match c.rule.def.severity {
        RuleSeverity::Error => Status::Fail,
        RuleSeverity::Warning => Status::Warn,
    };
    let rule_pos = {
        let s = c.rule.def.id.span();
        let (l, col) = c.rule.file.line_col(s.start);
        format!("{}:{l}:{col}", c.rule.file.name)
    };
    // The keys read, each with its value (secrets masked) and where it was set.
    let mut missing = None;
    let mut described = Vec::new();
    let mut first_origin = None;
    for (a, path) in reads {
        let prefix = if env.is_empty() {
            format!("envs.{}.", a.env)
        } else {
            String::new()
        };
        match a.root.get(path) {
            Some(Node::Leaf(l)) => {
                let shown = if l.secret {
                    "***".to_string()
                } else {
                    l.value.to_string()
                };
                described.push(format!("{prefix}{} = {shown} ({})", key_string(path), l.origin));
                first_origin.get_or_insert_with(|| l.origin.clone());
            }
            Some(Node::Table { .. }) => {}
            None => {
                // `has(config.x)` may read keys that are legitimately absent.
                missing.get_or_insert_with(|| format!("{prefix}{}", key_string(path)));
            }
        }
    }
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
        Verdict::Fails => {
            let mut p = Problem::new(
                format!("envgate::rule::{}", c.id()),
                format!("rule `{}`: {}", c.id(), c.rule.def.message),
            )
            .label(format!("read by rule `{}`", c.id()))
            .help(if described.is_empty() {
                format!("rule defined at {rule_pos}")
            } else {
                format!("it read {}; rule defined at {rule_pos}", described.join(", "))
            });
            if let Some(o) = &first_origin {
                p = p.at_origin(o);
            } else {
                let s = c.rule.def.assert.span();
                p = p.at(&c.rule.file, s.start, s.len());
            }
            CheckResult::from_finding(
                Finding::new(Category::Rule, id.clone(), None, p),
                finding_status,
                severity,
            )
        }
        Verdict::Error(e) => {
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
                None => format!("rule `{}` {e}", c.id()),
            };
            let s = c.rule.def.assert.span();
            let p = Problem::new("envgate::rule::evaluation", message)
                .label("this expression")
                .help(match &missing {
                    Some(k) => format!(
                        "set `{k}`, or guard the rule with `when = \"has(config.{})\"`",
                        k.trim_start_matches("envs.")
                    ),
                    None => format!("rule defined at {rule_pos}"),
                })
                .at(&c.rule.file, s.start, s.len());
            CheckResult::from_finding(
                Finding::new(Category::Rule, id.clone(), missing.clone(), p),
                Status::Fail,
                Severity::Error,
            )
        }
    };
    r.name = c.id().to_string();
    if r.key.is_none() {
        r.key = reads.first().map(|(_, p)| key_string(p));
    }
    r
}
