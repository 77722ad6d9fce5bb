//! AWS IAM attestation, as Vault's AWS auth method (iam type) does it: a function proves its
//! AWS identity with an `sts:GetCallerIdentity` request signed (SigV4) with its own AWS
//! credentials. It does not send the request; it hands it to writ, which checks it, sends it
//! on to STS itself, and reads STS's answer: the ARN of whoever signed. Only STS can tell
//! whether the signature is good, and the function's secret key never leaves it.
//!
//! This module does no I/O: [`check_request`] turns the evidence into the [`StsCall`] the
//! server is to make (to the server's own STS endpoint, never a URL the caller chose),
//! [`read_answer`] reads STS's answer, [`AssumedRole::from_identity`] maps the caller's
//! `assumed-role` ARN to its role's ARN, and [`AwsIamRule::admits`] matches a rule.
//!
//! What the signed request must carry: `host` (this server's STS endpoint), `x-amz-date`
//! (within [`MAX_SKEW`] of the server's clock) and [`SERVER_ID_HEADER`] (this server's id),
//! all signed, so a request signed for one writ server cannot be replayed to another, nor
//! after a few minutes. Its body is exactly a GetCallerIdentity call.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// The signed header that names the writ server the request is meant for.
pub const SERVER_ID_HEADER: &str = "x-writ-server-id";

/// The body of a GetCallerIdentity call, as the AWS SDKs send it.
pub const GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// The content type of a GetCallerIdentity call.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// How far the signed request's `X-Amz-Date` may be from the server's clock, either way.
pub const MAX_SKEW: Duration = Duration::minutes(5);

/// The STS endpoint the server sends requests to when none is configured; `{region}` is the
/// credential scope's region.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.{region}.amazonaws.com";

/// The largest STS answer read; a GetCallerIdentity answer is well under 1 KiB.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The most headers a signed request may carry.
const MAX_HEADERS: usize = 32;
/// The longest header value (a session token is a few KiB at most).
const MAX_HEADER_VALUE: usize = 8 * 1024;
/// The longest body, decoded.
const MAX_BODY: usize = 1024;
/// How much of a caller-chosen value goes into a refusal.
const ECHO: usize = 128;

/// Headers that frame the message or concern one connection: the server's HTTP client sets
/// them, so a signed request may not carry them.
const FRAMING_HEADERS: [&str; 11] = [
    "connection",
    "content-length",
    "expect",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "authorization",
];

/// What a function's AWS IAM attestation rule requires of the caller STS names. Part of the
/// server's JSON API (camelCase, unknown fields refused); call [`AwsIamRule::check`] before
/// storing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsIamRule {
    /// Patterns of the role's ARN, `arn:aws:iam::123456789012:role/orders-*` (`*` any run,
    /// `?` one character); one must match. STS names an assumed role without its path, so
    /// patterns name the role without one.
    pub role_arns: Vec<String>,
    /// The AWS accounts (12 digits) the caller must be in, if given. Required when a
    /// pattern leaves the account open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// A pattern the role session's name must match, if given (Lambda names the session
    /// after the function).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// The characters IAM allows in a role name (`[\w+=,.@-]`), and the wildcards.
fn role_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-*?".contains(c)
}

impl AwsIamRule {
    /// Checks that the rule is usable: at least one role ARN pattern, each of the form
    /// `arn:PARTITION:iam::ACCOUNT:role/NAME` with no path in the name; accounts of 12
    /// digits; and the account pinned, by a 12-digit account in every pattern or by
    /// `accounts`, so a role of the same name in someone else's account cannot log in. The
    /// error names the offending field, as in `"roleArns[1]: ..."`.
    pub fn check(&self) -> Result<(), String> {
        if self.role_arns.is_empty() {
            return Err(
                "roleArns: give at least one role ARN pattern, such as arn:aws:iam::123456789012:role/orders-*"
                    .into(),
            );
        }
        for (i, account) in self.accounts.iter().enumerate() {
            if !is_account(account) {
                return Err(format!(
                    "accounts[{i}]: an AWS account id is 12 digits, such as 123456789012"
                ));
            }
        }
        for (i, pattern) in self.role_arns.iter().enumerate() {
            let field = format!("roleArns[{i}]");
            let parts: Vec<&str> = pattern.splitn(6, ':').collect();
            let [arn, partition, service, region, account, resource] = parts[..] else {
                return Err(format!(
                    "{field}: expected arn:PARTITION:iam::ACCOUNT:role/NAME, such as arn:aws:iam::123456789012:role/orders-*"
                ));
            };
            if arn != "arn"
                || partition.is_empty()
                || !partition
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-')
                || service != "iam"
                || !region.is_empty()
            {
                return Err(format!(
                    "{field}: expected arn:PARTITION:iam::ACCOUNT:role/NAME (an IAM role's ARN), such as arn:aws:iam::123456789012:role/orders-*"
                ));
            }
            if !is_account(account) {
                if !has_wildcard(account)
                    || !account
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b == b'*' || b == b'?')
                {
                    return Err(format!(
                        "{field}: the account must be 12 digits (or a pattern of digits and wildcards, with accounts given)"
                    ));
                }
                if self.accounts.is_empty() {
                    return Err(format!(
                        "{field}: the pattern leaves the account open, so a role of that name in any AWS account could log in; \
                         write the 12-digit account or give accounts"
                    ));
                }
            }
            let Some(name) = resource.strip_prefix("role/") else {
                return Err(format!(
                    "{field}: only roles can attest (the resource must be role/NAME): Lambda functions and other AWS workloads sign as the role they assume"
                ));
            };
            if name.contains('/') {
                return Err(format!(
                    "{field}: a role path cannot be matched: STS names an assumed role arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION, \
                     without its path; write the role's name alone, as in arn:{partition}:iam::{account}:role/{}",
                    name.rsplit('/').next().unwrap_or_default()
                ));
            }
            if name.is_empty() || name.len() > 64 + 16 || !name.chars().all(role_name_char) {
                return Err(format!(
                    "{field}: a role name is 1 to 64 of A-Z a-z 0-9 and + = , . @ _ - (with * and ? as wildcards)"
                ));
            }
        }
        if let Some(session) = &self.session_name
            && (session.is_empty() || session.len() > 128)
        {
            return Err("sessionName: give a pattern of 1 to 128 characters".into());
        }
        Ok(())
    }

    /// Whether this rule admits `role`; the error says which requirement it fails.
    pub fn admits(&self, role: &AssumedRole) -> Result<(), String> {
        if !self
            .role_arns
            .iter()
            .any(|p| writ_policy::string_like(p, &role.role_arn))
        {
            return Err(format!(
                "the role {} matches none of roleArns",
                role.role_arn
            ));
        }
        if !self.accounts.is_empty() && !self.accounts.contains(&role.account) {
            return Err(format!(
                "the account {} is not among accounts",
                role.account
            ));
        }
        if let Some(pattern) = &self.session_name
            && !writ_policy::string_like(pattern, &role.session_name)
        {
            return Err(format!(
                "the role session name {:?} does not match sessionName {pattern:?}",
                role.session_name
            ));
        }
        Ok(())
    }
}

