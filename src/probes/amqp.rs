//! `amqp`: an AMQP 0-9-1 broker (RabbitMQ) accepts the URL's credentials
//! (SASL PLAIN) or, over TLS, the client certificate (SASL EXTERNAL),
//! opens its vhost and a channel; optionally queues and exchanges exist,
//! checked with passive declares only (never created). The handshake is a
//! handful of frames, spoken here so every refusal is classified.
//!
//! Bounds: a frame is at most 128 KiB (the probe tunes the connection to
//! that frame size, RabbitMQ's default, and refuses a longer length prefix
//! before reading it); a connection reads at most 1 MiB in all, TLS
//! included. Goodbye: Connection.Close and its Close-Ok, after the verdict
//! and under its own short bound.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::bounded;
use super::param::Dur;
use super::service::{self, Ended, Target, TlsOpts};
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};

pub static KIND: Kind = Kind {
    name: "amqp",
    doc: "an AMQP 0-9-1 broker (RabbitMQ) accepts the credentials and opens the vhost and a channel",
    target: "an amqp:// or amqps:// (TLS) URL: amqp://user:password@host[:port]/vhost",
    schemes: &["amqp", "amqps"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Queues that must exist on the vhost (passive declare: never created).
    #[serde(default)]
    queues: Vec<String>,
    /// Exchanges that must exist on the vhost (passive declare: never created).
    #[serde(default)]
    exchanges: Vec<String>,
    /// Slowest acceptable connect + log in + channel open, e.g. "100ms".
    max_latency: Option<Dur>,
    /// amqps: PEM file of the CA roots to trust instead of the system's.
    ca_file: Option<String>,
    /// amqps: verify the certificate chain and host name (default true).
    tls_verify: Option<bool>,
    /// amqps: client certificate to present (PEM path, or its text via `${secret:file:...}`).
    cert_file: Option<String>,
    /// amqps: the client certificate's private key (PEM path, or its text via `${secret:file:...}`).
    key_file: Option<String>,
    /// How to log in: "PLAIN" (the URL's user and password) or "EXTERNAL" (the client certificate names the user); EXTERNAL is the default with a client certificate and no user in the URL.
    sasl_mechanism: Option<String>,
}

struct Amqp {
    t: Target,
    vhost: String,
    queues: Vec<String>,
    exchanges: Vec<String>,
    max_latency: Option<Duration>,
    tls: TlsOpts,
    /// SASL EXTERNAL: the broker takes the user from the client certificate.
    external: bool,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let target = spec.target;
    let d: Params = spec.params()?;
    let mut t = Target::parse("AMQP", target, &[("amqp", 5672, false), ("amqps", 5671, true)])?;
    let client = super::certs::ClientCert::from_params(d.cert_file, d.key_file)?;
    let anonymous = t.user.is_empty() && t.password.is_none();
    let external = match d.sasl_mechanism.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None => client.is_some() && anonymous,
        Some("PLAIN") => false,
        Some("EXTERNAL") => true,
        Some(other) => {
            return Err(ParamError::new(
                "sasl_mechanism",
                format!("`{other}` is not a mechanism envgate speaks to AMQP: PLAIN or EXTERNAL"),
            ));
        }
    };
    if external && (client.is_none() || !t.tls) {
        return Err(ParamError::new(
            "sasl_mechanism",
            "SASL EXTERNAL logs in with a client certificate: use amqps:// and set `cert_file` and `key_file`",
        ));
    }
    // The AMQP URI spec: no user means guest/guest; no vhost means "/".
    if anonymous && !external {
        t.user = "guest".into();
        t.password = Some("guest".into());
    }
    let vhost = match t.path() {
        p if p.is_empty() => "/".to_string(),
        p => p,
    };
    let too_long = |v: &[String]| v.iter().find(|n| n.len() > 255).cloned();
    if let Some(n) = too_long(&d.queues)
        .or(too_long(&d.exchanges))
        .or((vhost.len() > 255).then(|| vhost.clone()))
    {
        return Err(ParamError::new(
            "target",
            format!("`{n}` is longer than AMQP's 255 bytes"),
        ));
    }
    Ok(Box::new(Amqp {
        vhost,
        queues: d.queues,
        exchanges: d.exchanges,
        max_latency: d.max_latency.map(|m| m.0),
        tls: TlsOpts::new(d.ca_file, d.tls_verify, true).with_client(client),
        external,
        t,
    }))
}

