//! What the service probes (postgres, mysql, redis, amqp, nats, mqtt, s3)
//! share: the target URL with its credentials split out and its password kept
//! out of every message, TLS over an already connected socket, a byte budget
//! per connection, the polite goodbye after the verdict, and the common
//! parameters. A service probe never writes unless it says `write = true`.
//!
//! The verdict is decided by the check alone: the goodbye (QUIT, a close
//! frame, DISCONNECT, Terminate) runs after it, under its own short bound
//! ([`GOODBYE`], and never past the attempt's timeout), and whatever
//! happens to it changes nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use url::Url;

use super::bounded::{Limited, Meter, TooMuch, excerpt};
use super::certs::ClientCert;
use super::net::{AcceptAny, io_outcome};
use super::{BoxFuture, Class, Ctx, Endpoint, Outcome, ParamError, Verdict};
use crate::config::secrets::{MASK, redact_url_passwords};
use crate::config::units::format_duration;

/// A byte stream a protocol speaks over: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A service's URL: where to dial, who to be, and how to show it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The component's name in messages: "PostgreSQL", "Redis", ...
    pub component: &'static str,
    pub url: Url,
    pub host: String,
    pub port: u16,
    /// Percent-decoded; empty when the URL names none.
    pub user: String,
    pub password: Option<String>,
    /// The URL with its password masked: the only form that is ever printed.
    pub shown: String,
    /// `rediss://`, `amqps://`, `mqtts://`, `tls://`: TLS from the start.
    pub tls: bool,
    /// How a user asks this kind for TLS, for a plain connection that met a
    /// TLS port: "start the URL with rediss://".
    pub tls_hint: String,
}

impl Target {
    /// Parse a URL of one of `schemes` (the first `s`-suffixed or listed in
    /// `tls_schemes` means TLS); the port defaults per scheme.
    pub fn parse(component: &'static str, target: &str, schemes: &[(&str, u16, bool)]) -> Result<Target, ParamError> {
        let shown = redact_url_passwords(target.trim());
        let url = Url::parse(target.trim()).map_err(|e| {
            // An unparseable URL may hide its password from redaction: name
            // only its scheme.
            let scheme = target.trim().split_once("://").map_or("", |(s, _)| s);
            let hint = if target.contains('@') {
                " (percent-encode `/`, `@`, `:` and `#` in user names and passwords)"
            } else {
                ""
            };
            ParamError::new(
                "target",
                format!("the {component} target ({scheme}://…) is not a URL: {e}{hint}"),
            )
        })?;
        let Some(&(_, port, tls)) = schemes.iter().find(|(s, _, _)| *s == url.scheme()) else {
            let names: Vec<_> = schemes.iter().map(|(s, _, _)| format!("{s}://")).collect();
            return Err(ParamError::new(
                "target",
                format!(
                    "`{shown}` is not a {} URL: start it with {}",
                    component,
                    names.join(" or ")
                ),
            ));
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| ParamError::new("target", format!("`{shown}` names no host")))?
            .trim_matches(['[', ']'])
            .to_string();
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let tls_hint = schemes
            .iter()
            .find(|(_, _, tls)| *tls)
            .map_or(String::new(), |(s, _, _)| format!("start the URL with {s}://"));
        Ok(Target {
            tls_hint,
            component,
            host,
            port: url.port().unwrap_or(port),
            user: decode(url.username()),
            password: url.password().map(decode),
            shown,
            tls,
            url,
        })
    }

