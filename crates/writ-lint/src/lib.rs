//! `writ lint`: finds the classic serverless security mistakes in Terraform,
//! CloudFormation/SAM templates and IAM policy JSON before they are deployed.
//!
//! The core is pure: [`lint_source`] takes a file's name and text and returns its
//! findings; the renderers in [`render`] turn findings into text, JSON, SARIF or JUnit;
//! [`baseline`] and the inline suppressions decide what is still reported. Only [`walk`]
//! touches the file system.
//!
//! ```
//! use writ_lint::{Config, lint_source};
//!
//! let policy = r#"{"Version": "2012-10-17",
//!   "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;
//! let report = lint_source("role.json", policy, &Config::default());
//! assert_eq!(report.findings[0].rule, "WRIT-IAM-001");
//! assert_eq!((report.findings[0].line, report.findings[0].column), (2, 17));
//! ```

mod access;
pub mod baseline;
mod cfn;
pub mod deps;
pub mod depscan;
mod gateway;
mod json;
mod model;
mod node;
mod policy;
pub mod positioned;
mod privilege;
pub mod render;
pub mod rules;
mod sam;
mod secrets;
mod suppress;
mod terraform;
mod tfjson;
pub mod walk;
mod yaml;

use std::fmt;
use std::path::Path;

pub use node::Pos;
pub use rules::{RULES, Rule, rule};

/// How serious a finding is. Ordered: `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Hardening advice: worth doing, rarely exploitable on its own.
    Low,
    /// Weakens a defence; exploitable together with another mistake.
    Medium,
    /// Exploitable on its own by someone who can reach or run the function.
    High,
    /// Hands out the account or a credential.
    Critical,
}

impl Severity {
    /// All severities, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lowercase name: `low`, `medium`, `high`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Reads a lowercase name.
    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The file formats writ lint reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// Terraform HCL (`.tf`).
    Terraform,
    /// A CloudFormation or SAM template in YAML.
    CloudFormationYaml,
    /// A CloudFormation or SAM template in JSON.
    CloudFormationJson,
    /// A standalone IAM policy document in JSON.
    IamJson,
    /// writ's own gateway configuration (TOML).
    GatewayToml,
    /// A lock file of function code, read by `writ lint --deps`.
    LockFile,
}

impl FileFormat {
    /// A short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Terraform => "terraform",
            FileFormat::CloudFormationYaml => "cloudformation-yaml",
            FileFormat::CloudFormationJson => "cloudformation-json",
            FileFormat::IamJson => "iam-json",
            FileFormat::GatewayToml => "writ-gateway",
            FileFormat::LockFile => "lock-file",
        }
    }
}

/// Settings that change what the rules report.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// AWS account ids whose Lambda layers may be used. Empty: the layer rule is off,
    /// because without a list there is no way to tell a trusted publisher from another.
    pub allow_layer_accounts: Vec<String>,
}

/// One problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule id, e.g. `WRIT-IAM-001`; see [`rule`] for its title and fix hint.
    pub rule: &'static str,
    /// How serious this finding is (the rule's severity, except for policy validation,
    /// where errors rank higher than warnings).
    pub severity: Severity,
    /// The file, as given to [`lint_source`].
    pub file: String,
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
    /// What is wrong, naming the resource. Never contains a secret value.
    pub message: String,
    /// What the finding is about, independent of line numbers (the resource address and
    /// the detail, e.g. `aws_lambda_function.api.environment.DB_PASSWORD`); baselines key
    /// findings by it.
    pub subject: String,
}

impl Finding {
    /// A stable fingerprint of the rule, the file and the subject: it survives lines moving.
    pub fn fingerprint(&self) -> String {
        baseline::fingerprint(self.rule, &self.file, &self.subject)
    }

    /// True for a file that could not be read or parsed.
    pub fn is_parse_error(&self) -> bool {
        self.rule == rules::PARSE
    }
}

/// The result of linting one file.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    /// The file, as given.
    pub file: String,
    /// What the file was read as; `None` when it is none of the supported kinds (for
    /// example a `package.json`), in which case it has no findings.
    pub format: Option<FileFormat>,
    /// The findings that remain after inline suppressions, in line order.
    pub findings: Vec<Finding>,
    /// Findings silenced by a `writ:ignore` comment.
    pub suppressed: usize,
    /// Why the file was not checked, when it is none of the kinds writ lint reads (a
    /// `package.json`, a CI workflow, a `.sln.template`): it has no findings then. A file
    /// that is not even valid YAML or JSON is skipped too when it does not look like a
    /// template or policy (no `AWSTemplateFormatVersion`, `Resources` or `Transform` key,
    /// no `Statement`); one that does is a parse error.
    pub skipped: Option<String>,
    /// Execution roles used by the file's functions: `(role, function address, line, column)`.
    /// Lets the caller find roles shared across the files of one Terraform module.
    pub role_uses: Vec<RoleUse>,
    /// Where the file's functions take their code from (SAM `CodeUri`, CloudFormation
    /// `Code`, Terraform `filename` or a module's `source_path`), so `writ lint --deps`
    /// can tell which function a lock file ships in.
    pub code_uses: Vec<CodeUse>,
}

