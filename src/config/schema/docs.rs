//! The schema documents of a run: the project's schema, the schemas in
//! `schema_dirs` (found by `$id`, or by file name), local files a `$ref`
//! names, and a placeholder for every document that is not available. envgate
//! never downloads a schema: a reference to a missing document becomes an
//! error only where a value actually reaches it.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jsonschema::Registry;
use serde_json::{Value as Json, json};

use crate::config::parse;
use crate::config::tree::Format;
use crate::diagnostic::Problem;
use crate::source::SourceFile;

/// The keyword a schema node carries when its `$ref` could not be
/// resolved: validation reports the reference there instead of passing.
pub const UNREACHABLE_KEYWORD: &str = "x-envgate-unreachable";

/// Largest schema file read (a `$ref` may name any file).
const MAX_SCHEMA_BYTES: u64 = 64 << 20;
/// Files looked at under one of `schema_dirs`.
const MAX_DIR_FILES: usize = 10_000;

pub struct Doc {
    /// The URIs the document answers to; the first is its base.
    pub uris: Vec<String>,
    pub file: Option<Arc<SourceFile>>,
    pub json: Arc<Json>,
    /// Stands for a document that could not be read.
    pub placeholder: bool,
}

impl Doc {
    pub fn display(&self) -> String {
        match &self.file {
            Some(f) => f.name.clone(),
            None => self.uris[0].clone(),
        }
    }
}

pub fn file_uri(path: &Path) -> String {
    url::Url::from_file_path(path).map_or_else(|()| format!("file://{}", path.display()), |u| u.to_string())
}

/// Read a schema file: regular files only, bounded, JSON or YAML.
pub fn read_schema_file(path: &Path, shown: &str) -> Result<(Arc<SourceFile>, Json), String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(|e| e.to_string())?
        .take(MAX_SCHEMA_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_SCHEMA_BYTES {
        return Err(format!("larger than {} MiB", MAX_SCHEMA_BYTES >> 20));
    }
    let file = SourceFile::new(shown, text);
    let format = match Format::from_path(shown) {
        Some(Format::Yaml) => Format::Yaml,
        _ => Format::Json,
    };
    let doc = parse::document(&file, format)
        .map_err(|f| {
            let (l, c) = file.line_col(f.offset);
            format!(
                "cannot parse as {}: {} (line {l}, column {c})",
                format.name(),
                f.message
            )
        })?
        .ok_or("empty")?;
    Ok((file, doc.to_json()))
}

/// The `$id` a document declares for itself, if absolute.
fn own_id(json: &Json) -> Option<String> {
    let id = json.get("$id").or_else(|| json.get("id"))?.as_str()?;
    let id = id.trim_end_matches('#');
    url::Url::parse(id).ok().map(|_| id.to_string())
}

/// Every `*.json`, `*.yaml`, `*.yml` under `schema_dirs`.
pub fn load_dirs(root: &Path, dirs: &[String]) -> Result<Vec<Doc>, Vec<Problem>> {
    let mut docs = Vec::new();
    let mut problems = Vec::new();
    for dir in dirs {
        let base = root.join(dir);
        if !base.is_dir() {
            problems.push(
                Problem::new(
                    "envgate::manifest::schema-dirs",
                    format!("schema_dirs: {dir} is not a directory"),
                )
                .help("create it, or remove it from `project.schema_dirs` in envgate.toml"),
            );
            continue;
        }
        let mut stack = vec![base.clone()];
        let mut files = Vec::new();
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(p);
                } else if ft.is_file()
                    && matches!(p.extension().and_then(|x| x.to_str()), Some("json" | "yaml" | "yml"))
                {
                    files.push(p);
                }
            }
            if files.len() > MAX_DIR_FILES {
                problems.push(Problem::new(
                    "envgate::manifest::schema-dirs",
                    format!("schema_dirs: {dir} holds more than {MAX_DIR_FILES} schema files"),
                ));
                break;
            }
        }
        files.sort();
        for p in files {
            let shown = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().into_owned();
            match read_schema_file(&p, &shown) {
                Ok((file, json)) => {
                    let mut uris = vec![file_uri(&p)];
                    if let Some(id) = own_id(&json) {
                        uris.insert(0, id);
                    }
                    docs.push(Doc {
                        uris,
                        file: Some(file),
                        json: Arc::new(json),
                        placeholder: false,
                    });
                }
                Err(e) => problems.push(Problem::new(
                    "envgate::schema::invalid",
                    format!("schema_dirs: cannot read {shown}: {e}"),
                )),
            }
        }
    }
    if problems.is_empty() { Ok(docs) } else { Err(problems) }
}

