//! `http`: one request; expectations on status, body, JSON, headers and
//! latency. An HTTP 500 is a failure as soon as it arrives: no polling.
//!
//! Bounds: response headers are bounded by the HTTP engine (100 headers,
//! about 408 KiB); the body is read only for body expectations, at most
//! 1 MiB of it. A failure after a redirect names the address that failed,
//! not the first one; headers that arrive before a body that stalls are
//! reported as such, not as no answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::Value as Json;
use url::Url;

use bytes::Bytes;
use http_body_util::Full;

use super::net::{CertInfo, ClientOpts, cert_info, io_outcome, refusal, timed_out};
use indexmap::IndexMap;

use super::http_conn::{self, BODY_LIMIT, Body, DirectSession, HttpLoadRef, hyper_outcome, status_text, tls_outcome};
use super::load::{Load, Session};
use super::param::Dur;
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec, Verdict};
use crate::config::units::format_duration;

pub static KIND: Kind = Kind {
    name: "http",
    doc: "an HTTP(S) request answers with the expected status, body, headers and latency",
    target: "an http:// or https:// URL",
    schemes: &["http", "https"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Request method (default GET).
    method: Option<String>,
    /// Request headers, a table.
    headers: Option<IndexMap<String, String>>,
    /// Request body.
    body: Option<String>,
    /// Appended to the target URL, e.g. "/health".
    path: Option<String>,
    /// Expected status: 200, [200, 204], "2xx" or "200-399" (default "200-299").
    status: Option<Json>,
    /// The body contains this text.
    body_contains: Option<String>,
    /// The body matches this regular expression.
    body_regex: Option<String>,
    /// JSON pointers and the values they must equal: { "/status" = "ok" }.
    json: Option<IndexMap<String, Json>>,
    /// Response headers and their values; "*" only requires the header.
    expect_headers: Option<IndexMap<String, String>>,
    /// Slowest acceptable time to the response headers, e.g. "500ms".
    max_latency: Option<Dur>,
    /// Follow redirects (default true).
    follow_redirects: Option<bool>,
    /// PEM file of the CA roots to trust instead of the system's.
    ca_file: Option<String>,
    /// Verify the certificate chain and host name (default true).
    tls_verify: Option<bool>,
    /// https: fail when the certificate expires sooner.
    min_days_left: Option<u32>,
    /// https: client certificate to present (PEM path, or its text via `${secret:file:...}`).
    cert_file: Option<String>,
    /// https: the client certificate's private key (PEM path, or its text via `${secret:file:...}`).
    key_file: Option<String>,
    /// Every request carries `X-Request-Id: envgate-<run>-<probe>-<n>`; a header name sends it under that name, false sends none.
    #[schemars(with = "Option<serde_json::Value>")]
    request_id: Option<Json>,
}

/// A stalled body is reported this long before the attempt's timeout.
const BODY_MARGIN: Duration = Duration::from_millis(20);

struct Http {
    url: Url,
    method: reqwest::Method,
    headers: Vec<(String, String)>,
    body: Option<String>,
    status: Vec<(u16, u16)>,
    body_contains: Option<String>,
    body_regex: Option<Regex>,
    json: Vec<(String, Json)>,
    expect_headers: Vec<(String, String)>,
    max_latency: Option<Duration>,
    min_days_left: Option<u32>,
    opts: ClientOpts,
    /// The request id's header, or none (`request_id = false`).
    id_header: Option<reqwest::header::HeaderName>,
    /// The last request number of this probe in this run (single and load).
    seq: Arc<AtomicU64>,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let d: Params = spec.params()?;
    let target = spec.target;
    let full = match &d.path {
        Some(p) => format!("{}/{}", target.trim_end_matches('/'), p.trim_start_matches('/')),
        None => target.to_string(),
    };
    let url = Url::parse(&full).map_err(|e| ParamError::new("target", format!("`{full}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ParamError::new(
            "target",
            format!("`{full}` is not an http:// or https:// URL"),
        ));
    }
    let method = match &d.method {
        Some(m) => reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| ParamError::new("method", format!("`{m}` is not an HTTP method")))?,
        None => reqwest::Method::GET,
    };
    let status = match &d.status {
        Some(v) => parse_status(v).map_err(|m| ParamError::new("status", m))?,
        None => vec![(200, 299)],
    };
    let body_regex = d
        .body_regex
        .as_deref()
        .map(Regex::new)
        .transpose()
        .map_err(|e| ParamError::new("body_regex", format!("invalid regular expression: {e}")))?;
    let json: Vec<(String, Json)> = d.json.unwrap_or_default().into_iter().collect();
    if let Some((p, _)) = json.iter().find(|(p, _)| !p.is_empty() && !p.starts_with('/')) {
        return Err(ParamError::new(
            "json",
            format!("`{p}` is not a JSON pointer: write \"/{p}\""),
        ));
    }
    let id_header = match &d.request_id {
        None | Some(Json::Bool(true)) => Some(reqwest::header::HeaderName::from_static("x-request-id")),
        Some(Json::Bool(false)) => None,
        Some(Json::String(h)) => Some(
            reqwest::header::HeaderName::from_bytes(h.trim().as_bytes())
                .map_err(|_| ParamError::new("request_id", format!("`{h}` is not a header name")))?,
        ),
        Some(other) => {
            return Err(ParamError::new(
                "request_id",
                format!("`{other}`: write true, false or a header name such as \"X-Correlation-Id\""),
            ));
        }
    };
    Ok(Box::new(Http {
        id_header,
        seq: Arc::new(AtomicU64::new(0)),
        url,
        method,
        headers: d.headers.unwrap_or_default().into_iter().collect(),
        body: d.body,
        status,
        body_contains: d.body_contains,
        body_regex,
        json,
        expect_headers: d.expect_headers.unwrap_or_default().into_iter().collect(),
        max_latency: d.max_latency.map(|m| m.0),
        min_days_left: d.min_days_left,
        opts: ClientOpts {
            follow_redirects: d.follow_redirects.unwrap_or(true),
            ca_file: d.ca_file,
            verify: d.tls_verify.unwrap_or(true),
            client: super::certs::ClientCert::from_params(d.cert_file, d.key_file)?,
        },
    }))
}

