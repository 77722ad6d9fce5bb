//! Tests of `diff` as a whole.

use super::*;
use crate::{ContextValue, ParseOptions, PolicyKind};

fn parse(kind: PolicyKind, text: &str) -> Policy {
    crate::parse(text, &ParseOptions::new(kind))
        .into_result()
        .expect("valid policy")
}

fn identity(statements: &str) -> Policy {
    parse(
        PolicyKind::Identity,
        &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#),
    )
}

fn run(old: &Policy, new: &Policy) -> PolicyDiff {
    diff(
        &[("old", old)],
        &[("new", new)],
        PolicyKind::Identity,
        &DiffScope::default(),
    )
    .expect("compiles")
}

#[test]
fn get_star_adds_more_than_get_object() {
    let old = identity(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    let new = identity(r#"{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}"#);
    let d = run(&old, &new);
    assert_eq!(d.added.len(), 1);
    assert_eq!(
        d.added[0].actions[0].description,
        "s3:Get* except s3:GetObject"
    );
    assert!(d.added[0].unconditional);
    let w = d.added[0].witness.as_ref().expect("witness");
    assert!(!w.action.eq_ignore_ascii_case("s3:GetObject"));
    assert!(d.removed.is_empty());
    let back = run(&new, &old);
    assert!(!back.grants_more());
    assert_eq!(back.removed.len(), 1);
}

#[test]
fn actions_ignore_case_resources_do_not() {
    let old =
        identity(r#"{"Effect":"Allow","Action":"S3:GETOBJECT","Resource":"arn:aws:s3:::B/*"}"#);
    let new =
        identity(r#"{"Effect":"Allow","Action":"s3:getobject","Resource":"arn:aws:s3:::b/*"}"#);
    let d = run(&old, &new);
    assert_eq!(d.added.len(), 1);
    assert_eq!(d.added[0].resources[0].description, "arn:aws:s3:::b/*");
    assert_eq!(d.added[0].actions[0].example, "s3:getobject");
    let w = d.added[0].witness.as_ref().expect("witness");
    assert_eq!(w.resource, "arn:aws:s3:::b/");
}

#[test]
fn question_marks() {
    let old =
        identity(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/a?c"}"#);
    let new =
        identity(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/a*c"}"#);
    let d = run(&old, &new);
    assert_eq!(d.added.len(), 1);
    let w = d.added[0].witness.as_ref().expect("witness");
    assert_eq!(w.resource, "arn:aws:s3:::b/ac");
    assert!(!run(&new, &old).grants_more());
}

#[test]
fn not_action_and_not_resource() {
    let old = identity(r#"{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}"#);
    let new = identity(r#"{"Effect":"Allow","Action":"*","NotResource":"arn:aws:s3:::secret/*"}"#);
    let d = run(&old, &new);
    // NEW allows iam:* (outside the secret bucket); OLD allows the secret bucket.
    assert_eq!(d.added.len(), 1, "{:#?}", d.added);
    assert_eq!(d.added[0].actions[0].description, "iam:*");
    let w = d.added[0].witness.as_ref().expect("witness");
    assert!(w.action.starts_with("iam:"));
    assert_eq!(d.removed.len(), 1);
    let w = d.removed[0].witness.as_ref().expect("witness");
    assert!(w.resource.starts_with("arn:aws:s3:::secret/"));
}

#[test]
fn deny_takes_access_away() {
    let old = identity(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#);
    let new = identity(
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"},
           {"Effect":"Deny","Action":"s3:Delete*","Resource":"*"}"#,
    );
    let d = run(&old, &new);
    assert!(!d.grants_more());
    assert_eq!(d.removed.len(), 1);
    assert_eq!(d.removed[0].actions[0].description, "s3:Delete*");
    let d = run(&new, &old);
    assert_eq!(d.added.len(), 1);
}

#[test]
fn identical_policies_differ_in_nothing() {
    let p = identity(
        r#"{"Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":"*",
            "Condition":{"Bool":{"aws:SecureTransport":"true"}}}"#,
    );
    let d = run(&p, &p.clone());
    assert!(d.added.is_empty() && d.removed.is_empty());
}

#[test]
fn conditions_are_reported_with_a_witness() {
    let old = identity(
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
            "Condition":{"StringEquals":{"aws:SourceVpc":"vpc-1"}}}"#,
    );
    let new = identity(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    let d = run(&old, &new);
    assert_eq!(d.added.len(), 1);
    let f = &d.added[0];
    assert!(!f.unconditional);
    assert_eq!(
        f.conditions[0].fails,
        vec!["StringEquals aws:SourceVpc vpc-1"]
    );
    let w = f.witness.as_ref().expect("witness");
    assert!(w.context.is_empty(), "no vpc: OLD refuses");
    // A condition added to NEW takes access away only when it fails.
    let d = run(&new, &old);
    assert!(!d.grants_more());
    assert_eq!(d.removed.len(), 1);
}

#[test]
fn condition_on_a_deny() {
    let old = identity(
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"},
           {"Effect":"Deny","Action":"s3:*","Resource":"*",
            "Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#,
    );
    let new = identity(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#);
    let d = run(&old, &new);
    assert_eq!(d.added.len(), 1);
    let w = d.added[0].witness.as_ref().expect("witness");
    assert_eq!(
        w.context,
        vec![(
            "aws:SecureTransport".to_string(),
            ContextValue::from("false")
        )]
    );
}

#[test]
fn resource_policies_compare_principals() {
    let rp = |principal: &str| {
        parse(
            PolicyKind::Resource,
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
                "Principal":{principal},"Action":"lambda:InvokeFunction",
                "Resource":"arn:aws:lambda:us-east-1:111122223333:function:f"}}]}}"#
            ),
        )
    };
    let old = rp(r#"{"AWS":"arn:aws:iam::111122223333:role/a"}"#);
    let new =
        rp(r#"{"AWS":["arn:aws:iam::111122223333:role/a","arn:aws:iam::111122223333:role/b"]}"#);
    let d = diff(
        &[("old", &old)],
        &[("new", &new)],
        PolicyKind::Resource,
        &DiffScope::default(),
    )
    .unwrap();
    assert!(d.grants_more());
    let w = d.added[0].witness.as_ref().expect("witness");
    let p = w.principal.as_ref().expect("principal").to_string();
    assert!(p.contains("role/b") || p.contains("assumed-role/b"), "{p}");
    // Naming the account grants nothing by itself: no new access.
    let acct = rp(r#"{"AWS":"111122223333"}"#);
    let d = diff(
        &[("old", &old)],
        &[("new", &acct)],
        PolicyKind::Resource,
        &DiffScope::default(),
    )
    .unwrap();
    for f in &d.added {
        let w = f.witness.as_ref().expect("verified");
        let p = w.principal.as_ref().unwrap().to_string();
        assert!(p.contains("111122223333") && !p.contains("role/"), "{p}");
    }
}

#[test]
fn boundaries_compare_as_limits() {
    let b = |action: &str| {
        parse(
            PolicyKind::PermissionsBoundary,
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"*"}}]}}"#
            ),
        )
    };
    let (old, new) = (b("s3:*"), b("*"));
    let d = diff(
        &[("old", &old)],
        &[("new", &new)],
        PolicyKind::PermissionsBoundary,
        &DiffScope::default(),
    )
    .unwrap();
    assert_eq!(d.added.len(), 1);
    assert!(d.added[0].witness.is_some());
}

#[test]
fn check_not_granted_finds_the_grant() {
    let p = identity(r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/*"}"#);
    let hits = check_not_granted(
        &[("p", &p)],
        PolicyKind::Identity,
        &["s3:DeleteObject".into()],
        &["arn:aws:s3:::b/*".into()],
    )
    .unwrap();
    assert_eq!(hits.len(), 1);
    let w = hits[0].witness.as_ref().unwrap();
    assert_eq!(w.action, "s3:deleteobject");
    let none = check_not_granted(
        &[("p", &p)],
        PolicyKind::Identity,
        &["iam:*".into()],
        &["*".into()],
    )
    .unwrap();
    assert!(none.is_empty());
}

#[test]
fn variables_make_statements_condition_dependent() {
    let old = identity(
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/home/alice/*"}"#,
    );
    let new = identity(
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/home/${aws:username}/*"}"#,
    );
    let d = run(&old, &new);
    assert!(d.grants_more());
    assert!(!d.added[0].unconditional);
    if let Some(w) = &d.added[0].witness {
        let (o, n) = (w.old, w.new);
        assert_eq!(n, crate::Outcome::Allowed);
        assert_ne!(o, crate::Outcome::Allowed);
    }
}
