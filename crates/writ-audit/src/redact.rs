//! Redaction. Secret values, tokens and keys must never enter an event; [`scrub`] is the
//! last line of defence that removes anything shaped like one from every text field.
//! Sensitive identifiers (token ids, for example) are replaced by an HMAC under a
//! per-deployment key, as Vault's audit devices do: the same id always maps to the same
//! value, so events can still be correlated, but the id cannot be read back.

use ring::hmac;

use crate::{Event, hex, swar};

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
            cut = before_secret_cut_through(text, cut);
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

/// Where to cut `text` at `cut` or before, so no JWT or writ token is cut through: cut
/// short, one would lose the shape that gets it removed (a JWT cut before its second dot)
/// and its start would be kept. If the run of base64url and dots that `cut` falls inside
/// holds the start of one, the cut moves back to it. (A private key keeps its header, and
/// with it its shape, wherever it is cut.)
fn before_secret_cut_through(text: &str, cut: usize) -> usize {
    let b = text.as_bytes();
    let in_run = |c: u8| is_b64url(c) || c == b'.';
    if !b.get(cut).is_some_and(|c| in_run(*c)) {
        return cut;
    }
    let run_start = b[..cut]
        .iter()
        .rposition(|c| !in_run(*c))
        .map_or(0, |p| p + 1);
    let run = &text[run_start..cut];
    [JWT_START, "writ."]
        .iter()
        .filter_map(|p| run.find(p))
        .min()
        .map_or(cut, |at| run_start + at)
}

/// How a PEM block starts (a private key's is redacted).
const PEM_START: &str = "-----BEGIN ";
/// How a PEM block's end line starts.
const PEM_END: &str = "-----END ";
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
    while let Some(word) = swar::word_at(bytes, word_start) {
        if (swar::has_byte(word, b'B') || swar::has_byte(word, b'J') || swar::has_byte(word, b'w'))
            && (word_start..word_start + 8).any(found_at)
        {
            return true;
        }
        word_start += 8;
    }
    (word_start..bytes.len()).any(found_at)
}

/// The text with secrets removed, or `None` if it had none.
///
/// Every secret is found on its own, wherever it starts, and the union of what they cover
/// is replaced: a secret glued to another (`-`, `writ` and `eyJ` are all base64url, so a
/// private key or token can start inside a JWT-like run, and a JWT inside a token's secret)
/// is removed whole, never left in part past the end of the first. Removing one can also
/// complete the shape of another around it (a PEM label that ran into a removed block now
/// runs past it), so the result is scrubbed again until nothing is found. Each pass
/// removes at least one place where a secret can start and the placeholders hold none, so
/// that ends. One pass is linear in the text; nesting that needs many is only possible in
/// text built for it, and [`scrub`] cuts a field to [`MAX_FIELD_BYTES`] first.
pub fn scrub_text(text: &str) -> Option<String> {
    if !may_hold_secret(text) {
        return None;
    }
    let mut clean = redact_once(text)?;
    while let Some(again) = redact_once(&clean) {
        clean = again;
    }
    Some(clean)
}

/// One pass of [`scrub_text`]: every secret found in `text` replaced, or `None` if none.
fn redact_once(text: &str) -> Option<String> {
    let mut found = secrets(text);
    if found.is_empty() {
        return None;
    }
    found.sort_unstable_by_key(|f| f.start);
    let mut out = String::with_capacity(text.len());
    let mut kept_to = 0;
    let mut next = found.iter().peekable();
    while let Some(first) = next.next() {
        // This secret, and every one that starts before the redaction so far ends.
        let mut end = first.end;
        while let Some(more) = next.next_if(|f| f.start < end) {
            end = end.max(more.end);
        }
        out.push_str(&text[kept_to..first.start]);
        out.push_str(first.placeholder);
        kept_to = end;
    }
    out.push_str(&text[kept_to..]);
    Some(out)
}

/// A secret in a text: its byte range, and what replaces it.
struct Found {
    start: usize,
    end: usize,
    placeholder: &'static str,
}

