//! The access-level rules: what the actions an identity policy allows on unrestricted
//! resources can do, judged by AWS's access levels ([`crate::access`]).
//!
//! - WRIT-IAM-005: Permissions management actions on every resource.
//! - WRIT-IAM-006: Write actions on every resource.
//! - WRIT-IAM-007: a privilege-escalation method the policy allows in full.
//! - WRIT-IAM-008: reads of data (objects, secrets, parameters, items, decryption) on every
//!   resource.
//!
//! Statements naming a principal (resource policies) are left out: their `*` is the
//! resource the policy is attached to. Patterns WRIT-IAM-001 reports (`*`, `service:*` on
//! `*`) are not reported again, and actions that accept only `*` as resource
//! (`logs:CreateLogDelivery`, `xray:PutTraceSegments`) are never findings.

use crate::access::{self, Action, Level};
use crate::policy::Stmt;
use crate::rules::{self, Out};

/// Reads that hand out data, exfiltration paths when allowed on every resource.
const DATA_READS: &[&str] = &[
    "s3:GetObject",
    "s3:GetObjectVersion",
    "secretsmanager:GetSecretValue",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
    "kms:Decrypt",
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:PartiQLSelect",
];

/// The well-known privilege-escalation methods (Rhino Security Labs' list, as Cloudsplaining
/// and Parliament check it): a name, the actions that together escalate, and what they let
/// the holder do.
const ESCALATIONS: &[(&str, &[&str], &str)] = &[
    (
        "CreateNewPolicyVersion",
        &["iam:CreatePolicyVersion"],
        "write a new default version of any managed policy, with any permissions",
    ),
    (
        "SetExistingDefaultPolicyVersion",
        &["iam:SetDefaultPolicyVersion"],
        "make an older, broader version of any managed policy the default",
    ),
    (
        "CreateAccessKey",
        &["iam:CreateAccessKey"],
        "create access keys for any user, administrators included",
    ),
    (
        "CreateLoginProfile",
        &["iam:CreateLoginProfile"],
        "set a console password for any user that has none",
    ),
    (
        "UpdateLoginProfile",
        &["iam:UpdateLoginProfile"],
        "change any user's console password",
    ),
    (
        "AttachUserPolicy",
        &["iam:AttachUserPolicy"],
        "attach any managed policy (AdministratorAccess) to a user",
    ),
    (
        "AttachGroupPolicy",
        &["iam:AttachGroupPolicy"],
        "attach any managed policy (AdministratorAccess) to a group",
    ),
    (
        "AttachRolePolicy",
        &["iam:AttachRolePolicy"],
        "attach any managed policy (AdministratorAccess) to a role",
    ),
    (
        "PutUserPolicy",
        &["iam:PutUserPolicy"],
        "write any inline policy into a user",
    ),
    (
        "PutGroupPolicy",
        &["iam:PutGroupPolicy"],
        "write any inline policy into a group",
    ),
    (
        "PutRolePolicy",
        &["iam:PutRolePolicy"],
        "write any inline policy into a role, its own included",
    ),
    (
        "AddUserToGroup",
        &["iam:AddUserToGroup"],
        "add a user to any group, administrators included",
    ),
    (
        "UpdateAssumeRolePolicy",
        &["iam:UpdateAssumeRolePolicy", "sts:AssumeRole"],
        "rewrite any role's trust policy to trust itself, then assume the role",
    ),
    (
        "PassRoleToNewLambda",
        &["iam:PassRole", "lambda:CreateFunction"],
        "create a function running as any role and run code with its permissions",
    ),
    (
        "PassRoleToExistingLambda",
        &["iam:PassRole", "lambda:UpdateFunctionConfiguration"],
        "give any existing function any role",
    ),
    (
        "EditExistingLambdaCode",
        &["lambda:UpdateFunctionCode"],
        "replace the code of any function and run it with that function's role",
    ),
    (
        "PassRoleToNewEC2",
        &["iam:PassRole", "ec2:RunInstances"],
        "start an instance with any role and read its credentials",
    ),
    (
        "PassRoleToCloudFormation",
        &["iam:PassRole", "cloudformation:CreateStack"],
        "have CloudFormation create anything as any role",
    ),
    (
        "PassRoleToNewGlueDevEndpoint",
        &["iam:PassRole", "glue:CreateDevEndpoint"],
        "create a Glue endpoint running as any role and log into it",
    ),
    (
        "UpdateExistingGlueDevEndpoint",
        &["glue:UpdateDevEndpoint"],
        "add an SSH key to any Glue endpoint and use its role",
    ),
    (
        "PassRoleToNewDataPipeline",
        &["iam:PassRole", "datapipeline:CreatePipeline"],
        "run a pipeline as any role",
    ),
    (
        "PassRoleToNewCodeBuild",
        &["iam:PassRole", "codebuild:CreateProject"],
        "run a build as any role",
    ),
    (
        "PassRoleToNewSageMakerNotebook",
        &["iam:PassRole", "sagemaker:CreateNotebookInstance"],
        "run a notebook as any role",
    ),
    (
        "PassRoleToNewECSTask",
        &["iam:PassRole", "ecs:RunTask"],
        "run a container as any role",
    ),
];

