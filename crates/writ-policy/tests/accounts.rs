//! Accounts in AWS's evaluation logic: a resource policy that names an account delegates to
//! that account's identity policies, and across accounts both sides must allow. The cases
//! follow AWS's documentation of policy evaluation within an account and across accounts.

use writ_policy::{
    CompiledPolicy, Context, DenyReason, Outcome, ParseOptions, PolicyKind, PolicySet, Principal,
    Request,
};

fn compile(kind: PolicyKind, name: &str, text: &str) -> CompiledPolicy {
    let policy = writ_policy::parse(text, &ParseOptions::new(kind))
        .into_result()
        .unwrap_or_else(|d| panic!("{name}: {d:#?}"));
    CompiledPolicy::new(name, kind, &policy).expect("a parsed policy compiles")
}

fn set(policies: &[(PolicyKind, &str)]) -> PolicySet {
    let mut set = PolicySet::new();
    for (i, (kind, text)) in policies.iter().enumerate() {
        set.add(compile(*kind, &format!("p{i}"), text));
    }
    set
}

fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

/// A resource policy allowing `s3:GetObject` to the given `AWS` principal.
fn grant_to(who: &str) -> String {
    doc(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{who}"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}}"#
    ))
}

const ALLOW_GET: &str = r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#;
const ACCOUNT: &str = "111122223333";
const OTHER: &str = "444455556666";
const USER: &str = "arn:aws:iam::111122223333:user/alice";
const ROLE: &str = "arn:aws:iam::111122223333:role/team/app";
const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/app/s1";

/// `s3:GetObject` on an object of a bucket in `owner`'s account.
fn get(who: &str, owner: &str) -> Request {
    let mut c = Context::new();
    c.insert("aws:ResourceAccount", owner);
    Request::new("s3:GetObject", "arn:aws:s3:::bucket/key")
        .with_context(c)
        .with_principal(Principal::parse(who).expect("principal"))
        .with_principal_context()
}

#[test]
fn an_account_principal_grants_nothing_without_an_identity_policy() {
    for account in [ACCOUNT, "arn:aws:iam::111122223333:root"] {
        let resource_only = set(&[(PolicyKind::Resource, &grant_to(account))]);
        let with_identity = set(&[
            (PolicyKind::Resource, &grant_to(account)),
            (PolicyKind::Identity, &doc(ALLOW_GET)),
        ]);
        for who in [USER, ROLE, SESSION] {
            let d = resource_only.evaluate(&get(who, ACCOUNT));
            assert_eq!(d.outcome, Outcome::ImplicitDeny, "{account} for {who}");
            assert_eq!(d.reason, Some(DenyReason::AccountDelegated), "{who}");
            assert_eq!(d.matched.len(), 1, "the delegating statement is named");
            assert!(
                with_identity.evaluate(&get(who, ACCOUNT)).is_allowed(),
                "{account} with an identity policy for {who}"
            );
        }
        // A request by the account itself (its root user) is named exactly.
        for root in [ACCOUNT, "arn:aws:iam::111122223333:root"] {
            assert!(resource_only.evaluate(&get(root, ACCOUNT)).is_allowed());
        }
    }
}

#[test]
fn naming_the_user_the_role_or_the_session_grants_within_the_account() {
    // Named exactly or through its role, the caller needs no identity policy; named through
    // its account, it does.
    for (named, who) in [
        (USER, USER),
        (ROLE, SESSION),
        (SESSION, SESSION),
        (ROLE, ROLE),
    ] {
        let s = set(&[(PolicyKind::Resource, &grant_to(named))]);
        assert!(
            s.evaluate(&get(who, ACCOUNT)).is_allowed(),
            "{named}: {who}"
        );
    }
    let by_account = set(&[(PolicyKind::Resource, &grant_to(ACCOUNT))]);
    assert!(!by_account.evaluate(&get(SESSION, ACCOUNT)).is_allowed());
    // A statement naming both the account and the role grants as the role does.
    let both = doc(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":["{ACCOUNT}","{ROLE}"]}},"Action":"s3:GetObject","Resource":"*"}}"#
    ));
    let s = set(&[(PolicyKind::Resource, &both)]);
    assert!(s.evaluate(&get(SESSION, ACCOUNT)).is_allowed());
    assert!(!s.evaluate(&get(USER, ACCOUNT)).is_allowed());
}

#[test]
fn across_accounts_both_the_identity_and_the_resource_side_must_allow() {
    // The bucket is in OTHER; the callers are in ACCOUNT.
    for named in [
        USER,
        ROLE,
        SESSION,
        ACCOUNT,
        "arn:aws:iam::111122223333:root",
    ] {
        let resource_only = set(&[(PolicyKind::Resource, &grant_to(named))]);
        let both = set(&[
            (PolicyKind::Resource, &grant_to(named)),
            (PolicyKind::Identity, &doc(ALLOW_GET)),
        ]);
        let who = if named == ROLE || named == SESSION {
            SESSION
        } else {
            USER
        };
        let d = resource_only.evaluate(&get(who, OTHER));
        assert_eq!(d.outcome, Outcome::ImplicitDeny, "{named}");
        assert_eq!(d.reason, Some(DenyReason::CrossAccountNoIdentityAllow));
        assert!(both.evaluate(&get(who, OTHER)).is_allowed(), "{named}");
    }
    // The identity side alone is not enough either.
    let identity_only = set(&[(PolicyKind::Identity, &doc(ALLOW_GET))]);
    let d = identity_only.evaluate(&get(USER, OTHER));
    assert_eq!(d.reason, Some(DenyReason::CrossAccountNoResourceAllow));
    assert!(identity_only.evaluate(&get(USER, ACCOUNT)).is_allowed());
    // A resource policy naming another account does not match at all.
    let s = set(&[
        (PolicyKind::Resource, &grant_to(OTHER)),
        (PolicyKind::Identity, &doc(ALLOW_GET)),
    ]);
    assert_eq!(
        s.evaluate(&get(USER, OTHER)).reason,
        Some(DenyReason::CrossAccountNoResourceAllow)
    );
}

