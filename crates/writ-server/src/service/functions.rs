//! The function registry: register, update, list, show, delete and reinstate functions,
//! and make join tokens for them.

use time::OffsetDateTime;

use super::{Error, Result};
use crate::admin;
use crate::attest::{self, AttestationRule};
use crate::duration;
use crate::state::AppState;
use crate::store::{FunctionRecord, TokenKind, TokenRecord};
use crate::tokens;

/// Checks a function's name: 1 to 64 lower-case letters, digits, `-` or `_`, starting with
/// a letter or digit.
pub fn valid_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "name: {name:?} is not a valid function name: use 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit"
        )))
    }
}

/// A function to register, or what an update gives it.
pub struct Registration {
    /// Its name.
    pub name: String,
    /// How it may prove itself.
    pub attestation: Vec<AttestationRule>,
    /// Its X.509-SVIDs' lifetime (`1h`), when not the server's default.
    pub x509_ttl: Option<String>,
    /// Its identity policies, each a JSON document.
    pub policies: Vec<String>,
    /// The permissions boundary of those policies (a stored JSON array of documents): the
    /// policies of the operator who gave them, so that no operator gives a function more
    /// than it may do itself. `None` when the operator is bounded by nothing.
    pub boundary: Option<String>,
}

/// Registers a function: its rules and policies checked, its TTL within the server's
/// maximum. A name already taken is [`crate::store::StoreError::Conflict`].
pub async fn register(state: &AppState, r: Registration) -> Result<FunctionRecord> {
    let record = checked_record(state, r, OffsetDateTime::now_utc().unix_timestamp())?;
    state.store.insert_function(&record).await?;
    state.forget_function(&record.name);
    Ok(record)
}

/// Replaces a function's rules, SVID lifetime and policies (checked as a registration's
/// are): its identity, life, SVIDs and join tokens stay. Returns the function as stored.
pub async fn update(state: &AppState, r: Registration) -> Result<FunctionRecord> {
    valid_name(&r.name)?;
    let current = get(state, &r.name).await?;
    let record = checked_record(state, r, current.created_at)?;
    let updated = state.store.update_function(&record).await?;
    state.forget_function(&record.name);
    if !updated {
        return Err(Error::NotFound(format!(
            "no function named {:?}",
            record.name
        )));
    }
    get(state, &record.name).await
}

/// Reinstates a revoked function, deliberately: it may log in again and starts a new life
/// now. Nothing it held before comes back: its SVIDs predate the new life and are refused
/// by this server, the revocation stays on the feed for gateways and agents (it covers
/// every SVID issued before it), revoked serials stay revoked, and join tokens made before
/// and not used are revoked. A function that is not
/// revoked is a conflict (`functionNotRevoked`).
pub async fn reinstate(state: &AppState, name: &str) -> Result<FunctionRecord> {
    valid_name(name)?;
    let current = get(state, name).await?;
    if current.revoked_at.is_none() {
        return Err(Error::Conflict {
            code: "functionNotRevoked",
            message: format!("function {name:?} is not revoked; there is nothing to reinstate"),
        });
    }
    // The new life begins in a later second than the revocation: SVIDs carry whole
    // seconds, and every SVID of the revocation's second counts as revoked (on gateways
    // and agents too), so a reinstatement in that same second waits for the next one.
    let revoked_at = current.revoked_at.unwrap_or_default();
    let mut now = OffsetDateTime::now_utc();
    if now.unix_timestamp() <= revoked_at {
        let next = OffsetDateTime::from_unix_timestamp(revoked_at + 1)
            .map_err(|e| Error::internal("the revocation's time is out of range", e))?;
        tokio::time::sleep((next - now).try_into().unwrap_or_default()).await;
        now = OffsetDateTime::now_utc();
    }
    let now = now.unix_timestamp().max(revoked_at + 1);
    let reinstated = state.store.reinstate_function(name, now).await?;
    state.forget_function(name);
    if !reinstated {
        return Err(Error::Conflict {
            code: "functionNotRevoked",
            message: format!("function {name:?} was reinstated or deleted meanwhile"),
        });
    }
    get(state, name).await
}

/// The record of a registration or an update, checked: the name, the rules, the TTL within
/// the server's maximum, the policies compiled.
fn checked_record(state: &AppState, r: Registration, created_at: i64) -> Result<FunctionRecord> {
    let id = state.function_id(&r.name).map_err(Error::Invalid)?;
    attest::check_rules(&r.attestation).map_err(Error::Invalid)?;
    let ttl = match &r.x509_ttl {
        Some(text) => {
            let ttl = duration::parse(text).map_err(|e| Error::Invalid(format!("x509Ttl: {e}")))?;
            if ttl > state.limits.x509_max_ttl {
                return Err(Error::Invalid(format!(
                    "x509Ttl: {text} is longer than the server's maximum, {}",
                    duration::format(state.limits.x509_max_ttl)
                )));
            }
            Some(ttl.whole_seconds())
        }
        None => None,
    };
    if !r.policies.is_empty() {
        admin::compile(&r.policies).map_err(Error::Invalid)?;
    }
    Ok(FunctionRecord {
        policies: (!r.policies.is_empty())
            .then(|| serde_json::to_string(&r.policies))
            .transpose()
            .map_err(|e| Error::internal("could not encode policies", e))?,
        name: r.name,
        spiffe_id: id.to_string(),
        attestation: serde_json::to_string(&r.attestation)
            .map_err(|e| Error::internal("could not encode the rules", e))?,
        x509_ttl_seconds: ttl,
        created_at,
        revoked_at: None,
        boundary: if r.policies.is_empty() {
            None
        } else {
            r.boundary
        },
    })
}

