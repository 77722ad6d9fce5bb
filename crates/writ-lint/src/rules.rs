//! The rules: their ids, severities, titles and fix hints, and the checks over a [`Model`].
//!
//! Rule ids are stable: `WRIT-<AREA>-<NNN>`. A rule never changes meaning; a changed check
//! gets a new id. Each has a page under `docs/rules/<ID>.md`.

use std::collections::BTreeMap;

use crate::model::{Function, Model};
use crate::node::{Node, Pos};
use crate::{Config, Finding, RoleUse, Severity, SyntaxError, policy, secrets};

/// A rule's description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The stable id, e.g. `WRIT-IAM-001`.
    pub id: &'static str,
    /// The severity of its findings (policy validation: high for errors, medium for warnings).
    pub severity: Severity,
    /// One line: what the rule finds.
    pub title: &'static str,
    /// How to fix a finding.
    pub help: &'static str,
}

/// A file that could not be parsed.
pub const PARSE: &str = "WRIT-PARSE-001";
/// A policy that could not be read, so was not checked.
pub const IAM_UNREAD: &str = "WRIT-IAM-004";
/// A key written twice in one mapping of a template or policy.
pub const DUPLICATE_KEY: &str = "WRIT-PARSE-002";
/// Policy validation by writ-policy.
pub const IAM_VALIDATION: &str = "WRIT-IAM-000";
/// Allow of `*` or `service:*` on `*`.
pub const IAM_WILDCARD: &str = "WRIT-IAM-001";
/// `iam:PassRole` on `*`.
pub const IAM_PASSROLE: &str = "WRIT-IAM-002";
/// NotAction / NotResource with Allow.
pub const IAM_NOT: &str = "WRIT-IAM-003";
/// Permissions-management actions on every resource.
pub const IAM_PERMISSIONS: &str = "WRIT-IAM-005";
/// Write actions on every resource.
pub const IAM_WRITE: &str = "WRIT-IAM-006";
/// A privilege-escalation method allowed in full.
pub const IAM_ESCALATION: &str = "WRIT-IAM-007";
/// Reads of data (objects, secrets, parameters, items, decryption) on every resource.
pub const IAM_DATA_READ: &str = "WRIT-IAM-008";
/// One role shared by several functions.
pub const ROLE_SHARED: &str = "WRIT-ROLE-001";
/// Secret-looking variable name with a literal value.
pub const ENV_NAME: &str = "WRIT-ENV-001";
/// A known credential format in a variable value.
pub const ENV_VALUE: &str = "WRIT-ENV-002";
/// A high-entropy variable value.
pub const ENV_ENTROPY: &str = "WRIT-ENV-003";
/// A secret from a NoEcho parameter default or a Cognito client secret in a variable.
pub const ENV_SECRET_SOURCE: &str = "WRIT-ENV-004";
/// Function URL without authentication.
pub const URL_AUTH: &str = "WRIT-URL-001";
/// CORS with any origin and credentials.
pub const CORS: &str = "WRIT-CORS-001";
/// Service principal without a source guard.
pub const PERM_SOURCE: &str = "WRIT-PERM-001";
/// Principal `*`.
pub const PERM_PUBLIC: &str = "WRIT-PERM-002";
/// Layer from an account outside the allow list.
pub const LAYER: &str = "WRIT-LAYER-001";
/// No dead-letter queue or on-failure destination.
pub const DLQ: &str = "WRIT-DLQ-001";
/// Tracing not active.
pub const TRACING: &str = "WRIT-TRACE-001";
/// Security group egress open everywhere.
pub const SG_EGRESS: &str = "WRIT-SG-001";
/// Environment not encrypted with a customer-managed key.
pub const KMS: &str = "WRIT-KMS-001";
/// No reserved concurrency.
pub const CONCURRENCY: &str = "WRIT-CONC-001";
/// No code signing.
pub const CODE_SIGNING: &str = "WRIT-SIGN-001";
/// Deprecated runtime.
pub const RUNTIME: &str = "WRIT-RUNTIME-001";
/// A suppression without a reason or naming no known rule.
pub const SUPPRESS_REASON: &str = "WRIT-SUPPRESS-001";
/// A public (unauthenticated) route in writ's gateway configuration.
pub const GW_PUBLIC: &str = "WRIT-GW-001";
/// A staleness bound over an hour in writ's gateway configuration.
pub const GW_STALENESS: &str = "WRIT-GW-002";
/// The gateway's metrics on a non-loopback address.
pub const GW_METRICS: &str = "WRIT-GW-003";

