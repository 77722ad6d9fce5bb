//! The hash chain: each stored event commits to the one before it, so editing, deleting,
//! inserting or reordering any event breaks every link after it.
//!
//! `hash(n) = SHA-256("writ-audit-v1" || hash(n-1) || n as 8 bytes big-endian || event JSON)`,
//! with 32 zero bytes before the first event. Sequence numbers start at 1 and have no gaps.

use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};

use crate::{Event, hex, unhex};

const DOMAIN: &[u8] = b"writ-audit-v1";

/// The end of the chain: the last sequence number and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The last event's sequence number (0 before the first).
    pub seq: i64,
    /// The last event's hash (zeros before the first).
    pub hash: [u8; 32],
}

impl Head {
    /// The head of an empty log.
    pub fn genesis() -> Head {
        Head {
            seq: 0,
            hash: [0; 32],
        }
    }

    /// A head from stored values; `None` if the hash is not 32 bytes of hex.
    pub fn from_stored(seq: i64, hash_hex: &str) -> Option<Head> {
        let hash: [u8; 32] = unhex(hash_hex)?.try_into().ok()?;
        Some(Head { seq, hash })
    }
}

/// One stored event with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Its position, from 1.
    pub seq: i64,
    /// The event's JSON, exactly as hashed.
    pub event: String,
    /// The previous record's hash, in hex.
    pub prev_hash: String,
    /// This record's hash, in hex.
    pub hash: String,
}

/// Why a chain does not verify: the first record that breaks it, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {seq}: {problem}")]
pub struct Break {
    /// The sequence number where the chain breaks.
    pub seq: i64,
    /// What is wrong there.
    pub problem: String,
}

/// The hash linking `event_json` at `seq` after `prev`.
pub fn link(prev: &[u8; 32], seq: i64, event_json: &str) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    ctx.update(DOMAIN);
    ctx.update(prev);
    ctx.update(&seq.to_be_bytes());
    ctx.update(event_json.as_bytes());
    let digest = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Chains `events` after `head`; returns the records to store and the new head.
pub fn append(head: &Head, events: &[Event]) -> Result<(Vec<Record>, Head), Break> {
    let mut current = *head;
    let mut records = Vec::with_capacity(events.len());
    let mut prev_hex = hex(&current.hash);
    for event in events {
        let seq = current.seq.checked_add(1).ok_or(Break {
            seq: current.seq,
            problem: "the sequence number overflowed".into(),
        })?;
        let json = event.to_json();
        let hash = link(&current.hash, seq, &json);
        let hash_hex = hex(&hash);
        records.push(Record {
            seq,
            event: json,
            prev_hash: std::mem::replace(&mut prev_hex, hash_hex.clone()),
            hash: hash_hex,
        });
        current = Head { seq, hash };
    }
    Ok((records, current))
}

/// Consecutive events stored together, as the server stores each batch it appends: the
/// hash before the first event, each event's hash, and each event's JSON. It holds the same
/// text as the [`Record`]s it stands for ([`Segment::records`]), in one row instead of
/// one per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The first event's sequence number.
    pub first_seq: i64,
    /// The hash before the first event, in hex.
    pub prev_hash: String,
    /// Each event's hash, 32 bytes each, one after the other.
    pub hashes: Vec<u8>,
    /// Each event's JSON, exactly as hashed, joined by newlines (JSON text holds none).
    pub events: String,
}

/// Bytes of one hash.
const HASH_LEN: usize = 32;

impl Segment {
    /// The records it holds, in order, as stored: line `i` of `events` is event
    /// `first_seq + i`, its hash is the `i`-th hash in `hashes` (empty if there are fewer),
    /// and its `prev_hash` is the segment's for the first line, else the hash stored
    /// before it. Nothing is recomputed, so whatever was altered in the store,
    /// [`verify_from`] finds it at the first event it touched.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        let mut prev = self.prev_hash.clone();
        self.events.split('\n').enumerate().map(move |(i, event)| {
            let hash = self
                .hashes
                .get(i * HASH_LEN..(i + 1) * HASH_LEN)
                .map(hex)
                .unwrap_or_default();
            Record {
                seq: self.first_seq.saturating_add(i as i64),
                event: event.to_string(),
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            }
        })
    }
}

