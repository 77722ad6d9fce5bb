//! Starting the server: open the store, load or create the master key, initialise the
//! deployment on first start, load the signing keys, and serve the API until shut down.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use time::OffsetDateTime;
use tokio::net::TcpListener;
use writ_identity::TrustDomain;

use crate::admin::BOOTSTRAP_POLICY;
use crate::audit::{self as audit_log, Copies};
use crate::authority::{self, Authorities};
use crate::hook_destination::HookNetworks;
use crate::master_key::{MASTER_KEY_ENV, MasterKey, write_owner_only};
use crate::state::{AppState, Limits, ServerNames};
use crate::store::{Store, TokenKind, TokenRecord};
use crate::{api, master_key_rotation, server_lock, tls, tokens};

/// How the server is run.
#[derive(Clone)]
pub struct Settings {
    /// Where the master key, bootstrap token, trust bundle and SQLite database live.
    pub data_dir: PathBuf,
    /// A PostgreSQL URL; SQLite in `data_dir` when `None`.
    pub store_url: Option<String>,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The trust domain: required on first start, and must match afterwards.
    pub trust_domain: Option<String>,
    /// Lifetimes.
    pub limits: Limits,
    /// Extra DNS names and IP addresses for the server certificate.
    pub tls_names: Vec<String>,
    /// The master key from the environment, if given there.
    pub master_key_env: Option<String>,
    /// This server's name in audit events.
    pub node: String,
    /// Where committed audit events are also copied.
    pub audit_copies: Copies,
    /// Secret rotation commands the API may name, by name (`--rotation-hook NAME=PATH`).
    pub rotation_hooks: Vec<(String, PathBuf)>,
    /// Networks HTTPS rotation hooks may reach although they are not public
    /// (`--hook-allow-net CIDR`).
    pub hook_networks: HookNetworks,
    /// AWS IAM attestation: this server's id (`None`: the trust domain) and its STS
    /// endpoint.
    pub aws_iam: AwsIamConfig,
    /// The AWS account id the AWS-compatible APIs' ARNs name (`--aws-account-id`).
    pub aws_account_id: String,
}

/// How AWS IAM attestations are checked, as configured (`--aws-iam-server-id`,
/// `--aws-sts-endpoint`).
#[derive(Debug, Clone, Default)]
pub struct AwsIamConfig {
    /// The id a signed request must name in `x-writ-server-id`; the trust domain when
    /// `None`.
    pub server_id: Option<String>,
    /// Where GetCallerIdentity requests are sent; `https://sts.{region}.amazonaws.com` by
    /// default.
    pub sts_endpoint: writ_identity::aws_iam::StsEndpoint,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the master key, nor the store URL, which may carry a password.
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("store", &self.store_url.as_ref().map(|_| "(set)"))
            .field("listen", &self.listen)
            .field("trust_domain", &self.trust_domain)
            .field("limits", &self.limits)
            .field("tls_names", &self.tls_names)
            .field("rotation_hooks", &self.rotation_hooks)
            .field("hook_networks", &self.hook_networks.allowed())
            .field("aws_iam", &self.aws_iam)
            .field("aws_account_id", &self.aws_account_id)
            .field(
                "master_key_env",
                &self.master_key_env.as_ref().map(|_| "(set)"),
            )
            .finish()
    }
}

/// A running server: its address, and how to stop it.
pub struct Running {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    /// The state, for embedding.
    pub state: Arc<AppState>,
    /// Held while the server runs, so a master-key rotation cannot start.
    _lock: server_lock::ServerLock,
}

/// Why the server could not start. Each message says what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

fn err(context: &str, e: impl std::fmt::Display) -> StartError {
    StartError(format!("{context}: {e}"))
}

