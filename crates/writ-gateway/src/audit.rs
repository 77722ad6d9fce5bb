//! The gateway's audit events: one per request, kept compact on the request path and
//! written out as `writ_audit::Event` JSON only when sent to the server in batches.
//!
//! A request appends a [`Record`] (shared strings and numbers, the path copied once) to
//! its worker's shard of the [`AuditBuffer`] under a lock no other core touches; the
//! sender takes every shard once a second and serializes the records straight into the
//! request body, in exactly the JSON of the [`Event`] they stand for.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use writ_audit::{Decision, Event, Outcome};

use crate::metrics::Metrics;
use crate::sync::ServerClient;

/// The most events held while the server is unreachable; older ones are dropped (and
/// counted) beyond it.
pub const MAX_PENDING_EVENTS: usize = 100_000;

/// The most events sent in one request to the server.
const BATCH: usize = 1000;

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
    /// What happened.
    pub reason: Reason,
    /// The caller's address.
    pub source: IpAddr,
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

/// Records serialized as the body of `POST /v1/audit/events`: `{"events": [...]}`, each
/// element the JSON of [`Record::to_event`], written without building the events.
pub struct Batch<'a> {
    /// The gateway's node name.
    pub node: &'a str,
    /// The records.
    pub records: &'a [Record],
}

impl Serialize for Batch<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Events<'a>(&'a Batch<'a>);
        impl Serialize for Events<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.records.len()))?;
                for r in self.0.records {
                    seq.serialize_element(&AsEvent {
                        node: self.0.node,
                        record: r,
                    })?;
                }
                seq.end()
            }
        }
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("events", &Events(self))?;
        map.end()
    }
}

/// One record in the field order and naming of `Event`'s JSON (its derive skips the
/// empty `requestId`, `matched`, `serial` and `reportedBy`, as here).
struct AsEvent<'a> {
    node: &'a str,
    record: &'a Record,
}

/// A value serialized through its `Display`, without an intermediate string.
struct Shown<'a, T: fmt::Display>(&'a T);

impl<T: fmt::Display> Serialize for Shown<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

impl Serialize for AsEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("time", &rfc3339(r.at))?;
        if !self.node.is_empty() {
            map.serialize_entry("node", self.node)?;
        }
        map.serialize_entry("actor", &*r.actor)?;
        map.serialize_entry("authenticatedBy", r.authenticated_by)?;
        map.serialize_entry("action", "writ:Invoke")?;
        map.serialize_entry("resource", &*r.resource)?;
        if let Some(d) = &r.decision {
            map.serialize_entry("decision", d)?;
        }
        map.serialize_entry("outcome", &r.outcome)?;
        map.serialize_entry("reason", &Shown(&r.reason))?;
        map.serialize_entry("source", &Shown(&r.source))?;
        map.serialize_entry("latencyUs", &r.latency_us)?;
        map.end()
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

/// Sends audit records to the server each second, in batches of up to 1,000; what the
/// server does not take waits for the next round, up to [`MAX_PENDING_EVENTS`].
pub async fn send(
    buffer: Arc<AuditBuffer>,
    client: ServerClient,
    node: String,
    metrics: Arc<Metrics>,
) {
    let mut pending: Vec<Record> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        pending.extend(buffer.take());
        while !pending.is_empty() {
            let n = pending.len().min(BATCH);
            let body = Batch {
                node: &node,
                records: &pending[..n],
            };
            match client.post_events(&body).await {
                Ok(()) => {
                    pending.drain(..n);
                }
                Err(e) => {
                    tracing::warn!(error = %e, pending = pending.len(), "audit events not yet sent");
                    if pending.len() > MAX_PENDING_EVENTS {
                        let over = pending.len() - MAX_PENDING_EVENTS;
                        pending.drain(..over);
                        metrics.audit_dropped(over as u64);
                    }
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(reason: Reason, decision: Option<Decision>, at: SystemTime) -> Record {
        Record {
            at,
            actor: "spiffe://example.org/fn/orders".into(),
            authenticated_by: "mtls",
            resource: "writ:fn/payments".into(),
            outcome: Outcome::Allowed,
            decision,
            reason,
            source: "127.0.0.1".parse().unwrap(),
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
        ];
        for node in ["gw-1", ""] {
            let json = serde_json::to_string(&Batch {
                node,
                records: &records,
            })
            .unwrap();
            #[derive(serde::Deserialize)]
            struct Body {
                events: Vec<Event>,
            }
            let parsed: Body = serde_json::from_str(&json).unwrap();
            let expected: Vec<Event> = records.iter().map(|r| r.to_event(node)).collect();
            assert_eq!(parsed.events, expected);
            // Byte for byte the JSON the events themselves serialize to.
            let direct = serde_json::to_string(&serde_json::json!({ "events": expected }))
                .unwrap()
                .replace(' ', "");
            let ours: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(
                serde_json::to_string(&ours).unwrap().replace(' ', ""),
                direct
            );
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
        }
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