impl Probe for Amqp {
    fn hosts(&self) -> Vec<Endpoint> {
        vec![self.t.endpoint()]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.t.sessions(ctx, |addr| self.once(ctx, addr)).await })
    }
}

/// What one connection may read in all, TLS handshake included.
const LIMIT: u64 = 1 << 20;
/// The largest frame: the frame size the probe tunes the connection to.
const FRAME: u32 = 128 << 10;

/// One frame: type, channel, payload (methods start with class and method).
#[derive(Debug)]
struct Frame {
    kind: u8,
    channel: u16,
    payload: Vec<u8>,
}

impl Frame {
    fn method(&self) -> Option<(u16, u16)> {
        (self.kind == 1 && self.payload.len() >= 4).then(|| {
            (
                u16::from_be_bytes([self.payload[0], self.payload[1]]),
                u16::from_be_bytes([self.payload[2], self.payload[3]]),
            )
        })
    }

    /// `Connection.Close` / `Channel.Close` arguments: reply code and text.
    fn close_reason(&self) -> (u16, String) {
        let p = &self.payload;
        let code = p.get(4..6).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        let len = p.get(6).copied().unwrap_or(0) as usize;
        let text = p
            .get(7..7 + len)
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .unwrap_or_default();
        (code, text)
    }
}

const CONNECTION: u16 = 10;
const CHANNEL: u16 = 20;

impl Amqp {
    async fn once(&self, ctx: &Ctx, addr: SocketAddr) -> Ended {
        let start = Instant::now();
        let mut s = match service::open(ctx, &self.t, &self.tls, addr, LIMIT).await {
            Ok(s) => s,
            Err(o) => return (self.t.named(o), None),
        };
        let (o, open) = self.session(&mut s, addr, start).await;
        let goodbye = async move {
            if open {
                // Connection.Close, then wait for Close-Ok: a clean goodbye.
                let close = method(
                    CONNECTION,
                    50,
                    &[&200u16.to_be_bytes()[..], &[0], &[0, 0, 0, 0]].concat(),
                );
                if send(&mut s, 0, &close).await.is_ok() {
                    while let Ok(f) = read_frame(&mut s).await {
                        if f.method() == Some((CONNECTION, 51)) {
                            break;
                        }
                    }
                }
            }
            let _ = s.get_mut().shutdown().await;
        };
        (o, Some(Box::pin(goodbye)))
    }

