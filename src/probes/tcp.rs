//! `tcp`: a connection opens within the timeout; optionally send a line and
//! expect a banner (`SSH-`, `+PONG`).
//!
//! Bounds: at most 64 KiB of the peer's answer is read while looking for
//! `expect`; nothing is read without it.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::bounded::excerpt;
use super::load::{Load, Session};
use super::net::{host_port, io_outcome};
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};

pub static KIND: Kind = Kind {
    name: "tcp",
    doc: "a TCP connection opens; optionally a banner answers what is sent",
    target: "host:port, tcp://host:port, or a URL/DSN with a port",
    schemes: &["tcp"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Text to send once connected (escapes: \r \n).
    send: Option<String>,
    /// Text the peer's first bytes must contain.
    expect: Option<String>,
}

struct Tcp {
    host: String,
    port: u16,
    send: Option<String>,
    expect: Option<String>,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let (host, port) = host_port(spec.target, None).map_err(|m| ParamError::new("target", m))?;
    let p: Params = spec.params()?;
    Ok(Box::new(Tcp {
        host,
        port,
        send: p.send,
        expect: p.expect,
    }))
}

/// The most of the peer's answer read while looking for `expect`.
const BANNER: usize = 64 << 10;

impl Probe for Tcp {
    fn hosts(&self) -> Vec<Endpoint> {
        vec![Endpoint::new(&self.host, self.port)]
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { ctx.each_addr(&self.host, self.port, |a| self.once(ctx, a)).await })
    }

    fn load(&self) -> Option<std::sync::Arc<dyn Load>> {
        Some(std::sync::Arc::new(TcpLoad {
            host: self.host.clone(),
            port: self.port,
        }))
    }
}

/// A load of connections: each request opens one (the latency is the
/// connect time) and closes it.
struct TcpLoad {
    host: String,
    port: u16,
}

impl Load for TcpLoad {
    fn endpoint(&self) -> Endpoint {
        Endpoint::new(&self.host, self.port)
    }

    fn open<'a>(&'a self, ctx: &'a Ctx, addr: SocketAddr) -> BoxFuture<'a, Result<Box<dyn Session>, Outcome>> {
        Box::pin(async move {
            Ok(Box::new(TcpSession {
                ctx: ctx.cloned(),
                addr,
            }) as Box<dyn Session>)
        })
    }
}

struct TcpSession {
    ctx: Ctx,
    addr: SocketAddr,
}

impl Session for TcpSession {
    fn call(&mut self) -> BoxFuture<'_, Result<(), Outcome>> {
        Box::pin(async move { self.ctx.connect(self.addr).await.map(drop) })
    }
}

impl Tcp {
    async fn once(&self, ctx: &Ctx, addr: SocketAddr) -> Outcome {
        let start = std::time::Instant::now();
        let mut s = match ctx.connect(addr).await {
            Ok(s) => s,
            Err(o) => return o,
        };
        let connected = start.elapsed().as_millis();
        if let Some(send) = &self.send {
            let bytes = send.replace("\\r", "\r").replace("\\n", "\n");
            if let Err(e) = s.write_all(bytes.as_bytes()).await {
                return io_outcome(addr, &e);
            }
        }
        let Some(want) = &self.expect else {
            return Outcome::pass(format!("connected to {addr} in {connected}ms"));
        };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let found = |b: &[u8]| want.is_empty() || b.windows(want.len()).any(|w| w == want.as_bytes());
        loop {
            match s.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if found(&buf) || buf.len() >= BANNER {
                        break;
                    }
                }
                Err(e) => return io_outcome(addr, &e),
            }
        }
        if found(&buf) {
            Outcome::pass(format!("{addr} answered {}", excerpt(buf.trim_ascii_end(), 60)))
        } else {
            Outcome::fail(
                Class::Body,
                format!("expected {want:?} from {addr}, got {}", excerpt(&buf, 80)),
            )
        }
    }
}
