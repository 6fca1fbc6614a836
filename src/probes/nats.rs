//! `nats`: the server's INFO, CONNECT with the URL's user/password or token,
//! a user nkey or a JWT `.creds` file (signing the server's nonce, see
//! `nats_auth`), a PING/PONG round trip; optionally JetStream is enabled for
//! the account and streams exist (`$JS.API.*.INFO` requests: read-only).
//! TLS after INFO (as the server asks) or before it (`tls_first`), with a
//! client certificate when `cert_file` is set. A target may list several
//! servers (`nats://a:4222,nats://b:4222`): each is probed.
//!
//! Speaks the NATS text protocol itself rather than through async-nats: that
//! client resolves names and opens sockets itself (no way to dial through
//! the isolation guard), and reads a server line into an unbounded buffer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::bounded::{self, Limited, Meter, number, read_line, word};
use super::nats_auth::Identity;
use super::param::Dur;
use super::service::{self, Ended, Io, Target, TlsOpts};
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};

pub static KIND: Kind = Kind {
    name: "nats",
    doc: "a NATS server accepts the credentials and answers a PING; optionally JetStream and its streams",
    target: "a nats:// or tls:// URL, or several separated by commas: nats://[user:password@ | token@]host[:port][,nats://host2:port]",
    schemes: &["nats"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// JetStream must be enabled for this account.
    jetstream: Option<bool>,
    /// JetStream streams that must exist (implies jetstream).
    #[serde(default)]
    streams: Vec<String>,
    /// Slowest acceptable connect + authenticate + PING round trip, e.g. "50ms".
    max_latency: Option<Dur>,
    /// TLS: PEM file of the CA roots to trust instead of the system's.
    ca_file: Option<String>,
    /// TLS: verify the certificate chain and host name (default true).
    tls_verify: Option<bool>,
    /// TLS: client certificate to present (PEM path, or its text via `${secret:file:...}`).
    cert_file: Option<String>,
    /// TLS: the client certificate's private key (PEM path, or its text via `${secret:file:...}`).
    key_file: Option<String>,
    /// TLS before the server's INFO (a server with `handshake_first`); implies TLS.
    tls_first: Option<bool>,
    /// A user nkey seed (`SU...`): a file's path, or the seed via `${secret:file:...}`; signs the server's nonce.
    nkey_file: Option<String>,
    /// A JWT `.creds` file (user JWT and seed): its path, or its text via `${secret:file:...}`.
    creds_file: Option<String>,
}

struct Nats {
    /// Every server the target lists, in order.
    servers: Vec<Target>,
    jetstream: bool,
    streams: Vec<String>,
    max_latency: Option<Duration>,
    tls: TlsOpts,
    tls_first: bool,
    identity: Option<Identity>,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let target = spec.target;
    let d: Params = spec.params()?;
    let servers = Target::parse_list("NATS", target, SCHEMES)?;
    if let Some(s) = d
        .streams
        .iter()
        .find(|s| s.is_empty() || s.contains(['.', '*', '>', ' ', '\t']))
    {
        return Err(ParamError::new(
            "streams",
            format!("`{s}` is not a stream name (no dots, wildcards or spaces)"),
        ));
    }
    Ok(Box::new(Nats {
        jetstream: d.jetstream.unwrap_or(false) || !d.streams.is_empty(),
        streams: d.streams,
        max_latency: d.max_latency.map(|m| m.0),
        tls: TlsOpts::new(d.ca_file, d.tls_verify, true)
            .with_client(super::certs::ClientCert::from_params(d.cert_file, d.key_file)?),
        tls_first: d.tls_first.unwrap_or(false),
        identity: Identity::from_params(d.nkey_file, d.creds_file)?,
        servers,
    }))
}

const SCHEMES: &[(&str, u16, bool)] = &[("nats", 4222, false), ("tls", 4222, true)];

impl Probe for Nats {
    fn hosts(&self) -> Vec<Endpoint> {
        self.servers.iter().map(Target::endpoint).collect()
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(Target::each_server(ctx, &self.servers, "servers", |t, addr| {
            self.once(ctx, t, addr)
        }))
    }
}

/// What one connection may read in all, TLS handshake included.
const LIMIT: u64 = 1 << 20;
/// The server's INFO line (cluster URLs make it long), any other line, and
/// one message's payload.
const INFO_LINE: usize = 64 << 10;
const LINE: usize = 4 << 10;
const PAYLOAD: u64 = 256 << 10;

/// What the server sends that a probe waits for.
enum Msg {
    Pong,
    Err(String),
    /// A reply on the probe's inbox: its status header, if any, and payload.
    Reply {
        subject: String,
        status: Option<String>,
        payload: Vec<u8>,
    },
}

static INBOX: AtomicU64 = AtomicU64::new(0);

impl Nats {
    async fn once(&self, ctx: &Ctx, t: &Target, addr: SocketAddr) -> Ended {
        let start = Instant::now();
        let tcp = match ctx.connect(addr).await {
            Ok(s) => Limited::new(s, Meter::new(LIMIT)),
            Err(o) => return (o, None),
        };
        let mut s: BufReader<Box<dyn Io>> = BufReader::new(Box::new(tcp));
        // TLS first: before the server says anything.
        if self.tls_first {
            let tcp = s.into_inner();
            s = match service::tls(ctx, &self.tls, &t.host, addr, tcp).await {
                Ok(tls) => BufReader::new(tls),
                Err(o) => return (t.named(o), None),
            };
        }
        let line = match read_line(&mut s, INFO_LINE).await {
            Ok(l) => l,
            Err(e) => return (self.io_error(t, addr, "waiting for INFO", &e), None),
        };
        let info = match word(&line) {
            (op, json) if op.eq_ignore_ascii_case(b"INFO") => serde_json::from_slice::<Json>(json).ok(),
            _ => None,
        };
        let Some(info) = info.filter(Json::is_object) else {
            return (t.garbage(addr, "waiting for INFO", &line), None);
        };
        // Otherwise TLS starts after INFO, when either side asks for it.
        if !self.tls_first && (t.tls || info["tls_required"].as_bool() == Some(true)) {
            let tcp = s.into_inner();
            s = match service::tls(ctx, &self.tls, &t.host, addr, tcp).await {
                Ok(tls) => BufReader::new(tls),
                Err(o) => return (t.named(o), None),
            };
        }
        let o = self.session(&mut s, t, addr, start, &info).await;
        let goodbye = async move {
            let _ = s.get_mut().shutdown().await;
        };
        (o, Some(Box::pin(goodbye)))
    }

    async fn session<S>(&self, s: &mut S, t: &Target, addr: SocketAddr, start: Instant, info: &Json) -> Outcome
    where
        S: AsyncBufRead + AsyncWrite + Unpin,
    {
        let mut connect = json!({
            "verbose": false, "pedantic": false, "lang": "rust", "name": "envgate",
            "version": env!("CARGO_PKG_VERSION"), "protocol": 1, "headers": true, "no_responders": true,
        });
        match (&t.password, t.user.is_empty()) {
            (Some(p), _) => {
                connect["user"] = json!(t.user);
                connect["pass"] = json!(p);
            }
            (None, false) => connect["auth_token"] = json!(t.user),
            (None, true) => {}
        }
        if let Some(id) = &self.identity
            && let Err(o) = id.sign_into(&mut connect, info["nonce"].as_str())
        {
            return t.named(o);
        }
        let hello = format!("CONNECT {connect}\r\nPING\r\n");
        if let Err(e) = write(s, hello.as_bytes()).await {
            return self.io_error(t, addr, "sending CONNECT", &e);
        }
        match self.next(s, t, addr, "waiting for PONG").await {
            Ok(Msg::Pong) => {}
            Ok(Msg::Err(e)) => return refused(t, &e),
            Ok(Msg::Reply { .. }) => {
                return t.fail(Class::Protocol, format!("{addr} sent a message before PONG"));
            }
            Err(o) => return o,
        }
        let latency = start.elapsed();
        let version = bounded::cut(info["version"].as_str().unwrap_or("?"), 40);
        let mut msg = format!(
            "NATS {version} on {addr}: connected and PONG in {}",
            service::took(start)
        );
        if self.jetstream {
            let inbox = format!(
                "_INBOX.envgate.{}.{}",
                std::process::id(),
                INBOX.fetch_add(1, Ordering::Relaxed)
            );
            let mut reqs = vec![("$JS.API.INFO".to_string(), "JetStream".to_string())];
            reqs.extend(
                self.streams
                    .iter()
                    .map(|st| (format!("$JS.API.STREAM.INFO.{st}"), format!("stream `{st}`"))),
            );
            // The names that exist, asked at once, for a did-you-mean
            // should a stream be missing (the first 1,024 names).
            if !self.streams.is_empty() {
                reqs.push(("$JS.API.STREAM.NAMES".to_string(), "stream names".to_string()));
            }
            let mut out = format!("SUB {inbox}.* 1\r\n");
            for (i, (subject, _)) in reqs.iter().enumerate() {
                out.push_str(&format!("PUB {subject} {inbox}.{i} 0\r\n\r\n"));
            }
            if let Err(e) = write(s, out.as_bytes()).await {
                return self.io_error(t, addr, "asking JetStream", &e);
            }
            let mut answers: Vec<Option<(Option<String>, Vec<u8>)>> = vec![None; reqs.len()];
            while answers.iter().any(Option::is_none) {
                match self.next(s, t, addr, "waiting for JetStream").await {
                    Ok(Msg::Reply {
                        subject,
                        status,
                        payload,
                    }) => {
                        let i = subject.rsplit('.').next().and_then(|i| i.parse::<usize>().ok());
                        if let Some(slot) = i.and_then(|i| answers.get_mut(i)) {
                            *slot = Some((status, payload));
                        }
                    }
                    Ok(Msg::Err(e)) => return refused(t, &e),
                    Ok(Msg::Pong) => {}
                    Err(o) => return o,
                }
            }
            let names: Vec<String> = match answers.last() {
                Some(Some((_, payload))) if !self.streams.is_empty() => serde_json::from_slice::<Json>(payload)
                    .ok()
                    .and_then(|b| b["streams"].as_array().cloned())
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|n| n.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            };
            let checked = reqs.len() - usize::from(!self.streams.is_empty());
            for (i, ((_, what), answer)) in reqs.iter().zip(answers).take(checked).enumerate() {
                let (status, payload) = answer.unwrap_or_default();
                if status.as_deref().is_some_and(|st| st.starts_with("503")) {
                    return t.fail(
                        Class::NotFound,
                        "JetStream is not enabled on this server (no responders)",
                    );
                }
                let body: Json = serde_json::from_slice(&payload).unwrap_or(Json::Null);
                if let Some(err) = body.get("error") {
                    let code = err["code"].as_u64().unwrap_or(0);
                    let text = bounded::cut(err["description"].as_str().unwrap_or("error"), 200);
                    let class = match code {
                        404 => Class::NotFound,
                        401 | 403 => Class::Permission,
                        503 if what == "JetStream" => Class::NotFound,
                        _ => Class::Status,
                    };
                    // Requests after the first are the streams, in order.
                    let stream = i.checked_sub(1).and_then(|i| self.streams.get(i));
                    let hint = stream
                        .filter(|_| class == Class::NotFound)
                        .and_then(|st| crate::config::suggest::did_you_mean(st, names.iter().map(String::as_str)))
                        .map(|n| format!(" (did you mean `{n}`?)"))
                        .unwrap_or_default();
                    let o = t.fail(class, format!("{what}: {text} (code {code}){hint}"));
                    return match stream {
                        Some(st) => o.about("streams", st),
                        None => o,
                    };
                }
            }
            msg.push_str("; JetStream enabled");
            if !self.streams.is_empty() {
                msg.push_str(&format!(", {} stream(s) exist", self.streams.len()));
            }
        }
        if let Some(o) = service::over_latency(t, "connect, authenticate and PING", latency, self.max_latency) {
            return o;
        }
        Outcome::pass(msg)
    }

    /// The next message the probe cares about; server PINGs are answered.
    async fn next<S>(&self, s: &mut S, t: &Target, addr: SocketAddr, doing: &str) -> Result<Msg, Outcome>
    where
        S: AsyncBufRead + AsyncWrite + Unpin,
    {
        let err = |e: std::io::Error| self.io_error(t, addr, doing, &e);
        loop {
            let line = read_line(s, LINE).await.map_err(err)?;
            let (op, rest) = word(&line);
            let args: Vec<&[u8]> = rest.split(u8::is_ascii_whitespace).filter(|a| !a.is_empty()).collect();
            let is = |name: &[u8]| op.eq_ignore_ascii_case(name);
            if is(b"PONG") {
                return Ok(Msg::Pong);
            } else if is(b"PING") {
                write(s, b"PONG\r\n").await.map_err(err)?;
            } else if is(b"+OK") || is(b"INFO") || op.is_empty() {
            } else if is(b"-ERR") {
                let text = String::from_utf8_lossy(rest);
                return Ok(Msg::Err(bounded::cut(text.trim().trim_matches('\''), 200)));
            } else if is(b"MSG") && (3..=4).contains(&args.len()) {
                let n = number(args[args.len() - 1]).ok_or_else(|| t.garbage(addr, doing, &line))?;
                let payload = read_payload(s, n).await.map_err(err)?;
                return Ok(Msg::Reply {
                    subject: String::from_utf8_lossy(args[0]).into_owned(),
                    status: None,
                    payload,
                });
            } else if is(b"HMSG") && (4..=5).contains(&args.len()) {
                let sizes = (number(args[args.len() - 2]), number(args[args.len() - 1]));
                let (Some(hdr), Some(total)) = sizes else {
                    return Err(t.garbage(addr, doing, &line));
                };
                if hdr > total {
                    return Err(t.garbage(addr, doing, &line));
                }
                let mut all = read_payload(s, total).await.map_err(err)?;
                let payload = all.split_off(hdr as usize);
                // "NATS/1.0 503" or "NATS/1.0 404 No Messages": the status.
                let first = all.split(|b| *b == b'\n').next().unwrap_or_default();
                let status = first
                    .strip_prefix(b"NATS/1.0")
                    .map(|r| String::from_utf8_lossy(r).trim().to_string())
                    .filter(|r| !r.is_empty());
                return Ok(Msg::Reply {
                    subject: String::from_utf8_lossy(args[0]).into_owned(),
                    status,
                    payload,
                });
            } else {
                return Err(t.garbage(addr, doing, &line));
            }
        }
    }
}

impl Nats {
    /// An I/O error in the exchange; a TLS alert knows whether a client
    /// certificate was there to present.
    fn io_error(&self, t: &Target, addr: SocketAddr, doing: &str, e: &std::io::Error) -> Outcome {
        service::io_error_presenting(t, addr, doing, e, Some(self.tls.client.is_some()))
    }
}

fn refused(t: &Target, e: &str) -> Outcome {
    let lower = e.to_ascii_lowercase();
    let class = if lower.contains("authorization") || lower.contains("authentication") || lower.contains("user") {
        Class::Auth
    } else if lower.contains("permission") {
        Class::Permission
    } else if lower.contains("maximum") {
        Class::Capacity
    } else {
        Class::Status
    };
    t.fail(class, format!("the server answered: {e}"))
}

async fn write<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

/// `n` bytes of payload and the `\r\n` after them, `n` within the bound.
async fn read_payload<S: AsyncBufRead + Unpin>(s: &mut S, n: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = bounded::read_exact(s, "message", n + 2, PAYLOAD + 2).await?;
    buf.truncate(n as usize);
    Ok(buf)
}
