//! Secrets Manager's JSON 1.1 operations over writ's secrets, through the same domain
//! functions as the `/v1` routes ([`crate::service::secrets`]). Each handler runs only after
//! [`super::dispatch`] decided its writ actions; it reads its body strictly (a parameter
//! writ does not support is refused by name) and answers in Secrets Manager's shape.
//!
//! ARNs are AWS's: `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX`, the region
//! the request was signed for, the account `writ server --aws-account-id`, and six
//! characters derived from the secret's name and creation time (so a secret deleted and
//! created again under its name gets another ARN, as in AWS).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use writ_api::secrets::GetSecretRequest;

use super::dispatch::Context;
use super::protocol::{AwsError, decode_json};
use crate::service::secrets as domain;
use crate::state::AppState;
use crate::store::SecretRecord;

/// The six characters after a secret's name in its ARN: from a hash of its name and
/// creation time.
pub fn suffix(name: &str, created_at: i64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("writ-secret-arn\n{name}\n{created_at}").as_bytes(),
    );
    d.as_ref()[..6]
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// A secret's ARN.
pub fn arn(account: &str, region: &str, record: &SecretRecord) -> String {
    format!(
        "arn:aws:secretsmanager:{region}:{account}:secret:{}-{}",
        record.name,
        suffix(&record.name, record.created_at)
    )
}

/// The secret a `SecretId` names: a name, a full ARN (`...:secret:NAME-XXXXXX`) or a
/// partial one (`...:secret:NAME`). An ARN of another account is refused.
pub async fn resolve(state: &AppState, id: &str) -> Result<String, AwsError> {
    let Some(rest) = id.strip_prefix("arn:") else {
        super::dispatch::check_name("SecretId", id, false)?;
        return Ok(id.to_string());
    };
    let parts: Vec<&str> = rest.splitn(6, ':').collect();
    let [partition, service, _region, account, kind, tail] = parts[..] else {
        return Err(bad_arn(id));
    };
    if partition != "aws" || service != "secretsmanager" || kind != "secret" {
        return Err(bad_arn(id));
    }
    if account != state.aws.account_id {
        return Err(AwsError::client(
            "ResourceNotFoundException",
            format!(
                "SecretId names account {account}; this writ server is account {}",
                state.aws.account_id
            ),
        ));
    }
    // NAME-XXXXXX when the six characters are the stored secret's; else a partial ARN.
    if let Some((name, six)) = tail.rsplit_once('-')
        && six.len() == 6
        && six.bytes().all(|b| b.is_ascii_alphanumeric())
        && writ_secrets::model::check_name(name).is_ok()
    {
        let (record, _) = domain::secret_meta(state, name)
            .await
            .map_err(|e| super::protocol::from_api_error(e, "secretsmanager", false))?;
        if record.is_some_and(|r| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                suffix(&r.name, r.created_at).as_bytes(),
                six.as_bytes(),
            ))
        }) {
            return Ok(name.to_string());
        }
    }
    super::dispatch::check_name("SecretId", tail, false)?;
    Ok(tail.to_string())
}

fn bad_arn(id: &str) -> AwsError {
    AwsError::client(
        "InvalidParameterException",
        format!(
            "SecretId {id:?}: not a secret's name or ARN \
             (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX)"
        ),
    )
}

/// The one secret the request names (resolved by the dispatcher).
fn the_name<'a>(ctx: &'a Context<'_>) -> Result<&'a str, AwsError> {
    ctx.names.first().map(String::as_str).ok_or_else(|| {
        AwsError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServiceError",
            "no secret reached the handler",
        )
    })
}

/// The ARN of the secret `name`, as stored now.
async fn arn_of(ctx: &Context<'_>, name: &str) -> Result<String, AwsError> {
    let (record, _) = domain::secret_meta(ctx.state, name)
        .await
        .map_err(|e| ctx.error(e))?;
    Ok(match record {
        Some(r) => arn(&ctx.state.aws.account_id, &ctx.signed.region, &r),
        None => format!(
            "arn:aws:secretsmanager:{}:{}:secret:{name}",
            ctx.signed.region, ctx.state.aws.account_id
        ),
    })
}

