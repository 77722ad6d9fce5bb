//! Revocations: of a function, of an X.509-SVID by serial, or of a token; and the feed of
//! revocations that gateways and agents follow.

use std::time::Duration;

use time::OffsetDateTime;
use writ_api::identity::RevokeRequest;

use super::{Error, Result};
use crate::state::AppState;
use crate::store::{self, RevocationKind};

/// What a revocation revokes, and the action and resource it is decided as.
pub struct Revocation {
    /// What kind of thing.
    pub kind: RevocationKind,
    /// The function's SPIFFE ID, the serial (lowercase hex, no colons) or the token id.
    pub value: String,
    /// The action decided.
    pub action: &'static str,
    /// The resource it is decided on.
    pub resource: String,
    /// The function's name, for a function.
    pub function: Option<String>,
}

/// Reads a revocation request: exactly one field, valid.
pub fn revocation(state: &AppState, body: &RevokeRequest) -> Result<Revocation> {
    match (&body.function, &body.serial, &body.token_id) {
        (Some(name), None, None) => {
            super::functions::valid_name(name)?;
            let id = state.function_id(name).map_err(Error::Invalid)?;
            Ok(Revocation {
                kind: RevocationKind::Function,
                value: id.to_string(),
                action: "writ:RevokeFunction",
                resource: id.to_string(),
                function: Some(name.clone()),
            })
        }
        (None, Some(serial), None) => {
            let serial = serial.trim().to_ascii_lowercase().replace(':', "");
            if serial.is_empty()
                || serial.len() > 40
                || !serial.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(Error::Invalid(
                    "serial: give the certificate's serial number in hex (up to 20 bytes, colons allowed)".into(),
                ));
            }
            Ok(Revocation {
                kind: RevocationKind::Serial,
                resource: format!("writ:svid/{serial}"),
                value: serial,
                action: "writ:RevokeSvid",
                function: None,
            })
        }
        (None, None, Some(token_id)) => {
            if token_id.len() != 24 || !token_id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::Invalid(
                    "tokenId: a token id is 24 hex digits".into(),
                ));
            }
            Ok(Revocation {
                kind: RevocationKind::Token,
                value: token_id.clone(),
                action: "writ:RevokeToken",
                resource: format!("writ:token/{token_id}"),
                function: None,
            })
        }
        _ => Err(Error::Invalid(
            "give exactly one of function, serial or tokenId".into(),
        )),
    }
}

/// Revokes what `r` names (a function or token must exist; a serial need not, so that one
/// can be revoked before it is seen), and forgets what this server cached of it.
pub async fn revoke(state: &AppState, r: &Revocation) -> Result<store::Revocation> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let function = r.function.as_deref();
    match r.kind {
        RevocationKind::Function => {
            let name = function.unwrap_or_default();
            if state.store.function(name).await?.is_none() {
                return Err(Error::NotFound(format!("no function named {name:?}")));
            }
        }
        RevocationKind::Token => {
            if state.store.token(&r.value).await?.is_none() {
                return Err(Error::NotFound(format!("no token with id {}", r.value)));
            }
            state.caches.token_policies.remove(&r.value);
        }
        RevocationKind::Serial => {}
    }
    let entry = state.store.revoke(r.kind, &r.value, function, now).await?;
    if let Some(name) = function {
        state.forget_function(name);
    }
    Ok(entry)
}

/// The feed's entries after position `after` (at most 1,000) and the position after them;
/// when there are none, waits for one up to `wait` (a long poll).
pub async fn feed(
    state: &AppState,
    after: i64,
    wait: Duration,
) -> Result<(Vec<store::Revocation>, i64)> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut head = state.feed_head.subscribe();
    loop {
        let entries = state.store.revocations_after(after, 1000).await?;
        if !entries.is_empty() || tokio::time::Instant::now() >= deadline {
            let next = entries.last().map_or(after.max(0), |e| e.seq);
            return Ok((entries, next));
        }
        // Woken when this server sees the feed advance (its own revocations at once,
        // other servers' within the refresh interval).
        if tokio::time::timeout_at(deadline, head.changed())
            .await
            .is_err()
        {
            continue;
        }
    }
}
