//! The gateway's audit events: one per request, kept compact on the request path and
//! written out as `writ_audit::Event` JSON only when sent to the server in batches.
//!
//! A request appends a [`Record`] (shared strings and numbers, the path copied once) to
//! its worker's shard of the [`AuditBuffer`] under a lock no other core touches; the
//! sender takes every shard ten times a second, sends once a second or when half a
//! batch waits, and writes the records straight into the request body ([`batch_json`]),
//! in exactly the JSON of the [`Event`] they stand for.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use writ_audit::json;
use writ_audit::{Decision, Event, Outcome};

use writ_client::secrets::FetchError;

use crate::metrics::Metrics;
use crate::sync::ServerClient;

/// The most events held while the server is unreachable; older ones are dropped (and
/// counted) beyond it.
pub const MAX_PENDING_EVENTS: usize = 100_000;

/// The most events sent in one request to the server (its limit: `POST /v1/audit/events`
/// takes up to 10,000). Under load a gateway records tens of thousands of requests a
/// second, and each request to the server is a commit there: with batches of 1,000 the
/// sender fell behind and the buffer overflowed.
const BATCH: usize = 10_000;

/// A batch stops growing once its body is this large: half the server's 16 MiB limit, so
/// the record that crosses it (its path at most hyper's request-line limit) cannot take
/// the body past the server's.
const BATCH_BYTES: usize = 8 * 1024 * 1024;

/// The resource of the event of a request no route took: its path was refused (one an
/// upstream could read as another), or no route matches its host and path. The gateway's
/// token needs `writ:PutAuditEvents` on it to report them; without it, the server
/// refuses batches that hold such events, and the gateway sends the rest without them
/// (see `without_unrouted`).
pub const UNROUTED: &str = "writ:gateway/no-route";

/// What happened to a request, for the event's `reason`.
#[derive(Debug, Clone)]
pub enum Reason {
    /// Forwarded; the upstream answered `status`: `GET /x -> 200`.
    Forwarded {
        /// The request's method.
        method: hyper::Method,
        /// The request's path.
        path: String,
        /// The upstream's status.
        status: u16,
    },
    /// Refused or failed at the gateway: `GET /x: why`.
    Refused {
        /// The request's method.
        method: hyper::Method,
        /// The request's path.
        path: String,
        /// Why (may say more than the caller was told).
        why: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Forwarded {
                method,
                path,
                status,
            } => write!(f, "{method} {path} -> {status}"),
            Reason::Refused { method, path, why } => write!(f, "{method} {path}: {why}"),
        }
    }
}

/// One request's audit event, as the request path records it: a `writ:Invoke` of
/// `resource` by `actor`.
#[derive(Debug, Clone)]
pub struct Record {
    /// When the gateway decided.
    pub at: SystemTime,
    /// Who: a SPIFFE ID, `apikey:ID`, `webhook:ROUTE` or `anonymous`.
    pub actor: Arc<str>,
    /// How the actor authenticated (`mtls`, `jwt`, …), empty when it did not.
    pub authenticated_by: &'static str,
    /// `writ:fn/FUNCTION`.
    pub resource: Arc<str>,
    /// How it ended.
    pub outcome: Outcome,
    /// The decision, when policy made one.
    pub decision: Option<Decision>,
    /// The intentions that decided an explicit deny (see
    /// [`crate::intentions::Denial::matched`]); empty otherwise.
    pub matched: Vec<String>,
    /// What happened.
    pub reason: Reason,
    /// The caller's address.
    pub source: Arc<str>,
    /// How long the gateway took, in microseconds.
    pub latency_us: u64,
}

impl Record {
    /// The event this record stands for, recorded by `node`.
    pub fn to_event(&self, node: &str) -> Event {
        let mut e = Event::new(
            &rfc3339(self.at),
            &self.actor,
            self.authenticated_by,
            "writ:Invoke",
            &self.resource,
            self.outcome,
        );
        e.node = node.to_string();
        e.decision = self.decision;
        e.matched.clone_from(&self.matched);
        e.reason = Some(self.reason.to_string());
        e.source = Some(self.source.to_string());
        e.latency_us = Some(self.latency_us);
        e
    }
}

fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The body of `POST /v1/audit/events` for `records`: `{"events":[...]}`, each element
/// the JSON of [`Record::to_event`] as serde_json writes it, written straight from the
/// records. Under load every request adds an event, so this skips serde's per-field
/// dispatch and `fmt` (three times the instructions), and formats the date and time once
/// per second of events rather than once per event.
///
/// Records are written until the body reaches `max_bytes` (always at least one); returns
/// the body and how many records it holds.
pub fn batch_json(node: &str, records: &[Record], max_bytes: usize) -> (Vec<u8>, usize) {
    let mut out = String::with_capacity(16 + records.len() * 320);
    let mut clock = Clock::default();
    let mut written = 0;
    out.push_str("{\"events\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            if out.len() >= max_bytes {
                break;
            }
            out.push(',');
        }
        written += 1;
        out.push_str("{\"time\":\"");
        clock.write(&mut out, r.at);
        out.push('"');
        if !node.is_empty() {
            out.push_str(",\"node\":");
            json::string(&mut out, node);
        }
        out.push_str(",\"actor\":");
        json::string(&mut out, &r.actor);
        out.push_str(",\"authenticatedBy\":");
        json::string(&mut out, r.authenticated_by);
        out.push_str(",\"action\":\"writ:Invoke\",\"resource\":");
        json::string(&mut out, &r.resource);
        if let Some(d) = r.decision {
            out.push_str(",\"decision\":\"");
            out.push_str(d.as_str());
            out.push('"');
        }
        if !r.matched.is_empty() {
            out.push_str(",\"matched\":[");
            for (i, m) in r.matched.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json::string(&mut out, m);
            }
            out.push(']');
        }
        out.push_str(",\"outcome\":\"");
        out.push_str(r.outcome.as_str());
        out.push_str("\",\"reason\":\"");
        let (Reason::Forwarded { method, path, .. } | Reason::Refused { method, path, .. }) =
            &r.reason;
        json::contents(&mut out, method.as_str());
        out.push(' ');
        json::contents(&mut out, path);
        match &r.reason {
            Reason::Forwarded { status, .. } => {
                out.push_str(" -> ");
                json::number(&mut out, u64::from(*status));
            }
            Reason::Refused { why, .. } => {
                out.push_str(": ");
                json::contents(&mut out, why);
            }
        }
        out.push_str("\",\"source\":");
        json::string(&mut out, &r.source);
        out.push_str(",\"latencyUs\":");
        json::number(&mut out, r.latency_us);
        out.push('}');
    }
    out.push_str("]}");
    (out.into_bytes(), written)
}

/// An event time as [`rfc3339`] writes it, with the date and time of day kept from the
/// previous event when it fell in the same second.
#[derive(Default)]
struct Clock {
    /// The Unix second last formatted, and its `YYYY-MM-DDTHH:MM:SS`.
    second: Option<(u64, String)>,
}

impl Clock {
    fn write(&mut self, out: &mut String, at: SystemTime) {
        let Ok(since) = at.duration_since(SystemTime::UNIX_EPOCH) else {
            // Before 1970: not the gateway's clock; the general path.
            json::contents(out, &rfc3339(at));
            return;
        };
        let secs = since.as_secs();
        if self.second.as_ref().is_none_or(|(s, _)| *s != secs) {
            let whole = rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
            // `…SSZ`, or "" if the year is out of RFC 3339's range.
            let Some(prefix) = whole.strip_suffix('Z') else {
                json::contents(out, &rfc3339(at));
                return;
            };
            self.second = Some((secs, prefix.to_string()));
        }
        if let Some((_, prefix)) = &self.second {
            out.push_str(prefix);
        }
        let nanos = since.subsec_nanos();
        if nanos != 0 {
            // Nine digits without their trailing zeros, as `time` writes a fraction.
            let mut digits = [0u8; 9];
            let mut n = nanos;
            for d in digits.iter_mut().rev() {
                *d = b'0' + (n % 10) as u8;
                n /= 10;
            }
            let len = 9 - digits.iter().rev().take_while(|&&d| d == b'0').count();
            out.push('.');
            out.extend(digits[..len].iter().map(|&d| char::from(d)));
        }
        out.push('Z');
    }
}

/// Audit records waiting to be sent, one shard per worker thread. A request appends to
/// its own shard under a lock the other workers do not take and wakes nobody; the sender
/// takes them all once a second (a task woken per request would cost more than the
/// request itself).
pub struct AuditBuffer {
    shards: Vec<Mutex<Vec<Record>>>,
}

impl AuditBuffer {
    /// A buffer for `workers` worker threads.
    pub fn new(workers: usize) -> AuditBuffer {
        AuditBuffer {
            shards: (0..workers.max(1))
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
        }
    }

