//! Below and beside the PostgreSQL driver. tokio-postgres reserves memory
//! for whatever length a message header announces (endless `A` bytes
//! announce 1 GiB), so [`Frames`] reads the backend's framing as the bytes
//! pass and fails the connection on a message over the bound before the
//! driver parses its header. [`AsText`] turns the first value of a row
//! (binary, as the extended protocol returns it) into the text a person
//! compares with `expect`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};
use tokio_postgres::types::{FromSql, Type};

use super::bounded::too_long;

/// Where in the connection the bytes passing are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The one-byte answer to an SSLRequest: `S` (TLS follows) or not.
    SslAnswer,
    /// Backend messages: a type byte, a 4-byte length, the body.
    Messages,
    /// TLS records; the messages are checked inside the TLS stream.
    Tls,
}

/// A stream that follows the backend's message framing and refuses a
/// message longer than `max` as soon as its header arrives.
pub struct Frames<S> {
    inner: S,
    phase: Phase,
    head: [u8; 5],
    have: usize,
    body_left: u64,
    max: u64,
}

impl<S> Frames<S> {
    pub fn new(inner: S, phase: Phase, max: u64) -> Frames<S> {
        Frames {
            inner,
            phase,
            head: [0; 5],
            have: 0,
            body_left: 0,
            max,
        }
    }

    fn observe(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.phase {
                Phase::Tls => return Ok(()),
                Phase::SslAnswer => {
                    self.phase = if bytes[0] == b'S' { Phase::Tls } else { Phase::Messages };
                    bytes = &bytes[1..];
                }
                Phase::Messages if self.body_left > 0 => {
                    let n = (self.body_left.min(bytes.len() as u64)) as usize;
                    self.body_left -= n as u64;
                    bytes = &bytes[n..];
                }
                Phase::Messages => {
                    let n = (5 - self.have).min(bytes.len());
                    self.head[self.have..self.have + n].copy_from_slice(&bytes[..n]);
                    self.have += n;
                    bytes = &bytes[n..];
                    if self.have == 5 {
                        self.have = 0;
                        let len = u32::from_be_bytes([self.head[1], self.head[2], self.head[3], self.head[4]]);
                        // The length counts itself.
                        let body = u64::from(len).saturating_sub(4);
                        if body > self.max {
                            return Err(too_long("message", u64::from(len), self.max));
                        }
                        self.body_left = body;
                    }
                }
            }
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Frames<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        Poll::Ready(this.observe(&buf.filled()[before..]))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Frames<S> {
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

impl<S: TlsStream + Unpin> TlsStream for Frames<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

/// A TLS connector whose streams are [`Frames`]-checked from the start.
pub struct Guarded<T> {
    pub tls: T,
    pub max: u64,
}

type Connecting<S, E> = Pin<Box<dyn Future<Output = Result<Frames<S>, E>> + Send>>;

impl<S, T> TlsConnect<S> for Guarded<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
    T::Stream: Send + 'static,
{
    type Stream = Frames<T::Stream>;
    type Error = T::Error;
    type Future = Connecting<T::Stream, T::Error>;

    fn connect(self, stream: S) -> Self::Future {
        let max = self.max;
        let f = self.tls.connect(stream);
        Box::pin(async move { f.await.map(|s| Frames::new(s, Phase::Messages, max)) })
    }
}

/// A value as text: `42`, `t`, `12.50`, a string. `Err` names a type the
/// probe does not turn into text (the query can cast it: `x::text`).
#[derive(Debug)]
pub struct AsText(pub Result<Option<String>, String>);

impl<'a> FromSql<'a> for AsText {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(AsText(text(ty, raw).map(Some).ok_or_else(|| ty.name().to_string())))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(AsText(Ok(None)))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn text(ty: &Type, raw: &[u8]) -> Option<String> {
    let int = |n: usize| -> Option<i64> {
        let b = raw.get(..n).filter(|_| raw.len() == n)?;
        Some(match n {
            2 => i64::from(i16::from_be_bytes([b[0], b[1]])),
            4 => i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            _ => i64::from_be_bytes(b.try_into().ok()?),
        })
    };
    let utf8 = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
    Some(match *ty {
        Type::BOOL => (if *raw.first()? != 0 { "t" } else { "f" }).to_string(),
        Type::INT2 => int(2)?.to_string(),
        Type::INT4 => int(4)?.to_string(),
        Type::INT8 => int(8)?.to_string(),
        Type::OID => u32::try_from(int(4)?).unwrap_or_default().to_string(),
        Type::FLOAT4 => f32::from_be_bytes(raw.try_into().ok()?).to_string(),
        Type::FLOAT8 => f64::from_be_bytes(raw.try_into().ok()?).to_string(),
        Type::NUMERIC => numeric(raw)?,
        Type::UUID => {
            let h: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            if h.len() != 32 {
                return None;
            }
            format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
        }
        // jsonb's binary form is a version byte and the text.
        Type::JSONB => utf8(raw.strip_prefix(&[1])?)?,
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::CHAR
        | Type::UNKNOWN
        | Type::JSON
        | Type::XML => utf8(raw)?,
        _ => return None,
    })
}

/// NUMERIC's binary form: digit count, weight, sign, display scale, then
/// base-10000 digits.
fn numeric(raw: &[u8]) -> Option<String> {
    let word = |i: usize| raw.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (count, weight, sign, scale) = (
        usize::from(word(0)?),
        i32::from(word(2)? as i16),
        word(4)?,
        usize::from(word(6)?),
    );
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<u16> = (0..count).map(|i| word(8 + 2 * i)).collect::<Option<_>>()?;
    let digit = |i: i32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                out.push_str(&digit(i).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if scale > 0 {
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < scale {
            frac.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        frac.truncate(scale);
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_message_header_is_refused_before_its_body() {
        let mut f = Frames::new((), Phase::SslAnswer, 1 << 20);
        // `A` answers the SSLRequest (no TLS), then `AAAA` announces 1 GiB.
        let e = f.observe(b"AAAAAAAA").unwrap_err();
        assert!(e.to_string().contains("1094795585-byte message"), "{e}");
        let mut f = Frames::new((), Phase::Messages, 16);
        // Two small messages, split anywhere, pass.
        let msgs = [b"Z\0\0\0\x05I".as_slice(), b"S\0\0\0\x08abcd"].concat();
        for chunk in msgs.chunks(3) {
            f.observe(chunk).unwrap();
        }
        assert!(f.observe(b"D\0\0\0\x20").is_err());
    }

    #[test]
    fn numerics_read_like_postgres_prints_them() {
        let n = |words: &[u16]| numeric(&words.iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<_>>());
        assert_eq!(n(&[1, 0, 0, 0, 42]).unwrap(), "42");
        assert_eq!(n(&[3, 1, 0, 2, 1, 2345, 6700]).unwrap(), "12345.67");
        assert_eq!(n(&[1, (-1i16) as u16, 0x4000, 1, 5000]).unwrap(), "-0.5");
        assert_eq!(n(&[0, 0, 0, 2]).unwrap(), "0.00");
        assert_eq!(n(&[0, 0, 0xC000, 0]).unwrap(), "NaN");
        assert!(n(&[2, 0, 0, 0, 1]).is_none());
    }
}
