//! Assembly of one environment: base, the `extends` chain, the overlay, each
//! `[[source]]`, then `--set`, merged in that order; then interpolation.
//! Problems that make the project unreadable are `Err` (exit 2); problems in
//! the configuration itself (a dangling reference) are findings (exit 1).

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::interpolate;
use super::manifest::{SourceDef, SourceKind};
use super::merge::{Node, parse_key};
use super::project::{Project, parse_problem};
use super::secrets::Redactor;
use super::tree::{self, Entry, Format, Loc, Origin, SourceFile, Tree};
use crate::diagnostic::{Problem, Problems};

/// One environment's final configuration.
pub struct Assembled {
    pub env: String,
    pub root: Node,
    /// The environment's own overlay file: where missing keys belong.
    pub overlay: Arc<SourceFile>,
    /// Layer names in precedence order, lowest first.
    pub layers: Vec<String>,
    /// Problems in the configuration (interpolation), reported as findings.
    pub problems: Vec<crate::findings::Finding>,
    /// Leaves whose `${...}` could not be resolved (they keep their raw
    /// text), and why: a probe that reads one is not run on that text.
    pub unresolved: interpolate::UnresolvedLeaves,
    pub redactor: Redactor,
}

impl Assembled {
    /// For commands that show the configuration: a value that could not be
    /// resolved means there is nothing true to show.
    pub fn require_resolved(&self) -> Result<(), Problems> {
        let errors: Vec<Problem> = self
            .problems
            .iter()
            .filter(|f| !f.warning)
            .map(|f| super::secrets::redact_problem(&f.problem, &self.redactor, &mut Default::default()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Problems(errors))
        }
    }
}

impl Project {
    pub fn assemble(&self, env: &str, sets: &[String]) -> Result<Assembled, Problems> {
        if !self.environments.iter().any(|e| e == env) {
            return Err(self.unknown_env(env).into());
        }
        let mut problems = Vec::new();
        let mut root = Node::default();
        let mut layers = Vec::new();

        // 1. base (optional)
        match self.parsed(&self.base_file(), "base") {
            Ok(Some(p)) => {
                check_no_extends(&p.table, &mut problems, "base");
                root.merge_table(&p.table);
                layers.push("base".to_string());
            }
            Ok(None) => {}
            Err(p) => problems.push(p),
        }

        // 2. the extends chain, furthest ancestor first
        let chain = match self.extends_chain(env) {
            Ok(c) => c,
            Err(p) => {
                problems.push(p);
                return Err(Problems(problems));
            }
        };
        let mut overlay = None;
        for (name, parsed) in &chain {
            let mut table = parsed.table.clone();
            table.shift_remove("extends");
            root.merge_table(&table);
            layers.push(name.clone());
            overlay = Some(parsed.file.clone());
        }
        let overlay = overlay.expect("chain contains env");

        // 3. sources in manifest order
        for def in &self.manifest.source {
            if self.offline && def.kind == SourceKind::Http {
                continue;
            }
            match self.load_source(def, env) {
                Ok(Some(table)) => {
                    root.merge_table(&table);
                    layers.push(def.name.clone());
                }
                Ok(None) => {}
                Err(p) => problems.push(p),
            }
        }

        // 4. --set
        if !sets.is_empty() {
            for s in sets {
                match parse_set(s) {
                    Ok(table) => root.merge_table(&table),
                    Err(p) => problems.push(p),
                }
            }
            layers.push("--set".to_string());
        }
        if !problems.is_empty() {
            return Err(Problems(problems));
        }

        let mut redactor = Redactor::default();
        let (interp, unresolved) = interpolate::resolve_all(
            &mut root,
            &self.root,
            &self.env_vars,
            self.lenient_secrets,
            &mut redactor,
        );
        let mut a = Assembled {
            env: env.to_string(),
            root,
            overlay,
            layers,
            problems: interp,
            unresolved,
            redactor,
        };
        if let Some(schema) = &self.schema {
            schema.mark_secrets(&mut a);
        }
        Ok(a)
    }

