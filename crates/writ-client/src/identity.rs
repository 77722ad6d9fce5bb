//! The function's identity: attestation at start, then an X.509-SVID and the trust bundle
//! kept fresh. A new key is made for every renewal and never leaves the process (or its
//! 0600 file, if asked). The trust bundle follows the server's (`GET /v1/bundle` every
//! [`BUNDLE_POLL`], and the bundle each renewal brings), so the clients built from
//! [`Identity::trust`](Identity#structfield.trust) keep verifying the server through a CA
//! rotation: a new CA is published before it signs (`writ ca rotate --activate-after`, 1
//! minute by default), and is trusted here within a poll of being published.
//!
//! ```no_run
//! use writ_client::identity::{Evidence, Identity, keep_fresh};
//! use writ_client::secrets::{CachePolicy, SecretCache};
//! use writ_client::fetch::{HttpFetcher, mtls_client_trusting};
//!
//! # async fn run() -> Result<(), String> {
//! let ca = std::fs::read_to_string("ca.pem").map_err(|e| e.to_string())?;
//! let join = std::env::var("WRIT_JOIN_TOKEN").map_err(|e| e.to_string())?;
//! let server = "https://writ.internal:7443";
//! let me = Identity::attest(server, &ca, "orders", &Evidence::JoinToken(join), None).await?;
//! tokio::spawn(keep_fresh(me.clone()));   // renews at half life, follows the bundle, forever
//!
//! let fetcher = HttpFetcher::trusting(server, me.trust.clone(), me.source.clone())?;
//! let secrets = SecretCache::new(fetcher, CachePolicy::default());
//! let db_url = secrets.get("prod/orders-db").await.map_err(|e| e.to_string())?;
//!
//! // Calls to other functions through the gateway present the (current) SVID and verify
//! // the gateway against the (current) trust bundle.
//! let http = mtls_client_trusting(me.trust.clone(), me.source.clone())?;
//! let charged = http.post("https://gateway.internal:8443/payments/charge")
//!     .body(r#"{"amount": 100}"#).send().await.map_err(|e| e.to_string())?;
//! # let _ = (db_url, charged);
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use writ_api::endpoints::{GatewayLogin, GetBundle, Login, RenewGatewaySvid, RenewSvid};
use writ_api::gateways::GatewayLoginRequest;
use writ_api::identity::{LoginRequest, RenewRequest};

use crate::api::{ApiCallError, ApiClient, Credential};
use crate::fetch::{SvidSource, TrustBundle, mtls_client_trusting};

/// How the function proves itself at start.
#[derive(Clone)]
pub enum Evidence {
    /// A one-time join token.
    JoinToken(String),
    /// An OIDC ID token (read from a file, which platforms refresh).
    OidcFile(PathBuf),
    /// A GetCallerIdentity request signed with the AWS credentials in the environment
    /// ([`crate::aws_iam`]), for the writ server with this id; `None`: the server's trust
    /// domain, read from its trust bundle (`GET /v1/bundle`, over TLS verified with the CA
    /// given).
    AwsIam {
        /// The server's id, when it is not the trust domain (`--aws-iam-server-id`).
        server_id: Option<String>,
    },
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Evidence::JoinToken(_) => f.write_str("JoinToken(..)"),
            Evidence::OidcFile(p) => write!(f, "OidcFile({})", p.display()),
            Evidence::AwsIam { server_id } => write!(f, "AwsIam({server_id:?})"),
        }
    }
}

/// How often [`keep_fresh`] fetches the server's trust bundle: every second, as gateways
/// do, well within the minute a rotated CA is published by default before it signs.
pub const BUNDLE_POLL: Duration = Duration::from_secs(1);

/// One SVID, as issued.
#[derive(Clone)]
pub struct Svid {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PKCS#8 PEM).
    pub key_pem: String,
    /// The trust bundle (PEM): the one that came with it, or a newer one the server
    /// published since.
    pub bundle_pem: String,
    /// The SPIFFE ID.
    pub spiffe_id: String,
    /// Validity, Unix seconds.
    pub not_before: i64,
    /// Validity, Unix seconds.
    pub not_after: i64,
    /// The serial number, lowercase hex, as the revocation feed names it.
    pub serial: String,
}

