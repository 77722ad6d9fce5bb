//! Requests signed by botocore (`SigV4Auth`, `S3SigV4Auth`, `SigV4QueryAuth`,
//! `S3SigV4QueryAuth`) and sent by the AWS CLI verify, and the same requests changed do not.
//!
//! `botocore_sign.py` signs them and prints them as JSON. It needs a Python with botocore and
//! awscli: `$WRIT_TEST_PYTHON`, by default `~/.cache/writ/venv/bin/python`, which `.ci/run`
//! creates.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use time::OffsetDateTime;
use writ_sigv4::{
    Payload, SignableRequest, SignatureForm, SigningKeyCache, UriEncoding, VerifyError,
    VerifySettings, verify,
};

#[derive(Deserialize)]
struct Output {
    access_key_id: String,
    secret: String,
    requests: Vec<Signed>,
}

#[derive(Deserialize)]
struct Signed {
    name: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body_hex: String,
    now: f64,
    service: String,
    s3: bool,
    session_token: Option<String>,
    payload_signed: bool,
    form: String,
}

fn python() -> PathBuf {
    let python = std::env::var_os("WRIT_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/writ/venv/bin/python")
        });
    if !python.exists() {
        panic!(
            "this test needs a Python with botocore and awscli, and {} does not exist.\n\
             Install it as .ci/run does:\n  \
             python3 -m venv ~/.cache/writ/venv && ~/.cache/writ/venv/bin/pip install botocore awscli\n\
             or point WRIT_TEST_PYTHON at a Python that has them.",
            python.display()
        );
    }
    python
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn check(
    r: &Signed,
    method: &str,
    query: &str,
    body: &[u8],
    secret: &str,
    akid: &str,
) -> Result<writ_sigv4::Verified, VerifyError> {
    let headers: Vec<(&str, &str)> = r
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = SignableRequest::new(method, &r.path, query, &headers, Payload::Bytes(body));
    let settings = VerifySettings {
        uri_encoding: if r.s3 {
            UriEncoding::S3
        } else {
            UriEncoding::Double
        },
        ..VerifySettings::default()
    };
    let now = OffsetDateTime::from_unix_timestamp(r.now as i64).expect("now");
    verify(
        &request,
        now,
        &settings,
        &SigningKeyCache::default(),
        |id| (id == akid).then_some(secret),
    )
}

#[test]
fn requests_signed_by_botocore_and_the_aws_cli_verify() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/botocore_sign.py");
    let out = Command::new(python())
        .arg(&script)
        .output()
        .expect("run botocore_sign.py");
    assert!(
        out.status.success(),
        "botocore_sign.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let output: Output = serde_json::from_slice(&out.stdout).expect("JSON from botocore_sign.py");
    assert_eq!(output.requests.len(), 9);
    for r in &output.requests {
        let body = unhex(&r.body_hex);
        let v = check(
            r,
            &r.method,
            &r.query,
            &body,
            &output.secret,
            &output.access_key_id,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", r.name));
        assert_eq!(v.access_key_id, output.access_key_id, "{}", r.name);
        assert_eq!(v.region, "us-east-1", "{}", r.name);
        assert_eq!(v.service, r.service, "{}", r.name);
        assert_eq!(v.session_token, r.session_token, "{}", r.name);
        assert_eq!(v.payload_signed, r.payload_signed, "{}", r.name);
        assert_eq!(
            matches!(v.form, SignatureForm::Presigned { .. }),
            r.form == "presigned",
            "{}",
            r.name
        );
        // Changed, each refused.
        assert!(
            check(
                r,
                &r.method,
                &r.query,
                &body,
                "another secret",
                &output.access_key_id
            )
            .is_err(),
            "{}: another secret",
            r.name
        );
        let other_method = if r.method == "GET" { "HEAD" } else { "GET" };
        assert!(
            check(
                r,
                other_method,
                &r.query,
                &body,
                &output.secret,
                &output.access_key_id
            )
            .is_err(),
            "{}: another method",
            r.name
        );
        let query = if r.query.is_empty() {
            "extra=1".to_owned()
        } else {
            format!("{}&extra=1", r.query)
        };
        assert!(
            check(
                r,
                &r.method,
                &query,
                &body,
                &output.secret,
                &output.access_key_id
            )
            .is_err(),
            "{}: another query",
            r.name
        );
        if r.payload_signed && !body.is_empty() {
            let mut tampered = body.clone();
            tampered[0] ^= 1;
            assert!(
                check(
                    r,
                    &r.method,
                    &r.query,
                    &tampered,
                    &output.secret,
                    &output.access_key_id
                )
                .is_err(),
                "{}: another body",
                r.name
            );
        }
    }
}
