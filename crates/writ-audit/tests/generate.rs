//! Least-privilege policy generation from the audit record: the policy allows exactly what
//! was recorded, groups it by service and resource set, and is deterministic.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;
use writ_audit::generate::{GenerateError, least_privilege};
use writ_audit::{Decision, Event, Outcome};
use writ_policy::{CompiledPolicy, ParseOptions, PolicyKind, PolicySet, Request};

const ORDERS: &str = "spiffe://example.org/fn/orders";
const OTHER: &str = "spiffe://example.org/fn/reports";
const PAYMENTS: &str = "spiffe://example.org/fn/payments";
const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/orders";

/// An event writ authorized and that completed.
fn allowed(actor: &str, action: &str, resource: &str) -> Event {
    let mut e = Event::new(
        "2026-11-24T10:00:00.000Z",
        actor,
        "x509Svid",
        action,
        resource,
        Outcome::Allowed,
    );
    e.decision = Some(Decision::Allowed);
    e
}

/// The generated policy text, validated and compiled as writ would load it.
fn compile(text: &str) -> PolicySet {
    let parsed = writ_policy::parse(text, &ParseOptions::new(PolicyKind::Identity));
    let policy = parsed.into_result().expect("the generated policy parses");
    let mut set = PolicySet::new();
    set.add(CompiledPolicy::new("generated", PolicyKind::Identity, &policy).expect("compiles"));
    set
}

fn outcome(set: &PolicySet, action: &str, resource: &str) -> writ_policy::Outcome {
    set.evaluate(&Request::new(action, resource)).outcome
}

/// What the orders function did and was allowed to do.
fn evidence() -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(allowed(ORDERS, "writ:Invoke", PAYMENTS));
    }
    events.push(allowed(ORDERS, "secrets:GetSecretValue", "prod/orders-db"));
    events.push(allowed(ORDERS, "secrets:GetSecretValue", "prod/stripe-key"));
    events.push(allowed(ORDERS, "secrets:GetSecretValue", "prod/orders-db"));
    events.push(allowed(ORDERS, "dynamodb:GetItem", TABLE));
    events.push(allowed(ORDERS, "dynamodb:Query", TABLE));
    events.push(allowed(ORDERS, "dynamodb:GetItem", TABLE));
    events
}

/// Events around it that are not evidence for the orders function.
fn noise() -> Vec<Event> {
    let mut events = Vec::new();
    // Identity bootstrapping: no decision.
    let mut login = allowed(ORDERS, "writ:Login", ORDERS);
    login.decision = None;
    events.push(login);
    // Another actor's calls.
    events.push(allowed(OTHER, "secrets:GetSecretValue", "prod/reports-db"));
    events.push(allowed(
        OTHER,
        "writ:Invoke",
        "spiffe://example.org/fn/billing",
    ));
    // Refused by policy.
    let mut denied = allowed(ORDERS, "secrets:GetSecretValue", "prod/other");
    denied.decision = Some(Decision::ImplicitDeny);
    denied.outcome = Outcome::Denied;
    events.push(denied);
    // Allowed by policy, but it failed.
    let mut failed = allowed(ORDERS, "dynamodb:DeleteItem", TABLE);
    failed.outcome = Outcome::Failed;
    events.push(failed);
    // Not usable as evidence: malformed or wildcard actions, an empty resource.
    events.push(allowed(
        ORDERS,
        "writ Invoke",
        "spiffe://example.org/fn/billing",
    ));
    events.push(allowed(ORDERS, "writ:*", "spiffe://example.org/fn/billing"));
    events.push(allowed(ORDERS, "writ:Invoke", ""));
    events
}

/// The evidence with the noise interleaved.
fn recorded_flow() -> Vec<Event> {
    let mut noise = noise().into_iter();
    let mut events = Vec::new();
    for e in evidence() {
        events.push(e);
        events.extend(noise.next());
    }
    events.extend(noise);
    events
}

