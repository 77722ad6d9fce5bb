//! The audit log as the server writes it: every admin change, login, refusal, issuance and
//! decision becomes a [`writ_audit::Event`], appended to the hash-chained table in the store,
//! with a signed checkpoint per batch, and then copied to the JSON-lines file or stdout if
//! configured.
//!
//! One writer task appends in batches (group commit): whatever events are waiting when a
//! batch starts go into one transaction, up to [`MAX_BATCH`]; events sent in together (a
//! gateway's or agent's batch, [`AuditLog::record_all_durable`]) are never split, so they
//! are committed whole or not at all. Callers choose:
//!
//! - [`AuditLog::record_durable`] waits until its event is committed, and fails if it could
//!   not be: admin changes, logins and (later) secret reads are reported as done only then;
//! - [`AuditLog::record`] queues the event and goes on: decisions on the hot path (renewals,
//!   JWT-SVIDs, refusals). A batch that fails to commit is retried; a server stopped with
//!   SIGTERM or Ctrl-C commits the queue before it exits ([`AuditLog::flush`]). Only if the
//!   process dies are the events still queued lost: at most [`QUEUE`] + [`MAX_BATCH`], in
//!   practice those of the last few milliseconds. A full queue fails the request rather
//!   than dropping its event.
//!
//! A change to a secret travels with its event ([`AuditLog::record_change`]): the writer
//! makes the change in the transaction that appends the event, so the two commit together
//! or not at all, and a version is never current without the event that records its
//! write. Each change is made under a savepoint: one that fails, or finds nothing to
//! change, is undone alone and its event dropped, without failing the rest of the batch.
//! Batches without changes append exactly as before.

use std::io::Write;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use writ_audit::Event;
use writ_audit::checkpoint::{PublicKey, Signer, signature_ok};
use writ_audit::redact::{Redactor, scrub};

use crate::master_key::MasterKey;
use crate::store::{Applied, AuditKeyRecord, SecretChange, Store, StoreError};

/// The most events appended in one transaction.
pub const MAX_BATCH: usize = 8000;
/// The most events waiting to be appended.
pub const QUEUE: usize = 100_000;

/// The event could not be made durable; the operation that produced it must not report
/// success.
#[derive(Debug, thiserror::Error)]
#[error("the audit event could not be recorded: {0}")]
pub struct AuditError(pub String);

/// Why a change recorded with its event ([`AuditLog::record_change`]) was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The change itself failed (a name in use, a database refusal): it and its event were
    /// undone, and the rest of its batch went on.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The batch could not be committed: neither the change nor its event is stored.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Where committed events are also copied.
#[derive(Debug, Clone, Default)]
pub struct Copies {
    /// A JSON-lines file, appended to.
    pub file: Option<PathBuf>,
    /// Standard output.
    pub stdout: bool,
}

type Ack = oneshot::Sender<Result<(), String>>;
type ChangeAck = oneshot::Sender<Result<Applied, ChangeError>>;

/// What the writer receives. Nearly every message is an event, so it is not boxed.
#[allow(clippy::large_enum_variant)]
enum Message {
    /// An event, and whom to tell once it is committed.
    Event(Event, Option<Ack>),
    /// Events sent in together, appended in one transaction, and whom to tell once they
    /// are committed.
    Events(Vec<Event>, Ack),
    /// A change to make in the transaction that appends its event, and whom to tell how
    /// it went.
    Change(Event, SecretChange, ChangeAck),
    /// Tell once everything sent before is committed.
    Flush(Ack),
}

impl Message {
    /// How many events it carries.
    fn events(&self) -> usize {
        match self {
            Message::Event(..) | Message::Change(..) => 1,
            Message::Events(events, _) => events.len(),
            Message::Flush(_) => 0,
        }
    }
}

/// The server's audit log.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Message>,
    redactor: Arc<Redactor>,
    public_keys: Arc<Vec<PublicKey>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

/// What an audit key's sealing is bound to.
pub(crate) fn purpose(id: &str) -> String {
    format!("writ audit key {id}")
}

