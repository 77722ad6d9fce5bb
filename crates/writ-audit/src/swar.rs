//! Eight bytes at a time in a `u64` ("SIMD within a register"): the scans of event text
//! that look for a few byte values (JSON escaping, redaction's pre-check) skip the text
//! that holds none of them a word at a time.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The eight bytes of `bytes` from `at`, or `None` if fewer are left.
pub(crate) fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let w = bytes.get(at..at + 8)?;
    Some(u64::from_le_bytes([
        w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
    ]))
}

/// Whether any byte of `word` is below `n` (at most 0x80). Exact: `(x - n) & !x & 0x80`
/// per byte may mark the wrong byte after a borrow, but never marks a word that has none.
pub(crate) fn has_below(word: u64, n: u8) -> bool {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH != 0
}

/// Whether any byte of `word` is `b`: a zero byte of `word ^ b...`.
pub(crate) fn has_byte(word: u64, b: u8) -> bool {
    has_below(word ^ (ONES * u64::from(b)), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_byte_at_every_position_and_no_other() {
        for at in 0..8 {
            for b in [0u8, b'"', b'J', 0x7f, 0xff] {
                let mut bytes = [b'x'; 8];
                bytes[at] = b;
                let word = word_at(&bytes, 0).unwrap();
                assert!(has_byte(word, b), "{b:#x} at {at}");
                assert!(!has_byte(word, b'y'));
                assert_eq!(has_below(word, 0x20), b < 0x20, "{b:#x} at {at}");
            }
        }
        assert_eq!(word_at(b"1234567", 0), None);
    }
}
