//! Fuzzes the audit log's last line of defence: scrubbing secrets from event text must
//! never panic, and what it returns must hold no writ token secret, JWT or private key.
//! That is checked twice: a second pass finds nothing more, and `shaped_like_secret`, a
//! plain scan that shares no code with the scrubber (nor its fast pre-check), finds
//! nothing left.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_audit::redact::{scrub_text, shaped_like_secret};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let clean = scrub_text(&text).unwrap_or_else(|| text.to_string());
    assert!(
        scrub_text(&clean).is_none(),
        "a second pass changed {clean:?}"
    );
    assert!(
        !shaped_like_secret(&clean),
        "a secret was left in {clean:?}"
    );
});
