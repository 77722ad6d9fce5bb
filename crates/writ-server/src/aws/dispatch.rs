//! The Secrets Manager and SSM operations, declared as data, and the one dispatcher that
//! decides each request before its handler runs.
//!
//! Every operation in [`OPERATIONS`] says which of writ's actions it is decided as and
//! where its resource is named ([`Decide`]). The dispatcher ([`dispatch`]):
//!
//! 1. finds the operation by `X-Amz-Target` (an operation not in the table is refused
//!    unheard, `UnknownOperationException`);
//! 2. verifies the SigV4 signature with writ's credentials, for the operation's service
//!    ([`super::credentials::verify_request`]); a failure is audited and refused;
//! 3. reads the names the body gives (resolving ARNs) and decides each action on each
//!    resource by the same function decision the `/v1` secrets routes use (identity
//!    policies, permissions boundary, the secret's resource policy; default deny, an
//!    explicit deny wins), audited; a denial is an `AccessDeniedException` naming the AWS
//!    action and writ's action and resource;
//!
//! and only then runs the handler, with the grants in an [`Authorized`], through the same
//! domain functions as the `/v1` routes ([`crate::service::secrets`]). Those find their
//! grant there or answer 500 and do nothing. So a writ `Deny` cannot be got around
//! through the AWS names.

use std::sync::Arc;

use serde::Deserialize;

use super::credentials::{Received, Signed};
use super::protocol::{AwsError, decode_json};
use super::{secretsmanager, ssm};
use crate::api::access::{Authorized, Grant, decide_for_function};
use crate::state::AppState;
use crate::tls::ConnInfo;

/// The AWS service an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Secrets Manager: `X-Amz-Target: secretsmanager.*`, signed for `secretsmanager`.
    SecretsManager,
    /// SSM Parameter Store: `X-Amz-Target: AmazonSSM.*`, signed for `ssm`.
    Ssm,
}

impl Service {
    /// The `X-Amz-Target` prefix.
    pub fn target_prefix(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "AmazonSSM",
        }
    }

    /// The SigV4 service name and IAM action prefix.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "ssm",
        }
    }
}

/// Where an operation's resources are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// `SecretId`: a secret's name or ARN.
    SecretId,
    /// `Name`: a new secret's name (CreateSecret).
    Name,
    /// `SecretIdList`: each of up to 20 secrets (BatchGetSecretValue).
    SecretIdList,
    /// `Name`: an SSM parameter, `/a/b` being the secret `a/b`.
    Parameter,
    /// `Names`: each of up to 10 SSM parameters.
    Parameters,
    /// Always the same resource (`writ:secrets`).
    Fixed(&'static str),
}

/// What an operation decides before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decide {
    /// Each action, on each resource [`Named`] names.
    On(&'static [&'static str], Named),
    /// SSM `PutParameter`: `secrets:CreateSecret` on a parameter that does not exist (or
    /// without `Overwrite`), `secrets:PutSecretValue` on one that does with `Overwrite`.
    ParameterWrite,
    /// SSM `GetParametersByPath`: `secrets:ListSecrets` on `writ:secrets` (which names
    /// exist under the path), then `secrets:GetSecretValue` on each parameter of the page.
    ParametersByPath,
}

impl Decide {
    /// Every writ action this may decide.
    pub fn actions(self) -> Vec<&'static str> {
        match self {
            Decide::On(actions, _) => actions.to_vec(),
            Decide::ParameterWrite => vec!["secrets:CreateSecret", "secrets:PutSecretValue"],
            Decide::ParametersByPath => vec!["secrets:ListSecrets", "secrets:GetSecretValue"],
        }
    }
}

