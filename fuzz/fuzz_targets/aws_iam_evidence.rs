//! Fuzzes AWS IAM attestation's readers of untrusted input (`writ_identity::aws_iam`): the
//! signed GetCallerIdentity request a login carries, STS's XML answer, and the caller's ARN.
//! None may panic, and whatever `check_request` accepts is sent to the server's own STS
//! endpoint, with that endpoint's host, and carries exactly a GetCallerIdentity body: no
//! input can make the server send anything else, or anywhere else (no SSRF).
//!
//! The first byte picks the reader: 0, the rest as the evidence's JSON (`request`); 1, the
//! rest as STS's answer with HTTP 200; 2, with HTTP 403; 3, the rest as the caller's ARN.
#![no_main]

use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;
use writ_identity::aws_iam::{
    AssumedRole, CallerIdentity, SignedRequest, StsEndpoint, check_request, read_answer,
};

/// 20251208T000000Z.
const NOW: i64 = 1_765_152_000;
const ENDPOINT: &str = "http://127.0.0.1:5000";

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            let Ok(request) = serde_json::from_slice::<SignedRequest>(rest) else {
                return;
            };
            let now = OffsetDateTime::from_unix_timestamp(NOW).expect("time");
            let endpoint = StsEndpoint::new(ENDPOINT).expect("endpoint");
            if let Ok(call) = check_request(&request, "example.org", &endpoint, now) {
                assert_eq!(call.url, format!("{ENDPOINT}/"), "sent elsewhere");
                let host: Vec<&str> = call
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
                    .map(|(_, v)| v.as_str())
                    .collect();
                assert_eq!(host, ["127.0.0.1:5000"], "another host");
                let body = std::str::from_utf8(&call.body).expect("a text body");
                let mut pairs: Vec<&str> = body.split('&').collect();
                pairs.sort_unstable();
                assert_eq!(pairs, ["Action=GetCallerIdentity", "Version=2011-06-15"]);
                assert!(
                    call.headers.iter().all(|(n, v)| !n.is_empty()
                        && v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))),
                    "a header that cannot be sent as it is"
                );
            }
        }
        1 | 2 => {
            let status = if which % 4 == 1 { 200 } else { 403 };
            match read_answer(status, rest) {
                Ok(identity) => {
                    assert_eq!(status, 200, "an error answer read as an identity");
                    assert!(!identity.arn.is_empty() && !identity.account.is_empty());
                    let _ = AssumedRole::from_identity(&identity);
                }
                Err(reason) => assert!(reason.len() < 512, "an unbounded refusal"),
            }
        }
        _ => {
            let Ok(arn) = std::str::from_utf8(rest) else {
                return;
            };
            let identity = CallerIdentity {
                arn: arn.to_string(),
                account: "123456789012".into(),
                user_id: "AROAEXAMPLE:s".into(),
            };
            if let Ok(role) = AssumedRole::from_identity(&identity) {
                assert!(role.role_arn.starts_with("arn:"));
                assert!(role.role_arn.contains(":iam::123456789012:role/"));
                assert_eq!(role.role_arn.matches('/').count(), 1, "a role with a path");
                assert!(!role.session_name.is_empty() && !role.session_name.contains('/'));
            }
        }
    }
});
