//! Authorization, the third step: a caller with a SPIFFE ID is decided by the intentions,
//! with the request's method, path and the headers intentions condition on; an mTLS
//! connection keeps its last decision for a request that repeats all of it.

use hyper::StatusCode;

use super::authenticate::Caller;
use super::refusal::Refusal;
use super::{Connection, Gateway, Live};
use crate::intentions::Denial;
use crate::metrics::Label;

/// The last authorization decision on a connection, and what it was made on: the
/// intentions (by digest), the route's function, the method, the path and the values of
/// the headers intentions condition on. Intentions decide on nothing else (the caller is
/// the connection's), so the same request under the same intentions gets the same answer.
pub(super) struct Decided {
    intentions: u64,
    /// The route's [`super::Live`] key: unique across reloads.
    route: u64,
    method: hyper::Method,
    path: String,
    headers: Vec<(String, String)>,
    /// Allowed, or the refusal.
    verdict: Result<(), Denial>,
}

impl Gateway {
    pub(super) fn authorize(
        &self,
        live: &Live,
        caller: &Caller,
        parts: &hyper::http::request::Parts,
        conn: &Connection,
        control: &crate::control::Control,
    ) -> Result<(), Refusal> {
        // Names as a CGI/WSGI upstream reads them (`_` as `-`). A header an intention
        // conditions on must come once, with a visible-ASCII value: otherwise the decision
        // could see one value (or none) and the upstream another.
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // Only headers some intention conditions on enter the decision (most deployments
        // have none, and the request path then allocates nothing for headers).
        if !control.intention_headers.is_empty() {
            for (k, v) in &parts.headers {
                let raw = k.as_str();
                let name: std::borrow::Cow<'_, str> = if raw.contains('_') {
                    raw.replace('_', "-").into()
                } else {
                    raw.into()
                };
                if !control.intention_headers.contains(name.as_ref()) {
                    continue;
                }
                let visible = v.as_bytes().iter().all(|b| (0x20..0x7f).contains(b));
                if !visible || !seen.insert(name.to_string()) {
                    return Err(Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "invalidRequest",
                        Label::BadRequest,
                        format!(
                            "header {name}: an intention conditions on it, so it must come once, in visible ASCII"
                        ),
                    ));
                }
                if let Ok(value) = v.to_str() {
                    headers.push((name.into_owned(), value.to_string()));
                }
            }
        }
        // The caller is told the method and path too; the event has them already.
        let refused = |denial: Denial| Refusal {
            ruling: Some(denial.decision),
            matched: denial.matched,
            ..Refusal::new(
                StatusCode::FORBIDDEN,
                "accessDenied",
                Label::Denied,
                format!("{} {}: {}", parts.method, parts.uri.path(), denial.reason),
            )
            .with_reason(denial.reason)
        };
        // An mTLS caller is the connection's, so its last decision stands for a request
        // that repeats everything it was made on (intentions condition on the source,
        // the destination, the method, the path and headers, and on nothing else).
        let path = parts.uri.path();
        let mut decided = caller.svid.as_ref().map(|_| {
            conn.decided
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        });
        if let Some(Some(d)) = decided.as_deref()
            && d.intentions == control.intentions_digest
            && d.route == live.key
            && d.method == parts.method
            && d.path == path
            && d.headers == headers
        {
            return d.verdict.clone().map_err(refused);
        }
        let request = crate::intentions::request(
            &caller.actor,
            &live.route.function,
            parts.method.as_str(),
            path,
            &headers,
            conn.remote.ip(),
        );
        let verdict = control.intentions.decide(&request);
        let verdict = crate::intentions::judge(&verdict);
        if let Some(slot) = decided.as_deref_mut() {
            *slot = Some(Decided {
                intentions: control.intentions_digest,
                route: live.key,
                method: parts.method.clone(),
                path: path.to_owned(),
                headers,
                verdict: verdict.clone(),
            });
        }
        verdict.map_err(refused)
    }
}