/// Loads the audit keys (making them on the first start with this version) and starts the
/// writer task.
pub async fn open(store: &Store, master: &MasterKey, copies: Copies) -> Result<AuditLog, String> {
    let mut keys = store.audit_keys().await.map_err(|e| e.to_string())?;
    if !keys.iter().any(|k| k.kind == "signing") || !keys.iter().any(|k| k.kind == "hmac") {
        let pkcs8 = Signer::generate_pkcs8().map_err(|e| e.to_string())?;
        let signer = Signer::from_pkcs8(&pkcs8).map_err(|e| e.to_string())?;
        let mut hmac_key = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut hmac_key)
            .map_err(|_| "the system random source failed".to_string())?;
        let hmac_id = format!("hmac-{}", &signer.id()[..8]);
        let new = [
            AuditKeyRecord {
                id: signer.id().to_string(),
                kind: "signing".into(),
                public: signer.public_key_hex(),
                wrapped_key: master
                    .seal(&purpose(signer.id()), &pkcs8)
                    .map_err(|e| e.to_string())?,
            },
            AuditKeyRecord {
                wrapped_key: master
                    .seal(&purpose(&hmac_id), &hmac_key)
                    .map_err(|e| e.to_string())?,
                id: hmac_id,
                kind: "hmac".into(),
                public: String::new(),
            },
        ];
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        store
            .insert_audit_keys(&new, now)
            .await
            .map_err(|e| e.to_string())?;
        keys = store.audit_keys().await.map_err(|e| e.to_string())?;
    }
    let open = |kind: &str| -> Result<(String, Vec<u8>), String> {
        let k = keys
            .iter()
            .rfind(|k| k.kind == kind)
            .ok_or_else(|| format!("no audit {kind} key"))?;
        let plain = master
            .open(&purpose(&k.id), &k.wrapped_key)
            .map_err(|e| e.to_string())?;
        Ok((k.id.clone(), plain))
    };
    let (_, signing) = open("signing")?;
    let (_, hmac) = open("hmac")?;
    let signer = Signer::from_pkcs8(&signing).map_err(|e| e.to_string())?;
    // Publish, for verifiers, only keys this deployment made: those the master key unseals
    // and whose public half is what the row claims. A key planted in the table by someone
    // with write access to the database (but not the master key) is ignored, so it cannot
    // vouch for a rewritten log.
    let mut public_keys = Vec::new();
    for k in keys.iter().filter(|k| k.kind == "signing") {
        let genuine = master
            .open(&purpose(&k.id), &k.wrapped_key)
            .ok()
            .and_then(|pkcs8| Signer::from_pkcs8(&pkcs8).ok())
            .filter(|s| s.id() == k.id && s.public_key_hex() == k.public);
        match genuine {
            Some(_) => public_keys.push(PublicKey {
                id: k.id.clone(),
                public_key: k.public.clone(),
            }),
            None => tracing::error!(
                key = %k.id,
                "an audit signing key in the store was not made by this deployment; it is not trusted"
            ),
        }
    }
    let file = match &copies.file {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("--audit-file {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(writer(
        store.clone(),
        signer,
        public_keys.clone(),
        rx,
        file,
        copies.stdout,
    ));
    Ok(AuditLog {
        queue: tx,
        redactor: Arc::new(Redactor::new(&hmac)),
        public_keys: Arc::new(public_keys),
    })
}

impl AuditLog {
    /// Queues an event; it is committed with the next batch.
    pub fn record(&self, mut event: Event) -> Result<(), AuditError> {
        scrub(&mut event);
        self.queue
            .try_send(Message::Event(event, None))
            .map_err(|e| AuditError(format!("the audit queue is {e}")))
    }

    /// Records an event and waits until it is committed.
    pub async fn record_durable(&self, mut event: Event) -> Result<(), AuditError> {
        scrub(&mut event);
        let (ack, done) = oneshot::channel();
        self.queue
            .send(Message::Event(event, Some(ack)))
            .await
            .map_err(|_| AuditError("the audit writer has stopped".into()))?;
        done.await
            .map_err(|_| AuditError("the audit writer has stopped".into()))?
            .map_err(AuditError)
    }

