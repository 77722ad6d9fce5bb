//! Gateways: authenticated by the X.509-SVID writ issued them
//! (`spiffe://TD/writ/gateway/NAME`) over mutual TLS, for their own certificate's renewal.
//! A function's SVID is never a gateway's, nor a gateway's a function's.

use writ_identity::SpiffeId;

use super::{Caller, CallerKind};
use crate::api::ApiError;
use crate::state::AppState;
use crate::store::GatewayRecord;
use crate::tls::ConnInfo;

/// A gateway, authenticated.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// Its SPIFFE ID.
    pub id: SpiffeId,
    /// Its registration.
    pub record: GatewayRecord,
    /// The serial (lowercase hex) of the X.509-SVID it called with.
    pub serial: String,
}

/// The gateway's name in `id`, if `id` is a gateway's of `trust_domain`.
pub fn gateway_name<'a>(id: &'a SpiffeId, trust_domain: &str) -> Option<&'a str> {
    id.path()
        .strip_prefix("/writ/gateway/")
        .filter(|name| !name.contains('/') && id.trust_domain() == trust_domain)
}

/// Authenticates the caller by its X.509-SVID (already verified against the bundle by
/// TLS) as a registered, unrevoked gateway. Refusals are audited with their cause.
pub(super) async fn by_svid(
    state: &AppState,
    conn: &ConnInfo,
    action: &'static str,
) -> Result<Caller, ApiError> {
    let refuse = |actor: &str, reason: &str| super::refuse_svid(state, conn, action, actor, reason);
    let super::PeerSvid {
        id,
        serial,
        not_before,
    } = super::peer_svid(
        conn,
        "no client certificate: connect with the gateway's current X.509-SVID",
    )
    .map_err(|why| refuse("anonymous", why))?;
    let Some(name) = gateway_name(&id, state.trust_domain.as_str()) else {
        return Err(refuse(id.as_str(), "not a gateway of this trust domain"));
    };
    if state.serial_revoked(&serial) {
        return Err(refuse(id.as_str(), &format!("SVID {serial} is revoked")));
    }
    let Some(record) = state.store.gateway(name).await? else {
        return Err(refuse(id.as_str(), "no such gateway"));
    };
    if record.revoked_at.is_some() {
        return Err(refuse(id.as_str(), "the gateway is revoked"));
    }
    // Certificates are backdated 30 s (see the function's check).
    if not_before + 30 < record.created_at {
        return Err(refuse(
            id.as_str(),
            "the SVID predates the gateway's registration",
        ));
    }
    Ok(Caller {
        actor: id.to_string(),
        authenticated_by: "x509Svid",
        kind: CallerKind::Gateway(Gateway { id, record, serial }),
    })
}
