//! Service probes over TLS against real servers that speak it: a throwaway
//! PostgreSQL with `ssl = on` (and TCP logins over TLS only), redis-server on
//! a `--tls-port`, mosquitto with a TLS listener and nats-server with
//! `--tls`, each presenting a certificate for 127.0.0.1 that a CA made here
//! (rcgen) signed. Verified against that CA (`ca_file`) they pass; verified
//! against the system's roots they fail `tls`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use envgate::outcome::Status;
use envgate::probes::ProbeDef;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use super::support::*;

/// A CA and a server certificate for 127.0.0.1 it signed, as PEM text and
/// as files in a directory others may read (servers drop privileges).
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_file: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// A client certificate the CA signed, and its key, as files.
    pub client_cert: String,
    pub client_key: String,
}

impl Pki {
    pub fn new() -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "envgate services test CA");
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        let mut p = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "envgate services test server");
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &ca).unwrap();
        let mut c = CertificateParams::new(Vec::<String>::new()).unwrap();
        c.distinguished_name.push(DnType::CommonName, "envgate probe");
        let client_key = KeyPair::generate().unwrap();
        let client = c.signed_by(&client_key, &ca).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let pki = Pki {
            ca_file: file("ca.pem"),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            client_cert: file("client.crt"),
            client_key: file("client.key"),
            dir,
        };
        std::fs::write(&pki.client_cert, client.pem()).unwrap();
        std::fs::write(&pki.client_key, client_key.serialize_pem()).unwrap();
        std::fs::write(&pki.ca_file, ca.pem()).unwrap();
        std::fs::write(pki.cert(), &pki.cert_pem).unwrap();
        std::fs::write(pki.key(), &pki.key_pem).unwrap();
        std::fs::set_permissions(pki.key(), std::fs::Permissions::from_mode(0o600)).unwrap();
        pki
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }

    /// The server's key: mode 0600, owned by `user` (the server's).
    pub fn key_for(&self, user: &str) -> PathBuf {
        let uid = uid_of(user);
        std::os::unix::fs::chown(self.key(), Some(uid), Some(uid_gid(uid))).unwrap();
        self.key()
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// A TLS front on a free port that terminates TLS with this PKI's
    /// server certificate and forwards to `backend` on loopback: a server
    /// with TLS before its first word (NATS `handshake_first`), or, with
    /// `clients`, one that requires a client certificate this CA signed.
    pub async fn front(&self, backend: u16, clients: bool) -> u16 {
        use std::sync::Arc;

        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = vec![CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if clients {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_file_iter(&self.ca_file).unwrap() {
                roots.add(ca.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder.with_single_cert(certs, key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(s).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        port
    }

    pub fn trusted(&self) -> impl Fn(&mut ProbeDef) + '_ {
        |d: &mut ProbeDef| d.set("ca_file", &self.ca_file)
    }

    /// Trusted, and presenting the client certificate.
    pub fn identified(&self) -> impl Fn(&mut ProbeDef) + '_ {
        |d: &mut ProbeDef| {
            d.set("ca_file", &self.ca_file);
            d.set("cert_file", &self.client_cert);
            d.set("key_file", &self.client_key);
        }
    }
}

fn arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// redis-server on a TLS port only, with a password; `clients`: whether it
/// requires a client certificate its CA signed.
pub fn redis_tls(pki: &Pki) -> Server {
    redis_tls_with(pki, false)
}

fn redis_tls_with(pki: &Pki, clients: bool) -> Server {
    let (port, secret, dir) = (free_port(), unique("pw"), tempfile::tempdir().unwrap());
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", "0", "--bind", "127.0.0.1", "--tls-port", &port.to_string()])
        .args([
            "--tls-cert-file",
            &arg(&pki.cert()),
            "--tls-key-file",
            &arg(&pki.key_for("root")),
        ])
        .args([
            "--tls-ca-cert-file",
            &pki.ca_file,
            "--tls-auth-clients",
            if clients { "yes" } else { "no" },
        ])
        .args(["--requirepass", &secret, "--save", "", "--appendonly", "no"])
        .args(["--dir", &arg(dir.path())]);
    Server::spawn(&mut cmd, port, secret, dir)
}

/// mosquitto with a TLS listener, anonymous clients allowed.
fn mosquitto_tls(pki: &Pki) -> Server {
    let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
    let conf = dir.path().join("mosquitto.conf");
    let text = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\ncertfile {}\nkeyfile {}\n",
        pki.cert().display(),
        pki.key_for("mosquitto").display()
    );
    std::fs::write(&conf, text).unwrap();
    let mut cmd = Command::new("mosquitto");
    cmd.arg("-c").arg(&conf);
    Server::spawn(&mut cmd, port, String::new(), dir)
}

/// nats-server that requires TLS (after its INFO line).
fn nats_tls(pki: &Pki) -> Server {
    let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
    let mut cmd = Command::new("nats-server");
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "--tls"]).args([
        "--tlscert",
        &arg(&pki.cert()),
        "--tlskey",
        &arg(&pki.key_for("root")),
    ]);
    Server::spawn(&mut cmd, port, String::new(), dir)
}