/// The handler of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// `secretsmanager.GetSecretValue`.
    GetSecretValue,
    /// `secretsmanager.BatchGetSecretValue`.
    BatchGetSecretValue,
    /// `secretsmanager.CreateSecret`.
    CreateSecret,
    /// `secretsmanager.PutSecretValue`.
    PutSecretValue,
    /// `secretsmanager.DescribeSecret`.
    DescribeSecret,
    /// `secretsmanager.ListSecrets`.
    ListSecrets,
    /// `secretsmanager.UpdateSecretVersionStage`.
    UpdateSecretVersionStage,
    /// `secretsmanager.DeleteSecret`.
    DeleteSecret,
    /// `secretsmanager.RestoreSecret`.
    RestoreSecret,
    /// `secretsmanager.RotateSecret`.
    RotateSecret,
    /// `secretsmanager.GetResourcePolicy`.
    GetResourcePolicy,
    /// `secretsmanager.PutResourcePolicy`.
    PutResourcePolicy,
    /// `AmazonSSM.GetParameter`.
    GetParameter,
    /// `AmazonSSM.GetParameters`.
    GetParameters,
    /// `AmazonSSM.GetParametersByPath`.
    GetParametersByPath,
    /// `AmazonSSM.PutParameter`.
    PutParameter,
}

/// One operation: its service and name, what it is decided as, and its handler.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// The service.
    pub service: Service,
    /// The operation's name (`GetSecretValue`), after the target's `SERVICE.`.
    pub name: &'static str,
    /// What is decided before the handler runs.
    pub decide: Decide,
    /// The handler.
    pub handler: Handler,
}

impl Operation {
    /// The IAM action AWS would decide (`secretsmanager:GetSecretValue`), for messages.
    pub fn aws_action(&self) -> String {
        format!("{}:{}", self.service.signing_name(), self.name)
    }
}

const GET: &[&str] = &["secrets:GetSecretValue"];

/// Every operation of the AWS-compatible APIs. An operation not here is refused.
pub static OPERATIONS: &[Operation] = &[
    op(
        Service::SecretsManager,
        "GetSecretValue",
        Decide::On(GET, Named::SecretId),
        Handler::GetSecretValue,
    ),
    op(
        Service::SecretsManager,
        "BatchGetSecretValue",
        Decide::On(GET, Named::SecretIdList),
        Handler::BatchGetSecretValue,
    ),
    op(
        Service::SecretsManager,
        "CreateSecret",
        Decide::On(&["secrets:CreateSecret"], Named::Name),
        Handler::CreateSecret,
    ),
    op(
        Service::SecretsManager,
        "PutSecretValue",
        Decide::On(&["secrets:PutSecretValue"], Named::SecretId),
        Handler::PutSecretValue,
    ),
    op(
        Service::SecretsManager,
        "DescribeSecret",
        Decide::On(&["secrets:DescribeSecret"], Named::SecretId),
        Handler::DescribeSecret,
    ),
    op(
        Service::SecretsManager,
        "ListSecrets",
        Decide::On(&["secrets:ListSecrets"], Named::Fixed("writ:secrets")),
        Handler::ListSecrets,
    ),
    // Choosing which version is current is as much power as putting a value.
    op(
        Service::SecretsManager,
        "UpdateSecretVersionStage",
        Decide::On(&["secrets:PutSecretValue"], Named::SecretId),
        Handler::UpdateSecretVersionStage,
    ),
    op(
        Service::SecretsManager,
        "DeleteSecret",
        Decide::On(&["secrets:DeleteSecret"], Named::SecretId),
        Handler::DeleteSecret,
    ),
    op(
        Service::SecretsManager,
        "RestoreSecret",
        Decide::On(&["secrets:RestoreSecret"], Named::SecretId),
        Handler::RestoreSecret,
    ),
    op(
        Service::SecretsManager,
        "RotateSecret",
        Decide::On(&["secrets:RotateSecret"], Named::SecretId),
        Handler::RotateSecret,
    ),
    // writ shows a resource policy in the secret's description.
    op(
        Service::SecretsManager,
        "GetResourcePolicy",
        Decide::On(&["secrets:DescribeSecret"], Named::SecretId),
        Handler::GetResourcePolicy,
    ),
    op(
        Service::SecretsManager,
        "PutResourcePolicy",
        Decide::On(&["secrets:PutResourcePolicy"], Named::SecretId),
        Handler::PutResourcePolicy,
    ),
    op(
        Service::Ssm,
        "GetParameter",
        Decide::On(GET, Named::Parameter),
        Handler::GetParameter,
    ),
    op(
        Service::Ssm,
        "GetParameters",
        Decide::On(GET, Named::Parameters),
        Handler::GetParameters,
    ),
    op(
        Service::Ssm,
        "GetParametersByPath",
        Decide::ParametersByPath,
        Handler::GetParametersByPath,
    ),
    op(
        Service::Ssm,
        "PutParameter",
        Decide::ParameterWrite,
        Handler::PutParameter,
    ),
];

