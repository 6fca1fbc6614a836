//! `mqtt`: an MQTT 3.1.1 CONNECT with the URL's credentials and a client id
//! is accepted (CONNACK 0), then DISCONNECT. Clean session, nothing
//! subscribed or published. Two packets do not need a client library.
//!
//! Bounds: the probe reads the 4 bytes of a CONNACK and nothing else (its
//! remaining length must be 2), and at most 256 KiB in all, TLS handshake
//! included. Goodbye: DISCONNECT and close, after the verdict and under
//! its own short bound.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::bounded;
use super::param::Dur;
use super::service::{self, Ended, Target, TlsOpts};
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};

pub static KIND: Kind = Kind {
    name: "mqtt",
    doc: "an MQTT broker accepts a connection with these credentials and client id (CONNACK)",
    target: "an mqtt:// or mqtts:// (TLS) URL: mqtt://[user:password@]host[:port]",
    schemes: &["mqtt", "mqtts"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Client identifier to connect with (default envgate-PID-N).
    client_id: Option<String>,
    /// Slowest acceptable connect + CONNACK, e.g. "50ms".
    max_latency: Option<Dur>,
    /// mqtts: PEM file of the CA roots to trust instead of the system's.
    ca_file: Option<String>,
    /// mqtts: verify the certificate chain and host name (default true).
    tls_verify: Option<bool>,
    /// mqtts: client certificate to present (PEM path, or its text via `${secret:file:...}`).
    cert_file: Option<String>,
    /// mqtts: the client certificate's private key (PEM path, or its text via `${secret:file:...}`).
    key_file: Option<String>,
}

struct Mqtt {
    t: Target,
    client_id: Option<String>,
    max_latency: Option<Duration>,
    tls: TlsOpts,
}

static CLIENTS: AtomicU64 = AtomicU64::new(0);

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let target = spec.target;
    let d: Params = spec.params()?;
    let t = Target::parse(
        "MQTT",
        target,
        &[
            ("mqtt", 1883, false),
            ("mqtts", 8883, true),
            ("tcp", 1883, false),
            ("ssl", 8883, true),
        ],
    )?;
    let client_id = d.client_id.clone().or_else(|| t.query("client_id"));
    if client_id.as_ref().is_some_and(|c| c.len() > 65_535) {
        return Err(ParamError::new("client_id", "a client id is at most 65535 bytes"));
    }
    Ok(Box::new(Mqtt {
        client_id,
        max_latency: d.max_latency.map(|m| m.0),
        tls: TlsOpts::new(d.ca_file, d.tls_verify, true)
            .with_client(super::certs::ClientCert::from_params(d.cert_file, d.key_file)?),
        t,
    }))
}

impl Probe for Mqtt {
    fn hosts(&self) -> Vec<Endpoint> {
        vec![self.t.endpoint()]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { self.t.sessions(ctx, |addr| self.once(ctx, addr)).await })
    }
}

/// What one connection may read in all, TLS handshake included.
const LIMIT: u64 = 256 << 10;

impl Mqtt {
    /// Whether a client certificate was there to present, for a TLS alert
    /// after the handshake.
    fn presented(&self) -> Option<bool> {
        Some(self.tls.client.is_some())
    }

    async fn once(&self, ctx: &Ctx, addr: SocketAddr) -> Ended {
        let start = Instant::now();
        let mut s = match service::open(ctx, &self.t, &self.tls, addr, LIMIT).await {
            Ok(s) => s,
            Err(o) => return (self.t.named(o), None),
        };
        // Unique per attempt: a broker drops an older session with the same id.
        let id = self.client_id.clone().unwrap_or_else(|| {
            format!(
                "envgate-{}-{}",
                std::process::id(),
                CLIENTS.fetch_add(1, Ordering::Relaxed)
            )
        });
        let user = (!self.t.user.is_empty() || self.t.password.is_some()).then_some(self.t.user.as_str());
        let packet = connect_packet(&id, user, self.t.password.as_deref());
        if let Err(e) = write(&mut s, &packet).await {
            return (
                service::io_error_presenting(&self.t, addr, "sending CONNECT", &e, self.presented()),
                None,
            );
        }
        let mut ack = [0u8; 4];
        if let Err(e) = s.read_exact(&mut ack).await {
            return (
                service::io_error_presenting(&self.t, addr, "waiting for CONNACK", &e, self.presented()),
                None,
            );
        }
        let latency = start.elapsed();
        if bounded::tls_record(&ack).is_some() {
            return (self.t.garbage(addr, "waiting for CONNACK", &ack), None);
        }
        if ack[0] != 0x20 || ack[1] != 0x02 {
            return (
                self.t.fail(
                    Class::Protocol,
                    format!("{addr} answered {ack:02x?}, not a CONNACK (is this an MQTT port?)"),
                ),
                None,
            );
        }
        let o = match ack[3] {
            0 => match service::over_latency(&self.t, "connect and CONNACK", latency, self.max_latency) {
                Some(o) => o,
                None => Outcome::pass(format!(
                    "CONNACK from {addr} in {} for client id `{id}`",
                    service::took(start)
                )),
            },
            1 => self
                .t
                .fail(Class::Protocol, "the broker does not speak MQTT 3.1.1 (CONNACK 1)"),
            2 => self
                .t
                .fail(Class::Auth, format!("the broker rejected client id `{id}` (CONNACK 2)")),
            3 => self.t.fail(Class::Status, "the broker is unavailable (CONNACK 3)"),
            4 => self.t.fail(
                Class::Auth,
                format!("bad user name or password for `{}` (CONNACK 4)", self.t.user),
            ),
            5 => self.t.fail(
                Class::Auth,
                format!("not authorized: the broker refused user `{}` (CONNACK 5)", self.t.user),
            ),
            n => self.t.fail(Class::Protocol, format!("unknown CONNACK return code {n}")),
        };
        let accepted = ack[3] == 0;
        let goodbye = async move {
            if accepted {
                let _ = write(&mut s, &[0xE0, 0x00]).await;
            }
            let _ = s.get_mut().shutdown().await;
        };
        (o, Some(Box::pin(goodbye)))
    }
}

async fn write<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}

/// CONNECT, MQTT 3.1.1: clean session, 30 s keep-alive.
fn connect_packet(client_id: &str, user: Option<&str>, password: Option<&str>) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len().min(65_535) as u16).to_be_bytes());
        out.extend_from_slice(&s[..s.len().min(65_535)]);
    }
    let mut flags = 0x02u8;
    let mut body = Vec::new();
    field(&mut body, b"MQTT");
    body.push(4);
    if user.is_some() {
        flags |= 0x80;
    }
    if password.is_some() {
        flags |= 0x40;
    }
    body.push(flags);
    body.extend_from_slice(&30u16.to_be_bytes());
    field(&mut body, client_id.as_bytes());
    if let Some(u) = user {
        field(&mut body, u.as_bytes());
    }
    if let Some(p) = password {
        field(&mut body, p.as_bytes());
    }
    let mut out = vec![0x10];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_packets_follow_the_spec() {
        let p = connect_packet("id", Some("u"), Some("pw"));
        assert_eq!(p[0], 0x10);
        assert_eq!(p[1] as usize, p.len() - 2);
        assert_eq!(&p[2..10], b"\x00\x04MQTT\x04\xc2");
        assert_eq!(&p[12..], b"\x00\x02id\x00\x01u\x00\x02pw");
        let long = connect_packet(&"x".repeat(200), None, None);
        assert_eq!(&long[1..3], &[0xd4, 0x01]);
    }
}
