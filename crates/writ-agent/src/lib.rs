//! writ's agent runs beside one function (a sidecar, or an AWS Lambda extension). At start
//! it attests (join token, OIDC token or AWS IAM) and gets an X.509-SVID for a key it made; it keeps
//! the SVID fresh (half life, jitter, backoff), and serves on localhost what the function
//! needs without security code of its own: its secrets (in the AWS Parameters and Secrets
//! Lambda Extension's shape), JWT-SVIDs, its SVID, and plain-HTTP listeners whose calls it
//! carries to the gateway over mTLS.

pub mod extension;
pub mod guard;
pub mod local;
pub mod outbound;
pub mod revocation;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use writ_client::fetch::HttpFetcher;
use writ_client::secrets::{CachePolicy, SecretCache};

use writ_client::identity::{self, Evidence, Identity};

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `https://HOST:PORT` of `writ server`.
    pub server: String,
    /// The trust bundle to verify the server with at first contact (PEM).
    pub ca_pem: String,
    /// The function this agent is beside.
    pub function: String,
    /// How it proves itself.
    pub evidence: Evidence,
    /// Where the localhost endpoints listen (2773, as the AWS extension, by default).
    pub listen: SocketAddr,
    /// The token callers must present in `X-Aws-Parameters-Secrets-Token`.
    pub caller_token: String,
    /// Outbound listeners: a name and a loopback address each.
    pub outbound: Vec<(String, SocketAddr)>,
    /// The gateway outbound calls go to (`https://HOST:PORT`).
    pub gateway: Option<String>,
    /// The CA to verify the gateway with (PEM); the trust bundle when `None`.
    pub gateway_ca_pem: Option<String>,
    /// Where to write the SVID, its key (0600) and the bundle, for processes that need files.
    pub svid_dir: Option<PathBuf>,
    /// The secrets cache's policy.
    pub cache: CachePolicy,
    /// Secrets to fetch before saying ready.
    pub prefetch: Vec<String>,
    /// How long attestation keeps trying while the server cannot be reached
    /// ([`Identity::attest_within`]).
    pub init_budget: std::time::Duration,
}

/// A running agent's addresses.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The function's SPIFFE ID.
    pub spiffe_id: String,
    /// The localhost endpoints.
    pub local: SocketAddr,
    /// The outbound listeners.
    pub outbound: Vec<(String, SocketAddr)>,
}

/// Why the agent could not start.
#[derive(Debug)]
pub enum StartError {
    /// Attestation failed: refused, or the server unreachable for the whole budget.
    Attestation(writ_client::identity::AttestError),
    /// Anything after (a listener, a prefetch, the configuration).
    Other(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Attestation(e) => write!(f, "attestation: {e}"),
            StartError::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for StartError {}

impl From<String> for StartError {
    fn from(e: String) -> StartError {
        StartError::Other(e)
    }
}

impl From<&str> for StartError {
    fn from(e: &str) -> StartError {
        StartError::Other(e.to_string())
    }
}

/// Attests, starts every listener and background task, prefetches, and returns once the
/// agent is ready; the tasks run on the current runtime.
pub async fn start(config: Config) -> Result<(Ready, Arc<Identity>), StartError> {
    let identity = Identity::attest_within(
        &config.server,
        &config.ca_pem,
        &config.function,
        &config.evidence,
        config.svid_dir.clone(),
        config.init_budget,
    )
    .await
    .map_err(StartError::Attestation)?;
    let svid = identity.svid();
    let fetcher = HttpFetcher::trusting(
        &config.server,
        identity.trust.clone(),
        identity.source.clone(),
    )?;
    let secrets = SecretCache::new(fetcher, config.cache);
    let revoked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for name in &config.prefetch {
        secrets
            .get(name)
            .await
            .map_err(|e| format!("--prefetch {name}: {e}"))?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", config.listen))?;
    let local_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let local = Arc::new(local::Local::new(
        identity.clone(),
        secrets.clone(),
        config.caller_token.clone(),
        revoked.clone(),
    ));
    tokio::spawn(local::serve(
        listener,
        guard::OwnAddress::new(local_addr),
        local,
    ));
    let mut outbound = Vec::new();
    if !config.outbound.is_empty() {
        let gateway = config
            .gateway
            .clone()
            .ok_or("--outbound needs --gateway URL: the gateway the calls go to")?;
        // The gateway's own CA if one was given; the trust bundle, followed through CA
        // rotations, if not.
        let trust = match &config.gateway_ca_pem {
            Some(pem) => writ_client::fetch::TrustBundle::from_pem(pem)
                .map_err(|e| format!("--gateway-ca: {e}"))?,
            None => identity.trust.clone(),
        };
        for (name, addr) in &config.outbound {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("--outbound {name}={addr}: {e}"))?;
            let bound = l
                .local_addr()
                .map_err(|e| format!("--outbound {name}={addr}: {e}"))?;
            outbound.push((name.clone(), bound));
            tokio::spawn(outbound::serve(
                l,
                guard::OwnAddress::new(bound),
                revoked.clone(),
                identity.clone(),
                gateway.trim_end_matches('/').to_string(),
                trust.clone(),
            ));
        }
    }
    tokio::spawn(identity::keep_fresh(identity.clone()));
    tokio::spawn(revocation::follow(identity.clone(), revoked, secrets));
    Ok((
        Ready {
            spiffe_id: svid.spiffe_id,
            local: local_addr,
            outbound,
        },
        identity,
    ))
}
