//! Hostile servers, on loopback, against every network probe kind: a
//! slowloris, an endless or gigantic reply, random bytes, a reset in the
//! middle of the handshake, plain text on a TLS port and TLS on a plain
//! port. Each probe runs in its own `envgate check` process, so the test
//! reads that process's peak memory (wait4's ru_maxrss) and proves the
//! probe ends within its timeout, stays within its kind's stated bound,
//! classifies the failure and never panics. hostile/goodbye.rs holds the
//! servers that pass the check and then never say goodbye;
//! hostile/exec.rs the plugins that misbehave; hostile/limits.rs a low
//! file descriptor limit.

#[path = "hostile/servers.rs"]
mod servers;

#[path = "hostile/goodbye.rs"]
mod goodbye;

#[path = "hostile/exec.rs"]
mod exec;

#[path = "hostile/limits.rs"]
mod limits;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use servers::{Behaviour, serve};

/// Every hostile probe's timeout: TLS set-up alone (the system's CA roots)
/// takes a few hundred milliseconds in a debug build on a busy machine.
const TIMEOUT: &str = "2s";
/// How long past its timeout a probe process may take (start-up and
/// reporting on a loaded machine).
const LATE: Duration = Duration::from_millis(2500);
/// Peak memory beyond the baseline and the kind's bound: allocator
/// slack, TLS buffers, the driver's own buffers.
const SLACK: u64 = 12 << 20;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// What one probe process did.
#[derive(Debug)]
pub struct Run {
    pub status: String,
    pub class: String,
    pub message: String,
    pub exit: Option<i32>,
    pub elapsed: Duration,
    /// Peak resident memory of the process, in bytes.
    pub peak: u64,
    pub stderr: String,
}

/// A project with one probe (`[[probe]]` body lines), checked by the
/// built binary; the report's only result.
pub fn check(probe: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::File::create(p).unwrap().write_all(text.as_bytes()).unwrap();
    };
    w("envgate.toml", "[project]\nname = \"h\"\nenvironments = [\"t\"]\n");
    w("environments/base.toml", "");
    w("environments/t.toml", "");
    w("checks/p.toml", &format!("[[probe]]\nname = \"p\"\n{probe}\n"));
    let start = Instant::now();
    #[expect(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, which also reads its peak memory"
    )]
    let mut child = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .args(["check", "--env", "t", "--format", "json"])
        .current_dir(dir.path())
        .env_clear()
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let (exit, peak) = wait4(child.id() as i32);
    let elapsed = start.elapsed();
    let report: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?} {stderr}"));
    let r = report["environments"][0]["results"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["id"] == "probe/p"))
        .unwrap_or_else(|| panic!("no probe result: {out}"));
    let message = r["message"].as_str().unwrap_or_default().to_string();
    Run {
        status: r["status"].as_str().unwrap_or_default().to_string(),
        class: message.split(':').next().unwrap_or_default().to_string(),
        message,
        exit,
        elapsed,
        peak,
        stderr,
    }
}

/// Reap `pid`: its exit code (`None` when a signal ended it) and its peak
/// resident memory in bytes.
fn wait4(pid: i32) -> (Option<i32>, u64) {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with pointers to locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    (code, usage.ru_maxrss as u64 * 1024)
}

/// The peak memory of a probe that found nothing listening: the process's
/// own size, against which bounds are measured.
fn baseline() -> u64 {
    static BASE: OnceLock<u64> = OnceLock::new();
    *BASE.get_or_init(|| {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let runs: Vec<Run> = std::thread::scope(|s| {
            let hs: Vec<_> = [
                format!("kind = \"http\"\ntarget = \"https://{addr}/\"\ntimeout = \"{TIMEOUT}\""),
                format!("kind = \"postgres\"\ntarget = \"postgres://u@{addr}/d\"\ntimeout = \"{TIMEOUT}\""),
                format!("kind = \"mysql\"\ntarget = \"mysql://u@{addr}/d\"\ntimeout = \"{TIMEOUT}\""),
            ]
            .into_iter()
            .map(|p| s.spawn(move || check(&p)))
            .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        runs.iter().map(|r| r.peak).max().unwrap()
    })
}

/// One probe against one fake server, and what must come of it.
struct Case {
    name: &'static str,
    kind: &'static str,
    /// `{a}` stands for the fake server's address.
    target: &'static str,
    params: &'static str,
    behaviour: Behaviour,
    /// The failure classes a person may read here.
    classes: &'static [&'static str],
    /// The kind's stated bound on what it holds.
    bound: u64,
}

impl Case {
    fn new(name: &'static str, kind: &'static str, target: &'static str, behaviour: Behaviour) -> Case {
        Case {
            name,
            kind,
            target,
            params: "",
            behaviour,
            classes: &["protocol"],
            bound: bound(kind),
        }
    }

    fn params(mut self, p: &'static str) -> Case {
        self.params = p;
        self
    }

    fn classes(mut self, c: &'static [&'static str]) -> Case {
        self.classes = c;
        self
    }
}

