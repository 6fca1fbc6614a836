//! Each channel's body against its service's documented shape (received by
//! a real HTTP server), and a real Prometheus Alertmanager that shows the
//! alert firing, then resolved.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::recorder::Recorder;
use super::support::*;

fn channel(kind: &str, extra: &str) -> String {
    format!("[[audit.notify]]\nname = \"{kind}\"\nkind = \"{kind}\"\n{extra}\n")
}

fn fixture(kind: &str, rec: &Recorder, extra: &str) -> Fixture {
    let mut f = Fixture::new(
        &format!(
            "[audit]\nfail_after = 1\nrecover_after = 1\nremind_every = \"0s\"\n{}",
            channel(kind, extra)
        ),
        ONE_PROBE,
    );
    f.vars.insert("URL".into(), rec.url(&format!("/services/{CANARY}")));
    f.vars.insert("BASE".into(), rec.url(""));
    f.vars.insert("KEY".into(), CANARY.into());
    f
}

/// Fail once, recover once: a trigger and a resolve.
fn outage(f: &Fixture) {
    f.up("db");
    f.tick();
    f.down("db");
    f.tick();
    f.up("db");
    f.tick();
}

#[test]
fn slack_gets_readable_blocks_within_its_limits() {
    let rec = Recorder::start();
    let f = fixture("slack", &rec, "url = \"${secret:env:URL}\"");
    outage(&f);
    let got = rec.received();
    assert_eq!(got.len(), 2);
    for r in &got {
        let b = &r.body;
        assert!(b["text"].as_str().unwrap().contains("probe/orders-db"));
        let blocks = b["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
        let fields = blocks[1]["fields"].as_array().unwrap();
        assert!(fields.len() <= 10);
        let facts: Vec<&str> = fields.iter().map(|f| f["text"].as_str().unwrap()).collect();
        assert!(facts.iter().all(|t| t.chars().count() <= 2000));
        assert!(facts.iter().any(|t| t.starts_with("*Environment*\nprod")), "{facts:?}");
        assert!(
            facts
                .iter()
                .any(|t| t.starts_with("*Where it was set*\n`environments/prod.toml:3:")),
            "{facts:?}"
        );
        assert_eq!(blocks[2]["text"]["type"], "mrkdwn");
        assert!(!b.to_string().contains(CANARY));
    }
    assert!(
        got[0].body["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("failing")
    );
    let resolved = got[1].body["blocks"][1]["fields"].to_string();
    assert!(resolved.contains("Outage lasted*\\n5m"), "{resolved}");
}

#[test]
fn pagerduty_triggers_and_resolves_one_alert_by_its_dedup_key() {
    let rec = Recorder::start();
    let f = fixture(
        "pagerduty",
        &rec,
        "url = \"${env:BASE}/v2/enqueue\"\nrouting_key = \"${secret:env:KEY}\"",
    );
    outage(&f);
    let got = rec.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].path, "/v2/enqueue");
    let (t, r) = (&got[0].body, &got[1].body);
    assert_eq!(t["routing_key"], CANARY, "the routing key is sent to PagerDuty only");
    assert_eq!(t["event_action"], "trigger");
    assert_eq!(r["event_action"], "resolve");
    assert_eq!(t["dedup_key"], r["dedup_key"]);
    assert!(t["dedup_key"].as_str().unwrap().starts_with("prod:probe/orders-db:"));
    let p = &t["payload"];
    assert!(!p["summary"].as_str().unwrap().is_empty() && p["summary"].as_str().unwrap().len() <= 1024);
    assert_eq!(p["source"], "orders-api/prod");
    assert!(["critical", "error", "warning", "info"].contains(&p["severity"].as_str().unwrap()));
    assert!(p["timestamp"].as_str().unwrap().ends_with('Z'));
    // The key is in the request, and nowhere in the store.
    assert!(!contains(&store_bytes(f.root()), CANARY));
}

#[test]
fn alertmanager_gets_alerts_with_ends_at_on_resolve() {
    let rec = Recorder::start();
    let f = fixture("alertmanager", &rec, "url = \"${env:BASE}\"");
    outage(&f);
    let got = rec.received();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.method == "POST" && r.path == "/api/v2/alerts"));
    let firing = &got[0].body[0];
    let resolved = &got[1].body[0];
    assert_eq!(firing["labels"], resolved["labels"], "the same alert");
    assert_eq!(firing["labels"]["alertname"], "EnvgateCheckFailing");
    assert_eq!(firing["labels"]["check"], "probe/orders-db");
    assert_eq!(firing["startsAt"], resolved["startsAt"]);
    let t = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    assert!(
        t(&firing["endsAt"]) > t(&firing["startsAt"]) + 3600,
        "a firing alert ends well ahead"
    );
    assert_eq!(
        t(&resolved["endsAt"]),
        T0 + 600,
        "resolved when the check first passed again"
    );
}

/// A real Alertmanager on a free loopback port, stopped when dropped.
struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alertmanager() -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n").unwrap();
    let port = super::ports::free_port();
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager: run `sudo bash scripts/setup/audit.sh`");
    let am = Alertmanager { child, port, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(port, "/-/ready").is_none() {
        assert!(Instant::now() < deadline, "Alertmanager did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    am
}

fn get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
}

fn our_alerts(port: u16) -> Vec<serde_json::Value> {
    let body = get(port, "/api/v2/alerts").expect("GET /api/v2/alerts");
    let all: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    all.into_iter()
        .filter(|a| a["labels"]["alertname"] == "EnvgateCheckFailing")
        .collect()
}

#[test]
fn a_real_alertmanager_shows_the_alert_firing_then_resolved() {
    let am = alertmanager();
    let mut f = Fixture::new(
        &format!(
            "[audit]\nfail_after = 1\nrecover_after = 1\n{}",
            channel("alertmanager", "url = \"${env:AM}\"")
        ),
        ONE_PROBE,
    );
    f.vars.insert("AM".into(), format!("http://127.0.0.1:{}", am.port));
    // Alertmanager judges by its own clock: the runs happened in the last minutes.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    f.clock.set(now - 600);
    f.down("db");
    let o = f.tick();
    assert_eq!(o.sent.len(), 1, "{:?}", o.sent);
    let firing = our_alerts(am.port);
    assert_eq!(firing.len(), 1, "{firing:?}");
    assert_eq!(firing[0]["status"]["state"], "active");
    assert_eq!(firing[0]["labels"]["check"], "probe/orders-db");
    assert_eq!(firing[0]["labels"]["env"], "prod");
    f.up("db");
    f.tick();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alerts = our_alerts(am.port);
        if alerts.iter().all(|a| a["status"]["state"] != "active") {
            break;
        }
        assert!(Instant::now() < deadline, "still firing after the resolve: {alerts:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
