//! Following the server: the bundle, JWKS and intentions every second, the revocation
//! feed by long poll (so a revocation arrives within a second), webhook keys through the
//! secrets cache, and audit events sent back in batches.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use writ_api::endpoints::{GetBundle, ListIntentions, ReadRevocations, WriteAuditEvents};
use writ_api::identity::{FeedQuery, RevocationKind};
use writ_api::intentions::IntentionsQuery;
use writ_client::api::{ApiClient, Credential};
use writ_client::secrets::{Fetch, FetchError, SecretValue};

use crate::config::Config;
use crate::control::{self, Control, Snapshot};

/// The state every request reads, and when each half of it was last confirmed.
pub struct Shared {
    /// What is enforced.
    pub control: RwLock<Arc<Control>>,
    /// When the bundle, JWKS and intentions were last fetched and in force (Unix seconds).
    pub state_synced_at: AtomicI64,
    /// When the revocation feed last answered and its entries were in force.
    pub feed_synced_at: AtomicI64,
    /// Held across read, change, install and save, so the two followers never undo each
    /// other's changes.
    pub updating: std::sync::Mutex<()>,
}

impl Shared {
    /// The current state.
    pub fn control(&self) -> Arc<Control> {
        self.control
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// An HTTPS client for the server, with the gateway's token. It verifies the server
/// against the trust bundle as it is when each connection is made: `server.ca_file` at
/// start, then the bundle the server publishes ([`ServerClient::follow_bundle`]), so a CA
/// rotation does not cut the gateway off once the server's certificate is signed by the
/// new CA.
#[derive(Clone)]
pub struct ServerClient {
    api: ApiClient,
    trust: Arc<writ_client::fetch::TrustBundle>,
}

impl ServerClient {
    /// A client trusting the CAs in `ca_pem`.
    pub fn new(config: &Config) -> Result<ServerClient, String> {
        let ca_pem = std::fs::read_to_string(&config.server.ca_file)
            .map_err(|e| format!("server.ca_file {}: {e}", config.server.ca_file.display()))?;
        let token = std::fs::read_to_string(&config.server.token_file)
            .map_err(|e| {
                format!(
                    "server.token_file {}: {e}",
                    config.server.token_file.display()
                )
            })?
            .trim()
            .to_string();
        if token.is_empty() {
            return Err(format!(
                "server.token_file {}: empty",
                config.server.token_file.display()
            ));
        }
        let trust = writ_client::fetch::TrustBundle::from_pem(&ca_pem)
            .map_err(|e| format!("server.ca_file: {e}"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(trust.clone())
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(40))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(ServerClient {
            api: ApiClient::new(
                &config.server.addr,
                http,
                Credential::AdminToken(token.into()),
            ),
            trust,
        })
    }

    /// Verifies the server against `bundle_pem` (the bundle it publishes) from the next
    /// connection on. A bundle with no usable CA is logged and the current one kept.
    pub fn follow_bundle(&self, bundle_pem: &str) {
        match self.trust.update(bundle_pem) {
            Ok(true) => tracing::info!("the server's trust bundle changed; following it"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the server published an unusable trust bundle; keeping the current one")
            }
        }
    }

    /// Sends a batch of audit events (`POST /v1/audit/events`), `body` being its JSON
    /// ([`crate::audit::batch_json`]).
    pub async fn post_events(&self, body: Vec<u8>) -> Result<(), FetchError> {
        self.api
            .send_encoded::<WriteAuditEvents>(&Default::default(), body)
            .await
            .map(drop)
            .map_err(FetchError::from)
    }

    /// The client for the server's API, with the gateway's token.
    pub fn api(&self) -> &ApiClient {
        &self.api
    }
}

/// Webhook keys come from writ's secrets store, with the gateway's token.
impl Fetch for ServerClient {
    async fn fetch(&self, name: &str) -> Result<SecretValue, FetchError> {
        writ_client::fetch::fetch_current(&self.api, name).await
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Changes the snapshot with `change`, then compiles, enforces and keeps it on disk; all
/// under one lock. Nothing changes if the result does not compile.
fn update(
    config: &Config,
    shared: &Shared,
    change: impl FnOnce(&mut Snapshot),
) -> Result<(), String> {
    let _one_at_a_time = shared
        .updating
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut snapshot = shared.control().snapshot.clone();
    change(&mut snapshot);
    let control = Control::build(snapshot.clone(), &config.trust_domain)?;
    *shared
        .control
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = control;
    control::save(&config.state_dir, &snapshot)
}

/// Polls the bundle, JWKS and intentions every second. A change is installed at once; the
/// snapshot is also saved every tenth of the staleness bound (at least every second, at
/// most every 30), so a gateway restarted during an outage knows, within that, when the
/// server last answered. The state counts as fresh only once what was fetched is in
/// force.
pub async fn poll(config: Arc<Config>, shared: Arc<Shared>, client: ServerClient) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut saved_at = 0;
    let save_every = (config.max_staleness.as_secs() as i64 / 10).clamp(1, 30);
    loop {
        tick.tick().await;
        let fetched = async {
            let bundle = client.api.send::<GetBundle>(&writ_api::NoRequest).await?;
            let intentions = client
                .api
                .send::<ListIntentions>(&IntentionsQuery::default())
                .await?;
            Ok::<_, writ_client::api::ApiCallError>((bundle, intentions))
        }
        .await
        .map_err(FetchError::from);
        let (bundle, intentions) = match fetched {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "could not reach the server; enforcing the last known state");
                continue;
            }
        };
        let t = now();
        let bundle_pem = bundle.x509_bundle;
        if !bundle_pem.is_empty() {
            client.follow_bundle(&bundle_pem);
        }
        // Kept as the server sent them: the snapshot on disk is their JSON.
        let (jwks, intentions) = match (
            serde_json::to_value(&bundle.jwks),
            serde_json::to_value(&intentions.intentions),
        ) {
            (Ok(j), Ok(i)) => (j, i),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "the server's state could not be kept");
                continue;
            }
        };
        let current = shared.control().snapshot.clone();
        let changed = current.bundle_pem != bundle_pem
            || current.jwks != jwks
            || current.intentions != intentions;
        if !changed && t - saved_at < save_every {
            shared.state_synced_at.store(t, Ordering::Release);
            continue;
        }
        let feed_at = shared.feed_synced_at.load(Ordering::Acquire);
        let installed = update(&config, &shared, |s| {
            s.bundle_pem = bundle_pem;
            s.jwks = jwks;
            s.intentions = intentions;
            s.synced_at = t;
            s.feed_synced_at = s.feed_synced_at.max(feed_at);
        });
        match installed {
            Ok(()) => {
                saved_at = t;
                shared.state_synced_at.store(t, Ordering::Release);
            }
            Err(e) => {
                tracing::error!(error = %e, "the server's state was not installed; it ages toward the staleness bound")
            }
        }
    }
}

