//! Checking what callers present, without I/O: X.509-SVIDs against the trust bundle,
//! webhook signatures, API keys. (JWT-SVIDs are checked by `writ_identity::jwt_svid`.)
//! MACs and key hashes are compared in constant time.

use ring::hmac;
use rustls::pki_types::{CertificateDer, UnixTime};
use subtle::ConstantTimeEq;
use writ_identity::SpiffeId;

/// A verified X.509-SVID: whose it is and its serial (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSvid {
    /// The SPIFFE ID in its URI SAN.
    pub id: SpiffeId,
    /// The function's name (`/fn/NAME`).
    pub function: String,
    /// The serial number, lowercase hex.
    pub serial: String,
}

/// Verifies a client certificate as an X.509-SVID of a function of `trust_domain`: it
/// chains to one of `bundle` (the trust domain's CAs) for client authentication at `now`,
/// and carries exactly one URI SAN, `spiffe://TRUST_DOMAIN/fn/NAME`. The reason for a
/// refusal is for the audit log, not for the caller.
pub fn verify_svid(
    cert: &CertificateDer<'_>,
    bundle: &[CertificateDer<'static>],
    trust_domain: &str,
    now: time::OffsetDateTime,
) -> Result<VerifiedSvid, String> {
    let end_entity = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| format!("unreadable client certificate: {e}"))?;
    let anchors: Vec<_> = bundle
        .iter()
        .filter_map(|ca| webpki::anchor_from_trusted_cert(ca).ok())
        .collect();
    let seconds = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &[],
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds)),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| match e {
            webpki::Error::CertExpired { .. } => "the client certificate has expired".to_string(),
            webpki::Error::UnknownIssuer => {
                "the client certificate does not chain to the trust bundle".to_string()
            }
            other => format!("the client certificate is not valid: {other}"),
        })?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|_| "unreadable client certificate".to_string())?;
    let uris = writ_identity::uri_sans(&parsed);
    let [uri] = uris.as_slice() else {
        return Err("an X.509-SVID carries exactly one URI SAN".into());
    };
    let id = SpiffeId::parse(uri).map_err(|_| "the URI SAN is not a SPIFFE ID".to_string())?;
    if id.trust_domain() != trust_domain {
        return Err(format!("{id} is not of trust domain {trust_domain}"));
    }
    let function = id
        .path()
        .strip_prefix("/fn/")
        .ok_or_else(|| format!("{id} is not a function"))?
        .to_string();
    let serial = writ_audit::hex(parsed.raw_serial());
    Ok(VerifiedSvid {
        id,
        function,
        serial,
    })
}

/// Checks a GitHub-style signature: `X-Hub-Signature-256: sha256=<hex>` over the body.
pub fn github_signature_ok(key: &[u8], body: &[u8], header: Option<&str>) -> Result<(), String> {
    let header = header.ok_or("no X-Hub-Signature-256 header")?;
    let tag = header
        .strip_prefix("sha256=")
        .and_then(writ_audit::unhex)
        .ok_or("X-Hub-Signature-256: expected sha256=<hex>")?;
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), body, &tag)
        .map_err(|_| "X-Hub-Signature-256: the signature does not match the body".into())
}

/// Checks a Stripe-style signature: `Stripe-Signature: t=<unix time>,v1=<hex>[,v1=…]`
/// over `"<t>.<body>"`, with `t` within `tolerance` of `now`.
pub fn stripe_signature_ok(
    key: &[u8],
    body: &[u8],
    header: Option<&str>,
    now: i64,
    tolerance: std::time::Duration,
) -> Result<(), String> {
    let header = header.ok_or("no Stripe-Signature header")?;
    let mut t = None;
    let mut tags = Vec::new();
    let mut candidates = 0;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => {
                // Stripe sends one v1 per active secret: a handful at most.
                candidates += 1;
                if candidates > MAX_STRIPE_SIGNATURES {
                    return Err(format!(
                        "Stripe-Signature: more than {MAX_STRIPE_SIGNATURES} v1 signatures"
                    ));
                }
                tags.extend(writ_audit::unhex(v).filter(|tag| tag.len() == 32));
            }
            _ => {}
        }
    }
    let t = t.ok_or("Stripe-Signature: no t=<unix time>")?;
    if tags.is_empty() {
        return Err("Stripe-Signature: no v1=<64 hex digits> signature".into());
    }
    let age = now.abs_diff(t);
    if age > tolerance.as_secs() {
        return Err(format!(
            "Stripe-Signature: signed {age} s from now, outside the {} s window (a replay?)",
            tolerance.as_secs()
        ));
    }
    // One MAC over the body, compared with every candidate in constant time, so the time
    // taken says neither which matched nor costs a MAC per candidate.
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), &signed);
    let matched = tags
        .iter()
        .map(|tag| bool::from(tag.as_slice().ct_eq(expected.as_ref())))
        .fold(false, |any, ok| any | ok);
    if matched {
        Ok(())
    } else {
        Err("Stripe-Signature: no v1 signature matches the body".into())
    }
}

