//! Secret rotation through the owner's hook, in the four steps of Secrets Manager:
//! `create` (the hook returns the new value, stored as `AWSPENDING`), `set` (the hook puts
//! it into the system that uses it), `test` (the hook checks it works) and `finish`. Only
//! when all four pass does `AWSCURRENT` move to the new version; a failure at any step
//! removes `AWSPENDING`, leaves `AWSCURRENT` as it was, and is recorded on the secret and in
//! the audit log. The move of `AWSCURRENT` and the audit event recording it commit in one
//! transaction ([`crate::audit::AuditLog::record_change`]), so a new current version
//! always has its event.
//!
//! A hook is an HTTPS endpoint (the server calls it presenting its own SVID,
//! `spiffe://TRUST-DOMAIN/writ/server`, as a client certificate, so a writ gateway or the
//! hook itself can authenticate it), or a command the server's operator registered with
//! `writ server --rotation-hook NAME=PATH`. API callers can name only registered commands,
//! never a path: choosing what the server runs is the operator's decision.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use writ_secrets::envelope::{self, Sealed};
use writ_secrets::model::{self, AWSCURRENT, AWSPENDING, MAX_VALUE_BYTES};

use crate::hook_destination::GuardedResolver;
use crate::state::AppState;
use crate::store::{Applied, SecretChange, VersionRecord};

/// How long one step may take before it counts as failed.
pub const STEP_TIMEOUT: StdDuration = StdDuration::from_secs(15);
/// A claimed rotation older than this is taken to have died with its server.
pub const STALE_AFTER_SECONDS: i64 = 300;
/// The shortest schedule: rotating more often than this is a mistake, not a policy.
pub const MIN_EVERY_SECONDS: i64 = 10;
/// What a rotation reports when its hook gave no answer, whatever the cause (refused,
/// timed out, TLS, DNS, a destination hooks may not reach).
const UNREACHABLE: &str = "could not reach the hook (the server's log has the cause)";

/// The most a hook may answer, in bytes.
const MAX_HOOK_ANSWER: usize = 256 * 1024;

/// One step of a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The hook makes the new value and returns it.
    Create,
    /// The hook puts the new value into the system that uses it.
    Set,
    /// The hook checks that the new value works.
    Test,
    /// The hook's last chance to object before the new value becomes current.
    Finish,
}

impl Step {
    /// The step's name, as the hook receives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Set => "set",
            Step::Test => "test",
            Step::Finish => "finish",
        }
    }
}

/// Where a secret's rotation hook is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Hook {
    /// An HTTPS endpoint, called with POST and a JSON body per step.
    Https {
        /// `https://…`, or `http://` to a loopback address.
        url: String,
    },
    /// A command the server's operator registered under this name.
    Command {
        /// The registered name.
        name: String,
    },
}

/// A secret's rotation settings, stored with it as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotationConfig {
    /// The hook.
    pub hook: Hook,
    /// How often to rotate (`30d`), or `None` for on demand only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
}

impl RotationConfig {
    /// The schedule in seconds, if there is one.
    pub fn every_seconds(&self) -> Result<Option<i64>, String> {
        self.every
            .as_deref()
            .map(|e| {
                let s = crate::duration::parse(e)
                    .map_err(|err| format!("every: {err}"))?
                    .whole_seconds();
                if s < MIN_EVERY_SECONDS {
                    return Err(format!(
                        "every: {e:?} is shorter than the shortest schedule, {MIN_EVERY_SECONDS}s"
                    ));
                }
                Ok(s)
            })
            .transpose()
    }
}

