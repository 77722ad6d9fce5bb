//! The evaluation logic across policy types and principals: boundaries, session policies,
//! resource policies, NotPrincipal, and the index on large statements.

use writ_policy::{
    CompileError, CompiledPolicy, Context, DenyReason, Effect, Outcome, ParseOptions,
    PatternElement, Policy, PolicyKind, PolicySet, Principal, Request, Statement, Version,
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

const ALLOW_S3: &str = r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#;
const USER: &str = "arn:aws:iam::111122223333:user/alice";
const ROLE: &str = "arn:aws:iam::111122223333:role/team/admin";
const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/admin/ci-42";

fn req(action: &str, principal: &str) -> Request {
    Request::new(action, "arn:aws:s3:::bucket/key")
        .with_principal(Principal::parse(principal).expect("principal"))
        .with_principal_context()
}

#[test]
fn an_empty_boundary_allows_nothing() {
    for kind in [PolicyKind::PermissionsBoundary, PolicyKind::Session] {
        let s = set(&[(PolicyKind::Identity, &doc(ALLOW_S3)), (kind, &doc(""))]);
        let d = s.evaluate(&req("s3:DeleteBucket", USER));
        assert_eq!(d.outcome, Outcome::ImplicitDeny, "{kind}");
        let expected = if kind == PolicyKind::Session {
            DenyReason::NotInSessionPolicy
        } else {
            DenyReason::NotInBoundary
        };
        assert_eq!(d.reason, Some(expected));
    }
}

#[test]
fn boundary_and_session_policies_intersect_with_identity_policies() {
    let boundary =
        doc(r#"{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"*"}"#);
    let session =
        doc(r#"{"Effect":"Allow","Action":["s3:GetObject","s3:DeleteObject"],"Resource":"*"}"#);
    let s = set(&[
        (PolicyKind::Identity, &doc(ALLOW_S3)),
        (PolicyKind::PermissionsBoundary, &boundary),
        (PolicyKind::Session, &session),
    ]);
    assert_eq!(
        s.evaluate(&req("s3:GetObject", USER)).outcome,
        Outcome::Allowed
    );
    assert_eq!(
        s.evaluate(&req("s3:PutObject", USER)).reason,
        Some(DenyReason::NotInSessionPolicy)
    );
    assert_eq!(
        s.evaluate(&req("s3:DeleteObject", USER)).reason,
        Some(DenyReason::NotInBoundary)
    );
    // The matched list names every allow that took part.
    assert_eq!(s.evaluate(&req("s3:GetObject", USER)).matched.len(), 3);
}

#[test]
fn a_resource_policy_naming_the_caller_exactly_is_not_limited_by_the_boundary() {
    let boundary = doc(r#"{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}"#);
    let grant = |who: &str| {
        doc(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{who}"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}}"#
        ))
    };
    // Named exactly: granted despite the boundary.
    let s = set(&[
        (PolicyKind::PermissionsBoundary, &boundary),
        (PolicyKind::Resource, &grant(USER)),
    ]);
    assert_eq!(
        s.evaluate(&req("s3:GetObject", USER)).outcome,
        Outcome::Allowed
    );
    // Named through the account, with an identity policy that allows: the boundary applies.
    let s = set(&[
        (PolicyKind::Identity, &doc(ALLOW_S3)),
        (PolicyKind::PermissionsBoundary, &boundary),
        (PolicyKind::Resource, &grant("111122223333")),
    ]);
    assert_eq!(
        s.evaluate(&req("s3:GetObject", USER)).reason,
        Some(DenyReason::NotInBoundary)
    );
    // Without a boundary, the account grant is still not enough: the account delegates to
    // its identity policies, and none allows.
    let s = set(&[(PolicyKind::Resource, &grant("111122223333"))]);
    assert_eq!(
        s.evaluate(&req("s3:GetObject", USER)).reason,
        Some(DenyReason::AccountDelegated)
    );
}

#[test]
fn principals_match_by_account_role_and_exact_identity() {
    let grant = |who: &str| {
        set(&[(
            PolicyKind::Resource,
            &doc(&format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"{who}"}},"Action":"s3:GetObject","Resource":"*"}}"#
            )),
        )])
    };
    let allowed = |s: &PolicySet, who: &str| s.evaluate(&req("s3:GetObject", who)).is_allowed();
    let by_role = grant(ROLE);
    assert!(allowed(&by_role, SESSION), "a role's session");
    assert!(!allowed(
        &by_role,
        "arn:aws:sts::111122223333:assumed-role/other/ci"
    ));
    assert!(!allowed(
        &by_role,
        "arn:aws:sts::999988887777:assumed-role/admin/ci"
    ));
    // An account matches every principal in it, but only delegates to them: the statement
    // applies (the reason says so) without allowing by itself.
    let by_root = grant("arn:aws:iam::111122223333:root");
    let reason = |who: &str| by_root.evaluate(&req("s3:GetObject", who)).reason;
    assert_eq!(reason(USER), Some(DenyReason::AccountDelegated));
    assert_eq!(reason(SESSION), Some(DenyReason::AccountDelegated));
    assert_eq!(
        reason("arn:aws:iam::999988887777:user/alice"),
        Some(DenyReason::NoAllow)
    );
    assert_eq!(reason("anonymous"), Some(DenyReason::NoAllow));
    // The account itself (its root user) is named exactly.
    assert!(allowed(&by_root, "111122223333"));
    assert!(allowed(&by_root, "arn:aws:iam::111122223333:root"));
    let anyone = grant("*");
    assert!(
        allowed(&anyone, "anonymous"),
        "{{\"AWS\": \"*\"}} is everyone"
    );
}

