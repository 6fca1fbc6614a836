//! Assembly of one environment: base, the `extends` chain, the overlay, each
//! `[[source]]`, then `--set`, merged in that order; then interpolation.
//! Problems that make the project unreadable are `Err` (exit 2); problems in
//! the configuration itself (a dangling reference) are findings (exit 1).

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::interpolate;
use super::manifest::SourceDef;
use super::merge::{MAX_KEY_DEPTH, Node, parse_key};
use super::parse;
use super::project::{Project, parse_problem};
use super::read::MAX_FILE_BYTES;
use super::secrets::Redactor;
use super::tree::{Entry, Format, Tree};
use crate::diagnostic::{Problem, Problems};
use crate::source::{Loc, Origin, SourceFile};

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
            if self.offline && matches!(def, SourceDef::Http { .. }) {
                continue;
            }
            match self.load_source(def, env) {
                Ok(Some(mut table)) => {
                    if !def.interpolate() {
                        literal(&mut table);
                    }
                    root.merge_owned(table);
                    layers.push(def.name().to_string());
                }
                Ok(None) => {}
                Err(p) => problems.push(p),
            }
        }

        // 4. --set
        if !sets.is_empty() {
            for s in sets {
                match parse_set(s) {
                    Ok(table) => root.merge_owned(table),
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
            self.secret_commands,
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
        let name = def.name();
        match def {
            SourceDef::File { path, optional, .. } | SourceDef::Dotenv { path, optional, .. } => {
                let rel = path.replace("{env}", env);
                let parsed = match self.parsed_with(&rel, name, !path.contains("{env}"))? {
                    Some(p) => p,
                    None if *optional => return Ok(None),
                    None => {
                        return Err(Problem::new(
                            "envgate::source::missing",
                            format!("source `{name}`: {rel} does not exist"),
                        )
                        .help("create it, or mark the source `optional = true`"));
                    }
                };
                // A parsed file may be shared by layers; re-label its origins
                // unless they already name this one. A file no one else
                // reads is taken as it is.
                let mut table = if parsed.layer == name {
                    match Arc::try_unwrap(parsed) {
                        Ok(own) => own.table,
                        Err(shared) => shared.table.clone(),
                    }
                } else {
                    relabel(&parsed.table, name)
                };
                let prefix = match def {
                    SourceDef::Dotenv { prefix, .. } => Some(prefix.as_deref()),
                    _ if Format::from_path(&rel) == Some(Format::Dotenv) => Some(None),
                    _ => None,
                };
                if let Some(prefix) = prefix {
                    table = vars_to_tree(table, prefix)?;
                }
                Ok(Some(table))
            }
            SourceDef::Env { prefix, .. } => {
                let mut flat = IndexMap::new();
                for (k, v) in &self.env_vars {
                    if k.starts_with(prefix.as_str()) && k.len() > prefix.len() {
                        flat.insert(
                            k.clone(),
                            Entry {
                                node: Tree::Leaf(Json::String(v.clone())),
                                origin: Origin {
                                    layer: name.to_string(),
                                    loc: Loc::EnvVar(k.clone()),
                                    untyped: true,
                                },
                            },
                        );
                    }
                }
                Ok(Some(vars_to_tree(flat, Some(prefix))?))
            }
            SourceDef::Http {
                url, timeout, optional, ..
            } => {
                let url = url.replace("{env}", env);
                let timeout = match timeout {
                    Some(t) => crate::config::units::parse_duration(t).ok_or_else(|| {
                        Problem::new(
                            "envgate::manifest::source",
                            format!("source `{name}`: timeout {t:?} is not a duration like \"2s\""),
                        )
                    })?,
                    None => Duration::from_secs(5),
                };
                match fetch_json(&url, timeout) {
                    Ok(text) => {
                        let shown = crate::config::secrets::redact_url_passwords(&url);
                        let file = SourceFile::new(shown.clone(), text);
                        let table = parse::table(&file, Format::Json, name)
                            .map_err(|f| parse_problem(&file, Format::Json, f))?;
                        // Values from a config server carry the URL as their place.
                        Ok(Some(relabel_url(&table, name, &shown)))
                    }
                    Err(_) if *optional => Ok(None),
                    Err(reason) => Err(Problem::new(
                        "envgate::source::http",
                        format!(
                            "source `{name}`: cannot fetch {}: {reason}",
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

/// Values from a config server: each one's place is the URL and the JSON
/// pointer of the value in the document (`https://cfg/app.json#/http/port`).
fn relabel_url(table: &IndexMap<String, Entry>, layer: &str, url: &str) -> IndexMap<String, Entry> {
    fn walk(e: &mut Entry, layer: &str, url: &str, pointer: &str) {
        e.origin.layer = layer.to_string();
        e.origin.loc = Loc::Url(format!("{url}#{pointer}"));
        if let Tree::Table(t) = &mut e.node {
            for (k, c) in t.iter_mut() {
                walk(c, layer, url, &format!("{pointer}/{}", escape(k)));
            }
        }
    }
    // RFC 6901: `~` and `/` inside a key.
    fn escape(k: &str) -> String {
        k.replace('~', "~0").replace('/', "~1")
    }
    table
        .iter()
        .map(|(k, e)| {
            let mut e = e.clone();
            walk(&mut e, layer, url, &format!("/{}", escape(k)));
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

/// A source with `interpolate = false`: its values are text as written, so
/// every `${` that interpolation would read becomes the escaped `$${`, which
/// it turns back into `${` (a `$${` already there becomes `$$${`, read back
/// as `$${`). Tables inside arrays are never interpolated, so they are left.
fn literal(table: &mut IndexMap<String, Entry>) {
    fn escape(v: &mut Json) {
        match v {
            Json::String(s) if s.contains("${") => *s = s.replace("${", "$${"),
            Json::Array(a) => a.iter_mut().for_each(escape),
            _ => {}
        }
    }
    for e in table.values_mut() {
        match &mut e.node {
            Tree::Leaf(v) => escape(v),
            Tree::Table(t) => literal(t),
        }
    }
}

/// `ORDERS__DATABASE__POOL_SIZE` → `database.pool_size`.
fn vars_to_tree(flat: IndexMap<String, Entry>, prefix: Option<&str>) -> Result<IndexMap<String, Entry>, Problem> {
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
        if path.len() > MAX_KEY_DEPTH {
            return Err(Problem::new(
                "envgate::source::depth",
                format!(
                    "variable {} has {} `__`-separated parts; a key has at most {MAX_KEY_DEPTH}",
                    shorten(&k_name(&e.origin, &name)),
                    path.len()
                ),
            )
            .label("too deep")
            .help("each `__` opens a table: check how this variable was generated")
            .at_origin(&e.origin));
        }
        insert_path(&mut root, &path, e);
    }
    Ok(root)
}

/// The variable's name as the user wrote it.
fn k_name(origin: &Origin, name: &str) -> String {
    match &origin.loc {
        Loc::EnvVar(v) => v.clone(),
        _ => name.to_string(),
    }
}

/// A name of thousands of characters is shown by its start.
fn shorten(s: &str) -> String {
    const SHOWN: usize = 40;
    match s.char_indices().nth(SHOWN) {
        Some((i, _)) => format!("{}… ({} characters)", &s[..i], s.chars().count()),
        None => s.to_string(),
    }
}

fn insert_path(root: &mut IndexMap<String, Entry>, path: &[String], leaf: Entry) {
    let (last, parents) = path.split_last().expect("a key has at least one part");
    let mut table = root;
    for part in parents {
        let slot = table.entry(part.clone()).or_insert_with(|| Entry {
            node: Tree::empty(),
            origin: leaf.origin.clone(),
        });
        if !matches!(slot.node, Tree::Table(_)) {
            slot.node = Tree::empty();
        }
        let Tree::Table(t) = &mut slot.node else {
            unreachable!("made a table above")
        };
        table = t;
    }
    table.insert(last.clone(), leaf);
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
            format!("--set {}: not a key path like database.pool_size", shorten(key)),
        ));
    }
    if path.len() > MAX_KEY_DEPTH {
        return Err(Problem::new(
            "envgate::cli::set",
            format!(
                "--set {}: the key has {} parts; a key has at most {MAX_KEY_DEPTH}",
                shorten(key),
                path.len()
            ),
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
        // The value may be a secret: the message names the key and the
        // problem, never the text.
        let t: toml::Table = toml::from_str(&doc).map_err(|e| {
            Problem::new(
                "envgate::cli::set",
                format!(
                    "--set {key}: the value starts like a TOML array or inline table but is not one: {}",
                    e.message().trim()
                ),
            )
            .help("a value that starts with `[` or `{` is read as a TOML array or inline table")
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

/// Why a `kind = "http"` source could not be read.
#[derive(Debug)]
enum FetchError {
    /// The client or its runtime could not be built.
    Setup(String),
    Timeout(Duration),
    Unreachable,
    Status(reqwest::StatusCode),
    /// The body passed [`MAX_FILE_BYTES`]: announced, or while reading.
    TooLarge {
        announced: bool,
    },
    NotUtf8 {
        at: usize,
    },
    /// Any other transport error, passwords in URLs masked.
    Transport(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Setup(why) => write!(f, "cannot start an HTTP client: {why}"),
            FetchError::Timeout(t) => write!(f, "timed out after {}", crate::config::units::format_duration(*t)),
            FetchError::Unreachable => f.write_str("connection refused or host unreachable"),
            FetchError::Status(status) => write!(f, "HTTP {status}"),
            FetchError::TooLarge { announced } => write!(
                f,
                "the response is larger than {} MiB, the most envgate reads from a source; {}",
                MAX_FILE_BYTES >> 20,
                if *announced {
                    "it was not read"
                } else {
                    "envgate stopped reading it"
                }
            ),
            FetchError::NotUtf8 { at } => write!(f, "the response is not UTF-8 (invalid byte at {at})"),
            FetchError::Transport(why) => f.write_str(why),
        }
    }
}

fn fetch_json(url: &str, timeout: Duration) -> Result<String, FetchError> {
    crate::net::install_crypto();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| FetchError::Setup(e.to_string()))?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| FetchError::Setup(e.to_string()))?;
        let resp = client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| describe_reqwest(&e, timeout))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FetchError::Status(status));
        }
        read_bounded(resp, timeout).await
    })
}

/// The body, up to [`MAX_FILE_BYTES`]: a server that never stops sending
/// is cut off, not buffered until memory runs out.
async fn read_bounded(mut resp: reqwest::Response, timeout: Duration) -> Result<String, FetchError> {
    if resp.content_length().is_some_and(|n| n > MAX_FILE_BYTES) {
        return Err(FetchError::TooLarge { announced: true });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe_reqwest(&e, timeout))? {
        if (body.len() + chunk.len()) as u64 > MAX_FILE_BYTES {
            return Err(FetchError::TooLarge { announced: false });
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|e| FetchError::NotUtf8 {
        at: e.utf8_error().valid_up_to(),
    })
}

fn describe_reqwest(e: &reqwest::Error, timeout: Duration) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout(timeout)
    } else if e.is_connect() {
        FetchError::Unreachable
    } else {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(inner) = src {
            s = format!("{s}: {inner}");
            src = inner.source();
        }
        FetchError::Transport(crate::config::secrets::redact_url_passwords(&s))
    }
}
