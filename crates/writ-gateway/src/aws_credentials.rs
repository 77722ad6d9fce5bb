//! The gateway's AWS credentials, for signing Lambda Invoke requests, as the standard
//! provider chain finds them in the environment: the keys themselves (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), else the container credentials endpoint
//! (`AWS_CONTAINER_CREDENTIALS_FULL_URI` or `_RELATIVE_URI`, with
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN` or `_TOKEN_FILE`), whose temporary credentials are
//! fetched again five minutes before they expire; and the region from `AWS_REGION` or
//! `AWS_DEFAULT_REGION`.
//!
//! The keys are never logged: [`writ_sigv4::Credentials`]' `Debug` shows the access key id
//! only, and errors name the variables, never their values.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use writ_sigv4::Credentials;

/// How long before temporary credentials expire they are fetched again (as the AWS SDKs do).
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// How long to wait before trying the endpoint again after a failure.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// How long fetching credentials may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of an answer from the credentials endpoint that is read.
const MAX_ANSWER: usize = 64 * 1024;

/// The gateway's AWS credentials, shared by every Lambda route.
pub struct AwsCredentials {
    current: RwLock<Arc<Credentials>>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("current", &*self.current())
            .finish()
    }
}

impl AwsCredentials {
    /// The credentials the environment gives, read through `var` (the process's
    /// environment, or a test's): `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, with
    /// `AWS_SESSION_TOKEN` for temporary credentials. Fails, naming what is missing, when
    /// there are none.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<AwsCredentials, String> {
        let get = |k: &str| var(k).filter(|v| !v.is_empty());
        let creds = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => {
                let c = Credentials::new(id, secret);
                match get("AWS_SESSION_TOKEN") {
                    Some(token) => c.with_session_token(token),
                    None => c,
                }
            }
            (Some(_), None) => {
                return Err("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into());
            }
            (None, Some(_)) => {
                return Err("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into());
            }
            (None, None) => {
                return Err(
                    "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials) in the gateway's environment"
                        .into(),
                );
            }
        };
        Ok(AwsCredentials::fixed(creds))
    }

    /// Credentials that do not change.
    pub fn fixed(creds: Credentials) -> AwsCredentials {
        AwsCredentials {
            current: RwLock::new(Arc::new(creds)),
        }
    }

    /// The credentials to sign with now.
    pub fn current(&self) -> Arc<Credentials> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Where the container credentials endpoint is, and how to authenticate to it.
#[derive(Clone)]
pub struct ContainerEndpoint {
    /// `http://HOST[:PORT]/PATH`.
    pub url: String,
    /// The `Authorization` value, given directly.
    pub token: Option<String>,
    /// A file holding it, read at each fetch (EKS Pod Identity rotates it).
    pub token_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ContainerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerEndpoint")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_file", &self.token_file)
            .finish()
    }
}

impl ContainerEndpoint {
    /// The endpoint the environment names, if any: `AWS_CONTAINER_CREDENTIALS_FULL_URI`
    /// (plain `http://` to a loopback address or the ECS and EKS link-local hosts, as the
    /// AWS SDKs allow) or `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (on `169.254.170.2`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let get = |k: &str| var(k).filter(|v| !v.is_empty());
        let url = match (
            get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            get("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        ) {
            (Some(rel), _) => format!("http://169.254.170.2{rel}"),
            (None, Some(full)) => full,
            (None, None) => return Ok(None),
        };
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| format!("AWS_CONTAINER_CREDENTIALS_FULL_URI: {e}"))?;
        let host = uri.host().unwrap_or_default();
        let allowed = crate::config::is_loopback_host(host)
            || matches!(
                host.trim_start_matches('[').trim_end_matches(']'),
                "169.254.170.2" | "169.254.170.23" | "fd00:ec2::23"
            );
        if uri.scheme_str() != Some("http") || !allowed {
            return Err(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI: the gateway takes http:// to a loopback address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23"
                    .into(),
            );
        }
        Ok(Some(ContainerEndpoint {
            url,
            token: get("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
            token_file: get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map(Into::into),
        }))
    }

    /// Fetches credentials: they and when they expire (Unix seconds), if they do.
    pub async fn fetch(&self) -> Result<(Credentials, Option<i64>), String> {
        tokio::time::timeout(FETCH_TIMEOUT, self.fetch_now())
            .await
            .map_err(|_| {
                format!(
                    "the container credentials endpoint did not answer within {} s",
                    FETCH_TIMEOUT.as_secs()
                )
            })?
    }

