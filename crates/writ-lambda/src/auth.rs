//! Who is calling and whether they may: the interim credentials file (access key ids mapped
//! to principals, secrets and identity policies), SigV4 verification, and the
//! `lambda:InvokeFunction` decision by writ's policy engine. No I/O: the caller reads the
//! file (and checks its mode) and passes the text.
//!
//! The credentials file is interim: once writ's server issues AWS-style credentials, the
//! host will take them from there.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use writ_policy::{
    CompiledPolicy, Context, Decision, ParseOptions, PolicyKind, PolicySet, Principal, Request,
};
use writ_sigv4::{Payload, SignableRequest, SigningKeyCache, VerifyError, VerifySettings};

use crate::definition::{DefinitionError, FunctionDef};
use crate::invoke::ApiError;

/// The action an invocation needs.
pub const INVOKE_ACTION: &str = "lambda:InvokeFunction";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    credential: Vec<CredentialEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialEntry {
    access_key_id: String,
    secret_access_key: String,
    principal: String,
    #[serde(default)]
    policies: Vec<String>,
}

/// One caller of the credentials file. `Debug` hides the secret.
#[derive(Clone)]
struct Caller {
    secret: String,
    principal: String,
    identity: Vec<CompiledPolicy>,
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("principal", &self.principal)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The callers the host knows, by access key id, and the functions' resource policies.
/// `Debug` shows principals, never secrets.
#[derive(Default)]
pub struct Authorizer {
    callers: HashMap<String, Caller>,
    resource: HashMap<String, CompiledPolicy>,
    keys: SigningKeyCache,
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("callers", &self.callers)
            .field(
                "resource_policies",
                &self.resource.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A caller the signature identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The access key id (not secret).
    pub access_key_id: String,
    /// The caller's principal ARN.
    pub principal: String,
}

impl Authorizer {
    /// Reads the credentials file (TOML: `[[credential]]` tables with `access_key_id`,
    /// `secret_access_key`, `principal` and `policies`, a list of identity policies as IAM
    /// JSON text) and compiles the functions' resource policies. Errors never quote a
    /// secret.
    pub fn new(
        credentials_file: Option<(&str, &str)>,
        functions: &[FunctionDef],
        region: &str,
        account: &str,
    ) -> Result<Authorizer, DefinitionError> {
        let mut callers = HashMap::new();
        if let Some((file, text)) = credentials_file {
            let parsed: CredentialsFile = toml::from_str(text).map_err(|e| DefinitionError {
                file: file.into(),
                pos: e.span().map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    crate::yaml::Pos {
                        line: before.matches('\n').count() + 1,
                        column: before.rsplit('\n').next().map_or(0, str::len) + 1,
                    }
                }),
                // toml's message may quote the offending value; keep only its first line,
                // which names the problem, not the value.
                message: e.message().lines().next().unwrap_or_default().to_string(),
            })?;
            for (i, c) in parsed.credential.into_iter().enumerate() {
                let err = |message: String| DefinitionError {
                    file: file.into(),
                    pos: None,
                    message: format!("credential[{i}] ({}): {message}", c.access_key_id),
                };
                if c.access_key_id.is_empty() || c.secret_access_key.is_empty() {
                    return Err(err(
                        "access_key_id and secret_access_key must not be empty".into()
                    ));
                }
                if !c.principal.starts_with("arn:") {
                    return Err(err(format!(
                        "principal {:?} must be an ARN such as arn:aws:iam::123456789012:user/alice",
                        c.principal
                    )));
                }
                let mut identity = Vec::new();
                for (j, text) in c.policies.iter().enumerate() {
                    let name = format!("{file}#credential[{i}].policies[{j}]");
                    identity.push(
                        compile(&name, PolicyKind::Identity, text)
                            .map_err(|m| err(format!("policies[{j}]: {m}")))?,
                    );
                }
                if callers.contains_key(&c.access_key_id) {
                    return Err(err("this access key id appears twice".into()));
                }
                callers.insert(
                    c.access_key_id.clone(),
                    Caller {
                        secret: c.secret_access_key,
                        principal: c.principal,
                        identity,
                    },
                );
            }
        }
        let mut resource = HashMap::new();
        for f in functions {
            if let Some(doc) = f.resource_policy(region, account) {
                let name = format!("resource policy of {}", f.name);
                let compiled =
                    compile(&name, PolicyKind::Resource, &doc.to_string()).map_err(|m| {
                        DefinitionError {
                            file: "template/config".into(),
                            pos: None,
                            message: format!(
                                "function {}: its resource policy is invalid: {m}",
                                f.name
                            ),
                        }
                    })?;
                resource.insert(f.name.clone(), compiled);
            }
        }
        Ok(Authorizer {
            callers,
            resource,
            keys: SigningKeyCache::default(),
        })
    }