/// A statement the rules look at, with the resources that make it unrestricted.
struct Open<'a> {
    st: &'a Stmt,
    name: &'a str,
    subject: &'a str,
    /// The unrestricted resources (`*`, `arn:aws:logs:*:*:*`).
    resources: Vec<&'a str>,
    /// `Resource` names `*` itself, where WRIT-IAM-001 and WRIT-IAM-002 report.
    star: bool,
}

impl Open<'_> {
    /// The unrestricted resource that applies to `action` (`service:Name`): `*`, or an ARN
    /// of the action's service (`iam:PutRolePolicy` on `arn:aws:logs:*:*:*` grants
    /// nothing).
    fn covering(&self, action: &str) -> Option<&str> {
        let service = action.split(':').next().unwrap_or("");
        self.resources.iter().copied().find(|r| {
            let mut parts = r.trim().split(':');
            match (parts.next(), parts.nth(1)) {
                (Some("arn"), Some(s)) => {
                    s.trim_matches('*').is_empty() || s.eq_ignore_ascii_case(service)
                }
                _ => true,
            }
        })
    }
}

/// True when a pattern is one WRIT-IAM-001 reports on `*`.
fn iam001_pattern(p: &str) -> bool {
    let p = p.trim();
    p == "*" || p.ends_with(":*")
}

/// True for a resource that names no particular resource: `*`, or an ARN whose resource
/// part is only wildcards, optionally after a resource type (`arn:aws:logs:*:*:*`,
/// `arn:aws:s3:::*`, `arn:aws:dynamodb:*:*:table/*`, `arn:aws:iam::123456789012:role/*`).
pub(crate) fn unrestricted(resource: &str) -> bool {
    let r = resource.trim();
    if r.bytes().all(|b| b == b'*') {
        return !r.is_empty();
    }
    let parts: Vec<&str> = r.splitn(6, ':').collect();
    let [arn, _partition, service, _region, _account, res] = parts.as_slice() else {
        return false;
    };
    if !arn.eq_ignore_ascii_case("arn") {
        return false;
    }
    if service.trim_matches('*').is_empty() {
        return true;
    }
    let segments: Vec<&str> = res.split(['/', ':']).collect();
    let stars = |s: &[&str]| {
        s.iter()
            .all(|x| !x.is_empty() && x.bytes().all(|b| b == b'*'))
    };
    if stars(&segments) {
        return true;
    }
    // S3 ARNs have no resource type: `bucket/*` is one bucket.
    !service.eq_ignore_ascii_case("s3")
        && segments.len() >= 2
        && !segments[0].contains(['*', '?'])
        && stars(&segments[1..])
}