/// `200`, `"2xx"`, `"200-299"`, or a list of these.
fn parse_status(v: &Json) -> Result<Vec<(u16, u16)>, String> {
    let one = |v: &Json| -> Result<(u16, u16), String> {
        let bad = || format!("`{v}` is not a status: write 200, \"2xx\" or \"200-299\"");
        let ok = |n: u64| (100..=599).contains(&n).then_some(n as u16).ok_or_else(bad);
        match v {
            Json::Number(n) => {
                let n = ok(n.as_u64().ok_or_else(bad)?)?;
                Ok((n, n))
            }
            Json::String(s) => {
                let s = s.trim();
                if let Some(c) = s.strip_suffix("xx").and_then(|c| c.parse::<u64>().ok()) {
                    let lo = ok(c * 100)?;
                    Ok((lo, lo + 99))
                } else if let Some((a, b)) = s.split_once('-') {
                    let a = ok(a.trim().parse().map_err(|_| bad())?)?;
                    let b = ok(b.trim().parse().map_err(|_| bad())?)?;
                    if a > b { Err(bad()) } else { Ok((a, b)) }
                } else {
                    let n = ok(s.parse().map_err(|_| bad())?)?;
                    Ok((n, n))
                }
            }
            _ => Err(bad()),
        }
    };
    match v {
        Json::Array(a) if !a.is_empty() => a.iter().map(one).collect(),
        Json::Array(_) => Err("an empty list accepts no status".into()),
        v => Ok(vec![one(v)?]),
    }
}

