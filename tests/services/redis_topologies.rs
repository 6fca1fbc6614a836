//! Redis as production deploys it, against throwaway servers on free ports:
//! a master with a password behind a sentinel that has its own
//! (`redis-server --sentinel`, the program Debian's redis-sentinel package
//! links to), and a three-master Cluster made with `redis-cli --cluster
//! create`, whose keys live on different nodes (MOVED), one slot of which is
//! being migrated (ASK), and which fails when a master dies. `valkey://`
//! is the same protocol under Valkey's scheme.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use envgate::outcome::Status;
use envgate::probes::ProbeDef;

use super::envs::{named, project, run_staging};
use super::support::*;

fn redis_server(args: &[&str], dir: &Path) -> Server {
    let port = free_port();
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(args);
    Server::spawn(&mut cmd, port, String::new(), tempfile::tempdir().unwrap())
}

/// A sentinel watching `master` (quorum 1), requiring `password` itself.
fn sentinel(master_port: u16, master_password: &str, password: &str) -> Server {
    let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nrequirepass {password}\n\
             sentinel monitor orders 127.0.0.1 {master_port} 1\n\
             sentinel auth-pass orders {master_password}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("redis-server");
    cmd.arg(&conf).arg("--sentinel");
    Server::spawn(&mut cmd, port, password.to_string(), dir)
}

#[tokio::test]
async fn redis_behind_sentinel_probes_the_master_the_sentinel_names() {
    let dir = tempfile::tempdir().unwrap();
    let pw = unique("pw");
    let master = redis_server(&["--requirepass", &pw], dir.path());
    let spw = unique("spw");
    let sentinel = sentinel(master.port, &pw, &spw);
    let url = format!("redis+sentinel://:{pw}@127.0.0.1:{}/orders/0", sentinel.port);
    let with_pw = |d: &mut ProbeDef| d.set("sentinel_password", &spw);
    wait_until_passes_with("redis", &url, with_pw).await;
    let f = probe("redis", &url, with_pw).await;
    assert_status(
        &f,
        Status::Pass,
        &format!(
            "master `orders` at 127.0.0.1:{} (from sentinel 127.0.0.1:{})",
            master.port, sentinel.port
        ),
    );
    assert!(f.message.contains("PONG"), "{}", f.message);
    assert!(!f.message.contains(&pw) && !f.message.contains(&spw), "{}", f.message);

    // The same as a `sentinels` list and `master_name`, the first sentinel
    // down: the next one answers.
    let down = ClosedPort::new();
    let listed = |d: &mut ProbeDef| {
        d.set("sentinel_password", &spw);
        d.set(
            "sentinels",
            vec![
                format!("127.0.0.1:{}", down.port),
                format!("127.0.0.1:{}", sentinel.port),
            ],
        );
        d.set("master_name", "orders");
    };
    let target = format!("redis://:{pw}@127.0.0.1/0");
    assert_status(&probe("redis", &target, listed).await, Status::Pass, "master `orders`");

    // A master the sentinel does not watch; the sentinel's own password
    // missing; the master's password wrong.
    let f = probe(
        "redis",
        &format!("redis+sentinel://:{pw}@127.0.0.1:{}/billing", sentinel.port),
        with_pw,
    )
    .await;
    assert_status(&f, Status::Fail, "not_found: Redis");
    assert!(
        f.message.contains("does not monitor a master named `billing`"),
        "{}",
        f.message
    );
    let f = probe("redis", &url, |_| {}).await;
    assert_status(&f, Status::Fail, "auth: Redis");
    let wrong = format!("redis+sentinel://:wrong-Pa55@127.0.0.1:{}/orders", sentinel.port);
    let f = probe("redis", &wrong, with_pw).await;
    assert_status(&f, Status::Fail, "auth: Redis");
    assert!(f.message.contains("master `orders`"), "{}", f.message);
    assert!(!f.message.contains("wrong-Pa55"), "{}", f.message);
}

