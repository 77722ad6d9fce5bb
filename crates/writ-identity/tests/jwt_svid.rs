//! JWT-SVIDs: minted tokens verify against the published JWKS, and every forged, expired,
//! misdirected or foreign token is refused with the reason.

use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use time::{Duration, OffsetDateTime};
use writ_identity::jwt_svid::{jwks, verify, verify_with};
use writ_identity::{AudienceRule, DEFAULT_JWT_TTL, JwtAuthority, JwtError, SpiffeId, TrustDomain};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

struct Fixture {
    td: TrustDomain,
    key: JwtAuthority,
    bundle: JwkSet,
    id: SpiffeId,
    now: OffsetDateTime,
}

fn fixture() -> Fixture {
    let td = TrustDomain::new("example.org").unwrap();
    let key = JwtAuthority::generate(&td).unwrap();
    // The bundle goes through JSON, as peers receive it.
    let json = serde_json::to_string(&jwks([&key])).unwrap();
    let bundle: JwkSet = serde_json::from_str(&json).unwrap();
    let id = SpiffeId::for_function(&td, "orders").unwrap();
    Fixture {
        td,
        key,
        bundle,
        id,
        now: OffsetDateTime::now_utc(),
    }
}

fn check(
    f: &Fixture,
    token: &str,
    audience: &str,
    at: OffsetDateTime,
) -> Result<SpiffeId, JwtError> {
    verify(token, &f.bundle, &f.td, audience, at, Duration::seconds(5)).map(|(id, _)| id)
}

#[test]
fn a_minted_token_verifies_against_the_published_jwks() {
    let f = fixture();
    let token = f
        .key
        .mint(&f.id, &["payments"], f.now, DEFAULT_JWT_TTL)
        .unwrap();
    let (id, claims) = verify(
        &token,
        &f.bundle,
        &f.td,
        "payments",
        f.now,
        Duration::seconds(5),
    )
    .unwrap();
    assert_eq!(id, f.id);
    assert_eq!(claims.aud, vec!["payments".to_string()]);
    assert_eq!(claims.exp - claims.iat, 300, "five minutes by default");
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(f.key.kid()));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let json = serde_json::to_value(jwks([&f.key])).unwrap();
    assert_eq!(json["keys"][0]["kty"], "EC");
    assert_eq!(json["keys"][0]["crv"], "P-256");
    assert_eq!(json["keys"][0]["kid"], f.key.kid());
    assert!(json["keys"][0].get("d").is_none(), "never the private key");
}

#[test]
fn audience_expiry_and_not_before_are_enforced() {
    let f = fixture();
    let token = f
        .key
        .mint(&f.id, &["payments"], f.now, Duration::minutes(5))
        .unwrap();
    assert!(check(&f, &token, "payments", f.now).is_ok());
    assert_eq!(check(&f, &token, "reports", f.now), Err(JwtError::Audience));
    assert_eq!(
        check(&f, &token, "payments", f.now + Duration::minutes(6)),
        Err(JwtError::Expired)
    );
    // Within the leeway of expiry: still valid.
    assert!(
        check(
            &f,
            &token,
            "payments",
            f.now + Duration::minutes(5) + Duration::seconds(2)
        )
        .is_ok()
    );
    // Issued in the future (beyond the leeway): not yet valid.
    let future = f
        .key
        .mint(
            &f.id,
            &["payments"],
            f.now + Duration::minutes(1),
            DEFAULT_JWT_TTL,
        )
        .unwrap();
    assert_eq!(
        check(&f, &future, "payments", f.now),
        Err(JwtError::NotYetValid)
    );
}

