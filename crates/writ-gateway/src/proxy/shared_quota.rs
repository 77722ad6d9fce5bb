//! The shell around [`crate::quota_lease`]: spends an API key's shared quota, asking the
//! server for leases (`POST /v1/quotas/lease`) on the request path when nothing is held,
//! and in the background before what is held runs out.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use hyper::StatusCode;
use writ_api::endpoints::LeaseQuota;
use writ_api::quotas::QuotaLeaseRequest;

use super::refusal::Refusal;
use crate::metrics::Label;
use crate::quota_lease::{Admit, Ask, SharedQuota};
use crate::sync::ServerClient;

/// How many times one request may find nothing held and ask (or wait for another's ask):
/// more than once only when other requests spent a lease before this one could.
const ASKS_PER_REQUEST: usize = 3;

/// The longest a request waits for a lease another request or a refill asked for.
const WAIT_FOR_LEASE: Duration = Duration::from_secs(5);

/// One API key's shared quota, as the request path and the background refills share it.
pub(super) struct SharedKey {
    /// The key's id, as the server counts it.
    pub(super) id: Arc<str>,
    pub(super) quota: Arc<Mutex<SharedQuota>>,
    /// Woken when a lease's answer is in.
    pub(super) answered: Arc<tokio::sync::Notify>,
}

/// The time now, in Unix milliseconds.
fn now_ms() -> i64 {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

impl SharedKey {
    /// Spends one admission if one is held, without waiting: `Ok(true)` when spent
    /// (asking for the next lease in the background once half a lease is left),
    /// `Ok(false)` when nothing is held and a lease is on its way (asked for now, if it
    /// was not already): then [`SharedKey::spend`] waits for it. A refusal when the
    /// period's quota is spent (429) or the server could not be asked (503).
    pub(super) fn try_spend(&self, server: &ServerClient) -> Result<bool, Refusal> {
        let admit = self.lock().admit(now_ms());
        match admit {
            Admit::Yes { refill } => {
                if let Some(ask) = refill {
                    self.ask(server, ask);
                }
                Ok(true)
            }
            // The ask runs on its own, so that a request given up half way (its client
            // gone) never leaves the lease unasked and others waiting.
            Admit::Ask(ask) => {
                self.ask(server, ask);
                Ok(false)
            }
            Admit::Wait => Ok(false),
            Admit::Exhausted { retry_after } => {
                let mut r = Refusal::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "quotaExceeded",
                    Label::QuotaExceeded,
                    format!("API key {} has used its quota", self.id),
                );
                r.retry_after = Some(retry_after);
                Err(r)
            }
            Admit::Unavailable { retry_after } => Err(unavailable(&self.id, retry_after)),
        }
    }

    /// Spends one admission once the lease on its way is in (after
    /// [`SharedKey::try_spend`] found none held).
    pub(super) async fn spend(&self, server: &ServerClient) -> Result<(), Refusal> {
        for _ in 0..ASKS_PER_REQUEST {
            // Registered before the state is read, so that an answer coming in between
            // is not missed.
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            if self.lock().waiting()
                && tokio::time::timeout(WAIT_FOR_LEASE, answered)
                    .await
                    .is_err()
            {
                return Err(unavailable(&self.id, Duration::from_secs(1)));
            }
            if self.try_spend(server)? {
                return Ok(());
            }
        }
        Err(unavailable(&self.id, Duration::from_secs(1)))
    }

    /// Asks for `ask` in a task of its own, and wakes the requests waiting for it when
    /// the answer is in.
    fn ask(&self, server: &ServerClient, ask: Ask) {
        let (id, quota, answered, server) = (
            self.id.clone(),
            self.quota.clone(),
            self.answered.clone(),
            server.clone(),
        );
        tokio::spawn(async move {
            ask_and_apply(&server, &id, &quota, ask).await;
            answered.notify_waiters();
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SharedQuota> {
        self.quota.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn unavailable(id: &str, retry_after: Duration) -> Refusal {
    let mut r = Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        Label::Unavailable,
        format!(
            "API key {id}: its quota is counted by the server, which the gateway cannot reach now"
        ),
    );
    r.retry_after = Some(retry_after.max(Duration::from_secs(1)));
    r
}

/// Asks the server for `ask` and records the answer in `quota`.
async fn ask_and_apply(server: &ServerClient, id: &str, quota: &Mutex<SharedQuota>, ask: Ask) {
    let request = {
        let q = quota.lock().unwrap_or_else(PoisonError::into_inner);
        QuotaLeaseRequest {
            key: id.to_owned(),
            period_seconds: q.period_seconds(),
            period_start: ask.period_start,
            limit: q.quota(),
            want: ask.want,
        }
    };
    let answer = server.api().send::<LeaseQuota>(&request).await;
    let mut q = quota.lock().unwrap_or_else(PoisonError::into_inner);
    match answer {
        Ok(lease) => q.granted(ask, lease.granted, lease.counted, now_ms()),
        Err(e) => {
            tracing::warn!(key = id, error = %e, "the server did not lease admissions of the API key's shared quota; the key's requests are refused (503) once what the gateway holds is spent");
            q.failed(ask, now_ms());
        }
    }
}
