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
use super::{Class, Ctx, Guard, Outcome};
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
        let client = ctx
            .http_client(opts, host, addr)
            .map_err(|e| Outcome::fail(Class::Tls, e))?;
        Ok(Transport {
            client,
            guard: ctx.guard.clone(),
            timeout: ctx.timeout,
            host: host.trim_matches(['[', ']']).to_ascii_lowercase(),
            store: store.trim_end_matches('/').to_string(),
            addr,
            seen: Arc::default(),
        })
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
            let too_much = too_much(addr);
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

static CANARIES: AtomicU64 = AtomicU64::new(0);

/// How a kind names things in messages and reads its servers' refusals.
pub trait Dialect: Sync {
    /// "bucket" or "container".
    fn noun(&self) -> &'static str;
    /// The class of an error answer from the store (not a credential endpoint).
    fn classify(&self, r: &Refusal) -> Class;
    /// What a credential endpoint's host is, for messages: "STS", "the EC2
    /// instance metadata service", ...
    fn credential_source(&self, host: &str) -> String;
}

/// The probe of one attempt: list, and with `write` the canary.
pub struct Check<'a> {
    pub t: &'a Target,
    pub dialect: &'a dyn Dialect,
    pub store: Arc<dyn Bucket>,
    pub transport: &'a Transport,
    pub container: &'a str,
    pub prefix: &'a str,
    pub write: bool,
    pub max_latency: Option<Duration>,
    /// Where the credentials came from, for the pass message: "access key
    /// `AKIA...`", "profile `ci`", "web identity (AWS_ROLE_ARN)".
    pub credentials: &'a str,
    /// The probe's own explanation of a failure it recognises first (S3's
    /// region mismatch), given the transport's record.
    pub explain: &'a (dyn Fn(&Seen) -> Option<Outcome> + Sync),
}

impl Check<'_> {
    pub async fn run(&self) -> Outcome {
        let addr = self.transport.addr;
        let start = Instant::now();
        let opts = PaginatedListOptions {
            max_keys: Some(1),
            ..Default::default()
        };
        let prefix = (!self.prefix.is_empty()).then_some(self.prefix);
        if let Err(e) = self.store.list_paginated(prefix, opts).await {
            return self.failed(&e, "list");
        }
        let list_took = start.elapsed();
        let what = if self.prefix.is_empty() {
            String::new()
        } else {
            format!(" under `{}`", self.prefix)
        };
        let mut msg = format!(
            "{} `{}` listable{what} on {addr} in {} ({})",
            self.dialect.noun(),
            self.container,
            ms(list_took),
            self.credentials
        );
        if let Some(o) = service::over_latency(self.t, "listing", list_took, self.max_latency) {
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
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let n = CANARIES.fetch_add(1, Ordering::Relaxed);
        let key = format!("{}envgate-canary-{}-{n}-{nanos}", self.prefix, std::process::id());
        let path = Path::parse(&key).map_err(|e| {
            self.t.fail(
                Class::Protocol,
                format!("the canary key `{key}` is not an object path: {e}"),
            )
        })?;
        let body = Bytes::from(format!("envgate canary {nanos}"));
        let start = Instant::now();
        if let Err(e) = self.store.put(&path, PutPayload::from_bytes(body.clone())).await {
            return Err(self.failed(&e, &format!("write canary `{key}` in")));
        }
        let put = start.elapsed();
        let start = Instant::now();
        let got = match self.store.get(&path).await {
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        let get = start.elapsed();
        let deleted = self.store.delete(&path).await;
        let got = got.map_err(|e| self.failed(&e, &format!("read canary `{key}` in")))?;
        if got != body {
            return Err(self.t.fail(
                Class::Body,
                format!("canary `{key}` read back different bytes than were written"),
            ));
        }
        deleted.map_err(|e| self.failed(&e, &format!("delete canary `{key}` in")))?;
        for (what, took) in [("put", put), ("get", get)] {
            if let Some(o) = service::over_latency(self.t, &format!("canary {what}"), took, self.max_latency) {
                return Err(o);
            }
        }
        Ok(format!("; canary put {}, get {}, deleted", ms(put), ms(get)))
    }

    /// A store error as envgate's class and words: what the transport saw,
    /// else the store's refusal, else the store's own error, scrubbed.
    fn failed(&self, e: &object_store::Error, doing: &str) -> Outcome {
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
            let detail = match class {
                Class::NotFound => format!("{noun} `{container}` does not exist ({why})"),
                Class::Auth => format!("the credentials were refused ({}): {why}", self.credentials),
                Class::Permission => format!(
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
}
