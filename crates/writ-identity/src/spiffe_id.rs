//! SPIFFE IDs and trust domains, parsed and checked as the SPIFFE ID specification requires.

use std::fmt;
use std::str::FromStr;

/// The longest SPIFFE ID the specification allows, in bytes.
const MAX_ID_BYTES: usize = 2048;
/// The longest trust domain name the specification allows, in bytes.
const MAX_TRUST_DOMAIN_BYTES: usize = 255;

/// Why a SPIFFE ID or trust domain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeIdError {
    /// It does not start with `spiffe://`.
    #[error("a SPIFFE ID starts with \"spiffe://\" (lower case)")]
    Scheme,
    /// The trust domain is empty.
    #[error("the trust domain is empty")]
    EmptyTrustDomain,
    /// The trust domain has a character outside `[a-z0-9._-]`.
    #[error(
        "the trust domain may hold only lower-case letters, digits, '.', '-' and '_' (found {0:?}; ports and user info are not allowed)"
    )]
    TrustDomainChar(char),
    /// The trust domain is longer than 255 bytes.
    #[error("the trust domain is longer than 255 bytes")]
    TrustDomainTooLong,
    /// A path segment is empty (`//` or a trailing `/`).
    #[error("the path has an empty segment (\"//\" or a trailing \"/\")")]
    EmptySegment,
    /// A path segment is `.` or `..`.
    #[error("the path may not contain \".\" or \"..\" segments")]
    DotSegment,
    /// A path segment has a character outside `[A-Za-z0-9._-]`.
    #[error(
        "path segments may hold only letters, digits, '.', '-' and '_' (found {0:?}; queries and fragments are not allowed)"
    )]
    PathChar(char),
    /// The whole ID is longer than 2048 bytes.
    #[error("a SPIFFE ID is at most 2048 bytes")]
    TooLong,
    /// A function name is not one path segment.
    #[error("a function name is one path segment of letters, digits, '.', '-' and '_', not {0:?}")]
    FunctionName(String),
    /// A gateway name is not one path segment.
    #[error("a gateway name is one path segment of letters, digits, '.', '-' and '_', not {0:?}")]
    GatewayName(String),
}

/// A trust domain: the authority part of a SPIFFE ID, such as `example.org`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Checks a trust domain name.
    pub fn new(name: &str) -> Result<TrustDomain, SpiffeIdError> {
        if name.is_empty() {
            return Err(SpiffeIdError::EmptyTrustDomain);
        }
        if name.len() > MAX_TRUST_DOMAIN_BYTES {
            return Err(SpiffeIdError::TrustDomainTooLong);
        }
        if let Some(c) = name.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
        }) {
            return Err(SpiffeIdError::TrustDomainChar(c));
        }
        Ok(TrustDomain(name.to_string()))
    }

    /// The name, e.g. `example.org`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trust domain's own SPIFFE ID, `spiffe://example.org`, which CA certificates carry.
    pub fn id(&self) -> SpiffeId {
        SpiffeId {
            text: format!("spiffe://{}", self.0),
            trust_domain_len: self.0.len(),
        }
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SPIFFE ID: `spiffe://trust-domain/path`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    text: String,
    trust_domain_len: usize,
}

