//! What verification refuses, and with which error: tampered requests, stale and mismatched
//! dates, other keys, unsigned host, malformed and ambiguous signatures; and the presigned form.

use ring::{digest, hmac};
use time::{Duration, OffsetDateTime};
use writ_sigv4::{
    Credentials, Payload, SignableRequest, SignatureForm, SigningKeyCache, SigningParams,
    UriEncoding, Verified, VerifyError, VerifySettings, presign, sign_headers, verify,
};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_440_938_160).unwrap() // 20150830T123600Z
}

fn creds() -> Credentials {
    Credentials::new(AKID, SECRET)
}

/// A request as received: owned parts, borrowed into a `SignableRequest` on demand.
#[derive(Clone)]
struct Req {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn new(method: &str, path: &str, query: &str, body: &[u8]) -> Req {
        Req {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: vec![
                ("Host".into(), "secrets.example.org".into()),
                ("Content-Type".into(), "application/x-amz-json-1.1".into()),
                (
                    "X-Amz-Target".into(),
                    "secretsmanager.GetSecretValue".into(),
                ),
            ],
            body: body.to_vec(),
        }
    }

    fn with<R>(
        &self,
        payload: Option<Payload<'_>>,
        f: impl FnOnce(&SignableRequest<'_>) -> R,
    ) -> R {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let request = SignableRequest::new(
            &self.method,
            &self.path,
            &self.query,
            &headers,
            payload.unwrap_or(Payload::Bytes(&self.body)),
        );
        f(&request)
    }

    /// Signed in the header form with `creds` at `time`.
    fn signed(mut self, creds: &Credentials, time: OffsetDateTime) -> Req {
        let signed = self
            .with(None, |r| {
                sign_headers(
                    r,
                    &SigningParams::new(creds, "us-east-1", "secretsmanager", time),
                )
            })
            .expect("sign");
        self.headers
            .extend(signed.headers.into_iter().map(|(n, v)| (n.to_owned(), v)));
        self
    }

    fn set_header(&mut self, name: &str, value: &str) {
        let h = self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .expect("header present");
        h.1 = value.to_owned();
    }

    fn header(&self, name: &str) -> &str {
        &self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .expect("header")
            .1
    }

    fn verify_at(&self, now: OffsetDateTime) -> Result<Verified, VerifyError> {
        self.verify_with(now, &VerifySettings::default())
    }

    fn verify_with(
        &self,
        now: OffsetDateTime,
        settings: &VerifySettings,
    ) -> Result<Verified, VerifyError> {
        self.with(None, |r| {
            verify(r, now, settings, &SigningKeyCache::default(), |akid| {
                (akid == AKID).then_some(SECRET)
            })
        })
    }
}

fn body() -> &'static [u8] {
    br#"{"SecretId":"prod/orders-db"}"#
}

fn good() -> Req {
    Req::new("POST", "/", "", body()).signed(&creds(), t0())
}

/// Signs a canonical request by hand (the four HMACs written out here, not the crate's), so a
/// test can make a correctly signed request that breaks another rule.
fn hand_signature(canonical_request: &str, amz_date: &str, scope_date: &str) -> String {
    let mac = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
            .as_ref()
            .to_vec()
    };
    let k = mac(format!("AWS4{SECRET}").as_bytes(), scope_date);
    let k = mac(&k, "us-east-1");
    let k = mac(&k, "secretsmanager");
    let k = mac(&k, "aws4_request");
    let hash = hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref());
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope_date}/us-east-1/secretsmanager/aws4_request\n{hash}"
    );
    hex(&mac(&k, &sts))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_signed_request_verifies_and_says_what_it_proved() {
    let v = good().verify_at(t0()).unwrap();
    assert_eq!(v.access_key_id, AKID);
    assert_eq!(v.region, "us-east-1");
    assert_eq!(v.service, "secretsmanager");
    assert_eq!(v.date, t0());
    assert_eq!(
        v.signed_headers,
        ["content-type", "host", "x-amz-date", "x-amz-target"]
    );
    assert_eq!(v.session_token, None);
    assert_eq!(v.form, SignatureForm::Header);
    assert!(v.payload_signed);
}