    /// Several servers in one target, as clients of clustered services
    /// write them: `nats://a:4222,nats://b:4222`, or
    /// `kafka://user:pw@a:9092,b:9092` where a later server without a
    /// scheme takes the first one's, and one without credentials takes the
    /// first's.
    pub fn parse_list(
        component: &'static str,
        target: &str,
        schemes: &[(&str, u16, bool)],
    ) -> Result<Vec<Target>, ParamError> {
        let mut out: Vec<Target> = Vec::new();
        for part in target.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let t = match out.first() {
                None => Target::parse(component, part, schemes)?,
                Some(first) => {
                    let mut url = if part.contains("://") {
                        part.to_string()
                    } else {
                        format!("{}://{part}", first.url.scheme())
                    };
                    if !url.contains('@') && !first.url.username().is_empty() {
                        let (scheme, rest) = url.split_once("://").unwrap_or((first.url.scheme(), &url));
                        let auth = match first.url.password() {
                            Some(p) => format!("{}:{p}", first.url.username()),
                            None => first.url.username().to_string(),
                        };
                        url = format!("{scheme}://{auth}@{rest}");
                    }
                    Target::parse(component, &url, schemes)?
                }
            };
            out.push(t);
        }
        if out.is_empty() {
            return Err(ParamError::new(
                "target",
                format!("the {component} target names no server"),
            ));
        }
        Ok(out)
    }

    /// Where the probe dials: this target's host and port.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(&self.host, self.port)
    }

    /// The URL's path without its leading slash, percent-decoded.
    pub fn path(&self) -> String {
        let p = self.url.path().trim_start_matches('/');
        percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned()
    }

    /// A query parameter of the URL.
    pub fn query(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// `s` with this target's password masked (servers may echo anything).
    pub fn scrub(&self, s: &str) -> String {
        scrub(s, self.password.as_deref())
    }

    /// A failure naming the component and the (redacted) target.
    pub fn fail(&self, class: Class, detail: impl AsRef<str>) -> Outcome {
        Outcome::fail(
            class,
            self.scrub(&format!("{} {}: {}", self.component, self.shown, detail.as_ref())),
        )
    }

    /// Name the component and target in a failure that came from elsewhere
    /// (connection errors, the per-address timeout), and scrub every message.
    pub fn named(&self, mut o: Outcome) -> Outcome {
        if o.verdict != Verdict::Pass && !o.message.contains(&self.scrub(&self.shown)) {
            let prefix = o.class.map(|c| format!("{}: ", c.as_str())).unwrap_or_default();
            let rest = o.message.strip_prefix(&prefix).unwrap_or(&o.message).to_string();
            o.message = format!("{prefix}{} {}: {rest}", self.component, self.shown);
        }
        o.message = self.scrub(&o.message);
        o
    }

    /// Resolve the host and run `attempt` on each address under the
    /// timeout, each admitted by the environment's isolation first.
    pub async fn each_addr<F, Fut>(&self, ctx: &Ctx, attempt: F) -> Outcome
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: std::future::Future<Output = Outcome>,
    {
        self.named(ctx.each_addr(&self.host, self.port, attempt).await)
    }

    /// [`Target::each_addr`] for sessions that end with a goodbye: the
    /// verdicts are combined first, then every goodbye runs at once under
    /// [`GOODBYE`] (and never past the attempt's timeout). A server that
    /// never acknowledges a QUIT cannot turn a pass into a timeout.
    pub async fn sessions<F, Fut>(&self, ctx: &Ctx, attempt: F) -> Outcome
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: std::future::Future<Output = Ended>,
    {
        self.named(self.sessions_at(ctx, &self.host, self.port, attempt).await)
    }

    /// [`Target::sessions`] on one of several hosts the target names (a
    /// multi-host DSN), unnamed: the caller combines the answers.
    pub async fn sessions_at<F, Fut>(&self, ctx: &Ctx, host: &str, port: u16, attempt: F) -> Outcome
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: std::future::Future<Output = Ended>,
    {
        let start = Instant::now();
        let goodbyes = std::sync::Mutex::new(Vec::new());
        let o = ctx
            .each_addr(host, port, |addr| {
                let f = attempt(addr);
                let goodbyes = &goodbyes;
                async move {
                    let (o, bye) = f.await;
                    if let Some(bye) = bye {
                        goodbyes.lock().expect("no poisoning").push(bye);
                    }
                    o
                }
            })
            .await;
        let goodbyes = goodbyes.into_inner().expect("no poisoning");
        let left = ctx.timeout.saturating_sub(start.elapsed()).min(GOODBYE);
        if !goodbyes.is_empty() && !left.is_zero() {
            let _ = tokio::time::timeout(left, super::net::join_all(goodbyes)).await;
        }
        o
    }

    /// [`Target::sessions`] on every server of a clustered service's target
    /// (`nats://a,b`, Kafka's bootstrap servers): all answer, pass; some,
    /// warn naming the ones that did not (`what`: "servers"); none, fail.
    pub async fn each_server<'a, F, Fut>(ctx: &'a Ctx, servers: &'a [Target], what: &str, attempt: F) -> Outcome
    where
        F: Fn(&'a Target, SocketAddr) -> Fut,
        Fut: std::future::Future<Output = Ended>,
    {
        if let [t] = servers {
            return t.sessions(ctx, |addr| attempt(t, addr)).await;
        }
        let attempt = &attempt;
        let tries = servers.iter().map(|t| async move {
            let o = t.sessions(ctx, |addr| attempt(t, addr)).await;
            (format!("{}:{}", t.host, t.port), o)
        });
        super::net::combine(super::net::join_all(tries).await, what)
    }

    /// A reply that is not this protocol: a TLS record (the port speaks
    /// TLS) or whatever it was, quoted.
    pub fn garbage(&self, addr: SocketAddr, doing: &str, seen: &[u8]) -> Outcome {
        match super::bounded::tls_record(seen) {
            Some(tls) => self.fail(Class::Protocol, format!("{doing} on {addr}: {tls}{}", self.use_tls())),
            None => self.fail(
                Class::Protocol,
                format!(
                    "{addr} sent {} while {doing} (is this a {} port?)",
                    excerpt(seen, 40),
                    self.component
                ),
            ),
        }
    }

    /// ": start the URL with rediss://", or nothing.
    fn use_tls(&self) -> String {
        if self.tls || self.tls_hint.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.tls_hint)
        }
    }
}