    /// Queues a record from worker `worker`; `false` (and the record dropped) when its
    /// shard holds its share of [`MAX_PENDING_EVENTS`].
    pub fn push(&self, worker: usize, record: Record) -> bool {
        let mut records = self.shards[worker % self.shards.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if records.len() >= MAX_PENDING_EVENTS / self.shards.len() {
            return false;
        }
        records.push(record);
        true
    }

    /// Takes every queued record, oldest first within each worker.
    pub fn take(&self) -> Vec<Record> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let mut records = shard.lock().unwrap_or_else(PoisonError::into_inner);
            if all.is_empty() {
                all = std::mem::take(&mut *records);
            } else {
                all.append(&mut records);
            }
        }
        all.sort_by_key(|r| r.at);
        all
    }
}

/// Drops the records of requests no route took ([`UNROUTED`]) from the first `n` of
/// `pending`, keeping the others in order; returns how many were dropped.
fn without_unrouted(pending: &mut Vec<Record>, n: usize) -> usize {
    let before = pending.len();
    let mut at = 0;
    pending.retain(|r| {
        at += 1;
        at > n || &*r.resource != UNROUTED
    });
    before - pending.len()
}

/// How often the sender moves records out of the workers' buffers.
const DRAIN_EVERY: Duration = Duration::from_millis(100);
/// How often the sender sends what is waiting, at most, unless [`SEND_AT`] are.
const SEND_EVERY: Duration = Duration::from_secs(1);
/// How many waiting records are sent at once, without waiting for the second.
const SEND_AT: usize = BATCH / 2;

/// When the sender sends: what is waiting once a second, and at once when half a batch
/// is, so the workers' buffers (drained every [`DRAIN_EVERY`]) never hold more than a
/// fraction of a second of requests. Drained only once a second, a worker serving most
/// connections at 50,000 requests a second filled its share of [`MAX_PENDING_EVENTS`]
/// and its records were dropped. After a failed attempt, nothing is tried again for a
/// second.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    /// When what is waiting is sent, however little.
    next: Instant,
    /// The last attempt failed: wait until `next` whatever is waiting.
    backing_off: bool,
}

impl Schedule {
    /// Whether to send now, with `waiting` records waiting.
    fn due(&self, waiting: usize, now: Instant) -> bool {
        waiting > 0 && (now >= self.next || (waiting >= SEND_AT && !self.backing_off))
    }

    /// After an attempt to send, at `now`, that succeeded or not.
    fn attempted(&mut self, now: Instant, ok: bool) {
        self.next = now + SEND_EVERY;
        self.backing_off = !ok;
    }
}