    /// The number of callers in the credentials file.
    pub fn callers(&self) -> usize {
        self.callers.len()
    }

    /// Verifies a request's SigV4 signature (service `lambda`) and returns the caller.
    pub fn authenticate(
        &self,
        request: &SignableRequest<'_>,
        now: time::OffsetDateTime,
    ) -> Result<Authenticated, ApiError> {
        let mut who = None;
        let verified = writ_sigv4::verify(
            request,
            now,
            &VerifySettings::default(),
            &self.keys,
            |akid| {
                let c = self.callers.get(akid)?;
                who = Some(c.principal.clone());
                Some(c.secret.as_bytes().to_vec())
            },
        );
        match verified {
            Ok(v) => {
                if v.service != "lambda" {
                    return Err(ApiError::invalid_signature(format!(
                        "the credential scope names service {:?}; this is the lambda service",
                        v.service
                    )));
                }
                let principal = who.ok_or_else(ApiError::unrecognized_client)?;
                Ok(Authenticated {
                    access_key_id: v.access_key_id,
                    principal,
                })
            }
            Err(VerifyError::MissingSignature) => Err(ApiError::missing_authentication()),
            Err(VerifyError::UnknownAccessKey { .. }) => Err(ApiError::unrecognized_client()),
            Err(e) => Err(ApiError::invalid_signature(e.to_string())),
        }
    }

    /// Decides whether `caller` may invoke the function `name` whose ARN is `arn`: the
    /// caller's identity policies together with the function's resource policy; default
    /// deny.
    pub fn decide(
        &self,
        caller: &Authenticated,
        name: &str,
        arn: &str,
        source_ip: &str,
    ) -> Decision {
        let mut set = PolicySet::new();
        if let Some(c) = self.callers.get(&caller.access_key_id) {
            for p in &c.identity {
                set.add(p.clone());
            }
        }
        if let Some(p) = self.resource.get(name) {
            set.add(p.clone());
        }
        let now = time::OffsetDateTime::now_utc();
        let mut context = Context::new();
        context.insert(
            "aws:CurrentTime",
            now.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        );
        context.insert("aws:EpochTime", now.unix_timestamp());
        context.insert("aws:SecureTransport", false);
        if !source_ip.is_empty() {
            context.insert("aws:SourceIp", source_ip);
        }
        let mut request = Request::new(INVOKE_ACTION, arn).with_context(context);
        if let Ok(p) = Principal::parse(&caller.principal) {
            request = request.with_principal(p).with_principal_context();
        }
        set.evaluate(&request)
    }
}

fn compile(name: &str, kind: PolicyKind, text: &str) -> Result<CompiledPolicy, String> {
    let parsed = writ_policy::parse(text, &ParseOptions::new(kind));
    let errors: Vec<String> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    let policy = match parsed.policy {
        Some(p) if errors.is_empty() => p,
        _ => return Err(errors.join("; ")),
    };
    CompiledPolicy::new(name, kind, &policy).map_err(|e| e.to_string())
}