#[test]
fn tampered_body_header_query_method_path_are_refused() {
    let mismatch = Err(VerifyError::SignatureMismatch {
        location: "Authorization header",
    });
    let mut r = good();
    r.body = br#"{"SecretId":"prod/payments-db"}"#.to_vec();
    assert_eq!(r.verify_at(t0()), mismatch);
    let mut r = good();
    r.set_header("x-amz-target", "secretsmanager.DeleteSecret");
    assert_eq!(r.verify_at(t0()), mismatch);
    let mut r = good();
    r.query = "a=1".into();
    assert_eq!(r.verify_at(t0()), mismatch);
    let mut r = good();
    r.method = "PUT".into();
    assert_eq!(r.verify_at(t0()), mismatch);
    let mut r = good();
    r.path = "/other".into();
    assert_eq!(r.verify_at(t0()), mismatch);
    // A signed header removed.
    let mut r = good();
    r.headers.retain(|(n, _)| n != "X-Amz-Target");
    assert_eq!(
        r.verify_at(t0()),
        Err(VerifyError::SignedHeaderMissing {
            name: "x-amz-target".into()
        })
    );
    // A header added after signing, not signed, changes nothing.
    let mut r = good();
    r.headers.push(("User-Agent".into(), "curl".into()));
    assert!(r.verify_at(t0()).is_ok());
}

#[test]
fn query_parameters_verify_in_any_order_and_encoding_and_tampering_is_refused() {
    let r = Req::new("GET", "/a%20b/c", "b=2&a=x%2Fy&a=%E1%88%B4", b"").signed(&creds(), t0());
    assert!(r.verify_at(t0()).is_ok());
    let mut reordered = r.clone();
    reordered.query = "a=%e1%88%b4&b=%32&a=x%2fy".into();
    assert!(reordered.verify_at(t0()).is_ok());
    let mut tampered = r.clone();
    tampered.query = "b=3&a=x%2Fy&a=%E1%88%B4".into();
    assert!(matches!(
        tampered.verify_at(t0()),
        Err(VerifyError::SignatureMismatch { .. })
    ));
}

#[test]
fn stale_and_future_dates_are_refused_within_a_parameterized_window() {
    let r = good();
    assert!(r.verify_at(t0() + Duration::minutes(5)).is_ok());
    assert!(r.verify_at(t0() - Duration::minutes(5)).is_ok());
    assert_eq!(
        r.verify_at(t0() + Duration::seconds(301)),
        Err(VerifyError::ClockSkew {
            location: "X-Amz-Date header",
            skew_seconds: -301,
            max_seconds: 300
        })
    );
    assert!(matches!(
        r.verify_at(t0() - Duration::hours(1)),
        Err(VerifyError::ClockSkew {
            skew_seconds: 3600,
            ..
        })
    ));
    let strict = VerifySettings {
        max_clock_skew: Duration::seconds(10),
        ..Default::default()
    };
    assert!(r.verify_with(t0() + Duration::seconds(10), &strict).is_ok());
    assert!(
        r.verify_with(t0() + Duration::seconds(11), &strict)
            .is_err()
    );
    // Changing the date to a fresh one breaks the signature.
    let mut moved = good();
    moved.set_header("x-amz-date", "20150830T124000Z");
    assert!(matches!(
        moved.verify_at(t0() + Duration::minutes(4)),
        Err(VerifyError::SignatureMismatch { .. })
    ));
}

