//! The intentions the server sends, compiled by `writ_policy::intentions`, and the request
//! the gateway asks them about.

use std::net::IpAddr;

use serde_json::Value;
use writ_policy::intentions::{Intention, IntentionSet};

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