    /// The checks, and whether the connection is open (needs a Close).
    async fn session<S>(&self, s: &mut S, addr: SocketAddr, start: Instant) -> (Outcome, bool)
    where
        S: AsyncBufRead + AsyncWrite + Unpin,
    {
        let presented = Some(self.tls.client.is_some());
        let io =
            |doing: &str, e: std::io::Error| (service::io_error_presenting(&self.t, addr, doing, &e, presented), false);
        if let Err(e) = write(s, b"AMQP\x00\x00\x09\x01").await {
            if self.refused_certless(&e) {
                return (self.certless(addr), false);
            }
            return io("sending the protocol header", e);
        }
        let start_frame = match read_frame(s).await {
            Ok(f) if f.method() == Some((CONNECTION, 10)) => f,
            Ok(_) => {
                return (
                    self.t.fail(
                        Class::Protocol,
                        format!("{addr} did not start an AMQP 0-9-1 connection"),
                    ),
                    false,
                );
            }
            Err(e) if self.refused_certless(&e) => return (self.certless(addr), false),
            Err(e) => return io("waiting for Connection.Start", e),
        };
        let product = server_product(&start_frame.payload).unwrap_or_else(|| "AMQP broker".into());
        let mechanism: &[u8] = if self.external { b"EXTERNAL" } else { b"PLAIN" };
        let offered = mechanisms(&start_frame.payload).unwrap_or_default();
        if !offered.split(' ').any(|m| m.as_bytes() == mechanism) {
            let hint = if self.external {
                " (RabbitMQ offers EXTERNAL with the rabbitmq_auth_mechanism_ssl plugin and `auth_mechanisms.1 = EXTERNAL`)"
            } else {
                ""
            };
            return (
                self.t.fail(
                    Class::Auth,
                    format!(
                        "{addr} does not offer SASL {}; it offers: {}{hint}",
                        String::from_utf8_lossy(mechanism),
                        bounded::cut(&offered, 100)
                    ),
                ),
                false,
            );
        }
        // Start-Ok: the credentials (none for EXTERNAL: the certificate is
        // them); ask to be told why a login fails.
        let mut caps = Vec::new();
        table_bool(&mut caps, "authentication_failure_close", true);
        let mut props = Vec::new();
        table_str(&mut props, "product", "envgate");
        table_entry(&mut props, "capabilities", b'F', &long_bytes(&caps));
        let password = self.t.password.clone().unwrap_or_default();
        let response = if self.external {
            String::new()
        } else {
            format!("\0{}\0{password}", self.t.user)
        };
        let args = [
            long_bytes(&props),
            short(mechanism),
            long_bytes(response.as_bytes()),
            short(b"en_US"),
        ]
        .concat();
        if let Err(e) = send(s, 0, &method(CONNECTION, 11, &args)).await {
            return io("logging in", e);
        }
        let tune = match self.expect(s, addr, "logging in", (CONNECTION, 30)).await {
            Ok(f) => f,
            Err(o) => return (o, false),
        };
        let channel_max = tune.payload.get(4..6).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        // The broker's frame size, at most the probe's bound (0: no limit).
        let frame_max = tune
            .payload
            .get(6..10)
            .map_or(FRAME, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let frame_max = if frame_max == 0 { FRAME } else { frame_max.min(FRAME) };
        let tune_ok = [
            &channel_max.to_be_bytes()[..],
            &frame_max.to_be_bytes(),
            &0u16.to_be_bytes(),
        ]
        .concat();
        let open = [short(self.vhost.as_bytes()), short(b""), vec![0]].concat();
        if let Err(e) = send_all(
            s,
            &[
                (0, method(CONNECTION, 31, &tune_ok)),
                (0, method(CONNECTION, 40, &open)),
            ],
        )
        .await
        {
            return io("opening the vhost", e);
        }
        if let Err(o) = self.expect(s, addr, "opening the vhost", (CONNECTION, 41)).await {
            return (o, false);
        }
        // The first failed passive declare closes the channel and ends the checks.
        let ch = 1u16;
        if let Err(e) = send(s, ch, &method(CHANNEL, 10, &short(b""))).await {
            return io("opening a channel", e);
        }
        if let Err(o) = self.expect(s, addr, "opening a channel", (CHANNEL, 11)).await {
            return (o, true);
        }
        let latency = start.elapsed();
        let checks = self
            .queues
            .iter()
            .map(|q| ("queue", q, 50u16))
            .chain(self.exchanges.iter().map(|x| ("exchange", x, 40u16)));
        let mut found = Vec::new();
        for (what, name, class) in checks {
            let args = if class == 50 {
                // reserved, queue, passive, no arguments
                [vec![0, 0], short(name.as_bytes()), vec![1], vec![0, 0, 0, 0]].concat()
            } else {
                // reserved, exchange, type (ignored when passive), passive, no arguments
                [
                    vec![0, 0],
                    short(name.as_bytes()),
                    short(b"direct"),
                    vec![1],
                    vec![0, 0, 0, 0],
                ]
                .concat()
            };
            if let Err(e) = send(s, ch, &method(class, 10, &args)).await {
                return io("declaring passively", e);
            }
            let f = match self.next(s, addr, "declaring passively").await {
                Ok(f) => f,
                Err(o) => return (o, false),
            };
            match f.method() {
                Some((c, 11)) if c == class => {
                    if class == 50 {
                        let p = &f.payload;
                        let at = 5 + p.get(4).copied().unwrap_or(0) as usize;
                        let count = |i: usize| {
                            p.get(i..i + 4)
                                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                        };
                        found.push(format!(
                            "queue `{name}` ({} messages, {} consumers)",
                            count(at),
                            count(at + 4)
                        ));
                    }
                }
                Some((CHANNEL, 40)) => {
                    let (code, text) = f.close_reason();
                    let _ = send(s, f.channel, &method(CHANNEL, 41, &[])).await;
                    let class = match code {
                        404 => Class::NotFound,
                        403 | 405 => Class::Permission,
                        _ => Class::Status,
                    };
                    let list = if what == "queue" { "queues" } else { "exchanges" };
                    let o = self
                        .t
                        .fail(
                            class,
                            format!(
                                "{what} `{name}` on vhost `{}`: {}",
                                self.vhost,
                                bounded::cut(&text, 200)
                            ),
                        )
                        .about(list, name);
                    return (o, true);
                }
                _ => {
                    return (
                        self.t.fail(
                            Class::Protocol,
                            format!("{addr} answered a passive declare unexpectedly"),
                        ),
                        true,
                    );
                }
            }
        }
        if let Some(o) = service::over_latency(&self.t, "connect, log in and open a channel", latency, self.max_latency)
        {
            return (o, true);
        }
        let who = if self.external {
            "with its client certificate (SASL EXTERNAL)".to_string()
        } else {
            format!("as `{}`", self.t.user)
        };
        let mut msg = format!(
            "{product} on {addr}: logged in {who}, vhost `{}` and a channel open in {}",
            self.vhost,
            service::took(start)
        );
        if !found.is_empty() {
            msg.push_str(&format!("; {}", found.join(", ")));
        }
        if !self.exchanges.is_empty() {
            msg.push_str(&format!("; {} exchange(s) exist", self.exchanges.len()));
        }
        (Outcome::pass(msg), true)
    }

    /// A TLS 1.3 server judges the client certificate after the handshake;
    /// RabbitMQ then hangs up, and the reset can overtake its alert: a reset
    /// before Connection.Start, on TLS without a certificate, is that.
    fn refused_certless(&self, e: &std::io::Error) -> bool {
        self.t.tls
            && self.tls.client.is_none()
            && matches!(
                bounded::innermost(e).kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::BrokenPipe
            )
    }

    fn certless(&self, addr: SocketAddr) -> Outcome {
        self.t.fail(
            Class::Tls,
            format!(
                "{addr} hung up right after the TLS handshake, before Connection.Start: the server requires a client certificate, most likely (set `cert_file` and `key_file`)"
            ),
        )
    }

    /// The next method frame, which must be `want`; a Connection.Close says why not.
    async fn expect<S>(&self, s: &mut S, addr: SocketAddr, doing: &str, want: (u16, u16)) -> Result<Frame, Outcome>
    where
        S: AsyncBufRead + AsyncWrite + Unpin,
    {
        let f = self.next(s, addr, doing).await?;
        if f.method() == Some(want) {
            return Ok(f);
        }
        Err(self.t.fail(
            Class::Protocol,
            format!("{addr} answered {:?} while {doing}, expected {want:?}", f.method()),
        ))
    }

    /// The next method frame; heartbeats are skipped and a Connection.Close
    /// from the broker becomes the failure it reports.
    async fn next<S>(&self, s: &mut S, addr: SocketAddr, doing: &str) -> Result<Frame, Outcome>
    where
        S: AsyncBufRead + AsyncWrite + Unpin,
    {
        loop {
            let f = match read_frame(s).await {
                Ok(f) => f,
                // Without authentication_failure_close, a broker just hangs up.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && doing == "logging in" => {
                    return Err(self.t.fail(
                        Class::Auth,
                        format!("{addr} closed the connection while {doing}: wrong user or password?"),
                    ));
                }
                Err(e) => {
                    return Err(service::io_error_presenting(
                        &self.t,
                        addr,
                        doing,
                        &e,
                        Some(self.tls.client.is_some()),
                    ));
                }
            };
            match f.method() {
                None => continue,
                Some((CONNECTION, 50)) => {
                    let (code, text) = f.close_reason();
                    let _ = send(s, 0, &method(CONNECTION, 51, &[])).await;
                    let class = match code {
                        403 => Class::Auth,
                        530 if text.contains("not found") => Class::NotFound,
                        530 => Class::Permission,
                        320 | 541 => Class::Status,
                        _ => Class::Protocol,
                    };
                    return Err(self.t.fail(class, format!("{doing} on {addr}: {text} ({code})")));
                }
                Some((CONNECTION, 60 | 61)) => continue,
                Some(_) => return Ok(f),
            }
        }
    }
}

