//! The one HTTP client for writ's API: sends any route of [`writ_api::endpoints`] and
//! returns its typed answer, or a typed [`ApiCallError`]. The CLI, the SDK in this crate,
//! the gateway and the agent all call the server through it.
//!
//! A client is a [`reqwest::Client`] (built here: [`crate::fetch::bundle_client`] before
//! there is an SVID, [`crate::fetch::mtls_client_trusting`] to present one), the server's
//! address, and a [`Credential`]: the TLS client certificate alone, an admin token, or a
//! JWT-SVID. A bearer token goes only in the `Authorization` header: never in a URL, a log
//! line or an error.
//!
//! ```no_run
//! use writ_api::endpoints::GetSecretValue;
//! use writ_api::secrets::GetSecretRequest;
//! use writ_client::api::{ApiClient, Credential};
//!
//! # async fn run(http: reqwest::Client) -> Result<(), writ_client::api::ApiCallError> {
//! let api = ApiClient::new("https://writ.internal:7443", http, Credential::Tls);
//! let value = api
//!     .send::<GetSecretValue>(&GetSecretRequest {
//!         name: "prod/orders-db".into(),
//!         ..GetSecretRequest::default()
//!     })
//!     .await?;
//! # let _ = value;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use writ_api::endpoint::Endpoint;
use writ_api::error::{ErrorBody, ErrorCode, RETRY_AFTER};

/// How a client authenticates to the server, beyond what its TLS presents.
#[derive(Clone)]
pub enum Credential {
    /// Nothing in `Authorization`: a public route, or a function presenting its X.509-SVID
    /// as the TLS client certificate ([`crate::fetch::mtls_client_trusting`]).
    Tls,
    /// An admin token, `writ.admin.<id>.<secret>`, sent as `Authorization: Bearer`.
    AdminToken(Arc<str>),
    /// A JWT-SVID whose audience is the server, sent as `Authorization: Bearer`.
    JwtSvid(Arc<str>),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credential::Tls => "Tls",
            Credential::AdminToken(_) => "AdminToken(..)",
            Credential::JwtSvid(_) => "JwtSvid(..)",
        })
    }
}

impl Credential {
    fn bearer(&self) -> Option<&str> {
        match self {
            Credential::Tls => None,
            Credential::AdminToken(t) | Credential::JwtSvid(t) => Some(t),
        }
    }
}

/// Why a call did not bring the answer. Each names the URL called (which never holds a
/// secret); none holds the credential.
#[derive(Debug, thiserror::Error)]
pub enum ApiCallError {
    /// The request could not be sent or its answer read: no connection, TLS refused, a
    /// timeout.
    #[error("{url}: {}", chain(.source))]
    Transport {
        /// The URL called.
        url: String,
        /// What failed.
        source: reqwest::Error,
    },
    /// The server answered with its error shape.
    #[error("server refused ({status}): {message}")]
    Refused {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The stable code.
        code: ErrorCode,
        /// The server's message, for people.
        message: String,
        /// For a 429: the seconds to wait before trying again (`Retry-After`).
        retry_after: Option<u64>,
    },
    /// The server answered an error status with a body that is not the error shape (a
    /// proxy's page, say).
    #[error("{url}: HTTP {status}, {}", if *.json { "not the API's error shape" } else { "not JSON" })]
    Status {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Whether the body was JSON at all.
        json: bool,
    },
    /// The server answered with success, but not in the shape the route answers with.
    #[error("{url}: HTTP {status}: the answer is not what the API says at {path}: {message}")]
    Unexpected {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Where in the answer: a JSON path (`records[3].seq`), `.` for the whole.
        path: String,
        /// What was wrong there.
        message: String,
    },
    /// The request could not be encoded as the route takes it.
    #[error("{url}: the request could not be encoded: {message}")]
    Encode {
        /// The URL called.
        url: String,
        /// What was wrong.
        message: String,
    },
}

/// An error and its sources, `a: b: c`, without the URL reqwest puts in its own text.
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.without_url_ref().to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// reqwest's error text without the URL, without taking the error.
trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let text = self.to_string();
        match self.url() {
            Some(url) => text
                .replace(&format!(" for url ({url})"), "")
                .replace(&format!(" ({url})"), ""),
            None => text,
        }
    }
}

impl ApiCallError {
    /// The URL called.
    pub fn url(&self) -> &str {
        match self {
            ApiCallError::Transport { url, .. }
            | ApiCallError::Refused { url, .. }
            | ApiCallError::Status { url, .. }
            | ApiCallError::Unexpected { url, .. }
            | ApiCallError::Encode { url, .. } => url,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiCallError::Refused { status, .. }
            | ApiCallError::Status { status, .. }
            | ApiCallError::Unexpected { status, .. } => Some(*status),
            ApiCallError::Transport { .. } | ApiCallError::Encode { .. } => None,
        }
    }