/// Follows the revocation feed by long poll.
pub async fn follow_revocations(config: Arc<Config>, shared: Arc<Shared>, client: ServerClient) {
    // The long poll answers at least this often, so a quiet feed still shows it is alive
    // well within the staleness bound.
    let wait = (config.max_staleness.as_secs() / 3).clamp(1, 25);
    // The first request (and the first after a failure) does not wait: its answer is what
    // shows the feed is current.
    let mut quick = true;
    loop {
        let after = shared.control().snapshot.feed_next;
        let query = FeedQuery {
            after,
            wait: if quick { 0 } else { wait },
        };
        let answered = client
            .api
            .send::<ReadRevocations>(&query)
            .await
            .map_err(FetchError::from);
        quick = answered.is_err();
        match answered {
            Ok(page) => {
                let t = now();
                let entries = page.entries;
                if entries.is_empty() {
                    shared.feed_synced_at.store(t, Ordering::Release);
                    continue;
                }
                let next = page.next;
                let installed = update(&config, &shared, |s| {
                    for e in entries {
                        match e.kind {
                            RevocationKind::Serial => s.revoked_serials.push(e.value),
                            RevocationKind::Function => {
                                s.revoked_functions.push((e.value, e.revoked_at))
                            }
                            RevocationKind::Token => {}
                        }
                    }
                    s.feed_next = next;
                    s.feed_synced_at = t;
                });
                match installed {
                    Ok(()) => shared.feed_synced_at.store(t, Ordering::Release),
                    Err(e) => {
                        tracing::error!(error = %e, "revocations were not installed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "revocation feed unreachable");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
