//! Every connection a probe makes goes through here, under its
//! environment's isolation [`Guard`]: the host is checked, every address it
//! resolves to is checked before any is dialed, every socket is opened by
//! [`Ctx::connect`], and HTTP clients resolve names through the same checks
//! and refuse a redirect into another environment's hosts. A kind never opens
//! a socket or resolves a name itself (a test reads the kinds' sources to
//! keep it so), so a new kind cannot forget isolation.
//!
//! What the probes of one run share: every host name is resolved once
//! (concurrent probes of one host wait for the same lookup), TLS verifiers
//! and HTTP clients are built once, and every resolved address is tried so a
//! name that answers on 127.0.0.1 but not on ::1 is reported as such.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rustls::ClientConfig;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::sync::OnceCell;

pub use super::certs::{AcceptAny, CertInfo, cert_info};
use super::{Class, Outcome, Verdict};
use crate::config::units::format_duration;

/// Decides, for one environment, what its probes may dial. The plan gives
/// one to every job of a project with `[isolation]`; ad-hoc probes run
/// without one.
pub trait Guard: Send + Sync {
    /// The environment guarded: HTTP clients, whose resolver and redirect
    /// policy apply the guard, are shared per scope.
    fn scope(&self) -> &str;
    /// Why `host` (a name or an address, as the client parsed it) must not
    /// be dialed, or `None`.
    fn host(&self, host: &str) -> Option<String>;
    /// Why `ip`, an address `host` resolved to, must not be dialed, or `None`.
    fn addr(&self, host: &str, ip: IpAddr) -> Option<String>;
}

/// What one attempt may use: its time budget, the run's shared caches, and
/// the isolation guard of its environment.
pub struct Ctx {
    pub timeout: Duration,
    pub net: Arc<Net>,
    pub guard: Option<Arc<dyn Guard>>,
    /// The probe's name: HTTP request ids carry it.
    pub name: Arc<str>,
}

/// An isolation refusal inside a client's error chain (a redirect hop or a
/// name resolved by an HTTP client).
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The isolation failure in `e`'s chain, if a guard refused something.
pub fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<Outcome> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(r) = c.downcast_ref::<Refused>() {
            return Some(Outcome::fail(Class::Isolation, r.0.clone()));
        }
        if let Some(inner) = c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
            && let Some(o) = refusal(inner)
        {
            return Some(o);
        }
        cur = c.source();
    }
    None
}

impl Ctx {
    /// A context with no isolation guard (ad-hoc probes, tests).
    pub fn open(timeout: Duration, net: Arc<Net>) -> Ctx {
        Ctx {
            timeout,
            net,
            guard: None,
            name: Arc::from(""),
        }
    }

    /// The same context, owned (a load's session keeps one).
    pub fn cloned(&self) -> Ctx {
        Ctx {
            timeout: self.timeout,
            net: self.net.clone(),
            guard: self.guard.clone(),
            name: self.name.clone(),
        }
    }

    fn refuse_host(&self, host: &str) -> Option<Outcome> {
        let why = self.guard.as_ref()?.host(host)?;
        Some(Outcome::fail(Class::Isolation, why))
    }

    fn refuse_addr(&self, host: &str, ip: IpAddr) -> Option<Outcome> {
        let why = self.guard.as_ref()?.addr(host, ip)?;
        Some(Outcome::fail(Class::Isolation, why))
    }

