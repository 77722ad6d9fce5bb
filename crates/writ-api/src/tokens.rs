//! Tokens: one-time join tokens for functions, and admin tokens for operators, each
//! authorized by its IAM-language policies.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::functions::FunctionName;

/// `POST /v1/functions/{name}/join-tokens`: the body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinTokenRequest {
    /// How long it is valid until used (`10m` when absent, at most `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// A join token request for a function: the path's `{name}` and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinTokenFor {
    /// The function.
    pub function: FunctionName,
    /// The body.
    pub request: JoinTokenRequest,
}

/// `POST /v1/tokens`: an admin token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminTokenRequest {
    /// Its policies (IAM-language documents, as objects or as their text): what it may
    /// do, actions such as `writ:RegisterFunction` on resources such as `writ:fn/NAME`.
    #[schema(value_type = Vec<Object>)]
    pub policies: Vec<serde_json::Value>,
    /// Its lifetime (`8h`); it does not expire when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// A note for people.
    #[serde(default)]
    pub description: String,
}

/// A token made: shown this once. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedToken {
    /// Its id (24 hex digits), which revokes it.
    pub id: String,
    /// The token, `writ.join.<id>.<secret>` or `writ.admin.<id>.<secret>`.
    pub token: String,
    /// For a join token: the function it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// When it expires, RFC 3339; `null` for an admin token without a lifetime.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .field("token", &"(redacted)")
            .field("function", &self.function)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