#[test]
fn not_principal_exempts_only_callers_whose_whole_chain_is_listed() {
    let deny_except = |listed: &[&str]| {
        let list = listed
            .iter()
            .map(|v| format!("\"{v}\""))
            .collect::<Vec<_>>()
            .join(",");
        set(&[
            (PolicyKind::Identity, &doc(ALLOW_S3)),
            (
                PolicyKind::Resource,
                &doc(&format!(
                    r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":[{list}]}},"Action":"s3:*","Resource":"*"}}"#
                )),
            ),
        ])
    };
    let outcome = |s: &PolicySet, who: &str| s.evaluate(&req("s3:GetObject", who)).outcome;
    // Listing the role alone does not exempt its sessions: the account is not listed.
    let s = deny_except(&[ROLE]);
    assert_eq!(outcome(&s, SESSION), Outcome::ExplicitDeny);
    // Account and role listed, but not the session: still denied, as AWS documents.
    let s = deny_except(&["arn:aws:iam::111122223333:root", ROLE]);
    assert_eq!(outcome(&s, SESSION), Outcome::ExplicitDeny);
    // Account, role and session listed (AWS's own example): that session is exempt; other
    // sessions of the role and other users are not.
    let s = deny_except(&["arn:aws:iam::111122223333:root", ROLE, SESSION]);
    assert_eq!(outcome(&s, SESSION), Outcome::Allowed);
    assert_eq!(
        outcome(&s, "arn:aws:sts::111122223333:assumed-role/admin/other"),
        Outcome::ExplicitDeny
    );
    assert_eq!(outcome(&s, USER), Outcome::ExplicitDeny);
    // The account alone exempts only the account itself, not its users.
    let s = deny_except(&["111122223333"]);
    assert_eq!(outcome(&s, USER), Outcome::ExplicitDeny);
    assert_eq!(outcome(&s, "111122223333"), Outcome::Allowed);
    // Account and user listed: that user is exempt.
    let s = deny_except(&["111122223333", USER]);
    assert_eq!(outcome(&s, USER), Outcome::Allowed);
    assert_eq!(
        outcome(&s, "arn:aws:iam::111122223333:user/bob"),
        Outcome::ExplicitDeny
    );
}

