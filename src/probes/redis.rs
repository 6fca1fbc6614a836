//! `redis`: AUTH (password or ACL user), SELECT the URL's database, PING;
//! optionally keys exist (EXISTS). Speaks RESP2 itself: five commands do not
//! need a client library, and every reply is classified here. Never writes.
//!
//! Bounds: a reply line is at most 4 KiB and a bulk reply at most 4 KiB
//! (none of these commands asks for one); a connection reads at most
//! 256 KiB in all, TLS handshake included. Goodbye: QUIT, then close, after
//! the verdict and under its own short bound.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};

use super::bounded::{self, number, read_line};
use super::load::{Load, Session};
use super::param::Dur;
use super::service::{self, Ended, Target, TlsOpts};
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};

pub static KIND: Kind = Kind {
    name: "redis",
    doc: "Redis (or Valkey) accepts the credentials, selects the database and answers PING",
    target: "a redis:// or rediss:// (TLS) URL: redis://[user:password@]host[:port][/db]",
    schemes: &["redis", "rediss", "valkey"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Keys that must exist in the selected database.
    #[serde(default)]
    keys: Vec<String>,
    /// Slowest acceptable connect + AUTH + PING, e.g. "50ms".
    max_latency: Option<Dur>,
    /// rediss: PEM file of the CA roots to trust instead of the system's.
    ca_file: Option<String>,
    /// rediss: verify the certificate chain and host name (default true).
    tls_verify: Option<bool>,
    /// rediss: client certificate to present (PEM path, or its text via `${secret:file:...}`).
    cert_file: Option<String>,
    /// rediss: the client certificate's private key (PEM path, or its text via `${secret:file:...}`).
    key_file: Option<String>,
    /// With `[probe.load]`: each request is `GET` of this key instead of `PING`.
    load_key: Option<String>,
}

#[derive(Clone)]
struct Redis {
    load_key: Option<String>,
    t: Target,
    db: u32,
    keys: Vec<String>,
    max_latency: Option<Duration>,
    tls: TlsOpts,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let target = spec.target;
    let d: Params = spec.params()?;
    let t = Target::parse(
        "Redis",
        target,
        &[("redis", 6379, false), ("rediss", 6380, true), ("valkey", 6379, false)],
    )?;
    let path = t.path();
    let db = match path.trim_end_matches('/') {
        "" => t.query("db").map_or(Ok(0), |d| d.parse()),
        p => p.parse(),
    }
    .map_err(|_| {
        ParamError::new(
            "target",
            format!("`{}`: the database is a number, e.g. redis://host:6379/0", t.shown),
        )
    })?;
    Ok(Box::new(Redis {
        load_key: d.load_key,
        db,
        keys: d.keys,
        max_latency: d.max_latency.map(|m| m.0),
        tls: TlsOpts::new(d.ca_file, d.tls_verify, true)
            .with_client(super::certs::ClientCert::from_params(d.cert_file, d.key_file)?),
        t,
    }))
}

impl Probe for Redis {
    fn hosts(&self) -> Vec<Endpoint> {
        vec![self.t.endpoint()]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.t.sessions(ctx, |addr| self.once(ctx, addr)).await })
    }

    fn load(&self) -> Option<std::sync::Arc<dyn Load>> {
        Some(std::sync::Arc::new(RedisLoad(self.clone())))
    }
}

/// What one load connection may read in all (each reply keeps its own bound).
const LOAD_LIMIT: u64 = 1 << 30;

/// A load over one logged-in connection per worker: `PING`, or `GET
/// load_key`, one at a time.
struct RedisLoad(Redis);

impl Load for RedisLoad {
    fn endpoint(&self) -> Endpoint {
        self.0.t.endpoint()
    }

    fn open<'a>(&'a self, ctx: &'a Ctx, addr: SocketAddr) -> BoxFuture<'a, Result<Box<dyn Session>, Outcome>> {
        Box::pin(async move {
            let r = &self.0;
            let mut s = service::open(ctx, &r.t, &r.tls, addr, LOAD_LIMIT)
                .await
                .map_err(|o| r.t.named(o))?;
            let o = r.session(&mut s, addr, Instant::now()).await;
            if o.verdict == super::Verdict::Fail {
                return Err(o);
            }
            let cmd = match &r.load_key {
                Some(k) => command(&["GET", k]),
                None => command(&["PING"]),
            };
            Ok(Box::new(RedisSession {
                r: r.clone(),
                s,
                addr,
                cmd,
            }) as Box<dyn Session>)
        })
    }
}

