//! OIDC ID-token verification: real keys, real signatures. A well-formed token from the trusted
//! issuer passes; every forged, misdirected, expired or mismatched token is refused with the
//! reason, and garbage never panics.

use std::collections::BTreeMap;

use base64::Engine as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use writ_identity::oidc::{OidcError, OidcRule, VerifiedOidc, verify};

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const AUDIENCE: &str = "writ";
const SUBJECT: &str = "repo:acme/api:ref:refs/heads/main";
const LEEWAY: Duration = Duration::seconds(5);

/// A public RSA modulus (2048 bits, e = 65537) whose private key was discarded: enough to check
/// that RSA keys are selected for RS256 and that a forged signature is refused.
const RSA_N: &str = "1OnpycDkxGvo_ij4aM3Wogq0QWwhnJnJKrsXLvrqrJYxIEI7SiCszCEXg12f640ZQRv1aWXSK0YK0Zfph37HJ6q_s6WIoeQVkecLfAXnbagUwPoZzPuUGvMx7pEet2k4ImnJpRlR7At-_StckPqZQjlDcvy5XZH68KLloZUpynPpXA-2T-_syv5FPrrMJKm8DuI4uEEvSbNc7lkqYQuVSuXsqjR37BleYIp3LfOBwYPx4XFhLkrel1kKOWbO1TwbESBwYXKqqWEwA3iJKGq5lvglSbt8pu5ixbZHiPwV73Gh5JL4UvmEo_Ys3RcDU3R6jENRNrvs01d9RExGkhKFcQ";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key and its public JWK.
struct Signer {
    encoding: EncodingKey,
    alg: Algorithm,
    jwk: Jwk,
    /// The raw public key (SEC1 point or Ed25519 bytes).
    public: Vec<u8>,
}

impl Signer {
    fn ec(kid: &str, alg: Algorithm) -> Signer {
        let curve = match alg {
            Algorithm::ES256 => &ECDSA_P256_SHA256_FIXED_SIGNING,
            Algorithm::ES384 => &ECDSA_P384_SHA384_FIXED_SIGNING,
            _ => unreachable!("not an ECDSA algorithm"),
        };
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(curve, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(curve, pkcs8.as_ref(), &rng).unwrap();
        let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
        Signer::finish(encoding, alg, kid, pair.public_key().as_ref().to_vec())
    }

    fn ed25519(kid: &str) -> Signer {
        let mut seed = [0u8; 32];
        SystemRandom::new().fill(&mut seed).unwrap();
        // PKCS#8 v1 for an Ed25519 seed, the form jsonwebtoken reads.
        let mut der = hex("302e020100300506032b657004220420");
        der.extend_from_slice(&seed);
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let encoding = EncodingKey::from_ed_der(&der);
        Signer::finish(
            encoding,
            Algorithm::EdDSA,
            kid,
            pair.public_key().as_ref().to_vec(),
        )
    }

    fn finish(encoding: EncodingKey, alg: Algorithm, kid: &str, public: Vec<u8>) -> Signer {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        jwk.common.key_id = Some(kid.to_string());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Signer {
            encoding,
            alg,
            jwk,
            public,
        }
    }

    fn kid(&self) -> &str {
        self.jwk.common.key_id.as_deref().unwrap()
    }

    /// Signs `claims` with the key's own algorithm and `kid`.
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid().to_string());
        self.sign_with(header, claims)
    }

    fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A JWKS as the server would have it: through JSON, as fetched.
fn jwks(keys: &[&Jwk]) -> JwkSet {
    let set = JwkSet {
        keys: keys.iter().map(|k| (*k).clone()).collect(),
    };
    serde_json::from_str(&serde_json::to_string(&set).unwrap()).unwrap()
}

