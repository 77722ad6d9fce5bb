//! The request being decided: who asks, to do what, to which resource, in what context.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::pattern::Vars;

/// Who makes a request, as resource-based policies name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", content = "id")]
pub enum Principal {
    /// An AWS principal: a user, role, assumed-role session or account root ARN.
    #[serde(rename = "AWS")]
    Aws(String),
    /// An AWS service, e.g. `apigateway.amazonaws.com`.
    Service(String),
    /// A federated identity provider, e.g. `cognito-identity.amazonaws.com`.
    Federated(String),
    /// An S3 canonical user id.
    CanonicalUser(String),
    /// A writ workload, `spiffe://example.org/fn/orders`.
    #[serde(rename = "SPIFFE")]
    Spiffe(String),
    /// An unauthenticated caller; only `"Principal": "*"` matches it.
    Anonymous,
}

impl Principal {
    /// Reads a principal as people write it on a command line: `spiffe://...` is a SPIFFE ID,
    /// `arn:...` or a 12-digit account id is AWS, a name ending in `.amazonaws.com` is a service,
    /// `anonymous` is anonymous, and `KIND:VALUE` (`federated:`, `canonical:`, `service:`,
    /// `aws:`, `spiffe:`) says the kind outright.
    pub fn parse(text: &str) -> Result<Principal, String> {
        let lower = text.to_ascii_lowercase();
        let prefixed = |p: &str| lower.starts_with(p).then(|| text[p.len()..].to_string());
        if text.starts_with("spiffe://") {
            Ok(Principal::Spiffe(text.to_string()))
        } else if text.starts_with("arn:") {
            Ok(Principal::Aws(text.to_string()))
        } else if let Some(v) = prefixed("federated:") {
            Ok(Principal::Federated(v))
        } else if let Some(v) = prefixed("canonical:") {
            Ok(Principal::CanonicalUser(v))
        } else if let Some(v) = prefixed("service:") {
            Ok(Principal::Service(v))
        } else if let Some(v) = prefixed("aws:") {
            Ok(Principal::Aws(v))
        } else if let Some(v) = prefixed("spiffe:") {
            Ok(Principal::Spiffe(v))
        } else if lower == "anonymous" {
            Ok(Principal::Anonymous)
        } else if crate::values::is_account_id(text) {
            Ok(Principal::Aws(text.to_string()))
        } else if lower.ends_with(".amazonaws.com") || lower.ends_with(".amazonaws.com.cn") {
            Ok(Principal::Service(text.to_string()))
        } else {
            Err(format!(
                "cannot tell what kind of principal {text:?} is: use spiffe://..., arn:..., a \
                 12-digit account id, a service such as apigateway.amazonaws.com, or prefix it \
                 with federated:, canonical:, service:, aws: or spiffe:"
            ))
        }
    }

