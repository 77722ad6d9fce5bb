//! Decision throughput and latency.
//!
//! Run: `cargo bench -p writ-policy --bench evaluate`
//!
//! - `ten_statements/*`: one decision against a 10-statement identity policy whose
//!   statements carry conditions (target: >= 1,000,000 decisions per second per core).
//! - `ten_thousand_policies/*`: one decision among 10,000 resource policies, as writ holds
//!   one per function (target: <= 1 us median).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use writ_policy::{
    CompiledPolicy, Context, ContextValue, ParseOptions, PolicyKind, PolicySet, Principal, Request,
};

/// Ten statements in the shapes real execution roles use, most with conditions.
const TEN_STATEMENTS: &str = include_str!("ten_statements.json");

fn compile(text: &str, name: &str, kind: PolicyKind) -> CompiledPolicy {
    let policy = writ_policy::parse(text, &ParseOptions::new(kind))
        .into_result()
        .unwrap_or_else(|d| panic!("{d:#?}"));
    CompiledPolicy::new(name, kind, &policy).expect("compiles")
}

fn context() -> Context {
    let mut ctx = Context::new();
    ctx.insert("aws:SecureTransport", true);
    ctx.insert("aws:SourceIp", "10.1.2.3");
    ctx.insert("aws:PrincipalTag/team", "orders");
    ctx.insert("aws:CurrentTime", "2026-11-24T00:00:00Z");
    ctx.insert("writ:Path", "/charge/123");
    ctx.insert("writ:Method", "POST");
    ctx.insert("writ:BodyBytes", 512_i64);
    ctx.insert("aws:TagKeys", ContextValue::from(vec!["team"]));
    ctx
}

fn ten_statements(c: &mut Criterion) {
    let mut set = PolicySet::new();
    set.add(compile(TEN_STATEMENTS, "orders-role", PolicyKind::Identity));
    let allowed =
        Request::new("writ:Invoke", "spiffe://example.org/fn/payments").with_context(context());
    let denied = Request::new(
        "dynamodb:DeleteItem",
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
    )
    .with_context(context());
    let bucket = Request::new("s3:GetObject", "arn:aws:s3:::orders-orders/invoice.pdf")
        .with_context(context());
    assert!(set.evaluate(&allowed).is_allowed());
    assert!(!set.evaluate(&denied).is_allowed());
    assert!(set.evaluate(&bucket).is_allowed());

    let mut g = c.benchmark_group("ten_statements");
    g.bench_function("allowed_three_conditions", |b| {
        b.iter(|| black_box(set.evaluate(black_box(&allowed))))
    });
    g.bench_function("allowed_policy_variable", |b| {
        b.iter(|| black_box(set.evaluate(black_box(&bucket))))
    });
    g.bench_function("implicit_deny", |b| {
        b.iter(|| black_box(set.evaluate(black_box(&denied))))
    });
    g.finish();
}

fn function_policy(i: usize) -> String {
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [
          {{"Sid": "Callers", "Effect": "Allow",
           "Principal": {{"SPIFFE": ["spiffe://example.org/fn/caller-{i}", "spiffe://example.org/fn/gateway"]}},
           "Action": "writ:Invoke", "Resource": "spiffe://example.org/fn/fn-{i}",
           "Condition": {{"StringEquals": {{"writ:Method": ["GET", "POST"]}}}}}},
          {{"Sid": "Admin", "Effect": "Allow",
           "Principal": {{"SPIFFE": "spiffe://example.org/ops/deployer"}},
           "Action": ["writ:UpdateFunction", "writ:GetFunction"], "Resource": "spiffe://example.org/fn/fn-{i}"}},
          {{"Sid": "NoDelete", "Effect": "Deny",
           "Principal": "*", "Action": "writ:DeleteFunction", "Resource": "spiffe://example.org/fn/fn-{i}"}}
        ]}}"#
    )
}

fn ten_thousand_policies(c: &mut Criterion) {
    const N: usize = 10_000;
    let mut set = PolicySet::new();
    for i in 0..N {
        set.add(compile(
            &function_policy(i),
            &format!("fn-{i}"),
            PolicyKind::Resource,
        ));
    }
    // Requests spread over the whole set, so caches do not flatter the numbers.
    let requests: Vec<(Request, bool)> = (0..1024)
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
            (req, allowed)
        })
        .collect();
    for (req, allowed) in &requests {
        assert_eq!(set.evaluate(req).is_allowed(), *allowed);
    }
    let mut g = c.benchmark_group("ten_thousand_policies");
    let mut k = 0;
    g.bench_function("invoke_mixed", |b| {
        b.iter(|| {
            k = (k + 1) % requests.len();
            black_box(set.evaluate(black_box(&requests[k].0)))
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

criterion_group!(
    benches,
    ten_statements,
    ten_thousand_policies,
    compile_bench
);
criterion_main!(benches);
