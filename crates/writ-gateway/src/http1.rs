//! HTTP/1.1 as the gateway speaks it to an upstream, without I/O: a request written out,
//! an answer's head read and its body's length decided (RFC 9112, section 6.3), and a
//! chunked body decoded. [`crate::upstream`] moves the bytes.
//!
//! The answer head is parsed by httparse (hyper's parser). What this module adds is the
//! framing, where a proxy that gets it wrong hands one caller the tail of another's
//! answer. So it is strict: an answer whose length is in doubt (a `Content-Length` that
//! is not one number, a transfer coding other than `chunked`, a malformed chunk) is an
//! error, and a connection is offered for reuse only when its answer ended exactly where
//! its framing said, with nothing after it.

use std::io::Write as _;

use bytes::{Buf, Bytes, BytesMut};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};

/// The most bytes an answer's head (status line and headers) may take.
pub const MAX_HEAD: usize = 64 * 1024;

/// The most header fields an answer's head may have.
pub const MAX_HEADERS: usize = 100;

/// The most bytes a chunk-size line may take, extensions included.
const MAX_CHUNK_LINE: usize = 4096;

/// Why an exchange with an upstream failed: what a gateway log and a 502 carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The answer is not HTTP/1.x.
    #[error("the answer is not HTTP/1.1: {0}")]
    Malformed(String),
    /// The answer's head is bigger than [`MAX_HEAD`] or has more than [`MAX_HEADERS`].
    #[error("the answer's head is over {MAX_HEAD} bytes or {MAX_HEADERS} fields")]
    HeadTooLarge,
    /// `101 Switching Protocols`: the gateway forwards no upgrades.
    #[error("the upstream switched protocols (101), which the gateway does not forward")]
    Upgrade,
    /// A `Content-Length` that is not one decimal number.
    #[error("the answer's content-length is not one number: {0:?}")]
    BadLength(String),
    /// A transfer coding the gateway does not decode.
    #[error("the answer's transfer-encoding is {0:?}, not chunked alone")]
    BadCoding(String),
    /// A chunked body that breaks RFC 9112, section 7.1.
    #[error("the answer's chunked body is malformed: {0}")]
    BadChunk(&'static str),
}

/// How an answer's body is delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes (none for a `HEAD`, a 204 or a 304).
    Length(u64),
    /// Chunked, to its last chunk and trailers.
    Chunked(Chunked),
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// An answer's head, as the gateway forwards it.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its header fields (`Content-Length` removed when a transfer coding overrides it).
    pub headers: HeaderMap,
    /// How its body is delimited.
    pub framing: Framing,
    /// Whether its connection may carry another request once the body has ended.
    pub keep_alive: bool,
}

/// Methods whose requests carry no content unless they have a body (RFC 9110, section
/// 8.6): these get no `Content-Length: 0`.
fn bodiless(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// Appends a request's head to `out`: the request line for `target` (origin form), each
/// header of `headers` but any `Content-Length` and `Transfer-Encoding`, and the
/// `Content-Length` of a `body_len`-byte body. No value can end its line and start a
/// header (or a request) of its own: a `HeaderValue` holds no CR, LF or NUL (its safe
/// constructors refuse every control character but tab), a `HeaderName` only token
/// characters, and a `Uri`'s path and query no whitespace.
pub fn write_request(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    body_len: usize,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if body_len > 0 || !bodiless(method) {
        // Writing to a `Vec` cannot fail.
        let _ = write!(out, "content-length: {body_len}\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Reads an answer's head off the front of `buf`, the bytes an upstream sent for a
/// request (`HEAD` if `head_request`). Interim (1xx) answers before it are read and
/// dropped. `Ok(None)`: the head is not all there yet; nothing is consumed then but
/// interim answers. On success the head's bytes are gone from `buf`, which starts with
/// the body.
pub fn read_answer(buf: &mut BytesMut, head_request: bool) -> Result<Option<Answer>, Error> {
    loop {
        // Uninitialised: filling 100 empty fields would cost more than parsing a head.
        let mut fields = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let config = httparse::ParserConfig::default();
        let len = match config.parse_response_with_uninit_headers(&mut parsed, buf, &mut fields) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
                return Err(Error::HeadTooLarge);
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(Error::HeadTooLarge),
            Err(e) => return Err(Error::Malformed(e.to_string())),
        };
        if len > MAX_HEAD {
            return Err(Error::HeadTooLarge);
        }
        let code = parsed.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| Error::Malformed(format!("status {code}")))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::Upgrade);
        }
        if status.is_informational() {
            buf.advance(len);
            continue;
        }
        let http11 = parsed.version == Some(1);
        // Each field's name and value as offsets into the head, so that the values can
        // share the head's bytes rather than be copied one by one.
        let base = buf.as_ptr() as usize;
        let spans: Vec<(usize, usize, usize, usize)> = parsed
            .headers
            .iter()
            .map(|field| {
                let name = field.name.as_ptr() as usize - base;
                let value = field.value.as_ptr() as usize - base;
                (name, field.name.len(), value, field.value.len())
            })
            .collect();
        let head = buf.split_to(len).freeze();
        let mut headers = HeaderMap::with_capacity(spans.len());
        for &(name, name_len, value, value_len) in &spans {
            let name = HeaderName::from_bytes(&head[name..name + name_len])
                .map_err(|_| Error::Malformed("a header name".into()))?;
            let value = HeaderValue::from_maybe_shared(head.slice(value..value + value_len))
                .map_err(|_| Error::Malformed(format!("header {name}: its value")))?;
            headers.append(name, value);
        }
        let (framing, mut keep_alive) = framing(&mut headers, status, head_request)?;
        match framing {
            // A transfer coding overrides a length (RFC 9112, section 6.3): the length is
            // not forwarded, and the connection is not trusted with another request.
            Framing::Chunked(_) if headers.remove(header::CONTENT_LENGTH).is_some() => {
                keep_alive = false;
            }
            _ => {}
        }
        keep_alive &= http11 && !says_close(&headers);
        return Ok(Some(Answer {
            status,
            headers,
            framing,
            keep_alive,
        }));
    }
}

