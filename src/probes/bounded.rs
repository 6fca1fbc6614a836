//! What a server a probe does not control can make it hold, and for how
//! long: a byte budget per connection ([`Limited`]), lines read as bytes up
//! to a bound, excerpts of what was seen (bytes, never sliced strings), and
//! how a TLS record or plain text is recognised where the other was
//! expected. A probe never trusts a length it reads from the network: every
//! length prefix is compared with the kind's bound before anything is
//! allocated for it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::config::units::format_bytes;

/// How many bytes one connection has read, and its bound.
#[derive(Debug)]
pub struct Meter {
    read: AtomicU64,
    limit: u64,
    exceeded: AtomicBool,
}

impl Meter {
    pub fn new(limit: u64) -> Arc<Meter> {
        Arc::new(Meter {
            read: AtomicU64::new(0),
            limit,
            exceeded: AtomicBool::new(false),
        })
    }

    /// Bytes read so far.
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// The server sent more than the bound and the connection was failed.
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// The failure to report when [`Meter::exceeded`].
    pub fn message(&self) -> String {
        too_much(self.limit).to_string()
    }
}

/// The error a bound raises: an `InvalidData` I/O error with this inside.
#[derive(Debug)]
pub struct TooMuch(pub String);

impl std::fmt::Display for TooMuch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TooMuch {}

fn too_much(limit: u64) -> TooMuch {
    TooMuch(format!(
        "the server sent more than {}, more than a readiness check needs",
        format_bytes(limit)
    ))
}

/// A length prefix over a kind's bound, refused before anything is read for it.
pub fn too_long(what: &str, len: u64, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        TooMuch(format!(
            "the server announced a {len}-byte {what}, more than the {} a readiness check needs",
            format_bytes(limit)
        )),
    )
}

/// A stream that fails with [`TooMuch`] once the server has sent more than
/// its meter's bound. Reads are cut to what is left of the budget, so the
/// bytes held never exceed it by more than one 64 KiB read.
pub struct Limited<S> {
    inner: S,
    meter: Arc<Meter>,
}

/// The largest single read passed down: a caller's huge buffer (a driver
/// that reserved what a length prefix announced) is filled in steps.
const STEP: usize = 64 * 1024;

impl<S> Limited<S> {
    pub fn new(inner: S, meter: Arc<Meter>) -> Limited<S> {
        Limited { inner, meter }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Limited<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let left = this.meter.limit.saturating_sub(this.meter.read());
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // With the budget spent, one more byte decides: the end of the
        // stream is fine, anything else is too much.
        let want = (left as usize).clamp(1, STEP).min(buf.remaining());
        let mut one = [0u8; 1];
        let mut sub = if left == 0 {
            ReadBuf::new(&mut one)
        } else {
            ReadBuf::new(buf.initialize_unfilled_to(want))
        };
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut sub))?;
        let n = sub.filled().len();
        if left == 0 {
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
            this.meter.exceeded.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                too_much(this.meter.limit),
            )));
        }
        this.meter.read.fetch_add(n as u64, Ordering::Relaxed);
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// One `\n`-terminated line of at most `max` bytes, without its line end,
/// as bytes: a server may send anything, and nothing here slices text.
/// End of stream is `UnexpectedEof`; a longer line, or a TLS record where
/// a line was expected, is `InvalidData`.
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    (&mut *r).take(max as u64).read_until(b'\n', &mut buf).await?;
    if let Some(what) = tls_record(&buf) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, what));
    }
    if buf.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection",
        ));
    }
    if !buf.ends_with(b"\n") {
        if buf.len() < max {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the server closed the connection after {}", excerpt(&buf, 40)),
            ));
        }
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a line longer than {} ({}…)",
                format_bytes(max as u64),
                excerpt(&buf, 40)
            ),
        ));
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(buf)
}

