//! JSON text written by hand, byte for byte as serde_json writes it, for the two places
//! that write audit events by the thousand a second: [`crate::Event::to_json`] (what the
//! chain hashes) and the gateway's batches. serde's generic path costs several times as
//! much per event; the tests compare the bytes with serde_json's.
//!
//! And [`from_bytes`]: serde_json's reading of a byte body, with the text checked as
//! UTF-8 once rather than string by string.

/// `bytes` read as JSON into `T`: what `serde_json::from_slice` returns, for less work.
/// `from_slice` checks that each string it reads is UTF-8, one string at a time: on a
/// batch of audit events (a dozen short strings each), `benches/batch_parse.rs` measured
/// this 12 to 29 % faster, depending on the machine. Here the whole body is checked in one
/// pass and then read as text. A body that is not UTF-8 is read by `from_slice`, so its
/// error says where, as before.
pub fn from_bytes<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// `s` as a JSON string, quoted.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    contents(out, s);
    out.push('"');
}

/// `s` escaped for inside a JSON string: `"`, `\` and control characters, as serde_json
/// escapes them (the short forms where JSON has them, else `\u00xx`); everything else,
/// including non-ASCII text, as it is.
pub fn contents(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    // Eight bytes at a time past those that need no escape (nearly all of them).
    let mut clean = 0;
    while let Some(word) = crate::swar::word_at(bytes, clean) {
        if needs_escape(word) {
            break;
        }
        clean += 8;
    }
    // Every byte escaped is ASCII, so `start` and `i` are always character boundaries.
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x00..=0x1f => 0,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        start = i + 1;
        out.push('\\');
        if short != 0 {
            out.push(char::from(short));
        } else {
            out.push_str("u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out.push_str(&s[start..]);
}

/// Whether any of the eight bytes in `word` is below 0x20, `"` or `\`.
fn needs_escape(word: u64) -> bool {
    use crate::swar::{has_below, has_byte};
    has_below(word, 0x20) | has_byte(word, b'"') | has_byte(word, b'\\')
}

/// `n` in decimal.
pub fn number(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn strings_and_numbers_are_serde_jsons(
            s in "\\PC*|[\\x00-\\x20\"\\\\\\x7f\u{80}-\u{10ffff}]{0,12}",
            n in any::<u64>(),
        ) {
            let mut out = String::new();
            string(&mut out, &s);
            prop_assert_eq!(out, serde_json::to_string(&s).unwrap());
            let mut out = String::new();
            number(&mut out, n);
            prop_assert_eq!(out, n.to_string());
        }
    }

    proptest! {
        /// Any bytes, JSON or not, UTF-8 or not: the same value, or the same error, as
        /// `serde_json::from_slice`.
        #[test]
        fn from_bytes_reads_as_from_slice_does(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64),
                "[\\[\\]{}\",:0-9a-z\\\\ \t\né😀]{0,40}".prop_map(String::into_bytes),
                (any::<u64>(), "\\PC{0,12}", any::<Option<bool>>()).prop_map(|(n, s, b)| {
                    serde_json::to_vec(&serde_json::json!({"n": n, "s": s, "b": b})).unwrap()
                }),
            ],
        ) {
            let fast = from_bytes::<serde_json::Value>(&bytes).map_err(|e| e.to_string());
            let slice =
                serde_json::from_slice::<serde_json::Value>(&bytes).map_err(|e| e.to_string());
            prop_assert_eq!(fast, slice);
        }
    }

    #[test]
    fn from_bytes_reads_events_and_says_where_a_body_is_not_utf8() {
        let e = from_bytes::<serde_json::Value>(b"{\"a\": \"\xff\"}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid unicode code point at line 1 column 8"
        );
        let events: Vec<crate::Event> = from_bytes(
            br#"[{"time":"2026-11-24T10:00:00Z","actor":"spiffe://x/fn/a","authenticatedBy":"mtls","action":"writ:Invoke","resource":"writ:fn/b","outcome":"allowed","reason":"GET /caf\u00e9 -> 200"}]"#,
        )
        .unwrap();
        assert_eq!(events[0].reason.as_deref(), Some("GET /café -> 200"));
    }

    #[test]
    fn escapes_are_found_in_every_position_of_a_word() {
        for at in 0..20 {
            for special in ['"', '\\', '\n', '\u{1}', '\u{1f}'] {
                let mut s: String = "abcdefghijklmnopqrst".into();
                s.replace_range(at..at + 1, &special.to_string());
                let mut out = String::new();
                string(&mut out, &s);
                assert_eq!(out, serde_json::to_string(&s).unwrap(), "{s:?}");
            }
        }
        for clean in [
            "\u{7f} !#~",
            "é€😀 spiffe://x/y",
            "\u{20}\u{21}\u{5b}\u{5d}",
        ] {
            assert!(!needs_escape(u64::from_le_bytes(
                format!("{clean:<8}").as_bytes()[..8].try_into().unwrap()
            )));
        }
    }

    #[test]
    fn every_control_character() {
        for b in 0u8..0x80 {
            let s = (b as char).to_string();
            let mut out = String::new();
            string(&mut out, &s);
            assert_eq!(out, serde_json::to_string(&s).unwrap());
        }
    }
}

