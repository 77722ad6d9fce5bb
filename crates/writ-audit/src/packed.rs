//! How a segment's events are stored: their JSON lines compressed with LZ4 (the block
//! format, after a 4-byte little-endian length of the text).
//!
//! A gateway's events repeat the same keys and mostly the same values, so a batch of them
//! compresses about 17 times, and the store writes (and copies, and checkpoints) that much
//! less: most of what appending them cost. Compression is not part of the chain: hashes
//! are over the text, so what is verified is what was recorded, however it is stored.
//!
//! The stored bytes are untrusted on the way back in (someone with write access to the
//! database may have altered them): [`unpack`] checks the declared length against what
//! the stored bytes could decode to before it allocates, and refuses anything that does
//! not decode to exactly that much UTF-8.

/// The codec of events stored compressed.
pub const LZ4: &str = "lz4";
/// The codec of events stored as their text (segments written before compression).
pub const PLAIN: &str = "none";

/// LZ4 writes at least one byte for every 255 it stands for: a declared length beyond
/// that is not what was compressed. So [`unpack`] never allocates more than 255 times the
/// bytes stored.
pub const MAX_RATIO: usize = 255;

/// Why stored events cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnpackError {
    /// The codec is not one this version writes or reads.
    #[error("unknown codec {0:?}")]
    UnknownCodec(String),
    /// Fewer than the 4 bytes of the length.
    #[error("{0} bytes: too short to hold the length of the text")]
    Truncated(usize),
    /// The declared length is more than the stored bytes could decode to.
    #[error("declares {declared} bytes of text in {stored} stored bytes")]
    Implausible {
        /// The declared length of the text.
        declared: usize,
        /// How many bytes were stored.
        stored: usize,
    },
    /// The compressed bytes do not decode to the declared length.
    #[error("not valid LZ4 for {0} bytes of text")]
    Corrupt(usize),
    /// The text is not UTF-8.
    #[error("the text is not UTF-8")]
    NotUtf8,
}

/// `text` compressed, as stored with codec [`LZ4`].
pub fn pack(text: &str) -> Vec<u8> {
    lz4_flex::block::compress_prepend_size(text.as_bytes())
}

/// The text stored as `stored` with `codec`.
pub fn unpack(codec: &str, stored: &[u8]) -> Result<String, UnpackError> {
    let bytes = match codec {
        PLAIN => stored.to_vec(),
        LZ4 => {
            let (length, compressed) = stored
                .split_first_chunk::<4>()
                .ok_or(UnpackError::Truncated(stored.len()))?;
            let declared = u32::from_le_bytes(*length) as usize;
            if declared > compressed.len().saturating_mul(MAX_RATIO) {
                return Err(UnpackError::Implausible {
                    declared,
                    stored: stored.len(),
                });
            }
            let mut text = vec![0u8; declared];
            match lz4_flex::block::decompress_into(compressed, &mut text) {
                Ok(n) if n == declared => text,
                _ => return Err(UnpackError::Corrupt(declared)),
            }
        }
        other => return Err(UnpackError::UnknownCodec(other.to_string())),
    };
    String::from_utf8(bytes).map_err(|_| UnpackError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize) -> String {
        (0..n)
            .map(|i| format!(r#"{{"time":"2026-11-24T10:00:00Z","actor":"spiffe://example.org/fn/f{i}","outcome":"allowed"}}"#))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn packed_text_unpacks_to_itself_and_is_smaller() {
        // The most compressible text there is, too: LZ4's own limit, not ours.
        let same = "a".repeat(1 << 20);
        for text in [String::new(), "x".into(), "é\n{}".into(), lines(2000), same] {
            let packed = pack(&text);
            assert_eq!(unpack(LZ4, &packed).unwrap(), text);
        }
        let text = lines(2000);
        let packed = pack(&text);
        assert!(
            packed.len() * 5 < text.len(),
            "{} of {}",
            packed.len(),
            text.len()
        );
        assert_eq!(unpack(PLAIN, text.as_bytes()).unwrap(), text);
    }

    #[test]
    fn altered_stored_bytes_are_refused_not_trusted() {
        let packed = pack(&lines(50));
        assert_eq!(unpack(LZ4, &packed[..3]), Err(UnpackError::Truncated(3)));
        // A length beyond what the bytes can stand for: refused before anything is
        // allocated for it.
        let mut huge = packed.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            unpack(LZ4, &huge),
            Err(UnpackError::Implausible { declared, .. }) if declared == u32::MAX as usize
        ));
        // A length that is plausible but wrong, one way and the other.
        for delta in [-1i64, 1] {
            let mut wrong = packed.clone();
            let declared = u32::from_le_bytes(wrong[..4].try_into().unwrap()) as i64 + delta;
            wrong[..4].copy_from_slice(&(declared as u32).to_le_bytes());
            assert_eq!(
                unpack(LZ4, &wrong),
                Err(UnpackError::Corrupt(declared as usize))
            );
        }
        // Cut short.
        assert!(unpack(LZ4, &packed[..packed.len() - 1]).is_err());
        assert_eq!(
            unpack("zstd", &packed),
            Err(UnpackError::UnknownCodec("zstd".into()))
        );
        assert_eq!(unpack(PLAIN, &[0xff, 0xfe]), Err(UnpackError::NotUtf8));
        assert_eq!(unpack(LZ4, &pack("\u{7f}")).unwrap(), "\u{7f}");
    }

    #[test]
    fn any_bytes_unpack_or_are_refused() {
        // Every prefix, and every single-byte change, of a real stored value: an error or
        // some text, never a panic.
        let packed = pack(&lines(20));
        for end in 0..packed.len() {
            let _ = unpack(LZ4, &packed[..end]);
        }
        for at in 0..packed.len() {
            for bit in 0..8 {
                let mut changed = packed.clone();
                changed[at] ^= 1 << bit;
                let _ = unpack(LZ4, &changed);
            }
        }
    }
}
