//! The context keys AWS derives from the principal cannot be chosen by whoever builds the
//! request context: a role session, a service or a SPIFFE workload must not pose as a user,
//! an account or a role through them.

use writ_policy::{
    CompiledPolicy, Context, ContextValue, Outcome, ParseOptions, PolicyKind, PolicySet, Principal,
    Request,
};

fn set(kind: PolicyKind, statement: &str) -> PolicySet {
    let text = format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#);
    let policy = writ_policy::parse(&text, &ParseOptions::new(kind))
        .into_result()
        .unwrap_or_else(|d| panic!("{d:#?}"));
    let mut set = PolicySet::new();
    set.add(CompiledPolicy::new("p", kind, &policy).expect("compiles"));
    set
}

fn request(who: Principal, resource: &str, ctx: &[(&str, &str)]) -> Request {
    let mut c = Context::new();
    for (k, v) in ctx {
        c.insert(k, *v);
    }
    Request::new("s3:GetObject", resource)
        .with_context(c)
        .with_principal(who)
        .with_principal_context()
}

const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/app/s1";

#[test]
fn a_role_session_cannot_pose_as_a_user_through_aws_username() {
    let s = set(
        PolicyKind::Identity,
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::home/${aws:username}/*"}"#,
    );
    let r = request(
        Principal::Aws(SESSION.into()),
        "arn:aws:s3:::home/bob/notes",
        &[("aws:username", "bob")],
    );
    assert_eq!(r.context().get("aws:username"), None);
    assert_eq!(s.evaluate(&r).outcome, Outcome::ImplicitDeny);
    // A SPIFFE workload neither.
    let r = request(
        Principal::Spiffe("spiffe://example.org/fn/a".into()),
        "arn:aws:s3:::home/bob/notes",
        &[("aws:username", "bob")],
    );
    assert_eq!(s.evaluate(&r).outcome, Outcome::ImplicitDeny);
}

#[test]
fn a_service_cannot_claim_an_account_through_aws_principal_account() {
    // The documented pattern "everyone in my account", by condition rather than by principal.
    let s = set(
        PolicyKind::Resource,
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalAccount":"111122223333"}}}"#,
    );
    let service = Principal::Service("lambda.amazonaws.com".into());
    let r = request(service, "x", &[("aws:PrincipalAccount", "111122223333")]);
    assert_eq!(r.context().get("aws:PrincipalAccount"), None);
    assert_eq!(s.evaluate(&r).outcome, Outcome::ImplicitDeny);
    let anonymous = request(
        Principal::Anonymous,
        "x",
        &[("aws:PrincipalAccount", "111122223333")],
    );
    assert_eq!(s.evaluate(&anonymous).outcome, Outcome::ImplicitDeny);
    // A principal of that account is granted ("*" names it, not only its account).
    let user = Principal::Aws("arn:aws:iam::111122223333:user/alice".into());
    assert!(s.evaluate(&request(user, "x", &[])).is_allowed());
}

#[test]
fn a_role_session_keeps_only_its_own_role_as_aws_principal_arn() {
    let s = set(
        PolicyKind::Resource,
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/admin"}}}"#,
    );
    let posing = request(
        Principal::Aws(SESSION.into()),
        "x",
        &[("aws:PrincipalArn", "arn:aws:iam::111122223333:role/admin")],
    );
    assert_eq!(posing.context().get("aws:PrincipalArn"), None);
    assert_eq!(s.evaluate(&posing).outcome, Outcome::ImplicitDeny);
    // The session's own role, with its path, is what AWS would set: it stays.
    let own = "arn:aws:iam::111122223333:role/team/app";
    let r = request(
        Principal::Aws(SESSION.into()),
        "x",
        &[("aws:PrincipalArn", own)],
    );
    assert_eq!(
        r.context().get("aws:PrincipalArn"),
        Some(&ContextValue::from(own))
    );
    let admin_session = request(
        Principal::Aws("arn:aws:sts::111122223333:assumed-role/admin/s2".into()),
        "x",
        &[("aws:PrincipalArn", "arn:aws:iam::111122223333:role/admin")],
    );
    assert!(s.evaluate(&admin_session).is_allowed());
}

#[test]
fn identity_policies_never_allow_an_anonymous_caller_or_a_service() {
    let identity = set(
        PolicyKind::Identity,
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#,
    );
    let anonymous = request(Principal::Anonymous, "arn:aws:s3:::b/k", &[]);
    let d = identity.evaluate(&anonymous);
    assert_eq!(d.outcome, Outcome::ImplicitDeny);
    assert_eq!(d.reason, Some(writ_policy::DenyReason::NoIdentity));
    let service = request(
        Principal::Service("lambda.amazonaws.com".into()),
        "arn:aws:s3:::b/k",
        &[],
    );
    assert_eq!(
        identity.evaluate(&service).reason,
        Some(writ_policy::DenyReason::NoIdentity)
    );
    let why = identity.explain(&service).why.expect("a denial says why");
    assert!(why.contains("Service lambda.amazonaws.com"), "{why}");
    // Without a principal the request is the identity's own (admin tokens decide so).
    assert!(
        identity
            .evaluate(&Request::new("s3:GetObject", "arn:aws:s3:::b/k"))
            .is_allowed()
    );
    // A resource policy open to everyone allows it, and a boundary in the set does not
    // limit a caller that has none.
    let mut both = set(
        PolicyKind::Resource,
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}"#,
    );
    let boundary = writ_policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"}]}"#,
        &ParseOptions::new(PolicyKind::PermissionsBoundary),
    )
    .into_result()
    .expect("boundary");
    both.add(
        CompiledPolicy::new("b", PolicyKind::PermissionsBoundary, &boundary).expect("compiles"),
    );
    assert!(both.evaluate(&anonymous).is_allowed());
}