/// Checks the statements of one policy document.
pub(crate) fn check(statements: &[(Stmt, String, String)], out: &mut Out) {
    let open: Vec<Open> = statements
        .iter()
        .filter(|(st, _, _)| st.allow && !st.not_action && !st.not_resource && !st.names_principal)
        .filter_map(|(st, name, subject)| {
            let resources: Vec<&str> = st
                .resources
                .iter()
                .map(String::as_str)
                .filter(|r| unrestricted(r))
                .collect();
            (!resources.is_empty()).then(|| Open {
                st,
                name,
                subject,
                resources,
                star: st.resources.iter().any(|r| r.trim() == "*"),
            })
        })
        .collect();
    if open.is_empty() {
        return;
    }
    let escalations = escalations(&open, out);
    for o in &open {
        statement(o, &escalations, out);
    }
}

/// Reports the escalation methods allowed in full; returns the single actions so reported.
fn escalations(open: &[Open], out: &mut Out) -> Vec<&'static str> {
    let mut reported = Vec::new();
    for (method, actions, what) in ESCALATIONS {
        let mut grants: Vec<(&Open, &str, &str)> = Vec::new();
        for action in *actions {
            let grant = open.iter().find_map(|o| {
                let resource = o.covering(action)?;
                o.st.actions
                    .iter()
                    .find(|p| access::matches(p, action))
                    .map(|p| (o, p.as_str(), resource))
            });
            match grant {
                Some(g) => grants.push(g),
                None => break,
            }
        }
        if grants.len() < actions.len() {
            continue;
        }
        // All of it through `*` / `service:*` on `*`: WRIT-IAM-001 says it louder.
        if grants.iter().all(|(o, p, _)| o.star && iam001_pattern(p)) {
            continue;
        }
        if actions.len() == 1 {
            reported.push(actions[0]);
        }
        let (first, _, _) = grants[0];
        let how: Vec<String> = grants
            .iter()
            .zip(actions.iter())
            .map(|((_, p, r), a)| {
                if p.eq_ignore_ascii_case(a) {
                    format!("{a} on {r}")
                } else {
                    format!("{a} (through {p}) on {r}")
                }
            })
            .collect();
        out.add(
            rules::IAM_ESCALATION,
            first.st.pos,
            format!("{}.escalation.{method}", first.subject),
            format!(
                "{} allows privilege escalation ({method}): {} let the holder {what}",
                first.name,
                how.join(" with ")
            ),
        );
    }
    reported
}

/// What one action pattern reaches on the statement's unrestricted resources.
struct Reach<'a> {
    pattern: &'a str,
    perms: Vec<&'static Action>,
    writes: Vec<&'static Action>,
    reads: Vec<&'static Action>,
}

