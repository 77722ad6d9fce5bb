//! The server's shared state: the store, the unwrapped signing keys, the revocations seen
//! so far, and the TLS configuration built from them. A background task keeps it in step
//! with the database, so several servers on one PostgreSQL database converge within a
//! second of a rotation or revocation made through any of them.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use time::{Duration, OffsetDateTime};
use tokio::sync::watch;
use writ_identity::{SpiffeId, TrustDomain};

use crate::audit::{AuditError, AuditLog};
use crate::authority::Authorities;
use crate::master_key::MasterKey;
use crate::store::{FunctionRecord, RevocationKind, Store};
use crate::tls;
use crate::tls::ConnInfo;
use writ_audit::{Event, Outcome};

/// How long the server's own TLS certificate lives; it is re-issued at half life.
const SERVER_CERT_LIFETIME: Duration = Duration::hours(24);

/// Lifetimes and limits, from flags.
#[derive(Debug, Clone)]
pub struct Limits {
    /// X.509-SVID lifetime when a function sets none.
    pub x509_ttl: Duration,
    /// The longest X.509-SVID lifetime any function may have.
    pub x509_max_ttl: Duration,
    /// JWT-SVID lifetime when a caller asks for none.
    pub jwt_ttl: Duration,
    /// The longest JWT-SVID lifetime a caller may ask for.
    pub jwt_max_ttl: Duration,
}

/// The TLS names the server certificate carries.
#[derive(Debug, Clone)]
pub struct ServerNames {
    /// DNS names.
    pub dns: Vec<String>,
    /// IP addresses.
    pub ips: Vec<IpAddr>,
}

/// Everything a request handler needs.
pub struct AppState {
    /// The store.
    pub store: Store,
    /// The counters `/metrics` shows ([`crate::metrics`]).
    pub metrics: crate::metrics::Metrics,
    /// The trust domain.
    pub trust_domain: TrustDomain,
    /// Lifetimes.
    pub limits: Limits,
    /// The audit log.
    pub audit: AuditLog,
    /// This server's name in audit events.
    pub node: String,
    /// The master key, to unwrap keys after a rotation.
    pub master: MasterKey,
    /// The signing keys.
    pub authorities: RwLock<Arc<Authorities>>,
    /// Serials revoked so far (lowercase hex).
    pub revoked_serials: RwLock<HashSet<String>>,
    /// The newest revocation feed position this server has seen.
    pub feed_head: watch::Sender<i64>,
    /// An HTTPS client for fetching JWKS documents and calling STS (redirects not followed).
    pub http: reqwest::Client,
    /// Every cache ([`crate::cache`]): functions, secrets, compiled policies, JWKS.
    pub caches: crate::cache::Caches,
    /// The TLS configuration new connections get.
    pub tls: Arc<RwLock<Arc<rustls::ServerConfig>>>,
    /// Names for the server certificate.
    pub names: ServerNames,
    /// Where the current trust bundle is written for local CLIs (`<data-dir>/ca.pem`).
    pub bundle_file: Option<PathBuf>,
    /// Rotation commands the operator registered, by name.
    pub rotation_hooks: Vec<(String, PathBuf)>,
    /// Where HTTPS rotation hooks may connect.
    pub hook_networks: Arc<crate::hook_destination::HookNetworks>,
    /// Failed logins and admin-token guesses, by source.
    pub auth_failures: crate::throttle::FailureThrottle,
    /// How AWS IAM attestations are checked: this server's id and its STS endpoint.
    pub aws_iam: crate::attest::AwsIamSettings,
    /// The AWS-compatible surfaces' account id and signing-key cache.
    pub aws: crate::aws::AwsState,
    /// The console's sessions, in memory only ([`crate::console::session`]).
    pub console_sessions: crate::console::session::Sessions,
    tls_state: Mutex<TlsState>,
}

/// What the current TLS configuration was built from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct TlsState {
    bundle_ids: Vec<String>,
    signing_ca: String,
    renew_at: i64,
}

