//! `writ policy validate`, `simulate`, and `generate` (from the audit log); `diff` and `check`
//! are wired here and live in `policy_diff`.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::json;
use writ_policy::{
    CompiledPolicy, Context, ContextValue, Diagnostic, Explanation, Outcome, ParseOptions, Parsed,
    Policy, PolicyKind, PolicySet, Principal, Request, StatementMiss, ValueType,
};

use super::Format;
use crate::input::read_bounded;

/// Files larger than this are not even read; the parser's own limit is far lower.
const READ_LIMIT: usize = 16 * 1024 * 1024;

/// `writ policy ...`
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Check policies for errors and risky patterns.
    ///
    /// Prints each problem as FILE:LINE:COLUMN with its JSON path. Exits 0 when every file is
    /// valid (warnings allowed), 1 when any is not.
    ///
    /// Examples:
    ///   writ policy validate role-policy.json
    ///   writ policy validate --type resource function-policy.json
    ///   writ policy validate --format json policies/*.json
    #[command(verbatim_doc_comment)]
    Validate(ValidateArgs),
    /// Decide a request offline and explain the decision.
    ///
    /// Exits 0 when allowed, 2 when denied (explicitly or implicitly), 1 on error.
    ///
    /// Examples:
    ///   writ policy simulate --policy role.json --action dynamodb:GetItem \
    ///       --resource arn:aws:dynamodb:us-east-1:123456789012:table/orders
    ///   writ policy simulate --resource-policy fn.json --principal apigateway.amazonaws.com \
    ///       --action lambda:InvokeFunction --resource arn:aws:lambda:us-east-1:123456789012:function:orders \
    ///       --context aws:SourceArn=arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/
    ///   writ policy simulate --policy role.json --action s3:GetObject --resource 'arn:aws:s3:::b/k' \
    ///       --context aws:SourceIp:ip=203.0.113.7 --context 'aws:TagKeys=["team","env"]'
    #[command(verbatim_doc_comment)]
    Simulate(SimulateArgs),
    /// Write the least-privilege policy for what a function really did, from the audit log.
    ///
    /// Allows exactly the actions and resources the function was allowed to use in the
    /// window (no wildcard wider than the evidence), grouped per service, and checked as
    /// `writ policy validate` would before it is printed.
    ///
    /// Examples:
    ///   writ policy generate --from-audit --fn orders --since 7d > orders-policy.json
    ///   writ policy generate --from-audit --fn orders --since 30d --format json
    #[command(verbatim_doc_comment)]
    Generate(GenerateArgs),
    /// Show what NEW allows that OLD does not, and the reverse.
    ///
    /// Exact for actions, resources and principals with their `*` and `?` patterns;
    /// conditions are reported with each difference. Every difference comes with a witness
    /// request that writ's evaluator allows under one policy and refuses under the other,
    /// or says why there is none. Exits 0 when NEW grants nothing more, 1 when it grants
    /// more (or may, depending on conditions), 2 on error.
    ///
    /// Examples:
    ///   writ policy diff old-role.json new-role.json
    ///   writ policy diff --kind resource fn-policy.json fn-policy.new.json --format json
    ///   writ policy diff --kind boundary old-boundary.json new-boundary.json --format sarif
    #[command(verbatim_doc_comment)]
    Diff(super::policy_diff::DiffArgs),
    /// Check that policies never allow some actions on some resources (a CI gate).
    ///
    /// Exits 1 and prints a witness request when any request for ACTIONS on RESOURCES can
    /// be allowed (or may be, depending on conditions), 0 when none can, 2 on error.
    ///
    /// Examples:
    ///   writ policy check --not-granted 'iam:*,sts:AssumeRole' role.json
    ///   writ policy check --not-granted s3:DeleteObject --on 'arn:aws:s3:::audit-logs/*' \
    ///       role.json inline.json --format sarif
    #[command(verbatim_doc_comment)]
    Check(super::policy_diff::CheckArgs),
}

