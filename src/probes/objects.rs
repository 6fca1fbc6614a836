//! What the object storage kinds (`s3`, `gcs`, `azblob`) share. The stores
//! are the `object_store` crate's: its request signing and its credential
//! chains (AWS, Google, Azure). Its HTTP transport is envgate's: every
//! request, to the bucket and to any credential endpoint (STS, instance
//! metadata, OAuth), goes through [`Transport`], which asks the
//! environment's isolation about its host, sends it with the run's guarded
//! HTTP client pinned to the address being probed, bounds every answer's
//! body, and remembers what went wrong in envgate's own classes (refused,
//! timeout, tls, ...) so a failure deep inside a credential provider is
//! still reported as what it is.
//!
//! The check: list the bucket under the prefix (one key), and with
//! `write = true` put, get and delete a small canary object, the delete
//! running whatever happened to the get.
//!
//! A `[probe.load]` ([`ObjectLoad`]) GETs `load_object` with each request,
//! or with `write = true` makes each request a canary round trip of its
//! own; canaries a request did not see deleted are deleted when it ends.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt;
use object_store::client::HttpResponseBody;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService,
};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{ClientConfigKey, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use url::Url;

use super::net::ClientOpts;
use super::service::{self, Target, ms};
use super::{BoxFuture, Class, Ctx, Endpoint, Guard, Outcome, ParamError};
use crate::config::units::format_bytes;

/// The largest answer read: a one-key listing, an error document, a
/// credentials document or the canary is far smaller.
pub const BODY: usize = 256 << 10;

/// A bucket the probe can list, put, get and delete in.
pub trait Bucket: ObjectStore + PaginatedListStore {}
impl<T: ObjectStore + PaginatedListStore> Bucket for T {}

/// No retries: the runner retries whole attempts, and a probe reports the
/// first failure, within the attempt's timeout.
pub fn retry(timeout: Duration) -> RetryConfig {
    RetryConfig {
        max_retries: 0,
        retry_timeout: timeout,
        backoff: Default::default(),
    }
}

/// What the transport saw go wrong, in envgate's words.
#[derive(Debug, Default)]
pub struct Seen {
    /// A request that got no answer: its host, whether it asked for
    /// credentials (not the store), and the failure.
    pub failed: Option<(String, bool, Outcome)>,
    /// The last error answer: host, status, body (bounded) and S3's
    /// `x-amz-bucket-region`.
    pub refused: Option<Refusal>,
    /// `x-amz-bucket-region` of any answer.
    pub bucket_region: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Refusal {
    pub host: String,
    /// A credential endpoint's answer, not the store's.
    pub credential: bool,
    pub status: u16,
    pub body: String,
}

impl Refusal {
    /// `<Code>` of an XML error document, or `"code"`/`"error"` of a JSON one.
    pub fn code(&self) -> String {
        if let Some(c) = between(&self.body, "<Code>", "</Code>") {
            return c.to_string();
        }
        let json: Option<serde_json::Value> = serde_json::from_str(&self.body).ok();
        json.and_then(|j| {
            let e = j.get("error")?;
            e.as_str()
                .map(String::from)
                .or_else(|| e.get("status").and_then(|s| s.as_str()).map(String::from))
        })
        .unwrap_or_default()
    }

    /// `<Message>` of an XML error document, or the JSON `error_description`/`message`.
    pub fn text(&self) -> String {
        if let Some(m) = between(&self.body, "<Message>", "</Message>") {
            return m.lines().next().unwrap_or_default().to_string();
        }
        let json: Option<serde_json::Value> = serde_json::from_str(&self.body).ok();
        json.and_then(|j| {
            j.get("error_description")
                .or_else(|| j.get("error").and_then(|e| e.get("message")))
                .or_else(|| j.get("message"))
                .and_then(|m| m.as_str())
                .map(String::from)
        })
        .unwrap_or_default()
    }
}

pub fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let start = s.find(a)? + a.len();
    let end = s[start..].find(b)? + start;
    Some(&s[start..end])
}

/// The transport of one attempt: the guarded client pinned to the address
/// probed, and what went wrong.
#[derive(Clone)]
pub struct Transport {
    client: reqwest::Client,
    guard: Option<Arc<dyn Guard>>,
    timeout: Duration,
    /// The store's host and the address it is pinned to.
    host: String,
    /// The URL every request to the store starts with (the bucket's);
    /// any other asks for credentials (STS, a metadata service, OAuth).
    store: String,
    addr: SocketAddr,
    /// A load's transport: its answers may be objects (a GET), not only a
    /// listing or an error, and its connections are kept between requests.
    load: bool,
    pub seen: Arc<Mutex<Seen>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("host", &self.host)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// The run's guarded client for `host` pinned to `addr`.
    pub fn new(ctx: &Ctx, opts: &ClientOpts, store: &str, host: &str, addr: SocketAddr) -> Result<Transport, Outcome> {
        Transport::with(ctx, opts, store, host, addr, false)
    }

    /// A load worker's transport: the same guard and bounds, over the
    /// run's pooled client so requests reuse their connections.
    pub fn for_load(
        ctx: &Ctx,
        opts: &ClientOpts,
        store: &str,
        host: &str,
        addr: SocketAddr,
    ) -> Result<Transport, Outcome> {
        Transport::with(ctx, opts, store, host, addr, true)
    }

    fn with(
        ctx: &Ctx,
        opts: &ClientOpts,
        store: &str,
        host: &str,
        addr: SocketAddr,
        load: bool,
    ) -> Result<Transport, Outcome> {
        let client = if load {
            ctx.pooled_http_client(opts, host, addr)
        } else {
            ctx.http_client(opts, host, addr)
        }
        .map_err(|e| Outcome::fail(Class::Tls, e))?;
        Ok(Transport {
            client,
            guard: ctx.guard.clone(),
            timeout: ctx.timeout,
            host: host.trim_matches(['[', ']']).to_ascii_lowercase(),
            store: store.trim_end_matches('/').to_string(),
            addr,
            load,
            seen: Arc::default(),
        })
    }

    /// Forget what the last request saw: a load sends many through one
    /// transport, and each failure is its own.
    pub fn forget(&self) {
        *self.seen.lock().expect("no poisoning") = Seen::default();
    }

    fn refused(&self, host: &str) -> Option<String> {
        let g = self.guard.as_ref()?;
        if let Some(why) = g.host(host) {
            return Some(why);
        }
        let ip = host.parse::<IpAddr>().ok()?;
        g.addr(host, ip)
    }

    fn fail(&self, host: &str, credential: bool, o: Outcome) -> HttpError {
        let message = o.message.clone();
        self.seen.lock().expect("no poisoning").failed = Some((host.to_string(), credential, o));
        HttpError::new(HttpErrorKind::Unknown, Failed(message))
    }
}

/// A failure the transport already classified (kept in [`Seen::failed`]).
#[derive(Debug)]
struct Failed(String);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failed {}

/// Makes the store's clients: one transport, HTTPS enforced where the store
/// asks for it (web identity tokens never travel in plain text).
#[derive(Debug)]
pub struct Connector(pub Transport);

impl HttpConnector for Connector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let https_only = options.get_config_value(&ClientConfigKey::AllowHttp).as_deref() == Some("false");
        // The metadata services' clients ask for a short connect timeout.
        let quick = options.get_config_value(&ClientConfigKey::ConnectTimeout).is_some();
        Ok(HttpClient::new(Service {
            t: self.0.clone(),
            https_only,
            quick,
        }))
    }
}