fn rsa_jwk(kid: &str) -> Jwk {
    let mut jwk = Jwk {
        common: Default::default(),
        algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
            key_type: RSAKeyType::RSA,
            n: RSA_N.to_string(),
            e: "AQAB".to_string(),
        }),
    };
    jwk.common.key_id = Some(kid.to_string());
    jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
    jwk
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Claims as GitHub Actions sends them, valid at `now`.
fn claims(now: OffsetDateTime) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": SUBJECT,
        "iat": now.unix_timestamp(),
        "nbf": now.unix_timestamp() - 10,
        "exp": now.unix_timestamp() + 300,
        "repository": "acme/api",
        "ref": "refs/heads/main",
        "workflow": "deploy",
        "protected": true,
        "run_attempt": 3,
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

fn rule() -> OidcRule {
    OidcRule {
        issuer: ISSUER.to_string(),
        jwks_url: Some(format!("{ISSUER}/.well-known/jwks")),
        jwks: None,
        audience: AUDIENCE.to_string(),
        subject: Some("repo:acme/*:ref:refs/heads/main".to_string()),
        claims: BTreeMap::from([("repository".to_string(), "acme/*".to_string())]),
    }
}

fn check(
    token: &str,
    rule: &OidcRule,
    set: &JwkSet,
    at: OffsetDateTime,
) -> Result<VerifiedOidc, OidcError> {
    verify(token, rule, set, at, LEEWAY)
}

#[test]
fn a_valid_es256_token_passes_and_returns_subject_and_claims() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let other = Signer::ec("k2", Algorithm::ES256);
    let set = jwks(&[&other.jwk, &key.jwk]);
    let now = now();
    let token = key.sign(&claims(now));
    let verified = check(&token, &rule(), &set, now).unwrap();
    assert_eq!(verified.issuer, ISSUER);
    assert_eq!(verified.subject, SUBJECT);
    assert_eq!(verified.claims["repository"], "acme/api");
    assert_eq!(verified.claims["workflow"], "deploy");
    assert_eq!(verified.claims["exp"], now.unix_timestamp() + 300);
}

#[test]
fn an_eddsa_token_passes() {
    let key = Signer::ed25519("ed");
    let set = jwks(&[&key.jwk]);
    let now = now();
    let verified = check(&key.sign(&claims(now)), &rule(), &set, now).unwrap();
    assert_eq!(verified.subject, SUBJECT);
}

#[test]
fn an_es384_token_with_a_p384_key_passes() {
    let key = Signer::ec("p384", Algorithm::ES384);
    let set = jwks(&[&key.jwk]);
    let now = now();
    assert!(check(&key.sign(&claims(now)), &rule(), &set, now).is_ok());
}

#[test]
fn a_token_from_another_issuer_is_refused() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let set = jwks(&[&key.jwk]);
    let now = now();
    for iss in [
        json!("https://evil.example"),
        json!(format!("{ISSUER}/")),
        json!("HTTPS://TOKEN.ACTIONS.GITHUBUSERCONTENT.COM"),
        json!([ISSUER]),
    ] {
        let token = key.sign(&with(claims(now), "iss", iss));
        assert_eq!(check(&token, &rule(), &set, now), Err(OidcError::Issuer));
    }
    let token = key.sign(&without(claims(now), "iss"));
    assert_eq!(check(&token, &rule(), &set, now), Err(OidcError::Issuer));
}

#[test]
fn a_token_for_another_audience_is_refused_and_an_array_containing_ours_passes() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let set = jwks(&[&key.jwk]);
    let now = now();
    for aud in [
        json!("sts.amazonaws.com"),
        json!(["sts.amazonaws.com", "writ2"]),
        json!([]),
        json!(["WRIT"]),
        json!(42),
    ] {
        let token = key.sign(&with(claims(now), "aud", aud));
        assert_eq!(check(&token, &rule(), &set, now), Err(OidcError::Audience));
    }
    let token = key.sign(&without(claims(now), "aud"));
    assert_eq!(check(&token, &rule(), &set, now), Err(OidcError::Audience));

    let token = key.sign(&with(
        claims(now),
        "aud",
        json!(["sts.amazonaws.com", AUDIENCE]),
    ));
    assert!(check(&token, &rule(), &set, now).is_ok());
}