/// Whether the `Connection` header has the `close` option.
fn says_close(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
    })
}

/// How an answer with `headers` and `status`, to a request that was `HEAD` or not, is
/// delimited (RFC 9112, section 6.3), and whether that framing lets its connection be
/// reused. A length given more than once (`5, 5`, or two lines of `5`: allowed, and read
/// as 5) is left in `headers` once, so that the caller's client need not be as lenient.
fn framing(
    headers: &mut HeaderMap,
    status: StatusCode,
    head_request: bool,
) -> Result<(Framing, bool), Error> {
    if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok((Framing::Length(0), true));
    }
    let codings = headers.get_all(header::TRANSFER_ENCODING);
    if codings.iter().next().is_some() {
        // The codings listed must be `chunked`, once: any other is one the gateway does
        // not decode, and would forward without saying so.
        let listed = codings
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|c| !c.is_empty());
        let mut chunked = 0;
        for coding in listed {
            if !coding.eq_ignore_ascii_case(b"chunked") {
                chunked = 0;
                break;
            }
            chunked += 1;
        }
        if chunked != 1 {
            let text: Vec<String> = codings.iter().map(|v| shown(v.as_bytes())).collect();
            return Err(Error::BadCoding(shown(text.join(", ").as_bytes())));
        }
        return Ok((Framing::Chunked(Chunked::default()), true));
    }
    let mut length: Option<u64> = None;
    let mut given = 0;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        // `Content-Length: 5, 5` and two `Content-Length: 5` lines are one length;
        // anything else is no length at all (RFC 9110, section 8.6).
        for item in value.as_bytes().split(|&b| b == b',') {
            let item = item.trim_ascii();
            let bad = || Error::BadLength(shown(value.as_bytes()));
            let n = decimal(item).ok_or_else(bad)?;
            if length.is_some_and(|l| l != n) {
                return Err(bad());
            }
            length = Some(n);
            given += 1;
        }
    }
    Ok(match length {
        Some(n) => {
            if given > 1 {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            }
            (Framing::Length(n), true)
        }
        None => (Framing::UntilClose, false),
    })
}

/// An upstream's header value as an error quotes it: its first 64 bytes, as text.
fn shown(value: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(&value[..value.len().min(64)]).into_owned();
    if value.len() > 64 {
        text.push_str("...");
    }
    text
}

/// `digits` as a decimal number: one to nineteen ASCII digits, nothing else.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

/// Where a chunked body's decoding is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ChunkState {
    /// At a chunk-size line.
    #[default]
    Size,
    /// In a chunk's data, with this many bytes of it to come.
    Data(u64),
    /// At the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk, at the trailer section.
    Trailers,
    /// Past the trailer section's empty line: the body has ended.
    Done,
}

/// A chunked body's decoder (RFC 9112, section 7.1). Chunk extensions and trailer fields
/// are read and dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunked {
    state: ChunkState,
}

