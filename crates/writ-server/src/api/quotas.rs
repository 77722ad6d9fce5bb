//! `POST /v1/quotas/lease`: gateways that count an API key's quota together lease
//! admissions from the server's count ([`crate::service::quotas`]). Each lease is audited
//! (not durably: a lease is no admin change), with the key, the period and the count.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use time::OffsetDateTime;
use writ_api::quotas::{QuotaLease, QuotaLeaseRequest};

use super::access::Authorized;
use super::{ApiError, ApiJson};
use crate::state::AppState;
use crate::tls::ConnInfo;

/// The action the lease route decides, on [`RESOURCE`]: give it to gateways' tokens only.
pub const ACTION: &str = "writ:LeaseQuota";

/// The resource the lease route decides on.
pub const RESOURCE: &str = "writ:quotas";

pub(super) async fn lease(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<QuotaLeaseRequest>,
) -> Result<Json<QuotaLease>, ApiError> {
    let grant = auth
        .grant(ACTION)
        .ok_or_else(|| ApiError::internal("the quota lease route was reached undecided", ACTION))?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let lease = crate::service::quotas::lease(&state.store, &body, now).await?;
    let mut event = auth.event(&state, &conn, grant);
    event.reason = Some(format!(
        "API key {}, period of {} s from {}: granted {} of {} asked; {} of {} counted",
        body.key,
        body.period_seconds,
        super::rfc3339(body.period_start),
        lease.granted,
        body.want,
        lease.counted,
        body.limit
    ));
    state.audit.record(event)?;
    Ok(Json(lease))
}