    /// Check `host`, resolve it, check every address, then run `attempt` on
    /// every address at once, each under the timeout. A forbidden host or
    /// address fails the probe before anything is dialed. All pass: pass.
    /// Some fail: warn, naming which failed (a client that tries only the
    /// first address may break). All fail: fail.
    pub async fn each_addr<F, Fut>(&self, host: &str, port: u16, attempt: F) -> Outcome
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let timeout = self.timeout;
        let ips = match self.admitted(host).await {
            Ok(ips) => ips,
            Err(o) => return o,
        };
        let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
        // Each attempt is held once, in its timer: an async block around
        // it would hold it twice (captured, then awaited), and a thousand
        // probes in flight hold a thousand of these.
        let done = join_all(addrs.iter().map(|&addr| tokio::time::timeout(timeout, attempt(addr)))).await;
        let tries = addrs
            .into_iter()
            .zip(done)
            .map(|(addr, o)| (addr.to_string(), o.unwrap_or_else(|_| timed_out(addr, timeout))))
            .collect();
        combine(tries, "addresses")
    }

    /// Check `host`, resolve it (under the timeout) and check every address:
    /// the addresses a probe may dial, or why none.
    pub async fn admitted(&self, host: &str) -> Result<Vec<IpAddr>, Outcome> {
        let host = host.trim_matches(['[', ']']);
        if let Some(o) = self.refuse_host(host) {
            return Err(o);
        }
        let timeout = self.timeout;
        let ips = match tokio::time::timeout(timeout, self.net.resolve(host)).await {
            Ok(Ok(ips)) => ips,
            Ok(Err(e)) => return Err(Outcome::fail(Class::Dns, e)),
            Err(_) => {
                return Err(Outcome::fail(
                    Class::Timeout,
                    format!("resolving `{host}` took longer than {}", format_duration(timeout)),
                ));
            }
        };
        if let Some(o) = ips.iter().find_map(|ip| self.refuse_addr(host, *ip)) {
            return Err(o);
        }
        Ok(ips)
    }

    /// Admit `addr` for a client library that opens its own socket to it
    /// (by address, never by name): the guard's verdict on the address.
    pub fn admit(&self, addr: SocketAddr) -> Result<(), Outcome> {
        match self.refuse_addr(&addr.ip().to_string(), addr.ip()) {
            Some(o) => Err(o),
            None => Ok(()),
        }
    }

    /// Open a TCP connection to `addr`, after the guard admits it.
    pub async fn connect(&self, addr: SocketAddr) -> Result<TcpStream, Outcome> {
        self.admit(addr)?;
        let s = TcpStream::connect(addr).await.map_err(|e| io_outcome(addr, &e))?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }

    /// An HTTP client for one (options, host, address, guard) combination,
    /// shared by every probe that needs the same one. `host` is pinned to
    /// `addr` (already admitted); any other name (a redirect) resolves
    /// through the run's resolver and the guard, and a redirect to a host the
    /// guard refuses is never followed.
    pub fn http_client(&self, opts: &ClientOpts, host: &str, addr: SocketAddr) -> Result<reqwest::Client, String> {
        self.client(opts, host, addr, false)
    }

    /// [`Ctx::http_client`] that keeps its connections open between
    /// requests (a load reuses one pool; single probes open a fresh one).
    pub fn pooled_http_client(
        &self,
        opts: &ClientOpts,
        host: &str,
        addr: SocketAddr,
    ) -> Result<reqwest::Client, String> {
        self.client(opts, host, addr, true)
    }

    fn client(&self, opts: &ClientOpts, host: &str, addr: SocketAddr, pooled: bool) -> Result<reqwest::Client, String> {
        let scope = self.guard.as_ref().map(|g| g.scope().to_string()).unwrap_or_default();
        let client = opts.client.as_ref().map(|c| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            c.hash(&mut h);
            h.finish()
        });
        let key = format!(
            "{}|{:?}|{}|{client:?}|{host}|{addr}|{scope}|{pooled}",
            opts.follow_redirects, opts.ca_file, opts.verify
        );
        if let Some(c) = self.net.clients.lock().expect("no poisoning").get(&key) {
            return Ok(c.clone());
        }
        let verifier: Arc<dyn ServerCertVerifier> = if opts.verify {
            self.net.verifier(opts.ca_file.as_deref())?
        } else {
            Arc::new(AcceptAny)
        };
        let guard = self.guard.clone();
        let redirects = if opts.follow_redirects {
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                let refused = guard
                    .as_ref()
                    .zip(attempt.url().host_str())
                    .and_then(|(g, h)| g.host(h.trim_matches(['[', ']'])));
                match refused {
                    Some(why) => attempt.error(Refused(why)),
                    None => attempt.follow(),
                }
            })
        } else {
            reqwest::redirect::Policy::none()
        };
        let mut b = reqwest::Client::builder()
            .use_preconfigured_tls(self.net.tls_config_with(verifier, opts.client.as_ref())?)
            .tls_info(true)
            .no_proxy()
            .http1_only()
            .pool_max_idle_per_host(if pooled { usize::MAX } else { 0 })
            .redirect(redirects)
            .dns_resolver(Arc::new(Resolver {
                net: Arc::downgrade(&self.net),
                guard: self.guard.clone(),
            }))
            .user_agent(concat!("envgate/", env!("CARGO_PKG_VERSION")));
        if host.trim_matches(['[', ']']).parse::<IpAddr>().is_err() {
            b = b.resolve(host, addr);
        }
        let c = b.build().map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        self.net.clients.lock().expect("no poisoning").insert(key, c.clone());
        Ok(c)
    }
}

/// reqwest's own limit.
const MAX_REDIRECTS: usize = 10;

/// How HTTP clients resolve names they were not pinned to (redirect hops):
/// the run's cache, and the guard on the name and on every address.
struct Resolver {
    /// Weak: the run's client cache holds the clients that hold this.
    net: Weak<Net>,
    guard: Option<Arc<dyn Guard>>,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let net = self.net.clone();
        let guard = self.guard.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let refused = |why: String| -> Box<dyn std::error::Error + Send + Sync> { Box::new(Refused(why)) };
            if let Some(why) = guard.as_ref().and_then(|g| g.host(&host)) {
                return Err(refused(why));
            }
            let net = net.upgrade().ok_or("the probe run is over")?;
            let ips = net.resolve(&host).await?;
            if let Some(why) = guard
                .as_ref()
                .and_then(|g| ips.iter().find_map(|ip| g.addr(&host, *ip)))
            {
                return Err(refused(why));
            }
            let addrs: reqwest::dns::Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

type Lookup = Arc<OnceCell<Vec<IpAddr>>>;

#[derive(Default)]
pub struct Net {
    hosts: Mutex<HashMap<String, Lookup>>,
    verifiers: Mutex<HashMap<Option<String>, Arc<dyn ServerCertVerifier>>>,
    clients: Mutex<HashMap<String, reqwest::Client>>,
    dns: OnceCell<Result<hickory_resolver::TokioResolver, String>>,
    run: std::sync::OnceLock<String>,
}

impl Net {
    pub fn new() -> Arc<Net> {
        crate::net::install_crypto();
        Arc::new(Net::default())
    }

