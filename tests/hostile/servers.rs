//! Fake servers on loopback that behave as an attacker's would: one
//! listener per test case, each connection on its own thread, every
//! thread ending when the probe goes away (a write fails) or after a
//! bound. Nothing here speaks a protocol well; it speaks just enough to
//! get a probe to the behaviour under test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// What a fake server does with each connection.
#[derive(Clone)]
pub enum Behaviour {
    /// Drips `greeting`, one byte every 50 ms, then holds the connection
    /// silently: an answer that never completes (5 s at most).
    Slowloris(Vec<u8>),
    /// Sends `head`, then `fill` bytes for as long as the probe reads.
    Endless { head: Vec<u8>, fill: u8 },
    /// 64 KiB of pseudo-random bytes (a fixed seed), then closes.
    Random(u64),
    /// Reads what the probe sends first (50 ms at most), then resets the
    /// connection (RST) in the middle of the handshake.
    Reset,
    /// Reads what the probe sends, answers `reply` and closes: a
    /// plain-text service meeting a TLS hello.
    Plain(Vec<u8>),
    /// Reads what the probe sends and answers with a TLS alert, then
    /// closes: a TLS service meeting plain text. A probe that waits for a
    /// greeting (NATS, a banner) hears nothing, as from a real TLS port.
    TlsAlert,
    /// Speaks a script: for each step, read until the probe has sent
    /// `wait_for` (at once when it is empty), then send `reply`. After the
    /// last step, hold the connection open and answer nothing for 5 s.
    Script(Vec<(Vec<u8>, Vec<u8>)>),
}

/// Start a fake server; it lives until the test process ends.
pub fn serve(b: Behaviour) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = l.local_addr().expect("bound");
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let b = b.clone();
            std::thread::spawn(move || handle(s, &b));
        }
    });
    addr
}

fn handle(mut s: TcpStream, b: &Behaviour) {
    let _ = s.set_nodelay(true);
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    if matches!(
        b,
        Behaviour::Slowloris(_) | Behaviour::Endless { .. } | Behaviour::Random(_)
    ) {
        // Let a probe that speaks first (HTTP, PostgreSQL, Redis) send its
        // request, as a server would; one that waits for a greeting gets
        // it 100 ms later.
        let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
        let _ = s.read(&mut [0; 4096]);
    }
    match b {
        Behaviour::Slowloris(greeting) => {
            let start = Instant::now();
            for byte in greeting {
                if s.write_all(&[*byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            std::thread::sleep(Duration::from_secs(5).saturating_sub(start.elapsed()));
        }
        Behaviour::Endless { head, fill } => {
            if s.write_all(head).is_err() {
                return;
            }
            let chunk = vec![*fill; 64 * 1024];
            // Ends when the probe closes, or at 4 GiB, whichever comes first.
            for _ in 0..65_536 {
                if s.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
        Behaviour::Random(seed) => {
            let mut x = *seed | 1;
            let bytes: Vec<u8> = (0..64 * 1024)
                .map(|_| {
                    // xorshift64: the same bytes every run.
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            let _ = s.write_all(&bytes);
        }
        Behaviour::Reset => {
            let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
            let _ = s.read(&mut [0; 4096]);
            reset(&s);
        }
        Behaviour::Plain(reply) => {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = s.read(&mut [0; 4096]);
            let _ = s.write_all(reply);
        }
        Behaviour::TlsAlert => {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            if !matches!(s.read(&mut [0; 4096]), Ok(1..)) {
                return;
            }
            // An alert record: TLS 1.2, fatal, decode_error.
            let _ = s.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]);
        }
        Behaviour::Script(steps) => {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut seen = Vec::new();
            for (wait_for, reply) in steps {
                loop {
                    let found = wait_for.is_empty() || seen.windows(wait_for.len()).any(|w| w == wait_for.as_slice());
                    if found {
                        seen.clear();
                        break;
                    }
                    let mut buf = [0; 4096];
                    match s.read(&mut buf) {
                        Ok(n @ 1..) => seen.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                if s.write_all(reply).is_err() {
                    return;
                }
            }
            // Hold the connection, answer nothing, never close first.
            std::thread::sleep(Duration::from_secs(5));
        }
    }
}

/// Close with RST instead of FIN: SO_LINGER on, zero seconds.
fn reset(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized option.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// An AMQP 0-9-1 method frame on `channel`.
pub fn amqp_method(channel: u16, class: u16, method: u16, args: &[u8]) -> Vec<u8> {
    let payload = [&class.to_be_bytes()[..], &method.to_be_bytes(), args].concat();
    [
        &[1u8][..],
        &channel.to_be_bytes(),
        &(payload.len() as u32).to_be_bytes(),
        &payload,
        &[0xCE],
    ]
    .concat()
}

/// A PostgreSQL backend message.
pub fn pg_message(tag: u8, body: &[u8]) -> Vec<u8> {
    [&[tag][..], &((body.len() + 4) as u32).to_be_bytes(), body].concat()
}
