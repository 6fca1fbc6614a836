//! A project on disk: the manifest, its environments and schema. Loading reads
//! and parses files; it never touches the network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;

use super::manifest::Manifest;
use super::parse;
use super::schema::{Schema, SchemaOptions};
use super::tree::{Entry, Format};
use crate::diagnostic::{Problem, Problems};
use crate::source::SourceFile;

pub const MANIFEST: &str = "envgate.toml";

pub struct Project {
    pub root: PathBuf,
    pub manifest: Manifest,
    pub manifest_file: Arc<SourceFile>,
    pub environments: Vec<String>,
    pub schema: Option<Schema>,
    /// Snapshot of the process environment (tests pass their own).
    pub env_vars: IndexMap<String, String>,
    /// `--offline`: `http` sources are not fetched.
    pub offline: bool,
    /// Unset `${secret:env:...}` become redacted placeholders (a warning)
    /// instead of errors: offline validation and commands that only show
    /// configuration, where production secrets are rightly absent.
    pub lenient_secrets: bool,
    /// `${secret:cmd:...}` commands run (not offline, unless allowed).
    pub secret_commands: bool,
    /// `--require-secrets`: an unset secret fails even offline.
    pub require_secrets: bool,
    files: Mutex<HashMap<PathBuf, Arc<Parsed>>>,
}

/// A parsed file, shared between the environments that use it.
pub struct Parsed {
    pub file: Arc<SourceFile>,
    pub table: IndexMap<String, Entry>,
    /// The layer its origins name.
    pub layer: String,
}

/// Find `envgate.toml` in `start` or a parent, as cargo finds `Cargo.toml`.
pub fn discover(start: &Path) -> Result<PathBuf, Problem> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        if d.join(MANIFEST).is_file() {
            return Ok(d.to_path_buf());
        }
        dir = d.parent();
    }
    Err(Problem::new(
        "envgate::manifest::missing",
        format!("no {MANIFEST} in {} or any parent directory", start.display()),
    )
    .help("run `envgate init` to scaffold a project, or pass `-C DIR`"))
}

/// Read a file as UTF-8, with precise errors.
pub fn read_source(root: &Path, rel: &str) -> Result<Arc<SourceFile>, ReadError> {
    let path = root.join(rel);
    let bytes = super::read::read_bytes(&path).map_err(|f| match f {
        super::read::ReadFailure::Missing => ReadError::Missing,
        other => ReadError::Other(Problem::new("envgate::io", format!("cannot read {rel}: {other}"))),
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(rel, text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..at]).len();
            let f = SourceFile::new(rel, lossy);
            let (line, col) = f.line_col(prefix);
            Err(ReadError::Other(
                Problem::new(
                    "envgate::parse::encoding",
                    format!("{rel} is not valid UTF-8 (byte {at}, line {line}, column {col})"),
                )
                .label("invalid byte here")
                .help("save the file as UTF-8")
                .at(&f, prefix, 1),
            ))
        }
    }
}

pub enum ReadError {
    Missing,
    Other(Problem),
}

pub fn parse_problem(file: &Arc<SourceFile>, format: Format, f: super::tree::ParseFailure) -> Problem {
    let (line, col) = file.line_col(f.offset);
    Problem::new(
        "envgate::parse::syntax",
        format!(
            "cannot parse {} as {}: {} (line {line}, column {col})",
            file.name,
            format.name(),
            f.message
        ),
    )
    .label(f.message)
    .at(file, f.offset, f.len)
}

impl Project {
    pub fn load(root: &Path, env_vars: IndexMap<String, String>) -> Result<Project, Problems> {
        let manifest_file = match read_source(root, MANIFEST) {
            Ok(f) => f,
            Err(ReadError::Missing) => return Err(discover(root).unwrap_err().into()),
            Err(ReadError::Other(p)) => return Err(p.into()),
        };
        let manifest = parse_manifest(&manifest_file)?;
        let mut problems = Vec::new();
        let environments = list_environments(root, &manifest, &manifest_file, &mut problems);
        let schema = match &manifest.project.schema {
            Some(rel) => match Schema::load(
                root,
                rel,
                &manifest_file,
                &SchemaOptions {
                    strict: manifest.project.strict,
                    formats: manifest.project.formats,
                    schema_dirs: manifest.project.schema_dirs.clone(),
                },
            ) {
                Ok(s) => Some(s),
                Err(mut ps) => {
                    problems.append(&mut ps);
                    None
                }
            },
            None => None,
        };
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        Ok(Project {
            root: root.to_path_buf(),
            manifest,
            manifest_file,
            environments,
            schema,
            env_vars,
            offline: false,
            lenient_secrets: false,
            secret_commands: true,
            require_secrets: false,
            files: Mutex::new(HashMap::new()),
        })
    }

    /// Parse a file once per run, whatever number of environments use it.
    pub fn parsed(&self, rel: &str, layer: &str) -> Result<Option<Arc<Parsed>>, Problem> {
        self.parsed_with(rel, layer, true)
    }