#[tokio::test]
async fn a_sentinel_with_acl_users_takes_sentinel_user_and_password() {
    let dir = tempfile::tempdir().unwrap();
    let master = redis_server(&[], dir.path());
    let (port, sdir) = (free_port(), tempfile::tempdir().unwrap());
    let conf = sdir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nuser default off\nuser watcher on >w4tch-pw ~* &* +@all\n\
             sentinel monitor orders 127.0.0.1 {} 1\n",
            sdir.path().display(),
            master.port
        ),
    )
    .unwrap();
    let mut cmd = Command::new("redis-server");
    cmd.arg(&conf).arg("--sentinel");
    let sentinel = Server::spawn(&mut cmd, port, String::new(), sdir);
    let url = format!("redis+sentinel://127.0.0.1:{}/orders", sentinel.port);
    let acl = |d: &mut ProbeDef| {
        d.set("sentinel_user", "watcher");
        d.set("sentinel_password", "w4tch-pw");
    };
    wait_until_passes_with("redis", &url, acl).await;
    assert_status(&probe("redis", &url, acl).await, Status::Pass, "master `orders`");
    let f = probe("redis", &url, |d| d.set("sentinel_password", "w4tch-pw")).await;
    assert_status(&f, Status::Fail, "auth: Redis");
    assert!(f.message.contains("Redis Sentinel"), "{}", f.message);
    assert!(!f.message.contains("w4tch-pw"), "{}", f.message);
}

#[test]
fn a_sentinel_that_names_a_master_in_another_environment_is_refused() {
    // The master listens on 127.0.0.2 too; the sentinel names it there.
    let dir = tempfile::tempdir().unwrap();
    let master = redis_server(&["--bind", "127.0.0.1 127.0.0.2"], dir.path());
    let (port, sdir) = (free_port(), tempfile::tempdir().unwrap());
    let conf = sdir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor orders 127.0.0.2 {} 1\n",
            sdir.path().display(),
            master.port
        ),
    )
    .unwrap();
    let mut cmd = Command::new("redis-server");
    cmd.arg(&conf).arg("--sentinel");
    let sentinel = Server::spawn(&mut cmd, port, String::new(), sdir);
    let staging = format!(
        "[cache]\nurl = \"redis+sentinel://127.0.0.1:{}/orders\"\n",
        sentinel.port
    );
    let checks = "[[probe]]\nname = \"cache\"\nkind = \"redis\"\ntarget = \"${cache.url}\"\n";
    let dir = project("[isolation.prod]\nhosts = [\"127.0.0.2/32\"]\n", &staging, checks);
    let (code, results, all) = run_staging(dir.path(), "check");
    assert_eq!(code, Some(1), "{all}");
    let r = named(&results, "cache");
    assert_eq!(r["category"], "isolation", "{r:#}");
    assert!(r["message"].as_str().unwrap().contains("127.0.0.2"), "{r:#}");
    // With prod elsewhere, the same master passes.
    let dir = project("[isolation.prod]\nhosts = [\"10.9.9.9/32\"]\n", &staging, checks);
    let (code, results, all) = run_staging(dir.path(), "check");
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(named(&results, "cache")["status"], "pass", "{results:#?}");
}

#[test]
fn sentinel_targets_and_parameters_that_cannot_work_say_why() {
    let build = |target: &str, f: &dyn Fn(&mut ProbeDef)| {
        let mut d = ProbeDef::new("redis");
        f(&mut d);
        (envgate::probes::kind("redis").unwrap().build)(&envgate::probes::Spec {
            target,
            params: &d.params,
        })
        .err()
        .map(|e| (e.param, e.message))
    };
    let (param, msg) = build("redis+sentinel://127.0.0.1:26379", &|_| {}).unwrap();
    assert_eq!(param, "target");
    assert!(msg.contains("names no master"), "{msg}");
    let (param, msg) = build("redis://127.0.0.1/0", &|d| d.set("master_name", "orders")).unwrap();
    assert_eq!(param, "master_name");
    assert!(msg.contains("needs `sentinels`"), "{msg}");
    let (param, _) = build("redis://127.0.0.1/0", &|d| d.set("sentinels", vec!["a:1"])).unwrap();
    assert_eq!(param, "sentinels");
    assert!(build("redis+sentinel://a:26379,b/orders/2", &|_| {}).is_none());
    let (param, _) = build("redis+sentinel://a/orders", &|d| d.set("sentinel_user", "w")).unwrap();
    assert_eq!(param, "sentinel_user");
    assert!(build("redis+sentinel://a:26379/orders/2?protocol=resp2", &|_| {}).is_none());
}