#[test]
fn a_subject_outside_the_glob_is_refused() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let set = jwks(&[&key.jwk]);
    let now = now();
    for sub in [
        json!("repo:evil/api:ref:refs/heads/main"),
        json!("repo:acme/api:ref:refs/heads/feature"),
        json!("repo:acme/api:pull_request"),
        json!(42),
    ] {
        let token = key.sign(&with(claims(now), "sub", sub));
        assert_eq!(check(&token, &rule(), &set, now), Err(OidcError::Subject));
    }
    // jsonwebtoken itself refuses to parse a `sub` that is an array.
    let token = key.sign(&with(claims(now), "sub", json!([SUBJECT])));
    let result = check(&token, &rule(), &set, now);
    assert!(
        matches!(result, Err(OidcError::Subject | OidcError::Malformed)),
        "{result:?}"
    );
    let token = key.sign(&without(claims(now), "sub"));
    assert_eq!(check(&token, &rule(), &set, now), Err(OidcError::Subject));

    // Another repository of the owner matches the glob.
    let token = key.sign(&with(
        claims(now),
        "sub",
        json!("repo:acme/web:ref:refs/heads/main"),
    ));
    assert!(check(&token, &rule(), &set, now).is_ok());
}

#[test]
fn a_mismatched_or_missing_claim_is_refused_by_name() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let set = jwks(&[&key.jwk]);
    let now = now();
    let refused = Err(OidcError::Claim("repository".to_string()));

    let token = key.sign(&with(claims(now), "repository", json!("evil/api")));
    assert_eq!(check(&token, &rule(), &set, now), refused);
    let token = key.sign(&without(claims(now), "repository"));
    assert_eq!(check(&token, &rule(), &set, now), refused);
    for value in [
        json!(null),
        json!(["acme/api"]),
        json!({"name": "acme/api"}),
    ] {
        let token = key.sign(&with(claims(now), "repository", value));
        assert_eq!(check(&token, &rule(), &set, now), refused);
    }
    // Even `*` needs the claim to be present and a string, boolean or number.
    let mut any = rule();
    any.claims.insert("repository".into(), "*".into());
    for value in [
        json!(null),
        json!(["acme/api"]),
        json!({"name": "acme/api"}),
    ] {
        let token = key.sign(&with(claims(now), "repository", value));
        assert_eq!(check(&token, &any, &set, now), refused);
    }
    let token = key.sign(&without(claims(now), "repository"));
    assert_eq!(check(&token, &any, &set, now), refused);
}

#[test]
fn boolean_and_number_claims_are_compared_by_their_json_text() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let set = jwks(&[&key.jwk]);
    let now = now();
    let token = key.sign(&claims(now));
    let mut r = rule();
    r.claims.insert("protected".into(), "true".into());
    r.claims.insert("run_attempt".into(), "3".into());
    assert!(check(&token, &r, &set, now).is_ok());

    r.claims.insert("protected".into(), "false".into());
    assert_eq!(
        check(&token, &r, &set, now),
        Err(OidcError::Claim("protected".into()))
    );
    r.claims.insert("protected".into(), "true".into());
    r.claims.insert("run_attempt".into(), "4".into());
    assert_eq!(
        check(&token, &r, &set, now),
        Err(OidcError::Claim("run_attempt".into()))
    );
}