/// A package with a known vulnerability (`writ lint --deps`).
pub const DEP_VULNERABLE: &str = "WRIT-DEP-001";
/// A requirement that pins no version (`writ lint --deps`).
pub const DEP_UNPINNED: &str = "WRIT-DEP-002";
/// No advisory database to check a lock file against (`writ lint --deps`).
pub const DEP_NO_DATABASE: &str = "WRIT-DEP-003";

/// Every rule, in documentation order.
pub const RULES: &[Rule] = &[
    Rule {
        id: PARSE,
        severity: Severity::High,
        title: "The file could not be parsed",
        help: "Fix the syntax error at the reported position; nothing else in the file was checked.",
    },
    Rule {
        id: DUPLICATE_KEY,
        severity: Severity::Medium,
        title: "A key is written twice in one mapping",
        help: "Keep one of them: tools disagree on which one counts, so what is checked may not be what is deployed.",
    },
    Rule {
        id: IAM_VALIDATION,
        severity: Severity::Medium,
        title: "The policy document does not validate",
        help: "Follow the validator's message: errors make AWS reject or misread the policy, warnings point at risky or dead statements.",
    },
    Rule {
        id: IAM_WILDCARD,
        severity: Severity::Critical,
        title: "Allow of every action, or every action of a service, on every resource",
        help: "List the actions the function calls and the ARNs it touches (e.g. dynamodb:GetItem on one table).",
    },
    Rule {
        id: IAM_PASSROLE,
        severity: Severity::High,
        title: "iam:PassRole on every role",
        help: "Name the roles that may be passed in Resource, and add an iam:PassedToService condition.",
    },
    Rule {
        id: IAM_NOT,
        severity: Severity::High,
        title: "Allow with NotAction or NotResource",
        help: "Allow lists of actions and resources instead; keep NotAction/NotResource for Deny statements.",
    },
    Rule {
        id: IAM_UNREAD,
        severity: Severity::Low,
        title: "A policy writ lint could not read (informational)",
        help: "Write the policy with jsonencode(...) or an aws_iam_policy_document, or with values defined in the module; or review it by hand and suppress with that reason.",
    },
    Rule {
        id: IAM_PERMISSIONS,
        severity: Severity::High,
        title: "Permissions-management actions on every resource",
        help: "Name the roles, users or policies the actions may change in Resource (arn:aws:iam::ACCOUNT:role/app-*), or move the statement out of the function's role.",
    },
    Rule {
        id: IAM_WRITE,
        severity: Severity::Medium,
        title: "Write actions on every resource",
        help: "Name the resources the function writes in Resource (the table, bucket/prefix, queue ARN); keep * for actions that accept nothing else.",
    },
    Rule {
        id: IAM_ESCALATION,
        severity: Severity::High,
        title: "The policy allows a privilege-escalation method",
        help: "Remove one action of the method, or restrict it: name the roles iam:PassRole may pass (with an iam:PassedToService condition), the policies, users and functions the IAM and Lambda actions may touch.",
    },
    Rule {
        id: IAM_DATA_READ,
        severity: Severity::Medium,
        title: "Reads of data (objects, secrets, parameters, items, decryption) on every resource",
        help: "Name the buckets, secrets, parameters, tables and keys the function reads in Resource.",
    },
    Rule {
        id: ROLE_SHARED,
        severity: Severity::Medium,
        title: "One execution role shared by several functions",
        help: "Give each function its own role with only the permissions that function needs.",
    },
    Rule {
        id: ENV_NAME,
        severity: Severity::High,
        title: "Secret-looking environment variable with a literal value",
        help: "Store the secret in Secrets Manager or SSM Parameter Store and put its ARN or name in the variable; read it at cold start.",
    },
    Rule {
        id: ENV_VALUE,
        severity: Severity::Critical,
        title: "Credential in an environment variable value",
        help: "Revoke the credential now, then store its replacement in Secrets Manager and pass only the secret's ARN.",
    },
    Rule {
        id: ENV_ENTROPY,
        severity: Severity::Medium,
        title: "High-entropy environment variable value (likely a secret)",
        help: "If it is a secret, move it to Secrets Manager; if not, suppress with a reason.",
    },
    Rule {
        id: ENV_SECRET_SOURCE,
        severity: Severity::High,
        title: "A secret reaches an environment variable from a NoEcho parameter's default or a Cognito client secret",
        help: "Keep the secret in Secrets Manager (a Cognito client secret can be copied there by the stack or a custom resource) and pass its ARN; give NoEcho parameters no default, or use a dynamic reference ({{resolve:secretsmanager:...}}).",
    },
    Rule {
        id: URL_AUTH,
        severity: Severity::High,
        title: "Function URL without authentication",
        help: "Use AWS_IAM auth; for a public webhook, verify a signature in the handler and suppress with that reason.",
    },
    Rule {
        id: CORS,
        severity: Severity::High,
        title: "CORS allows any origin together with credentials",
        help: "List the origins that may call with credentials (e.g. https://app.example.com).",
    },
    Rule {
        id: PERM_SOURCE,
        severity: Severity::High,
        title: "Service principal allowed without a source ARN or account",
        help: "Add source_arn / SourceArn (or source_account / SourceAccount, or an aws:SourceArn condition) so only your resource can use the service to invoke.",
    },
    Rule {
        id: PERM_PUBLIC,
        severity: Severity::Critical,
        title: "Anyone may invoke or use the resource (principal *)",
        help: "Name the principals (accounts, roles or services) that need access.",
    },
    Rule {
        id: LAYER,
        severity: Severity::Medium,
        title: "Layer from an account outside the allow list",
        help: "Use layers published by your accounts or a vetted publisher and add that account with --allow-layer-account.",
    },
    Rule {
        id: DLQ,
        severity: Severity::Low,
        title: "No dead-letter queue or on-failure destination",
        help: "Add dead_letter_config / DeadLetterConfig or an on-failure destination so failed asynchronous events are kept.",
    },
    Rule {
        id: TRACING,
        severity: Severity::Low,
        title: "X-Ray tracing not active",
        help: "Set tracing_config { mode = \"Active\" } / TracingConfig: {Mode: Active} (SAM: Tracing: Active).",
    },
    Rule {
        id: SG_EGRESS,
        severity: Severity::Medium,
        title: "Function security group egress open to the internet on all ports",
        help: "Allow only the ports and CIDRs the function calls (e.g. 443 to the VPC endpoints).",
    },
    Rule {
        id: KMS,
        severity: Severity::Low,
        title: "Environment variables not encrypted with a customer-managed KMS key",
        help: "Set kms_key_arn / KmsKeyArn to a key you control.",
    },
    Rule {
        id: CONCURRENCY,
        severity: Severity::Low,
        title: "No reserved concurrency",
        help: "Set reserved_concurrent_executions / ReservedConcurrentExecutions to cap what one function can consume (and cost).",
    },
    Rule {
        id: CODE_SIGNING,
        severity: Severity::Low,
        title: "No code signing configuration",
        help: "Attach a code signing config (code_signing_config_arn / CodeSigningConfigArn) that enforces signed packages.",
    },
    Rule {
        id: RUNTIME,
        severity: Severity::High,
        title: "Deprecated runtime",
        help: "Move to a supported runtime (python3.12+, nodejs20.x+, java21, dotnet8, ruby3.3, provided.al2023).",
    },
    Rule {
        id: SUPPRESS_REASON,
        severity: Severity::Medium,
        title: "Malformed suppression (no reason, or no known rule)",
        help: "Write why the finding is accepted after the rule id: `# writ:ignore WRIT-URL-001 public webhook, HMAC checked`.",
    },
    Rule {
        id: GW_PUBLIC,
        severity: Severity::High,
        title: "A public route in writ's gateway configuration",
        help: "Give the route auth = [\"mtls\", \"jwt\"] (or webhook, api-key); if it must be public, say why: `# writ:ignore WRIT-GW-001 <reason>`.",
    },
    Rule {
        id: GW_STALENESS,
        severity: Severity::Medium,
        title: "The gateway enforces stale state for over an hour",
        help: "Keep max_staleness to minutes (the default is 5m): past it the gateway refuses rather than enforcing old intentions and missing revocations.",
    },
    Rule {
        id: GW_METRICS,
        severity: Severity::Medium,
        title: "The gateway's metrics listen beyond loopback",
        help: "Set metrics_listen to 127.0.0.1:PORT and scrape it locally, or put it behind authentication.",
    },
    Rule {
        id: DEP_VULNERABLE,
        severity: Severity::Medium,
        title: "A package with a known vulnerability ships in the function (severity: the advisory's)",
        help: "Upgrade the package to a fixed version and regenerate the lock file; if the vulnerable code is not reachable, say why: `# writ:ignore WRIT-DEP-001 <reason>` (or a baseline).",
    },
    Rule {
        id: DEP_UNPINNED,
        severity: Severity::Low,
        title: "A requirement pins no version",
        help: "Pin it (`name==1.2.3`), e.g. with `pip freeze` or `pip-compile`, so what ships is what was checked.",
    },
    Rule {
        id: DEP_NO_DATABASE,
        severity: Severity::High,
        title: "No advisory database to check the lock file against",
        help: "Run `writ advisories update` (or pass --advisories-dir where the OSV data is).",
    },
];

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// Runtimes AWS has deprecated (no security patches), matched exactly or by prefix
/// where a family is gone (`dotnetcore`, `ruby2.`).
const DEPRECATED_RUNTIMES: &[&str] = &[
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "nodejs",
    "nodejs4.3",
    "nodejs4.3-edge",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "java8",
    "go1.x",
    "provided",
    "dotnet6",
    "dotnet5.0",
];
const DEPRECATED_PREFIXES: &[&str] = &["dotnetcore", "ruby2."];