#[derive(Debug)]
struct Service {
    t: Transport,
    https_only: bool,
    quick: bool,
}

/// The longest a metadata service (EC2, ECS, GCE, Azure IMDS) may take: it
/// answers in milliseconds where it exists, and elsewhere nothing answers.
const METADATA: Duration = Duration::from_secs(2);

#[async_trait::async_trait]
impl HttpService for Service {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let t = &self.t;
        let (parts, body) = req.into_parts();
        let url = Url::parse(&parts.uri.to_string()).map_err(|e| {
            t.fail(
                "",
                false,
                Outcome::fail(Class::Protocol, format!("cannot build a request URL: {e}")),
            )
        })?;
        let cred = !url.as_str().starts_with(&t.store);
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or(443);
        if let Some(why) = t.refused(&host) {
            return Err(t.fail(&host, cred, Outcome::fail(Class::Isolation, why)));
        }
        if self.https_only && url.scheme() != "https" {
            return Err(t.fail(
                &host,
                cred,
                Outcome::fail(
                    Class::Tls,
                    format!(
                        "refusing to send a credential request to {host}:{port} over plain http://: it needs https://"
                    ),
                ),
            ));
        }
        let body = body
            .collect()
            .await
            .map_err(|e| t.fail(&host, cred, Outcome::fail(Class::Io, format!("request body: {e}"))))?
            .to_bytes();
        let timeout = if self.quick { t.timeout.min(METADATA) } else { t.timeout };
        let addr = if host == t.host {
            t.addr
        } else {
            host.parse::<IpAddr>().map_or_else(
                |_| SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port),
                |ip| SocketAddr::new(ip, port),
            )
        };
        let shown = |o: Outcome| -> Outcome {
            let mut o = o;
            if addr.ip().is_unspecified() {
                o.message = o.message.replace(&addr.to_string(), &format!("{host}:{port}"));
            }
            o
        };
        let resp = self
            .t
            .client
            .request(parts.method, url.clone())
            .headers(parts.headers)
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                t.fail(
                    &host,
                    cred,
                    shown(super::http::request_error(addr, &host, &url, timeout, &e)),
                )
            })?;
        let status = resp.status();
        if let Some(r) = resp.headers().get("x-amz-bucket-region").and_then(|v| v.to_str().ok()) {
            t.seen.lock().expect("no poisoning").bucket_region = Some(r.to_string());
        }
        let resp: http::Response<reqwest::Body> = resp.into();
        let (parts, body) = resp.into_parts();
        let limited = http_body_util::Limited::new(body, BODY);
        if status.is_success() {
            let too_much = if t.load { too_big(addr) } else { too_much(addr) };
            let t2 = t.clone();
            let h2 = host.clone();
            let body = limited.map_err(move |e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    t2.fail(&h2, cred, Outcome::fail(Class::Protocol, too_much.clone()))
                } else {
                    HttpError::new_boxed(HttpErrorKind::Interrupted, e)
                }
            });
            return Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)));
        }
        // An error answer: read it whole (bounded) and keep a copy.
        let bytes = match tokio::time::timeout(timeout, limited.collect()).await {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(t.fail(&host, cred, Outcome::fail(Class::Protocol, too_much(addr))));
            }
            Ok(Err(e)) => return Err(t.fail(&host, cred, Outcome::fail(Class::Refused, format!("{addr}: {e}")))),
            Err(_) => {
                return Err(t.fail(&host, cred, shown(super::net::timed_out(addr, timeout))));
            }
        };
        t.seen.lock().expect("no poisoning").refused = Some(Refusal {
            host: host.clone(),
            credential: cred,
            status: status.as_u16(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        });
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::from(bytes)))
    }
}