impl Chunked {
    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes from the front of `buf`. `Ok(Some(data))`: the next piece of the body,
    /// taken from `buf`. `Ok(None)`: the body has ended ([`Chunked::is_done`]), or `buf`
    /// holds too little to go on, and the caller reads more onto its end. Bytes after the
    /// body's end stay in `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, Error> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some((len, size)) = chunk_size(buf)? else {
                        return Ok(None);
                    };
                    buf.advance(len);
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    return Ok(Some(buf.split_to(n).freeze()));
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|&b| b != b'\r') {
                            return Err(Error::BadChunk("a chunk's data does not end in CRLF"));
                        }
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(Error::BadChunk("a chunk's data does not end in CRLF"));
                    }
                    buf.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let mut fields = [httparse::EMPTY_HEADER; 32];
                    match httparse::parse_headers(buf, &mut fields) {
                        Ok(httparse::Status::Complete((len, _))) => {
                            buf.advance(len);
                            self.state = ChunkState::Done;
                        }
                        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {
                            return Ok(None);
                        }
                        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                            return Err(Error::BadChunk(
                                "the trailer section is over 64 KiB or 32 fields",
                            ));
                        }
                        Err(_) => return Err(Error::BadChunk("a trailer field is malformed")),
                    }
                }
                ChunkState::Done => return Ok(None),
            }
        }
    }
}