const fn op(service: Service, name: &'static str, decide: Decide, handler: Handler) -> Operation {
    Operation {
        service,
        name,
        decide,
        handler,
    }
}

/// The operation `X-Amz-Target` names, if the table has it.
pub fn find(service: &str, name: &str) -> Option<&'static Operation> {
    OPERATIONS
        .iter()
        .find(|o| o.service.target_prefix() == service && o.name == name)
}

/// A request decided: who called, what it was allowed, and the secrets it names
/// (resolved from names, ARNs or parameter names), for its handler.
pub struct Context<'a> {
    /// The server's state.
    pub state: &'a Arc<AppState>,
    /// The connection.
    pub conn: &'a ConnInfo,
    /// The caller and its grants, decided before the handler.
    pub auth: Authorized,
    /// The signed caller's session and region.
    pub signed: Signed,
    /// The secrets the request names, in its order (none for a listing).
    pub names: Vec<String>,
    /// `GetParametersByPath`: the token of the next page, if there is one.
    pub next_token: Option<String>,
    /// The operation.
    pub operation: &'static Operation,
}

impl Context<'_> {
    /// The grants of `action` on the secret `name`, as an [`Authorized`] of its own (a
    /// batch audits each read with the decision that allowed it).
    pub fn for_secret(&self, action: &str, name: &str) -> Option<Authorized> {
        let resource = format!("writ:secret/{name}");
        let grant = self
            .auth
            .grants
            .iter()
            .find(|g| g.action == action && g.resource == resource)?;
        Some(Authorized {
            caller: self.auth.caller.clone(),
            grants: vec![grant.clone()],
        })
    }

    /// A refusal of writ's secrets domain, in this operation's vocabulary.
    pub fn error(&self, e: impl Into<crate::api::ApiError>) -> AwsError {
        super::protocol::from_api_error(
            e,
            &self.operation.aws_action(),
            self.operation.service == Service::Ssm,
        )
    }
}

/// The fields that name resources, whatever else the body holds (the handler reads the
/// rest, refusing what it does not take).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Names {
    #[serde(rename = "SecretId")]
    secret_id: Option<String>,
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "SecretIdList")]
    secret_id_list: Option<Vec<String>>,
    #[serde(rename = "Names")]
    names: Option<Vec<String>>,
    #[serde(rename = "Overwrite")]
    overwrite: Option<bool>,
    #[serde(rename = "Path")]
    path: Option<String>,
    #[serde(rename = "Recursive")]
    recursive: Option<bool>,
    #[serde(rename = "MaxResults")]
    max_results: Option<i64>,
    #[serde(rename = "NextToken")]
    next_token: Option<String>,
}

