//! What the network probes of one run share: every host name is resolved once
//! (concurrent probes of one host wait for the same lookup), TLS verifiers
//! and HTTP clients are built once, and every resolved address is tried so a
//! name that answers on 127.0.0.1 but not on ::1 is reported as such.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::sync::OnceCell;

use super::{Class, Outcome, Verdict};
use crate::config::units::format_duration;

type Lookup = Arc<OnceCell<Vec<IpAddr>>>;

#[derive(Default)]
pub struct Net {
    hosts: Mutex<HashMap<String, Lookup>>,
    verifiers: Mutex<HashMap<Option<String>, Arc<dyn ServerCertVerifier>>>,
    clients: Mutex<HashMap<String, reqwest::Client>>,
    dns: OnceCell<Result<hickory_resolver::TokioResolver, String>>,
}

impl Net {
    pub fn new() -> Arc<Net> {
        crate::net::install_crypto();
        Arc::new(Net::default())
    }

    /// Every address of `host`, IPv6 and IPv4, looked up once per run.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let host = host.trim_matches(['[', ']']);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let cell = self
            .hosts
            .lock()
            .expect("no poisoning")
            .entry(host.to_ascii_lowercase())
            .or_default()
            .clone();
        // Only answers are cached: under `--wait` a name that does not
        // resolve yet (a container still starting) is asked again.
        cell.get_or_try_init(|| async {
            match tokio::net::lookup_host((host, 0)).await {
                Ok(addrs) => {
                    let mut ips: Vec<IpAddr> = Vec::new();
                    for a in addrs {
                        if !ips.contains(&a.ip()) {
                            ips.push(a.ip());
                        }
                    }
                    if ips.is_empty() {
                        Err(format!("`{host}` has no address"))
                    } else {
                        Ok(ips)
                    }
                }
                Err(e) => Err(format!("cannot resolve `{host}`: {}", plain(&e.to_string()))),
            }
        })
        .await
        .cloned()
    }

    /// The run's DNS resolver (system configuration), for `dns` probes.
    pub async fn dns(&self) -> Result<&hickory_resolver::TokioResolver, String> {
        self.dns
            .get_or_init(|| async {
                hickory_resolver::TokioResolver::builder_tokio()
                    .map(|b| b.build())
                    .map_err(|e| format!("cannot read the system DNS configuration: {e}"))
                    .and_then(|r| r.map_err(|e| format!("cannot build a DNS resolver: {e}")))
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The certificate verifier: the system's roots, or only `ca_file`'s.
    /// Reading `ca_file` is I/O, so it happens here, at run time.
    pub fn verifier(&self, ca_file: Option<&str>) -> Result<Arc<dyn ServerCertVerifier>, String> {
        let key = ca_file.map(String::from);
        if let Some(v) = self.verifiers.lock().expect("no poisoning").get(&key) {
            return Ok(v.clone());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let v: Arc<dyn ServerCertVerifier> = match ca_file {
            None => Arc::new(
                rustls_platform_verifier::Verifier::new(provider)
                    .map_err(|e| format!("cannot load the system's CA roots: {e}"))?,
            ),
            Some(path) => {
                use rustls::pki_types::pem::PemObject;
                let mut roots = rustls::RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("cannot read ca_file {path}: {e}"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("cannot read ca_file {path}: {e}"))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("ca_file {path} holds no usable certificate"));
                }
                rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| format!("ca_file {path}: {e}"))?
            }
        };
        self.verifiers.lock().expect("no poisoning").insert(key, v.clone());
        Ok(v)
    }

    pub fn tls_config(&self, verifier: Arc<dyn ServerCertVerifier>) -> ClientConfig {
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth()
    }

    /// An HTTP client for one (options, host, address) combination, shared by
    /// every probe that needs the same one.
    pub fn http_client(&self, opts: &ClientOpts, host: &str, addr: SocketAddr) -> Result<reqwest::Client, String> {
        let key = format!(
            "{}|{:?}|{}|{host}|{addr}",
            opts.follow_redirects, opts.ca_file, opts.verify
        );
        if let Some(c) = self.clients.lock().expect("no poisoning").get(&key) {
            return Ok(c.clone());
        }
        let verifier: Arc<dyn ServerCertVerifier> = if opts.verify {
            self.verifier(opts.ca_file.as_deref())?
        } else {
            Arc::new(AcceptAny)
        };
        let mut b = reqwest::Client::builder()
            .use_preconfigured_tls(self.tls_config(verifier))
            .tls_info(true)
            .no_proxy()
            .http1_only()
            .pool_max_idle_per_host(0)
            .redirect(if opts.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .user_agent(concat!("envgate/", env!("CARGO_PKG_VERSION")));
        if host.trim_matches(['[', ']']).parse::<IpAddr>().is_err() {
            b = b.resolve(host, addr);
        }
        let c = b.build().map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        self.clients.lock().expect("no poisoning").insert(key, c.clone());
        Ok(c)
    }

    /// Resolve `host` and run `attempt` on every address at once, each under
    /// `timeout`. All pass: pass. Some fail: warn, naming which failed (a
    /// client that tries only the first address may break). All fail: fail.
    pub async fn each_addr<F, Fut>(&self, host: &str, port: u16, timeout: Duration, attempt: F) -> Outcome
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let ips = match tokio::time::timeout(timeout, self.resolve(host)).await {
            Ok(Ok(ips)) => ips,
            Ok(Err(e)) => return Outcome::fail(Class::Dns, e),
            Err(_) => {
                return Outcome::fail(
                    Class::Timeout,
                    format!("resolving `{host}` took longer than {}", format_duration(timeout)),
                );
            }
        };
        let tries = ips.iter().map(|ip| {
            let addr = SocketAddr::new(*ip, port);
            let f = attempt(addr);
            async move {
                match tokio::time::timeout(timeout, f).await {
                    Ok(o) => (addr, o),
                    Err(_) => (addr, timed_out(addr, timeout)),
                }
            }
        });
        let results = join_all(tries).await;
        combine(results)
    }
}