/// One function's code location, as written in its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeUse {
    /// The function's address (`Orders`, `aws_lambda_function.api`, `module.orders`).
    pub function: String,
    /// The path, relative to the template's directory (`src/orders/`, `build/api.zip`).
    pub path: String,
    /// Where it is written.
    pub pos: Pos,
}

/// One function's use of an execution role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleUse {
    /// The role, as a stable name: `aws_iam_role.lambda`, a logical id, or an ARN.
    pub role: String,
    /// The function's address.
    pub function: String,
    /// Where the role is named.
    pub pos: Pos,
}

/// A syntax error in a scanned file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Extensions read as Terraform.
const TF_EXT: &[&str] = &["tf"];
/// Extensions read as YAML.
const YAML_EXT: &[&str] = &["yaml", "yml"];
/// Extensions read as JSON.
const JSON_EXT: &[&str] = &["json"];
/// Extensions whose content decides (CloudFormation's `.template`).
const TEMPLATE_EXT: &[&str] = &["template"];
/// Extensions read as TOML: writ's gateway configuration, when the content says so.
const TOML_EXT: &[&str] = &["toml"];

/// True when writ lint reads files with this name (by extension).
pub fn is_candidate(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    [TF_EXT, YAML_EXT, JSON_EXT, TEMPLATE_EXT, TOML_EXT]
        .iter()
        .any(|list| list.iter().any(|e| e.eq_ignore_ascii_case(ext)))
}

/// Lints one file's text. `file` names it in findings and decides the format by
/// extension (`.tf` and `.tf.json`; `.yaml`/`.yml`; `.json`; `.template` by content); the content then
/// decides between a CloudFormation template, an IAM policy and neither.
pub fn lint_source(file: &str, text: &str, config: &Config) -> FileReport {
    let ext = Path::new(file)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut report = FileReport {
        file: file.to_string(),
        ..FileReport::default()
    };
    let mut out = rules::Out::new(file);
    let mut unparsed = None;
    let mut tf_json = None;
    let model = if file.to_ascii_lowercase().ends_with(".tf.json") {
        report.format = Some(FileFormat::Terraform);
        match tfjson::rewrite(text).and_then(|r| {
            let read = terraform::read(&r.hcl).map_err(|e| SyntaxError {
                pos: r.map(e.pos.line),
                message: e.message,
            });
            tf_json = Some(r);
            read
        }) {
            Ok(model) => Some(model),
            Err(e) => {
                out.parse_error(e);
                None
            }
        }
    } else if TF_EXT.contains(&ext.as_str()) {
        report.format = Some(FileFormat::Terraform);
        match terraform::read(text) {
            Ok(model) => Some(model),
            Err(e) => {
                out.parse_error(e);
                None
            }
        }
    } else if YAML_EXT.contains(&ext.as_str()) {
        read_yaml(text, &mut report, &mut out, &mut unparsed)
    } else if JSON_EXT.contains(&ext.as_str()) {
        read_json(text, &mut report, &mut out, &mut unparsed)
    } else if TEMPLATE_EXT.contains(&ext.as_str()) {
        if text.trim_start().starts_with('{') {
            read_json(text, &mut report, &mut out, &mut unparsed)
        } else {
            read_yaml(text, &mut report, &mut out, &mut unparsed)
        }
    } else if TOML_EXT.contains(&ext.as_str()) {
        if gateway::is_gateway_config(text) {
            report.format = Some(FileFormat::GatewayToml);
            gateway::check(text, &mut out);
        }
        None
    } else {
        None
    };
    if report.format.is_none() {
        report.skipped = Some(match unparsed {
            Some(e) => format!(
                "not a template or policy, and not valid YAML or JSON either (line {}, column {}: {})",
                e.pos.line, e.pos.column, e.message
            ),
            None => "not a CloudFormation/SAM template, IAM policy or writ gateway configuration"
                .to_string(),
        });
    }
    if let Some(model) = model {
        rules::check(&model, config, &mut out);
        report.role_uses = rules::role_uses(&model);
        report.code_uses = rules::code_uses(&model);
    }
    let mut findings = out.into_findings();
    if let Some(r) = &tf_json {
        // Findings point at the rewritten HCL; move them to the JSON key they came from.
        for f in findings.iter_mut().filter(|f| f.rule != rules::PARSE) {
            let p = r.map(f.line);
            (f.line, f.column) = (p.line, p.column);
        }
        for u in &mut report.role_uses {
            u.pos = r.map(u.pos.line);
        }
        for u in &mut report.code_uses {
            u.pos = r.map(u.pos.line);
        }
    }
    if report.format == Some(FileFormat::Terraform)
        || report.format == Some(FileFormat::CloudFormationYaml)
        || report.format == Some(FileFormat::GatewayToml)
    {
        let (kept, suppressed, extra) = suppress::apply(file, text, findings);
        findings = kept;
        findings.extend(extra);
        report.suppressed = suppressed;
    }
    findings.sort_by(|a, b| {
        (a.line, a.column, a.rule, &a.subject).cmp(&(b.line, b.column, b.rule, &b.subject))
    });
    findings.dedup();
    report.findings = findings;
    report
}

