//! A load worker's own HTTP/1.1 connection, driven inside the worker's
//! task.
//!
//! Through the pooled client every request is checked out of a shared pool
//! and its answer arrives on a connection task that may run on the other
//! thread, so each request costs two cross-thread wake-ups: more CPU than
//! the request itself against a server that answers at once. Here the
//! worker polls its connection and its request together, and a request
//! costs one write and one read. The connection is dialed through the
//! guarded network like every other, and `https://` is verified as the
//! probe's own request is (its CA, `tls_verify`, client certificate); a
//! redirect, when followed, goes through the pooled client, which applies
//! isolation to where it leads.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use url::Url;

use super::load::Session;
use super::net::{ClientOpts, io_outcome};
use super::service::{Io, TlsOpts};
use super::{BoxFuture, Class, Ctx, Outcome};

/// Bodies are read up to this size: for a probe's body expectations, and
/// by a load so its connection can carry the next request.
pub(super) const BODY_LIMIT: usize = 1 << 20;

/// What a session needs of the load, owned.
#[derive(Clone)]
pub(super) struct HttpLoadRef {
    pub(super) url: Url,
    pub(super) method: reqwest::Method,
    pub(super) headers: reqwest::header::HeaderMap,
    pub(super) body: Option<String>,
    pub(super) status: Vec<(u16, u16)>,
    pub(super) id_header: Option<reqwest::header::HeaderName>,
    pub(super) seq: Arc<AtomicU64>,
}

/// The accepted statuses, as the probe's messages name them.
pub(super) fn status_text(s: &[(u16, u16)]) -> String {
    s.iter()
        .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// What the HTTP engine's own error says about `addr`, when it says more
/// than its I/O error would.
pub(super) fn hyper_outcome(addr: SocketAddr, tls: bool, h: &hyper::Error) -> Option<Outcome> {
    // The engine's own words: its size check is public to servers only.
    if h.is_parse() && h.to_string().contains("too large") {
        return Some(Outcome::fail(
            Class::Protocol,
            format!("{addr} sent response headers larger than the HTTP engine's bound (100 headers, about 408 KiB)"),
        ));
    }
    if h.is_parse() || h.is_parse_status() {
        let hint = if tls { "" } else { "; if it speaks TLS, use https://" };
        return Some(Outcome::fail(
            Class::Protocol,
            format!("{addr} did not answer in HTTP ({h}): is this an HTTP port{hint}?"),
        ));
    }
    if h.is_incomplete_message() {
        return Some(Outcome::fail(
            Class::Refused,
            format!("{addr} closed the connection before a complete answer"),
        ));
    }
    None
}

/// A request's fixed part for `url`: method, origin-form path and query,
/// the given headers, then `Host`, `User-Agent` and `Accept` where the
/// headers do not set them (a `Host` header of the probe's own wins, as it
/// does through the pooled client).
pub(super) fn request_head(
    url: &Url,
    method: &http::Method,
    headers: &http::HeaderMap,
    addr: SocketAddr,
) -> Result<http::request::Parts, Outcome> {
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path = format!("{path}?{q}");
    }
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => addr.to_string(),
    };
    let built = |e: http::Error| Outcome::fail(Class::Unknown, format!("cannot build the request: {e}"));
    let mut builder = http::Request::builder().method(method.clone()).uri(path.as_str());
    if let Some(h) = builder.headers_mut() {
        h.clone_from(headers);
        let host = http::HeaderValue::from_str(&host).map_err(|e| built(e.into()))?;
        h.entry(http::header::HOST).or_insert(host);
        h.entry(http::header::USER_AGENT)
            .or_insert(http::HeaderValue::from_static(concat!(
                "envgate/",
                env!("CARGO_PKG_VERSION")
            )));
        h.entry(http::header::ACCEPT)
            .or_insert(http::HeaderValue::from_static("*/*"));
    }
    Ok(builder.body(()).map_err(built)?.into_parts().0)
}