/// Checks a hook before it is stored: an HTTPS URL (or HTTP to loopback) without
/// credentials in it, or the name of a command this server has registered.
pub fn check_hook(hook: &Hook, state: &AppState) -> Result<(), String> {
    match hook {
        Hook::Https { url } => {
            let parsed = reqwest::Url::parse(url).map_err(|e| format!("hook.url: {url:?}: {e}"))?;
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(
                    "hook.url: must not carry credentials; they would be shown by \
                            describe and kept in the store"
                        .into(),
                );
            }
            // The same parser reqwest uses for the call reads the host, so the check and
            // the call cannot disagree about where it goes.
            let host = parsed.host_str().unwrap_or_default();
            let literal = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .ok();
            let loopback = host.eq_ignore_ascii_case("localhost")
                || literal.is_some_and(|ip| ip.is_loopback());
            match parsed.scheme() {
                "https" => {}
                "http" if loopback => {}
                _ => {
                    return Err(format!(
                        "hook.url: {url:?}: use https (http only to a loopback address)"
                    ));
                }
            }
            // A literal address is connected to without resolving, so it is checked here;
            // a name is checked on every address it resolves to when the call is made.
            // (The URL parser has already written any IPv4 form, such as 0x7f.1, plainly.)
            match literal {
                Some(ip) => state
                    .hook_networks
                    .check_literal(ip)
                    .map_err(|e| format!("hook.url: {e}")),
                None => Ok(()),
            }
        }
        Hook::Command { name } => {
            if state.rotation_hooks.iter().any(|(n, _)| n == name) {
                Ok(())
            } else {
                Err(format!(
                    "hook.name: no rotation command {name:?} is registered on this server \
                     (the operator registers them with writ server --rotation-hook NAME=PATH)"
                ))
            }
        }
    }
}

