//! Property tests for `writ-policy`.
//!
//! A naive reference interpreter, written here independently of the crate, evaluates the
//! parsed model ([`Policy`]) of a restricted subset of the language directly: identity
//! policies, `Version` 2012-10-17, `Action`/`NotAction` and `Resource`/`NotResource` with `*`
//! and `?`, and conditions using `StringEquals`, `StringNotEquals`, `StringLike`,
//! `NumericLessThan`, `Bool` and `Null` (optionally with `IfExists`) on single-valued keys.
//! Random policies of that subset are generated as JSON text, so the real parser is
//! exercised, and the crate's [`PolicySet`] is checked against the reference and against
//! metamorphic properties (adding a Deny or an Allow, reordering policies, explanations).
//! Finally the parser is fed arbitrary and mutated input and must never panic.

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value, json};
use writ_policy::{
    CompiledPolicy, Condition, Context, Decision, Effect, MatchedStatement, OperatorKind, Outcome,
    ParseOptions, Policy, PolicyKind, PolicySet, Request, Statement, StatementMiss, Version,
};

// ---------------------------------------------------------------------------------------
// The reference interpreter
// ---------------------------------------------------------------------------------------

/// `*` matches any run of characters, `?` exactly one; everything else matches itself.
/// A plain dynamic programme over characters: `row[j]` is whether the pattern so far
/// matches the first `j` characters of the text.
fn glob(pattern: &str, text: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let mut row = vec![false; t.len() + 1];
    row[0] = true;
    for pc in pattern.chars() {
        let mut next = vec![false; t.len() + 1];
        next[0] = row[0] && pc == '*';
        for j in 1..=t.len() {
            next[j] = match pc {
                '*' => row[j] || next[j - 1],
                '?' => row[j - 1],
                c => row[j - 1] && c == t[j - 1],
            };
        }
        row = next;
    }
    row[t.len()]
}

/// `-?digits(.digits)?`, as a float (the values used here are small and exact enough).
fn ref_number(text: &str) -> Option<f64> {
    let rest = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    text.parse().ok()
}

