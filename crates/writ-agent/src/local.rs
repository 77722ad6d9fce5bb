//! What the agent serves on localhost, to the function beside it:
//!
//! - `GET /secretsmanager/get?secretId=NAME`: the secret's current value, in the response
//!   shape of the AWS Parameters and Secrets Lambda Extension, from the cache; with
//!   `versionId=ID` or `versionStage=LABEL`, that version (one read by id is kept);
//! - `GET /v1/jwt?aud=AUDIENCE`: a JWT-SVID for the audience (cached until a minute
//!   before it expires);
//! - `GET /v1/svid`: the X.509-SVID and the trust bundle (the key only as a file, with
//!   `--svid-dir`);
//! - `GET /systemsmanager/parameters/get?name=NAME&withDecryption=true`: a parameter, as
//!   the AWS extension serves it (the server's SSM `GetParameter` answer), kept 5 minutes;
//! - `GET /v1/aws/credentials`: writ's temporary AWS credentials for the function, in the
//!   answer shape of the container credentials endpoint that every AWS SDK reads
//!   (`AWS_CONTAINER_CREDENTIALS_FULL_URI`), kept until 20 minutes before they expire.
//!
//! Every request must carry `X-Aws-Parameters-Secrets-Token` equal to the agent's token
//! (in Lambda, the function's `AWS_SESSION_TOKEN`), compared in constant time, as the AWS
//! extension requires: a request the function was tricked into sending elsewhere does not
//! carry it. The credentials endpoint takes the token in `Authorization` instead, as the
//! SDKs send `AWS_CONTAINER_AUTHORIZATION_TOKEN`. Before that, [`crate::guard`] refuses a request not addressed to this
//! listener (421) or sent by a browser (403), so no web page can read a secret through it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use writ_api::aws::AwsCredentialsRequest;
use writ_api::endpoints::{GetSecretValue, IssueAwsCredentials, MintJwtSvid};
use writ_api::identity::{Audience, MintJwtRequest};
use writ_api::secrets::GetSecretRequest;
use writ_client::api::ApiCallError;
use writ_client::fetch::HttpFetcher;
use writ_client::secrets::{CacheError, SecretCache};

use writ_client::identity::Identity;

use crate::guard::OwnAddress;

/// The header the AWS extension requires.
pub const TOKEN_HEADER: &str = "x-aws-parameters-secrets-token";

/// Where the agent serves AWS credentials (`AWS_CONTAINER_CREDENTIALS_FULL_URI`).
pub const CREDENTIALS_PATH: &str = "/v1/aws/credentials";

/// Credentials are fetched again once fewer than this many seconds of them are left:
/// botocore refreshes 15 minutes before expiry, so it is never handed credentials it would
/// throw away at once.
const CREDENTIALS_MARGIN: i64 = 20 * 60;

/// The localhost endpoints' state.
pub struct Local {
    /// The function's identity.
    pub identity: Arc<Identity>,
    /// Its secrets.
    pub secrets: SecretCache<HttpFetcher>,
    /// The token callers must present.
    pub token: String,
    /// Set when the function's identity is revoked: every endpoint refuses from then on.
    pub revoked: Arc<std::sync::atomic::AtomicBool>,
    jwts: Mutex<HashMap<String, (String, i64)>>,
    /// The function's AWS credentials while they have more than [`CREDENTIALS_MARGIN`] left:
    /// the answer, and when they expire (Unix seconds).
    aws: tokio::sync::Mutex<Option<(Value, i64)>>,
    /// Parameters read, by name (with its selector) and `withDecryption`: the server's
    /// answers, and when read.
    parameters: Mutex<HashMap<(String, String), (Value, std::time::Instant)>>,
    /// Versions read by id, by secret name and version id: their answers, and when read.
    versions: Mutex<HashMap<(String, String), (Value, std::time::Instant)>>,
}

/// The most versions read by id the agent keeps.
const MAX_KEPT_VERSIONS: usize = 1000;
/// How long a version read by id is served without asking the server again (which also
/// decides again whether the function may still read it): the AWS extension's default TTL.
const VERSION_TTL: std::time::Duration = std::time::Duration::from_secs(300);

impl Local {
    /// The endpoints for `identity`, with `secrets` and the caller token.
    pub fn new(
        identity: Arc<Identity>,
        secrets: SecretCache<HttpFetcher>,
        token: String,
        revoked: Arc<std::sync::atomic::AtomicBool>,
    ) -> Local {
        Local {
            identity,
            secrets,
            token,
            revoked,
            jwts: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
            aws: tokio::sync::Mutex::new(None),
            parameters: Mutex::new(HashMap::new()),
        }
    }
}