/// True for a deprecated runtime name.
pub(crate) fn is_deprecated_runtime(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    DEPRECATED_RUNTIMES.contains(&n.as_str())
        || DEPRECATED_PREFIXES.iter().any(|p| n.starts_with(p))
}

/// Collects findings for one file.
pub(crate) struct Out {
    file: String,
    findings: Vec<Finding>,
}

impl Out {
    pub fn new(file: &str) -> Out {
        Out {
            file: file.to_string(),
            findings: Vec::new(),
        }
    }

    /// Adds a finding of `id` with the rule's severity.
    pub fn add(&mut self, id: &'static str, pos: Pos, subject: String, message: String) {
        let severity = rule(id).map_or(Severity::Medium, |r| r.severity);
        self.add_with(id, severity, pos, subject, message);
    }

    pub fn add_with(
        &mut self,
        id: &'static str,
        severity: Severity,
        pos: Pos,
        subject: String,
        message: String,
    ) {
        self.findings.push(Finding {
            rule: id,
            severity,
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            message,
            subject,
        });
    }

    /// Reports each key written twice in one mapping of `doc`.
    pub fn duplicate_keys(&mut self, doc: &Node) {
        let mut dups = Vec::new();
        doc.duplicate_keys(&mut dups);
        for d in dups {
            self.add(
                DUPLICATE_KEY,
                d.again,
                format!("duplicate-key.{}", d.name),
                format!(
                    "the key {:?} is written again in this mapping (first at line {}, column {}); writ lint reads the first, other tools may take the last",
                    d.name, d.first.line, d.first.column
                ),
            );
        }
    }

