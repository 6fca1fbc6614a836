//! AMQP over TLS with a client certificate, against a throwaway RabbitMQ
//! node (the installed server, its own node name, ports and data in a
//! temporary directory) that requires a client certificate this test's CA
//! signed (`fail_if_no_peer_cert`) and offers SASL EXTERNAL
//! (`rabbitmq_auth_mechanism_ssl`, the certificate's common name as the user).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use envgate::outcome::Status;
use envgate::probes::ProbeDef;

use super::support::*;
use super::tls::Pki;

/// A RabbitMQ node listening for TLS only; stopped (with rabbitmqctl, so the
/// Erlang VM goes too) on drop.
struct Node {
    name: String,
    _server: Server,
}

impl Node {
    fn start(pki: &Pki) -> Node {
        let (port, dist) = (free_port(), free_port());
        let name = format!("{}@localhost", unique("rmq"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let conf = dir.path().join("rabbitmq.conf");
        std::fs::write(
            &conf,
            format!(
                "listeners.tcp = none\nlisteners.ssl.default = 127.0.0.1:{port}\n\
                 ssl_options.cacertfile = {}\nssl_options.certfile = {}\nssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = true\n\
                 auth_mechanisms.1 = EXTERNAL\nauth_mechanisms.2 = PLAIN\nssl_cert_login_from = common_name\n",
                pki.ca_file,
                pki.cert().display(),
                pki.key_for("rabbitmq").display()
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("plugins"), "[rabbitmq_auth_mechanism_ssl].\n").unwrap();
        let path = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
        let mut cmd = Command::new("rabbitmq-server");
        cmd.env("RABBITMQ_NODENAME", &name)
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", path("advanced.config"))
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("plugins"))
            .env("RABBITMQ_PID_FILE", path("pid"))
            .env("RABBITMQ_DIST_PORT", dist.to_string());
        let server = Server::spawn(&mut cmd, port, String::new(), dir);
        // The certificate's common name is the user EXTERNAL logs in as.
        let node = Node { name, _server: server };
        node.ctl(&["add_user", "envgate probe", &unique("unused")]);
        node.ctl(&["set_permissions", "-p", "/", "envgate probe", ".*", ".*", ".*"]);
        node
    }

    fn port(&self) -> u16 {
        self._server.port
    }

    fn ctl(&self, args: &[&str]) {
        run(Command::new("rabbitmqctl").args(["-q", "-n", &self.name]).args(args));
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "-n", &self.name, "stop"])
            .output();
    }
}

#[tokio::test]
async fn amqp_with_a_client_certificate_logs_in_with_sasl_external_and_says_so_without_it() {
    let pki = Pki::new();
    let node = Node::start(&pki);
    let url = format!("amqps://127.0.0.1:{}/", node.port());
    wait_until_passes_with("amqp", &url, pki.identified()).await;
    let f = probe("amqp", &url, pki.identified()).await;
    assert_status(
        &f,
        Status::Pass,
        "logged in with its client certificate (SASL EXTERNAL)",
    );

    // No certificate: the broker ends the handshake, and the message says why.
    let f = probe("amqp", &url, pki.trusted()).await;
    assert_status(&f, Status::Fail, "tls: AMQP");
    assert!(f.message.contains("requires a client certificate"), "{}", f.message);

    // The certificate, with the URL's user and password over PLAIN.
    let secret = unique("pw");
    node.ctl(&["add_user", "app", &secret]);
    node.ctl(&["set_permissions", "-p", "/", "app", ".*", ".*", ".*"]);
    let plain = format!("amqps://app:{secret}@127.0.0.1:{}/", node.port());
    let f = probe("amqp", &plain, pki.identified()).await;
    assert_status(&f, Status::Pass, "logged in as `app`");

    // A certificate whose name is no user: EXTERNAL is refused as auth.
    node.ctl(&["delete_user", "envgate probe"]);
    let f = probe("amqp", &url, pki.identified()).await;
    assert_status(&f, Status::Fail, "auth: AMQP");
}

#[tokio::test]
async fn amqp_external_is_refused_before_dialing_without_a_certificate_or_tls() {
    let f = |target: &str, params: &dyn Fn(&mut ProbeDef)| {
        let mut d = ProbeDef::new("amqp");
        params(&mut d);
        let k = envgate::probes::kind("amqp").unwrap();
        (k.build)(&envgate::probes::Spec {
            target,
            params: &d.params,
        })
        .err()
        .map(|e| (e.param, e.message))
    };
    let external = |d: &mut ProbeDef| d.set("sasl_mechanism", "EXTERNAL");
    let (param, message) = f("amqps://mq.internal/", &external).unwrap();
    assert_eq!(param, "sasl_mechanism");
    assert!(message.contains("set `cert_file` and `key_file`"), "{message}");
    let certs_external = |d: &mut ProbeDef| {
        d.set("cert_file", "/etc/ssl/c.pem");
        d.set("key_file", "/etc/ssl/c.key");
        d.set("sasl_mechanism", "EXTERNAL");
    };
    assert!(f("amqp://mq.internal/", &certs_external).is_some());
    assert!(f("amqps://mq.internal/", &certs_external).is_none());
    let (param, _) = f("amqps://mq.internal/", &|d: &mut ProbeDef| {
        d.set("sasl_mechanism", "GSSAPI")
    })
    .unwrap();
    assert_eq!(param, "sasl_mechanism");
}