struct RedisSession {
    r: Redis,
    s: tokio::io::BufReader<Box<dyn service::Io>>,
    addr: SocketAddr,
    cmd: Vec<u8>,
}

impl Session for RedisSession {
    fn call(&mut self) -> BoxFuture<'_, Result<(), Outcome>> {
        Box::pin(async move {
            let what = if self.r.load_key.is_some() { "GET" } else { "PING" };
            match self.r.call(&mut self.s, self.addr, &self.cmd, what).await? {
                Reply::Simple(_) | Reply::Bulk(_) => Ok(()),
                Reply::Error(e) => Err(self.r.refused(&e, what)),
                other => Err(self.r.unexpected(self.addr, what, &other)),
            }
        })
    }
}

/// What one connection may read in all, TLS handshake included.
const LIMIT: u64 = 256 << 10;
/// The longest reply line, and the longest bulk reply.
const LINE: usize = 4 << 10;

/// One RESP2 reply; arrays are not needed by the commands sent here.
#[derive(Debug)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    /// A bulk string's length (`None` for a null bulk).
    Bulk(Option<usize>),
}

impl Redis {
    async fn once(&self, ctx: &Ctx, addr: SocketAddr) -> Ended {
        let start = Instant::now();
        let mut s = match service::open(ctx, &self.t, &self.tls, addr, LIMIT).await {
            Ok(s) => s,
            Err(o) => return (self.t.named(o), None),
        };
        let o = self.session(&mut s, addr, start).await;
        // QUIT is answered with +OK and the server closes its side.
        let goodbye = async move {
            if s.get_mut().write_all(&command(&["QUIT"])).await.is_ok() {
                let _ = read_reply(&mut s).await;
            }
            let _ = s.get_mut().shutdown().await;
        };
        (o, Some(Box::pin(goodbye)))
    }

    async fn session<S>(&self, s: &mut S, addr: SocketAddr, start: Instant) -> Outcome
    where
        S: AsyncBufRead + AsyncWrite + Unpin,
    {
        if let Some(pw) = &self.t.password {
            let auth = if self.t.user.is_empty() {
                command(&["AUTH", pw])
            } else {
                command(&["AUTH", &self.t.user, pw])
            };
            match self.call(s, addr, &auth, "authenticating").await {
                Ok(Reply::Simple(_)) => {}
                Ok(Reply::Error(e)) => return self.refused(&e, "AUTH"),
                Ok(other) => return self.unexpected(addr, "AUTH", &other),
                Err(o) => return o,
            }
        }
        if self.db != 0 {
            let db = self.db.to_string();
            match self
                .call(s, addr, &command(&["SELECT", &db]), "selecting the database")
                .await
            {
                Ok(Reply::Simple(_)) => {}
                Ok(Reply::Error(e)) if e.contains("out of range") || e.contains("invalid DB index") => {
                    return self.t.fail(
                        Class::NotFound,
                        format!("database {db} does not exist: {}", bounded::cut(&e, 200)),
                    );
                }
                Ok(Reply::Error(e)) => return self.refused(&e, "SELECT"),
                Ok(other) => return self.unexpected(addr, "SELECT", &other),
                Err(o) => return o,
            }
        }
        match self.call(s, addr, &command(&["PING"]), "waiting for PONG").await {
            Ok(Reply::Simple(p)) if p == "PONG" => {}
            Ok(Reply::Error(e)) => return self.refused(&e, "PING"),
            Ok(other) => return self.unexpected(addr, "PING", &other),
            Err(o) => return o,
        }
        let latency = start.elapsed();
        for key in &self.keys {
            match self.call(s, addr, &command(&["EXISTS", key]), "checking keys").await {
                Ok(Reply::Int(1..)) => {}
                Ok(Reply::Int(_)) => {
                    return self
                        .t
                        .fail(
                            Class::NotFound,
                            format!("key `{key}` does not exist in database {}", self.db),
                        )
                        .about("keys", key);
                }
                Ok(Reply::Error(e)) => return self.refused(&e, "EXISTS"),
                Ok(other) => return self.unexpected(addr, "EXISTS", &other),
                Err(o) => return o,
            }
        }
        if let Some(o) = service::over_latency(&self.t, "connect, AUTH and PING", latency, self.max_latency) {
            return o;
        }
        let who = if self.t.user.is_empty() {
            String::new()
        } else {
            format!(" as `{}`", self.t.user)
        };
        let mut msg = format!(
            "PONG from {addr} in {}{who}, database {}",
            service::took(start),
            self.db
        );
        if !self.keys.is_empty() {
            msg.push_str(&format!("; {} key(s) exist", self.keys.len()));
        }
        Outcome::pass(msg)
    }

