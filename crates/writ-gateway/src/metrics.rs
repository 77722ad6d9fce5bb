//! Prometheus metrics: requests by route and decision, and a latency histogram per route,
//! in the text exposition format.
//!
//! Counting is on the request path, so it takes no lock and allocates nothing: each worker
//! thread counts in its own shard of atomics (no cache line shared between the cores),
//! and [`Metrics::render`] adds the shards up.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::limits::BodyBudget;

/// Latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0, 10.0,
];

/// What the gateway decided about a request: the `decision` label of
/// `writ_gateway_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// Forwarded to the upstream.
    Allowed,
    /// A CORS preflight, answered by the gateway.
    Preflight,
    /// No credentials, or credentials that did not verify.
    Unauthenticated,
    /// Authenticated, but no intention (or API key scope) allows it.
    Denied,
    /// Over the route's or the API key's rate.
    RateLimited,
    /// Over the API key's quota.
    QuotaExceeded,
    /// The body failed the route's JSON Schema, or was not JSON.
    Invalid,
    /// Malformed otherwise (headers, body, URI).
    BadRequest,
    /// A path an upstream could read as another path.
    BadPath,
    /// No route for the host and path.
    NoRoute,
    /// A body over the route's limit.
    TooLarge,
    /// The gateway's state is older than its staleness bound.
    Stale,
    /// Something the gateway needed (a webhook key) was unavailable.
    Unavailable,
    /// The budget for bodies read before authentication was spent.
    Overloaded,
    /// The upstream could not be reached.
    UpstreamError,
    /// The upstream did not answer in time.
    UpstreamTimeout,
}

impl Label {
    const ALL: [Label; 16] = [
        Label::Allowed,
        Label::Preflight,
        Label::Unauthenticated,
        Label::Denied,
        Label::RateLimited,
        Label::QuotaExceeded,
        Label::Invalid,
        Label::BadRequest,
        Label::BadPath,
        Label::NoRoute,
        Label::TooLarge,
        Label::Stale,
        Label::Unavailable,
        Label::Overloaded,
        Label::UpstreamError,
        Label::UpstreamTimeout,
    ];

    /// The label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Allowed => "allowed",
            Label::Preflight => "preflight",
            Label::Unauthenticated => "unauthenticated",
            Label::Denied => "denied",
            Label::RateLimited => "rate_limited",
            Label::QuotaExceeded => "quota_exceeded",
            Label::Invalid => "invalid",
            Label::BadRequest => "bad_request",
            Label::BadPath => "bad_path",
            Label::NoRoute => "no_route",
            Label::TooLarge => "too_large",
            Label::Stale => "stale",
            Label::Unavailable => "unavailable",
            Label::Overloaded => "overloaded",
            Label::UpstreamError => "upstream_error",
            Label::UpstreamTimeout => "upstream_timeout",
        }
    }
}

/// One route's counters in one shard.
struct RouteCounters {
    requests: [AtomicU64; Label::ALL.len()],
    /// Per bucket (not cumulative), then one for over the last bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl RouteCounters {
    fn new() -> RouteCounters {
        RouteCounters {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
        }
    }
}

/// One worker's counters, aligned so that two shards never share a cache line.
#[repr(align(128))]
struct Shard {
    routes: Vec<RouteCounters>,
    audit_dropped: AtomicU64,
    /// Connections the worker serves now (a gauge; the serve loop balances on it).
    open_connections: AtomicU64,
}

/// How many route names beyond those it starts with the counters have room for: routes
/// added by reloads ([`crate::proxy::Gateway::reload`]) take these.
pub const SPARE_ROUTES: usize = 64;

/// The gateway's counters.
pub struct Metrics {
    /// The routes' names, in the order of their counters; routes added by reloads are
    /// appended, up to [`SPARE_ROUTES`] more. The last counters, past them all, are
    /// `(none)`'s, for requests that matched no route.
    names: std::sync::RwLock<Vec<String>>,
    /// How many routes' counters each shard has, `(none)` excluded.
    capacity: usize,
    shards: Vec<Shard>,
    /// Connections closed as they were accepted, their client having too many open.
    connections_refused: AtomicU64,
    /// The budget for bodies read before authentication, shown as gauges.
    body_budget: Option<Arc<BodyBudget>>,
}

/// The index [`Metrics::observe`] takes for a request that matched no route.
pub const NO_ROUTE: usize = usize::MAX;

impl Metrics {
    /// Counters for `routes` (by name, in the configuration's order), counted by up to
    /// `shards` threads at once without sharing.
    pub fn new(routes: &[String], shards: usize) -> Metrics {
        let mut names: Vec<String> = Vec::with_capacity(routes.len());
        for r in routes {
            if !names.contains(r) {
                names.push(r.clone());
            }
        }
        let capacity = names.len() + SPARE_ROUTES;
        Metrics {
            shards: (0..shards.max(1))
                .map(|_| Shard {
                    routes: (0..=capacity).map(|_| RouteCounters::new()).collect(),
                    audit_dropped: AtomicU64::new(0),
                    open_connections: AtomicU64::new(0),
                })
                .collect(),
            names: std::sync::RwLock::new(names),
            capacity,
            connections_refused: AtomicU64::new(0),
            body_budget: None,
        }
    }