/// Sends audit records to the server, in batches of up to [`BATCH`], as [`Schedule`]
/// says; what the server does not take waits for the next attempt, up to
/// [`MAX_PENDING_EVENTS`].
pub async fn send(
    buffer: Arc<AuditBuffer>,
    client: ServerClient,
    node: String,
    metrics: Arc<Metrics>,
) {
    let mut pending: Vec<Record> = Vec::new();
    let mut warned = false;
    let mut schedule = Schedule {
        next: Instant::now() + SEND_EVERY,
        backing_off: false,
    };
    let mut tick = tokio::time::interval(DRAIN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        pending.extend(buffer.take());
        if !schedule.due(pending.len(), Instant::now()) {
            continue;
        }
        let mut ok = true;
        while !pending.is_empty() {
            let (body, n) = batch_json(&node, &pending[..pending.len().min(BATCH)], BATCH_BYTES);
            match client.post_events(body).await {
                Ok(()) => {
                    pending.drain(..n);
                }
                // The token may not report events of requests no route took: the others
                // go without them, rather than wait behind them for ever.
                Err(FetchError::Refused { status: 403, .. })
                    if pending[..n].iter().any(|r| &*r.resource == UNROUTED) =>
                {
                    let dropped = without_unrouted(&mut pending, n);
                    metrics.audit_dropped(dropped as u64);
                    if !warned {
                        warned = true;
                        tracing::warn!(
                            "the server refused events of requests no route took: give the gateway's token writ:PutAuditEvents on {UNROUTED}; until then they are dropped (writ_gateway_audit_events_dropped_total)"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, pending = pending.len(), "audit events not yet sent");
                    if pending.len() > MAX_PENDING_EVENTS {
                        let over = pending.len() - MAX_PENDING_EVENTS;
                        pending.drain(..over);
                        metrics.audit_dropped(over as u64);
                    }
                    ok = false;
                    break;
                }
            }
        }
        schedule.attempted(Instant::now(), ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(reason: Reason, decision: Option<Decision>, at: SystemTime) -> Record {
        Record {
            at,
            actor: "spiffe://example.org/fn/orders".into(),
            authenticated_by: "mtls",
            resource: "writ:fn/payments".into(),
            outcome: Outcome::Allowed,
            decision,
            matched: Vec::new(),
            reason,
            source: "127.0.0.1".into(),
            latency_us: 42,
        }
    }

    #[test]
    fn a_batch_is_the_json_of_the_events_it_stands_for() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_795_000_000_123_456_789);
        let records = vec![
            record(
                Reason::Forwarded {
                    method: hyper::Method::POST,
                    path: "/payments/charge".into(),
                    status: 200,
                },
                Some(Decision::Allowed),
                at,
            ),
            Record {
                authenticated_by: "",
                outcome: Outcome::Denied,
                actor: "anonymous".into(),
                ..record(
                    Reason::Refused {
                        method: hyper::Method::GET,
                        path: "/a \"quoted\" path".into(),
                        why: "no credentials for this route, which takes mtls".into(),
                    },
                    None,
                    at,
                )
            },
            Record {
                outcome: Outcome::Denied,
                matched: vec!["intention stranger -> payments".into()],
                ..record(
                    Reason::Refused {
                        method: hyper::Method::POST,
                        path: "/payments/charge".into(),
                        why: "denied by intention stranger -> payments".into(),
                    },
                    Some(Decision::ExplicitDeny),
                    at,
                )
            },
        ];
        for node in ["gw-1", ""] {
            let (body, n) = batch_json(node, &records, usize::MAX);
            assert_eq!(n, records.len());
            let json = String::from_utf8(body).unwrap();
            #[derive(serde::Deserialize)]
            struct Body {
                events: Vec<Event>,
            }
            let parsed: Body = serde_json::from_str(&json).unwrap();
            let expected: Vec<Event> = records.iter().map(|r| r.to_event(node)).collect();
            assert_eq!(parsed.events, expected);
            assert_eq!(json, events_json(&expected));
            let first = &parsed.events[0];
            assert_eq!(
                first.reason.as_deref(),
                Some("POST /payments/charge -> 200")
            );
            assert_eq!(first.time, "2026-11-18T11:06:40.123456789Z");
            assert_eq!(first.source.as_deref(), Some("127.0.0.1"));
            assert_eq!(
                parsed.events[1].reason.as_deref(),
                Some("GET /a \"quoted\" path: no credentials for this route, which takes mtls")
            );
            assert_eq!(parsed.events[2].decision, Some(Decision::ExplicitDeny));
            assert_eq!(parsed.events[2].matched, ["intention stranger -> payments"]);
        }
        assert_eq!(
            batch_json("gw-1", &[], usize::MAX),
            (b"{\"events\":[]}".to_vec(), 0)
        );
    }

    /// Once a second whatever is waiting; at once when half a batch is; never a record-less
    /// request; and after a failure, nothing before the second is over.
    #[test]
    fn the_sender_sends_each_second_or_when_half_a_batch_waits() {
        let t0 = Instant::now();
        let mut s = Schedule {
            next: t0 + SEND_EVERY,
            backing_off: false,
        };
        let soon = t0 + DRAIN_EVERY;
        assert!(!s.due(0, t0 + SEND_EVERY));
        assert!(!s.due(1, soon));
        assert!(!s.due(SEND_AT - 1, soon));
        assert!(s.due(SEND_AT, soon));
        assert!(s.due(1, t0 + SEND_EVERY));
        s.attempted(soon, false);
        assert!(!s.due(BATCH * 10, soon + DRAIN_EVERY), "backing off");
        assert!(s.due(1, soon + SEND_EVERY));
        s.attempted(soon + SEND_EVERY, true);
        assert!(s.due(SEND_AT, soon + SEND_EVERY + DRAIN_EVERY));
        assert!(!s.due(1, soon + SEND_EVERY + DRAIN_EVERY));
    }

    /// A batch stops at the first record written past the byte budget, and always holds
    /// one; what it holds is the JSON of those records alone.
    #[test]
    fn a_batch_stops_growing_at_its_byte_budget() {
        let at = SystemTime::UNIX_EPOCH;
        let one = |path: &str| {
            record(
                Reason::Forwarded {
                    method: hyper::Method::GET,
                    path: path.into(),
                    status: 200,
                },
                Some(Decision::Allowed),
                at,
            )
        };
        let records: Vec<Record> = (0..10).map(|i| one(&format!("/r{i}"))).collect();
        assert_eq!(batch_json("gw", &records, usize::MAX).1, 10);
        let (first_three, _) = batch_json("gw", &records[..3], usize::MAX);
        // The body reaches the budget with the third record (its length before "]}").
        let budget = first_three.len() - 2;
        let (capped, n) = batch_json("gw", &records, budget);
        assert_eq!(n, 3, "{}", String::from_utf8_lossy(&capped));
        assert_eq!(capped, first_three);
        assert_eq!(batch_json("gw", &records, budget + 1).1, 4);
        let (tiny, n) = batch_json("gw", &records, 0);
        assert_eq!(n, 1);
        assert_eq!(tiny, batch_json("gw", &records[..1], usize::MAX).0);
    }

    /// `{"events":[...]}` as serde_json writes each event.
    fn events_json(events: &[Event]) -> String {
        let each: Vec<String> = events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        format!("{{\"events\":[{}]}}", each.join(","))
    }

    proptest! {
        /// Any strings (quotes, backslashes, control characters, any Unicode) and any
        /// times, in any order: byte for byte what serde_json writes for the events.
        #[test]
        fn batch_json_is_serde_jsons_bytes(
            rows in prop::collection::vec(
                (
                    "\\PC*|[\\x00-\\x20\"\\\\\\x7f]{0,8}",
                    ".*",
                    0u64..4_102_444_800,
                    prop_oneof![
                        Just(0u32),
                        0u32..1_000_000_000,
                        (0u32..1000).prop_map(|m| m * 1_000_000),
                    ],
                    any::<bool>(),
                    any::<u64>(),
                ),
                0..6,
            ),
            node in ".{0,12}",
        ) {
            let records: Vec<Record> = rows
                .iter()
                .map(|(path, why, secs, nanos, forwarded, latency)| Record {
                    at: SystemTime::UNIX_EPOCH + Duration::new(*secs, *nanos),
                    actor: path.as_str().into(),
                    authenticated_by: "jwt",
                    resource: why.as_str().into(),
                    outcome: Outcome::Failed,
                    decision: forwarded.then_some(Decision::ImplicitDeny),
                    matched: if *forwarded { Vec::new() } else { vec![why.clone(), path.clone()] },
                    reason: if *forwarded {
                        Reason::Forwarded {
                            method: hyper::Method::PATCH,
                            path: path.clone(),
                            status: (*latency % 1000) as u16,
                        }
                    } else {
                        Reason::Refused {
                            method: hyper::Method::DELETE,
                            path: path.clone(),
                            why: why.clone(),
                        }
                    },
                    source: "::1".into(),
                    latency_us: *latency,
                })
                .collect();
            let expected: Vec<Event> = records.iter().map(|r| r.to_event(&node)).collect();
            let ours = String::from_utf8(batch_json(&node, &records, usize::MAX).0).unwrap();
            prop_assert_eq!(ours, events_json(&expected));
        }
    }

    #[test]
    fn unrouted_records_are_dropped_from_a_refused_batch_alone() {
        let at = SystemTime::UNIX_EPOCH;
        let refused = |resource: &str, path: &str| Record {
            resource: resource.into(),
            ..record(
                Reason::Refused {
                    method: hyper::Method::GET,
                    path: path.into(),
                    why: "no route".into(),
                },
                None,
                at,
            )
        };
        let mut pending = vec![
            refused("writ:fn/payments", "/a"),
            refused(UNROUTED, "/b"),
            refused("writ:fn/payments", "/c"),
            refused(UNROUTED, "/d"),
            // Past the batch: kept, to go in the next one.
            refused(UNROUTED, "/e"),
        ];
        assert_eq!(without_unrouted(&mut pending, 4), 2);
        let left: Vec<String> = pending.iter().map(|r| r.reason.to_string()).collect();
        assert_eq!(
            left,
            ["GET /a: no route", "GET /c: no route", "GET /e: no route"]
        );
        assert_eq!(without_unrouted(&mut pending, 2), 0);
    }

    #[test]
    fn shards_are_taken_in_time_order_and_bounded() {
        let buffer = AuditBuffer::new(2);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let forwarded = || Reason::Forwarded {
            method: hyper::Method::GET,
            path: "/".into(),
            status: 200,
        };
        assert!(buffer.push(1, record(forwarded(), None, t0 + Duration::from_secs(2))));
        assert!(buffer.push(0, record(forwarded(), None, t0 + Duration::from_secs(3))));
        assert!(buffer.push(1, record(forwarded(), None, t0 + Duration::from_secs(1))));
        let taken: Vec<SystemTime> = buffer.take().iter().map(|r| r.at).collect();
        assert_eq!(
            taken,
            [1, 2, 3].map(|s| t0 + Duration::from_secs(s)).to_vec()
        );
        assert!(buffer.take().is_empty());
        for _ in 0..MAX_PENDING_EVENTS / 2 {
            assert!(buffer.push(0, record(forwarded(), None, t0)));
        }
        assert!(!buffer.push(0, record(forwarded(), None, t0)));
        assert!(buffer.push(1, record(forwarded(), None, t0)));
    }
}