/// Every secret in `text`, in no particular order; they may overlap. Every range starts
/// and ends at an ASCII byte, so at a character boundary.
fn secrets(text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    // Private keys: a PEM block whose label ends in `PRIVATE KEY`, to the end of its end
    // line, or of the text if it has none. Blocks may nest or share an end line; the end
    // line after each is looked for once per stretch of text (headers come in order, so
    // the places looked from only move forward).
    // (where it was looked for from, where it starts if there is one, where the block ends)
    let mut end_line: Option<(usize, Option<usize>, usize)> = None;
    for (start, _) in text.match_indices(PEM_START) {
        let label = start + PEM_START.len();
        let Some(label_len) = text[label..].find("-----") else {
            continue;
        };
        if !text[label..label + label_len].ends_with("PRIVATE KEY") {
            continue;
        }
        let header_end = label + label_len;
        let close = match end_line {
            Some((from, at, close)) if from <= header_end && at.is_none_or(|e| e >= header_end) => {
                close
            }
            _ => {
                let at = text[header_end..].find(PEM_END).map(|e| header_end + e);
                let close = at.map_or(text.len(), |e| {
                    let after = e + PEM_END.len();
                    text[after..]
                        .find("-----")
                        .map_or(text.len(), |c| after + c + 5)
                });
                end_line = Some((header_end, at, close));
                close
            }
        };
        found.push(Found {
            start,
            end: close,
            placeholder: "[redacted private key]",
        });
    }
    // writ tokens, whole: the id is a sensitive identifier too.
    for prefix in TOKEN_STARTS {
        for (start, _) in text.match_indices(prefix) {
            if let Some(len) = writ_token(&text[start..]) {
                found.push(Found {
                    start,
                    end: start + len,
                    placeholder: "[redacted writ token]",
                });
            }
        }
    }
    // JWTs, tried at the first `eyJ` of each base64url run only: one starting later in the
    // same run has the same rest of the run, then the same dots and parts, so it is a JWT
    // exactly when the first is, and ends where it does. Trying each would be quadratic in
    // a long run of `eyJ`.
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find(JWT_START) {
        let start = from + at;
        if let Some(len) = jwt(&text[start..]) {
            found.push(Found {
                start,
                end: start + len,
                placeholder: "[redacted jwt]",
            });
        }
        // Past this run (at least past the `eyJ`, which is base64url).
        from = start + bytes[start..].iter().take_while(|b| is_b64url(**b)).count();
    }
    found
}

