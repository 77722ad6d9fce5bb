//! AWS IAM attestation, the function's side: an `sts:GetCallerIdentity` request signed with
//! the function's own AWS credentials, which the writ server sends on to STS to learn which
//! role signed it. The request is not sent from here, and the secret key never leaves the
//! process: only the signed request does.
//!
//! Credentials, region and endpoint come from the standard environment variables, as the
//! AWS SDKs read them (and as Lambda sets them): `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` or `AWS_DEFAULT_REGION`, and
//! `AWS_ENDPOINT_URL_STS` (else `https://sts.<region>.amazonaws.com`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use writ_api::identity::AwsSignedRequest;
use writ_sigv4::{Credentials, Payload, SignableRequest, SigningParams, sign_headers};

/// The signed header that names the writ server a request is for.
pub const SERVER_ID_HEADER: &str = "x-writ-server-id";

/// A signed header carrying 16 random bytes (hex), so two requests signed with the same
/// credentials in the same second (copies of a function starting together) differ: the
/// server lets each signed request log in once.
pub const NONCE_HEADER: &str = "x-writ-nonce";

/// The body of a GetCallerIdentity call.
pub const GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// The content type of a GetCallerIdentity call.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// The function's AWS credentials and where its STS is. `Debug` shows the access key id,
/// region and endpoint only.
#[derive(Clone, Debug)]
pub struct AwsEnvironment {
    /// The credentials (a session token for a role's temporary credentials).
    pub credentials: Credentials,
    /// The region the request is signed for.
    pub region: String,
    /// The STS endpoint the request is signed for, `https://sts.us-east-1.amazonaws.com`.
    pub endpoint: String,
}

impl AwsEnvironment {
    /// Reads the standard AWS environment variables of this process.
    pub fn from_env() -> Result<AwsEnvironment, String> {
        AwsEnvironment::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the standard AWS variables through `lookup` (the environment, or a test's
    /// map). Errors name the variable that is missing; never a value.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<AwsEnvironment, String> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let missing = |name: &str| {
            format!(
                "AWS IAM attestation needs the function's AWS credentials: {name} is not set \
                 (Lambda sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_REGION)"
            )
        };
        let access_key_id = get("AWS_ACCESS_KEY_ID").ok_or_else(|| missing("AWS_ACCESS_KEY_ID"))?;
        let secret =
            get("AWS_SECRET_ACCESS_KEY").ok_or_else(|| missing("AWS_SECRET_ACCESS_KEY"))?;
        let mut credentials = Credentials::new(access_key_id.trim(), secret.trim());
        if let Some(token) = get("AWS_SESSION_TOKEN") {
            credentials = credentials.with_session_token(token.trim());
        }
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .ok_or_else(|| missing("AWS_REGION (or AWS_DEFAULT_REGION)"))?
            .trim()
            .to_string();
        let endpoint = match get("AWS_ENDPOINT_URL_STS") {
            Some(url) => url.trim().trim_end_matches('/').to_string(),
            None => format!("https://sts.{region}.amazonaws.com"),
        };
        Ok(AwsEnvironment {
            credentials,
            region,
            endpoint,
        })
    }
}

/// The host (with a port other than the scheme's default) and path of an endpoint URL.
fn host_and_path(endpoint: &str) -> Result<(String, String), String> {
    let bad = || {
        format!(
            "AWS_ENDPOINT_URL_STS {endpoint:?} is not an http:// or https:// URL with a host and no query"
        )
    };
    let lower = endpoint.to_ascii_lowercase();
    let (https, rest) = if lower.starts_with("https://") {
        (true, &endpoint[8..])
    } else if lower.starts_with("http://") {
        (false, &endpoint[7..])
    } else {
        return Err(bad());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') || path.contains(['?', '#']) {
        return Err(bad());
    }
    let authority = authority.to_ascii_lowercase();
    let default = if https { ":443" } else { ":80" };
    let host = authority
        .strip_suffix(default)
        .unwrap_or(&authority)
        .to_string();
    Ok((host, path.to_string()))
}