/// Why a rotation did not complete. `AWSCURRENT` is as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The step that failed, or `None` if the rotation could not start.
    pub step: Option<Step>,
    /// What went wrong, without values.
    pub reason: String,
    /// Whether another rotation of the secret is still running.
    pub busy: bool,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.step {
            Some(step) => write!(f, "step {}: {}", step.as_str(), self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

fn before_steps(reason: impl Into<String>) -> Failure {
    Failure {
        step: None,
        reason: reason.into(),
        busy: false,
    }
}

/// Rotates `name` through its hook. Returns the new current version id. The rotation is
/// claimed in the store first, so it runs once even with several servers. `succeeded`
/// makes, from the new version's id, the audit event of a successful rotation: it is
/// committed with the move of `AWSCURRENT`, so the caller records only failures.
pub async fn rotate(
    state: &AppState,
    name: &str,
    config: &RotationConfig,
    succeeded: impl FnOnce(&str) -> writ_audit::Event,
) -> Result<String, Failure> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let claimed = state
        .store
        .claim_rotation(name, now, now - STALE_AFTER_SECONDS)
        .await
        .map_err(|e| before_steps(format!("store: {e}")))?;
    if !claimed {
        return Err(Failure {
            step: None,
            reason: format!("a rotation of {name:?} is already running"),
            busy: true,
        });
    }
    let result = run_steps(state, name, &config.hook, succeeded).await;
    let finished = OffsetDateTime::now_utc().unix_timestamp();
    let last = match &result {
        Ok(version) => json!({"status": "succeeded", "versionId": version,
                              "date": crate::api::rfc3339(finished)}),
        Err(f) => json!({"status": "failed", "step": f.step.map(Step::as_str),
                         "reason": f.reason, "date": crate::api::rfc3339(finished)}),
    };
    let next = config
        .every_seconds()
        .ok()
        .flatten()
        .map(|every| finished + every);
    if let Err(e) = state
        .store
        .end_rotation(name, now, &last.to_string(), next)
        .await
    {
        tracing::error!(secret = name, error = %e, "could not record the end of a rotation");
    }
    state.caches.forget_secret(name);
    result
}

/// The value of one version, opened.
struct Opened {
    version_id: String,
    value: Vec<u8>,
    binary: bool,
}

impl Opened {
    fn json(&self) -> Value {
        let mut v = json!({"versionId": self.version_id});
        if self.binary {
            v["secretBinary"] = json!(STANDARD.encode(&self.value));
        } else {
            v["secretString"] = json!(String::from_utf8_lossy(&self.value));
        }
        v
    }
}

async fn run_steps(
    state: &AppState,
    name: &str,
    hook: &Hook,
    succeeded: impl FnOnce(&str) -> writ_audit::Event,
) -> Result<String, Failure> {
    let labels = state
        .store
        .secret_labels(name)
        .await
        .map_err(|e| before_steps(format!("store: {e}")))?;
    let current_id = labels
        .version(AWSCURRENT)
        .ok_or_else(|| before_steps(format!("secret {name:?} has no AWSCURRENT version")))?
        .to_string();
    let current = open_version(state, name, &current_id)
        .await
        .map_err(before_steps)?;
    let caller = HookCaller::new(state, hook).map_err(before_steps)?;
    let pending_id = model::new_version_id()
        .map_err(|e| e.to_string())
        .map_err(before_steps)?;

    let fail = |step: Step| {
        move |reason: String| Failure {
            step: Some(step),
            reason,
            busy: false,
        }
    };
    let base = json!({"secretId": name, "versionId": pending_id, "current": current.json()});

    // create: the hook returns the new value; it is stored as AWSPENDING.
    let mut request = base.clone();
    request["step"] = json!(Step::Create.as_str());
    let answer = caller
        .call(Step::Create, &request)
        .await
        .map_err(fail(Step::Create))?;
    let (value, binary) = new_value(&answer).map_err(fail(Step::Create))?;
    let Sealed {
        wrapped_key,
        ciphertext,
    } = envelope::seal(&state.master, name, &pending_id, &value)
        .map_err(|e| fail(Step::Create)(format!("could not encrypt the new value: {e}")))?;
    let version = VersionRecord {
        version_id: pending_id.clone(),
        wrapped_key,
        ciphertext,
        binary,
        created_at: OffsetDateTime::now_utc().unix_timestamp(),
    };
    let staged = state
        .store
        .put_secret_version(name, &version, version.created_at, |l| {
            l.stage_pending(&pending_id)
        })
        .await
        .map_err(|e| fail(Step::Create)(format!("store: {e}")))?;
    if staged.is_none() {
        return Err(fail(Step::Create)(format!(
            "secret {name:?} was deleted during the rotation"
        )));
    }
    state.caches.forget_secret(name);
    let pending = Opened {
        version_id: pending_id.clone(),
        value,
        binary,
    };

    let mut outcome = Ok(());
    for step in [Step::Set, Step::Test, Step::Finish] {
        let mut request = base.clone();
        request["step"] = json!(step.as_str());
        if step != Step::Finish {
            request["pending"] = pending.json();
        }
        if let Err(reason) = caller.call(step, &request).await {
            outcome = Err(fail(step)(reason));
            break;
        }
    }
    let relabelled = match outcome {
        // AWSCURRENT moves in the transaction that records the rotation's event.
        Ok(()) => {
            let pending = pending_id.clone();
            let finish = SecretChange::Relabel {
                name: name.to_string(),
                relabel: Box::new(move |l| {
                    if l.version(AWSPENDING) == Some(pending.as_str()) {
                        l.finish_rotation().map_err(|e| e.to_string())
                    } else {
                        Err("AWSPENDING moved during the rotation".into())
                    }
                }),
            };
            match state
                .audit
                .record_change(succeeded(&pending_id), finish)
                .await
            {
                Ok(Applied::Made(_)) => Ok(()),
                Ok(Applied::Refused(why)) => Err(fail(Step::Finish)(why)),
                Err(e) => Err(fail(Step::Finish)(format!("store: {e}"))),
            }
        }
        // Our AWSPENDING is withdrawn below; AWSCURRENT never moved.
        Err(failure) => Err(failure),
    };
    if relabelled.is_err() {
        withdraw(state, name, &pending_id).await;
    }
    state.caches.forget_secret(name);
    relabelled.map(|_| pending_id)
}

/// Removes AWSPENDING if it still names `pending_id` (and only then).
async fn withdraw(state: &AppState, name: &str, pending_id: &str) {
    let cancelled = state
        .store
        .relabel_secret(name, |l| {
            if l.version(AWSPENDING) == Some(pending_id) {
                l.cancel_rotation();
            }
            Ok(())
        })
        .await;
    if let Err(e) = cancelled {
        tracing::error!(secret = name, error = %e, "could not withdraw AWSPENDING");
    }
}

async fn open_version(state: &AppState, name: &str, version_id: &str) -> Result<Opened, String> {
    let v = state
        .store
        .secret_version(name, version_id)
        .await
        .map_err(|e| format!("store: {e}"))?
        .ok_or_else(|| format!("version {version_id} of {name:?} is missing"))?;
    let value = envelope::open(
        &state.master,
        name,
        version_id,
        &Sealed {
            wrapped_key: v.wrapped_key,
            ciphertext: v.ciphertext,
        },
    )
    .map_err(|e| format!("the current version does not decrypt: {e}"))?;
    Ok(Opened {
        version_id: version_id.to_string(),
        value,
        binary: v.binary,
    })
}

/// The new value in a `create` answer: `{"secretString": …}` or `{"secretBinary": base64}`.
fn new_value(answer: &[u8]) -> Result<(Vec<u8>, bool), String> {
    let v: Value = serde_json::from_slice(answer).map_err(|e| {
        format!(
            "the hook's answer is not JSON ({e}); it must be {{\"secretString\": …}} or {{\"secretBinary\": …}}"
        )
    })?;
    let (bytes, binary) = match (v.get("secretString"), v.get("secretBinary")) {
        (Some(Value::String(s)), None) => (s.as_bytes().to_vec(), false),
        (None, Some(Value::String(b))) => (
            STANDARD
                .decode(b)
                .map_err(|_| "secretBinary in the hook's answer is not base64".to_string())?,
            true,
        ),
        _ => {
            return Err(
                "the hook's answer must hold exactly one of secretString or secretBinary, as a string"
                    .into(),
            );
        }
    };
    if bytes.is_empty() || bytes.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "the new value is {} bytes; it must be 1 to {MAX_VALUE_BYTES}",
            bytes.len()
        ));
    }
    Ok((bytes, binary))
}

