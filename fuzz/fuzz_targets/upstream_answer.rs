//! Fuzzes how the gateway reads an upstream's answer (`writ_gateway::http1`): the head,
//! the framing of its body and the chunked decoder. Nothing may panic, and the bytes
//! arriving in pieces of any size must read exactly as they do all at once: the same
//! head, the same body, the same bytes left after it. A split that changed where an
//! answer ends would hand one caller the tail of another's answer on a reused connection.
//!
//! The first input byte chooses a `HEAD` request (its low bit) and the piece size (the
//! rest); the other bytes are the answer.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use writ_gateway::http1::{Framing, read_answer};

/// What reading gave: the head as text, the body, and what was left after it.
type Read = Result<(String, Vec<u8>, Vec<u8>), String>;

/// Reads `wire` fed `step` bytes at a time.
fn read(wire: &[u8], head_request: bool, step: usize) -> Read {
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut feed = |buf: &mut BytesMut| -> bool {
        if fed == wire.len() {
            return false;
        }
        let next = (fed + step).min(wire.len());
        buf.extend_from_slice(&wire[fed..next]);
        fed = next;
        true
    };
    let answer = loop {
        match read_answer(&mut buf, head_request).map_err(|e| e.to_string())? {
            Some(answer) => break answer,
            None if feed(&mut buf) => {}
            None => return Err("the head is incomplete".into()),
        }
    };
    assert!(!(answer.keep_alive && answer.framing == Framing::UntilClose));
    let head = format!(
        "{} {:?} {:?} {}",
        answer.status, answer.headers, answer.framing, answer.keep_alive
    );
    let until_close = answer.framing == Framing::UntilClose;
    let mut body = Vec::new();
    match answer.framing {
        Framing::Length(n) => {
            while (buf.len() as u64) < n {
                if !feed(&mut buf) {
                    return Err("the body is short".into());
                }
            }
            body.extend_from_slice(&buf.split_to(n as usize));
        }
        Framing::Chunked(mut decoder) => loop {
            match decoder.decode(&mut buf).map_err(|e| e.to_string())? {
                Some(data) => body.extend_from_slice(&data),
                None if decoder.is_done() => break,
                None if feed(&mut buf) => {}
                None => return Err("the body is short".into()),
            }
        },
        Framing::UntilClose => while feed(&mut buf) {},
    }
    while feed(&mut buf) {}
    if until_close {
        body = buf.split().to_vec();
    }
    Ok((head, body, buf.to_vec()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, wire)) = data.split_first() else {
        return;
    };
    let head_request = first & 1 == 1;
    let step = usize::from(first >> 1) + 1;
    let whole = read(wire, head_request, wire.len().max(1));
    let pieces = read(wire, head_request, step);
    let bytes = read(wire, head_request, 1);
    if let Ok(whole) = &whole {
        assert_eq!(pieces.as_ref(), Ok(whole), "pieces of {step}");
        assert_eq!(bytes.as_ref(), Ok(whole), "single bytes");
    } else {
        assert!(pieces.is_err() && bytes.is_err());
    }
});