#[test]
fn an_expired_token_is_refused_and_the_leeway_is_honoured() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let set = jwks(&[&key.jwk]);
    let now = now();
    let t = now.unix_timestamp();

    let expired = key.sign(&with(claims(now), "exp", json!(t - 100)));
    assert_eq!(check(&expired, &rule(), &set, now), Err(OidcError::Expired));
    // At exactly `exp` minus the leeway the token is expired.
    let edge = key.sign(&with(claims(now), "exp", json!(t - 5)));
    assert_eq!(check(&edge, &rule(), &set, now), Err(OidcError::Expired));
    // Within the leeway it still passes, and without a leeway it does not.
    let recent = key.sign(&with(claims(now), "exp", json!(t - 3)));
    assert!(check(&recent, &rule(), &set, now).is_ok());
    assert_eq!(
        verify(&recent, &rule(), &set, now, Duration::ZERO),
        Err(OidcError::Expired)
    );
    // The token is checked at the caller's clock, not the system's.
    let token = key.sign(&claims(now));
    assert_eq!(
        check(&token, &rule(), &set, now + Duration::hours(1)),
        Err(OidcError::Expired)
    );
    // `exp` is required.
    let no_exp = key.sign(&without(claims(now), "exp"));
    assert_eq!(
        check(&no_exp, &rule(), &set, now),
        Err(OidcError::Malformed)
    );
    let text_exp = key.sign(&with(claims(now), "exp", json!("tomorrow")));
    assert_eq!(
        check(&text_exp, &rule(), &set, now),
        Err(OidcError::Malformed)
    );
}

#[test]
fn a_token_not_valid_yet_is_refused() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let set = jwks(&[&key.jwk]);
    let now = now();
    let t = now.unix_timestamp();
    let future = key.sign(&with(claims(now), "nbf", json!(t + 60)));
    assert_eq!(
        check(&future, &rule(), &set, now),
        Err(OidcError::NotYetValid)
    );
    // Within the leeway it passes; `nbf` is optional.
    let skewed = key.sign(&with(claims(now), "nbf", json!(t + 3)));
    assert!(check(&skewed, &rule(), &set, now).is_ok());
    let no_nbf = key.sign(&without(claims(now), "nbf"));
    assert!(check(&no_nbf, &rule(), &set, now).is_ok());
}

#[test]
fn an_alg_none_token_is_refused() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let set = jwks(&[&key.jwk]);
    let now = now();
    let payload = b64(claims(now).to_string().as_bytes());
    for header in [
        json!({"alg": "none"}),
        json!({"alg": "none", "kid": "k1"}),
        json!({"alg": "none", "typ": "JWT", "kid": "k1"}),
    ] {
        let header = b64(header.to_string().as_bytes());
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            let result = check(&token, &rule(), &set, now);
            assert!(
                matches!(result, Err(OidcError::Malformed | OidcError::Algorithm)),
                "{result:?}"
            );
        }
    }
}

#[test]
fn an_hmac_token_keyed_with_the_public_key_is_refused() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let set = jwks(&[&key.jwk]);
    let now = now();
    let jwk_json = serde_json::to_vec(&key.jwk).unwrap();
    for secret in [jwk_json.as_slice(), key.public.as_slice()] {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let mut header = Header::new(alg);
            header.kid = Some("k1".into());
            let token =
                jsonwebtoken::encode(&header, &claims(now), &EncodingKey::from_secret(secret))
                    .unwrap();
            assert_eq!(check(&token, &rule(), &set, now), Err(OidcError::Algorithm));
        }
    }
    // HMAC is refused before any key is looked up, whatever the `kid`.
    let two = jwks(&[&key.jwk, &Signer::ec("k2", Algorithm::ES256).jwk]);
    for kid in [None, Some("unknown")] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid.map(str::to_string);
        let token =
            jsonwebtoken::encode(&header, &claims(now), &EncodingKey::from_secret(b"secret"))
                .unwrap();
        assert_eq!(check(&token, &rule(), &two, now), Err(OidcError::Algorithm));
    }
}

#[test]
fn a_token_naming_an_unknown_key_is_refused() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let other = Signer::ec("k2", Algorithm::ES256);
    let set = jwks(&[&other.jwk]);
    let now = now();
    assert_eq!(
        check(&key.sign(&claims(now)), &rule(), &set, now),
        Err(OidcError::UnknownKey)
    );
    assert_eq!(
        check(
            &key.sign(&claims(now)),
            &rule(),
            &JwkSet { keys: vec![] },
            now
        ),
        Err(OidcError::UnknownKey)
    );
}