    /// The error's code, when the server answered with its error shape.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            ApiCallError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The server's message, when it answered with its error shape.
    pub fn server_message(&self) -> Option<&str> {
        match self {
            ApiCallError::Refused { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Whether the server refused (a 4xx): the request, the credential or the access is
    /// wrong, and sending it again will not help (except a 429, after `Retry-After`).
    pub fn is_refusal(&self) -> bool {
        self.status().is_some_and(|s| (400..500).contains(&s))
    }

    /// Whether the server could not be reached or failed (no answer, or a 5xx): what was
    /// last fetched may still be served, and a later try may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            ApiCallError::Transport { .. } => true,
            other => other.status().is_some_and(|s| s >= 500),
        }
    }

    /// Whether the call timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ApiCallError::Transport { source, .. } if source.is_timeout())
    }

    /// For a 429: the seconds to wait before trying again.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiCallError::Refused { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// What went wrong without the URL: the transport's error, `HTTP 502 Bad Gateway`, or
    /// the status and the server's message (`403 Forbidden: ...`); for logs and for errors
    /// that name the URL themselves.
    pub fn detail(&self) -> String {
        match self {
            ApiCallError::Transport { source, .. } => source.without_url_ref(),
            ApiCallError::Refused {
                status, message, ..
            } => format!("{}: {message}", status_text(*status)),
            ApiCallError::Status { status, .. } => format!("HTTP {}", status_text(*status)),
            ApiCallError::Unexpected {
                status,
                path,
                message,
                ..
            } => format!(
                "HTTP {}: the answer is not what the API says at {path}: {message}",
                status_text(*status)
            ),
            ApiCallError::Encode { message, .. } => message.clone(),
        }
    }
}

/// `404 Not Found`.
pub fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status) {
        Ok(s) => s.to_string(),
        Err(_) => status.to_string(),
    }
}

/// A client for writ's API at one server. Cheap to clone (clones share the connection
/// pool).
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Arc<str>,
    credential: Credential,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client for the server at `base` (`https://host:port`), sending with `http` and
    /// authenticating with `credential`.
    pub fn new(base: &str, http: reqwest::Client, credential: Credential) -> ApiClient {
        ApiClient {
            http,
            base: base.trim_end_matches('/').into(),
            credential,
        }
    }

    /// The server's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The same client with another credential (a JWT-SVID for one call, say).
    pub fn with_credential(&self, credential: Credential) -> ApiClient {
        ApiClient {
            credential,
            ..self.clone()
        }
    }

    /// The URL `request` is sent to.
    pub fn url<E: Endpoint>(&self, request: &E::Request) -> String {
        let mut url = format!("{}{}", self.base, E::path(request));
        if let Some(query) = E::query(request) {
            url.push('?');
            url.push_str(&query);
        }
        url
    }

    /// Sends `request` to `E` and returns its answer; the HTTP client's timeout applies.
    pub async fn send<E: Endpoint>(&self, request: &E::Request) -> Result<E::Answer, ApiCallError> {
        self.call::<E>(request, None, None).await
    }

    /// [`ApiClient::send`] waiting up to `timeout` for the answer instead of the HTTP
    /// client's timeout: for a long poll or a slow operation.
    pub async fn send_within<E: Endpoint>(
        &self,
        request: &E::Request,
        timeout: Duration,
    ) -> Result<E::Answer, ApiCallError> {
        self.call::<E>(request, None, Some(timeout)).await
    }

    /// [`ApiClient::send`] with the body already encoded: `body` must be the JSON of an
    /// `E::Body` (a gateway writes its audit batches straight from its records, at a third
    /// of serde's cost); the path and query come from `request`.
    pub async fn send_encoded<E: Endpoint>(
        &self,
        request: &E::Request,
        body: Vec<u8>,
    ) -> Result<E::Answer, ApiCallError> {
        self.call::<E>(request, Some(body), None).await
    }

    async fn call<E: Endpoint>(
        &self,
        request: &E::Request,
        encoded: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<E::Answer, ApiCallError> {
        let url = self.url::<E>(request);
        let body = match encoded {
            Some(bytes) => Some(bytes),
            None => E::body(request)
                .map(serde_json::to_vec)
                .transpose()
                .map_err(|e| ApiCallError::Encode {
                    url: url.clone(),
                    message: e.to_string(),
                })?,
        };
        let mut builder = self.http.request(E::METHOD, &url);
        if let Some(token) = self.credential.bearer() {
            builder = builder.bearer_auth(token);
        }
        if let Some(body) = body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        if let Some(t) = timeout {
            builder = builder.timeout(t);
        }
        let response = builder
            .send()
            .await
            .map_err(|source| ApiCallError::Transport {
                url: url.clone(),
                source,
            })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ApiCallError::Transport {
                url: url.clone(),
                source,
            })?;
        if (200..300).contains(&status) {
            return decode::<E::Answer>(&url, status, &bytes);
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(ErrorBody { error }) => Err(ApiCallError::Refused {
                url,
                status,
                code: error.code,
                message: error.message,
                retry_after,
            }),
            Err(_) => Err(ApiCallError::Status {
                url,
                status,
                json: serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok(),
            }),
        }
    }
}