fn ref_bool(text: &str) -> Option<bool> {
    match text.to_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A request of the subset: an action, a resource and single-valued context keys.
#[derive(Debug, Clone)]
struct Req {
    action: String,
    resource: String,
    context: Vec<(String, String)>,
}

impl Req {
    fn get(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| k.to_lowercase() == key.to_lowercase())
            .map(|(_, v)| v.as_str())
    }

    fn to_request(&self) -> Request {
        let mut ctx = Context::new();
        for (k, v) in &self.context {
            ctx.insert(k, v.as_str());
        }
        Request::new(&self.action, &self.resource).with_context(ctx)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefCond {
    Holds,
    KeyMissing,
    NoMatch,
}

fn ref_condition(c: &Condition, req: &Req) -> RefCond {
    assert!(c.operator.set.is_none(), "outside the subset: {c:?}");
    let value = req.get(&c.key);
    if c.operator.kind == OperatorKind::Null {
        assert!(!c.operator.if_exists, "NullIfExists is not valid: {c:?}");
        let holds = c.values.iter().any(|v| {
            let wants_absent = ref_bool(v).expect("Null takes true or false");
            wants_absent == value.is_none()
        });
        return if holds {
            RefCond::Holds
        } else {
            RefCond::NoMatch
        };
    }
    let negated = match c.operator.kind {
        OperatorKind::StringNotEquals => true,
        OperatorKind::StringEquals
        | OperatorKind::StringLike
        | OperatorKind::NumericLessThan
        | OperatorKind::Bool => false,
        other => panic!("operator outside the subset: {other:?}"),
    };
    let Some(v) = value else {
        return if c.operator.if_exists || negated {
            RefCond::Holds
        } else {
            RefCond::KeyMissing
        };
    };
    let any = c.values.iter().any(|pv| match c.operator.kind {
        OperatorKind::StringEquals | OperatorKind::StringNotEquals => pv == v,
        OperatorKind::StringLike => glob(pv, v),
        OperatorKind::NumericLessThan => {
            let limit = ref_number(pv).expect("NumericLessThan takes numbers");
            ref_number(v).is_some_and(|x| x < limit)
        }
        OperatorKind::Bool => {
            let want = ref_bool(pv).expect("Bool takes true or false");
            ref_bool(v) == Some(want)
        }
        _ => unreachable!(),
    });
    if any != negated {
        RefCond::Holds
    } else {
        RefCond::NoMatch
    }
}

/// Why a statement does not apply: the first element that fails, in the order action,
/// resource, conditions (as the crate's explanations report it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefMiss {
    Action,
    Resource,
    /// The index of the condition, and whether its key was missing.
    Condition(usize, bool),
}

fn ref_statement(st: &Statement, req: &Req) -> Result<(), RefMiss> {
    assert!(
        st.principal.is_none(),
        "identity policies have no Principal"
    );
    let action = req.action.to_lowercase();
    let action_hit = st
        .action
        .patterns
        .iter()
        .any(|p| glob(&p.to_lowercase(), &action));
    if action_hit == st.action.negated {
        return Err(RefMiss::Action);
    }
    let res = &st.resource;
    let resource_hit = res.patterns.iter().any(|p| glob(p, &req.resource));
    if resource_hit == res.negated {
        return Err(RefMiss::Resource);
    }
    for (i, c) in st.conditions.iter().enumerate() {
        match ref_condition(c, req) {
            RefCond::Holds => {}
            RefCond::KeyMissing => return Err(RefMiss::Condition(i, true)),
            RefCond::NoMatch => return Err(RefMiss::Condition(i, false)),
        }
    }
    Ok(())
}

/// Scans every statement of every policy: an applying Deny wins, else an applying Allow
/// allows, else the request is implicitly denied.
fn ref_evaluate<'p>(policies: impl IntoIterator<Item = &'p Policy>, req: &Req) -> Outcome {
    let mut deny = false;
    let mut allow = false;
    for p in policies {
        assert_eq!(p.version, Some(Version::V2012_10_17));
        for st in &p.statements {
            if ref_statement(st, req).is_ok() {
                match st.effect {
                    Effect::Deny => deny = true,
                    Effect::Allow => allow = true,
                }
            }
        }
    }
    if deny {
        Outcome::ExplicitDeny
    } else if allow {
        Outcome::Allowed
    } else {
        Outcome::ImplicitDeny
    }
}

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

const ACTION_PATTERNS: &[&str] = &[
    "*",
    "s3:*",
    "s3:Get",
    "s3:GetObject",
    "s3:Get*",
    "s3:Ge?",
    "s3:*Object",
    "S3:getobject",
    "s3:Put",
    "s3:List",
    "sqs:*",
    "sqs:Get",
    "s*:Get*",
    "s?s:*",
    "*:List",
    "sq?:Pu?",
    // Valid, but never matches a request: the prefix occurs only inside actions.
    "3:Get*",
];

const REQUEST_ACTIONS: &[&str] = &[
    "s3:Get",
    "s3:GetObject",
    "s3:Put",
    "s3:List",
    "sqs:Get",
    "sqs:GetObject",
    "sqs:Put",
    "sqs:List",
    "S3:GETOBJECT",
    "s3:get",
    "SQS:put",
];

const RESOURCE_PATTERNS: &[&str] = &[
    "*",
    "arn:aws:s3:::b",
    "arn:aws:s3:::b/a",
    "arn:aws:s3:::b/b",
    "arn:aws:s3:::b/ab",
    "arn:aws:s3:::b/*",
    "arn:aws:s3:::b/?",
    "arn:aws:s3:::b*",
    "arn:aws:s3:::b/a*",
    "arn:aws:s3:::B/*",
    "arn:aws:*:::*",
    "arn:aws:sqs:::q",
    "arn:aws:s?s:::*",
    "*b",
    "arn:aws:s3:::b/*b",
    // Not ARNs (a warning, not an error): they match only by wildcards, never as prefixes.
    "s3:::b/a*",
    "*:::b/?",
];