/// A polite goodbye to a server, run after the verdict; it owns the stream.
pub type Goodbye = BoxFuture<'static, ()>;

/// What a session ends with: the verdict, and the goodbye still to say.
pub type Ended = (Outcome, Option<Goodbye>);

/// The longest a goodbye may take: long enough for a server on the other
/// side of the world to answer QUIT, short enough not to be noticed.
pub const GOODBYE: Duration = Duration::from_millis(250);

pub fn scrub(s: &str, password: Option<&str>) -> String {
    let s = redact_url_passwords(s);
    match password {
        Some(p) if p.chars().count() >= 3 => s.replace(p, MASK),
        _ => s,
    }
}

/// TLS settings shared by the service kinds: `ca_file`, `tls_verify`, and
/// the client certificate (`cert_file`, `key_file`).
#[derive(Debug, Clone)]
pub struct TlsOpts {
    pub ca_file: Option<String>,
    pub verify: bool,
    pub client: Option<ClientCert>,
}

impl TlsOpts {
    /// `ca_file` and `tls_verify` as written; verification defaults on when
    /// the kind says so or a CA is given.
    pub fn new(ca_file: Option<String>, tls_verify: Option<bool>, verify_by_default: bool) -> TlsOpts {
        TlsOpts {
            verify: tls_verify.unwrap_or(verify_by_default || ca_file.is_some()),
            ca_file,
            client: None,
        }
    }

    /// The same, presenting a client certificate when the server asks.
    pub fn with_client(mut self, client: Option<ClientCert>) -> TlsOpts {
        self.client = client;
        self
    }

    /// A rustls client configuration: run-time I/O (reads `ca_file`).
    pub fn config(&self, ctx: &Ctx) -> Result<rustls::ClientConfig, String> {
        let v: Arc<dyn ServerCertVerifier> = if self.verify {
            ctx.net.verifier(self.ca_file.as_deref())?
        } else {
            Arc::new(AcceptAny)
        };
        ctx.net.tls_config_with(v, self.client.as_ref())
    }
}

/// TLS over a connected stream, verified for `host` per `opts`.
pub async fn tls<S: Io + 'static>(
    ctx: &Ctx,
    opts: &TlsOpts,
    host: &str,
    addr: SocketAddr,
    s: S,
) -> Result<Box<dyn Io>, Outcome> {
    Ok(tls_with_peer(ctx, opts, host, addr, s).await?.0)
}