#[test]
fn recorded_flow_allows_exactly_the_recorded_calls() {
    let generated = least_privilege(&recorded_flow(), ORDERS).expect("generates");
    assert_eq!(generated.events_used, 9);
    assert_eq!(generated.pairs, 5);
    assert!(!generated.text.contains('*'), "{}", generated.text);
    assert_eq!(generated.policy["Version"], "2012-10-17");
    let set = compile(&generated.text);

    let recorded = [
        ("writ:Invoke", PAYMENTS),
        ("secrets:GetSecretValue", "prod/orders-db"),
        ("secrets:GetSecretValue", "prod/stripe-key"),
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:Query", TABLE),
    ];
    for (action, resource) in recorded {
        assert_eq!(
            outcome(&set, action, resource),
            writ_policy::Outcome::Allowed,
            "{action} on {resource}"
        );
    }
    let never_made = [
        ("secrets:GetSecretValue", "prod/other"),
        ("secrets:GetSecretValue", "prod/reports-db"),
        ("writ:Invoke", "spiffe://example.org/fn/billing"),
        ("writ:Login", ORDERS),
        ("dynamodb:DeleteItem", TABLE),
        (
            "dynamodb:GetItem",
            "arn:aws:dynamodb:us-east-1:123456789012:table/other",
        ),
        ("dynamodb:Query", PAYMENTS),
        ("secrets:GetSecretValue", PAYMENTS),
    ];
    for (action, resource) in never_made {
        assert_eq!(
            outcome(&set, action, resource),
            writ_policy::Outcome::ImplicitDeny,
            "{action} on {resource}"
        );
    }
}

#[test]
fn actions_on_the_same_resources_share_a_statement() {
    let other_table = "arn:aws:dynamodb:us-east-1:123456789012:table/audit";
    let mut events = recorded_flow();
    events.push(allowed(ORDERS, "dynamodb:PutItem", TABLE));
    events.push(allowed(ORDERS, "dynamodb:PutItem", other_table));
    let generated = least_privilege(&events, ORDERS).expect("generates");
    let expected = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WritGeneratedDynamodb1",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:Query"],
                "Resource": TABLE,
            },
            {
                "Sid": "WritGeneratedDynamodb2",
                "Effect": "Allow",
                "Action": "dynamodb:PutItem",
                "Resource": [other_table, TABLE],
            },
            {
                "Sid": "WritGeneratedSecrets1",
                "Effect": "Allow",
                "Action": "secrets:GetSecretValue",
                "Resource": ["prod/orders-db", "prod/stripe-key"],
            },
            {
                "Sid": "WritGeneratedWrit1",
                "Effect": "Allow",
                "Action": "writ:Invoke",
                "Resource": PAYMENTS,
            },
        ]
    });
    assert_eq!(generated.policy, expected);
    let reparsed: serde_json::Value = serde_json::from_str(&generated.text).expect("JSON");
    assert_eq!(reparsed, expected);
    assert!(generated.text.trim_start().starts_with("{\n  \"Version\""));
}

#[test]
fn output_is_deterministic_whatever_the_event_order() {
    let events = recorded_flow();
    let first = least_privilege(&events, ORDERS).expect("generates");
    let mut reversed = events.clone();
    reversed.reverse();
    let mut rotated = events.clone();
    rotated.rotate_left(5);
    for other in [reversed, rotated] {
        let again = least_privilege(&other, ORDERS).expect("generates");
        assert_eq!(again.text, first.text);
        assert_eq!(again.policy, first.policy);
    }
}

#[test]
fn differently_cased_actions_are_one_action() {
    // IAM compares actions case-insensitively: one action, one spelling, whatever the order.
    let a = allowed(ORDERS, "secrets:GetSecretValue", "prod/orders-db");
    let b = allowed(ORDERS, "Secrets:getsecretvalue", "prod/stripe-key");
    let one = least_privilege(&[a.clone(), b.clone()], ORDERS).expect("generates");
    let two = least_privilege(&[b, a], ORDERS).expect("generates");
    assert_eq!(one.text, two.text);
    assert_eq!(one.pairs, 2);
    assert_eq!(one.policy["Statement"].as_array().map(Vec::len), Some(1));
}