/// Chains `events` (at least one) after `head` into one segment; returns it and the new
/// head. Its records are those [`append`] returns for the same events.
pub fn append_segment(head: &Head, events: &[Event]) -> Result<(Segment, Head), Break> {
    if events.is_empty() {
        return Err(Break {
            seq: head.seq,
            problem: "a segment needs at least one event".into(),
        });
    }
    let mut current = *head;
    let mut segment = Segment {
        first_seq: 0,
        prev_hash: hex(&head.hash),
        hashes: Vec::with_capacity(events.len() * HASH_LEN),
        events: String::with_capacity(events.len() * 384),
    };
    for (i, event) in events.iter().enumerate() {
        let seq = current.seq.checked_add(1).ok_or(Break {
            seq: current.seq,
            problem: "the sequence number overflowed".into(),
        })?;
        if i > 0 {
            segment.events.push('\n');
        }
        let start = segment.events.len();
        event.write_json(&mut segment.events);
        let hash = link(&current.hash, seq, &segment.events[start..]);
        segment.hashes.extend_from_slice(&hash);
        current = Head { seq, hash };
    }
    segment.first_seq = head.seq + 1;
    Ok((segment, current))
}

/// Verifies records in the order given, from the start of the log: sequence numbers 1, 2,
/// 3, ... without gaps, each linked to the one before, each hash recomputed from its
/// event, each event readable. Returns the head.
pub fn verify_records(records: &[Record]) -> Result<Head, Break> {
    verify_from(&Head::genesis(), records)
}

