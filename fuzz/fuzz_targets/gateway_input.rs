//! Fuzzes the gateway's checks of what a caller sends, before any credential is trusted:
//! the request path, GitHub- and Stripe-style webhook signatures, API keys and the client
//! certificate. Nothing may panic. A path `check_path` lets through must read the same to
//! an upstream that unescapes it once or twice (`upstream_reads_it_as_sent`, a plain model
//! sharing no code with the check). No signature, API key or certificate the fuzzer makes
//! without the secrets may be accepted: the MAC and hash comparisons are constant-time, so
//! libFuzzer's comparison tracing cannot learn them a byte at a time either.
//!
//! The input is a header line, then `\n`, then a body; the whole input is also tried as a
//! path and as a DER certificate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rustls::pki_types::CertificateDer;
use writ_gateway::authn::{
    api_key_hash, api_key_matches, github_signature_ok, parse_api_key, stripe_signature_ok,
    verify_svid,
};
use writ_gateway::path::{check_path, upstream_reads_it_as_sent};

const KEY: &[u8] = b"the webhook key the fuzzer never sees";
const API_SECRET: &str = "the-api-key-secret";
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if check_path(&text).is_ok() {
        assert!(upstream_reads_it_as_sent(&text), "{text:?} passed");
    }

    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let header = String::from_utf8_lossy(header);
    assert!(github_signature_ok(KEY, body, Some(&header)).is_err());
    let window = std::time::Duration::from_secs(300);
    assert!(stripe_signature_ok(KEY, body, Some(&header), NOW, window).is_err());
    if let Some((_, secret)) = parse_api_key(&header) {
        assert_eq!(
            api_key_matches(secret, &api_key_hash(API_SECRET)),
            secret == API_SECRET
        );
    }

    let now = time::OffsetDateTime::from_unix_timestamp(NOW).unwrap();
    assert!(verify_svid(&CertificateDer::from(data), &[], "example.org", now).is_err());
});
