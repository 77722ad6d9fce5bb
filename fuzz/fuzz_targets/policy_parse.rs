//! Fuzzes the policy parser with arbitrary bytes, then compiles and evaluates whatever
//! parses, so the whole path from untrusted text to a decision is covered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use writ_policy::{
    CompiledPolicy, Context, ContextValue, ParseOptions, PolicyKind, PolicySet, Principal, Request,
};

fuzz_target!(|data: &[u8]| {
    for kind in [PolicyKind::Identity, PolicyKind::Resource] {
        let parsed = writ_policy::parse_bytes(data, &ParseOptions::new(kind));
        for d in &parsed.diagnostics {
            // Rendering must not panic either.
            let _ = d.to_string();
        }
        let Some(policy) = parsed.policy else {
            continue;
        };
        let mut set = PolicySet::new();
        // Whatever the parser accepts must compile.
        set.add(CompiledPolicy::new("fuzz", kind, &policy).expect("a parsed policy compiles"));
        let mut ctx = Context::new();
        ctx.insert("aws:SourceIp", "203.0.113.7");
        ctx.insert("aws:username", "alice");
        ctx.insert("aws:CurrentTime", "2024-01-01T00:00:00Z");
        ctx.insert("aws:TagKeys", ContextValue::from(vec!["a", "b"]));
        ctx.insert(
            "aws:SourceArn",
            "arn:aws:execute-api:us-east-1:123456789012:abc/*",
        );
        // Request strings drawn from the policy itself make matches likely.
        let text = String::from_utf8_lossy(data);
        let words: Vec<&str> = text
            .split('"')
            .filter(|w| !w.is_empty() && w.len() < 200)
            .take(16)
            .collect();
        for action in words.iter().chain(["s3:GetObject"].iter()) {
            for resource in words.iter().take(4).chain(["*"].iter()) {
                let req = Request::new(action, resource)
                    .with_principal(Principal::Spiffe("spiffe://example.org/fn/a".into()))
                    .with_context(ctx.clone());
                let d = set.evaluate(&req);
                let e = set.explain(&req);
                assert_eq!(d, e.decision, "evaluate and explain disagree");
            }
        }
    }
});