/// A signed GetCallerIdentity request, as the function made it, carried in the login's
/// evidence (`{"type": "awsIam", "request": {...}}`). `Debug` shows the header names and
/// the body's length, never a value (they carry the session token and the signature).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedRequest {
    /// The method, `POST`.
    pub method: String,
    /// The URL it was signed for, `https://sts.us-east-1.amazonaws.com/`.
    pub url: String,
    /// The headers, lower-case names, one value each: `host`, `x-amz-date`,
    /// `x-writ-server-id`, `content-type`, `authorization`, and `x-amz-security-token` for
    /// temporary credentials.
    pub headers: BTreeMap<String, String>,
    /// The body, base64: `Action=GetCallerIdentity&Version=2011-06-15`.
    pub body: String,
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// `scheme://authority/path` read without a URL parser, refusing anything a parser could
/// read differently.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlainUrl {
    https: bool,
    authority: String,
    path: String,
}

impl PlainUrl {
    fn parse(url: &str) -> Result<PlainUrl, &'static str> {
        if url.len() > 2048
            || url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '\\' || c == '@' || c == '#')
        {
            return Err("it has spaces, control characters, backslashes, '@', '#' or is too long");
        }
        let lower = url.to_ascii_lowercase();
        let (https, rest) = if lower.starts_with("https://") {
            (true, &url[8..])
        } else if lower.starts_with("http://") {
            (false, &url[7..])
        } else {
            return Err("it is not an http:// or https:// URL");
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err("it has no host");
        }
        if path.contains('?') {
            return Err("it has a query string");
        }
        Ok(PlainUrl {
            https,
            authority: authority.to_string(),
            path: path.to_string(),
        })
    }
}

/// A host (and port) compared as HTTP clients send it: lower-case, the scheme's default
/// port dropped.
fn normal_authority(authority: &str, https: bool) -> String {
    let lower = authority.to_ascii_lowercase();
    let default = if https { ":443" } else { ":80" };
    match lower.strip_suffix(default) {
        Some(bare) => bare.to_string(),
        None => lower,
    }
}

/// Where the server sends GetCallerIdentity requests: a URL, perhaps with `{region}` in
/// it, configured by the operator (`writ server --aws-sts-endpoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsEndpoint {
    template: String,
}

impl Default for StsEndpoint {
    fn default() -> Self {
        StsEndpoint {
            template: DEFAULT_STS_ENDPOINT.into(),
        }
    }
}

/// Whether a region can be put in a host name: 1 to 32 of `a-z 0-9 -` (`us-east-1`).
fn plain_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl StsEndpoint {
    /// An endpoint from its URL, `https://sts.{region}.amazonaws.com` or
    /// `http://127.0.0.1:5000`: `http` or `https`, a host, no user information, query or
    /// fragment. `{region}` is replaced by the credential scope's region.
    pub fn new(template: &str) -> Result<StsEndpoint, String> {
        let probe = template.replace("{region}", "us-east-1");
        PlainUrl::parse(&probe).map_err(|e| {
            format!("the STS endpoint {template:?} is not usable: {e}; give a URL such as https://sts.{{region}}.amazonaws.com")
        })?;
        Ok(StsEndpoint {
            template: template.trim_end_matches('/').to_string(),
        })
    }

    /// The endpoint's URL template, as configured.
    pub fn template(&self) -> &str {
        &self.template
    }

    fn for_region(&self, region: &str) -> Result<(String, PlainUrl), String> {
        if self.template.contains("{region}") && !plain_region(region) {
            return Err(
                "the credential scope's region is not a region name (a-z, 0-9 and -)".into(),
            );
        }
        let url = self.template.replace("{region}", region);
        let parsed = PlainUrl::parse(&url)
            .map_err(|e| format!("the STS endpoint {url} is not usable: {e}"))?;
        let url = if url.ends_with('/') || parsed.path != "/" {
            url
        } else {
            format!("{url}/")
        };
        Ok((url, parsed))
    }
}

