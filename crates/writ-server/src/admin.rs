//! Operators' authorization: an admin token carries IAM-language identity policies, and
//! every admin call is decided by the policy engine, so operators can be scoped to some
//! functions or some actions.
//!
//! Actions and the resources they act on:
//!
//! | action | resource |
//! |---|---|
//! | `writ:RegisterFunction`, `writ:UpdateFunction`, `writ:GetFunction`, `writ:DeleteFunction`, `writ:CreateJoinToken` | the function's SPIFFE ID |
//! | `writ:PutAttestationRules` (rules other than join tokens), `writ:PutFunctionPolicy` | the function's SPIFFE ID |
//! | `writ:ListFunctions` | `writ:functions` |
//! | `writ:RevokeFunction`, `writ:ReinstateFunction` | the function's SPIFFE ID |
//! | `writ:RevokeSvid` | `writ:svid/<serial hex>` |
//! | `writ:RevokeToken` | `writ:token/<id>` |
//! | `writ:CreateToken` | `writ:token` |
//! | `writ:DescribeCa`, `writ:RotateCa` | `writ:ca` |
//! | `writ:ReadRevocations` | `writ:revocations` |
//! | `writ:ReadAudit`, `writ:PutAuditEvents` | `writ:audit` |
//! | `writ:ReadIntentions` | `writ:intentions` |
//! | `writ:LeaseQuota` (gateways counting API-key quotas together) | `writ:quotas` |
//! | `writ:WriteIntention`, `writ:DeleteIntention` | `writ:intention/SOURCE/DESTINATION` (`*` for any function) |
//! | `secrets:CreateSecret`, `PutSecretValue`, `GetSecretValue`, `DescribeSecret`, `DeleteSecret`, `RestoreSecret`, `PutResourcePolicy` | `writ:secret/NAME` |
//! | `secrets:ListSecrets` | `writ:secrets` |
//!
//! An operator cannot give a function more than it may do itself: the policies of the
//! token that sets a function's identity policies become the function's permissions
//! boundary, and the function may do only what both allow (docs/server.md).

use writ_policy::{
    CompiledPolicy, Context, Decision, ParseOptions, PolicyKind, PolicySet, Request,
};

/// Every admin action writ knows, for validation and docs.
pub const ACTIONS: &[&str] = &[
    "writ:RegisterFunction",
    "writ:UpdateFunction",
    "writ:PutAttestationRules",
    "writ:PutFunctionPolicy",
    "writ:GetFunction",
    "writ:ListFunctions",
    "writ:DeleteFunction",
    "writ:CreateJoinToken",
    "writ:CreateToken",
    "writ:RevokeFunction",
    "writ:ReinstateFunction",
    "writ:RevokeSvid",
    "writ:RevokeToken",
    "writ:DescribeCa",
    "writ:RotateCa",
    "writ:ReadRevocations",
    "writ:ReadAudit",
    "writ:PutAuditEvents",
    "writ:ReadIntentions",
    "writ:WriteIntention",
    "writ:DeleteIntention",
    "writ:LeaseQuota",
];

/// The policy of the bootstrap token: every action on everything. As the boundary of the
/// functions it gives policies to, it limits them in nothing.
pub const BOOTSTRAP_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [{"Sid": "Bootstrap", "Effect": "Allow", "Action": "*", "Resource": "*"}]
}"#;

/// Compiles a token's policy documents into one set. Errors carry the policy index, the
/// JSON path and line:column.
pub fn compile(documents: &[String]) -> Result<PolicySet, String> {
    if documents.is_empty() {
        return Err("policies: an admin token needs at least one policy".into());
    }
    let mut set = PolicySet::new();
    for (i, text) in documents.iter().enumerate() {
        let policy = writ_policy::parse(text, &ParseOptions::new(PolicyKind::Identity))
            .into_result()
            .map_err(|diagnostics| {
                let errors: Vec<String> = diagnostics
                    .iter()
                    .filter(|d| d.is_error())
                    .map(|d| format!("policies[{i}]:{d}"))
                    .collect();
                errors.join("; ")
            })?;
        let compiled =
            CompiledPolicy::new(&format!("policies[{i}]"), PolicyKind::Identity, &policy)
                .map_err(|e| format!("policies[{i}]: {e}"))?;
        set.add(compiled);
    }
    Ok(set)
}

/// Decides one admin call.
pub fn decide(
    policies: &PolicySet,
    action: &str,
    resource: &str,
    token_id: &str,
    source: Option<std::net::IpAddr>,
    now: time::OffsetDateTime,
) -> Decision {
    let mut context = Context::new();
    context.insert("aws:SecureTransport", true);
    context.insert("aws:EpochTime", now.unix_timestamp());
    if let Ok(t) = now.format(&time::format_description::well_known::Rfc3339) {
        context.insert("aws:CurrentTime", t);
    }
    if let Some(ip) = source {
        context.insert("aws:SourceIp", ip);
    }
    context.insert("writ:TokenId", token_id);
    policies.evaluate(&Request::new(action, resource).with_context(context))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_policies_allow_only_what_they_name() {
        let scoped = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["writ:RegisterFunction","writ:CreateJoinToken"],
             "Resource":"spiffe://example.org/fn/team-a-*"},
            {"Effect":"Deny","Action":"writ:*","Resource":"*",
             "Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
        let set = compile(&[scoped.to_string()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let inside = Some("10.1.2.3".parse().unwrap());
        let outside = Some("192.0.2.1".parse().unwrap());
        let a = "spiffe://example.org/fn/team-a-orders";
        let b = "spiffe://example.org/fn/team-b-orders";
        assert!(decide(&set, "writ:RegisterFunction", a, "t", inside, now).is_allowed());
        assert!(!decide(&set, "writ:RegisterFunction", b, "t", inside, now).is_allowed());
        assert!(!decide(&set, "writ:DeleteFunction", a, "t", inside, now).is_allowed());
        assert!(!decide(&set, "writ:RegisterFunction", a, "t", outside, now).is_allowed());
        let all = compile(&[BOOTSTRAP_POLICY.to_string()]).unwrap();
        for action in ACTIONS {
            assert!(decide(&all, action, "writ:ca", "t", None, now).is_allowed());
        }
    }

    #[test]
    fn invalid_policies_are_refused_with_their_position() {
        let err = compile(&[
            r#"{"Statement":[{"Effect":"Alow","Action":"writ:*","Resource":"*"}]}"#.into(),
        ])
        .unwrap_err();
        assert!(err.starts_with("policies[0]:"), "{err}");
        assert!(err.contains("Effect"), "{err}");
        assert!(compile(&[]).is_err());
    }
}