#[test]
fn a_signature_by_another_key_with_the_same_kid_is_refused() {
    let trusted = Signer::ec("k1", Algorithm::ES256);
    let attacker = Signer::ec("k1", Algorithm::ES256);
    let set = jwks(&[&trusted.jwk]);
    let now = now();
    assert_eq!(
        check(&attacker.sign(&claims(now)), &rule(), &set, now),
        Err(OidcError::Signature)
    );
    // The signature covers the claims: a genuine signature on other claims does not carry over.
    let genuine = trusted.sign(&claims(now));
    let forged_claims = with(
        claims(now),
        "sub",
        json!("repo:acme/api:ref:refs/heads/evil"),
    );
    let forged = trusted.sign(&forged_claims);
    let mut parts: Vec<&str> = genuine.split('.').collect();
    parts[1] = forged.split('.').nth(1).unwrap();
    let spliced = parts.join(".");
    assert_ne!(spliced, genuine);
    assert_eq!(
        check(&spliced, &rule(), &set, now),
        Err(OidcError::Signature)
    );
}

#[test]
fn a_jwk_for_another_algorithm_is_refused() {
    let now = now();
    // The JWK says ES384; the token (signed by that very key) says ES256.
    let mut key = Signer::ec("k1", Algorithm::ES256);
    key.jwk.common.key_algorithm = Some(KeyAlgorithm::ES384);
    let set = jwks(&[&key.jwk]);
    assert_eq!(
        check(&key.sign(&claims(now)), &rule(), &set, now),
        Err(OidcError::Algorithm)
    );
    // A JWK that names no algorithm is taken for the token's.
    key.jwk.common.key_algorithm = None;
    let set = jwks(&[&key.jwk]);
    assert!(check(&key.sign(&claims(now)), &rule(), &set, now).is_ok());
}

#[test]
fn a_key_of_the_wrong_type_or_curve_is_refused() {
    let now = now();
    let ec = Signer::ec("ec", Algorithm::ES256);
    let ed = Signer::ed25519("ed");
    let mut p384 = Signer::ec("p384", Algorithm::ES384);
    p384.jwk.common.key_algorithm = None;
    let set = jwks(&[&ec.jwk, &ed.jwk, &p384.jwk, &rsa_jwk("rsa")]);

    // An ES256 token naming the RSA key, the Ed25519 key, or a P-384 key with no `alg`.
    for kid in ["rsa", "ed", "p384"] {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        let token = ec.sign_with(header, &claims(now));
        assert_eq!(
            check(&token, &rule(), &set, now),
            Err(OidcError::Algorithm),
            "{kid}"
        );
    }
    // An EdDSA token naming the EC key.
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("ec".into());
    let token = ed.sign_with(header, &claims(now));
    assert_eq!(check(&token, &rule(), &set, now), Err(OidcError::Algorithm));
}

#[test]
fn an_rs256_token_is_checked_against_the_rsa_key() {
    let now = now();
    let set = jwks(&[&rsa_jwk("rsa")]);
    let header = b64(json!({"alg": "RS256", "kid": "rsa", "typ": "JWT"})
        .to_string()
        .as_bytes());
    let payload = b64(claims(now).to_string().as_bytes());
    let mut signature = [0u8; 256];
    SystemRandom::new().fill(&mut signature).unwrap();
    let token = format!("{header}.{payload}.{}", b64(&signature));
    assert_eq!(check(&token, &rule(), &set, now), Err(OidcError::Signature));
    // The JWK says RS256, so a PS256 token naming it is refused before its signature.
    let header = b64(json!({"alg": "PS256", "kid": "rsa"}).to_string().as_bytes());
    let token = format!("{header}.{payload}.{}", b64(&signature));
    assert_eq!(check(&token, &rule(), &set, now), Err(OidcError::Algorithm));
}

