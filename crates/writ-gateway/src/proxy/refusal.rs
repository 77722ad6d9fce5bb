//! Refusals: what the gateway answers itself (the JSON error, `WWW-Authenticate`,
//! `Retry-After`), and what becomes of the body a refused request left unread: read and
//! dropped so that the connection carries on, or the connection closed.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use writ_audit::Decision;

use super::{BODY_TIMEOUT, Body, RequestBody};
use crate::metrics::Label;

/// A refusal or failure answered by the gateway itself.
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
    /// For the audit log (may say more than the caller is told).
    pub(super) reason: String,
    pub(super) decision: Label,
    /// The policy decision that refused it, when intentions made one.
    pub(super) ruling: Option<Decision>,
    /// The intentions that decided an explicit deny.
    pub(super) matched: Vec<String>,
    pub(super) retry_after: Option<Duration>,
    /// The request's body was left partly read: the response ends the connection.
    pub(super) close: bool,
}

impl Refusal {
    pub(super) fn new(
        status: StatusCode,
        code: &'static str,
        decision: Label,
        message: impl Into<String>,
    ) -> Refusal {
        let message = message.into();
        Refusal {
            status,
            code,
            reason: message.clone(),
            message,
            decision,
            ruling: None,
            matched: Vec::new(),
            retry_after: None,
            close: false,
        }
    }

    pub(super) fn unauthenticated(reason: impl Into<String>) -> Refusal {
        Refusal {
            reason: reason.into(),
            ..Refusal::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                Label::Unauthenticated,
                "authentication failed",
            )
        }
    }
}

impl Refusal {
    pub(super) fn with_reason(mut self, reason: String) -> Refusal {
        self.reason = reason;
        self
    }
}

/// The answer when the budget for bodies read before authentication (`limit` bytes) is
/// spent: try again shortly.
pub(super) fn overloaded(limit: usize) -> Refusal {
    Refusal {
        retry_after: Some(Duration::from_secs(1)),
        ..Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            Label::Overloaded,
            "the gateway is holding all the unauthenticated request bodies it may; try again shortly",
        )
        .with_reason(format!(
            "the budget for bodies read before authentication ({limit} bytes) is spent"
        ))
    }
}

/// A body that did not arrive within [`BODY_TIMEOUT`].
pub(super) fn body_timeout() -> Refusal {
    Refusal::new(
        StatusCode::REQUEST_TIMEOUT,
        "timeout",
        Label::BadRequest,
        format!(
            "the body did not arrive within {} s",
            BODY_TIMEOUT.as_secs()
        ),
    )
}

/// A body over the route's limit: it is not read, so the connection ends.
pub(super) fn too_large(max: usize) -> Refusal {
    Refusal {
        close: true,
        ..Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "tooLarge",
            Label::TooLarge,
            format!("the body is over this route's {max} bytes"),
        )
    }
}

/// The answer to a request refused before its body was read.
pub(super) async fn refused<B: RequestBody>(r: &Refusal, req: Request<B>) -> Response<Body> {
    let awaits = awaits_continue(req.headers());
    finish_refusal(r, Some(req.into_body()), awaits).await
}

/// Whether the client sends its body only after `100 Continue`.
pub(super) fn awaits_continue(headers: &HeaderMap) -> bool {
    headers.contains_key(header::EXPECT)
}

/// The answer to a refusal, once the body it left `unread` is dealt with. A body the
/// refusal never needed is read and dropped (see [`discard`]) so the connection can carry
/// the next request; one that cannot be, or one the client sends only after
/// `100 Continue`, is not read, and the answer says the connection ends rather than the
/// client finding out from a closed socket.
pub(super) async fn finish_refusal<B: RequestBody>(
    r: &Refusal,
    unread: Option<B>,
    awaits_continue: bool,
) -> Response<Body> {
    let mut response = refusal_response(r);
    let kept = !r.close
        && match unread {
            None => true,
            Some(body) => !awaits_continue && discard(body).await,
        };
    if !kept {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The most of a refused request's body the gateway reads to keep its connection.
const DISCARD_MAX: u64 = 64 * 1024;

/// How long it waits for that body.
const DISCARD_TIME: Duration = Duration::from_secs(1);

/// Reads and drops a body, up to [`DISCARD_MAX`] bytes within [`DISCARD_TIME`]; whether
/// it ended there (so the connection can carry another request).
async fn discard<B: RequestBody>(mut body: B) -> bool {
    if body.is_end_stream() {
        return true;
    }
    if body.size_hint().lower() > DISCARD_MAX {
        return false;
    }
    let drain = async {
        let mut seen = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > DISCARD_MAX {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(DISCARD_TIME, drain)
        .await
        .unwrap_or(false)
}

/// The answer to `r`: `{"error": {"code", "message"}}` with its status, and
/// `WWW-Authenticate` on a 401, `Retry-After` when it says when to try again.
fn refusal_response(r: &Refusal) -> Response<Body> {
    let body = json!({"error": {"code": r.code, "message": r.message}}).to_string();
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *response.status_mut() = r.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if r.status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"writ\""),
        );
    }
    if let Some(wait) = r.retry_after {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            headers.insert(header::RETRY_AFTER, v);
        }
    }
    response
}
