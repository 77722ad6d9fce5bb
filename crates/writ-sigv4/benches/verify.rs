//! SigV4 verification of a typical header-signed request (Secrets Manager's GetSecretValue
//! with temporary credentials), with a warm signing-key cache and without one; signing the
//! same request beside it. When a Python with botocore is at `$WRIT_TEST_PYTHON` (default
//! `~/.cache/writ/venv/bin/python`), botocore signing the same request is measured in the
//! same run (`botocore_sign.py`) and printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use time::OffsetDateTime;
use writ_sigv4::{
    Credentials, Payload, SignableRequest, SigningKeyCache, SigningParams, VerifySettings,
    sign_headers, verify,
};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "FwoGZXIvYXdzEJr//////////wEaDExampleSessionToken+/=";
const BODY: &[u8] = br#"{"SecretId": "prod/orders-db", "VersionStage": "AWSCURRENT"}"#;
const UA: &str = "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux lang/python#3.11.7";

fn botocore_peer() {
    let python = std::env::var_os("WRIT_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/writ/venv/bin/python")
        });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/botocore_sign.py");
    match Command::new(&python).arg(&script).output() {
        Ok(out) if out.status.success() => println!(
            "peer: botocore SigV4Auth.add_auth of the same request: {} us per signature (median of 7 x 2000)",
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        _ => println!(
            "peer: botocore not measured ({} with botocore not found)",
            python.display()
        ),
    }
}

fn bench(c: &mut Criterion) {
    botocore_peer();
    let now = OffsetDateTime::from_unix_timestamp(1_765_000_000).expect("time");
    let creds = Credentials::new(AKID, SECRET).with_session_token(TOKEN);
    let length = BODY.len().to_string();
    let base: Vec<(&str, &str)> = vec![
        ("host", "secretsmanager.us-east-1.amazonaws.com"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "secretsmanager.GetSecretValue"),
        ("content-length", &length),
    ];
    let to_sign = SignableRequest::new("POST", "/", "", &base, Payload::Bytes(BODY));
    let params = SigningParams::new(&creds, "us-east-1", "secretsmanager", now);
    let signed = sign_headers(&to_sign, &params).expect("sign");
    // As it arrives: the signed headers, the signer's, and a user agent that is not signed.
    let mut arrived = base.clone();
    arrived.extend(signed.headers.iter().map(|(n, v)| (*n, v.as_str())));
    arrived.push(("user-agent", UA));
    let request = SignableRequest::new("POST", "/", "", &arrived, Payload::Bytes(BODY));
    let settings = VerifySettings::default();
    let lookup = |id: &str| (id == AKID).then_some(SECRET);

    let mut group = c.benchmark_group("sigv4");
    group.throughput(Throughput::Elements(1));
    let warm = SigningKeyCache::default();
    verify(&request, now, &settings, &warm, lookup).expect("verifies");
    group.bench_function("verify, warm key cache", |b| {
        b.iter(|| verify(&request, now, &settings, &warm, lookup).expect("verifies"))
    });
    let none = SigningKeyCache::new(0);
    group.bench_function("verify, no key cache", |b| {
        b.iter(|| verify(&request, now, &settings, &none, lookup).expect("verifies"))
    });
    group.bench_function("sign_headers", |b| {
        b.iter(|| sign_headers(&to_sign, &params).expect("sign"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