const REQUEST_RESOURCES: &[&str] = &[
    "arn:aws:s3:::b",
    "arn:aws:s3:::b/a",
    "arn:aws:s3:::b/b",
    "arn:aws:s3:::b/ab",
    "arn:aws:s3:::B/a",
    "arn:aws:sqs:::q",
    "arn:aws:sqs:::b",
];

/// Actions and resources no generated request uses, for policies that must not matter.
const UNRELATED_ACTIONS: &[&str] = &["ec2:Run", "ec2:*", "ec?:Describe*", "EC2:run", "ec2:Get"];
const UNRELATED_RESOURCES: &[&str] = &[
    "arn:aws:ec2:::i/1",
    "arn:aws:ec2:::i/*",
    "arn:aws:ec2:::*",
    "arn:aws:ec?:::i/?",
];

const OPERATORS: [&str; 6] = [
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "NumericLessThan",
    "Bool",
    "Null",
];
const NULL_OP: usize = 5;

/// Condition keys as policies spell them: each row is one key (keys ignore case).
const POLICY_KEYS: [[&str; 3]; 2] = [["k:a", "K:A", "k:A"], ["k:b", "K:b", "k:B"]];
/// Context keys as requests spell them; `k:c` is never tested by a policy.
const REQUEST_KEYS: [[&str; 2]; 3] = [["k:a", "K:a"], ["k:b", "k:B"], ["k:c", "K:C"]];
const REQUEST_VALUES: &[&str] = &[
    "x", "y", "X", "1", "10", "5", "0.5", "-1", "1.5", "true", "TRUE", "false", "", "x*", "abc",
    "01",
];

fn string_or_list(items: Vec<Value>, as_scalar: bool) -> Value {
    if items.len() == 1 && as_scalar {
        items.into_iter().next().unwrap_or(Value::Null)
    } else {
        Value::Array(items)
    }
}

/// One to three patterns from `pool`, as a string or an array.
fn pattern_list(pool: &'static [&'static str]) -> impl Strategy<Value = Value> + Clone {
    (prop::collection::vec(select(pool), 1..=3), any::<bool>()).prop_map(|(items, scalar)| {
        string_or_list(items.into_iter().map(Value::from).collect(), scalar)
    })
}

/// Values valid for the operator `OPERATORS[op]`, as JSON strings, numbers or booleans.
fn condition_values(op: usize) -> impl Strategy<Value = Value> {
    let pool: Vec<Value> = match op {
        0..=2 => vec![
            json!("x"),
            json!("y"),
            json!("X"),
            json!("1"),
            json!(10),
            json!(true),
            json!("x*"),
            json!("?"),
            json!("*"),
            json!(""),
        ],
        3 => vec![
            json!(1),
            json!(10),
            json!("5"),
            json!(-1),
            json!(1.5),
            json!("0.5"),
            json!("10"),
        ],
        4 => vec![
            json!(true),
            json!(false),
            json!("true"),
            json!("FALSE"),
            json!("True"),
        ],
        _ => vec![json!(true), json!(false), json!("true"), json!("false")],
    };
    (prop::collection::vec(select(pool), 1..=3), any::<bool>())
        .prop_map(|(items, scalar)| string_or_list(items, scalar))
}

/// A `Condition` block: one to three operators, each with one or two distinct keys.
fn condition_block() -> impl Strategy<Value = Value> + Clone {
    let operator = (0..OPERATORS.len(), any::<bool>()).prop_flat_map(|(op, if_exists)| {
        (
            Just(op),
            Just(if_exists && op != NULL_OP),
            prop::collection::vec((0..2usize, 0..3usize, condition_values(op)), 1..=2),
        )
    });
    prop::collection::vec(operator, 1..=3).prop_map(|ops| {
        let mut block = Map::new();
        for (op, if_exists, keys) in ops {
            let name = if if_exists {
                format!("{}IfExists", OPERATORS[op])
            } else {
                OPERATORS[op].to_string()
            };
            let mut seen = Vec::new();
            let mut key_map = Map::new();
            for (key, spelling, values) in keys {
                if seen.contains(&key) {
                    continue;
                }
                seen.push(key);
                key_map.insert(POLICY_KEYS[key][spelling].to_string(), values);
            }
            // A repeated operator name replaces the earlier one: JSON keys stay unique.
            block.insert(name, Value::Object(key_map));
        }
        Value::Object(block)
    })
}

