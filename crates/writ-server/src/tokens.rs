//! Bearer tokens: operators' admin tokens and functions' one-time join tokens.
//!
//! A token reads `writ.<kind>.<id>.<secret>`: the id finds the stored record, the secret
//! (256 random bits) proves possession. Only SHA-256 of the secret is stored, and it is
//! compared in constant time. Logs and audit records name a token by its id alone.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::store::TokenKind;

/// A token as handed to its holder: shown once, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The public id.
    pub id: String,
    /// The whole token, `writ.<kind>.<id>.<secret>`.
    pub token: String,
    /// SHA-256 of the secret, to store.
    pub secret_hash: Vec<u8>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A token as presented: its kind and id, and the secret to check.
pub struct PresentedToken<'a> {
    /// What the token claims to be.
    pub kind: TokenKind,
    /// The id to look up.
    pub id: &'a str,
    secret: &'a str,
}

fn kind_label(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Admin => "admin",
        TokenKind::Join => "join",
    }
}

/// Makes a new token of `kind`.
pub fn issue(kind: TokenKind) -> Result<IssuedToken, ring::error::Unspecified> {
    let rng = SystemRandom::new();
    let mut id = [0u8; 12];
    rng.fill(&mut id)?;
    let mut secret = [0u8; 32];
    rng.fill(&mut secret)?;
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let secret = URL_SAFE_NO_PAD.encode(secret);
    Ok(IssuedToken {
        token: format!("writ.{}.{id}.{secret}", kind_label(kind)),
        secret_hash: hash_secret(&secret),
        id,
    })
}

/// Splits a presented token; `None` if it is not shaped like a writ token.
pub fn parse(token: &str) -> Option<PresentedToken<'_>> {
    let mut parts = token.split('.');
    let (Some("writ"), Some(kind), Some(id), Some(secret), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let kind = match kind {
        "admin" => TokenKind::Admin,
        "join" => TokenKind::Join,
        _ => return None,
    };
    let hex = |s: &str| s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id) && !secret.is_empty() && secret.len() <= 64).then_some(PresentedToken {
        kind,
        id,
        secret,
    })
}

impl PresentedToken<'_> {
    /// Whether the secret hashes to `stored_hash`, compared in constant time.
    pub fn secret_matches(&self, stored_hash: &[u8]) -> bool {
        hash_secret(self.secret).ct_eq(stored_hash).into()
    }
}

fn hash_secret(secret: &str) -> Vec<u8> {
    digest(&SHA256, secret.as_bytes()).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_parse_and_match_only_their_own_hash() {
        let a = issue(TokenKind::Join).unwrap();
        let b = issue(TokenKind::Join).unwrap();
        assert_ne!(a.token, b.token);
        let p = parse(&a.token).unwrap();
        assert_eq!(p.kind, TokenKind::Join);
        assert_eq!(p.id, a.id);
        assert!(p.secret_matches(&a.secret_hash));
        assert!(!p.secret_matches(&b.secret_hash));
        assert!(!format!("{a:?}").contains(&a.token));
        let admin = issue(TokenKind::Admin).unwrap();
        assert_eq!(parse(&admin.token).unwrap().kind, TokenKind::Admin);
    }

    #[test]
    fn malformed_tokens_are_not_parsed() {
        let id = "0123456789abcdef01234567";
        for bad in [
            "",
            "writ",
            "writ.join",
            &format!("writ.join.{id}"),
            &format!("writ.join.{id}."),
            &format!("writ.root.{id}.s"),
            "writ.join.xyz.s",
            &format!("writ.join.{id}.s.extra"),
            &format!("vault.join.{id}.s"),
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
        assert!(parse(&format!("writ.join.{id}.s")).is_some());
    }
}
