//! Unit tests: precedence, L7 rules, escaping, validation messages, Sids.

use super::*;
use crate::model::{Effect, PrincipalElement, Principals};
use crate::request::{Principal, Request};

fn allow(s: &str, d: &str) -> Intention {
    Intention::new(s, d, IntentionAction::Allow)
}
fn deny(s: &str, d: &str) -> Intention {
    Intention::new(s, d, IntentionAction::Deny)
}
fn l7(s: &str, d: &str, permissions: Vec<Permission>) -> Intention {
    Intention {
        permissions,
        ..allow(s, d)
    }
}
fn id(name: &str) -> String {
    format!("spiffe://example.org/fn/{name}")
}
fn call(set: &IntentionSet, s: &str, d: &str, method: &str, path: &str) -> Verdict {
    set.decide(&request(&id(s), d, Some(method), Some(path), []))
}
fn set(v: Vec<Intention>) -> IntentionSet {
    IntentionSet::new(v, "example.org").unwrap()
}

#[test]
fn exact_destination_beats_wildcard_destination() {
    // `S -> *` is less specific than `* -> D`: exact destination wins first.
    let s = set(vec![allow("orders", "*"), deny("*", "payments")]);
    let v = call(&s, "orders", "payments", "GET", "/");
    assert!(!v.allowed);
    assert_eq!(v.intention, Some(1));
    assert!(call(&s, "orders", "billing", "GET", "/").allowed);
    assert!(!call(&s, "billing", "inventory", "GET", "/").allowed);
}

#[test]
fn the_most_specific_intention_wins() {
    let s = set(vec![
        deny("*", "*"),
        allow("*", "payments"),
        deny("orders", "*"),
        deny("billing", "payments"),
        allow("orders", "payments"),
    ]);
    assert!(call(&s, "orders", "payments", "GET", "/").allowed);
    assert!(!call(&s, "billing", "payments", "GET", "/").allowed);
    assert!(call(&s, "search", "payments", "GET", "/").allowed);
    assert!(!call(&s, "orders", "inventory", "GET", "/").allowed);
    assert!(!call(&s, "search", "inventory", "GET", "/").allowed);
    let v = call(&s, "search", "payments", "GET", "/");
    assert_eq!(v.intention, Some(1));
    assert_eq!(v.reason, "allowed by intention * -> payments");
}

#[test]
fn wildcard_to_wildcard_yields_to_every_exact_pair() {
    // `orders -> payments` is the only other intention: `* -> *` must not deny it,
    // and must still decide every other call to payments.
    let s = set(vec![deny("*", "*"), allow("orders", "payments")]);
    assert!(call(&s, "orders", "payments", "GET", "/").allowed);
    let v = call(&s, "billing", "payments", "GET", "/");
    assert!(!v.allowed);
    assert_eq!(v.intention, Some(0));
    assert_eq!(v.reason, "denied by intention * -> *");
    let s = set(vec![allow("*", "*"), deny("orders", "payments")]);
    assert!(!call(&s, "orders", "payments", "GET", "/").allowed);
    assert!(call(&s, "billing", "payments", "GET", "/").allowed);
    assert!(call(&s, "orders", "billing", "GET", "/").allowed);
}

#[test]
fn l7_permissions_do_not_fall_through() {
    let charge = Permission {
        methods: vec!["POST".into()],
        path_exact: Some("/charge".into()),
        ..Permission::default()
    };
    let s = set(vec![
        allow("*", "payments"),
        l7("orders", "payments", vec![charge]),
    ]);
    let v = call(&s, "orders", "payments", "POST", "/charge");
    assert!(v.allowed);
    assert_eq!(
        v.reason,
        "allowed by intention orders -> payments (POST /charge)"
    );
    assert_eq!(v.permission, Some(0));
    // GET is not in the permission; the lower `* -> payments` allow must not apply.
    let v = call(&s, "orders", "payments", "GET", "/charge");
    assert!(!v.allowed);
    assert_eq!(v.intention, Some(1));
    assert_eq!(
        v.reason,
        "denied: intention orders -> payments allows only POST /charge, and this request \
         (GET /charge) matches none of them"
    );
    assert!(!call(&s, "orders", "payments", "POST", "/charge/x").allowed);
    assert!(call(&s, "billing", "payments", "GET", "/anything").allowed);
}

