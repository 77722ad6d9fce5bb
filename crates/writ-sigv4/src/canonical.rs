//! The canonical request, exactly as AWS defines it: method, canonical URI, canonical query
//! string, canonical headers, signed headers and payload hash, one per line.

use crate::encode::{encode, encode_into, percent_decode, query_decode};

/// How the request path becomes the canonical URI.
///
/// The path in a [`SignableRequest`](crate::SignableRequest) is the path as sent on the wire,
/// already percent-encoded once by the client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UriEncoding {
    /// Every AWS service but S3: the path is normalized (empty and `.` segments removed, `..`
    /// resolved) and then percent-encoded again, so `%20` on the wire is `%2520` in the
    /// canonical URI ("double encoding").
    #[default]
    Double,
    /// S3: the path is not normalized (`a//b` stays) and is encoded exactly once: escapes
    /// on the wire are decoded, then every byte outside RFC 3986's unreserved set is encoded
    /// again, but for the `/` between segments (an escaped `%2F` stays escaped).
    S3,
}

/// Appends the canonical URI of `path` (as sent) to `out`.
pub(crate) fn push_canonical_uri(out: &mut String, path: &str, encoding: UriEncoding) {
    match encoding {
        UriEncoding::Double => {
            let mut segments: Vec<&str> = Vec::new();
            for segment in path.split('/') {
                match segment {
                    "" | "." => {}
                    ".." => {
                        segments.pop();
                    }
                    s => segments.push(s),
                }
            }
            let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
            out.push('/');
            for (i, segment) in segments.iter().enumerate() {
                if i > 0 {
                    out.push('/');
                }
                encode_into(out, segment.as_bytes(), false);
            }
            if trailing && !segments.is_empty() {
                out.push('/');
            }
        }
        UriEncoding::S3 => {
            if !path.starts_with('/') {
                out.push('/');
            }
            // Decode each segment on its own, so an escaped `/` (`%2F`) stays escaped.
            for (i, segment) in path.split('/').enumerate() {
                if i > 0 {
                    out.push('/');
                }
                encode_into(out, &percent_decode(segment.as_bytes()), false);
            }
        }
    }
}