fn too_much(addr: SocketAddr) -> String {
    format!(
        "{addr} answered with more than {}, more than a one-key listing or an error needs (is this an object store endpoint?)",
        format_bytes(BODY as u64)
    )
}

fn too_big(addr: SocketAddr) -> String {
    format!(
        "{addr} answered with more than {}: a load reads objects of at most that size",
        format_bytes(BODY as u64)
    )
}

static CANARIES: AtomicU64 = AtomicU64::new(0);

/// How a kind names things in messages and reads its servers' refusals.
pub trait Dialect: Sync {
    /// "bucket" or "container".
    fn noun(&self) -> &'static str;
    /// What the store calls what it holds: "object", or Azure's "blob".
    fn item(&self) -> &'static str {
        "object"
    }
    /// The class of an error answer from the store (not a credential endpoint).
    fn classify(&self, r: &Refusal) -> Class;
    /// What a credential endpoint's host is, for messages: "STS", "the EC2
    /// instance metadata service", ...
    fn credential_source(&self, host: &str) -> String;
}

/// Codes of a refusal that says the bucket or container itself is missing
/// (not the object asked for).
const CONTAINER_MISSING: &[&str] = &["NoSuchBucket", "ContainerNotFound", "AccountNotFound"];

/// How one attempt names its failures: what the transport saw, else the
/// store's refusal, else the store's own error.
pub struct Words<'a> {
    pub t: &'a Target,
    pub dialect: &'a dyn Dialect,
    pub transport: &'a Transport,
    pub container: &'a str,
    /// Where the credentials came from, for messages: "access key
    /// `AKIA...`", "profile `ci`", "web identity (AWS_ROLE_ARN)".
    pub credentials: &'a str,
    /// The probe's own explanation of a failure it recognises first (S3's
    /// region mismatch), given the transport's record.
    pub explain: &'a (dyn Fn(&Seen) -> Option<Outcome> + Sync),
}

/// The probe of one attempt: list, and with `write` the canary.
pub struct Check<'a> {
    pub words: Words<'a>,
    pub store: Arc<dyn Bucket>,
    pub prefix: &'a str,
    pub write: bool,
    pub max_latency: Option<Duration>,
}

impl Check<'_> {
    pub async fn run(&self) -> Outcome {
        let w = &self.words;
        let addr = w.transport.addr;
        let start = Instant::now();
        let opts = PaginatedListOptions {
            max_keys: Some(1),
            ..Default::default()
        };
        let prefix = (!self.prefix.is_empty()).then_some(self.prefix);
        if let Err(e) = self.store.list_paginated(prefix, opts).await {
            return w.failed(&e, "list", None);
        }
        let list_took = start.elapsed();
        let what = if self.prefix.is_empty() {
            String::new()
        } else {
            format!(" under `{}`", self.prefix)
        };
        let mut msg = format!(
            "{} `{}` listable{what} on {addr} in {} ({})",
            w.dialect.noun(),
            w.container,
            ms(list_took),
            w.credentials
        );
        if let Some(o) = service::over_latency(w.t, "listing", list_took, self.max_latency) {
            return o;
        }
        if self.write {
            match self.canary().await {
                Ok(m) => msg.push_str(&m),
                Err(o) => return o,
            }
        }
        Outcome::pass(msg)
    }

    async fn canary(&self) -> Result<String, Outcome> {
        let w = &self.words;
        let (key, path) = canary_key(self.prefix).map_err(|m| w.t.fail(Class::Protocol, m))?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let body = Bytes::from(format!("envgate canary {nanos}"));
        let (put, get) = round_trip(self.store.as_ref(), &path, &body)
            .await
            .map_err(|step| w.round_trip_failed(&key, step))?;
        for (what, took) in [("put", put), ("get", get)] {
            if let Some(o) = service::over_latency(w.t, &format!("canary {what}"), took, self.max_latency) {
                return Err(o);
            }
        }
        Ok(format!("; canary put {}, get {}, deleted", ms(put), ms(get)))
    }
}

