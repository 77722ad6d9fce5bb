//! Benchmark of durable, batched audit appends (see BENCHMARKS.md).
//!
//! Opens a store (SQLite in a temporary directory, or `--store postgres://...`), starts the
//! audit writer, and has `--producers` tasks each append events with `record_durable`
//! (waiting until its event is committed, as an admin change does) for `--seconds`. Every
//! committed batch is one transaction with a signed checkpoint. Prints events per second
//! and then verifies the whole chain and its checkpoints.
//!
//! ```text
//! audit_append [--producers 512] [--seconds 10] [--store postgres://...]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use writ_audit::{Event, Outcome};
use writ_server::audit::{self, Copies};
use writ_server::master_key::MasterKey;
use writ_server::store::{AuditFilter, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut producers = 512usize;
    let mut seconds = 10u64;
    let mut store_url = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--producers" => producers = value.parse()?,
            "--seconds" => seconds = value.parse()?,
            "--store" => store_url = Some(value),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let dir = std::env::temp_dir().join(format!("writ-audit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = store_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("writ.db").display()));
    let store = Store::open(&url).await?;
    let master = MasterKey::from_bytes(&[7; 32])?;
    let log = audit::open(&store, &master, Copies::default()).await?;

    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for p in 0..producers {
        let (log, done, count) = (log.clone(), done.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !done.load(Ordering::Relaxed) {
                let mut e = Event::new(
                    "2026-11-24T10:00:00.000Z",
                    &format!("spiffe://example.org/fn/f{p}"),
                    "x509Svid",
                    "writ:Invoke",
                    "spiffe://example.org/fn/payments",
                    Outcome::Allowed,
                );
                e.request_id = format!("{p}-{i}");
                log.record_durable(e).await.expect("durable append");
                count.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = count.load(Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let measured = count.load(Ordering::Relaxed) - before;
    let elapsed = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    println!(
        "durable batched append ({}): {:.0} events per second over {:.1} s, {} producers",
        if store_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        measured as f64 / elapsed,
        elapsed,
        producers
    );

    // Everything committed verifies.
    let mut records = Vec::new();
    loop {
        let page = store
            .audit_records(&AuditFilter {
                after: records
                    .last()
                    .map_or(0, |r: &writ_audit::chain::Record| r.seq),
                limit: 10_000,
                ..AuditFilter::default()
            })
            .await?;
        if page.is_empty() {
            break;
        }
        records.extend(page);
    }
    let checkpoints = store.audit_checkpoints(0, i64::MAX).await?;
    let report = writ_audit::checkpoint::verify_log(&records, &checkpoints, log.public_keys())?;
    println!(
        "verified: {} events, {} checkpoints (mean batch {:.0} events)",
        report.events,
        report.checkpoints,
        report.events as f64 / report.checkpoints.max(1) as f64
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