/// What the retriever handed out while the registry was built.
enum Found {
    File(String, PathBuf),
    Named(String, usize),
    Missing(String),
}

/// Answers the registry's requests for documents it does not have: local
/// files under the allowed folders, `schema_dirs` files by name, else a
/// placeholder that fails any value that reaches it.
struct Local {
    allowed: Vec<PathBuf>,
    by_name: HashMap<String, (usize, Arc<Json>)>,
    found: Arc<Mutex<Vec<Found>>>,
}

impl referencing::Retrieve for Local {
    fn retrieve(&self, uri: &referencing::Uri<String>) -> Result<Json, Box<dyn std::error::Error + Send + Sync>> {
        let text = uri.as_str().to_string();
        let mut found = self.found.lock().map_err(|_| "poisoned")?;
        if let Ok(u) = url::Url::parse(&text)
            && u.scheme() == "file"
            && let Ok(path) = u.to_file_path()
            && let Ok(canon) = path.canonicalize()
            && self.allowed.iter().any(|a| canon.starts_with(a))
            && canon.is_file()
        {
            let shown = canon.to_string_lossy().into_owned();
            if let Ok((_, json)) = read_schema_file(&canon, &shown) {
                found.push(Found::File(text, canon));
                return Ok(json);
            }
        }
        let name = text.rsplit('/').next().unwrap_or_default();
        if let Some((i, json)) = self.by_name.get(name) {
            found.push(Found::Named(text, *i));
            return Ok((**json).clone());
        }
        found.push(Found::Missing(text.clone()));
        Ok(placeholder(&text))
    }
}

fn placeholder(uri: &str) -> Json {
    json!({ UNREACHABLE_KEYWORD: uri })
}

/// Refuses every request: the registry it serves already holds everything.
struct Nothing;

impl referencing::Retrieve for Nothing {
    fn retrieve(&self, uri: &referencing::Uri<String>) -> Result<Json, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("{uri} is not available").into())
    }
}

/// Every document the root schema reaches, local or placeholder.
pub fn gather(root: &Path, mut docs: Vec<Doc>, dirs: &[String]) -> Result<Vec<Doc>, String> {
    let mut allowed: Vec<PathBuf> = vec![root.to_path_buf()];
    allowed.extend(dirs.iter().map(|d| root.join(d)));
    if let Some(f) = &docs[0].file {
        allowed.extend(root.join(&f.name).parent().map(Path::to_path_buf));
    }
    let allowed = allowed.into_iter().filter_map(|p| p.canonicalize().ok()).collect();
    let by_name = docs
        .iter()
        .enumerate()
        .skip(1)
        .filter_map(|(i, d)| {
            let name = d.file.as_ref()?.name.rsplit('/').next()?.to_string();
            Some((name, (i, d.json.clone())))
        })
        .collect();
    let found = Arc::new(Mutex::new(Vec::new()));
    let local = Local {
        allowed,
        by_name,
        found: found.clone(),
    };
    registry(&docs, local).map_err(|e| e.to_string())?;
    let found = std::mem::take(&mut *found.lock().map_err(|_| "poisoned".to_string())?);
    for f in found {
        match f {
            Found::File(uri, path) => {
                let shown = path
                    .strip_prefix(root.canonicalize().unwrap_or_default())
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                let (file, json) = read_schema_file(&path, &shown)?;
                docs.push(Doc {
                    uris: vec![uri],
                    file: Some(file),
                    json: Arc::new(json),
                    placeholder: false,
                });
            }
            Found::Named(uri, i) => docs[i].uris.push(uri),
            Found::Missing(uri) => docs.push(Doc {
                json: Arc::new(placeholder(&uri)),
                uris: vec![uri],
                file: None,
                placeholder: true,
            }),
        }
    }
    Ok(docs)
}

/// A registry over `docs`, borrowing them.
pub fn registry<'a>(
    docs: &'a [Doc],
    retriever: impl referencing::Retrieve + 'static,
) -> Result<Registry<'a>, referencing::Error> {
    let mut b = Registry::new().retriever(retriever);
    for d in docs {
        for u in &d.uris {
            b = b.add(u, &*d.json)?;
        }
    }
    b.prepare()
}

/// The final registry: every document is in it, nothing is retrieved.
pub fn sealed(docs: &[Doc]) -> Result<Registry<'_>, referencing::Error> {
    registry(docs, Nothing)
}
