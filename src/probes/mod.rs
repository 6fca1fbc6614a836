//! Probes: is a component the configuration names actually there and
//! answering? One file per kind plus one line in [`KINDS`].
//!
//! Building a probe ([`Kind::build`]) only checks its parameters: no I/O.
//! Only [`Probe::run`] touches the network or the file system, and a failed
//! probe is an [`Outcome`], never an `Err`. Scheduling, retries and timeouts
//! belong to `crate::runner`; formatting belongs to the reporters.

mod bounded;
mod certs;
#[cfg(test)]
mod contract;
pub mod def;
mod disk;
mod dns;
mod exec;
pub mod fds;
mod file;
mod http;
mod http_conn;
pub mod load;
pub mod net;
mod tcp;
mod tls;
// Service probes, and what they share.
mod amqp;
mod azblob;
mod gcs;
mod kafka;
mod mqtt;
mod mysql;
mod nats;
mod nats_auth;
mod objects;
pub mod param;
mod pg_wire;
mod postgres;
mod redis;
mod s3;
mod service;
mod sql;

use std::future::Future;
use std::pin::Pin;

pub use def::ProbeDef;
/// Why a `[probe.load]` on an object store has nothing to request, if so.
pub use objects::load_refusal;

use crate::outcome::Metric;
pub use net::{Ctx, Guard, Net};

/// A boxed future, so probes of every kind sit behind one `dyn Probe`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait Probe: Send + Sync {
    /// Every host this probe will connect to, as its own client will dial
    /// it: the target's hosts and any other (an endpoint, each host of a
    /// multi-host DSN, a fallback host). Isolation refuses the probe before
    /// it runs when one belongs to another environment; a kind that connects
    /// nowhere returns none. There is no default, so a new kind cannot forget
    /// to answer.
    fn hosts(&self) -> Vec<Endpoint>;

    /// One attempt. Must finish within `ctx.timeout` (the runner enforces it
    /// too, as a safety net, by dropping the future). Every connection goes
    /// through `ctx` ([`Ctx::each_addr`], [`Ctx::connect`],
    /// [`Ctx::http_client`]), which applies the environment's isolation to
    /// every address before it is dialed.
    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome>;

    /// How this probe runs a `[probe.load]`; kinds that cannot have none
    /// (the loader refuses a load on them).
    fn load(&self) -> Option<std::sync::Arc<dyn load::Load>> {
        None
    }
}

/// A host and port a probe dials, normalised as its client parses them
/// (IP literals in any spelling become the address they mean).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: Option<u16>,
}

impl Endpoint {
    /// `host` as the client parsed it; kept in the form isolation compares
    /// (`0x7f.0.0.2` is 127.0.0.2, `::ffff:10.0.0.5` is 10.0.0.5).
    pub fn new(host: impl Into<String>, port: impl Into<Option<u16>>) -> Endpoint {
        let host = host.into();
        Endpoint {
            host: crate::net::address::normalise(&host).unwrap_or_else(|| host.to_ascii_lowercase()),
            port: port.into(),
        }
    }
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
    /// The environment's isolation refused a host or an address: nothing
    /// was dialed.
    Isolation,
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
            Class::Isolation => "isolation",
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
    pub metrics: Vec<Metric>,
    /// The entry of a list parameter this failure is about (`tables`,
    /// `invoices`): a report points at that entry in the check file.
    pub about: Option<(String, String)>,
    /// The id the (failed) HTTP request carried.
    pub request_id: Option<String>,
    /// What a `[probe.load]` measured.
    pub load: Option<Box<crate::outcome::LoadReport>>,
}

impl Outcome {
    pub fn pass(message: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Pass,
            class: None,
            message: message.into(),
            metrics: Vec::new(),
            about: None,
            request_id: None,
            load: None,
        }
    }

    pub fn warn(class: Class, message: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Warn,
            class: Some(class),
            message: format!("{}: {}", class.as_str(), message.into()),
            metrics: Vec::new(),
            about: None,
            request_id: None,
            load: None,
        }
    }

    pub fn fail(class: Class, message: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Fail,
            class: Some(class),
            message: format!("{}: {}", class.as_str(), message.into()),
            metrics: Vec::new(),
            about: None,
            request_id: None,
            load: None,
        }
    }

    /// The same outcome, about one entry of a list parameter.
    pub fn about(mut self, param: &str, item: &str) -> Outcome {
        self.about = Some((param.to_string(), item.to_string()));
        self
    }

    /// The same outcome, carrying measurements.
    pub fn with_metrics(mut self, metrics: Vec<Metric>) -> Outcome {
        self.metrics = metrics;
        self
    }
}