/// Three masters, each with its cluster bus on a port of its own.
struct Cluster {
    nodes: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let nodes: Vec<Server> = (0..3)
            .map(|i| {
                let node_dir = dir.path().join(i.to_string());
                std::fs::create_dir(&node_dir).unwrap();
                let bus = free_port().to_string();
                redis_server(
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        &bus,
                        "--cluster-node-timeout",
                        "500",
                        "--cluster-config-file",
                        "nodes.conf",
                    ],
                    &node_dir,
                )
            })
            .collect();
        let mut cmd = Command::new("redis-cli");
        cmd.args(["--cluster", "create"]);
        for n in &nodes {
            cmd.arg(format!("127.0.0.1:{}", n.port));
        }
        run(cmd.args(["--cluster-replicas", "0", "--cluster-yes"]));
        Cluster { nodes, _dir: dir }
    }

    fn cli(&self, node: usize, args: &[&str]) -> String {
        run(Command::new("redis-cli")
            .args(["-p", &self.nodes[node].port.to_string()])
            .args(args))
    }

    fn id(&self, node: usize) -> String {
        self.cli(node, &["CLUSTER", "MYID"]).trim().to_string()
    }

    /// The node that owns `slot`: the one whose own line in CLUSTER NODES
    /// lists a range holding it.
    fn owner(&self, slot: u16) -> usize {
        (0..3)
            .find(|&i| {
                self.cli(i, &["CLUSTER", "NODES"]).lines().any(|l| {
                    l.contains("myself")
                        && l.split_whitespace().skip(8).any(|r| {
                            let (a, b) = r.split_once('-').unwrap_or((r, r));
                            matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot))
                        })
                })
            })
            .expect("an owner")
    }
}

async fn wait_for_state(url: &str, state: &str) {
    let start = Instant::now();
    loop {
        let f = probe_within("redis", url, Duration::from_secs(2), |d| d.set("cluster", true)).await;
        if f.message.contains(&format!("cluster_state:{state}")) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the cluster never reached {state}: {}",
            f.message
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn redis_cluster_follows_moved_and_ask_and_reports_the_cluster_state() {
    let cluster = Cluster::start();
    let url = format!("redis://127.0.0.1:{}", cluster.nodes[0].port);
    for n in &cluster.nodes {
        wait_for_state(&format!("redis://127.0.0.1:{}", n.port), "ok").await;
    }
    let f = probe("redis", &url, |d| d.set("cluster", true)).await;
    assert_status(&f, Status::Pass, "cluster_state:ok, 16384 of 16384 slots assigned");
    assert!(f.message.contains("3 nodes, 3 masters"), "{}", f.message);

    // Keys spread over the three masters: two of them answer MOVED.
    let keys: Vec<String> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|k| format!("{}:{k}", unique("k")))
        .collect();
    for k in &keys {
        run(Command::new("redis-cli").args(["-c", "-p", &cluster.nodes[0].port.to_string(), "SET", k, "1"]));
    }
    let f = probe("redis", &url, |d| d.set("keys", keys.clone())).await;
    assert_status(&f, Status::Pass, "6 key(s) exist");
    assert!(f.message.contains("on other cluster nodes"), "{}", f.message);
    let missing = format!("{}:missing", unique("k"));
    let f = probe("redis", &url, |d| d.set("keys", vec![missing.clone()])).await;
    assert_status(&f, Status::Fail, &format!("key `{missing}` does not exist"));

    // A slot being migrated from its owner to another node: the owner
    // answers ASK for a key it no longer holds; the importing node has it.
    let key = "{eg-ask}:ready";
    let slot: u16 = cluster.cli(0, &["CLUSTER", "KEYSLOT", key]).trim().parse().unwrap();
    let from = cluster.owner(slot);
    let to = (from + 1) % 3;
    let s = slot.to_string();
    cluster.cli(to, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &cluster.id(from)]);
    cluster.cli(from, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &cluster.id(to)]);
    let asking = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'ASKING\\nSET {key} 1\\n' | redis-cli -p {}",
            cluster.nodes[to].port
        ))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&asking.stdout).contains("OK"), "{asking:?}");
    let at_owner = format!("redis://127.0.0.1:{}", cluster.nodes[from].port);
    let f = probe("redis", &at_owner, |d| d.set("keys", vec![key.to_string()])).await;
    assert_status(&f, Status::Pass, "1 key(s) exist (1 on other cluster nodes)");

    // `cluster = true` on a server that is no cluster node.
    let f = probe("redis", "redis://127.0.0.1:6379/0", |d| d.set("cluster", true)).await;
    assert_status(&f, Status::Fail, "is not a cluster node");

    // A master dies: the others see its slots uncovered.
    let mut nodes = cluster.nodes;
    drop(nodes.remove(2));
    wait_for_state(&url, "fail").await;
    let f = probe("redis", &url, |d| d.set("cluster", true)).await;
    assert_status(&f, Status::Fail, "status: Redis");
    assert!(f.message.contains("cluster_state:fail"), "{}", f.message);
}

