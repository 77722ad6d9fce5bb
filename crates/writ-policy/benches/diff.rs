//! `diff` of two policies: the 10-statement benchmark policy against a changed copy, and
//! two 100-statement policies in the shapes execution roles use (target: < 50 ms).
//!
//! Run: `cargo bench -p writ-policy --bench diff`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use writ_policy::diff::{DiffScope, diff};
use writ_policy::{ParseOptions, Policy, PolicyKind};

const TEN_STATEMENTS: &str = include_str!("ten_statements.json");

fn parse(text: &str) -> Policy {
    writ_policy::parse(text, &ParseOptions::new(PolicyKind::Identity))
        .into_result()
        .unwrap_or_else(|d| panic!("{d:#?}"))
}

const SERVICES: [(&str, &[&str]); 5] = [
    (
        "s3",
        &["GetObject", "PutObject", "DeleteObject", "ListBucket"],
    ),
    ("dynamodb", &["GetItem", "Query", "PutItem", "UpdateItem"]),
    ("secretsmanager", &["GetSecretValue", "DescribeSecret"]),
    ("sqs", &["SendMessage", "ReceiveMessage", "DeleteMessage"]),
    ("logs", &["CreateLogStream", "PutLogEvents"]),
];

/// `n` statements: exact actions and resources, some wildcards, some conditions, a few
/// denies. `changed` widens every tenth statement and drops a condition from every
/// fifteenth, as a careless edit would.
fn many(n: usize, changed: bool) -> Policy {
    let mut statements = Vec::with_capacity(n);
    for i in 0..n {
        let (service, actions) = SERVICES[i % SERVICES.len()];
        let action = if changed && i % 10 == 3 {
            format!("{service}:*")
        } else if i % 7 == 0 {
            format!("{service}:Get*")
        } else {
            format!("{service}:{}", actions[i % actions.len()])
        };
        let resource = match service {
            "s3" => format!("arn:aws:s3:::bucket-{i}/prefix-{}/*", i % 4),
            "dynamodb" => format!("arn:aws:dynamodb:us-east-1:123456789012:table/t{i}"),
            "secretsmanager" => {
                format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:app/{i}-??????")
            }
            "sqs" => format!("arn:aws:sqs:us-east-1:123456789012:queue-{i}"),
            _ => format!("arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f{i}:*"),
        };
        let resource = if changed && i % 10 == 3 {
            resource.replace(&format!("{i}"), "*")
        } else {
            resource
        };
        let condition = if i % 3 == 0 && !(changed && i % 15 == 0) {
            r#","Condition":{"Bool":{"aws:SecureTransport":"true"},"StringEquals":{"aws:PrincipalTag/team":"orders"}}"#
        } else {
            ""
        };
        let effect = if i % 11 == 5 { "Deny" } else { "Allow" };
        statements.push(format!(
            r#"{{"Sid":"S{i}","Effect":"{effect}","Action":"{action}","Resource":"{resource}"{condition}}}"#
        ));
    }
    parse(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    ))
}

fn bench(c: &mut Criterion) {
    let ten_old = parse(TEN_STATEMENTS);
    let ten_new = parse(
        &TEN_STATEMENTS
            .replace("dynamodb:GetItem", "dynamodb:*")
            .replace("\"s3:GetObject\"", "\"s3:Get*\""),
    );
    let (old, new) = (many(100, false), many(100, true));
    let scope = DiffScope::default();
    let mut g = c.benchmark_group("diff");
    for (name, a, b) in [
        ("ten_statements", &ten_old, &ten_new),
        ("hundred_statements", &old, &new),
    ] {
        let d = diff(&[("old", a)], &[("new", b)], PolicyKind::Identity, &scope).unwrap();
        assert!(d.grants_more(), "{name}: the change grants more");
        eprintln!(
            "{name}: {} added, {} removed, {} without witness",
            d.added.len(),
            d.removed.len(),
            d.added
                .iter()
                .chain(&d.removed)
                .filter(|f| f.witness.is_none())
                .count()
        );
        g.bench_function(name, |bench| {
            bench.iter(|| {
                black_box(
                    diff(
                        &[("old", black_box(a))],
                        &[("new", black_box(b))],
                        PolicyKind::Identity,
                        &scope,
                    )
                    .unwrap(),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