    /// Records several events and waits until all are committed, in one transaction: they
    /// travel to the writer as one message.
    pub async fn record_all_durable(&self, mut events: Vec<Event>) -> Result<(), AuditError> {
        // Scrubbed in place, not moved through an iterator: batches are thousands of events.
        for event in &mut events {
            scrub(event);
        }
        if events.is_empty() {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        self.queue
            .send(Message::Events(events, ack))
            .await
            .map_err(|_| AuditError("the audit writer has stopped".into()))?;
        done.await
            .map_err(|_| AuditError("the audit writer has stopped".into()))?
            .map_err(AuditError)
    }

    /// Makes `change` and records `event` in one transaction, and waits until it is
    /// committed: the change is stored only with its event, and the event only with the
    /// change. [`Applied::Refused`] (no such live secret, ...) and
    /// [`ChangeError::Store`] mean neither was stored; so does [`ChangeError::Audit`],
    /// the whole batch having failed.
    pub async fn record_change(
        &self,
        mut event: Event,
        change: SecretChange,
    ) -> Result<Applied, ChangeError> {
        scrub(&mut event);
        let (ack, done) = oneshot::channel();
        self.queue
            .send(Message::Change(event, change, ack))
            .await
            .map_err(|_| AuditError("the audit writer has stopped".into()))?;
        done.await
            .map_err(|_| AuditError("the audit writer has stopped".into()))?
    }

    /// How many messages (an event, or a batch sent in together) wait for the writer.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Waits until every event recorded before is committed: at shutdown, so queued events
    /// are not lost.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (ack, done) = oneshot::channel();
        self.queue
            .send(Message::Flush(ack))
            .await
            .map_err(|_| AuditError("the audit writer has stopped".into()))?;
        done.await
            .map_err(|_| AuditError("the audit writer has stopped".into()))?
            .map_err(AuditError)
    }

    /// Replaces a sensitive identifier (a token id) with its HMAC under the deployment's
    /// audit key.
    pub fn hmac(&self, value: &str) -> String {
        self.redactor.hmac(value)
    }

    /// The public keys that verify checkpoints.
    pub fn public_keys(&self) -> &[PublicKey] {
        &self.public_keys
    }
}