#[test]
fn the_date_header_serves_when_there_is_no_x_amz_date() {
    let mut r = Req::new("GET", "/", "", b"");
    r.headers
        .push(("Date".into(), "Sun, 30 Aug 2015 12:36:00 GMT".into()));
    // Sign by hand over the Date header, as older clients do.
    let creq = "GET\n/\n\ncontent-type:application/x-amz-json-1.1\ndate:Sun, 30 Aug 2015 12:36:00 GMT\nhost:secrets.example.org\nx-amz-target:secretsmanager.GetSecretValue\n\ncontent-type;date;host;x-amz-target\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let sig = hand_signature(creq, "20150830T123600Z", "20150830");
    r.headers.push((
        "Authorization".into(),
        format!("AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/secretsmanager/aws4_request, SignedHeaders=content-type;date;host;x-amz-target, Signature={sig}"),
    ));
    assert_eq!(r.verify_at(t0()).unwrap().date, t0());
    r.set_header("date", "Sun, 30 Aug 2015 12:36:00 UTC");
    assert!(matches!(
        r.verify_at(t0()),
        Err(VerifyError::MalformedDate {
            location: "Date header",
            ..
        })
    ));
    r.headers.retain(|(n, _)| n != "Date");
    assert_eq!(r.verify_at(t0()), Err(VerifyError::MissingDate));
}

#[test]
fn another_key_and_an_unknown_key_are_refused() {
    let other = Credentials::new(AKID, "another secret");
    let r = Req::new("POST", "/", "", body()).signed(&other, t0());
    assert_eq!(
        r.verify_at(t0()),
        Err(VerifyError::SignatureMismatch {
            location: "Authorization header"
        })
    );
    let stranger = Credentials::new("AKIDSTRANGER", SECRET);
    let r = Req::new("POST", "/", "", body()).signed(&stranger, t0());
    assert_eq!(
        r.verify_at(t0()),
        Err(VerifyError::UnknownAccessKey {
            location: "Authorization header"
        })
    );
}

#[test]
fn a_scope_date_other_than_the_signing_date_is_refused_even_when_correctly_signed() {
    let mut r = Req::new("GET", "/", "", b"");
    r.headers
        .push(("X-Amz-Date".into(), "20150830T000100Z".into()));
    let creq = "GET\n/\n\nhost:secrets.example.org\nx-amz-date:20150830T000100Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    // A key derived for the day before, used on this day.
    let sig = hand_signature(creq, "20150830T000100Z", "20150829");
    r.headers.push((
        "Authorization".into(),
        format!("AWS4-HMAC-SHA256 Credential={AKID}/20150829/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}"),
    ));
    let now = OffsetDateTime::from_unix_timestamp(1_440_892_860).unwrap(); // 20150830T000100Z
    let err = r.verify_at(now).unwrap_err();
    assert_eq!(
        err,
        VerifyError::ScopeDateMismatch {
            location: "X-Amz-Date header",
            scope_date: "20150829".into(),
            request_date: "20150830".into()
        }
    );
    assert!(err.to_string().contains("20150829"));
    let skew = good().verify_at(t0() + Duration::seconds(301)).unwrap_err();
    assert_eq!(
        skew.to_string(),
        "the X-Amz-Date header is 301 s behind the server's clock; at most 300 s either way is allowed: sign with the current time"
    );
}

#[test]
fn host_must_be_signed_even_when_the_signature_is_right() {
    let mut r = Req::new("GET", "/", "", b"");
    r.headers
        .push(("X-Amz-Date".into(), "20150830T123600Z".into()));
    let creq = "GET\n/\n\nx-amz-date:20150830T123600Z\n\nx-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let sig = hand_signature(creq, "20150830T123600Z", "20150830");
    r.headers.push((
        "Authorization".into(),
        format!("AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/secretsmanager/aws4_request, SignedHeaders=x-amz-date, Signature={sig}"),
    ));
    assert_eq!(
        r.verify_at(t0()),
        Err(VerifyError::HostNotSigned {
            location: "Authorization header"
        })
    );
}