fn effect() -> impl Strategy<Value = &'static str> + Clone {
    select(&["Allow", "Deny"][..])
}

fn statement_object(
    effect: &str,
    action: (bool, Value),
    resource: (bool, Value),
    condition: Option<Value>,
) -> Value {
    let mut m = Map::new();
    m.insert("Effect".into(), Value::from(effect));
    let action_key = if action.0 { "NotAction" } else { "Action" };
    m.insert(action_key.into(), action.1);
    let resource_key = if resource.0 {
        "NotResource"
    } else {
        "Resource"
    };
    m.insert(resource_key.into(), resource.1);
    if let Some(c) = condition {
        m.insert("Condition".into(), c);
    }
    Value::Object(m)
}

/// A statement of the subset, with the given effect.
fn statement(
    effect: impl Strategy<Value = &'static str> + Clone,
) -> impl Strategy<Value = Value> + Clone {
    (
        effect,
        prop::bool::weighted(0.2),
        pattern_list(ACTION_PATTERNS),
        prop::bool::weighted(0.2),
        pattern_list(RESOURCE_PATTERNS),
        prop::option::weighted(0.6, condition_block()),
    )
        .prop_map(
            |(effect, not_action, actions, not_resource, resources, cond)| {
                statement_object(
                    effect,
                    (not_action, actions),
                    (not_resource, resources),
                    cond,
                )
            },
        )
}

/// A statement that never applies to a generated request: either its actions or its
/// resources come from another service. Never negated.
fn unrelated_statement() -> impl Strategy<Value = Value> + Clone {
    (
        effect(),
        any::<bool>(),
        pattern_list(ACTION_PATTERNS),
        pattern_list(UNRELATED_ACTIONS),
        pattern_list(RESOURCE_PATTERNS),
        pattern_list(UNRELATED_RESOURCES),
        prop::option::weighted(0.3, condition_block()),
    )
        .prop_map(|(effect, other_action, a, a_other, r, r_other, cond)| {
            let (actions, resources) = if other_action {
                (a_other, r)
            } else {
                (a, r_other)
            };
            statement_object(effect, (false, actions), (false, resources), cond)
        })
}

/// A policy document with up to four statements, some with a `Sid`.
fn policy_json(
    statement: impl Strategy<Value = Value> + Clone,
    statements: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Value> + Clone {
    (
        prop::collection::vec((statement, prop::bool::weighted(0.3)), statements),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(stmts, single_object, with_id)| {
            let stmts: Vec<Value> = stmts
                .into_iter()
                .enumerate()
                .map(|(i, (mut s, with_sid))| {
                    if with_sid {
                        s["Sid"] = Value::from(format!("S{i}"));
                    }
                    s
                })
                .collect();
            let mut doc = Map::new();
            doc.insert("Version".into(), Value::from("2012-10-17"));
            if with_id {
                doc.insert("Id".into(), Value::from("generated"));
            }
            doc.insert("Statement".into(), string_or_list(stmts, single_object));
            Value::Object(doc)
        })
}

fn any_policy() -> impl Strategy<Value = Value> + Clone {
    policy_json(statement(effect()), 0..=4)
}

fn request() -> impl Strategy<Value = Req> + Clone {
    (
        select(REQUEST_ACTIONS),
        select(REQUEST_RESOURCES),
        prop::collection::vec(
            prop::option::of((0..2usize, select(REQUEST_VALUES))),
            REQUEST_KEYS.len(),
        ),
    )
        .prop_map(|(action, resource, ctx)| Req {
            action: action.to_string(),
            resource: resource.to_string(),
            context: ctx
                .into_iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    e.map(|(spelling, v)| (REQUEST_KEYS[i][spelling].to_string(), v.to_string()))
                })
                .collect(),
        })
}