    pub fn parse_error(&mut self, e: SyntaxError) {
        self.add(PARSE, e.pos, "parse".into(), e.message);
    }

    pub fn into_findings(self) -> Vec<Finding> {
        self.findings
    }
}

/// Runs every rule over a file's model.
pub(crate) fn check(model: &Model, config: &Config, out: &mut Out) {
    for doc in &model.policies {
        policy::check(doc, out);
    }
    for p in &model.unread_policies {
        out.add(
            IAM_UNREAD,
            p.pos,
            format!("{}.unread", p.address),
            format!("{}: the policy was not checked: {}", p.address, p.why),
        );
    }
    for f in &model.functions {
        check_function(f, model, config, out);
    }
    shared_roles(model, out);
    for url in &model.urls {
        if let Some(auth) = &url.auth
            && auth
                .as_str()
                .is_some_and(|a| a.eq_ignore_ascii_case("NONE"))
        {
            out.add(
                URL_AUTH,
                auth.pos,
                format!("{}.auth", url.address),
                format!(
                    "{}: the function URL has authorization type NONE, so anyone on the internet can invoke the function",
                    url.address
                ),
            );
        }
    }
    for c in &model.cors {
        let any = c.origins.iter().any(|o| {
            o.as_str()
                .is_some_and(|s| s.trim().trim_matches('\'').trim() == "*")
        });
        if any && c.credentials.as_ref().is_some_and(Node::is_true) {
            out.add(
                CORS,
                c.pos,
                format!("{}.cors", c.address),
                format!(
                    "{}: CORS allows any origin (*) together with credentials",
                    c.address
                ),
            );
        }
    }
    for p in &model.permissions {
        let Some(principal) = &p.principal else {
            continue;
        };
        let Some(name) = principal.as_str() else {
            continue;
        };
        if name.trim() == "*" {
            out.add(
                PERM_PUBLIC,
                principal.pos,
                format!("{}.principal", p.address),
                format!(
                    "{}: the permission lets any principal (*) invoke the function",
                    p.address
                ),
            );
        } else if name.ends_with(".amazonaws.com") && !p.source_arn && !p.source_account {
            out.add(
                PERM_SOURCE,
                principal.pos,
                format!("{}.principal", p.address),
                format!(
                    "{}: {name} may invoke the function without a source ARN or source account, so another account's resource can use the service to call it (confused deputy)",
                    p.address
                ),
            );
        }
    }
    for rule in &model.egress_rules {
        if !rule.open {
            continue;
        }
        let Some(group) = &rule.group else { continue };
        if let Some(f) = function_with_group(model, group) {
            out.add(
                SG_EGRESS,
                rule.pos,
                format!("{}.egress", rule.address),
                format!(
                    "{}: egress to 0.0.0.0/0 on all ports for the security group of {}",
                    rule.address, f.address
                ),
            );
        }
    }
    for sg in &model.security_groups {
        let Some(f) = function_with_group(model, &sg.target) else {
            continue;
        };
        for pos in &sg.open_egress {
            out.add(
                SG_EGRESS,
                *pos,
                format!("{}.egress", sg.address),
                format!(
                    "{}: egress to 0.0.0.0/0 on all ports for the security group of {}",
                    sg.address, f.address
                ),
            );
        }
        if sg.default_open {
            out.add(
                SG_EGRESS,
                sg.pos,
                format!("{}.egress", sg.address),
                format!(
                    "{}: no SecurityGroupEgress, so CloudFormation keeps the default rule allowing all egress to 0.0.0.0/0, for the security group of {}",
                    sg.address, f.address
                ),
            );
        }
    }
}