/// A view of an HTTP request for [`Authorizer::authenticate`].
pub fn signable<'a>(
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
) -> SignableRequest<'a> {
    SignableRequest::new(method, path, query, headers, Payload::Bytes(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use writ_sigv4::{Credentials, SigningParams, sign_headers};

    const CREDS: &str = r#"
[[credential]]
access_key_id = "AKIDALICE"
secret_access_key = "alice-secret-key"
principal = "arn:aws:iam::123456789012:user/alice"
policies = ['{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:hello"}]}']

[[credential]]
access_key_id = "AKIDBOB"
secret_access_key = "bob-secret-key"
principal = "arn:aws:iam::123456789012:user/bob"
"#;

    fn signed(akid: &str, secret: &str) -> (Vec<(String, String)>, time::OffsetDateTime) {
        let now = time::OffsetDateTime::now_utc();
        let creds = Credentials::new(akid, secret);
        let headers = [("host", "127.0.0.1:9000")];
        let req = SignableRequest::new(
            "POST",
            "/2015-03-31/functions/hello/invocations",
            "",
            &headers,
            Payload::Bytes(b"{}"),
        );
        let s = sign_headers(
            &req,
            &SigningParams::new(&creds, "us-east-1", "lambda", now),
        )
        .unwrap();
        let mut all: Vec<(String, String)> = vec![("host".into(), "127.0.0.1:9000".into())];
        all.extend(s.headers.iter().map(|(n, v)| (n.to_string(), v.clone())));
        (all, now)
    }

    fn check(a: &Authorizer, akid: &str, secret: &str) -> Result<Authenticated, ApiError> {
        let (headers, now) = signed(akid, secret);
        let view: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        a.authenticate(
            &signable(
                "POST",
                "/2015-03-31/functions/hello/invocations",
                "",
                &view,
                b"{}",
            ),
            now,
        )
    }

    #[test]
    fn identity_policy_allows_and_default_denies() {
        let a = Authorizer::new(Some(("c.toml", CREDS)), &[], "us-east-1", "123456789012").unwrap();
        let alice = check(&a, "AKIDALICE", "alice-secret-key").unwrap();
        assert_eq!(alice.principal, "arn:aws:iam::123456789012:user/alice");
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:hello";
        assert!(a.decide(&alice, "hello", arn, "127.0.0.1").is_allowed());
        let bob = check(&a, "AKIDBOB", "bob-secret-key").unwrap();
        assert!(!a.decide(&bob, "hello", arn, "127.0.0.1").is_allowed());
    }

    #[test]
    fn bad_signatures_and_unknown_keys_are_refused_without_the_secret() {
        let a = Authorizer::new(Some(("c.toml", CREDS)), &[], "us-east-1", "123456789012").unwrap();
        let e = check(&a, "AKIDALICE", "wrong").unwrap_err();
        assert_eq!(e.kind, "InvalidSignatureException");
        assert!(!e.message.contains("alice-secret-key"));
        let e = check(&a, "AKIDNOBODY", "x").unwrap_err();
        assert_eq!(e.kind, "UnrecognizedClientException");
        let headers = [("host", "h")];
        let e = a
            .authenticate(
                &signable("POST", "/", "", &headers, b""),
                time::OffsetDateTime::now_utc(),
            )
            .unwrap_err();
        assert_eq!(e.kind, "MissingAuthenticationTokenException");
    }

    #[test]
    fn bad_credentials_file_errors_do_not_quote_secrets() {
        let text = CREDS.replace("arn:aws:iam::123456789012:user/bob", "bob");
        let e = Authorizer::new(Some(("c.toml", &text)), &[], "us-east-1", "1").unwrap_err();
        assert!(e.message.contains("principal"), "{e}");
        assert!(!e.to_string().contains("secret-key"), "{e}");
        let debug = format!(
            "{:?}",
            Authorizer::new(Some(("c.toml", CREDS)), &[], "r", "1").unwrap()
        );
        assert!(!debug.contains("secret-key"), "{debug}");
    }
}
