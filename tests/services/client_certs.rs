//! Client certificates for the SQL kinds, against throwaway servers that
//! require one: a PostgreSQL cluster (initdb) whose pg_hba.conf admits TCP
//! logins over TLS with a certificate its CA signed (`clientcert=verify-ca`).
//! With the certificate the probe passes; without it, it fails `tls` and
//! says a client certificate was required.

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
