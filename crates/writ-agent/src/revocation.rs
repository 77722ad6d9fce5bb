//! Following the revocation feed with the function's SVID: when the function, or the SVID
//! the agent holds, is revoked, the agent drops its cached secrets and refuses everything
//! from then on (the server and gateways refuse it too; this makes the agent say so at once
//! instead of serving cached values until they expire).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use writ_api::endpoints::ReadRevocations;
use writ_api::identity::{FeedQuery, Revocation, RevocationKind};
use writ_client::fetch::HttpFetcher;
use writ_client::identity::Identity;
use writ_client::secrets::SecretCache;

/// Whether a feed entry revokes the identity the agent holds: its function, revoked after
/// its current SVID was issued (an older entry belongs to an earlier registration), or its
/// current SVID's serial.
pub fn revokes(entry: &Revocation, spiffe_id: &str, serial: &str, issued_at: i64) -> bool {
    let value = entry.value.as_str();
    match entry.kind {
        RevocationKind::Function => value == spiffe_id && entry.revoked_at >= issued_at,
        RevocationKind::Serial => value.trim_start_matches('0') == serial.trim_start_matches('0'),
        RevocationKind::Token => false,
    }
}

/// Long-polls the feed until the identity is revoked.
pub async fn follow(
    identity: Arc<Identity>,
    revoked: Arc<AtomicBool>,
    secrets: SecretCache<HttpFetcher>,
) {
    let mut after = 0;
    loop {
        let api = match identity.api() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "revocation feed: no client");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let answered = api
            .send_within::<ReadRevocations>(&FeedQuery { after, wait: 25 }, Duration::from_secs(40))
            .await;
        let page = match answered {
            Ok(feed) => Ok(Some(feed)),
            Err(e) if matches!(e.status(), Some(401 | 403)) => Ok(None),
            Err(e) => Err(e.detail()),
        };
        let page = match page {
            Ok(Some(p)) => p,
            // The server refuses this SVID on the feed (as it does for a revoked function
            // or serial) while the SVID is still valid: it was revoked, maybe while this
            // agent was not listening.
            Ok(None)
                if identity.svid().not_after > time::OffsetDateTime::now_utc().unix_timestamp() =>
            {
                revoked.store(true, Ordering::Release);
                secrets.clear();
                tracing::warn!("the server refuses this function's SVID: treating it as revoked");
                return;
            }
            Ok(None) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "revocation feed unreachable");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let svid = identity.svid();
        let issued_at = svid.not_before + 30;
        let hit = page
            .entries
            .iter()
            .any(|e| revokes(e, &svid.spiffe_id, &svid.serial, issued_at));
        if hit {
            revoked.store(true, Ordering::Release);
            secrets.clear();
            tracing::warn!(id = svid.spiffe_id, "this function's identity was revoked");
            return;
        }
        after = page.next;
    }
}

#[cfg(test)]
mod tests {
    use super::revokes;
    use writ_api::identity::{Revocation, RevocationKind};

    fn entry(kind: RevocationKind, value: &str, revoked_at: i64) -> Revocation {
        Revocation {
            seq: 1,
            kind,
            value: value.into(),
            revoked_at,
        }
    }

    #[test]
    fn only_entries_for_this_identity_after_its_issue_revoke_it() {
        let me = "spiffe://example.org/fn/orders";
        let f = |v: &str, at: i64| entry(RevocationKind::Function, v, at);
        assert!(revokes(&f(me, 200), me, "0abc", 100));
        assert!(
            !revokes(&f(me, 50), me, "0abc", 100),
            "an earlier registration's"
        );
        assert!(!revokes(
            &f("spiffe://example.org/fn/payments", 200),
            me,
            "0abc",
            100
        ));
        let s = |v: &str| entry(RevocationKind::Serial, v, 1);
        assert!(revokes(&s("abc"), me, "0abc", 100));
        assert!(!revokes(&s("abd"), me, "0abc", 100));
        assert!(!revokes(
            &entry(RevocationKind::Token, "x", 1),
            me,
            "x",
            100
        ));
    }
}
