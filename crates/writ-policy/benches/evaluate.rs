//! Decision throughput and latency.
//!
//! Run: `cargo bench -p writ-policy --bench evaluate`
//!
//! - `ten_statements/*`: one decision against a 10-statement identity policy whose
//!   statements carry conditions (target: >= 1,000,000 decisions per second per core).
//! - `ten_thousand_policies/*`: one decision among 10,000 resource policies, as writ holds
//!   one per function (target: <= 1 us median).

use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use writ_policy::{Context, PolicyKind, PolicySet, Principal, Request};

mod common;

use common::{TEN_STATEMENTS, compile, context, function_policy};

/// The 10-statement set and its three requests: allowed through three conditions, allowed
/// through a policy variable, and implicitly denied.
fn ten_statement_cases() -> (PolicySet, [(&'static str, Request); 3]) {
    let mut set = PolicySet::new();
    set.add(compile(TEN_STATEMENTS, "orders-role", PolicyKind::Identity));
    let allowed =
        Request::new("writ:Invoke", "spiffe://example.org/fn/payments").with_context(context());
    let bucket = Request::new("s3:GetObject", "arn:aws:s3:::orders-orders/invoice.pdf")
        .with_context(context());
    let denied = Request::new(
        "dynamodb:DeleteItem",
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
    )
    .with_context(context());
    assert!(set.evaluate(&allowed).is_allowed());
    assert!(set.evaluate(&bucket).is_allowed());
    assert!(!set.evaluate(&denied).is_allowed());
    let cases = [
        ("allowed_three_conditions", allowed),
        ("allowed_policy_variable", bucket),
        ("implicit_deny", denied),
    ];
    (set, cases)
}

fn ten_statements(c: &mut Criterion) {
    let (set, cases) = ten_statement_cases();
    let mut g = c.benchmark_group("ten_statements");
    for (name, req) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| black_box(set.evaluate(black_box(req))))
        });
    }
    g.finish();
}

/// 10,000 function policies and 1,024 requests spread over them, half allowed, so caches do
/// not flatter the numbers.
fn ten_thousand_cases() -> (PolicySet, Vec<Request>) {
    const N: usize = 10_000;
    let mut set = PolicySet::new();
    for i in 0..N {
        set.add(compile(
            &function_policy(i),
            &format!("fn-{i}"),
            PolicyKind::Resource,
        ));
    }
    let requests: Vec<Request> = (0..1024)
        .map(|k| {
            let i = (k * 7919) % N;
            let allowed = k % 2 == 0;
            let caller = if allowed { i } else { (i + 1) % N };
            let mut ctx = Context::new();
            ctx.insert("writ:Method", "POST");
            let req = Request::new("writ:Invoke", &format!("spiffe://example.org/fn/fn-{i}"))
                .with_principal(Principal::Spiffe(format!(
                    "spiffe://example.org/fn/caller-{caller}"
                )))
                .with_context(ctx);
            assert_eq!(set.evaluate(&req).is_allowed(), allowed);
            req
        })
        .collect();
    (set, requests)
}

fn ten_thousand_policies(c: &mut Criterion) {
    let (set, requests) = ten_thousand_cases();
    let mut g = c.benchmark_group("ten_thousand_policies");
    let mut k = 0;
    g.bench_function("invoke_mixed", |b| {
        b.iter(|| {
            k = (k + 1) % requests.len();
            black_box(set.evaluate(black_box(&requests[k])))
        })
    });
    g.finish();
}

fn compile_bench(c: &mut Criterion) {
    c.bench_function("parse_and_compile_ten_statements", |b| {
        b.iter(|| {
            black_box(compile(
                black_box(TEN_STATEMENTS),
                "p",
                PolicyKind::Identity,
            ))
        })
    });
}

/// `WRIT_BENCH_COUNT=SCENARIO:N` runs N decisions of one scenario and exits, for
/// `valgrind --tool=callgrind`: (instructions at N) - (instructions at 0), divided by N, is
/// the cost of one decision, the same on a busy machine as on an idle one.
fn count(spec: &str) {
    let (scenario, n) = spec.rsplit_once(':').expect("WRIT_BENCH_COUNT=SCENARIO:N");
    let n: usize = n.parse().expect("N is a number");
    if scenario == "ten_thousand_policies" {
        let (set, requests) = ten_thousand_cases();
        for k in 0..n {
            black_box(set.evaluate(black_box(&requests[k % requests.len()])));
        }
        return;
    }
    let (set, cases) = ten_statement_cases();
    let (_, req) = cases
        .iter()
        .find(|(name, _)| *name == scenario)
        .expect("a scenario: allowed_three_conditions, allowed_policy_variable, implicit_deny, ten_thousand_policies");
    for _ in 0..n {
        black_box(set.evaluate(black_box(req)));
    }
}

criterion_group!(
    benches,
    ten_statements,
    ten_thousand_policies,
    compile_bench
);

fn main() {
    if let Ok(spec) = std::env::var("WRIT_BENCH_COUNT") {
        count(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
