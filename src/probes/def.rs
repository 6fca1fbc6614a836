//! `[[probe]]` tables (from `checks/*.toml`) and `"x-probe"` annotations in
//! the schema, checked strictly and located: every error points at
//! file:line:col. A probe's common fields live in [`ProbeDef`]; the rest are
//! the kind's own parameters, which only the kind parses (`Kind::params`).
//! Parsing only: reading the files belongs to the plan, resolving targets and
//! building probes to the plan too.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::config::suggest::did_you_mean;
use crate::config::units::duration_param;
use crate::diagnostic::Problem;
use crate::source::SourceFile;

const CODE: &str = "envgate::checks::invalid";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeverityName {
    Critical,
    Warning,
}

/// The fields every probe has, whatever its kind.
#[derive(Debug, Clone, Default)]
pub struct ProbeDef {
    pub name: Option<String>,
    pub kind: String,
    pub target: Option<String>,
    /// Each attempt's time budget.
    pub timeout: Option<Duration>,
    pub severity: Option<SeverityName>,
    pub tags: Vec<String>,
    pub retries: Option<u32>,
    pub depends_on: Vec<String>,
    /// Only these environments run the probe (default: every one).
    pub envs: Option<Vec<String>>,
    /// In these environments a failure is a warning, whatever `severity` says.
    pub warn_in: Vec<String>,
    /// `[probe.load]`: a bounded load after the probe passes, in `load_envs` only.
    pub load: Option<super::load::LoadSpec>,
    /// The environments the load runs in (never any other).
    pub load_envs: Vec<String>,
    /// The kind's own parameters, unparsed: `Kind::build` reads them.
    pub params: toml::Table,
}

/// The common fields as written, for checks.schema.json and the loader.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Common {
    /// Unique within the environments the probe runs in; `depends_on` and `--only` use it.
    #[serde(default)]
    pub name: Option<String>,
    /// The probe kind (`envgate list` shows them).
    pub kind: String,
    /// What to probe: a URL, DSN, `host:port` or path; `${key}` reads the configuration.
    #[serde(default)]
    pub target: Option<String>,
    /// Each attempt's time budget, e.g. "2s" (default 5s).
    #[serde(default)]
    pub timeout: Option<String>,
    /// `critical` (a failure fails the run) or `warning`.
    #[serde(default)]
    pub severity: Option<SeverityName>,
    /// Labels for `--tag`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Further attempts after a failure, within the run's deadline.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Probes that must pass first; when one fails, this one is `blocked`.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Only these environments run the probe (default: every one).
    #[serde(default)]
    pub envs: Option<Vec<String>>,
    /// In these environments a failure is a warning, whatever `severity` says.
    #[serde(default)]
    pub warn_in: Vec<String>,
    /// A short, bounded load after the probe passes, held to latency,
    /// error-rate and throughput budgets (kinds http, tcp, postgres, mysql,
    /// redis, s3, gcs, azblob). Runs only in `load_envs`.
    #[serde(default)]
    pub load: Option<super::load::LoadParams>,
    /// The environments `load` runs in; required with `load`, and a load
    /// never runs anywhere else (`--no-load` skips it everywhere).
    #[serde(default)]
    pub load_envs: Vec<String>,
}

impl ProbeDef {
    /// A definition with no parameters yet (ad-hoc probes and tests).
    pub fn new(kind: &str) -> ProbeDef {
        ProbeDef {
            kind: kind.to_string(),
            ..ProbeDef::default()
        }
    }

    /// Set a kind parameter; `None` (or anything TOML cannot hold) removes it.
    pub fn set(&mut self, param: &str, value: impl serde::Serialize) {
        match toml::Value::try_from(value) {
            Ok(v) => {
                self.params.insert(param.to_string(), v);
            }
            Err(_) => {
                self.params.remove(param);
            }
        }
    }
}

/// A probe definition and where it was written.
#[derive(Debug, Clone)]
pub struct Located {
    pub def: ProbeDef,
    /// The probe's name: `name`, or the configuration key for `x-probe`.
    pub name: String,
    /// Set for `x-probe`: the key whose value is the target.
    pub schema_key: Option<Vec<String>>,
    pub file: Arc<SourceFile>,
    /// The whole table (or the `x-probe` object).
    pub span: Range<usize>,
    /// Each key's span and its value's span.
    pub keys: IndexMap<String, (Range<usize>, Range<usize>)>,
}

