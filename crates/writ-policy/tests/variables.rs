//! Policy variables the request cannot supply. AWS documents that a variable it cannot
//! resolve may make the whole statement invalid; writ reads such a statement so that it never
//! allows more than AWS would: an Allow does not apply, and a Deny applies when the rest of
//! it matches.

use writ_policy::{
    CompiledPolicy, Context, Outcome, ParseOptions, PolicyKind, PolicySet, Principal, Request,
    StatementMiss,
};

fn compile(kind: PolicyKind, name: &str, text: &str) -> CompiledPolicy {
    let policy = writ_policy::parse(text, &ParseOptions::new(kind))
        .into_result()
        .unwrap_or_else(|d| panic!("{name}: {d:#?}"));
    CompiledPolicy::new(name, kind, &policy).expect("a parsed policy compiles")
}

fn identity(statements: &[&str]) -> PolicySet {
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    );
    let mut set = PolicySet::new();
    set.add(compile(PolicyKind::Identity, "p", &text));
    set
}

const USER: &str = "arn:aws:iam::111122223333:user/alice";
/// A role session: AWS never sets `aws:username` for it.
const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/app/s1";
const ALLOW_S3: &str = r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#;

fn request(who: &str, action: &str, resource: &str, ctx: &[(&str, &str)]) -> Request {
    let mut c = Context::new();
    for (k, v) in ctx {
        c.insert(k, *v);
    }
    Request::new(action, resource)
        .with_context(c)
        .with_principal(Principal::parse(who).expect("principal"))
        .with_principal_context()
}

fn outcome(set: &PolicySet, who: &str, resource: &str, ctx: &[(&str, &str)]) -> Outcome {
    set.evaluate(&request(who, "s3:GetObject", resource, ctx))
        .outcome
}

#[test]
fn not_resource_with_an_unresolvable_variable_grants_nothing() {
    let s = identity(&[
        r#"{"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::private/${aws:username}/*"}"#,
    ]);
    // A user: everything but the user's own private folder.
    assert_eq!(
        outcome(&s, USER, "arn:aws:s3:::private/bob/x", &[]),
        Outcome::Allowed
    );
    assert_eq!(
        outcome(&s, USER, "arn:aws:s3:::private/alice/x", &[]),
        Outcome::ImplicitDeny
    );
    // A role session has no aws:username: the statement does not apply at all.
    assert_eq!(
        outcome(&s, SESSION, "arn:aws:s3:::private/bob/x", &[]),
        Outcome::ImplicitDeny
    );
    assert_eq!(
        outcome(&s, SESSION, "arn:aws:s3:::public/x", &[]),
        Outcome::ImplicitDeny
    );
}

#[test]
fn negated_conditions_with_an_unresolvable_variable_grant_nothing() {
    let negated = [
        r#"{"StringNotEquals":{"s3:prefix":"home/${aws:username}"}}"#,
        r#"{"StringNotEqualsIgnoreCase":{"s3:prefix":"home/${aws:username}"}}"#,
        r#"{"StringNotLike":{"s3:prefix":"home/${aws:username}/*"}}"#,
        r#"{"StringNotLikeIfExists":{"s3:prefix":"home/${aws:username}/*"}}"#,
        r#"{"ForAllValues:StringNotLike":{"s3:prefix":"home/${aws:username}/*"}}"#,
        r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:iam::111122223333:user/${aws:username}"}}"#,
        r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:iam::111122223333:user/${aws:username}"}}"#,
        r#"{"ArnNotLikeIfExists":{"aws:SourceArn":"arn:aws:iam::*:user/${aws:username}"}}"#,
    ];
    let ctx = [
        ("s3:prefix", "home/bob/notes"),
        ("aws:SourceArn", "arn:aws:iam::111122223333:user/bob"),
    ];
    for c in negated {
        let st = format!(
            r#"{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{c}}}"#
        );
        let s = identity(&[&st]);
        // With the variable resolved, the condition decides as written.
        assert_eq!(outcome(&s, USER, "x", &ctx), Outcome::Allowed, "{c}");
        // Without it, the Allow does not apply, with the key present or absent.
        assert_eq!(
            outcome(&s, SESSION, "x", &ctx),
            Outcome::ImplicitDeny,
            "{c}"
        );
        assert_eq!(outcome(&s, SESSION, "x", &[]), Outcome::ImplicitDeny, "{c}");
        let d = s.explain(&request(SESSION, "s3:GetObject", "x", &ctx));
        assert!(
            matches!(
                &d.statements[0].miss,
                Some(StatementMiss::Variable { variable }) if variable == "aws:username"
            ),
            "{c}: {:?}",
            d.statements[0].miss
        );
    }
}