/// Options that make one HTTP client differ from another.
#[derive(Debug, Clone)]
pub struct ClientOpts {
    pub follow_redirects: bool,
    pub ca_file: Option<String>,
    pub verify: bool,
}

pub fn timed_out(addr: SocketAddr, timeout: Duration) -> Outcome {
    Outcome::fail(
        Class::Timeout,
        format!("no answer from {addr} within {}", format_duration(timeout)),
    )
}

fn combine(results: Vec<(SocketAddr, Outcome)>) -> Outcome {
    if results.len() == 1 {
        return results.into_iter().next().expect("one").1;
    }
    let failed: Vec<_> = results.iter().filter(|(_, o)| o.verdict == Verdict::Fail).collect();
    let ok: Vec<_> = results.iter().filter(|(_, o)| o.verdict != Verdict::Fail).collect();
    let addrs = |v: &[&(SocketAddr, Outcome)]| v.iter().map(|(a, _)| a.to_string()).collect::<Vec<_>>().join(", ");
    match (ok.is_empty(), failed.is_empty()) {
        (_, true) => {
            let first = &ok[0].1;
            let mut o = first.clone();
            if ok.iter().any(|(_, x)| x.verdict == Verdict::Warn) {
                o = ok
                    .iter()
                    .find(|(_, x)| x.verdict == Verdict::Warn)
                    .expect("a warn")
                    .1
                    .clone();
            }
            o.message = format!("{} (all {} addresses: {})", o.message, ok.len(), addrs(&ok));
            o
        }
        (true, false) => {
            let mut o = failed[0].1.clone();
            o.message = failed
                .iter()
                .map(|(_, x)| x.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            o
        }
        (false, false) => Outcome {
            verdict: Verdict::Warn,
            class: failed[0].1.class,
            metrics: Vec::new(),
            message: format!(
                "{}; answered on {} (a client that tries only the first address fails)",
                failed
                    .iter()
                    .map(|(_, x)| x.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
                addrs(&ok)
            ),
        },
    }
}

/// Await every future at once on the current task (no spawning).
pub async fn join_all<F: Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future finished")).collect()
}

/// An I/O error as a failure class and a message naming the address.
pub fn io_outcome(addr: SocketAddr, e: &std::io::Error) -> Outcome {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => Outcome::fail(
            Class::Refused,
            format!("connection refused by {addr}: nothing listens on port {}", addr.port()),
        ),
        K::TimedOut => Outcome::fail(Class::Timeout, format!("connecting to {addr} timed out")),
        K::PermissionDenied => Outcome::fail(Class::Permission, format!("not allowed to connect to {addr}")),
        K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof => Outcome::fail(
            Class::Refused,
            format!("{addr} closed the connection: {}", plain(&e.to_string())),
        ),
        _ => Outcome::fail(Class::Io, format!("{addr}: {}", plain(&e.to_string()))),
    }
}

/// `Connection refused (os error 111)` → `connection refused`.
pub fn plain(s: &str) -> String {
    let s = s.split(" (os error").next().unwrap_or(s);
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

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

/// `host:port`, `[v6]:port`, `tcp://host:port`, or any URL or DSN with a
/// port (or a scheme whose port is well known): the host and port to dial.
pub fn host_port(target: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let t = target.trim();
    if t.contains("://") {
        let url = url::Url::parse(t).map_err(|e| format!("`{t}` is not a URL: {e}"))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{t}` names no host"))?;
        let port = url
            .port_or_known_default()
            .or_else(|| well_known_port(url.scheme()))
            .or(default_port)
            .ok_or_else(|| format!("`{t}` names no port"))?;
        return Ok((host.trim_matches(['[', ']']).to_string(), port));
    }
    let (host, port) = match t.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => (h, Some(p)),
        _ => (t, None),
    };
    let host = host.trim_matches(['[', ']']);
    if host.is_empty() {
        return Err(format!("`{t}` names no host"));
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| format!("`{p}` in `{t}` is not a port"))?,
        None => default_port.ok_or_else(|| format!("`{t}` names no port: write host:port"))?,
    };
    Ok((host.to_string(), port))
}

fn well_known_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "postgres" | "postgresql" => 5432,
        "mysql" | "mariadb" => 3306,
        "redis" => 6379,
        "rediss" => 6380,
        "amqp" => 5672,
        "amqps" => 5671,
        "nats" => 4222,
        "mqtt" => 1883,
        "mqtts" => 8883,
        "tls" => 443,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(host_port("db:5432", None), Ok(("db".into(), 5432)));
        assert_eq!(host_port("[::1]:80", None), Ok(("::1".into(), 80)));
        assert_eq!(host_port("tcp://127.0.0.1:9", None), Ok(("127.0.0.1".into(), 9)));
        assert_eq!(
            host_port("postgres://u:p@db.example.com/x", None),
            Ok(("db.example.com".into(), 5432))
        );
        assert_eq!(host_port("example.com", Some(443)), Ok(("example.com".into(), 443)));
        assert!(host_port("example.com", None).is_err());
        assert!(host_port("db:xx", None).is_err());
    }
}