/// Each kind's stated bound (its module documentation, and the README).
fn bound(kind: &str) -> u64 {
    match kind {
        "postgres" | "amqp" | "nats" | "http" => MIB,
        "mysql" => 4 * MIB,
        "redis" | "mqtt" | "tls" | "s3" => 256 * KIB,
        "tcp" => 64 * KIB,
        other => panic!("no bound for {other}"),
    }
}

/// Run every case at once, each against its own fake server, and check
/// what every user of a gate needs: it ended in time, within its bound,
/// as a failure of a named class, without a panic.
fn run_all(cases: Vec<Case>) {
    let base = baseline();
    let runs: Vec<(Case, SocketAddr, Run)> = std::thread::scope(|s| {
        let hs: Vec<_> = cases
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    let addr = serve(c.behaviour.clone());
                    let target = c.target.replace("{a}", &addr.to_string());
                    let probe = format!(
                        "kind = \"{}\"\ntarget = \"{target}\"\ntimeout = \"{TIMEOUT}\"\n{}",
                        c.kind, c.params
                    );
                    let run = check(&probe);
                    (c, addr, run)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut wrong = Vec::new();
    for (c, addr, r) in &runs {
        let mut why = Vec::new();
        if r.exit != Some(1) {
            why.push(format!("exit {:?} (a crash or a pass), stderr {:?}", r.exit, r.stderr));
        }
        if r.status != "fail" || !c.classes.contains(&r.class.as_str()) {
            why.push(format!("expected a failure of class {:?}", c.classes));
        }
        if r.message.contains("panicked") {
            why.push("a probe panicked".into());
        }
        let timeout = envgate::config::units::parse_duration(TIMEOUT).unwrap();
        if r.elapsed > timeout + LATE {
            why.push(format!("took {:?}", r.elapsed));
        }
        if r.peak > base + c.bound + SLACK {
            why.push(format!(
                "peak {} MiB over a baseline of {} MiB and a bound of {} KiB",
                r.peak / MIB,
                base / MIB,
                c.bound / KIB
            ));
        }
        if r.message.len() > 2000 {
            why.push(format!("a {}-byte message", r.message.len()));
        }
        if !why.is_empty() {
            wrong.push(format!(
                "{} ({} at {addr}): {}\n    {}",
                c.name,
                c.kind,
                why.join("; "),
                r.message
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

fn endless(head: &[u8], fill: u8) -> Behaviour {
    Behaviour::Endless {
        head: head.to_vec(),
        fill,
    }
}

#[test]
fn a_slowloris_on_any_protocol_ends_at_the_timeout() {
    let slow = |g: &[u8]| Behaviour::Slowloris(g.to_vec());
    let t = &["timeout"];
    run_all(vec![
        Case::new("http", "http", "http://{a}/", slow(b"HTTP/1.1 200 OK\r\n")).classes(t),
        Case::new("tcp", "tcp", "{a}", slow(b"SS"))
            .params("expect = \"SSH-\"")
            .classes(t),
        Case::new("tls", "tls", "{a}", slow(&[0x16, 0x03, 0x03, 0x00, 0x40])).classes(t),
        Case::new("postgres", "postgres", "postgres://u@{a}/d", slow(b"NR\0\0\0\x08\0")).classes(t),
        Case::new("mysql", "mysql", "mysql://u@{a}/d", slow(b"\x4a\0\0\0\x0a8.0")).classes(t),
        Case::new("redis", "redis", "redis://{a}/0", slow(b"+PON")).classes(t),
        Case::new("amqp", "amqp", "amqp://{a}/", slow(&[1, 0, 0, 0, 0])).classes(t),
        Case::new("nats", "nats", "nats://{a}", slow(b"INFO {\"server_id\":")).classes(t),
        Case::new("mqtt", "mqtt", "mqtt://{a}", slow(&[0x20, 0x02, 0x00])).classes(t),
        Case::new(
            "s3",
            "s3",
            "http://AKIAEXAMPLE:example-secret@{a}/bucket",
            slow(b"HTTP/1.1 200 OK\r\n"),
        )
        .classes(t),
    ]);
}

#[test]
fn an_endless_or_gigantic_reply_fails_within_the_kinds_memory_bound() {
    run_all(vec![
        Case::new(
            "http headers",
            "http",
            "http://{a}/",
            endless(b"HTTP/1.1 200 OK\r\nX-Fill: ", b'A'),
        ),
        Case::new(
            "http body",
            "http",
            "http://{a}/",
            endless(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n", b'A'),
        )
        .params("body_contains = \"ready\"")
        .classes(&["body"]),
        Case::new("tcp", "tcp", "{a}", endless(b"", b'A'))
            .params("expect = \"SSH-\"")
            .classes(&["body"]),
        Case::new("tls", "tls", "{a}", endless(&[0x16, 0x03, 0x03, 0xff, 0xff], b'A')).classes(&["protocol", "tls"]),
        Case::new("postgres", "postgres", "postgres://u@{a}/d", endless(b"", b'A')),
        Case::new(
            "postgres plain",
            "postgres",
            "postgres://u@{a}/d?sslmode=disable",
            endless(b"", b'A'),
        ),
        Case::new("mysql", "mysql", "mysql://u@{a}/d", endless(b"", b'A')),
        Case::new(
            "redis bulk",
            "redis",
            "redis://{a}/0",
            endless(b"$1094795585\r\n", b'A'),
        ),
        Case::new("redis line", "redis", "redis://{a}/0", endless(b"+", b'A')),
        Case::new(
            "amqp",
            "amqp",
            "amqp://{a}/",
            endless(&[1, 0, 0, 0x7f, 0xff, 0xff, 0xff], b'A'),
        ),
        Case::new("nats info", "nats", "nats://{a}", endless(b"INFO ", b'A')),
        Case::new(
            "nats msg",
            "nats",
            "nats://{a}",
            endless(b"INFO {}\r\nMSG a 1 1094795585\r\n", b'A'),
        ),
        Case::new(
            "mqtt",
            "mqtt",
            "mqtt://{a}",
            endless(&[0x20, 0xff, 0xff, 0xff, 0x7f], b'A'),
        ),
        Case::new(
            "s3",
            "s3",
            "http://AKIAEXAMPLE:example-secret@{a}/bucket",
            endless(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 1000000000000\r\n\r\n<Error><Code>",
                b'A',
            ),
        ),
    ]);
}

#[test]
fn random_bytes_on_any_protocol_are_a_classified_failure() {
    let any = &["protocol", "refused", "tls", "body"];
    let r = Behaviour::Random;
    run_all(vec![
        Case::new("http", "http", "http://{a}/", r(1)).classes(any),
        Case::new("tcp", "tcp", "{a}", r(2))
            .params("expect = \"SSH-\"")
            .classes(any),
        Case::new("tls", "tls", "{a}", r(3)).classes(any),
        Case::new("postgres", "postgres", "postgres://u@{a}/d", r(4)).classes(any),
        Case::new("mysql", "mysql", "mysql://u@{a}/d", r(5)).classes(any),
        Case::new("redis", "redis", "redis://{a}/0", r(6)).classes(any),
        Case::new("amqp", "amqp", "amqp://{a}/", r(7)).classes(any),
        Case::new("nats", "nats", "nats://{a}", r(8)).classes(any),
        Case::new("mqtt", "mqtt", "mqtt://{a}", r(9)).classes(any),
        Case::new("s3", "s3", "http://AKIAEXAMPLE:example-secret@{a}/bucket", r(10)).classes(any),
    ]);
}

#[test]
fn a_reset_in_the_middle_of_the_handshake_is_a_classified_failure() {
    let closed = &["refused", "protocol"];
    let r = || Behaviour::Reset;
    run_all(vec![
        Case::new("http", "http", "http://{a}/", r()).classes(closed),
        Case::new("https", "http", "https://{a}/", r()).classes(closed),
        Case::new("tcp", "tcp", "{a}", r())
            .params("expect = \"SSH-\"")
            .classes(closed),
        Case::new("tls", "tls", "{a}", r()).classes(closed),
        Case::new("postgres", "postgres", "postgres://u@{a}/d", r()).classes(closed),
        Case::new("mysql", "mysql", "mysql://u@{a}/d", r()).classes(closed),
        Case::new("redis", "redis", "redis://{a}/0", r()).classes(closed),
        Case::new("amqp", "amqp", "amqp://{a}/", r()).classes(closed),
        Case::new("nats", "nats", "nats://{a}", r()).classes(closed),
        Case::new("mqtt", "mqtt", "mqtt://{a}", r()).classes(closed),
        Case::new("s3", "s3", "http://AKIAEXAMPLE:example-secret@{a}/bucket", r()).classes(closed),
    ]);
}

#[test]
fn plain_text_on_a_tls_port_is_a_protocol_failure_not_refused() {
    let p = || Behaviour::Plain(b"-ERR unknown command\r\n".to_vec());
    run_all(vec![
        Case::new("https", "http", "https://{a}/", p()),
        Case::new("tls", "tls", "{a}", p()),
        Case::new("rediss", "redis", "rediss://{a}/0", p()).params("tls_verify = false"),
        Case::new("amqps", "amqp", "amqps://{a}/", p()).params("tls_verify = false"),
        Case::new("mqtts", "mqtt", "mqtts://{a}", p()).params("tls_verify = false"),
        Case::new("s3 https", "s3", "https://AKIAEXAMPLE:example-secret@{a}/bucket", p()),
        Case::new(
            "postgres require",
            "postgres",
            "postgres://u@{a}/d?sslmode=require",
            Behaviour::Plain(b"N".to_vec()),
        )
        .classes(&["tls"]),
    ]);
}

#[test]
fn tls_on_a_plain_port_says_the_port_speaks_tls() {
    let a = || Behaviour::TlsAlert;
    run_all(vec![
        Case::new("http", "http", "http://{a}/", a()),
        Case::new("redis", "redis", "redis://{a}/0", a()),
        Case::new("amqp", "amqp", "amqp://{a}/", a()),
        Case::new("mqtt", "mqtt", "mqtt://{a}", a()),
        Case::new("s3", "s3", "http://AKIAEXAMPLE:example-secret@{a}/bucket", a()),
        Case::new("postgres", "postgres", "postgres://u@{a}/d?sslmode=disable", a()),
        // A TLS port says nothing until it hears a TLS hello: a probe
        // that waits for a greeting can only time out.
        Case::new("nats", "nats", "nats://{a}", a()).classes(&["timeout"]),
        Case::new("tcp", "tcp", "{a}", a())
            .params("expect = \"SSH-\"")
            .classes(&["timeout"]),
    ]);
}

#[test]
fn a_tls_answer_names_the_tls_scheme_to_use() {
    let addr = serve(Behaviour::TlsAlert);
    let r = check(&format!(
        "kind = \"redis\"\ntarget = \"redis://{addr}/0\"\ntimeout = \"{TIMEOUT}\""
    ));
    assert!(
        r.message.contains("this port speaks TLS") && r.message.contains("rediss://"),
        "{r:?}"
    );
    let r = check(&format!(
        "kind = \"http\"\ntarget = \"http://{addr}/\"\ntimeout = \"{TIMEOUT}\""
    ));
    assert!(r.message.contains("use https://"), "{r:?}");
}

#[test]
fn nats_replies_with_multibyte_text_or_leading_spaces_are_read_not_panicked_on() {
    let info = b"INFO {\"version\":\"2.10\"}\r\n".to_vec();
    let script = |reply: &str| {
        serve(Behaviour::Script(vec![
            (Vec::new(), info.clone()),
            (b"PING".to_vec(), reply.as_bytes().to_vec()),
        ]))
    };
    let probe = |addr: SocketAddr| {
        check(&format!(
            "kind = \"nats\"\ntarget = \"nats://{addr}\"\ntimeout = \"{TIMEOUT}\""
        ))
    };
    let r = probe(script("  -ERR 'Authorization Violation: café ☕'\r\n"));
    assert_eq!((r.status.as_str(), r.class.as_str()), ("fail", "auth"), "{r:?}");
    assert!(
        r.message
            .contains("the server answered: Authorization Violation: café ☕"),
        "{r:?}"
    );
    let r = probe(script("é€\u{1b}[2J\r\n"));
    assert_eq!((r.status.as_str(), r.class.as_str()), ("fail", "protocol"), "{r:?}");
    assert!(r.message.contains(r#"sent "é€\u{1b}[2J""#), "{r:?}");
    let r = probe(script("  PONG\r\n"));
    assert_eq!(r.status, "pass", "{r:?}");
}
