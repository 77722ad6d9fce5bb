//! Secrets in environment variables: by name, by known credential formats, by entropy.
//! Findings name the variable, never its value.

use crate::model::Function;
use crate::node::{Kind, Node};
use crate::rules::{self, Out};

/// Words that make a variable name look like it holds a secret.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "privatekey",
    "private_key",
    "accesskey",
    "access_key",
    "credential",
    "signing_key",
    "auth_key",
    "encryption_key",
    "conn_str",
    "connection_string",
];

/// Endings that make the variable a reference to a secret (its ARN, name or path), which
/// is exactly the right way to do it.
const REFERENCE_SUFFIXES: &[&str] = &[
    "_arn",
    "_path",
    "_param",
    "_parameter",
    "_name",
    "_id",
    "_ref",
    "_url",
    "_uri",
    "_endpoint",
    "_ttl",
    "_header",
    "_type",
    "_version",
    "_file",
    "_region",
    "_key_id",
];

/// True when a variable name looks like it holds a secret.
pub(crate) fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('-', "_");
    let words = SECRET_WORDS.iter().any(|w| n.contains(w))
        || n == "pwd"
        || n.ends_with("_pwd")
        || n.starts_with("pwd_");
    words && !REFERENCE_SUFFIXES.iter().any(|s| n.ends_with(s))
}

/// The kind of credential a value is, if it has a known format.
pub(crate) fn credential_kind(value: &str) -> Option<&'static str> {
    if value.contains("-----BEGIN") && value.contains("PRIVATE KEY") {
        return Some("a private key (PEM block)");
    }
    let tokens = value.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    for t in tokens {
        if (t.starts_with("AKIA") || t.starts_with("ASIA"))
            && t.len() == 20
            && t.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Some("an AWS access key id");
        }
        for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
            if let Some(rest) = t.strip_prefix(prefix)
                && rest.len() >= 36
                && rest.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Some("a GitHub token");
            }
        }
        if let Some(rest) = t.strip_prefix("github_pat_")
            && rest.len() >= 22
        {
            return Some("a GitHub token");
        }
        for prefix in ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xapp-"] {
            if let Some(rest) = t.strip_prefix(prefix)
                && rest.len() >= 10
            {
                return Some("a Slack token");
            }
        }
        for prefix in ["sk_live_", "rk_live_", "sk_test_", "rk_test_", "whsec_"] {
            if let Some(rest) = t.strip_prefix(prefix)
                && rest.len() >= 16
                && rest.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Some("a Stripe key");
            }
        }
    }
    None
}

/// Shannon entropy in bits per character.
pub(crate) fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// True for a value that looks randomly generated: long, one token, mixed character
/// classes, high entropy, and not an ARN, URL or path.
pub(crate) fn high_entropy(value: &str) -> bool {
    let v = value.trim();
    if v.len() < 20 || v.len() > 4096 || v.contains(char::is_whitespace) {
        return false;
    }
    if v.starts_with("arn:")
        || v.starts_with('/')
        || v.contains("://")
        || v.contains("{{resolve:")
        || name_like(v)
    {
        return false;
    }
    let classes = [
        v.bytes().any(|b| b.is_ascii_uppercase()),
        v.bytes().any(|b| b.is_ascii_lowercase()),
        v.bytes().any(|b| b.is_ascii_digit()),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    let hex = v.bytes().all(|b| b.is_ascii_hexdigit());
    if hex {
        v.len() >= 32 && entropy(v) >= 3.0
    } else {
        classes >= 2 && entropy(v) >= 3.9
    }
}

/// True for a value made of words joined by separators, as names are and generated secrets
/// are not: model identifiers (`anthropic.claude-3-5-sonnet-20240620-v1:0`), host and image
/// names (`123456789012.dkr.ecr.us-east-1.amazonaws.com/orders:v1.2.3`), dotted class names
/// (`com.example.OrderHandler::handleRequest`), tags (`team:payments/env:production`).
/// Every part must be a word (lower case, upper case, Capitalized or camelCase without two
/// capitals in a row), a number, a word and a number (`llama3`, `70b`), or a short mix of
/// letters and digits (`v1`, `s3`, `x86`).
fn name_like(v: &str) -> bool {
    let mut parts = 0;
    for part in v.split(|c: char| ".-_:/@=+,".contains(c)) {
        if part.is_empty() {
            continue;
        }
        if !part.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return false;
        }
        let letters = part.bytes().all(|b| b.is_ascii_alphabetic());
        let digits = part.bytes().all(|b| b.is_ascii_digit());
        let word = letters && {
            let b = part.as_bytes();
            let lower_after_first = b[1..].iter().all(u8::is_ascii_lowercase);
            let upper = b.iter().all(u8::is_ascii_uppercase);
            let camel = b
                .windows(2)
                .all(|w| !(w[0].is_ascii_uppercase() && w[1].is_ascii_uppercase()))
                && b.iter().filter(|c| c.is_ascii_uppercase()).count() * 4 <= b.len();
            lower_after_first || upper || camel
        };
        // `llama3`, `ec2`, `70b`, `8k`: a word and a number.
        let split = part
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(part.len());
        let (head, tail) = part.split_at(split);
        let versioned = !head.is_empty()
            && head.bytes().all(|b| b.is_ascii_lowercase())
            && tail.bytes().all(|b| b.is_ascii_digit());
        let sized = part.len() <= 6
            && part.bytes().next().is_some_and(|b| b.is_ascii_digit())
            && part.trim_start_matches(|c: char| c.is_ascii_digit()).len() <= 2
            && part
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .bytes()
                .all(|b| b.is_ascii_lowercase());
        if !(word || digits || versioned || sized || part.len() <= 4) {
            return false;
        }
        parts += 1;
    }
    parts >= 2
}

