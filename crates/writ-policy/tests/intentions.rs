//! Differential test: intentions compiled to IAM statements and decided by the policy engine
//! must agree with a direct implementation of Consul's intention semantics, on random small
//! sets of intentions and random requests. The deciding statement's Sid must name the
//! intention that decided.

use std::collections::BTreeMap;

use proptest::prelude::*;
use writ_policy::Outcome;
use writ_policy::intentions::{
    HeaderCondition, HeaderMatch, Intention, IntentionAction, IntentionSet, Permission, parse_sid,
    request,
};

const TD: &str = "example.org";
const NAMES: &[&str] = &["a", "b", "c"];

/// One request, as the reference sees it.
#[derive(Debug, Clone)]
struct Call {
    source_id: String,
    destination: String,
    method: Option<String>,
    path: Option<String>,
    headers: Vec<(String, String)>,
}

/// The source function, if the caller is a function of the trust domain.
fn source_function(id: &str) -> Option<&str> {
    let name = id.strip_prefix(&format!("spiffe://{TD}/fn/"))?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

fn header(call: &Call, name: &str) -> Option<String> {
    let values: Vec<&str> = call
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn permission_matches(p: &Permission, call: &Call) -> bool {
    if !p.methods.is_empty() && !call.method.as_ref().is_some_and(|m| p.methods.contains(m)) {
        return false;
    }
    if let Some(exact) = &p.path_exact
        && call.path.as_deref() != Some(exact.as_str())
    {
        return false;
    }
    if let Some(prefix) = &p.path_prefix
        && !call
            .path
            .as_ref()
            .is_some_and(|path| path.starts_with(prefix.as_str()))
    {
        return false;
    }
    p.headers.iter().all(|h| {
        let value = header(call, &h.name);
        match h.condition().expect("generated header matches are valid") {
            HeaderCondition::Present(present) => value.is_some() == present,
            HeaderCondition::Exact(v) => value.as_deref() == Some(v),
            HeaderCondition::Prefix(v) => value.is_some_and(|x| x.starts_with(v)),
        }
    })
}

/// Consul's semantics, written out: the deciding intention's index and whether it allows.
fn reference(intentions: &[Intention], call: &Call) -> (Option<usize>, bool) {
    let Some(s) = source_function(&call.source_id) else {
        return (None, false);
    };
    let d = call.destination.as_str();
    for (src, dst) in [(s, d), ("*", d), (s, "*"), ("*", "*")] {
        if let Some(i) = intentions
            .iter()
            .position(|it| it.source == src && it.destination == dst)
        {
            let it = &intentions[i];
            let allowed = match it.action {
                IntentionAction::Deny => false,
                IntentionAction::Allow => {
                    it.permissions.is_empty()
                        || it.permissions.iter().any(|p| permission_matches(p, call))
                }
            };
            return (Some(i), allowed);
        }
    }
    (None, false)
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(NAMES).prop_map(str::to_string),
        2 => Just("*".to_string()),
    ]
}

const PATHS: &[&str] = &["/", "/charge", "/charge/1", "/ch*rge", "/c?", "/$x", "/a/b"];

fn header_match() -> impl Strategy<Value = HeaderMatch> {
    let cond = prop_oneof![
        any::<bool>().prop_map(|b| (Some(b), None, None)),
        prop::sample::select(&["prod", "pr", ""][..]).prop_map(|v| (
            None,
            Some(v.to_string()),
            None
        )),
        prop::sample::select(&["pr", "p*", ""][..]).prop_map(|v| (None, None, Some(v.to_string()))),
    ];
    (prop::sample::select(&["x-env", "X-Team"][..]), cond).prop_map(
        |(name, (present, exact, prefix))| HeaderMatch {
            name: name.to_string(),
            present,
            exact,
            prefix,
        },
    )
}

fn permission() -> impl Strategy<Value = Permission> {
    (
        prop::sample::subsequence(&["GET", "POST", "DELETE"][..], 0..=2),
        prop::option::of((any::<bool>(), prop::sample::select(PATHS))),
        prop::option::of(header_match()),
    )
        .prop_map(|(methods, path, header)| {
            let mut p = Permission {
                methods: methods.into_iter().map(str::to_string).collect(),
                headers: header.into_iter().collect(),
                ..Permission::default()
            };
            match path {
                Some((true, path)) => p.path_prefix = Some(path.to_string()),
                Some((false, path)) => p.path_exact = Some(path.to_string()),
                None => {}
            }
            if p.methods.is_empty()
                && p.path_prefix.is_none()
                && p.path_exact.is_none()
                && p.headers.is_empty()
            {
                p.methods.push("GET".into());
            }
            p
        })
}

fn intention() -> impl Strategy<Value = Intention> {
    (
        name(),
        name(),
        any::<bool>(),
        prop::collection::vec(permission(), 0..=2),
    )
        .prop_map(|(source, destination, allow, permissions)| Intention {
            source,
            destination,
            action: if allow {
                IntentionAction::Allow
            } else {
                IntentionAction::Deny
            },
            permissions: if allow { permissions } else { Vec::new() },
            description: None,
        })
}

/// Up to seven intentions, one per (source, destination).
fn intentions() -> impl Strategy<Value = Vec<Intention>> {
    prop::collection::vec(intention(), 0..=7).prop_map(|v| {
        let mut seen = BTreeMap::new();
        v.into_iter()
            .filter(|it| {
                seen.insert((it.source.clone(), it.destination.clone()), ())
                    .is_none()
            })
            .collect()
    })
}

fn call() -> impl Strategy<Value = Call> {
    let source = prop_oneof![
        6 => prop::sample::select(&["a", "b", "c", "d"][..]).prop_map(|n| format!("spiffe://{TD}/fn/{n}")),
        1 => Just("spiffe://other.org/fn/a".to_string()),
        1 => Just(format!("spiffe://{TD}/agent/a")),
    ];
    let headers = prop::collection::vec(
        (
            prop::sample::select(&["x-env", "X-ENV", "x-team", "x-other"][..]),
            prop::sample::select(&["prod", "preview", "p*x", "", "dev"][..]),
        ),
        0..=2,
    );
    (
        source,
        prop::sample::select(&["a", "b", "c", "d"][..]),
        prop::option::of(prop::sample::select(&["GET", "POST", "DELETE", "PUT"][..])),
        prop::option::of(prop::sample::select(
            &[
                "/",
                "/charge",
                "/charge/1",
                "/ch*rge",
                "/charge2",
                "/c?",
                "/cx",
                "/$x",
                "/$xy",
                "/a/b",
            ][..],
        )),
        headers,
    )
        .prop_map(|(source_id, destination, method, path, headers)| Call {
            source_id,
            destination: destination.to_string(),
            method: method.map(str::to_string),
            path: path.map(str::to_string),
            headers: headers
                .into_iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        })
}

fn check(intentions: &[Intention], call: &Call) -> Result<(), TestCaseError> {
    let set = IntentionSet::new(intentions.to_vec(), TD)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let req = request(
        &call.source_id,
        &call.destination,
        call.method.as_deref(),
        call.path.as_deref(),
        call.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
    );
    let verdict = set.decide(&req);
    let (deciding, allowed) = reference(intentions, call);
    prop_assert_eq!(
        verdict.allowed,
        allowed,
        "allowed; reason: {}",
        verdict.reason
    );
    prop_assert_eq!(verdict.decision.is_allowed(), allowed);
    prop_assert_eq!(
        verdict.intention,
        deciding,
        "deciding intention; reason: {}",
        verdict.reason
    );
    // Why: every statement that decided names the deciding intention.
    let expected_outcome = match (deciding.map(|i| intentions[i].action), allowed) {
        (_, true) => Outcome::Allowed,
        (Some(IntentionAction::Deny), false) => Outcome::ExplicitDeny,
        _ => Outcome::ImplicitDeny,
    };
    prop_assert_eq!(verdict.decision.outcome, expected_outcome);
    for m in &verdict.decision.matched {
        let sid = m.sid.as_deref().unwrap_or("");
        let parts = parse_sid(sid);
        prop_assert!(parts.is_some(), "Sid {:?} does not name an intention", sid);
        let parts = parts.unwrap_or_else(|| unreachable!());
        let i = deciding.unwrap_or(usize::MAX);
        prop_assert!(
            i < intentions.len(),
            "a statement matched without a deciding intention"
        );
        prop_assert_eq!(parts.source, intentions[i].source.as_str());
        prop_assert_eq!(parts.destination, intentions[i].destination.as_str());
        if let Some(k) = parts.permission {
            prop_assert!(permission_matches(&intentions[i].permissions[k], call));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn compiled_intentions_decide_as_consul_does(intentions in intentions(), calls in prop::collection::vec(call(), 1..=8)) {
        for call in &calls {
            check(&intentions, call)?;
        }
    }
}

/// The full grid on one fixed, dense set, so every precedence pair is exercised.
#[test]
fn every_call_on_a_dense_set() {
    let allow = |s: &str, d: &str| Intention::new(s, d, IntentionAction::Allow);
    let deny = |s: &str, d: &str| Intention::new(s, d, IntentionAction::Deny);
    let intentions = vec![
        deny("*", "*"),
        allow("a", "*"),
        deny("*", "b"),
        allow("a", "b"),
        allow("c", "a"),
        deny("b", "*"),
        Intention {
            permissions: vec![Permission {
                methods: vec!["POST".into()],
                path_prefix: Some("/charge".into()),
                ..Permission::default()
            }],
            ..allow("*", "c")
        },
    ];
    for s in ["a", "b", "c", "d"] {
        for d in ["a", "b", "c", "d"] {
            for method in [None, Some("GET"), Some("POST")] {
                let call = Call {
                    source_id: format!("spiffe://{TD}/fn/{s}"),
                    destination: d.into(),
                    method: method.map(Into::into),
                    path: Some("/charge/1".into()),
                    headers: vec![],
                };
                check(&intentions, &call).unwrap();
            }
        }
    }
}

/// Many names, so the exclusion lists are long (the engine looks long literal lists up by
/// hash): every call on the grid still decides as the reference does.
#[test]
fn long_exclusion_lists_decide_as_consul_does() {
    let names: Vec<String> = (0..24).map(|i| format!("f{i}")).collect();
    let mut intentions = vec![
        Intention::new("*", "*", IntentionAction::Deny),
        Intention::new("*", "f0", IntentionAction::Allow),
        Intention::new("*", "f1", IntentionAction::Deny),
    ];
    for (i, n) in names.iter().enumerate().skip(2) {
        let action = if i % 3 == 0 {
            IntentionAction::Deny
        } else {
            IntentionAction::Allow
        };
        intentions.push(Intention::new(n, "f0", action));
        intentions.push(Intention::new(n, "f1", IntentionAction::Allow));
        if i % 2 == 0 {
            intentions.push(Intention::new(n, "*", IntentionAction::Allow));
        }
        if i % 5 == 0 {
            intentions.push(Intention::new("*", n, IntentionAction::Allow));
        }
    }
    for s in names.iter().chain([&"zz".to_string()]) {
        for d in names.iter().chain([&"zz".to_string()]) {
            let call = Call {
                source_id: format!("spiffe://{TD}/fn/{s}"),
                destination: d.clone(),
                method: Some("GET".into()),
                path: Some("/".into()),
                headers: vec![],
            };
            check(&intentions, &call).unwrap();
        }
    }
}