/// Decodes a successful answer, naming the JSON path where it is not the route's shape;
/// an empty answer (204) is read as `null`.
fn decode<T: serde::de::DeserializeOwned>(
    url: &str,
    status: u16,
    bytes: &[u8],
) -> Result<T, ApiCallError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        bytes
    };
    let unexpected = |path: String, message: String| ApiCallError::Unexpected {
        url: url.to_string(),
        status,
        path,
        message,
    };
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut reader)
        .map_err(|e| unexpected(e.path().to_string(), e.into_inner().to_string()))?;
    reader
        .end()
        .map_err(|e| unexpected(".".into(), e.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use writ_api::audit::AuditRecords;
    use writ_api::identity::Feed;

    #[test]
    fn an_answer_of_the_wrong_shape_names_the_json_path() {
        let e = decode::<AuditRecords>(
            "https://s/v1/audit/events",
            200,
            br#"{"records": [{"seq": 1, "event": "{}", "prevHash": "0", "hash": "1"},
                              {"seq": "two", "event": "{}", "prevHash": "0", "hash": "1"}],
                 "next": 2}"#,
        )
        .unwrap_err();
        match &e {
            ApiCallError::Unexpected { path, status, .. } => {
                assert_eq!(path, "records[1].seq");
                assert_eq!(*status, 200);
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("records[1].seq"), "{e}");
        let feed: Feed = decode("u", 200, br#"{"entries": [], "next": 0}"#).unwrap();
        assert_eq!(feed.next, 0);
        let none: writ_api::NoContent = decode("u", 204, b"").unwrap();
        assert_eq!(none, writ_api::NoContent);
        assert!(decode::<Feed>("u", 200, b"<html>").is_err());
    }

    /// An HTTP client as the crate builds them (rustls with ring), trusting nothing: for
    /// plain-HTTP test servers.
    fn plain_client() -> reqwest::Client {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .build()
            .unwrap()
    }

    /// A server on loopback that answers each request with `answer(request line)` and
    /// sends every request it read (head and body) on the channel.
    async fn canned(
        answer: fn(&str) -> String,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    return;
                };
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    let n = tcp.read(&mut buf).await.unwrap();
                    seen.extend_from_slice(&buf[..n]);
                    if let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                while seen.len() < head_end + length {
                    let n = tcp.read(&mut buf).await.unwrap();
                    seen.extend_from_slice(&buf[..n]);
                }
                let request = String::from_utf8_lossy(&seen).into_owned();
                let line = request.lines().next().unwrap_or_default().to_string();
                tcp.write_all(answer(&line).as_bytes()).await.unwrap();
                let _ = tx.send(request);
            }
        });
        (format!("http://{addr}"), rx)
    }

    fn response(status: &str, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn each_kind_of_answer_becomes_its_result() {
        use writ_api::endpoints::{
            DeleteFunction, GetBundle, GetHealth, ListFunctions, ReadRevocations, RegisterFunction,
        };
        let (base, mut seen) = canned(|line| {
            if line.starts_with("GET /v1/health") {
                response(
                    "429 Too Many Requests",
                    "retry-after: 7\r\ncontent-type: application/json\r\n",
                    r#"{"error":{"code":"tooManyFailures","message":"try again in 7 s"}}"#,
                )
            } else if line.starts_with("GET /v1/functions ") {
                response(
                    "403 Forbidden",
                    "",
                    r#"{"error":{"code":"accessDenied","message":"not allowed"}}"#,
                )
            } else if line.starts_with("POST /v1/functions ") {
                response(
                    "201 Created",
                    "",
                    r#"{"name":"f","spiffeId":"spiffe://example.org/fn/f","attestation":[{"type":"joinToken"}],
                        "x509Ttl":"1h","createdAt":"t","revokedAt":null,"policies":[],"permissionsBoundary":null}"#,
                )
            } else if line.starts_with("DELETE /v1/functions/f") {
                response("204 No Content", "", "")
            } else if line.starts_with("GET /v1/bundle") {
                response("502 Bad Gateway", "", "<html>bad gateway</html>")
            } else {
                response("200 OK", "", r#"{"entries":[{"seq":"one"}],"next":1}"#)
            }
        })
        .await;
        let api = ApiClient::new(
            &base,
            plain_client(),
            Credential::AdminToken("writ.admin.0123.s3cr3t".into()),
        );

        let e = api
            .send::<GetHealth>(&writ_api::NoRequest)
            .await
            .unwrap_err();
        assert_eq!(e.retry_after(), Some(7));
        assert_eq!(e.code(), Some(&ErrorCode::TooManyFailures));
        assert!(e.is_refusal());
        assert!(
            seen.recv()
                .await
                .unwrap()
                .contains("authorization: Bearer writ.admin.0123.s3cr3t")
        );

        let e = api
            .send::<ListFunctions>(&writ_api::NoRequest)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "server refused (403): not allowed");
        assert!(!e.to_string().contains("s3cr3t") && !format!("{e:?}").contains("s3cr3t"));
        seen.recv().await.unwrap();

        let created = api
            .send::<RegisterFunction>(&writ_api::functions::RegisterFunctionRequest {
                name: "f".into(),
                attestation: writ_api::functions::default_rules(),
                x509_ttl: None,
                policies: Vec::new(),
            })
            .await
            .unwrap();
        assert_eq!(created.spiffe_id, "spiffe://example.org/fn/f");
        let sent = seen.recv().await.unwrap();
        assert!(sent.contains("content-type: application/json"), "{sent}");
        assert!(
            sent.ends_with(r#"{"name":"f","attestation":[{"type":"joinToken"}]}"#),
            "{sent}"
        );

        api.send::<DeleteFunction>(&writ_api::functions::FunctionName::new("f"))
            .await
            .unwrap();
        seen.recv().await.unwrap();

        let e = api
            .send::<GetBundle>(&writ_api::NoRequest)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                ApiCallError::Status {
                    status: 502,
                    json: false,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.is_unavailable());
        seen.recv().await.unwrap();

        let e = api
            .send::<ReadRevocations>(&writ_api::identity::FeedQuery { after: 3, wait: 0 })
            .await
            .unwrap_err();
        match &e {
            ApiCallError::Unexpected { path, url, .. } => {
                assert_eq!(path, "entries[0].seq");
                assert_eq!(url, &format!("{base}/v1/revocations?after=3&wait=0"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            seen.recv()
                .await
                .unwrap()
                .starts_with("GET /v1/revocations?after=3&wait=0 ")
        );

        // Nothing listens: the error names the URL, and is an outage.
        let gone = ApiClient::new("http://127.0.0.1:9", plain_client(), Credential::Tls);
        let e = gone
            .send::<GetBundle>(&writ_api::NoRequest)
            .await
            .unwrap_err();
        assert!(e.is_unavailable() && e.status().is_none());
        assert!(
            e.to_string().starts_with("http://127.0.0.1:9/v1/bundle: "),
            "{e}"
        );
    }

    #[test]
    fn refusals_and_outages_are_told_apart_and_no_credential_shows() {
        let refused = ApiCallError::Refused {
            url: "https://s/v1/secrets/get".into(),
            status: 403,
            code: ErrorCode::AccessDenied,
            message: "denied".into(),
            retry_after: None,
        };
        assert!(refused.is_refusal() && !refused.is_unavailable());
        assert_eq!(refused.to_string(), "server refused (403): denied");
        assert_eq!(refused.detail(), "403 Forbidden: denied");
        let down = ApiCallError::Status {
            url: "u".into(),
            status: 502,
            json: false,
        };
        assert!(down.is_unavailable() && !down.is_refusal());
        assert_eq!(down.to_string(), "u: HTTP 502, not JSON");
        let token = Credential::AdminToken("writ.admin.0123.s3cr3t".into());
        assert!(!format!("{token:?}").contains("s3cr3t"));
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .build()
            .unwrap();
        let client = ApiClient::new("https://s:7443/", http, token);
        assert!(!format!("{client:?}").contains("s3cr3t"));
        assert_eq!(
            client.url::<writ_api::endpoints::ReadRevocations>(&writ_api::identity::FeedQuery {
                after: 2,
                wait: 0
            }),
            "https://s:7443/v1/revocations?after=2&wait=0"
        );
    }
}
