//! Attestation: how a function proves who it is at cold start.
//!
//! A function's rules say which proofs it accepts; a login carries one piece of evidence.
//! Both are tagged JSON (`"type": "joinToken"`, `"type": "oidc"`), so a new method such as
//! AWS IAM (a signed STS GetCallerIdentity request) is a new variant of each enum and a new
//! arm in the server's login, without changing the existing ones or stored rules.

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use writ_identity::oidc::OidcRule;

use crate::cache::Cache;

/// One way a function may prove its identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum AttestationRule {
    /// A one-time join token made for this function (`writ token create --fn NAME`).
    JoinToken,
    /// An OIDC ID token from a trusted issuer (GitHub Actions, Kubernetes, Cognito, ...).
    Oidc(OidcRule),
}

impl AttestationRule {
    /// The method name, as evidence names it.
    pub fn method(&self) -> &'static str {
        match self {
            AttestationRule::JoinToken => "joinToken",
            AttestationRule::Oidc(_) => "oidc",
        }
    }
}

/// Checks a function's rules: at least one, each valid. Errors name the rule by index.
pub fn check_rules(rules: &[AttestationRule]) -> Result<(), String> {
    if rules.is_empty() {
        return Err("attestation: a function needs at least one attestation rule".into());
    }
    for (i, rule) in rules.iter().enumerate() {
        if let AttestationRule::Oidc(oidc) = rule {
            oidc.check().map_err(|e| format!("attestation[{i}].{e}"))?;
        }
    }
    Ok(())
}

/// The proof a login presents.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Evidence {
    /// A join token.
    JoinToken {
        /// The whole token, `writ.join.<id>.<secret>`.
        token: String,
    },
    /// An OIDC ID token (a JWT).
    Oidc {
        /// The JWT.
        token: String,
    },
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        write!(f, "Evidence({})", self.method())
    }
}

impl Evidence {
    /// The method name, matching [`AttestationRule::method`].
    pub fn method(&self) -> &'static str {
        match self {
            Evidence::JoinToken { .. } => "joinToken",
            Evidence::Oidc { .. } => "oidc",
        }
    }
}

/// How long a fetched JWKS is trusted before it is fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(300);
/// An unknown `kid` triggers a refetch (the issuer may have rotated), at most this often per
/// URL, so tokens with made-up key ids cannot make the server hammer the issuer.
const JWKS_REFETCH_MIN: Duration = Duration::from_secs(10);
/// The largest JWKS document accepted.
const JWKS_MAX_BYTES: usize = 1 << 20;

/// The JWKS at `url`: from `cache` while fresh, unless `refresh` asks for a newer copy
/// (and the cached one is older than the refetch interval).
pub async fn jwks(
    cache: &Cache<String, JwkSet>,
    client: &reqwest::Client,
    url: &str,
    refresh: bool,
) -> Result<JwkSet, String> {
    if let Some((set, age)) = cache.get_with_age(url)
        && !(refresh && age >= JWKS_REFETCH_MIN)
    {
        return Ok(set);
    }
    let set = fetch(client, url).await?;
    cache.insert(url.to_string(), set.clone());
    Ok(set)
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<JwkSet, String> {
    let mut response = client
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| format!("could not fetch the JWKS at {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "the JWKS at {url} answered HTTP {}",
            response.status().as_u16()
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("could not read the JWKS at {url}: {e}"))?
    {
        if body.len() + chunk.len() > JWKS_MAX_BYTES {
            return Err(format!("the JWKS at {url} is larger than 1 MiB"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("the JWKS at {url} is not a JWKS: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_evidence_are_tagged_json() {
        let rules: Vec<AttestationRule> = serde_json::from_str(
            r#"[{"type":"joinToken"},
                {"type":"oidc","issuer":"https://token.actions.githubusercontent.com",
                 "jwksUrl":"https://token.actions.githubusercontent.com/.well-known/jwks",
                 "audience":"writ","subject":"repo:acme/orders:ref:refs/heads/main"}]"#,
        )
        .unwrap();
        assert_eq!(rules[0], AttestationRule::JoinToken);
        assert_eq!(rules[1].method(), "oidc");
        check_rules(&rules).unwrap();
        assert!(check_rules(&[]).is_err());
        let unknown = serde_json::from_str::<AttestationRule>(r#"{"type":"awsIam"}"#);
        assert!(unknown.is_err());
        let extra = serde_json::from_str::<AttestationRule>(
            r#"{"type":"oidc","issuer":"https://i","jwksUrl":"https://i/k","audience":"a","colour":"red"}"#,
        );
        assert!(extra.is_err(), "unknown fields in a rule are refused");
        let ev: Evidence =
            serde_json::from_str(r#"{"type":"joinToken","token":"writ.join.x.y"}"#).unwrap();
        assert_eq!(ev.method(), "joinToken");
        assert!(!format!("{ev:?}").contains("writ.join"));
        assert!(serde_json::from_str::<Evidence>(r#"{"type":"oidc","token":"t","x":1}"#).is_err());
    }
}
