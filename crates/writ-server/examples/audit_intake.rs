//! A fixed amount of gateway-style audit intake, for instruction counts (see BENCHMARKS.md).
//!
//! Opens a SQLite store in a temporary directory, starts the audit writer, and appends
//! `--batches` batches of `--events` gateway-like events each with `record_all_durable`,
//! as `POST /v1/audit/events` does. Prints the process's CPU time per event. The work is
//! the same on every run, so `valgrind --tool=callgrind` counts compare across commits.
//!
//! ```text
//! audit_intake [--batches 100] [--events 2000]
//! ```

use writ_audit::{Decision, Event, Outcome};
use writ_server::audit::{self, Copies};
use writ_server::master_key::MasterKey;
use writ_server::store::Store;

/// The writ binary's allocator, so the counts are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// User plus system CPU time of this process so far, in clock ticks (1/100 s).
fn cpu_ticks() -> Result<u64, Box<dyn std::error::Error>> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after_name = stat.rfind(')').ok_or("/proc/self/stat: no ')'")? + 2;
    let fields: Vec<&str> = stat[after_name..].split(' ').collect();
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut batches = 100usize;
    let mut per_batch = 2000usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--batches" => batches = value.parse()?,
            "--events" => per_batch = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let dir = std::env::temp_dir().join(format!("writ-audit-intake-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("writ.db").display());
    let store = Store::open(&url).await?;
    let master = MasterKey::from_bytes(&[7; 32])?;
    let log = audit::open(&store, &master, Copies::default()).await?;

    let start = cpu_ticks()?;
    for b in 0..batches {
        let events = (0..per_batch).map(|i| {
            let mut e = Event::new(
                "2026-11-24T10:00:00.123456Z",
                "spiffe://bench.example/fn/client",
                "mtls",
                "writ:Invoke",
                "writ:fn/echo",
                Outcome::Allowed,
            );
            e.node = "gateway-1".into();
            e.request_id = format!("4bf92f3577b34da6a3ce929d{b:04}{i:04}");
            e.decision = Some(Decision::Allowed);
            e.reason = Some("POST /charge -> 200".into());
            e.source = Some("127.0.0.1".into());
            e.latency_us = Some(31);
            e.reported_by = Some("token:hmac-sha256:0123456789abcdef".into());
            e
        });
        log.record_all_durable(events.collect()).await?;
    }
    let ticks = cpu_ticks()? - start;
    let events = (batches * per_batch) as f64;
    println!(
        "audit intake (sqlite): {events} events in batches of {per_batch}, {:.2} us CPU per event",
        ticks as f64 * 10_000.0 / events
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