/// How an `https://` connection of the probe's is verified: the CA file,
/// `tls_verify` and client certificate its pooled client uses too.
pub(super) fn tls_opts(opts: &ClientOpts) -> TlsOpts {
    TlsOpts {
        ca_file: opts.ca_file.clone(),
        verify: opts.verify,
        client: opts.client.clone(),
    }
}

/// A single request's answer, as a probe judges it.
pub(super) struct Answer {
    pub(super) head: http::response::Parts,
    /// From the dial to the response head.
    pub(super) latency: Duration,
    /// The certificate the server presented (DER), over TLS.
    pub(super) cert: Option<Vec<u8>>,
    pub(super) body: Body,
}

pub(super) enum Body {
    /// The head did not ask for it.
    NotRead,
    /// At most [`BODY_LIMIT`] bytes of it.
    Read(Vec<u8>),
    /// It did not arrive within the time left.
    Late,
}

/// The read buffer's size for a single request: a health answer fits in
/// one read, and a thousand probes in flight hold a thousand of these.
/// Larger heads and bodies are read in more steps, within the engine's
/// own bound on the head.
const SINGLE_READ: usize = 1024;

/// One request over a connection of its own, dialed through the guarded
/// network and polled in the calling task (no connection task, no pool):
/// what a single probe of a thousand in flight holds is this request's
/// state and two small buffers. `read_body` sees the head and the time it
/// took, and says how long the body may take, if it is wanted at all.
pub(super) async fn single(
    ctx: &Ctx,
    addr: SocketAddr,
    url: &Url,
    tls: Option<&TlsOpts>,
    req: http::Request<Full<Bytes>>,
    read_body: impl FnOnce(&http::response::Parts, Duration) -> Option<Duration>,
) -> Result<Answer, Outcome> {
    let start = Instant::now();
    let stream = ctx.connect(addr).await?;
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let (io, cert): (Box<dyn Io>, _) = match tls {
        Some(t) => {
            // Boxed: a plain http:// request holds no room for a handshake.
            Box::pin(super::service::tls_with_peer(ctx, t, host, addr, stream)).await?
        }
        None => (Box::new(stream), None),
    };
    let error = |e: &hyper::Error| hyper_error(addr, host, tls.is_some(), e);
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .read_buf_exact_size(Some(SINGLE_READ))
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| error(&e))?;
    let exchange = async {
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let latency = start.elapsed();
        let (head, mut incoming) = resp.into_parts();
        let body = match read_body(&head, latency) {
            None => Body::NotRead,
            Some(left) => match tokio::time::timeout(left, collect(&mut incoming)).await {
                Ok(b) => Body::Read(b?),
                Err(_) => Body::Late,
            },
        };
        Ok::<_, hyper::Error>((head, latency, body))
    };
    let mut exchange = std::pin::pin!(exchange);
    let mut conn = std::pin::pin!(conn);
    let (head, latency, body) = tokio::select! {
        biased;
        r = &mut exchange => r,
        ended = &mut conn => match ended {
            // A server that closes after its answer has handed it over first.
            Ok(()) => exchange.await,
            Err(e) => Err(e),
        },
    }
    .map_err(|e| error(&e))?;
    Ok(Answer {
        head,
        latency,
        cert,
        body,
    })
}

/// A body, up to [`BODY_LIMIT`] bytes of it.
async fn collect(body: &mut hyper::body::Incoming) -> Result<Vec<u8>, hyper::Error> {
    let mut out = Vec::new();
    while let Some(f) = body.frame().await {
        if let Some(d) = f?.data_ref() {
            out.extend_from_slice(d);
            if out.len() >= BODY_LIMIT {
                out.truncate(BODY_LIMIT);
                break;
            }
        }
    }
    Ok(out)
}

