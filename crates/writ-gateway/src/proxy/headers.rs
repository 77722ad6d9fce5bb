//! Header hygiene: which of a caller's headers reach the upstream (no hop-by-hop headers,
//! no identity or forwarding headers a caller could forge), which of the upstream's reach
//! the caller, and the names and trace context the gateway sets.

use std::time::SystemTime;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Header names the request path looks up or sets, made once rather than parsed from a
/// string on every request.
pub(super) mod names {
    use hyper::header::HeaderName;

    pub const X_WRIT_CALLER: HeaderName = HeaderName::from_static("x-writ-caller");
    pub const X_WRIT_AUTHENTICATED_BY: HeaderName =
        HeaderName::from_static("x-writ-authenticated-by");
    pub const X_WRIT_ROUTE: HeaderName = HeaderName::from_static("x-writ-route");
    pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
    pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
    pub const X_HUB_SIGNATURE_256: HeaderName = HeaderName::from_static("x-hub-signature-256");
    pub const STRIPE_SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");
    pub const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
}

/// Headers a caller may not set: the gateway sets them for the upstream.
const IDENTITY_HEADERS: [&str; 4] = [
    "x-writ-caller",
    "x-writ-authenticated-by",
    "x-forwarded-client-cert",
    "x-writ-route",
];

/// Forwarding headers a caller could forge; the gateway drops them (and sets its own
/// `x-forwarded-for` and `x-forwarded-proto`).
const FORWARDING_HEADERS: [&str; 5] = [
    "forwarded",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-forwarded-port",
];

/// The hop-by-hop headers, which are not forwarded. A `static`, not a `const`: a `const`
/// would be built and dropped at every use.
static HOP_BY_HOP_NAMES: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The place of `name` (lower case) in [`HOP_BY_HOP_NAMES`], if it is there: one `match`
/// on the text rather than eight comparisons of header names.
fn hop_by_hop(name: &str) -> Option<usize> {
    Some(match name {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-authenticate" => 2,
        "proxy-authorization" => 3,
        "te" => 4,
        "trailer" => 5,
        "transfer-encoding" => 6,
        "upgrade" => 7,
        _ => return None,
    })
}

/// Whether a request header goes on to the upstream: not hop-by-hop (nor named by the
/// `Connection` header, whose tokens `connection` holds), not one the gateway sets (identity
/// and forwarding headers), not the API key, not `host`. Names are compared as a CGI/WSGI
/// upstream reads them, `_` as `-`: so `x_forwarded_for` is dropped too, which the
/// upstream would read as the gateway's `x-forwarded-for`.
pub(super) fn forwarded(name: &str, connection: &[HeaderName]) -> bool {
    let normalized;
    let n = if name.contains('_') {
        normalized = name.replace('_', "-");
        normalized.as_str()
    } else {
        name
    };
    !(hop_by_hop(n).is_some()
        || n.starts_with("x-writ-")
        || IDENTITY_HEADERS.contains(&n)
        || FORWARDING_HEADERS.contains(&n)
        || connection.iter().any(|t| t.as_str() == n)
        || n == "x-api-key"
        || n == "host"
        || (n != name && n == "x-forwarded-for"))
}

/// Whether an `Authorization` value has the `Bearer` scheme (in any case, RFC 9110
/// section 11.1).
pub(super) fn is_bearer(value: &[u8]) -> bool {
    value.len() >= 7 && value[..6].eq_ignore_ascii_case(b"bearer") && value[6] == b' '
}

/// The headers a message's `Connection` header names besides the standard hop-by-hop
/// ones (dropped in any case): hop-by-hop for this message too. A token that is no header
/// name names nothing. Allocates only when there are such names.
pub(super) fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut named = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        // What nearly every message says: no names to look for.
        let plain = value.as_bytes();
        if plain.eq_ignore_ascii_case(b"keep-alive") || plain.eq_ignore_ascii_case(b"close") {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            if token.is_empty()
                || HOP_BY_HOP_NAMES
                    .iter()
                    .any(|n| n.as_str().eq_ignore_ascii_case(token))
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                named.push(name);
            }
        }
    }
    named
}