/// The request the server is to send to STS, built by [`check_request`]. `Debug` shows the
/// URL and header names only.
#[derive(Clone)]
pub struct StsCall {
    /// The server's own STS endpoint, for the credential scope's region.
    pub url: String,
    /// The headers to send: the signed ones, `authorization`, and `content-type`.
    pub headers: Vec<(String, String)>,
    /// The body: a GetCallerIdentity call.
    pub body: Vec<u8>,
    /// The access key id of the credential scope (not a secret: AWS logs it).
    pub access_key_id: String,
    /// The signing time.
    pub signed_at: OffsetDateTime,
    /// The SHA-256 (hex) of the `Authorization` header: names this signed request, so the
    /// server can let it log in once.
    pub replay_key: String,
}

impl fmt::Debug for StsCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("StsCall")
            .field("url", &self.url)
            .field("headers", &names)
            .field("access_key_id", &self.access_key_id)
            .field("signed_at", &self.signed_at)
            .finish_non_exhaustive()
    }
}

/// A caller-chosen value, quoted and cut short, for a refusal.
fn echo(value: &str) -> String {
    let cut: String = value.chars().take(ECHO).collect();
    if cut.len() < value.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

/// Checks a signed GetCallerIdentity request and returns the call to make to STS.
///
/// Refused: a method other than POST; a body other than exactly a GetCallerIdentity call
/// (`Action=GetCallerIdentity&Version=2011-06-15`, in either order) or a content type other
/// than a form's; a malformed `Authorization` header or a scope whose service is not `sts`;
/// `host`, `x-amz-date` or [`SERVER_ID_HEADER`] not signed, or a signed header missing;
/// framing headers (`content-length`, `transfer-encoding`, ...); a server id other than
/// `server_id`; an `X-Amz-Date` more than [`MAX_SKEW`] from `now` (stale), or of another
/// day than the scope; a signed `host` (or URL) other than `endpoint`'s for the scope's
/// region. The call goes to `endpoint`, whatever URL the request names. Errors say what
/// was wrong; they never carry the signature or the session token.
pub fn check_request(
    request: &SignedRequest,
    server_id: &str,
    endpoint: &StsEndpoint,
    now: OffsetDateTime,
) -> Result<StsCall, String> {
    if request.method != "POST" {
        return Err(format!(
            "the signed request's method is {}, not POST",
            echo(&request.method)
        ));
    }
    let body = STANDARD
        .decode(request.body.as_bytes())
        .map_err(|_| "the signed request's body is not base64".to_string())?;
    if body.len() > MAX_BODY || !is_get_caller_identity(&body) {
        return Err(format!(
            "the signed request's body is not a GetCallerIdentity call ({GET_CALLER_IDENTITY_BODY})"
        ));
    }
    if request.headers.len() > MAX_HEADERS {
        return Err(format!(
            "the signed request has {} headers; at most {MAX_HEADERS} are accepted",
            request.headers.len()
        ));
    }
    for (name, value) in &request.headers {
        let token =
            |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(format!(
                "the signed request's header name {} is not a lower-case HTTP token",
                echo(name)
            ));
        }
        if value.len() > MAX_HEADER_VALUE
            || !value
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
        {
            return Err(format!(
                "the signed request's {name} header is longer than {MAX_HEADER_VALUE} bytes or has characters other than printable ASCII"
            ));
        }
        if FRAMING_HEADERS.contains(&name.as_str()) && name != "authorization" {
            return Err(format!(
                "the signed request carries a {name} header; framing and connection headers are the sender's to set: leave them out"
            ));
        }
    }
    let header = |name: &str| request.headers.get(name).map(String::as_str);
    let authorization = header("authorization")
        .ok_or("the signed request has no Authorization header: sign it with SigV4")?;
    let auth = writ_sigv4::read_authorization(authorization)
        .map_err(|e| format!("the signed request's {e}"))?;
    if auth.service != "sts" {
        return Err(format!(
            "the signed request's credential scope names the service {}, not sts",
            echo(auth.service)
        ));
    }
    for required in ["host", "x-amz-date", SERVER_ID_HEADER] {
        if !auth.signed_headers.contains(&required) {
            return Err(format!(
                "the signed request does not sign the {required} header; host, x-amz-date and {SERVER_ID_HEADER} must be signed"
            ));
        }
    }
    for name in &auth.signed_headers {
        if FRAMING_HEADERS.contains(name) {
            return Err(format!(
                "the signed request signs the {name} header; framing, connection and authorization headers cannot be signed"
            ));
        }
        if header(name).is_none() {
            return Err(format!(
                "the header {name} is listed as signed but the request does not have it"
            ));
        }
    }
    let named = header(SERVER_ID_HEADER).unwrap_or_default();
    if named != server_id {
        return Err(format!(
            "the signed request is for the writ server {} ({SERVER_ID_HEADER}), not this one ({server_id:?}): evidence made for another server is refused",
            echo(named)
        ));
    }
    let amz_date = header("x-amz-date").unwrap_or_default();
    let signed_at = writ_sigv4::parse_amz_date(amz_date)
        .ok_or("the signed request's X-Amz-Date header is malformed: expected YYYYMMDDTHHMMSSZ")?;
    let skew = signed_at - now;
    if skew.abs() > MAX_SKEW {
        return Err(format!(
            "the signed request is stale: its X-Amz-Date is {} s {} the server's clock, and at most {} s either way is accepted; sign a new one",
            skew.whole_seconds().unsigned_abs(),
            if skew.is_negative() {
                "behind"
            } else {
                "ahead of"
            },
            MAX_SKEW.whole_seconds()
        ));
    }
    if auth.date != &amz_date[..8] {
        return Err(
            "the signed request's credential scope date is not the day of its X-Amz-Date".into(),
        );
    }
    match header("content-type") {
        Some(t)
            if t.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded") => {}
        _ => {
            return Err(format!(
                "the signed request's content-type must be {FORM_CONTENT_TYPE}"
            ));
        }
    }
    let (url, target) = endpoint.for_region(auth.region)?;
    let expected = normal_authority(&target.authority, target.https);
    let host = header("host").unwrap_or_default();
    if normal_authority(host, target.https) != expected {
        return Err(format!(
            "the signed host {} is not this server's STS endpoint for {} ({expected}): writ sends the request to its own STS endpoint only",
            echo(host),
            auth.region
        ));
    }
    let claimed = PlainUrl::parse(&request.url)
        .map_err(|e| format!("the signed request's url is not usable: {e}"))?;
    if normal_authority(&claimed.authority, claimed.https) != expected
        || claimed.path != target.path
    {
        return Err(format!(
            "the signed request's url {} is not this server's STS endpoint {url}",
            echo(&request.url)
        ));
    }
    let mut headers: Vec<(String, String)> = auth
        .signed_headers
        .iter()
        .map(|n| (n.to_string(), header(n).unwrap_or_default().to_string()))
        .collect();
    if !auth.signed_headers.contains(&"content-type") {
        headers.push((
            "content-type".into(),
            header("content-type").unwrap_or_default().into(),
        ));
    }
    headers.push(("authorization".into(), authorization.to_string()));
    let replay_key = ring::digest::digest(&ring::digest::SHA256, authorization.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(StsCall {
        url,
        headers,
        body,
        access_key_id: auth.access_key_id.to_string(),
        signed_at,
        replay_key,
    })
}

/// Whether `body` is exactly the two parameters of a GetCallerIdentity call, in either
/// order, each once, nothing encoded.
fn is_get_caller_identity(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let mut pairs: Vec<&str> = text.split('&').collect();
    pairs.sort_unstable();
    pairs == ["Action=GetCallerIdentity", "Version=2011-06-15"]
}

/// Who STS says signed: GetCallerIdentity's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// `arn:aws:sts::123456789012:assumed-role/orders-role/orders`.
    pub arn: String,
    /// `123456789012`.
    pub account: String,
    /// `AROA...:orders`.
    pub user_id: String,
}

