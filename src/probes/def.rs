//! `[[probe]]` tables from `checks/*.toml` and `"x-probe"` annotations in the
//! schema, parsed strictly and located: every error points at file:line:col.
//! Parsing only; targets are resolved and probes built by the runner's plan.

use std::ops::Range;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::config::project::Project;
use crate::config::tree::SourceFile;
use crate::diagnostic::{Problem, Problems};

/// One check file. `[[rule]]` tables belong to the rules engine, which parses
/// them with its own strict struct; here they are only allowed to exist.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksFile {
    #[serde(default)]
    probe: Vec<ProbeDef>,
    #[serde(default)]
    #[expect(dead_code, reason = "rules are parsed by crate::rules; probes only tolerate them")]
    rule: Option<toml::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeverityName {
    Critical,
    Warning,
}

/// Every field a probe may set. Common fields first; the rest belong to one
/// or more kinds (each kind's `params` says which), checked after parsing.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeDef {
    #[serde(default)]
    pub name: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub severity: Option<SeverityName>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub retries: Option<u32>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Only these environments run the probe (default: every one).
    #[serde(default)]
    pub envs: Option<Vec<String>>,
    /// In these environments a failure is a warning, whatever `severity` says.
    #[serde(default)]
    pub warn_in: Vec<String>,

    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub headers: Option<IndexMap<String, String>>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub status: Option<Json>,
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default)]
    pub body_regex: Option<String>,
    #[serde(default)]
    pub json: Option<IndexMap<String, Json>>,
    #[serde(default)]
    pub expect_headers: Option<IndexMap<String, String>>,
    #[serde(default)]
    pub max_latency: Option<String>,
    #[serde(default)]
    pub follow_redirects: Option<bool>,
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub tls_verify: Option<bool>,
    #[serde(default)]
    pub min_days_left: Option<u32>,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub send: Option<String>,
    #[serde(default)]
    pub expect: Option<Json>,
    #[serde(default)]
    pub record: Option<String>,
    #[serde(default)]
    pub writable: Option<bool>,
    #[serde(default)]
    pub min_free: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub non_empty: Option<bool>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    // Service probes (issue 5).
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub queues: Vec<String>,
    #[serde(default)]
    pub exchanges: Vec<String>,
    #[serde(default)]
    pub jetstream: Option<bool>,
    #[serde(default)]
    pub streams: Vec<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub access_key: Option<String>,
    #[serde(default)]
    pub secret_key: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub write: Option<bool>,
}

/// The field names serde knows for [`ProbeDef`], so the kinds' parameter
/// lists can be checked against the struct (no second list to drift).
pub static PARAMS: std::sync::LazyLock<&'static [&'static str]> = std::sync::LazyLock::new(fields::<ProbeDef>);

fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Grab<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Grab<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("fields captured"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut out: &'static [&'static str] = &[];
    let _ = T::deserialize(Grab(&mut out));
    out
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
    pub fn problem(&self, code: &str, param: &str, message: String) -> Problem {
        let span = self.keys.get(param).map_or(self.span.clone(), |(_, v)| v.clone());
        let (line, col) = self.file.line_col(span.start);
        Problem::new(code, format!("{message} ({}:{line}:{col})", self.file.name)).at(
            &self.file,
            span.start,
            span.len().max(1),
        )
    }

    /// A problem pointing at the `i`-th entry of a list parameter.
    pub fn problem_at_item(&self, code: &str, param: &str, item: &str, message: String) -> Problem {
        if let Some((_, v)) = self.keys.get(param)
            && let Some(i) = self.file.text[v.clone()].find(&format!("\"{item}\""))
        {
            let start = v.start + i;
            let (line, col) = self.file.line_col(start);
            return Problem::new(code, format!("{message} ({}:{line}:{col})", self.file.name)).at(
                &self.file,
                start,
                item.len() + 2,
            );
        }
        self.problem(code, param, message)
    }
}