/// An object in a JSON text that names the same key twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: the key {key:?} is given more than once")]
pub struct DuplicateKey {
    /// Where the object is, as a JSON path (`$`, `$.policies[0].Statement[1]`).
    pub path: String,
    /// The key given twice.
    pub key: String,
}

/// Refuses JSON text in which an object names a key twice. Parsers disagree on which of
/// the two counts (serde_json keeps the last, many others the first), so a body that one
/// reader validates and another acts on must never have two: the smuggling of a value past
/// a check. Errors that are not about duplicates (the text is not JSON) are left to the
/// reader that follows, which says where; this returns `Ok` for them.
pub fn no_duplicate_keys(text: &str) -> Result<(), DuplicateKey> {
    let found = std::cell::Cell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let _ = serde::de::DeserializeSeed::deserialize(Walk(&Segment::Root, &found), &mut de);
    match found.take() {
        Some(duplicate) => Err(duplicate),
        None => Ok(()),
    }
}

/// Where a value sits, built only when a duplicate is found.
enum Segment<'a> {
    Root,
    Key(&'a Segment<'a>, &'a str),
    Index(&'a Segment<'a>, usize),
}

impl Segment<'_> {
    fn path(&self) -> String {
        match self {
            Segment::Root => "$".to_string(),
            Segment::Key(parent, key) => {
                let simple = !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if simple {
                    format!("{}.{key}", parent.path())
                } else {
                    let mut quoted = String::new();
                    string(&mut quoted, key);
                    format!("{}[{quoted}]", parent.path())
                }
            }
            Segment::Index(parent, i) => format!("{}[{i}]", parent.path()),
        }
    }
}

/// Walks a JSON value; the first duplicate found goes into the cell (and stops the walk).
struct Walk<'a>(&'a Segment<'a>, &'a std::cell::Cell<Option<DuplicateKey>>);

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Walk(&Segment::Index(self.0, i), self.1))?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Objects are small: a list is faster than a set up to a few dozen keys.
        let mut seen: Vec<std::borrow::Cow<'de, str>> = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if seen.contains(&key) {
                self.1.set(Some(DuplicateKey {
                    path: self.0.path(),
                    key: key.into_owned(),
                }));
                return Err(serde::de::Error::custom("a duplicate key"));
            }
            map.next_value_seed(Walk(&Segment::Key(self.0, &key), self.1))?;
            seen.push(key);
        }
        Ok(())
    }
}

/// An object's key, borrowed from the text unless it has escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod duplicate_tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_found_with_its_path() {
        assert_eq!(no_duplicate_keys(r#"{"a":1,"b":[{"c":2}]}"#), Ok(()));
        assert_eq!(no_duplicate_keys(r#"[1, "two", null, true, 2.5]"#), Ok(()));
        let err = no_duplicate_keys(r#"{"a":1,"a":2}"#).unwrap_err();
        assert_eq!((err.path.as_str(), err.key.as_str()), ("$", "a"));
        let err = no_duplicate_keys(
            r#"{"policies":[{"Statement":[{"Effect":"Allow"},{"Effect":"Deny","Effect":"Allow"}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.path, "$.policies[0].Statement[1]");
        assert_eq!(err.key, "Effect");
        assert!(err.to_string().contains("more than once"), "{err}");
        // Escaped spellings of one key are the same key.
        let err = no_duplicate_keys(r#"{"x":{"ke\u0079":1,"key":2}}"#).unwrap_err();
        assert_eq!((err.path.as_str(), err.key.as_str()), ("$.x", "key"));
        let err = no_duplicate_keys(r#"{"a b":{"q":1,"q":2}}"#).unwrap_err();
        assert_eq!(err.path, r#"$["a b"]"#);
        // Not JSON: left to the reader that follows.
        assert_eq!(no_duplicate_keys("{not json"), Ok(()));
        // The same key in sibling objects is fine.
        assert_eq!(no_duplicate_keys(r#"[{"a":1},{"a":2}]"#), Ok(()));
    }
}
