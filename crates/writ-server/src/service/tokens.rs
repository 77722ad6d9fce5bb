//! Admin tokens: an operator makes tokens for other operators and gateways, each with
//! IAM-language policies no wider than what it needs ([`crate::admin`]).

use time::OffsetDateTime;

use super::{Error, Result};
use crate::admin;
use crate::duration;
use crate::state::AppState;
use crate::store::{TokenKind, TokenRecord};
use crate::tokens;

/// An admin token just made: the token (shown once) and when it expires, if it does.
pub struct AdminToken {
    /// The token, its id and the hash stored.
    pub issued: tokens::IssuedToken,
    /// When it expires, Unix seconds; `None`: never.
    pub expires_at: Option<i64>,
}

/// Makes an admin token with `policies` (each a JSON document, checked), living `ttl`
/// (`None`: until revoked), described as `description`.
pub async fn create_admin(
    state: &AppState,
    policies: Vec<String>,
    ttl: Option<&str>,
    description: String,
) -> Result<AdminToken> {
    admin::compile(&policies).map_err(Error::Invalid)?;
    let ttl = ttl
        .map(duration::parse)
        .transpose()
        .map_err(|e| Error::Invalid(format!("ttl: {e}")))?;
    let issued = tokens::issue(TokenKind::Admin)
        .map_err(|_| Error::internal("token generation failed", "random source"))?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let expires_at = ttl.map(|t| now + t.whole_seconds());
    state
        .store
        .insert_token(&TokenRecord {
            id: issued.id.clone(),
            kind: TokenKind::Admin,
            secret_hash: issued.secret_hash.clone(),
            function_name: None,
            gateway_name: None,
            policies: Some(
                serde_json::to_string(&policies)
                    .map_err(|e| Error::internal("could not encode policies", e))?,
            ),
            description,
            created_at: now,
            expires_at,
            used_at: None,
            revoked_at: None,
        })
        .await?;
    Ok(AdminToken { issued, expires_at })
}