impl Located {
    /// A problem pointing at `param`'s value, or at the table when absent.
    pub fn problem(&self, param: &str, message: String) -> Problem {
        let span = self.keys.get(param).map_or(self.span.clone(), |(_, v)| v.clone());
        self.problem_at(span, message)
    }

    /// A problem pointing at `param`'s key (a name that should not be there).
    pub fn problem_at_key(&self, param: &str, message: String) -> Problem {
        let span = self.keys.get(param).map_or(self.span.clone(), |(k, _)| k.clone());
        self.problem_at(span, message)
    }

    fn problem_at(&self, span: Range<usize>, message: String) -> Problem {
        let (line, col) = self.file.line_col(span.start);
        Problem::new(CODE, format!("{message} ({}:{line}:{col})", self.file.name)).at(
            &self.file,
            span.start,
            span.len().max(1),
        )
    }

    /// A problem pointing at the entry `item` of a list parameter.
    pub fn problem_at_item(&self, param: &str, item: &str, message: String) -> Problem {
        if let Some((_, v)) = self.keys.get(param)
            && let Some(i) = self.file.text[v.clone()].find(&format!("\"{item}\""))
        {
            return self.problem_at(v.start + i..v.start + i + item.len() + 2, message);
        }
        self.problem(param, message)
    }
}

/// One `[[probe]]` table as the checks file's parser delivers it.
pub type SpannedTable = toml::Spanned<IndexMap<toml::Spanned<String>, toml::Spanned<toml::Value>>>;

/// A `[[probe]]` table → a located definition. The table's span covers its
/// body; `header` is where `[[probe]]` was written, for problems about the
/// whole table.
pub fn from_table(file: &Arc<SourceFile>, table: SpannedTable, problems: &mut Vec<Problem>) -> Option<Located> {
    let span = table.span();
    let header = file.text[..span.start]
        .rfind("[[probe]]")
        .map_or(span.clone(), |h| h..h + "[[probe]]".len());
    let mut keys = IndexMap::new();
    let mut values = toml::Table::new();
    for (k, v) in table.into_inner() {
        let (ks, vs) = (k.span(), v.span());
        let k = k.into_inner();
        keys.insert(k.clone(), (ks, vs));
        values.insert(k, v.into_inner());
    }
    let mut located = Located {
        name: String::new(),
        def: ProbeDef::default(),
        schema_key: None,
        file: file.clone(),
        span: header,
        keys,
    };
    let def = split(values, &located, problems)?;
    located.name = def.name.clone().unwrap_or_default();
    located.def = def;
    Some(located)
}

/// Common fields into [`ProbeDef`], the rest into `params`, each wrong common
/// field reported at its value.
fn split(mut values: toml::Table, at: &Located, problems: &mut Vec<Problem>) -> Option<ProbeDef> {
    let mut common = toml::Table::new();
    for name in super::COMMON {
        if let Some(v) = values.remove(*name) {
            common.insert((*name).to_string(), v);
        }
    }
    let before = problems.len();
    // A bare number for the timeout gets both readings, like configuration values.
    let timeout = match common.remove("timeout") {
        None => None,
        Some(toml::Value::String(s)) => match duration_param(&s) {
            Ok(d) => Some(d),
            Err(m) => {
                problems.push(at.problem("timeout", format!("timeout: {m}")));
                None
            }
        },
        Some(v @ (toml::Value::Integer(_) | toml::Value::Float(_))) => {
            let m = duration_param(&v.to_string()).err().unwrap_or_default();
            problems.push(
                at.problem("timeout", format!("timeout: {m}"))
                    .help("a duration needs a unit: \"2s\" is two seconds, \"2ms\" two milliseconds"),
            );
            None
        }
        Some(v) => {
            problems.push(at.problem(
                "timeout",
                format!("timeout: expected a duration such as \"2s\", got {v}"),
            ));
            None
        }
    };
    let load = match common.remove("load") {
        None => None,
        Some(v) => match super::load::LoadSpec::parse(&v) {
            Ok(l) => Some(l),
            Err(m) => {
                problems.push(at.problem("load", m));
                None
            }
        },
    };
    let c: Common = match common.try_into() {
        Ok(c) => c,
        Err(e) => {
            let text = e.to_string().trim().to_string();
            let param = text
                .lines()
                .last()
                .and_then(|l| l.strip_prefix("in `"))
                .and_then(|l| l.strip_suffix('`'))
                .map(str::to_string);
            let first = text.lines().next().unwrap_or_default().to_string();
            problems.push(match param {
                Some(p) => at.problem(&p, format!("`{p}`: {first}")),
                None => at.problem("kind", first),
            });
            return None;
        }
    };
    (problems.len() == before).then_some(ProbeDef {
        name: c.name,
        kind: c.kind,
        target: c.target,
        timeout,
        severity: c.severity,
        tags: c.tags,
        retries: c.retries,
        depends_on: c.depends_on,
        envs: c.envs,
        warn_in: c.warn_in,
        load,
        load_envs: c.load_envs,
        params: values,
    })
}