/// A fresh canary key under `prefix`: unique to this process, request and
/// moment, so concurrent probes and load workers never share one.
pub fn canary_key(prefix: &str) -> Result<(String, Path), String> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = CANARIES.fetch_add(1, Ordering::Relaxed);
    let key = format!("{prefix}envgate-canary-{}-{n}-{nanos}", std::process::id());
    let path = Path::parse(&key).map_err(|e| format!("the canary key `{key}` is not an object path: {e}"))?;
    Ok((key, path))
}

/// Which step of a canary's round trip failed.
#[derive(Debug)]
pub enum Step {
    Put(object_store::Error),
    Get(object_store::Error),
    /// The object read back is not what was written.
    Differs,
    Delete(object_store::Error),
}

/// Put `body` at `path`, read it back and delete it; the delete runs
/// whatever the read did. The put's and the get's durations.
pub async fn round_trip(store: &dyn ObjectStore, path: &Path, body: &Bytes) -> Result<(Duration, Duration), Step> {
    let start = Instant::now();
    store
        .put(path, PutPayload::from_bytes(body.clone()))
        .await
        .map_err(Step::Put)?;
    let put = start.elapsed();
    let start = Instant::now();
    let got = match store.get(path).await {
        Ok(r) => r.bytes().await,
        Err(e) => Err(e),
    };
    let get = start.elapsed();
    let deleted = store.delete(path).await;
    let got = got.map_err(Step::Get)?;
    if got != *body {
        return Err(Step::Differs);
    }
    deleted.map_err(Step::Delete)?;
    Ok((put, get))
}

impl Words<'_> {
    /// A failed canary round trip, in words.
    pub fn round_trip_failed(&self, key: &str, step: Step) -> Outcome {
        match step {
            Step::Put(e) => self.failed(&e, &format!("write canary `{key}` in"), None),
            Step::Get(e) => self.failed(&e, &format!("read canary `{key}` in"), Some(key)),
            Step::Differs => self.t.fail(
                Class::Body,
                format!("canary `{key}` read back different bytes than were written"),
            ),
            Step::Delete(e) => self.failed(&e, &format!("delete canary `{key}` in"), Some(key)),
        }
    }

    /// A store error as envgate's class and words: what the transport saw,
    /// else the store's refusal, else the store's own error, scrubbed.
    /// `object` is the key asked for, when there was one: a store that
    /// says "not found" then means the object, unless it names the bucket.
    pub fn failed(&self, e: &object_store::Error, doing: &str, object: Option<&str>) -> Outcome {
        let seen = self.transport.seen.lock().expect("no poisoning");
        if let Some(o) = (self.explain)(&seen) {
            return o;
        }
        let noun = self.dialect.noun();
        let container = self.container;
        if let Some((host, credential, o)) = &seen.failed {
            if o.class == Some(Class::Isolation) {
                return o.clone();
            }
            if *credential {
                let from = self.dialect.credential_source(host);
                let detail = o.message.split_once(": ").map_or(o.message.as_str(), |(_, m)| m);
                let class = o.class.unwrap_or(Class::Auth).as_str();
                return self.t.fail(
                    Class::Auth,
                    format!(
                        "no credentials ({}): {from} failed: {class}: {detail}",
                        self.credentials
                    ),
                );
            }
            return self.t.named(o.clone());
        }
        if let Some(r) = &seen.refused {
            let code = r.code();
            let missing_container = CONTAINER_MISSING.contains(&code.as_str());
            let (code, text) = (super::bounded::cut(&code, 60), super::bounded::cut(&r.text(), 300));
            let why = [code.as_str(), text.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(": ");
            let why = if why.is_empty() {
                format!("HTTP {}", r.status)
            } else {
                format!("HTTP {} {why}", r.status)
            };
            if r.credential {
                let from = self.dialect.credential_source(&r.host);
                return self.t.fail(
                    Class::Auth,
                    format!("{from} refused to give credentials ({}): {why}", self.credentials),
                );
            }
            let class = self.dialect.classify(r);
            let detail = match (class, object) {
                (Class::NotFound, Some(key)) if !missing_container => {
                    format!(
                        "{} `{key}` does not exist in {noun} `{container}` ({why})",
                        self.dialect.item()
                    )
                }
                (Class::NotFound, _) => format!("{noun} `{container}` does not exist ({why})"),
                (Class::Auth, _) => format!("the credentials were refused ({}): {why}", self.credentials),
                (Class::Permission, _) => format!(
                    "the credentials ({}) may not {doing} {noun} `{container}`: {why}",
                    self.credentials
                ),
                _ => format!("could not {doing} {noun} `{container}`: {why}"),
            };
            return self.t.fail(class, detail);
        }
        let class = match e {
            object_store::Error::NotFound { .. } => Class::NotFound,
            object_store::Error::PermissionDenied { .. } => Class::Permission,
            object_store::Error::Unauthenticated { .. } => Class::Auth,
            _ => Class::Auth,
        };
        // Credential providers fail before any request (a missing key file,
        // a malformed key): their words, without URLs' query strings.
        self.t.fail(
            class,
            format!(
                "could not {doing} {noun} `{container}` ({}): {}",
                self.credentials,
                no_queries(&chain(e))
            ),
        )
    }
}

