//! The audit log's core, without I/O: the [`Event`] every part of writ records, the hash
//! chain that makes the log tamper-evident ([`chain`]), checkpoints signed by a server key
//! in the spirit of CloudTrail's digest files ([`checkpoint`]), redaction of secrets and
//! sensitive identifiers ([`redact`]), and least-privilege policies generated from the
//! record ([`generate`]).
//!
//! ```
//! use writ_audit::chain::{Head, append, verify_records};
//! use writ_audit::{Event, Outcome};
//!
//! let event = Event::new("2026-11-24T10:00:00.000Z", "spiffe://example.org/fn/orders",
//!     "x509Svid", "writ:RenewSvid", "spiffe://example.org/fn/orders", Outcome::Allowed);
//! let (records, head) = append(&Head::genesis(), &[event]).unwrap();
//! assert_eq!(head.seq, 1);
//! assert!(verify_records(&records).is_ok());
//! ```

pub mod chain;
pub mod checkpoint;
mod event;
pub mod generate;
pub mod json;
pub mod packed;
pub mod redact;
mod swar;

pub use event::{Decision, Event, Outcome};

/// The actions a gateway or an agent may report to the server: the calls they decide
/// themselves. Everything else (logins, issuance, secret reads, admin changes) is decided
/// and recorded by the server alone, so a reported event of another action is a forgery:
/// the server refuses it, and [`generate`] never takes one as evidence.
pub const REPORTABLE_ACTIONS: &[&str] = &["writ:Invoke"];

/// Whether a reporter may send events of `action` ([`REPORTABLE_ACTIONS`]).
pub fn reportable(action: &str) -> bool {
    REPORTABLE_ACTIONS.contains(&action)
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    hex_into(&mut out, bytes);
    out
}

/// Appends the lowercase hex of bytes to `out`.
pub fn hex_into(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for chunk in bytes.chunks(32) {
        let mut buf = [0u8; 64];
        for (i, b) in chunk.iter().enumerate() {
            buf[2 * i] = DIGITS[usize::from(b >> 4)];
            buf[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
        }
        // Only ASCII hex digits were written.
        out.push_str(std::str::from_utf8(&buf[..chunk.len() * 2]).unwrap_or_default());
    }
}

/// Bytes from lowercase or uppercase hex; `None` if it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