fn requests() -> impl Strategy<Value = Vec<Req>> {
    prop::collection::vec(request(), 1..=6)
}

/// Appends a statement to a policy document (turning a lone statement object into an array).
fn with_statement(policy: &Value, st: Value) -> Value {
    let mut policy = policy.clone();
    let list = match policy["Statement"].take() {
        Value::Array(v) => v,
        one => vec![one],
    };
    let mut list = list;
    list.push(st);
    policy["Statement"] = Value::Array(list);
    policy
}

fn alone(st: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": [st]})
}

// ---------------------------------------------------------------------------------------
// Helpers over the crate
// ---------------------------------------------------------------------------------------

fn identity() -> ParseOptions {
    ParseOptions::new(PolicyKind::Identity)
}

/// Parses a generated document with the real parser; every generated document is valid.
fn parse_policy(doc: &Value) -> Policy {
    let text = serde_json::to_string_pretty(doc).expect("JSON serialises");
    match writ_policy::parse(&text, &identity()).into_result() {
        Ok(p) => p,
        Err(diagnostics) => panic!("generated policy does not parse: {diagnostics:#?}\n{text}"),
    }
}

fn parse_all(docs: &[Value], prefix: &str) -> Vec<(String, Policy)> {
    docs.iter()
        .enumerate()
        .map(|(i, d)| (format!("{prefix}{i}"), parse_policy(d)))
        .collect()
}

fn build_set<'a>(policies: impl IntoIterator<Item = &'a (String, Policy)>) -> PolicySet {
    let mut set = PolicySet::new();
    for (name, p) in policies {
        set.add(CompiledPolicy::new(name, PolicyKind::Identity, p).expect("compiles"));
    }
    set
}

fn evaluate(set: &PolicySet, req: &Req) -> Decision {
    set.evaluate(&req.to_request())
}

/// Matched statements as comparable keys, independent of the order of policies.
fn matched_keys(matched: &[MatchedStatement]) -> Vec<(String, usize, bool)> {
    let mut keys: Vec<_> = matched
        .iter()
        .map(|m| (m.policy.to_string(), m.index, m.effect == Effect::Allow))
        .collect();
    keys.sort();
    keys
}