/// Reports what the action patterns of an unrestricted statement reach: one finding per
/// rule and statement, naming each pattern and what it reaches.
fn statement(o: &Open, escalations: &[&str], out: &mut Out) {
    let is_read = |a: &Action| DATA_READS.iter().any(|d| d.eq_ignore_ascii_case(a.name));
    let covered = |a: &Action| {
        escalations.iter().any(|e| e.eq_ignore_ascii_case(a.name))
            || (o.star && a.name.eq_ignore_ascii_case("iam:PassRole"))
    };
    let mut reaches = Vec::new();
    for p in &o.st.actions {
        if o.star && iam001_pattern(p) {
            continue;
        }
        let reached: Vec<&'static Action> = access::expand(p)
            .into_iter()
            .filter(|a| !a.star_only && o.covering(a.name).is_some())
            .collect();
        let pick = |level: Level| -> Vec<&'static Action> {
            reached
                .iter()
                .copied()
                .filter(|a| a.level == level && !is_read(a) && !covered(a))
                .collect()
        };
        reaches.push(Reach {
            pattern: p,
            perms: pick(Level::Permissions),
            writes: pick(Level::Write),
            reads: reached.iter().copied().filter(|a| is_read(a)).collect(),
        });
    }
    // The resource named in messages: `*` if the statement has it, else the first.
    let res = if o.star { "*" } else { o.resources[0] };
    let name = o.name;
    let perms: Vec<String> = reaches
        .iter()
        .filter(|r| !r.perms.is_empty())
        .map(|r| reach(r.pattern, &r.perms))
        .collect();
    if !perms.is_empty() {
        out.add(
            rules::IAM_PERMISSIONS,
            o.st.pos,
            format!("{}.permissions", o.subject),
            format!(
                "{name} allows Permissions management on every resource ({res}): {}; the holder can change who may do what",
                perms.join(", ")
            ),
        );
    }
    // A pattern that reaches permissions management is reported there, not again here.
    let writes: Vec<String> = reaches
        .iter()
        .filter(|r| r.perms.is_empty() && !r.writes.is_empty())
        .map(|r| reach(r.pattern, &r.writes))
        .collect();
    if !writes.is_empty() {
        out.add(
            rules::IAM_WRITE,
            o.st.pos,
            format!("{}.write", o.subject),
            format!(
                "{name} allows Write on every resource ({res}): {}",
                writes.join(", ")
            ),
        );
    }
    let reads: Vec<String> = reaches
        .iter()
        .filter(|r| !r.reads.is_empty())
        .map(|r| {
            let names: Vec<&str> = r.reads.iter().map(|a| a.name).collect();
            if names.len() == 1 && names[0].eq_ignore_ascii_case(r.pattern.trim()) {
                names[0].to_string()
            } else {
                format!("{} (reaches {})", r.pattern, names.join(", "))
            }
        })
        .collect();
    if !reads.is_empty() {
        out.add(
            rules::IAM_DATA_READ,
            o.st.pos,
            format!("{}.read", o.subject),
            format!(
                "{name} allows reading data from every resource ({res}): {}",
                reads.join(", ")
            ),
        );
    }
}

/// `iam:CreateRole`, or `iam:*Role* (12 actions: iam:AttachRolePolicy, iam:CreateRole,
/// iam:DeleteRole and 9 more)`.
fn reach(p: &str, actions: &[&Action]) -> String {
    if let [a] = actions
        && a.name.eq_ignore_ascii_case(p.trim())
    {
        return a.name.to_string();
    }
    let shown: Vec<&str> = actions.iter().take(3).map(|a| a.name).collect();
    let more = if actions.len() > 3 {
        format!(" and {} more", actions.len() - 3)
    } else {
        String::new()
    };
    let plural = if actions.len() == 1 { "" } else { "s" };
    format!(
        "{p} ({} action{plural}: {}{more})",
        actions.len(),
        shown.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::unrestricted;

    #[test]
    fn unrestricted_resources() {
        for r in [
            "*",
            "arn:aws:logs:*:*:*",
            "arn:aws:s3:::*",
            "arn:aws:s3:::*/*",
            "arn:aws:dynamodb:*:*:table/*",
            "arn:aws:iam::123456789012:role/*",
            "arn:aws:lambda:us-east-1:123456789012:function:*",
            "arn:aws:*:*:*:*",
        ] {
            assert!(unrestricted(r), "{r}");
        }
        for r in [
            "arn:aws:s3:::my-bucket/*",
            "arn:aws:s3:::my-bucket",
            "arn:aws:dynamodb:us-east-1:123456789012:table/Orders",
            "arn:aws:logs:*:*:log-group:/aws/lambda/api:*",
            "arn:aws:dynamodb:*:*:table/Orders/index/*",
            "arn:aws:iam::123456789012:role/app-*",
            "",
        ] {
            assert!(!unrestricted(r), "{r}");
        }
    }
}
