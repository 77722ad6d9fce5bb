//! SSM Parameter Store's JSON 1.1 operations over writ's secrets: `GetParameter`,
//! `GetParameters`, `GetParametersByPath` and `PutParameter`.
//!
//! The parameter `/a/b` is the writ secret `a/b` (one leading `/` is dropped, so `a/b`
//! and `/a/b` name the same parameter; answers name it `/a/b`). A parameter's type
//! (`String` or `SecureString`) is kept in the secret's tags under [`TYPE_TAG`], set
//! when `PutParameter` creates it; a secret without that tag (one made through the
//! secrets API) is a `SecureString`. `StringList` is refused. A parameter's `Version`
//! counts the secret's versions made no later than its current one.
//!
//! `WithDecryption=false` on a `SecureString` is refused (`ValidationException`): AWS
//! answers with the KMS ciphertext, and writ hands out neither its ciphertext nor a
//! placeholder. Either way the read is decided as `secrets:GetSecretValue`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use writ_api::secrets::GetSecretRequest;

use super::dispatch::Context;
use super::protocol::{AwsError, decode_json};
use crate::service::secrets as domain;
use crate::state::AppState;

/// The tag that holds a parameter's type.
pub const TYPE_TAG: &str = "writ:ssm:type";

/// The most parameters a `GetParametersByPath` page holds, as AWS.
pub const MAX_PAGE: i64 = 10;

/// The writ secret an SSM parameter name is: one leading `/` dropped. Version and label
/// selectors (`name:3`, `name:label`) are refused.
pub fn secret_name(parameter: &str) -> Result<String, AwsError> {
    if parameter.contains(':') {
        return Err(AwsError::client(
            "ValidationException",
            format!(
                "Name {parameter:?}: parameter selectors (:version, :label) are not supported \
                 by writ; name the parameter alone"
            ),
        ));
    }
    let name = parameter.strip_prefix('/').unwrap_or(parameter);
    super::dispatch::check_name("Name", name, true)?;
    Ok(name.to_string())
}

/// A page token: the last name of the page before.
pub fn page_token(last: &str) -> String {
    URL_SAFE_NO_PAD.encode(last)
}

/// The last name of the page before, from its token.
pub fn open_page_token(token: &str) -> Result<String, AwsError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            AwsError::client(
                "InvalidNextToken",
                "NextToken: not a token this server gave out",
            )
        })
}

/// One page of the secrets under an SSM path.
pub struct Page {
    /// The secrets' names, in order.
    pub names: Vec<String>,
    /// The token of the next page, if there is one.
    pub next_token: Option<String>,
}

/// The page of live secrets under `path` (its direct children, or all below it when
/// `recursive`), by name, after `next_token`.
pub async fn page_under(
    state: &AppState,
    path: &str,
    recursive: bool,
    max_results: Option<i64>,
    next_token: Option<&str>,
) -> Result<Page, AwsError> {
    if !path.starts_with('/') || path.contains(':') {
        return Err(AwsError::client(
            "ValidationException",
            format!("Path {path:?}: a hierarchy beginning with /, e.g. /prod/orders"),
        ));
    }
    let max = max_results.unwrap_or(MAX_PAGE);
    if !(1..=MAX_PAGE).contains(&max) {
        return Err(AwsError::client(
            "ValidationException",
            format!("MaxResults: 1 to {MAX_PAGE}"),
        ));
    }
    let prefix = path.trim_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let after = next_token.map(open_page_token).transpose()?;
    let all = state
        .store
        .secrets()
        .await
        .map_err(|e| super::protocol::from_api_error(e, "ssm:GetParametersByPath", true))?;
    let mut under: Vec<String> = all
        .into_iter()
        .map(|s| s.name)
        .filter(|n| {
            n.strip_prefix(prefix.as_str())
                .is_some_and(|rest| recursive || !rest.contains('/'))
        })
        .collect();
    under.sort_unstable();
    let start = match &after {
        Some(a) => under
            .iter()
            .position(|n| n.as_str() > a.as_str())
            .unwrap_or(under.len()),
        None => 0,
    };
    let max = usize::try_from(max).unwrap_or(10);
    let names: Vec<String> = under[start..].iter().take(max).cloned().collect();
    let next_token = if start + names.len() < under.len() {
        names.last().map(|l| page_token(l))
    } else {
        None
    };
    Ok(Page { names, next_token })
}

/// A parameter's type, from its secret's tags.
fn type_of(tags: &str) -> String {
    serde_json::from_str::<serde_json::Map<String, Value>>(tags)
        .ok()
        .and_then(|m| m.get(TYPE_TAG).and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "SecureString".into())
}