#[test]
fn ipv4_mapped_blocks_never_widen() {
    let s = set(&[(
        PolicyKind::Identity,
        &doc(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"::ffff:10.0.0.0/104"}}}"#,
        ),
    )]);
    let from = |ip: &str| {
        let mut c = Context::new();
        c.insert("aws:SourceIp", ip);
        s.evaluate(&Request::new("s3:GetObject", "x").with_context(c))
            .outcome
    };
    assert_eq!(from("10.1.2.3"), Outcome::Allowed);
    assert_eq!(from("8.8.8.8"), Outcome::ImplicitDeny);
}

#[test]
fn non_arn_values_in_arn_conditions_never_match() {
    let s = set(&[(
        PolicyKind::Identity,
        &doc(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:iam::*"}}}"#,
        ),
    )]);
    let mut c = Context::new();
    c.insert("aws:SourceArn", "arn:aws:iam::123456789012:role/x");
    let d = s.evaluate(&Request::new("s3:GetObject", "x").with_context(c));
    assert_eq!(
        d.outcome,
        Outcome::ImplicitDeny,
        "a wildcard may not cross ARN parts"
    );
}

#[test]
fn large_statements_are_indexed_and_still_decide_correctly() {
    // 40 actions x 40 resources: past the pair limit, so indexed by action only.
    let actions: Vec<String> = (0..40).map(|i| format!("\"svc:Act{i}\"")).collect();
    let resources: Vec<String> = (0..40).map(|i| format!("\"arn:aws:svc:::r{i}\"")).collect();
    let st = format!(
        r#"{{"Effect":"Allow","Action":[{}],"Resource":[{}]}}"#,
        actions.join(","),
        resources.join(",")
    );
    let s = set(&[(PolicyKind::Identity, &doc(&st))]);
    let check = |a: &str, r: &str| s.evaluate(&Request::new(a, r)).outcome;
    assert_eq!(check("svc:Act39", "arn:aws:svc:::r0"), Outcome::Allowed);
    assert_eq!(check("svc:act7", "arn:aws:svc:::r39"), Outcome::Allowed);
    assert_eq!(
        check("svc:Act40", "arn:aws:svc:::r0"),
        Outcome::ImplicitDeny
    );
    assert_eq!(
        check("svc:Act1", "arn:aws:svc:::r40"),
        Outcome::ImplicitDeny
    );
}

#[test]
fn caller_context_cannot_impersonate_the_principal() {
    let s = set(&[(
        PolicyKind::Identity,
        &doc(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::home/${aws:username}/*"}"#,
        ),
    )]);
    let mut c = Context::new();
    c.insert("aws:username", "bob");
    let r = Request::new("s3:GetObject", "arn:aws:s3:::home/bob/notes")
        .with_context(c)
        .with_principal(Principal::Aws(USER.into()))
        .with_principal_context();
    assert_eq!(s.evaluate(&r).outcome, Outcome::ImplicitDeny);
}

#[test]
fn hand_built_invalid_policies_are_refused_not_half_compiled() {
    let statement = Statement {
        sid: None,
        effect: Effect::Allow,
        principal: None,
        action: PatternElement {
            negated: false,
            patterns: vec!["s3:GetObject".into()],
        },
        resource: PatternElement {
            negated: true,
            patterns: vec!["arn:aws:s3:::b/${aws:username".into()],
        },
        conditions: Vec::new(),
    };
    let policy = Policy {
        version: Some(Version::V2012_10_17),
        id: None,
        statements: vec![statement],
    };
    let err: CompileError = CompiledPolicy::new("hand", PolicyKind::Identity, &policy).unwrap_err();
    assert_eq!(err.statement, 0);
    assert!(err.to_string().contains("not closed"), "{err}");
    let mut empty = policy.clone();
    empty.statements[0].resource.patterns.clear();
    assert!(CompiledPolicy::new("hand", PolicyKind::Identity, &empty).is_err());
    let mut with_principal = policy;
    with_principal.statements[0].resource.patterns = vec!["*".into()];
    assert!(CompiledPolicy::new("hand", PolicyKind::Identity, &with_principal).is_ok());
    assert!(CompiledPolicy::new("hand", PolicyKind::Resource, &with_principal).is_err());
}