impl Probe for Http {
    /// The URL's host as the URL parser (the same one the client uses)
    /// reads it; redirect hops are checked as they come (the client's
    /// redirect policy and resolver apply the guard).
    /// A `Host` header counts too: a shared proxy routes by it, so a
    /// request to a staging address can still reach the host it names.
    fn hosts(&self) -> Vec<Endpoint> {
        let host = self.url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let mut out = vec![Endpoint::new(host, self.url.port_or_known_default())];
        for (_, v) in self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("host")) {
            if let Some(h) = crate::net::address::hosts_at(v, true).into_iter().next() {
                out.push(Endpoint::new(h.name, h.port));
            }
        }
        out
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let host = self.url.host_str().unwrap_or_default();
            let port = self.url.port_or_known_default().unwrap_or(80);
            let mut o = ctx.each_addr(host, port, |addr| self.once(ctx, host, addr)).await;
            // A failure names the request it is about, path and query included
            // (a target plus `path = "/health"` is not what the user typed).
            // An isolation refusal keeps its own first word: nothing was requested.
            if o.verdict != Verdict::Pass && o.class != Some(Class::Isolation) {
                let url = crate::config::secrets::redact_url_passwords(self.url.as_str());
                if !o.message.contains(&url) {
                    // After the failure's class (`status: `), which readers parse.
                    let (class, rest) = match o.message.split_once(": ") {
                        Some((c, r)) if !c.is_empty() && c.chars().all(|x| x.is_ascii_lowercase() || x == '-') => {
                            (format!("{c}: "), r.to_string())
                        }
                        _ => (String::new(), o.message.clone()),
                    };
                    o.message = format!("{class}{} {url}: {rest}", self.method);
                }
            }
            o
        })
    }

    fn load(&self) -> Option<Arc<dyn Load>> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &self.headers {
            if let (Ok(k), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(k.as_bytes()),
                reqwest::header::HeaderValue::from_str(v),
            ) {
                headers.append(k, v);
            }
        }
        Some(Arc::new(HttpLoad {
            url: self.url.clone(),
            method: self.method.clone(),
            headers,
            body: self.body.clone(),
            status: self.status.clone(),
            opts: self.opts.clone(),
            id_header: self.id_header.clone(),
            seq: self.seq.clone(),
        }))
    }
}

/// The probe's request, sent again and again by every worker over its own
/// kept-alive connection (see `http_conn.rs`). Only the status is
/// checked: the body expectations were checked by the probe itself, before
/// the load; the body is read (at most 1 MiB) so the connection can carry
/// the next request.
struct HttpLoad {
    url: Url,
    method: reqwest::Method,
    headers: reqwest::header::HeaderMap,
    body: Option<String>,
    status: Vec<(u16, u16)>,
    opts: ClientOpts,
    id_header: Option<reqwest::header::HeaderName>,
    seq: Arc<AtomicU64>,
}

impl Load for HttpLoad {
    fn endpoint(&self) -> Endpoint {
        let host = self.url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        Endpoint::new(host, self.url.port_or_known_default())
    }

    fn open<'a>(&'a self, ctx: &'a Ctx, addr: SocketAddr) -> BoxFuture<'a, Result<Box<dyn Session>, Outcome>> {
        Box::pin(async move {
            let host = self.url.host_str().unwrap_or_default().to_string();
            let client = ctx
                .pooled_http_client(&self.opts, &host, addr)
                .map_err(|e| Outcome::fail(Class::Tls, e))?;
            let load = HttpLoadRef {
                url: self.url.clone(),
                method: self.method.clone(),
                headers: self.headers.clone(),
                body: self.body.clone(),
                status: self.status.clone(),
                id_header: self.id_header.clone(),
                seq: self.seq.clone(),
            };
            let pooled = HttpSession {
                load: load.clone(),
                client,
                net: ctx.net.clone(),
                name: ctx.name.clone(),
                host,
                addr,
                timeout: ctx.timeout,
                last: 0,
            };
            let direct = DirectSession::open(load, ctx, addr, Box::new(pooled), &self.opts).await?;
            Ok(Box::new(direct) as Box<dyn Session>)
        })
    }
}

/// A worker's requests through the pooled client.
struct HttpSession {
    load: HttpLoadRef,
    client: reqwest::Client,
    net: Arc<super::Net>,
    name: Arc<str>,
    host: String,
    addr: SocketAddr,
    timeout: Duration,
    last: u64,
}

impl Session for HttpSession {
    fn call(&mut self) -> BoxFuture<'_, Result<(), Outcome>> {
        Box::pin(async move {
            let l = &self.load;
            let mut req = self
                .client
                .request(l.method.clone(), l.url.clone())
                .headers(l.headers.clone());
            if let Some(h) = &l.id_header {
                self.last = l.seq.fetch_add(1, Ordering::Relaxed) + 1;
                req = req.header(h.clone(), self.net.request_id(&self.name, self.last));
            }
            if let Some(b) = &l.body {
                req = req.body(b.clone());
            }
            let mut resp = req
                .send()
                .await
                .map_err(|e| request_error(self.addr, &self.host, &l.url, self.timeout, &e))?;
            let code = resp.status().as_u16();
            let mut read = 0usize;
            while read < BODY_LIMIT {
                match resp.chunk().await {
                    Ok(Some(c)) => read += c.len(),
                    Ok(None) => break,
                    Err(e) => return Err(request_error(self.addr, &self.host, &l.url, self.timeout, &e)),
                }
            }
            if !l.status.iter().any(|(a, b)| (*a..=*b).contains(&code)) {
                return Err(Outcome::fail(
                    Class::Status,
                    format!("expected {}, got {code} from {}", status_text(&l.status), self.addr),
                ));
            }
            Ok(())
        })
    }

    fn last_id(&self) -> Option<String> {
        (self.last > 0).then(|| self.net.request_id(&self.name, self.last))
    }
}

