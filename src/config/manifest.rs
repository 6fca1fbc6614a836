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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    File,
    Env,
    Dotenv,
    Http,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    pub name: String,
    pub kind: SourceKind,
    /// `file` and `dotenv`: path relative to the project; `{env}` is replaced.
    #[serde(default)]
    pub path: Option<String>,
    /// `env` and `dotenv`: variable prefix, e.g. `ORDERS__`; `__` separates keys.
    #[serde(default)]
    pub prefix: Option<String>,
    /// `http`: URL of a JSON document; `{env}` is replaced.
    #[serde(default)]
    pub url: Option<String>,
    /// `http`: request timeout, e.g. `"2s"`. Default 5s.
    #[serde(default)]
    pub timeout: Option<String>,
    /// A missing file or unreachable URL is skipped instead of an error.
    #[serde(default)]
    pub optional: bool,
    /// `false`: this source's values are taken as written; `${...}` in them is
    /// meant for another tool (GitHub Actions `${{ }}`, a shell) and is kept.
    #[serde(default = "yes")]
    pub interpolate: bool,
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
