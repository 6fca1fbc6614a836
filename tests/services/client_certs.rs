//! Client certificates for the SQL kinds, against throwaway servers that
//! require one: a PostgreSQL cluster (initdb) whose pg_hba.conf admits TCP
//! logins over TLS with a certificate its CA signed (`clientcert=verify-ca`),
//! and a MariaDB (mariadb-install-db, mariadbd) whose account is `REQUIRE
//! X509`. With the certificate the probes pass; without it PostgreSQL's
//! refusal fails `tls` saying a client certificate was required, and
//! MariaDB's (a plain "access denied") fails `auth` with that hint.

use envgate::outcome::Status;

use super::support::*;
use super::tls::Pki;

#[tokio::test]
async fn postgres_that_requires_a_client_certificate_passes_with_it_and_says_so_without_it() {
    let pki = Pki::new();
    let ca = std::fs::read_to_string(&pki.ca_file).unwrap();
    let pg = Postgres::start_client_certs(&pki.cert_pem, &pki.key_pem, &ca);
    let url = format!(
        "postgres://postgres:{}@127.0.0.1:{}/postgres?sslmode=verify-full",
        pg.password, pg.port
    );
    wait_until_passes_with("postgres", &url, pki.identified()).await;
    assert_status(
        &probe("postgres", &url, pki.identified()).await,
        Status::Pass,
        "SELECT 1",
    );
    // The key as PEM text, as `${secret:file:...}` gives it.
    let key = std::fs::read_to_string(&pki.client_key).unwrap();
    let f = probe("postgres", &url, |d| {
        d.set("ca_file", &pki.ca_file);
        d.set("cert_file", &pki.client_cert);
        d.set("key_file", key.as_str());
    })
    .await;
    assert_status(&f, Status::Pass, "SELECT 1");
    let f = probe("postgres", &url, pki.trusted()).await;
    assert_status(&f, Status::Fail, "tls: PostgreSQL postgres://postgres:***@127.0.0.1");
    assert!(
        f.message
            .contains("the server requires a client certificate: set `cert_file` and `key_file`"),
        "{}",
        f.message
    );
    assert!(!f.message.contains(&pg.password), "{}", f.message);
}

/// A throwaway MariaDB (mariadb-install-db, mariadbd on a free port) with
/// TLS from the test CA and an account `probe` that must present a
/// certificate that CA signed (`REQUIRE X509`).
struct Mariadb {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Mariadb {
    fn start(pki: &Pki) -> Mariadb {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let uid = uid_of("mysql");
        let gid = uid_gid(uid);
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let data = dir.path().join("data");
        run(Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .current_dir("/"));
        let port = free_port();
        let sock = dir.path().join("sock");
        let key = pki.key_for("mysql");
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", sock.display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .args(["--user=mysql", "--bind-address=127.0.0.1", "--skip-name-resolve"])
            .arg(format!("--port={port}"))
            .args(["--innodb-buffer-pool-size=16M", "--skip-log-bin"])
            .arg(format!("--ssl-cert={}", pki.cert().display()))
            .arg(format!("--ssl-key={}", key.display()))
            .arg(format!("--ssl-ca={}", pki.ca_file))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let server = Mariadb { port, child, _dir: dir };
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "mariadbd did not listen on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        run(Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", sock.display()))
            .args(["-uroot", "-e"])
            .arg("CREATE USER 'probe'@'%' IDENTIFIED BY 'Pr0be-Pa55' REQUIRE X509"));
        server
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = std::time::Instant::now();
        while self.child.try_wait().ok().flatten().is_none() && start.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn mysql_account_that_requires_a_client_certificate_passes_with_it() {
    let pki = Pki::new();
    let db = Mariadb::start(&pki);
    let url = format!("mysql://probe:Pr0be-Pa55@127.0.0.1:{}/", db.port);
    assert_status(&probe("mysql", &url, pki.identified()).await, Status::Pass, "SELECT 1");
    // The key as PEM text, as `${secret:file:...}` gives it.
    let key = std::fs::read_to_string(&pki.client_key).unwrap();
    let f = probe("mysql", &url, |d| {
        d.set("ca_file", &pki.ca_file);
        d.set("cert_file", &pki.client_cert);
        d.set("key_file", key.as_str());
    })
    .await;
    assert_status(&f, Status::Pass, "SELECT 1");
    // Without it, MariaDB refuses the login as it refuses a wrong password
    // (error 1045, nothing about certificates): the probe says what else
    // it may be.
    let f = probe("mysql", &url, pki.trusted()).await;
    assert_status(&f, Status::Fail, "auth: MySQL mysql://probe:***@127.0.0.1");
    assert!(
        f.message
            .contains("requires a client certificate (REQUIRE X509), set `cert_file` and `key_file`"),
        "{}",
        f.message
    );
    assert!(!f.message.contains("Pr0be-Pa55"), "{}", f.message);
    // The server's certificate checked against the system's roots: `tls`.
    let f = probe("mysql", &url, |d| {
        d.set("cert_file", &pki.client_cert);
        d.set("key_file", &pki.client_key);
    })
    .await;
    assert_status(&f, Status::Fail, "tls: MySQL");
}