    /// The index of the counters of the route named `name`: its own if it has been
    /// counted before, else new ones, while there is room ([`SPARE_ROUTES`]).
    pub fn route_index(&self, name: &str) -> Option<usize> {
        let mut names = self
            .names
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = names.iter().position(|n| n == name) {
            return Some(i);
        }
        (names.len() < self.capacity).then(|| {
            names.push(name.to_string());
            names.len() - 1
        })
    }

    /// The same, showing how much of `budget` is in use.
    pub fn with_body_budget(self, budget: Arc<BodyBudget>) -> Metrics {
        Metrics {
            body_budget: Some(budget),
            ..self
        }
    }

    /// Counts a connection closed as it was accepted, its client having too many open.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request to route number `route` (or [`NO_ROUTE`]) with its decision and
    /// how long the gateway took with it, in the shard of worker `shard`.
    pub fn observe(&self, shard: usize, route: usize, label: Label, took: Duration) {
        let shard = &self.shards[shard % self.shards.len()];
        let route = route.min(self.capacity);
        let c = &shard.routes[route];
        c.requests[label as usize].fetch_add(1, Ordering::Relaxed);
        let seconds = took.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        c.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        c.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Counts audit events dropped because the server was unreachable too long.
    pub fn audit_dropped(&self, n: u64) {
        self.shards[0].audit_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a connection worker `worker` is given to serve.
    pub fn connection_opened(&self, worker: usize) {
        self.shards[worker % self.shards.len()]
            .open_connections
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts the end of a connection worker `worker` served.
    pub fn connection_closed(&self, worker: usize) {
        self.shards[worker % self.shards.len()]
            .open_connections
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// The connections worker `worker` serves now.
    pub fn open_connections(&self, worker: usize) -> u64 {
        self.shards[worker % self.shards.len()]
            .open_connections
            .load(Ordering::Relaxed)
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let total = |f: &dyn Fn(&Shard) -> u64| self.shards.iter().map(f).sum::<u64>();
        let mut out = String::new();
        // The routes' counters, then `(none)`'s (the last).
        let counted: Vec<(usize, String)> = {
            let names = self
                .names
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            names
                .iter()
                .cloned()
                .enumerate()
                .chain([(self.capacity, "(none)".to_string())])
                .collect()
        };
        out.push_str("# HELP writ_gateway_requests_total Requests by route and decision.\n");
        out.push_str("# TYPE writ_gateway_requests_total counter\n");
        for (r, name) in counted.iter().map(|(r, n)| (*r, n)) {
            for label in Label::ALL {
                let n = total(&|s| s.routes[r].requests[label as usize].load(Ordering::Relaxed));
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "writ_gateway_requests_total{{route=\"{}\",decision=\"{}\"}} {n}",
                        escape(name),
                        label.as_str()
                    );
                }
            }
        }
        out.push_str(
            "# HELP writ_gateway_request_duration_seconds Time the gateway took per request, upstream included.\n",
        );
        out.push_str("# TYPE writ_gateway_request_duration_seconds histogram\n");
        for (r, name) in counted.iter().map(|(r, n)| (*r, n)) {
            let counts: Vec<u64> = (0..=BUCKETS.len())
                .map(|b| total(&|s| s.routes[r].buckets[b].load(Ordering::Relaxed)))
                .collect();
            let count: u64 = counts.iter().sum();
            if count == 0 {
                continue;
            }
            let route = escape(name);
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += counts[i];
                let _ = writeln!(
                    out,
                    "writ_gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}",
                );
            }
            let _ = writeln!(
                out,
                "writ_gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}",
            );
            let sum_ns = total(&|s| s.routes[r].sum_ns.load(Ordering::Relaxed));
            let _ = writeln!(
                out,
                "writ_gateway_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                sum_ns as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "writ_gateway_request_duration_seconds_count{{route=\"{route}\"}} {count}",
            );
        }
        out.push_str(
            "# HELP writ_gateway_audit_events_dropped_total Audit events the server never took.\n",
        );
        out.push_str("# TYPE writ_gateway_audit_events_dropped_total counter\n");
        let _ = writeln!(
            out,
            "writ_gateway_audit_events_dropped_total {}",
            total(&|s| s.audit_dropped.load(Ordering::Relaxed))
        );
        out.push_str(
            "# HELP writ_gateway_open_connections Client connections each worker thread serves now.\n",
        );
        out.push_str("# TYPE writ_gateway_open_connections gauge\n");
        for (worker, shard) in self.shards.iter().enumerate() {
            let _ = writeln!(
                out,
                "writ_gateway_open_connections{{worker=\"{worker}\"}} {}",
                shard.open_connections.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP writ_gateway_connections_refused_total Connections closed as they were accepted, their client having max_connections_per_client open.\n",
        );
        out.push_str("# TYPE writ_gateway_connections_refused_total counter\n");
        let _ = writeln!(
            out,
            "writ_gateway_connections_refused_total{{reason=\"client_limit\"}} {}",
            self.connections_refused.load(Ordering::Relaxed)
        );
        if let Some(budget) = &self.body_budget {
            out.push_str(
                "# HELP writ_gateway_unauthenticated_body_bytes Bytes reserved for request bodies read before authentication.\n",
            );
            out.push_str("# TYPE writ_gateway_unauthenticated_body_bytes gauge\n");
            let _ = writeln!(
                out,
                "writ_gateway_unauthenticated_body_bytes {}",
                budget.in_use()
            );
            out.push_str(
                "# HELP writ_gateway_unauthenticated_body_budget_bytes The most bytes that may be (unauthenticated_body_budget).\n",
            );
            out.push_str("# TYPE writ_gateway_unauthenticated_body_budget_bytes gauge\n");
            let _ = writeln!(
                out,
                "writ_gateway_unauthenticated_body_budget_bytes {}",
                budget.limit()
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_exposition_format() {
        let m = Metrics::new(&["pay".to_string(), "idle".to_string()], 2);
        m.observe(0, 0, Label::Allowed, Duration::from_micros(80));
        m.observe(1, 0, Label::Allowed, Duration::from_millis(3));
        m.observe(1, 0, Label::Denied, Duration::from_micros(20));
        m.observe(0, NO_ROUTE, Label::NoRoute, Duration::from_secs(20));
        m.audit_dropped(2);
        m.connection_refused();
        let text = m.render();
        assert!(text.contains("writ_gateway_connections_refused_total{reason=\"client_limit\"} 1"));
        assert!(
            !text.contains("writ_gateway_unauthenticated_body_bytes"),
            "{text}"
        );
        assert!(text.contains("writ_gateway_requests_total{route=\"pay\",decision=\"allowed\"} 2"));
        assert!(text.contains("writ_gateway_requests_total{route=\"pay\",decision=\"denied\"} 1"));
        assert!(
            text.contains("writ_gateway_requests_total{route=\"(none)\",decision=\"no_route\"} 1")
        );
        assert!(!text.contains("route=\"idle\""), "{text}");
        assert!(text.contains(
            "writ_gateway_request_duration_seconds_bucket{route=\"pay\",le=\"0.0001\"} 2"
        ));
        assert!(text.contains(
            "writ_gateway_request_duration_seconds_bucket{route=\"pay\",le=\"0.005\"} 3"
        ));
        assert!(text.contains(
            "writ_gateway_request_duration_seconds_bucket{route=\"(none)\",le=\"10\"} 0"
        ));
        assert!(text.contains(
            "writ_gateway_request_duration_seconds_bucket{route=\"(none)\",le=\"+Inf\"} 1"
        ));
        assert!(text.contains("writ_gateway_request_duration_seconds_count{route=\"pay\"} 3"));
        assert!(text.contains("writ_gateway_request_duration_seconds_sum{route=\"pay\"} 0.0031"));
        assert!(text.contains("writ_gateway_audit_events_dropped_total 2"));
    }

    #[test]
    fn the_unauthenticated_body_budget_shows_what_is_in_use() {
        let budget = Arc::new(BodyBudget::new(4096));
        let held = budget.reserve(1000).unwrap();
        let m = Metrics::new(&["hook".to_string()], 1).with_body_budget(budget.clone());
        m.observe(0, 0, Label::Overloaded, Duration::from_micros(10));
        let text = m.render();
        assert!(
            text.contains("writ_gateway_requests_total{route=\"hook\",decision=\"overloaded\"} 1")
        );
        assert!(
            text.contains("writ_gateway_unauthenticated_body_bytes 1000\n"),
            "{text}"
        );
        assert!(text.contains("writ_gateway_unauthenticated_body_budget_bytes 4096\n"));
        drop(held);
        assert!(
            m.render()
                .contains("writ_gateway_unauthenticated_body_bytes 0\n")
        );
    }

    #[test]
    fn routes_added_by_reloads_get_counters_of_their_own_while_there_is_room() {
        let m = Metrics::new(&["pay".to_string()], 1);
        assert_eq!(m.route_index("pay"), Some(0));
        let added = m.route_index("hooks").unwrap();
        assert_eq!(added, 1);
        assert_eq!(
            m.route_index("hooks"),
            Some(1),
            "the same name, the same counters"
        );
        m.observe(0, added, Label::Allowed, Duration::from_micros(10));
        m.observe(0, NO_ROUTE, Label::NoRoute, Duration::from_micros(10));
        let text = m.render();
        assert!(
            text.contains("writ_gateway_requests_total{route=\"hooks\",decision=\"allowed\"} 1")
        );
        assert!(
            text.contains("writ_gateway_requests_total{route=\"(none)\",decision=\"no_route\"} 1")
        );
        for i in 2..=SPARE_ROUTES {
            assert!(m.route_index(&format!("r{i}")).is_some());
        }
        assert_eq!(m.route_index("one-too-many"), None);
        assert_eq!(m.route_index("pay"), Some(0));
    }
}