/// True for a value that refers to a secret rather than holding one.
fn is_reference_value(v: &str) -> bool {
    let v = v.trim();
    v.is_empty()
        || v.starts_with("arn:")
        || v.starts_with('/')
        || v.contains("{{resolve:")
        || v.parse::<f64>().is_ok()
        || v.eq_ignore_ascii_case("true")
        || v.eq_ignore_ascii_case("false")
}

/// Checks a function's environment variables.
pub(crate) fn check_env(f: &Function, out: &mut Out) {
    for (key, value) in &f.env {
        let name = &key.name;
        let subject = format!("{}.environment.{name}", f.address);
        if let Some((_, from)) = f.secret_sources.iter().find(|(n, _)| n == name) {
            out.add(
                rules::ENV_SECRET_SOURCE,
                key.pos,
                subject,
                format!(
                    "{}: environment variable {name} receives {from}; it is stored in plain text in the function's configuration",
                    f.address
                ),
            );
            continue;
        }
        let literal = value.scalar();
        if let Some(v) = &literal
            && let Some(kind) = credential_kind(v)
        {
            out.add(
                rules::ENV_VALUE,
                key.pos,
                subject,
                format!("{}: environment variable {name} holds {kind}", f.address),
            );
            continue;
        }
        if secret_name(name) && holds_value(value) {
            out.add(
                rules::ENV_NAME,
                key.pos,
                subject,
                format!(
                    "{}: environment variable {name} looks like a secret and is set to a value, not a reference to Secrets Manager or SSM",
                    f.address
                ),
            );
            continue;
        }
        if let Some(v) = &literal
            && high_entropy(v)
        {
            out.add(
                rules::ENV_ENTROPY,
                key.pos,
                subject,
                format!(
                    "{}: environment variable {name} has a high-entropy value that looks like a generated secret",
                    f.address
                ),
            );
        }
    }
}

/// True when the variable is given a secret's value: a literal, or a Terraform variable
/// or local (the value still ends up in the function's configuration in plain text).
fn holds_value(value: &Node) -> bool {
    match &value.kind {
        Kind::Str(s) => !is_reference_value(s),
        Kind::Unresolved { text, .. } => {
            (text.starts_with("var.") || text.starts_with("local."))
                && !text.ends_with("_arn")
                && !text.ends_with("_path")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for n in [
            "DB_PASSWORD",
            "api_key",
            "STRIPE_SECRET",
            "GITHUB_TOKEN",
            "PRIVATE_KEY",
            "PWD",
        ] {
            assert!(secret_name(n), "{n}");
        }
        for n in [
            "DB_SECRET_ARN",
            "API_KEY_PARAM_PATH",
            "TABLE",
            "LOG_LEVEL",
            "TOKEN_URL",
            "SECRET_ID",
        ] {
            assert!(!secret_name(n), "{n}");
        }
    }

    #[test]
    fn credential_formats() {
        assert!(credential_kind("AKIAIOSFODNN7EXAMPLE").is_some());
        assert!(credential_kind("x ASIAIOSFODNN7EXAMPLE y").is_some());
        assert!(credential_kind("-----BEGIN RSA PRIVATE KEY-----\nabc").is_some());
        assert!(credential_kind(&format!("ghp_{}", "a1".repeat(18))).is_some());
        assert!(credential_kind("xoxb-123456789012-abcdef").is_some());
        assert!(credential_kind(&format!("sk_live_{}", "Ab1".repeat(8))).is_some());
        assert!(credential_kind("AKIA-short").is_none());
        assert!(credential_kind("orders-table").is_none());
    }

    #[test]
    fn entropy_separates_keys_from_words() {
        assert!(high_entropy("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
        assert!(high_entropy(
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        ));
        assert!(!high_entropy("orders-table-production"));
        assert!(!high_entropy(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"
        ));
        assert!(!high_entropy("https://api.example.com/v1/hooks"));
        assert!(!high_entropy("short"));
        // Generated secrets with separators still count.
        assert!(high_entropy(
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
        ));
        assert!(high_entropy("Zm9vYmFyYmF6cXV4-Q9xW2k7LmNpR4tY"));
    }

    #[test]
    fn names_with_separators_are_not_secrets() {
        for v in [
            "anthropic.claude-instant-v1",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "us.anthropic.claude-3-haiku-20240307-v1:0",
            "amazon.titan-embed-text-v2:0",
            "meta.llama3-1-70b-instruct-v1:0",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/orders:v1.2.3",
            "com.example.orders.OrderHandler::handleRequest",
            "team:payments/env:production/CostCenter:4711",
            "orders-service.internal.example.com",
        ] {
            assert!(!high_entropy(v), "{v}");
        }
    }
}
