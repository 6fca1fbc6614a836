//! A real Prometheus scrapes `envgate serve` every second; its own query API
//! then shows the values the audit recorded.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::support::{Fixture, Server};

const SETUP: &str = "run `sudo bash scripts/setup/serve.sh`";

struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prometheus(target: u16) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: envgate\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("prometheus ({e}): {SETUP}"));
    Prometheus { child, port, _dir: dir }
}

/// `query`'s samples: (labels, value).
fn query(p: &Prometheus, q: &str) -> Vec<(serde_json::Value, f64)> {
    let fake = Server {
        child: Command::new("true").spawn().unwrap(),
        port: p.port,
        log: std::path::PathBuf::new(),
    };
    let path = format!(
        "/api/v1/query?query={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    let Ok(a) = fake.try_get(&path, &[]) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap_or_default();
    v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().and_then(|x| x.parse().ok()).unwrap_or(f64::NAN),
            )
        })
        .collect()
}

fn until<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn prometheus_scrapes_serve_and_its_query_api_shows_what_the_audit_recorded() {
    let f = Fixture::new("");
    f.down("staging-db");
    let s = f.serve(&["--all-envs", "--interval", "1s"]);
    s.until(20, "the first runs", |s| s.get("/readyz").code == 200);
    let p = prometheus(s.port);
    let ok = until(30, "envgate_check_success for prod", || {
        let r = query(&p, "envgate_check_success{env=\"prod\",check=\"probe/orders-db\"}");
        r.first().map(|(labels, v)| (labels.clone(), *v))
    });
    assert_eq!(ok.1, 1.0);
    assert_eq!(ok.0["kind"], "file");
    assert_eq!(ok.0["job"], "envgate");
    let failing = until(30, "envgate_check_success for staging", || {
        query(&p, "envgate_check_success{env=\"staging\",check=\"probe/orders-db\"}")
            .first()
            .map(|x| x.1)
    });
    assert_eq!(failing, 0.0);
    let up = until(30, "envgate_env_up", || {
        let r = query(&p, "envgate_env_up");
        (r.len() == 2).then_some(r)
    });
    for (labels, v) in up {
        let want = if labels["env"] == "prod" { 1.0 } else { 0.0 };
        assert_eq!(v, want, "{labels}");
    }
    // The scrape itself is healthy: Prometheus parsed every series.
    let scrape = until(30, "the scrape's health", || {
        query(&p, "up{job=\"envgate\"}").first().map(|x| x.1)
    });
    assert_eq!(scrape, 1.0);
}
