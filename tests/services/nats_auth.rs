//! NATS with the authentication production uses, against throwaway
//! nats-server processes on free ports: a user nkey (the server's nonce
//! signed with the seed), a JWT `.creds` account (operator, account and user
//! JWTs made here with the nkeys crate, served from the server's memory
//! resolver), a token, a server that requires a client certificate
//! (`--tlsverify`), TLS before INFO (a TLS front in this test, the
//! installed server predating `handshake_first`) and several servers in one
//! target.

use std::path::Path;
use std::process::Command;

use envgate::outcome::Status;
use serde_json::json;

use super::support::*;
use super::tls::Pki;

/// nats-server started from a configuration file; `{port}` in it is the
/// free port it listens on.
fn nats_with(conf: &str) -> Server {
    let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
    let path = dir.path().join("nats.conf");
    let text = format!(
        "listen: 127.0.0.1:{port}\n{}",
        conf.replace("{port}", &port.to_string())
    );
    std::fs::write(&path, text).unwrap();
    let mut cmd = Command::new("nats-server");
    cmd.arg("-c").arg(&path);
    Server::spawn(&mut cmd, port, String::new(), dir)
}

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

/// A NATS JWT (`ed25519-nkey`) for `subject`, signed by `issuer`.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, nats: serde_json::Value) -> String {
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = json!({
        "jti": unique("jti").to_uppercase(),
        "iat": 1_700_000_000,
        "iss": issuer.public_key(),
        "name": "envgate-test",
        "sub": subject,
        "nats": nats,
    });
    let claims = b64(claims.to_string().as_bytes());
    let signed = format!("{header}.{claims}");
    let sig = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64(&sig))
}

fn creds(user_jwt: &str, user: &nkeys::KeyPair) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().unwrap()
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn nats_with_nkeys_signs_the_nonce_and_a_wrong_seed_fails_auth() {
    let user = nkeys::KeyPair::new_user();
    let server = nats_with(&format!(
        "authorization {{ users = [ {{ nkey: {} }} ] }}\n",
        user.public_key()
    ));
    let dir = tempfile::tempdir().unwrap();
    let seed = user.seed().unwrap();
    let seed_file = write(dir.path(), "user.nk", &format!("{seed}\n"));
    let url = format!("nats://127.0.0.1:{}", server.port);
    wait_until_passes_with("nats", &url, |d| d.set("nkey_file", &seed_file)).await;
    let f = probe("nats", &url, |d| d.set("nkey_file", &seed_file)).await;
    assert_status(&f, Status::Pass, "connected and PONG");
    // The seed itself, as `${secret:file:...}` gives it.
    let f = probe("nats", &url, |d| d.set("nkey_file", &seed)).await;
    assert_status(&f, Status::Pass, "connected and PONG");
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let f = probe("nats", &url, |d| d.set("nkey_file", &stranger)).await;
    assert_status(&f, Status::Fail, "auth: NATS nats://127.0.0.1");
    assert!(f.message.contains("Authorization Violation"), "{}", f.message);
    assert!(
        !f.message.contains(&stranger) && !f.message.contains(&seed),
        "{}",
        f.message
    );
    let f = probe("nats", &url, |_| {}).await;
    assert_status(&f, Status::Fail, "auth: NATS");
}

#[tokio::test]
async fn nats_with_a_creds_file_passes_and_a_user_of_an_unknown_account_fails_auth() {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        json!({"type": "operator", "version": 2}),
    );
    let unlimited = json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1});
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        json!({"limits": unlimited, "type": "account", "version": 2}),
    );
    let user_claims = json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
        "type": "user", "version": 2});
    let user_jwt = jwt(&account, &user.public_key(), user_claims.clone());
    let server = nats_with(&format!(
        "operator: {operator_jwt}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {account_jwt}\n}}\n",
        account.public_key()
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "user.creds", &creds(&user_jwt, &user));
    let url = format!("nats://127.0.0.1:{}", server.port);
    wait_until_passes_with("nats", &url, |d| d.set("creds_file", &file)).await;
    let f = probe("nats", &url, |d| d.set("creds_file", &file)).await;
    assert_status(&f, Status::Pass, "connected and PONG");
    // The file's text, as `${secret:file:...}` gives it, works too.
    let text = creds(&user_jwt, &user);
    assert_status(
        &probe("nats", &url, |d| d.set("creds_file", &text)).await,
        Status::Pass,
        "PONG",
    );
    // A user whose account the operator never signed.
    let rogue = nkeys::KeyPair::new_account();
    let rogue_jwt = jwt(&rogue, &user.public_key(), user_claims);
    let bad = write(dir.path(), "rogue.creds", &creds(&rogue_jwt, &user));
    let f = probe("nats", &url, |d| d.set("creds_file", &bad)).await;
    assert_status(&f, Status::Fail, "auth: NATS");
    assert!(!f.message.contains(&user.seed().unwrap()), "{}", f.message);
    // Something that is not a .creds file says so.
    let junk = write(dir.path(), "junk.creds", "hello\n");
    let f = probe("nats", &url, |d| d.set("creds_file", &junk)).await;
    assert_status(&f, Status::Fail, "is not a NATS .creds file");
}