#[test]
fn without_a_kid_the_only_key_is_used_but_two_keys_are_ambiguous() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let other = Signer::ec("k2", Algorithm::ES256);
    let now = now();
    let token = key.sign_with(Header::new(Algorithm::ES256), &claims(now));

    assert!(check(&token, &rule(), &jwks(&[&key.jwk]), now).is_ok());
    assert_eq!(
        check(&token, &rule(), &jwks(&[&key.jwk, &other.jwk]), now),
        Err(OidcError::UnknownKey)
    );
    assert_eq!(
        check(&token, &rule(), &jwks(&[&other.jwk, &key.jwk]), now),
        Err(OidcError::UnknownKey)
    );
}

#[test]
fn an_encryption_key_is_never_used_for_signatures() {
    let mut key = Signer::ec("k1", Algorithm::ES256);
    key.jwk.common.public_key_use = Some(PublicKeyUse::Encryption);
    let set = jwks(&[&key.jwk]);
    let now = now();
    assert_eq!(
        check(&key.sign(&claims(now)), &rule(), &set, now),
        Err(OidcError::UnknownKey)
    );
    let no_kid = key.sign_with(Header::new(Algorithm::ES256), &claims(now));
    assert_eq!(
        check(&no_kid, &rule(), &set, now),
        Err(OidcError::UnknownKey)
    );
}

#[test]
fn a_critical_header_extension_is_refused() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let set = jwks(&[&key.jwk]);
    let now = now();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    header.crit = Some(vec!["b64".into()]);
    let token = key.sign_with(header, &claims(now));
    assert_eq!(check(&token, &rule(), &set, now), Err(OidcError::Malformed));
}

#[test]
fn errors_never_include_the_token() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let set = jwks(&[&key.jwk]);
    let now = now();
    let token = key.sign(&with(claims(now), "repository", json!("evil/api")));
    let err = check(&token, &rule(), &set, now).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("repository"), "{message}");
    for part in token.split('.') {
        assert!(!message.contains(part));
    }
    assert!(!message.contains("evil/api"));
}

#[test]
fn rule_check_requires_exactly_one_jwks_source() {
    let key = Signer::ec("k1", Algorithm::ES256);
    assert_eq!(rule().check(), Ok(()));

    let mut both = rule();
    both.jwks = Some(jwks(&[&key.jwk]));
    assert!(both.check().unwrap_err().starts_with("jwksUrl: "));

    let mut neither = rule();
    neither.jwks_url = None;
    assert!(neither.check().unwrap_err().starts_with("jwksUrl: "));

    let mut inline = neither.clone();
    inline.jwks = Some(jwks(&[&key.jwk]));
    assert_eq!(inline.check(), Ok(()));

    inline.jwks = Some(JwkSet { keys: vec![] });
    assert!(inline.check().unwrap_err().starts_with("jwks: "));
}

#[test]
fn rule_check_names_empty_fields() {
    let mut r = rule();
    r.issuer.clear();
    assert!(r.check().unwrap_err().starts_with("issuer: "));
    let mut r = rule();
    r.audience.clear();
    assert!(r.check().unwrap_err().starts_with("audience: "));
    let mut r = rule();
    r.subject = Some(String::new());
    assert!(r.check().unwrap_err().starts_with("subject: "));
    let mut r = rule();
    r.claims.insert(String::new(), "x".into());
    assert!(r.check().unwrap_err().starts_with("claims: "));
    // A rule must narrow the issuer's tokens: a subject or a claim that is more than
    // wildcards. Without one, every workflow of a shared issuer (GitHub Actions) gets in.
    let mut r = rule();
    r.subject = None;
    r.claims.clear();
    assert!(r.check().unwrap_err().starts_with("subject: "));
    r.subject = Some("*".into());
    assert!(r.check().unwrap_err().starts_with("subject: "));
    r.claims.insert("repository_owner".into(), "**?".into());
    assert!(r.check().unwrap_err().starts_with("subject: "));
    r.claims.insert("repository_owner".into(), "acme".into());
    assert_eq!(r.check(), Ok(()));
    r.claims.clear();
    r.subject = Some("repo:acme/*".into());
    assert_eq!(r.check(), Ok(()));
}