/// `"x-probe": {"kind": "http", "path": "/health"}` on a schema property:
/// a probe named after the key whose value is its target.
pub fn from_schema(schema: &Json, file: &Arc<SourceFile>, problems: &mut Vec<Problem>) -> Vec<Located> {
    fn walk(root: &Json, node: &Json, path: &mut Vec<String>, depth: usize, out: &mut Vec<(Vec<String>, Json)>) {
        if depth > 32 {
            return;
        }
        let node = match node
            .get("$ref")
            .and_then(Json::as_str)
            .and_then(|r| r.strip_prefix('#'))
        {
            Some(ptr) => root.pointer(ptr).unwrap_or(node),
            None => node,
        };
        if let Some(x) = node.get("x-probe")
            && !path.is_empty()
        {
            out.push((path.clone(), x.clone()));
        }
        if let Some(props) = node.get("properties").and_then(Json::as_object) {
            for (k, sub) in props {
                path.push(k.clone());
                walk(root, sub, path, depth + 1, out);
                path.pop();
            }
        }
    }
    let mut found = Vec::new();
    walk(schema, schema, &mut Vec::new(), 0, &mut found);
    let mut out = Vec::new();
    for (path, x) in found {
        let key = crate::config::merge::key_string(&path);
        let last = path.last().cloned().unwrap_or_default();
        let start = file.text.find(&format!("\"{last}\"")).unwrap_or(0);
        let at = file.text[start..].find("\"x-probe\"").map_or(0, |i| start + i);
        let mut located = Located {
            name: key.clone(),
            def: ProbeDef::default(),
            schema_key: Some(path.clone()),
            file: file.clone(),
            span: at..at + "\"x-probe\"".len(),
            keys: IndexMap::new(),
        };
        let table = match toml::Value::try_from(&x) {
            Ok(toml::Value::Table(t)) => t,
            _ => {
                problems.push(located.problem(
                    "x-probe",
                    format!("x-probe on `{key}`: expected an object such as {{\"kind\": \"http\"}}, got {x}"),
                ));
                continue;
            }
        };
        if table.contains_key("target") {
            problems.push(located.problem(
                "target",
                format!("x-probe on `{key}`: the key's value is the target; remove `target`"),
            ));
            continue;
        }
        let mut ps = Vec::new();
        if let Some(def) = split(table, &located, &mut ps) {
            if let Some(n) = &def.name {
                located.name = n.clone();
            }
            located.def = def;
            out.push(located);
        }
        problems.extend(ps.into_iter().map(|mut p| {
            p.message = format!("x-probe on `{key}`: {}", p.message);
            p
        }));
    }
    out
}

