//! Gateways' own identities: register a gateway with the DNS names and IP addresses its
//! certificate may carry and how it logs in, list them, and make join tokens that log in
//! as one gateway (and never as a function).

use std::net::IpAddr;

use time::OffsetDateTime;
use writ_identity::ServerNames;

use super::{Error, Result};
use crate::attest::{self, AttestationRule};
use crate::duration;
use crate::state::AppState;
use crate::store::GatewayRecord;

/// A gateway to register.
pub struct Registration {
    /// Its name.
    pub name: String,
    /// How it may prove itself.
    pub attestation: Vec<AttestationRule>,
    /// The DNS names its certificate carries.
    pub dns: Vec<String>,
    /// The IP addresses its certificate carries.
    pub ips: Vec<String>,
    /// Its X.509-SVIDs' lifetime (`1h`), when not the server's default.
    pub x509_ttl: Option<String>,
}

/// Checks a DNS name a gateway's certificate may carry: lowercase labels of letters,
/// digits and `-` (not at either end), 1 to 63 bytes each, at most 253 in all; no wildcard, no trailing dot. `at` names the field in the error.
pub fn check_dns_name(name: &str, at: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Invalid(format!("{at}: {name:?} {why}")));
    if name.is_empty() || name.len() > 253 {
        return bad("is not a DNS name of 1 to 253 bytes");
    }
    if name.contains('*') {
        return bad("is a wildcard; a gateway's certificate names each host it serves");
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return bad(
                "is not a DNS name: use lowercase labels of letters, digits and '-', joined by '.'",
            );
        }
    }
    Ok(())
}

/// The names a registration gives, checked: each DNS name once and valid, each IP address
/// parsed; at least one name in all.
pub fn server_names(dns: &[String], ips: &[String]) -> Result<ServerNames> {
    let mut names = ServerNames::default();
    for (i, d) in dns.iter().enumerate() {
        check_dns_name(d, &format!("dns[{i}]"))?;
        if names.dns.contains(d) {
            return Err(Error::Invalid(format!("dns[{i}]: {d:?} is given twice")));
        }
        names.dns.push(d.clone());
    }
    for (i, text) in ips.iter().enumerate() {
        let ip: IpAddr = text.parse().map_err(|_| {
            Error::Invalid(format!("ips[{i}]: {text:?} is not an IPv4 or IPv6 address"))
        })?;
        if names.ips.contains(&ip) {
            return Err(Error::Invalid(format!("ips[{i}]: {text:?} is given twice")));
        }
        names.ips.push(ip);
    }
    if names.dns.is_empty() && names.ips.is_empty() {
        return Err(Error::Invalid(
            "dns: a gateway needs at least one DNS name or IP address for its certificate".into(),
        ));
    }
    Ok(names)
}

/// The names a stored gateway's certificate carries.
pub fn stored_names(g: &GatewayRecord) -> Result<ServerNames> {
    let dns: Vec<String> = serde_json::from_str(&g.dns_names)
        .map_err(|e| Error::internal("a gateway's stored DNS names are unreadable", e))?;
    let ips: Vec<String> = serde_json::from_str(&g.ip_addresses)
        .map_err(|e| Error::internal("a gateway's stored IP addresses are unreadable", e))?;
    server_names(&dns, &ips).map_err(|e| Error::internal("a gateway's stored names are invalid", e))
}

/// Registers a gateway: its name, rules and names checked, its TTL within the server's
/// maximum. A name already taken is [`crate::store::StoreError::Conflict`].
pub async fn register(state: &AppState, r: Registration) -> Result<GatewayRecord> {
    super::functions::valid_name(&r.name)?;
    let id = state.gateway_id(&r.name).map_err(Error::Invalid)?;
    attest::check_rules(&r.attestation).map_err(Error::Invalid)?;
    let names = server_names(&r.dns, &r.ips)?;
    let ttl = match &r.x509_ttl {
        Some(text) => {
            let ttl = duration::parse(text).map_err(|e| Error::Invalid(format!("x509Ttl: {e}")))?;
            if ttl > state.limits.x509_max_ttl {
                return Err(Error::Invalid(format!(
                    "x509Ttl: {text} is longer than the server's maximum, {}",
                    duration::format(state.limits.x509_max_ttl)
                )));
            }
            Some(ttl.whole_seconds())
        }
        None => None,
    };
    let ips: Vec<String> = names.ips.iter().map(ToString::to_string).collect();
    let record = GatewayRecord {
        name: r.name,
        spiffe_id: id.to_string(),
        attestation: serde_json::to_string(&r.attestation)
            .map_err(|e| Error::internal("could not encode the rules", e))?,
        dns_names: names_json(&names.dns)?,
        ip_addresses: names_json(&ips)?,
        x509_ttl_seconds: ttl,
        created_at: OffsetDateTime::now_utc().unix_timestamp(),
        revoked_at: None,
    };
    state.store.insert_gateway(&record).await?;
    Ok(record)
}

/// A list of names, as the store keeps it (JSON text).
fn names_json(names: &[String]) -> Result<String> {
    serde_json::to_string(names).map_err(|e| Error::internal("could not encode the names", e))
}

/// Every registered gateway.
pub async fn list(state: &AppState) -> Result<Vec<GatewayRecord>> {
    Ok(state.store.gateways().await?)
}

/// The gateway named `name`.
pub async fn get(state: &AppState, name: &str) -> Result<GatewayRecord> {
    state
        .store
        .gateway(name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no gateway named {name:?}")))
}

/// Makes a one-time join token for the gateway `name`, living `ttl` (`10m` by default, at
/// most `7d`). The token names the gateway and no function, so it logs in as this gateway
/// only. A revoked gateway, or one whose rules take no join tokens, gets none.
pub async fn create_join_token(
    state: &AppState,
    name: &str,
    ttl: Option<&str>,
) -> Result<super::functions::JoinToken> {
    let ttl = super::functions::join_token_ttl(ttl)?;
    let g = get(state, name).await?;
    if g.revoked_at.is_some() {
        return Err(Error::Conflict {
            code: "gatewayRevoked",
            message: format!("gateway {name:?} is revoked; a join token for it could not log in"),
        });
    }
    super::functions::join_token(
        state,
        super::functions::JoinHolder::Gateway(name),
        &g.attestation,
        ttl,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_located() {
        let ok = server_names(&["gw.internal".into()], &["127.0.0.1".into()]).unwrap();
        assert_eq!(ok.dns, ["gw.internal"]);
        assert_eq!(ok.ips, [IpAddr::from([127, 0, 0, 1])]);
        for (dns, ips, at) in [
            (vec!["*.internal"], vec![], "dns[0]"),
            (vec!["gw.internal", "GW.internal"], vec![], "dns[1]"),
            (vec!["a..b"], vec![], "dns[0]"),
            (vec!["gw.internal", "gw.internal"], vec![], "dns[1]"),
            (vec![], vec!["300.0.0.1"], "ips[0]"),
            (vec![], vec![], "dns"),
        ] {
            let dns: Vec<String> = dns.into_iter().map(String::from).collect();
            let ips: Vec<String> = ips.into_iter().map(String::from).collect();
            let e = server_names(&dns, &ips).unwrap_err().to_string();
            assert!(e.starts_with(at), "{dns:?} {ips:?}: {e}");
        }
    }
}