/// Decides a JSON 1.1 request and runs its handler; see the module's documentation.
pub async fn dispatch(
    state: &Arc<AppState>,
    conn: &ConnInfo,
    received: &Received<'_>,
    operation: &'static Operation,
) -> Result<serde_json::Value, AwsError> {
    let aws_action = operation.aws_action();
    let first = operation.decide.actions()[0];
    let signed = super::credentials::verify_request(
        state,
        conn,
        received,
        operation.service.signing_name(),
        first,
        &aws_action,
    )
    .await?;
    let caller = signed.caller.clone();
    let refs: Names = decode_json(received.body).map_err(|e| {
        AwsError::client(
            if operation.service == Service::Ssm {
                "ValidationException"
            } else {
                "InvalidParameterException"
            },
            e.message,
        )
    })?;
    let ssm = operation.service == Service::Ssm;
    let to_aws = |e: crate::api::ApiError| super::protocol::from_api_error(e, &aws_action, ssm);
    let mut wanted: Vec<(&'static str, String, Option<String>)> = Vec::new();
    let mut names = Vec::new();
    let mut next_token = None;
    let secret = |action: &'static str, name: &str| {
        (
            action,
            format!("writ:secret/{name}"),
            Some(name.to_string()),
        )
    };
    match operation.decide {
        Decide::On(actions, named) => {
            match named {
                Named::Fixed(_) => {}
                Named::SecretId => {
                    let id = refs
                        .secret_id
                        .as_deref()
                        .ok_or_else(|| missing("SecretId", ssm))?;
                    names.push(super::secretsmanager::resolve(state, id).await?);
                }
                Named::Name => {
                    let name = refs.name.as_deref().ok_or_else(|| missing("Name", ssm))?;
                    check_name("Name", name, ssm)?;
                    names.push(name.to_string());
                }
                Named::SecretIdList => {
                    let ids = refs.secret_id_list.as_deref().ok_or_else(|| {
                        AwsError::client(
                            "InvalidParameterException",
                            "SecretIdList: missing; writ's BatchGetSecretValue takes a list \
                                 of up to 20 secrets, not Filters",
                        )
                    })?;
                    if ids.is_empty() || ids.len() > 20 {
                        return Err(AwsError::client(
                            "InvalidParameterException",
                            format!("SecretIdList: 1 to 20 secrets, got {}", ids.len()),
                        ));
                    }
                    for id in ids {
                        let name = super::secretsmanager::resolve(state, id).await?;
                        if !names.contains(&name) {
                            names.push(name);
                        }
                    }
                }
                Named::Parameter => {
                    let name = refs.name.as_deref().ok_or_else(|| missing("Name", ssm))?;
                    names.push(ssm::secret_name(name)?);
                }
                Named::Parameters => {
                    let list = refs.names.as_deref().ok_or_else(|| missing("Names", ssm))?;
                    if list.is_empty() || list.len() > 10 {
                        return Err(AwsError::client(
                            "ValidationException",
                            format!("Names: 1 to 10 parameters, got {}", list.len()),
                        ));
                    }
                    for n in list {
                        let name = ssm::secret_name(n)?;
                        if !names.contains(&name) {
                            names.push(name);
                        }
                    }
                }
            }
            for action in actions {
                match named {
                    Named::Fixed(resource) => wanted.push((action, resource.to_string(), None)),
                    _ => {
                        for n in &names {
                            wanted.push(secret(action, n));
                        }
                    }
                }
            }
        }
        Decide::ParameterWrite => {
            let name = refs.name.as_deref().ok_or_else(|| missing("Name", ssm))?;
            let name = ssm::secret_name(name)?;
            let exists = crate::service::secrets::secret_meta(state, &name)
                .await
                .map_err(|e| super::protocol::from_api_error(e, &aws_action, ssm))?
                .0
                .is_some_and(|s| s.deleted_at.is_none());
            let action = if refs.overwrite == Some(true) && exists {
                "secrets:PutSecretValue"
            } else {
                "secrets:CreateSecret"
            };
            wanted.push(secret(action, &name));
            names.push(name);
        }
        Decide::ParametersByPath => {
            let path = refs.path.as_deref().ok_or_else(|| missing("Path", ssm))?;
            // Which names exist under the path is itself a listing.
            let listed = decide_for_function(
                state,
                conn,
                &caller,
                "secrets:ListSecrets",
                "writ:secrets".into(),
                None,
            )
            .await
            .map_err(to_aws)?;
            let page = ssm::page_under(
                state,
                path,
                refs.recursive.unwrap_or(false),
                refs.max_results,
                refs.next_token.as_deref(),
            )
            .await?;
            next_token = page.next_token;
            let mut grants = vec![listed];
            for n in &page.names {
                let (action, resource, name) = secret("secrets:GetSecretValue", n);
                grants.push(
                    decide_for_function(state, conn, &caller, action, resource, name)
                        .await
                        .map_err(to_aws)?,
                );
            }
            return run(
                state,
                conn,
                signed,
                caller,
                grants,
                page.names,
                next_token,
                operation,
                received.body,
            )
            .await;
        }
    }
    let mut grants: Vec<Grant> = Vec::with_capacity(wanted.len());
    for (action, resource, name) in wanted {
        grants.push(
            decide_for_function(state, conn, &caller, action, resource, name)
                .await
                .map_err(to_aws)?,
        );
    }
    run(
        state,
        conn,
        signed,
        caller,
        grants,
        names,
        next_token,
        operation,
        received.body,
    )
    .await
}