/// An address without its instance (`aws_lambda_function.api[*]` is named
/// `aws_lambda_function.api` by references).
fn base_address(a: &str) -> &str {
    a.split_once('[').map_or(a, |(b, _)| b)
}

fn function_with_group<'m>(model: &'m Model, group: &str) -> Option<&'m Function> {
    model.functions.iter().find(|f| {
        f.security_groups
            .iter()
            .any(|g| g.identity().as_deref() == Some(group))
    })
}

fn check_function(f: &Function, model: &Model, config: &Config, out: &mut Out) {
    let a = &f.address;
    secrets::check_env(f, out);
    if !f.env.is_empty() && !f.kms_key {
        out.add(
            KMS,
            f.pos,
            format!("{a}.kms"),
            format!("{a}: environment variables are encrypted with the AWS-managed key only; set a customer-managed KMS key"),
        );
    }
    let tracing_active = f.tracing.as_ref().is_some_and(|t| {
        t.as_str().is_some_and(|s| s.eq_ignore_ascii_case("Active")) || t.is_unresolved()
    });
    if !tracing_active {
        let pos = f.tracing.as_ref().map_or(f.pos, |t| t.pos);
        out.add(
            TRACING,
            pos,
            format!("{a}.tracing"),
            format!("{a}: X-Ray tracing is not active"),
        );
    }
    let invoke_on_failure = model
        .invoke_configs
        .iter()
        .any(|c| c.on_failure && c.function.as_deref() == Some(base_address(a)));
    if !f.dlq && !invoke_on_failure {
        out.add(
            DLQ,
            f.pos,
            format!("{a}.dlq"),
            format!("{a}: no dead-letter queue or on-failure destination; failed asynchronous events are dropped"),
        );
    }
    if !f.reserved_concurrency {
        out.add(
            CONCURRENCY,
            f.pos,
            format!("{a}.concurrency"),
            format!(
                "{a}: no reserved concurrency; one function can exhaust the account's concurrency"
            ),
        );
    }
    if !f.code_signing {
        out.add(
            CODE_SIGNING,
            f.pos,
            format!("{a}.code_signing"),
            format!("{a}: no code signing config; unsigned code can be deployed"),
        );
    }
    if let Some(rt) = &f.runtime
        && let Some(name) = rt.as_str()
        && is_deprecated_runtime(name)
    {
        out.add(
            RUNTIME,
            rt.pos,
            format!("{a}.runtime"),
            format!("{a}: runtime {name} is deprecated and no longer receives security patches"),
        );
    }
    if !config.allow_layer_accounts.is_empty() {
        for layer in &f.layers {
            let Some(arn) = layer.as_str() else { continue };
            let account = arn.split(':').nth(4).unwrap_or("");
            if !config.allow_layer_accounts.iter().any(|x| x == account) {
                out.add(
                    LAYER,
                    layer.pos,
                    format!("{a}.layers.{arn}"),
                    format!(
                        "{a}: layer {arn} comes from account {} which is not in the allow list",
                        if account.is_empty() {
                            "(none)"
                        } else {
                            account
                        }
                    ),
                );
            }
        }
    }
}