    async fn call<S>(&self, s: &mut S, addr: SocketAddr, cmd: &[u8], doing: &str) -> Result<Reply, Outcome>
    where
        S: AsyncBufRead + AsyncWrite + Unpin,
    {
        s.write_all(cmd)
            .await
            .map_err(|e| service::io_error(&self.t, addr, doing, &e))?;
        s.flush()
            .await
            .map_err(|e| service::io_error(&self.t, addr, doing, &e))?;
        read_reply(s)
            .await
            .map_err(|e| service::io_error(&self.t, addr, doing, &e))
    }

    /// An error reply: the credentials, the ACL or the server's state.
    fn refused(&self, e: &str, cmd: &str) -> Outcome {
        let code = e.split_whitespace().next().unwrap_or_default();
        let class = match code {
            "WRONGPASS" | "NOAUTH" => Class::Auth,
            "ERR" if e.contains("password") || e.contains("AUTH") => Class::Auth,
            "NOPERM" => Class::Permission,
            // LOADING, MASTERDOWN, BUSY: up, but not ready to serve.
            _ => Class::Status,
        };
        self.t.fail(class, format!("{cmd} answered: {}", bounded::cut(e, 200)))
    }

    fn unexpected(&self, addr: SocketAddr, cmd: &str, r: &Reply) -> Outcome {
        let seen = match r {
            Reply::Simple(s) => format!("+{}", bounded::cut(s, 80)),
            Reply::Error(e) => format!("-{}", bounded::cut(e, 80)),
            Reply::Int(i) => format!(":{i}"),
            Reply::Bulk(Some(n)) => format!("a {n}-byte string"),
            Reply::Bulk(None) => "nil".into(),
        };
        self.t.fail(
            Class::Protocol,
            format!("{cmd} on {addr} answered {seen} (is this a Redis port?)"),
        )
    }
}

/// A command as a RESP array of bulk strings.
fn command(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn read_reply<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Reply> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let line = read_line(r, LINE).await?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let seen = || bounded::excerpt(&line, 40);
    Ok(match line.split_first() {
        Some((b'+', rest)) => Reply::Simple(text(rest)),
        Some((b'-', rest)) => Reply::Error(text(rest)),
        Some((b':', rest)) => {
            let n = match rest.split_first() {
                Some((b'-', digits)) => number(digits).and_then(|n| i64::try_from(n).ok()).map(|n| -n),
                _ => number(rest).and_then(|n| i64::try_from(n).ok()),
            };
            Reply::Int(n.ok_or_else(|| bad(format!("not an integer reply: {}", seen())))?)
        }
        Some((b'$', b"-1")) => Reply::Bulk(None),
        Some((b'$', rest)) => {
            let n = number(rest).ok_or_else(|| bad(format!("not a bulk length: {}", seen())))?;
            // The value and its CRLF, read and dropped.
            bounded::read_exact(r, "reply", n + 2, LINE as u64 + 2).await?;
            Reply::Bulk(Some(n as usize))
        }
        _ => return Err(bad(format!("not a RESP reply: {}", seen()))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_resp_arrays() {
        assert_eq!(
            command(&["AUTH", "u", "p"]),
            b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n"
        );
    }

    #[tokio::test]
    async fn replies_parse() {
        let mut r: &[u8] = b"+PONG\r\n-ERR no\r\n:3\r\n:-2\r\n$2\r\nab\r\n$-1\r\nHTTP/1.1 400\r\n";
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Simple(s) if s == "PONG"));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Error(s) if s == "ERR no"));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Int(3)));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Int(-2)));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Bulk(Some(2))));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Bulk(None)));
        assert_eq!(
            read_reply(&mut r).await.unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
    }

    #[tokio::test]
    async fn a_huge_bulk_length_is_refused_before_anything_is_read() {
        let mut r: &[u8] = b"$1094795585\r\nAAAA";
        let e = read_reply(&mut r).await.unwrap_err();
        assert!(e.to_string().contains("1094795587-byte reply"), "{e}");
        let mut r: &[u8] = "+\u{e9}t\u{e9}\r\n".as_bytes();
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Simple(s) if s == "\u{e9}t\u{e9}"));
    }
}