/// Every registered function.
pub async fn list(state: &AppState) -> Result<Vec<FunctionRecord>> {
    Ok(state.store.functions().await?)
}

/// The function named `name`.
pub async fn get(state: &AppState, name: &str) -> Result<FunctionRecord> {
    state
        .store
        .function(name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no function named {name:?}")))
}

/// Deletes the function named `name`; its SVIDs are revoked with it (the store writes the
/// revocation, which [`crate::state::AppState::take_revocations`] then takes in).
pub async fn delete(state: &AppState, name: &str) -> Result<()> {
    let deleted = state
        .store
        .delete_function(name, OffsetDateTime::now_utc().unix_timestamp())
        .await?;
    state.forget_function(name);
    if deleted.is_none() {
        return Err(Error::NotFound(format!("no function named {name:?}")));
    }
    Ok(())
}

/// Takes in the revocation feed at once, rather than at the next refresh, so that this
/// server enforces what was just revoked; a failure is logged (the next refresh retries).
pub async fn take_in_revocations(state: &AppState) {
    if let Err(e) = state.take_revocations().await {
        tracing::warn!(error = %e, "could not read the revocation feed back");
    }
}

/// How long a join token lives when no TTL is given.
const JOIN_TOKEN_TTL: time::Duration = time::Duration::minutes(10);
/// The longest a join token may live: it is a bearer credential until used.
const JOIN_TOKEN_MAX_TTL: time::Duration = time::Duration::days(7);

/// A join token just made: the token (shown once) and when it expires.
pub struct JoinToken {
    /// The token, its id and the hash stored.
    pub issued: tokens::IssuedToken,
    /// When it expires, Unix seconds.
    pub expires_at: i64,
}

/// A join token's lifetime: `ttl` (`10m` when absent), at most `7d`.
pub fn join_token_ttl(ttl: Option<&str>) -> Result<time::Duration> {
    let ttl = match ttl {
        Some(t) => duration::parse(t).map_err(|e| Error::Invalid(format!("ttl: {e}")))?,
        None => JOIN_TOKEN_TTL,
    };
    if ttl > JOIN_TOKEN_MAX_TTL {
        return Err(Error::Invalid(
            "ttl: a join token lives at most 7d; make one when it is deployed".into(),
        ));
    }
    Ok(ttl)
}

/// Makes a one-time join token for the function `name`, living `ttl` (`10m` by default,
/// at most `7d`). A revoked function, or one whose rules take no join tokens, gets none.
pub async fn create_join_token(
    state: &AppState,
    name: &str,
    ttl: Option<&str>,
) -> Result<JoinToken> {
    let ttl = join_token_ttl(ttl)?;
    let f = get(state, name).await?;
    // A revoked function cannot log in: a join token for it would only look like it could.
    if f.revoked_at.is_some() {
        return Err(Error::Conflict {
            code: "functionRevoked",
            message: format!(
                "function {name:?} is revoked; a join token for it could not log in \
                 (reinstate it first: writ fn reinstate {name})"
            ),
        });
    }
    join_token(state, JoinHolder::Function(name), &f.attestation, ttl).await
}

/// Whom a join token is made for: it names one function or one gateway, and logs in as
/// that one only.
#[derive(Debug, Clone, Copy)]
pub enum JoinHolder<'a> {
    /// The function of that name.
    Function(&'a str),
    /// The gateway of that name.
    Gateway(&'a str),
}

/// Makes a join token for `holder`, whose stored attestation rules (`attestation`, JSON)
/// must take join tokens, living `ttl`.
pub(super) async fn join_token(
    state: &AppState,
    holder: JoinHolder<'_>,
    attestation: &str,
    ttl: time::Duration,
) -> Result<JoinToken> {
    let (kind, name) = match holder {
        JoinHolder::Function(n) => ("function", n),
        JoinHolder::Gateway(n) => ("gateway", n),
    };
    let rules: Vec<AttestationRule> = serde_json::from_str(attestation)
        .map_err(|e| Error::internal("stored rules are unreadable", e))?;
    if !rules.contains(&AttestationRule::JoinToken) {
        return Err(Error::Invalid(format!(
            "{kind} {name:?} does not accept join tokens; its attestation rules are {}",
            rules
                .iter()
                .map(|r| r.method())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let issued = tokens::issue(TokenKind::Join)
        .map_err(|_| Error::internal("token generation failed", "random source"))?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let expires_at = now + ttl.whole_seconds();
    let (function_name, gateway_name, description) = match holder {
        JoinHolder::Function(n) => (Some(n.to_string()), None, format!("join token for {n}")),
        JoinHolder::Gateway(n) => (
            None,
            Some(n.to_string()),
            format!("join token for gateway {n}"),
        ),
    };
    state
        .store
        .insert_token(&TokenRecord {
            id: issued.id.clone(),
            kind: TokenKind::Join,
            secret_hash: issued.secret_hash.clone(),
            function_name,
            gateway_name,
            policies: None,
            description,
            created_at: now,
            expires_at: Some(expires_at),
            used_at: None,
            revoked_at: None,
        })
        .await?;
    Ok(JoinToken { issued, expires_at })
}