/// Reads STS's answer to a GetCallerIdentity call: the caller's identity from a 200
/// `GetCallerIdentityResponse`, or a refusal naming STS's error code from an
/// `ErrorResponse` (the message is not repeated: STS's `SignatureDoesNotMatch` message
/// quotes the canonical request, which holds the session token).
pub fn read_answer(status: u16, body: &[u8]) -> Result<CallerIdentity, String> {
    if body.len() > MAX_ANSWER_BYTES {
        return Err(format!(
            "STS's answer (HTTP {status}) is larger than {MAX_ANSWER_BYTES} bytes"
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| format!("STS's answer (HTTP {status}) is not UTF-8"))?;
    let leaves = xml_leaves(text)
        .map_err(|e| format!("STS's answer (HTTP {status}) is not readable XML: {e}"))?;
    let one = |path: &str| -> Result<Option<&str>, String> {
        let mut found = leaves.iter().filter(|(p, _)| p == path);
        match (found.next(), found.next()) {
            (Some((_, v)), None) => Ok(Some(v.as_str())),
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(format!(
                "STS's answer (HTTP {status}) has {path} more than once"
            )),
        }
    };
    let root = leaves
        .first()
        .map(|(p, _)| p.split('/').next().unwrap_or_default())
        .unwrap_or_default();
    if root == "ErrorResponse" || status != 200 {
        // STS answers `ErrorResponse/Error/Code`; some STS-compatible servers (moto) wrap
        // it as `ErrorResponse/Errors/Error/Code`.
        let mut codes = leaves.iter().filter(|(p, _)| {
            p == "ErrorResponse/Error/Code" || p == "ErrorResponse/Errors/Error/Code"
        });
        let code = match (codes.next(), codes.next()) {
            (Some((_, code)), None) => Some(code.as_str()),
            _ => None,
        };
        let code = code
            .filter(|c| {
                !c.is_empty()
                    && c.len() <= 64
                    && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
            })
            .map(str::to_string);
        return Err(match code {
            Some(code) => format!("STS refused the request (HTTP {status}): {code}"),
            None => format!("STS refused the request (HTTP {status}) without an error code"),
        });
    }
    const RESULT: &str = "GetCallerIdentityResponse/GetCallerIdentityResult";
    let field = |name: &str| -> Result<String, String> {
        one(&format!("{RESULT}/{name}"))?
            .filter(|v| !v.is_empty() && v.len() <= 2048)
            .map(str::to_string)
            .ok_or_else(|| format!("STS's answer has no {RESULT}/{name}"))
    };
    Ok(CallerIdentity {
        arn: field("Arn")?,
        account: field("Account")?,
        user_id: field("UserId")?,
    })
}

/// An assumed role, as STS names the caller: the role's ARN (what rules match), its
/// account and the session's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedRole {
    /// `arn:aws:iam::123456789012:role/orders-role`: the role, without its path.
    pub role_arn: String,
    /// The account, 12 digits.
    pub account: String,
    /// The role session's name (Lambda: the function's name).
    pub session_name: String,
    /// The caller's ARN as STS gave it,
    /// `arn:aws:sts::123456789012:assumed-role/orders-role/orders`.
    pub caller_arn: String,
}

impl AssumedRole {
    /// Maps `arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION` to the role
    /// `arn:PARTITION:iam::ACCOUNT:role/ROLE`. STS drops a role's path from this ARN, so the
    /// role is named without it. IAM users, federated users and account roots are refused:
    /// rules match roles.
    pub fn from_identity(identity: &CallerIdentity) -> Result<AssumedRole, String> {
        let arn = &identity.arn;
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err(format!(
                "STS named the caller {}, which is not an ARN",
                echo(arn)
            ));
        };
        if prefix != "arn"
            || partition.is_empty()
            || !partition
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-')
            || !region.is_empty()
        {
            return Err(format!(
                "STS named the caller {}, which is not an ARN",
                echo(arn)
            ));
        }
        if service == "iam" && resource.starts_with("user/") {
            return Err(format!(
                "the caller {arn} is an IAM user; AWS IAM attestation admits roles (assumed-role sessions) only"
            ));
        }
        let Some(rest) = resource
            .strip_prefix("assumed-role/")
            .filter(|_| service == "sts")
        else {
            return Err(format!(
                "the caller {} is not an assumed role; AWS IAM attestation admits roles (assumed-role sessions) only",
                echo(arn)
            ));
        };
        let Some((role, session)) = rest.split_once('/') else {
            return Err(format!(
                "the assumed-role ARN {} has no session name",
                echo(arn)
            ));
        };
        if role.is_empty()
            || role.len() > 64
            || !role
                .chars()
                .all(|c| role_name_char(c) && c != '*' && c != '?')
            || session.is_empty()
            || session.contains('/')
        {
            return Err(format!(
                "the assumed-role ARN {} is not assumed-role/ROLE/SESSION",
                echo(arn)
            ));
        }
        if !is_account(account) || account != identity.account {
            return Err(format!(
                "the assumed-role ARN {}'s account is not STS's Account {}",
                echo(arn),
                echo(&identity.account)
            ));
        }
        Ok(AssumedRole {
            role_arn: format!("arn:{partition}:iam::{account}:role/{role}"),
            account: account.to_string(),
            session_name: session.to_string(),
            caller_arn: arn.clone(),
        })
    }
}