/// One parameter, read (and audited) with the grant of its secret.
async fn parameter(
    ctx: &Context<'_>,
    name: &str,
    shown_as: &str,
    decrypt: bool,
) -> Result<Value, AwsError> {
    let (record, _) = domain::secret_meta(ctx.state, name)
        .await
        .map_err(|e| ctx.error(e))?;
    let kind = record
        .as_ref()
        .map(|r| type_of(&r.tags))
        .unwrap_or_else(|| "SecureString".into());
    if kind == "SecureString" && !decrypt && record.is_some() {
        return Err(AwsError::client(
            "ValidationException",
            format!(
                "parameter {shown_as} is a SecureString: writ hands out neither its ciphertext \
                 nor a placeholder; ask with WithDecryption=true (--with-decryption)"
            ),
        ));
    }
    let Some(auth) = ctx.for_secret("secrets:GetSecretValue", name) else {
        return Err(ctx.error(crate::api::ApiError::internal(
            "a parameter read was reached without its decision",
            name,
        )));
    };
    let v = domain::get_value(
        ctx.state,
        ctx.conn,
        &auth,
        &GetSecretRequest {
            name: name.to_string(),
            version_id: None,
            version_stage: None,
        },
    )
    .await
    .map_err(|e| ctx.error(e))?;
    let Some(value) = v.secret_string else {
        return Err(AwsError::client(
            "ValidationException",
            format!(
                "parameter {shown_as} is the writ secret {name}, which holds binary data; SSM \
                 parameters are text: read it with secretsmanager GetSecretValue"
            ),
        ));
    };
    let versions = ctx
        .state
        .store
        .secret_versions(name)
        .await
        .map_err(|e| ctx.error(e))?;
    let modified = versions
        .iter()
        .find(|x| x.version_id == v.version_id)
        .map_or(0, |x| x.created_at);
    let position = version_number(&versions, modified);
    Ok(json!({
        "Name": shown_as,
        "Type": kind,
        "Value": value,
        "Version": position,
        "LastModifiedDate": modified,
        "ARN": format!(
            "arn:aws:ssm:{}:{}:parameter/{name}",
            ctx.signed.region, ctx.state.aws.account_id
        ),
        "DataType": "text",
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct GetRequest {
    name: String,
    #[serde(default)]
    with_decryption: Option<bool>,
}

/// `GetParameter`.
pub async fn get_parameter(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let r: GetRequest = decode_json(body).map_err(validation)?;
    let name = secret_name(&r.name)?;
    let p = parameter(ctx, &name, &r.name, r.with_decryption.unwrap_or(false)).await?;
    Ok(json!({ "Parameter": p }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct GetManyRequest {
    names: Vec<String>,
    #[serde(default)]
    with_decryption: Option<bool>,
}

/// `GetParameters`: the ones that are not there are listed in `InvalidParameters`.
pub async fn get_parameters(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let r: GetManyRequest = decode_json(body).map_err(validation)?;
    let decrypt = r.with_decryption.unwrap_or(false);
    let mut found = Vec::new();
    let mut invalid = Vec::new();
    for shown in &r.names {
        let name = secret_name(shown)?;
        match parameter(ctx, &name, shown, decrypt).await {
            Ok(p) => found.push(p),
            Err(e) if e.code == "ParameterNotFound" => invalid.push(json!(shown)),
            Err(e) => return Err(e),
        }
    }
    Ok(json!({"Parameters": found, "InvalidParameters": invalid}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ByPathRequest {
    #[allow(dead_code)]
    path: String,
    #[serde(default)]
    #[allow(dead_code)]
    recursive: Option<bool>,
    #[serde(default)]
    with_decryption: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    max_results: Option<i64>,
    #[serde(default)]
    #[allow(dead_code)]
    next_token: Option<String>,
}

/// `GetParametersByPath`: the page the dispatcher listed and decided.
pub async fn get_parameters_by_path(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let r: ByPathRequest = decode_json(body).map_err(validation)?;
    let decrypt = r.with_decryption.unwrap_or(false);
    if let Some(listed) = ctx.auth.grant("secrets:ListSecrets") {
        ctx.state
            .audit
            .record(ctx.auth.event(ctx.state, ctx.conn, listed))
            .map_err(|e| ctx.error(e))?;
    }
    let mut found = Vec::new();
    for name in &ctx.names {
        found.push(parameter(ctx, name, &format!("/{name}"), decrypt).await?);
    }
    let mut answer = json!({ "Parameters": found });
    if let Some(t) = &ctx.next_token {
        answer["NextToken"] = json!(t);
    }
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct PutRequest {
    name: String,
    value: String,
    #[serde(default, rename = "Type")]
    kind: Option<String>,
    /// Read by the dispatcher, which decides on it.
    #[serde(default)]
    #[allow(dead_code)]
    overwrite: Option<bool>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    data_type: Option<String>,
    #[serde(default)]
    tier: Option<String>,
}

/// `PutParameter`: creates the parameter (its type kept in [`TYPE_TAG`]), or, with
/// `Overwrite`, puts a new version of it.
pub async fn put_parameter(ctx: &Context<'_>, body: &[u8]) -> Result<Value, AwsError> {
    let r: PutRequest = decode_json(body).map_err(validation)?;
    let name = secret_name(&r.name)?;
    if r.data_type.as_deref().is_some_and(|d| d != "text") {
        return Err(AwsError::client(
            "ValidationException",
            "DataType: writ's parameters are text",
        ));
    }
    if r.tier.as_deref().is_some_and(|t| t != "Standard") {
        return Err(AwsError::client(
            "ValidationException",
            "Tier: writ has one tier, Standard",
        ));
    }
    match r.kind.as_deref() {
        None | Some("String" | "SecureString") => {}
        Some("StringList") => {
            return Err(AwsError::client(
                "ValidationException",
                "Type StringList is not supported by writ; store the list as a String \
                 (comma-separated) and split it yourself",
            ));
        }
        Some(other) => {
            return Err(AwsError::client(
                "ValidationException",
                format!("Type {other:?}: String or SecureString"),
            ));
        }
    }
    if ctx.auth.allows("secrets:CreateSecret") {
        let Some(kind) = r.kind else {
            return Err(AwsError::client(
                "ValidationException",
                "Type: a new parameter needs one, String or SecureString",
            ));
        };
        let mut tags = serde_json::Map::new();
        tags.insert(TYPE_TAG.into(), Value::String(kind));
        domain::create_secret(
            ctx.state,
            ctx.conn,
            &ctx.auth,
            domain::NewSecret {
                name,
                value: r.value.into_bytes(),
                binary: false,
                description: r.description.unwrap_or_default(),
                tags,
                version_id: None,
            },
        )
        .await
        .map_err(|e| ctx.error(e))?;
        return Ok(json!({"Version": 1, "Tier": "Standard"}));
    }
    let (record, _) = domain::secret_meta(ctx.state, &name)
        .await
        .map_err(|e| ctx.error(e))?;
    let stored = record.map(|s| type_of(&s.tags)).unwrap_or_default();
    if r.kind.as_ref().is_some_and(|k| k != &stored) {
        return Err(AwsError::client(
            "ValidationException",
            format!(
                "Type: parameter {} is a {stored}; writ keeps the type it was created with",
                r.name
            ),
        ));
    }
    if r.description.is_some() {
        return Err(AwsError::client(
            "ValidationException",
            "Description: writ sets a parameter's description when it is created only",
        ));
    }
    domain::put_value(
        ctx.state,
        ctx.conn,
        &ctx.auth,
        &name,
        r.value.into_bytes(),
        false,
        None,
    )
    .await
    .map_err(|e| ctx.error(e))?;
    let versions = ctx
        .state
        .store
        .secret_versions(&name)
        .await
        .map_err(|e| ctx.error(e))?;
    // The new version is the newest.
    let position = versions.len();
    Ok(json!({"Version": position, "Tier": "Standard"}))
}

/// A parameter version's number: how many of the secret's versions are not newer than the
/// one made at `created_at` (versions made in the same second count as older: the one asked
/// about is the newest of them, as the current version is).
fn version_number(versions: &[crate::store::VersionRecord], created_at: i64) -> usize {
    versions
        .iter()
        .filter(|x| x.created_at <= created_at)
        .count()
}

/// A body error in SSM's vocabulary.
fn validation(e: AwsError) -> AwsError {
    AwsError::client("ValidationException", e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_map_to_secrets() {
        assert_eq!(secret_name("/prod/orders/api").unwrap(), "prod/orders/api");
        assert_eq!(secret_name("prod/orders/api").unwrap(), "prod/orders/api");
        assert!(secret_name("/prod/x:3").is_err());
        assert!(secret_name("//x").is_err());
        assert_eq!(open_page_token(&page_token("a/b")).unwrap(), "a/b");
        assert!(open_page_token("!!").is_err());
        assert_eq!(type_of(r#"{"writ:ssm:type":"String"}"#), "String");
        assert_eq!(type_of("{}"), "SecureString");
    }
}