#[tokio::test]
async fn valkey_urls_speak_the_same_protocol() {
    let f = probe("redis", "valkey://127.0.0.1:6379/0", |_| {}).await;
    assert_status(&f, Status::Pass, "PONG from 127.0.0.1:6379");
    // valkeys:// is TLS, as rediss:// is.
    let pki = super::tls::Pki::new();
    let server = super::tls::redis_tls(&pki);
    let url = format!("valkeys://:{}@127.0.0.1:{}/0", server.secret, server.port);
    wait_until_passes_with("redis", &url, pki.trusted()).await;
    assert_status(&probe("redis", &url, pki.trusted()).await, Status::Pass, "PONG");
    assert_status(
        &probe("redis", &url, |_| {}).await,
        Status::Fail,
        "tls: Redis valkeys://",
    );
}

#[tokio::test]
async fn rediss_sentinel_speaks_tls_to_the_sentinel_and_the_master() {
    let pki = super::tls::Pki::new();
    let master = super::tls::redis_tls(&pki);
    let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port 0\ntls-port {port}\nbind 127.0.0.1\ndir {}\ntls-cert-file {}\ntls-key-file {}\n\
             tls-ca-cert-file {}\ntls-auth-clients no\ntls-replication yes\n\
             sentinel monitor orders 127.0.0.1 {} 1\nsentinel auth-pass orders {}\n",
            dir.path().display(),
            pki.cert().display(),
            pki.key_for("root").display(),
            pki.ca_file,
            master.port,
            master.secret
        ),
    )
    .unwrap();
    let mut cmd = Command::new("redis-server");
    cmd.arg(&conf).arg("--sentinel");
    let sentinel = Server::spawn(&mut cmd, port, String::new(), dir);
    let url = format!(
        "rediss+sentinel://:{}@127.0.0.1:{}/orders/0",
        master.secret, sentinel.port
    );
    wait_until_passes_with("redis", &url, pki.trusted()).await;
    let f = probe("redis", &url, pki.trusted()).await;
    assert_status(
        &f,
        Status::Pass,
        &format!("master `orders` at 127.0.0.1:{}", master.port),
    );
    // Verified against the system's roots, the sentinel's certificate fails.
    let f = probe("redis", &url, |_| {}).await;
    assert_status(&f, Status::Fail, "tls: Redis rediss+sentinel://");
    assert!(!f.message.contains(&master.secret), "{}", f.message);
}