/// The text of every leaf element of a small XML document, with its path from the root
/// (`GetCallerIdentityResponse/GetCallerIdentityResult/Arn`; namespace prefixes dropped).
/// Enough XML for STS's answers: a declaration, comments, elements, attributes (skipped),
/// text with the five predefined entities and character references. A DOCTYPE, CDATA,
/// processing instructions other than the declaration, text outside the root and more than
/// 16 levels are refused.
fn xml_leaves(text: &str) -> Result<Vec<(String, String)>, String> {
    const MAX_DEPTH: usize = 16;
    let mut leaves = Vec::new();
    let mut stack: Vec<(String, bool)> = Vec::new(); // (name, has child elements)
    let mut buffer = String::new();
    let mut rest = text.trim_start_matches('\u{feff}');
    let mut seen_root = false;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            if stack.is_empty() && rest.trim().is_empty() {
                break;
            }
            return Err("text outside the root element, or an element left open".into());
        };
        let chunk = &rest[..lt];
        if stack.is_empty() {
            if !chunk.trim().is_empty() {
                return Err("text outside the root element".into());
            }
        } else {
            buffer.push_str(&decode_text(chunk)?);
        }
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<?") {
            if seen_root || !after.starts_with("xml") {
                return Err("a processing instruction other than the XML declaration".into());
            }
            let end = after.find("?>").ok_or("an XML declaration without ?>")?;
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix("<!--") {
            let end = after.find("-->").ok_or("a comment without -->")?;
            rest = &after[end + 3..];
        } else if rest.starts_with("<!") {
            return Err("a DOCTYPE or CDATA section".into());
        } else if let Some(after) = rest.strip_prefix("</") {
            let end = after.find('>').ok_or("a closing tag without >")?;
            let name = after[..end].trim_end();
            let Some((open, has_children)) = stack.pop() else {
                return Err(format!("a closing tag </{}> with nothing open", echo(name)));
            };
            if local(name) != open {
                return Err(format!("</{}> closes <{}>", echo(name), echo(&open)));
            }
            if !has_children {
                let mut path: Vec<&str> = stack.iter().map(|(n, _)| n.as_str()).collect();
                path.push(&open);
                leaves.push((path.join("/"), std::mem::take(&mut buffer)));
            } else if !buffer.trim().is_empty() {
                return Err(format!("<{}> mixes text and elements", echo(&open)));
            }
            buffer.clear();
            rest = &after[end + 1..];
        } else {
            let after = &rest[1..];
            let end = tag_end(after).ok_or("a tag without >")?;
            let inside = &after[..end];
            let (inside, empty) = match inside.strip_suffix('/') {
                Some(i) => (i, true),
                None => (inside, false),
            };
            let name_end = inside
                .find(|c: char| c.is_ascii_whitespace())
                .unwrap_or(inside.len());
            let name = local(&inside[..name_end]).to_string();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            {
                return Err("an element with a malformed name".into());
            }
            if stack.is_empty() && seen_root {
                return Err("a second root element".into());
            }
            if let Some(parent) = stack.last_mut() {
                if !buffer.trim().is_empty() {
                    return Err(format!("<{}> mixes text and elements", echo(&parent.0)));
                }
                parent.1 = true;
            }
            buffer.clear();
            seen_root = true;
            if empty {
                let mut path: Vec<&str> = stack.iter().map(|(n, _)| n.as_str()).collect();
                path.push(&name);
                leaves.push((path.join("/"), String::new()));
            } else {
                if stack.len() == MAX_DEPTH {
                    return Err(format!("elements nested more than {MAX_DEPTH} deep"));
                }
                stack.push((name, false));
            }
            rest = &after[end + 1..];
        }
    }
    if !stack.is_empty() {
        return Err("an element left open".into());
    }
    if !seen_root {
        return Err("no root element".into());
    }
    Ok(leaves)
}