    /// `[(name, parsed)]` from the furthest ancestor to `env` itself.
    fn extends_chain(&self, env: &str) -> Result<Vec<(String, Arc<super::project::Parsed>)>, Problem> {
        let mut chain: Vec<(String, Arc<super::project::Parsed>)> = Vec::new();
        let mut cur = env.to_string();
        loop {
            let rel = self.env_file(&cur);
            let parsed = self.parsed(&rel, &cur)?.ok_or_else(|| match chain.last() {
                None => self.unknown_env(&cur),
                Some((child, p)) => {
                    let e = &p.table["extends"];
                    Problem::new(
                        "envgate::environment::extends",
                        format!("`{child}` extends `{cur}`, which has no file {rel}"),
                    )
                    .label("unknown environment")
                    .at_origin(&e.origin)
                }
            })?;
            let next = match parsed.table.get("extends") {
                None => None,
                Some(Entry {
                    node: Tree::Leaf(Json::String(s)),
                    ..
                }) => Some(s.clone()),
                Some(e) => {
                    return Err(Problem::new(
                        "envgate::environment::extends",
                        format!("`extends` in {rel} must be the name of another environment"),
                    )
                    .label("expected a string")
                    .at_origin(&e.origin));
                }
            };
            chain.push((cur.clone(), parsed));
            match next {
                None => break,
                Some(n) => {
                    if n == cur || chain.iter().any(|(name, _)| *name == n) {
                        let names: Vec<_> = chain.iter().map(|(n, _)| n.as_str()).collect();
                        let e = &chain.last().expect("non-empty").1.table["extends"];
                        return Err(Problem::new(
                            "envgate::environment::extends-cycle",
                            format!("`extends` cycle: {} → {n}", names.join(" → ")),
                        )
                        .label("this closes the cycle")
                        .help("an environment cannot extend itself, directly or through others")
                        .at_origin(&e.origin));
                    }
                    cur = n;
                }
            }
        }
        chain.reverse();
        Ok(chain)
    }

    fn load_source(&self, def: &SourceDef, env: &str) -> Result<Option<IndexMap<String, Entry>>, Problem> {
        let need = |what: &str, v: &Option<String>| -> Result<String, Problem> {
            v.clone().ok_or_else(|| {
                Problem::new(
                    "envgate::manifest::source",
                    format!("source `{}` of kind {:?} needs `{what}`", def.name, def.kind).to_lowercase(),
                )
            })
        };
        match def.kind {
            SourceKind::File | SourceKind::Dotenv => {
                let rel = need("path", &def.path)?.replace("{env}", env);
                let parsed = match self.parsed(&rel, &def.name)? {
                    Some(p) => p,
                    None if def.optional => return Ok(None),
                    None => {
                        return Err(Problem::new(
                            "envgate::source::missing",
                            format!("source `{}`: {rel} does not exist", def.name),
                        )
                        .help("create it, or mark the source `optional = true`"));
                    }
                };
                // A parsed file may be shared by layers; re-label its origins.
                let mut table = relabel(&parsed.table, &def.name);
                if def.kind == SourceKind::Dotenv || Format::from_path(&rel) == Some(Format::Dotenv) {
                    table = vars_to_tree(table, def.prefix.as_deref());
                }
                Ok(Some(table))
            }
            SourceKind::Env => {
                let prefix = need("prefix", &def.prefix)?;
                let mut flat = IndexMap::new();
                for (k, v) in &self.env_vars {
                    if k.starts_with(&prefix) && k.len() > prefix.len() {
                        flat.insert(
                            k.clone(),
                            Entry {
                                node: Tree::Leaf(Json::String(v.clone())),
                                origin: Origin {
                                    layer: def.name.clone(),
                                    loc: Loc::EnvVar(k.clone()),
                                    untyped: true,
                                },
                            },
                        );
                    }
                }
                Ok(Some(vars_to_tree(flat, Some(&prefix))))
            }
            SourceKind::Http => {
                let url = need("url", &def.url)?.replace("{env}", env);
                let timeout = match &def.timeout {
                    Some(t) => crate::config::units::parse_duration(t).ok_or_else(|| {
                        Problem::new(
                            "envgate::manifest::source",
                            format!("source `{}`: timeout {t:?} is not a duration like \"2s\"", def.name),
                        )
                    })?,
                    None => Duration::from_secs(5),
                };
                match fetch_json(&url, timeout) {
                    Ok(text) => {
                        let shown = crate::config::secrets::redact_url_passwords(&url);
                        let file = SourceFile::new(shown.clone(), text);
                        let table = tree::parse(&file, Format::Json, &def.name)
                            .map_err(|f| parse_problem(&file, Format::Json, f))?;
                        // Values from a config server carry the URL as their place.
                        Ok(Some(relabel_loc(&table, &def.name, &Loc::Url(shown))))
                    }
                    Err(_) if def.optional => Ok(None),
                    Err(reason) => Err(Problem::new(
                        "envgate::source::http",
                        format!(
                            "source `{}`: cannot fetch {}: {reason}",
                            def.name,
                            crate::config::secrets::redact_url_passwords(&url)
                        ),
                    )
                    .help("check the URL and that the config server is up, or mark the source `optional = true`")),
                }
            }
        }
    }
}