/// Signs a GetCallerIdentity request for the writ server `server_id` at `now`: POST to
/// `aws.endpoint`, signing `host`, `content-type`, `x-amz-date`, `x-writ-server-id`,
/// `x-writ-nonce` (random), and `x-amz-security-token` when there is a session token.
pub fn sign_get_caller_identity(
    aws: &AwsEnvironment,
    server_id: &str,
    now: OffsetDateTime,
) -> Result<AwsSignedRequest, String> {
    let (host, path) = host_and_path(&aws.endpoint)?;
    let mut nonce = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| "AWS IAM attestation: the system's random number generator failed")?;
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let headers = [
        ("host", host.as_str()),
        ("content-type", FORM_CONTENT_TYPE),
        (SERVER_ID_HEADER, server_id),
        (NONCE_HEADER, nonce.as_str()),
    ];
    let request = SignableRequest::new(
        "POST",
        &path,
        "",
        &headers,
        Payload::Bytes(GET_CALLER_IDENTITY_BODY.as_bytes()),
    );
    let signed = sign_headers(
        &request,
        &SigningParams::new(&aws.credentials, &aws.region, "sts", now),
    )
    .map_err(|e| format!("AWS IAM attestation: {e}"))?;
    let mut all: std::collections::BTreeMap<String, String> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    for (name, value) in signed.headers {
        all.insert(name.to_string(), value);
    }
    let scheme_end = aws.endpoint.find("://").map_or(0, |i| i + 3);
    Ok(AwsSignedRequest {
        method: "POST".into(),
        url: format!(
            "{}{host}{path}",
            &aws.endpoint[..scheme_end].to_ascii_lowercase()
        ),
        headers: all,
        body: STANDARD.encode(GET_CALLER_IDENTITY_BODY),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<AwsEnvironment, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        AwsEnvironment::from_lookup(move |name| {
            vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn the_environment_is_read_as_the_sdks_read_it() {
        let aws = env(&[
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret-never-shown"),
            ("AWS_SESSION_TOKEN", "token-never-shown"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ])
        .unwrap();
        assert_eq!(aws.endpoint, "https://sts.eu-west-1.amazonaws.com");
        let shown = format!("{aws:?}");
        assert!(!shown.contains("never-shown"), "{shown}");
        let local = env(&[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:5000/"),
        ])
        .unwrap();
        assert_eq!(local.region, "us-east-1");
        assert_eq!(local.endpoint, "http://127.0.0.1:5000");
        let e = env(&[("AWS_ACCESS_KEY_ID", "A"), ("AWS_REGION", "r")]).unwrap_err();
        assert!(e.contains("AWS_SECRET_ACCESS_KEY"), "{e}");
    }

    #[test]
    fn the_signed_request_names_the_server_and_hides_secrets_in_debug() {
        let aws = env(&[
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret-never-shown"),
            ("AWS_SESSION_TOKEN", "token-never-shown"),
            ("AWS_REGION", "us-east-1"),
            (
                "AWS_ENDPOINT_URL_STS",
                "HTTPS://STS.us-east-1.amazonaws.com:443",
            ),
        ])
        .unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_765_152_000).unwrap();
        let r = sign_get_caller_identity(&aws, "example.org", now).unwrap();
        assert_eq!(r.url, "https://sts.us-east-1.amazonaws.com/");
        assert_eq!(r.headers["host"], "sts.us-east-1.amazonaws.com");
        assert_eq!(r.headers[SERVER_ID_HEADER], "example.org");
        assert_eq!(r.headers["x-amz-date"], "20251208T000000Z");
        assert_eq!(r.headers["x-amz-security-token"], "token-never-shown");
        let authz = &r.headers["authorization"];
        assert!(
            authz.contains(
                "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-writ-nonce;x-writ-server-id,"
            ),
            "{authz}"
        );
        assert_eq!(r.headers[NONCE_HEADER].len(), 32);
        let again = sign_get_caller_identity(&aws, "example.org", now).unwrap();
        assert_ne!(
            again.headers["authorization"], r.headers["authorization"],
            "two requests signed in the same second differ"
        );
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("never-shown") && !shown.contains("Signature="),
            "{shown}"
        );
        assert!(host_and_path("ftp://x").is_err());
        assert!(host_and_path("https://u@x").is_err());
    }
}