/// Who attests: a function (`spiffe://TD/fn/NAME`) or a gateway
/// (`spiffe://TD/writ/gateway/NAME`, whose SVID is its TLS server certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A function, by name.
    Function(String),
    /// A gateway, by name, and the DNS names and IP addresses its CSR asks for (each must
    /// be one it was registered with; the certificate carries all of those).
    Gateway {
        /// The gateway's name.
        name: String,
        /// The names asked for in the CSR; empty: whatever it was registered with.
        names: Vec<String>,
    },
}

impl Subject {
    /// The function's or gateway's name.
    pub fn name(&self) -> &str {
        match self {
            Subject::Function(name) | Subject::Gateway { name, .. } => name,
        }
    }
}

/// The current SVID, shared by everything that presents it.
pub struct Identity {
    server: String,
    subject: Subject,
    current: RwLock<Svid>,
    /// Presented on every new TLS connection; swapped on renewal.
    pub source: Arc<SvidSource>,
    /// What every new TLS connection to the server (and to a gateway, unless another CA is
    /// given) is verified against; kept current with the server's bundle.
    pub trust: Arc<TrustBundle>,
    svid_dir: Option<PathBuf>,
}

fn csr(names: &[String]) -> Result<(String, String), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let csr = rcgen::CertificateParams::new(names.to_vec())
        .and_then(|p| p.serialize_request(&key))
        .and_then(|c| c.pem())
        .map_err(|e| e.to_string())?;
    Ok((csr, key.serialize_pem()))
}

fn svid_from(answer: writ_api::identity::Svid, key_pem: String) -> Result<Svid, String> {
    let der = pem::parse(&answer.x509_svid).map_err(|e| e.to_string())?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(der.contents()).map_err(|e| e.to_string())?;
    Ok(Svid {
        spiffe_id: answer.spiffe_id,
        bundle_pem: answer.x509_bundle,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        serial: cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        cert_pem: answer.x509_svid,
        key_pem,
    })
}

/// A failed call, for people: the URL, then what went wrong (`401 Unauthorized:
/// authentication failed`).
/// Why attestation failed, and whether it was because the server could not be reached or
/// failed (rather than refused, or anything else). Messages carry no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestError {
    /// What failed, and where.
    pub message: String,
    /// Whether the server could not be reached or failed (no answer, or a 5xx).
    pub unavailable: bool,
}

impl std::fmt::Display for AttestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AttestError {}

/// Why one attestation failed: the server could not be reached or failed (worth another
/// try), or anything else.
enum Failure {
    Unavailable(String),
    Other(String),
}

impl Failure {
    fn of(e: ApiCallError) -> Failure {
        if e.is_unavailable() {
            Failure::Unavailable(failed(e))
        } else {
            Failure::Other(failed(e))
        }
    }
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Other(e)
    }
}

fn failed(e: ApiCallError) -> String {
    match &e {
        ApiCallError::Transport { .. }
        | ApiCallError::Refused { .. }
        | ApiCallError::Status { .. } => format!("{}: {}", e.url(), e.detail()),
        _ => e.to_string(),
    }
}

impl Identity {
    /// Attests with `evidence` and returns the first SVID. `ca_pem` is the trust bundle to
    /// verify the server with until the first SVID brings the current one.
    pub async fn attest(
        server: &str,
        ca_pem: &str,
        function: &str,
        evidence: &Evidence,
        svid_dir: Option<PathBuf>,
    ) -> Result<Arc<Identity>, String> {
        Identity::attest_within(
            server,
            ca_pem,
            function,
            evidence,
            svid_dir,
            std::time::Duration::ZERO,
        )
        .await
        .map_err(|e| e.message)
    }

    /// Attests as [`Identity::attest`] does, trying again while the server cannot be
    /// reached or fails (no answer, or a 5xx), with waits from 100 ms doubling to 2 s,
    /// until `budget` has passed since the first try: a function that starts while the
    /// server restarts, or before the network is up, still joins. A refusal, or any other
    /// failure, ends it at once (a refused join token would only be refused again). Each
    /// try builds its evidence afresh (an AWS IAM signature is dated and single-use).
    pub async fn attest_within(
        server: &str,
        ca_pem: &str,
        function: &str,
        evidence: &Evidence,
        svid_dir: Option<PathBuf>,
        budget: std::time::Duration,
    ) -> Result<Arc<Identity>, AttestError> {
        Identity::attest_as(
            server,
            ca_pem,
            &Subject::Function(function.to_string()),
            evidence,
            svid_dir,
            budget,
        )
        .await
    }