#[tokio::test]
async fn nats_with_a_token_passes_and_a_wrong_token_fails_auth() {
    let token = unique("tok");
    let server = nats_with(&format!("authorization {{ token: \"{token}\" }}\n"));
    let url = format!("nats://{token}@127.0.0.1:{}", server.port);
    wait_until_passes("nats", &url).await;
    assert_status(&probe("nats", &url, |_| {}).await, Status::Pass, "PONG");
    let wrong = format!("nats://not-the-token@127.0.0.1:{}", server.port);
    assert_status(&probe("nats", &wrong, |_| {}).await, Status::Fail, "auth: NATS");
}

#[tokio::test]
async fn nats_that_requires_a_client_certificate_passes_with_it_and_says_so_without_it() {
    let pki = Pki::new();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("nats-server");
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "--tlsverify"])
        .args(["--tlscert", &pki.cert().to_string_lossy()])
        .args(["--tlskey", &pki.key_for("root").to_string_lossy()])
        .args(["--tlscacert", &pki.ca_file]);
    let server = Server::spawn(&mut cmd, port, String::new(), dir);
    let url = format!("tls://127.0.0.1:{}", server.port);
    wait_until_passes_with("nats", &url, pki.identified()).await;
    assert_status(&probe("nats", &url, pki.identified()).await, Status::Pass, "PONG");
    let f = probe("nats", &url, pki.trusted()).await;
    assert_status(&f, Status::Fail, "tls: NATS");
    assert!(f.message.contains("requires a client certificate"), "{}", f.message);
}

#[tokio::test]
async fn nats_with_tls_first_handshakes_before_info() {
    let pki = Pki::new();
    let server = Server::nats();
    let front = pki.front(server.port, false).await;
    let url = format!("nats://app:{}@127.0.0.1:{front}", server.secret);
    let first = |d: &mut envgate::probes::ProbeDef| {
        d.set("ca_file", &pki.ca_file);
        d.set("tls_first", true);
    };
    wait_until_passes_with("nats", &url, first).await;
    assert_status(&probe("nats", &url, first).await, Status::Pass, "PONG");
    // Without it the client waits for an INFO a TLS-first server never sends.
    let f = probe_within("nats", &url, std::time::Duration::from_millis(500), pki.trusted()).await;
    assert_status(&f, Status::Fail, "timeout: NATS");
    // tls_first against a plain server: that port does not speak TLS.
    let plain = format!("nats://app:{}@127.0.0.1:{}", server.secret, server.port);
    let f = probe("nats", &plain, first).await;
    assert_status(&f, Status::Fail, "protocol: NATS");
    assert!(!f.message.contains(&server.secret), "{}", f.message);
}

#[tokio::test]
async fn nats_with_several_servers_probes_each_and_warns_when_one_is_down() {
    let a = nats_with("authorization { token: \"s3cret-tok\" }\n");
    let b = nats_with("authorization { token: \"s3cret-tok\" }\n");
    let both = format!("nats://s3cret-tok@127.0.0.1:{},127.0.0.1:{}", a.port, b.port);
    wait_until_passes("nats", &both).await;
    let f = probe("nats", &both, |_| {}).await;
    assert_status(&f, Status::Pass, "all 2 servers");
    let closed = ClosedPort::new();
    let one_down = format!(
        "nats://s3cret-tok@127.0.0.1:{},nats://127.0.0.1:{}",
        a.port, closed.port
    );
    let f = probe("nats", &one_down, |_| {}).await;
    assert_status(&f, Status::Warn, "refused");
    assert!(
        f.message.contains(&format!("answered on 127.0.0.1:{}", a.port)),
        "{}",
        f.message
    );
    assert!(!f.message.contains("s3cret-tok"), "{}", f.message);
}