impl Http {
    async fn once(&self, ctx: &Ctx, host: &str, addr: SocketAddr) -> Outcome {
        let id = self.id_header.as_ref().map(|h| {
            let v = ctx
                .net
                .request_id(&ctx.name, self.seq.fetch_add(1, Ordering::Relaxed) + 1);
            (h, v)
        });
        let mut o = match self.direct(ctx, host, addr, id.as_ref()).await {
            Some(o) => o,
            None => self.pooled(ctx, host, addr, id.as_ref()).await,
        };
        if o.verdict != super::Verdict::Pass {
            o.request_id = id.map(|(_, v)| v);
        }
        o
    }

    /// The request on a connection of its own ([`http_conn::single`]):
    /// `None` when the answer is a redirect to follow, which goes through
    /// the client instead. A method that may change something is sent
    /// there from the start when redirects are followed, so it is never
    /// sent twice.
    async fn direct(
        &self,
        ctx: &Ctx,
        host: &str,
        addr: SocketAddr,
        id: Option<&(&reqwest::header::HeaderName, String)>,
    ) -> Option<Outcome> {
        let follow = self.opts.follow_redirects;
        if follow && !matches!(self.method, reqwest::Method::GET | reqwest::Method::HEAD) {
            return None;
        }
        let mut headers = http::HeaderMap::new();
        for (k, v) in &self.headers {
            match (
                http::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                (Ok(k), Ok(v)) => {
                    headers.append(k, v);
                }
                // Said as the client says it.
                _ => return None,
            }
        }
        if let Some((h, v)) = id
            && let Ok(v) = http::HeaderValue::from_str(v)
        {
            headers.insert((*h).clone(), v);
        }
        let head = match http_conn::request_head(&self.url, &self.method, &headers, addr) {
            Ok(h) => h,
            Err(o) => return Some(o),
        };
        let body = Bytes::from(self.body.clone().unwrap_or_default());
        let req = http::Request::from_parts(head, Full::new(body));
        let tls = (self.url.scheme() == "https").then(|| http_conn::tls_opts(&self.opts));
        let read_body = |head: &http::response::Parts, latency: Duration| {
            let redirect = follow && head.status.is_redirection();
            let judged = self.judge_head(head.status, &head.headers, addr, "").is_some();
            (!redirect && !judged && self.wants_body()).then(|| ctx.timeout.saturating_sub(latency + BODY_MARGIN))
        };
        let answer = match http_conn::single(ctx, addr, &self.url, tls.as_ref(), req, read_body).await {
            Ok(a) => a,
            Err(o) => return Some(o),
        };
        if follow && answer.head.status.is_redirection() {
            return None;
        }
        let (seen, took) = seen_took(answer.head.status, answer.latency);
        if let Some(o) = self.judge_head(answer.head.status, &answer.head.headers, addr, &took) {
            return Some(o);
        }
        let cert = answer.cert.as_deref().and_then(cert_info);
        let text = match &answer.body {
            Body::NotRead => None,
            Body::Read(b) => Some(String::from_utf8_lossy(b)),
            Body::Late => return Some(self.late_body(&seen, addr, &took, ctx.timeout)),
        };
        Some(self.judge_rest(host, &seen, addr, &took, answer.latency, cert, text.as_deref()))
    }

    /// The request through the client, which follows redirects.
    async fn pooled(
        &self,
        ctx: &Ctx,
        host: &str,
        addr: SocketAddr,
        id: Option<&(&reqwest::header::HeaderName, String)>,
    ) -> Outcome {
        let client = match ctx.http_client(&self.opts, host, addr) {
            Ok(c) => c,
            Err(e) => return Outcome::fail(Class::Tls, e),
        };
        let mut req = client.request(self.method.clone(), self.url.clone());
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(b) = &self.body {
            req = req.body(b.clone());
        }
        if let Some((h, v)) = id {
            req = req.header((*h).clone(), v.as_str());
        }
        self.exchange(ctx, host, addr, req).await
    }

