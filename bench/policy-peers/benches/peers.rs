//! writ's policy engine and Cedar, on equivalent policies, in the same run.
//!
//! Run: `cd bench/policy-peers && cargo bench --bench peers`
//!
//! `ten_statements`: the 10-statement execution-role policy of writ-policy's own benchmark,
//! and the same ten rules as ten Cedar policies over the same request context.
//! `ten_thousand_functions`: 10,000 functions, each with three rules (callers may invoke,
//! an operator may update, nobody may delete): 10,000 writ resource policies of three
//! statements, or 30,000 Cedar policies.
//! `ten_thousand_intentions`: a table of 10,000 intentions (`caller-i -> fn-i`, every tenth
//! a deny; default deny), decided by writ's `IntentionSet`, by regorus (Rego) looking the
//! pair up in the same table given as data (`data.intentions[destination][source]`, the
//! fastest way Rego has to read such a table: a keyed lookup, no iteration), and by Cedar
//! (10,000 `permit`/`forbid` policies naming principal and resource).

use std::hint::black_box;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context as CedarContext, Decision as CedarDecision, Entities, EntityUid,
    PolicySet as CedarSet, Request as CedarRequest, RestrictedExpression,
};
use criterion::{Criterion, criterion_group};
use writ_policy::intentions::{Intention, IntentionAction, IntentionSet};
use writ_policy::{Context, PolicyKind, PolicySet, Principal, Request};

// The policy text, request context and helpers of writ's own benchmark, so both engines
// decide exactly the same request.
#[path = "../../../crates/writ-policy/benches/common/mod.rs"]
mod common;

use common::{TEN_STATEMENTS, compile, context, function_policy};

const CEDAR_TEN: &str = r#"
permit(principal, action in [Action::"logs:CreateLogStream", Action::"logs:PutLogEvents"], resource)
  when { context.resource like "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/orders:*" };
permit(principal, action in [Action::"dynamodb:GetItem", Action::"dynamodb:Query"],
       resource == Resource::"arn:aws:dynamodb:us-east-1:123456789012:table/orders")
  when { context.secureTransport };
permit(principal, action == Action::"dynamodb:PutItem",
       resource == Resource::"arn:aws:dynamodb:us-east-1:123456789012:table/orders")
  when { context.principalTeam == "orders" };
permit(principal, action == Action::"secretsmanager:GetSecretValue", resource)
  when { context.resource like "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/orders-*"
         && (context.sourceIp.isInRange(ip("10.0.0.0/8")) || context.sourceIp.isInRange(ip("2001:db8::/32"))) };
permit(principal, action in [Action::"s3:GetObject", Action::"s3:PutObject"], resource)
  when { context.resource like "arn:aws:s3:::orders-orders/*"
         && context.currentTime < datetime("2030-01-01T00:00:00Z") };
permit(principal, action == Action::"sqs:SendMessage",
       resource == Resource::"arn:aws:sqs:us-east-1:123456789012:orders-events")
  when { context.sourceArn like "arn:aws:lambda:us-east-1:123456789012:function:orders-*" };
permit(principal, action == Action::"writ:Invoke", resource == Resource::"spiffe://example.org/fn/payments")
  when { context.path like "/charge*" && context.method == "POST" && context.bodyBytes <= 65536 };
permit(principal, action == Action::"dynamodb:TagResource", resource)
  when { ["team", "env"].containsAll(context.tagKeys) };
forbid(principal, action, resource) unless { context.secureTransport };
forbid(principal, action, resource)
  unless { context.sourceIp.isInRange(ip("10.0.0.0/8")) || context.sourceIp.isInRange(ip("2001:db8::/32")) };
"#;

