//! Fuzzes OIDC token verification (attestation at login) with arbitrary tokens: it must
//! refuse, never panic, and never accept a token the issuer's key did not sign.
#![no_main]

use std::sync::OnceLock;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use time::{Duration, OffsetDateTime};
use writ_identity::oidc::{OidcRule, verify};

struct Fixture {
    rule: OidcRule,
    jwks: JwkSet,
    now: OffsetDateTime,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .expect("key");
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("jwk");
        jwk.common.key_id = Some("k1".into());
        let jwks = JwkSet { keys: vec![jwk] };
        let rule: OidcRule = serde_json::from_value(serde_json::json!({
            "issuer": "https://issuer.test",
            "jwks": jwks,
            "audience": "writ",
            "subject": "repo:acme/*",
        }))
        .expect("rule");
        Fixture {
            rule,
            jwks,
            now: OffsetDateTime::now_utc(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let token = String::from_utf8_lossy(data);
    // The private key is never used to sign, so nothing the fuzzer makes may verify.
    assert!(verify(&token, &f.rule, &f.jwks, f.now, Duration::seconds(60)).is_err());
});