#[test]
fn path_prefixes_and_literal_wildcards() {
    let p = |prefix: &str| Permission {
        path_prefix: Some(prefix.into()),
        ..Permission::default()
    };
    let s = set(vec![l7("a", "b", vec![p("/v1/*x"), p("/$money?")])]);
    assert!(call(&s, "a", "b", "GET", "/v1/*x/y").allowed);
    assert!(!call(&s, "a", "b", "GET", "/v1/abcx/y").allowed);
    assert!(call(&s, "a", "b", "GET", "/$money?now").allowed);
    assert!(!call(&s, "a", "b", "GET", "/$moneyX").allowed);
    let exact = Permission {
        path_exact: Some("/${aws:username}".into()),
        ..Permission::default()
    };
    let s = set(vec![l7("a", "b", vec![exact])]);
    assert!(call(&s, "a", "b", "GET", "/${aws:username}").allowed);
    assert!(!call(&s, "a", "b", "GET", "/").allowed);
}

#[test]
fn headers_present_exact_prefix() {
    let h = |name: &str, present: Option<bool>, exact: Option<&str>, prefix: Option<&str>| {
        HeaderMatch {
            name: name.into(),
            present,
            exact: exact.map(Into::into),
            prefix: prefix.map(Into::into),
        }
    };
    let perm = Permission {
        headers: vec![
            h("X-Env", None, Some("prod"), None),
            h("Authorization", Some(true), None, None),
            h("X-Debug", Some(false), None, None),
            h("User-Agent", None, None, Some("writ/")),
        ],
        ..Permission::default()
    };
    let s = set(vec![l7("a", "b", vec![perm])]);
    let go = |headers: &[(&str, &str)]| {
        s.decide(&request(
            &id("a"),
            "b",
            Some("GET"),
            Some("/"),
            headers.iter().copied(),
        ))
        .allowed
    };
    let good = [
        ("x-env", "prod"),
        ("authorization", "x"),
        ("user-agent", "writ/1"),
    ];
    assert!(go(&good));
    assert!(!go(&good[1..]));
    assert!(!go(&[("x-env", "prod"), ("user-agent", "writ/1")]));
    assert!(!go(&[
        ("X-ENV", "prod"),
        ("authorization", "x"),
        ("user-agent", "curl")
    ]));
    assert!(!go(&[
        ("x-env", "prod"),
        ("authorization", "x"),
        ("user-agent", "writ/1"),
        ("x-debug", "1")
    ]));
    assert!(!go(&[
        ("x-env", "Prod"),
        ("authorization", "x"),
        ("user-agent", "writ/1")
    ]));
}

#[test]
fn callers_outside_the_trust_domain_or_not_functions_match_nothing() {
    let s = set(vec![allow("*", "*"), allow("orders", "payments")]);
    for who in [
        "spiffe://other.org/fn/orders",
        "spiffe://example.org/agent/x",
        "spiffe://example.org/fn/a/b",
    ] {
        let v = s.decide(&request(who, "payments", Some("GET"), Some("/"), []));
        assert!(!v.allowed, "{who}");
        assert_eq!(v.intention, None);
    }
}

#[test]
fn default_deny_says_so() {
    let s = set(vec![allow("orders", "inventory")]);
    let v = call(&s, "orders", "payments", "GET", "/");
    assert!(!v.allowed);
    assert_eq!(v.intention, None);
    assert_eq!(
        v.reason,
        "denied: no intention allows orders to call payments (default deny)"
    );
}

