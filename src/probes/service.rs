//! What the service probes (postgres, mysql, redis, amqp, nats, mqtt, s3)
//! share: the target URL with its credentials split out and its password kept
//! out of every message, TLS over an already connected socket, and the common
//! parameters. A service probe never writes unless it says `write = true`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader};
use url::Url;

use super::net::{AcceptAny, io_outcome};
use super::{Class, Ctx, Endpoint, Outcome, ParamError, Verdict};
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
        Ok(Target {
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
}

pub fn scrub(s: &str, password: Option<&str>) -> String {
    let s = redact_url_passwords(s);
    match password {
        Some(p) if p.chars().count() >= 3 => s.replace(p, MASK),
        _ => s,
    }
}

/// TLS settings shared by the service kinds: `ca_file` and `tls_verify`.
#[derive(Debug, Clone)]
pub struct TlsOpts {
    pub ca_file: Option<String>,
    pub verify: bool,
}

impl TlsOpts {
    /// `ca_file` and `tls_verify` as written; verification defaults on when
    /// the kind says so or a CA is given.
    pub fn new(ca_file: Option<String>, tls_verify: Option<bool>, verify_by_default: bool) -> TlsOpts {
        TlsOpts {
            verify: tls_verify.unwrap_or(verify_by_default || ca_file.is_some()),
            ca_file,
        }
    }

    /// A rustls client configuration: run-time I/O (reads `ca_file`).
    pub fn config(&self, ctx: &Ctx) -> Result<rustls::ClientConfig, String> {
        let v: Arc<dyn ServerCertVerifier> = if self.verify {
            ctx.net.verifier(self.ca_file.as_deref())?
        } else {
            Arc::new(AcceptAny)
        };
        Ok(ctx.net.tls_config(v))
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
    let config = opts.config(ctx).map_err(|e| Outcome::fail(Class::Tls, e))?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| Outcome::fail(Class::Tls, format!("`{host}` is not a valid TLS server name")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match connector.connect(name, s).await {
        Ok(t) => Ok(Box::new(t)),
        Err(e) => Err(match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(t) => Outcome::fail(
                Class::Tls,
                format!("handshake with {addr} failed: {}", super::tls::explain(t, host)),
            ),
            None => Outcome::fail(
                Class::Tls,
                format!(
                    "handshake with {addr} failed: {} (is this a TLS port?)",
                    super::net::plain(&e.to_string())
                ),
            ),
        }),
    }
}

/// Dial `addr` and, for TLS targets, handshake: the stream a line or frame
/// protocol speaks over, buffered.
pub async fn open(
    ctx: &Ctx,
    t: &Target,
    tls_opts: &TlsOpts,
    addr: SocketAddr,
) -> Result<BufReader<Box<dyn Io>>, Outcome> {
    let tcp = ctx.connect(addr).await?;
    let s: Box<dyn Io> = if t.tls {
        tls(ctx, tls_opts, &t.host, addr, tcp).await?
    } else {
        Box::new(tcp)
    };
    Ok(BufReader::new(s))
}

/// One `\n`-terminated line, at most `max` bytes, without its line end.
/// End of stream is an `UnexpectedEof` error.
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<String> {
    let mut buf = Vec::new();
    (&mut *r).take(max as u64).read_until(b'\n', &mut buf).await?;
    if buf.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    if !buf.ends_with(b"\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a line longer than {max} bytes"),
        ));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// An I/O error during a protocol exchange: a closed connection or garbage
/// is classified, everything else as the connection error it is.
pub fn io_error(t: &Target, addr: SocketAddr, doing: &str, e: &std::io::Error) -> Outcome {
    match e.kind() {
        std::io::ErrorKind::InvalidData => t.fail(
            Class::Protocol,
            format!("{doing} on {addr}: {} (is this a {} port?)", e, t.component),
        ),
        std::io::ErrorKind::UnexpectedEof => {
            t.fail(Class::Refused, format!("{addr} closed the connection while {doing}"))
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