/// Every probe of the project: `checks/*.toml` in name order, then the
/// schema's `x-probe` annotations. All problems are reported together.
pub fn load(project: &Project) -> Result<Vec<Located>, Problems> {
    let mut out = Vec::new();
    let (files, mut problems) = project.check_files();
    for file in files {
        match parse_file(&file) {
            Ok(mut v) => out.append(&mut v),
            Err(mut ps) => problems.append(&mut ps.0),
        }
    }
    if let Some(schema) = &project.schema {
        out.extend(from_schema(&schema.json, &schema.file, &mut problems));
    }
    check_all(&out, &mut problems);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Problems(problems))
    }
}

/// Parse one check file's `[[probe]]` tables.
pub fn parse_file(file: &Arc<SourceFile>) -> Result<Vec<Located>, Problems> {
    let toml_problem = |e: toml::de::Error| {
        let span = e.span().unwrap_or(0..0);
        let msg = e.message().trim().to_string();
        let (line, col) = file.line_col(span.start);
        Problems::from(
            Problem::new("envgate::checks::invalid", format!("invalid {}: {msg} ({}:{line}:{col})", file.name, file.name))
                .label(msg)
                .help("a check file holds [[probe]] and [[rule]] tables; see `envgate list` for probe kinds and their parameters")
                .at(file, span.start, span.len().max(1)),
        )
    };
    let parsed: ChecksFile = toml::from_str(&file.text).map_err(toml_problem)?;
    let doc = toml::de::DeTable::parse(&file.text).map_err(toml_problem)?;
    let tables: Vec<_> = match doc.get_ref().get("probe").map(|v| v.get_ref()) {
        Some(toml::de::DeValue::Array(a)) => a.iter().collect(),
        _ => Vec::new(),
    };
    Ok(parsed
        .probe
        .into_iter()
        .zip(tables)
        .map(|(def, t)| {
            let keys = match t.get_ref() {
                toml::de::DeValue::Table(t) => t
                    .iter()
                    .map(|(k, v)| (k.get_ref().to_string(), (k.span(), v.span())))
                    .collect(),
                _ => IndexMap::new(),
            };
            let span = t.span();
            // `[[probe]]` tables span only their body: point at the header.
            let header = file.text[..span.start].rfind("[[probe]]").filter(|_| span.start > 0);
            let span = header.map_or(span.clone(), |h| h..h + "[[probe]]".len());
            Located {
                name: def.name.clone().unwrap_or_default(),
                def,
                schema_key: None,
                file: file.clone(),
                span,
                keys,
            }
        })
        .collect())
}

/// `"x-probe": {"kind": "http", "path": "/health"}` on a schema property:
/// a probe named after the key whose value is its target.
fn from_schema(schema: &Json, file: &Arc<SourceFile>, problems: &mut Vec<Problem>) -> Vec<Located> {
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
        let span = at..at + "\"x-probe\"".len();
        let located = |def: ProbeDef| Located {
            name: def.name.clone().unwrap_or_else(|| key.clone()),
            def,
            schema_key: Some(path.clone()),
            file: file.clone(),
            span: span.clone(),
            keys: IndexMap::new(),
        };
        match ProbeDef::deserialize(&x) {
            Ok(def) if def.target.is_some() => problems.push(located(def).problem(
                "envgate::checks::invalid",
                "target",
                format!("x-probe on `{key}`: the key's value is the target; remove `target`"),
            )),
            Ok(def) => out.push(located(def)),
            Err(e) => problems.push(located(ProbeDef::default()).problem(
                "envgate::checks::invalid",
                "x-probe",
                format!("x-probe on `{key}`: {e}"),
            )),
        }
    }
    out
}

