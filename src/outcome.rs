//! What a run found: each check's result, per environment, in the shape of
//! the JSON report v1. Rules, probes and the runner produce these; every
//! reporter only serialises them, and none reads files or the network.

use serde::{Deserialize, Serialize};

use crate::config::secrets::{Redactor, redact_problem};
use crate::diagnostic::Problem;
use crate::findings::{Category, Finding};

pub const REPORT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Report {
    /// Report format version; bumped when a field changes meaning.
    pub version: u32,
    pub tool: Tool,
    /// The manifest's `[project] name`, so reports of different projects are
    /// never merged.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub project: Option<String>,
    /// The `--shard K/N` this report covers, when it covers one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub shard: Option<ShardInfo>,
    pub duration_ms: u64,
    pub environments: Vec<EnvReport>,
}

/// `--shard 2/4` is `{"index": 2, "count": 4}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardInfo {
    /// 1-based.
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EnvReport {
    pub name: String,
    pub status: Status,
    pub summary: Summary,
    pub results: Vec<CheckResult>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Skipped,
    Flaky,
    Warn,
    Blocked,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Flaky => "flaky",
            Status::Blocked => "blocked",
            Status::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Error,
    Warning,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    pub pass: u32,
    pub warn: u32,
    pub fail: u32,
    pub flaky: u32,
    pub blocked: u32,
    pub skipped: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Location {
    /// Path relative to the project root.
    pub file: String,
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
}

/// Where a blamed value came from, whatever its layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OriginInfo {
    /// The layer: `base`, an environment, a `[[source]]`'s name, or `--set`.
    pub layer: String,
    /// `file`, `dotenv`, `env` (an environment variable), `http` or `cli`.
    pub kind: String,
    /// The file, the variable, the URL with the JSON pointer of the value, or
    /// the `--set` argument (a secret's value masked).
    pub name: String,
}

impl OriginInfo {
    /// How the human output says it: `environment variable ORDERS__X`.
    pub fn describe(&self) -> String {
        match self.kind.as_str() {
            "env" => format!("environment variable {}", self.name),
            "http" => format!("{} (source `{}`)", self.name, self.layer),
            "cli" => self.name.clone(),
            "dotenv" => format!("{} (dotenv source `{}`)", self.name, self.layer),
            _ => self.name.clone(),
        }
    }
}

/// One measurement: `time=0.002s` from a plugin is `{"name": "time", "value": 0.002, "unit": "s"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub unit: String,
}

/// What a bounded load (`[probe.load]`) measured. Latencies are of the
/// requests after the warmup that succeeded, in milliseconds; in open-model
/// mode (`rate`) each is counted from when the request was due, not from
/// when it was sent, so a server that stalls cannot hide its queue
/// (coordinated omission).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadReport {
    /// Requests measured (after the warmup), successes and errors.
    pub count: u64,
    /// Of those, how many failed.
    pub errors: u64,
    /// Failed requests by failure class (`status`, `timeout`, `refused`, ...).
    pub errors_by_class: std::collections::BTreeMap<String, u64>,
    /// Requests in flight at most.
    pub concurrency: u32,
    /// The open-model arrival rate asked for, per second; absent in closed-model mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// How long the measured part took.
    pub duration_ms: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Successful requests per second over the measured part.
    pub throughput: f64,
    /// The latency at each of a fixed set of percentiles (the HTML chart).
    pub distribution: Vec<Percentile>,
    /// Every budget, what it allows and what was measured.
    pub budgets: Vec<Budget>,
    /// The slowest request's id (HTTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slowest_request_id: Option<String>,
    /// The first failed request's id (HTTP) and why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Why the load stopped before its bound (the run's deadline), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Percentile {
    pub percentile: f64,
    pub ms: f64,
}