/// The local part of a possibly prefixed name (`sts:Arn` is `Arn`).
fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Where a start tag ends: the first `>` outside a quoted attribute value.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i),
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

/// Text with its entity and character references decoded.
fn decode_text(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after
            .find(';')
            .filter(|&e| e <= 10)
            .ok_or("an '&' that does not start a reference")?;
        let name = &after[..end];
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
                    .ok_or("an unknown entity or a bad character reference")?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/orders-role/orders</Arn>
    <UserId>AROA3XFRBF535PLBIFPI4:orders</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata>
    <RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId>
  </ResponseMetadata>
</GetCallerIdentityResponse>"#;

    fn rule(json: &str) -> AwsIamRule {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn answers_are_read() {
        let id = read_answer(200, ANSWER.as_bytes()).unwrap();
        assert_eq!(
            id.arn,
            "arn:aws:sts::123456789012:assumed-role/orders-role/orders"
        );
        assert_eq!(id.account, "123456789012");
        assert_eq!(id.user_id, "AROA3XFRBF535PLBIFPI4:orders");
        let with_decl = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->{ANSWER}\n");
        assert_eq!(read_answer(200, with_decl.as_bytes()).unwrap(), id);
        let escaped = ANSWER.replace("orders</Arn>", "ord&#x65;rs&amp;</Arn>");
        assert!(
            read_answer(200, escaped.as_bytes())
                .unwrap()
                .arn
                .ends_with("/orders&")
        );
    }

    #[test]
    fn error_answers_name_the_code_not_the_message() {
        let error = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>
  <Message>The Canonical String for this request should have been 'x-amz-security-token:SECRETTOKEN'</Message></Error>
  <RequestId>x</RequestId></ErrorResponse>"#;
        let e = read_answer(403, error.as_bytes()).unwrap_err();
        assert!(e.contains("SignatureDoesNotMatch"), "{e}");
        assert!(!e.contains("SECRETTOKEN"), "{e}");
        assert!(read_answer(500, b"oops").unwrap_err().contains("HTTP 500"));
        let moto = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ErrorResponse><Errors><Error>\
            <Code>SignatureDoesNotMatch</Code><Message>m</Message><Type>Sender</Type>\
            </Error></Errors></ErrorResponse>";
        assert_eq!(
            read_answer(403, moto.as_bytes()).unwrap_err(),
            "STS refused the request (HTTP 403): SignatureDoesNotMatch"
        );
        assert!(read_answer(200, b"<a><b>1</b>").is_err());
    }

    #[test]
    fn malformed_or_hostile_xml_is_refused() {
        for bad in [
            "",
            "text",
            "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><a>&e;</a>",
            "<a><![CDATA[x]]></a>",
            "<a></b>",
            "<a>x<b>y</b></a>",
            "<a/><b/>",
            "<a>&unknown;</a>",
            "<a>&#0;</a>",
            "<a><b></a></b>",
        ] {
            assert!(xml_leaves(bad).is_err(), "{bad:?} should be refused");
        }
        let deep = "<a>".repeat(17) + &"</a>".repeat(17);
        assert!(xml_leaves(&deep).is_err());
        let twice = ANSWER.replace(
            "<Account>123456789012</Account>",
            "<Account>123456789012</Account><Account>999999999999</Account>",
        );
        assert!(read_answer(200, twice.as_bytes()).is_err());
    }

    #[test]
    fn every_cut_and_changed_byte_of_an_answer_is_read_without_panic() {
        // The fuzz target (`aws_iam_evidence`) goes further; this runs on stable.
        let answer = ANSWER.as_bytes();
        for i in 0..answer.len() {
            let _ = read_answer(200, &answer[..i]);
            for b in [b'<', b'>', b'/', b'&', b';', b'"', b'!', b'?', 0xff] {
                let mut changed = answer.to_vec();
                changed[i] = b;
                if let Ok(id) = read_answer(200, &changed) {
                    let _ = AssumedRole::from_identity(&id);
                }
            }
        }
    }

    #[test]
    fn assumed_role_arns_map_to_their_role() {
        let id = |arn: &str| CallerIdentity {
            arn: arn.into(),
            account: "123456789012".into(),
            user_id: "AROA:x".into(),
        };
        let role = AssumedRole::from_identity(&id(
            "arn:aws:sts::123456789012:assumed-role/orders-role/orders",
        ))
        .unwrap();
        assert_eq!(role.role_arn, "arn:aws:iam::123456789012:role/orders-role");
        assert_eq!(role.session_name, "orders");
        assert_eq!(role.account, "123456789012");
        let gov = AssumedRole::from_identity(&id(
            "arn:aws-us-gov:sts::123456789012:assumed-role/r/s@example.com",
        ))
        .unwrap();
        assert_eq!(gov.role_arn, "arn:aws-us-gov:iam::123456789012:role/r");
        for refused in [
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:root",
            "arn:aws:sts::123456789012:federated-user/bob",
            "arn:aws:sts::123456789012:assumed-role/orders-role",
            "arn:aws:sts::123456789012:assumed-role//s",
            "arn:aws:sts::123456789012:assumed-role/r/s/t",
            "arn:aws:sts::123456789012:assumed-role/r*/s",
            "arn:a/b:sts::123456789012:assumed-role/r/s",
            "arn:aws:sts::999999999999:assumed-role/r/s",
            "arn:aws:sts:us-east-1:123456789012:assumed-role/r/s",
            "not an arn",
        ] {
            assert!(
                AssumedRole::from_identity(&id(refused)).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn rules_are_checked_naming_the_field() {
        rule(r#"{"roleArns":["arn:aws:iam::123456789012:role/orders-*"]}"#)
            .check()
            .unwrap();
        rule(r#"{"roleArns":["arn:aws:iam::*:role/orders"],"accounts":["123456789012"],"sessionName":"orders"}"#)
            .check()
            .unwrap();
        for (json, field) in [
            (r#"{"roleArns":[]}"#, "roleArns:"),
            (r#"{"roleArns":["*"]}"#, "roleArns[0]:"),
            (
                r#"{"roleArns":["arn:aws:iam::*:role/orders"]}"#,
                "roleArns[0]: the pattern leaves the account open",
            ),
            (
                r#"{"roleArns":["arn:aws:iam::123456789012:role/service-role/orders"]}"#,
                "roleArns[0]: a role path",
            ),
            (
                r#"{"roleArns":["arn:aws:iam::123456789012:user/alice"]}"#,
                "roleArns[0]: only roles",
            ),
            (
                r#"{"roleArns":["arn:aws:sts::123456789012:assumed-role/r/s"]}"#,
                "roleArns[0]:",
            ),
            (
                r#"{"roleArns":["arn:aws:iam::12345:role/r"]}"#,
                "roleArns[0]: the account",
            ),
            (
                r#"{"roleArns":["arn:aws:iam::123456789012:role/r"],"accounts":["x"]}"#,
                "accounts[0]:",
            ),
            (
                r#"{"roleArns":["arn:aws:iam::123456789012:role/r"],"sessionName":""}"#,
                "sessionName:",
            ),
        ] {
            let e = rule(json).check().unwrap_err();
            assert!(e.starts_with(field), "{json}: {e}");
        }
        assert!(serde_json::from_str::<AwsIamRule>(r#"{"roleArns":[],"x":1}"#).is_err());
    }

    #[test]
    fn patterns_match_the_role_account_and_session() {
        let role = AssumedRole {
            role_arn: "arn:aws:iam::123456789012:role/orders-fn".into(),
            account: "123456789012".into(),
            session_name: "orders".into(),
            caller_arn: "arn:aws:sts::123456789012:assumed-role/orders-fn/orders".into(),
        };
        rule(r#"{"roleArns":["arn:aws:iam::123456789012:role/orders-*"]}"#)
            .admits(&role)
            .unwrap();
        rule(r#"{"roleArns":["arn:aws:iam::123456789012:role/orders-??"],"sessionName":"ord*"}"#)
            .admits(&role)
            .unwrap();
        for json in [
            r#"{"roleArns":["arn:aws:iam::123456789012:role/payments-*"]}"#,
            r#"{"roleArns":["arn:aws:iam::210987654321:role/orders-*"]}"#,
            r#"{"roleArns":["arn:aws:iam::123456789012:role/orders-f"]}"#,
            r#"{"roleArns":["arn:aws:iam::*:role/orders-*"],"accounts":["210987654321"]}"#,
            r#"{"roleArns":["arn:aws:iam::123456789012:role/orders-*"],"sessionName":"payments"}"#,
        ] {
            assert!(rule(json).admits(&role).is_err(), "{json}");
        }
    }

    fn request(headers: &[(&str, &str)]) -> SignedRequest {
        SignedRequest {
            method: "POST".into(),
            url: "http://127.0.0.1:5000/".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: STANDARD.encode(GET_CALLER_IDENTITY_BODY),
        }
    }

    const NOW: i64 = 1_765_152_000; // 2025-12-08T00:00:00Z

    fn signed(server_id: &str, at: OffsetDateTime, host: &str) -> SignedRequest {
        let creds = writ_sigv4::Credentials::new("ASIAEXAMPLE", "secret-key-never-shown")
            .with_session_token("session-token-never-shown");
        let headers = [
            ("host", host),
            ("content-type", FORM_CONTENT_TYPE),
            (SERVER_ID_HEADER, server_id),
        ];
        let r = writ_sigv4::SignableRequest::new(
            "POST",
            "/",
            "",
            &headers,
            writ_sigv4::Payload::Bytes(GET_CALLER_IDENTITY_BODY.as_bytes()),
        );
        let sig = writ_sigv4::sign_headers(
            &r,
            &writ_sigv4::SigningParams::new(&creds, "us-east-1", "sts", at),
        )
        .unwrap();
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        all.extend(sig.headers.iter().map(|(n, v)| (*n, v.as_str())));
        let mut r = request(&all);
        r.url = format!("http://{host}/");
        r
    }

    #[test]
    fn requests_are_checked_before_anything_is_sent() {
        let now = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
        let endpoint = StsEndpoint::new("http://127.0.0.1:5000").unwrap();
        let good = signed("example.org", now, "127.0.0.1:5000");
        let call = check_request(&good, "example.org", &endpoint, now).unwrap();
        assert_eq!(call.url, "http://127.0.0.1:5000/");
        assert_eq!(call.body, GET_CALLER_IDENTITY_BODY.as_bytes());
        let names: Vec<&str> = call.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"authorization") && names.contains(&"x-amz-security-token"));
        let shown = format!("{call:?}{good:?}");
        assert!(
            !shown.contains("never-shown") && !shown.contains("Signature="),
            "{shown}"
        );

        let refused =
            |r: &SignedRequest| check_request(r, "example.org", &endpoint, now).unwrap_err();
        let e = refused(&signed("other.example", now, "127.0.0.1:5000"));
        assert!(
            e.contains("\"other.example\"") && e.contains("another server"),
            "{e}"
        );
        let e = refused(&signed(
            "example.org",
            now - Duration::minutes(6),
            "127.0.0.1:5000",
        ));
        assert!(e.contains("stale") && e.contains("behind"), "{e}");
        let e = refused(&signed("example.org", now, "169.254.169.254"));
        assert!(e.contains("not this server's STS endpoint"), "{e}");
        let mut r = good.clone();
        r.url = "http://169.254.169.254/".into();
        assert!(refused(&r).contains("url"));
        let mut r = good.clone();
        r.method = "GET".into();
        assert!(refused(&r).contains("POST"));
        let mut r = good.clone();
        r.body = STANDARD.encode("Action=AssumeRole&Version=2011-06-15");
        assert!(refused(&r).contains("GetCallerIdentity"));
        let mut r = good.clone();
        r.body = STANDARD.encode("Version=2011-06-15&Action=GetCallerIdentity");
        check_request(&r, "example.org", &endpoint, now).unwrap();
        let mut r = good.clone();
        r.headers
            .insert("transfer-encoding".into(), "chunked".into());
        assert!(refused(&r).contains("transfer-encoding"));
        let mut r = good.clone();
        r.headers.remove("x-amz-security-token");
        assert!(refused(&r).contains("x-amz-security-token"));
        let mut r = good.clone();
        r.headers.insert("Host".into(), "x".into());
        assert!(refused(&r).contains("lower-case"));
        let mut r = good.clone();
        r.headers.remove("authorization");
        assert!(refused(&r).contains("Authorization"));
        // A request that does not sign the server id is refused, however it is named.
        let unsigned_id = {
            let creds = writ_sigv4::Credentials::new("AKIDEXAMPLE", "k");
            let headers = [
                ("host", "127.0.0.1:5000"),
                ("content-type", FORM_CONTENT_TYPE),
            ];
            let req = writ_sigv4::SignableRequest::new(
                "POST",
                "/",
                "",
                &headers,
                writ_sigv4::Payload::Bytes(GET_CALLER_IDENTITY_BODY.as_bytes()),
            );
            let sig = writ_sigv4::sign_headers(
                &req,
                &writ_sigv4::SigningParams::new(&creds, "us-east-1", "sts", now),
            )
            .unwrap();
            let mut all: Vec<(&str, &str)> = headers.to_vec();
            all.extend(sig.headers.iter().map(|(n, v)| (*n, v.as_str())));
            all.push((SERVER_ID_HEADER, "example.org"));
            request(&all)
        };
        assert!(refused(&unsigned_id).contains("does not sign the x-writ-server-id"));
    }

    #[test]
    fn the_default_endpoint_takes_the_region_and_refuses_odd_ones() {
        let now = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
        let endpoint = StsEndpoint::default();
        let (url, _) = endpoint.for_region("eu-west-1").unwrap();
        assert_eq!(url, "https://sts.eu-west-1.amazonaws.com/");
        assert!(endpoint.for_region("evil.com/x").is_err());
        assert!(endpoint.for_region("Evil").is_err());
        let good = signed("example.org", now, "sts.us-east-1.amazonaws.com");
        let mut good = good;
        good.url = "https://sts.us-east-1.amazonaws.com/".into();
        let call = check_request(&good, "example.org", &endpoint, now).unwrap();
        assert_eq!(call.url, "https://sts.us-east-1.amazonaws.com/");
        assert!(StsEndpoint::new("ftp://x").is_err());
        assert!(StsEndpoint::new("https://user@x").is_err());
        assert!(StsEndpoint::new("https://x/?a=b").is_err());
    }
}