    /// Attests as [`Identity::attest_within`] does, as `subject`: a function, or a gateway
    /// (`POST /v1/gateway/login`, renewed with `POST /v1/gateway/svid`).
    pub async fn attest_as(
        server: &str,
        ca_pem: &str,
        subject: &Subject,
        evidence: &Evidence,
        svid_dir: Option<PathBuf>,
        budget: std::time::Duration,
    ) -> Result<Arc<Identity>, AttestError> {
        let started = tokio::time::Instant::now();
        let mut wait = std::time::Duration::from_millis(100);
        let mut tries = 1u32;
        loop {
            match Identity::attest_once(server, ca_pem, subject, evidence, svid_dir.clone()).await {
                Ok(identity) => return Ok(identity),
                Err(Failure::Unavailable(e)) if started.elapsed() + wait <= budget => {
                    tracing::warn!(error = %e, try_number = tries, "the server is unavailable; trying again");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(2));
                    tries += 1;
                }
                Err(Failure::Unavailable(e)) => {
                    let message = if tries > 1 {
                        format!(
                            "{e} (gave up after {tries} tries in {} ms)",
                            started.elapsed().as_millis()
                        )
                    } else {
                        e
                    };
                    return Err(AttestError {
                        message,
                        unavailable: true,
                    });
                }
                Err(Failure::Other(message)) => {
                    return Err(AttestError {
                        message,
                        unavailable: false,
                    });
                }
            }
        }
    }

    /// One attestation.
    async fn attest_once(
        server: &str,
        ca_pem: &str,
        subject: &Subject,
        evidence: &Evidence,
        svid_dir: Option<PathBuf>,
    ) -> Result<Arc<Identity>, Failure> {
        let api = ApiClient::new(
            server,
            crate::fetch::bundle_client(ca_pem)?,
            Credential::Tls,
        );
        let attestation = match evidence {
            Evidence::JoinToken(t) => writ_api::identity::Evidence::JoinToken { token: t.clone() },
            Evidence::OidcFile(p) => {
                let token =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                writ_api::identity::Evidence::Oidc {
                    token: token.trim().to_string(),
                }
            }
            Evidence::AwsIam { server_id } => {
                let aws = crate::aws_iam::AwsEnvironment::from_env()?;
                let server_id = match server_id {
                    Some(id) => id.clone(),
                    None => {
                        api.send::<GetBundle>(&writ_api::NoRequest)
                            .await
                            .map_err(Failure::of)?
                            .trust_domain
                    }
                };
                let request = crate::aws_iam::sign_get_caller_identity(
                    &aws,
                    &server_id,
                    time::OffsetDateTime::now_utc(),
                )?;
                writ_api::identity::Evidence::AwsIam { request }
            }
        };
        let answer = match subject {
            Subject::Function(function) => {
                let (csr, key_pem) = csr(&[])?;
                let request = LoginRequest {
                    function: function.clone(),
                    attestation,
                    csr,
                };
                (api.send::<Login>(&request).await, key_pem)
            }
            Subject::Gateway { name, names } => {
                let (csr, key_pem) = csr(names)?;
                let request = GatewayLoginRequest {
                    gateway: name.clone(),
                    attestation,
                    csr,
                };
                (api.send::<GatewayLogin>(&request).await, key_pem)
            }
        };
        let (answer, key_pem) = (answer.0.map_err(Failure::of)?, answer.1);
        let svid = svid_from(answer, key_pem)?;
        let source = SvidSource::from_pem(&svid.cert_pem, &svid.key_pem)?;
        let trust = TrustBundle::from_pem(&svid.bundle_pem)
            .map_err(|e| format!("{server}/v1/login: the answer's x509Bundle: {e}"))?;
        let identity = Arc::new(Identity {
            server: server.to_string(),
            subject: subject.clone(),
            current: RwLock::new(svid),
            source,
            trust,
            svid_dir,
        });
        identity.write_files()?;
        Ok(identity)
    }

    /// The current SVID.
    pub fn svid(&self) -> Svid {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The function's (or gateway's) name.
    pub fn function(&self) -> &str {
        self.subject.name()
    }

    /// Who this identity is.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// An HTTPS client for the server, presenting the current SVID and verifying the
    /// server against the current trust bundle.
    pub fn server_client(&self) -> Result<reqwest::Client, String> {
        mtls_client_trusting(self.trust.clone(), self.source.clone())
    }

    /// Takes `bundle_pem` as the trust bundle, for every connection made from now on, and
    /// rewrites the files. `Ok(true)` when it changed; an error (and the current bundle
    /// kept) when it holds no usable CA.
    pub fn set_bundle(&self, bundle_pem: &str) -> Result<bool, String> {
        let changed = {
            let mut current = self
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let changed = self.trust.update(bundle_pem)?;
            current.bundle_pem = self.trust.pem();
            changed
        };
        if changed {
            self.write_files()?;
        }
        Ok(changed)
    }

    /// A client for the server's API, presenting the current SVID and verifying the server
    /// against the current trust bundle.
    pub fn api(&self) -> Result<ApiClient, String> {
        Ok(ApiClient::new(
            &self.server,
            self.server_client()?,
            Credential::Tls,
        ))
    }

    /// Fetches the server's trust bundle (`GET /v1/bundle`) and takes it; `Ok(true)` when
    /// it changed.
    pub async fn refresh_bundle(&self) -> Result<bool, String> {
        self.refresh_bundle_with(&self.api()?).await
    }

    /// [`Identity::refresh_bundle`] with `api`, one of [`Identity::api`]'s.
    async fn refresh_bundle_with(&self, api: &ApiClient) -> Result<bool, String> {
        let answer = api
            .send::<GetBundle>(&writ_api::NoRequest)
            .await
            .map_err(|e| match &e {
                ApiCallError::Refused { status, .. } | ApiCallError::Status { status, .. } => {
                    format!("{}: {}", e.url(), crate::api::status_text(*status))
                }
                _ => failed(e),
            })?;
        let url = api.url::<GetBundle>(&writ_api::NoRequest);
        self.set_bundle(&answer.x509_bundle)
            .map_err(|e| format!("{url}: {e}"))
    }

    /// The server's address.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Renews over mTLS with the current SVID: a new key, a new certificate.
    pub async fn renew(&self) -> Result<(), String> {
        let api = self.api()?;
        let answer = match &self.subject {
            Subject::Function(_) => {
                let (csr, key_pem) = csr(&[])?;
                (api.send::<RenewSvid>(&RenewRequest { csr }).await, key_pem)
            }
            Subject::Gateway { names, .. } => {
                let (csr, key_pem) = csr(names)?;
                let request = RenewRequest { csr };
                (api.send::<RenewGatewaySvid>(&request).await, key_pem)
            }
        };
        let (answer, key_pem) = (answer.0.map_err(failed)?, answer.1);
        let mut svid = svid_from(answer, key_pem)?;
        self.source.update(&svid.cert_pem, &svid.key_pem)?;
        {
            let mut current = self
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // The bundle that came with the renewal is the server's current one; an
            // answer without a usable one keeps the bundle already held.
            if let Err(e) = self.trust.update(&svid.bundle_pem) {
                tracing::warn!(error = %e, "the renewal's x509Bundle was not usable; keeping the current trust bundle");
            }
            svid.bundle_pem = self.trust.pem();
            *current = svid;
        }
        self.write_files()
    }

    /// Writes `svid.pem`, `svid.key` (0600) and `bundle.pem` for processes that need
    /// files, if a directory was given. Each is replaced atomically.
    fn write_files(&self) -> Result<(), String> {
        let Some(dir) = &self.svid_dir else {
            return Ok(());
        };
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let svid = self.svid();
        for (name, text, private) in [
            ("svid.pem", &svid.cert_pem, false),
            ("svid.key", &svid.key_pem, true),
            ("bundle.pem", &svid.bundle_pem, false),
        ] {
            let tmp = dir.join(format!(".{name}.tmp"));
            let _ = std::fs::remove_file(&tmp);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(if private { 0o600 } else { 0o644 });
            }
            let _ = private;
            use std::io::Write;
            options
                .open(&tmp)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .and_then(|()| std::fs::rename(&tmp, dir.join(name)))
                .map_err(|e| format!("{}: {e}", dir.join(name).display()))?;
        }
        Ok(())
    }
}