#[test]
fn no_evidence_is_an_error() {
    let err = least_privilege(&noise(), ORDERS).expect_err("no evidence");
    assert!(matches!(err, GenerateError::NoEvidence(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("no allowed calls by {ORDERS} in the events given")
    );
    assert!(matches!(
        least_privilege(&[], ORDERS),
        Err(GenerateError::NoEvidence(_))
    ));
    assert!(matches!(
        least_privilege(&evidence(), "spiffe://example.org/fn/nobody"),
        Err(GenerateError::NoEvidence(_))
    ));
}

#[test]
fn wildcard_characters_in_a_resource_are_literal() {
    let events = [
        allowed(ORDERS, "s3:GetObject", "arn:x:bucket/a*b"),
        allowed(ORDERS, "s3:GetObject", "arn:x:bucket/c?d"),
        allowed(ORDERS, "s3:GetObject", "arn:x:bucket/${aws:username}"),
        allowed(ORDERS, "s3:PutObject", "*"),
    ];
    let generated = least_privilege(&events, ORDERS).expect("generates");
    let set = compile(&generated.text);
    for (action, resource, expect) in [
        ("s3:GetObject", "arn:x:bucket/a*b", true),
        ("s3:GetObject", "arn:x:bucket/aXb", false),
        ("s3:GetObject", "arn:x:bucket/ab", false),
        ("s3:GetObject", "arn:x:bucket/c?d", true),
        ("s3:GetObject", "arn:x:bucket/cXd", false),
        ("s3:GetObject", "arn:x:bucket/${aws:username}", true),
        ("s3:GetObject", "arn:x:bucket/", false),
        ("s3:PutObject", "*", true),
        ("s3:PutObject", "arn:x:bucket/a*b", false),
    ] {
        let want = if expect {
            writ_policy::Outcome::Allowed
        } else {
            writ_policy::Outcome::ImplicitDeny
        };
        assert_eq!(
            outcome(&set, action, resource),
            want,
            "{action} on {resource}"
        );
    }
}

#[test]
fn sids_are_unique_even_when_service_names_collide() {
    // "a1" and "a-1" are both "A1" in PascalCase; "a" with eleven statements reaches "A11".
    let mut events = vec![
        allowed(ORDERS, "a1:Get", "r"),
        allowed(ORDERS, "a-1:Get", "r"),
    ];
    for i in 0..11 {
        events.push(allowed(ORDERS, &format!("a:Get{i}"), &format!("r{i}")));
    }
    let generated = least_privilege(&events, ORDERS).expect("generates");
    let sids: Vec<&str> = generated.policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .map(|s| s["Sid"].as_str().expect("Sid"))
        .collect();
    assert_eq!(sids.len(), 13);
    assert_eq!(sids.iter().collect::<BTreeSet<_>>().len(), 13, "{sids:?}");
    assert!(
        sids.iter()
            .all(|s| s.chars().all(|c| c.is_ascii_alphanumeric()))
    );
    assert!(sids.iter().all(|s| s.starts_with("WritGenerated")));
}

// ---------------------------------------------------------------------------------------
// Property: the policy allows exactly the recorded pairs.
// ---------------------------------------------------------------------------------------

const ACTIONS: [&str; 6] = [
    "writ:Invoke",
    "writ:GetToken",
    "secrets:GetSecretValue",
    "secrets:ListSecrets",
    "dynamodb:GetItem",
    "dynamodb:Query",
];

fn resource() -> impl Strategy<Value = String> {
    prop::collection::vec(select(vec!['a', 'b', '/', '*', '?', '$', '{', '}']), 1..=5)
        .prop_map(|chars| chars.into_iter().collect())
}

fn pair() -> impl Strategy<Value = (&'static str, String)> {
    (select(ACTIONS.to_vec()), resource())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn allows_exactly_the_recorded_pairs(
        recorded in prop::collection::vec(pair(), 1..=12),
        probes in prop::collection::vec(pair(), 0..=16),
    ) {
        let events: Vec<Event> = recorded
            .iter()
            .map(|(action, resource)| allowed(ORDERS, action, resource))
            .collect();
        let generated = least_privilege(&events, ORDERS).expect("generates");
        let set = compile(&generated.text);
        let recorded: BTreeSet<(&str, String)> = recorded.into_iter().collect();
        prop_assert_eq!(generated.pairs, recorded.len());
        prop_assert_eq!(generated.events_used, events.len());

        // Every action against every resource seen, recorded or probed.
        let resources: BTreeSet<String> = recorded
            .iter()
            .chain(probes.iter())
            .map(|(_, r)| r.clone())
            .collect();
        for action in ACTIONS {
            for resource in &resources {
                let want = if recorded.contains(&(action, resource.clone())) {
                    writ_policy::Outcome::Allowed
                } else {
                    writ_policy::Outcome::ImplicitDeny
                };
                let got = outcome(&set, action, resource);
                prop_assert_eq!(got, want, "{} on {:?}", action, resource);
            }
        }
    }

    /// Any text in any field: no panic, and a policy, when there is one, allows the calls.
    #[test]
    fn arbitrary_events_never_panic(
        fields in prop::collection::vec(
            (any::<String>(), any::<String>(), any::<bool>()),
            0..=8,
        ),
    ) {
        let events: Vec<Event> = fields
            .iter()
            .map(|(action, resource, valid)| {
                let action = if *valid {
                    let name: String = action.chars().filter(char::is_ascii_alphanumeric).collect();
                    format!("svc:{name}")
                } else {
                    action.clone()
                };
                allowed(ORDERS, &action, resource)
            })
            .collect();
        match least_privilege(&events, ORDERS) {
            Ok(generated) => {
                let set = compile(&generated.text);
                for e in &events {
                    let shaped = e.action.split_once(':').is_some_and(|(s, n)| {
                        !s.is_empty() && !n.is_empty()
                            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                            && n.bytes().all(|b| b.is_ascii_alphanumeric())
                    });
                    if shaped && !e.resource.is_empty() {
                        let got = outcome(&set, &e.action, &e.resource);
                        prop_assert_eq!(got, writ_policy::Outcome::Allowed);
                    }
                }
            }
            Err(GenerateError::NoEvidence(_)) => {}
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}

#[test]
fn events_a_function_reported_about_itself_are_not_evidence() {
    let actor = "spiffe://example.org/fn/orders";
    let mut own = Event::new(
        "2026-11-24T10:00:00Z",
        actor,
        "x509Svid",
        "secrets:GetSecretValue",
        "writ:secret/prod/root-db",
        Outcome::Allowed,
    );
    own.decision = Some(Decision::Allowed);
    own.reported_by = Some(actor.into());
    let mut by_gateway = own.clone();
    by_gateway.action = "writ:Invoke".into();
    by_gateway.resource = "writ:fn/payments".into();
    by_gateway.reported_by = Some("token:hmac-sha256:00".into());
    let generated = least_privilege(&[own.clone(), by_gateway], actor).unwrap();
    assert!(
        generated.text.contains("writ:fn/payments"),
        "{}",
        generated.text
    );
    assert!(!generated.text.contains("root-db"), "{}", generated.text);
    assert!(least_privilege(&[own], actor).is_err());
}

/// A gateway decides calls (`writ:Invoke`), never secret reads: a reported secret read is
/// a forgery, and a policy generated from it would grant what never happened.
#[test]
fn reported_events_of_actions_only_the_server_decides_are_not_evidence() {
    let actor = "spiffe://example.org/fn/orders";
    let mut forged = Event::new(
        "2026-11-24T10:00:00Z",
        actor,
        "x509Svid",
        "secrets:GetSecretValue",
        "writ:secret/prod/root-db",
        Outcome::Allowed,
    );
    forged.decision = Some(Decision::Allowed);
    forged.reported_by = Some("token:hmac-sha256:00".into());
    assert!(least_privilege(std::slice::from_ref(&forged), actor).is_err());
    // The same read recorded by the server itself is evidence.
    let mut decided = forged;
    decided.reported_by = None;
    let generated = least_privilege(&[decided], actor).unwrap();
    assert!(generated.text.contains("root-db"), "{}", generated.text);
}