impl SpiffeId {
    /// Parses and checks a SPIFFE ID.
    pub fn parse(text: &str) -> Result<SpiffeId, SpiffeIdError> {
        if text.len() > MAX_ID_BYTES {
            return Err(SpiffeIdError::TooLong);
        }
        let rest = text
            .strip_prefix("spiffe://")
            .ok_or(SpiffeIdError::Scheme)?;
        let (domain, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        TrustDomain::new(domain)?;
        if !path.is_empty() {
            check_path(path)?;
        }
        Ok(SpiffeId {
            text: text.to_string(),
            trust_domain_len: domain.len(),
        })
    }

    /// The ID of a writ function: `spiffe://<trust-domain>/fn/<name>`.
    pub fn for_function(trust_domain: &TrustDomain, name: &str) -> Result<SpiffeId, SpiffeIdError> {
        if name.is_empty() || name.contains('/') || check_path(&format!("/{name}")).is_err() {
            return Err(SpiffeIdError::FunctionName(name.to_string()));
        }
        SpiffeId::parse(&format!("spiffe://{trust_domain}/fn/{name}"))
    }

    /// The ID of a writ gateway: `spiffe://<trust-domain>/writ/gateway/<name>`. No function
    /// can have it (a function's ID is `/fn/<name>`, one segment), nor a gateway a
    /// function's.
    pub fn for_gateway(trust_domain: &TrustDomain, name: &str) -> Result<SpiffeId, SpiffeIdError> {
        if name.is_empty() || name.contains('/') || check_path(&format!("/{name}")).is_err() {
            return Err(SpiffeIdError::GatewayName(name.to_string()));
        }
        SpiffeId::parse(&format!("spiffe://{trust_domain}/writ/gateway/{name}"))
    }

    /// The trust domain name.
    pub fn trust_domain(&self) -> &str {
        &self.text["spiffe://".len()..][..self.trust_domain_len]
    }

    /// The path, empty for a trust domain's own ID.
    pub fn path(&self) -> &str {
        &self.text["spiffe://".len() + self.trust_domain_len..]
    }

    /// The whole ID.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn check_path(path: &str) -> Result<(), SpiffeIdError> {
    // `path` starts with '/', so the first split piece is empty and skipped.
    for segment in path.split('/').skip(1) {
        match segment {
            "" => return Err(SpiffeIdError::EmptySegment),
            "." | ".." => return Err(SpiffeIdError::DotSegment),
            _ => {}
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return Err(SpiffeIdError::PathChar(c));
        }
    }
    Ok(())
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<SpiffeId, SpiffeIdError> {
        SpiffeId::parse(s)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_ids() {
        let id = SpiffeId::parse("spiffe://example.org/fn/orders").unwrap();
        assert_eq!(id.trust_domain(), "example.org");
        assert_eq!(id.path(), "/fn/orders");
        let td = SpiffeId::parse("spiffe://prod-1.example_org").unwrap();
        assert_eq!(td.path(), "");
        assert!(SpiffeId::parse("spiffe://example.org/A-b_c.9/x").is_ok());
        let td = TrustDomain::new("example.org").unwrap();
        let g = SpiffeId::for_gateway(&td, "edge").unwrap();
        assert_eq!(g.path(), "/writ/gateway/edge");
        assert!(SpiffeId::for_gateway(&td, "a/b").is_err());
        assert!(SpiffeId::for_gateway(&td, "").is_err());
        let f = SpiffeId::for_function(&td, "payments");
        assert_eq!(f.unwrap().as_str(), "spiffe://example.org/fn/payments");
        for bad in ["", "orders/admin", "..", "a b"] {
            assert!(
                matches!(
                    SpiffeId::for_function(&td, bad),
                    Err(SpiffeIdError::FunctionName(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_what_the_specification_forbids() {
        use SpiffeIdError::*;
        let cases = [
            ("https://example.org/a", Scheme),
            ("SPIFFE://example.org/a", Scheme),
            ("spiffe:///a", EmptyTrustDomain),
            ("spiffe://Example.org/a", TrustDomainChar('E')),
            ("spiffe://example.org:443/a", TrustDomainChar(':')),
            ("spiffe://user@example.org/a", TrustDomainChar('@')),
            ("spiffe://example.org/", EmptySegment),
            ("spiffe://example.org//a", EmptySegment),
            ("spiffe://example.org/a/", EmptySegment),
            ("spiffe://example.org/a/../b", DotSegment),
            ("spiffe://example.org/./b", DotSegment),
            ("spiffe://example.org/a?x=1", PathChar('?')),
            ("spiffe://example.org/a#f", PathChar('#')),
            ("spiffe://example.org/a%20b", PathChar('%')),
            ("spiffe://example.org/caf\u{e9}", PathChar('\u{e9}')),
        ];
        for (text, want) in cases {
            assert_eq!(SpiffeId::parse(text), Err(want), "{text}");
        }
        let long = format!("spiffe://example.org/{}", "a".repeat(2048));
        assert_eq!(SpiffeId::parse(&long), Err(TooLong));
        assert_eq!(TrustDomain::new(&"a".repeat(256)), Err(TrustDomainTooLong));
    }
}
