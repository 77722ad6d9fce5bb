//! Redaction. Secret values, tokens and keys must never enter an event; [`scrub`] is the
//! last line of defence that removes anything shaped like one from every text field.
//! Sensitive identifiers (token ids, for example) are replaced by an HMAC under a
//! per-deployment key, as Vault's audit devices do: the same id always maps to the same
//! value, so events can still be correlated, but the id cannot be read back.

use ring::hmac;

use crate::{Event, hex};

/// Replaces sensitive identifiers with their HMAC-SHA256 under a per-deployment key.
pub struct Redactor {
    key: hmac::Key,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(..)")
    }
}

impl Redactor {
    /// A redactor keyed with `key` (32 random bytes, kept with the deployment's keys).
    pub fn new(key: &[u8]) -> Redactor {
        Redactor {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// `hmac-sha256:<first 16 bytes in hex>` of `value`.
    pub fn hmac(&self, value: &str) -> String {
        let tag = hmac::sign(&self.key, value.as_bytes());
        format!("hmac-sha256:{}", hex(&tag.as_ref()[..16]))
    }
}

/// Removes anything shaped like a secret from every text field of `event`: writ tokens
/// (their secret part), JWTs, and PEM private keys. Returns whether anything was removed.
pub fn scrub(event: &mut Event) -> bool {
    let mut changed = false;
    for text in event.texts_mut() {
        if let Some(clean) = scrub_text(text) {
            *text = clean;
            changed = true;
        }
    }
    changed
}

/// The text with secrets removed, or `None` if it had none.
pub fn scrub_text(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(len) = private_key_block(rest) {
            out.push_str("[redacted private key]");
            rest = &rest[len..];
            changed = true;
            continue;
        }
        if let Some((keep, len)) = writ_token(rest) {
            out.push_str(&rest[..keep]);
            out.push_str("[redacted]");
            rest = &rest[len..];
            changed = true;
            continue;
        }
        if let Some(len) = jwt(rest) {
            out.push_str("[redacted jwt]");
            rest = &rest[len..];
            changed = true;
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    changed.then_some(out)
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `writ.admin.<id>.<secret>` or `writ.join.<id>.<secret>` at the start: how much to keep
/// (through the id and its dot) and the whole length.
fn writ_token(s: &str) -> Option<(usize, usize)> {
    let after_kind = ["writ.admin.", "writ.join."]
        .iter()
        .find_map(|p| s.starts_with(p).then_some(p.len()))?;
    let b = s.as_bytes();
    let id_end = after_kind
        + b[after_kind..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
    if id_end == after_kind || b.get(id_end) != Some(&b'.') {
        return None;
    }
    let secret = b[id_end + 1..]
        .iter()
        .take_while(|c| is_b64url(**c))
        .count();
    (secret > 0).then_some((id_end + 1, id_end + 1 + secret))
}

/// A compact JWS (`eyJ...` `.` `...` `.` `...`) at the start: its length.
fn jwt(s: &str) -> Option<usize> {
    if !s.starts_with("eyJ") {
        return None;
    }
    let b = s.as_bytes();
    let mut i = 0;
    for part in 0..3 {
        let len = b[i..].iter().take_while(|c| is_b64url(**c)).count();
        if len == 0 && part < 2 {
            return None;
        }
        i += len;
        if part < 2 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    Some(i)
}

/// A PEM private key block at the start: its length (to the end of the text if unclosed).
fn private_key_block(s: &str) -> Option<usize> {
    if !s.starts_with("-----BEGIN ") {
        return None;
    }
    let header_end = s[11..].find("-----")? + 11;
    if !s[11..header_end].ends_with("PRIVATE KEY") {
        return None;
    }
    let end_marker = "-----END ";
    match s[header_end..].find(end_marker) {
        Some(at) => {
            let from = header_end + at + end_marker.len();
            let close = s[from..].find("-----").map_or(s.len(), |c| from + c + 5);
            Some(close)
        }
        None => Some(s.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;

    #[test]
    fn secrets_of_every_shape_are_removed_and_the_rest_kept() {
        let token =
            "writ.join.0123456789abcdef01234567.Np1F5ehGDRhxsQC_HCFN48odLl_Tv-tGLh_ILQ85W0Y";
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----";
        let mut e = Event::new("t", "a", "none", "writ:Login", "r", Outcome::Denied);
        e.reason = Some(format!("bad {token} and {jwt} and {pem} end"));
        assert!(scrub(&mut e));
        let reason = e.reason.clone().unwrap();
        assert_eq!(
            reason,
            "bad writ.join.0123456789abcdef01234567.[redacted] and [redacted jwt] and [redacted private key] end"
        );
        for secret in ["Np1F5ehGDRhx", "c2lnbmF0dXJl", "MIGHAgEAMBMG"] {
            assert!(!reason.contains(secret));
        }
        // Ordinary text is left alone, including certificates and the word "writ".
        let mut plain = Event::new(
            "t",
            "spiffe://example.org/fn/orders",
            "x509Svid",
            "writ:Login",
            "-----BEGIN CERTIFICATE-----",
            Outcome::Allowed,
        );
        plain.reason = Some("join token 0123456789abcdef01234567 was already used; writ.io".into());
        assert!(!scrub(&mut plain));
        assert!(scrub_text("eyJ").is_none());
    }

    #[test]
    fn hmac_is_stable_per_key_and_hides_the_value() {
        let a = Redactor::new(&[1; 32]);
        let b = Redactor::new(&[2; 32]);
        let id = "0123456789abcdef01234567";
        assert_eq!(a.hmac(id), a.hmac(id));
        assert_ne!(a.hmac(id), b.hmac(id));
        assert!(a.hmac(id).starts_with("hmac-sha256:"));
        assert!(!a.hmac(id).contains(id));
    }
}
