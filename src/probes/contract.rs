//! What every probe kind promises isolation, checked over the whole
//! registry: `hosts()` names every host its target names (read the way the
//! configuration rule reads addresses) and every other host it dials, and no
//! kind opens a socket, resolves a name or builds a client except through
//! `net.rs`, where the environment's guard is applied.

use super::{KINDS, Spec, kind};
use crate::net::address::{hosts_in, normalise};

/// One sample per kind: a target, its parameters, and every host the probe
/// must say it dials (beyond those its target names).
const SAMPLES: &[(&str, &str, &str, &[&str])] = &[
    ("http", "https://user:pw@api.example.com:8443/health", "", &[]),
    ("tcp", "cache.example.com:6379", "", &[]),
    ("dns", "db.example.com", "", &[]),
    ("tls", "api.example.com:443", "", &[]),
    ("disk", "/var/lib/app", "", &[]),
    ("file", "/etc/app/config.toml", "", &[]),
    ("exec", "/usr/lib/nagios/plugins/check_dummy", "args = [\"0\"]", &[]),
    (
        "postgres",
        "host=db1.example.com,db2.example.com hostaddr=10.0.0.5,10.0.0.6 port=5432 dbname=orders user=app",
        "",
        &[],
    ),
    ("mysql", "mysql://app:pw@mysql.example.com:3306/orders", "", &[]),
    ("redis", "rediss://:pw@cache.example.com:6380/0", "", &[]),
    ("amqp", "amqps://guest:guest@mq.example.com/vhost", "", &[]),
    ("nats", "nats://nats.example.com:4222", "", &[]),
    (
        "kafka",
        "kafka+ssl://app:pw@kafka1.example.com:9093,kafka2.example.com:9093",
        "",
        &["kafka2.example.com"],
    ),
    ("mqtt", "mqtts://mqtt.example.com", "", &[]),
    (
        "s3",
        "s3://orders/app-",
        "endpoint = \"http://0x0a.0.0.7:9000\"",
        &["10.0.0.7"],
    ),
    (
        "gcs",
        "gs://orders/app-",
        "endpoint = \"http://10.0.0.8:4443\"",
        &["10.0.0.8"],
    ),
    (
        "azblob",
        "az://invoices/app-",
        "connection_string = \"AccountName=dev;AccountKey=a2V5;BlobEndpoint=http://10.0.0.9:10000/dev\"",
        &["10.0.0.9"],
    ),
];

#[test]
fn every_kind_says_it_dials_every_host_its_target_names() {
    for k in KINDS {
        assert!(
            SAMPLES.iter().any(|(name, ..)| *name == k.name),
            "add a sample for the `{}` kind",
            k.name
        );
    }
    for (name, target, params, also) in SAMPLES {
        let params: toml::Table = toml::from_str(params).unwrap();
        let k = kind(name).unwrap();
        let probe = (k.build)(&Spec {
            target,
            params: &params,
        })
        .unwrap_or_else(|e| panic!("{name}: {}", e.message));
        let said: Vec<String> = probe.hosts().into_iter().map(|e| e.host).collect();
        let mut want: Vec<String> = hosts_in(target)
            .into_iter()
            .filter(|h| h.certain && !matches!(*name, "dns" | "disk" | "file" | "exec"))
            .map(|h| h.name)
            .collect();
        want.extend(also.iter().map(|h| normalise(h).unwrap()));
        for h in &want {
            assert!(said.contains(h), "{name} {target}: hosts() says {said:?}, missing {h}");
        }
    }
}

#[test]
fn a_multi_host_dsn_names_every_host_and_hostaddr() {
    let params = toml::Table::new();
    let p = (kind("postgres").unwrap().build)(&Spec {
        target: "host=db1.example.com,db2.example.com hostaddr=10.0.0.5,10.0.0.6 port=5432,5433 dbname=x",
        params: &params,
    })
    .unwrap();
    let hosts: Vec<(String, Option<u16>)> = p.hosts().into_iter().map(|e| (e.host, e.port)).collect();
    assert_eq!(
        hosts,
        [
            ("10.0.0.5".to_string(), Some(5432)),
            ("db1.example.com".to_string(), Some(5432)),
            ("10.0.0.6".to_string(), Some(5433)),
            ("db2.example.com".to_string(), Some(5433)),
        ]
    );
}

#[test]
fn hosts_are_normalised_as_the_client_dials_them() {
    let params = toml::Table::new();
    for (name, target) in [
        ("http", "http://0x7f.0.0.2:8000/"),
        ("http", "http://[::ffff:127.0.0.2]/"),
        ("http", "http://127.0.0.2\\@127.0.0.1/"),
        ("tcp", "127.2:80"),
        ("redis", "redis://2130706434:6379/0"),
        ("postgres", "postgres:///x?host=127.0.0.2"),
        ("postgres", "postgres://%31%32%37.0.0.2/x"),
    ] {
        let p = (kind(name).unwrap().build)(&Spec {
            target,
            params: &params,
        })
        .unwrap();
        let hosts: Vec<String> = p.hosts().into_iter().map(|e| e.host).collect();
        assert_eq!(hosts, ["127.0.0.2"], "{name} {target}");
    }
}

#[test]
fn a_host_header_or_a_server_name_is_a_host_too() {
    let params: toml::Table = toml::from_str("headers = { Host = \"api.prod.example.com:8443\" }").unwrap();
    let p = (kind("http").unwrap().build)(&Spec {
        target: "http://10.0.0.5/",
        params: &params,
    })
    .unwrap();
    let hosts: Vec<String> = p.hosts().into_iter().map(|e| e.host).collect();
    assert_eq!(hosts, ["10.0.0.5", "api.prod.example.com"]);
    let params: toml::Table = toml::from_str("server_name = \"api.prod.example.com\"").unwrap();
    let p = (kind("tls").unwrap().build)(&Spec {
        target: "10.0.0.5:443",
        params: &params,
    })
    .unwrap();
    let hosts: Vec<String> = p.hosts().into_iter().map(|e| e.host).collect();
    assert_eq!(hosts, ["10.0.0.5", "api.prod.example.com"]);
}

/// Calls that dial, resolve or build a client, and the one file allowed to
/// make them (`net.rs`) or the reason another may.
const DIALING: &[&str] = &[
    "TcpStream::connect",
    "TcpSocket",
    "UdpSocket",
    "lookup_host",
    "ToSocketAddrs",
    "to_socket_addrs",
    "Client::builder",
    "Client::new",
    "ClientBuilder",
    "tokio_postgres::connect",
    "Config::connect(",
    ".connect(self.config",
];

#[test]
fn no_kind_dials_except_through_the_guarded_network() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/probes");
    let mut found = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = e.path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !file.ends_with(".rs") || file == "net.rs" || file == "contract.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            // object_store's client around the guarded transport, whose
            // requests all go through `Ctx::http_client`.
            if file == "objects.rs" && code.contains("HttpClient::new(Service") {
                continue;
            }
            for d in DIALING {
                if code.contains(d) {
                    found.push(format!("src/probes/{file}:{}: {d}", n + 1));
                }
            }
        }
        // mysql_async opens its own socket: only to an address the guard
        // admitted.
        if text.contains("Conn::new(") {
            assert!(
                text.contains("ctx.admit(addr)"),
                "src/probes/{file} opens a MySQL connection without ctx.admit"
            );
        }
    }
    assert!(
        found.is_empty(),
        "dial through Ctx (each_addr, connect, http_client), which applies isolation:\n{}",
        found.join("\n")
    );
}
