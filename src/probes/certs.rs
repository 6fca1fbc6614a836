//! Certificates: a verifier that checks nothing (`tls_verify = false`) and
//! what a certificate says (validity, names) for messages and days-left checks.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

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