    async fn exchange(&self, ctx: &Ctx, host: &str, addr: SocketAddr, req: reqwest::RequestBuilder) -> Outcome {
        let start = Instant::now();
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return request_error(addr, host, &self.url, ctx.timeout, &e),
        };
        let latency = start.elapsed();
        // After redirects, the address that answered last.
        let addr = resp.remote_addr().unwrap_or(addr);
        let (seen, took) = seen_took(resp.status(), latency);
        if let Some(o) = self.judge_head(resp.status(), resp.headers(), addr, &took) {
            return o;
        }
        let cert = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|t| t.peer_certificate())
            .and_then(cert_info);
        let mut text = None;
        if self.wants_body() {
            // Ends just before the attempt's own timeout, so a body that
            // stalls after the headers is reported as such.
            let left = ctx.timeout.saturating_sub(start.elapsed() + BODY_MARGIN);
            let bytes = match tokio::time::timeout(left, read_body(resp)).await {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => return request_error(addr, host, &self.url, ctx.timeout, &e),
                Err(_) => return self.late_body(&seen, addr, &took, ctx.timeout),
            };
            text = Some(String::from_utf8_lossy(&bytes).into_owned());
        }
        self.judge_rest(host, &seen, addr, &took, latency, cert, text.as_deref())
    }

    fn wants_body(&self) -> bool {
        self.body_contains.is_some() || self.body_regex.is_some() || !self.json.is_empty()
    }

    /// The status and the expected headers.
    fn judge_head(
        &self,
        code: reqwest::StatusCode,
        headers: &http::HeaderMap,
        addr: SocketAddr,
        took: &str,
    ) -> Option<Outcome> {
        if !self.status.iter().any(|(a, b)| (*a..=*b).contains(&code.as_u16())) {
            let (seen, _) = seen_took(code, Duration::ZERO);
            return Some(Outcome::fail(
                Class::Status,
                format!(
                    "expected {}, got {seen} from {addr} in {took}",
                    status_text(&self.status)
                ),
            ));
        }
        for (name, want) in &self.expect_headers {
            let got = headers
                .get(name.as_str())
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            match got {
                None => {
                    return Some(Outcome::fail(
                        Class::Body,
                        format!("expected header `{name}`, the response has none"),
                    ));
                }
                Some(g) if want != "*" && g != *want => {
                    return Some(Outcome::fail(
                        Class::Body,
                        format!("expected header `{name}: {want}`, got `{name}: {g}`"),
                    ));
                }
                Some(_) => {}
            }
        }
        None
    }

    fn late_body(&self, seen: &str, addr: SocketAddr, took: &str, timeout: Duration) -> Outcome {
        Outcome::fail(
            Class::Timeout,
            format!(
                "{seen} from {addr} in {took}, but the body did not arrive within {}",
                format_duration(timeout)
            ),
        )
    }

    /// The body (when read), the latency and the certificate, after the head passed.
    #[allow(clippy::too_many_arguments)]
    fn judge_rest(
        &self,
        host: &str,
        seen: &str,
        addr: SocketAddr,
        took: &str,
        latency: Duration,
        cert: Option<CertInfo>,
        text: Option<&str>,
    ) -> Outcome {
        if let Some(o) = text.and_then(|t| self.check_body(t)) {
            return o;
        }
        if let Some(max) = self.max_latency
            && latency > max
        {
            return Outcome::fail(
                Class::Latency,
                format!("expected an answer within {}, {addr} took {took}", format_duration(max)),
            );
        }
        let mut msg = format!("{seen} in {took}");
        if let Some(c) = &cert {
            msg.push_str(&format!(
                "; certificate expires {} ({} days left)",
                c.not_after, c.days_left
            ));
            if let Some(min) = self.min_days_left
                && c.days_left < i64::from(min)
            {
                return Outcome::fail(
                    Class::Tls,
                    format!(
                        "certificate of {host} expires {} ({} days left), expected at least {min} days",
                        c.not_after, c.days_left
                    ),
                )
                .with_metrics(vec![c.metric()]);
            }
        }
        Outcome::pass(msg).with_metrics(cert.iter().map(|c| c.metric()).collect())
    }

    fn check_body(&self, text: &str) -> Option<Outcome> {
        let excerpt = || {
            let t: String = text.chars().take(80).collect();
            if text.chars().count() > 80 {
                format!("{t:?}…")
            } else {
                format!("{t:?}")
            }
        };
        if let Some(s) = &self.body_contains
            && !text.contains(s.as_str())
        {
            return Some(Outcome::fail(
                Class::Body,
                format!("expected the body to contain {s:?}, got {}", excerpt()),
            ));
        }
        if let Some(r) = &self.body_regex
            && !r.is_match(text)
        {
            return Some(Outcome::fail(
                Class::Body,
                format!("expected the body to match /{r}/, got {}", excerpt()),
            ));
        }
        if !self.json.is_empty() {
            let doc: Json = match serde_json::from_str(text) {
                Ok(d) => d,
                Err(e) => {
                    return Some(Outcome::fail(
                        Class::Body,
                        format!("expected a JSON body, got {} ({e})", excerpt()),
                    ));
                }
            };
            for (ptr, want) in &self.json {
                match doc.pointer(ptr) {
                    Some(got) if got == want => {}
                    Some(got) => {
                        return Some(Outcome::fail(
                            Class::Body,
                            format!("expected {ptr} = {want}, got {got}"),
                        ));
                    }
                    None => {
                        return Some(Outcome::fail(
                            Class::Body,
                            format!("expected {ptr} = {want}, the body has no {ptr}"),
                        ));
                    }
                }
            }
        }
        None
    }
}