/// 512 cases per property; `PROPTEST_CASES` overrides it for longer runs.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// The crate agrees with the reference interpreter, and many copies of unrelated
    /// policies, wherever they sit in the set, change nothing.
    #[test]
    fn evaluate_matches_reference(
        docs in prop::collection::vec(any_policy(), 1..=4),
        fillers in prop::collection::vec(
            (policy_json(unrelated_statement(), 1..=4), 1..=20usize),
            0..=3,
        ),
        positions in prop::collection::vec(any::<Index>(), 64),
        reqs in requests(),
    ) {
        let relevant = parse_all(&docs, "p");
        let mut all = relevant.clone();
        let mut k = 0;
        for (j, (doc, copies)) in fillers.iter().enumerate() {
            let policy = parse_policy(doc);
            for c in 0..*copies {
                let at = positions[k % positions.len()].index(all.len() + 1);
                all.insert(at, (format!("f{j}_{c}"), policy.clone()));
                k += 1;
            }
        }
        let plain = build_set(&relevant);
        let full = build_set(&all);
        prop_assert_eq!(full.len(), all.len());
        for req in &reqs {
            let expected = ref_evaluate(relevant.iter().map(|(_, p)| p), req);
            let got = evaluate(&plain, req);
            prop_assert_eq!(got.outcome, expected, "request {:?}", req);
            let with_fillers = evaluate(&full, req);
            prop_assert_eq!(
                &with_fillers,
                &got,
                "unrelated policies changed the decision on {:?}",
                req
            );
        }
    }

    /// Adding a Deny, to a policy or as a policy of its own, never grants anything, and
    /// when the Deny applies the request is explicitly denied.
    #[test]
    fn adding_a_deny_never_grants(
        docs in prop::collection::vec(any_policy(), 1..=3),
        deny in statement(Just("Deny")),
        target in any::<Index>(),
        separate in any::<bool>(),
        reqs in requests(),
    ) {
        let before = build_set(&parse_all(&docs, "p"));
        let mut after_docs = docs.clone();
        if separate {
            after_docs.push(alone(deny.clone()));
        } else {
            let t = target.index(after_docs.len());
            after_docs[t] = with_statement(&after_docs[t], deny.clone());
        }
        let after = build_set(&parse_all(&after_docs, "p"));
        let only = build_set(&parse_all(&[alone(deny)], "d"));
        for req in &reqs {
            let b = evaluate(&before, req).outcome;
            let a = evaluate(&after, req).outcome;
            let applies = evaluate(&only, req).outcome == Outcome::ExplicitDeny;
            if b != Outcome::Allowed {
                prop_assert_ne!(a, Outcome::Allowed, "a Deny granted {:?}", req);
            }
            if b == Outcome::ExplicitDeny || applies {
                prop_assert_eq!(
                    a,
                    Outcome::ExplicitDeny,
                    "request {:?} (deny applies: {})",
                    req,
                    applies
                );
            } else {
                prop_assert_eq!(a, b, "a Deny that does not apply changed {:?}", req);
            }
        }
    }

    /// Adding an Allow never denies anything that was allowed, never lifts an explicit
    /// deny, and when it applies and nothing denies, the request is allowed.
    #[test]
    fn adding_an_allow_never_denies(
        docs in prop::collection::vec(any_policy(), 1..=3),
        allow in statement(Just("Allow")),
        target in any::<Index>(),
        separate in any::<bool>(),
        reqs in requests(),
    ) {
        let before = build_set(&parse_all(&docs, "p"));
        let mut after_docs = docs.clone();
        if separate {
            after_docs.push(alone(allow.clone()));
        } else {
            let t = target.index(after_docs.len());
            after_docs[t] = with_statement(&after_docs[t], allow.clone());
        }
        let after = build_set(&parse_all(&after_docs, "p"));
        let only = build_set(&parse_all(&[alone(allow)], "a"));
        for req in &reqs {
            let b = evaluate(&before, req).outcome;
            let a = evaluate(&after, req).outcome;
            let applies = evaluate(&only, req).outcome == Outcome::Allowed;
            match b {
                Outcome::Allowed => {
                    prop_assert_eq!(a, Outcome::Allowed, "an Allow denied {:?}", req);
                }
                Outcome::ExplicitDeny => {
                    prop_assert_eq!(
                        a,
                        Outcome::ExplicitDeny,
                        "an Allow lifted a Deny on {:?}",
                        req
                    );
                }
                Outcome::ImplicitDeny => {
                    let want = if applies { Outcome::Allowed } else { Outcome::ImplicitDeny };
                    prop_assert_eq!(a, want, "request {:?} (allow applies: {})", req, applies);
                }
            }
        }
    }

    /// `explain` gives exactly `evaluate`'s decision; the statements it traces as applying
    /// are exactly the decision's matched statements; and every trace agrees with the
    /// reference on whether the statement applies and, if not, on the first element that
    /// failed.
    #[test]
    fn explain_agrees_with_evaluate(
        docs in prop::collection::vec(any_policy(), 1..=4),
        reqs in requests(),
    ) {
        let policies = parse_all(&docs, "p");
        let set = build_set(&policies);
        for req in &reqs {
            let explanation = set.explain(&req.to_request());
            let decision = evaluate(&set, req);
            prop_assert_eq!(&explanation.decision, &decision);

            let applied: Vec<&MatchedStatement> = explanation
                .statements
                .iter()
                .filter(|t| t.miss.is_none())
                .map(|t| &t.statement)
                .collect();
            let of = |effect: Effect| -> Vec<MatchedStatement> {
                applied.iter().filter(|m| m.effect == effect).map(|m| (*m).clone()).collect()
            };
            match decision.outcome {
                Outcome::ExplicitDeny => {
                    prop_assert_eq!(of(Effect::Deny), decision.matched.clone());
                }
                Outcome::Allowed => {
                    prop_assert_eq!(of(Effect::Allow), decision.matched.clone());
                    prop_assert!(of(Effect::Deny).is_empty());
                }
                Outcome::ImplicitDeny => {
                    prop_assert!(applied.is_empty(), "applied: {:?}", applied);
                    prop_assert!(decision.matched.is_empty());
                }
            }

            let statements: Vec<(&String, usize, &Statement)> = policies
                .iter()
                .flat_map(|(name, p)| {
                    p.statements.iter().enumerate().map(move |(i, s)| (name, i, s))
                })
                .collect();
            prop_assert_eq!(explanation.statements.len(), statements.len());
            for (trace, (name, index, st)) in explanation.statements.iter().zip(statements) {
                prop_assert_eq!(trace.statement.policy.as_ref(), name.as_str());
                prop_assert_eq!(trace.statement.index, index);
                prop_assert_eq!(trace.statement.effect, st.effect);
                prop_assert_eq!(trace.statement.sid.as_deref(), st.sid.as_deref());
                let want = ref_statement(st, req);
                let agrees = match (&trace.miss, want) {
                    (None, Ok(())) => true,
                    (Some(StatementMiss::Action), Err(RefMiss::Action)) => true,
                    (Some(StatementMiss::Resource), Err(RefMiss::Resource)) => true,
                    (
                        Some(StatementMiss::Condition { operator, key, key_missing }),
                        Err(RefMiss::Condition(i, missing)),
                    ) => {
                        let c = &st.conditions[i];
                        *operator == c.operator.to_string()
                            && *key == c.key
                            && *key_missing == missing
                    }
                    _ => false,
                };
                prop_assert!(
                    agrees,
                    "statement {}[{}] {:?}: trace {:?}, reference {:?}, request {:?}",
                    name, index, st, trace.miss, want, req
                );
            }
        }
    }

    /// The order of the policies in a set changes neither the outcome nor which statements
    /// decided it.
    #[test]
    fn policy_order_does_not_matter(
        (docs, order) in prop::collection::vec(any_policy(), 2..=5).prop_flat_map(|docs| {
            let n = docs.len();
            (Just(docs), Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
        }),
        reqs in requests(),
    ) {
        let policies = parse_all(&docs, "p");
        let set = build_set(&policies);
        let shuffled = build_set(order.iter().map(|&i| &policies[i]));
        for req in &reqs {
            let a = evaluate(&set, req);
            let b = evaluate(&shuffled, req);
            prop_assert_eq!(a.outcome, b.outcome, "order {:?} changed {:?}", order, req);
            prop_assert_eq!(a.reason, b.reason);
            prop_assert_eq!(matched_keys(&a.matched), matched_keys(&b.matched));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Parser robustness
// ---------------------------------------------------------------------------------------

/// Parses with every policy kind; a policy that parses must also compile and evaluate.
fn parse_never_panics(bytes: &[u8]) {
    let req = Request::new("s3:GetObject", "arn:aws:s3:::b/a");
    for kind in [
        PolicyKind::Identity,
        PolicyKind::Resource,
        PolicyKind::PermissionsBoundary,
        PolicyKind::Session,
    ] {
        let parsed = writ_policy::parse_bytes(bytes, &ParseOptions::new(kind));
        assert_eq!(
            parsed.policy.is_some(),
            parsed.errors().next().is_none(),
            "the policy is present exactly when there is no error: {:?}",
            parsed.diagnostics
        );
        if let Some(policy) = &parsed.policy {
            let mut set = PolicySet::new();
            set.add(CompiledPolicy::new("fuzzed", kind, policy).expect("a parsed policy compiles"));
            let decision = set.evaluate(&req);
            assert_eq!(set.explain(&req).decision, decision);
        }
    }
}

/// Text that looks like JSON and like policies, to get past the JSON syntax check.
fn jsonish_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\[\\]{}\":,a-zA-Z0-9 *?${}'\\\\.-]{0,80}",
        (
            0..80usize,
            select(&["[", "{\"a\":", "[{", "{\"Statement\":["][..])
        )
            .prop_map(|(n, open)| open.repeat(n)),
    ]
}

/// A valid policy's bytes with a random range deleted, replaced or inserted into.
fn mutated_policy() -> impl Strategy<Value = Vec<u8>> {
    let filler = prop_oneof![any::<u8>(), select(&b"{}[]\",:*?$'\\ 0aA-.eE\n"[..]),];
    (
        any_policy(),
        any::<bool>(),
        prop::collection::vec(
            (
                0..3usize,
                any::<Index>(),
                0..8usize,
                prop::collection::vec(filler, 0..8),
            ),
            1..=3,
        ),
    )
        .prop_map(|(doc, pretty, edits)| {
            let mut bytes = if pretty {
                serde_json::to_vec_pretty(&doc)
            } else {
                serde_json::to_vec(&doc)
            }
            .expect("JSON serialises");
            for (op, at, len, insert) in edits {
                let start = at.index(bytes.len() + 1);
                let end = (start + len).min(bytes.len());
                match op {
                    0 => {
                        bytes.drain(start..end);
                    }
                    1 => {
                        bytes.splice(start..end, insert);
                    }
                    _ => {
                        bytes.splice(start..start, insert);
                    }
                }
            }
            bytes
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parse_never_panics_on_strings(text in jsonish_text()) {
        parse_never_panics(text.as_bytes());
        let parsed = writ_policy::parse(&text, &identity());
        prop_assert_eq!(parsed.policy.is_some(), parsed.errors().next().is_none());
    }

    #[test]
    fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        parse_never_panics(&bytes);
    }

    #[test]
    fn parse_never_panics_on_mutated_policies(bytes in mutated_policy()) {
        parse_never_panics(&bytes);
    }
}

// ---------------------------------------------------------------------------------------
// The generators themselves
// ---------------------------------------------------------------------------------------

#[test]
fn reference_glob() {
    assert!(glob("*", ""));
    assert!(glob("a?c", "abc"));
    assert!(!glob("a?c", "ac"));
    assert!(glob("*b*d", "abcbd"));
    assert!(glob("?*?", "ab"));
    assert!(!glob("?*?", "a"));
    assert!(!glob("abc", "abcd"));
    assert!(glob("arn:aws:s3:::b/*b", "arn:aws:s3:::b/ab"));
    assert!(!glob("arn:aws:s3:::b/*b", "arn:aws:s3:::b/a"));
}

/// The generators are only useful if requests are allowed, explicitly denied and
/// implicitly denied in good proportions, by statements with and without conditions.
#[test]
fn generators_reach_every_outcome() {
    let mut runner = TestRunner::deterministic();
    let strategy = (prop::collection::vec(any_policy(), 1..=4), request());
    let mut counts = [0usize; 3];
    for _ in 0..2000 {
        let (docs, req) = strategy.new_tree(&mut runner).expect("generates").current();
        let policies = parse_all(&docs, "p");
        let outcome = ref_evaluate(policies.iter().map(|(_, p)| p), &req);
        counts[match outcome {
            Outcome::Allowed => 0,
            Outcome::ExplicitDeny => 1,
            Outcome::ImplicitDeny => 2,
        }] += 1;
    }
    for (count, name) in counts
        .iter()
        .zip(["allowed", "explicit deny", "implicit deny"])
    {
        assert!(
            *count >= 200,
            "only {count} of 2000 requests were {name}: {counts:?}"
        );
    }
}