fn check_no_extends(table: &IndexMap<String, Entry>, problems: &mut Vec<Problem>, name: &str) {
    if let Some(e) = table.get("extends") {
        problems.push(
            Problem::new(
                "envgate::environment::extends",
                format!("{name}.toml cannot extend another environment"),
            )
            .label("base is the root of every environment")
            .at_origin(&e.origin),
        );
    }
}

fn relabel(table: &IndexMap<String, Entry>, layer: &str) -> IndexMap<String, Entry> {
    table
        .iter()
        .map(|(k, e)| {
            let mut e = e.clone();
            relabel_entry(&mut e, layer, None);
            (k.clone(), e)
        })
        .collect()
}

fn relabel_loc(table: &IndexMap<String, Entry>, layer: &str, loc: &Loc) -> IndexMap<String, Entry> {
    table
        .iter()
        .map(|(k, e)| {
            let mut e = e.clone();
            relabel_entry(&mut e, layer, Some(loc));
            (k.clone(), e)
        })
        .collect()
}

fn relabel_entry(e: &mut Entry, layer: &str, loc: Option<&Loc>) {
    e.origin.layer = layer.to_string();
    if let Some(l) = loc {
        e.origin.loc = l.clone();
    }
    if let Tree::Table(t) = &mut e.node {
        for c in t.values_mut() {
            relabel_entry(c, layer, loc);
        }
    }
}

/// `ORDERS__DATABASE__POOL_SIZE` → `database.pool_size`.
fn vars_to_tree(flat: IndexMap<String, Entry>, prefix: Option<&str>) -> IndexMap<String, Entry> {
    let mut root = IndexMap::new();
    for (k, e) in flat {
        let name = match prefix {
            Some(p) => match k.strip_prefix(p) {
                Some(rest) => rest.to_string(),
                None => continue,
            },
            None => k,
        };
        let path: Vec<String> = name
            .split("__")
            .map(|s| s.to_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if path.is_empty() {
            continue;
        }
        insert_path(&mut root, &path, e);
    }
    root
}

fn insert_path(root: &mut IndexMap<String, Entry>, path: &[String], leaf: Entry) {
    if path.len() == 1 {
        root.insert(path[0].clone(), leaf);
        return;
    }
    let slot = root.entry(path[0].clone()).or_insert_with(|| Entry {
        node: Tree::empty(),
        origin: leaf.origin.clone(),
    });
    if !matches!(slot.node, Tree::Table(_)) {
        slot.node = Tree::empty();
    }
    if let Tree::Table(t) = &mut slot.node {
        insert_path(t, &path[1..], leaf);
    }
}

/// `--set a.b=value`: arrays and inline tables in TOML syntax; everything
/// else is text whose type the schema decides.
fn parse_set(arg: &str) -> Result<IndexMap<String, Entry>, Problem> {
    let Some((key, value)) = arg.split_once('=') else {
        return Err(Problem::new(
            "envgate::cli::set",
            format!("--set {arg:?}: expected KEY=VALUE, e.g. --set database.pool_size=20"),
        ));
    };
    let path = parse_key(key.trim());
    if path.iter().any(String::is_empty) {
        return Err(Problem::new(
            "envgate::cli::set",
            format!("--set {arg:?}: `{key}` is not a key path like database.pool_size"),
        ));
    }
    let origin = Origin {
        layer: "--set".into(),
        loc: Loc::Cli(crate::config::secrets::redact_url_passwords(arg)),
        untyped: true,
    };
    let trimmed = value.trim();
    let json = if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let doc = format!("v = {trimmed}");
        let t: toml::Table = toml::from_str(&doc).map_err(|e| {
            Problem::new(
                "envgate::cli::set",
                format!("--set {key}: cannot parse {trimmed:?}: {}", e.message().trim()),
            )
        })?;
        serde_json::to_value(&t["v"]).unwrap_or(Json::Null)
    } else {
        Json::String(value.to_string())
    };
    let mut root = IndexMap::new();
    insert_path(
        &mut root,
        &path,
        Entry {
            node: Tree::Leaf(json),
            origin,
        },
    );
    Ok(root)
}

fn fetch_json(url: &str, timeout: Duration) -> Result<String, String> {
    crate::net::install_crypto();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| describe_reqwest(&e, timeout))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        resp.text().await.map_err(|e| describe_reqwest(&e, timeout))
    })
}

fn describe_reqwest(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("timed out after {}", crate::config::units::format_duration(timeout))
    } else if e.is_connect() {
        "connection refused or host unreachable".into()
    } else {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(inner) = src {
            s = format!("{s}: {inner}");
            src = inner.source();
        }
        crate::config::secrets::redact_url_passwords(&s)
    }
}