#[test]
fn a_deny_with_an_unresolvable_variable_applies() {
    // Positive element: today it would match nothing and the Deny would never apply.
    let s = identity(&[
        ALLOW_S3,
        r#"{"Sid":"NoOthersHomes","Effect":"Deny","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::home/${aws:username}/*"}"#,
    ]);
    let delete = |who: &str, resource: &str| {
        s.evaluate(&request(who, "s3:DeleteObject", resource, &[]))
            .outcome
    };
    assert_eq!(
        delete(USER, "arn:aws:s3:::home/alice/x"),
        Outcome::ExplicitDeny
    );
    assert_eq!(delete(USER, "arn:aws:s3:::home/bob/x"), Outcome::Allowed);
    assert_eq!(
        delete(SESSION, "arn:aws:s3:::home/bob/x"),
        Outcome::ExplicitDeny
    );
    // Only the elements holding the variable are read as matching: the action still has to.
    assert_eq!(
        outcome(&s, SESSION, "arn:aws:s3:::home/bob/x", &[]),
        Outcome::Allowed
    );
    let e = s.explain(&request(
        SESSION,
        "s3:DeleteObject",
        "arn:aws:s3:::home/bob/x",
        &[],
    ));
    assert_eq!(e.decision.outcome, Outcome::ExplicitDeny);
    assert_eq!(
        e.statements[1].unresolved_variable.as_deref(),
        Some("aws:username")
    );
    // A positive condition in a Deny, and a condition without the variable that does not hold.
    let s = identity(&[
        ALLOW_S3,
        r#"{"Effect":"Deny","Action":"s3:GetObject","Resource":"*","Condition":{"StringLike":{"s3:prefix":"home/${aws:username}/*"},"Bool":{"aws:SecureTransport":"false"}}}"#,
    ]);
    let ctx = [
        ("s3:prefix", "home/bob/x"),
        ("aws:SecureTransport", "false"),
    ];
    assert_eq!(outcome(&s, SESSION, "x", &ctx), Outcome::ExplicitDeny);
    let secure = [("s3:prefix", "home/bob/x"), ("aws:SecureTransport", "true")];
    assert_eq!(outcome(&s, SESSION, "x", &secure), Outcome::Allowed);
}

#[test]
fn a_default_resolves_a_variable_the_request_lacks() {
    let s = identity(&[
        r#"{"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::private/${aws:username, 'nobody'}/*"}"#,
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringNotEquals":{"s3:prefix":"${aws:username}"},"StringEquals":{"s3:delimiter":"/"}}}"#,
    ]);
    // The first statement resolves to private/nobody/*, so it excludes only that folder
    // for a session; the second needs aws:username and does not apply.
    assert_eq!(
        outcome(&s, SESSION, "arn:aws:s3:::public/x", &[]),
        Outcome::Allowed
    );
    assert_eq!(
        outcome(&s, SESSION, "arn:aws:s3:::private/nobody/x", &[]),
        Outcome::ImplicitDeny
    );
    assert_eq!(
        outcome(
            &s,
            SESSION,
            "arn:aws:s3:::private/nobody/x",
            &[("s3:prefix", "a"), ("s3:delimiter", "/")]
        ),
        Outcome::ImplicitDeny
    );
    assert_eq!(
        outcome(
            &s,
            USER,
            "arn:aws:s3:::private/nobody/x",
            &[("s3:prefix", "a"), ("s3:delimiter", "/")]
        ),
        Outcome::Allowed
    );
}

#[test]
fn resource_policies_with_unresolvable_variables_grant_nothing() {
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
        "Action":"s3:GetObject","NotResource":"arn:aws:s3:::b/${aws:PrincipalTag/team}/*"}]}"#;
    let mut s = PolicySet::new();
    s.add(compile(PolicyKind::Resource, "bucket", text));
    let mut c = Context::new();
    c.insert("aws:PrincipalTag/team", "red");
    let tagged = Request::new("s3:GetObject", "arn:aws:s3:::b/blue/x").with_context(c);
    assert!(s.evaluate(&tagged).is_allowed());
    let untagged = Request::new("s3:GetObject", "arn:aws:s3:::b/blue/x");
    assert_eq!(s.evaluate(&untagged).outcome, Outcome::ImplicitDeny);
}