#[test]
fn session_tokens_are_signed_and_returned() {
    let temp = creds().with_session_token("FQoGZXIvYXdzE//token+/=");
    let r = Req::new("POST", "/", "", body()).signed(&temp, t0());
    let v = r.verify_at(t0()).unwrap();
    assert_eq!(v.session_token.as_deref(), Some("FQoGZXIvYXdzE//token+/="));
    assert!(
        v.signed_headers
            .contains(&"x-amz-security-token".to_owned())
    );
    let mut swapped = r.clone();
    swapped.set_header("x-amz-security-token", "another");
    assert!(matches!(
        swapped.verify_at(t0()),
        Err(VerifyError::SignatureMismatch { .. })
    ));
}

#[test]
fn unsigned_payload_and_x_amz_content_sha256() {
    // UNSIGNED-PAYLOAD: the signer adds the header; the body is not covered.
    let mut r = Req::new("PUT", "/bucket/key", "", b"data");
    let signed = r
        .with(Some(Payload::Unsigned), |q| {
            sign_headers(
                q,
                &SigningParams::new(&creds(), "us-east-1", "secretsmanager", t0()),
            )
        })
        .unwrap();
    r.headers
        .extend(signed.headers.into_iter().map(|(n, v)| (n.to_owned(), v)));
    assert_eq!(r.header("x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
    let v = r.verify_at(t0()).unwrap();
    assert!(!v.payload_signed);
    r.body = b"other data".to_vec();
    assert!(r.verify_at(t0()).is_ok());
    let strict = VerifySettings {
        allow_unsigned_payload: false,
        ..Default::default()
    };
    assert_eq!(
        r.verify_with(t0(), &strict),
        Err(VerifyError::UnsignedPayloadRefused)
    );

    // A claimed SHA-256 must be the body's.
    let mut r = Req::new("PUT", "/", "", b"data");
    r.headers.push((
        "x-amz-content-sha256".into(),
        hex(digest::digest(&digest::SHA256, b"data").as_ref()),
    ));
    let r = r.signed(&creds(), t0());
    assert!(r.verify_at(t0()).unwrap().payload_signed);
    let mut tampered = r.clone();
    tampered.body = b"dat4".to_vec();
    assert_eq!(
        tampered.verify_at(t0()),
        Err(VerifyError::ContentSha256Mismatch)
    );
    let mut streaming = r.clone();
    streaming.set_header("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    assert_eq!(
        streaming.verify_at(t0()),
        Err(VerifyError::MalformedContentSha256)
    );
}

#[test]
fn ambiguous_and_duplicated_signatures_are_refused() {
    let mut r = good();
    r.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256".into();
    assert_eq!(r.verify_at(t0()), Err(VerifyError::BothForms));
    let mut r = good();
    let authz = r.header("authorization").to_owned();
    r.headers.push(("authorization".into(), authz));
    assert_eq!(
        r.verify_at(t0()),
        Err(VerifyError::Duplicate {
            what: "Authorization header"
        })
    );
    let mut r = good();
    r.headers
        .push(("X-Amz-Date".into(), "20150830T123600Z".into()));
    assert_eq!(
        r.verify_at(t0()),
        Err(VerifyError::Duplicate {
            what: "X-Amz-Date header"
        })
    );
    let r = Req::new("GET", "/", "", b"");
    assert_eq!(r.verify_at(t0()), Err(VerifyError::MissingSignature));
}

#[test]
fn messages_say_where_and_never_carry_the_secret_or_a_signature() {
    let mut r = good();
    r.body = b"tampered".to_vec();
    let sent_signature = r
        .header("authorization")
        .rsplit('=')
        .next()
        .unwrap()
        .to_owned();
    let err = r.verify_at(t0()).unwrap_err().to_string();
    assert!(err.contains("Authorization header"), "{err}");
    assert!(
        !err.contains(SECRET) && !err.contains(&sent_signature),
        "{err}"
    );
    // The signature the server computed is nowhere either: check it is not any 64-hex run.
    assert!(
        !err.as_bytes()
            .windows(64)
            .any(|w| w.iter().all(u8::is_ascii_hexdigit)),
        "{err}"
    );
}

fn presigned(expires: Duration, creds: &Credentials, time: OffsetDateTime) -> Req {
    let mut r = Req::new(
        "GET",
        "/",
        "Action=GetCallerIdentity&Version=2011-06-15",
        b"",
    );
    r.headers.truncate(1); // host only
    let p = r
        .with(Some(Payload::Unsigned), |q| {
            presign(
                q,
                &SigningParams::new(creds, "us-east-1", "secretsmanager", time),
                expires,
            )
        })
        .unwrap();
    r.query = p.query;
    r
}

#[test]
fn presigned_urls_verify_until_they_expire() {
    let temp = creds().with_session_token("tok/en+=");
    let r = presigned(Duration::minutes(15), &temp, t0());
    assert!(r.query.contains(
        "X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fsecretsmanager%2Faws4_request"
    ));
    let v = r.verify_at(t0() + Duration::minutes(15)).unwrap();
    assert_eq!(
        v.form,
        SignatureForm::Presigned {
            expires: Duration::minutes(15)
        }
    );
    assert_eq!(v.session_token.as_deref(), Some("tok/en+="));
    assert_eq!(v.signed_headers, ["host"]);
    assert!(!v.payload_signed);
    assert_eq!(
        r.verify_at(t0() + Duration::minutes(15) + Duration::seconds(1)),
        Err(VerifyError::Expired { seconds_ago: 1 })
    );
    assert!(matches!(
        r.verify_at(t0() - Duration::minutes(6)),
        Err(VerifyError::ClockSkew {
            location: "X-Amz-Date query parameter",
            ..
        })
    ));
    // Tampering with a parameter, the token or the expiry is refused.
    for (from, to) in [
        ("Version=2011-06-15", "Version=2011-06-16"),
        ("tok%2Fen%2B%3D", "tok%2Fen"),
        ("X-Amz-Expires=900", "X-Amz-Expires=901"),
    ] {
        let mut t = r.clone();
        t.query = t.query.replace(from, to);
        assert_ne!(t.query, r.query);
        assert_eq!(
            t.verify_at(t0()),
            Err(VerifyError::SignatureMismatch {
                location: "X-Amz-Signature query parameter"
            }),
            "{from}"
        );
    }
    // Another secret.
    let r = presigned(Duration::minutes(15), &Credentials::new(AKID, "nope"), t0());
    assert!(matches!(
        r.verify_at(t0()),
        Err(VerifyError::SignatureMismatch { .. })
    ));
}

#[test]
fn presigned_limits_and_parameters_are_strict() {
    assert!(
        presigned(Duration::days(7), &creds(), t0())
            .verify_at(t0())
            .is_ok()
    );
    let c = creds();
    let params = SigningParams::new(&c, "us-east-1", "s3", t0());
    let headers = [("host", "h")];
    let req = SignableRequest::new("GET", "/", "", &headers, Payload::Unsigned);
    assert!(presign(&req, &params, Duration::days(7) + Duration::SECOND).is_err());
    assert!(presign(&req, &params, Duration::ZERO).is_err());

    let r = presigned(Duration::minutes(15), &creds(), t0());
    let cases: [(&str, &str, VerifyError); 6] = [
        (
            "X-Amz-Expires=900",
            "X-Amz-Expires=604801",
            VerifyError::InvalidExpires,
        ),
        (
            "X-Amz-Expires=900",
            "X-Amz-Expires=0900",
            VerifyError::InvalidExpires,
        ),
        (
            "X-Amz-Expires=900",
            "X-Amz-Expires=-900",
            VerifyError::InvalidExpires,
        ),
        (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Algorithm=AWS4-HMAC-SHA512",
            VerifyError::UnsupportedAlgorithm {
                location: "X-Amz-Algorithm query parameter",
            },
        ),
        (
            "X-Amz-SignedHeaders=host",
            "X-Amz-SignedHeaders=x-amz-date",
            VerifyError::HostNotSigned {
                location: "X-Amz-SignedHeaders query parameter",
            },
        ),
        (
            "&X-Amz-Date=20150830T123600Z",
            "",
            VerifyError::MissingParameter { name: "X-Amz-Date" },
        ),
    ];
    for (from, to, expected) in cases {
        let mut t = r.clone();
        t.query = t.query.replace(from, to);
        assert_eq!(t.verify_at(t0()), Err(expected), "{from} -> {to}");
    }
    let mut t = r.clone();
    t.query.push_str("&X-Amz-Date=20150830T123600Z");
    assert_eq!(
        t.verify_at(t0()),
        Err(VerifyError::Duplicate {
            what: "X-Amz-Date query parameter"
        })
    );
    let mut t = r.clone();
    t.query = t.query.replace("%2F20150830%2F", "%2F20150831%2F");
    assert!(matches!(
        t.verify_at(t0()),
        Err(VerifyError::ScopeDateMismatch { .. })
    ));
}

#[test]
fn s3_paths_are_neither_normalized_nor_double_encoded() {
    let c = creds();
    let headers = [("host", "bucket.s3.amazonaws.com")];
    let path = "/my-object//example//photo.user%20x";
    let req = SignableRequest::new("GET", path, "", &headers, Payload::Unsigned);
    let mut params = SigningParams::new(&c, "us-east-1", "s3", t0());
    params.uri_encoding = UriEncoding::S3;
    let signed = sign_headers(&req, &params).unwrap();
    assert!(
        signed
            .canonical_request
            .starts_with("GET\n/my-object//example//photo.user%20x\n")
    );
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.extend(signed.headers.iter().map(|(n, v)| (*n, v.as_str())));
    let req = SignableRequest::new("GET", path, "", &all, Payload::Unsigned);
    let s3 = VerifySettings {
        uri_encoding: UriEncoding::S3,
        ..Default::default()
    };
    let cache = SigningKeyCache::default();
    let lookup = |_: &str| Some(SECRET);
    assert!(verify(&req, t0(), &s3, &cache, lookup).is_ok());
    // The same request checked with the rule of every other service does not verify.
    assert!(verify(&req, t0(), &VerifySettings::default(), &cache, lookup).is_err());
}

#[test]
fn the_key_cache_serves_many_requests_and_follows_a_rotated_secret() {
    let cache = SigningKeyCache::new(8);
    let r = good();
    for _ in 0..100 {
        r.with(None, |q| {
            verify(q, t0(), &VerifySettings::default(), &cache, |_| {
                Some(SECRET)
            })
            .unwrap()
        });
    }
    assert_eq!(cache.len(), 1);
    // The secret rotated: the cached key must not verify with the new secret.
    let err = r.with(None, |q| {
        verify(q, t0(), &VerifySettings::default(), &cache, |_| {
            Some("rotated")
        })
        .unwrap_err()
    });
    assert!(matches!(err, VerifyError::SignatureMismatch { .. }));
}

#[test]
fn debug_output_carries_no_secret_token_or_body() {
    let temp = creds().with_session_token("SESSIONTOKENVALUE");
    let r = Req::new("POST", "/", "", b"BODYSECRET").signed(&temp, t0());
    let v = r.verify_at(t0()).unwrap();
    let shown = r.with(None, |q| format!("{q:?} {v:?} {temp:?}"));
    for hidden in [
        "SESSIONTOKENVALUE",
        "BODYSECRET",
        SECRET,
        r.header("authorization"),
    ] {
        assert!(!shown.contains(hidden), "{hidden} in {shown}");
    }
    let headers = [("host", "h")];
    let q = SignableRequest::new("GET", "/", "", &headers, Payload::Unsigned);
    let params = SigningParams::new(&temp, "us-east-1", "s3", t0());
    let signed = format!("{:?}", sign_headers(&q, &params).unwrap());
    let presigned = format!("{:?}", presign(&q, &params, Duration::minutes(1)).unwrap());
    assert!(!signed.contains("SESSIONTOKENVALUE") && !presigned.contains("SESSIONTOKENVALUE"));
}

#[test]
fn the_signer_refuses_what_no_verifier_would_accept() {
    let c = creds();
    let params = SigningParams::new(&c, "us-east-1", "svc", t0());
    let sign = |headers: &[(&str, &str)]| {
        sign_headers(
            &SignableRequest::new("GET", "/", "", headers, Payload::Bytes(b"")),
            &params,
        )
    };
    assert_eq!(
        sign(&[("x-a", "1")]).unwrap_err(),
        writ_sigv4::SignError::MissingHost
    );
    assert!(matches!(
        sign(&[("host", "h"), ("bad name", "1")]),
        Err(writ_sigv4::SignError::InvalidHeaders { .. })
    ));
    assert_eq!(
        sign(&[("host", "h"), ("X-Amz-Date", "20150830T123601Z")]).unwrap_err(),
        writ_sigv4::SignError::DateMismatch
    );
    let bad_region = SigningParams::new(&c, "us east 1", "svc", t0());
    assert_eq!(
        sign_headers(
            &SignableRequest::new("GET", "/", "", &[("host", "h")], Payload::Unsigned),
            &bad_region
        )
        .unwrap_err(),
        writ_sigv4::SignError::InvalidScope { field: "region" }
    );
    let headers = [("host", "h")];
    let req = SignableRequest::new("GET", "/", "X-Amz-Signature=x", &headers, Payload::Unsigned);
    assert_eq!(
        presign(&req, &params, Duration::minutes(1)).unwrap_err(),
        writ_sigv4::SignError::PresignParameterPresent {
            name: "X-Amz-Signature"
        }
    );
}

#[test]
fn a_verifier_without_the_secret_checks_with_the_scope_signing_key() {
    let req = good();
    let scoped = |secret: &str| {
        req.with(None, |r| {
            let prepared =
                writ_sigv4::prepare(r, t0(), &VerifySettings::default()).expect("prepared");
            assert_eq!(
                (
                    prepared.access_key_id(),
                    prepared.date(),
                    prepared.region(),
                    prepared.service()
                ),
                (AKID, "20150830", "us-east-1", "secretsmanager")
            );
            let key = writ_sigv4::signing_key(
                secret.as_bytes(),
                prepared.date(),
                prepared.region(),
                prepared.service(),
            );
            prepared.finish(&key)
        })
    };
    let verified = scoped(SECRET).expect("the scope's key verifies");
    assert_eq!(verified, req.verify_at(t0()).unwrap());
    assert_eq!(
        scoped("another secret").unwrap_err(),
        VerifyError::SignatureMismatch {
            location: "Authorization header"
        }
    );
    // A key for another day (or region, or service) is no key for this request.
    let other_day = req.with(None, |r| {
        let prepared = writ_sigv4::prepare(r, t0(), &VerifySettings::default()).unwrap();
        let key =
            writ_sigv4::signing_key(SECRET.as_bytes(), "20150831", "us-east-1", "secretsmanager");
        prepared.finish(&key)
    });
    assert!(other_day.is_err());
    // What `prepare` refuses, it refuses before any key is asked for.
    let mut tampered = good();
    tampered.set_header("X-Amz-Date", "20150830T120000Z");
    assert!(tampered.with(None, |r| {
        writ_sigv4::prepare(r, t0(), &VerifySettings::default()).is_err()
    }));
}