/// Checks that need every probe: kinds, parameters, names, dependencies, cycles.
fn check_all(probes: &[Located], problems: &mut Vec<Problem>) {
    let code = "envgate::checks::invalid";
    for (i, p) in probes.iter().enumerate() {
        if p.schema_key.is_none() && p.def.name.as_deref().is_none_or(str::is_empty) {
            problems.push(p.problem(code, "name", "a probe needs a `name`".into()));
        }
        let Some(kind) = super::kind(&p.def.kind) else {
            let names: Vec<_> = super::KINDS.iter().map(|k| k.name).collect();
            let mut pr = p.problem(code, "kind", format!("unknown probe kind `{}`", p.def.kind));
            pr = pr.help(
                match crate::config::suggest::did_you_mean(&p.def.kind, names.iter().copied()) {
                    Some(b) => format!("did you mean `{b}`? kinds: {}", names.join(", ")),
                    None => format!("kinds: {}", names.join(", ")),
                },
            );
            problems.push(pr);
            continue;
        };
        for key in p.keys.keys() {
            if !super::COMMON.contains(&key.as_str()) && !kind.params.iter().any(|(k, _)| k == key) {
                let takes: Vec<_> = kind.params.iter().map(|(k, _)| *k).collect();
                let (ks, _) = &p.keys[key];
                let (line, col) = p.file.line_col(ks.start);
                problems.push(
                    Problem::new(
                        code,
                        format!(
                            "`{key}` is not a parameter of {} probes ({}:{line}:{col})",
                            kind.name, p.file.name
                        ),
                    )
                    .help(format!("{} probes take: {}", kind.name, takes.join(", ")))
                    .at(&p.file, ks.start, ks.len().max(1)),
                );
            }
        }
        if p.schema_key.is_none() && p.def.target.is_none() {
            problems.push(p.problem(
                code,
                "target",
                format!("probe `{}` needs a `target` ({})", p.name, kind.target),
            ));
        }
        if let Some(t) = &p.def.timeout
            && let Err(m) = duration(t)
        {
            problems.push(p.problem(code, "timeout", format!("timeout: {m}")));
        }
        if probes[..i]
            .iter()
            .any(|q| q.name == p.name && overlap(&q.def.envs, &p.def.envs))
        {
            problems.push(p.problem(code, "name", format!("two probes are named `{}`", p.name)));
        }
        for d in &p.def.depends_on {
            if !probes.iter().any(|q| &q.name == d) {
                let names = probes.iter().map(|q| q.name.as_str());
                let mut pr = p.problem_at_item(
                    code,
                    "depends_on",
                    d,
                    format!("`{}` depends on unknown probe `{d}`", p.name),
                );
                if let Some(b) = crate::config::suggest::did_you_mean(d, names) {
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
                    code,
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

/// A duration parameter: `"250ms"`, `"2s"`; a bare number is refused.
pub fn duration(s: &str) -> Result<std::time::Duration, String> {
    if s.trim().parse::<f64>().is_ok() {
        return Err(format!("bare number {s} for a duration: write \"{s}s\" or \"{s}ms\""));
    }
    crate::config::units::parse_duration(s)
        .ok_or_else(|| format!("`{s}` is not a duration such as \"500ms\" or \"2s\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_rules_share_a_file_and_stay_strict() {
        let f = SourceFile::new(
            "checks/a.toml",
            "[[rule]]\nid = \"r\"\nanything = 1\n\n[[probe]]\nname = \"p\"\nkind = \"tcp\"\ntarget = \"h:1\"\n",
        );
        let v = parse_file(&f).unwrap();
        assert_eq!(v[0].name, "p");
        assert_eq!(f.line_col(v[0].keys["target"].1.start), (8, 10));
        let f = SourceFile::new(
            "checks/a.toml",
            "[[probe]]\nname = \"p\"\nkind = \"tcp\"\ntargte = \"h:1\"\n",
        );
        let e = parse_file(&f).unwrap_err().0.remove(0);
        assert!(
            e.message.contains("unknown field `targte`") && e.message.contains("checks/a.toml:4:1"),
            "{}",
            e.message
        );
        let f = SourceFile::new("checks/a.toml", "[[probes]]\nname = \"p\"\n");
        assert!(parse_file(&f).is_err());
    }

    #[test]
    fn bare_number_durations_are_refused() {
        assert!(duration("30").unwrap_err().contains("\"30s\" or \"30ms\""));
        assert_eq!(duration("250ms"), Ok(std::time::Duration::from_millis(250)));
    }
}