/// Checks that need every probe: kinds, parameters, names, dependencies, cycles.
pub fn check_all(probes: &[Located], problems: &mut Vec<Problem>) {
    for (i, p) in probes.iter().enumerate() {
        if p.schema_key.is_none() && p.def.name.as_deref().is_none_or(str::is_empty) {
            problems.push(p.problem("name", "a probe needs a `name`".into()));
        }
        let Some(kind) = super::kind(&p.def.kind) else {
            let names: Vec<_> = super::KINDS.iter().map(|k| k.name).collect();
            let pr = p.problem("kind", format!("unknown probe kind `{}`", p.def.kind));
            problems.push(pr.help(match did_you_mean(&p.def.kind, names.iter().copied()) {
                Some(b) => format!("did you mean `{b}`? kinds: {}", names.join(", ")),
                None => format!("kinds: {}", names.join(", ")),
            }));
            continue;
        };
        let takes = kind.param_names();
        for key in p.def.params.keys() {
            if takes.iter().any(|t| t == key) {
                continue;
            }
            let candidates = takes.iter().map(String::as_str).chain(super::COMMON.iter().copied());
            let mut pr = p.problem_at_key(key, format!("`{key}` is not a parameter of {} probes", kind.name));
            pr = match did_you_mean(key, candidates) {
                Some(b) => pr.help(format!("did you mean `{b}`?")),
                None if takes.is_empty() => pr.help(format!(
                    "{} probes take only the common fields: {}",
                    kind.name,
                    super::COMMON.join(", ")
                )),
                None => pr.help(format!("{} probes take: {}", kind.name, takes.join(", "))),
            };
            problems.push(pr);
        }
        if p.def.load.is_some() && !super::load::KINDS.contains(&kind.name) {
            problems.push(
                p.problem_at_key("load", format!("{} probes do not support `load`", kind.name))
                    .help(format!("kinds that run a load: {}", super::load::KINDS.join(", "))),
            );
        } else if let Some(why) = p
            .def
            .load
            .as_ref()
            .and_then(|_| super::objects::load_refusal(kind.name, &p.def.params))
        {
            problems.push(
                p.problem_at_key("load", format!("probe `{}`: {why}", p.name))
                    .help("add `load_object` or `write = true` to the probe"),
            );
        } else if p.def.load.is_some() && p.def.load_envs.is_empty() {
            problems.push(
                p.problem_at_key("load", format!("probe `{}` has a `load` but no `load_envs`", p.name))
                    .help("a load runs only in the environments you name: add e.g. load_envs = [\"staging\"]"),
            );
        } else if p.def.load.is_none() && !p.def.load_envs.is_empty() {
            problems.push(
                p.problem(
                    "load_envs",
                    format!("probe `{}` has `load_envs` but no `[probe.load]`", p.name),
                )
                .help("add a [probe.load] table with `requests` or `duration`, or remove `load_envs`"),
            );
        }
        if p.schema_key.is_none() && p.def.target.is_none() {
            problems.push(p.problem(
                "target",
                format!("probe `{}` needs a `target` ({})", p.name, kind.target),
            ));
        }
        if probes[..i]
            .iter()
            .any(|q| q.name == p.name && overlap(&q.def.envs, &p.def.envs))
        {
            problems.push(p.problem("name", format!("two probes are named `{}`", p.name)));
        }
        for d in &p.def.depends_on {
            if !probes.iter().any(|q| &q.name == d) {
                let names = probes.iter().map(|q| q.name.as_str());
                let mut pr = p.problem_at_item("depends_on", d, format!("`{}` depends on unknown probe `{d}`", p.name));
                if let Some(b) = did_you_mean(d, names) {
                    pr = pr.help(format!("did you mean `{b}`?"));
                }
                problems.push(pr);
            }
        }
    }
    if let Some(cycle) = find_cycle(probes) {
        let first = &probes[cycle[0]];
        let next = &probes[cycle[1 % cycle.len()]].name;
        let names: Vec<_> = cycle
            .iter()
            .chain(std::iter::once(&cycle[0]))
            .map(|&i| probes[i].name.as_str())
            .collect();
        problems.push(
            first
                .problem_at_item(
                    "depends_on",
                    next,
                    format!("depends_on forms a cycle: {}", names.join(" → ")),
                )
                .help("a probe cannot wait for itself: remove one of these dependencies"),
        );
    }
}

fn overlap(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.iter().any(|e| b.contains(e)),
        _ => true,
    }
}

/// Indices of one dependency cycle, if any (depth-first, three colours).
fn find_cycle(probes: &[Located]) -> Option<Vec<usize>> {
    fn visit(i: usize, probes: &[Located], state: &mut [u8], stack: &mut Vec<usize>) -> Option<Vec<usize>> {
        state[i] = 1;
        stack.push(i);
        for d in &probes[i].def.depends_on {
            for j in probes.iter().enumerate().filter(|(_, q)| &q.name == d).map(|(j, _)| j) {
                if state[j] == 1 {
                    let from = stack.iter().position(|&s| s == j).unwrap_or(0);
                    return Some(stack[from..].to_vec());
                }
                if state[j] == 0
                    && let Some(c) = visit(j, probes, state, stack)
                {
                    return Some(c);
                }
            }
        }
        stack.pop();
        state[i] = 2;
        None
    }
    let mut state = vec![0u8; probes.len()];
    (0..probes.len()).find_map(|i| {
        if state[i] == 0 {
            visit(i, probes, &mut state, &mut Vec::new())
        } else {
            None
        }
    })
}
