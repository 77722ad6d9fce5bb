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
        w.context.get("aws:SecureTransport"),
        Some(&ContextValue::from("false"))
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

#[test]
fn exponential_patterns_are_refused_not_approximated() {
    let old = identity(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    let new = identity(&format!(
        r#"{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*a{}"}}"#,
        "?".repeat(24)
    ));
    let err = diff(
        &[("old", &old)],
        &[("new", &new)],
        PolicyKind::Identity,
        &DiffScope::default(),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        DiffError::TooComplex {
            dimension: "resource",
            ..
        }
    ));
}

#[test]
fn version_2008_reads_variables_literally() {
    let text = |version: &str| {
        parse(
            PolicyKind::Identity,
            &format!(
                r#"{{"Version":"{version}","Statement":[{{"Effect":"Allow","Action":"s3:GetObject",
                "Resource":"*","Condition":{{"StringEquals":{{"k":"${{aws:username, 'x'}}"}}}}}}]}}"#
            ),
        )
    };
    let (old, new) = (text("2008-10-17"), text("2012-10-17"));
    // The same condition text is two different conditions: NEW compares k with the user
    // name (or 'x'), OLD with the literal text.
    let d = run(&old, &new);
    assert!(d.grants_more());
    let w = d.added[0].witness.as_ref().expect("witness");
    assert_eq!(w.new, crate::Outcome::Allowed);
}

mod differential {
    //! Random pairs of small policies over a small alphabet, and random requests: every
    //! request NEW allows and OLD refuses lies in a reported finding (soundness), and every
    //! witness is decided as reported.

    use super::*;
    use crate::{CompiledPolicy, Context, PolicySet, Principal, Request};
    use proptest::prelude::*;

    const ACTIONS: &[&str] = &[
        "s3:GetObject",
        "s3:PutObject",
        "s3:Get*",
        "s3:*",
        "*",
        "s3:?etObject",
        "S3:GETOBJECT",
        "ec2:Run*",
    ];
    const RESOURCES: &[&str] = &[
        "arn:aws:s3:::b/*",
        "arn:aws:s3:::b/a",
        "*",
        "arn:aws:s3:::c/?",
        "arn:aws:s3:::b/a*",
        "arn:aws:s3:::B/a",
        "arn:aws:s3:::b/${aws:username}",
    ];
    const CONDITIONS: &[&str] = &[
        "",
        r#","Condition":{"StringEquals":{"k1":"v1"}}"#,
        r#","Condition":{"Bool":{"aws:SecureTransport":"true"}}"#,
        r#","Condition":{"StringNotEquals":{"k1":"v1"}}"#,
        r#","Condition":{"StringLike":{"k1":"v*"},"Bool":{"aws:SecureTransport":"false"}}"#,
    ];
    const PRINCIPALS: &[&str] = &[
        r#""*""#,
        r#"{"AWS":"arn:aws:iam::111122223333:role/a"}"#,
        r#"{"AWS":"111122223333"}"#,
        r#"{"SPIFFE":"spiffe://example.org/fn/*"}"#,
        r#"{"Service":"apigateway.amazonaws.com"}"#,
        // NotPrincipal, for a Deny (an Allow gets "*" instead).
        r#"NOT{"AWS":["111122223333","arn:aws:iam::111122223333:role/a"]}"#,
    ];

    const REQ_ACTIONS: &[&str] = &[
        "s3:GetObject",
        "s3:putobject",
        "s3:GetBucket",
        "s3:LetObject",
        "ec2:RunInstances",
        "iam:PassRole",
        "s3:get",
    ];
    const REQ_RESOURCES: &[&str] = &[
        "arn:aws:s3:::b/a",
        "arn:aws:s3:::b/ab",
        "arn:aws:s3:::c/x",
        "arn:aws:s3:::c/xy",
        "arn:aws:s3:::B/a",
        "x",
    ];
    const REQ_PRINCIPALS: &[&str] = &[
        "arn:aws:iam::111122223333:role/a",
        "arn:aws:sts::111122223333:assumed-role/a/s",
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::111122223333:user/u",
        "spiffe://example.org/fn/x",
        "apigateway.amazonaws.com",
        "anonymous",
    ];

    #[derive(Debug, Clone)]
    struct St {
        deny: bool,
        not_action: bool,
        actions: Vec<usize>,
        not_resource: bool,
        resources: Vec<usize>,
        condition: usize,
        principal: usize,
    }

    fn statement() -> impl Strategy<Value = St> {
        (
            prop::bool::weighted(0.3),
            prop::bool::weighted(0.15),
            prop::collection::vec(0..ACTIONS.len(), 1..3),
            prop::bool::weighted(0.15),
            prop::collection::vec(0..RESOURCES.len(), 1..3),
            0..CONDITIONS.len(),
            0..PRINCIPALS.len(),
        )
            .prop_map(
                |(deny, not_action, actions, not_resource, resources, condition, principal)| St {
                    deny,
                    not_action,
                    actions,
                    not_resource,
                    resources,
                    condition,
                    principal,
                },
            )
    }

