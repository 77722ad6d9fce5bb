//! How long the store's timed operations take, as histograms for `/metrics`
//! ([`crate::metrics`]): the audit log's appends (every change and decision the API
//! reports goes through them), quota leases, and the reads of the one-second refresh.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds of the histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// A timed store operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// Appending a batch of audit events (with the secret changes made in it).
    AuditAppend,
    /// Leasing admissions of a shared API-key quota.
    QuotaLease,
    /// Reading the signing keys' generation and the revocation feed's head, as every
    /// server does each second.
    Refresh,
}

impl StoreOp {
    const ALL: [StoreOp; 3] = [StoreOp::AuditAppend, StoreOp::QuotaLease, StoreOp::Refresh];

    /// Its name in the `op` label.
    pub fn name(self) -> &'static str {
        match self {
            StoreOp::AuditAppend => "audit_append",
            StoreOp::QuotaLease => "quota_lease",
            StoreOp::Refresh => "refresh",
        }
    }
}

/// One operation's histogram.
#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket (not cumulative), then one for over the last bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

/// The histograms of every timed operation.
#[derive(Debug, Default)]
pub struct Latency {
    ops: [Histogram; StoreOp::ALL.len()],
}

/// One operation's histogram, read for rendering.
pub struct OpLatency<'a> {
    op: StoreOp,
    histogram: &'a Histogram,
}

impl OpLatency<'_> {
    /// The operation's name.
    pub fn name(&self) -> &'static str {
        self.op.name()
    }

    /// Each bucket's upper bound and its count (not cumulative), without the last
    /// (unbounded) one.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        BUCKETS
            .iter()
            .zip(self.histogram.buckets.iter())
            .map(|(bound, n)| (*bound, n.load(Ordering::Relaxed)))
    }

    /// How many were timed, and their total time in nanoseconds.
    pub fn count_and_sum_ns(&self) -> (u64, u64) {
        (
            self.histogram.count.load(Ordering::Relaxed),
            self.histogram.sum_ns.load(Ordering::Relaxed),
        )
    }
}

impl Latency {
    /// Counts one `op` that took `took`.
    pub fn observe(&self, op: StoreOp, took: Duration) {
        let i = StoreOp::ALL.iter().position(|o| *o == op).unwrap_or(0);
        let h = &self.ops[i];
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        h.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_ns.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Every operation's histogram.
    pub fn ops(&self) -> impl Iterator<Item = OpLatency<'_>> {
        StoreOp::ALL
            .iter()
            .zip(self.ops.iter())
            .map(|(op, histogram)| OpLatency { op: *op, histogram })
    }
}
