//! Fuzzes reading back a stored audit segment's events, which someone with write access to
//! the database may have altered: whatever the bytes, `unpack` returns text or an error,
//! never panics, and never more text than LZ4 could make of the bytes; and text it packs
//! unpacks to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_audit::packed::{LZ4, MAX_RATIO, PLAIN, pack, unpack};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = unpack(LZ4, data) {
        assert!(text.len() <= data.len() * MAX_RATIO);
        assert_eq!(unpack(LZ4, &pack(&text)).as_deref(), Ok(text.as_str()));
    }
    let _ = unpack(PLAIN, data);
});