impl AppState {
    /// Builds the state and its first TLS configuration.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        trust_domain: TrustDomain,
        limits: Limits,
        audit: AuditLog,
        node: String,
        master: MasterKey,
        authorities: Authorities,
        feed_head: i64,
        names: ServerNames,
        bundle_file: Option<PathBuf>,
        rotation_hooks: Vec<(String, PathBuf)>,
        hook_networks: crate::hook_destination::HookNetworks,
        aws_iam: crate::attest::AwsIamSettings,
        aws: crate::aws::AwsState,
        now: OffsetDateTime,
    ) -> Result<Arc<AppState>, String> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(native_roots_client_config()?)
            // A JWKS URL passed the rule check (https, or http to loopback), an STS
            // endpoint is the operator's; a redirect must not lead the server anywhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let (config, tls_state) = build_tls(&trust_domain, &authorities, &names, now)?;
        let state = AppState {
            store,
            metrics: crate::metrics::Metrics::default(),
            trust_domain,
            limits,
            audit,
            node,
            master,
            authorities: RwLock::new(Arc::new(authorities)),
            revoked_serials: RwLock::new(HashSet::new()),
            feed_head: watch::channel(feed_head).0,
            http,
            caches: crate::cache::Caches::default(),
            tls: Arc::new(RwLock::new(Arc::new(config))),
            names,
            bundle_file,
            rotation_hooks,
            hook_networks: Arc::new(hook_networks),
            auth_failures: crate::throttle::FailureThrottle::default(),
            aws_iam,
            aws,
            console_sessions: crate::console::session::Sessions::default(),
            tls_state: Mutex::new(tls_state),
        };
        state.write_bundle_file(now);
        Ok(Arc::new(state))
    }

    /// The current signing keys.
    pub fn authorities(&self) -> Arc<Authorities> {
        self.authorities
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether an X.509-SVID serial (lowercase hex) is revoked.
    pub fn serial_revoked(&self, serial: &str) -> bool {
        self.revoked_serials
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(serial)
    }

    /// A function's record for an SVID-authenticated call (renewal, JWT-SVIDs, the feed):
    /// from the cache when read within [`crate::cache::FUNCTION_TTL`], else from the store.
    pub async fn function_for_svid(
        &self,
        name: &str,
    ) -> Result<Option<FunctionRecord>, crate::store::StoreError> {
        if let Some(found) = self.caches.functions.get(name) {
            return Ok(found);
        }
        let found = self.store.function(name).await?;
        self.caches
            .functions
            .insert(name.to_string(), found.clone());
        Ok(found)
    }

    /// Drops a function from the cache after this server changed it.
    pub fn forget_function(&self, name: &str) {
        self.caches.functions.remove(name);
    }

    /// A function's SPIFFE ID.
    pub fn function_id(&self, name: &str) -> Result<SpiffeId, String> {
        SpiffeId::for_function(&self.trust_domain, name).map_err(|e| e.to_string())
    }

    /// The SPIFFE ID of the gateway `name`: `spiffe://TD/writ/gateway/NAME`.
    pub fn gateway_id(&self, name: &str) -> Result<SpiffeId, String> {
        SpiffeId::for_gateway(&self.trust_domain, name).map_err(|e| e.to_string())
    }

    /// An audit event for this request, with time, node, request id, source and latency.
    pub fn event(
        &self,
        conn: &ConnInfo,
        actor: &str,
        authenticated_by: &str,
        action: &str,
        resource: &str,
        outcome: Outcome,
    ) -> Event {
        let time = OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut event = Event::new(&time, actor, authenticated_by, action, resource, outcome);
        event.node = self.node.clone();
        event.request_id = conn.request_id.clone();
        event.source = Some(conn.remote.ip().to_string());
        event.latency_us =
            Some(u64::try_from(conn.started.elapsed().as_micros()).unwrap_or(u64::MAX));
        event
    }

    /// An audit event for something the server does on its own (a scheduled rotation).
    pub fn system_event(
        &self,
        actor: &str,
        authenticated_by: &str,
        action: &str,
        resource: &str,
        outcome: Outcome,
    ) -> Event {
        let time = OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut event = Event::new(&time, actor, authenticated_by, action, resource, outcome);
        event.node = self.node.clone();
        event
    }

    /// Queues an audit event (committed with the next batch). The error must fail the
    /// operation that produced it.
    #[allow(clippy::too_many_arguments)]
    pub fn audit(
        &self,
        conn: &ConnInfo,
        actor: &str,
        authenticated_by: &str,
        action: &str,
        resource: &str,
        outcome: Outcome,
        reason: Option<String>,
        serial: Option<String>,
    ) -> Result<(), AuditError> {
        let mut event = self.event(conn, actor, authenticated_by, action, resource, outcome);
        event.reason = reason;
        event.serial = serial;
        self.audit.record(event)
    }

    /// The name an admin token goes by in audit events: `token:` and the HMAC of its id.
    pub fn token_actor(&self, token_id: &str) -> String {
        format!("token:{}", self.audit.hmac(token_id))
    }

    /// Brings the state in step with the database: reloads signing keys after a rotation,
    /// takes in new revocations, and rebuilds the TLS configuration when the bundle or the
    /// signing CA changed or the server certificate is at half life.
    pub async fn refresh(&self, now: OffsetDateTime) -> Result<(), String> {
        let started = std::time::Instant::now();
        let meta = self
            .store
            .meta()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the store lost its initialisation record")?;
        if meta.key_generation != self.authorities().generation {
            let records = self.store.keys().await.map_err(|e| e.to_string())?;
            let loaded = Authorities::load(
                &self.trust_domain,
                meta.key_generation,
                records,
                &self.master,
            )?;
            *self
                .authorities
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(loaded);
        }
        self.take_revocations().await?;
        self.store
            .latency()
            .observe(crate::store::StoreOp::Refresh, started.elapsed());
        let authorities = self.authorities();
        let wanted = tls_inputs(&authorities, now.unix_timestamp());
        let stale = {
            let current = self
                .tls_state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            current.bundle_ids != wanted.0
                || current.signing_ca != wanted.1
                || now.unix_timestamp() >= current.renew_at
        };
        if stale {
            let (config, tls_state) =
                build_tls(&self.trust_domain, &authorities, &self.names, now)?;
            // The bundle file first: it holds a new CA before this server presents a
            // certificate that CA issued, so a client that reads the file to trust this
            // server never meets one it cannot verify (a CA rotated to sign at once
            // changes both in one refresh).
            self.write_bundle_file(now);
            *self
                .tls
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
            *self
                .tls_state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = tls_state;
        }
        Ok(())
    }

    /// Reads feed entries past the known head, remembers revoked serials, and wakes
    /// long-polling followers.
    pub async fn take_revocations(&self) -> Result<(), String> {
        let mut head = *self.feed_head.borrow();
        loop {
            let entries = self
                .store
                .revocations_after(head, 1000)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = entries.last() else { break };
            let last = last.seq;
            {
                let mut serials = self
                    .revoked_serials
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for entry in entries.iter().filter(|e| e.kind == RevocationKind::Serial) {
                    serials.insert(entry.value.clone());
                }
            }
            for entry in entries
                .iter()
                .filter(|e| e.kind == RevocationKind::Function)
            {
                if let Some(name) = entry.value.rsplit_once("/fn/").map(|(_, n)| n) {
                    self.forget_function(name);
                }
            }
            head = last;
            self.feed_head.send_if_modified(|h| {
                let advanced = *h < last;
                *h = (*h).max(last);
                advanced
            });
        }
        Ok(())
    }

    fn write_bundle_file(&self, now: OffsetDateTime) {
        let Some(path) = &self.bundle_file else {
            return;
        };
        let pem = self.authorities().bundle_pem(now.unix_timestamp());
        let tmp = path.with_extension("pem.tmp");
        let result = std::fs::write(&tmp, pem).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "could not write the trust bundle file");
        }
    }
}

