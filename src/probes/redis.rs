//! `redis`: AUTH (password or ACL user), SELECT the URL's database, PING;
//! optionally keys exist (EXISTS). Speaks RESP2 itself: five commands do not
//! need a client library, and every reply is classified here. Never writes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::param::Dur;
use super::service::{self, Target, TlsOpts};
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
}

struct Redis {
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
        db,
        keys: d.keys,
        max_latency: d.max_latency.map(|m| m.0),
        tls: TlsOpts::new(d.ca_file, d.tls_verify, true),
        t,
    }))
}

impl Probe for Redis {
    fn hosts(&self) -> Vec<Endpoint> {
        vec![self.t.endpoint()]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.t.each_addr(ctx, |addr| self.once(ctx, addr)).await })
    }
}

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
    async fn once(&self, ctx: &Ctx, addr: SocketAddr) -> Outcome {
        let start = Instant::now();
        let mut s = match service::open(ctx, &self.t, &self.tls, addr).await {
            Ok(s) => s,
            Err(o) => return self.t.named(o),
        };
        let o = self.session(&mut s, addr, start).await;
        // QUIT is answered with +OK and the server closes its side.
        if s.get_mut().write_all(&command(&["QUIT"])).await.is_ok() {
            let _ = read_reply(&mut s).await;
        }
        let _ = s.get_mut().shutdown().await;
        o
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
                    return self
                        .t
                        .fail(Class::NotFound, format!("database {db} does not exist: {e}"));
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
                    return self.t.fail(
                        Class::NotFound,
                        format!("key `{key}` does not exist in database {}", self.db),
                    );
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
        self.t.fail(class, format!("{cmd} answered: {e}"))
    }

    fn unexpected(&self, addr: SocketAddr, cmd: &str, r: &Reply) -> Outcome {
        let seen = match r {
            Reply::Simple(s) => format!("+{s}"),
            Reply::Error(e) => format!("-{e}"),
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
    let line = service::read_line(r, 64 * 1024).await?;
    let (kind, rest) = line.split_at(line.chars().next().map_or(0, char::len_utf8));
    Ok(match kind {
        "+" => Reply::Simple(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(
            rest.parse()
                .map_err(|_| bad(format!("not an integer reply: {line:?}")))?,
        ),
        "$" => {
            let n: i64 = rest.parse().map_err(|_| bad(format!("not a bulk length: {line:?}")))?;
            if n < 0 {
                Reply::Bulk(None)
            } else if n > 16 << 20 {
                return Err(bad(format!("a {n}-byte reply")));
            } else {
                let mut buf = vec![0; n as usize + 2];
                r.read_exact(&mut buf).await?;
                Reply::Bulk(Some(n as usize))
            }
        }
        _ => {
            return Err(bad(format!(
                "not a RESP reply: {:?}",
                line.chars().take(40).collect::<String>()
            )));
        }
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
        let mut r: &[u8] = b"+PONG\r\n-ERR no\r\n:3\r\n$2\r\nab\r\n$-1\r\nHTTP/1.1 400\r\n";
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Simple(s) if s == "PONG"));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Error(s) if s == "ERR no"));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Int(3)));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Bulk(Some(2))));
        assert!(matches!(read_reply(&mut r).await.unwrap(), Reply::Bulk(None)));
        assert_eq!(
            read_reply(&mut r).await.unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
    }
}
