//! Command-line interface (clap derive). Parsing only: no I/O here.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::Format;
use crate::select::Shard;

#[derive(Debug, Parser)]
#[command(
    name = "envgate",
    version,
    about = "Is this environment's configuration right, and is everything it points at ready?",
    propagate_version = true
)]
pub struct Cli {
    /// Project directory (default: the nearest directory with envgate.toml).
    #[arg(short = 'C', long = "project", global = true, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// When to use colour (also honours NO_COLOR).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Run `${secret:cmd:...}` commands offline too (`validate`, `--offline`).
    #[arg(long, global = true)]
    pub allow_secret_commands: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Assemble, validate and check environments.
    Check(CheckArgs),
    /// Validate every environment offline (alias of `check --all-envs --offline`).
    Validate(ValidateArgs),
    /// Print an environment's final configuration, secrets redacted.
    Render(RenderArgs),
    /// Show every layer that set KEY, in order, and which one won.
    Explain(ExplainArgs),
    /// Key-by-key differences between two environments, with origins.
    Diff(DiffArgs),
    /// List environments, layers and the schema's keys.
    List(ListArgs),
    /// Scaffold a working example project.
    Init(InitArgs),
    /// Probe URLs from the command line (no project); with `-- CMD`, exec CMD once all pass.
    Probe(ProbeArgs),
    /// Run the checks as a health audit: record the run, track each check's
    /// state, and notify the channels of what changed.
    Audit(AuditArgs),
    /// Per check: state, streak, last pass, uptime over 1d/7d/30d, incidents.
    History(HistoryArgs),
    /// Audit on a schedule and answer HTTP: readiness, Prometheus metrics,
    /// a status page, each environment's last report.
    Serve(ServeArgs),
    /// Work with JSON reports: `report merge` combines the shards of a run.
    Report(ReportArgs),
    /// Work with the project's JSON Schema: `schema infer` writes a first one.
    Schema(SchemaArgs),
    /// Print a shell completion script (completes this project's environments,
    /// probes and rules too).
    Completions(CompletionsArgs),
    /// Print the manual page (roff): `envgate man | man -l -`.
    Man,
    /// Names for shell completion, from the project in the current directory.
    #[command(name = "__complete", hide = true)]
    Complete(CompleteArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub action: ReportAction,
}

#[derive(Debug, Subcommand)]
pub enum ReportAction {
    /// Combine the JSON reports of `--shard K/N` runs (or of runs over
    /// different environments) into one report, in any format.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// JSON reports written by `--format json` or `--report json=PATH`.
    #[arg(value_name = "FILE.json", required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[command(subcommand)]
    pub action: SchemaAction,
}

#[derive(Debug, Subcommand)]
pub enum SchemaAction {
    /// Print a starting JSON Schema (draft 2020-12) inferred from the
    /// environments: types, required keys, units, secrets, enums.
    Infer {
        /// Environment to learn from (repeatable; default: every one).
        #[arg(short = 'e', long = "env", value_name = "ENV")]
        envs: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output: the human listing, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
    pub format: DiffFormat,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, powershell or elvish.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    #[arg(value_enum)]
    pub what: CompleteWhat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompleteWhat {
    /// Environment names.
    Envs,
    /// Probe names and rule ids (what `--only` and `--skip` take).
    Checks,
}

#[derive(Debug, Args)]
pub struct Selection {
    /// Environment to check (repeatable).
    #[arg(short = 'e', long = "env", value_name = "ENV")]
    pub envs: Vec<String>,
    /// Check every environment of the project.
    #[arg(long, conflicts_with = "envs")]
    pub all_envs: bool,
    /// Override a key: --set database.pool_size=20 (repeatable, highest precedence).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Output {
    /// Output format on stdout (default: human).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Also write a report to a file: --report json=out/report.json (repeatable).
    #[arg(long = "report", value_name = "FORMAT=PATH")]
    pub reports: Vec<String>,
    /// Which status fails the run: `fail` (default) or `warn`.
    #[arg(long, value_enum, default_value_t = FailOn::Fail)]
    pub fail_on: FailOn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Warn,
    Fail,
}

impl CheckArgs {
    pub fn fail_on_warn(&self) -> bool {
        self.output.fail_on == FailOn::Warn
    }
}

impl ValidateArgs {
    pub fn fail_on_warn(&self) -> bool {
        self.output.fail_on == FailOn::Warn
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub select: Selection,
    /// No network: `http` sources are not fetched and probes do not run.
    #[arg(long)]
    pub offline: bool,
    /// An unset `${secret:...}` fails the run even offline (by default an
    /// offline run lists them in one informational line per environment).
    #[arg(long)]
    pub require_secrets: bool,
    #[command(flatten)]
    pub verbosity: Verbosity,
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub run: RunFlags,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub select: Selection,
    /// An unset `${secret:...}` fails validation (by default it is listed in
    /// one informational line per environment).
    #[arg(long)]
    pub require_secrets: bool,
    /// Validate again on every save of a project file, until interrupted.
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    pub verbosity: Verbosity,
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub output: Output,
}

/// How much `check` and `validate` say.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct Verbosity {
    /// Only problems and the verdict; nothing at all when everything passed.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also list passing checks with their latencies.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Which checks run: names, globs, tags and shards.
#[derive(Debug, Clone, Default, Args)]
pub struct Filter {
    /// Run only these checks: names or globs (repeatable, or comma-separated).
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
    /// Skip these checks: names or globs (repeatable, or comma-separated).
    #[arg(long, value_name = "NAME")]
    pub skip: Vec<String>,
    /// Run only checks with one of these tags (repeatable, or comma-separated).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Run shard K of N: the same check always lands in the same shard.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
}

impl Filter {
    pub fn selection(&self) -> Result<crate::select::Selection, crate::diagnostic::Problems> {
        crate::select::Selection::new(&self.only, &self.skip, &self.tags)
    }
}

/// How probes run.
#[derive(Debug, Clone, Args)]
pub struct RunFlags {
    /// Cancel in-flight probes at the first critical failure; report what finished.
    #[arg(long)]
    pub fail_fast: bool,
    /// Keep retrying failing probes until they pass or DURATION passes (e.g. 60s).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub wait: Option<Duration>,
    /// Probes in flight at once.
    #[arg(long, value_name = "N", default_value_t = crate::runner::DEFAULT_CONCURRENCY, value_parser = concurrency)]
    pub concurrency: usize,
    /// Skip every `[probe.load]`: those probes run once, as without a load.
    #[arg(long)]
    pub no_load: bool,
}

/// `"250ms"`, `"2s"`, `"1m"`; a bare number is refused (it could mean either).
pub fn duration(s: &str) -> Result<Duration, String> {
    crate::config::units::duration_param(s)
}

fn concurrency(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// What to probe, by scheme: http:// https:// (GET, 2xx), HOST:PORT or
    /// tcp://HOST:PORT (connect), tls://HOST:PORT (handshake, certificate),
    /// dns://NAME (resolve), postgres:// postgresql:// mysql:// mariadb://
    /// (log in, SELECT 1), redis:// rediss:// valkey:// (PING), amqp://
    /// amqps:// (open a channel), nats:// (PING), mqtt:// mqtts:// (CONNACK),
    /// s3://BUCKET (list).
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
    /// HTTP: the status expected: 200, 2xx or 200-399 (default 2xx).
    #[arg(long, value_name = "STATUS")]
    pub expect_status: Option<String>,
    /// HTTP: text the body must contain.
    #[arg(long, value_name = "TEXT")]
    pub expect_body: Option<String>,
    /// HTTP: a JSON body's value at a JSON pointer: /status=ok (repeatable).
    #[arg(long, value_name = "/POINTER=VALUE")]
    pub expect_json: Vec<String>,
    /// Read more URLs from a file, one a line (`#` starts a comment).
    #[arg(long, value_name = "PATH")]
    pub targets_file: Option<PathBuf>,
    /// Time budget of one attempt.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub timeout: Duration,
    /// Keep retrying until every target answers or DURATION passes.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub wait: Option<Duration>,
    /// Retries after a failed attempt (exponential backoff).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// Probes in flight at once.
    #[arg(long, value_name = "N", default_value_t = crate::runner::DEFAULT_CONCURRENCY, value_parser = concurrency)]
    pub concurrency: usize,
    /// After each target passes, send it REQUESTSxCONCURRENCY requests (e.g. 200x10) and print the percentiles.
    #[arg(long, value_name = "NxC")]
    pub load: Option<String>,
    /// Output: one line per target (human) or the JSON report.
    #[arg(long, value_enum, default_value_t = ProbeFormat::Human)]
    pub format: ProbeFormat,
    /// Command to exec once every target passed (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub exec: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderFormat {
    Toml,
    Json,
    Yaml,
    Env,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[arg(short = 'e', long = "env", value_name = "ENV")]
    pub env: String,
    /// Show where each leaf was set (like `git config --show-origin`).
    #[arg(long)]
    pub show_origin: bool,
    #[arg(long, value_enum, default_value_t = RenderFormat::Toml)]
    pub format: RenderFormat,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// No network: `http` sources are not fetched.
    #[arg(long)]
    pub offline: bool,
    /// Print secret values in clear (to generate the final file); warns on stderr.
    #[arg(long)]
    pub show_secrets: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[arg(short = 'e', long = "env", value_name = "ENV")]
    pub env: String,
    /// Dotted key, e.g. database.pool_size.
    pub key: String,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    pub left: String,
    pub right: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
    pub format: DiffFormat,
    #[arg(long)]
    pub offline: bool,
    /// Exit 1 when the environments differ (like `git diff --exit-code`).
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to scaffold (default: the current directory, or NAME with
    /// --name). Must be empty of envgate files.
    pub dir: Option<PathBuf>,
    /// Project name; the env-source prefix and secret variables follow it
    /// (`billing-api` → `BILLING__`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Only a manifest, two environments and a four-key schema.
    #[arg(long)]
    pub minimal: bool,
}

/// `envgate audit`: run once, or manage the store and silences.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub action: Option<AuditAction>,
    #[command(flatten)]
    pub select: Selection,
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub run: RunFlags,
    #[command(flatten)]
    pub output: Output,
    /// History store: sqlite:PATH or postgres://... (default: `[audit] store`,
    /// else sqlite:.envgate/history.db).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Cron monitor to ping: URL/start before the run, URL after, URL/fail
    /// when the audit could not run.
    #[arg(long, value_name = "URL")]
    pub heartbeat_url: Option<String>,
    /// `run` (default): exit 0 whenever the audit ran; `status`: exit like
    /// `check` (1 when an environment is not ready).
    #[arg(long, value_enum, default_value_t = AuditExit::Run)]
    pub exit_code: AuditExit,
    /// Print nothing when nothing changed.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditExit {
    Run,
    Status,
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Apply retention now (it also runs inside every audit).
    Prune {
        /// Then give the freed space back to the file system.
        #[arg(long)]
        vacuum: bool,
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
    /// Keep probing and recording, but notify nothing for these checks until it ends.
    Silence {
        #[arg(short = 'e', long = "env", value_name = "ENV")]
        env: String,
        /// Check id or glob: `probe/orders-db`, `probe/*`.
        #[arg(long, value_name = "GLOB")]
        check: String,
        /// How long, e.g. 2h.
        #[arg(long = "for", value_name = "DURATION", value_parser = duration)]
        duration: Duration,
        #[arg(long, value_name = "TEXT")]
        reason: String,
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
    /// List the silences in force or to come.
    Silences {
        #[arg(long, value_name = "URL")]
        store: Option<String>,
        #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
        format: DiffFormat,
    },
    /// End a silence now.
    Unsilence {
        /// The silence's id, as `envgate audit silences` shows it.
        id: i64,
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Environment (repeatable; default: every environment in the store).
    #[arg(short = 'e', long = "env", value_name = "ENV")]
    pub envs: Vec<String>,
    /// Only this check: an id or a glob (`probe/*`).
    #[arg(long, value_name = "ID")]
    pub check: Option<String>,
    /// Incidents resolved within this long (default 7d).
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = duration)]
    pub since: Duration,
    #[arg(long, value_enum, default_value_t = HistoryFormat::Human)]
    pub format: HistoryFormat,
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

/// `envgate serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub select: Selection,
    #[command(flatten)]
    pub filter: Filter,
    #[command(flatten)]
    pub run: RunFlags,
    /// Address to listen on: IP:PORT, or a port alone (on 127.0.0.1).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9427")]
    pub listen: String,
    /// Time between audit runs (with --read-only: how often cron writes the store).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub interval: Duration,
    /// Delay each run by up to this share of the interval, at random (e.g. 10%).
    #[arg(long, value_name = "PERCENT", default_value = "0%", value_parser = percent)]
    pub jitter: u8,
    /// History store: sqlite:PATH or postgres://... (default: `[audit] store`,
    /// else sqlite:.envgate/history.db).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Run no audit: answer from a store that another runner (cron) writes.
    #[arg(long)]
    pub read_only: bool,
    /// Bearer token required on /api and /probe.
    #[arg(long, env = "ENVGATE_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// One log line per run: `text` or `json` (for log shippers).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Runs of /probe allowed per minute, all checks together.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub probe_rate: u32,
    /// Which status fails an environment: `fail` (default) or `warn`.
    #[arg(long, value_enum, default_value_t = FailOn::Fail)]
    pub fail_on: FailOn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `"10%"` or `"10"`: 0 to 100.
fn percent(s: &str) -> Result<u8, String> {
    match s.trim_end_matches('%').parse::<u8>() {
        Ok(n) if n <= 100 => Ok(n),
        _ => Err(format!("`{s}` is not a percentage from 0% to 100%")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HistoryFormat {
    Human,
    Json,
    Html,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