/// The largest canary a load writes: what the transport reads of one answer.
pub const MAX_LOAD_OBJECT: u64 = BODY as u64;
/// A load's canary when `load_object_size` is not given.
pub const DEFAULT_LOAD_OBJECT: u64 = 1 << 10;

/// What each request of an object store's load does.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadOp {
    /// GET this object (its whole key, the prefix included).
    Get(String),
    /// PUT, GET and DELETE a fresh canary of this many bytes.
    Canary(usize),
}

/// The load an object store's parameters ask for: `load_object` (GET it),
/// else with `write` a canary round trip of `load_object_size`; `None`
/// when neither (the loader refuses a load then).
pub fn load_op(
    prefix: &str,
    object: Option<&str>,
    size: Option<&str>,
    write: bool,
) -> Result<Option<LoadOp>, ParamError> {
    if let Some(o) = object {
        if size.is_some() {
            return Err(ParamError::new(
                "load_object_size",
                "a load that GETs `load_object` writes nothing: `load_object_size` sizes the canary of a load with `write = true` and no `load_object`",
            ));
        }
        let key = format!("{prefix}{}", o.trim_start_matches('/'));
        if o.trim_start_matches('/').is_empty() || key.ends_with('/') {
            return Err(ParamError::new(
                "load_object",
                format!("`{o}` names no object: write its key under the prefix, e.g. \"health/ping.txt\""),
            ));
        }
        Path::parse(&key).map_err(|e| ParamError::new("load_object", format!("`{key}` is not an object key: {e}")))?;
        return Ok(Some(LoadOp::Get(key)));
    }
    let bytes = match size {
        None => DEFAULT_LOAD_OBJECT,
        Some(s) => match crate::config::units::parse_bytes(s) {
            Some(n) if (1..=MAX_LOAD_OBJECT).contains(&n) => n,
            Some(_) => {
                return Err(ParamError::new(
                    "load_object_size",
                    format!(
                        "`{s}` is not between 1B and {}, the most envgate reads of one answer",
                        format_bytes(MAX_LOAD_OBJECT)
                    ),
                ));
            }
            None => {
                return Err(ParamError::new(
                    "load_object_size",
                    format!("`{s}` is not a size such as \"4KiB\""),
                ));
            }
        },
    };
    if !write {
        if size.is_some() {
            return Err(ParamError::new(
                "load_object_size",
                "sizes the canary of a load with `write = true`, and `write` is not set",
            ));
        }
        return Ok(None);
    }
    Ok(Some(LoadOp::Canary(bytes as usize)))
}

/// The kinds whose load needs `load_object` or `write = true`.
const STORES: &[&str] = &["s3", "gcs", "azblob"];

/// Why a `[probe.load]` on this kind with these (unfilled) parameters has
/// nothing to request, if it has not: an object store needs `load_object`
/// or `write = true`.
pub fn load_refusal(kind: &str, params: &toml::Table) -> Option<String> {
    if !STORES.contains(&kind) || params.contains_key("load_object") {
        return None;
    }
    match params.get("write") {
        // A value filled in from the configuration is judged once filled.
        Some(toml::Value::Boolean(true) | toml::Value::String(_)) => None,
        _ => Some(format!(
            "{kind} probes need something for a load to request: `load_object = \"health/ping.txt\"` (each request GETs that object under the prefix) or `write = true` (each request puts, gets and deletes a canary)"
        )),
    }
}

/// One load worker's store: its client over a pooled [`Transport`], and
/// where its credentials came from.
pub struct Opened {
    pub store: Arc<dyn ObjectStore>,
    pub transport: Transport,
    pub credentials: String,
}

/// What a kind gives the object store load: one worker's store.
pub trait Opener: Send + Sync {
    fn open<'a>(&'a self, ctx: &'a Ctx, addr: SocketAddr) -> BoxFuture<'a, Result<Opened, Outcome>>;
}

/// An explanation of a failure a kind recognises first (see [`Words::explain`]).
pub type Explain = Box<dyn Fn(&Seen) -> Option<Outcome> + Send + Sync>;