/// Runs the handler of a decided request.
#[allow(clippy::too_many_arguments)]
async fn run(
    state: &Arc<AppState>,
    conn: &ConnInfo,
    signed: Signed,
    caller: crate::api::access::Caller,
    grants: Vec<Grant>,
    names: Vec<String>,
    next_token: Option<String>,
    operation: &'static Operation,
    body: &[u8],
) -> Result<serde_json::Value, AwsError> {
    let ctx = Context {
        state,
        conn,
        auth: Authorized { caller, grants },
        signed,
        names,
        next_token,
        operation,
    };
    use Handler as H;
    match operation.handler {
        H::GetSecretValue => secretsmanager::get_secret_value(&ctx, body).await,
        H::BatchGetSecretValue => secretsmanager::batch_get_secret_value(&ctx, body).await,
        H::CreateSecret => secretsmanager::create_secret(&ctx, body).await,
        H::PutSecretValue => secretsmanager::put_secret_value(&ctx, body).await,
        H::DescribeSecret => secretsmanager::describe_secret(&ctx, body).await,
        H::ListSecrets => secretsmanager::list_secrets(&ctx, body).await,
        H::UpdateSecretVersionStage => secretsmanager::update_version_stage(&ctx, body).await,
        H::DeleteSecret => secretsmanager::delete_secret(&ctx, body).await,
        H::RestoreSecret => secretsmanager::restore_secret(&ctx, body).await,
        H::RotateSecret => secretsmanager::rotate_secret(&ctx, body).await,
        H::GetResourcePolicy => secretsmanager::get_resource_policy(&ctx, body).await,
        H::PutResourcePolicy => secretsmanager::put_resource_policy(&ctx, body).await,
        H::GetParameter => ssm::get_parameter(&ctx, body).await,
        H::GetParameters => ssm::get_parameters(&ctx, body).await,
        H::GetParametersByPath => ssm::get_parameters_by_path(&ctx, body).await,
        H::PutParameter => ssm::put_parameter(&ctx, body).await,
    }
}

fn missing(field: &str, ssm: bool) -> AwsError {
    AwsError::client(
        if ssm {
            "ValidationException"
        } else {
            "InvalidParameterException"
        },
        format!("{field}: missing"),
    )
}

/// A secret name, checked by writ's rules.
pub(crate) fn check_name(field: &str, name: &str, ssm: bool) -> Result<(), AwsError> {
    writ_secrets::model::check_name(name).map_err(|e| {
        AwsError::client(
            if ssm {
                "ValidationException"
            } else {
                "InvalidParameterException"
            },
            format!("{field}: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_in_the_table_once_and_decides_a_secrets_action() {
        let mut seen = std::collections::BTreeSet::new();
        for o in OPERATIONS {
            assert!(
                seen.insert((o.service.target_prefix(), o.name)),
                "{}",
                o.name
            );
            assert!(!o.decide.actions().is_empty());
            for a in o.decide.actions() {
                assert!(a.starts_with("secrets:"), "{}: {a}", o.name);
            }
            assert!(std::ptr::eq(
                find(o.service.target_prefix(), o.name).unwrap(),
                o
            ));
        }
        assert!(find("secretsmanager", "TagResource").is_none());
        assert!(find("AmazonSSM", "GetSecretValue").is_none());
    }
}
