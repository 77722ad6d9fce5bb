//! Reading a gateway's batch of audit events (`POST /v1/audit/events`, as the server's
//! JSON extractor does): `json::from_bytes`, and beside it, in the same run, serde_json's
//! `from_slice`, which the server used before; and `json::no_duplicate_keys`, the pass the
//! extractor makes over every body first.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;
use writ_audit::{Decision, Event, Outcome, json};

/// The body the server's handler reads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct EventsIn {
    events: Vec<Event>,
}

/// How many events a gateway under load sends in one batch (it sends at 5,000 waiting).
const EVENTS: usize = 5000;

/// A gateway's batch: one event per request, as `writ_gateway::audit::batch_json` writes
/// them (serde_json's bytes for the `Event`).
fn body() -> Vec<u8> {
    let events: Vec<Event> = (0..EVENTS)
        .map(|i| {
            let mut e = Event::new(
                &format!("2026-11-24T10:00:00.{i:09}Z"),
                "spiffe://bench.example/fn/client",
                "mtls",
                "writ:Invoke",
                "writ:fn/echo",
                Outcome::Allowed,
            );
            e.node = "gateway-1".into();
            e.decision = Some(Decision::Allowed);
            e.reason = Some(format!("POST /charge/{i} -> 200"));
            e.source = Some("10.0.3.17".into());
            e.latency_us = Some(31 + i as u64 % 50);
            e
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "events": events })).expect("a batch")
}

fn batch(c: &mut Criterion) {
    let body = body();
    let mut group = c.benchmark_group("audit batch of 5000 events");
    group.throughput(Throughput::Elements(EVENTS as u64));
    // Each parsed batch is dropped outside the timing, as the server hands it on.
    group.bench_function("json::from_bytes", |b| {
        b.iter_batched(
            || (),
            |()| json::from_bytes::<EventsIn>(&body).expect("parses"),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("serde_json::from_slice (peer)", |b| {
        b.iter_batched(
            || (),
            |()| serde_json::from_slice::<EventsIn>(&body).expect("parses"),
            BatchSize::PerIteration,
        )
    });
    // What the server's extractor adds before it reads: the refusal of keys given twice.
    let text = std::str::from_utf8(&body).expect("UTF-8");
    group.bench_function("json::no_duplicate_keys", |b| {
        b.iter(|| json::no_duplicate_keys(text).expect("no duplicates"))
    });
    group.finish();
}

criterion_group!(benches, batch);
criterion_main!(benches);