/// Whether `text` holds anything shaped like a secret [`scrub_text`] removes: a writ token
/// (`writ.admin.` or `writ.join.`, hex, `.`, base64url), a compact JWS (`eyJ` and
/// base64url, `.`, base64url, `.`) or a PEM private key header. A plain scan from every
/// byte, sharing no code with the scrubber: slow, and plainly complete, so tests and the
/// fuzzer check the scrubber's output with it.
pub fn shaped_like_secret(text: &str) -> bool {
    let b = text.as_bytes();
    let b64url = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let run = |from: usize, ok: &dyn Fn(u8) -> bool| {
        b.get(from..)
            .map_or(0, |rest| rest.iter().take_while(|c| ok(**c)).count())
    };
    (0..b.len()).any(|i| {
        let rest = &b[i..];
        for prefix in [&b"writ.admin."[..], b"writ.join."] {
            if rest.starts_with(prefix) {
                let id = run(i + prefix.len(), &|c: u8| c.is_ascii_hexdigit());
                let dot = i + prefix.len() + id;
                if id > 0 && b.get(dot) == Some(&b'.') && run(dot + 1, &b64url) > 0 {
                    return true;
                }
            }
        }
        if rest.starts_with(b"eyJ") {
            let first = i + run(i, &b64url);
            if b.get(first) == Some(&b'.') {
                let second = run(first + 1, &b64url);
                if second > 0 && b.get(first + 1 + second) == Some(&b'.') {
                    return true;
                }
            }
        }
        // "-----BEGIN " is ASCII, so i + 11 is a character boundary.
        rest.starts_with(b"-----BEGIN ")
            && text[i + 11..]
                .find("-----")
                .is_some_and(|end| text[i + 11..i + 11 + end].ends_with("PRIVATE KEY"))
    })
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

    /// Secrets glued to one another: a private key or a token starting inside a run that
    /// starts with `eyJ` (`-` and `writ` are base64url), a JWT inside a token's secret, a
    /// JWT in a JWT's last part. Each is removed whole, not cut off where the first ends.
    #[test]
    fn glued_secrets_are_removed_whole() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----";
        let cases = [
            (format!("eyJ{pem} end"), "MIGHAgEAMBMG"),
            (format!("eyJabc.def.ghi{pem}"), "MIGHAgEAMBMG"),
            (
                "eyJxwrit.admin.0123abcd.SECRETPART".to_string(),
                "SECRETPART",
            ),
            (
                "eyJxwrit.join.0123abcd.SECRETPART x".to_string(),
                "SECRETPART",
            ),
            (
                "writ.join.0a.SECRETeyJx.PAYLOAD.SIGNATURE".to_string(),
                "PAYLOAD",
            ),
            ("eyJa.b.eyJhead.PAYLOAD.SIGNATURE".to_string(), "PAYLOAD"),
            (
                "writ.admin.0a.SEC-----BEGIN EC PRIVATE KEY-----\nKEYBODY".to_string(),
                "KEYBODY",
            ),
        ];
        for (text, secret) in cases {
            let clean = scrub_text(&text).unwrap_or_else(|| text.clone());
            assert!(!clean.contains(secret), "{text:?} -> {clean:?}");
            assert!(!shaped_like_secret(&clean), "{text:?} -> {clean:?}");
        }
        // Separate secrets keep their own placeholders; overlapping ones share the first's.
        assert_eq!(
            scrub_text(&format!("a eyJ{pem} b")).as_deref(),
            Some("a eyJ[redacted private key] b")
        );
        assert_eq!(
            scrub_text("eyJxwrit.admin.0123abcd.SECRETPART!").as_deref(),
            Some("[redacted jwt]!")
        );
    }

    /// A field cut to its limit through a JWT or a token is cut before it: cut short, it
    /// would no longer be removed, and its start would be kept.
    #[test]
    fn a_field_is_not_cut_through_a_secret() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtdXNlciJ9.c2lnbmF0dXJl";
        let token = "writ.join.0123456789abcdef01234567.Np1F5ehGDRhxsQC_HCFN48odLl_Tv";
        for secret in [jwt, token] {
            // The limit falls inside the secret, before its second dot for the JWT.
            let mut e = Event::new("t", "a", "none", "writ:Login", "r", Outcome::Denied);
            e.reason = Some(format!(
                "{} {secret} tail",
                "x".repeat(MAX_FIELD_BYTES - 30)
            ));
            assert!(scrub(&mut e));
            let reason = e.reason.unwrap();
            assert!(
                !reason.contains("eyJ") && !reason.contains("writ."),
                "{reason}"
            );
            assert!(reason.contains("…[cut from "), "{reason}");
        }
        // A cut through ordinary text, or at a secret's end, stays where it was.
        assert_eq!(before_secret_cut_through("abc def", 5), 5);
        assert_eq!(before_secret_cut_through("abc eyJa.b.c def", 14), 14);
        assert_eq!(before_secret_cut_through("abc eyJa.b.c def", 12), 12);
        assert_eq!(before_secret_cut_through("abc xeyJa.b.c", 10), 5);
    }

    /// Many private key headers sharing one distant end line, or none, cost one look for
    /// it each: a 1 MB field of them is not quadratic.
    #[test]
    fn nested_private_key_headers_are_scanned_in_linear_time() {
        let header = "-----BEGIN PRIVATE KEY-----";
        let unclosed = header.repeat(40_000);
        assert_eq!(
            scrub_text(&unclosed).as_deref(),
            Some("[redacted private key]")
        );
        let closed = format!(
            "{}{}-----END x{}",
            header.repeat(40_000),
            "y".repeat(100_000),
            "z".repeat(100_000)
        );
        assert_eq!(
            scrub_text(&closed).as_deref(),
            Some("[redacted private key]")
        );
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

    proptest::proptest! {
        /// Whatever the text (the secrets' pieces glued in any order, any text between),
        /// what scrubbing leaves holds nothing shaped like a secret, and a second pass
        /// changes nothing.
        #[test]
        fn scrubbed_text_holds_nothing_shaped_like_a_secret(
            text in "(-----BEGIN |PRIVATE KEY-----|EC |-----END |-----|eyJ|writ\\.admin\\.|writ\\.join\\.|writ|0a|[.]|[a-z]|-|_| |\n|é){0,48}"
        ) {
            let clean = scrub_text(&text).unwrap_or_else(|| text.clone());
            proptest::prop_assert!(!shaped_like_secret(&clean), "{:?} -> {:?}", text, clean);
            proptest::prop_assert!(scrub_text(&clean).is_none(), "{:?} -> {:?}", text, clean);
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