/// Drops an upstream answer's hop-by-hop headers, and those its `Connection` header
/// names (RFC 9110, section 7.6.1). One pass over the names finds which are there
/// (usually none, or only `connection: keep-alive`), and only those are removed; nothing
/// is allocated unless the `Connection` header names a header of its own.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Bit i: HOP_BY_HOP_NAMES[i] is there.
    let mut present = 0u8;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop(name.as_str()) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    let named = connection_named(headers);
    for (i, name) in HOP_BY_HOP_NAMES.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    for name in named {
        headers.remove(name);
    }
}

/// Random bytes for trace IDs, drawn from the operating system a block at a time (trace
/// IDs need to be unique, not secret, and a system call per request would cost more than
/// the rest of the ID).
struct TraceRandom {
    block: [u8; 4096],
    used: usize,
}

thread_local! {
    static TRACE_RANDOM: std::cell::RefCell<TraceRandom> = const {
        std::cell::RefCell::new(TraceRandom { block: [0; 4096], used: 4096 })
    };
}

/// A W3C trace context for a request that came without one: `00-TRACEID-SPANID-01`.
pub(super) fn new_traceparent() -> HeaderValue {
    let mut bytes = [0u8; 24];
    TRACE_RANDOM.with_borrow_mut(|r| {
        if r.used + bytes.len() > r.block.len() {
            if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut r.block)
                .is_err()
            {
                // No randomness: the IDs of this block come from the clock and a counter
                // instead, still unique within the process.
                let seed = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                for (i, chunk) in r.block.chunks_mut(16).enumerate() {
                    let v = seed.wrapping_add(i as u128).to_le_bytes();
                    chunk.copy_from_slice(&v[..chunk.len()]);
                }
            }
            r.used = 0;
        }
        bytes.copy_from_slice(&r.block[r.used..r.used + 24]);
        r.used += 24;
    });
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 55];
    text[..3].copy_from_slice(b"00-");
    for (i, b) in bytes.iter().enumerate() {
        // The trace ID (16 bytes) then, after a dash, the span ID (8 bytes).
        let at = 3 + i * 2 + usize::from(i >= 16);
        text[at] = HEX[usize::from(b >> 4)];
        text[at + 1] = HEX[usize::from(b & 0xf)];
    }
    text[35] = b'-';
    text[52..].copy_from_slice(b"-01");
    HeaderValue::from_bytes(&text).unwrap_or_else(|_| {
        HeaderValue::from_static("00-00000000000000000000000000000001-0000000000000001-01")
    })
}

#[cfg(test)]
mod tests {
    use super::{
        HOP_BY_HOP_NAMES, HeaderMap, HeaderValue, hop_by_hop, is_bearer, strip_hop_by_hop,
    };

    #[test]
    fn a_bearer_authorization_is_known_in_any_case() {
        for yes in ["Bearer a.b.c", "bearer x", "BEARER  x", "Bearer "] {
            assert!(is_bearer(yes.as_bytes()), "{yes}");
        }
        for no in [
            "Basic dXNlcg==",
            "Bearer",
            "Bearerx",
            "Bear x",
            "",
            "Token x",
        ] {
            assert!(!is_bearer(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn hop_by_hop_knows_each_name_by_its_place() {
        for (i, name) in HOP_BY_HOP_NAMES.iter().enumerate() {
            assert_eq!(hop_by_hop(name.as_str()), Some(i), "{name}");
        }
        for other in ["connections", "host", "x-keep-alive", ""] {
            assert_eq!(hop_by_hop(other), None, "{other}");
        }
    }

    #[test]
    fn an_answers_hop_by_hop_headers_are_dropped() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "text/plain"),
            ("connection", "keep-alive, X-Private"),
            // Not header names: ignored, not a panic.
            ("connection", "x-other, not a name, ,"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("x-other", "2"),
            ("transfer-encoding", "chunked"),
            ("x-public", "3"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["content-type", "x-public"]);

        // The usual `keep-alive` (any case) or `close` names nothing else.
        for connection in ["Keep-Alive", "close"] {
            let mut usual = HeaderMap::new();
            usual.insert("connection", HeaderValue::from_static(connection));
            usual.insert("x-kept", HeaderValue::from_static("1"));
            strip_hop_by_hop(&mut usual);
            let left: Vec<&str> = usual.keys().map(|k| k.as_str()).collect();
            assert_eq!(left, ["x-kept"], "{connection}");
        }

        // Without hop-by-hop headers, nothing changes.
        let mut plain = HeaderMap::new();
        plain.insert("x-private", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut plain);
        assert_eq!(plain.len(), 1);
    }
}
