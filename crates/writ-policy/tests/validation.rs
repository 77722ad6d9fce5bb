//! Every validation check: the code it reports, the path and position it names, and that a
//! policy without the problem does not get it.

use writ_policy::{Diagnostic, Location, ParseOptions, PolicyKind, Severity, parse};

fn diags(kind: PolicyKind, text: &str) -> Vec<Diagnostic> {
    parse(text, &ParseOptions::new(kind)).diagnostics
}

fn codes(kind: PolicyKind, text: &str) -> Vec<&'static str> {
    diags(kind, text).into_iter().map(|d| d.code).collect()
}

/// A 2012-10-17 identity policy with one statement.
fn identity(statement: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#)
}

fn find(kind: PolicyKind, text: &str, code: &str) -> Diagnostic {
    diags(kind, text)
        .into_iter()
        .find(|d| d.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:#?}", diags(kind, text)))
}

const ID: PolicyKind = PolicyKind::Identity;
const RES: PolicyKind = PolicyKind::Resource;

#[test]
fn a_clean_policy_has_no_diagnostics() {
    let text = identity(
        r#"{"Sid":"Read","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#,
    );
    assert_eq!(codes(ID, &text), Vec::<&str>::new());
    assert!(parse(&text, &ParseOptions::new(ID)).policy.is_some());
}

// --- Warnings: the policy is valid but risky ---

#[test]
fn warns_on_allow_everything_but_not_on_deny_everything() {
    let d = find(
        ID,
        &identity(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#),
        "allow-all",
    );
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.path, "Statement[0]");
    assert_eq!(
        d.location,
        Location {
            line: 1,
            column: 38
        }
    );
    assert!(
        !codes(
            ID,
            &identity(r#"{"Effect":"Deny","Action":"*","Resource":"*"}"#)
        )
        .contains(&"allow-all")
    );
    assert!(
        !codes(
            ID,
            &identity(r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b"}"#)
        )
        .contains(&"allow-all")
    );
}

#[test]
fn warns_on_a_whole_service_on_every_resource() {
    let d = find(
        ID,
        &identity(r#"{"Effect":"Allow","Action":["s3:GetObject","s3:*"],"Resource":"*"}"#),
        "service-wildcard",
    );
    assert!(d.message.contains("every s3 action"), "{}", d.message);
    assert!(
        !codes(
            ID,
            &identity(r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/*"}"#)
        )
        .contains(&"service-wildcard")
    );
}

#[test]
fn warns_on_allow_with_not_action_not_resource_not_principal() {
    assert!(
        codes(
            ID,
            &identity(r#"{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}"#)
        )
        .contains(&"allow-not-action")
    );
    assert!(codes(ID, &identity(r#"{"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::secret/*"}"#))
        .contains(&"allow-not-resource"));
    let text = identity(
        r#"{"Effect":"Allow","NotPrincipal":{"AWS":"123456789012"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#,
    );
    error(RES, &text, "allow-not-principal");
    // The same shapes with Deny are the idiomatic, safe use.
    assert!(
        codes(
            ID,
            &identity(r#"{"Effect":"Deny","NotAction":"iam:*","Resource":"*"}"#)
        )
        .is_empty()
    );
}

#[test]
fn warns_on_public_access_without_conditions() {
    let open = identity(
        r#"{"Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:f"}"#,
    );
    assert!(codes(RES, &open).contains(&"public-access"));
    let aws_star = identity(
        r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:f"}"#,
    );
    assert!(codes(RES, &aws_star).contains(&"public-access"));
    let guarded = identity(
        r#"{"Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:f","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc"}}}"#,
    );
    assert!(!codes(RES, &guarded).contains(&"public-access"));
}

#[test]
fn warns_on_service_principals_without_a_source_guard() {
    let unguarded = identity(
        r#"{"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:f"}"#,
    );
    let d = find(RES, &unguarded, "confused-deputy");
    assert!(d.message.contains("aws:SourceArn"), "{}", d.message);
    for key in ["aws:SourceArn", "AWS:SourceAccount", "aws:sourceorgid"] {
        let guarded = identity(&format!(
            r#"{{"Effect":"Allow","Principal":{{"Service":"s3.amazonaws.com"}},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:f","Condition":{{"StringEquals":{{"{key}":"123456789012"}}}}}}"#
        ));
        assert!(!codes(RES, &guarded).contains(&"confused-deputy"), "{key}");
    }
}

#[test]
fn warns_on_forallvalues_with_allow() {
    let text = identity(
        r#"{"Effect":"Allow","Action":"s3:PutObjectTagging","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}}"#,
    );
    assert!(codes(ID, &text).contains(&"forallvalues-with-allow"));
    let deny = text.replace("Allow", "Deny");
    assert!(!codes(ID, &deny).contains(&"forallvalues-with-allow"));
    // The fix the warning recommends silences it.
    let guarded = text.replace(
        r#"["team"]}"#,
        r#"["team"]},"Null":{"AWS:TagKeys":"false"}"#,
    );
    assert!(parse(&guarded, &ParseOptions::new(ID)).policy.is_some());
    assert!(!codes(ID, &guarded).contains(&"forallvalues-with-allow"));
}

#[test]
fn warns_on_statements_that_can_never_match() {
    assert!(
        codes(
            ID,
            &identity(r#"{"Effect":"Deny","NotAction":"*","Resource":"*"}"#)
        )
        .contains(&"never-matches")
    );
    assert!(
        codes(
            ID,
            &identity(r#"{"Effect":"Deny","Action":"s3:*","NotResource":["arn:aws:s3:::a","*"]}"#)
        )
        .contains(&"never-matches")
    );
}

#[test]
fn warns_on_malformed_arns_in_resources_and_arn_conditions() {
    let d = find(
        ID,
        &identity(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":["arn:aws:s3:::b/*","bucket/key"]}"#,
        ),
        "malformed-arn",
    );
    assert_eq!(d.path, "Statement[0].Resource[1]");
    let text = identity(
        r#"{"Effect":"Allow","Action":"sns:Publish","Resource":"*","Condition":{"ArnLike":{"aws:SourceArn":"not-an-arn"}}}"#,
    );
    assert!(codes(ID, &text).contains(&"malformed-arn"));
    // SPIFFE IDs and writ: names are writ's own resources.
    assert!(codes(ID, &identity(r#"{"Effect":"Allow","Action":"writ:Invoke","Resource":"spiffe://example.org/fn/a"}"#)).is_empty());
    assert!(codes(ID, &identity(r#"{"Effect":"Allow","Action":"secrets:GetSecretValue","Resource":"writ:secret/prod/orders-*"}"#)).is_empty());
    assert!(
        codes(
            ID,
            &identity(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"wrote:secret/x"}"#)
        )
        .contains(&"malformed-arn")
    );
}

#[test]
fn warns_on_odd_principals() {
    let text = identity(
        r#"{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#,
    );
    assert!(codes(RES, &text).contains(&"principal-format"));
    let text = identity(
        r#"{"Effect":"Allow","Principal":{"Service":"lambda"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"StringEquals":{"aws:SourceAccount":"1"}}}"#,
    );
    assert!(codes(RES, &text).contains(&"principal-format"));
}

#[test]
fn warns_on_unknown_global_keys_with_a_suggestion() {
    let text = identity(
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"aws:SoureArn":"x"}}}"#,
    );
    let d = find(ID, &text, "unknown-global-key");
    assert!(
        d.message.contains("did you mean \"aws:SourceArn\"?"),
        "{}",
        d.message
    );
    assert_eq!(
        d.path,
        "Statement[0].Condition.StringEquals[\"aws:SoureArn\"]"
    );
    // Tag keys, other services' keys and any capitalisation of known keys are fine.
    let ok = identity(
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"a","s3:prefix":"b","AWS:SOURCEACCOUNT":"1"}}}"#,
    );
    assert!(!codes(ID, &ok).contains(&"unknown-global-key"));
}

#[test]
fn warns_on_missing_or_old_versions() {
    let text = r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}/*"}}"#;
    let c = codes(ID, text);
    assert!(c.contains(&"missing-version"), "{c:?}");
    assert!(c.contains(&"variable-not-expanded"), "{c:?}");
    let old = text.replacen('{', r#"{"Version":"2008-10-17","#, 1);
    assert!(codes(ID, &old).contains(&"old-version"));
}

#[test]
fn warns_on_an_empty_statement_list() {
    assert_eq!(
        codes(ID, r#"{"Version":"2012-10-17","Statement":[]}"#),
        vec!["no-statements"]
    );
}

// --- Errors: the policy is refused ---

fn error(kind: PolicyKind, text: &str, code: &str) -> Diagnostic {
    let parsed = parse(text, &ParseOptions::new(kind));
    assert!(
        parsed.policy.is_none(),
        "{code}: the policy should be refused"
    );
    let d = parsed
        .diagnostics
        .into_iter()
        .find(|d| d.code == code)
        .unwrap_or_else(|| panic!("no {code}"));
    assert_eq!(d.severity, Severity::Error);
    d
}

#[test]
fn refuses_duplicate_keys_and_sids() {
    let d = error(
        ID,
        &identity(r#"{"Effect":"Allow","Effect":"Deny","Action":"s3:GetObject","Resource":"*"}"#),
        "duplicate-key",
    );
    assert_eq!(d.path, "Statement[0].Effect");
    let two = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"A","Effect":"Allow","Action":"s3:GetObject","Resource":"*"},
        {"Sid":"A","Effect":"Allow","Action":"s3:PutObject","Resource":"*"}]}"#;
    let d = error(ID, two, "duplicate-sid");
    assert_eq!(d.path, "Statement[1]");
    assert_eq!(d.location.line, 3);
    let text = identity(
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"aws:SourceIp":"a","AWS:SOURCEIP":"b"}}}"#,
    );
    error(ID, &text, "duplicate-key");
}

#[test]
fn refuses_unknown_elements_with_suggestions() {
    let d = error(
        ID,
        r#"{"Version":"2012-10-17","Statment":[]}"#,
        "unknown-element",
    );
    assert!(
        d.message.contains("did you mean \"Statement\"?"),
        "{}",
        d.message
    );
    let d = error(
        ID,
        &identity(r#"{"Effect":"Allow","Action":"s3:GetObject","Resources":"*"}"#),
        "unknown-element",
    );
    assert_eq!(d.path, "Statement[0].Resources");
}

#[test]
fn refuses_missing_and_conflicting_elements() {
    error(
        ID,
        &identity(r#"{"Action":"s3:GetObject","Resource":"*"}"#),
        "missing-element",
    );
    error(
        ID,
        &identity(r#"{"Effect":"Allow","Resource":"*"}"#),
        "missing-element",
    );
    let d = error(
        RES,
        &identity(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}"#),
        "missing-element",
    );
    assert!(d.message.contains("\"Resource\""), "{}", d.message);
    error(
        ID,
        &identity(
            r#"{"Effect":"Allow","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"*"}"#,
        ),
        "conflicting-elements",
    );
    error(
        ID,
        &identity(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","NotResource":"*"}"#),
        "conflicting-elements",
    );
    error(ID, r#"{"Version":"2012-10-17"}"#, "missing-element");
}

#[test]
fn principals_belong_only_in_resource_policies() {
    let with = identity(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#,
    );
    error(ID, &with, "unexpected-principal");
    error(
        PolicyKind::PermissionsBoundary,
        &with,
        "unexpected-principal",
    );
    let without =
        identity(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#);
    let d = error(RES, &without, "missing-element");
    assert!(d.message.contains("Principal"), "{}", d.message);
}

#[test]
fn refuses_bad_principals() {
    let text = |p: &str| {
        identity(&format!(
            r#"{{"Effect":"Allow","Principal":{p},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#
        ))
    };
    error(
        RES,
        &text(r#"{"AWS":"arn:aws:iam::123456789012:role/*"}"#),
        "wildcard-principal",
    );
    error(
        RES,
        &text(r#"{"Service":"*.amazonaws.com"}"#),
        "wildcard-principal",
    );
    error(
        RES,
        &text(r#""arn:aws:iam::123456789012:root""#),
        "invalid-principal",
    );
    error(
        RES,
        &text(r#"{"SPIFFE":"example.org/fn/a"}"#),
        "principal-format",
    );
    error(RES, &text(r#"{"Group":"admins"}"#), "unknown-element");
    error(RES, &text("{}"), "empty-principal");
    // Wildcards are allowed in SPIFFE IDs, a writ extension.
    assert!(
        parse(
            &text(r#"{"SPIFFE":"spiffe://example.org/fn/*"}"#),
            &ParseOptions::new(RES)
        )
        .policy
        .is_some()
    );
}

#[test]
fn refuses_bad_actions_versions_types_and_variables() {
    let d = error(
        ID,
        &identity(r#"{"Effect":"Allow","Action":"GetObject","Resource":"*"}"#),
        "action-format",
    );
    assert_eq!(d.path, "Statement[0].Action");
    // A stray space would make a Deny silently never apply.
    let deny = |action: &str| {
        identity(&format!(
            r#"{{"Effect":"Deny","Action":"{action}","Resource":"*"}}"#
        ))
    };
    error(ID, &deny("s3:DeleteObject "), "action-format");
    error(ID, &deny("s3:Get:Object"), "action-format");
    error(
        ID,
        r#"{"Version":"2012-10-18","Statement":[]}"#,
        "invalid-version",
    );
    let d = error(
        ID,
        &identity(r#"{"Effect":"Allow","Action":["s3:GetObject",7],"Resource":"*"}"#),
        "wrong-type",
    );
    assert_eq!(d.path, "Statement[0].Action[1]");
    assert_eq!(d.message, "expected a string, found a number");
    error(
        ID,
        &identity(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username"}"#,
        ),
        "invalid-variable",
    );
    error(
        ID,
        &identity(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringLike":{"s3:prefix":"${aws:username, guest}"}}}"#,
        ),
        "invalid-variable",
    );
    error(
        ID,
        &identity(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#),
        "empty-array",
    );
    error(
        ID,
        r#"{"Version":"2012-10-17","Statement":"all"}"#,
        "wrong-type",
    );
    error(
        ID,
        r#"{"Version":"2012-10-17","Statement":[42]}"#,
        "wrong-type",
    );
    error(
        ID,
        &identity(r#"{"Effect":"allow","Action":"s3:GetObject","Resource":"*"}"#),
        "invalid-effect",
    );
    error(
        ID,
        &identity(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"k:k":{"nested":1}}}}"#,
        ),
        "wrong-type",
    );
    error(
        ID,
        &identity(
            r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{}}}"#,
        ),
        "empty-condition",
    );
}

#[test]
fn reports_every_error_not_only_the_first() {
    let text = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Alow","Action":"s3:GetObject","Resource":"*"},
        {"Effect":"Allow","Action":"GetObject","Resource":"*"},
        {"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"NumericLessThan":{"k:n":"ten"}}}]}"#;
    let c: Vec<_> = diags(ID, text)
        .into_iter()
        .filter(|d| d.is_error())
        .map(|d| (d.code, d.location.line))
        .collect();
    assert_eq!(
        c,
        vec![
            ("invalid-effect", 2),
            ("action-format", 3),
            ("invalid-value", 4)
        ]
    );
}

#[test]
fn diagnostics_render_with_position_path_and_code() {
    let d = error(
        ID,
        &identity(r#"{"Effect":"Allow","Action":"GetObject","Resource":"*"}"#),
        "action-format",
    );
    assert_eq!(
        d.to_string(),
        "1:56: error: Statement[0].Action: \"GetObject\" is not an action: write service:Action, such as s3:GetObject, or \"*\" [action-format]"
    );
}
