//! SigV4 verification of a typical header-signed request (Secrets Manager's GetSecretValue
//! with temporary credentials), with a warm signing-key cache and without one; signing the
//! same request beside it. When a Python with botocore is at `$WRIT_TEST_PYTHON` (default
//! `~/.cache/writ/venv/bin/python`), botocore signing the same request is measured in the
//! same run (`botocore_sign.py`) and printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
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

/// The request as it arrives, signed at `now` with temporary credentials: the signed headers,
/// the signer's, and a user agent that is not signed.
struct Fixture {
    now: OffsetDateTime,
    creds: Credentials,
    base: Vec<(&'static str, String)>,
    arrived: Vec<(&'static str, String)>,
}

impl Fixture {
    fn new() -> Fixture {
        let now = OffsetDateTime::from_unix_timestamp(1_765_000_000).expect("time");
        let creds = Credentials::new(AKID, SECRET).with_session_token(TOKEN);
        let base: Vec<(&'static str, String)> = vec![
            ("host", "secretsmanager.us-east-1.amazonaws.com".into()),
            ("content-type", "application/x-amz-json-1.1".into()),
            ("x-amz-target", "secretsmanager.GetSecretValue".into()),
            ("content-length", BODY.len().to_string()),
        ];
        let borrowed: Vec<(&str, &str)> = base.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let to_sign = SignableRequest::new("POST", "/", "", &borrowed, Payload::Bytes(BODY));
        let params = SigningParams::new(&creds, "us-east-1", "secretsmanager", now);
        let signed = sign_headers(&to_sign, &params).expect("sign");
        let mut arrived = base.clone();
        arrived.extend(signed.headers);
        arrived.push(("user-agent", UA.into()));
        Fixture {
            now,
            creds,
            base,
            arrived,
        }
    }
}

fn lookup(id: &str) -> Option<&'static str> {
    (id == AKID).then_some(SECRET)
}

fn bench(c: &mut Criterion) {
    botocore_peer();
    let f = Fixture::new();
    let base: Vec<(&str, &str)> = f.base.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let arrived: Vec<(&str, &str)> = f.arrived.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let to_sign = SignableRequest::new("POST", "/", "", &base, Payload::Bytes(BODY));
    let params = SigningParams::new(&f.creds, "us-east-1", "secretsmanager", f.now);
    let request = SignableRequest::new("POST", "/", "", &arrived, Payload::Bytes(BODY));
    let settings = VerifySettings::default();
    let now = f.now;

    let mut group = c.benchmark_group("sigv4");
    group.throughput(Throughput::Elements(1));
    let warm = SigningKeyCache::default();
    verify(&request, now, &settings, &warm, lookup).expect("verifies");
    group.bench_function("verify, warm key cache", |b| {
        b.iter(|| verify(black_box(&request), now, &settings, &warm, lookup).expect("verifies"))
    });
    let none = SigningKeyCache::new(0);
    group.bench_function("verify, no key cache", |b| {
        b.iter(|| verify(black_box(&request), now, &settings, &none, lookup).expect("verifies"))
    });
    group.bench_function("sign_headers", |b| {
        b.iter(|| sign_headers(black_box(&to_sign), &params).expect("sign"))
    });
    group.finish();
}

/// `WRIT_BENCH_COUNT=SCENARIO:N` runs N operations of one scenario (`warm`, `cold`, `sign`)
/// and exits, for `valgrind --tool=callgrind`: (instructions at N) - (instructions at 0),
/// divided by N, is the cost of one, the same on a busy machine as on an idle one.
fn count(spec: &str) {
    let (scenario, n) = spec.rsplit_once(':').expect("WRIT_BENCH_COUNT=SCENARIO:N");
    let n: usize = n.parse().expect("N is a number");
    let f = Fixture::new();
    let base: Vec<(&str, &str)> = f.base.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let arrived: Vec<(&str, &str)> = f.arrived.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let request = SignableRequest::new("POST", "/", "", &arrived, Payload::Bytes(BODY));
    let settings = VerifySettings::default();
    let cache = SigningKeyCache::new(if scenario == "cold" { 0 } else { 1024 });
    verify(&request, f.now, &settings, &cache, lookup).expect("verifies");
    match scenario {
        "warm" | "cold" => {
            for _ in 0..n {
                black_box(
                    verify(black_box(&request), f.now, &settings, &cache, lookup)
                        .expect("verifies"),
                );
            }
        }
        "sign" => {
            let to_sign = SignableRequest::new("POST", "/", "", &base, Payload::Bytes(BODY));
            let params = SigningParams::new(&f.creds, "us-east-1", "secretsmanager", f.now);
            for _ in 0..n {
                black_box(sign_headers(black_box(&to_sign), &params).expect("sign"));
            }
        }
        other => panic!("{other}: a scenario is warm, cold or sign"),
    }
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(spec) = std::env::var("WRIT_BENCH_COUNT") {
        count(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
