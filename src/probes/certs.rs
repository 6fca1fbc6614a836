//! Certificates: a verifier that checks nothing (`tls_verify = false`),
//! what a certificate says (validity, names) for messages and days-left
//! checks, and the client certificate a probe presents (`cert_file`,
//! `key_file`).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// `tls_verify = false`: the handshake still happens, nothing is checked.
#[derive(Debug)]
pub struct AcceptAny;

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(m, c, d, &algs)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(m, c, d, &algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A certificate's validity and names, for messages and days-left checks.
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
    pub days_left: i64,
    /// Unix seconds.
    pub not_after_unix: i64,
}

impl CertInfo {
    /// The expiry as a measurement (`tls_not_after`, unix seconds): the
    /// audit keeps it and exports it as a certificate-expiry series.
    pub fn metric(&self) -> crate::outcome::Metric {
        crate::outcome::Metric {
            name: "tls_not_after".into(),
            value: self.not_after_unix as f64,
            unit: "s".into(),
        }
    }
}

pub fn cert_info(der: &[u8]) -> Option<CertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after = cert.validity().not_after;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    let secs = not_after.timestamp() - now;
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: not_after.to_datetime().date().to_string(),
        days_left: secs.div_euclid(86_400),
        not_after_unix: not_after.timestamp(),
    })
}

/// A client certificate to present: `cert_file` and `key_file`, each the
/// path of a PEM file or, read through `${secret:file:...}`, the PEM text
/// itself. Never printed: messages name the parameter, not its content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientCert {
    pub cert: String,
    pub key: String,
}

impl ClientCert {
    /// Both or neither: a certificate without its key, or a key without its
    /// certificate, is a mistake in the check file. No I/O.
    pub fn from_params(cert: Option<String>, key: Option<String>) -> Result<Option<ClientCert>, super::ParamError> {
        match (cert, key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(ClientCert { cert, key })),
            (Some(_), None) => Err(super::ParamError::new(
                "cert_file",
                "a client certificate needs its private key: set `key_file` too",
            )),
            (None, Some(_)) => Err(super::ParamError::new(
                "key_file",
                "a private key needs its certificate: set `cert_file` too",
            )),
        }
    }

    /// The certificate chain and key, read and parsed (run-time I/O).
    pub fn load(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        let cert = pem("cert_file", &self.cert)?;
        let certs = CertificateDer::pem_slice_iter(&cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cert_file {}: {e}", shown(&self.cert)))?;
        if certs.is_empty() {
            return Err(format!("cert_file {} holds no certificate", shown(&self.cert)));
        }
        let key = pem("key_file", &self.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key)
            .map_err(|e| format!("key_file {} holds no usable private key: {e}", shown(&self.key)))?;
        Ok((certs, key))
    }
}

/// PEM text as given, or a file's bytes (at most 1 MiB: a certificate chain
/// or a key is a few KiB).
fn pem(param: &str, value: &str) -> Result<Vec<u8>, String> {
    if value.trim_start().starts_with("-----BEGIN") {
        return Ok(value.as_bytes().to_vec());
    }
    let f = std::fs::File::open(value).map_err(|e| {
        format!(
            "cannot read {param} {value}: {}",
            crate::diagnostic::plain(&e.to_string())
        )
    })?;
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, 1 << 20), &mut out).map_err(|e| {
        format!(
            "cannot read {param} {value}: {}",
            crate::diagnostic::plain(&e.to_string())
        )
    })?;
    Ok(out)
}

/// A path as itself; PEM text (a secret) as a description, never its content.
fn shown(value: &str) -> &str {
    if value.trim_start().starts_with("-----BEGIN") {
        "(PEM text)"
    } else {
        value
    }
}

/// Presents the client certificate, if there is one, and remembers whether
/// the server asked for one at all: a server that asks and gets nothing, or
/// gets a certificate it does not trust, says so after the handshake (TLS
/// 1.3), so the `tls` probe reads once more to hear it.
#[derive(Debug)]
pub struct Presenting {
    key: Option<std::sync::Arc<rustls::sign::CertifiedKey>>,
    asked: std::sync::atomic::AtomicBool,
}

impl Presenting {
    pub fn new(client: Option<&ClientCert>) -> Result<Presenting, String> {
        let key = match client {
            None => None,
            Some(c) => {
                let (certs, key) = c.load()?;
                let provider = rustls::crypto::ring::default_provider();
                let signer = provider
                    .key_provider
                    .load_private_key(key)
                    .map_err(|e| format!("key_file holds a key envgate cannot sign with: {e}"))?;
                Some(std::sync::Arc::new(rustls::sign::CertifiedKey::new(certs, signer)))
            }
        };
        Ok(Presenting {
            key,
            asked: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn asked(&self) -> bool {
        self.asked.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }
}

impl rustls::client::ResolvesClientCert for Presenting {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        self.asked.store(true, std::sync::atomic::Ordering::Relaxed);
        self.key.clone()
    }

    /// Always: rustls asks the resolver only if this is true, and whether
    /// the server asked is worth knowing even with nothing to present.
    fn has_certs(&self) -> bool {
        true
    }
}

/// A server's alert about the client's certificate, in words a person acts
/// on; `None` for any other TLS error. `presented`: whether a certificate was
/// sent, when the caller knows.
pub fn client_cert_refused(e: &rustls::Error, presented: Option<bool>) -> Option<String> {
    use rustls::AlertDescription as A;
    let rustls::Error::AlertReceived(alert) = e else {
        return None;
    };
    let rejected = matches!(
        alert,
        A::BadCertificate
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            | A::CertificateExpired
            | A::CertificateRevoked
    );
    match (alert, presented) {
        (A::CertificateRequired, _)
        | (A::HandshakeFailure | A::BadCertificate | A::CertificateUnknown, Some(false)) => {
            Some("the server requires a client certificate: set `cert_file` and `key_file`".into())
        }
        (_, Some(true)) if rejected => Some(format!(
            "the server refused the client certificate ({alert:?}): check that its CA trusts `cert_file` and that it has not expired"
        )),
        (_, None) if rejected => Some(format!(
            "the server refused the client certificate, or requires one ({alert:?}): check `cert_file` and `key_file`"
        )),
        _ => None,
    }
}

/// Rustls' verdict in words a person acts on.
pub fn explain(e: &rustls::Error, host: &str) -> String {
    if let Some(why) = client_cert_refused(e, None) {
        return why;
    }
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "certificate has expired".into(),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate is not valid yet".into()
            }
            CertificateError::UnknownIssuer => {
                "certificate signed by an unknown authority (self-signed, or its CA is not trusted: set ca_file)".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("certificate is not valid for the name `{host}`")
            }
            CertificateError::Revoked => "certificate has been revoked".into(),
            other => format!("invalid certificate: {other:?}"),
        },
        other => other.to_string(),
    }
}
