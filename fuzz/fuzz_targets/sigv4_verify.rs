//! Fuzzes SigV4 verification (`writ_sigv4::verify`) with an arbitrary `Authorization` header,
//! query string (presigned parameters), path, method and headers: it must refuse, never panic,
//! and nothing the fuzzer makes without the secret key may verify (the signature comparison is
//! constant-time, so comparison tracing cannot learn it a byte at a time). Signing the same
//! parts must not panic either, and whatever the signer signs, in the header or presigned,
//! the verifier must accept: the two agree on every canonical request.
//!
//! The input is lines: the `Authorization` value (empty: none), the query, the path, the
//! method, then `name:value` headers; a line `--` ends the headers and the rest is the body.
//! `host` and `x-amz-date` (the fuzzer's clock) come first unless the input gives its own.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use time::{Duration, OffsetDateTime};
use writ_sigv4::{
    Credentials, Payload, SignableRequest, SigningKeyCache, SigningParams, UriEncoding,
    VerifyError, VerifySettings, presign, sign_headers, verify,
};

const SECRET: &str = "the sigv4 secret key the fuzzer never sees";
/// 20150830T123600Z.
const NOW: i64 = 1_440_938_160;

fn cache() -> &'static SigningKeyCache {
    static CACHE: OnceLock<SigningKeyCache> = OnceLock::new();
    CACHE.get_or_init(|| SigningKeyCache::new(16))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (head, body) = text.split_once("\n--\n").unwrap_or((&text, ""));
    let mut lines = head.split('\n');
    let authorization = lines.next().unwrap_or("");
    let query = lines.next().unwrap_or("");
    let path = lines.next().unwrap_or("/");
    let method = lines.next().unwrap_or("GET");
    let mut headers: Vec<(&str, &str)> = Vec::new();
    let given: Vec<(&str, &str)> = lines.filter_map(|l| l.split_once(':')).collect();
    if !given.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        headers.push(("host", "example.amazonaws.com"));
    }
    if !given
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("x-amz-date"))
    {
        headers.push(("x-amz-date", "20150830T123600Z"));
    }
    headers.extend(given.iter().copied());
    if !authorization.is_empty() {
        headers.push(("Authorization", authorization));
    }
    let now = OffsetDateTime::from_unix_timestamp(NOW).expect("now");
    for (encoding, payload) in [
        (UriEncoding::Double, Payload::Bytes(body.as_bytes())),
        (UriEncoding::S3, Payload::Unsigned),
    ] {
        let request = SignableRequest::new(method, path, query, &headers, payload);
        let settings = VerifySettings {
            uri_encoding: encoding,
            ..VerifySettings::default()
        };
        let result = verify(&request, now, &settings, cache(), |_| Some(SECRET));
        assert!(result.is_err(), "verified without the secret: {result:?}");
        if let Err(e) = result {
            let message = e.to_string();
            assert!(!message.contains(SECRET));
        }
        // Signing what the fuzzer made must not panic, and what the signer signs (without
        // the fuzzer's Authorization header) the verifier accepts.
        let unsigned: Vec<(&str, &str)> = headers
            .iter()
            .copied()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("authorization"))
            .collect();
        let request = SignableRequest::new(method, path, query, &unsigned, payload);
        let creds = Credentials::new("AKIDEXAMPLE", SECRET).with_session_token(body);
        let mut params = SigningParams::new(&creds, "us-east-1", "service", now);
        params.uri_encoding = encoding;
        if let Ok(signed) = sign_headers(&request, &params) {
            let mut sent = unsigned.clone();
            sent.extend(signed.headers.iter().map(|(n, v)| (*n, v.as_str())));
            let request = SignableRequest::new(method, path, query, &sent, payload);
            if let Err(e) = verify(&request, now, &settings, cache(), |_| Some(SECRET)) {
                // Only a claimed body hash that is not the body's may refuse what was signed.
                assert!(
                    matches!(e, VerifyError::ContentSha256Mismatch),
                    "signed in the header but refused: {e}"
                );
            }
        }
        if let Ok(p) = presign(&request, &params, Duration::minutes(15)) {
            let request = SignableRequest::new(method, path, &p.query, &unsigned, payload);
            if let Err(e) = verify(&request, now, &settings, cache(), |_| Some(SECRET)) {
                assert!(
                    matches!(e, VerifyError::ContentSha256Mismatch),
                    "presigned but refused: {e}"
                );
            }
        }
    }
});
