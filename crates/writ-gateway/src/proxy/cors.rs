//! CORS: preflights answered by the gateway, and the headers that let a browser read an
//! answer from an allowed origin.

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::Body;
use crate::config::Cors;

/// `origin`, if the route's CORS settings allow it.
fn origin_allowed<'a>(c: &Cors, origin: Option<&'a HeaderValue>) -> Option<&'a HeaderValue> {
    let origin = origin?;
    let text = origin.to_str().ok()?;
    c.allow_origins
        .iter()
        .any(|o| o == "*" || o == text)
        .then_some(origin)
}

/// Adds to an answer the headers that let a browser at an allowed `origin` read it.
pub(super) fn add_cors(c: &Cors, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    if let Some(o) = origin_allowed(c, origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        if c.allow_credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

/// The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`): 204,
/// with what the route allows when the origin is allowed, and nothing more otherwise.
pub(super) fn preflight(c: &Cors, origin: Option<&HeaderValue>) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    if origin_allowed(c, origin).is_some() {
        add_cors(c, origin, headers);
        if let Ok(v) = HeaderValue::from_str(&c.allow_methods.join(", ")) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        if !c.allow_headers.is_empty()
            && let Ok(v) = HeaderValue::from_str(&c.allow_headers.join(", "))
        {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        if let Ok(v) = HeaderValue::from_str(&c.max_age.to_string()) {
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, v);
        }
    }
    response
}
