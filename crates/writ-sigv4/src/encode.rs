//! Percent-encoding as SigV4 defines it (RFC 3986's unreserved set, upper-case hex), its
//! inverse, and lower-case hex for digests and signatures.

use std::borrow::Cow;

const UPPER: &[u8; 16] = b"0123456789ABCDEF";
const LOWER: &[u8; 16] = b"0123456789abcdef";

/// Whether `b` is in RFC 3986's unreserved set, the bytes SigV4 never encodes.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Appends `bytes` to `out`, every byte outside the unreserved set (and outside `/` when
/// `keep_slash`) written as `%XX` with upper-case hex.
pub(crate) fn encode_into(out: &mut String, bytes: &[u8], keep_slash: bool) {
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(UPPER[usize::from(b >> 4)] as char);
            out.push(UPPER[usize::from(b & 0x0f)] as char);
        }
    }
}

/// `bytes` percent-encoded (see [`encode_into`]), `/` included.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    encode_into(&mut out, bytes, false);
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes every `%XX` in `s`; a `%` not followed by two hex digits stays a literal `%`
/// (and is encoded again as `%25`).
pub(crate) fn percent_decode(s: &[u8]) -> Cow<'_, [u8]> {
    decode(s, false)
}

/// Decodes a query string's name or value: every `%XX`, and `+` as a space, as AWS reads a
/// query (botocore sends `a+b` for the value `a b`, and signs `a%20b`).
pub(crate) fn query_decode(s: &[u8]) -> Cow<'_, [u8]> {
    decode(s, true)
}

fn decode(s: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    if !s.contains(&b'%') && (!plus_is_space || !s.contains(&b'+')) {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex_value),
                s.get(i + 2).copied().and_then(hex_value),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(if plus_is_space && s[i] == b'+' {
            b' '
        } else {
            s[i]
        });
        i += 1;
    }
    Cow::Owned(out)
}

/// `bytes` as lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    hex_into(&mut out, bytes);
    out
}

/// Appends `bytes` as lower-case hex.
pub(crate) fn hex_into(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(LOWER[usize::from(b >> 4)] as char);
        out.push(LOWER[usize::from(b & 0x0f)] as char);
    }
}

/// Decodes exactly 64 lower-case hex digits into 32 bytes, or `None`.
pub(crate) fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_but_unreserved() {
        assert_eq!(encode(b"-._~azAZ09"), "-._~azAZ09");
        assert_eq!(encode(b"a b/+=*%"), "a%20b%2F%2B%3D%2A%25");
        assert_eq!(encode("ሴ".as_bytes()), "%E1%88%B4");
        let mut s = String::new();
        encode_into(&mut s, b"/a b/", true);
        assert_eq!(s, "/a%20b/");
    }

    #[test]
    fn decodes_valid_escapes_only() {
        assert_eq!(&*percent_decode(b"a%20b%2fc"), b"a b/c");
        assert_eq!(&*percent_decode(b"100%"), b"100%");
        assert_eq!(&*percent_decode(b"%zz%4"), b"%zz%4");
        assert_eq!(&*percent_decode(b"a+b"), b"a+b");
        assert_eq!(&*query_decode(b"a+b%2B"), b"a b+");
    }

    #[test]
    fn hex_round_trip() {
        let bytes: Vec<u8> = (0..32).collect();
        let h = hex(&bytes);
        assert_eq!(decode_hex32(&h).unwrap().to_vec(), bytes);
        assert!(decode_hex32(&h.to_uppercase()).is_none());
        assert!(decode_hex32(&h[1..]).is_none());
    }
}