/// Calls one hook, step after step.
enum HookCaller {
    Https {
        client: reqwest::Client,
        url: String,
    },
    Command {
        path: PathBuf,
    },
}

impl HookCaller {
    fn new(state: &AppState, hook: &Hook) -> Result<HookCaller, String> {
        check_hook(hook, state)?;
        match hook {
            Hook::Https { url } => Ok(HookCaller::Https {
                client: hook_client(state)?,
                url: url.clone(),
            }),
            Hook::Command { name } => {
                let path = state
                    .rotation_hooks
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, p)| p.clone())
                    .ok_or_else(|| format!("no rotation command {name:?} is registered"))?;
                Ok(HookCaller::Command { path })
            }
        }
    }

    /// Runs one step; the answer's body on success. Failure reasons never carry the
    /// hook's output, which may hold values.
    async fn call(&self, step: Step, request: &Value) -> Result<Vec<u8>, String> {
        match self {
            HookCaller::Https { client, url } => {
                // Every way of not getting an answer reads the same to the API caller, so
                // rotations cannot map which addresses and ports answer; the cause is for
                // the server's operator, in its log.
                let response = client.post(url).json(request).send().await.map_err(|e| {
                    tracing::warn!(step = step.as_str(), cause = %describe(&e), "a rotation hook could not be reached");
                    UNREACHABLE.to_string()
                })?;
                let status = response.status();
                if !status.is_success() {
                    return Err(format!("the hook answered {status}"));
                }
                // Read in chunks, stopping as soon as the answer is over the limit.
                let mut response = response;
                let mut body = Vec::new();
                while let Some(chunk) = response
                    .chunk()
                    .await
                    .map_err(|e| format!("could not read the hook's answer: {}", describe(&e)))?
                {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_HOOK_ANSWER {
                        return Err(format!("the hook's answer is over {MAX_HOOK_ANSWER} bytes"));
                    }
                }
                Ok(body)
            }
            HookCaller::Command { path } => run_command(path, step, request).await,
        }
    }
}

/// The error chain of a request (reqwest's message stops at the first cause otherwise).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        format!("no answer within {}s", STEP_TIMEOUT.as_secs())
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn run_command(path: &PathBuf, step: Step, request: &Value) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let mut child = tokio::process::Command::new(path)
        .arg(step.as_str())
        // The values go on stdin only: never in arguments or the environment, where
        // process listings and crash reports would show them.
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not start {shown}: {e}"))?;
    let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let run = async move {
        // A hook that does not read its input still gets to answer.
        let _ = stdin.write_all(&body).await;
        drop(stdin);
        child.wait_with_output().await
    };
    let output = tokio::time::timeout(STEP_TIMEOUT, run)
        .await
        .map_err(|_| format!("{shown} did not finish within {}s", STEP_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{shown}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{shown} exited with {}", output.status));
    }
    if output.stdout.len() > MAX_HOOK_ANSWER {
        return Err(format!("{shown} wrote over {MAX_HOOK_ANSWER} bytes"));
    }
    Ok(output.stdout)
}