/// The SASL mechanisms Connection.Start offers, space-separated: after
/// class and method (4 bytes), the version (2), and the server-properties
/// table (a long length and its bytes).
fn mechanisms(p: &[u8]) -> Option<String> {
    let table = u32::from_be_bytes(p.get(6..10)?.try_into().ok()?) as usize;
    let at = 10usize.checked_add(table)?;
    let len = u32::from_be_bytes(p.get(at..at + 4)?.try_into().ok()?) as usize;
    Some(String::from_utf8_lossy(p.get(at + 4..at.checked_add(4 + len)?)?).into_owned())
}

/// The broker's product and version from Connection.Start's properties.
fn server_product(p: &[u8]) -> Option<String> {
    let find = |key: &str| -> Option<String> {
        let k = [&[key.len() as u8][..], key.as_bytes(), b"S"].concat();
        let at = p.windows(k.len()).position(|w| w == k.as_slice())? + k.len();
        let len = u32::from_be_bytes(p.get(at..at + 4)?.try_into().ok()?) as usize;
        Some(String::from_utf8_lossy(p.get(at + 4..at + 4 + len)?).into_owned())
    };
    let product = find("product")?;
    Some(match find("version") {
        Some(v) => format!("{product} {v}"),
        None => product,
    })
}

fn short(s: &[u8]) -> Vec<u8> {
    let s = &s[..s.len().min(255)];
    [&[s.len() as u8][..], s].concat()
}