/// Keys whose presence makes an unparsable file a template (or policy) with a syntax
/// error rather than some other file.
const TEMPLATE_KEYS: &[&str] = &[
    "AWSTemplateFormatVersion",
    "Resources",
    "Transform",
    "Statement",
];

/// True when `text` has one of [`TEMPLATE_KEYS`] written as a key: at the start of a line
/// or after `{`, `,` or a quote, and followed (after an optional closing quote and blanks)
/// by `:`. One pass per key; no parsing.
fn looks_like_template(text: &str) -> bool {
    TEMPLATE_KEYS.iter().any(|key| {
        text.match_indices(key).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let key_start =
                before.is_none_or(|c| matches!(c, '\n' | ' ' | '\t' | '"' | '\'' | '{' | ','));
            let after = text[i + key.len()..].trim_start_matches(['"', '\'']);
            key_start && after.trim_start_matches([' ', '\t']).starts_with(':')
        })
    })
}

/// Records a parse error, or, for a file that does not look like a template or policy,
/// keeps it in `unparsed` so the file is skipped rather than failed.
fn parse_failed(
    text: &str,
    e: SyntaxError,
    format: FileFormat,
    report: &mut FileReport,
    out: &mut rules::Out,
    unparsed: &mut Option<SyntaxError>,
) {
    if looks_like_template(text) {
        report.format = Some(format);
        out.parse_error(e);
    } else {
        *unparsed = Some(e);
    }
}

fn read_yaml(
    text: &str,
    report: &mut FileReport,
    out: &mut rules::Out,
    unparsed: &mut Option<SyntaxError>,
) -> Option<model::Model> {
    match yaml::parse(text) {
        Ok(docs) => {
            let mut found = None;
            for doc in &docs {
                if cfn::is_template(doc) {
                    report.format = Some(FileFormat::CloudFormationYaml);
                    out.duplicate_keys(doc);
                    let mut m = found.take().unwrap_or_default();
                    cfn::read(doc, &mut m);
                    found = Some(m);
                }
            }
            found
        }
        Err(e) => {
            parse_failed(
                text,
                e,
                FileFormat::CloudFormationYaml,
                report,
                out,
                unparsed,
            );
            None
        }
    }
}

fn read_json(
    text: &str,
    report: &mut FileReport,
    out: &mut rules::Out,
    unparsed: &mut Option<SyntaxError>,
) -> Option<model::Model> {
    match json::parse(text) {
        Ok(Some(doc)) => {
            if cfn::is_template(&doc) {
                report.format = Some(FileFormat::CloudFormationJson);
                out.duplicate_keys(&doc);
                let mut m = model::Model::default();
                cfn::read(&doc, &mut m);
                Some(m)
            } else if doc.get("Statement").is_some() {
                report.format = Some(FileFormat::IamJson);
                out.duplicate_keys(&doc);
                let mut m = model::Model::default();
                m.policies.push(model::PolicyDoc {
                    address: "policy".into(),
                    doc,
                    kind: None,
                    text: Some(text.to_string()),
                    attached: Default::default(),
                });
                Some(m)
            } else {
                None
            }
        }
        Ok(None) => None,
        Err(e) => {
            parse_failed(text, e, FileFormat::IamJson, report, out, unparsed);
            None
        }
    }
}

/// Glob match as IAM does it (`*` any run, `?` one character).
pub(crate) fn string_matches(pattern: &str, text: &str) -> bool {
    writ_policy::string_like(pattern, text)
}