/// Opens and, on first start, initialises the deployment; then binds the listener.
/// Prints the bootstrap admin token once, on the start that created it.
pub async fn start(settings: Settings) -> Result<(Running, TcpListener), StartError> {
    std::fs::create_dir_all(&settings.data_dir)
        .map_err(|e| err(&format!("--data-dir {}", settings.data_dir.display()), e))?;
    let url = match &settings.store_url {
        Some(url) => url.clone(),
        None => sqlite_url(&settings.data_dir.join("writ.db"))?,
    };
    let store = Store::open(&url)
        .await
        .map_err(|e| err("opening the store", e))?;
    let lock = server_lock::acquire(&settings.data_dir, &store, server_lock::Mode::Server)
        .await
        .map_err(StartError)?;
    if settings.master_key_env.is_none()
        && let Some(done) = master_key_rotation::settle_interrupted(&settings.data_dir, &store)
            .await
            .map_err(|e| err("master key", e))?
    {
        tracing::warn!("{done}");
    }
    let existing = store
        .meta()
        .await
        .map_err(|e| err("reading the store", e))?;
    let master = load_master_key(&settings, existing.is_some())?;

    let now = OffsetDateTime::now_utc();
    let meta = match existing {
        Some(meta) => meta,
        None => {
            let Some(td) = &settings.trust_domain else {
                return Err(StartError(
                    "this store is new: give --trust-domain (for example example.org) on the first start".into(),
                ));
            };
            let td = TrustDomain::new(td).map_err(|e| err("--trust-domain", e))?;
            initialise(&store, &td, &master, &settings, now).await?;
            store
                .meta()
                .await
                .map_err(|e| err("reading the store", e))?
                .ok_or_else(|| StartError("initialisation did not persist".into()))?
        }
    };
    if let Some(td) = &settings.trust_domain
        && td != &meta.trust_domain
    {
        return Err(StartError(format!(
            "--trust-domain {td} does not match this store's trust domain {}; a trust domain never changes",
            meta.trust_domain
        )));
    }
    let trust_domain =
        TrustDomain::new(&meta.trust_domain).map_err(|e| err("stored trust domain", e))?;
    let records = store
        .keys()
        .await
        .map_err(|e| err("reading signing keys", e))?;
    let authorities = Authorities::load(&trust_domain, meta.key_generation, records, &master)
        .map_err(|e| {
            StartError(format!(
                "{e}; if {MASTER_KEY_ENV} or master.key changed, restore the original master key"
            ))
        })?;
    let feed_head = store
        .revocation_head()
        .await
        .map_err(|e| err("reading the revocation feed", e))?;

    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| err(&format!("--listen {}", settings.listen), e))?;
    let addr = listener.local_addr().map_err(|e| err("listener", e))?;
    let names = server_names(&settings.tls_names, addr.ip());
    let aws = crate::aws::AwsState::new(&settings.aws_account_id).map_err(StartError)?;
    let audit = audit_log::open(&store, &master, settings.audit_copies.clone())
        .await
        .map_err(|e| err("opening the audit log", e))?;
    let aws_iam = crate::attest::AwsIamSettings {
        server_id: settings
            .aws_iam
            .server_id
            .clone()
            .unwrap_or_else(|| trust_domain.to_string()),
        sts_endpoint: settings.aws_iam.sts_endpoint.clone(),
    };
    let state = AppState::new(
        store,
        trust_domain,
        settings.limits.clone(),
        audit,
        settings.node.clone(),
        master,
        authorities,
        0,
        names,
        Some(settings.data_dir.join("ca.pem")),
        settings.rotation_hooks.clone(),
        settings.hook_networks.clone(),
        aws_iam,
        aws,
        now,
    )
    .map_err(|e| err("TLS", e))?;
    // Remember every revocation so far (serials to refuse), then follow the feed.
    state
        .take_revocations()
        .await
        .map_err(|e| err("reading the revocation feed", e))?;
    debug_assert!(*state.feed_head.borrow() >= feed_head);
    Ok((
        Running {
            addr,
            state,
            _lock: lock,
        },
        listener,
    ))
}

/// Serves until `shutdown` resolves, refreshing state from the store every second.
pub async fn serve(
    running: &Running,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let state = running.state.clone();
    let refresher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(StdDuration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = state.refresh(OffsetDateTime::now_utc()).await {
                tracing::warn!(error = %e, "could not refresh from the store");
            }
            if let Err(e) = crate::rotation::start_due(&state).await {
                tracing::warn!(error = %e, "could not look for due secret rotations");
            }
        }
    });
    let router = api::router(running.state.clone());
    tls::serve(listener, running.state.tls.clone(), router, shutdown).await;
    refresher.abort();
}

