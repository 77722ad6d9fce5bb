//! Condition operators, end to end: every operator and qualifier of the IAM policy language,
//! each with a request it allows and a request it denies, plus the values `parse` refuses.

use writ_policy::{
    CompiledPolicy, Context, ContextValue, Diagnostic, Outcome, ParseOptions, PolicyKind,
    PolicySet, Request, parse,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type Ctx<'a> = [(&'a str, ContextValue)];

fn one(v: &str) -> ContextValue {
    ContextValue::One(v.into())
}

fn list(vs: &[&str]) -> ContextValue {
    ContextValue::List(vs.iter().map(|v| (*v).to_string()).collect())
}

/// Parses, compiles and evaluates `s3:GetObject` on `*` with the given context.
fn decide(policy_json: &str, ctx: &Ctx) -> Outcome {
    let policy = parse(policy_json, &ParseOptions::new(PolicyKind::Identity))
        .into_result()
        .unwrap_or_else(|d| panic!("policy did not parse:\n{policy_json}\n{d:#?}"));
    let mut set = PolicySet::new();
    set.add(CompiledPolicy::new("p", PolicyKind::Identity, &policy).expect("compiles"));
    let mut c = Context::new();
    for (k, v) in ctx {
        c.insert(k, v.clone());
    }
    set.evaluate(&Request::new("s3:GetObject", "*").with_context(c))
        .outcome
}

/// One statement on `s3:GetObject` / `*` with the given condition block.
fn statement(effect: &str, condition: &str) -> String {
    format!(
        r#"{{"Effect":"{effect}","Action":"s3:GetObject","Resource":"*","Condition":{condition}}}"#
    )
}

const ALLOW_ALL: &str = r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#;