fn uid(text: &str) -> EntityUid {
    EntityUid::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

struct TenStatements {
    set: PolicySet,
    writ_req: Request,
    policies: CedarSet,
    cedar_req: CedarRequest,
}

fn ten_statement_cases() -> TenStatements {
    // writ
    let mut set = PolicySet::new();
    set.add(compile(TEN_STATEMENTS, "orders-role", PolicyKind::Identity));
    let ctx = context();
    let writ_req =
        Request::new("writ:Invoke", "spiffe://example.org/fn/payments").with_context(ctx);
    assert!(set.evaluate(&writ_req).is_allowed());

    // Cedar
    let policies = CedarSet::from_str(CEDAR_TEN).expect("cedar policies parse");
    let context = CedarContext::from_pairs([
        (
            "secureTransport".to_string(),
            RestrictedExpression::new_bool(true),
        ),
        (
            "sourceIp".to_string(),
            RestrictedExpression::new_ip("10.1.2.3"),
        ),
        (
            "principalTeam".to_string(),
            RestrictedExpression::new_string("orders".into()),
        ),
        (
            "currentTime".to_string(),
            RestrictedExpression::new_datetime("2026-11-24T00:00:00Z"),
        ),
        (
            "resource".to_string(),
            RestrictedExpression::new_string("spiffe://example.org/fn/payments".into()),
        ),
        (
            "sourceArn".to_string(),
            RestrictedExpression::new_string("".into()),
        ),
        (
            "path".to_string(),
            RestrictedExpression::new_string("/charge/123".into()),
        ),
        (
            "method".to_string(),
            RestrictedExpression::new_string("POST".into()),
        ),
        ("bodyBytes".to_string(), RestrictedExpression::new_long(512)),
        (
            "tagKeys".to_string(),
            RestrictedExpression::new_set([RestrictedExpression::new_string("team".into())]),
        ),
    ])
    .expect("cedar context");
    let cedar_req = CedarRequest::new(
        uid(r#"Role::"orders""#),
        uid(r#"Action::"writ:Invoke""#),
        uid(r#"Resource::"spiffe://example.org/fn/payments""#),
        context,
        None,
    )
    .expect("cedar request");
    let answer = Authorizer::new().is_authorized(&cedar_req, &policies, &Entities::empty());
    assert_eq!(
        answer.decision(),
        CedarDecision::Allow,
        "{:?}",
        answer.diagnostics()
    );
    TenStatements {
        set,
        writ_req,
        policies,
        cedar_req,
    }
}

fn ten_statements(c: &mut Criterion) {
    let TenStatements {
        set,
        writ_req,
        policies,
        cedar_req,
    } = ten_statement_cases();
    let authorizer = Authorizer::new();
    let entities = Entities::empty();
    let mut g = c.benchmark_group("ten_statements");
    g.bench_function("writ", |b| {
        b.iter(|| black_box(set.evaluate(black_box(&writ_req))))
    });
    g.bench_function("cedar", |b| {
        b.iter(|| black_box(authorizer.is_authorized(black_box(&cedar_req), &policies, &entities)))
    });
    g.finish();
}

struct TenThousand {
    set: PolicySet,
    writ_reqs: Vec<Request>,
    cedar: CedarSet,
    cedar_reqs: Vec<CedarRequest>,
}

fn ten_thousand_cases() -> TenThousand {
    const N: usize = 10_000;
    let mut set = PolicySet::new();
    let mut cedar_text = String::new();
    for i in 0..N {
        set.add(compile(
            &function_policy(i),
            &format!("fn-{i}"),
            PolicyKind::Resource,
        ));
        cedar_text.push_str(&format!(
            r#"permit(principal, action == Action::"writ:Invoke", resource == Fn::"spiffe://example.org/fn/fn-{i}")
                 when {{ (principal == Spiffe::"spiffe://example.org/fn/caller-{i}"
                          || principal == Spiffe::"spiffe://example.org/fn/gateway")
                         && (context.method == "GET" || context.method == "POST") }};
               permit(principal == Spiffe::"spiffe://example.org/ops/deployer",
                      action in [Action::"writ:UpdateFunction", Action::"writ:GetFunction"],
                      resource == Fn::"spiffe://example.org/fn/fn-{i}");
               forbid(principal, action == Action::"writ:DeleteFunction", resource == Fn::"spiffe://example.org/fn/fn-{i}");
            "#
        ));
    }
    let cedar = CedarSet::from_str(&cedar_text).unwrap_or_else(|e| {
        panic!(
            "cedar policies parse: {}",
            e.to_string().chars().take(500).collect::<String>()
        )
    });
    let authorizer = Authorizer::new();
    let entities = Entities::empty();

    let pick = |k: usize| {
        let i = (k * 7919) % N;
        let caller = if k % 2 == 0 { i } else { (i + 1) % N };
        (i, caller, k % 2 == 0)
    };
    let writ_reqs: Vec<Request> = (0..256)
        .map(|k| {
            let (i, caller, allowed) = pick(k);
            let mut ctx = Context::new();
            ctx.insert("writ:Method", "POST");
            let r = Request::new("writ:Invoke", &format!("spiffe://example.org/fn/fn-{i}"))
                .with_principal(Principal::Spiffe(format!(
                    "spiffe://example.org/fn/caller-{caller}"
                )))
                .with_context(ctx);
            assert_eq!(set.evaluate(&r).is_allowed(), allowed);
            r
        })
        .collect();
    let cedar_reqs: Vec<CedarRequest> = (0..256)
        .map(|k| {
            let (i, caller, allowed) = pick(k);
            let ctx = CedarContext::from_pairs([(
                "method".to_string(),
                RestrictedExpression::new_string("POST".into()),
            )])
            .expect("context");
            let r = CedarRequest::new(
                uid(&format!(
                    r#"Spiffe::"spiffe://example.org/fn/caller-{caller}""#
                )),
                uid(r#"Action::"writ:Invoke""#),
                uid(&format!(r#"Fn::"spiffe://example.org/fn/fn-{i}""#)),
                ctx,
                None,
            )
            .expect("request");
            let d = authorizer.is_authorized(&r, &cedar, &entities).decision();
            assert_eq!(d == CedarDecision::Allow, allowed);
            r
        })
        .collect();

    TenThousand {
        set,
        writ_reqs,
        cedar,
        cedar_reqs,
    }
}

fn ten_thousand(c: &mut Criterion) {
    let TenThousand {
        set,
        writ_reqs,
        cedar,
        cedar_reqs,
    } = ten_thousand_cases();
    let authorizer = Authorizer::new();
    let entities = Entities::empty();
    let mut g = c.benchmark_group("ten_thousand_functions");
    let mut k = 0;
    g.bench_function("writ", |b| {
        b.iter(|| {
            k = (k + 1) % writ_reqs.len();
            black_box(set.evaluate(black_box(&writ_reqs[k])))
        })
    });
    let mut k = 0;
    g.bench_function("cedar", |b| {
        b.iter(|| {
            k = (k + 1) % cedar_reqs.len();
            black_box(authorizer.is_authorized(black_box(&cedar_reqs[k]), &cedar, &entities))
        })
    });
    g.finish();
}

/// The Rego that decides the intentions table: the pair's action, if the table has one.
const REGO_INTENTIONS: &str = r#"
package intentions

default allow := false

allow if data.intentions[input.destination][input.source] == "allow"
"#;

struct Intentions {
    set: IntentionSet,
    writ_reqs: Vec<Request>,
    rego: regorus::Engine,
    rego_inputs: Vec<regorus::Value>,
    cedar: CedarSet,
    cedar_reqs: Vec<CedarRequest>,
}

fn intention_cases() -> Intentions {
    const N: usize = 10_000;
    let action = |i: usize| {
        if i % 10 == 0 {
            IntentionAction::Deny
        } else {
            IntentionAction::Allow
        }
    };
    let intentions: Vec<Intention> = (0..N)
        .map(|i| Intention::new(&format!("caller-{i}"), &format!("fn-{i}"), action(i)))
        .collect();
    let set = IntentionSet::new(intentions, "example.org").expect("intentions compile");

    // The same table as Rego data: destination -> source -> "allow" | "deny".
    let mut table = serde_json::Map::new();
    let mut cedar_text = String::new();
    for i in 0..N {
        let word = if action(i) == IntentionAction::Allow {
            "allow"
        } else {
            "deny"
        };
        table.insert(
            format!("fn-{i}"),
            serde_json::json!({ format!("caller-{i}"): word }),
        );
        let effect = if word == "allow" { "permit" } else { "forbid" };
        cedar_text.push_str(&format!(
            r#"{effect}(principal == Spiffe::"spiffe://example.org/fn/caller-{i}", action == Action::"writ:Invoke", resource == Fn::"spiffe://example.org/fn/fn-{i}");
"#
        ));
    }
    let mut rego = regorus::Engine::new();
    rego.add_policy("intentions.rego".into(), REGO_INTENTIONS.into())
        .expect("rego parses");
    rego.add_data_json(&serde_json::json!({ "intentions": table }).to_string())
        .expect("rego data");
    let cedar = CedarSet::from_str(&cedar_text).expect("cedar policies parse");
    let authorizer = Authorizer::new();
    let entities = Entities::empty();

    // Half the calls are the table's pairs (nine in ten allowed), half a caller to the next
    // function (no intention: denied).
    let pick = |k: usize| {
        let i = (k * 7919) % N;
        let caller = if k % 2 == 0 { i } else { (i + 1) % N };
        (i, caller, k % 2 == 0 && i % 10 != 0)
    };
    let mut writ_reqs = Vec::new();
    let mut rego_inputs = Vec::new();
    let mut cedar_reqs = Vec::new();
    for k in 0..256 {
        let (i, caller, allowed) = pick(k);
        let r = writ_policy::intentions::request(
            &format!("spiffe://example.org/fn/caller-{caller}"),
            &format!("fn-{i}"),
            Some("POST"),
            Some("/charge"),
            [],
        );
        assert_eq!(set.decide(&r).allowed, allowed);
        writ_reqs.push(r);

        let input = regorus::Value::from_json_str(
            &serde_json::json!({
                "source": format!("caller-{caller}"),
                "destination": format!("fn-{i}"),
                "method": "POST",
                "path": "/charge",
            })
            .to_string(),
        )
        .expect("rego input");
        rego.set_input(input.clone());
        let answer = rego
            .eval_rule("data.intentions.allow".into())
            .expect("rego evaluates");
        assert_eq!(answer, regorus::Value::from(allowed));
        rego_inputs.push(input);

        let r = CedarRequest::new(
            uid(&format!(
                r#"Spiffe::"spiffe://example.org/fn/caller-{caller}""#
            )),
            uid(r#"Action::"writ:Invoke""#),
            uid(&format!(r#"Fn::"spiffe://example.org/fn/fn-{i}""#)),
            CedarContext::empty(),
            None,
        )
        .expect("request");
        let d = authorizer.is_authorized(&r, &cedar, &entities).decision();
        assert_eq!(d == CedarDecision::Allow, allowed);
        cedar_reqs.push(r);
    }
    Intentions {
        set,
        writ_reqs,
        rego,
        rego_inputs,
        cedar,
        cedar_reqs,
    }
}

/// One regorus decision: the input set, the rule evaluated.
fn rego_decide(rego: &mut regorus::Engine, input: &regorus::Value) -> regorus::Value {
    rego.set_input(input.clone());
    rego.eval_rule("data.intentions.allow".into())
        .expect("rego evaluates")
}

fn ten_thousand_intentions(c: &mut Criterion) {
    let Intentions {
        set,
        writ_reqs,
        mut rego,
        rego_inputs,
        cedar,
        cedar_reqs,
    } = intention_cases();
    let authorizer = Authorizer::new();
    let entities = Entities::empty();
    let mut g = c.benchmark_group("ten_thousand_intentions");
    let mut k = 0;
    g.bench_function("writ", |b| {
        b.iter(|| {
            k = (k + 1) % writ_reqs.len();
            black_box(set.decide(black_box(&writ_reqs[k])))
        })
    });
    let mut k = 0;
    g.bench_function("regorus", |b| {
        b.iter(|| {
            k = (k + 1) % rego_inputs.len();
            black_box(rego_decide(&mut rego, black_box(&rego_inputs[k])))
        })
    });
    let mut k = 0;
    g.bench_function("cedar", |b| {
        b.iter(|| {
            k = (k + 1) % cedar_reqs.len();
            black_box(authorizer.is_authorized(black_box(&cedar_reqs[k]), &cedar, &entities))
        })
    });
    g.finish();
}

/// `PEER_BENCH_COUNT=SCENARIO:ENGINE:N` (SCENARIO `ten_statements`,
/// `ten_thousand_functions` or `ten_thousand_intentions`, ENGINE `writ`, `cedar`, or for
/// the intentions `regorus`) runs N decisions and exits, for
/// `valgrind --tool=callgrind`: (instructions at N - instructions at 0) / N is the cost of
/// one decision, whatever else the machine is doing.
fn count(spec: &str) {
    let mut parts = spec.split(':');
    let (Some(scenario), Some(engine), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
        panic!("PEER_BENCH_COUNT=SCENARIO:ENGINE:N");
    };
    let n: usize = n.parse().expect("N is a number");
    let authorizer = Authorizer::new();
    let entities = Entities::empty();
    match (scenario, engine) {
        ("ten_statements", "writ") => {
            let t = ten_statement_cases();
            for _ in 0..n {
                black_box(t.set.evaluate(black_box(&t.writ_req)));
            }
        }
        ("ten_statements", "cedar") => {
            let t = ten_statement_cases();
            for _ in 0..n {
                black_box(authorizer.is_authorized(
                    black_box(&t.cedar_req),
                    &t.policies,
                    &entities,
                ));
            }
        }
        ("ten_thousand_functions", "writ") => {
            let t = ten_thousand_cases();
            for k in 0..n {
                black_box(
                    t.set
                        .evaluate(black_box(&t.writ_reqs[k % t.writ_reqs.len()])),
                );
            }
        }
        ("ten_thousand_functions", "cedar") => {
            let t = ten_thousand_cases();
            for k in 0..n {
                let r = &t.cedar_reqs[k % t.cedar_reqs.len()];
                black_box(authorizer.is_authorized(black_box(r), &t.cedar, &entities));
            }
        }
        ("ten_thousand_intentions", engine) => {
            let mut t = intention_cases();
            for k in 0..n {
                match engine {
                    "writ" => {
                        black_box(t.set.decide(black_box(&t.writ_reqs[k % t.writ_reqs.len()])));
                    }
                    "regorus" => {
                        let input = &t.rego_inputs[k % t.rego_inputs.len()];
                        black_box(rego_decide(&mut t.rego, black_box(input)));
                    }
                    "cedar" => {
                        let r = &t.cedar_reqs[k % t.cedar_reqs.len()];
                        black_box(authorizer.is_authorized(black_box(r), &t.cedar, &entities));
                    }
                    other => panic!("unknown engine {other:?}"),
                }
            }
        }
        other => panic!("unknown scenario and engine {other:?}"),
    }
}

criterion_group!(benches, ten_statements, ten_thousand, ten_thousand_intentions);

fn main() {
    if let Ok(spec) = std::env::var("PEER_BENCH_COUNT") {
        count(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
