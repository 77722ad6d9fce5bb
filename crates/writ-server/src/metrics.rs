//! The server's counters, and `/metrics` in Prometheus's text format on a listener of its
//! own (`writ server --metrics-listen ADDR`, plain HTTP, no credentials, as Prometheus
//! scrapes; keep it on loopback or a private network, like the gateway's).
//!
//! - `writ_server_requests_total{method,route,status}`: API requests by route (its path
//!   template) and answer status;
//! - `writ_server_decisions_total{outcome}`: the access layer's decisions before handlers
//!   (`allowed`, `unauthenticated`, `denied`, `throttled`, `error`);
//! - `writ_server_svids_issued_total{kind}`: X.509-SVIDs signed (logins and renewals) and
//!   JWT-SVIDs minted;
//! - `writ_server_store_operation_duration_seconds{op}`: a histogram of the store's
//!   timed operations ([`crate::store::Store::latency`]);
//! - `writ_server_audit_queue_messages`: audit messages (an event, or a batch) waiting for
//!   the audit writer.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::Latency;

/// How an access decision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The handler ran.
    Allowed,
    /// No credential of a kind the route takes, or one that did not verify (401).
    Unauthenticated,
    /// Refused by policy (403).
    Denied,
    /// Refused unheard: too many failures from the source (429).
    Throttled,
    /// The decision could not be made (a body that did not read, a store error).
    Error,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Allowed,
        Outcome::Unauthenticated,
        Outcome::Denied,
        Outcome::Throttled,
        Outcome::Error,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::Denied => "denied",
            Outcome::Throttled => "throttled",
            Outcome::Error => "error",
        }
    }

    /// The outcome a refusal's status stands for.
    pub fn of_refusal(status: u16) -> Outcome {
        match status {
            401 => Outcome::Unauthenticated,
            403 => Outcome::Denied,
            429 => Outcome::Throttled,
            _ => Outcome::Error,
        }
    }
}

/// What kind of SVID was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SvidKind {
    /// An X.509-SVID, signed for a login or a renewal.
    X509,
    /// A JWT-SVID.
    Jwt,
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// By (method, route template, status).
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    decisions: [AtomicU64; 5],
    x509_issued: AtomicU64,
    jwt_issued: AtomicU64,
}

impl Metrics {
    /// Counts a request to `route` (its path template) answered `status`.
    pub fn request(&self, method: &'static str, route: &'static str, status: u16) {
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *requests.entry((method, route, status)).or_insert(0) += 1;
    }

    /// Counts an access decision.
    pub fn decision(&self, outcome: Outcome) {
        let i = Outcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(Outcome::ALL.len() - 1);
        self.decisions[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an SVID issued.
    pub fn issued(&self, kind: SvidKind) {
        match kind {
            SvidKind::X509 => &self.x509_issued,
            SvidKind::Jwt => &self.jwt_issued,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition, with the store's latencies and the audit queue's length.
    pub fn render(&self, store: &Latency, audit_queue: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP writ_server_requests_total API requests by route and status.\n");
        out.push_str("# TYPE writ_server_requests_total counter\n");
        {
            let requests = self
                .requests
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for ((method, route, status), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "writ_server_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP writ_server_decisions_total Access decisions made before handlers, by outcome.\n",
        );
        out.push_str("# TYPE writ_server_decisions_total counter\n");
        for (i, outcome) in Outcome::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "writ_server_decisions_total{{outcome=\"{}\"}} {}",
                outcome.as_str(),
                self.decisions[i].load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP writ_server_svids_issued_total SVIDs issued, by kind.\n");
        out.push_str("# TYPE writ_server_svids_issued_total counter\n");
        let _ = writeln!(
            out,
            "writ_server_svids_issued_total{{kind=\"x509\"}} {}",
            self.x509_issued.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "writ_server_svids_issued_total{{kind=\"jwt\"}} {}",
            self.jwt_issued.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP writ_server_store_operation_duration_seconds Time the store took per operation.\n",
        );
        out.push_str("# TYPE writ_server_store_operation_duration_seconds histogram\n");
        for op in store.ops() {
            let name = op.name();
            let mut cumulative = 0;
            for (bound, n) in op.buckets() {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "writ_server_store_operation_duration_seconds_bucket{{op=\"{name}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let (count, sum_ns) = op.count_and_sum_ns();
            let _ = writeln!(
                out,
                "writ_server_store_operation_duration_seconds_bucket{{op=\"{name}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "writ_server_store_operation_duration_seconds_sum{{op=\"{name}\"}} {}",
                sum_ns as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "writ_server_store_operation_duration_seconds_count{{op=\"{name}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP writ_server_audit_queue_messages Audit messages (an event or a batch) waiting for the audit writer.\n",
        );
        out.push_str("# TYPE writ_server_audit_queue_messages gauge\n");
        let _ = writeln!(out, "writ_server_audit_queue_messages {audit_queue}");
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` on `listener` (plain HTTP) until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: std::sync::Arc<crate::state::AppState>,
) {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let state = state.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    state
                        .metrics
                        .render(state.store.latency(), state.audit.queued()),
                )
            }
        }),
    );
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!(error = %e, "the metrics listener failed");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::StoreOp;

    #[test]
    fn counters_render_in_the_exposition_format() {
        let m = Metrics::default();
        m.request("POST", "/v1/login", 200);
        m.request("POST", "/v1/login", 200);
        m.request("GET", "/v1/functions/{name}", 403);
        m.decision(Outcome::Allowed);
        m.decision(Outcome::of_refusal(403));
        m.decision(Outcome::of_refusal(401));
        m.issued(SvidKind::X509);
        m.issued(SvidKind::Jwt);
        m.issued(SvidKind::Jwt);
        let latency = Latency::default();
        latency.observe(StoreOp::AuditAppend, Duration::from_micros(300));
        latency.observe(StoreOp::AuditAppend, Duration::from_millis(30));
        let text = m.render(&latency, 3);
        for line in [
            "writ_server_requests_total{method=\"POST\",route=\"/v1/login\",status=\"200\"} 2",
            "writ_server_requests_total{method=\"GET\",route=\"/v1/functions/{name}\",status=\"403\"} 1",
            "writ_server_decisions_total{outcome=\"allowed\"} 1",
            "writ_server_decisions_total{outcome=\"denied\"} 1",
            "writ_server_decisions_total{outcome=\"unauthenticated\"} 1",
            "writ_server_decisions_total{outcome=\"throttled\"} 0",
            "writ_server_svids_issued_total{kind=\"x509\"} 1",
            "writ_server_svids_issued_total{kind=\"jwt\"} 2",
            "writ_server_store_operation_duration_seconds_bucket{op=\"audit_append\",le=\"0.001\"} 1",
            "writ_server_store_operation_duration_seconds_bucket{op=\"audit_append\",le=\"0.05\"} 2",
            "writ_server_store_operation_duration_seconds_bucket{op=\"audit_append\",le=\"+Inf\"} 2",
            "writ_server_store_operation_duration_seconds_count{op=\"audit_append\"} 2",
            "writ_server_store_operation_duration_seconds_sum{op=\"audit_append\"} 0.0303",
            "writ_server_store_operation_duration_seconds_count{op=\"quota_lease\"} 0",
            "writ_server_audit_queue_messages 3",
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} in {text}");
        }
    }
}