/// When to renew an SVID valid from `not_before` to `not_after`: at half its life, moved
/// by up to a tenth of it either way (`jitter` in -1.0..=1.0), so copies that started
/// together do not renew together.
pub fn renew_at(not_before: i64, not_after: i64, jitter: f64) -> i64 {
    let life = (not_after - not_before).max(2);
    let half = not_before + life / 2;
    half + ((life as f64) * 0.1 * jitter.clamp(-1.0, 1.0)) as i64
}

/// The wait after the `failures`-th failed renewal in a row: 1 s doubling to 60 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(6)).min(Duration::from_secs(60))
}

fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    f64::from(u16::from_be_bytes(b)) / f64::from(u16::MAX) * 2.0 - 1.0
}

/// Keeps the SVID and the trust bundle fresh: renews at half life, retries with backoff,
/// and keeps serving the current SVID while it is valid; fetches the server's bundle every
/// [`BUNDLE_POLL`] ([`follow_bundle`]).
pub async fn keep_fresh(identity: Arc<Identity>) {
    tokio::join!(
        keep_renewing(identity.clone()),
        follow_bundle(identity, BUNDLE_POLL)
    );
}

/// Fetches the server's trust bundle every `every` and takes it, forever; on a failure
/// the current bundle is kept and the next poll tries again (the first failure of a run is
/// a warning, the rest debug, so an outage does not flood the log). One client serves
/// every poll, so they share a connection while the server keeps it open; a new
/// connection is verified against the bundle current then.
pub async fn follow_bundle(identity: Arc<Identity>, every: Duration) {
    let api = loop {
        match identity.api() {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, "no client to fetch the trust bundle with");
                tokio::time::sleep(every).await;
            }
        }
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is at once; the bundle that came with the SVID is current then.
    tick.tick().await;
    let mut failing = false;
    loop {
        tick.tick().await;
        match identity.refresh_bundle_with(&api).await {
            Ok(changed) => {
                if changed {
                    tracing::info!("trust bundle updated from the server");
                }
                if failing {
                    tracing::info!("the trust bundle can be fetched again");
                }
                failing = false;
            }
            Err(e) if failing => {
                tracing::debug!(error = %e, "could not fetch the trust bundle; keeping the current one")
            }
            Err(e) => {
                failing = true;
                tracing::warn!(error = %e, "could not fetch the trust bundle; keeping the current one")
            }
        }
    }
}

