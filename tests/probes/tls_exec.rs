//! TLS servers with certificates made in the test (rcgen), and `exec` with a
//! real Nagios plugin and with a script that hangs.

use super::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

struct Pki {
    dir: tempfile::TempDir,
    ca_file: String,
    ca: CertifiedIssuer<'static, KeyPair>,
}

fn pki() -> Pki {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "envgate test CA");
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    Pki {
        ca_file: ca_file.to_string_lossy().into_owned(),
        dir,
        ca,
    }
}

/// A TLS server on 127.0.0.1 presenting a certificate for `names`
/// (signed by the CA, or self-signed); it answers one HTTP request.
async fn server(pki: &Pki, names: &[&str], expired: bool, self_signed: bool) -> SocketAddr {
    serve(pki, names, expired, self_signed, false).await
}

/// A client certificate the test CA signed, as files: (cert, key).
fn client_cert(pki: &Pki) -> (String, String) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "envgate probe");
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &pki.ca).unwrap();
    let (c, k) = (pki.dir.path().join("client.crt"), pki.dir.path().join("client.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c.to_string_lossy().into_owned(), k.to_string_lossy().into_owned())
}

async fn serve(pki: &Pki, names: &[&str], expired: bool, self_signed: bool, clients: bool) -> SocketAddr {
    envgate::net::install_crypto();
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    // A CN no system root can share, so the self-signed case is an unknown issuer everywhere.
    p.distinguished_name.push(
        DnType::CommonName,
        if self_signed {
            "envgate self-signed test"
        } else {
            names[0]
        },
    );
    if expired {
        p.not_before = rcgen::date_time_ymd(2019, 1, 1);
        p.not_after = rcgen::date_time_ymd(2020, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = if self_signed {
        p.self_signed(&key).unwrap()
    } else {
        p.signed_by(&key, &pki.ca).unwrap()
    };
    let _ = &pki.dir;
    let builder = rustls::ServerConfig::builder();
    let builder = if clients {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(pki.ca.der().to_vec())).unwrap();
        builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .unwrap(),
        )
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                if let Ok(n) = tls.read(&mut buf).await
                    && n > 0
                {
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn tls_reports_valid_expired_wrong_host_and_self_signed_certificates() {
    let pki = pki();
    let ca = Some(pki.ca_file.clone());
    let valid = server(&pki, &["localhost"], false, false).await;
    let expired = server(&pki, &["localhost"], true, false).await;
    let wrong = server(&pki, &["other.example"], false, false).await;
    let selfs = server(&pki, &["localhost"], false, true).await;
    let t = |a: SocketAddr| format!("tls://localhost:{}", a.port());

    let f = one("tls", &t(valid), |d| d.set("ca_file", ca.clone())).await;
    assert_status(&f, Status::Pass, "issuer CN=envgate test CA");
    assert!(f.message.contains("days left"), "{}", f.message);
    let f = one("tls", &t(valid), |d| {
        d.set("ca_file", ca.clone());
        d.set("min_days_left", 1_000_000);
    })
    .await;
    assert_status(&f, Status::Fail, "expected at least 1000000");
    let f = one("tls", &t(expired), |d| d.set("ca_file", ca.clone())).await;
    assert_status(&f, Status::Fail, "certificate has expired");
    assert!(f.message.contains("not after 2020-01-01"), "{}", f.message);
    let f = one("tls", &t(wrong), |d| d.set("ca_file", ca.clone())).await;
    assert_status(&f, Status::Fail, "not valid for the name `localhost`");
    let f = one("tls", &t(selfs), |_| {}).await;
    assert_status(&f, Status::Fail, "unknown authority");
    assert_eq!(f.class, Some(probes::Class::Tls));

    let https = |a: SocketAddr| format!("https://localhost:{}/", a.port());
    let f = one("http", &https(valid), |d| d.set("ca_file", ca.clone())).await;
    assert_status(&f, Status::Pass, "days left");
    let f = one("http", &https(expired), |d| d.set("ca_file", ca.clone())).await;
    assert_status(&f, Status::Fail, "certificate has expired");
}

const PLUGINS: &str = "/usr/lib/nagios/plugins";

#[tokio::test]
async fn exec_runs_a_real_nagios_plugin() {
    let dummy = format!("{PLUGINS}/check_dummy");
    assert!(
        std::path::Path::new(&dummy).exists(),
        "run scripts/setup/probes.sh to install monitoring-plugins-basic"
    );
    let r = |code: &str| {
        let d = def("exec", |d| {
            d.set("args", vec![code.to_string(), "queue depth 3".to_string()])
        });
        job(code, &d, &dummy, Duration::from_secs(5))
    };
    let out = run(vec![r("0"), r("1"), r("2"), r("3")], Options::default()).await;
    assert_status(&out[0], Status::Pass, "OK: queue depth 3");
    assert_status(&out[1], Status::Warn, "WARNING: queue depth 3");
    assert_status(&out[2], Status::Fail, "CRITICAL: queue depth 3");
    assert_status(&out[3], Status::Fail, "UNKNOWN: queue depth 3");
    assert_eq!(out[3].class, Some(probes::Class::Unknown));
    let f = one("exec", &format!("{PLUGINS}/check_disk"), |d| {
        d.set("args", ["-w", "1%", "-c", "1%", "-p", "/"])
    })
    .await;
    assert!(f.message.contains("/="), "perfdata is parsed: {}", f.message);
    assert!(
        f.metrics.iter().any(|m| m.name == "/" && !m.unit.is_empty()),
        "check_disk's perfdata reaches the report as metrics: {:?}",
        f.metrics
    );
}

#[tokio::test]
async fn exec_perfdata_becomes_report_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("plugin.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"OK - 3 pending | pending=3;5;10;0 'lag time'=0.25s;1;2\"\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let f = one("exec", &script.to_string_lossy(), |_| {}).await;
    assert_status(&f, Status::Pass, "OK - 3 pending");
    let got: Vec<(String, f64, String)> = f
        .metrics
        .iter()
        .map(|m| (m.name.clone(), m.value, m.unit.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("pending".to_string(), 3.0, String::new()),
            ("lag time".to_string(), 0.25, "s".to_string())
        ]
    );
}

#[tokio::test]
async fn exec_kills_a_hanging_script_and_its_children_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let script = dir.path().join("hang.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nsleep 30 &\necho $! > {}\nwait\n", pidfile.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let d = def("exec", |_| {});
    let start = Instant::now();
    let f = run(
        vec![job("hang", &d, &script.to_string_lossy(), Duration::from_millis(300))],
        Options::default(),
    )
    .await;
    assert_status(&f[0], Status::Fail, "killed its process group");
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
            .unwrap_or(true)
    };
    let until = Instant::now() + Duration::from_secs(2);
    while !gone() && Instant::now() < until {
        tokio::task::yield_now().await;
    }
    assert!(gone(), "the script's child {pid} outlived the timeout");
}

#[tokio::test]
async fn a_server_that_requires_a_client_certificate_is_met_with_one_or_says_so() {
    let pki = pki();
    let (cert, key) = client_cert(&pki);
    let mtls = serve(&pki, &["localhost"], false, false, true).await;
    let ca = pki.ca_file.clone();
    let with = |d: &mut ProbeDef| {
        d.set("ca_file", &ca);
        d.set("cert_file", &cert);
        d.set("key_file", &key);
    };
    let tls = format!("tls://localhost:{}", mtls.port());
    let https = format!("https://localhost:{}/", mtls.port());
    assert_status(&one("tls", &tls, with).await, Status::Pass, "valid certificate");
    assert_status(&one("http", &https, with).await, Status::Pass, "200");
    for (kind, target) in [("tls", &tls), ("http", &https)] {
        let f = one(kind, target, |d| d.set("ca_file", &ca)).await;
        assert_status(&f, Status::Fail, "tls: ");
        assert!(f.message.contains("client certificate"), "{kind}: {}", f.message);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_load_verifies_with_the_probes_ca_and_presents_its_client_certificate() {
    let pki = pki();
    let (cert, key) = client_cert(&pki);
    // Requires a client certificate, and closes every connection after its
    // answer: each of the load's requests is a new TLS handshake.
    let mtls = serve(&pki, &["localhost"], false, false, true).await;
    let target = format!("https://localhost:{}/", mtls.port());
    let d = def("http", |d| {
        d.set("ca_file", &pki.ca_file);
        d.set("cert_file", &cert);
        d.set("key_file", &key);
    });
    let inner = (probes::kind("http").unwrap().build)(&probes::Spec {
        target: &target,
        params: &d.params,
    })
    .unwrap();
    let mut j = job("p", &d, &target, Duration::from_secs(20));
    j.probe = Some(Box::new(probes::load::LoadProbe {
        inner,
        spec: probes::load::LoadSpec::adhoc("30x3").unwrap(),
        per_request: Duration::from_secs(2),
    }));
    let f = run(vec![j], Options::default()).await.remove(0);
    assert_status(&f, Status::Pass, "load: 30 requests, 3 at once");
    assert!(f.message.contains("no errors"), "{}", f.message);
}
