//! Attestation: how a function proves who it is at cold start.
//!
//! A function's rules say which proofs it accepts; a login carries one piece of evidence.
//! Both are tagged JSON (`"type": "joinToken"`, `"type": "oidc"`, `"type": "awsIam"`), so a
//! new method is a new variant of each enum and a new arm in the server's login, without
//! changing the existing ones or stored rules.
//!
//! AWS IAM attestation's checks live in `writ_identity::aws_iam` (no I/O); here is the one
//! thing it needs that does: sending the checked GetCallerIdentity request to STS
//! ([`call_sts`]).

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use writ_identity::aws_iam::{AwsIamRule, CallerIdentity, SignedRequest, StsCall, StsEndpoint};
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
    /// A GetCallerIdentity request signed with the function's AWS credentials, which the
    /// server sends on to STS: the role STS names must match.
    AwsIam(AwsIamRule),
}

impl AttestationRule {
    /// The method name, as evidence names it.
    pub fn method(&self) -> &'static str {
        match self {
            AttestationRule::JoinToken => "joinToken",
            AttestationRule::Oidc(_) => "oidc",
            AttestationRule::AwsIam(_) => "awsIam",
        }
    }
}

/// Checks a function's rules: at least one, each valid. Errors name the rule by index.
pub fn check_rules(rules: &[AttestationRule]) -> Result<(), String> {
    if rules.is_empty() {
        return Err("attestation: a function needs at least one attestation rule".into());
    }
    for (i, rule) in rules.iter().enumerate() {
        match rule {
            AttestationRule::JoinToken => {}
            AttestationRule::Oidc(oidc) => {
                oidc.check().map_err(|e| format!("attestation[{i}].{e}"))?;
            }
            AttestationRule::AwsIam(aws) => {
                aws.check().map_err(|e| format!("attestation[{i}].{e}"))?;
            }
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
    /// A signed STS GetCallerIdentity request.
    AwsIam {
        /// The request, as the function signed it.
        request: SignedRequest,
    },
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token, the session token or the signature.
        write!(f, "Evidence({})", self.method())
    }
}

impl Evidence {
    /// The method name, matching [`AttestationRule::method`].
    pub fn method(&self) -> &'static str {
        match self {
            Evidence::JoinToken { .. } => "joinToken",
            Evidence::Oidc { .. } => "oidc",
            Evidence::AwsIam { .. } => "awsIam",
        }
    }
}

/// How this server checks AWS IAM attestations: its id, which a signed request must name in
/// `x-writ-server-id`, and the STS endpoint it sends requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsIamSettings {
    /// This server's id (`--aws-iam-server-id`; the trust domain by default).
    pub server_id: String,
    /// Where GetCallerIdentity requests are sent (`--aws-sts-endpoint`).
    pub sts_endpoint: StsEndpoint,
}

/// How long a call to STS may take, connection included.
const STS_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends a checked GetCallerIdentity request to STS (the server's own endpoint, in
/// `call.url`) and reads the caller's identity from the answer, at most
/// [`writ_identity::aws_iam::MAX_ANSWER_BYTES`] of it. Redirects are not followed. Errors
/// name the endpoint and STS's error code, never a header value.
pub async fn call_sts(client: &reqwest::Client, call: &StsCall) -> Result<CallerIdentity, String> {
    let mut request = client
        .post(&call.url)
        .timeout(STS_TIMEOUT)
        .body(call.body.clone());
    for (name, value) in &call.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let mut response = request.send().await.map_err(|e| {
        format!(
            "could not reach STS at {}: {}",
            call.url,
            std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_else(|| if e.is_timeout() {
                    "timed out".into()
                } else {
                    "the request failed".into()
                })
        )
    })?;
    let status = response.status().as_u16();
    let limit = writ_identity::aws_iam::MAX_ANSWER_BYTES;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| format!("could not read STS's answer from {}", call.url))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!(
                "STS's answer from {} is larger than {limit} bytes",
                call.url
            ));
        }
        body.extend_from_slice(&chunk);
    }
    writ_identity::aws_iam::read_answer(status, &body)
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
        let unknown = serde_json::from_str::<AttestationRule>(r#"{"type":"awsIamX"}"#);
        assert!(unknown.is_err());
        let aws: AttestationRule = serde_json::from_str(
            r#"{"type":"awsIam","roleArns":["arn:aws:iam::123456789012:role/orders-*"],"sessionName":"orders"}"#,
        )
        .unwrap();
        assert_eq!(aws.method(), "awsIam");
        check_rules(&[aws]).unwrap();
        let bad: AttestationRule =
            serde_json::from_str(r#"{"type":"awsIam","roleArns":["arn:aws:iam::*:role/x"]}"#)
                .unwrap();
        let e = check_rules(&[AttestationRule::JoinToken, bad]).unwrap_err();
        assert!(e.starts_with("attestation[1].roleArns[0]:"), "{e}");
        let ev: Evidence = serde_json::from_str(
            r#"{"type":"awsIam","request":{"method":"POST","url":"https://sts.us-east-1.amazonaws.com/",
                "headers":{"authorization":"AWS4-HMAC-SHA256 Credential=ASIAX/20250101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00",
                           "x-amz-security-token":"SESSIONTOKEN"},"body":""}}"#,
        )
        .unwrap();
        assert_eq!(ev.method(), "awsIam");
        let shown = format!("{ev:?}");
        assert!(
            !shown.contains("SESSIONTOKEN") && !shown.contains("Signature"),
            "{shown}"
        );
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