/// Exactly `n` bytes, after checking `n` against `max` (a length prefix
/// from the network is never trusted).
pub async fn read_exact<R: AsyncRead + Unpin>(r: &mut R, what: &str, n: u64, max: u64) -> io::Result<Vec<u8>> {
    if n > max {
        return Err(too_long(what, n, max));
    }
    let mut buf = vec![0; n as usize];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Up to `max` characters of what a server sent, quoted, with control and
/// invalid bytes escaped: safe to print whatever the bytes were.
pub fn excerpt(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max * 4)]);
    let mut out = String::from("\"");
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push_str("\"…");
            return out;
        }
        out.extend(c.escape_debug());
    }
    out.push('"');
    out
}

/// Text a server or a plugin sent, cut to `max` characters for a
/// message, control characters escaped (a terminal escape sequence in a
/// reply must not reach the reader's terminal).
pub fn cut(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The I/O error inside wrappers of kind `Other` (HTTP connectors wrap
/// the socket's own error): the one whose kind says what happened.
pub fn innermost(e: &io::Error) -> &io::Error {
    match e.get_ref().and_then(|i| i.downcast_ref::<io::Error>()) {
        Some(inner) => innermost(inner),
        None => e,
    }
}

/// A TLS record where a protocol's plain text was expected: the port
/// speaks TLS. Checks the record header (content type alert or handshake,
/// major version 3).
pub fn tls_record(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x15, 0x03, 0x00..=0x04, ..] => Some("the server answered with a TLS alert: this port speaks TLS"),
        [0x16, 0x03, 0x00..=0x04, ..] => Some("the server answered with a TLS handshake: this port speaks TLS"),
        _ => None,
    }
}

/// The bytes before the first space, and the rest after the spaces that
/// follow: a command word and its arguments, whatever the bytes.
pub fn word(line: &[u8]) -> (&[u8], &[u8]) {
    let line = trim_start(line);
    let end = line.iter().position(u8::is_ascii_whitespace).unwrap_or(line.len());
    (&line[..end], trim_start(&line[end..]))
}

pub fn trim_start(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    &b[start..]
}

/// An unsigned decimal number, and nothing else.
pub fn number(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter()
        .try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_limited_stream_fails_past_its_budget_and_not_before() {
        let data = vec![b'A'; 10_000];
        let meter = Meter::new(4096);
        let mut s = Limited::new(&data[..], meter.clone());
        let mut buf = vec![0; 4096];
        s.read_exact(&mut buf).await.unwrap();
        let e = s.read(&mut [0; 16]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("more than 4KiB"), "{e}");
        assert!(meter.exceeded());
        assert_eq!(meter.read(), 4096);
        // Exactly the budget, then the end: fine.
        let meter = Meter::new(3);
        let mut s = Limited::new(&b"abc"[..], meter.clone());
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.unwrap();
        assert_eq!((all.as_slice(), meter.exceeded()), (&b"abc"[..], false));
    }

    #[tokio::test]
    async fn lines_are_bytes_and_bounded() {
        let mut r: &[u8] = b"  -ERR \xc3\xa9t\xc3\xa9\r\nxyz";
        let l = read_line(&mut r, 64).await.unwrap();
        assert_eq!(word(&l), (&b"-ERR"[..], "été".as_bytes()));
        let e = read_line(&mut r, 64).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let long = [b'x'; 100];
        let e = read_line(&mut &long[..], 10).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let alert: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32];
        let e = read_line(&mut &alert[..], 10).await.unwrap_err();
        assert!(e.to_string().contains("speaks TLS"), "{e}");
    }

    #[test]
    fn excerpts_escape_and_cut_any_bytes() {
        assert_eq!(excerpt(b"ok\r\n", 10), "\"ok\\r\\n\"");
        assert_eq!(excerpt("ééééé".as_bytes(), 2), "\"éé\"…");
        assert_eq!(excerpt(&[0xff, 0xfe, b'a'], 10), "\"\u{fffd}\u{fffd}a\"");
        assert_eq!(cut("ab\x1b[2Jc", 10), "ab\\u{1b}[2Jc");
        assert_eq!(cut("ééé", 2), "éé…");
        assert_eq!(number(b"42"), Some(42));
        assert_eq!(number(b"-1"), None);
        assert_eq!(number(b"99999999999999999999"), None);
    }
}
