//! Properties of sign and verify together: what the canonical request forgets (query order and
//! spelling, header case and spacing) does not matter; anything it keeps does.

use proptest::prelude::*;
use time::OffsetDateTime;
use writ_sigv4::{
    Credentials, Payload, SignableRequest, SigningKeyCache, SigningParams, VerifyError,
    VerifySettings, presign, sign_headers, verify,
};

const SECRET: &str = "property/secret";

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

/// Percent-encodes everything but RFC 3986's unreserved set, upper-case hex.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Another spelling of the same query: `+` for spaces, lower-case hex, `~` escaped.
fn respell(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b' ' => "+".to_owned(),
            b'~' => "%7e".to_owned(),
            b if b.is_ascii_alphanumeric() || b"-._".contains(&b) => (b as char).to_string(),
            b => format!("%{b:02x}"),
        })
        .collect()
}

fn query(params: &[(String, String)], spell: fn(&str) -> String) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", spell(k), spell(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn verify_parts(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<writ_sigv4::Verified, VerifyError> {
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = SignableRequest::new(method, path, query, &h, Payload::Bytes(body));
    verify(
        &request,
        t0(),
        &VerifySettings::default(),
        &SigningKeyCache::new(4),
        |_| Some(SECRET),
    )
}

fn param() -> impl Strategy<Value = (String, String)> {
    (
        "[a-zA-Z0-9 ._~+/=&%?#\u{1234}é-]{1,8}",
        "[a-zA-Z0-9 ._~+/=&%?#\u{1234}é-]{0,8}",
    )
}

fn header() -> impl Strategy<Value = (String, String)> {
    ("x-[a-z0-9-]{1,10}", "[!-~]{1,6}( {1,3}[!-~]{1,6}){0,2}")
        .prop_filter("x-amz-* headers mean something to the signer", |(n, _)| {
            !n.starts_with("x-amz")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn what_the_canonical_request_forgets_does_not_matter(
        segments in prop::collection::vec("[a-zA-Z0-9 ._~%$\u{1234}-]{0,6}", 0..4),
        params in prop::collection::vec(param(), 0..6),
        extra in prop::collection::vec(header(), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let path = format!("/{}", segments.iter().map(|s| enc(s)).collect::<Vec<_>>().join("/"));
        let mut headers: Vec<(String, String)> = vec![("host".into(), "h.example".into())];
        headers.extend(extra.iter().cloned());
        let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let q = query(&params, enc);
        let creds = Credentials::new("AKID", SECRET);
        let request = SignableRequest::new("POST", &path, &q, &h, Payload::Bytes(&body));
        let signed = sign_headers(&request, &SigningParams::new(&creds, "us-east-1", "svc", t0())).unwrap();
        let mut sent = headers.clone();
        sent.extend(signed.headers.iter().map(|(n, v)| ((*n).to_owned(), v.clone())));
        prop_assert!(verify_parts("POST", &path, &q, &sent, &body).is_ok());

        // Reordered and respelled query, header names in upper case, values re-spaced.
        let mut reordered = params.clone();
        reordered.reverse();
        let respaced: Vec<(String, String)> = sent
            .iter()
            .map(|(n, v)| {
                if n.starts_with("x-") && !n.starts_with("x-amz") {
                    (n.to_uppercase(), format!("  {}\t", v.replace(' ', "  ")))
                } else {
                    (n.clone(), v.clone())
                }
            })
            .collect();
        prop_assert!(verify_parts("POST", &path, &query(&reordered, respell), &respaced, &body).is_ok());

        // What it keeps matters: the body, a parameter's value, a signed header's value.
        let mut other_body = body.clone();
        other_body.push(0);
        prop_assert!(verify_parts("POST", &path, &q, &sent, &other_body).is_err());
        if let Some((k, v)) = params.first() {
            let mut changed = params.clone();
            changed[0] = (k.clone(), format!("{v}!"));
            prop_assert!(verify_parts("POST", &path, &query(&changed, enc), &sent, &body).is_err());
        }
        if !extra.is_empty() {
            let mut changed = sent.clone();
            changed[1].1.push('!');
            prop_assert!(verify_parts("POST", &path, &q, &changed, &body).is_err());
        }
    }

    #[test]
    fn presigned_urls_round_trip_with_any_query(
        params in prop::collection::vec(param(), 0..6),
        token in "[!-~]{1,20}",
        expires in 1i64..=604_800,
    ) {
        let q = query(&params, enc);
        let headers = [("host", "h.example")];
        let creds = Credentials::new("AKID", SECRET).with_session_token(token.clone());
        let request = SignableRequest::new("GET", "/", &q, &headers, Payload::Unsigned);
        let p = presign(&request, &SigningParams::new(&creds, "us-east-1", "svc", t0()), time::Duration::seconds(expires)).unwrap();
        let sent = vec![("host".to_owned(), "h.example".to_owned())];
        let v = verify_parts("GET", "/", &p.query, &sent, b"").unwrap();
        prop_assert_eq!(v.session_token, Some(token));
    }
}