    async fn fetch_now(&self) -> Result<(Credentials, Option<i64>), String> {
        let uri: hyper::Uri = self.url.parse().map_err(|e| format!("{e}"))?;
        let host = uri.host().unwrap_or_default();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let token = match (&self.token_file, &self.token) {
            (Some(file), _) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| format!("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: {e}"))?
                    .trim()
                    .to_string(),
            ),
            (None, token) => token.clone(),
        };
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = format!(
            "GET {target} HTTP/1.1\r\nhost: {}\r\naccept: application/json\r\nconnection: close\r\n",
            uri.authority().map_or(host, |a| a.as_str())
        );
        if let Some(t) = token {
            if t.contains(['\r', '\n']) {
                return Err("AWS_CONTAINER_AUTHORIZATION_TOKEN: not a header value".into());
            }
            request.push_str(&format!("authorization: {t}\r\n"));
        }
        request.push_str("\r\n");
        let mut tcp = tokio::net::TcpStream::connect((bare, port))
            .await
            .map_err(|e| format!("the container credentials endpoint: {e}"))?;
        tcp.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("the container credentials endpoint: {e}"))?;
        let mut answer = Vec::new();
        (&mut tcp)
            .take(MAX_ANSWER as u64 + 1)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| format!("the container credentials endpoint: {e}"))?;
        if answer.len() > MAX_ANSWER {
            return Err("the container credentials endpoint's answer is too long".into());
        }
        parse_container_answer(&answer)
    }
}

/// Reads the container credentials endpoint's whole answer (`Connection: close`): a 200
/// with `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}`. Errors never include
/// the body, which may hold a key.
pub fn parse_container_answer(answer: &[u8]) -> Result<(Credentials, Option<i64>), String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Response::new(&mut headers);
    let at = match head.parse(answer) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err("the container credentials endpoint's answer is not HTTP".into()),
    };
    if head.code != Some(200) {
        return Err(format!(
            "the container credentials endpoint answered {}",
            head.code.unwrap_or(0)
        ));
    }
    let chunked = head.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
    });
    let mut body = answer[at..].to_vec();
    if chunked {
        let mut joined = Vec::new();
        let mut rest = &body[..];
        while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = std::str::from_utf8(&rest[..end])
                .ok()
                .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
                .ok_or("the container credentials endpoint's chunked answer is malformed")?;
            if size == 0 || rest.len() < end + 2 + size {
                break;
            }
            joined.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[(end + 4 + size).min(rest.len())..];
        }
        body = joined;
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        access_key_id: String,
        secret_access_key: String,
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        expiration: Option<String>,
    }
    let a: Answer = serde_json::from_slice(&body).map_err(|_| {
        "the container credentials endpoint's answer is not {AccessKeyId, SecretAccessKey, Token, Expiration}".to_string()
    })?;
    let expires = match &a.expiration {
        None => None,
        Some(e) => Some(
            time::OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    format!("the container credentials endpoint's Expiration {e:?} is not RFC 3339")
                })?
                .unix_timestamp(),
        ),
    };
    let mut creds = Credentials::new(a.access_key_id, a.secret_access_key);
    if let Some(t) = a.token.filter(|t| !t.is_empty()) {
        creds = creds.with_session_token(t);
    }
    Ok((creds, expires))
}

/// The gateway's credentials from the environment, as the provider chain finds them: the
/// keys in the environment, else the container credentials endpoint, fetched now and then
/// kept fresh by a task on the current runtime (five minutes before they expire; every 10
/// seconds after a failure, keeping the current ones meanwhile).
pub async fn load(var: impl Fn(&str) -> Option<String>) -> Result<Arc<AwsCredentials>, String> {
    let has_keys = var("AWS_ACCESS_KEY_ID").is_some_and(|v| !v.is_empty())
        || var("AWS_SECRET_ACCESS_KEY").is_some_and(|v| !v.is_empty());
    let container = if has_keys {
        None
    } else {
        ContainerEndpoint::from_env(&var)?
    };
    let Some(endpoint) = container else {
        return AwsCredentials::from_env(var).map(Arc::new);
    };
    let (creds, expires) = endpoint.fetch().await?;
    tracing::info!(
        access_key_id = %creds.access_key_id,
        "AWS credentials from the container credentials endpoint"
    );
    let shared = Arc::new(AwsCredentials::fixed(creds));
    if let Some(expires) = expires {
        tokio::spawn(refresh(endpoint, shared.clone(), expires));
    }
    Ok(shared)
}