#[test]
fn validation_names_the_field() {
    let bad = |it: Intention| validate_all(&[it]).unwrap_err().to_string();
    assert!(bad(allow("or ders", "b")).starts_with("intentions[0].source: \"or ders\""));
    assert!(bad(allow("a", "pay*")).contains("\"*\" may only stand alone"));
    let mut d = deny("a", "b");
    d.permissions.push(Permission {
        methods: vec!["GET".into()],
        ..Permission::default()
    });
    assert!(bad(d).starts_with("intentions[0].permissions: only allow"));
    let p = Permission {
        methods: vec!["GET".into(), "post".into()],
        ..Permission::default()
    };
    assert!(bad(l7("a", "b", vec![p])).starts_with(
        "intentions[0].permissions[0].methods[1]: \"post\" is not an HTTP method: methods \
         are upper case"
    ));
    let p = Permission {
        path_prefix: Some("charge".into()),
        ..Permission::default()
    };
    assert!(bad(l7("a", "b", vec![p])).starts_with("intentions[0].permissions[0].pathPrefix:"));
    let p = Permission {
        path_prefix: Some("/a".into()),
        path_exact: Some("/a".into()),
        ..Permission::default()
    };
    assert!(bad(l7("a", "b", vec![p])).starts_with("intentions[0].permissions[0].pathExact:"));
    assert!(
        bad(l7("a", "b", vec![Permission::default()]))
            .starts_with("intentions[0].permissions[0]: a permission must give")
    );
    let p = Permission {
        headers: vec![HeaderMatch {
            name: "x".into(),
            present: Some(true),
            exact: Some("y".into()),
            prefix: None,
        }],
        ..Permission::default()
    };
    assert!(
        bad(l7("a", "b", vec![p]))
            .starts_with("intentions[0].permissions[0].headers[0]: give exactly one")
    );
    let dup = validate_all(&[allow("a", "b"), deny("a", "b")]).unwrap_err();
    assert_eq!(dup.field, "intentions[1]");
    assert!(compile(&[], "Example.org").unwrap_err().field == "trustDomain");
    let e = serde_json::from_str::<Intention>(
        r#"{"source":"a","destination":"b","action":"allow","permissions":[{"path":"/"}]}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown field `path`"), "{e}");
}

/// The example in docs/intentions.md, statement by statement.
#[test]
fn the_documented_example_compiles_as_shown() {
    let charge = Permission {
        methods: vec!["POST".into()],
        path_exact: Some("/charge".into()),
        ..Permission::default()
    };
    let policy = compile(
        &[
            deny("*", "payments"),
            allow("monitor", "*"),
            l7("orders", "payments", vec![charge]),
        ],
        "example.org",
    )
    .unwrap();
    /// (Sid, effect, principal, resource, conditions as (operator, key, values)).
    type Shown = (
        String,
        Effect,
        String,
        String,
        Vec<(String, String, Vec<String>)>,
    );
    let shown: Vec<Shown> = policy
        .statements
        .iter()
        .map(|st| {
            let Some(PrincipalElement {
                principals: Principals::Named(named),
                ..
            }) = &st.principal
            else {
                panic!("a named principal")
            };
            (
                st.sid.clone().unwrap(),
                st.effect,
                named[0].1[0].clone(),
                st.resource.patterns[0].clone(),
                st.conditions
                    .iter()
                    .map(|c| (c.operator.to_string(), c.key.clone(), c.values.clone()))
                    .collect(),
            )
        })
        .collect();
    let c = |op: &str, key: &str, v: &[&str]| {
        (
            op.to_string(),
            key.to_string(),
            v.iter().map(|s| s.to_string()).collect(),
        )
    };
    assert_eq!(
        shown,
        vec![
            (
                "orders->payments:permissions[0]".into(),
                Effect::Allow,
                "spiffe://example.org/fn/orders".into(),
                "writ:fn/payments".into(),
                vec![
                    c("StringEquals", "writ:Method", &["POST"]),
                    c("StringEquals", "writ:Path", &["/charge"]),
                ],
            ),
            (
                "*->payments".into(),
                Effect::Deny,
                "spiffe://example.org/fn/*".into(),
                "writ:fn/payments".into(),
                vec![
                    c("StringNotEquals", "writ:SourceFunction", &["orders"]),
                    c("Null", "writ:SourceFunction", &["false"]),
                ],
            ),
            (
                "monitor->*".into(),
                Effect::Allow,
                "spiffe://example.org/fn/monitor".into(),
                "writ:fn/*".into(),
                vec![
                    c("StringNotEquals", "writ:DestinationFunction", &["payments"]),
                    c("Null", "writ:DestinationFunction", &["false"]),
                ],
            ),
        ]
    );
}

#[test]
fn sids_round_trip() {
    let it = allow("a-", "b.c");
    let sid = statement_sid(&it, Some("x"), Some(3));
    assert_eq!(sid, "a-->b.c:destination=x:permissions[3]");
    let parts = parse_sid(&sid).unwrap();
    assert_eq!(
        (parts.source, parts.destination, parts.permission),
        ("a-", "b.c", Some(3))
    );
    assert!(parse_sid("Bootstrap").is_none());
    assert!(parse_sid("a->b:other").is_none());
}

#[test]
fn serde_is_camel_case() {
    let text = r#"{"source":"orders","destination":"payments","action":"allow","permissions":[{"methods":["POST"],"pathPrefix":"/charge","headers":[{"name":"x-env","exact":"prod"}]}],"description":"checkout"}"#;
    let it: Intention = serde_json::from_str(text).unwrap();
    assert_eq!(it.permissions[0].path_prefix.as_deref(), Some("/charge"));
    assert_eq!(serde_json::to_string(&it).unwrap(), text);
}

#[test]
fn requests_missing_the_precedence_keys_fail_closed() {
    // `* -> payments` denies; `orders -> *` allows everything else. A request built without
    // writ:DestinationFunction must not be allowed by `orders -> *`, whose exclusion of
    // payments reads that key; one without writ:SourceFunction matches no `*` source.
    let s = set(vec![
        deny("*", "payments"),
        allow("orders", "*"),
        allow("*", "*"),
    ]);
    let bare = Request::new(INVOKE_ACTION, "writ:fn/payments")
        .with_principal(Principal::Spiffe(id("orders")));
    let v = s.decide(&bare);
    assert!(!v.allowed);
    assert_eq!(v.decision.outcome, crate::Outcome::ImplicitDeny);
    let full = request(&id("orders"), "payments", Some("GET"), Some("/"), []);
    assert_eq!(
        s.decide(&full).decision.outcome,
        crate::Outcome::ExplicitDeny
    );
    let bare = Request::new(INVOKE_ACTION, "writ:fn/billing")
        .with_principal(Principal::Spiffe(id("search")));
    assert!(!s.decide(&bare).allowed);
    assert!(
        s.decide(&request(&id("search"), "billing", None, None, []))
            .allowed
    );
}

/// Deciding by name (`decide`) and by evaluating the compiled policy (`decide_by_engine`)
/// give the same verdict, matched statements and reasons included, for random sets of
/// intentions and random calls: from functions named in the set or not, from another trust
/// domain, from SPIFFE IDs that are not functions, with and without L7 details.
mod by_name_equals_by_engine {
    use proptest::prelude::*;

    use super::*;

    const NAMES: &[&str] = &["a", "b", "c", "*"];

    fn permission() -> impl Strategy<Value = Permission> {
        (
            prop::sample::subsequence(vec!["GET", "POST"], 0..=2),
            prop::option::of(prop::sample::select(vec!["/x", "/y/"])),
            prop::option::of(prop::sample::select(vec!["/x", "/y/z"])),
            prop::option::of(0..4u8),
        )
            .prop_map(|(methods, prefix, exact, header)| Permission {
                // A permission must require something: GET when nothing else was drawn.
                methods: if methods.is_empty()
                    && prefix.is_none()
                    && exact.is_none()
                    && header.is_none()
                {
                    vec!["GET".to_string()]
                } else {
                    methods.into_iter().map(str::to_string).collect()
                },
                path_prefix: prefix.map(str::to_string),
                path_exact: if prefix.is_some() {
                    None
                } else {
                    exact.map(str::to_string)
                },
                headers: header
                    .map(|h| HeaderMatch {
                        name: "X-Tenant".into(),
                        present: (h < 2).then_some(h == 0),
                        exact: (h == 2).then(|| "blue".into()),
                        prefix: (h == 3).then(|| "bl".into()),
                    })
                    .into_iter()
                    .collect(),
            })
    }

    fn intentions() -> impl Strategy<Value = Vec<Intention>> {
        prop::collection::vec(
            (
                prop::sample::select(NAMES),
                prop::sample::select(NAMES),
                any::<bool>(),
                prop::collection::vec(permission(), 0..3),
            ),
            0..10,
        )
        .prop_map(|drawn| {
            let mut seen = std::collections::BTreeSet::new();
            drawn
                .into_iter()
                .filter(|(s, d, _, _)| seen.insert((*s, *d)))
                .map(|(s, d, allows, permissions)| {
                    if allows {
                        l7(s, d, permissions)
                    } else {
                        deny(s, d)
                    }
                })
                .collect()
        })
    }

    fn call() -> impl Strategy<Value = Request> {
        (
            prop::sample::select(vec![
                "spiffe://example.org/fn/a",
                "spiffe://example.org/fn/b",
                "spiffe://example.org/fn/e",
                "spiffe://other.org/fn/a",
                "spiffe://example.org/ops/a",
            ]),
            prop::sample::select(vec!["a", "b", "c", "e"]),
            prop::sample::select(vec!["GET", "POST", "PUT"]),
            prop::sample::select(vec!["/x", "/y/z", "/"]),
            prop::option::of(prop::sample::select(vec!["blue", "black", "red"])),
        )
            .prop_map(|(source, destination, method, path, tenant)| {
                request(
                    source,
                    destination,
                    Some(method),
                    Some(path),
                    tenant.map(|t| ("x-tenant", t)),
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
        ))]

        #[test]
        fn the_same_verdict(intentions in intentions(), calls in prop::collection::vec(call(), 1..8)) {
            let set = IntentionSet::new(intentions, "example.org").unwrap();
            for req in &calls {
                prop_assert_eq!(set.decide(req), set.decide_by_engine(req));
            }
        }
    }
}

#[test]
fn a_call_among_many_intentions_is_decided_by_name_as_the_engine_decides_it() {
    // Many destinations, exact pairs, wildcards on both sides, L7 rules and denies.
    let mut v = vec![deny("*", "*"), allow("auditor", "*")];
    for i in 0..200 {
        v.push(allow(&format!("caller-{i}"), &format!("fn-{i}")));
        if i % 10 == 0 {
            v.push(deny("*", &format!("fn-{i}")));
        }
        if i % 7 == 0 {
            v.push(l7(
                &format!("caller-{}", i + 1),
                &format!("fn-{i}"),
                vec![Permission {
                    methods: vec!["POST".into()],
                    path_prefix: Some("/charge".into()),
                    ..Permission::default()
                }],
            ));
        }
    }
    let s = set(v);
    for (caller, callee, method, path) in [
        ("caller-3", "fn-3", "GET", "/"),
        ("caller-4", "fn-3", "GET", "/"),
        ("caller-1", "fn-0", "POST", "/charge/1"),
        ("caller-1", "fn-0", "GET", "/charge/1"),
        ("caller-8", "fn-7", "POST", "/charge"),
        ("caller-8", "fn-7", "POST", "/refund"),
        ("auditor", "fn-10", "GET", "/"),
        ("auditor", "fn-11", "GET", "/"),
        ("stranger", "fn-11", "GET", "/"),
        ("stranger", "nobody", "GET", "/"),
    ] {
        let req = request(&id(caller), callee, Some(method), Some(path), []);
        assert_eq!(
            s.decide(&req),
            s.decide_by_engine(&req),
            "{caller} -> {callee}"
        );
    }
    assert!(call(&s, "caller-8", "fn-7", "POST", "/charge").allowed);
    assert!(!call(&s, "caller-8", "fn-7", "POST", "/refund").allowed);
    assert!(call(&s, "auditor", "fn-11", "GET", "/").allowed);
    assert!(!call(&s, "auditor", "fn-10", "GET", "/").allowed);
}