#[test]
fn rule_check_allows_plain_http_only_to_loopback() {
    let with_url = |url: &str| OidcRule {
        jwks_url: Some(url.to_string()),
        ..rule()
    };
    for url in [
        "https://token.actions.githubusercontent.com/.well-known/jwks",
        "HTTPS://issuer.example:8443/keys?x=1",
        "http://127.0.0.1/jwks",
        "http://127.0.0.1:8080/jwks",
        "http://localhost:9000/.well-known/jwks.json",
        "http://LOCALHOST/jwks",
        "http://[::1]:8080/jwks",
        "http://[::1]",
        "http://localhost",
    ] {
        assert_eq!(with_url(url).check(), Ok(()), "{url}");
    }
    for url in [
        "http://issuer.example/jwks",
        "http://10.0.0.1/jwks",
        "http://localhost.evil.example/jwks",
        "http://127.0.0.1.nip.io/jwks",
        "http://localhost@evil.example/jwks",
        "http://127.0.0.1:80@evil.example/jwks",
        "https://user:pass@issuer.example/jwks",
        "https://user@issuer.example/jwks",
        "https://issuer.example\\evil/jwks",
        "http://evil.example\\@127.0.0.1/jwks",
        "http://127.0.0.1\\.evil.example/jwks",
        "http://evil.example#@localhost",
        "http://[::2]/jwks",
        "http://[::1/jwks",
        "http://[::1]x/jwks",
        "http://localhost:http/jwks",
        "http://localhost:99999/jwks",
        "http://127.1/jwks",
        " http://localhost/jwks",
        "http://local host/jwks",
        "http:/localhost/jwks",
        "https:///jwks",
        "https://",
        "ftp://issuer.example/jwks",
        "issuer.example/jwks",
        "",
    ] {
        let err = with_url(url).check().unwrap_err();
        assert!(err.starts_with("jwksUrl: "), "{url}: {err}");
    }
}

#[test]
fn rule_json_is_camel_case_and_refuses_unknown_fields() {
    let parsed: OidcRule = serde_json::from_value(json!({
        "issuer": ISSUER,
        "jwksUrl": format!("{ISSUER}/.well-known/jwks"),
        "audience": AUDIENCE,
        "subject": "repo:acme/*:ref:refs/heads/main",
        "claims": {"repository": "acme/*"},
    }))
    .unwrap();
    assert_eq!(parsed, rule());

    for extra in [
        json!({"issuer": ISSUER, "jwksUrl": "https://x/j", "audience": "a", "audiences": ["b"]}),
        json!({"issuer": ISSUER, "jwks_url": "https://x/j", "audience": "a"}),
        json!({"issuer": ISSUER, "jwksUrl": "https://x/j", "audience": "a", "sub": "x"}),
    ] {
        assert!(serde_json::from_value::<OidcRule>(extra).is_err());
    }
    // Issuer and audience are required.
    assert!(
        serde_json::from_value::<OidcRule>(json!({"issuer": ISSUER, "jwksUrl": "https://x/j"}))
            .is_err()
    );
}

