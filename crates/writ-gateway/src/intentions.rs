//! The intentions the server sends, compiled by `writ_policy::intentions`, and the request
//! the gateway asks them about.

use std::net::IpAddr;

use serde_json::Value;
use writ_audit::Decision;
use writ_policy::intentions::{Intention, IntentionSet, Verdict, parse_sid};

/// Compiles the `intentions` array of `GET /v1/intentions` (`null` for none yet).
pub fn compile(intentions: &Value, trust_domain: &str) -> Result<IntentionSet, String> {
    let list: Vec<Intention> = match intentions {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                // The server adds bookkeeping fields the model does not take.
                let mut item = item.clone();
                if let Some(o) = item.as_object_mut() {
                    o.retain(|k, _| !matches!(k.as_str(), "createdAt" | "updatedAt"));
                }
                serde_json::from_value(item).map_err(|e| format!("intentions[{i}]: {e}"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("intentions: expected an array".into()),
    };
    IntentionSet::new(list, trust_domain).map_err(|e| format!("intentions: {e}"))
}

/// The request for a call from `source` (a SPIFFE ID) to `destination`, with the HTTP
/// details intentions' L7 permissions match on, and the caller's address.
pub fn request(
    source: &str,
    destination: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    remote: IpAddr,
) -> writ_policy::Request {
    let mut request = writ_policy::intentions::request(
        source,
        destination,
        Some(method),
        Some(path),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let now = time::OffsetDateTime::now_utc();
    let context = request.context_mut();
    context.insert("aws:SourceIp", remote);
    context.insert("aws:SecureTransport", true);
    context.insert("aws:EpochTime", now.unix_timestamp());
    request
}

/// A call the intentions refused, as it is answered and audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Why: `denied by intention stranger -> payments`.
    pub reason: String,
    /// [`Decision::ExplicitDeny`] when a deny intention matched, else
    /// [`Decision::ImplicitDeny`].
    pub decision: Decision,
    /// For an explicit deny, the intentions that decided it, for the event's `matched`:
    /// `intention SOURCE -> DESTINATION` (a deny intention has no L7 permissions, so it
    /// is the whole intention that decided).
    pub matched: Vec<String>,
}

/// `verdict` as the gateway acts on it: `Ok` when the call is allowed, else the denial.
pub fn judge(verdict: &Verdict) -> Result<(), Denial> {
    if verdict.allowed {
        return Ok(());
    }
    let decision = match verdict.decision.outcome {
        // Refused all the same: a verdict that is not an allow is a deny.
        Decision::Allowed => Decision::ImplicitDeny,
        d => d,
    };
    let mut matched: Vec<String> = Vec::new();
    if decision == Decision::ExplicitDeny {
        for m in &verdict.decision.matched {
            let label = match m.sid.as_deref().and_then(parse_sid) {
                Some(p) => format!("intention {} -> {}", p.source, p.destination),
                None => m.label(),
            };
            if !matched.contains(&label) {
                matched.push(label);
            }
        }
    }
    Err(Denial {
        reason: verdict.reason.clone(),
        decision,
        matched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(set: &IntentionSet, call: &str, method: &str, path: &str) -> Result<(), Denial> {
        let (source, destination) = call.split_once(" -> ").unwrap();
        let request = request(
            &format!("spiffe://example.org/fn/{source}"),
            destination,
            method,
            path,
            &[],
            "127.0.0.1".parse().unwrap(),
        );
        judge(&set.decide(&request))
    }

    #[test]
    fn denials_keep_their_kind_and_the_intention_that_decided() {
        let set = compile(
            &serde_json::json!([
                {"source": "orders", "destination": "payments", "action": "allow",
                 "permissions": [{"methods": ["POST"]}]},
                {"source": "stranger", "destination": "payments", "action": "deny"},
                {"source": "*", "destination": "ledger", "action": "deny"},
            ]),
            "example.org",
        )
        .unwrap();
        assert_eq!(
            judged(&set, "orders -> payments", "POST", "/charge"),
            Ok(())
        );
        let explicit = judged(&set, "stranger -> payments", "POST", "/charge").unwrap_err();
        assert_eq!(explicit.decision, Decision::ExplicitDeny);
        assert_eq!(explicit.matched, ["intention stranger -> payments"]);
        assert_eq!(explicit.reason, "denied by intention stranger -> payments");
        let wildcard = judged(&set, "visitor -> ledger", "GET", "/").unwrap_err();
        assert_eq!(wildcard.decision, Decision::ExplicitDeny);
        assert_eq!(wildcard.matched, ["intention * -> ledger"]);
        // Nothing allowed or denied them: implicit denies, with nothing matched.
        let l7 = judged(&set, "orders -> payments", "GET", "/charge").unwrap_err();
        assert_eq!(l7.decision, Decision::ImplicitDeny);
        assert!(l7.matched.is_empty());
        assert!(l7.reason.contains("allows only POST"), "{}", l7.reason);
        let none = judged(&set, "visitor -> payments", "POST", "/charge").unwrap_err();
        assert_eq!(none.decision, Decision::ImplicitDeny);
        assert!(none.matched.is_empty());
        assert!(none.reason.contains("default deny"), "{}", none.reason);
    }
}