async fn writer(
    store: Store,
    signer: Signer,
    public_keys: Vec<PublicKey>,
    mut rx: mpsc::Receiver<Message>,
    mut file: Option<std::fs::File>,
    stdout: bool,
) {
    let mut incoming = Vec::with_capacity(MAX_BATCH);
    // Queued events whose batch failed: they are tried again, first, with the next batch.
    let mut carried: Vec<Event> = Vec::new();
    loop {
        if rx.recv_many(&mut incoming, 1).await == 0 && carried.is_empty() {
            return;
        }
        // Then whatever else is waiting, up to MAX_BATCH events (a message of events sent
        // in together is never split).
        let mut waiting: usize = incoming.iter().map(Message::events).sum();
        while waiting < MAX_BATCH {
            match rx.try_recv() {
                Ok(message) => {
                    waiting += message.events();
                    incoming.push(message);
                }
                Err(_) => break,
            }
        }
        let mut events: Vec<Event> = std::mem::take(&mut carried);
        // Which events (by index) each waiting caller is told about.
        let mut acks: Vec<(Range<usize>, Ack)> = Vec::new();
        let mut changes: Vec<(SecretChange, Event)> = Vec::new();
        let mut change_acks: Vec<ChangeAck> = Vec::new();
        let mut flushes = Vec::new();
        for message in incoming.drain(..) {
            match message {
                Message::Event(event, ack) => {
                    if let Some(ack) = ack {
                        acks.push((events.len()..events.len() + 1, ack));
                    }
                    events.push(event);
                }
                Message::Events(batch, ack) => {
                    acks.push((events.len()..events.len() + batch.len(), ack));
                    if events.is_empty() {
                        // A gateway's batch alone, as under load: taken as it is, not moved
                        // event by event.
                        events = batch;
                    } else {
                        events.extend(batch);
                    }
                }
                Message::Change(event, change, ack) => {
                    changes.push((change, event));
                    change_acks.push(ack);
                }
                Message::Flush(ack) => flushes.push(ack),
            }
        }
        if events.is_empty() && changes.is_empty() {
            for ack in flushes {
                let _ = ack.send(Ok(()));
            }
            continue;
        }
        let sign = |head: &writ_audit::chain::Head| {
            let time = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            signer.sign(head, &time)
        };
        let signed = |checkpoint: &writ_audit::checkpoint::Checkpoint| {
            signature_ok(checkpoint, &public_keys)
        };
        // The events sent as events; those of the changes made follow them.
        let plain = events.len();
        let result = if changes.is_empty() {
            store
                .audit_append(&events, sign, signed)
                .await
                .map(|(_, segment)| (Some(segment), Vec::new()))
        } else {
            store
                .audit_append_changes(&mut events, changes, sign, signed)
                .await
                .map(|(appended, results)| (appended.map(|(_, segment)| segment), results))
        };
        match result {
            Ok((segment, results)) => {
                if let Some(segment) = segment
                    && (file.is_some() || stdout)
                {
                    let mut lines = String::new();
                    // The events' JSON exactly as stored and hashed, one per line.
                    for (i, event) in segment.events.split('\n').enumerate() {
                        lines.push_str(&format!(
                            "{{\"seq\":{},\"event\":{event}}}\n",
                            segment.first_seq + i as i64
                        ));
                    }
                    if let Some(f) = file.as_mut()
                        && let Err(e) = f.write_all(lines.as_bytes()).and_then(|()| f.flush())
                    {
                        tracing::error!(error = %e, "could not write the audit file");
                    }
                    if stdout {
                        let mut out = std::io::stdout().lock();
                        let _ = out.write_all(lines.as_bytes());
                        let _ = out.flush();
                    }
                }
                for (_, ack) in acks {
                    let _ = ack.send(Ok(()));
                }
                for (ack, result) in change_acks.into_iter().zip(results) {
                    let _ = ack.send(result.map_err(ChangeError::Store));
                }
                for ack in flushes {
                    let _ = ack.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = events.len(), "could not append audit events; will retry the queued ones");
                // Waiting callers learn now (their requests fail); queued events are kept
                // and tried again, so a passing outage loses nothing.
                let mut waited = vec![false; events.len()];
                for (range, _) in &acks {
                    waited[range.clone()].fill(true);
                }
                for (_, ack) in acks {
                    let _ = ack.send(Err(e.to_string()));
                }
                // Changes are not retried: their requests fail, and nothing of them is
                // stored.
                for ack in change_acks {
                    let _ = ack.send(Err(ChangeError::Audit(AuditError(e.to_string()))));
                }
                for ack in flushes {
                    let _ = ack.send(Err(e.to_string()));
                }
                events.truncate(plain);
                carried = events
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| !waited[*i])
                    .map(|(_, e)| e)
                    .take(QUEUE)
                    .collect();
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use writ_audit::Outcome;

    /// Events sent in together are appended in one transaction, with one checkpoint, even
    /// when they are more than a batch usually holds: a reporter's batch is durable whole
    /// or not at all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_sent_in_together_are_one_transaction() {
        let dir = std::env::temp_dir().join(format!("writ-audit-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("writ.db").display());
        let store = Store::open(&url).await.unwrap();
        let master = MasterKey::from_bytes(&[7; 32]).unwrap();
        let log = open(&store, &master, Copies::default()).await.unwrap();
        let event = |i: usize| {
            Event::new(
                "2026-11-24T10:00:00Z",
                &format!("spiffe://example.org/fn/f{i}"),
                "x509Svid",
                "writ:Invoke",
                "writ:fn/payments",
                Outcome::Allowed,
            )
        };
        log.record(event(0)).unwrap();
        log.record_all_durable((1..=MAX_BATCH + 500).map(event).collect())
            .await
            .unwrap();
        let checkpoints = store.audit_checkpoints(0, 100).await.unwrap();
        let last = checkpoints.last().unwrap();
        assert_eq!(last.seq, MAX_BATCH as i64 + 501);
        // The batch's events follow the one recorded before, in one commit of their own
        // or with it: never split.
        let before = checkpoints.iter().rev().nth(1).map_or(0, |c| c.seq);
        assert!(
            before <= 1,
            "checkpoints at {:?}",
            checkpoints.iter().map(|c| c.seq).collect::<Vec<_>>()
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
