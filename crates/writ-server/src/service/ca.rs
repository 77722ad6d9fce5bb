//! The certificate authority: rotating the trust domain's signing keys.

use time::OffsetDateTime;

use super::{Error, Result};
use crate::authority;
use crate::duration;
use crate::state::AppState;
use crate::store::KeyKind;

/// How long a new key is published before it signs, unless the request says otherwise:
/// long enough for gateways and agents, which follow the bundle every second, to have it.
const DEFAULT_ACTIVATE_AFTER: time::Duration = time::Duration::minutes(1);
/// The longest a new key may wait to sign.
const MAX_ACTIVATE_AFTER: time::Duration = time::Duration::days(30);

/// Makes new signing keys of `kind` (`x509`, `jwt` or `all`), published at once and
/// signing after `activate_after` (`1m` by default; `0s` at once; at most `30d`). All
/// kinds rotate together or not at all; the keys they replace stay in the bundle until
/// what they signed has expired. The server takes the new keys in before this returns.
pub async fn rotate(state: &AppState, kind: &str, activate_after: Option<&str>) -> Result<()> {
    let kinds: &[KeyKind] = match kind {
        "x509" => &[KeyKind::X509],
        "jwt" => &[KeyKind::Jwt],
        "all" => &[KeyKind::X509, KeyKind::Jwt],
        other => {
            return Err(Error::Invalid(format!(
                "kind: {other:?} is not x509, jwt or all"
            )));
        }
    };
    let delay = match activate_after {
        None => DEFAULT_ACTIVATE_AFTER,
        Some("0s" | "0") => time::Duration::ZERO,
        Some(text) => {
            duration::parse(text).map_err(|e| Error::Invalid(format!("activateAfter: {e}")))?
        }
    };
    if delay > MAX_ACTIVATE_AFTER {
        return Err(Error::Invalid(
            "activateAfter: at most 30d (a new CA lives 365d from when it is made)".into(),
        ));
    }
    let now = OffsetDateTime::now_utc();
    let active_from = now.unix_timestamp() + delay.whole_seconds();
    let mut new_keys = Vec::new();
    for kind in kinds {
        // The replaced key may sign right up to `active_from` a credential that lives the
        // longest lifetime allowed; it stays in the bundle until that expires.
        let (record, longest) = match kind {
            KeyKind::X509 => (
                authority::new_ca_record(&state.trust_domain, &state.master, now, active_from),
                state.limits.x509_max_ttl,
            ),
            KeyKind::Jwt => (
                authority::new_jwt_record(&state.trust_domain, &state.master, now, active_from),
                state.limits.jwt_max_ttl,
            ),
        };
        let record = record.map_err(|e| Error::internal("could not make a new key", e))?;
        // Certificates are backdated by 30 s; a minute of margin covers that and clock skew.
        let retire_at = active_from + longest.whole_seconds() + 60;
        new_keys.push((record, retire_at));
    }
    state.store.rotate_keys(&new_keys).await?;
    Ok(())
}

/// Takes in the keys just rotated, so that this server signs and publishes with them.
pub async fn take_in_keys(state: &AppState) -> Result<()> {
    state
        .refresh(OffsetDateTime::now_utc())
        .await
        .map_err(|e| Error::internal("could not load the new keys", e))
}
