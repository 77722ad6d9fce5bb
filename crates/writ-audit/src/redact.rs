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

/// The longest text field kept in an event; longer ones are cut, with a note.
pub const MAX_FIELD_BYTES: usize = 2048;

/// Removes anything shaped like a secret from every text field of `event`: writ tokens,
/// JWTs, and PEM private keys; and cuts fields longer than [`MAX_FIELD_BYTES`]. Returns
/// whether anything was changed.
pub fn scrub(event: &mut Event) -> bool {
    let mut changed = false;
    for text in event.texts_mut() {
        if text.len() > MAX_FIELD_BYTES {
            let mut cut = MAX_FIELD_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let total = text.len();
            text.truncate(cut);
            text.push_str(&format!("…[cut from {total} bytes]"));
            changed = true;
        }
        if let Some(clean) = scrub_text(text) {
            *text = clean;
            changed = true;
        }
    }
    changed
}

/// How a PEM block starts (a private key's is redacted).
const PEM_START: &str = "-----BEGIN ";
/// How writ's tokens start.
const TOKEN_STARTS: [&str; 2] = ["writ.admin.", "writ.join."];
/// How a JWT starts (`{"` in base64url).
const JWT_START: &str = "eyJ";

/// Whether a redaction could start anywhere in `text`: every one starts where one of the
/// prefixes above does. Rather than trying each prefix at each byte, it looks for a byte
/// each prefix holds and ordinary text seldom does (`B` of `-----BEGIN `, `J` of `eyJ`,
/// the `w` a token starts with), eight bytes at a time, and tries the prefix only around
/// those: on the gateway's events, about half the instructions of a byte-by-byte scan
/// (BENCHMARKS.md).
fn may_hold_secret(text: &str) -> bool {
    let bytes = text.as_bytes();
    // The prefix a byte may belong to, and how far into it that byte is.
    let found_at = |i: usize| {
        let (prefix, offset) = match bytes[i] {
            b'B' => (PEM_START, 5),
            b'J' => (JWT_START, 2),
            b'w' => {
                return TOKEN_STARTS
                    .iter()
                    .any(|p| bytes[i..].starts_with(p.as_bytes()));
            }
            _ => return false,
        };
        i >= offset && bytes[i - offset..].starts_with(prefix.as_bytes())
    };
    let mut word_start = 0;
    while let Some(word) = bytes.get(word_start..word_start + 8) {
        let word = u64::from_le_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        if (has_byte(word, b'B') || has_byte(word, b'J') || has_byte(word, b'w'))
            && (word_start..word_start + 8).any(found_at)
        {
            return true;
        }
        word_start += 8;
    }
    (word_start..bytes.len()).any(found_at)
}

/// Whether any of the eight bytes in `word` is `b` (exact: a zero byte of `word ^ b...` is
/// found by `(x - 0x01...) & !x & 0x80...`, which never reports one that is not there).
fn has_byte(word: u64, b: u8) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let x = word ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGH != 0
}

/// The text with secrets removed, or `None` if it had none.
pub fn scrub_text(text: &str) -> Option<String> {
    if !may_hold_secret(text) {
        return None;
    }
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
        if let Some(len) = writ_token(rest) {
            // The whole token: its id is a sensitive identifier too.
            out.push_str("[redacted writ token]");
            rest = &rest[len..];
            changed = true;
            continue;
        }
        if rest.starts_with(JWT_START) {
            if let Some(len) = jwt(rest) {
                out.push_str("[redacted jwt]");
                rest = &rest[len..];
                changed = true;
            } else {
                // Not a JWT: keep the whole base64url run, so no part of it is scanned
                // again (which would make long runs of `eyJ` quadratic).
                let run = rest.bytes().take_while(|b| is_b64url(*b)).count();
                out.push_str(&rest[..run]);
                rest = &rest[run..];
            }
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

/// `writ.admin.<id>.<secret>` or `writ.join.<id>.<secret>` at the start: its length.
fn writ_token(s: &str) -> Option<usize> {
    let after_kind = TOKEN_STARTS
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
    (secret > 0).then_some(id_end + 1 + secret)
}

/// A compact JWS (`eyJ...` `.` `...` `.` `...`) at the start: its length.
fn jwt(s: &str) -> Option<usize> {
    if !s.starts_with(JWT_START) {
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
    if !s.starts_with(PEM_START) {
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
            "bad [redacted writ token] and [redacted jwt] and [redacted private key] end"
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
    fn long_and_adversarial_fields_are_cut_and_scanned_in_linear_time() {
        let mut e = Event::new("t", "a", "none", "writ:Login", "r", Outcome::Denied);
        e.reason = Some("eyJ".repeat(1_000_000));
        scrub(&mut e);
        let reason = e.reason.unwrap();
        assert!(reason.len() < MAX_FIELD_BYTES + 64, "{}", reason.len());
        assert!(reason.ends_with("[cut from 3000000 bytes]"), "{reason}");
        // Linear even without the cut.
        assert!(scrub_text(&"eyJ".repeat(200_000)).is_none());
    }

    proptest::proptest! {
        /// The one-pass check finds a prefix exactly when a substring search does, in any
        /// text (multi-byte characters included), so the fast path never skips a secret.
        #[test]
        fn the_fast_check_agrees_with_a_substring_search(
            text in "(-----BEGIN |eyJ|writ\\.admin\\.|writ\\.join\\.|writ|-----|ey|-|e|w|B|J|é|[a-z .]){0,40}"
        ) {
            let naive = [PEM_START, JWT_START]
                .iter()
                .chain(&TOKEN_STARTS)
                .any(|start| text.contains(start));
            proptest::prop_assert_eq!(may_hold_secret(&text), naive);
        }
    }

    /// Each prefix is found at every offset of the eight-byte words the check reads, across
    /// a word boundary, and at the very end; the bytes it looks for, alone, are not enough.
    #[test]
    fn the_fast_check_finds_a_prefix_at_every_offset() {
        for prefix in [PEM_START, JWT_START, TOKEN_STARTS[0], TOKEN_STARTS[1]] {
            for pad in 0..20 {
                let text = format!("{}{prefix}", "x".repeat(pad));
                assert!(may_hold_secret(&text), "{text:?}");
                assert!(may_hold_secret(&format!("{text}tail of it")), "{text:?}");
                let cut = &text[..text.len() - 1];
                assert!(!may_hold_secret(cut), "{cut:?}");
            }
        }
        for text in [
            "B",
            "J",
            "w",
            "BJw",
            "yJ",
            "----BEGIN ",
            "eyj",
            "writ.",
            "x".repeat(17).as_str(),
        ] {
            assert!(!may_hold_secret(text), "{text:?}");
        }
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
