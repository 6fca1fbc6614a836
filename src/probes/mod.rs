//! Probes: is a component the configuration names actually there and
//! answering? One file per kind plus one line in [`KINDS`].
//!
//! Building a probe ([`Kind::build`]) only checks its parameters: no I/O.
//! Only [`Probe::run`] touches the network or the file system, and a failed
//! probe is an [`Outcome`], never an `Err`. Scheduling, retries and timeouts
//! belong to `crate::runner`; formatting belongs to the reporters.

pub mod def;
mod disk;
mod dns;
mod exec;
mod file;
mod http;
pub mod net;
mod tcp;
mod tls;
// Service probes (issue 5), and what they share.
mod amqp;
mod mqtt;
mod mysql;
mod nats;
mod postgres;
mod redis;
mod s3;
mod service;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use def::ProbeDef;
pub use net::Net;

/// A boxed future, so probes of every kind sit behind one `dyn Probe`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait Probe: Send + Sync {
    /// One attempt. Must finish within `ctx.timeout` (the runner enforces it
    /// too, as a safety net, by dropping the future).
    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome>;
}

/// What one attempt may use: its time budget and the run's shared caches.
pub struct Ctx {
    pub timeout: Duration,
    pub net: Arc<Net>,
}

/// Why a probe failed: the first word of its message, and a stable value
/// for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Refused,
    Timeout,
    Dns,
    Tls,
    Status,
    Body,
    Latency,
    Permission,
    NotFound,
    Capacity,
    Exec,
    Unknown,
    Io,
    /// The credentials were refused.
    Auth,
    /// Something answered that does not speak the expected protocol.
    Protocol,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Refused => "refused",
            Class::Timeout => "timeout",
            Class::Dns => "dns",
            Class::Tls => "tls",
            Class::Status => "status",
            Class::Body => "body",
            Class::Latency => "latency",
            Class::Permission => "permission",
            Class::NotFound => "not_found",
            Class::Capacity => "capacity",
            Class::Exec => "exec",
            Class::Unknown => "unknown",
            Class::Io => "io",
            Class::Auth => "auth",
            Class::Protocol => "protocol",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

/// The result of one attempt.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    pub class: Option<Class>,
    /// What was expected and what was seen; no secrets (the runner scrubs too).
    pub message: String,
    /// Measurements, e.g. a Nagios plugin's perfdata.
    pub metrics: Vec<crate::report::model::Metric>,
}

impl Outcome {
    pub fn pass(message: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Pass,
            class: None,
            message: message.into(),
            metrics: Vec::new(),
        }
    }

    pub fn warn(class: Class, message: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Warn,
            class: Some(class),
            message: format!("{}: {}", class.as_str(), message.into()),
            metrics: Vec::new(),
        }
    }

    pub fn fail(class: Class, message: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Fail,
            class: Some(class),
            message: format!("{}: {}", class.as_str(), message.into()),
            metrics: Vec::new(),
        }
    }

    /// The same outcome, carrying measurements.
    pub fn with_metrics(mut self, metrics: Vec<crate::report::model::Metric>) -> Outcome {
        self.metrics = metrics;
        self
    }
}

/// A parameter that cannot work, named so the loader can point at its line.
#[derive(Debug, Clone)]
pub struct ParamError {
    pub param: &'static str,
    pub message: String,
}

impl ParamError {
    pub fn new(param: &'static str, message: impl Into<String>) -> ParamError {
        ParamError {
            param,
            message: message.into(),
        }
    }
}

/// A kind's constructor: parameters and target → a probe. Pure: no I/O.
pub type Build = fn(&ProbeDef, &str) -> Result<Box<dyn Probe>, ParamError>;

/// One probe kind: its name, what it checks, its parameters and constructor.
pub struct Kind {
    pub name: &'static str,
    pub doc: &'static str,
    /// Every kind-specific parameter with a one-line description.
    pub params: &'static [(&'static str, &'static str)],
    /// What `target` is for this kind.
    pub target: &'static str,
    /// Parameters and target → a probe. Pure: no I/O.
    pub build: Build,
}

/// The registry: adding a kind is one file and one line here.
pub static KINDS: &[&Kind] = &[
    &http::KIND,
    &tcp::KIND,
    &dns::KIND,
    &tls::KIND,
    &disk::KIND,
    &file::KIND,
    &exec::KIND,
    &postgres::KIND,
    &mysql::KIND,
    &redis::KIND,
    &amqp::KIND,
    &nats::KIND,
    &mqtt::KIND,
    &s3::KIND,
];

pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().copied().find(|k| k.name == name)
}

/// The kind an ad-hoc URL's scheme names.
pub fn kind_for_scheme(scheme: &str) -> Option<&'static Kind> {
    match scheme {
        "http" | "https" => kind("http"),
        "postgres" | "postgresql" => kind("postgres"),
        "mysql" | "mariadb" => kind("mysql"),
        "redis" | "rediss" => kind("redis"),
        "amqp" | "amqps" => kind("amqp"),
        "nats" => kind("nats"),
        "mqtt" | "mqtts" => kind("mqtt"),
        "s3" => kind("s3"),
        other => kind(other).filter(|k| matches!(k.name, "tcp" | "dns" | "tls")),
    }
}

/// Parameters every kind accepts (the common fields of `[[probe]]`).
pub const COMMON: &[&str] = &[
    "name",
    "kind",
    "target",
    "timeout",
    "severity",
    "tags",
    "retries",
    "depends_on",
    "envs",
    "warn_in",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_complete_and_documented() {
        let mut names: Vec<_> = KINDS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len(), "kind names are unique");
        for k in KINDS {
            assert!(!k.doc.is_empty() && !k.target.is_empty(), "{} is documented", k.name);
            for (p, d) in k.params {
                assert!(!d.is_empty(), "{}.{p} is documented", k.name);
                assert!(def::PARAMS.contains(p), "{}.{p} is a field of ProbeDef", k.name);
                assert!(!COMMON.contains(p), "{}.{p} shadows a common field", k.name);
            }
        }
        // Every field of ProbeDef is either common or belongs to a kind.
        for p in def::PARAMS.iter() {
            assert!(
                COMMON.contains(p) || KINDS.iter().any(|k| k.params.iter().any(|(q, _)| q == p)),
                "{p} belongs to no kind"
            );
        }
    }
}