/// RFC 3339 as JSON 1.1's timestamps: seconds since the epoch.
fn epoch(unix: i64) -> Value {
    json!(unix)
}

fn epoch_of_rfc3339(text: &str) -> Value {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| json!(t.unix_timestamp()))
        .unwrap_or(Value::Null)
}

/// A `ClientRequestToken`: 32 to 64 characters of letters, digits and `-`, as AWS's.
fn request_token(token: Option<String>) -> Result<Option<String>, AwsError> {
    match token {
        Some(t)
            if (32..=64).contains(&t.len())
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            Ok(Some(t))
        }
        Some(_) => Err(AwsError::client(
            "InvalidParameterException",
            "ClientRequestToken: 32 to 64 letters, digits or '-'",
        )),
        None => Ok(None),
    }
}

/// A value from `SecretString` or `SecretBinary` (base64 on the wire), exactly one.
fn value(string: Option<String>, binary: Option<String>) -> Result<(Vec<u8>, bool), AwsError> {
    use base64::Engine;
    match (string, binary) {
        (Some(s), None) => Ok((s.into_bytes(), false)),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map(|v| (v, true))
            .map_err(|_| AwsError::client("InvalidParameterException", "SecretBinary: not base64")),
        _ => Err(AwsError::client(
            "InvalidParameterException",
            "give exactly one of SecretString and SecretBinary",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct GetRequest {
    #[allow(dead_code)]
    secret_id: String,
    #[serde(default)]
    version_id: Option<String>,
    #[serde(default)]
    version_stage: Option<String>,
}

/// The answer of one value.
async fn value_answer(
    ctx: &Context<'_>,
    auth: &crate::api::access::Authorized,
    name: &str,
    version_id: Option<String>,
    version_stage: Option<String>,
) -> Result<Value, AwsError> {
    let v = domain::get_value(
        ctx.state,
        ctx.conn,
        auth,
        &GetSecretRequest {
            name: name.to_string(),
            version_id,
            version_stage,
        },
    )
    .await
    .map_err(|e| ctx.error(e))?;
    let mut answer = json!({
        "ARN": arn_of(ctx, name).await?,
        "Name": v.name,
        "VersionId": v.version_id,
        "VersionStages": v.version_stages,
        "CreatedDate": epoch_of_rfc3339(&v.created_date),
    });
    if let Some(s) = &v.secret_string {
        answer["SecretString"] = json!(s);
    }
    if let Some(b) = &v.secret_binary {
        answer["SecretBinary"] = json!(b);
    }
    Ok(answer)
}

/// `GetSecretValue`.
pub async fn get_secret_value(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let r: GetRequest = decode_json(body)?;
    let name = the_name(ctx)?;
    value_answer(ctx, &ctx.auth, name, r.version_id, r.version_stage).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct BatchRequest {
    #[allow(dead_code)]
    secret_id_list: Vec<String>,
}

/// `BatchGetSecretValue` with `SecretIdList`: every secret was decided before; a secret
/// that is not there is reported in `Errors`, as AWS does.
pub async fn batch_get_secret_value(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let _: BatchRequest = decode_json(body)?;
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for name in &ctx.names {
        let Some(auth) = ctx.for_secret("secrets:GetSecretValue", name) else {
            return Err(ctx.error(crate::api::ApiError::internal(
                "a batch read was reached without its decision",
                name,
            )));
        };
        match value_answer(ctx, &auth, name, None, None).await {
            Ok(v) => values.push(v),
            Err(e) if e.status.is_client_error() => errors.push(json!({
                "SecretId": name,
                "ErrorCode": e.code,
                "Message": e.message,
            })),
            Err(e) => return Err(e),
        }
    }
    Ok(json!({"SecretValues": values, "Errors": errors}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct Tag {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct CreateRequest {
    #[allow(dead_code)]
    name: String,
    #[serde(default)]
    client_request_token: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    secret_string: Option<String>,
    #[serde(default)]
    secret_binary: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

/// `CreateSecret`: the first version's id is the `ClientRequestToken` (which AWS SDKs
/// fill in), as AWS does.
pub async fn create_secret(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let r: CreateRequest = decode_json(body)?;
    let name = the_name(ctx)?.to_string();
    let (value, binary) = value(r.secret_string, r.secret_binary)?;
    let mut tags = serde_json::Map::new();
    for t in r.tags {
        if t.key.starts_with("writ:") {
            return Err(AwsError::client(
                "InvalidParameterException",
                format!("Tags: {:?}: tag keys beginning writ: are writ's own", t.key),
            ));
        }
        tags.insert(t.key, Value::String(t.value));
    }
    let created = domain::create_secret(
        ctx.state,
        ctx.conn,
        &ctx.auth,
        domain::NewSecret {
            name: name.clone(),
            value,
            binary,
            description: r.description.unwrap_or_default(),
            tags,
            version_id: request_token(r.client_request_token)?,
        },
    )
    .await
    .map_err(|e| ctx.error(e))?;
    Ok(json!({
        "ARN": arn_of(ctx, &name).await?,
        "Name": created.name,
        "VersionId": created.version_id,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct PutRequest {
    #[allow(dead_code)]
    secret_id: String,
    #[serde(default)]
    client_request_token: Option<String>,
    #[serde(default)]
    secret_string: Option<String>,
    #[serde(default)]
    secret_binary: Option<String>,
    #[serde(default)]
    version_stages: Option<Vec<String>>,
}

/// `PutSecretValue`: the new version becomes `AWSCURRENT`.
pub async fn put_secret_value(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let r: PutRequest = decode_json(body)?;
    let name = the_name(ctx)?.to_string();
    if r.version_stages
        .as_ref()
        .is_some_and(|s| s != &[writ_secrets::model::AWSCURRENT])
    {
        return Err(AwsError::client(
            "InvalidParameterException",
            "VersionStages: writ makes a new value AWSCURRENT; give no VersionStages (or \
             [\"AWSCURRENT\"]), and move other labels with UpdateSecretVersionStage",
        ));
    }
    let (value, binary) = value(r.secret_string, r.secret_binary)?;
    let put = domain::put_value(
        ctx.state,
        ctx.conn,
        &ctx.auth,
        &name,
        value,
        binary,
        request_token(r.client_request_token)?,
    )
    .await
    .map_err(|e| ctx.error(e))?;
    Ok(json!({
        "ARN": arn_of(ctx, &name).await?,
        "Name": put.name,
        "VersionId": put.version_id,
        "VersionStages": put.version_stages,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct SecretIdOnly {
    #[allow(dead_code)]
    secret_id: String,
}

/// Tags as AWS lists them.
fn tag_list(record: &SecretRecord) -> Vec<Value> {
    let tags: BTreeMap<String, String> = serde_json::from_str(&record.tags).unwrap_or_default();
    tags.into_iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect()
}

/// `DescribeSecret`: metadata, versions and their stages; never a value.
pub async fn describe_secret(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let _: SecretIdOnly = decode_json(body)?;
    let name = the_name(ctx)?;
    let d = domain::describe_secret(ctx.state, ctx.conn, &ctx.auth, name)
        .await
        .map_err(|e| ctx.error(e))?;
    let mut stages = serde_json::Map::new();
    for v in &d.versions {
        let on: Vec<&str> = d.labels.of(&v.version_id);
        if !on.is_empty() {
            stages.insert(v.version_id.clone(), json!(on));
        }
    }
    let s = &d.secret;
    let mut answer = json!({
        "ARN": arn(&ctx.state.aws.account_id, &ctx.signed.region, s),
        "Name": s.name,
        "Description": s.description,
        "CreatedDate": epoch(s.created_at),
        "LastChangedDate": epoch(s.updated_at),
        "RotationEnabled": s.rotation.is_some(),
        "Tags": tag_list(s),
        "VersionIdsToStages": stages,
    });
    if let Some(next) = s.next_rotation_at {
        answer["NextRotationDate"] = epoch(next);
    }
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ListRequest {
    #[serde(default)]
    max_results: Option<i64>,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    sort_order: Option<String>,
}

/// `ListSecrets`: live secrets by name, in pages (`MaxResults` 1 to 100, default 100;
/// `NextToken` is the last name of the page before).
pub async fn list_secrets(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let r: ListRequest = decode_json(body)?;
    let max = r.max_results.unwrap_or(100);
    if !(1..=100).contains(&max) {
        return Err(AwsError::client(
            "InvalidParameterException",
            "MaxResults: 1 to 100",
        ));
    }
    let mut all = domain::list_secrets(ctx.state, ctx.conn, &ctx.auth)
        .await
        .map_err(|e| ctx.error(e))?;
    match r.sort_order.as_deref() {
        None | Some("asc") => {}
        Some("desc") => all.reverse(),
        Some(other) => {
            return Err(AwsError::client(
                "InvalidParameterException",
                format!("SortOrder {other:?}: asc or desc"),
            ));
        }
    }
    let start = match &r.next_token {
        None => 0,
        Some(t) => {
            let after = super::ssm::open_page_token(t)?;
            all.iter()
                .position(|s| s.name == after)
                .map(|i| i + 1)
                .ok_or_else(|| {
                    AwsError::client(
                        "InvalidNextTokenException",
                        "NextToken: the page it continues is gone; list again",
                    )
                })?
        }
    };
    let max = usize::try_from(max).unwrap_or(100);
    let page: Vec<&SecretRecord> = all.iter().skip(start).take(max).collect();
    let more = start + page.len() < all.len();
    let list: Vec<Value> = page
        .iter()
        .map(|s| {
            json!({
                "ARN": arn(&ctx.state.aws.account_id, &ctx.signed.region, s),
                "Name": s.name,
                "Description": s.description,
                "CreatedDate": epoch(s.created_at),
                "LastChangedDate": epoch(s.updated_at),
                "RotationEnabled": s.rotation.is_some(),
                "Tags": tag_list(s),
            })
        })
        .collect();
    let mut answer = json!({ "SecretList": list });
    if more && let Some(last) = page.last() {
        answer["NextToken"] = json!(super::ssm::page_token(&last.name));
    }
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct StageRequest {
    #[allow(dead_code)]
    secret_id: String,
    version_stage: String,
    #[serde(default)]
    move_to_version_id: Option<String>,
    #[serde(default)]
    remove_from_version_id: Option<String>,
}

/// `UpdateSecretVersionStage`.
pub async fn update_version_stage(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let r: StageRequest = decode_json(body)?;
    let name = the_name(ctx)?;
    domain::move_stage(
        ctx.state,
        ctx.conn,
        &ctx.auth,
        name,
        &r.version_stage,
        r.move_to_version_id,
        r.remove_from_version_id,
    )
    .await
    .map_err(|e| ctx.error(e))?;
    Ok(json!({"ARN": arn_of(ctx, name).await?, "Name": name}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DeleteRequest {
    #[allow(dead_code)]
    secret_id: String,
    #[serde(default)]
    recovery_window_in_days: Option<i64>,
    #[serde(default)]
    force_delete_without_recovery: Option<bool>,
}

/// `DeleteSecret`: restorable for `RecoveryWindowInDays` (7 to 30, 30 by default).
pub async fn delete_secret(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let r: DeleteRequest = decode_json(body)?;
    if r.force_delete_without_recovery == Some(true) {
        return Err(AwsError::client(
            "InvalidParameterException",
            "ForceDeleteWithoutRecovery: writ keeps a deleted secret restorable for 7 to 30 \
             days (RecoveryWindowInDays) and does not delete at once",
        ));
    }
    let name = the_name(ctx)?;
    let arn = arn_of(ctx, name).await?;
    let deleted = domain::delete_secret(
        ctx.state,
        ctx.conn,
        &ctx.auth,
        name,
        r.recovery_window_in_days.unwrap_or(30),
    )
    .await
    .map_err(|e| ctx.error(e))?;
    Ok(json!({
        "ARN": arn,
        "Name": deleted.name,
        "DeletionDate": epoch_of_rfc3339(&deleted.deletion_date),
    }))
}

/// `RestoreSecret`.
pub async fn restore_secret(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let _: SecretIdOnly = decode_json(body)?;
    let name = the_name(ctx)?;
    domain::restore_secret(ctx.state, ctx.conn, &ctx.auth, name)
        .await
        .map_err(|e| ctx.error(e))?;
    Ok(json!({"ARN": arn_of(ctx, name).await?, "Name": name}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RotationRules {
    #[serde(default)]
    automatically_after_days: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RotateRequest {
    #[allow(dead_code)]
    secret_id: String,
    #[serde(default)]
    #[allow(dead_code)]
    client_request_token: Option<String>,
    #[serde(default, rename = "RotationLambdaARN")]
    rotation_lambda_arn: Option<String>,
    #[serde(default)]
    rotation_rules: Option<RotationRules>,
    #[serde(default)]
    rotate_immediately: Option<bool>,
}

/// `RotateSecret`, with the secret's writ rotation hook (set with `writ secret rotate
/// --hook-url/--hook-command`): a Lambda ARN is refused. `AutomaticallyAfterDays` sets
/// the schedule.
pub async fn rotate_secret(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let r: RotateRequest = decode_json(body)?;
    if r.rotation_lambda_arn.is_some() {
        return Err(AwsError::client(
            "InvalidParameterException",
            "RotationLambdaARN: writ rotates with its own hooks, not Lambda functions; set \
             one with `writ secret rotate NAME --hook-url URL` or `--hook-command NAME`",
        ));
    }
    let every = match r.rotation_rules.and_then(|x| x.automatically_after_days) {
        Some(d) if (1..=1000).contains(&d) => Some(format!("{d}d")),
        Some(_) => {
            return Err(AwsError::client(
                "InvalidParameterException",
                "RotationRules.AutomaticallyAfterDays: 1 to 1000",
            ));
        }
        None => None,
    };
    let name = the_name(ctx)?;
    let rotated = domain::rotate_secret(
        ctx.state,
        ctx.conn,
        &ctx.auth,
        domain::Rotate {
            name: name.to_string(),
            hook: None,
            every,
            rotate_now: r.rotate_immediately,
        },
    )
    .await
    .map_err(|e| ctx.error(e))?;
    let mut answer = json!({"ARN": arn_of(ctx, name).await?, "Name": name});
    if let Some(v) = rotated.version_id {
        answer["VersionId"] = json!(v);
    }
    Ok(answer)
}

/// `GetResourcePolicy`, decided as `secrets:DescribeSecret` (the description shows it).
pub async fn get_resource_policy(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let _: SecretIdOnly = decode_json(body)?;
    let name = the_name(ctx)?;
    let d = domain::describe_secret(ctx.state, ctx.conn, &ctx.auth, name)
        .await
        .map_err(|e| ctx.error(e))?;
    let mut answer = json!({
        "ARN": arn(&ctx.state.aws.account_id, &ctx.signed.region, &d.secret),
        "Name": name,
    });
    if let Some(p) = &d.secret.resource_policy {
        answer["ResourcePolicy"] = json!(p);
    }
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct PolicyRequest {
    #[allow(dead_code)]
    secret_id: String,
    resource_policy: String,
    #[serde(default)]
    block_public_policy: Option<bool>,
}

/// `PutResourcePolicy`: writ's policy language, principals by SPIFFE ID.
pub async fn put_resource_policy(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let r: PolicyRequest = decode_json(body)?;
    if r.block_public_policy == Some(true) {
        return Err(AwsError::client(
            "InvalidParameterException",
            "BlockPublicPolicy: writ has no public principals to block; leave it out",
        ));
    }
    let name = the_name(ctx)?;
    domain::put_resource_policy(
        ctx.state,
        ctx.conn,
        &ctx.auth,
        name,
        Some(r.resource_policy),
    )
    .await
    .map_err(|e| ctx.error(e))?;
    Ok(json!({"ARN": arn_of(ctx, name).await?, "Name": name}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_suffixes_are_stable_and_change_with_the_secret() {
        let a = suffix("prod/orders-db", 1_700_000_000);
        assert_eq!(a.len(), 6);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(a, suffix("prod/orders-db", 1_700_000_000));
        assert_ne!(a, suffix("prod/orders-db", 1_700_000_001));
        assert!(request_token(Some("x".into())).is_err());
        assert!(request_token(Some("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0".into())).is_ok());
    }
}