/// A load on an object store: each worker its own store client (every
/// connection through the probe's [`Ctx`]), each request a GET of
/// `load_object` or a canary round trip. Canaries a request did not see
/// deleted (it failed, or its time ran out mid-way) are deleted when the
/// load ends.
pub struct ObjectLoad(Arc<Shared>);

struct Shared {
    opener: Arc<dyn Opener>,
    endpoint: Endpoint,
    t: Target,
    dialect: &'static dyn Dialect,
    container: String,
    prefix: String,
    op: LoadOp,
    explain: Explain,
    /// The canary's bytes, shared by every request.
    body: Bytes,
    /// Canaries put (or perhaps put) and not yet seen deleted.
    left: Mutex<Vec<(String, Path)>>,
}

impl ObjectLoad {
    #[expect(clippy::too_many_arguments, reason = "each is a different part of the probe")]
    pub fn new(
        opener: Arc<dyn Opener>,
        endpoint: Endpoint,
        t: Target,
        dialect: &'static dyn Dialect,
        container: String,
        prefix: String,
        op: LoadOp,
        explain: Explain,
    ) -> ObjectLoad {
        let size = match op {
            LoadOp::Canary(n) => n,
            LoadOp::Get(_) => 0,
        };
        let pattern = b"envgate load canary ";
        let body: Vec<u8> = pattern.iter().copied().cycle().take(size).collect();
        ObjectLoad(Arc::new(Shared {
            opener,
            endpoint,
            t,
            dialect,
            container,
            prefix,
            op,
            explain,
            body: Bytes::from(body),
            left: Mutex::new(Vec::new()),
        }))
    }

    /// Canaries still to delete.
    #[cfg(test)]
    fn left(&self) -> usize {
        self.0.left.lock().expect("no poisoning").len()
    }
}

impl Shared {
    fn words<'a>(&'a self, transport: &'a Transport, credentials: &'a str) -> Words<'a> {
        Words {
            t: &self.t,
            dialect: self.dialect,
            transport,
            container: &self.container,
            credentials,
            explain: &self.explain,
        }
    }
}

impl super::load::Load for ObjectLoad {
    fn endpoint(&self) -> Endpoint {
        self.0.endpoint.clone()
    }

    fn open<'a>(
        &'a self,
        ctx: &'a Ctx,
        addr: SocketAddr,
    ) -> BoxFuture<'a, Result<Box<dyn super::load::Session>, Outcome>> {
        Box::pin(async move {
            let opened = self.0.opener.open(ctx, addr).await?;
            Ok(Box::new(ObjectSession {
                load: self.0.clone(),
                opened,
            }) as Box<dyn super::load::Session>)
        })
    }

    /// Delete every canary no request saw deleted; one already gone counts
    /// as deleted.
    fn finish<'a>(&'a self, ctx: &'a Ctx, addr: SocketAddr) -> BoxFuture<'a, Result<(), Outcome>> {
        let this = &self.0;
        Box::pin(async move {
            let left: Vec<(String, Path)> = this.left.lock().expect("no poisoning").clone();
            if left.is_empty() {
                return Ok(());
            }
            let opened = this.opener.open(ctx, addr).await.map_err(|mut o| {
                o.message = format!(
                    "{} ({} of the load's canaries may be left under `{}`)",
                    o.message,
                    left.len(),
                    this.prefix
                );
                o
            })?;
            let mut tasks = tokio::task::JoinSet::new();
            for (key, path) in left {
                let store = opened.store.clone();
                tasks.spawn(async move {
                    match store.delete(&path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(path),
                        Err(e) => Err((key, e)),
                    }
                });
            }
            let mut failed = Vec::new();
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok(Ok(path)) => this.left.lock().expect("no poisoning").retain(|(_, p)| *p != path),
                    Ok(Err(f)) => failed.push(f),
                    Err(e) => {
                        return Err(this
                            .t
                            .fail(Class::Unknown, format!("deleting the load's canaries stopped: {e}")));
                    }
                }
            }
            let Some((key, e)) = failed.into_iter().next() else {
                return Ok(());
            };
            let n = this.left.lock().expect("no poisoning").len();
            let mut o = this.words(&opened.transport, &opened.credentials).failed(
                &e,
                &format!("delete canary `{key}` in"),
                Some(&key),
            );
            o.message = format!("{} ({n} of the load's canaries left)", o.message);
            Err(o)
        })
    }
}

struct ObjectSession {
    load: Arc<Shared>,
    opened: Opened,
}

