//! Fuzzes JWT-SVID verification with arbitrary tokens: it must refuse or accept, never
//! panic, and accept only what the trusted key signed.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use time::{Duration, OffsetDateTime};
use writ_identity::jwt_svid::{jwks, verify};
use writ_identity::{JwtAuthority, SpiffeId, TrustDomain};

struct Fixture {
    td: TrustDomain,
    bundle: jsonwebtoken::jwk::JwkSet,
    now: OffsetDateTime,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let td = TrustDomain::new("example.org").expect("trust domain");
        let key = JwtAuthority::generate(&td).expect("key");
        let bundle = jwks([&key]);
        let now = OffsetDateTime::now_utc();
        let id = SpiffeId::for_function(&td, "fuzz").expect("id");
        // Print one real token so a corpus can start from it.
        let token = key
            .mint(&id, &["a"], now, Duration::minutes(5))
            .expect("token");
        eprintln!("sample token: {token}");
        Fixture { td, bundle, now }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let token = String::from_utf8_lossy(data);
    // Nothing but the trusted key signs, so no fuzzed token may verify.
    assert!(verify(&token, &f.bundle, &f.td, "a", f.now, Duration::seconds(5)).is_err());
});