/// Fetches credentials from `endpoint` again before the current ones expire at
/// `expires` (Unix seconds), for as long as the gateway runs.
async fn refresh(endpoint: ContainerEndpoint, shared: Arc<AwsCredentials>, mut expires: i64) {
    loop {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let wait = (expires - now).saturating_sub(REFRESH_BEFORE.as_secs() as i64);
        tokio::time::sleep(Duration::from_secs(wait.max(0) as u64).max(RETRY_AFTER)).await;
        match endpoint.fetch().await {
            Ok((creds, next)) => {
                *shared
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(creds);
                match next {
                    Some(n) => expires = n,
                    None => return,
                }
            }
            Err(e) => {
                tracing::warn!("refreshing the AWS credentials: {e}; trying again in 10 s");
                expires = time::OffsetDateTime::now_utc().unix_timestamp()
                    + REFRESH_BEFORE.as_secs() as i64;
            }
        }
    }
}

/// The region the environment names: `AWS_REGION`, else `AWS_DEFAULT_REGION`.
pub fn region_from_env(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    var("AWS_REGION")
        .filter(|v| !v.is_empty())
        .or_else(|| var("AWS_DEFAULT_REGION").filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn credentials_come_from_the_environment_and_never_show_the_secret() {
        let c = AwsCredentials::from_env(env(&[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
            ("AWS_SESSION_TOKEN", "token-secret"),
        ]))
        .unwrap();
        let now = c.current();
        assert_eq!(now.access_key_id, "AKIDEXAMPLE");
        assert_eq!(now.session_token.as_deref(), Some("token-secret"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("very-secret") && !shown.contains("token-secret"),
            "{shown}"
        );
        let e = AwsCredentials::from_env(env(&[("AWS_ACCESS_KEY_ID", "AKID")])).unwrap_err();
        assert!(e.contains("AWS_SECRET_ACCESS_KEY is not"), "{e}");
        let e = AwsCredentials::from_env(env(&[])).unwrap_err();
        assert!(e.contains("no AWS credentials"), "{e}");
    }

    #[test]
    fn container_answers_give_temporary_credentials_and_errors_hide_the_body() {
        let (c, exp) = parse_container_answer(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"s3cret\",\"Token\":\"tok\",\"Expiration\":\"2026-12-07T23:43:23Z\"}",
        )
        .unwrap();
        assert_eq!(c.access_key_id, "ASIA1");
        assert_eq!(c.session_token.as_deref(), Some("tok"));
        assert_eq!(exp, Some(1_796_687_003));
        let (c, _) = parse_container_answer(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\n{\"AccessKeyId\":\"\r\n19\r\nA\",\"SecretAccessKey\":\"s\"}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(c.access_key_id, "A");
        let e = parse_container_answer(b"HTTP/1.1 200 OK\r\n\r\n{\"SecretAccessKey\":\"s3cret\"}")
            .unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        let e = parse_container_answer(b"HTTP/1.1 403 Forbidden\r\n\r\n").unwrap_err();
        assert!(e.contains("403"), "{e}");
    }

    #[test]
    fn the_container_endpoint_must_be_local() {
        let e = ContainerEndpoint::from_env(env(&[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://example.org/creds",
        )]))
        .unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        let c = ContainerEndpoint::from_env(env(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:9/creds",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "auth-secret"),
        ]))
        .unwrap()
        .unwrap();
        assert!(!format!("{c:?}").contains("auth-secret"));
        let c = ContainerEndpoint::from_env(env(&[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/x",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(c.url, "http://169.254.170.2/v2/credentials/x");
        assert!(ContainerEndpoint::from_env(env(&[])).unwrap().is_none());
    }

    #[tokio::test]
    async fn credentials_are_fetched_from_the_container_endpoint_with_its_token() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            s.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{\"AccessKeyId\":\"ASIA2\",\"SecretAccessKey\":\"k\",\"Token\":\"t\",\"Expiration\":\"2099-01-01T00:00:00Z\"}").await.unwrap();
            request
        });
        let url = format!("http://127.0.0.1:{port}/creds");
        let creds = load(env(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer abc"),
        ]))
        .await
        .unwrap();
        assert_eq!(creds.current().access_key_id, "ASIA2");
        let request = served.await.unwrap();
        assert!(request.starts_with("GET /creds HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains("authorization: Bearer abc\r\n"),
            "{request}"
        );
    }

    #[test]
    fn the_region_is_aws_region_then_aws_default_region() {
        assert_eq!(
            region_from_env(env(&[
                ("AWS_REGION", "eu-west-1"),
                ("AWS_DEFAULT_REGION", "x")
            ])),
            Some("eu-west-1".into())
        );
        assert_eq!(
            region_from_env(env(&[("AWS_DEFAULT_REGION", "us-east-2")])),
            Some("us-east-2".into())
        );
        assert_eq!(region_from_env(env(&[])), None);
    }
}