/// One budget of a load: `p95`, `max_error_rate`, `min_throughput`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Budget {
    pub name: String,
    /// The limit as written: "40ms", "1%", "150/s".
    pub limit: String,
    /// The measured value in the same unit: "50.3ms", "5.0%", "120/s".
    pub measured: String,
    pub held: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckResult {
    /// Stable identifier: `schema/<key>`, `config/<key>`, `rule/<id>`, `probe/<name>`.
    pub id: String,
    pub category: Category,
    /// Probe kind, for probes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    pub status: Status,
    pub severity: Severity,
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// The configuration key involved, dotted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Where the offending value was set, when a file is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Which layer set the offending value, and how: a file, an environment
    /// variable, a dotenv line, an http source or the command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginInfo>,
    /// The probed target, with passwords redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Measurements a probe reported, e.g. a Nagios plugin's perfdata.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub metrics: Vec<Metric>,
    /// The id the HTTP request that failed carried (`X-Request-Id`), to find
    /// it in the server's logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What a `[probe.load]` measured, and its budgets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<Box<LoadReport>>,
    /// The diagnostic with its source snippet, for human output.
    #[serde(skip)]
    #[schemars(skip)]
    pub problem: Option<Problem>,
}

impl CheckResult {
    pub fn from_finding(f: Finding, status: Status, severity: Severity) -> Self {
        let location = f
            .problem
            .position()
            .map(|(file, line, column)| Location { file, line, column });
        CheckResult {
            name: f.key.clone().unwrap_or_else(|| f.id.clone()),
            id: f.id,
            category: f.category,
            kind: None,
            status,
            severity,
            message: f.problem.message.clone(),
            help: f.problem.help.clone(),
            key: f.key,
            location,
            origin: None,
            target: None,
            attempts: None,
            duration_ms: None,
            metrics: Vec::new(),
            request_id: None,
            load: None,
            problem: Some(f.problem),
        }
    }

    pub fn pass(category: Category, id: &str, name: &str, message: String) -> Self {
        CheckResult {
            id: id.into(),
            category,
            kind: None,
            name: name.into(),
            status: Status::Pass,
            severity: Severity::Error,
            message,
            help: None,
            key: None,
            location: None,
            origin: None,
            target: None,
            attempts: None,
            duration_ms: None,
            metrics: Vec::new(),
            request_id: None,
            load: None,
            problem: None,
        }
    }
}

impl Summary {
    pub fn of(results: &[CheckResult]) -> Summary {
        let mut s = Summary::default();
        for r in results {
            *match r.status {
                Status::Pass => &mut s.pass,
                Status::Warn => &mut s.warn,
                Status::Fail => &mut s.fail,
                Status::Flaky => &mut s.flaky,
                Status::Blocked => &mut s.blocked,
                Status::Skipped => &mut s.skipped,
            } += 1;
        }
        s
    }
}

impl EnvReport {
    pub fn new(name: String, results: Vec<CheckResult>) -> Self {
        let status = results
            .iter()
            .map(|r| r.status)
            .filter(|s| !matches!(s, Status::Skipped | Status::Flaky))
            .max()
            .map(|s| if s == Status::Blocked { Status::Fail } else { s })
            .unwrap_or(Status::Pass);
        EnvReport {
            name,
            status,
            summary: Summary::of(&results),
            results,
        }
    }
}

impl Report {
    pub fn new(environments: Vec<EnvReport>, duration_ms: u64) -> Self {
        Report {
            version: REPORT_VERSION,
            tool: Tool {
                name: "envgate".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            project: None,
            shard: None,
            duration_ms,
            environments,
        }
    }

    /// Mask every secret `redactor` knows in every result: message, help,
    /// target and the diagnostic with its source snippet. Done once, before
    /// any reporter sees the report.
    pub fn redact(&mut self, redactor: &Redactor) {
        let mut masked = std::collections::HashMap::new();
        for r in self.environments.iter_mut().flat_map(|e| e.results.iter_mut()) {
            r.message = redactor.scrub(&r.message);
            r.help = r.help.as_ref().map(|h| redactor.scrub(h));
            r.target = r.target.as_ref().map(|t| redactor.scrub(t));
            if let Some(o) = &mut r.origin {
                o.name = redactor.scrub(&o.name);
            }
            r.problem = r.problem.as_ref().map(|p| redact_problem(p, redactor, &mut masked));
        }
    }

    /// Did the run pass, given which status counts as failure?
    pub fn passed(&self, fail_on_warn: bool) -> bool {
        self.environments.iter().all(|e| match e.status {
            Status::Fail | Status::Blocked => false,
            Status::Warn => !fail_on_warn,
            _ => true,
        })
    }
}