/// A TLS failure anywhere in `e`'s chain (inside I/O errors too): the
/// handshake's, or an alert the server sent once it had seen the client's
/// certificate (or that none came). `None` when TLS is not to blame.
pub(super) fn tls_outcome(addr: SocketAddr, host: &str, e: &(dyn std::error::Error + 'static)) -> Option<Outcome> {
    let t = find_rustls(e)?;
    if let rustls::Error::InvalidMessage(m) = t {
        return Some(Outcome::fail(
            Class::Protocol,
            format!(
                "handshake with {addr} failed: the server answered with something that is not TLS ({m:?}): is this an HTTPS port?"
            ),
        ));
    }
    Some(Outcome::fail(
        Class::Tls,
        format!("handshake with {addr} failed: {}", super::certs::explain(t, host)),
    ))
}

/// A rustls error anywhere in the chain, including inside `io::Error`s.
fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(inner) = c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
            && let Some(t) = find_rustls(inner)
        {
            return Some(t);
        }
        cur = c.source();
    }
    None
}

type Conn = Connection<TokioIo<Box<dyn Io>>, Full<Bytes>>;

/// An open connection: where requests go in, and the connection itself,
/// polled with each request.
struct Open {
    sender: SendRequest<Full<Bytes>>,
    conn: Pin<Box<Conn>>,
}

pub(super) struct DirectSession {
    load: HttpLoadRef,
    ctx: Ctx,
    addr: SocketAddr,
    /// `None` after an answer left the connection unusable: the next
    /// request dials again.
    open: Option<Open>,
    /// The request's fixed part: method, path and query, headers
    /// (`Host` and `User-Agent` included).
    head: http::request::Parts,
    body: Bytes,
    /// A redirect answered and followed: from then on through the pooled
    /// client, which follows it (and applies isolation to where it leads).
    pooled: Box<dyn Session + Send + Sync>,
    follow_redirects: bool,
    /// `https://`: how the connection is verified.
    tls: Option<TlsOpts>,
    redirected: bool,
    last: u64,
}

impl DirectSession {
    pub(super) async fn open(
        load: HttpLoadRef,
        ctx: &Ctx,
        addr: SocketAddr,
        pooled: Box<dyn Session + Send + Sync>,
        opts: &ClientOpts,
    ) -> Result<DirectSession, Outcome> {
        let head = request_head(&load.url, &load.method, &load.headers, addr)?;
        let body = Bytes::from(load.body.clone().unwrap_or_default());
        let https = load.url.scheme() == "https";
        let mut s = DirectSession {
            load,
            ctx: Ctx {
                timeout: ctx.timeout,
                net: ctx.net.clone(),
                guard: ctx.guard.clone(),
                name: ctx.name.clone(),
            },
            addr,
            open: None,
            head,
            body,
            pooled,
            follow_redirects: opts.follow_redirects,
            tls: https.then(|| tls_opts(opts)),
            redirected: false,
            last: 0,
        };
        s.open = Some(Self::dial(ctx, s.tls.as_ref(), &s.load.url, addr).await?);
        Ok(s)
    }