fn tls_inputs(authorities: &Authorities, now: i64) -> (Vec<String>, String) {
    let ids = authorities
        .bundle_cas(now)
        .map(|k| k.record.id.clone())
        .collect();
    let signing = authorities
        .signing_ca(now)
        .map(|k| k.record.id.clone())
        .unwrap_or_default();
    (ids, signing)
}

fn build_tls(
    trust_domain: &TrustDomain,
    authorities: &Authorities,
    names: &ServerNames,
    now: OffsetDateTime,
) -> Result<(rustls::ServerConfig, TlsState), String> {
    let t = now.unix_timestamp();
    let signing = authorities
        .signing_ca(t)
        .ok_or("no CA is active: the store has no signing CA for this time")?;
    let server_id = SpiffeId::parse(&format!("spiffe://{trust_domain}/writ/server"))
        .map_err(|e| e.to_string())?;
    let (cert_pem, key) = signing
        .ca
        .issue_server_certificate(
            &server_id,
            &names.dns,
            &names.ips,
            now,
            SERVER_CERT_LIFETIME,
        )
        .map_err(|e| e.to_string())?;
    let bundle: Vec<Vec<u8>> = authorities
        .bundle_cas(t)
        .map(|k| k.ca.cert_der().to_vec())
        .collect();
    let config = tls::server_config(&cert_pem, key, &bundle)?;
    let (bundle_ids, signing_ca) = tls_inputs(authorities, t);
    Ok((
        config,
        TlsState {
            bundle_ids,
            signing_ca,
            renew_at: t + SERVER_CERT_LIFETIME.whole_seconds() / 2,
        },
    ))
}

/// The system's CA certificates, as rustls roots.
pub fn native_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        // A system store may hold certificates rustls cannot use; skip those.
        let _ = roots.add(cert);
    }
    roots
}

/// A TLS client configuration trusting the system's CA certificates, for fetching OIDC
/// issuers' JWKS documents.
fn native_roots_client_config() -> Result<rustls::ClientConfig, String> {
    let roots = native_roots();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