/// A client that trusts the system's CAs and the trust bundle, and presents a fresh
/// short-lived certificate for the server's own SPIFFE ID.
fn hook_client(state: &AppState) -> Result<reqwest::Client, String> {
    let now = OffsetDateTime::now_utc();
    let authorities = state.authorities();
    let mut roots = crate::state::native_roots();
    for ca in authorities.bundle_cas(now.unix_timestamp()) {
        let _ = roots.add(rustls::pki_types::CertificateDer::from(
            ca.ca.cert_der().to_vec(),
        ));
    }
    let signing = authorities
        .signing_ca(now.unix_timestamp())
        .ok_or("no CA is active to sign the server's client certificate")?;
    let id =
        writ_identity::SpiffeId::parse(&format!("spiffe://{}/writ/server", state.trust_domain))
            .map_err(|e| e.to_string())?;
    let (cert_pem, key) = signing
        .ca
        .issue_server_certificate(&id, &[], &[], now, time::Duration::minutes(10))
        .map_err(|e| e.to_string())?;
    let certs = pem::parse_many(cert_pem.as_bytes())
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| rustls::pki_types::CertificateDer::from(p.into_contents()))
        .collect::<Vec<_>>();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()))
        .map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .dns_resolver(Arc::new(GuardedResolver::new(state.hook_networks.clone())))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(STEP_TIMEOUT)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Starts the rotations that are due; each runs on its own task. Called every second.
pub async fn start_due(state: &Arc<AppState>) -> Result<(), String> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let due = state
        .store
        .due_rotations(now, now - STALE_AFTER_SECONDS)
        .await
        .map_err(|e| e.to_string())?;
    for secret in due {
        let Some(config) = secret
            .rotation
            .as_deref()
            .and_then(|r| serde_json::from_str::<RotationConfig>(r).ok())
        else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let actor = format!("spiffe://{}/writ/server", state.trust_domain);
            let resource = format!("writ:secret/{}", secret.name);
            let event = |outcome, reason| {
                let mut event = state.system_event(
                    &actor,
                    "schedule",
                    "secrets:RotateSecret",
                    &resource,
                    outcome,
                );
                event.reason = Some(reason);
                event
            };
            let result = rotate(&state, &secret.name, &config, |v| {
                event(
                    writ_audit::Outcome::Allowed,
                    format!("scheduled rotation: version {v} is AWSCURRENT"),
                )
            })
            .await;
            // A success is on record with the move of AWSCURRENT.
            let failure = match &result {
                Ok(_) => return,
                Err(f) if f.busy => return,
                Err(f) => f,
            };
            let event = event(
                writ_audit::Outcome::Failed,
                format!("scheduled rotation failed at {failure}; AWSCURRENT is unchanged"),
            );
            if let Err(e) = state.audit.record_durable(event).await {
                tracing::error!(secret = secret.name, error = %e, "could not audit a rotation");
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_answer_holds_exactly_one_value() {
        assert_eq!(
            new_value(br#"{"secretString":"s3cr3t"}"#).unwrap(),
            (b"s3cr3t".to_vec(), false)
        );
        assert_eq!(
            new_value(br#"{"secretBinary":"AAEC"}"#).unwrap(),
            (vec![0, 1, 2], true)
        );
        for bad in [
            &br#"{}"#[..],
            br#"{"secretString":"a","secretBinary":"AA=="}"#,
            br#"{"secretString":7}"#,
            br#"{"secretString":""}"#,
            br#"{"secretBinary":"not base64!"}"#,
            b"plain text",
        ] {
            assert!(new_value(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let huge = format!(
            r#"{{"secretString":"{}"}}"#,
            "x".repeat(MAX_VALUE_BYTES + 1)
        );
        assert!(new_value(huge.as_bytes()).unwrap_err().contains("bytes"));
    }

    #[test]
    fn schedules_have_a_floor() {
        let config = |every: &str| RotationConfig {
            hook: Hook::Command { name: "db".into() },
            every: Some(every.into()),
        };
        assert_eq!(config("30d").every_seconds().unwrap(), Some(30 * 86_400));
        assert!(
            config("5s")
                .every_seconds()
                .unwrap_err()
                .contains("shortest")
        );
        assert!(config("soon").every_seconds().is_err());
        let stored: RotationConfig = serde_json::from_str(
            r#"{"hook":{"type":"https","url":"https://h/rotate"},"every":"1h"}"#,
        )
        .unwrap();
        assert_eq!(stored.every_seconds().unwrap(), Some(3600));
        assert!(
            serde_json::from_str::<RotationConfig>(r#"{"hook":{"type":"shell","cmd":"rm"}}"#)
                .is_err()
        );
    }
}