/// Functions grouped by the role they name, for roles named by more than one.
fn shared_roles(model: &Model, out: &mut Out) {
    let mut by_role: BTreeMap<String, Vec<&Function>> = BTreeMap::new();
    for f in &model.functions {
        if let Some(id) = f.role.as_ref().and_then(Node::identity) {
            by_role.entry(id).or_default().push(f);
        }
    }
    for (role, fns) in by_role {
        if fns.len() < 2 {
            continue;
        }
        let names: Vec<&str> = fns.iter().map(|f| f.address.as_str()).collect();
        for f in &fns {
            let pos = f.role.as_ref().map_or(f.pos, |r| r.pos);
            out.add(
                ROLE_SHARED,
                pos,
                format!("{}.role", f.address),
                format!(
                    "{}: execution role {role} is shared by {} functions ({})",
                    f.address,
                    fns.len(),
                    names.join(", ")
                ),
            );
        }
    }
}

/// The roles a file's functions use.
pub(crate) fn role_uses(model: &Model) -> Vec<RoleUse> {
    model
        .functions
        .iter()
        .filter_map(|f| {
            let role = f.role.as_ref()?;
            Some(RoleUse {
                role: role.identity()?,
                function: f.address.clone(),
                pos: role.pos,
            })
        })
        .collect()
}

/// The code locations of a file's functions: literal paths (Terraform's
/// `${path.module}/` prefix dropped), and Terraform `filename`s that are the `output_path`
/// of a `data "archive_file"` traced to its `source_dir`. S3 locations and other values
/// known only at deploy time name no local code and are left out.
pub(crate) fn code_uses(model: &Model) -> Vec<crate::CodeUse> {
    fn path_of(n: &Node, archives: &[(String, Node)], depth: u8) -> Option<String> {
        match &n.kind {
            crate::node::Kind::Str(s) => {
                let s = s.strip_prefix("${path.module}/").unwrap_or(s);
                (!s.is_empty() && !s.contains("${") && !s.starts_with("s3://"))
                    .then(|| s.to_string())
            }
            crate::node::Kind::Unresolved {
                target: Some(t), ..
            } if depth == 0 => archives
                .iter()
                .find(|(a, _)| a == t)
                .and_then(|(_, dir)| path_of(dir, archives, 1)),
            crate::node::Kind::Unresolved { text, .. } => {
                let t = text.trim().trim_matches('"');
                let t = t.strip_prefix("${path.module}/")?;
                (!t.is_empty() && !t.contains("${")).then(|| t.to_string())
            }
            _ => None,
        }
    }
    let mut out = Vec::new();
    for f in &model.functions {
        if let Some(code) = &f.code
            && let Some(path) = path_of(code, &model.archives, 0)
        {
            out.push(crate::CodeUse {
                function: f.address.clone(),
                path,
                pos: code.pos,
            });
        }
    }
    for (address, src) in &model.code_sources {
        if let Some(path) = path_of(src, &model.archives, 0) {
            out.push(crate::CodeUse {
                function: address.clone(),
                path,
                pos: src.pos,
            });
        }
    }
    out
}