/// A token with `claims`, signed by the fixture's key as a minted one is (for `aud`
/// claims that minting would never write).
fn signed(f: &Fixture, claims: &serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(f.key.kid().to_string());
    let key = jsonwebtoken::EncodingKey::from_ec_der(f.key.pkcs8_der());
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

#[test]
fn a_token_for_several_audiences_is_accepted_only_where_they_are_allowed() {
    let f = fixture();
    let strict = |token: &str, audience: &str| check(&f, token, audience, f.now);
    let lenient = |token: &str, audience: &str| {
        verify_with(
            token,
            &f.bundle,
            &f.td,
            audience,
            AudienceRule::AllowMultiple,
            f.now,
            Duration::seconds(5),
        )
    };
    // Minted for two audiences: either could replay it to the other, so a verifier for
    // one audience alone refuses it, whichever it names.
    let both = f
        .key
        .mint(&f.id, &["payments", "audit"], f.now, DEFAULT_JWT_TTL)
        .unwrap();
    assert_eq!(strict(&both, "audit"), Err(JwtError::MultipleAudiences));
    assert_eq!(strict(&both, "payments"), Err(JwtError::MultipleAudiences));
    assert_eq!(strict(&both, "reports"), Err(JwtError::Audience));
    assert_eq!(AudienceRule::default(), AudienceRule::Exactly);
    // A verifier that opted in takes it, for an audience it names and no other.
    let (id, claims) = lenient(&both, "audit").unwrap();
    assert_eq!(id, f.id);
    assert_eq!(claims.aud, ["payments", "audit"]);
    assert_eq!(
        lenient(&both, "reports").map(|(id, _)| id),
        Err(JwtError::Audience)
    );

    let with_aud = |aud: serde_json::Value| {
        signed(
            &f,
            &serde_json::json!({"sub": f.id.as_str(), "aud": aud,
                "exp": (f.now + Duration::minutes(5)).unix_timestamp(),
                "iat": f.now.unix_timestamp()}),
        )
    };
    // One audience, as a string or as an array of one: accepted under either rule.
    for aud in [
        serde_json::json!("payments"),
        serde_json::json!(["payments"]),
    ] {
        let token = with_aud(aud.clone());
        assert_eq!(strict(&token, "payments"), Ok(f.id.clone()), "{aud}");
        assert!(lenient(&token, "payments").is_ok(), "{aud}");
    }
    // The same audience twice is two entries, not one.
    let twice = with_aud(serde_json::json!(["payments", "payments"]));
    assert_eq!(strict(&twice, "payments"), Err(JwtError::MultipleAudiences));
    // No audience, an empty list, or entries that are not strings: refused under either
    // rule, not read in part.
    for aud in [
        serde_json::json!([]),
        serde_json::json!(["payments", 5]),
        serde_json::json!([["payments"]]),
        serde_json::json!(5),
        serde_json::Value::Null,
    ] {
        let token = with_aud(aud.clone());
        assert_eq!(strict(&token, "payments"), Err(JwtError::Audience), "{aud}");
        assert_eq!(
            lenient(&token, "payments").map(|(id, _)| id),
            Err(JwtError::Audience),
            "{aud}"
        );
    }
    // The refusal says why without quoting the token.
    let shown = JwtError::MultipleAudiences.to_string();
    assert!(shown.contains("more than one audience"), "{shown}");
}

#[test]
fn alg_none_and_hmac_with_the_public_key_are_refused() {
    let f = fixture();
    let claims = serde_json::json!({"sub": f.id.as_str(), "aud": ["payments"],
        "exp": (f.now + Duration::minutes(5)).unix_timestamp(), "iat": f.now.unix_timestamp()});
    let body = b64(claims.to_string().as_bytes());
    let none = format!(
        "{}.{body}.",
        b64(format!(r#"{{"alg":"none","kid":"{}"}}"#, f.key.kid()).as_bytes())
    );
    assert!(matches!(
        check(&f, &none, "payments", f.now),
        Err(JwtError::Malformed | JwtError::Algorithm)
    ));

    // HS256 keyed with the public key's JSON, the classic key-confusion forgery.
    let public = serde_json::to_vec(f.key.jwk()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(f.key.kid().to_string());
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_eq!(
        check(&f, &forged, "payments", f.now),
        Err(JwtError::Algorithm)
    );
}

#[test]
fn unknown_keys_and_other_keys_signatures_are_refused() {
    let f = fixture();
    let other = JwtAuthority::generate(&f.td).unwrap();
    let token = other
        .mint(&f.id, &["payments"], f.now, DEFAULT_JWT_TTL)
        .unwrap();
    assert_eq!(
        check(&f, &token, "payments", f.now),
        Err(JwtError::UnknownKey)
    );

    // Another key's signature under the trusted key's kid.
    let [header, body, _] = <[&str; 3]>::try_from(token.split('.').collect::<Vec<_>>()).unwrap();
    let mut h: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    h["kid"] = f.key.kid().into();
    let relabelled_header = b64(h.to_string().as_bytes());
    let resigned = other
        .mint(&f.id, &["payments"], f.now, DEFAULT_JWT_TTL)
        .unwrap();
    let sig = resigned.rsplit('.').next().unwrap();
    let forged = format!("{relabelled_header}.{body}.{sig}");
    assert_eq!(
        check(&f, &forged, "payments", f.now),
        Err(JwtError::Signature)
    );

    // No kid at all.
    let no_kid = format!("{}.{body}.{sig}", b64(br#"{"alg":"ES256","typ":"JWT"}"#));
    assert_eq!(
        check(&f, &no_kid, "payments", f.now),
        Err(JwtError::UnknownKey)
    );
}

#[test]
fn tampered_and_malformed_tokens_are_refused() {
    let f = fixture();
    let token = f
        .key
        .mint(&f.id, &["payments"], f.now, DEFAULT_JWT_TTL)
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let evil = serde_json::json!({"sub": "spiffe://example.org/fn/admin", "aud": ["payments"],
        "exp": (f.now + Duration::minutes(5)).unix_timestamp(), "iat": f.now.unix_timestamp()});
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(evil.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(
        check(&f, &tampered, "payments", f.now),
        Err(JwtError::Signature)
    );
    for bad in ["", "a", "a.b", "a.b.c", "...", &token[..token.len() / 2]] {
        assert!(check(&f, bad, "payments", f.now).is_err(), "{bad:?}");
    }
}

#[test]
fn subjects_must_belong_to_the_trust_domain() {
    let f = fixture();
    let foreign_td = TrustDomain::new("other.org").unwrap();
    let foreign_id = SpiffeId::for_function(&foreign_td, "orders").unwrap();
    assert_eq!(
        f.key
            .mint(&foreign_id, &["payments"], f.now, DEFAULT_JWT_TTL),
        Err(JwtError::Subject)
    );
    // A token signed by a trusted key for another domain's subject is still refused.
    let foreign_key = JwtAuthority::generate(&foreign_td).unwrap();
    let token = foreign_key
        .mint(&foreign_id, &["payments"], f.now, DEFAULT_JWT_TTL)
        .unwrap();
    let both = jwks([&f.key, &foreign_key]);
    assert_eq!(
        verify(&token, &both, &f.td, "payments", f.now, Duration::ZERO).map(|(id, _)| id),
        Err(JwtError::Subject)
    );
}

#[test]
fn minting_needs_an_audience_and_a_lifetime() {
    let f = fixture();
    assert_eq!(
        f.key.mint(&f.id, &[], f.now, DEFAULT_JWT_TTL),
        Err(JwtError::NoAudience)
    );
    assert_eq!(
        f.key.mint(&f.id, &[""], f.now, DEFAULT_JWT_TTL),
        Err(JwtError::NoAudience)
    );
    assert_eq!(
        f.key.mint(&f.id, &["a"], f.now, Duration::ZERO),
        Err(JwtError::BadLifetime)
    );
    let shown = format!("{:?}", f.key);
    assert!(shown.contains(f.key.kid()), "{shown}");
    assert!(
        !shown.contains("encoding") && !shown.contains("EncodingKey"),
        "{shown}"
    );
}