impl super::load::Session for ObjectSession {
    fn call(&mut self) -> BoxFuture<'_, Result<(), Outcome>> {
        Box::pin(async move {
            let l = &self.load;
            let o = &self.opened;
            o.transport.forget();
            let words = l.words(&o.transport, &o.credentials);
            match &l.op {
                LoadOp::Get(key) => {
                    let path = Path::from(key.as_str());
                    let got = match o.store.get(&path).await {
                        Ok(r) => r.bytes().await.map(drop),
                        Err(e) => Err(e),
                    };
                    got.map_err(|e| {
                        let doing = format!("read {} `{key}` in", l.dialect.item());
                        words.failed(&e, &doing, Some(key))
                    })
                }
                LoadOp::Canary(_) => {
                    let (key, path) = canary_key(&l.prefix).map_err(|m| l.t.fail(Class::Protocol, m))?;
                    l.left.lock().expect("no poisoning").push((key.clone(), path.clone()));
                    let done = round_trip(o.store.as_ref(), &path, &l.body).await;
                    if done.is_ok() {
                        l.left.lock().expect("no poisoning").retain(|(_, p)| *p != path);
                    }
                    done.map(drop).map_err(|step| words.round_trip_failed(&key, step))
                }
            }
        })
    }

    /// A refusal the store answered (not found, permission, auth) leaves
    /// the client as good as it was; a transport failure does not.
    fn keep_after(&self, o: &Outcome) -> bool {
        matches!(
            o.class,
            Some(Class::NotFound | Class::Permission | Class::Auth | Class::Status | Class::Body)
        )
    }
}

/// An error and its sources, joined: what each layer said.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = s.source();
    }
    out
}