    fn text(sts: &[St], kind: PolicyKind) -> String {
        let list = |idx: &[usize], from: &[&str]| {
            idx.iter()
                .map(|&i| format!("{:?}", from[i]))
                .collect::<Vec<_>>()
                .join(",")
        };
        let body: Vec<String> = sts
            .iter()
            .map(|s| {
                let principal = if kind == PolicyKind::Resource {
                    match PRINCIPALS[s.principal].strip_prefix("NOT") {
                        Some(p) if s.deny => format!(r#""NotPrincipal":{p},"#),
                        Some(_) => r#""Principal":"*","#.to_string(),
                        None => format!(r#""Principal":{},"#, PRINCIPALS[s.principal]),
                    }
                } else {
                    String::new()
                };
                format!(
                    r#"{{"Effect":"{}",{principal}"{}":[{}],"{}":[{}]{}}}"#,
                    if s.deny { "Deny" } else { "Allow" },
                    if s.not_action { "NotAction" } else { "Action" },
                    list(&s.actions, ACTIONS),
                    if s.not_resource {
                        "NotResource"
                    } else {
                        "Resource"
                    },
                    list(&s.resources, RESOURCES),
                    CONDITIONS[s.condition],
                )
            })
            .collect();
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            body.join(",")
        )
    }

    fn contexts() -> Vec<Context> {
        let mut out = Vec::new();
        for k1 in [None, Some("v1"), Some("v2"), Some("x")] {
            for (st, user) in [
                (None, None),
                (Some("true"), Some("a")),
                (Some("false"), None),
                (None, Some("a")),
            ] {
                let mut c = Context::new();
                if let Some(u) = user {
                    c.insert("aws:username", u);
                }
                if let Some(v) = k1 {
                    c.insert("k1", v);
                }
                if let Some(v) = st {
                    c.insert("aws:SecureTransport", v);
                }
                out.push(c);
            }
        }
        out
    }

    fn set(kind: PolicyKind, p: &Policy) -> PolicySet {
        let mut s = PolicySet::new();
        if kind == PolicyKind::PermissionsBoundary {
            s.add(
                CompiledPolicy::new(
                    "all",
                    PolicyKind::Identity,
                    &identity(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#),
                )
                .unwrap(),
            );
        }
        s.add(CompiledPolicy::new("p", kind, p).unwrap());
        s
    }

    fn check(kind: PolicyKind, old: &[St], new: &[St]) -> Result<(), TestCaseError> {
        let (old_text, new_text) = (text(old, kind), text(new, kind));
        let old_p = parse(kind, &old_text);
        let new_p = parse(kind, &new_text);
        let d = diff(
            &[("old", &old_p)],
            &[("new", &new_p)],
            kind,
            &DiffScope::default(),
        )
        .unwrap();
        let (old_set, new_set) = (set(kind, &old_p), set(kind, &new_p));
        // Every witness is decided as reported.
        for f in d.added.iter().chain(&d.removed) {
            prop_assert!(
                f.witness.is_some() || f.unverified.is_some(),
                "a finding says why it has no witness"
            );
            if let Some(w) = &f.witness {
                let req = w.request();
                let (o, n) = (old_set.evaluate(&req), new_set.evaluate(&req));
                prop_assert_eq!(o.outcome, w.old);
                prop_assert_eq!(n.outcome, w.new);
                match f.change {
                    Change::Added => prop_assert!(n.is_allowed() && !o.is_allowed()),
                    Change::Removed => prop_assert!(o.is_allowed() && !n.is_allowed()),
                }
                prop_assert!(f.covers(w.principal.as_ref(), &w.action, &w.resource));
            }
        }
        // Every request allowed by one and refused by the other is covered.
        let principals: Vec<Option<Principal>> = if kind == PolicyKind::Resource {
            REQ_PRINCIPALS
                .iter()
                .map(|p| Some(Principal::parse(p).unwrap()))
                .collect()
        } else {
            vec![None]
        };
        for p in &principals {
            for a in REQ_ACTIONS {
                for r in REQ_RESOURCES {
                    for ctx in contexts() {
                        let mut req = Request::new(a, r).with_context(ctx);
                        if let Some(p) = p {
                            req = req.with_principal(p.clone());
                        }
                        let o = old_set.evaluate(&req).is_allowed();
                        let n = new_set.evaluate(&req).is_allowed();
                        let (list, what) = match (o, n) {
                            (false, true) => (&d.added, "added"),
                            (true, false) => (&d.removed, "removed"),
                            _ => continue,
                        };
                        prop_assert!(
                            list.iter().any(|f| f.covers(p.as_ref(), a, r)),
                            "{what} request {p:?} {a} {r} {:?} not reported\nOLD {old_text}\nNEW {new_text}\n{:#?}",
                            req.context(),
                            list
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Cases per property: `PROPTEST_CASES` (e.g. 5000 for a long run), 96 by default.
    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(96)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn identity_diff_is_sound_and_witnesses_verify(
            old in prop::collection::vec(statement(), 0..4),
            new in prop::collection::vec(statement(), 1..4),
        ) {
            check(PolicyKind::Identity, &old, &new)?;
        }

        #[test]
        fn resource_diff_is_sound_and_witnesses_verify(
            old in prop::collection::vec(statement(), 0..4),
            new in prop::collection::vec(statement(), 1..4),
        ) {
            check(PolicyKind::Resource, &old, &new)?;
        }

        #[test]
        fn boundary_diff_is_sound_and_witnesses_verify(
            old in prop::collection::vec(statement(), 0..3),
            new in prop::collection::vec(statement(), 1..3),
        ) {
            check(PolicyKind::PermissionsBoundary, &old, &new)?;
        }
    }
}