/// The canonical query string of `raw` (the query as sent, without `?`): each parameter
/// decoded (`+` is a space) and encoded again with RFC 3986's unreserved set, sorted by encoded name and then
/// value, joined with `&`. A parameter whose decoded name is `skip` is left out (presigned
/// URLs leave out `X-Amz-Signature`); empty pieces (`a=1&&b=2`) are ignored.
pub(crate) fn canonical_query(raw: &str, skip: Option<&str>) -> String {
    if raw.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for piece in raw.split('&') {
        if piece.is_empty() {
            continue;
        }
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        let key = query_decode(key.as_bytes());
        if skip.is_some_and(|s| s.as_bytes() == &*key) {
            continue;
        }
        pairs.push((encode(&key), encode(&query_decode(value.as_bytes()))));
    }
    pairs.sort_unstable();
    let mut out = String::with_capacity(raw.len() + 16);
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Appends `value` with leading and trailing whitespace removed and every run of whitespace
/// inside (spaces, tabs, folded lines) replaced by one space.
fn push_trimmed(out: &mut String, value: &str) {
    let b = value.as_bytes();
    let plain = b.first() != Some(&b' ')
        && b.last() != Some(&b' ')
        && !b.iter().any(|&c| matches!(c, b'\t' | b'\r' | b'\n'))
        && !b.windows(2).any(|w| w == b"  ");
    if plain {
        out.push_str(value);
        return;
    }
    let words = value
        .split([' ', '\t', '\r', '\n'])
        .filter(|word| !word.is_empty());
    for (i, word) in words.enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// The lower-case names of `headers` to sign, sorted and without duplicates, `authorization`
/// left out.
pub(crate) fn header_names_to_sign(headers: &[(&str, &str)]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|name| name != "authorization")
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Builds the canonical request without its last line (the payload hash): everything up to
/// and including the signed headers line and its newline. `signed` must be lower-case and
/// sorted; returns the first signed name that no header in `headers` carries.
pub(crate) fn canonical_request_head<'s, S: AsRef<str>>(
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &[(&str, &str)],
    signed: &'s [S],
    encoding: UriEncoding,
) -> Result<String, &'s str> {
    let headers_len: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut out = String::with_capacity(
        method.len() + path.len() * 3 + canonical_query.len() + headers_len + 64 * 2 + 8,
    );
    out.push_str(method);
    out.push('\n');
    push_canonical_uri(&mut out, path, encoding);
    out.push('\n');
    out.push_str(canonical_query);
    out.push('\n');
    for name in signed {
        let name = name.as_ref();
        out.push_str(name);
        out.push(':');
        let mut found = false;
        for (header, value) in headers {
            if header.eq_ignore_ascii_case(name) {
                if found {
                    out.push(',');
                }
                push_trimmed(&mut out, value);
                found = true;
            }
        }
        if !found {
            return Err(name);
        }
        out.push('\n');
    }
    out.push('\n');
    for (i, name) in signed.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(name.as_ref());
    }
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(path: &str, encoding: UriEncoding) -> String {
        let mut out = String::new();
        push_canonical_uri(&mut out, path, encoding);
        out
    }

    #[test]
    fn normalizes_and_double_encodes() {
        assert_eq!(uri("", UriEncoding::Double), "/");
        assert_eq!(uri("//example//", UriEncoding::Double), "/example/");
        assert_eq!(uri("/example1/example2/../..", UriEncoding::Double), "/");
        assert_eq!(uri("/a/./b/.", UriEncoding::Double), "/a/b/");
        assert_eq!(uri("/../..", UriEncoding::Double), "/");
        assert_eq!(uri("/a%20b", UriEncoding::Double), "/a%2520b");
        assert_eq!(uri("/$x", UriEncoding::Double), "/%24x");
    }

    #[test]
    fn s3_encodes_once_without_normalizing() {
        assert_eq!(uri("/a//b/./c", UriEncoding::S3), "/a//b/./c");
        assert_eq!(uri("/a%20b%2Fc", UriEncoding::S3), "/a%20b%2Fc");
        assert_eq!(uri("/a b~", UriEncoding::S3), "/a%20b~");
        assert_eq!(uri("", UriEncoding::S3), "/");
    }

    #[test]
    fn query_sorted_by_encoded_key_then_value() {
        assert_eq!(canonical_query("b=2&a=2&a=1&c", None), "a=1&a=2&b=2&c=");
        assert_eq!(
            canonical_query("Param-3=V&Param=V&%E1%88%B4=V", None),
            "%E1%88%B4=V&Param=V&Param-3=V"
        );
        assert_eq!(
            canonical_query("a=x+y%2B&k=%2f&&", None),
            "a=x%20y%2B&k=%2F"
        );
        assert_eq!(
            canonical_query("X-Amz-Signature=abc&a=1", Some("X-Amz-Signature")),
            "a=1"
        );
    }

    #[test]
    fn header_values_trimmed_and_joined() {
        let headers = [
            ("Host", "example.com"),
            ("My-Header", "  a   b\n  c "),
            ("my-header", "d"),
        ];
        let head = canonical_request_head(
            "GET",
            "/",
            "",
            &headers,
            &["host", "my-header"],
            UriEncoding::Double,
        )
        .unwrap();
        assert_eq!(
            head,
            "GET\n/\n\nhost:example.com\nmy-header:a b c,d\n\nhost;my-header\n"
        );
        assert_eq!(
            canonical_request_head(
                "GET",
                "/",
                "",
                &headers,
                &["x-missing"],
                UriEncoding::Double
            ),
            Err("x-missing")
        );
    }
}