async fn keep_renewing(identity: Arc<Identity>) {
    let mut failures = 0;
    loop {
        let svid = identity.svid();
        let at = renew_at(svid.not_before + 30, svid.not_after, jitter());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if at > now {
            tokio::time::sleep(Duration::from_secs((at - now) as u64)).await;
        }
        loop {
            match identity.renew().await {
                Ok(()) => {
                    failures = 0;
                    tracing::info!(not_after = identity.svid().not_after, "SVID renewed");
                    break;
                }
                Err(e) => {
                    failures += 1;
                    let wait = backoff(failures);
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    if now >= identity.svid().not_after {
                        tracing::error!(error = %e, retry_in = ?wait, not_after = identity.svid().not_after, "SVID renewal failed and the current SVID has expired; peers will refuse it until a renewal succeeds");
                    } else {
                        tracing::warn!(error = %e, retry_in = ?wait, "SVID renewal failed; serving the current one while it is valid");
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_at_half_life_with_bounded_jitter() {
        assert_eq!(renew_at(1000, 4600, 0.0), 2800);
        assert_eq!(renew_at(1000, 4600, 1.0), 2800 + 360);
        assert_eq!(renew_at(1000, 4600, -1.0), 2800 - 360);
        assert_eq!(renew_at(1000, 4600, 7.0), 2800 + 360, "clamped");
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(30), Duration::from_secs(60));
    }
}