/// The most `v1` signatures one Stripe-Signature header may carry.
pub const MAX_STRIPE_SIGNATURES: usize = 8;

/// The hash of an API key's secret part, as configuration holds it: `sha256:<hex>`.
pub fn api_key_hash(secret: &str) -> String {
    format!(
        "sha256:{}",
        writ_audit::hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
    )
}

/// Splits `writ.apikey.ID.SECRET` into its id and secret.
pub fn parse_api_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("writ.apikey.")?;
    let (id, secret) = rest.split_once('.')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// Whether `secret` hashes to `hash` (`sha256:<hex>`), in constant time.
pub fn api_key_matches(secret: &str, hash: &str) -> bool {
    let computed = api_key_hash(secret);
    computed.len() == hash.len() && bool::from(computed.as_bytes().ct_eq(hash.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(key: &[u8], data: &[u8]) -> String {
        writ_audit::hex(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref())
    }

    #[test]
    fn github_signatures_cover_every_byte_of_the_body() {
        let body = br#"{"action":"opened"}"#;
        let good = format!("sha256={}", sign(b"k", body));
        github_signature_ok(b"k", body, Some(&good)).unwrap();
        assert!(github_signature_ok(b"k", br#"{"action":"openeD"}"#, Some(&good)).is_err());
        assert!(github_signature_ok(b"other", body, Some(&good)).is_err());
        assert!(github_signature_ok(b"k", body, None).is_err());
        assert!(github_signature_ok(b"k", body, Some("sha1=00")).is_err());
        assert!(github_signature_ok(b"k", body, Some("sha256=zz")).is_err());
    }

    #[test]
    fn stripe_signatures_are_bound_to_their_time_and_window() {
        let body = b"{}";
        let now = 1_700_000_000;
        let header = |t: i64, key: &[u8]| {
            format!("t={t},v1={}", sign(key, format!("{t}.{}", "{}").as_bytes()))
        };
        let window = std::time::Duration::from_secs(300);
        stripe_signature_ok(b"k", body, Some(&header(now - 10, b"k")), now, window).unwrap();
        let replay = stripe_signature_ok(b"k", body, Some(&header(now - 301, b"k")), now, window);
        assert!(replay.unwrap_err().contains("replay"));
        assert!(stripe_signature_ok(b"k", body, Some(&header(now, b"x")), now, window).is_err());
        // The time is signed: moving it breaks the signature.
        let moved =
            header(now - 1000, b"k").replace(&format!("t={}", now - 1000), &format!("t={now}"));
        assert!(stripe_signature_ok(b"k", body, Some(&moved), now, window).is_err());
        // A second, valid v1 (Stripe sends one per active secret) is accepted.
        let two = format!("{},v1={}", header(now, b"k"), "00".repeat(32));
        stripe_signature_ok(b"k", body, Some(&two), now, window).unwrap();
        // Thousands of candidates are refused outright, not each checked.
        let many = format!("{}{}", header(now, b"k"), ",v1=00".repeat(9));
        assert!(
            stripe_signature_ok(b"k", body, Some(&many), now, window)
                .unwrap_err()
                .contains("more than")
        );
        assert!(stripe_signature_ok(b"k", body, Some("v1=00"), now, window).is_err());
    }

    #[test]
    fn api_keys_are_checked_against_their_hash() {
        let (id, secret) = parse_api_key("writ.apikey.partner-a.s3cr3t").unwrap();
        assert_eq!(id, "partner-a");
        let hash = api_key_hash(secret);
        assert!(hash.starts_with("sha256:") && hash.len() == 71);
        assert!(api_key_matches(secret, &hash));
        assert!(!api_key_matches("s3cr3T", &hash));
        assert!(parse_api_key("writ.apikey.only").is_none());
        assert!(parse_api_key("Bearer x").is_none());
    }
}

#[cfg(test)]
mod robustness {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// What callers send in headers never panics the checks, and never verifies
        /// without the key.
        #[test]
        fn arbitrary_headers_are_refused_without_panicking(header in ".{0,300}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let window = std::time::Duration::from_secs(300);
            prop_assert!(stripe_signature_ok(b"key", &body, Some(&header), 1_700_000_000, window).is_err());
            prop_assert!(github_signature_ok(b"key", &body, Some(&header)).is_err());
            if let Some((_, secret)) = parse_api_key(&header) {
                prop_assert!(!api_key_matches(secret, &api_key_hash("another")) || secret == "another");
            }
        }
    }
}