/// The master key: made on the first start only. A store that is already initialised was
/// sealed under a key that a new one cannot open, so a missing key stops the server before
/// it writes anything, rather than leaving a useless new key file behind.
fn load_master_key(settings: &Settings, initialised: bool) -> Result<MasterKey, StartError> {
    let path = settings.data_dir.join("master.key");
    let env = settings.master_key_env.as_deref();
    if !initialised {
        return MasterKey::load_or_create(env, &path)
            .map(|(key, _)| key)
            .map_err(|e| StartError(e.to_string()));
    }
    if env.is_none() && !path.exists() {
        return Err(StartError(format!(
            "the master key is missing: this store is initialised, but {} does not exist and \
             {MASTER_KEY_ENV} is not set; restore the master key that initialised it (a new key \
             cannot open the CA, the signing keys or the secrets)",
            path.display()
        )));
    }
    MasterKey::load(env, &path).map_err(|e| StartError(e.to_string()))
}

async fn initialise(
    store: &Store,
    td: &TrustDomain,
    master: &MasterKey,
    settings: &Settings,
    now: OffsetDateTime,
) -> Result<(), StartError> {
    let t = now.unix_timestamp();
    let ca = authority::new_ca_record(td, master, now, t).map_err(|e| err("creating the CA", e))?;
    let jwt = authority::new_jwt_record(td, master, now, t)
        .map_err(|e| err("creating the JWT signing key", e))?;
    let token = tokens::issue(TokenKind::Admin)
        .map_err(|_| StartError("the system random source failed".into()))?;
    let record = TokenRecord {
        id: token.id.clone(),
        kind: TokenKind::Admin,
        secret_hash: token.secret_hash.clone(),
        function_name: None,
        gateway_name: None,
        policies: Some(
            serde_json::to_string(&[BOOTSTRAP_POLICY]).map_err(|e| err("bootstrap policy", e))?,
        ),
        description: "bootstrap admin token".into(),
        created_at: t,
        expires_at: None,
        used_at: None,
        revoked_at: None,
    };
    let created = store
        .initialize(td.as_str(), t, &[ca, jwt], &record)
        .await
        .map_err(|e| err("initialising the store", e))?;
    if !created {
        // Another server initialised the shared store first; its token stands.
        return Ok(());
    }
    let path = settings.data_dir.join("admin-token");
    let written = write_owner_only(&path, format!("{}\n", token.token).as_bytes());
    println!("writ: initialised trust domain {td}");
    println!("writ: bootstrap admin token (shown once; revoke it when you have scoped tokens):");
    println!("{}", token.token);
    match written {
        Ok(()) => println!("writ: also written to {} (mode 0600)", path.display()),
        Err(e) => println!(
            "writ: could not write {}: {e}; keep the token above",
            path.display()
        ),
    }
    Ok(())
}

/// The sqlx URL of a SQLite file: an absolute path, percent-encoded, so any directory name
/// (spaces, `#`, `?`) is read as a path.
/// The sqlx URL of a SQLite database file, with awkward characters in its path encoded.
pub fn sqlite_url(file: &std::path::Path) -> Result<String, StartError> {
    let absolute =
        std::path::absolute(file).map_err(|e| err(&format!("--data-dir {}", file.display()), e))?;
    let text = absolute.to_str().ok_or_else(|| {
        StartError(format!(
            "--data-dir {}: the path must be valid UTF-8",
            absolute.display()
        ))
    })?;
    let mut url = String::from("sqlite://");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

fn server_names(extra: &[String], listen_ip: IpAddr) -> ServerNames {
    let mut dns = vec!["localhost".to_string()];
    let mut ips: Vec<IpAddr> = vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    if !listen_ip.is_unspecified() && !ips.contains(&listen_ip) {
        ips.push(listen_ip);
    }
    for name in extra {
        match name.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if !dns.contains(name) => dns.push(name.clone()),
            Err(_) => {}
        }
    }
    ServerNames { dns, ips }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_encode_awkward_directory_names() {
        let url = sqlite_url(std::path::Path::new("/srv/my data#1?/writ.db")).unwrap();
        assert_eq!(url, "sqlite:///srv/my%20data%231%3F/writ.db?mode=rwc");
        let relative = sqlite_url(std::path::Path::new("d/writ.db")).unwrap();
        assert!(relative.starts_with("sqlite:///"), "{relative}");
    }
}