/// Arguments of `writ policy generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Build the policy from the server's audit log (the only source there is for now).
    #[arg(long, required = true)]
    from_audit: bool,
    /// The function whose calls the policy allows.
    #[arg(long = "fn")]
    function: String,
    /// How far back to look (90s, 10m, 1h, 7d).
    #[arg(long, default_value = "7d", value_parser = writ_server::duration::parse)]
    since: time::Duration,
    #[command(flatten)]
    client: super::client::ClientArgs,
}

/// Policy type, as on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Decide from the content: resource when a statement names a Principal.
    Auto,
    /// Identity-based (no Principal).
    Identity,
    /// Resource-based (Principal required).
    Resource,
    /// Permissions boundary.
    Boundary,
    /// Session policy.
    Session,
}

/// Arguments of `writ policy validate`.
#[derive(Args)]
pub struct ValidateArgs {
    /// Policy files; `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// The kind of policy, which decides whether Principal is required or refused.
    #[arg(long = "type", value_enum, default_value_t = KindArg::Auto)]
    kind: KindArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Arguments of `writ policy simulate`.
#[derive(Args)]
pub struct SimulateArgs {
    /// Identity-based policy files (repeatable).
    #[arg(long = "policy", value_name = "FILE")]
    policies: Vec<String>,
    /// Resource-based policy files (repeatable).
    #[arg(long = "resource-policy", value_name = "FILE")]
    resource_policies: Vec<String>,
    /// Permissions boundary files (repeatable).
    #[arg(long = "boundary", value_name = "FILE")]
    boundaries: Vec<String>,
    /// Session policy files (repeatable).
    #[arg(long = "session-policy", value_name = "FILE")]
    session_policies: Vec<String>,
    /// Who makes the request: spiffe://..., an ARN, a 12-digit account id, a service such as
    /// apigateway.amazonaws.com, `anonymous`, or KIND:VALUE (federated:, canonical:).
    #[arg(long)]
    principal: Option<String>,
    /// The action, e.g. s3:GetObject.
    #[arg(long)]
    action: String,
    /// The resource, e.g. arn:aws:s3:::bucket/key.
    #[arg(long)]
    resource: String,
    /// A context key: KEY=VALUE, KEY=[JSON array] for a list, or KEY:TYPE=VALUE with TYPE one
    /// of string, numeric, boolean, ip, date, binary (add `List` for lists:
    /// ipList=10.0.0.1,10.0.0.2). Repeatable. Keys derived from --principal
    /// (aws:PrincipalAccount, aws:PrincipalArn, aws:username, aws:PrincipalServiceName)
    /// cannot be overridden, as in AWS. For a resource whose ARN names no account (S3),
    /// aws:ResourceAccount=ACCOUNT says whose it is, for the cross-account rule.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Context keys set from the principal, which callers cannot choose.
const DERIVED_KEYS: [&str; 4] = [
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:username",
    "aws:PrincipalServiceName",
];

/// Runs a `writ policy` command.
pub fn run(cmd: PolicyCommand) -> Result<ExitCode, String> {
    match cmd {
        PolicyCommand::Validate(args) => validate(args),
        PolicyCommand::Simulate(args) => simulate(args),
        PolicyCommand::Generate(args) => generate(args),
        PolicyCommand::Diff(args) => Ok(super::policy_diff::diff(args)),
        PolicyCommand::Check(args) => Ok(super::policy_diff::check(args)),
    }
}

/// Parses a file as the given kind, detecting identity versus resource when asked to.
fn parse_file(bytes: &[u8], kind: KindArg) -> (PolicyKind, Parsed) {
    let fixed = match kind {
        KindArg::Identity | KindArg::Auto => PolicyKind::Identity,
        KindArg::Resource => PolicyKind::Resource,
        KindArg::Boundary => PolicyKind::PermissionsBoundary,
        KindArg::Session => PolicyKind::Session,
    };
    let parsed = writ_policy::parse_bytes(bytes, &ParseOptions::new(fixed));
    if kind == KindArg::Auto
        && parsed
            .diagnostics
            .iter()
            .any(|d| d.code == "unexpected-principal")
    {
        let kind = PolicyKind::Resource;
        return (
            kind,
            writ_policy::parse_bytes(bytes, &ParseOptions::new(kind)),
        );
    }
    (fixed, parsed)
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    #[serde(rename = "policyType", skip_serializing_if = "Option::is_none")]
    kind: Option<PolicyKind>,
    valid: bool,
    diagnostics: Vec<Diagnostic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn validate(args: ValidateArgs) -> Result<ExitCode, String> {
    let mut reports = Vec::new();
    for file in &args.files {
        let report = match read_bounded(file, READ_LIMIT) {
            Ok(bytes) => {
                let (kind, parsed) = parse_file(&bytes, args.kind);
                FileReport {
                    file: file.clone(),
                    kind: Some(kind),
                    valid: parsed.policy.is_some(),
                    diagnostics: parsed.diagnostics,
                    error: None,
                }
            }
            Err(e) => FileReport {
                file: file.clone(),
                kind: None,
                valid: false,
                diagnostics: Vec::new(),
                error: Some(e),
            },
        };
        reports.push(report);
    }
    let all_valid = reports.iter().all(|r| r.valid);
    match args.format {
        Format::Json => {
            let doc = json!({ "valid": all_valid, "files": reports });
            println!("{}", to_json(&doc)?);
        }
        Format::Text => {
            let (mut errors, mut warnings) = (0, 0);
            for r in &reports {
                if let Some(e) = &r.error {
                    println!("{e}");
                    errors += 1;
                    continue;
                }
                for d in &r.diagnostics {
                    println!("{}:{d}", r.file);
                    if d.is_error() {
                        errors += 1;
                    } else {
                        warnings += 1;
                    }
                }
                if r.valid {
                    let kind = r.kind.map(|k| k.to_string()).unwrap_or_default();
                    println!("{}: valid {kind} policy", r.file);
                }
            }
            let invalid = reports.iter().filter(|r| !r.valid).count();
            println!(
                "{} file{}: {} valid, {invalid} invalid; {errors} error{}, {warnings} warning{}",
                reports.len(),
                plural(reports.len()),
                reports.len() - invalid,
                plural(errors),
                plural(warnings),
            );
        }
    }
    Ok(ExitCode::from(if all_valid { 0 } else { 1 }))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn to_json(v: &impl Serialize) -> Result<String, String> {
    serde_json::to_string_pretty(v).map_err(|e| format!("cannot render JSON: {e}"))
}

/// Policies read for a simulation: file name, kind and policy.
type Loaded = Vec<(String, PolicyKind, Policy)>;
/// Warnings, with the file they are about.
type Warnings = Vec<(String, Diagnostic)>;

/// Loads and checks every policy; on any error prints all diagnostics and fails.
fn load_policies(args: &SimulateArgs) -> Result<(Loaded, Warnings), String> {
    let groups = [
        (&args.policies, PolicyKind::Identity),
        (&args.resource_policies, PolicyKind::Resource),
        (&args.boundaries, PolicyKind::PermissionsBoundary),
        (&args.session_policies, PolicyKind::Session),
    ];
    let mut loaded = Vec::new();
    let mut warnings = Vec::new();
    let mut failures = Vec::new();
    for (files, kind) in groups {
        for file in files {
            let bytes = read_bounded(file, READ_LIMIT)?;
            let parsed = writ_policy::parse_bytes(&bytes, &ParseOptions::new(kind));
            for d in &parsed.diagnostics {
                if d.is_error() {
                    failures.push(format!("{file}:{d}"));
                } else {
                    warnings.push((file.clone(), d.clone()));
                }
            }
            if let Some(p) = parsed.policy {
                loaded.push((file.clone(), kind, p));
            }
        }
    }
    if !failures.is_empty() {
        return Err(format!(
            "invalid policy; nothing was simulated:\n{}",
            failures.join("\n")
        ));
    }
    if loaded.is_empty() {
        return Err(
            "no policy given: pass --policy, --resource-policy, --boundary or --session-policy"
                .into(),
        );
    }
    Ok((loaded, warnings))
}

fn simulate(args: SimulateArgs) -> Result<ExitCode, String> {
    let (policies, warnings) = load_policies(&args)?;
    let mut set = PolicySet::new();
    for (name, kind, policy) in &policies {
        let compiled =
            CompiledPolicy::new(name, *kind, policy).map_err(|e| format!("{name}: {e}"))?;
        set.add(compiled);
    }
    let mut context = Context::new();
    for entry in &args.context {
        let (key, value) = parse_context(entry)?;
        context.insert(&key, value);
    }
    let now = time::OffsetDateTime::now_utc();
    let now_text = now
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("cannot format the current time: {e}"))?;
    context.insert_default("aws:CurrentTime", now_text);
    context.insert_default("aws:EpochTime", now.unix_timestamp());
    let mut request = Request::new(&args.action, &args.resource).with_context(context);
    if let Some(p) = &args.principal {
        let principal = Principal::parse(p).map_err(|e| format!("--principal: {e}"))?;
        // AWS sets aws:PrincipalArn of a role session to its role's ARN with the role's path,
        // which the session ARN does not carry: that one key may be given, and must be the
        // session's role.
        let session = matches!(&principal, Principal::Aws(id) if id.contains(":assumed-role/"));
        let role_arn = request
            .context()
            .get("aws:PrincipalArn")
            .map(|v| v.as_slice().join(","));
        for key in DERIVED_KEYS {
            if session && key == "aws:PrincipalArn" {
                continue;
            }
            if request.context().get(key).is_some() {
                return Err(format!(
                    "--context {key}: this key is derived from --principal, as AWS derives it; \
                     drop the --context value or change the principal"
                ));
            }
        }
        request = request.with_principal(principal).with_principal_context();
        if let Some(role) = role_arn
            && request.context().get("aws:PrincipalArn").is_none()
        {
            return Err(format!(
                "--context aws:PrincipalArn: {role:?} is not the role of the session {p}; give \
                 the session's role ARN (arn:aws:iam::ACCOUNT:role/PATH/NAME) or drop it"
            ));
        }
    }
    let explanation = set.explain(&request);
    match args.format {
        Format::Json => print_json(&request, &explanation, &warnings)?,
        Format::Text => print_text(&request, &explanation, &warnings),
    }
    Ok(ExitCode::from(match explanation.decision.outcome {
        Outcome::Allowed => 0,
        Outcome::ExplicitDeny | Outcome::ImplicitDeny => 2,
    }))
}

/// Parses `KEY=VALUE`, `KEY=[json array]` or `KEY:TYPE=VALUE`.
fn parse_context(entry: &str) -> Result<(String, ContextValue), String> {
    let (lhs, value) = entry
        .split_once('=')
        .ok_or_else(|| format!("--context {entry:?}: expected KEY=VALUE"))?;
    let (key, ty) = match lhs.rsplit_once(':') {
        Some((k, t)) if context_type(t).is_some() => (k, context_type(t)),
        _ => (lhs, None),
    };
    if key.is_empty() {
        return Err(format!("--context {entry:?}: the key is empty"));
    }
    let where_ = || format!("--context {key}");
    let Some((ty, list)) = ty else {
        if value.starts_with('[') {
            return parse_json_list(value)
                .map(|v| (key.to_string(), ContextValue::List(v)))
                .map_err(|e| format!("{}: {e}", where_()));
        }
        return Ok((key.to_string(), ContextValue::One(value.to_string())));
    };
    let items: Vec<String> = if !list {
        vec![value.to_string()]
    } else if value.starts_with('[') {
        parse_json_list(value).map_err(|e| format!("{}: {e}", where_()))?
    } else if value.is_empty() {
        Vec::new()
    } else {
        value.split(',').map(str::to_string).collect()
    };
    for item in &items {
        if !ty.accepts(item) {
            return Err(format!(
                "{}: {item:?} is not a valid {}",
                where_(),
                type_name(ty)
            ));
        }
    }
    let value = if list {
        ContextValue::List(items)
    } else {
        ContextValue::One(value.to_string())
    };
    Ok((key.to_string(), value))
}

fn parse_json_list(text: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON list: {e}"))?;
    let serde_json::Value::Array(items) = v else {
        return Err("expected a JSON array".into());
    };
    items
        .into_iter()
        .map(|i| match i {
            serde_json::Value::String(s) => Ok(s),
            serde_json::Value::Number(n) => Ok(n.to_string()),
            serde_json::Value::Bool(b) => Ok(b.to_string()),
            other => Err(format!(
                "list items must be strings, numbers or booleans, not {other}"
            )),
        })
        .collect()
}

/// The context key types of `aws iam simulate-custom-policy`: a value type, and whether
/// the key holds a list.
fn context_type(name: &str) -> Option<(ValueType, bool)> {
    let (base, list) = match name.strip_suffix("List") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let ty = match base {
        "string" => ValueType::String,
        "numeric" => ValueType::Numeric,
        "boolean" => ValueType::Bool,
        "ip" => ValueType::Ip,
        "date" => ValueType::Date,
        "binary" => ValueType::Binary,
        _ => return None,
    };
    Some((ty, list))
}

fn type_name(ty: ValueType) -> &'static str {
    match ty {
        ValueType::Numeric => "number",
        ValueType::Bool | ValueType::Null => "boolean (true or false)",
        ValueType::Ip => "IP address",
        ValueType::Date => "date (ISO 8601 or epoch seconds)",
        ValueType::Binary => "base64 value",
        ValueType::Arn => "ARN",
        ValueType::String => "string",
    }
}

fn miss_text(m: &StatementMiss, request: &Request) -> String {
    match m {
        StatementMiss::Variable { variable } => {
            format!("${{{variable}}} has no value in this request")
        }
        StatementMiss::Principal => "the principal does not match".into(),
        StatementMiss::Action => "the action does not match".into(),
        StatementMiss::Resource => "the resource does not match".into(),
        StatementMiss::Condition {
            operator,
            key,
            key_missing: true,
        } => format!("condition {operator} on {key}: the key is not in the request"),
        StatementMiss::Condition { operator, key, .. } => {
            let value = match request.context().get(key) {
                Some(ContextValue::One(v)) => format!(" for {v:?}"),
                Some(ContextValue::List(v)) => format!(" for {v:?}"),
                None => String::new(),
            };
            format!("condition {operator} on {key} does not hold{value}")
        }
    }
}

fn print_text(request: &Request, e: &Explanation, warnings: &[(String, Diagnostic)]) {
    for (file, d) in warnings {
        eprintln!("{file}:{d}");
    }
    let d = &e.decision;
    println!("decision: {}", d.outcome.as_str());
    let who = request
        .principal()
        .map(|p| format!("{p} "))
        .unwrap_or_default();
    println!(
        "request:  {who}{} on {}",
        request.action(),
        request.resource()
    );
    match d.outcome {
        Outcome::Allowed => println!("allowed by:"),
        Outcome::ExplicitDeny => println!("denied by:"),
        Outcome::ImplicitDeny => {
            let why = e.why.as_deref().unwrap_or("no statement allows it");
            println!("why:      {why}");
            if !d.matched.is_empty() {
                println!("allowed only by:");
            }
        }
    }
    for m in &d.matched {
        println!(
            "  {} ({} policy) {}: {}",
            m.policy,
            m.kind,
            m.label(),
            m.effect
        );
    }
    for t in &e.statements {
        if let Some(v) = &t.unresolved_variable {
            println!(
                "  note: {} {} applies although ${{{v}}} has no value in this request: a Deny \
                 that cannot be resolved is read as applying",
                t.statement.policy,
                t.statement.label()
            );
        }
    }
    let misses: Vec<_> = e
        .statements
        .iter()
        .filter_map(|t| t.miss.as_ref().map(|m| (t, m)))
        .collect();
    if !misses.is_empty() {
        println!("statements that did not apply:");
        for (t, m) in misses {
            println!(
                "  {} ({} policy) {} [{}]: {}",
                t.statement.policy,
                t.statement.kind,
                t.statement.label(),
                t.statement.effect,
                miss_text(m, request)
            );
        }
    }
}

fn print_json(
    request: &Request,
    e: &Explanation,
    warnings: &[(String, Diagnostic)],
) -> Result<(), String> {
    let context: serde_json::Map<String, serde_json::Value> = request
        .context()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let warnings: Vec<_> = warnings
        .iter()
        .map(|(file, d)| json!({"file": file, "diagnostic": d}))
        .collect();
    let doc = json!({
        "decision": e.decision.outcome,
        "matched": e.decision.matched,
        "reason": e.decision.reason,
        "why": e.why,
        "request": {
            "principal": request.principal(),
            "action": request.action(),
            "resource": request.resource(),
            "context": context,
        },
        "statements": e.statements,
        "warnings": warnings,
    });
    println!("{}", to_json(&doc)?);
    Ok(())
}

/// `writ policy generate --from-audit`: reads the function's allowed events in the window
/// from the server and prints the policy that allows exactly those calls.
fn generate(args: GenerateArgs) -> Result<ExitCode, String> {
    let _ = args.from_audit;
    let client = super::client::Client::new(&args.client)?;
    let actor = super::audit::function_id(&client, &args.function)?;
    let since_ms = (time::OffsetDateTime::now_utc() - args.since).unix_timestamp() * 1000;
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page =
            client.send::<writ_api::endpoints::ReadAuditEvents>(&writ_api::audit::EventsQuery {
                after,
                limit: Some(writ_api::audit::MAX_PAGE),
                actor: Some(actor.clone()),
                since_ms: Some(since_ms),
                outcome: Some(writ_audit::Outcome::Allowed),
                wait: 0,
            })?;
        let records = page.records;
        let Some(last) = records.last().map(|r| r.seq) else {
            break;
        };
        for r in records {
            let event: writ_audit::Event = serde_json::from_str(&r.event)
                .map_err(|e| format!("audit event {} is unreadable: {e}", r.seq))?;
            events.push(event);
        }
        after = last;
    }
    let generated = writ_audit::generate::least_privilege(&events, &actor).map_err(|e| {
        format!(
            "{e} (looked at {} allowed events by {actor} in the last {})",
            events.len(),
            writ_server::duration::format(args.since)
        )
    })?;
    if args.client.format.is_json() {
        println!(
            "{}",
            serde_json::json!({
                "policy": generated.policy,
                "eventsUsed": generated.events_used,
                "pairs": generated.pairs,
            })
        );
    } else {
        println!("{}", generated.text);
        eprintln!(
            "writ: {} calls ({} distinct action and resource pairs) by {actor} in the last {}",
            generated.events_used,
            generated.pairs,
            writ_server::duration::format(args.since)
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_entries() {
        let (k, v) = parse_context("aws:SourceIp=10.0.0.1").unwrap();
        assert_eq!(
            (k.as_str(), v),
            ("aws:SourceIp", ContextValue::from("10.0.0.1"))
        );
        let (_, v) = parse_context("aws:TagKeys=[\"a\",1,true]").unwrap();
        assert_eq!(v, ContextValue::from(vec!["a", "1", "true"]));
        let (k, v) = parse_context("aws:SourceIp:ip=10.0.0.1").unwrap();
        assert_eq!(
            (k.as_str(), v),
            ("aws:SourceIp", ContextValue::from("10.0.0.1"))
        );
        let (_, v) = parse_context("k:ips:ipList=10.0.0.1,::1").unwrap();
        assert_eq!(v, ContextValue::from(vec!["10.0.0.1", "::1"]));
        assert!(parse_context("aws:SourceIp:ip=nope").is_err());
        assert!(parse_context("aws:MultiFactorAuthAge:numeric=ten").is_err());
        assert!(parse_context("aws:SecureTransport:boolean=yes").is_err());
        assert!(parse_context("aws:CurrentTime:date=2024-02-30").is_err());
        assert!(parse_context("aws:CurrentTime:date=2024-02-03T00:00:00Z").is_ok());
        assert!(parse_context("aws:EpochTime:numeric=1700000000").is_ok());
        assert!(parse_context("novalue").is_err());
        assert!(parse_context("=x").is_err());
        // A key whose last part is not a type name keeps its colon.
        let (k, _) = parse_context("aws:PrincipalTag/team=x").unwrap();
        assert_eq!(k, "aws:PrincipalTag/team");
    }
}