/// [`tls`], and the certificate the server presented (DER), for a probe
/// that reports its expiry.
pub async fn tls_with_peer<S: Io + 'static>(
    ctx: &Ctx,
    opts: &TlsOpts,
    host: &str,
    addr: SocketAddr,
    s: S,
) -> Result<(Box<dyn Io>, Option<Vec<u8>>), Outcome> {
    let config = opts.config(ctx).map_err(|e| Outcome::fail(Class::Tls, e))?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| Outcome::fail(Class::Tls, format!("`{host}` is not a valid TLS server name")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match connector.connect(name, s).await {
        Ok(t) => {
            let peer = t
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec());
            Ok((Box::new(t), peer))
        }
        Err(e) => Err(handshake_failed(addr, host, &e)),
    }
}

/// A failed TLS handshake, classified: a certificate problem is `tls`; a
/// peer that answers in plain text, or hangs up on the hello (what a
/// plain-text service does), is `protocol`, because the port does not
/// speak TLS; a byte bound is `protocol` too.
pub fn handshake_failed(addr: SocketAddr, host: &str, e: &std::io::Error) -> Outcome {
    use std::io::ErrorKind as K;
    let e = super::bounded::innermost(e);
    let inner = e.get_ref();
    if let Some(t) = inner.and_then(|i| i.downcast_ref::<rustls::Error>()) {
        if let rustls::Error::InvalidMessage(m) = t {
            return Outcome::fail(
                Class::Protocol,
                format!(
                    "handshake with {addr} failed: the server answered with something that is not TLS ({m:?}): is this a TLS port?"
                ),
            );
        }
        return Outcome::fail(
            Class::Tls,
            format!("handshake with {addr} failed: {}", super::certs::explain(t, host)),
        );
    }
    if let Some(t) = inner.and_then(|i| i.downcast_ref::<TooMuch>()) {
        return Outcome::fail(Class::Protocol, format!("handshake with {addr} failed: {t}"));
    }
    match e.kind() {
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Outcome::fail(
            Class::Protocol,
            format!(
                "{addr} closed the connection during the TLS handshake, as a plain-text service does: is this a TLS port?"
            ),
        ),
        K::InvalidData => Outcome::fail(
            Class::Protocol,
            format!(
                "handshake with {addr} failed: {}: is this a TLS port?",
                crate::diagnostic::plain(&e.to_string())
            ),
        ),
        _ => io_outcome(addr, e),
    }
}

/// Dial `addr` and, for TLS targets, handshake: the stream a line or frame
/// protocol speaks over, buffered, reading at most `limit` bytes in all.
pub async fn open(
    ctx: &Ctx,
    t: &Target,
    tls_opts: &TlsOpts,
    addr: SocketAddr,
    limit: u64,
) -> Result<BufReader<Box<dyn Io>>, Outcome> {
    let tcp = Limited::new(ctx.connect(addr).await?, Meter::new(limit));
    let s: Box<dyn Io> = if t.tls {
        tls(ctx, tls_opts, &t.host, addr, tcp).await?
    } else {
        Box::new(tcp)
    };
    Ok(BufReader::new(s))
}

/// An I/O error during a protocol exchange: a closed connection, a bound
/// passed, a TLS answer on a plain connection or garbage is classified;
/// everything else as the connection error it is.
pub fn io_error(t: &Target, addr: SocketAddr, doing: &str, e: &std::io::Error) -> Outcome {
    io_error_presenting(t, addr, doing, e, None)
}

