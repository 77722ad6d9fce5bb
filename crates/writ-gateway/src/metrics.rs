//! Prometheus metrics: requests by route and decision, and a latency histogram per route,
//! in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The gateway's counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    audit_dropped: Mutex<u64>,
}

impl Metrics {
    /// Counts a request to `route` with its `decision` (`allowed`, `unauthenticated`,
    /// `denied`, …) and how long the gateway took with it.
    pub fn observe(&self, route: &str, decision: &'static str, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((route.to_string(), decision))
            .or_default() += 1;
        let seconds = took.as_secs_f64();
        let mut latency = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = latency.entry(route.to_string()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// Counts audit events dropped because the server was unreachable too long.
    pub fn audit_dropped(&self, n: u64) {
        *self
            .audit_dropped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += n;
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP writ_gateway_requests_total Requests by route and decision.\n");
        out.push_str("# TYPE writ_gateway_requests_total counter\n");
        for ((route, decision), n) in self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "writ_gateway_requests_total{{route=\"{}\",decision=\"{decision}\"}} {n}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP writ_gateway_request_duration_seconds Time the gateway took per request, upstream included.\n",
        );
        out.push_str("# TYPE writ_gateway_request_duration_seconds histogram\n");
        for (route, h) in self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let route = escape(route);
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "writ_gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "writ_gateway_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "writ_gateway_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "writ_gateway_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str(
            "# HELP writ_gateway_audit_events_dropped_total Audit events the server never took.\n",
        );
        out.push_str("# TYPE writ_gateway_audit_events_dropped_total counter\n");
        let _ = writeln!(
            out,
            "writ_gateway_audit_events_dropped_total {}",
            self.audit_dropped
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        );
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
        let m = Metrics::default();
        m.observe("pay", "allowed", Duration::from_micros(80));
        m.observe("pay", "allowed", Duration::from_millis(3));
        m.observe("pay", "denied", Duration::from_micros(20));
        let text = m.render();
        assert!(text.contains("writ_gateway_requests_total{route=\"pay\",decision=\"allowed\"} 2"));
        assert!(text.contains("writ_gateway_requests_total{route=\"pay\",decision=\"denied\"} 1"));
        assert!(text.contains(
            "writ_gateway_request_duration_seconds_bucket{route=\"pay\",le=\"0.0001\"} 2"
        ));
        assert!(text.contains(
            "writ_gateway_request_duration_seconds_bucket{route=\"pay\",le=\"0.005\"} 3"
        ));
        assert!(text.contains("writ_gateway_request_duration_seconds_count{route=\"pay\"} 3"));
    }
}