/// A parameter that cannot work, named so the loader can point at its line.
#[derive(Debug, Clone)]
pub struct ParamError {
    pub param: String,
    pub message: String,
}

impl ParamError {
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> ParamError {
        ParamError {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// What a kind's constructor gets: the resolved target and the kind's own
/// parameters (every `${...}` already filled in).
pub struct Spec<'a> {
    pub target: &'a str,
    pub params: &'a toml::Table,
}

impl Spec<'_> {
    /// The kind's parameter struct. Unknown names were refused when the
    /// check file was loaded; what is left here are wrong types and values,
    /// each named by its parameter.
    pub fn params<T: serde::de::DeserializeOwned>(&self) -> Result<T, ParamError> {
        self.params.clone().try_into().map_err(|e| param_error(&e))
    }
}

/// toml names the offending key on the error's last line: "...\nin `status`".
fn param_error(e: &toml::de::Error) -> ParamError {
    let text = e.to_string().trim().to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    let param = match lines
        .last()
        .and_then(|l| l.strip_prefix("in `"))
        .and_then(|l| l.strip_suffix('`'))
    {
        Some(p) => {
            let p = p.split('.').next().unwrap_or(p).to_string();
            lines.pop();
            p
        }
        None => "target".to_string(),
    };
    ParamError::new(param, lines.join(" "))
}

/// A kind's constructor: parameters and target → a probe. Pure: no I/O.
pub type Build = fn(&Spec<'_>) -> Result<Box<dyn Probe>, ParamError>;

/// One probe kind: its name, what it checks, its parameters and constructor.
pub struct Kind {
    pub name: &'static str,
    pub doc: &'static str,
    /// What `target` is for this kind.
    pub target: &'static str,
    /// URL schemes that name this kind in an ad-hoc `envgate probe URL`;
    /// empty when a target of this kind is not a URL.
    pub schemes: &'static [&'static str],
    /// The JSON Schema of the kind's parameter struct: names, types and the
    /// doc comment of every parameter (`list`, checks.schema.json and the
    /// loader's did-you-mean all read it).
    pub params: fn() -> schemars::Schema,
    /// Parameters and target → a probe. Pure: no I/O.
    pub build: Build,
}

impl Kind {
    /// Every parameter's name and one-line description, in declaration order.
    pub fn param_docs(&self) -> Vec<(String, String)> {
        let schema = (self.params)();
        let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else {
            return Vec::new();
        };
        props
            .iter()
            .map(|(k, v)| {
                let doc = v.get("description").and_then(|d| d.as_str()).unwrap_or_default();
                (k.clone(), doc.replace('\n', " "))
            })
            .collect()
    }

    pub fn param_names(&self) -> Vec<String> {
        self.param_docs().into_iter().map(|(k, _)| k).collect()
    }
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
    &kafka::KIND,
    &mqtt::KIND,
    &s3::KIND,
    &gcs::KIND,
    &azblob::KIND,
];

pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().copied().find(|k| k.name == name)
}

/// The kind an ad-hoc URL's scheme names.
pub fn kind_for_scheme(scheme: &str) -> Option<&'static Kind> {
    KINDS.iter().copied().find(|k| k.schemes.contains(&scheme))
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
    "load",
    "load_envs",
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
        let mut schemes: Vec<_> = KINDS.iter().flat_map(|k| k.schemes.iter()).collect();
        let all = schemes.len();
        schemes.sort_unstable();
        schemes.dedup();
        assert_eq!(schemes.len(), all, "a scheme names one kind");
        for k in KINDS {
            assert!(!k.doc.is_empty() && !k.target.is_empty(), "{} is documented", k.name);
            let schema = (k.params)();
            assert_eq!(
                schema.get("additionalProperties"),
                Some(&serde_json::Value::Bool(false)),
                "{}'s parameters are strict (deny_unknown_fields)",
                k.name
            );
            for (p, d) in k.param_docs() {
                assert!(!d.is_empty(), "{}.{p} is documented", k.name);
                assert!(!COMMON.contains(&p.as_str()), "{}.{p} shadows a common field", k.name);
            }
        }
    }

    #[test]
    fn a_wrong_parameter_type_names_the_parameter() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct P {
            #[expect(dead_code, reason = "only its error matters here")]
            keys: Vec<String>,
        }
        let params: toml::Table = toml::from_str("keys = [\"a\", 3]").unwrap();
        let e = Spec {
            target: "",
            params: &params,
        }
        .params::<P>()
        .unwrap_err();
        assert_eq!(e.param, "keys");
        assert!(e.message.contains("expected a string"), "{}", e.message);
    }
}