/// [`io_error`] for a caller that knows whether it had a client
/// certificate to present: a TLS 1.3 server that wanted one and got none
/// sends `BadCertificate` after the handshake (Go's servers do).
pub fn io_error_presenting(
    t: &Target,
    addr: SocketAddr,
    doing: &str,
    e: &std::io::Error,
    presented: Option<bool>,
) -> Outcome {
    // A server that judges the client certificate after the handshake (TLS
    // 1.3) says so with an alert on the first read.
    if let Some(tls) = super::bounded::innermost(e)
        .get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
    {
        return match super::certs::client_cert_refused(tls, presented) {
            Some(why) => t.fail(Class::Tls, format!("{doing} on {addr}: {why}")),
            None => t.fail(Class::Tls, format!("{doing} on {addr}: {tls}")),
        };
    }
    match e.kind() {
        std::io::ErrorKind::InvalidData if e.to_string().contains("speaks TLS") => {
            t.fail(Class::Protocol, format!("{doing} on {addr}: {e}{}", t.use_tls()))
        }
        std::io::ErrorKind::InvalidData => t.fail(
            Class::Protocol,
            format!("{doing} on {addr}: {e} (is this a {} port?)", t.component),
        ),
        std::io::ErrorKind::UnexpectedEof => {
            let text = e.to_string();
            let after = text
                .split_once("closed the connection after ")
                .map(|(_, seen)| format!(" after sending {seen}"))
                .unwrap_or_default();
            t.fail(
                Class::Refused,
                format!("{addr} closed the connection while {doing}{after}"),
            )
        }
        _ => t.named(io_outcome(addr, e)),
    }
}

/// Milliseconds since `start`, for messages.
pub fn took(start: Instant) -> String {
    ms(start.elapsed())
}

/// A short latency for messages: `0.4ms`, `12ms`, `1.5s`.
pub fn ms(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.1}ms", d.as_secs_f64() * 1000.0)
    } else {
        format_duration(Duration::from_millis(d.as_millis() as u64))
    }
}

/// A latency failure when `elapsed` is over `max`.
pub fn over_latency(t: &Target, what: &str, elapsed: Duration, max: Option<Duration>) -> Option<Outcome> {
    let max = max?;
    (elapsed > max).then(|| {
        let e = format_duration(Duration::from_millis(elapsed.as_millis() as u64));
        t.fail(
            Class::Latency,
            format!("{what} took {e}, expected at most {}", format_duration(max)),
        )
    })
}

/// `expect` as the text a query's first value must equal.
pub fn expect_text(expect: Option<&serde_json::Value>, query: Option<&str>) -> Result<Option<String>, ParamError> {
    match expect {
        None => Ok(None),
        Some(_) if query.is_none() => Err(ParamError::new(
            "expect",
            "`expect` needs a `query` whose first value it checks",
        )),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(v) => Err(ParamError::new(
            "expect",
            format!("expected a string, number or boolean, got {v}"),
        )),
    }
}

/// Compare a query's first value with `expect`; booleans match `t`/`1`.
pub fn expect_matches(want: &str, got: Option<&str>) -> bool {
    match (want, got) {
        (_, None) => false,
        ("true", Some(g)) => matches!(g, "t" | "true" | "1"),
        ("false", Some(g)) => matches!(g, "f" | "false" | "0"),
        (w, Some(g)) => w == g,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_keep_passwords_out_of_messages() {
        let t = Target::parse(
            "Redis",
            "redis://app:s3cr%40t@db.internal:6390/2",
            &[("redis", 6379, false)],
        )
        .unwrap();
        assert_eq!((t.host.as_str(), t.port, t.user.as_str()), ("db.internal", 6390, "app"));
        assert_eq!(t.password.as_deref(), Some("s3cr@t"));
        assert_eq!(t.path(), "2");
        let o = t.fail(Class::Auth, "server said s3cr@t is wrong");
        assert!(!o.message.contains("s3cr"), "{}", o.message);
        assert!(
            o.message
                .starts_with("auth: Redis redis://app:***@db.internal:6390/2: "),
            "{}",
            o.message
        );
        assert!(Target::parse("Redis", "http://x", &[("redis", 6379, false)]).is_err());
    }

    #[test]
    fn expectations_compare_like_a_person_reads_them() {
        assert!(expect_matches("true", Some("t")));
        assert!(expect_matches("42", Some("42")));
        assert!(!expect_matches("42", Some("41")));
        assert!(!expect_matches("42", None));
    }
}