    /// The account an AWS principal belongs to: the account id itself, or the ARN's account.
    pub fn aws_account(&self) -> Option<&str> {
        match self {
            Principal::Aws(id) if crate::values::is_account_id(id) => Some(id),
            Principal::Aws(arn) => crate::values::split_arn(arn)
                .map(|p| p[4])
                .filter(|a| !a.is_empty()),
            _ => None,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Aws(v) => write!(f, "AWS {v}"),
            Principal::Service(v) => write!(f, "Service {v}"),
            Principal::Federated(v) => write!(f, "Federated {v}"),
            Principal::CanonicalUser(v) => write!(f, "CanonicalUser {v}"),
            Principal::Spiffe(v) => write!(f, "SPIFFE {v}"),
            Principal::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// The values of one context key: one value, or a list (for multivalued keys such as
/// `aws:TagKeys`). Values are text; each operator parses them as its type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ContextValue {
    /// A single-valued key.
    One(String),
    /// A multivalued key; it may be empty.
    List(Vec<String>),
}

impl ContextValue {
    /// The values as a slice.
    pub fn as_slice(&self) -> &[String] {
        match self {
            ContextValue::One(v) => std::slice::from_ref(v),
            ContextValue::List(v) => v,
        }
    }
}

impl From<&str> for ContextValue {
    fn from(v: &str) -> Self {
        ContextValue::One(v.to_string())
    }
}
impl From<String> for ContextValue {
    fn from(v: String) -> Self {
        ContextValue::One(v)
    }
}
impl From<bool> for ContextValue {
    fn from(v: bool) -> Self {
        ContextValue::One(v.to_string())
    }
}
impl From<i64> for ContextValue {
    fn from(v: i64) -> Self {
        ContextValue::One(v.to_string())
    }
}
impl From<IpAddr> for ContextValue {
    fn from(v: IpAddr) -> Self {
        ContextValue::One(v.to_string())
    }
}
impl From<Vec<String>> for ContextValue {
    fn from(v: Vec<String>) -> Self {
        ContextValue::List(v)
    }
}
impl From<Vec<&str>> for ContextValue {
    fn from(v: Vec<&str>) -> Self {
        ContextValue::List(v.into_iter().map(str::to_string).collect())
    }
}

/// The request context: condition keys and their values. Keys compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Lower-cased key to (key as written, value). foldhash: fast on short keys and seeded
    /// per process, so request-supplied keys cannot be chosen to collide.
    entries: HashMap<Box<str>, (Box<str>, ContextValue), foldhash::fast::RandomState>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Context {
        Context::default()
    }

    /// Sets a key, replacing any earlier value of it.
    pub fn insert(&mut self, key: &str, value: impl Into<ContextValue>) {
        self.entries
            .insert(key.to_ascii_lowercase().into(), (key.into(), value.into()));
    }

    /// Sets a key unless it already has a value.
    pub fn insert_default(&mut self, key: &str, value: impl Into<ContextValue>) {
        self.entries
            .entry(key.to_ascii_lowercase().into())
            .or_insert_with(|| (key.into(), value.into()));
    }

    /// A key's values, by any capitalisation of its name.
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            self.get_lower(&key.to_ascii_lowercase())
        } else {
            self.get_lower(key)
        }
    }

    pub(crate) fn get_lower(&self, key_lower: &str) -> Option<&ContextValue> {
        self.entries.get(key_lower).map(|(_, v)| v)
    }

    fn remove_lower(&mut self, key_lower: &str) {
        self.entries.remove(key_lower);
    }

    /// The keys and values, with keys as first written.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.entries.values().map(|(k, v)| (k.as_ref(), v))
    }
}

impl Vars for Context {
    fn var(&self, key_lower: &str) -> Option<&str> {
        match self.get_lower(key_lower)? {
            ContextValue::One(v) => Some(v),
            ContextValue::List(_) => None,
        }
    }
}

/// A request to decide.
#[derive(Debug, Clone)]
pub struct Request {
    principal: Option<Principal>,
    action: String,
    action_lower: String,
    resource: String,
    context: Context,
}

impl Request {
    /// A request for `action` on `resource`, with no principal and an empty context.
    pub fn new(action: &str, resource: &str) -> Request {
        Request {
            principal: None,
            action: action.to_string(),
            action_lower: action.to_ascii_lowercase(),
            resource: resource.to_string(),
            context: Context::new(),
        }
    }

    /// Sets who makes the request, which resource-based policies match against.
    pub fn with_principal(mut self, principal: Principal) -> Request {
        self.principal = Some(principal);
        self
    }

    /// Replaces the context.
    pub fn with_context(mut self, context: Context) -> Request {
        self.context = context;
        self
    }

    /// Sets the context keys AWS derives from the principal, replacing any value a caller
    /// supplied, since AWS never lets callers choose them: `aws:PrincipalAccount`;
    /// `aws:PrincipalArn` for users and roles (not for role sessions, whose key AWS sets to
    /// the role's ARN with its path, which a session ARN does not carry: set it yourself);
    /// `aws:username` for IAM users; `aws:PrincipalServiceName` for services. A key AWS does
    /// not set for this kind of principal is removed (`aws:username` for a role session, for
    /// example), and so is an `aws:PrincipalArn` set for a role session that is not the
    /// session's role. Without a principal, the context is left as it is.
    pub fn with_principal_context(mut self) -> Request {
        if self.principal.is_none() {
            return self;
        }
        for key in [
            "aws:username",
            "aws:principalaccount",
            "aws:principalservicename",
        ] {
            self.context.remove_lower(key);
        }
        let keep_arn = match (&self.principal, self.context.get_lower("aws:principalarn")) {
            (Some(Principal::Aws(session)), Some(ContextValue::One(role))) => {
                crate::compile::role_session_of(role, session)
            }
            _ => false,
        };
        if !keep_arn {
            self.context.remove_lower("aws:principalarn");
        }
        match &self.principal {
            Some(p @ Principal::Aws(id)) => {
                let arn = crate::values::split_arn(id);
                let session = arn.is_some_and(|a| a[2] == "sts");
                if id.starts_with("arn:") && !session {
                    self.context.insert("aws:PrincipalArn", id.as_str());
                }
                if let Some(account) = p.aws_account() {
                    self.context.insert("aws:PrincipalAccount", account);
                }
                if let Some(user) = arn
                    .filter(|p| p[2] == "iam")
                    .and_then(|p| p[5].strip_prefix("user/"))
                {
                    let name = user.rsplit('/').next().unwrap_or(user);
                    self.context.insert("aws:username", name);
                }
            }
            Some(Principal::Service(s)) => {
                self.context.insert("aws:PrincipalServiceName", s.as_str());
            }
            _ => {}
        }
        self
    }