fn long_bytes(s: &[u8]) -> Vec<u8> {
    [&(s.len() as u32).to_be_bytes()[..], s].concat()
}

fn table_entry(out: &mut Vec<u8>, key: &str, kind: u8, value: &[u8]) {
    out.extend_from_slice(&short(key.as_bytes()));
    out.push(kind);
    out.extend_from_slice(value);
}

fn table_str(out: &mut Vec<u8>, key: &str, v: &str) {
    table_entry(out, key, b'S', &long_bytes(v.as_bytes()));
}

fn table_bool(out: &mut Vec<u8>, key: &str, v: bool) {
    table_entry(out, key, b't', &[u8::from(v)]);
}

fn method(class: u16, id: u16, args: &[u8]) -> Vec<u8> {
    [&class.to_be_bytes()[..], &id.to_be_bytes(), args].concat()
}

fn frame(channel: u16, payload: &[u8]) -> Vec<u8> {
    [
        &[1u8][..],
        &channel.to_be_bytes(),
        &(payload.len() as u32).to_be_bytes(),
        payload,
        &[0xCE],
    ]
    .concat()
}

async fn write<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

async fn send<S: AsyncWrite + Unpin>(s: &mut S, channel: u16, payload: &[u8]) -> std::io::Result<()> {
    write(s, &frame(channel, payload)).await
}

async fn send_all<S: AsyncWrite + Unpin>(s: &mut S, frames: &[(u16, Vec<u8>)]) -> std::io::Result<()> {
    let bytes: Vec<u8> = frames.iter().flat_map(|(c, p)| frame(*c, p)).collect();
    write(s, &bytes).await
}

async fn read_frame<S: AsyncBufRead + Unpin>(s: &mut S) -> std::io::Result<Frame> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut head = [0u8; 7];
    s.read_exact(&mut head).await?;
    if &head[..4] == b"AMQP" {
        return Err(bad(
            "the broker does not speak AMQP 0-9-1 (it answered with its own protocol header)",
        ));
    }
    if let Some(tls) = bounded::tls_record(&head) {
        return Err(bad(tls));
    }
    if !matches!(head[0], 1..=3 | 8) {
        return Err(bad(&format!("not an AMQP frame: {}", bounded::excerpt(&head, 7))));
    }
    let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
    // The payload and the frame-end octet.
    let mut payload = bounded::read_exact(s, "frame", u64::from(size) + 1, u64::from(FRAME) + 1).await?;
    if payload.pop() != Some(0xCE) {
        return Err(bad("an AMQP frame without its end marker"));
    }
    Ok(Frame {
        kind: head[0],
        channel: u16::from_be_bytes([head[1], head[2]]),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mechanisms_connection_start_offers_are_read_past_its_properties() {
        let mut props = Vec::new();
        table_str(&mut props, "product", "RabbitMQ");
        let payload = [
            &[0, 10, 0, 10, 0, 9][..],
            &long_bytes(&props),
            &long_bytes(b"EXTERNAL PLAIN AMQPLAIN"),
            &long_bytes(b"en_US"),
        ]
        .concat();
        assert_eq!(mechanisms(&payload).as_deref(), Some("EXTERNAL PLAIN AMQPLAIN"));
        // A properties length past the frame is no answer, not a panic.
        assert_eq!(mechanisms(&[0, 10, 0, 10, 0, 9, 255, 255, 255, 255]), None);
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let bytes = frame(
            3,
            &method(
                CHANNEL,
                40,
                &[
                    &404u16.to_be_bytes()[..],
                    &short(b"NOT_FOUND - no queue 'q'"),
                    &[0, 50, 0, 10],
                ]
                .concat(),
            ),
        );
        let f = read_frame(&mut &bytes[..]).await.unwrap();
        assert_eq!((f.channel, f.method()), (3, Some((CHANNEL, 40))));
        assert_eq!(f.close_reason(), (404, "NOT_FOUND - no queue 'q'".to_string()));
        let err = read_frame(&mut &b"AMQP\x00\x00\x09\x01"[..]).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
}