/// "200 OK" and "12ms", as messages name an answer and its time.
fn seen_took(code: reqwest::StatusCode, latency: Duration) -> (String, String) {
    let seen = format!("{} {}", code.as_u16(), code.canonical_reason().unwrap_or(""));
    let took = format_duration(Duration::from_millis(latency.as_millis() as u64));
    (seen.trim_end().to_string(), took)
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        out.extend_from_slice(&chunk);
        if out.len() >= BODY_LIMIT {
            out.truncate(BODY_LIMIT);
            break;
        }
    }
    Ok(out)
}

/// A failed request as a class: refused, timeout, tls, protocol, dns or
/// io, naming the address it happened at (after redirects, the last one).
pub(super) fn request_error(
    addr: SocketAddr,
    host: &str,
    first: &Url,
    timeout: Duration,
    e: &reqwest::Error,
) -> Outcome {
    // A redirect into another environment, refused before it was sent.
    if let Some(o) = refusal(e) {
        return o;
    }
    let mut o = classify(addr, host, timeout, e);
    if let Some(at) = e
        .url()
        .filter(|u| (u.host_str(), u.port_or_known_default()) != (first.host_str(), first.port_or_known_default()))
    {
        let there = format!(
            "{}:{} (redirected from {addr})",
            at.host_str().unwrap_or_default(),
            at.port_or_known_default().unwrap_or_default()
        );
        o.message = if o.message.contains(&addr.to_string()) {
            o.message.replace(&addr.to_string(), &there)
        } else {
            format!("{}, at {there}", o.message)
        };
    }
    o
}

fn classify(addr: SocketAddr, host: &str, timeout: Duration, e: &reqwest::Error) -> Outcome {
    if e.is_timeout() {
        return timed_out(addr, timeout);
    }
    let tls = e.url().is_some_and(|u| u.scheme() == "https");
    if let Some(o) = tls_outcome(addr, host, e) {
        return o;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(o) = s
            .downcast_ref::<hyper::Error>()
            .and_then(|h| hyper_outcome(addr, tls, h))
        {
            return o;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if tls && e.is_connect() {
                return super::service::handshake_failed(addr, host, io);
            }
            return io_outcome(addr, super::bounded::innermost(io));
        }
        src = s.source();
    }
    if e.is_redirect() {
        return Outcome::fail(Class::Status, format!("too many redirects from {addr}"));
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    Outcome::fail(Class::Io, format!("{addr}: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_forms() {
        assert_eq!(parse_status(&serde_json::json!(204)), Ok(vec![(204, 204)]));
        assert_eq!(parse_status(&serde_json::json!("2xx")), Ok(vec![(200, 299)]));
        assert_eq!(
            parse_status(&serde_json::json!(["200-204", 301])),
            Ok(vec![(200, 204), (301, 301)])
        );
        assert!(parse_status(&serde_json::json!("abc")).is_err());
        assert!(parse_status(&serde_json::json!(700)).is_err());
    }
}