    /// Mutable access to the context.
    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.context
    }

    /// The principal, if set.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }
    /// The action as given.
    pub fn action(&self) -> &str {
        &self.action
    }
    pub(crate) fn action_lower(&self) -> &str {
        &self.action_lower
    }
    /// The resource.
    pub fn resource(&self) -> &str {
        &self.resource
    }
    /// The context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The account that owns the resource: the account part of the resource's ARN, or, for
    /// an ARN without one (`arn:aws:s3:::bucket/key`) or a resource that is not an ARN, the
    /// request's `aws:ResourceAccount` key. `None` when neither says; writ then decides as
    /// if the resource were in the caller's account.
    pub fn resource_account(&self) -> Option<&str> {
        let from_arn = crate::values::split_arn(&self.resource)
            .map(|p| p[4])
            .filter(|a| crate::values::is_account_id(a));
        from_arn.or_else(|| match self.context.get_lower("aws:resourceaccount") {
            Some(ContextValue::One(a)) if crate::values::is_account_id(a) => Some(a.as_str()),
            _ => None,
        })
    }

    /// The caller's account and the resource's, when both are known and differ: then AWS
    /// requires both an identity policy of the caller's account and a resource policy of
    /// the resource's account to allow.
    pub fn cross_account(&self) -> Option<(&str, &str)> {
        let caller = self.principal.as_ref()?.aws_account()?;
        let owner = self.resource_account()?;
        (caller != owner).then_some((caller, owner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_parse_by_shape() {
        assert_eq!(
            Principal::parse("spiffe://example.org/fn/a").unwrap(),
            Principal::Spiffe("spiffe://example.org/fn/a".into())
        );
        assert_eq!(
            Principal::parse("apigateway.amazonaws.com").unwrap(),
            Principal::Service("apigateway.amazonaws.com".into())
        );
        assert_eq!(
            Principal::parse("123456789012").unwrap(),
            Principal::Aws("123456789012".into())
        );
        assert_eq!(
            Principal::parse("federated:accounts.google.com").unwrap(),
            Principal::Federated("accounts.google.com".into())
        );
        assert!(Principal::parse("bob").is_err());
    }

    #[test]
    fn context_keys_ignore_case() {
        let mut c = Context::new();
        c.insert("aws:SourceIp", "10.0.0.1");
        assert!(c.get("AWS:SOURCEIP").is_some());
        c.insert_default("aws:sourceip", "x");
        assert_eq!(c.get("aws:SourceIp"), Some(&ContextValue::from("10.0.0.1")));
    }

    #[test]
    fn principal_context() {
        let r = Request::new("s3:GetObject", "*")
            .with_principal(Principal::Aws(
                "arn:aws:iam::123456789012:user/dev/alice".into(),
            ))
            .with_principal_context();
        assert_eq!(
            r.context().get("aws:username"),
            Some(&ContextValue::from("alice"))
        );
        assert_eq!(
            r.context().get("aws:PrincipalAccount"),
            Some(&ContextValue::from("123456789012"))
        );
        // A caller cannot pose as another user through the context.
        let mut ctx = Context::new();
        ctx.insert("aws:username", "bob");
        let r = Request::new("s3:GetObject", "*")
            .with_context(ctx)
            .with_principal(Principal::Aws(
                "arn:aws:iam::123456789012:user/alice".into(),
            ))
            .with_principal_context();
        assert_eq!(
            r.context().get("aws:username"),
            Some(&ContextValue::from("alice"))
        );
        // Sessions do not get a made-up aws:PrincipalArn.
        let r = Request::new("s3:GetObject", "*")
            .with_principal(Principal::Aws(
                "arn:aws:sts::123456789012:assumed-role/app/s1".into(),
            ))
            .with_principal_context();
        assert_eq!(r.context().get("aws:PrincipalArn"), None);
    }
}