#[test]
fn across_accounts_the_boundary_still_limits_the_identity_side() {
    let boundary = doc(r#"{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}"#);
    let s = set(&[
        (PolicyKind::Resource, &grant_to(USER)),
        (PolicyKind::Identity, &doc(ALLOW_GET)),
        (PolicyKind::PermissionsBoundary, &boundary),
    ]);
    // Within the account, naming the user exactly passes the boundary; across, it does not.
    assert!(s.evaluate(&get(USER, ACCOUNT)).is_allowed());
    assert_eq!(
        s.evaluate(&get(USER, OTHER)).reason,
        Some(DenyReason::NotInBoundary)
    );
}

#[test]
fn the_resource_account_comes_from_the_arn_before_the_context() {
    let table = "arn:aws:dynamodb:us-east-1:444455556666:table/orders";
    let identity = doc(r#"{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"*"}"#);
    let s = set(&[(PolicyKind::Identity, &identity)]);
    let mut c = Context::new();
    // A caller-supplied key cannot pull the table into the caller's account.
    c.insert("aws:ResourceAccount", ACCOUNT);
    let r = Request::new("dynamodb:GetItem", table)
        .with_context(c)
        .with_principal(Principal::Aws(USER.into()))
        .with_principal_context();
    assert_eq!(r.resource_account(), Some(OTHER));
    assert_eq!(r.cross_account(), Some((ACCOUNT, OTHER)));
    assert_eq!(
        s.evaluate(&r).reason,
        Some(DenyReason::CrossAccountNoResourceAllow)
    );
}

#[test]
fn services_and_spiffe_ids_are_in_no_account_and_are_granted_directly() {
    let lambda = doc(
        r#"{"Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:444455556666:function:orders"}"#,
    );
    let s = set(&[(PolicyKind::Resource, &lambda)]);
    let r = Request::new(
        "lambda:InvokeFunction",
        "arn:aws:lambda:us-east-1:444455556666:function:orders",
    )
    .with_principal(Principal::Service("apigateway.amazonaws.com".into()))
    .with_principal_context();
    assert!(s.evaluate(&r).is_allowed());
    // The same function, invoked by a user of another account the policy names by account:
    // that account's identity policies must allow.
    let by_account = doc(
        r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:444455556666:function:orders"}"#,
    );
    let s = set(&[(PolicyKind::Resource, &by_account)]);
    let r = Request::new(
        "lambda:InvokeFunction",
        "arn:aws:lambda:us-east-1:444455556666:function:orders",
    )
    .with_principal(Principal::Aws(USER.into()))
    .with_principal_context();
    assert_eq!(
        s.evaluate(&r).reason,
        Some(DenyReason::CrossAccountNoIdentityAllow)
    );
    // writ's own functions: an exact SPIFFE ID grants alone.
    let secret = doc(
        r#"{"Effect":"Allow","Principal":{"SPIFFE":"spiffe://example.org/fn/orders"},"Action":"secrets:GetSecretValue","Resource":"*"}"#,
    );
    let s = set(&[(PolicyKind::Resource, &secret)]);
    let r = Request::new("secrets:GetSecretValue", "writ:secret:prod/db")
        .with_principal(Principal::Spiffe("spiffe://example.org/fn/orders".into()));
    assert!(s.evaluate(&r).is_allowed());
}

#[test]
fn explain_names_the_missing_half() {
    let s = set(&[(PolicyKind::Resource, &grant_to(ACCOUNT))]);
    let e = s.explain(&get(USER, ACCOUNT));
    assert_eq!(
        e.why.as_deref(),
        Some(
            "the resource policy allows the account 111122223333, which delegates to its \
             identity policies, and none of them allows this"
        )
    );
    let e = s.explain(&get(USER, OTHER));
    assert_eq!(
        e.decision.reason,
        Some(DenyReason::CrossAccountNoIdentityAllow)
    );
    let s = set(&[(PolicyKind::Resource, &grant_to(USER))]);
    let why = s.explain(&get(USER, OTHER)).why.expect("a denial says why");
    assert!(
        why.contains("no identity policy of account 111122223333 does"),
        "{why}"
    );
    let s = set(&[(PolicyKind::Identity, &doc(ALLOW_GET))]);
    let why = s.explain(&get(USER, OTHER)).why.expect("a denial says why");
    assert!(
        why.contains("no resource policy of account 444455556666 does"),
        "{why}"
    );
    assert_eq!(s.explain(&get(USER, ACCOUNT)).why, None);
}