    /// A new connection (borrowing only what every thread may share, so the
    /// session itself need not be).
    async fn dial(ctx: &Ctx, tls: Option<&TlsOpts>, url: &Url, addr: SocketAddr) -> Result<Open, Outcome> {
        let stream = ctx.connect(addr).await?;
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let io: Box<dyn Io> = match tls {
            Some(tls) => super::service::tls(ctx, tls, host, addr, stream).await?,
            None => Box::new(stream),
        };
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| hyper_error(addr, host, tls.is_some(), &e))?;
        Ok(Open {
            sender,
            conn: Box::pin(conn),
        })
    }

    fn error(&self, e: &hyper::Error) -> Outcome {
        let host = self.load.url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        hyper_error(self.addr, host, self.tls.is_some(), e)
    }

    /// One request on the open connection: its status, and whether the
    /// connection can carry the next one.
    async fn exchange(&mut self, open: &mut Open) -> Result<(u16, bool), Outcome> {
        let mut req = http::Request::from_parts(self.head.clone(), Full::new(self.body.clone()));
        if let Some(h) = &self.load.id_header {
            self.last = self.load.seq.fetch_add(1, Ordering::Relaxed) + 1;
            let id = self.ctx.net.request_id(&self.ctx.name, self.last);
            if let Ok(v) = http::HeaderValue::from_str(&id) {
                req.headers_mut().insert(h.clone(), v);
            }
        }
        let Open { sender, conn } = open;
        let request = async {
            sender.ready().await?;
            let resp = sender.send_request(req).await?;
            let code = resp.status().as_u16();
            // An answer that ends its connection: the next request dials again.
            let keep_alive = match resp.headers().get(http::header::CONNECTION) {
                Some(v) if v.as_bytes().eq_ignore_ascii_case(b"close") => false,
                Some(v) if v.as_bytes().eq_ignore_ascii_case(b"keep-alive") => true,
                _ => resp.version() != http::Version::HTTP_10,
            };
            let mut body = resp.into_body();
            let mut read = 0usize;
            while read < BODY_LIMIT {
                match body.frame().await {
                    Some(Ok(f)) => read += f.data_ref().map_or(0, Bytes::len),
                    Some(Err(e)) => return Err(e),
                    None => return Ok((code, keep_alive)),
                }
            }
            // More than the bound: the rest is not read, and the connection
            // is not used again.
            Ok((code, false))
        };
        tokio::pin!(request);
        tokio::select! {
            biased;
            r = &mut request => r.map_err(|e| self.error(&e)),
            ended = conn.as_mut() => match ended {
                // A server that closes the connection after its answer
                // (`Connection: close`) has handed the answer over first;
                // one that closed it before gets hyper's error.
                Ok(()) => request.await.map_err(|e| self.error(&e)),
                Err(e) => Err(self.error(&e)),
            },
        }
    }

    /// The open connection, unless the server has closed it since the last
    /// answer (an idle timeout): then a new one.
    async fn connection(&mut self) -> Result<Open, Outcome> {
        if let Some(mut open) = self.open.take() {
            let idle =
                std::future::poll_fn(|cx| std::task::Poll::Ready(open.conn.as_mut().poll(cx).is_pending())).await;
            if idle {
                return Ok(open);
            }
        }
        Self::dial(&self.ctx, self.tls.as_ref(), &self.load.url, self.addr).await
    }
}

impl Session for DirectSession {
    fn call(&mut self) -> BoxFuture<'_, Result<(), Outcome>> {
        Box::pin(async move {
            if self.redirected {
                return self.pooled.call().await;
            }
            let mut open = self.connection().await?;
            let (code, reusable) = self.exchange(&mut open).await?;
            if reusable {
                self.open = Some(open);
            }
            if self.follow_redirects && (300..400).contains(&code) {
                self.redirected = true;
                return self.pooled.call().await;
            }
            if !self.load.status.iter().any(|(a, b)| (*a..=*b).contains(&code)) {
                return Err(Outcome::fail(
                    Class::Status,
                    format!(
                        "expected {}, got {code} from {}",
                        status_text(&self.load.status),
                        self.addr
                    ),
                ));
            }
            Ok(())
        })
    }

    fn last_id(&self) -> Option<String> {
        if self.redirected {
            return self.pooled.last_id();
        }
        (self.last > 0).then(|| self.ctx.net.request_id(&self.ctx.name, self.last))
    }

    /// An unexpected status leaves the connection as good as it was.
    fn keep_after(&self, failed: &Outcome) -> bool {
        failed.class == Some(Class::Status)
    }
}

/// What a failed exchange with `addr` says: the engine's own words where
/// they say more, else its I/O error.
fn hyper_error(addr: SocketAddr, host: &str, tls: bool, e: &hyper::Error) -> Outcome {
    if let Some(o) = hyper_outcome(addr, tls, e) {
        return o;
    }
    if tls && let Some(o) = tls_outcome(addr, host, e) {
        return o;
    }
    if e.is_canceled() || e.is_closed() {
        return Outcome::fail(
            Class::Refused,
            format!("{addr} closed the connection before a complete answer"),
        );
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io_outcome(addr, super::bounded::innermost(io));
        }
        src = s.source();
    }
    Outcome::fail(Class::Io, format!("{addr}: {e}"))
}