fn answer(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// An answer that carries a credential: never stored by a cache on the way.
fn answer_private(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut r = answer(status, body);
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    answer(status, &json!({"error": {"message": message.into()}}))
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// Percent-decoding for query values (`prod%2Forders-db`); a `%` not followed by two
/// hex digits stays as it is.
fn decode(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match (hex(bytes[i + 1]), bytes.get(i + 2).and_then(|b| hex(*b))) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Local {
    async fn handle(&self, own: OwnAddress, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if let Err(refused) = own.check(req.headers(), req.uri()) {
            return error(refused.status, refused.message);
        }
        // The SDKs' container credentials provider sends its token in `Authorization`.
        let credentials = req.uri().path() == CREDENTIALS_PATH;
        let presented = req
            .headers()
            .get(if credentials {
                hyper::header::AUTHORIZATION.as_str()
            } else {
                TOKEN_HEADER
            })
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default();
        if presented.is_empty() {
            return error(
                StatusCode::UNAUTHORIZED,
                if credentials {
                    "missing the Authorization header: set AWS_CONTAINER_AUTHORIZATION_TOKEN to the agent's caller token (in Lambda: AWS_SESSION_TOKEN)"
                } else {
                    "missing the X-Aws-Parameters-Secrets-Token header (in Lambda: the value of AWS_SESSION_TOKEN)"
                },
            );
        }
        if presented.len() != self.token.len()
            || !bool::from(presented.ct_eq(self.token.as_bytes()))
        {
            return error(
                StatusCode::FORBIDDEN,
                "X-Aws-Parameters-Secrets-Token does not match",
            );
        }
        if self.revoked.load(std::sync::atomic::Ordering::Acquire) {
            return error(
                StatusCode::FORBIDDEN,
                "this function's identity was revoked; the agent serves nothing more",
            );
        }
        if req.method() != hyper::Method::GET {
            return error(StatusCode::METHOD_NOT_ALLOWED, "only GET");
        }
        let q = query(&req);
        match req.uri().path() {
            "/secretsmanager/get" => self.secret(&q).await,
            "/v1/jwt" => self.jwt(&q).await,
            CREDENTIALS_PATH => self.aws_credentials().await,
            "/systemsmanager/parameters/get" => self.parameter(&q).await,
            "/v1/svid" => {
                let s = self.identity.svid();
                answer(
                    StatusCode::OK,
                    &json!({"spiffeId": s.spiffe_id, "x509Svid": s.cert_pem,
                            "x509Bundle": s.bundle_pem, "notAfter": s.not_after}),
                )
            }
            other => error(StatusCode::NOT_FOUND, format!("no endpoint {other}")),
        }
    }

    async fn secret(&self, q: &HashMap<String, String>) -> Response<Full<Bytes>> {
        let Some(name) = q.get("secretId") else {
            return error(StatusCode::BAD_REQUEST, "secretId: required");
        };
        let version_id = q.get("versionId").filter(|v| !v.is_empty());
        let version_stage = q
            .get("versionStage")
            .filter(|s| !s.is_empty() && s.as_str() != "AWSCURRENT");
        if version_id.is_some() || version_stage.is_some() {
            return self.secret_version(name, version_id, version_stage).await;
        }
        match self.secrets.get(name).await {
            Ok(v) => {
                let mut body = json!({
                    "ARN": format!("writ:secret/{name}"),
                    "Name": name,
                    "VersionId": v.version_id(),
                    "VersionStages": ["AWSCURRENT"],
                });
                match v.as_str() {
                    Some(s) => body["SecretString"] = json!(s),
                    None => {
                        use base64::Engine;
                        body["SecretBinary"] =
                            json!(base64::engine::general_purpose::STANDARD.encode(v.as_bytes()));
                    }
                }
                answer(StatusCode::OK, &body)
            }
            Err(CacheError::Refused { source, .. }) => {
                let status = match &source {
                    writ_client::secrets::FetchError::Refused { status, .. } => {
                        StatusCode::from_u16(*status).unwrap_or(StatusCode::FORBIDDEN)
                    }
                    _ => StatusCode::FORBIDDEN,
                };
                error(status, source.to_string())
            }
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        }
    }

    /// A version other than the current one, by id or by staging label. A version's value
    /// never changes, so one read by id is kept for [`VERSION_TTL`]; a label moves with
    /// rotations, so it is read from the server each time.
    async fn secret_version(
        &self,
        name: &str,
        version_id: Option<&String>,
        version_stage: Option<&String>,
    ) -> Response<Full<Bytes>> {
        let key = version_id.map(|id| (name.to_owned(), id.clone()));
        if let Some(key) = &key
            && version_stage.is_none()
            && let Some((body, _)) = self
                .versions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(key)
                .filter(|(_, at)| at.elapsed() < VERSION_TTL)
        {
            return answer(StatusCode::OK, body);
        }
        let api = match self.identity.api() {
            Ok(c) => c,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e),
        };
        let sent = api
            .send::<GetSecretValue>(&GetSecretRequest {
                name: name.to_owned(),
                version_id: version_id.cloned(),
                version_stage: version_stage.cloned(),
            })
            .await;
        let value = match sent {
            Ok(v) => v,
            Err(e) => return refused(e),
        };
        let mut body = json!({
            "ARN": format!("writ:secret/{name}"),
            "Name": value.name,
            "VersionId": value.version_id,
            "VersionStages": value.version_stages,
            "CreatedDate": value.created_date,
        });
        match (value.secret_string, value.secret_binary) {
            (Some(s), _) => body["SecretString"] = json!(s),
            (None, Some(b)) => body["SecretBinary"] = json!(b),
            (None, None) => {}
        }
        if let Some(key) = key
            && version_stage.is_none()
        {
            let mut versions = self
                .versions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if versions.len() >= MAX_KEPT_VERSIONS {
                versions.clear();
            }
            versions.insert(key, (body.clone(), std::time::Instant::now()));
        }
        answer(StatusCode::OK, &body)
    }

    /// The function's AWS credentials from writ (`POST /v1/aws/credentials` over mTLS), in
    /// the container credentials endpoint's shape; one request at a time asks the server.
    async fn aws_credentials(&self) -> Response<Full<Bytes>> {
        match self.writ_credentials().await {
            Ok(answer) => answer_private(StatusCode::OK, &answer),
            Err(refusal) => refusal,
        }
    }

    /// The credentials kept, or new ones from the server when fewer than
    /// [`CREDENTIALS_MARGIN`] seconds of them are left.
    async fn writ_credentials(&self) -> Result<Value, Response<Full<Bytes>>> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut kept = self.aws.lock().await;
        if let Some((answer, expires)) = kept.as_ref()
            && *expires - CREDENTIALS_MARGIN > now
        {
            return Ok(answer.clone());
        }
        let api = self
            .identity
            .api()
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e))?;
        let issued = api
            .send::<IssueAwsCredentials>(&AwsCredentialsRequest::default())
            .await
            .map_err(refused)?;
        let expires = time::OffsetDateTime::parse(
            &issued.expiration,
            &time::format_description::well_known::Rfc3339,
        )
        .map_or(now, |t| t.unix_timestamp());
        let answer = json!({
            "AccessKeyId": issued.access_key_id,
            "SecretAccessKey": issued.secret_access_key,
            "Token": issued.session_token,
            "Expiration": issued.expiration,
            "RoleArn": issued.role_arn,
        });
        *kept = Some((answer.clone(), expires));
        Ok(answer)
    }

    /// `GET /systemsmanager/parameters/get?name=NAME[&withDecryption=true]`, as the AWS
    /// extension serves it: the server's SSM `GetParameter` answer, asked with the
    /// function's writ credentials (so the parameter's type and every refusal are the
    /// server's), kept for [`VERSION_TTL`].
    async fn parameter(&self, q: &HashMap<String, String>) -> Response<Full<Bytes>> {
        let Some(name) = q.get("name").filter(|n| !n.is_empty()) else {
            return error(StatusCode::BAD_REQUEST, "name: required");
        };
        let decrypt = match q.get("withDecryption").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("withDecryption: {other:?} is not true or false"),
                );
            }
        };
        // Versions and labels are selectors of the name, as the AWS extension sends them.
        let selected = match (q.get("version"), q.get("label")) {
            (Some(_), Some(_)) => {
                return error(StatusCode::BAD_REQUEST, "give version or label, not both");
            }
            (Some(v), None) => format!("{name}:{v}"),
            (None, Some(l)) => format!("{name}:{l}"),
            (None, None) => name.clone(),
        };
        let key = (selected.clone(), decrypt.to_string());
        if let Some((body, _)) = self
            .parameters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .filter(|(_, at)| at.elapsed() < VERSION_TTL)
        {
            return answer(StatusCode::OK, body);
        }
        let credentials = match self.writ_credentials().await {
            Ok(c) => c,
            Err(refusal) => return refusal,
        };
        let body = json!({"Name": selected, "WithDecryption": decrypt}).to_string();
        let (status, answer_body) = match self.ssm_call(&credentials, &body).await {
            Ok(r) => r,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e),
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        let Ok(value) = serde_json::from_slice::<Value>(&answer_body) else {
            return error(
                StatusCode::BAD_GATEWAY,
                "the server's SSM answer is not JSON",
            );
        };
        if status == StatusCode::OK {
            let mut kept = self
                .parameters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if kept.len() >= MAX_KEPT_VERSIONS {
                kept.clear();
            }
            kept.insert(key, (value.clone(), std::time::Instant::now()));
        }
        answer(status, &value)
    }

    /// Sends `body` to the server's SSM API (`AmazonSSM.GetParameter`), signed with
    /// `credentials` (SigV4, service `ssm`, the region of `AWS_REGION` or `us-east-1`).
    async fn ssm_call(&self, credentials: &Value, body: &str) -> Result<(u16, Vec<u8>), String> {
        let text = |k: &str| credentials[k].as_str().unwrap_or_default().to_string();
        let creds = writ_sigv4::Credentials::new(text("AccessKeyId"), text("SecretAccessKey"))
            .with_session_token(text("Token"));
        let server = self.identity.server().trim_end_matches('/');
        // The Host header as the client will send it: the port only when not the scheme's.
        let url = reqwest::Url::parse(server).map_err(|e| format!("the server {server}: {e}"))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(format!("the server {server} names no host")),
        };
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
        let headers = [
            ("host", host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "AmazonSSM.GetParameter"),
        ];
        let request = writ_sigv4::SignableRequest::new(
            "POST",
            "/",
            "",
            &headers,
            writ_sigv4::Payload::Bytes(body.as_bytes()),
        );
        let signed = writ_sigv4::sign_headers(
            &request,
            &writ_sigv4::SigningParams::new(
                &creds,
                &region,
                "ssm",
                time::OffsetDateTime::now_utc(),
            ),
        )
        .map_err(|e| format!("signing the SSM request: {e}"))?;
        let client = self.identity.server_client()?;
        let mut sent = client
            .post(format!("{server}/"))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", "AmazonSSM.GetParameter")
            .body(body.to_string());
        for (name, value) in &signed.headers {
            sent = sent.header(*name, value);
        }
        let response = sent
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("the server's SSM API could not be reached: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("the server's SSM answer could not be read: {e}"))?;
        Ok((status, bytes.to_vec()))
    }

    async fn jwt(&self, q: &HashMap<String, String>) -> Response<Full<Bytes>> {
        let Some(aud) = q.get("aud") else {
            return error(StatusCode::BAD_REQUEST, "aud: required");
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let cached = self
            .jwts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(aud)
            .filter(|(_, exp)| *exp - 60 > now)
            .cloned();
        if let Some((token, exp)) = cached {
            return answer(StatusCode::OK, &json!({"token": token, "expiresAt": exp}));
        }
        let api = match self.identity.api() {
            Ok(c) => c,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e),
        };
        let sent = api
            .send::<MintJwtSvid>(&MintJwtRequest {
                audience: Audience::One(aud.clone()),
                ttl: None,
            })
            .await;
        let minted = match sent {
            Ok(minted) => minted,
            Err(e) => return refused(e),
        };
        let token = minted.token;
        let exp = time::OffsetDateTime::parse(
            &minted.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_or(now + 60, |t| t.unix_timestamp());
        let mut jwts = self
            .jwts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if jwts.len() > 1000 {
            jwts.clear();
        }
        jwts.insert(aud.clone(), (token.clone(), exp));
        answer(StatusCode::OK, &json!({"token": token, "expiresAt": exp}))
    }
}

/// The server's refusal (or failure) of a call made for the function, as the function is
/// told it: the server's status and message, 503 when it could not be reached.
fn refused(e: ApiCallError) -> Response<Full<Bytes>> {
    match e {
        e @ ApiCallError::Transport { .. } => error(StatusCode::SERVICE_UNAVAILABLE, e.detail()),
        ApiCallError::Refused {
            status, message, ..
        } => error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            message,
        ),
        ApiCallError::Status { status, .. } => error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            "refused",
        ),
        e => error(StatusCode::BAD_GATEWAY, e.detail()),
    }
}

/// Serves the endpoints on `listener` (a loopback address), answering only requests
/// addressed to `own`, its address (see [`crate::guard`]).
pub async fn serve(listener: tokio::net::TcpListener, own: OwnAddress, local: Arc<Local>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let local = local.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let local = local.clone();
                async move { Ok::<_, Infallible>(local.handle(own, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(decode("prod%2Forders-db"), "prod/orders-db");
        assert_eq!(decode("a+b"), "a b");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("%2"), "%2");
    }
}