#[tokio::test]
async fn postgres_over_tls_requires_and_verifies_against_the_ca() {
    let pki = Pki::new();
    let pg = Postgres::start_tls(&pki.cert_pem, &pki.key_pem);
    let base = format!("postgres://postgres:{}@127.0.0.1:{}/postgres", pg.password, pg.port);
    let require = format!("{base}?sslmode=require");
    wait_until_passes("postgres", &require).await;
    assert_status(&probe("postgres", &require, |_| {}).await, Status::Pass, "SELECT 1");
    let full = format!("{base}?sslmode=verify-full");
    assert_status(&probe("postgres", &full, pki.trusted()).await, Status::Pass, "SELECT 1");
    // The same, verified against the system's roots: an unknown issuer.
    let f = probe("postgres", &full, |_| {}).await;
    assert_status(&f, Status::Fail, "tls: PostgreSQL postgres://postgres:***@127.0.0.1");
    assert!(!f.message.contains(&pg.password), "{}", f.message);
    // No sslmode is libpq's `prefer`: TLS when the server offers it.
    assert_status(&probe("postgres", &base, |_| {}).await, Status::Pass, "SELECT 1");
    // pg_hba.conf admits TCP logins over TLS only: the passes above spoke TLS.
    let f = probe("postgres", &format!("{base}?sslmode=disable"), |_| {}).await;
    assert_status(&f, Status::Fail, "auth: PostgreSQL");
    assert!(f.message.contains("no encryption"), "{}", f.message);
}

#[tokio::test]
async fn redis_over_tls_passes_with_the_ca_and_fails_tls_without_it() {
    let pki = Pki::new();
    let server = redis_tls(&pki);
    let url = format!("rediss://:{}@127.0.0.1:{}/0", server.secret, server.port);
    wait_until_passes_with("redis", &url, pki.trusted()).await;
    assert_status(&probe("redis", &url, pki.trusted()).await, Status::Pass, "PONG");
    let f = probe("redis", &url, |_| {}).await;
    assert_status(&f, Status::Fail, "tls: Redis rediss://:***@127.0.0.1");
    assert!(!f.message.contains(&server.secret), "{}", f.message);
    let wrong = format!("rediss://:wrong-Pa55@127.0.0.1:{}/0", server.port);
    let f = probe("redis", &wrong, pki.trusted()).await;
    assert_status(&f, Status::Fail, "auth: Redis rediss://");
    assert!(!f.message.contains("wrong-Pa55"), "{}", f.message);
}

#[tokio::test]
async fn mqtt_and_nats_over_tls_pass_with_the_ca_and_fail_tls_without_it() {
    let pki = Pki::new();
    let mqtt = mosquitto_tls(&pki);
    let url = format!("mqtts://127.0.0.1:{}", mqtt.port);
    wait_until_passes_with("mqtt", &url, pki.trusted()).await;
    assert_status(&probe("mqtt", &url, pki.trusted()).await, Status::Pass, "CONNACK");
    assert_status(&probe("mqtt", &url, |_| {}).await, Status::Fail, "tls: MQTT mqtts://");

    let nats = nats_tls(&pki);
    // The server asks for TLS in its INFO: a nats:// URL upgrades too.
    for url in [
        format!("tls://127.0.0.1:{}", nats.port),
        format!("nats://127.0.0.1:{}", nats.port),
    ] {
        wait_until_passes_with("nats", &url, pki.trusted()).await;
        assert_status(&probe("nats", &url, pki.trusted()).await, Status::Pass, "NATS");
        assert_status(&probe("nats", &url, |_| {}).await, Status::Fail, "tls: NATS");
    }
}

#[tokio::test]
async fn redis_that_requires_a_client_certificate_passes_with_it_and_says_so_without_it() {
    let pki = Pki::new();
    let server = redis_tls_with(&pki, true);
    let url = format!("rediss://:{}@127.0.0.1:{}/0", server.secret, server.port);
    wait_until_passes_with("redis", &url, pki.identified()).await;
    assert_status(&probe("redis", &url, pki.identified()).await, Status::Pass, "PONG");
    let f = probe("redis", &url, pki.trusted()).await;
    assert_status(&f, Status::Fail, "tls: ");
    assert!(f.message.contains("requires a client certificate"), "{}", f.message);
    // The key given as PEM text (what `${secret:file:...}` reads) works too,
    // and never shows up in a message.
    let key_text = std::fs::read_to_string(&pki.client_key).unwrap();
    let f = probe("redis", &url, |d| {
        d.set("ca_file", &pki.ca_file);
        d.set("cert_file", &pki.client_cert);
        d.set("key_file", &key_text);
    })
    .await;
    assert_status(&f, Status::Pass, "PONG");
    // A certificate without its key is a mistake in the check file.
    let spec_err = envgate::probes::kind("redis").map(|k| {
        let mut d = ProbeDef::new("redis");
        d.set("cert_file", &pki.client_cert);
        (k.build)(&envgate::probes::Spec {
            target: &url,
            params: &d.params,
        })
        .err()
        .map(|e| (e.param, e.message))
    });
    let (param, message) = spec_err.flatten().unwrap();
    assert_eq!(param, "cert_file");
    assert!(message.contains("set `key_file` too"), "{message}");
}

#[tokio::test]
async fn mqtt_that_requires_a_client_certificate_passes_with_it_and_says_so_without_it() {
    let pki = Pki::new();
    let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
    let conf = dir.path().join("mosquitto.conf");
    let text = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\ncertfile {}\nkeyfile {}\n\
         cafile {}\nrequire_certificate true\n",
        pki.cert().display(),
        pki.key_for("mosquitto").display(),
        pki.ca_file
    );
    std::fs::write(&conf, text).unwrap();
    let mut cmd = Command::new("mosquitto");
    cmd.arg("-c").arg(&conf);
    let server = Server::spawn(&mut cmd, port, String::new(), dir);
    let url = format!("mqtts://127.0.0.1:{}", server.port);
    wait_until_passes_with("mqtt", &url, pki.identified()).await;
    assert_status(&probe("mqtt", &url, pki.identified()).await, Status::Pass, "CONNACK");
    let f = probe("mqtt", &url, pki.trusted()).await;
    assert_status(&f, Status::Fail, "tls: MQTT mqtts://");
    assert!(f.message.contains("requires a client certificate"), "{}", f.message);
}
