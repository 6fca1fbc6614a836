//! Helpers for tests/services.rs: unique names, the servers' admin tools,
//! throwaway server instances stopped on drop, and bounded polling.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use envgate::outcome::Status;
use envgate::probes::{self, Net, ProbeDef};
use envgate::runner::{self, Finished, Job, Options};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other test (or other run) uses: lowercase, digits, underscores.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "eg_{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000
    )
}

/// Runs its closure on drop: removes what a test created, even on failure.
pub struct Cleanup(pub Box<dyn Fn()>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        (self.0)();
    }
}

pub async fn probe(kind: &str, target: &str, f: impl FnOnce(&mut ProbeDef)) -> Finished {
    probe_within(kind, target, Duration::from_secs(5), f).await
}

pub async fn probe_within(kind: &str, target: &str, timeout: Duration, f: impl FnOnce(&mut ProbeDef)) -> Finished {
    let mut d = ProbeDef::new(kind);
    f(&mut d);
    let k = probes::kind(kind).expect("a known kind");
    let spec = probes::Spec {
        target,
        params: &d.params,
    };
    let probe = (k.build)(&spec).unwrap_or_else(|e| panic!("{kind} {target}: {}", e.message));
    let job = Job {
        group: String::new(),
        name: kind.into(),
        probe: Some(probe),
        preset: None,
        timeout: Some(timeout),
        retries: 0,
        warning: false,
        deps: Vec::new(),
        guard: None,
    };
    runner::run(vec![job], &Options::default(), Net::new()).await.remove(0)
}

pub fn assert_status(f: &Finished, s: Status, needle: &str) {
    assert_eq!(f.status, s, "{f:?}");
    assert!(
        f.message.contains(needle),
        "{:?} does not contain {needle:?}",
        f.message
    );
}

/// Poll a probe until it passes (a server starting up), at most 30 s.
pub async fn wait_until_passes(kind: &str, target: &str) {
    wait_until_passes_with(kind, target, |_| {}).await;
}

/// [`wait_until_passes`] with parameters (a TLS probe's `ca_file`).
pub async fn wait_until_passes_with(kind: &str, target: &str, params: impl Fn(&mut ProbeDef)) {
    let start = Instant::now();
    loop {
        let f = probe_within(kind, target, Duration::from_secs(2), &params).await;
        if f.status == Status::Pass {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{kind} never became ready: {}",
            f.message
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn futures_join<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    probes::net::join_all(futs).await
}

#[path = "../common/ports.rs"]
mod ports;
pub use ports::{ClosedPort, free_port};

/// A listener that accepts every connection and never answers.
pub async fn silent_listener() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn uid_of(user: &str) -> u32 {
    run(Command::new("id").args(["-u", user])).trim().parse().unwrap()
}

/// SQL as the `postgres` superuser over the local socket (peer or trust).
pub fn psql(sql: &str) {
    psql_db("postgres", sql);
}

pub fn psql_db(db: &str, sql: &str) {
    let uid = uid_of("postgres");
    run(Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql])
        .current_dir("/")
        .uid(uid)
        .gid(uid_gid(uid)));
}

pub fn uid_gid(uid: u32) -> u32 {
    run(Command::new("id").args(["-g", &uid.to_string()]))
        .trim()
        .parse()
        .unwrap()
}

/// SQL as MariaDB's root over the local socket.
pub fn mariadb(sql: &str) {
    run(Command::new("mariadb").args(["-uroot", "-e", sql]));
}

pub fn redis_cli(args: &[&str]) {
    run(Command::new("redis-cli").args(args));
}

pub fn rabbitmqctl(args: &[&str]) {
    run(Command::new("rabbitmqctl").arg("-q").args(args));
}

pub fn python(code: &str) -> String {
    run(Command::new("python3").args(["-c", code]))
}

/// One NATS request/reply over a plain connection (no client library).
pub fn nats_request(port: u16, subject: &str, payload: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let inbox = format!("_INBOX.{}", unique("t"));
    write!(
        s,
        "CONNECT {{\"verbose\":false}}\r\nSUB {inbox} 1\r\nPUB {subject} {inbox} {}\r\n{payload}\r\n",
        payload.len()
    )
    .unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if let Some(rest) = line.strip_prefix("MSG ") {
            let n: usize = rest.split_whitespace().last().unwrap().parse().unwrap();
            let mut buf = vec![0; n + 2];
            r.read_exact(&mut buf).unwrap();
            return String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        assert!(!line.starts_with("-ERR") && !line.is_empty(), "NATS said {line:?}");
    }
}

