//! `envgate.toml`: the project manifest. Strict: unknown keys are errors.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub project: Project,
    #[serde(default)]
    pub source: Vec<SourceDef>,
    /// Hosts that belong to each environment (`[isolation.prod] hosts = [...]`).
    #[serde(default)]
    pub isolation: IndexMap<String, Isolation>,
    #[serde(default)]
    pub parity: Option<Parity>,
    /// The cron health audit: history store, state changes, notifications.
    #[serde(default)]
    pub audit: Option<super::audit::AuditTable>,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub name: String,
    /// JSON Schema for the assembled configuration, in the draft its
    /// `$schema` names (4, 6, 7, 2019-09, 2020-12; 2020-12 when it names none).
    #[serde(default)]
    pub schema: Option<String>,
    /// Folders of JSON Schemas that `$ref`s may name, found by their `$id`
    /// (or by file name); envgate never downloads a schema.
    #[serde(default)]
    pub schema_dirs: Vec<String>,
    /// `assert` (default): `format` is checked (`date-time`, `email`, `uri`,
    /// ...); `annotate`: it is only a note.
    #[serde(default)]
    pub formats: FormatMode,
    /// Unknown keys are errors wherever the schema declares properties and
    /// does not admit others (default `true`).
    #[serde(default = "yes")]
    pub strict: bool,
    /// Environments in order; default: every `environments/*.toml` but `base`.
    #[serde(default)]
    pub environments: Option<Vec<String>>,
    /// Folder of `base.toml` and the overlays. Default `environments`.
    #[serde(default = "default_env_dir")]
    pub environments_dir: String,
    /// Folder of `*.toml` check files. Default `checks`.
    #[serde(default = "default_checks_dir")]
    pub checks_dir: String,
}

fn default_env_dir() -> String {
    "environments".into()
}
fn default_checks_dir() -> String {
    "checks".into()
}

/// Whether the schema's `format` keywords are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FormatMode {
    /// A value that does not match its `format` is an error.
    #[default]
    Assert,
    /// `format` is an annotation only, as JSON Schema 2019-09+ defaults to.
    Annotate,
}

/// A `[[source]]` layer: each kind takes exactly the keys it uses, so a
/// missing `path` or a `url` on a file source is refused when the manifest
/// is read, with its line.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceDef {
    /// A TOML, JSON or YAML file (a dotenv file when its name says so).
    File {
        name: String,
        /// Path relative to the project; `{env}` is replaced.
        path: String,
        /// A missing file is skipped instead of an error.
        #[serde(default)]
        optional: bool,
        /// `false`: `${...}` in this source is meant for another tool and is kept.
        #[serde(default = "yes")]
        interpolate: bool,
    },
    /// Environment variables: `ORDERS__DB__URL` sets `db.url`.
    Env {
        name: String,
        /// Variable prefix, e.g. `ORDERS__`; `__` separates keys.
        prefix: String,
        /// `false`: `${...}` in this source is meant for another tool and is kept.
        #[serde(default = "yes")]
        interpolate: bool,
    },
    /// A dotenv file, read as environment variables.
    Dotenv {
        name: String,
        /// Path relative to the project; `{env}` is replaced.
        path: String,
        /// Only variables with this prefix, which is removed; `__` separates keys.
        #[serde(default)]
        prefix: Option<String>,
        /// A missing file is skipped instead of an error.
        #[serde(default)]
        optional: bool,
        /// `false`: `${...}` in this source is meant for another tool and is kept.
        #[serde(default = "yes")]
        interpolate: bool,
    },
    /// A JSON document from a config server (skipped by `--offline`).
    Http {
        name: String,
        /// URL of a JSON document; `{env}` is replaced.
        url: String,
        /// Request timeout, e.g. `"2s"`. Default 5s.
        #[serde(default)]
        timeout: Option<String>,
        /// An unreachable URL is skipped instead of an error.
        #[serde(default)]
        optional: bool,
        /// `false`: `${...}` in this source is meant for another tool and is kept.
        #[serde(default = "yes")]
        interpolate: bool,
    },
}

impl SourceDef {
    pub fn name(&self) -> &str {
        match self {
            SourceDef::File { name, .. }
            | SourceDef::Env { name, .. }
            | SourceDef::Dotenv { name, .. }
            | SourceDef::Http { name, .. } => name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SourceDef::File { .. } => "file",
            SourceDef::Env { .. } => "env",
            SourceDef::Dotenv { .. } => "dotenv",
            SourceDef::Http { .. } => "http",
        }
    }

    /// Whether a missing file or unreachable URL is skipped.
    pub fn optional(&self) -> bool {
        match self {
            SourceDef::File { optional, .. }
            | SourceDef::Dotenv { optional, .. }
            | SourceDef::Http { optional, .. } => *optional,
            SourceDef::Env { .. } => false,
        }
    }

    pub fn interpolate(&self) -> bool {
        match self {
            SourceDef::File { interpolate, .. }
            | SourceDef::Env { interpolate, .. }
            | SourceDef::Dotenv { interpolate, .. }
            | SourceDef::Http { interpolate, .. } => *interpolate,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Isolation {
    /// `*.prod.example.com`, `db.prod.example.com`, `10.20.0.0/16`, `fd00::/8`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Hosts that match no environment are failures too.
    #[serde(default)]
    pub deny_unknown_hosts: bool,
    /// `false` lets this environment (typically `local`) name any host; its
    /// own hosts still belong to it for the other environments.
    #[serde(default = "yes")]
    pub enforce: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parity {
    /// Key prefixes that must have the same key paths in every environment.
    #[serde(default)]
    pub required: Vec<String>,
    /// Every key path must exist in every environment.
    #[serde(default)]
    pub all: bool,
}