    /// This run's id, the `<run>` of HTTP request ids: `ENVGATE_RUN_ID` when
    /// set (e.g. the CI job's id; letters, digits, `.`, `_`, `-`, at most 64),
    /// else 8 hex digits that differ from run to run.
    pub fn run_id(&self) -> &str {
        self.run.get_or_init(|| {
            if let Ok(v) = std::env::var("ENVGATE_RUN_ID") {
                let v = header_safe(&v);
                if !v.is_empty() {
                    return v.chars().take(64).collect();
                }
            }
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let mix = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ (self as *const Net as u64);
            format!("{:08x}", (mix.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32)
        })
    }

    /// The id of request `n` of probe `probe` in this run:
    /// `envgate-<run>-<probe>-<n>`.
    pub fn request_id(&self, probe: &str, n: u64) -> String {
        let probe = if probe.is_empty() {
            "probe".to_string()
        } else {
            header_safe(probe)
        };
        format!("envgate-{}-{probe}-{n}", self.run_id())
    }

    /// Every address of `host`, IPv6 and IPv4, looked up once per run.
    /// Callers check each against the guard: [`Ctx::each_addr`] and the
    /// HTTP clients' resolver.
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String> {
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
                Err(e) => Err(format!(
                    "cannot resolve `{host}`: {}",
                    crate::diagnostic::plain(&e.to_string())
                )),
            }
        })
        .await
        .cloned()
    }

    /// The run's DNS resolver (system configuration), for `dns` probes: they
    /// ask about names and connect to nothing the configuration names.
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

    /// [`Net::tls_config`], presenting `client` when the server asks for a
    /// certificate. Reads the certificate and key (run-time I/O).
    pub fn tls_config_with(
        &self,
        verifier: Arc<dyn ServerCertVerifier>,
        client: Option<&super::certs::ClientCert>,
    ) -> Result<ClientConfig, String> {
        let Some(client) = client else {
            return Ok(self.tls_config(verifier));
        };
        let (certs, key) = client.load()?;
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("cert_file and key_file do not make a client certificate: {e}"))
    }
}

/// Options that make one HTTP client differ from another.
#[derive(Debug, Clone)]
pub struct ClientOpts {
    pub follow_redirects: bool,
    pub ca_file: Option<String>,
    pub verify: bool,
    /// A client certificate to present when the server asks for one.
    pub client: Option<super::certs::ClientCert>,
}

/// `text` with every character a log search or a header value would trip
/// on replaced by `-`.
fn header_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub fn timed_out(addr: SocketAddr, timeout: Duration) -> Outcome {
    Outcome::fail(
        Class::Timeout,
        format!("no answer from {addr} within {}", format_duration(timeout)),
    )
}

/// One outcome from several tries (the addresses of a host, the hosts of a
/// DSN), each labelled: all pass, pass; some fail, warn naming them; all
/// fail, fail. An isolation refusal anywhere is the outcome.
pub fn combine(results: Vec<(String, Outcome)>, what: &str) -> Outcome {
    if results.len() == 1 {
        return results.into_iter().next().expect("one").1;
    }
    if let Some((_, o)) = results.iter().find(|(_, o)| o.class == Some(Class::Isolation)) {
        return o.clone();
    }
    let failed: Vec<_> = results.iter().filter(|(_, o)| o.verdict == Verdict::Fail).collect();
    let ok: Vec<_> = results.iter().filter(|(_, o)| o.verdict != Verdict::Fail).collect();
    let addrs = |v: &[&(String, Outcome)]| v.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>().join(", ");
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
            o.message = format!("{} (all {} {what}: {})", o.message, ok.len(), addrs(&ok));
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
            about: failed[0].1.about.clone(),
            request_id: failed[0].1.request_id.clone(),
            load: None,
            message: format!(
                "{}; answered on {} (a client that tries only the first of these {what} fails)",
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
    if super::fds::exhausted(e) {
        return Outcome::fail(Class::Io, super::fds::exhausted_message());
    }
    match e.kind() {
        K::ConnectionRefused => Outcome::fail(
            Class::Refused,
            format!("connection refused by {addr}: nothing listens on port {}", addr.port()),
        ),
        K::TimedOut => Outcome::fail(Class::Timeout, format!("connecting to {addr} timed out")),
        K::PermissionDenied => Outcome::fail(Class::Permission, format!("not allowed to connect to {addr}")),
        K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof => Outcome::fail(
            Class::Refused,
            format!(
                "{addr} closed the connection: {}",
                crate::diagnostic::plain(&e.to_string())
            ),
        ),
        _ => Outcome::fail(
            Class::Io,
            format!("{addr}: {}", crate::diagnostic::plain(&e.to_string())),
        ),
    }
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
