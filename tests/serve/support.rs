//! A project to serve, in a temp dir (file probes whose marker files the
//! test creates and removes, an HTTP probe of a local server that counts
//! its connections, a canary secret), the real `envgate serve` binary on a
//! free loopback port, and a small HTTP/1.1 client that shows every byte.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::ports::free_port;

/// A secret that must never be served, logged or stored.
pub const CANARY: &str = "canary-51d2e8b0-serve-secret";

pub struct Fixture {
    pub dir: TempDir,
    /// Connections the `api` probe's server accepted.
    pub hits: Arc<AtomicUsize>,
    pub api_port: u16,
}

/// A server that answers 200 to anything and counts connections.
fn counting_server() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            h.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            });
        }
    });
    (port, hits)
}

impl Fixture {
    /// `extra` is appended to the checks file.
    pub fn new(extra: &str) -> Fixture {
        let dir = TempDir::new().unwrap();
        let m = dir.path().join("markers");
        std::fs::create_dir_all(&m).unwrap();
        let (api_port, hits) = counting_server();
        write(
            dir.path(),
            "envgate.toml",
            "[project]\nname = \"orders-api\"\nenvironments = [\"staging\", \"prod\"]\n",
        );
        write(
            dir.path(),
            "environments/base.toml",
            "[service]\nname = \"orders-api\"\n",
        );
        for env in ["staging", "prod"] {
            write(
                dir.path(),
                &format!("environments/{env}.toml"),
                &format!(
                    "[database]\npassword = \"${{secret:env:DB_PASSWORD}}\"\nsocket = \"{m}/{env}-db\"\n\n\
                     [api]\nurl = \"http://127.0.0.1:{api_port}/health?token=${{secret:env:DB_PASSWORD}}\"\n",
                    m = m.display()
                ),
            );
        }
        write(
            dir.path(),
            "checks/probes.toml",
            &format!(
                "[[probe]]\nname = \"orders-db\"\nkind = \"file\"\ntarget = \"${{database.socket}}\"\n\n\
                 [[probe]]\nname = \"api\"\nkind = \"http\"\ntarget = \"${{api.url}}\"\ntimeout = \"2s\"\n\n{extra}"
            ),
        );
        let f = Fixture { dir, hits, api_port };
        f.up("prod-db");
        f.up("staging-db");
        f
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn marker(&self, name: &str) -> PathBuf {
        self.dir.path().join("markers").join(name)
    }

    pub fn up(&self, name: &str) {
        std::fs::write(self.marker(name), "up").unwrap();
    }

    pub fn down(&self, name: &str) {
        let _ = std::fs::remove_file(self.marker(name));
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// `envgate ARGS` in the project, run to the end.
    pub fn envgate(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_envgate"))
            .arg("-C")
            .arg(self.root())
            .args(args)
            .env("DB_PASSWORD", CANARY)
            .env_remove("ENVGATE_TOKEN")
            .output()
            .unwrap()
    }

    /// `envgate serve ARGS` on a free loopback port, once it answers `/healthz`.
    pub fn serve(&self, args: &[&str]) -> Server {
        self.serve_with(args, &[])
    }

    pub fn serve_with(&self, args: &[&str], env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let log = self.root().join(format!("serve-{port}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_envgate"));
        cmd.arg("-C")
            .arg(self.root())
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("DB_PASSWORD", CANARY)
            .env_remove("ENVGATE_TOKEN")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let mut s = Server { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = s.try_get("/healthz", &[]) {
                assert_eq!(r.code, 200);
                return s;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("envgate serve exited with {status}: {}", s.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "envgate serve did not come up: {}",
                s.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Answer {
    pub code: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The whole answer as it came, for secret checks.
    pub raw: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or_default()
    }
}

impl Server {
    pub fn get(&self, path: &str) -> Answer {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.try_get(path, headers)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log_text()))
    }

    pub fn try_get(&self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Answer> {
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
            self.port
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.raw(req.as_bytes())
    }

    /// Send `bytes` as they are; read the answer to the end.
    pub fn raw(&self, bytes: &[u8]) -> std::io::Result<Answer> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(40)))?;
        s.write_all(bytes)?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        parse(&buf)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until `f` holds (polling every 100 ms), or fail after `secs`.
    pub fn until(&self, secs: u64, what: &str, mut f: impl FnMut(&Server) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then the exit status (within `secs`).
    pub fn terminate(&mut self, secs: u64) -> std::process::ExitStatus {
        // SAFETY: kill only signals the child this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "serve did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A metric's value in `/metrics`, for a sample line starting with `prefix`.
    pub fn metric(&self, prefix: &str) -> Option<f64> {
        let m = self.get("/metrics").body;
        m.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse(buf: &[u8]) -> std::io::Result<Answer> {
    let raw = String::from_utf8_lossy(buf).into_owned();
    let Some((head, body)) = raw.split_once("\r\n\r\n") else {
        return Err(std::io::Error::other(format!("not an HTTP answer: {raw:?}")));
    };
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Ok(Answer {
        code,
        headers,
        body,
        raw,
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}
