//! `tls`: a handshake completes and the certificate is valid for the host,
//! chains to a trusted root and has enough days left. The certificate's
//! subject, issuer and not-after are reported even when it is rejected.
//!
//! Bounds: the handshake reads at most 256 KiB (a certificate chain is a
//! few KiB; rustls bounds each record and message too). Nothing is sent
//! after the handshake; the connection is dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::bounded::{Limited, Meter};
use super::certs::{ClientCert, Presenting, client_cert_refused};
use super::net::{cert_info, host_port};
use super::{BoxFuture, Class, Ctx, Endpoint, Kind, Outcome, ParamError, Probe, Spec};

pub static KIND: Kind = Kind {
    name: "tls",
    doc: "a TLS handshake succeeds with a valid certificate for the host",
    target: "host:port, tls://host:port or https://host",
    schemes: &["tls"],
    params: || schemars::schema_for!(Params),
    build,
};

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Name to send (SNI) and verify, default the target's host.
    server_name: Option<String>,
    /// PEM file of the CA roots to trust instead of the system's.
    ca_file: Option<String>,
    /// Fail when the certificate expires sooner.
    min_days_left: Option<u32>,
    /// Client certificate to present when the server asks (PEM path, or its text via `${secret:file:...}`).
    cert_file: Option<String>,
    /// The client certificate's private key (PEM path, or its text via `${secret:file:...}`).
    key_file: Option<String>,
}

struct Tls {
    host: String,
    /// `server_name`, when given: the name a shared endpoint routes by.
    sni: Option<String>,
    port: u16,
    server_name: ServerName<'static>,
    ca_file: Option<String>,
    min_days_left: Option<u32>,
    client: Option<ClientCert>,
}

fn build(spec: &Spec<'_>) -> Result<Box<dyn Probe>, ParamError> {
    let (host, port) = host_port(spec.target, Some(443)).map_err(|m| ParamError::new("target", m))?;
    let p: Params = spec.params()?;
    let name = p.server_name.clone().unwrap_or_else(|| host.clone());
    let server_name = ServerName::try_from(name.clone()).map_err(|_| {
        ParamError::new(
            if p.server_name.is_some() {
                "server_name"
            } else {
                "target"
            },
            format!("`{name}` is not a valid TLS server name"),
        )
    })?;
    Ok(Box::new(Tls {
        sni: p.server_name.clone(),
        host,
        port,
        server_name,
        ca_file: p.ca_file,
        min_days_left: p.min_days_left,
        client: ClientCert::from_params(p.cert_file, p.key_file)?,
    }))
}

/// What the handshake may read in all.
const LIMIT: u64 = 256 << 10;

impl Probe for Tls {
    /// The host dialed, and `server_name`: a TLS proxy routes by it.
    fn hosts(&self) -> Vec<Endpoint> {
        let mut out = vec![Endpoint::new(&self.host, self.port)];
        out.extend(self.sni.iter().map(|n| Endpoint::new(n, self.port)));
        out
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let inner = match ctx.net.verifier(self.ca_file.as_deref()) {
                Ok(v) => v,
                Err(e) => return Outcome::fail(Class::Tls, e),
            };
            ctx.each_addr(&self.host, self.port, |a| self.once(ctx, inner.clone(), a))
                .await
        })
    }
}

impl Tls {
    async fn once(&self, ctx: &Ctx, inner: Arc<dyn ServerCertVerifier>, addr: SocketAddr) -> Outcome {
        let rec = Arc::new(Recording {
            inner,
            seen: Mutex::new(None),
        });
        let presenting = match Presenting::new(self.client.as_ref()) {
            Ok(p) => Arc::new(p),
            Err(e) => return Outcome::fail(Class::Tls, e),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(rec.clone())
            .with_client_cert_resolver(presenting.clone());
        let tcp = match ctx.connect(addr).await {
            Ok(s) => Limited::new(s, Meter::new(LIMIT)),
            Err(o) => return o,
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let mut stream = match connector.connect(self.server_name.clone(), tcp).await {
            Ok(s) => s,
            Err(e) => return super::service::handshake_failed(addr, &self.host, &e),
        };
        if presenting.asked()
            && let Some(why) = self.after_handshake(ctx, &mut stream, presenting.has_key()).await
        {
            return Outcome::fail(Class::Tls, format!("{addr}: {why}"));
        }
        let Some((der, verdict)) = rec.seen.lock().expect("no poisoning").take() else {
            return Outcome::fail(Class::Tls, format!("{addr} sent no certificate"));
        };
        let info = cert_info(&der);
        let about = info
            .as_ref()
            .map(|c| {
                format!(
                    "subject {}, issuer {}, not after {} ({} days left)",
                    c.subject, c.issuer, c.not_after, c.days_left
                )
            })
            .unwrap_or_else(|| "unparseable certificate".into());
        let metrics: Vec<_> = info.iter().map(|c| c.metric()).collect();
        let judged = || {
            if let Err(e) = verdict {
                return Outcome::fail(
                    Class::Tls,
                    format!("{} on {addr}: {about}", super::certs::explain(&e, &self.host)),
                );
            }
            if let (Some(min), Some(c)) = (self.min_days_left, &info)
                && c.days_left < i64::from(min)
            {
                return Outcome::fail(
                    Class::Tls,
                    format!(
                        "certificate expires in {} days, expected at least {min}: {about}",
                        c.days_left
                    ),
                );
            }
            Outcome::pass(format!("valid certificate on {addr}: {about}"))
        };
        judged().with_metrics(metrics)
    }
}

impl Tls {
    /// A server that asked for a client certificate judges it after the
    /// handshake in TLS 1.3: listen briefly for its alert. Silence (or data)
    /// means it was accepted; an alert says why not.
    async fn after_handshake<S>(
        &self,
        ctx: &Ctx,
        stream: &mut tokio_rustls::client::TlsStream<S>,
        presented: bool,
    ) -> Option<String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        use tokio::io::AsyncReadExt;
        let wait = ctx.timeout.min(std::time::Duration::from_millis(500));
        let mut buf = [0u8; 512];
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Err(e)) => {
                let refused = e
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<rustls::Error>())
                    .and_then(|t| client_cert_refused(t, Some(presented)));
                Some(refused.unwrap_or_else(|| format!("the connection failed after the handshake: {e}")))
            }
            Ok(Ok(0)) if !presented => Some(
                "the server asked for a client certificate and closed the connection without one: set `cert_file` and `key_file`".into(),
            ),
            _ => None,
        }
    }
}

/// The end-entity certificate and the real verifier's verdict on it.
type Seen = (Vec<u8>, Result<(), rustls::Error>);

/// Runs the real verifier, remembers its verdict and the certificate, and
/// lets the handshake finish so a rejected certificate can still be described.
/// Nothing is sent over the connection afterwards.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ServerCertVerifier>,
    seen: Mutex<Option<Seen>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            .map(|_| ());
        *self.seen.lock().expect("no poisoning") = Some((end_entity.to_vec(), verdict));
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