fn document(version: Option<&str>, statements: &[String]) -> String {
    let version = version
        .map(|v| format!(r#""Version":"{v}","#))
        .unwrap_or_default();
    format!(r#"{{{version}"Statement":[{}]}}"#, statements.join(","))
}

/// A 2012-10-17 policy whose only statement allows when `condition` holds.
fn allow_when(condition: &str) -> String {
    document(Some("2012-10-17"), &[statement("Allow", condition)])
}

/// A 2012-10-17 policy that allows everything but denies when `condition` holds.
fn deny_when(condition: &str) -> String {
    document(
        Some("2012-10-17"),
        &[ALLOW_ALL.to_string(), statement("Deny", condition)],
    )
}

/// `{"OP": {"test:Key": "VALUE"}}`.
fn cond(op: &str, value: &str) -> String {
    format!(r#"{{"{op}":{{"test:Key":"{value}"}}}}"#)
}

#[track_caller]
fn assert_allowed(condition: &str, ctx: &Ctx) {
    assert_eq!(
        decide(&allow_when(condition), ctx),
        Outcome::Allowed,
        "expected Allow: condition {condition} with context {ctx:?}"
    );
}

#[track_caller]
fn assert_denied(condition: &str, ctx: &Ctx) {
    assert_eq!(
        decide(&allow_when(condition), ctx),
        Outcome::ImplicitDeny,
        "expected no Allow: condition {condition} with context {ctx:?}"
    );
}

#[track_caller]
fn assert_explicitly_denied(condition: &str, ctx: &Ctx) {
    assert_eq!(
        decide(&deny_when(condition), ctx),
        Outcome::ExplicitDeny,
        "expected the Deny to apply: condition {condition} with context {ctx:?}"
    );
}

#[track_caller]
fn assert_not_explicitly_denied(condition: &str, ctx: &Ctx) {
    assert_eq!(
        decide(&deny_when(condition), ctx),
        Outcome::Allowed,
        "expected the Deny not to apply: condition {condition} with context {ctx:?}"
    );
}

/// The error diagnostics of a policy with the given condition block; asserts it is refused.
fn errors_for(condition: &str) -> Vec<Diagnostic> {
    let parsed = parse(
        &allow_when(condition),
        &ParseOptions::new(PolicyKind::Identity),
    );
    assert!(
        parsed.policy.is_none(),
        "expected {condition} to be refused, diagnostics: {:#?}",
        parsed.diagnostics
    );
    parsed.errors().cloned().collect()
}

#[track_caller]
fn single_error(condition: &str) -> Diagnostic {
    let errors = errors_for(condition);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.into_iter().next().unwrap_or_else(|| unreachable!())
}

/// Every base operator: (name, policy value, a request value that satisfies it, one that
/// does not).
const CASES: &[(&str, &str, &str, &str)] = &[
    ("StringEquals", "alpha", "alpha", "Alpha"),
    ("StringNotEquals", "alpha", "beta", "alpha"),
    ("StringEqualsIgnoreCase", "alpha", "ALPHA", "beta"),
    ("StringNotEqualsIgnoreCase", "alpha", "beta", "ALPHA"),
    ("StringLike", "al*", "alpha", "beta"),
    ("StringNotLike", "al*", "beta", "alpha"),
    ("NumericEquals", "10", "10.0", "11"),
    ("NumericNotEquals", "10", "11", "10"),
    ("NumericLessThan", "10", "9", "10"),
    ("NumericLessThanEquals", "10", "10", "10.5"),
    ("NumericGreaterThan", "10", "11", "10"),
    ("NumericGreaterThanEquals", "10", "10", "9.99"),
    (
        "DateEquals",
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:01Z",
    ),
    (
        "DateNotEquals",
        "2024-01-01T00:00:00Z",
        "2024-01-02T00:00:00Z",
        "2024-01-01T00:00:00Z",
    ),
    (
        "DateLessThan",
        "2024-01-01T00:00:00Z",
        "2023-12-31T23:59:59Z",
        "2024-01-01T00:00:00Z",
    ),
    (
        "DateLessThanEquals",
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:01Z",
    ),
    (
        "DateGreaterThan",
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:01Z",
        "2024-01-01T00:00:00Z",
    ),
    (
        "DateGreaterThanEquals",
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00Z",
        "2023-12-31T23:59:59Z",
    ),
    ("Bool", "true", "true", "false"),
    ("BinaryEquals", "aGVsbG8=", "aGVsbG8=", "d29ybGQ="),
    ("IpAddress", "10.0.0.0/8", "10.1.2.3", "11.0.0.1"),
    ("NotIpAddress", "10.0.0.0/8", "11.0.0.1", "10.1.2.3"),
    (
        "ArnEquals",
        "arn:aws:s3:::bucket",
        "arn:aws:s3:::bucket",
        "arn:aws:s3:::other",
    ),
    (
        "ArnLike",
        "arn:aws:s3:::bucket/*",
        "arn:aws:s3:::bucket/key",
        "arn:aws:s3:::other/key",
    ),
    (
        "ArnNotEquals",
        "arn:aws:s3:::bucket",
        "arn:aws:s3:::other",
        "arn:aws:s3:::bucket",
    ),
    (
        "ArnNotLike",
        "arn:aws:s3:::bucket/*",
        "arn:aws:s3:::other/key",
        "arn:aws:s3:::bucket/key",
    ),
];

const NEGATED: &[&str] = &[
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "NumericNotEquals",
    "DateNotEquals",
    "NotIpAddress",
    "ArnNotEquals",
    "ArnNotLike",
];

// ---------------------------------------------------------------------------------------------
// Every operator at once
// ---------------------------------------------------------------------------------------------

#[test]
fn every_operator_allows_a_satisfying_value_and_denies_another() {
    assert_eq!(CASES.len(), 26, "every base operator but Null");
    for (op, policy, good, bad) in CASES {
        let c = cond(op, policy);
        assert_allowed(&c, &[("test:Key", one(good))]);
        assert_denied(&c, &[("test:Key", one(bad))]);
    }
}

#[test]
fn every_operator_in_a_deny_statement_denies_exactly_when_it_holds() {
    for (op, policy, good, bad) in CASES {
        let c = cond(op, policy);
        assert_explicitly_denied(&c, &[("test:Key", one(good))]);
        assert_not_explicitly_denied(&c, &[("test:Key", one(bad))]);
    }
}

// ---------------------------------------------------------------------------------------------
// String operators
// ---------------------------------------------------------------------------------------------

#[test]
fn string_equals_allows_the_exact_value_only() {
    let c = r#"{"StringEquals":{"aws:username":"alice"}}"#;
    assert_allowed(c, &[("aws:username", one("alice"))]);
    assert_denied(c, &[("aws:username", one("alice2"))]);
    assert_denied(c, &[("aws:username", one("alic"))]);
}

#[test]
fn string_equals_is_case_sensitive() {
    let c = r#"{"StringEquals":{"aws:username":"Alice"}}"#;
    assert_allowed(c, &[("aws:username", one("Alice"))]);
    assert_denied(c, &[("aws:username", one("alice"))]);
    assert_denied(c, &[("aws:username", one("ALICE"))]);
}

#[test]
fn string_equals_treats_wildcard_characters_literally() {
    let c = r#"{"StringEquals":{"aws:username":"a*"}}"#;
    assert_allowed(c, &[("aws:username", one("a*"))]);
    assert_denied(c, &[("aws:username", one("alice"))]);
    let c = r#"{"StringEquals":{"aws:username":"*"}}"#;
    assert_allowed(c, &[("aws:username", one("*"))]);
    assert_denied(c, &[("aws:username", one("anyone"))]);
    let c = r#"{"StringEquals":{"aws:username":"b?b"}}"#;
    assert_allowed(c, &[("aws:username", one("b?b"))]);
    assert_denied(c, &[("aws:username", one("bob"))]);
}

#[test]
fn string_equals_several_values_are_ored() {
    let c = r#"{"StringEquals":{"aws:PrincipalTag/team":["red","blue"]}}"#;
    assert_allowed(c, &[("aws:PrincipalTag/team", one("red"))]);
    assert_allowed(c, &[("aws:PrincipalTag/team", one("blue"))]);
    assert_denied(c, &[("aws:PrincipalTag/team", one("green"))]);
}

#[test]
fn string_not_equals_allows_other_values_and_denies_the_listed_one() {
    let c = r#"{"StringNotEquals":{"aws:username":"mallory"}}"#;
    assert_allowed(c, &[("aws:username", one("alice"))]);
    assert_allowed(c, &[("aws:username", one("Mallory"))]);
    assert_denied(c, &[("aws:username", one("mallory"))]);
}

#[test]
fn string_not_equals_several_values_combine_as_nor() {
    let c = r#"{"StringNotEquals":{"aws:PrincipalTag/team":["red","blue"]}}"#;
    assert_allowed(c, &[("aws:PrincipalTag/team", one("green"))]);
    assert_denied(c, &[("aws:PrincipalTag/team", one("red"))]);
    assert_denied(c, &[("aws:PrincipalTag/team", one("blue"))]);
}

#[test]
fn string_equals_ignore_case_matches_any_capitalisation() {
    let c = r#"{"StringEqualsIgnoreCase":{"aws:username":["Alice","bob"]}}"#;
    assert_allowed(c, &[("aws:username", one("alice"))]);
    assert_allowed(c, &[("aws:username", one("ALICE"))]);
    assert_allowed(c, &[("aws:username", one("BoB"))]);
    assert_denied(c, &[("aws:username", one("carol"))]);
    assert_denied(c, &[("aws:username", one("alice "))]);
}

#[test]
fn string_equals_ignore_case_has_no_wildcards() {
    let c = r#"{"StringEqualsIgnoreCase":{"aws:username":"A*"}}"#;
    assert_allowed(c, &[("aws:username", one("a*"))]);
    assert_denied(c, &[("aws:username", one("alice"))]);
}

#[test]
fn string_not_equals_ignore_case_denies_listed_values_in_any_case() {
    let c = r#"{"StringNotEqualsIgnoreCase":{"aws:username":["Alice","bob"]}}"#;
    assert_allowed(c, &[("aws:username", one("carol"))]);
    assert_denied(c, &[("aws:username", one("ALICE"))]);
    assert_denied(c, &[("aws:username", one("Bob"))]);
}

#[test]
fn string_like_star_matches_any_run_of_characters() {
    let c = r#"{"StringLike":{"s3:prefix":"home/*/docs"}}"#;
    assert_allowed(c, &[("s3:prefix", one("home/alice/docs"))]);
    assert_allowed(c, &[("s3:prefix", one("home//docs"))]);
    assert_allowed(c, &[("s3:prefix", one("home/a/b/docs"))]);
    assert_denied(c, &[("s3:prefix", one("home/alice/docs/x"))]);
    assert_denied(c, &[("s3:prefix", one("work/alice/docs"))]);
}

#[test]
fn string_like_question_mark_matches_exactly_one_character() {
    let c = r#"{"StringLike":{"s3:prefix":"v?.txt"}}"#;
    assert_allowed(c, &[("s3:prefix", one("v1.txt"))]);
    assert_denied(c, &[("s3:prefix", one("v.txt"))]);
    assert_denied(c, &[("s3:prefix", one("v12.txt"))]);
}

#[test]
fn string_like_is_case_sensitive_and_values_are_ored() {
    let c = r#"{"StringLike":{"s3:prefix":["Prod*","test-?"]}}"#;
    assert_allowed(c, &[("s3:prefix", one("Production"))]);
    assert_allowed(c, &[("s3:prefix", one("test-1"))]);
    assert_denied(c, &[("s3:prefix", one("production"))]);
    assert_denied(c, &[("s3:prefix", one("test-12"))]);
}

#[test]
fn string_not_like_denies_matches_of_any_pattern() {
    let c = r#"{"StringNotLike":{"s3:prefix":["tmp/*","*.bak"]}}"#;
    assert_allowed(c, &[("s3:prefix", one("data/report.csv"))]);
    assert_denied(c, &[("s3:prefix", one("tmp/x"))]);
    assert_denied(c, &[("s3:prefix", one("data/old.bak"))]);
}

// ---------------------------------------------------------------------------------------------
// Numeric operators
// ---------------------------------------------------------------------------------------------

#[test]
fn numeric_equals_compares_decimals_exactly() {
    let c = r#"{"NumericEquals":{"s3:max-keys":"1.50"}}"#;
    assert_allowed(c, &[("s3:max-keys", one("1.5"))]);
    assert_allowed(c, &[("s3:max-keys", one("01.500"))]);
    assert_denied(c, &[("s3:max-keys", one("1.51"))]);
    assert_denied(c, &[("s3:max-keys", one("1.4999999999999999999"))]);
}

#[test]
fn numeric_equals_distinguishes_integers_beyond_double_precision() {
    let c = r#"{"NumericEquals":{"s3:max-keys":"9007199254740993"}}"#;
    assert_allowed(c, &[("s3:max-keys", one("9007199254740993"))]);
    assert_denied(c, &[("s3:max-keys", one("9007199254740992"))]);
}

#[test]
fn numeric_values_may_be_json_numbers() {
    let c = r#"{"NumericLessThanEquals":{"s3:max-keys":10}}"#;
    assert_allowed(c, &[("s3:max-keys", one("10"))]);
    assert_denied(c, &[("s3:max-keys", one("11"))]);
    let c = r#"{"NumericEquals":{"s3:max-keys":[2.5, 7]}}"#;
    assert_allowed(c, &[("s3:max-keys", one("2.50"))]);
    assert_allowed(c, &[("s3:max-keys", one("7"))]);
    assert_denied(c, &[("s3:max-keys", one("3"))]);
}

#[test]
fn numeric_not_equals_several_values_combine_as_nor() {
    let c = r#"{"NumericNotEquals":{"s3:max-keys":["10","20"]}}"#;
    assert_allowed(c, &[("s3:max-keys", one("15"))]);
    assert_denied(c, &[("s3:max-keys", one("10"))]);
    assert_denied(c, &[("s3:max-keys", one("20.0"))]);
}

#[test]
fn numeric_less_than_excludes_the_bound() {
    let c = r#"{"NumericLessThan":{"s3:max-keys":"10"}}"#;
    assert_allowed(c, &[("s3:max-keys", one("9.999"))]);
    assert_allowed(c, &[("s3:max-keys", one("-100"))]);
    assert_denied(c, &[("s3:max-keys", one("10"))]);
    assert_denied(c, &[("s3:max-keys", one("10.001"))]);
}

#[test]
fn numeric_less_than_equals_includes_the_bound() {
    let c = r#"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#;
    assert_allowed(c, &[("s3:max-keys", one("10.000"))]);
    assert_allowed(c, &[("s3:max-keys", one("3"))]);
    assert_denied(c, &[("s3:max-keys", one("10.01"))]);
}

#[test]
fn numeric_greater_than_excludes_the_bound() {
    let c = r#"{"NumericGreaterThan":{"s3:max-keys":"-5"}}"#;
    assert_allowed(c, &[("s3:max-keys", one("-4.5"))]);
    assert_allowed(c, &[("s3:max-keys", one("0"))]);
    assert_denied(c, &[("s3:max-keys", one("-5"))]);
    assert_denied(c, &[("s3:max-keys", one("-10"))]);
}

#[test]
fn numeric_greater_than_equals_includes_the_bound() {
    let c = r#"{"NumericGreaterThanEquals":{"s3:max-keys":"100"}}"#;
    assert_allowed(c, &[("s3:max-keys", one("100"))]);
    assert_allowed(c, &[("s3:max-keys", one("1000"))]);
    assert_denied(c, &[("s3:max-keys", one("99.99"))]);
}

#[test]
fn numeric_request_value_that_is_not_a_number_satisfies_only_negated_operators() {
    for op in [
        "NumericEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
    ] {
        assert_denied(&cond(op, "10"), &[("test:Key", one("abc"))]);
    }
    assert_allowed(&cond("NumericNotEquals", "10"), &[("test:Key", one("abc"))]);
    assert_denied(&cond("NumericNotEquals", "10"), &[("test:Key", one("10"))]);
}

// ---------------------------------------------------------------------------------------------
// Date operators
// ---------------------------------------------------------------------------------------------

#[test]
fn date_equals_treats_iso_8601_and_epoch_seconds_as_the_same_instant() {
    // 2024-01-01T00:00:00Z is 1704067200 seconds after the epoch.
    let c = r#"{"DateEquals":{"aws:CurrentTime":"2024-01-01T00:00:00Z"}}"#;
    assert_allowed(c, &[("aws:CurrentTime", one("1704067200"))]);
    assert_denied(c, &[("aws:CurrentTime", one("1704067201"))]);
    let c = r#"{"DateEquals":{"aws:EpochTime":"1704067200"}}"#;
    assert_allowed(c, &[("aws:EpochTime", one("2024-01-01T00:00:00Z"))]);
    assert_denied(c, &[("aws:EpochTime", one("2024-01-01T00:00:01Z"))]);
}

#[test]
fn date_values_with_offsets_are_compared_as_instants() {
    let c = r#"{"DateEquals":{"aws:CurrentTime":"2024-01-01T02:00:00+02:00"}}"#;
    assert_allowed(c, &[("aws:CurrentTime", one("2024-01-01T00:00:00Z"))]);
    assert_denied(c, &[("aws:CurrentTime", one("2024-01-01T02:00:00Z"))]);
}

#[test]
fn date_only_values_mean_midnight_utc() {
    let c = r#"{"DateLessThan":{"aws:CurrentTime":"2024-06-01"}}"#;
    assert_allowed(c, &[("aws:CurrentTime", one("2024-05-31T23:59:59Z"))]);
    assert_denied(c, &[("aws:CurrentTime", one("2024-06-01T00:00:00Z"))]);
    let c = r#"{"DateEquals":{"aws:CurrentTime":"2024-06-01"}}"#;
    assert_allowed(c, &[("aws:CurrentTime", one("2024-06-01T00:00:00Z"))]);
    assert_denied(c, &[("aws:CurrentTime", one("2024-06-01T00:00:01Z"))]);
}

#[test]
fn date_not_equals_several_values_combine_as_nor() {
    let c =
        r#"{"DateNotEquals":{"aws:CurrentTime":["2024-01-01T00:00:00Z","2025-01-01T00:00:00Z"]}}"#;
    assert_allowed(c, &[("aws:CurrentTime", one("2024-07-01T00:00:00Z"))]);
    assert_denied(c, &[("aws:CurrentTime", one("2024-01-01T00:00:00Z"))]);
    assert_denied(c, &[("aws:CurrentTime", one("1735689600"))]);
}

#[test]
fn date_less_than_and_less_than_equals_differ_at_the_bound() {
    let lt = r#"{"DateLessThan":{"aws:CurrentTime":"2024-12-31T23:59:59Z"}}"#;
    let le = r#"{"DateLessThanEquals":{"aws:CurrentTime":"2024-12-31T23:59:59Z"}}"#;
    let at = [("aws:CurrentTime", one("2024-12-31T23:59:59Z"))];
    let before = [("aws:CurrentTime", one("2024-06-30T12:00:00Z"))];
    let after = [("aws:CurrentTime", one("2025-01-01T00:00:00Z"))];
    assert_allowed(lt, &before);
    assert_denied(lt, &at);
    assert_denied(lt, &after);
    assert_allowed(le, &before);
    assert_allowed(le, &at);
    assert_denied(le, &after);
}

#[test]
fn date_greater_than_and_greater_than_equals_differ_at_the_bound() {
    let gt = r#"{"DateGreaterThan":{"aws:CurrentTime":"2024-01-01T00:00:00Z"}}"#;
    let ge = r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"2024-01-01T00:00:00Z"}}"#;
    let at = [("aws:CurrentTime", one("2024-01-01T00:00:00Z"))];
    let before = [("aws:CurrentTime", one("2023-12-31T23:59:59Z"))];
    let after = [("aws:CurrentTime", one("2024-01-01T00:00:00.5Z"))];
    assert_allowed(gt, &after);
    assert_denied(gt, &at);
    assert_denied(gt, &before);
    assert_allowed(ge, &after);
    assert_allowed(ge, &at);
    assert_denied(ge, &before);
}

#[test]
fn date_window_of_two_operators_allows_inside_and_denies_outside() {
    let c = r#"{"DateGreaterThan":{"aws:CurrentTime":"2024-01-01T00:00:00Z"},
                "DateLessThan":{"aws:CurrentTime":"2024-02-01T00:00:00Z"}}"#;
    assert_allowed(c, &[("aws:CurrentTime", one("2024-01-15T12:00:00Z"))]);
    assert_denied(c, &[("aws:CurrentTime", one("2023-12-15T12:00:00Z"))]);
    assert_denied(c, &[("aws:CurrentTime", one("2024-02-15T12:00:00Z"))]);
}

#[test]
fn date_request_value_that_is_not_a_date_satisfies_only_negated_operators() {
    let soon = [("aws:CurrentTime", one("soon"))];
    assert_denied(
        r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#,
        &soon,
    );
    assert_denied(
        r#"{"DateGreaterThan":{"aws:CurrentTime":"2000-01-01T00:00:00Z"}}"#,
        &soon,
    );
    assert_allowed(
        r#"{"DateNotEquals":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#,
        &soon,
    );
}

// ---------------------------------------------------------------------------------------------
// Bool and BinaryEquals
// ---------------------------------------------------------------------------------------------

#[test]
fn bool_true_allows_true_and_denies_false() {
    let c = r#"{"Bool":{"aws:SecureTransport":"true"}}"#;
    assert_allowed(c, &[("aws:SecureTransport", one("true"))]);
    assert_denied(c, &[("aws:SecureTransport", one("false"))]);
    let c = r#"{"Bool":{"aws:SecureTransport":"false"}}"#;
    assert_allowed(c, &[("aws:SecureTransport", one("false"))]);
    assert_denied(c, &[("aws:SecureTransport", one("true"))]);
}

#[test]
fn bool_ignores_case_and_accepts_json_booleans() {
    let c = r#"{"Bool":{"aws:MultiFactorAuthPresent":true}}"#;
    assert_allowed(c, &[("aws:MultiFactorAuthPresent", one("TRUE"))]);
    assert_allowed(
        c,
        &[("aws:MultiFactorAuthPresent", ContextValue::from(true))],
    );
    assert_denied(c, &[("aws:MultiFactorAuthPresent", one("False"))]);
    let c = r#"{"Bool":{"aws:MultiFactorAuthPresent":"False"}}"#;
    assert_allowed(c, &[("aws:MultiFactorAuthPresent", one("false"))]);
    assert_denied(c, &[("aws:MultiFactorAuthPresent", one("true"))]);
}

#[test]
fn bool_request_value_that_is_not_a_boolean_never_matches() {
    let c = r#"{"Bool":{"aws:SecureTransport":"true"}}"#;
    assert_denied(c, &[("aws:SecureTransport", one("yes"))]);
    assert_denied(c, &[("aws:SecureTransport", one("1"))]);
    let c = r#"{"Bool":{"aws:SecureTransport":"false"}}"#;
    assert_denied(c, &[("aws:SecureTransport", one("no"))]);
}

#[test]
fn deny_on_insecure_transport_with_bool_false() {
    let c = r#"{"Bool":{"aws:SecureTransport":"false"}}"#;
    assert_explicitly_denied(c, &[("aws:SecureTransport", one("false"))]);
    assert_not_explicitly_denied(c, &[("aws:SecureTransport", one("true"))]);
}

#[test]
fn binary_equals_compares_the_decoded_bytes() {
    // "aGVsbG8=" is base64 for "hello", "aGVsbG8h" for "hello!".
    let c = r#"{"BinaryEquals":{"test:Blob":"aGVsbG8="}}"#;
    assert_allowed(c, &[("test:Blob", one("aGVsbG8="))]);
    assert_denied(c, &[("test:Blob", one("aGVsbG8h"))]);
    assert_denied(c, &[("test:Blob", one("hello"))]);
}

#[test]
fn binary_equals_several_values_are_ored() {
    let c = r#"{"BinaryEquals":{"test:Blob":["aGVsbG8=","AAEC"]}}"#;
    assert_allowed(c, &[("test:Blob", one("AAEC"))]);
    assert_allowed(c, &[("test:Blob", one("aGVsbG8="))]);
    assert_denied(c, &[("test:Blob", one("AAED"))]);
}

#[test]
fn binary_equals_request_value_that_is_not_base64_never_matches() {
    let c = r#"{"BinaryEquals":{"test:Blob":"aGVsbG8="}}"#;
    assert_denied(c, &[("test:Blob", one("!!not base64!!"))]);
}

// ---------------------------------------------------------------------------------------------
// IP address operators
// ---------------------------------------------------------------------------------------------

#[test]
fn ip_address_matches_ipv4_cidr_blocks() {
    let c = r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#;
    assert_allowed(c, &[("aws:SourceIp", one("203.0.113.0"))]);
    assert_allowed(c, &[("aws:SourceIp", one("203.0.113.255"))]);
    assert_denied(c, &[("aws:SourceIp", one("203.0.114.1"))]);
    assert_denied(c, &[("aws:SourceIp", one("203.0.112.255"))]);
}

#[test]
fn ip_address_single_address_matches_only_itself() {
    let c = r#"{"IpAddress":{"aws:SourceIp":"198.51.100.7"}}"#;
    assert_allowed(c, &[("aws:SourceIp", one("198.51.100.7"))]);
    assert_denied(c, &[("aws:SourceIp", one("198.51.100.8"))]);
    let c = r#"{"IpAddress":{"aws:SourceIp":"2001:db8::1"}}"#;
    assert_allowed(c, &[("aws:SourceIp", one("2001:0db8:0:0:0:0:0:1"))]);
    assert_denied(c, &[("aws:SourceIp", one("2001:db8::2"))]);
}

#[test]
fn ip_address_matches_ipv6_cidr_blocks() {
    let c = r#"{"IpAddress":{"aws:SourceIp":"2001:db8:1234::/48"}}"#;
    assert_allowed(c, &[("aws:SourceIp", one("2001:db8:1234:ffff::9"))]);
    assert_denied(c, &[("aws:SourceIp", one("2001:db8:1235::1"))]);
    assert_denied(c, &[("aws:SourceIp", one("203.0.113.1"))]);
}

#[test]
fn ip_address_several_blocks_are_ored_across_families() {
    let c = r#"{"IpAddress":{"aws:SourceIp":["192.0.2.0/24","2001:db8::/32"]}}"#;
    assert_allowed(c, &[("aws:SourceIp", one("192.0.2.44"))]);
    assert_allowed(c, &[("aws:SourceIp", one("2001:db8:ab::1"))]);
    assert_denied(c, &[("aws:SourceIp", one("192.0.3.1"))]);
    assert_denied(c, &[("aws:SourceIp", one("2001:db9::1"))]);
}

#[test]
fn not_ip_address_several_blocks_combine_as_nor() {
    let c = r#"{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}"#;
    assert_allowed(c, &[("aws:SourceIp", one("8.8.8.8"))]);
    assert_denied(c, &[("aws:SourceIp", one("10.200.0.1"))]);
    assert_denied(c, &[("aws:SourceIp", one("192.168.1.1"))]);
}

#[test]
fn deny_with_not_ip_address_blocks_callers_outside_the_range() {
    let c = r#"{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#;
    assert_explicitly_denied(c, &[("aws:SourceIp", one("198.51.100.1"))]);
    assert_not_explicitly_denied(c, &[("aws:SourceIp", one("203.0.113.10"))]);
}

#[test]
fn ip_request_value_that_is_not_an_address_satisfies_only_not_ip_address() {
    let ctx = [("aws:SourceIp", one("not-an-ip"))];
    assert_denied(r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#, &ctx);
    assert_allowed(r#"{"NotIpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#, &ctx);
    assert_denied(
        r#"{"NotIpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
        &[("aws:SourceIp", one("1.2.3.4"))],
    );
}

// ---------------------------------------------------------------------------------------------
// ARN operators
// ---------------------------------------------------------------------------------------------

#[test]
fn arn_equals_matches_the_exact_arn_case_sensitively() {
    let c = r#"{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:user/Bob"}}"#;
    assert_allowed(
        c,
        &[(
            "aws:PrincipalArn",
            one("arn:aws:iam::123456789012:user/Bob"),
        )],
    );
    assert_denied(
        c,
        &[(
            "aws:PrincipalArn",
            one("arn:aws:iam::123456789012:user/bob"),
        )],
    );
    assert_denied(
        c,
        &[(
            "aws:PrincipalArn",
            one("arn:aws:iam::210987654321:user/Bob"),
        )],
    );
}

#[test]
fn arn_equals_accepts_wildcards_like_arn_like() {
    let c = r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:*:123456789012:alerts-?"}}"#;
    assert_allowed(
        c,
        &[(
            "aws:SourceArn",
            one("arn:aws:sns:eu-west-1:123456789012:alerts-1"),
        )],
    );
    assert_denied(
        c,
        &[(
            "aws:SourceArn",
            one("arn:aws:sns:eu-west-1:123456789012:alerts-10"),
        )],
    );
    assert_denied(
        c,
        &[(
            "aws:SourceArn",
            one("arn:aws:sns:eu-west-1:999999999999:alerts-1"),
        )],
    );
}

#[test]
fn arn_like_wildcards_match_within_a_segment() {
    let c = r#"{"ArnLike":{"aws:SourceArn":"arn:aws:s3:::logs-*"}}"#;
    assert_allowed(c, &[("aws:SourceArn", one("arn:aws:s3:::logs-2024"))]);
    assert_denied(c, &[("aws:SourceArn", one("arn:aws:s3:::data-2024"))]);
    let c = r#"{"ArnLike":{"aws:SourceArn":"arn:aws:lambda:us-?ast-1:*:function:*"}}"#;
    assert_allowed(
        c,
        &[(
            "aws:SourceArn",
            one("arn:aws:lambda:us-east-1:123456789012:function:f"),
        )],
    );
    assert_denied(
        c,
        &[(
            "aws:SourceArn",
            one("arn:aws:lambda:us-west-1:123456789012:function:f"),
        )],
    );
}

#[test]
fn arn_like_wildcard_does_not_cross_segment_boundaries() {
    // As one glob over the whole text, the first `*` could swallow
    // "sqs:us-east-1:999999999999:queue"; segment by segment, the account differs.
    let c = r#"{"ArnLike":{"aws:SourceArn":"arn:aws:*:*:111122223333:*"}}"#;
    assert_allowed(
        c,
        &[(
            "aws:SourceArn",
            one("arn:aws:sqs:us-east-1:111122223333:queue"),
        )],
    );
    assert_denied(
        c,
        &[(
            "aws:SourceArn",
            one("arn:aws:sqs:us-east-1:999999999999:queue:111122223333:x"),
        )],
    );
}

#[test]
fn arn_like_resource_segment_keeps_its_colons() {
    let c =
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:logs:us-east-1:123456789012:log-group:/app/*"}}"#;
    assert_allowed(
        c,
        &[(
            "aws:SourceArn",
            one("arn:aws:logs:us-east-1:123456789012:log-group:/app/web:log-stream:s1"),
        )],
    );
    assert_denied(
        c,
        &[(
            "aws:SourceArn",
            one("arn:aws:logs:us-east-1:123456789012:log-group:/other/web"),
        )],
    );
}

#[test]
fn arn_like_is_case_sensitive() {
    let c = r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/Admin*"}}"#;
    assert_allowed(
        c,
        &[(
            "aws:PrincipalArn",
            one("arn:aws:iam::123456789012:role/AdminRole"),
        )],
    );
    assert_denied(
        c,
        &[(
            "aws:PrincipalArn",
            one("arn:aws:iam::123456789012:role/adminrole"),
        )],
    );
}

#[test]
fn arn_not_equals_several_values_combine_as_nor() {
    let c = r#"{"ArnNotEquals":{"aws:SourceArn":["arn:aws:s3:::a","arn:aws:s3:::b"]}}"#;
    assert_allowed(c, &[("aws:SourceArn", one("arn:aws:s3:::c"))]);
    assert_denied(c, &[("aws:SourceArn", one("arn:aws:s3:::a"))]);
    assert_denied(c, &[("aws:SourceArn", one("arn:aws:s3:::b"))]);
}

#[test]
fn arn_not_like_denies_arns_matching_any_pattern() {
    let c = r#"{"ArnNotLike":{"aws:PrincipalArn":["arn:aws:iam::*:role/Admin*","arn:aws:iam::*:root"]}}"#;
    assert_allowed(
        c,
        &[(
            "aws:PrincipalArn",
            one("arn:aws:iam::123456789012:role/Reader"),
        )],
    );
    assert_denied(
        c,
        &[(
            "aws:PrincipalArn",
            one("arn:aws:iam::123456789012:role/AdminX"),
        )],
    );
    assert_denied(
        c,
        &[("aws:PrincipalArn", one("arn:aws:iam::123456789012:root"))],
    );
}

#[test]
fn arn_request_value_that_is_not_an_arn_satisfies_only_negated_operators() {
    let ctx = [("aws:SourceArn", one("not-an-arn"))];
    assert_denied(r#"{"ArnLike":{"aws:SourceArn":"arn:*:*:*:*:*"}}"#, &ctx);
    assert_denied(r#"{"ArnEquals":{"aws:SourceArn":"arn:*:*:*:*:*"}}"#, &ctx);
    assert_allowed(r#"{"ArnNotLike":{"aws:SourceArn":"arn:*:*:*:*:*"}}"#, &ctx);
    assert_allowed(
        r#"{"ArnNotEquals":{"aws:SourceArn":"arn:*:*:*:*:*"}}"#,
        &ctx,
    );
}

#[test]
fn deny_with_arn_not_like_protects_against_other_sources() {
    let c = r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:sns:us-east-1:123456789012:*"}}"#;
    assert_explicitly_denied(
        c,
        &[(
            "aws:SourceArn",
            one("arn:aws:sns:us-east-1:999999999999:topic"),
        )],
    );
    assert_not_explicitly_denied(
        c,
        &[(
            "aws:SourceArn",
            one("arn:aws:sns:us-east-1:123456789012:topic"),
        )],
    );
}

// ---------------------------------------------------------------------------------------------
// Null
// ---------------------------------------------------------------------------------------------

#[test]
fn null_true_holds_only_when_the_key_is_absent() {
    let c = r#"{"Null":{"aws:TokenIssueTime":"true"}}"#;
    assert_allowed(c, &[]);
    assert_allowed(c, &[("aws:username", one("alice"))]);
    assert_denied(c, &[("aws:TokenIssueTime", one("2024-01-01T00:00:00Z"))]);
}

#[test]
fn null_false_holds_only_when_the_key_is_present() {
    let c = r#"{"Null":{"aws:TokenIssueTime":"false"}}"#;
    assert_allowed(c, &[("aws:TokenIssueTime", one("2024-01-01T00:00:00Z"))]);
    assert_allowed(c, &[("aws:TokenIssueTime", one(""))]);
    assert_denied(c, &[]);
}

#[test]
fn null_accepts_json_booleans_and_any_case() {
    assert_allowed(r#"{"Null":{"aws:TagKeys":true}}"#, &[]);
    assert_denied(
        r#"{"Null":{"aws:TagKeys":true}}"#,
        &[("aws:TagKeys", list(&["a"]))],
    );
    assert_allowed(
        r#"{"Null":{"aws:TagKeys":"FALSE"}}"#,
        &[("aws:TagKeys", list(&["a"]))],
    );
    assert_denied(r#"{"Null":{"aws:TagKeys":"FALSE"}}"#, &[]);
}

#[test]
fn null_treats_an_empty_list_as_absent() {
    let empty = [("aws:TagKeys", list(&[]))];
    assert_allowed(r#"{"Null":{"aws:TagKeys":"true"}}"#, &empty);
    assert_denied(r#"{"Null":{"aws:TagKeys":"false"}}"#, &empty);
}

#[test]
fn deny_with_null_false_guards_requests_that_carry_the_key() {
    let c = r#"{"Null":{"aws:RequestTag/owner":"true"}}"#;
    assert_explicitly_denied(c, &[]);
    assert_not_explicitly_denied(c, &[("aws:RequestTag/owner", one("alice"))]);
}

// ---------------------------------------------------------------------------------------------
// Combining keys and operators
// ---------------------------------------------------------------------------------------------

#[test]
fn several_keys_under_one_operator_are_anded() {
    let c = r#"{"StringEquals":{"aws:PrincipalTag/team":"red","aws:PrincipalTag/env":"prod"}}"#;
    assert_allowed(
        c,
        &[
            ("aws:PrincipalTag/team", one("red")),
            ("aws:PrincipalTag/env", one("prod")),
        ],
    );
    assert_denied(
        c,
        &[
            ("aws:PrincipalTag/team", one("red")),
            ("aws:PrincipalTag/env", one("dev")),
        ],
    );
    assert_denied(c, &[("aws:PrincipalTag/team", one("red"))]);
}

#[test]
fn several_operators_in_a_condition_are_anded() {
    let c = r#"{"StringLike":{"s3:prefix":"home/*"},
                "IpAddress":{"aws:SourceIp":"10.0.0.0/8"},
                "Bool":{"aws:SecureTransport":"true"}}"#;
    let ok = [
        ("s3:prefix", one("home/x")),
        ("aws:SourceIp", one("10.1.1.1")),
        ("aws:SecureTransport", one("true")),
    ];
    assert_allowed(c, &ok);
    for i in 0..ok.len() {
        let mut ctx = ok.to_vec();
        ctx[i].1 = one(match i {
            0 => "work/x",
            1 => "11.1.1.1",
            _ => "false",
        });
        assert_denied(c, &ctx);
    }
}

#[test]
fn condition_keys_ignore_case_but_string_values_do_not() {
    let c = r#"{"IpAddress":{"aws:sourceip":"10.0.0.0/8"}}"#;
    assert_allowed(c, &[("aws:SourceIp", one("10.0.0.1"))]);
    assert_denied(c, &[("aws:SourceIp", one("11.0.0.1"))]);
    let c = r#"{"StringEquals":{"AWS:PRINCIPALTAG/Team":"Red"}}"#;
    assert_allowed(c, &[("aws:PrincipalTag/team", one("Red"))]);
    assert_denied(c, &[("aws:PrincipalTag/team", one("red"))]);
}

// ---------------------------------------------------------------------------------------------
// Missing keys and IfExists
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_key_fails_every_positive_operator() {
    let unrelated = [("test:Other", one("x"))];
    for (op, policy, _, _) in CASES.iter().filter(|c| !NEGATED.contains(&c.0)) {
        assert_denied(&cond(op, policy), &unrelated);
        assert_denied(&cond(op, policy), &[]);
    }
}

#[test]
fn missing_key_satisfies_every_negated_operator() {
    let unrelated = [("test:Other", one("x"))];
    let mut seen = 0;
    for (op, policy, _, _) in CASES.iter().filter(|c| NEGATED.contains(&c.0)) {
        assert_allowed(&cond(op, policy), &unrelated);
        assert_allowed(&cond(op, policy), &[]);
        seen += 1;
    }
    assert_eq!(seen, NEGATED.len());
}

#[test]
fn deny_with_negated_operator_applies_when_the_key_is_missing() {
    let c = r#"{"StringNotEquals":{"aws:PrincipalTag/team":"red"}}"#;
    assert_explicitly_denied(c, &[]);
    assert_not_explicitly_denied(c, &[("aws:PrincipalTag/team", one("red"))]);
}

#[test]
fn if_exists_with_the_key_missing_holds_for_every_operator() {
    for (op, policy, _, _) in CASES {
        assert_allowed(&cond(&format!("{op}IfExists"), policy), &[]);
    }
}

#[test]
fn if_exists_with_the_key_present_behaves_like_the_base_operator() {
    for (op, policy, good, bad) in CASES {
        let c = cond(&format!("{op}IfExists"), policy);
        assert_allowed(&c, &[("test:Key", one(good))]);
        assert_denied(&c, &[("test:Key", one(bad))]);
    }
}

#[test]
fn string_equals_if_exists_allows_absent_key_and_checks_present_key() {
    let c = r#"{"StringEqualsIfExists":{"ec2:InstanceType":["t3.micro","t3.small"]}}"#;
    assert_allowed(c, &[]);
    assert_allowed(c, &[("ec2:InstanceType", one("t3.small"))]);
    assert_denied(c, &[("ec2:InstanceType", one("m5.large"))]);
}

#[test]
fn if_exists_treats_an_empty_list_as_missing() {
    let c = r#"{"StringEqualsIfExists":{"aws:TagKeys":"owner"}}"#;
    assert_allowed(c, &[("aws:TagKeys", list(&[]))]);
    assert_denied(
        r#"{"StringEquals":{"aws:TagKeys":"owner"}}"#,
        &[("aws:TagKeys", list(&[]))],
    );
}

#[test]
fn deny_with_if_exists_also_applies_when_the_key_is_missing() {
    // IfExists makes a missing key satisfy the condition, so a Deny applies to such requests.
    let c = r#"{"NumericGreaterThanIfExists":{"s3:max-keys":"100"}}"#;
    assert_explicitly_denied(c, &[]);
    assert_not_explicitly_denied(c, &[("s3:max-keys", one("50"))]);
    assert_explicitly_denied(c, &[("s3:max-keys", one("500"))]);
    // Without IfExists, the same Deny does not apply when the key is missing.
    assert_not_explicitly_denied(r#"{"NumericGreaterThan":{"s3:max-keys":"100"}}"#, &[]);
}

// ---------------------------------------------------------------------------------------------
// Set qualifiers: ForAllValues and ForAnyValue
// ---------------------------------------------------------------------------------------------

#[test]
fn for_all_values_holds_when_every_request_value_is_in_the_policy_set() {
    let c = r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["owner","env","team"]}}"#;
    assert_allowed(c, &[("aws:TagKeys", list(&["owner", "env"]))]);
    assert_allowed(c, &[("aws:TagKeys", list(&["team"]))]);
    assert_denied(c, &[("aws:TagKeys", list(&["owner", "cost"]))]);
    assert_denied(c, &[("aws:TagKeys", list(&["Owner"]))]);
}

#[test]
fn for_all_values_holds_when_the_key_is_missing_or_empty() {
    let c = r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["owner"]}}"#;
    assert_allowed(c, &[]);
    assert_allowed(c, &[("aws:TagKeys", list(&[]))]);
    assert_denied(c, &[("aws:TagKeys", list(&["other"]))]);
}

#[test]
fn for_any_value_holds_when_one_request_value_is_in_the_policy_set() {
    let c = r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["owner","env"]}}"#;
    assert_allowed(c, &[("aws:TagKeys", list(&["cost", "env"]))]);
    assert_allowed(c, &[("aws:TagKeys", list(&["owner"]))]);
    assert_denied(c, &[("aws:TagKeys", list(&["cost", "team"]))]);
}

#[test]
fn for_any_value_fails_when_the_key_is_missing_or_empty() {
    let c = r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["owner"]}}"#;
    assert_denied(c, &[]);
    assert_denied(c, &[("aws:TagKeys", list(&[]))]);
    assert_allowed(c, &[("aws:TagKeys", list(&["owner"]))]);
}

#[test]
fn for_all_values_string_not_equals_forbids_every_policy_value() {
    let c = r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["secret","admin"]}}"#;
    assert_allowed(c, &[("aws:TagKeys", list(&["owner", "env"]))]);
    assert_denied(c, &[("aws:TagKeys", list(&["owner", "admin"]))]);
    assert_denied(c, &[("aws:TagKeys", list(&["secret"]))]);
    assert_allowed(c, &[]);
}

#[test]
fn for_any_value_string_not_equals_needs_one_value_outside_the_policy_set() {
    let c = r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["owner","env"]}}"#;
    assert_allowed(c, &[("aws:TagKeys", list(&["owner", "cost"]))]);
    assert_denied(c, &[("aws:TagKeys", list(&["owner", "env"]))]);
    assert_denied(c, &[("aws:TagKeys", list(&["env"]))]);
}

#[test]
fn for_any_value_string_not_equals_fails_when_the_key_is_missing() {
    let c = r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["owner"]}}"#;
    assert_denied(c, &[]);
    assert_denied(c, &[("aws:TagKeys", list(&[]))]);
    assert_allowed(c, &[("aws:TagKeys", list(&["cost"]))]);
}

#[test]
fn for_all_values_string_like_requires_every_value_to_match_a_pattern() {
    let c = r#"{"ForAllValues:StringLike":{"aws:TagKeys":["app-*","env"]}}"#;
    assert_allowed(
        c,
        &[("aws:TagKeys", list(&["app-name", "app-tier", "env"]))],
    );
    assert_denied(c, &[("aws:TagKeys", list(&["app-name", "owner"]))]);
}

#[test]
fn for_any_value_string_like_requires_one_value_to_match_a_pattern() {
    let c = r#"{"ForAnyValue:StringLike":{"aws:PrincipalServiceNamesList":"*.amazonaws.com"}}"#;
    assert_allowed(
        c,
        &[(
            "aws:PrincipalServiceNamesList",
            list(&["example.org", "lambda.amazonaws.com"]),
        )],
    );
    assert_denied(
        c,
        &[("aws:PrincipalServiceNamesList", list(&["example.org"]))],
    );
}

#[test]
fn for_any_value_works_with_every_operator() {
    for (op, policy, good, bad) in CASES {
        let c = cond(&format!("ForAnyValue:{op}"), policy);
        assert_allowed(&c, &[("test:Key", list(&[bad, good]))]);
        assert_denied(&c, &[("test:Key", list(&[bad, bad]))]);
        assert_denied(&c, &[]);
    }
}

#[test]
fn for_all_values_works_with_every_operator() {
    for (op, policy, good, bad) in CASES {
        let c = cond(&format!("ForAllValues:{op}"), policy);
        assert_allowed(&c, &[("test:Key", list(&[good, good]))]);
        assert_denied(&c, &[("test:Key", list(&[good, bad]))]);
        assert_allowed(&c, &[]);
    }
}

#[test]
fn qualified_if_exists_operators_hold_when_the_key_is_missing() {
    let c = r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":"owner"}}"#;
    assert_allowed(c, &[]);
    assert_allowed(c, &[("aws:TagKeys", list(&["owner", "x"]))]);
    assert_denied(c, &[("aws:TagKeys", list(&["x"]))]);
    let c = r#"{"ForAllValues:StringEqualsIfExists":{"aws:TagKeys":"owner"}}"#;
    assert_allowed(c, &[]);
    assert_allowed(c, &[("aws:TagKeys", list(&["owner"]))]);
    assert_denied(c, &[("aws:TagKeys", list(&["owner", "x"]))]);
}

#[test]
fn for_any_value_numeric_and_date_compare_each_request_value() {
    let c = r#"{"ForAnyValue:NumericGreaterThan":{"test:Sizes":"100"}}"#;
    assert_allowed(c, &[("test:Sizes", list(&["5", "101"]))]);
    assert_denied(c, &[("test:Sizes", list(&["5", "100"]))]);
    let c = r#"{"ForAllValues:DateLessThan":{"test:Dates":"2025-01-01T00:00:00Z"}}"#;
    assert_allowed(c, &[("test:Dates", list(&["2024-01-01", "1700000000"]))]);
    assert_denied(c, &[("test:Dates", list(&["2024-01-01", "2026-01-01"]))]);
}

#[test]
fn multivalued_key_without_qualifier_behaves_like_for_any_value() {
    let c = r#"{"StringEquals":{"aws:TagKeys":["owner","env"]}}"#;
    assert_allowed(c, &[("aws:TagKeys", list(&["cost", "owner"]))]);
    assert_denied(c, &[("aws:TagKeys", list(&["cost", "team"]))]);
    assert_denied(c, &[]);
}

#[test]
fn deny_with_for_any_value_blocks_requests_carrying_a_forbidden_tag() {
    let c = r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["secret"]}}"#;
    assert_explicitly_denied(c, &[("aws:TagKeys", list(&["owner", "secret"]))]);
    assert_not_explicitly_denied(c, &[("aws:TagKeys", list(&["owner"]))]);
    assert_not_explicitly_denied(c, &[]);
}

// ---------------------------------------------------------------------------------------------
// Policy variables
// ---------------------------------------------------------------------------------------------

#[test]
fn variable_username_is_substituted_in_string_equals() {
    let c = r#"{"StringEquals":{"s3:prefix":"home/${aws:username}"}}"#;
    assert_allowed(
        c,
        &[
            ("aws:username", one("alice")),
            ("s3:prefix", one("home/alice")),
        ],
    );
    assert_denied(
        c,
        &[
            ("aws:username", one("alice")),
            ("s3:prefix", one("home/bob")),
        ],
    );
}

#[test]
fn variable_principal_tag_is_substituted_in_string_like() {
    let c = r#"{"StringLike":{"s3:prefix":"teams/${aws:PrincipalTag/team}/*"}}"#;
    assert_allowed(
        c,
        &[
            ("aws:PrincipalTag/team", one("red")),
            ("s3:prefix", one("teams/red/plan.txt")),
        ],
    );
    assert_denied(
        c,
        &[
            ("aws:PrincipalTag/team", one("red")),
            ("s3:prefix", one("teams/blue/plan.txt")),
        ],
    );
}

#[test]
fn variable_compares_resource_tag_to_principal_tag() {
    let c = r#"{"StringEquals":{"aws:ResourceTag/owner":"${aws:PrincipalTag/owner}"}}"#;
    assert_allowed(
        c,
        &[
            ("aws:PrincipalTag/owner", one("alice")),
            ("aws:ResourceTag/owner", one("alice")),
        ],
    );
    assert_denied(
        c,
        &[
            ("aws:PrincipalTag/owner", one("alice")),
            ("aws:ResourceTag/owner", one("bob")),
        ],
    );
}

#[test]
fn variable_names_ignore_case() {
    let c = r#"{"StringEquals":{"s3:prefix":"${AWS:UserName}"}}"#;
    assert_allowed(
        c,
        &[("aws:username", one("alice")), ("s3:prefix", one("alice"))],
    );
    assert_denied(
        c,
        &[("aws:username", one("alice")), ("s3:prefix", one("Alice"))],
    );
}

#[test]
fn variable_default_is_used_only_when_the_key_is_missing() {
    let c = r#"{"StringEquals":{"s3:prefix":"${aws:PrincipalTag/team, 'guest'}"}}"#;
    assert_allowed(c, &[("s3:prefix", one("guest"))]);
    assert_denied(c, &[("s3:prefix", one("red"))]);
    assert_allowed(
        c,
        &[
            ("aws:PrincipalTag/team", one("red")),
            ("s3:prefix", one("red")),
        ],
    );
    assert_denied(
        c,
        &[
            ("aws:PrincipalTag/team", one("red")),
            ("s3:prefix", one("guest")),
        ],
    );
}

#[test]
fn variable_escapes_stand_for_literal_characters() {
    let c = r#"{"StringLike":{"s3:prefix":"a${*}b${?}c${$}"}}"#;
    assert_allowed(c, &[("s3:prefix", one("a*b?c$"))]);
    assert_denied(c, &[("s3:prefix", one("aXbYc$"))]);
    assert_denied(c, &[("s3:prefix", one("a*b?c"))]);
    let c = r#"{"StringEquals":{"s3:prefix":"${$}{aws:username}"}}"#;
    assert_allowed(
        c,
        &[
            ("aws:username", one("alice")),
            ("s3:prefix", one("${aws:username}")),
        ],
    );
    assert_denied(
        c,
        &[("aws:username", one("alice")), ("s3:prefix", one("alice"))],
    );
}

#[test]
fn variable_value_is_matched_literally_even_in_string_like() {
    let c = r#"{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}"#;
    let user = ("aws:username", one("a*"));
    assert_allowed(c, &[user.clone(), ("s3:prefix", one("home/a*/file"))]);
    assert_denied(c, &[user, ("s3:prefix", one("home/alice/file"))]);
}

#[test]
fn variable_with_missing_key_makes_an_allow_not_apply() {
    let c = r#"{"StringEquals":{"s3:prefix":"home/${aws:username}"}}"#;
    assert_denied(c, &[("s3:prefix", one("home/"))]);
    assert_denied(c, &[("s3:prefix", one("home/${aws:username}"))]);
    // The whole statement does not apply, even for another value of the same key: AWS
    // documents that an unresolvable variable may make the statement invalid.
    let c = r#"{"StringEquals":{"s3:prefix":["home/${aws:username}","public"]}}"#;
    assert_denied(c, &[("s3:prefix", one("public"))]);
    assert_denied(c, &[("s3:prefix", one("home/"))]);
    assert_allowed(
        c,
        &[("s3:prefix", one("public")), ("aws:username", one("alice"))],
    );
}

#[test]
fn variable_from_a_multivalued_key_is_not_substituted() {
    let c = r#"{"StringEquals":{"s3:prefix":"${aws:TagKeys}"}}"#;
    assert_denied(
        c,
        &[
            ("aws:TagKeys", list(&["owner"])),
            ("s3:prefix", one("owner")),
        ],
    );
    assert_allowed(
        c,
        &[("aws:TagKeys", one("owner")), ("s3:prefix", one("owner"))],
    );
}

#[test]
fn variable_is_substituted_in_string_equals_ignore_case_and_string_not_equals() {
    let c = r#"{"StringEqualsIgnoreCase":{"s3:prefix":"${aws:username}"}}"#;
    assert_allowed(
        c,
        &[("aws:username", one("alice")), ("s3:prefix", one("ALICE"))],
    );
    assert_denied(
        c,
        &[("aws:username", one("alice")), ("s3:prefix", one("bob"))],
    );
    let c = r#"{"StringNotEquals":{"s3:prefix":"${aws:username}"}}"#;
    assert_allowed(
        c,
        &[("aws:username", one("alice")), ("s3:prefix", one("bob"))],
    );
    assert_denied(
        c,
        &[("aws:username", one("alice")), ("s3:prefix", one("alice"))],
    );
}

#[test]
fn variable_is_substituted_in_the_resource_part_of_arn_like() {
    let c = r#"{"ArnLike":{"aws:SourceArn":"arn:aws:s3:::home-${aws:username}/*"}}"#;
    assert_allowed(
        c,
        &[
            ("aws:username", one("alice")),
            ("aws:SourceArn", one("arn:aws:s3:::home-alice/doc")),
        ],
    );
    assert_denied(
        c,
        &[
            ("aws:username", one("alice")),
            ("aws:SourceArn", one("arn:aws:s3:::home-bob/doc")),
        ],
    );
}

#[test]
fn variable_is_substituted_in_the_account_part_of_arn_like() {
    // The variable's own name contains a colon; it must be substituted, not split as an ARN
    // separator.
    let c = r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:us-east-1:${aws:PrincipalAccount}:*"}}"#;
    assert_allowed(
        c,
        &[
            ("aws:PrincipalAccount", one("123456789012")),
            (
                "aws:SourceArn",
                one("arn:aws:sns:us-east-1:123456789012:topic"),
            ),
        ],
    );
    assert_denied(
        c,
        &[
            ("aws:PrincipalAccount", one("123456789012")),
            (
                "aws:SourceArn",
                one("arn:aws:sns:us-east-1:999999999999:topic"),
            ),
        ],
    );
}

#[test]
fn variable_is_substituted_in_arn_equals_as_a_whole_arn() {
    let c = r#"{"ArnEquals":{"aws:SourceArn":"${aws:PrincipalArn}"}}"#;
    let me = "arn:aws:iam::123456789012:role/app";
    assert_allowed(
        c,
        &[("aws:PrincipalArn", one(me)), ("aws:SourceArn", one(me))],
    );
    assert_denied(
        c,
        &[
            ("aws:PrincipalArn", one(me)),
            ("aws:SourceArn", one("arn:aws:iam::123456789012:role/other")),
        ],
    );
}

#[test]
fn variables_are_not_expanded_without_version_2012_10_17() {
    for version in [None, Some("2008-10-17")] {
        let policy = document(
            version,
            &[statement(
                "Allow",
                r#"{"StringEquals":{"s3:prefix":"home/${aws:username}"}}"#,
            )],
        );
        assert_eq!(
            decide(
                &policy,
                &[
                    ("aws:username", one("alice")),
                    ("s3:prefix", one("home/${aws:username}")),
                ],
            ),
            Outcome::Allowed,
            "{version:?}: the text is literal"
        );
        assert_eq!(
            decide(
                &policy,
                &[
                    ("aws:username", one("alice")),
                    ("s3:prefix", one("home/alice")),
                ],
            ),
            Outcome::ImplicitDeny,
            "{version:?}: no substitution"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Values parse refuses
// ---------------------------------------------------------------------------------------------

#[test]
fn parse_rejects_a_non_number_for_numeric_equals() {
    let e = single_error(r#"{"NumericEquals":{"s3:max-keys":"ten"}}"#);
    assert_eq!(
        e.path,
        r#"Statement[0].Condition.NumericEquals["s3:max-keys"]"#
    );
    assert_eq!(
        e.message,
        r#""ten" is not a number, as NumericEquals requires"#
    );
    assert!(e.is_error());
}

#[test]
fn parse_rejects_a_bad_cidr_and_points_at_the_array_element() {
    let e = single_error(r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","10.0.0.0/33"]}}"#);
    assert_eq!(
        e.path,
        r#"Statement[0].Condition.IpAddress["aws:SourceIp"][1]"#
    );
    assert_eq!(
        e.message,
        r#""10.0.0.0/33" is not an IP address or CIDR block, as IpAddress requires"#
    );
}

#[test]
fn parse_rejects_a_bad_date() {
    let e = single_error(r#"{"DateLessThan":{"aws:CurrentTime":"2024-13-45"}}"#);
    assert_eq!(
        e.path,
        r#"Statement[0].Condition.DateLessThan["aws:CurrentTime"]"#
    );
    assert_eq!(
        e.message,
        r#""2024-13-45" is not an ISO 8601 date or epoch seconds, as DateLessThan requires"#
    );
}

#[test]
fn parse_rejects_yes_for_bool() {
    let e = single_error(r#"{"Bool":{"aws:SecureTransport":"yes"}}"#);
    assert_eq!(
        e.path,
        r#"Statement[0].Condition.Bool["aws:SecureTransport"]"#
    );
    assert_eq!(e.message, r#""yes" is not true or false, as Bool requires"#);
}

#[test]
fn parse_rejects_invalid_base64_for_binary_equals() {
    let e = single_error(r#"{"BinaryEquals":{"test:Blob":"not base64!"}}"#);
    assert_eq!(
        e.path,
        r#"Statement[0].Condition.BinaryEquals["test:Blob"]"#
    );
    assert_eq!(
        e.message,
        r#""not base64!" is not base64, as BinaryEquals requires"#
    );
}

#[test]
fn parse_rejects_an_unknown_operator_and_suggests_the_closest() {
    let e = single_error(r#"{"StringLik":{"s3:prefix":"home/*"}}"#);
    assert_eq!(e.path, "Statement[0].Condition");
    assert_eq!(
        e.message,
        r#"unknown operator "StringLik", did you mean "StringLike"?"#
    );
    assert_eq!(e.code, "unknown-operator");
}

#[test]
fn parse_rejects_null_if_exists() {
    let e = single_error(r#"{"NullIfExists":{"aws:TokenIssueTime":"true"}}"#);
    assert_eq!(e.path, "Statement[0].Condition");
    assert!(e.message.contains("IfExists"), "{}", e.message);
}

#[test]
fn parse_rejects_qualified_null() {
    let e = single_error(r#"{"ForAnyValue:Null":{"aws:TagKeys":"true"}}"#);
    assert_eq!(e.path, "Statement[0].Condition");
    assert!(e.message.contains("ForAnyValue"), "{}", e.message);
}

#[test]
fn parse_rejects_an_empty_value_array() {
    let e = single_error(r#"{"StringEquals":{"aws:username":[]}}"#);
    assert_eq!(
        e.path,
        r#"Statement[0].Condition.StringEquals["aws:username"]"#
    );
    assert_eq!(e.message, "the condition has no values; give at least one");
    assert_eq!(e.code, "empty-array");
}

#[test]
fn parse_accepts_the_well_formed_counterparts() {
    for c in [
        r#"{"NumericEquals":{"s3:max-keys":"10"}}"#,
        r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}"#,
        r#"{"DateLessThan":{"aws:CurrentTime":"2024-12-31T23:59:59Z"}}"#,
        r#"{"Bool":{"aws:SecureTransport":"TRUE"}}"#,
        r#"{"BinaryEquals":{"test:Blob":"aGVsbG8="}}"#,
        r#"{"StringLike":{"s3:prefix":"home/*"}}"#,
        r#"{"Null":{"aws:TokenIssueTime":"true"}}"#,
    ] {
        let parsed = parse(&allow_when(c), &ParseOptions::new(PolicyKind::Identity));
        assert!(
            parsed.policy.is_some(),
            "{c} was refused: {:#?}",
            parsed.diagnostics
        );
        assert_eq!(parsed.errors().count(), 0);
    }
}