/// A chunk-size line at the front of `buf`: its length with the CRLF, and the size.
/// `Ok(None)` if the line is not all there. The grammar (RFC 9112, section 7.1.1):
/// one to fifteen hex digits, then optionally whitespace and `;` extensions of visible
/// characters, spaces and tabs, then CRLF. A bare LF, an empty size, or a control
/// character is an error, not a guess.
fn chunk_size(buf: &[u8]) -> Result<Option<(usize, u64)>, Error> {
    let mut size: u64 = 0;
    let mut digits = 0;
    let mut i = 0;
    while let Some(&b) = buf.get(i) {
        let Some(d) = (b as char).to_digit(16) else {
            break;
        };
        digits += 1;
        if digits > 15 {
            return Err(Error::BadChunk("a chunk size is over 15 hex digits"));
        }
        size = size << 4 | u64::from(d);
        i += 1;
    }
    if i == buf.len() {
        return Ok(None);
    }
    if digits == 0 {
        return Err(Error::BadChunk(
            "a chunk-size line does not start with a size",
        ));
    }
    // After the size: whitespace, then `;` and an extension, or CRLF.
    let mut in_extension = false;
    while let Some(&b) = buf.get(i) {
        match b {
            b'\r' => {
                return match buf.get(i + 1) {
                    None => Ok(None),
                    Some(b'\n') => Ok(Some((i + 2, size))),
                    Some(_) => Err(Error::BadChunk("a chunk-size line has a bare CR")),
                };
            }
            b';' => in_extension = true,
            b' ' | b'\t' => {}
            0x21..=0x7e | 0x80..=0xff if in_extension => {}
            _ => return Err(Error::BadChunk("a chunk-size line has a stray byte")),
        }
        i += 1;
        if i > MAX_CHUNK_LINE {
            return Err(Error::BadChunk("a chunk-size line is over 4096 bytes"));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(method: Method, headers: &[(&str, &str)], body_len: usize) -> String {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let mut out = Vec::new();
        write_request(&mut out, &method, "/pay?x=1", &map, body_len);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn requests_are_written_with_their_length() {
        assert_eq!(
            request(Method::GET, &[("host", "fn:80"), ("a", "1"), ("a", "2")], 0),
            "GET /pay?x=1 HTTP/1.1\r\nhost: fn:80\r\na: 1\r\na: 2\r\n\r\n"
        );
        // The caller's own length and coding are not trusted: the body as read is sent.
        assert_eq!(
            request(
                Method::POST,
                &[("content-length", "99"), ("transfer-encoding", "chunked")],
                5
            ),
            "POST /pay?x=1 HTTP/1.1\r\ncontent-length: 5\r\n\r\n"
        );
        assert_eq!(
            request(Method::PUT, &[], 0),
            "PUT /pay?x=1 HTTP/1.1\r\ncontent-length: 0\r\n\r\n"
        );
        assert_eq!(
            request(Method::DELETE, &[], 12_345_678_901),
            "DELETE /pay?x=1 HTTP/1.1\r\ncontent-length: 12345678901\r\n\r\n"
        );
    }

    fn answer(text: &str, head_request: bool) -> Result<Option<(Answer, BytesMut)>, Error> {
        let mut buf = BytesMut::from(text.as_bytes());
        Ok(read_answer(&mut buf, head_request)?.map(|a| (a, buf)))
    }

    fn framed(text: &str) -> Result<(Framing, bool), Error> {
        answer(text, false).map(|a| {
            let (a, _) = a.unwrap();
            (a.framing, a.keep_alive)
        })
    }

    #[test]
    fn answers_are_framed_as_rfc_9112_says() {
        let (a, rest) = answer(
            "HTTP/1.1 201 Created\r\nContent-Length: 3\r\nX-A: b\r\n\r\nokX",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.status, StatusCode::CREATED);
        assert_eq!(a.headers["x-a"], "b");
        assert_eq!(a.framing, Framing::Length(3));
        assert!(a.keep_alive);
        assert_eq!(&rest[..], b"okX");

        let length = |n| Ok((Framing::Length(n), true));
        let chunked = Ok((Framing::Chunked(Chunked::default()), true));
        for (head, want) in [
            ("HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\n", length(5)),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\n",
                length(5),
            ),
            (
                "HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n",
                length(0),
            ),
            (
                "HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n",
                length(0),
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n",
                chunked.clone(),
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", Ok((Framing::UntilClose, false))),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: x, Close\r\n\r\n",
                Ok((Framing::Length(1), false)),
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n",
                Ok((Framing::Length(1), false)),
            ),
            // Both: the coding wins, the length is dropped, the connection not reused.
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
                Ok((Framing::Chunked(Chunked::default()), false)),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\n",
                Err(Error::BadLength("5, 6".into())),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
                Err(Error::BadLength("6".into())),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\n",
                Err(Error::BadLength("+5".into())),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n",
                Err(Error::BadLength("".into())),
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
                Err(Error::BadLength("99999999999999999999".into())),
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
                Err(Error::BadCoding("gzip, chunked".into())),
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, chunked\r\n\r\n",
                Err(Error::BadCoding("chunked, chunked".into())),
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: ,\r\n\r\n",
                Err(Error::BadCoding(",".into())),
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: gzip\r\n\r\n",
                Err(Error::BadCoding("chunked, gzip".into())),
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
                Err(Error::Upgrade),
            ),
        ] {
            assert_eq!(framed(head), want, "{head:?}");
        }
        // A HEAD request's answer has no body, whatever its length says.
        let (a, _) = answer("HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(a.framing, Framing::Length(0));
        assert_eq!(a.headers["content-length"], "7");
        // A length given twice is forwarded once.
        for head in [
            "HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\n",
        ] {
            let (a, _) = answer(head, false).unwrap().unwrap();
            let lengths: Vec<_> = a.headers.get_all("content-length").iter().collect();
            assert_eq!(lengths, ["5"], "{head:?}");
        }
        // A dropped length is not forwarded either.
        let (a, _) = answer(
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(!a.headers.contains_key("content-length"));
    }

    #[test]
    fn interim_answers_are_skipped_and_partial_heads_wait() {
        let (a, rest) = answer(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.status, StatusCode::OK);
        assert!(rest.is_empty());

        let mut buf =
            BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-le"[..]);
        assert!(read_answer(&mut buf, false).unwrap().is_none());
        assert_eq!(&buf[..], b"HTTP/1.1 200 OK\r\ncontent-le");
        assert!(answer("", false).unwrap().is_none());

        assert!(matches!(
            answer("HTTP/2 200\r\n\r\n", false),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            answer("HTTP/1.1 99 x\r\n\r\n", false),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            answer("HTTP/1.1 200 OK\r\nbad header\r\n\r\n", false),
            Err(Error::Malformed(_))
        ));
        let long = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD));
        assert_eq!(answer(&long, false).unwrap_err(), Error::HeadTooLarge);
        let long = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            "7".repeat(100)
        );
        let Err(Error::BadLength(shown)) = answer(&long, false) else {
            panic!("a 100-digit length was read");
        };
        assert_eq!(shown, format!("{}...", "7".repeat(64)));
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "x: 1\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(answer(&many, false).unwrap_err(), Error::HeadTooLarge);
    }

    /// Decodes `wire` fed to the decoder in pieces of `step` bytes; the body, and what was
    /// left after its end.
    fn dechunk(wire: &[u8], step: usize) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let mut decoder = Chunked::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            while let Some(data) = decoder.decode(&mut buf)? {
                body.extend_from_slice(&data);
            }
            if decoder.is_done() {
                buf.extend_from_slice(&wire[fed..]);
                return Ok((body, buf.to_vec()));
            }
            if fed == wire.len() {
                return Err(Error::BadChunk("the input ended"));
            }
            let next = (fed + step).min(wire.len());
            buf.extend_from_slice(&wire[fed..next]);
            fed = next;
        }
    }

    #[test]
    fn chunked_bodies_are_decoded_strictly() {
        let wire = b"3;a=b\r\nabc\r\nA \t; x\r\n0123456789\r\n0\r\nx-t: 1\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, wire.len()] {
            assert_eq!(
                dechunk(wire, step).unwrap(),
                (b"abc0123456789".to_vec(), b"NEXT".to_vec()),
                "{step}"
            );
        }
        for (wire, why) in [
            (&b"\r\n"[..], "a chunk-size line does not start with a size"),
            (b";x\r\n", "a chunk-size line does not start with a size"),
            (b"3\nabc\r\n0\r\n\r\n", "a chunk-size line has a stray byte"),
            (b"3\rxabc", "a chunk-size line has a bare CR"),
            (b"3 4\r\n", "a chunk-size line has a stray byte"),
            (b"3;a\x00\r\n", "a chunk-size line has a stray byte"),
            (b"-3\r\n", "a chunk-size line does not start with a size"),
            (
                b"1000000000000000\r\n",
                "a chunk size is over 15 hex digits",
            ),
            (b"3\r\nabcX\r\n", "a chunk's data does not end in CRLF"),
            (b"3\r\nabc\nX", "a chunk's data does not end in CRLF"),
            (b"0\r\nbad trailer\r\n\r\n", "a trailer field is malformed"),
        ] {
            assert_eq!(dechunk(wire, 1), Err(Error::BadChunk(why)), "{wire:?}");
            assert_eq!(
                dechunk(wire, wire.len()),
                Err(Error::BadChunk(why)),
                "{wire:?}"
            );
        }
        let long = format!("1;{}\r\n", "e".repeat(MAX_CHUNK_LINE));
        assert_eq!(
            dechunk(long.as_bytes(), 64),
            Err(Error::BadChunk("a chunk-size line is over 4096 bytes"))
        );
    }

    /// `body` in chunks of the sizes `sizes` cycles through (hex in either case), with
    /// extensions and trailers as the flags say.
    fn chunk(body: &[u8], sizes: &[usize], upper: bool, extras: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        for &size in sizes.iter().cycle() {
            if at == body.len() {
                break;
            }
            let n = size.min(body.len() - at);
            let hex = if upper {
                format!("{n:X}")
            } else {
                format!("{n:x}")
            };
            out.extend_from_slice(hex.as_bytes());
            if extras {
                out.extend_from_slice(b" ;ext=\"v\"");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&body[at..at + n]);
            out.extend_from_slice(b"\r\n");
            at += n;
        }
        out.extend_from_slice(b"0\r\n");
        if extras {
            out.extend_from_slice(b"x-sum: 1\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the chunk sizes and however the bytes arrive, the decoder gives the
        /// body back and leaves what follows it untouched.
        #[test]
        fn chunked_round_trips(
            body in prop::collection::vec(any::<u8>(), 0..2000),
            sizes in prop::collection::vec(1usize..300, 1..5),
            upper in any::<bool>(),
            extras in any::<bool>(),
            after in prop::collection::vec(any::<u8>(), 0..20),
            step in 1usize..400,
        ) {
            let mut wire = chunk(&body, &sizes, upper, extras);
            wire.extend_from_slice(&after);
            let (got, rest) = dechunk(&wire, step).unwrap();
            prop_assert_eq!(got, body);
            prop_assert_eq!(rest, after);
        }

        /// A head split anywhere reads the same as the whole: `None` until it is all
        /// there, never an error or a different answer.
        #[test]
        fn heads_read_the_same_however_split(at in 0usize..200) {
            let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\ncontent-length: 4\r\nx-b: c d\r\n\r\nbody";
            let at = at.min(wire.len());
            let mut buf = BytesMut::from(&wire[..at]);
            let early = read_answer(&mut buf, false).unwrap();
            buf.extend_from_slice(&wire[at..]);
            let answer = match early {
                Some(a) => a,
                None => read_answer(&mut buf, false).unwrap().unwrap(),
            };
            prop_assert_eq!(answer.status, StatusCode::NOT_FOUND);
            prop_assert_eq!(answer.framing, Framing::Length(4));
            prop_assert_eq!(&answer.headers["x-b"], "c d");
            prop_assert_eq!(&buf[..], b"body");
        }
    }
}