    /// [`Project::parsed`]; `share = false` for a file only one environment
    /// reads (a source path with `{env}`): not kept for the others, so the
    /// caller owns it and merges it without a copy.
    pub fn parsed_with(&self, rel: &str, layer: &str, share: bool) -> Result<Option<Arc<Parsed>>, Problem> {
        let key = PathBuf::from(rel);
        if let Some(p) = self.files.lock().expect("no poisoning").get(&key) {
            return Ok(Some(p.clone()));
        }
        let file = match read_source(&self.root, rel) {
            Ok(f) => f,
            Err(ReadError::Missing) => return Ok(None),
            Err(ReadError::Other(p)) => return Err(p),
        };
        let format = Format::from_path(rel).ok_or_else(|| {
            Problem::new(
                "envgate::source::format",
                format!("cannot tell the format of {rel}: use .toml, .json, .yaml/.yml or .env"),
            )
        })?;
        let (file, table) = if format == Format::Dotenv {
            // Snippets of a dotenv file show it with its values masked.
            super::dotenv::load(&file, layer)?
        } else {
            let table = parse::table(&file, format, layer).map_err(|f| parse_problem(&file, format, f))?;
            (file, table)
        };
        let parsed = Arc::new(Parsed {
            file,
            table,
            layer: layer.to_string(),
        });
        if share {
            self.files.lock().expect("no poisoning").insert(key, parsed.clone());
        }
        Ok(Some(parsed))
    }

    /// Every `checks/*.toml`, sorted by name, read once; unreadable files are
    /// problems. Rules and probes each parse their own tables from these.
    pub fn check_files(&self) -> (Vec<Arc<SourceFile>>, Vec<Problem>) {
        let dir = &self.manifest.project.checks_dir;
        let mut names: Vec<String> = std::fs::read_dir(self.root.join(dir))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.ends_with(".toml"))
                    .map(|n| format!("{dir}/{n}"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let (mut files, mut problems) = (Vec::new(), Vec::new());
        for rel in names {
            match read_source(&self.root, &rel) {
                Ok(f) => files.push(f),
                Err(ReadError::Missing) => {}
                Err(ReadError::Other(p)) => problems.push(p),
            }
        }
        (files, problems)
    }

    pub fn env_file(&self, env: &str) -> String {
        format!("{}/{env}.toml", self.manifest.project.environments_dir)
    }

    pub fn base_file(&self) -> String {
        format!("{}/base.toml", self.manifest.project.environments_dir)
    }

    /// The error for an environment name that is not in this project.
    pub fn unknown_env(&self, env: &str) -> Problem {
        let mut p = Problem::new("envgate::environment::unknown", format!("unknown environment `{env}`"));
        let best = crate::config::suggest::did_you_mean(env, self.environments.iter().map(String::as_str));
        p = p.help(match best {
            Some(b) => format!("did you mean `{b}`? environments: {}", self.environments.join(", ")),
            None => format!("environments: {}", self.environments.join(", ")),
        });
        p
    }
}

/// Span of a quoted string in the manifest, for pointing at a list entry.
fn find_in_manifest(file: &SourceFile, needle: &str) -> Option<(usize, usize)> {
    let quoted = format!("\"{needle}\"");
    file.text.find(&quoted).map(|i| (i, quoted.len()))
}

/// `envgate.toml`, strictly: an unknown key or a wrong type is refused with
/// its line and column.
fn parse_manifest(manifest_file: &Arc<SourceFile>) -> Result<Manifest, Problem> {
    toml::from_str(&manifest_file.text).map_err(|e| {
        crate::diagnostic::toml_problem(
            manifest_file,
            &e,
            "envgate::manifest::invalid",
            "see `schemas/manifest.schema.json` for every key the manifest accepts",
        )
    })
}

/// The environments in order: the manifest's list, each checked to have a
/// readable file and to appear once, or every `environments/*.toml` but
/// `base` when the manifest lists none.
fn list_environments(
    root: &Path,
    manifest: &Manifest,
    manifest_file: &Arc<SourceFile>,
    problems: &mut Vec<Problem>,
) -> Vec<String> {
    let env_dir = root.join(&manifest.project.environments_dir);
    let dir = &manifest.project.environments_dir;
    let Some(list) = &manifest.project.environments else {
        let mut found = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&env_dir) {
            for entry in rd.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(stem) = name.strip_suffix(".toml")
                    && stem != "base"
                {
                    found.push(stem.to_string());
                }
            }
        }
        found.sort();
        if found.is_empty() {
            problems.push(
                Problem::new(
                    "envgate::manifest::environment",
                    format!("no environments: {dir}/ has no *.toml besides base.toml"),
                )
                .help("add environments/<name>.toml for each environment"),
            );
        }
        return found;
    };
    for (i, e) in list.iter().enumerate() {
        if let Some(why) = super::read::check_regular(&env_dir.join(format!("{e}.toml"))) {
            let mut p = match why {
                super::read::ReadFailure::Missing => Problem::new(
                    "envgate::manifest::environment",
                    format!("environment `{e}` has no file {dir}/{e}.toml"),
                )
                .help(format!("create {dir}/{e}.toml (it may be empty)")),
                other => Problem::new(
                    "envgate::manifest::environment",
                    format!("environment `{e}`: cannot read {dir}/{e}.toml: {other}"),
                )
                .help(format!("make {dir}/{e}.toml a regular file (it may be empty)")),
            };
            if let Some((o, l)) = find_in_manifest(manifest_file, e) {
                p = p.at(manifest_file, o, l).label("listed here");
            }
            problems.push(p);
        }
        if list[..i].contains(e) {
            problems.push(Problem::new(
                "envgate::manifest::environment",
                format!("environment `{e}` is listed twice"),
            ));
        }
    }
    list.clone()
}
