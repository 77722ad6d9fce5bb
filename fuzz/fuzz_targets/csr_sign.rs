//! Fuzzes X.509-SVID issuance with arbitrary bytes as the certificate signing request: it
//! must refuse or sign, never panic, and anything it signs carries exactly the ID asked for.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use time::{Duration, OffsetDateTime};
use writ_identity::{CertificateAuthority, SpiffeId, TrustDomain};

fn ca() -> &'static (CertificateAuthority, SpiffeId, OffsetDateTime) {
    static CA: OnceLock<(CertificateAuthority, SpiffeId, OffsetDateTime)> = OnceLock::new();
    CA.get_or_init(|| {
        let td = TrustDomain::new("example.org").expect("trust domain");
        let now = OffsetDateTime::now_utc();
        let ca = CertificateAuthority::generate(&td, now, Duration::days(1)).expect("CA");
        let id = SpiffeId::for_function(&td, "fuzz").expect("id");
        (ca, id, now)
    })
}

fuzz_target!(|data: &[u8]| {
    let (ca, id, now) = ca();
    if let Ok(svid) = ca.sign_csr(data, id, *now, Duration::hours(1)) {
        assert_eq!(&svid.spiffe_id, id);
    }
});
