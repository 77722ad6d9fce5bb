//! Set-up shared by writ's benchmark and the Cedar peer benchmark (`bench/policy-peers`),
//! so both engines decide exactly the same request.

use writ_policy::{CompiledPolicy, Context, ContextValue, ParseOptions, PolicyKind};

/// Ten statements in the shapes real execution roles use, most with conditions.
pub const TEN_STATEMENTS: &str = include_str!("../ten_statements.json");

/// Parses and compiles a policy that is known to be valid.
pub fn compile(text: &str, name: &str, kind: PolicyKind) -> CompiledPolicy {
    let policy = writ_policy::parse(text, &ParseOptions::new(kind))
        .into_result()
        .unwrap_or_else(|d| panic!("{d:#?}"));
    CompiledPolicy::new(name, kind, &policy).expect("compiles")
}

/// The request context of the 10-statement benchmark.
pub fn context() -> Context {
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

/// One function's resource policy, as writ keeps one per function.
pub fn function_policy(i: usize) -> String {
    include_str!("../function_policy.json").replace("INDEX", &i.to_string())
}