/// Verifies records that continue the chain after `start`.
pub fn verify_from(start: &Head, records: &[Record]) -> Result<Head, Break> {
    let mut current = *start;
    for record in records {
        let expected = current.seq + 1;
        if record.seq != expected {
            return Err(Break {
                seq: expected.min(record.seq),
                problem: if record.seq > expected {
                    format!(
                        "missing: the next stored event is {} (deleted events?)",
                        record.seq
                    )
                } else {
                    format!(
                        "out of order or duplicated: found {} after {}",
                        record.seq, current.seq
                    )
                },
            });
        }
        if record.prev_hash != hex(&current.hash) {
            return Err(Break {
                seq: record.seq,
                problem: "its link to the previous event does not match (an event inserted, removed or reordered before it?)".into(),
            });
        }
        let hash = link(&current.hash, record.seq, &record.event);
        if record.hash != hex(&hash) {
            return Err(Break {
                seq: record.seq,
                problem: "its hash does not match its content (the event was edited)".into(),
            });
        }
        if serde_json::from_str::<Event>(&record.event).is_err() {
            return Err(Break {
                seq: record.seq,
                problem: "its content is not an audit event".into(),
            });
        }
        current = Head {
            seq: record.seq,
            hash,
        };
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                Event::new(
                    "2026-11-24T10:00:00Z",
                    &format!("spiffe://example.org/fn/f{i}"),
                    "x509Svid",
                    "writ:RenewSvid",
                    "r",
                    Outcome::Allowed,
                )
            })
            .collect()
    }

    fn log(n: usize) -> Vec<Record> {
        append(&Head::genesis(), &events(n)).unwrap().0
    }

    #[test]
    fn appending_in_batches_equals_appending_at_once() {
        let all = events(5);
        let (first, head) = append(&Head::genesis(), &all[..2]).unwrap();
        let (rest, end) = append(&head, &all[2..]).unwrap();
        let (once, end_once) = append(&Head::genesis(), &all).unwrap();
        assert_eq!([first, rest].concat(), once);
        assert_eq!(end, end_once);
        assert_eq!(verify_records(&once).unwrap(), end);
        assert_eq!(verify_from(&head, &once[2..]).unwrap(), end);
    }

    #[test]
    fn a_segment_holds_the_records_append_makes() {
        let all = events(4);
        let (first, head) = append_segment(&Head::genesis(), &all[..1]).unwrap();
        let (rest, end) = append_segment(&head, &all[1..]).unwrap();
        let (records, end_records) = append(&Head::genesis(), &all).unwrap();
        assert_eq!(end, end_records);
        assert_eq!((first.first_seq, rest.first_seq), (1, 2));
        let stored: Vec<Record> = first.records().chain(rest.records()).collect();
        assert_eq!(stored, records);
        assert!(!rest.events.contains("\n\n") && rest.hashes.len() == 3 * HASH_LEN);
        assert!(append_segment(&end, &[]).is_err());
    }

    /// Whatever is altered inside a stored segment, the records it gives break at the first
    /// event the change touched.
    #[test]
    fn tampering_inside_a_segment_breaks_at_the_first_touched_event() {
        let (good, _) = append_segment(&Head::genesis(), &events(6)).unwrap();
        let verify = |s: &Segment| verify_records(&s.records().collect::<Vec<_>>());
        assert!(verify(&good).is_ok());
        let lines: Vec<&str> = good.events.split('\n').collect();
        let hash = |i: usize| &good.hashes[i * HASH_LEN..(i + 1) * HASH_LEN];
        let rebuild = |order: &[usize]| Segment {
            events: order
                .iter()
                .map(|&i| lines[i])
                .collect::<Vec<_>>()
                .join("\n"),
            hashes: order.iter().flat_map(|&i| hash(i)).copied().collect(),
            ..good.clone()
        };
        // Edited.
        let mut edited = good.clone();
        edited.events = edited.events.replacen("f3", "f9", 1);
        assert_eq!(verify(&edited).unwrap_err().seq, 4);
        // Deleted, with its hash.
        assert_eq!(verify(&rebuild(&[0, 1, 3, 4, 5])).unwrap_err().seq, 3);
        // Swapped, with their hashes.
        assert_eq!(verify(&rebuild(&[0, 4, 2, 3, 1, 5])).unwrap_err().seq, 2);
        // Hashes cut short: the first event without one.
        let mut short = good.clone();
        short.hashes.truncate(2 * HASH_LEN);
        assert_eq!(verify(&short).unwrap_err().seq, 3);
        // A newline added inside an event splits it.
        let mut split = good.clone();
        split.events = split.events.replacen("\"actor\"", "\n\"actor\"", 1);
        assert_eq!(verify(&split).unwrap_err().seq, 1);
        // The link before the first event.
        let mut relinked = good.clone();
        relinked.prev_hash = hex(&[1; 32]);
        assert_eq!(verify(&relinked).unwrap_err().seq, 1);
    }

    #[test]
    fn every_kind_of_tampering_is_found_at_the_first_broken_event() {
        let good = log(6);
        // Edited content.
        let mut edited = good.clone();
        edited[3].event = edited[3].event.replace("f3", "f9");
        assert_eq!(verify_records(&edited).unwrap_err().seq, 4);
        // Edited content with a recomputed hash: the next link breaks.
        let mut rehashed = good.clone();
        rehashed[3].event = rehashed[3].event.replace("f3", "f9");
        let prev: [u8; 32] = unhex(&rehashed[3].prev_hash).unwrap().try_into().unwrap();
        rehashed[3].hash = hex(&link(&prev, 4, &rehashed[3].event));
        assert_eq!(verify_records(&rehashed).unwrap_err().seq, 5);
        // Deleted.
        let mut deleted = good.clone();
        deleted.remove(2);
        let b = verify_records(&deleted).unwrap_err();
        assert_eq!(b.seq, 3, "{b}");
        assert!(b.problem.contains("missing"), "{b}");
        // Inserted (a copy, renumbered to fit).
        let mut inserted = good.clone();
        let mut extra = good[1].clone();
        extra.seq = 3;
        inserted.insert(2, extra);
        for (i, r) in inserted.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
        }
        assert_eq!(verify_records(&inserted).unwrap_err().seq, 3);
        // Reordered.
        let mut reordered = good.clone();
        reordered.swap(1, 4);
        assert_eq!(verify_records(&reordered).unwrap_err().seq, 2);
        let mut renumbered = reordered.clone();
        renumbered[1].seq = 2;
        renumbered[4].seq = 5;
        assert_eq!(verify_records(&renumbered).unwrap_err().seq, 2);
    }
}