/// A throwaway server process on a free loopback port, stopped on drop.
pub struct Server {
    pub port: u16,
    pub secret: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn spawn(cmd: &mut Command, port: u16, secret: String, dir: tempfile::TempDir) -> Server {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            port,
            secret,
            child,
            _dir: dir,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{cmd:?} did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// nats-server with a user and password.
    pub fn nats() -> Server {
        let (port, secret, dir) = (free_port(), unique("pw"), tempfile::tempdir().unwrap());
        let mut cmd = Command::new("nats-server");
        cmd.args([
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--user",
            "app",
            "--pass",
            &secret,
        ]);
        Server::spawn(&mut cmd, port, secret, dir)
    }

    /// mosquitto with a password file and no anonymous clients.
    pub fn mosquitto() -> Server {
        use std::os::unix::fs::PermissionsExt;
        let (port, secret, dir) = (free_port(), unique("pw"), tempfile::tempdir().unwrap());
        // mosquitto drops to its own user: it must be able to read these.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pw = dir.path().join("passwd");
        run(Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&pw)
            .args(["app", &secret]));
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let conf = dir.path().join("mosquitto.conf");
        let text = format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\n",
            pw.display()
        );
        std::fs::write(&conf, text).unwrap();
        let mut cmd = Command::new("mosquitto");
        cmd.arg("-c").arg(&conf);
        Server::spawn(&mut cmd, port, secret, dir)
    }

    /// moto's S3-compatible server (PyPI `moto[server]`).
    pub fn moto() -> Server {
        let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
        let mut cmd = Command::new("moto_server");
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path());
        Server::spawn(&mut cmd, port, String::new(), dir)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An IAM user allowed s3:* and a bucket, then authentication switched on:
/// returns the user's access key id and secret.
pub fn moto_setup(port: u16, bucket: &str) -> Vec<String> {
    let code = format!(
        r#"import boto3, json, urllib.request
base = "http://127.0.0.1:{port}"
kw = dict(endpoint_url=base, aws_access_key_id="admin", aws_secret_access_key="admin", region_name="us-east-1")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="app")
k = iam.create_access_key(UserName="app")["AccessKey"]
doc = {{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}]}}
iam.put_user_policy(UserName="app", PolicyName="s3", PolicyDocument=json.dumps(doc))
boto3.client("s3", **kw).create_bucket(Bucket="{bucket}")
# A plain-text body: moto reads the count from the raw body.
req = urllib.request.Request(base + "/moto-api/reset-auth", data=b"0", method="POST", headers={{"Content-Type": "text/plain"}})
urllib.request.urlopen(req)
print(k["AccessKeyId"])
print(k["SecretAccessKey"])
"#
    );
    python(&code).lines().map(String::from).collect()
}

/// A PostgreSQL cluster of its own (initdb) that checks passwords.
pub struct Postgres {
    pub port: u16,
    pub password: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Postgres {
    pub fn start() -> Postgres {
        Postgres::start_with(None)
    }

    /// With `ssl = on` and this certificate and key (PEM), and a pg_hba.conf
    /// that admits TCP logins over TLS only.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Postgres {
        Postgres::start_with(Some((cert_pem, key_pem, None)))
    }

    /// [`Postgres::start_tls`], and TCP logins need a client certificate
    /// that `ca_pem` signed too (`clientcert=verify-ca`).
    pub fn start_client_certs(cert_pem: &str, key_pem: &str, ca_pem: &str) -> Postgres {
        Postgres::start_with(Some((cert_pem, key_pem, Some(ca_pem))))
    }

    fn start_with(tls: Option<(&str, &str, Option<&str>)>) -> Postgres {
        use std::os::unix::fs::PermissionsExt;
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap()
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())
            .expect("PostgreSQL's server binaries");
        let uid = uid_of("postgres");
        let gid = uid_gid(uid);
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        // Files the server reads: owned by its user, private (a key must be).
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            p
        };
        let password = unique("pw");
        let pwfile = write("pw", &password);
        let data = dir.path().join("data");
        run(Command::new(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=scram-sha-256", "-N"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .current_dir("/")
            .uid(uid)
            .gid(gid));
        let port = free_port();
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D").arg(&data).args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
        ]);
        if let Some((cert, key, ca)) = tls {
            let cert = write("server.crt", cert);
            let key = write("server.key", key);
            let clients = if ca.is_some() { " clientcert=verify-ca" } else { "" };
            let hba = format!("local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256{clients}\n");
            std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
            if let Some(ca) = ca {
                let ca = write("ca.crt", ca);
                cmd.arg("-c").arg(format!("ssl_ca_file={}", ca.display()));
            }
            cmd.args(["-c", "ssl=on"])
                .arg("-c")
                .arg(format!("ssl_cert_file={}", cert.display()))
                .arg("-c")
                .arg(format!("ssl_key_file={}", key.display()));
        }
        let child = cmd
            .arg("-k")
            .arg(dir.path())
            .current_dir("/")
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Postgres {
            port,
            password,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: fast shutdown, the backends go with the postmaster.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