#[test]
fn a_rule_survives_a_json_round_trip() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let ed = Signer::ed25519("ed");
    let mut inline = rule();
    inline.jwks_url = None;
    inline.jwks = Some(jwks(&[&key.jwk, &ed.jwk, &rsa_jwk("rsa")]));
    inline.claims.insert("protected".into(), "true".into());
    for r in [rule(), inline] {
        let text = serde_json::to_string(&r).unwrap();
        let back: OidcRule = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.check(), Ok(()));
    }
    // Empty optional fields are left out.
    let minimal = OidcRule {
        subject: None,
        claims: BTreeMap::new(),
        ..rule()
    };
    let value = serde_json::to_value(&minimal).unwrap();
    assert_eq!(
        value,
        json!({"issuer": ISSUER, "jwksUrl": format!("{ISSUER}/.well-known/jwks"), "audience": AUDIENCE})
    );
    // A token verifies against the inline JWKS after the round trip.
    let now = now();
    let text = serde_json::to_string(&OidcRule {
        jwks_url: None,
        jwks: Some(jwks(&[&key.jwk])),
        ..rule()
    })
    .unwrap();
    let back: OidcRule = serde_json::from_str(&text).unwrap();
    let set = back.jwks.clone().unwrap();
    assert!(check(&key.sign(&claims(now)), &back, &set, now).is_ok());
}

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn string(&mut self, alphabet: &[char], max: usize) -> String {
        let len = self.below(max + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}

#[test]
fn garbage_is_refused_without_panicking() {
    let key = Signer::ec("k1", Algorithm::ES256);
    let set = jwks(&[&key.jwk]);
    let now = now();
    let valid = key.sign(&claims(now));
    assert!(check(&valid, &rule(), &set, now).is_ok());

    let b64_chars: Vec<char> = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        .chars()
        .collect();
    let mut wild: Vec<char> = b64_chars.clone();
    wild.extend([
        '.', '.', '.', '=', '+', '/', ' ', '\0', '\n', 'é', '💥', '{', '"',
    ]);
    let headers: Vec<String> = [
        json!({"alg": "ES256", "kid": "k1"}),
        json!({"alg": "ES256"}),
        json!({"alg": "EdDSA", "kid": "k1"}),
        json!({"alg": "RS256", "kid": "k1"}),
        json!({"alg": "HS256", "kid": "k1"}),
        json!({"alg": "none"}),
        json!({"alg": 1}),
        json!({"kid": "k1"}),
        json!([]),
        json!("ES256"),
    ]
    .iter()
    .map(|h| b64(h.to_string().as_bytes()))
    .collect();
    let payloads: Vec<String> = [
        claims(now),
        json!({}),
        json!([]),
        json!(null),
        json!("x"),
        json!({"exp": u64::MAX, "iss": ISSUER}),
        json!({"exp": -1e300, "nbf": 1e300}),
    ]
    .iter()
    .map(|p| b64(p.to_string().as_bytes()))
    .collect();

    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut inputs: Vec<String> = vec![
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "a.b.c".into(),
        "a.b.c.d.e".into(),
        "x".repeat(200_000),
        format!("{valid}.{valid}"),
    ];
    for _ in 0..200 {
        inputs.push(rng.string(&wild, 200));
    }
    for _ in 0..200 {
        let segments = [
            rng.string(&b64_chars, 120),
            rng.string(&b64_chars, 400),
            rng.string(&b64_chars, 120),
        ];
        inputs.push(segments.join("."));
    }
    for _ in 0..200 {
        let header = &headers[rng.below(headers.len())];
        let payload = &payloads[rng.below(payloads.len())];
        let signature = rng.string(&b64_chars, 100);
        inputs.push(format!("{header}.{payload}.{signature}"));
    }
    // Every one-character change to a valid token.
    let bytes: Vec<char> = valid.chars().collect();
    for i in 0..bytes.len() {
        let mut mutated = bytes.clone();
        let replacement = wild[rng.below(wild.len())];
        if replacement == mutated[i] {
            continue;
        }
        mutated[i] = replacement;
        inputs.push(mutated.into_iter().collect());
    }

    for input in &inputs {
        assert!(
            check(input, &rule(), &set, now).is_err(),
            "accepted garbage: {input:?}"
        );
    }
    assert!(inputs.len() > 600);
}