/// `text` with every URL's query string cut (a SAS token travels there).
pub fn no_queries(text: &str) -> String {
    text.split(' ')
        .map(|w| match (w.contains("://"), w.split_once('?')) {
            (true, Some((base, _))) => format!("{base}?…"),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The host and port a URL dials, as `hosts()` reports it.
pub fn endpoint_of(url: &Url) -> super::Endpoint {
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    super::Endpoint::new(host, url.port_or_known_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_are_read_in_xml_and_json() {
        let r = Refusal {
            host: String::new(),
            credential: false,
            status: 403,
            body: "<Error><Code>AccessDenied</Code><Message>Access Denied\nmore</Message></Error>".into(),
        };
        assert_eq!(
            (r.code().as_str(), r.text().as_str()),
            ("AccessDenied", "Access Denied")
        );
        let r = Refusal {
            host: String::new(),
            credential: false,
            status: 400,
            body: r#"{"error":"invalid_grant","error_description":"bad token"}"#.into(),
        };
        assert_eq!((r.code().as_str(), r.text().as_str()), ("invalid_grant", "bad token"));
        assert_eq!(
            no_queries("GET https://a.blob.core.windows.net/c?sig=SECRET&sv=1 failed"),
            "GET https://a.blob.core.windows.net/c?… failed"
        );
    }

    /// The load's stores in these tests: one in-memory store every worker
    /// shares, over a transport nothing is sent through.
    struct Memory(Arc<object_store::memory::InMemory>);

    impl Opener for Memory {
        fn open<'a>(&'a self, ctx: &'a Ctx, addr: SocketAddr) -> BoxFuture<'a, Result<Opened, Outcome>> {
            Box::pin(async move {
                let opts = ClientOpts {
                    follow_redirects: false,
                    ca_file: None,
                    verify: true,
                    client: None,
                };
                Ok(Opened {
                    store: self.0.clone(),
                    transport: Transport::for_load(ctx, &opts, "http://127.0.0.1:9/b", "127.0.0.1", addr)?,
                    credentials: "none".into(),
                })
            })
        }
    }

    struct Plain;

    impl Dialect for Plain {
        fn noun(&self) -> &'static str {
            "bucket"
        }
        fn classify(&self, _: &Refusal) -> Class {
            Class::Status
        }
        fn credential_source(&self, host: &str) -> String {
            host.to_string()
        }
    }

    fn ctx() -> Arc<Ctx> {
        Arc::new(Ctx {
            timeout: Duration::from_secs(5),
            net: super::super::Net::new(),
            guard: None,
            name: "t".into(),
        })
    }

    fn object_load(store: &Arc<object_store::memory::InMemory>, op: LoadOp) -> ObjectLoad {
        ObjectLoad::new(
            Arc::new(Memory(store.clone())),
            Endpoint::new("127.0.0.1", 9),
            Target::parse("S3", "s3://b/app-", &[("s3", 443, true)]).unwrap(),
            &Plain,
            "b".into(),
            "app-".into(),
            op,
            Box::new(|_: &Seen| None),
        )
    }

    async fn keys(store: &object_store::memory::InMemory) -> Vec<String> {
        let listed = store.list_with_delimiter(None).await.unwrap();
        listed.objects.iter().map(|o| o.location.to_string()).collect()
    }

    #[tokio::test]
    async fn a_write_load_counts_its_round_trips_and_leaves_no_canary() {
        let store = Arc::new(object_store::memory::InMemory::new());
        let load = Arc::new(object_load(&store, LoadOp::Canary(4096)));
        let spec = crate::probes::load::LoadSpec::adhoc("40x4").unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let m = crate::probes::load::drive(load.clone(), ctx(), &spec, deadline)
            .await
            .unwrap_or_else(|o| panic!("{}", o.message));
        assert_eq!((m.ok, m.errors.len()), (40, 0), "{:?}", m.errors);
        assert!(m.left.is_none());
        assert_eq!(load.left(), 0);
        assert!(keys(&store).await.is_empty(), "canaries left: {:?}", keys(&store).await);
    }

    #[tokio::test]
    async fn canaries_a_request_did_not_see_deleted_are_deleted_when_the_load_ends() {
        use crate::probes::load::Load;
        let store = Arc::new(object_store::memory::InMemory::new());
        let load = object_load(&store, LoadOp::Canary(16));
        // A request whose time ran out after its put: the canary is there,
        // and the load remembers it.
        let (key, path) = canary_key("app-").unwrap();
        store.put(&path, PutPayload::from_static(b"x")).await.unwrap();
        // And one whose put never arrived: already gone counts as deleted.
        let (gone, gone_path) = canary_key("app-").unwrap();
        load.0.left.lock().unwrap().extend([(key, path), (gone, gone_path)]);
        let addr = SocketAddr::from(([127, 0, 0, 1], 9));
        load.finish(&ctx(), addr)
            .await
            .unwrap_or_else(|o| panic!("{}", o.message));
        assert_eq!(load.left(), 0);
        assert!(keys(&store).await.is_empty());
    }

    #[tokio::test]
    async fn a_get_load_of_a_missing_object_counts_every_request_as_not_found() {
        let store = Arc::new(object_store::memory::InMemory::new());
        let ok = Arc::new(object_load(&store, LoadOp::Get("app-health/ping.txt".into())));
        store
            .put(&Path::from("app-health/ping.txt"), PutPayload::from_static(b"pong"))
            .await
            .unwrap();
        let spec = crate::probes::load::LoadSpec::adhoc("20x2").unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let m = crate::probes::load::drive(ok, ctx(), &spec, deadline).await.unwrap();
        assert_eq!(m.ok, 20);
        let missing = Arc::new(object_load(&store, LoadOp::Get("app-nothing".into())));
        let m = crate::probes::load::drive(missing, ctx(), &spec, deadline)
            .await
            .unwrap();
        assert_eq!(m.ok, 0);
        assert_eq!(m.errors.get("not_found"), Some(&20), "{:?}", m.errors);
        let (_, why) = m.failed.unwrap();
        assert!(why.contains("app-nothing"), "{why}");
    }

    #[test]
    fn a_load_gets_load_object_under_the_prefix_or_writes_canaries_with_write() {
        assert_eq!(
            load_op("app/", Some("health/ping.txt"), None, false).unwrap(),
            Some(LoadOp::Get("app/health/ping.txt".into()))
        );
        // `load_object` wins over `write`: the probe's canary, the load's GET.
        assert_eq!(
            load_op("", Some("ping"), None, true).unwrap(),
            Some(LoadOp::Get("ping".into()))
        );
        assert_eq!(load_op("app-", None, None, true).unwrap(), Some(LoadOp::Canary(1024)));
        assert_eq!(
            load_op("", None, Some("4KiB"), true).unwrap(),
            Some(LoadOp::Canary(4096))
        );
        assert_eq!(load_op("", None, None, false).unwrap(), None);
        for (object, size, write, param, says) in [
            (
                None,
                Some("1MiB"),
                true,
                "load_object_size",
                "not between 1B and 256KiB",
            ),
            (None, Some("0B"), true, "load_object_size", "not between"),
            (None, Some("big"), true, "load_object_size", "not a size"),
            (None, Some("4KiB"), false, "load_object_size", "`write` is not set"),
            (Some("ping"), Some("4KiB"), true, "load_object_size", "writes nothing"),
            (Some("a//b"), None, false, "load_object", "not an object key"),
            (Some("dir/"), None, false, "load_object", "names no object"),
            (Some(""), None, false, "load_object", "names no object"),
        ] {
            let e = load_op("", object, size, write).unwrap_err();
            assert_eq!(e.param, param, "{object:?} {size:?}: {}", e.message);
            assert!(e.message.contains(says), "{}", e.message);
        }
    }

    #[test]
    fn a_load_on_an_object_store_needs_load_object_or_write() {
        let t = |text: &str| toml::from_str::<toml::Table>(text).unwrap();
        let why = load_refusal("s3", &t("")).unwrap();
        assert!(
            why.contains("`load_object = ") && why.contains("`write = true`"),
            "{why}"
        );
        assert!(load_refusal("gcs", &t("write = false")).is_some());
        assert!(load_refusal("azblob", &t("write = true")).is_none());
        assert!(load_refusal("s3", &t("load_object = \"ping\"")).is_none());
        assert!(load_refusal("http", &t("")).is_none());
    }
}
