//! The tamper-evident audit log, end to end against the real `writ` binary: tampering with
//! the stored chain (SQLite and PostgreSQL) is found by `writ audit verify`; no secret
//! reaches the logs, the audit records, the audit file or the database file; gateways and
//! agents send events in; `writ audit tail` filters and follows.
//!
//! The chain is stored a segment per row of `audit_segments`: the events of one appended
//! batch, their hashes, and the hash before them. Tampering is done the way an attacker
//! with write access to the database would: with `python3`'s `sqlite3` module on
//! DATA_DIR/writ.db (the server stopped), or with `psql`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{
    PATIENCE, Server, Svid, TRUST_DOMAIN, TempDir, join_token_evidence, run, success, text,
};
use serde_json::{Value, json};
use writ_audit::chain::{Head, Record, link};
use writ_audit::checkpoint::{Checkpoint, Signer};
use writ_audit::{hex, packed, unhex};

const POSTGRES_ENV: &str = "WRIT_TEST_POSTGRES_URL";

// --- Helpers ---

/// A new server for `example.org` in `dir/data`.
fn start(dir: &TempDir) -> Server {
    Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN])
}

/// The SPIFFE ID of a function of the test trust domain.
fn fn_id(name: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/fn/{name}")
}

/// The id part of a `writ.<kind>.<id>.<secret>` token.
fn token_id(token: &str) -> &str {
    token.split('.').nth(2).expect("token id")
}

/// The secret part of a `writ.<kind>.<id>.<secret>` token.
fn token_secret(token: &str) -> &str {
    token.rsplit('.').next().expect("token secret")
}

/// Logs `function` in with a fresh join token; panics unless it gets an SVID.
fn login(server: &Server, dir: &TempDir, function: &str) -> Svid {
    let token = server.join_token(function);
    Svid::login(server, dir, function, join_token_evidence(&token))
        .unwrap_or_else(|r| panic!("login {function}: HTTP {} {}", r.status, r.body))
}

/// Now, or `offset` from now, in RFC 3339.
fn rfc3339_from_now(offset: time::Duration) -> String {
    (time::OffsetDateTime::now_utc() + offset)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format time")
}

/// Every line of `out` parsed as JSON; panics on a line that is not.
fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Writes a scoped admin-token policy allowing `actions` on `resource`; returns the file.
fn policy_file(dir: &TempDir, actions: &[&str], resource: &str) -> PathBuf {
    let path = dir.unique_file("policy", "json");
    std::fs::write(
        &path,
        json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}],
        })
        .to_string(),
    )
    .expect("write policy");
    path
}

/// `writ token create --policy FILE`: a scoped admin token.
fn scoped_token(server: &Server, policy: &Path) -> String {
    server
        .cli_ok(&[
            "token",
            "create",
            "--policy",
            policy.to_str().expect("utf-8 path"),
            "--description",
            "audit test",
        ])
        .trim()
        .to_string()
}

/// What `writ audit verify` said.
struct Verdict {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn audit_verify(server: &Server) -> Verdict {
    let out = server.cli(&["audit", "verify"]);
    Verdict {
        code: out.status.code(),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    }
}

impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Verdict {
    /// Asserts exit 0 and "audit log intact: N events".
    fn assert_intact(&self, events: usize) {
        assert_eq!(self.code, Some(0), "verify should pass: {self:?}");
        assert!(
            self.stdout
                .starts_with(&format!("audit log intact: {events} events")),
            "{self:?}"
        );
    }

    /// Asserts exit 1 and "audit log broken at event SEQ: ..." mentioning each of `words`.
    fn assert_broken(&self, case: &str, seq: i64, words: &[&str]) {
        assert_eq!(self.code, Some(1), "{case}: verify should fail: {self:?}");
        assert!(
            self.stdout
                .starts_with(&format!("audit log broken at event {seq}: ")),
            "{case}: should name event {seq}: {self:?}"
        );
        for w in words {
            assert!(
                self.stdout.contains(w),
                "{case}: should say {w:?}: {self:?}"
            );
        }
    }
}

/// A database the audit tables live in, written to with the tools an attacker would have.
enum Db {
    /// DATA_DIR/writ.db, through python3's sqlite3 module.
    Sqlite(PathBuf),
    /// A PostgreSQL database URL, through `psql`.
    Postgres(String),
}

const SQLITE_PY: &str = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
if sys.argv[2] == "query":
    for row in c.execute(sys.argv[3]):
        sys.stdout.write("\x1f".join("" if v is None else str(v) for v in row) + "\x1e")
else:
    c.executescript("BEGIN;\n" + sys.argv[3] + ";\nCOMMIT;")
c.close()
"#;

impl Db {
    fn command(&self, query: bool, sql: &str) -> Command {
        match self {
            Db::Sqlite(path) => {
                let mut cmd = common::python3();
                cmd.arg("-c")
                    .arg(SQLITE_PY)
                    .arg(path)
                    .arg(if query { "query" } else { "exec" })
                    .arg(sql);
                cmd
            }
            Db::Postgres(url) => {
                let mut cmd = Command::new("psql");
                // One -c string runs as one transaction.
                cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t"])
                    .args(["-F", "\x1f", "-R", "\x1e", "-d", url, "-c", sql]);
                cmd
            }
        }
    }

    /// Runs statements in one transaction.
    fn exec(&self, sql: &str) {
        success(
            &format!("tamper: {sql}"),
            &run(&mut self.command(false, sql)),
        );
    }

    /// The rows of a query, each as its columns' text ("" for NULL).
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let out = success(&format!("query: {sql}"), &run(&mut self.command(true, sql)));
        out.trim_end_matches('\n')
            .split('\x1e')
            .filter(|r| !r.is_empty())
            .map(|r| r.split('\x1f').map(str::to_string).collect())
            .collect()
    }

    /// A BLOB / BYTEA literal.
    fn blob(&self, bytes: &[u8]) -> String {
        match self {
            Db::Sqlite(_) => format!("x'{}'", hex(bytes)),
            Db::Postgres(_) => format!("decode('{}', 'hex')", hex(bytes)),
        }
    }

    /// An SQL expression for the hex of a BLOB / BYTEA column.
    fn hex_of(&self, column: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("hex({column})"),
            Db::Postgres(_) => format!("encode({column}, 'hex')"),
        }
    }

    /// The stored segments in first_seq order, each with the actors `audit_segment_actors`
    /// lists for it. Their events are unpacked and their hashes read as hex, as the server
    /// reads them.
    fn segments(&self) -> Vec<Segment> {
        let actors: Vec<(i64, String)> = self
            .rows("SELECT first_seq, actor FROM audit_segment_actors ORDER BY first_seq, actor")
            .into_iter()
            .map(|r| (r[0].parse().expect("first_seq"), r[1].clone()))
            .collect();
        self.rows(&format!(
            "SELECT first_seq, last_seq, min_time_ms, max_time_ms, prev_hash, {}, codec, {} \
             FROM audit_segments ORDER BY first_seq",
            self.hex_of("hashes"),
            self.hex_of("events")
        ))
        .into_iter()
        .map(|r| {
            let first_seq = r[0].parse().expect("first_seq");
            let bytes = |hex_text: &str| unhex(hex_text).expect("hex from the database");
            Segment {
                first_seq,
                last_seq: r[1].parse().expect("last_seq"),
                min_time_ms: r[2].parse().expect("min_time_ms"),
                max_time_ms: r[3].parse().expect("max_time_ms"),
                prev_hash: r[4].clone(),
                hashes: hex(&bytes(&r[5])),
                events: packed::unpack(&r[6], &bytes(&r[7]))
                    .unwrap_or_else(|e| panic!("segment {first_seq}: {e}")),
                actors: actors
                    .iter()
                    .filter(|(seq, _)| *seq == first_seq)
                    .map(|(_, actor)| actor.clone())
                    .collect(),
            }
        })
        .collect()
    }

    /// The records the server makes of the stored segments: what `writ audit verify` checks.
    fn records(&self) -> Vec<Record> {
        self.segments().iter().flat_map(Segment::records).collect()
    }

    /// Replaces every segment and actor row with `segments` (and their actors), in one
    /// transaction, stored as the server stores them: events compressed, hashes as bytes.
    fn replace_segments(&self, segments: &[Segment]) {
        let mut sql = vec![
            "DELETE FROM audit_segments".to_string(),
            "DELETE FROM audit_segment_actors".to_string(),
        ];
        for s in segments {
            sql.push(format!(
                "INSERT INTO audit_segments \
                 (first_seq, last_seq, min_time_ms, max_time_ms, prev_hash, hashes, codec, events) \
                 VALUES ({}, {}, {}, {}, {}, {}, 'lz4', {})",
                s.first_seq,
                s.last_seq,
                s.min_time_ms,
                s.max_time_ms,
                q(&s.prev_hash),
                self.blob(&unhex(&s.hashes).expect("hex hashes")),
                self.blob(&packed::pack(&s.events))
            ));
            for actor in &s.actors {
                sql.push(format!(
                    "INSERT INTO audit_segment_actors (actor, first_seq) VALUES ({}, {})",
                    q(actor),
                    s.first_seq
                ));
            }
        }
        self.exec(&sql.join(";\n"));
    }

    fn checkpoints(&self) -> Vec<Checkpoint> {
        self.rows("SELECT seq, hash, time, key_id, signature FROM audit_checkpoints ORDER BY seq")
            .into_iter()
            .map(|r| Checkpoint {
                seq: r[0].parse().expect("seq"),
                hash: r[1].clone(),
                time: r[2].clone(),
                key_id: r[3].clone(),
                signature: r[4].clone(),
            })
            .collect()
    }
}

/// A SQL string literal.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn hash_bytes(hex_text: &str) -> [u8; 32] {
    unhex(hex_text)
        .and_then(|b| b.try_into().ok())
        .unwrap_or_else(|| panic!("not a 32-byte hex hash: {hex_text}"))
}

/// A string field of an event's JSON ("" if it has none).
fn event_field(event: &str, name: &str) -> String {
    serde_json::from_str::<Value>(event)
        .ok()
        .and_then(|e| e[name].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// An event's time in Unix milliseconds, as the server stores it (0 if unreadable).
fn time_ms(event: &str) -> i64 {
    time::OffsetDateTime::parse(
        &event_field(event, "time"),
        &time::format_description::well_known::Rfc3339,
    )
    .map_or(0, |t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// One row of `audit_segments` (the events of one appended batch, numbered from
/// `first_seq`), with the actors `audit_segment_actors` lists for it.
#[derive(Debug, Clone)]
struct Segment {
    first_seq: i64,
    last_seq: i64,
    min_time_ms: i64,
    max_time_ms: i64,
    /// The hash of the event before `first_seq`, in hex.
    prev_hash: String,
    /// Each event's hash, 64 hex characters each, concatenated.
    hashes: String,
    /// Each event's JSON, joined by '\n'.
    events: String,
    actors: Vec<String>,
}

impl Segment {
    /// A segment holding `events` with their `hashes` from `first_seq`, after `prev_hash`.
    fn new(first_seq: i64, prev_hash: &str, events: &[String], hashes: &[String]) -> Segment {
        let mut s = Segment {
            first_seq,
            last_seq: first_seq,
            min_time_ms: 0,
            max_time_ms: 0,
            prev_hash: prev_hash.to_string(),
            hashes: String::new(),
            events: String::new(),
            actors: Vec::new(),
        };
        s.set(events, hashes);
        s
    }

    /// Its events' JSON, in order.
    fn events(&self) -> Vec<String> {
        self.events.split('\n').map(str::to_string).collect()
    }

    /// How many events it holds.
    fn count(&self) -> i64 {
        self.events.split('\n').count() as i64
    }

    /// The stored hash of its `i`-th event (from 0); "" where `hashes` is too short, as the
    /// server reads it.
    fn hash(&self, i: usize) -> &str {
        self.hashes.get(64 * i..64 * i + 64).unwrap_or("")
    }

    /// Its events' stored hashes, in order.
    fn hashes(&self) -> Vec<String> {
        (0..self.events().len())
            .map(|i| self.hash(i).to_string())
            .collect()
    }

    /// The records the server makes of it: its `i`-th event (from 0) is event
    /// `first_seq + i`, with the `i`-th stored hash, and linked to the segment's
    /// `prev_hash` (the first) or to the stored hash of the event before it.
    fn records(&self) -> Vec<Record> {
        self.events
            .split('\n')
            .enumerate()
            .map(|(i, event)| Record {
                seq: self.first_seq + i as i64,
                event: event.to_string(),
                prev_hash: match i {
                    0 => self.prev_hash.clone(),
                    _ => self.hash(i - 1).to_string(),
                },
                hash: self.hash(i).to_string(),
            })
            .collect()
    }

    /// Stores `events` with their `hashes` in it, as someone writing a consistent row
    /// would: `last_seq`, the time range and the actors follow the events.
    fn set(&mut self, events: &[String], hashes: &[String]) {
        assert_eq!(events.len(), hashes.len(), "an event per hash");
        self.last_seq = self.first_seq + events.len() as i64 - 1;
        let times = events.iter().map(|e| time_ms(e));
        self.min_time_ms = times.clone().min().unwrap_or(0);
        self.max_time_ms = times.max().unwrap_or(0);
        self.hashes = hashes.concat();
        self.events = events.join("\n");
        self.actors = events.iter().map(|e| event_field(e, "actor")).collect();
        self.actors.sort();
        self.actors.dedup();
    }

    /// Puts `event` with `hash` in place of its `at`-th event (from 0).
    fn replace(&mut self, at: usize, event: &str, hash: &str) {
        let (mut events, mut hashes) = (self.events(), self.hashes());
        events[at] = event.to_string();
        hashes[at] = hash.to_string();
        self.set(&events, &hashes);
    }

    /// Renumbers it `by` places (its actor rows follow when written back).
    fn shift(&mut self, by: i64) {
        self.first_seq += by;
        self.last_seq += by;
    }
}

/// Replaces event `seq`'s JSON with `event` and recomputes its hash and every later hash
/// with the chain's own link function, as an attacker who read the source would: the
/// `hashes` of every segment from the edited event's on, and the `prev_hash` of every
/// later segment. Returns the new hashes by seq.
fn rewrite_chain(db: &Db, segments: &[Segment], seq: i64, event: &str) -> Vec<(i64, String)> {
    let mut segments = segments.to_vec();
    let mut hashes = Vec::new();
    // The rewritten hash of the event before the next one, once there is one.
    let mut prev: Option<[u8; 32]> = None;
    for s in segments.iter_mut().filter(|s| s.last_seq >= seq) {
        if let Some(p) = prev {
            s.prev_hash = hex(&p);
        }
        let (mut events, mut stored) = (s.events(), s.hashes());
        for (i, r) in s.records().iter().enumerate().filter(|(_, r)| r.seq >= seq) {
            let before = prev.unwrap_or_else(|| hash_bytes(&r.prev_hash));
            if r.seq == seq {
                events[i] = event.to_string();
            }
            let hash = link(&before, r.seq, &events[i]);
            stored[i] = hex(&hash);
            hashes.push((r.seq, hex(&hash)));
            prev = Some(hash);
        }
        s.set(&events, &stored);
    }
    db.replace_segments(&segments);
    hashes
}

// --- 1. Tamper detection ---

/// The log as it was before tampering, and where to tamper.
struct Baseline {
    /// The stored segments, one per appended batch.
    segments: Vec<Segment>,
    /// The records the server makes of them.
    records: Vec<Record>,
    checkpoints: Vec<Checkpoint>,
    /// A refused login in the middle of the log: the event someone would want to hide.
    target: i64,
}

impl Baseline {
    /// Reads the log, and asserts it is stored as the tamper cases expect: segments
    /// numbered from 1 without gaps, each with a hash per event and its actors listed, and
    /// one checkpoint per segment, over its last event.
    fn read(db: &Db) -> Baseline {
        let segments = db.segments();
        let records: Vec<Record> = segments.iter().flat_map(Segment::records).collect();
        let checkpoints = db.checkpoints();
        let mut next = 1;
        for s in &segments {
            let n = s.count();
            assert_eq!(s.first_seq, next, "segments follow each other: {s:?}");
            assert_eq!(s.last_seq, s.first_seq + n - 1, "{n} events: {s:?}");
            assert_eq!(s.hashes.len() as i64, 64 * n, "a hash per event: {s:?}");
            let mut actors: Vec<String> =
                s.events().iter().map(|e| event_field(e, "actor")).collect();
            actors.sort();
            actors.dedup();
            let mut listed = s.actors.clone();
            listed.sort();
            assert_eq!(listed, actors, "the actor rows of segment {}", s.first_seq);
            next = s.last_seq + 1;
        }
        assert_eq!(
            checkpoints.iter().map(|c| c.seq).collect::<Vec<_>>(),
            segments.iter().map(|s| s.last_seq).collect::<Vec<_>>(),
            "a checkpoint per segment, over its last event"
        );
        let target = records
            .iter()
            .find(|r| {
                r.event.contains("\"action\":\"writ:Login\"")
                    && r.event.contains("\"outcome\":\"denied\"")
            })
            .map(|r| r.seq)
            .expect("a refused login in the log");
        assert!(records.len() >= 24, "only {} events", records.len());
        assert!(target >= 2 && target + 5 <= records.len() as i64);
        Baseline {
            segments,
            records,
            checkpoints,
            target,
        }
    }

    fn record(&self, seq: i64) -> &Record {
        &self.records[usize::try_from(seq - 1).expect("seq from 1")]
    }

    /// Where event `seq` is stored: the index of its segment, and its place in it (from 0).
    fn locate(&self, seq: i64) -> (usize, usize) {
        let i = self
            .segments
            .iter()
            .position(|s| s.first_seq <= seq && seq <= s.last_seq)
            .unwrap_or_else(|| panic!("no segment holds event {seq}"));
        let at = usize::try_from(seq - self.segments[i].first_seq).expect("in its segment");
        (i, at)
    }

    /// The first checkpoint at or after `seq`: the one that covers it.
    fn covering(&self, seq: i64) -> &Checkpoint {
        self.checkpoints
            .iter()
            .find(|c| c.seq >= seq)
            .expect("a checkpoint covering the event")
    }

    fn last_seq(&self) -> i64 {
        self.records.len() as i64
    }
}

/// Admin changes, logins, refusals, issuance and reads: 20-odd events, ending with a
/// durable one so everything queued before it is committed too.
fn make_activity(server: &Server, dir: &TempDir) {
    server.register("orders");
    server.register("payments");
    let orders = login(server, dir, "orders");
    let refused = Svid::login(
        server,
        dir,
        "orders",
        join_token_evidence("writ.join.0123456789abcdef01234567.not-a-real-secret"),
    )
    .expect_err("made-up join token");
    assert_eq!(refused.status, 401);
    let payments = login(server, dir, "payments");
    orders
        .renew(server, dir)
        .unwrap_or_else(|r| panic!("renew: {} {}", r.status, r.body));
    orders.mint_jwt(server, "billing").expect(200);
    payments.mint_jwt(server, "orders").expect(200);
    server.join_token("orders");
    let policy = policy_file(dir, &["writ:RegisterFunction"], &fn_id("team-a-*"));
    let scoped = scoped_token(server, &policy);
    server
        .curl("POST", "/v1/functions")
        .bearer(&scoped)
        .json(&json!({"name": "team-a-orders"}))
        .send()
        .expect(201);
    server
        .curl("POST", "/v1/functions")
        .bearer(&scoped)
        .json(&json!({"name": "team-b-orders"}))
        .send()
        .expect(403);
    server.cli_ok(&["fn", "list"]);
    server.cli_ok(&["ca", "show"]);
    let now = rfc3339_from_now(time::Duration::ZERO);
    let sent: Vec<Value> = (0..4)
        .map(|i| {
            let mut e = outside_event(&now, &format!("sent-{i}"));
            e["actor"] = json!(fn_id("orders"));
            e
        })
        .collect();
    orders
        .curl(server, "POST", "/v1/audit/events")
        .json(&json!({ "events": sent }))
        .send()
        .expect(200);
    server.cli_ok(&["revoke", "--token-id", token_id(&scoped)]);
    server
        .curl("GET", "/v1/functions")
        .bearer(&scoped)
        .send()
        .expect(401);
    server.register("inventory");
    server.register("shipping");
}

/// Runs every tampering case through `case(name, tamper)`, which must apply `tamper` to a
/// pristine copy of the log and return what `writ audit verify` then says.
///
/// The server reads a segment's `i`-th event as event `first_seq + i`, linked to the
/// segment's `prev_hash` (the first) or to the stored hash of the event before it. So a
/// change inside a segment shows as a hash that does not match its content, a broken link
/// only at a segment's first event, and a gap in the numbers as events missing.
fn tamper_cases(base: &Baseline, mut case: impl FnMut(&str, &dyn Fn(&Db)) -> Verdict) {
    let k = base.target;
    let target = base.record(k);
    let hidden = target
        .event
        .replace("\"outcome\":\"denied\"", "\"outcome\":\"allowed\"");
    assert_ne!(hidden, target.event);
    let (ki, kat) = base.locate(k);

    // (a) One event's JSON edited: found at that event.
    case("edit", &|db| {
        let mut segments = base.segments.clone();
        segments[ki].replace(kat, &hidden, &target.hash);
        db.replace_segments(&segments);
    })
    .assert_broken("edit", k, &["hash does not match its content"]);

    // (b) Edited with every later hash recomputed: the chain is consistent again, but the
    // signed checkpoint covering the event no longer matches it.
    let covering = base.covering(k);
    case("rehash", &|db| {
        rewrite_chain(db, &base.segments, k, &hidden);
    })
    .assert_broken(
        "rehash",
        covering.seq,
        &["checkpoint", "events rewritten up to here"],
    );

    // (b') ... and the checkpoints' hashes changed to match: their signatures fail.
    case("rehash-checkpoints", &|db| {
        let hashes = rewrite_chain(db, &base.segments, k, &hidden);
        let sql: Vec<String> = hashes
            .iter()
            .map(|(seq, hash)| {
                format!(
                    "UPDATE audit_checkpoints SET hash = {} WHERE seq = {seq}",
                    q(hash)
                )
            })
            .collect();
        db.exec(&sql.join(";\n"));
    })
    .assert_broken(
        "rehash-checkpoints",
        covering.seq,
        &["checkpoint", "forged or altered checkpoint"],
    );

    // (b''') ... or the checkpoints from the edited event on deleted: the chain is
    // consistent and every remaining checkpoint verifies, but the end is not signed from
    // the first event of the edited event's segment on.
    case("rehash-drop-checkpoints", &|db| {
        rewrite_chain(db, &base.segments, k, &hidden);
        db.exec(&format!("DELETE FROM audit_checkpoints WHERE seq >= {k}"));
    })
    .assert_broken(
        "rehash-drop-checkpoints",
        base.checkpoints
            .iter()
            .rev()
            .find(|c| c.seq < k)
            .map_or(1, |c| c.seq + 1),
        &["not covered by a signed checkpoint"],
    );

    // (b'') The same for an event inside a segment of several (events sent in together
    // usually are): the segment's one checkpoint, over its last event, covers the others
    // through the chain.
    match base.segments.iter().find(|s| s.count() > 1) {
        Some(batch) => {
            let inner = batch.last_seq - 1;
            let edited = base
                .record(inner)
                .event
                .replacen("\"time\":\"2", "\"time\":\"1", 1);
            assert_ne!(edited, base.record(inner).event);
            case("rehash-in-batch", &|db| {
                rewrite_chain(db, &base.segments, inner, &edited);
            })
            .assert_broken(
                "rehash-in-batch",
                base.covering(inner).seq,
                &["events rewritten up to here"],
            );
        }
        None => eprintln!("note: every segment holds one event; no batch to tamper inside"),
    }

    // (c) One event deleted (later ones not renumbered). Where the target is stored
    // decides which of these its deletion is; the others are run on the first event
    // stored so.
    // - A segment's only event: its row deleted, the numbers jump over it.
    // - Inside a segment, not its last: the events after it in its segment move down a
    //   place, so the one now at its number does not match its hash.
    // - The last of a segment of several: its segment now ends before it, and the next
    //   one begins after it.
    let delete = |seq: i64| -> Vec<Segment> {
        let mut segments = base.segments.clone();
        let (i, at) = base.locate(seq);
        if segments[i].count() == 1 {
            segments.remove(i);
        } else {
            let (mut events, mut hashes) = (segments[i].events(), segments[i].hashes());
            events.remove(at);
            hashes.remove(at);
            segments[i].set(&events, &hashes);
        }
        segments
    };
    // How deleting `seq` shows: the case's name and what verify says (`None` at the end of
    // the log, which (g) covers).
    let deletion = |seq: i64| -> Option<(&str, &str)> {
        let (i, at) = base.locate(seq);
        let n = base.segments[i].count();
        if (at as i64) + 1 < n {
            Some(("delete-in-segment", "hash does not match its content"))
        } else if i + 1 == base.segments.len() {
            None
        } else if n == 1 {
            Some(("delete-segment", "missing: the next stored event is"))
        } else {
            Some(("delete-end-of-segment", "missing: the next stored event is"))
        }
    };
    // The target, then the first other event of each kind the target is not.
    let mut done = Vec::new();
    for seq in std::iter::once(k).chain(1..=base.last_seq()) {
        let Some((name, says)) = deletion(seq) else {
            continue;
        };
        if !done.contains(&name) {
            done.push(name);
            case(name, &|db| db.replace_segments(&delete(seq))).assert_broken(name, seq, &[says]);
        }
    }
    for name in [
        "delete-segment",
        "delete-in-segment",
        "delete-end-of-segment",
    ] {
        if !done.contains(&name) {
            eprintln!("note: no event is stored as {name} needs");
        }
    }

    // (d) An event inserted, later ones renumbered to close the gap. The inserted event
    // (a replay of the one before it) is itself well linked; the one after it is not.
    let forge = |seq: i64| -> (String, String) {
        let before = base.record(seq - 1);
        let hash = link(&hash_bytes(&before.hash), seq, &before.event);
        (before.event.clone(), hex(&hash))
    };
    // Inside the target's segment, before the target: the target, now at k + 1, is read
    // as linked to the forged event's hash, so its stored hash does not match.
    case("insert", &|db| {
        let (forged, hash) = forge(k);
        let mut segments = base.segments.clone();
        let (mut events, mut hashes) = (segments[ki].events(), segments[ki].hashes());
        events.insert(kat, forged);
        hashes.insert(kat, hash);
        segments[ki].set(&events, &hashes);
        for s in &mut segments[ki + 1..] {
            s.shift(1);
        }
        db.replace_segments(&segments);
    })
    .assert_broken("insert", k + 1, &["hash does not match its content"]);

    // As a segment of its own, before a segment's first event (the target if it is one,
    // else the next segment's): that segment, renumbered, still names the hash of the
    // event before the forged one.
    let boundary = if kat == 0 {
        Some(k)
    } else {
        base.segments.get(ki + 1).map(|s| s.first_seq)
    };
    match boundary {
        Some(b) => {
            case("insert-segment", &|db| {
                let (forged, hash) = forge(b);
                let mut segments = base.segments.clone();
                let (i, _) = base.locate(b);
                for s in &mut segments[i..] {
                    s.shift(1);
                }
                let prev = &base.record(b - 1).hash;
                segments.insert(i, Segment::new(b, prev, &[forged], &[hash]));
                db.replace_segments(&segments);
            })
            .assert_broken("insert-segment", b + 1, &["link to the previous event"]);
        }
        None => eprintln!("note: the target's segment is the last; no segment to insert before"),
    }

    // (d'') The compressed bytes of the target's segment altered (one byte of its LZ4
    // stream replaced by 0xff, or its declared length changed): they no longer unpack, so
    // the segment reads as one empty event, found at its first.
    let first_of_target = base.segments[ki].first_seq;
    for (name, sql_bytes) in [
        (
            "corrupt-lz4",
            "substr(events, 1, 8) || x'ff' || substr(events, 10)",
        ),
        ("lz4-length", "x'ffffff7f' || substr(events, 5)"),
    ] {
        case(name, &|db| {
            let expression = match db {
                Db::Sqlite(_) => sql_bytes.to_string(),
                Db::Postgres(_) => sql_bytes
                    .replace("x'ff'", "'\\xff'::bytea")
                    .replace("x'ffffff7f'", "'\\xffffff7f'::bytea"),
            };
            db.exec(&format!(
                "UPDATE audit_segments SET events = {expression} WHERE first_seq = {first_of_target}"
            ));
        })
        .assert_broken(name, first_of_target, &["hash does not match its content"]);
    }

    // (e) Two events exchanged with their hashes: the first of them is read as linked to
    // the event before its place, and does not match its hash.
    let other = k + 3;
    case("swap", &|db| {
        let mut segments = base.segments.clone();
        let (oi, oat) = base.locate(other);
        let theirs = base.record(other);
        segments[ki].replace(kat, &theirs.event, &theirs.hash);
        segments[oi].replace(oat, &target.event, &target.hash);
        db.replace_segments(&segments);
    })
    .assert_broken("swap", k, &["hash does not match its content"]);

    // (e') Two segments of one event exchanged with their prev_hash, their numbers kept
    // (the target and the event 3 after it if both are alone in theirs): the first is
    // linked to the wrong event.
    let alone: Vec<i64> = base
        .segments
        .iter()
        .filter(|s| s.count() == 1)
        .map(|s| s.first_seq)
        .collect();
    let pair = if alone.contains(&k) && alone.contains(&other) {
        Some((k, other))
    } else {
        alone.get(..2).map(|p| (p[0], p[1]))
    };
    match pair {
        Some((a, b)) => {
            case("swap-segments", &|db| {
                let mut segments = base.segments.clone();
                let (i, j) = (base.locate(a).0, base.locate(b).0);
                let (x, y) = (segments[i].clone(), segments[j].clone());
                segments[i] = Segment {
                    first_seq: x.first_seq,
                    last_seq: x.last_seq,
                    ..y
                };
                segments[j] = Segment {
                    first_seq: y.first_seq,
                    last_seq: y.last_seq,
                    ..x
                };
                db.replace_segments(&segments);
            })
            .assert_broken("swap-segments", a, &["link to the previous event"]);
        }
        None => eprintln!("note: fewer than two segments of one event; none to swap"),
    }

    // (f) One checkpoint's signature altered.
    let cp = covering;
    let mut altered = cp.signature.clone();
    let first = if altered.starts_with('0') { "1" } else { "0" };
    altered.replace_range(0..1, first);
    case("signature", &|db| {
        db.exec(&format!(
            "UPDATE audit_checkpoints SET signature = {} WHERE seq = {}",
            q(&altered),
            cp.seq
        ))
    })
    .assert_broken(
        "signature",
        cp.seq,
        &["checkpoint", &cp.key_id, "forged or altered checkpoint"],
    );

    // (g) The newest segments deleted, their checkpoints kept: the checkpoint that covered
    // them says so.
    let keep = base
        .checkpoints
        .iter()
        .rev()
        .find(|c| c.seq <= base.last_seq() - 3)
        .expect("a checkpoint a few events before the end");
    let next_cp = base
        .checkpoints
        .iter()
        .find(|c| c.seq > keep.seq)
        .expect("a later checkpoint");
    case("truncate", &|db| {
        db.exec(&format!(
            "DELETE FROM audit_segments WHERE first_seq > {0};\n\
             DELETE FROM audit_segment_actors WHERE first_seq > {0}",
            keep.seq
        ))
    })
    .assert_broken("truncate", next_cp.seq, &["deleted from the end"]);

    // (g') The newest segments and their checkpoints deleted. Nothing in the database says
    // they existed, and no documentation claims this is detected: recorded, not asserted.
    let v = case("truncate-with-checkpoints", &|db| {
        db.exec(&format!(
            "DELETE FROM audit_segments WHERE first_seq > {0};\n\
             DELETE FROM audit_segment_actors WHERE first_seq > {0};\n\
             DELETE FROM audit_checkpoints WHERE seq > {0}",
            keep.seq
        ))
    });
    eprintln!(
        "note: events {}..={} deleted with their checkpoints: verify exited {:?}: {}",
        keep.seq + 1,
        base.last_seq(),
        v.code,
        v.stdout.trim()
    );
}

/// A stopped server's data dir holding a log of 20-odd events that verifies, and the log.
fn sqlite_baseline(dir: &TempDir) -> (PathBuf, Baseline) {
    let mut server = start(dir);
    make_activity(&server, dir);
    let db = Db::Sqlite(server.data_dir.join("writ.db"));
    let events = db.records().len();
    audit_verify(&server).assert_intact(events);
    server.stop();
    let base = Baseline::read(&db);
    assert_eq!(base.records.len(), events, "events changed at shutdown");
    (server.data_dir.clone(), base)
}

/// Copies the (flat) data dir `from` to `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for entry in std::fs::read_dir(from).expect("read data dir") {
        let entry = entry.expect("dir entry");
        if entry.file_type().expect("file type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
        }
    }
}

#[test]
fn tampering_with_the_sqlite_audit_tables_is_found_by_audit_verify() {
    let dir = TempDir::new("audit-tamper-sqlite");
    let (pristine, base) = sqlite_baseline(&dir);

    // The server is stopped while its database is edited, then started again on it.
    let run_case = |name: &str, tamper: &dyn Fn(&Db)| -> Verdict {
        let data = dir.join(format!("case-{name}"));
        copy_dir(&pristine, &data);
        tamper(&Db::Sqlite(data.join("writ.db")));
        let server = Server::start(&data, &[]);
        audit_verify(&server)
    };
    // A restart on an untouched copy verifies: what the cases find is their tampering.
    run_case("untouched", &|_| {}).assert_intact(base.records.len());
    tamper_cases(&base, run_case);

    // A server whose log was rewritten and its checkpoints dropped does not sign over the
    // forged head: it refuses to append, so admin changes fail until someone looks.
    let data = dir.join("case-refuse-to-append");
    copy_dir(&pristine, &data);
    let db = Db::Sqlite(data.join("writ.db"));
    let k = base.target;
    let hidden = base
        .record(k)
        .event
        .replace("\"outcome\":\"denied\"", "\"outcome\":\"allowed\"");
    rewrite_chain(&db, &base.segments, k, &hidden);
    db.exec(&format!("DELETE FROM audit_checkpoints WHERE seq >= {k}"));
    let server = Server::start(&data, &[]);
    let out = server.cli(&["fn", "register", "after-tampering"]);
    assert!(!out.status.success(), "an admin change was reported done");
    assert_eq!(
        db.records().len(),
        base.records.len(),
        "nothing was appended"
    );
}

/// A fresh PostgreSQL database, dropped when this goes out of scope; a panic saying why when
/// WRIT_TEST_POSTGRES_URL is unset (the test is ignored then, unless CI=true or
/// `--include-ignored`). Declare it before the servers using it.
struct TestDb {
    base: String,
    name: String,
    url: String,
}

impl TestDb {
    fn create() -> TestDb {
        let base = match std::env::var(POSTGRES_ENV) {
            Ok(url) if !url.is_empty() => url,
            _ => panic!(
                "{POSTGRES_ENV} is unset: this test needs PostgreSQL (postgres://USER@HOST:PORT/DB). \
                 Under CI=true the PostgreSQL tests are required, not skipped; .ci/run sets it \
                 to the local server. Outside CI, without it, they are reported as ignored."
            ),
        };
        let name = format!(
            "writ_audit_test_{}_{}",
            std::process::id(),
            common::unique()
        );
        Db::Postgres(base.clone()).exec(&format!("CREATE DATABASE {name}"));
        let (main, query) = match base.split_once('?') {
            Some((m, q)) => (m, Some(q)),
            None => (base.as_str(), None),
        };
        let authority = main.find("://").map_or(0, |i| i + 3);
        let root = main[authority..]
            .find('/')
            .map_or(main, |i| &main[..authority + i]);
        let url = match query {
            Some(q) => format!("{root}/{name}?{q}"),
            None => format!("{root}/{name}"),
        };
        TestDb { base, name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = run(Command::new("psql").args([
            "-X",
            "-q",
            "-d",
            &self.base,
            "-c",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ]));
    }
}

#[test]
#[cfg_attr(
    writ_no_test_postgres,
    ignore = "needs PostgreSQL: set WRIT_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/DB (.ci/run does)"
)]
fn tampering_with_the_postgres_audit_tables_is_found_by_audit_verify() {
    let pg = TestDb::create();
    let dir = TempDir::new("audit-tamper-pg");
    let server = Server::start(
        &dir.join("data"),
        &["--trust-domain", TRUST_DOMAIN, "--store", &pg.url],
    );
    make_activity(&server, &dir);
    let db = Db::Postgres(pg.url.clone());
    let base = Baseline::read(&db);
    audit_verify(&server).assert_intact(base.records.len());
    db.exec(
        "CREATE TABLE saved_segments AS SELECT * FROM audit_segments;\n\
         CREATE TABLE saved_segment_actors AS SELECT * FROM audit_segment_actors;\n\
         CREATE TABLE saved_checkpoints AS SELECT * FROM audit_checkpoints",
    );
    let restore = || {
        db.exec(
            "DELETE FROM audit_segments;\n\
             INSERT INTO audit_segments SELECT * FROM saved_segments;\n\
             DELETE FROM audit_segment_actors;\n\
             INSERT INTO audit_segment_actors SELECT * FROM saved_segment_actors;\n\
             DELETE FROM audit_checkpoints;\n\
             INSERT INTO audit_checkpoints SELECT * FROM saved_checkpoints",
        )
    };

    // The server keeps running: someone with the database's credentials edits it live.
    tamper_cases(&base, |_, tamper| {
        restore();
        tamper(&db);
        audit_verify(&server)
    });
    restore();
    audit_verify(&server).assert_intact(base.records.len());
}

/// Someone who can write the database but not read the master key plants a checkpoint key
/// of their own in `audit_keys`, rewrites an event, recomputes the chain and re-signs the
/// checkpoints with their key. The log must not verify; today it does, because the keys
/// `writ audit verify` checks against are read from that same database.
#[test]
fn a_checkpoint_key_planted_in_the_database_does_not_make_a_rewritten_log_verify() {
    let dir = TempDir::new("audit-planted-key");
    let (pristine, base) = sqlite_baseline(&dir);
    let data = dir.join("planted");
    copy_dir(&pristine, &data);
    let db = Db::Sqlite(data.join("writ.db"));

    let k = base.target;
    let hidden = base
        .record(k)
        .event
        .replace("\"outcome\":\"denied\"", "\"outcome\":\"allowed\"");
    let hashes = rewrite_chain(&db, &base.segments, k, &hidden);
    let attacker = Signer::from_pkcs8(&Signer::generate_pkcs8().expect("key")).expect("key");
    let mut sql = vec![format!(
        "INSERT INTO audit_keys (id, kind, public, wrapped_key, created_at) \
         VALUES ({}, 'signing', {}, {}, 0)",
        q(attacker.id()),
        q(&attacker.public_key_hex()),
        db.blob(&[0])
    )];
    for cp in base.checkpoints.iter().filter(|c| c.seq >= k) {
        let hash = &hashes.iter().find(|(s, _)| *s == cp.seq).expect("hash").1;
        let head = Head {
            seq: cp.seq,
            hash: hash_bytes(hash),
        };
        let forged = attacker.sign(&head, &cp.time).expect("sign");
        sql.push(format!(
            "UPDATE audit_checkpoints SET hash = {}, key_id = {}, signature = {} WHERE seq = {}",
            q(&forged.hash),
            q(&forged.key_id),
            q(&forged.signature),
            cp.seq
        ));
    }
    db.exec(&sql.join(";\n"));

    let server = Server::start(&data, &[]);
    let v = audit_verify(&server);
    assert_eq!(
        v.code,
        Some(1),
        "a log rewritten and re-signed with a planted key verified: {v:?}"
    );
}

// --- 2. No secrets ---

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_secret_reaches_the_logs_the_audit_log_the_audit_file_or_the_database_file() {
    let dir = TempDir::new("audit-secrets");
    // Debug logging, as an operator chasing a problem would run it.
    let mut server = Server::launch(
        &dir.join("data"),
        &["--trust-domain", TRUST_DOMAIN, "--audit-stdout"],
        &[("WRIT_LOG", "debug")],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let data = server.data_dir.clone();
    let bootstrap = server.admin_token();
    // (what, secret) pairs to look for.
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut token = |what: &str, t: &str| {
        secrets.push((what.to_string(), t.to_string()));
        secrets.push((format!("{what}'s secret"), token_secret(t).to_string()));
    };
    token("bootstrap admin token", &bootstrap);

    server.register("orders");
    server.register("payments");
    // Join tokens from the CLI and from the API; one used, one reused, one left unused.
    let join_orders = server.join_token("orders");
    let r = server
        .curl("POST", "/v1/functions/payments/join-tokens")
        .bearer(&bootstrap)
        .json(&json!({"ttl": "5m"}))
        .send()
        .expect(201);
    let join_payments = r.json()["token"].as_str().expect("token").to_string();
    let unused = server.join_token("orders");
    let revoked_join = server.join_token("payments");
    server.cli_ok(&["revoke", "--token-id", token_id(&revoked_join)]);
    let wrong_secret = format!(
        "writ.join.{}.AAAAsomeGuessedSecretThatIsWrong0123456789x",
        token_id(&unused)
    );
    token("orders' join token", &join_orders);
    token("payments' join token", &join_payments);
    token("unused join token", &unused);
    token("revoked join token", &revoked_join);
    token("wrong-secret join token", &wrong_secret);

    // Logins with CSRs, renewals, JWT-SVIDs.
    let orders = Svid::login(&server, &dir, "orders", join_token_evidence(&join_orders))
        .unwrap_or_else(|r| panic!("login: {} {}", r.status, r.body));
    let payments = Svid::login(
        &server,
        &dir,
        "payments",
        join_token_evidence(&join_payments),
    )
    .unwrap_or_else(|r| panic!("login: {} {}", r.status, r.body));
    let orders = orders
        .renew(&server, &dir)
        .unwrap_or_else(|r| panic!("renew: {} {}", r.status, r.body));
    payments
        .renew(&server, &dir)
        .unwrap_or_else(|r| panic!("renew: {} {}", r.status, r.body));
    let mut jwts = Vec::new();
    for (svid, audience) in [(&orders, "billing"), (&payments, "orders"), (&orders, "x")] {
        let minted = svid.mint_jwt(&server, audience).expect(200).json();
        jwts.push(minted["token"].as_str().expect("jwt").to_string());
    }
    // Refused logins: a reused token, a wrong secret, a revoked token.
    for (function, t) in [
        ("orders", &join_orders),
        ("orders", &wrong_secret),
        ("payments", &revoked_join),
    ] {
        let r = Svid::login(&server, &dir, function, join_token_evidence(t))
            .expect_err("refused login");
        assert_eq!(r.status, 401);
    }

    // A scoped admin token, used, refused, revoked, refused again; a wrong admin secret.
    let policy = policy_file(&dir, &["writ:RegisterFunction"], &fn_id("team-*"));
    let scoped = scoped_token(&server, &policy);
    token("scoped admin token", &scoped);
    let scoped_file = dir.join("scoped.token");
    std::fs::write(&scoped_file, &scoped).expect("write token");
    success(
        "register as the scoped token",
        &run(server
            .cli_command()
            .env("WRIT_TOKEN_FILE", &scoped_file)
            .args(["fn", "register", "team-a"])),
    );
    server
        .curl("GET", "/v1/functions")
        .bearer(&scoped)
        .send()
        .expect(403);
    server.cli_ok(&["revoke", "--token-id", token_id(&scoped)]);
    server
        .curl("POST", "/v1/functions")
        .bearer(&scoped)
        .json(&json!({"name": "team-b"}))
        .send()
        .expect(401);
    let wrong_admin = format!(
        "writ.admin.{}.NotTheBootstrapSecretButShapedLikeIt0123456",
        token_id(&bootstrap)
    );
    token("wrong-secret admin token", &wrong_admin);
    server
        .curl("GET", "/v1/functions")
        .bearer(&wrong_admin)
        .send()
        .expect(401);

    // An agent (maliciously, or by mistake) sends events carrying secrets.
    let now = rfc3339_from_now(time::Duration::ZERO);
    let r = orders
        .curl(&server, "POST", "/v1/audit/events")
        .json(&json!({"events": [
            {"time": now, "actor": fn_id("orders"), "authenticatedBy": "joinToken",
             "action": "writ:Invoke", "resource": fn_id("payments"), "outcome": "denied",
             "reason": format!("token {unused} and bearer {} rejected", jwts[1])},
            {"time": now, "actor": fn_id("orders"), "authenticatedBy": "adminToken",
             "action": "writ:Invoke", "resource": fn_id("payments"), "outcome": "failed",
             "source": format!("Authorization: Bearer {scoped}"),
             "matched": [jwts[0].clone()], "requestId": revoked_join.clone()},
        ]}))
        .send()
        .expect(200);
    assert_eq!(r.json()["accepted"], 2);
    // Durable when answered; everything queued before it went in with it or earlier.
    let redacted = server.wait_for_audit("the agent's events", |e| {
        e["reportedBy"] == fn_id("orders") && e["outcome"] == "denied"
    });
    assert!(
        redacted["reason"]
            .as_str()
            .is_some_and(|r| r.contains("[redacted")),
        "{redacted}"
    );
    let master = std::fs::read_to_string(data.join("master.key"))
        .expect("master.key")
        .trim()
        .to_string();
    let master_raw = base64::engine::general_purpose::STANDARD
        .decode(&master)
        .expect("master key is base64");
    assert_eq!(master_raw.len(), 32);
    secrets.push(("master key".into(), master.clone()));
    for (i, jwt) in jwts.iter().enumerate() {
        secrets.push((format!("JWT-SVID {i}"), jwt.clone()));
        let signature = jwt.rsplit('.').next().expect("jwt signature");
        secrets.push((format!("JWT-SVID {i}'s signature"), signature.to_string()));
    }

    // Everything a reader of the logs, the audit log or the disk would see.
    let export = server.cli_ok(&["audit", "export", "--format", "jsonl"]);
    let tail = server.cli_ok(&["audit", "tail", "--format", "jsonl"]);
    assert!(json_lines(&export).len() >= 25, "{export}");
    let audit_file = std::fs::read_to_string(server.audit_file()).expect("audit file");
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let db_files = |label: &str, files: &mut Vec<(String, Vec<u8>)>| {
        for name in ["writ.db", "writ.db-wal", "writ.db-shm"] {
            if let Ok(bytes) = std::fs::read(data.join(name)) {
                files.push((format!("{name} ({label})"), bytes));
            }
        }
    };
    db_files("running", &mut files);
    server.stop();
    db_files("stopped", &mut files);
    // The bootstrap token is printed on stdout once, by design; nothing else may be there.
    let stdout: String = server
        .stdout()
        .lines()
        .filter(|l| l.trim() != bootstrap)
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        stdout.contains("\"reportedBy\""),
        "--audit-stdout printed no events: {stdout}"
    );
    files.push(("server stdout".into(), stdout.into_bytes()));
    files.push(("server stderr".into(), server.log().into_bytes()));
    files.push(("audit export".into(), export.into_bytes()));
    files.push(("audit tail".into(), tail.into_bytes()));
    files.push(("audit file".into(), audit_file.into_bytes()));

    let mut found = Vec::new();
    for (name, bytes) in &files {
        for (what, secret) in &secrets {
            if contains(bytes, secret.as_bytes()) {
                found.push(format!("the {what} is in the {name}"));
            }
        }
        if contains(bytes, &master_raw) {
            found.push(format!("the raw master key is in the {name}"));
        }
    }
    assert!(found.is_empty(), "secrets found:\n{}", found.join("\n"));
}

// --- 3. Ingestion ---

/// The events `writ audit tail --format jsonl` shows (the last hour).
fn tail_events(server: &Server) -> Vec<Value> {
    json_lines(&server.cli_ok(&["audit", "tail", "--format", "jsonl"]))
        .into_iter()
        .map(|l| l["event"].clone())
        .collect()
}

/// A minimal event recorded outside the server (by the `agent` function's agent, or a
/// gateway), marked with `request_id`.
fn outside_event(time: &str, request_id: &str) -> Value {
    json!({
        "time": time, "requestId": request_id, "actor": fn_id("agent"),
        "authenticatedBy": "jwtSvid", "action": "writ:Invoke", "resource": fn_id("orders"),
        "outcome": "allowed",
    })
}

#[test]
fn agents_and_gateways_send_events_in_and_each_is_stamped_with_its_sender() {
    let dir = TempDir::new("audit-ingest");
    let server = start(&dir);
    server.register("agent");
    let agent = login(&server, &dir, "agent");
    let now = rfc3339_from_now(time::Duration::ZERO);

    // From an agent's SVID: accepted, committed, stamped, other fields kept; a claimed
    // reportedBy is overwritten.
    let mut denied = outside_event(&now, "ingest-2");
    denied["outcome"] = json!("denied");
    denied["decision"] = json!("implicitDeny");
    denied["matched"] = json!([]);
    denied["reason"] = json!("no statement allows writ:Invoke");
    denied["reportedBy"] = json!(fn_id("someone-else"));
    let r = agent
        .curl(&server, "POST", "/v1/audit/events")
        .json(&json!({"events": [outside_event(&now, "ingest-1"), denied]}))
        .send()
        .expect(200);
    assert_eq!(r.json(), json!({"accepted": 2}));
    let events = tail_events(&server);
    let got = |id: &str| {
        events
            .iter()
            .find(|e| e["requestId"] == id)
            .unwrap_or_else(|| panic!("{id} not in tail: {events:?}"))
            .clone()
    };
    let first = got("ingest-1");
    let second = got("ingest-2");
    for e in [&first, &second] {
        assert_eq!(e["reportedBy"], agent.spiffe_id, "{e}");
        assert_eq!(e["actor"], fn_id("agent"), "{e}");
        assert_eq!(e["action"], "writ:Invoke", "{e}");
        assert_eq!(e["time"], now, "{e}");
    }
    assert_eq!(second["outcome"], "denied");
    assert_eq!(second["decision"], "implicitDeny");
    assert_eq!(second["reason"], "no statement allows writ:Invoke");

    // An agent reports only its own function's events.
    let mut foreign = outside_event(&now, "refused-foreign");
    foreign["actor"] = json!(fn_id("payments"));
    let r = agent
        .curl(&server, "POST", "/v1/audit/events")
        .json(&json!({"events": [foreign]}))
        .send()
        .expect(403);
    assert!(r.error_message().contains("events[0].actor"), "{}", r.body);

    // From a gateway's admin token allowed writ:PutAuditEvents on the event's resource:
    // stamped with its name.
    let gateway = scoped_token(
        &server,
        &policy_file(&dir, &["writ:PutAuditEvents"], &fn_id("orders")),
    );
    server
        .curl("POST", "/v1/audit/events")
        .bearer(&gateway)
        .json(&json!({"events": [outside_event(&now, "ingest-3")]}))
        .send()
        .expect(200);
    let third = tail_events(&server)
        .into_iter()
        .find(|e| e["requestId"] == "ingest-3")
        .expect("the gateway's event");
    let stamp = third["reportedBy"].as_str().unwrap_or_default().to_string();
    assert!(stamp.starts_with("token:hmac-sha256:"), "{third}");
    assert!(!stamp.contains(token_id(&gateway)), "{third}");

    // Refused: a token without writ:PutAuditEvents, no credentials at all, too many events,
    // a bad time, unknown fields. None of their events is recorded.
    let other = scoped_token(&server, &policy_file(&dir, &["writ:RegisterFunction"], "*"));
    let r = server
        .curl("POST", "/v1/audit/events")
        .bearer(&other)
        .json(&json!({"events": [outside_event(&now, "refused-1")]}))
        .send()
        .expect(403);
    assert_eq!(r.error_code(), "accessDenied");
    server.wait_for_audit("the refused PutAuditEvents", |e| {
        e["action"] == "writ:PutAuditEvents" && e["outcome"] == "denied"
    });
    server
        .curl("POST", "/v1/audit/events")
        .json(&json!({"events": [outside_event(&now, "refused-2")]}))
        .send()
        .expect(401);

    let bad_time = agent
        .curl(&server, "POST", "/v1/audit/events")
        .json(&json!({"events": [
            outside_event(&now, "refused-3"),
            outside_event("yesterday", "refused-4"),
        ]}))
        .send()
        .expect(400);
    assert_eq!(bad_time.error_code(), "invalidRequest");
    assert!(
        bad_time.error_message().contains("events[1].time"),
        "{}",
        bad_time.body
    );
    let mut unknown = outside_event(&now, "refused-5");
    unknown["severity"] = json!("high");
    let r = agent
        .curl(&server, "POST", "/v1/audit/events")
        .json(&json!({"events": [unknown]}))
        .send()
        .expect(400);
    assert!(r.error_message().contains("unknown field"), "{}", r.body);
    assert!(r.error_message().contains("severity"), "{}", r.body);
    let r = agent
        .curl(&server, "POST", "/v1/audit/events")
        .json(&json!({"events": [], "extra": 1}))
        .send()
        .expect(400);
    assert!(r.error_message().contains("unknown field"), "{}", r.body);

    // Something durable after the refusals, so anything they queued is committed.
    server.register("after");
    let export = server.cli_ok(&["audit", "export", "--format", "jsonl"]);
    assert!(export.contains("writ:RegisterFunction"), "{export}");
    assert!(!export.contains("refused-"), "a refused event was recorded");
    for id in ["ingest-1", "ingest-2", "ingest-3"] {
        assert_eq!(export.matches(id).count(), 1, "{id} recorded once");
    }
    let records = json_lines(&export);
    let v = audit_verify(&server);
    v.assert_intact(records.len());
}

/// A batch of 10,000 events is a gateway's documented maximum: accepted; 10,001 gets 400
/// naming `events` and the limit (the endpoint's body limit leaves room for 10,000 events).
/// A function's agent reports its own calls, at most 1,000 a batch: one function cannot
/// flood the shared log in a call.
#[test]
fn a_batch_of_10000_events_is_accepted_and_10001_is_refused_with_400() {
    let dir = TempDir::new("audit-batch");
    let server = start(&dir);
    server.register("agent");
    let agent = login(&server, &dir, "agent");
    let now = rfc3339_from_now(time::Duration::ZERO);
    let batch = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| outside_event(&now, &format!("b{i}")))
            .collect()
    };
    let gateway = server.admin_token();
    let r = server
        .curl("POST", "/v1/audit/events")
        .bearer(&gateway)
        .json(&json!({"events": batch(10_000)}))
        .try_send()
        .unwrap_or_else(|e| panic!("10,000 events: {e}"))
        .expect(200);
    assert_eq!(r.json()["accepted"], 10_000);
    let r = server
        .curl("POST", "/v1/audit/events")
        .bearer(&gateway)
        .json(&json!({"events": batch(10_001)}))
        .try_send()
        .unwrap_or_else(|e| panic!("10,001 events: {e}"))
        .expect(400);
    assert!(r.error_message().starts_with("events"), "{}", r.body);
    assert!(r.body.contains("at most 10000"), "{}", r.body);

    agent
        .curl(&server, "POST", "/v1/audit/events")
        .json(&json!({"events": batch(1_000)}))
        .send()
        .expect(200);
    let r = agent
        .curl(&server, "POST", "/v1/audit/events")
        .json(&json!({"events": batch(1_001)}))
        .send()
        .expect(400);
    assert!(
        r.body.contains("at most 1000 per batch from a function"),
        "{}",
        r.body
    );
}

// --- 4. Tail ---

#[test]
fn audit_tail_filters_by_function_decision_and_time_and_follows_new_events() {
    let dir = TempDir::new("audit-tail");
    let server = start(&dir);
    server.register("orders");
    server.register("payments");
    let bogus = join_token_evidence("writ.join.0123456789abcdef01234567.not-a-real-secret");
    // orders: a login (allowed), two refused logins (denied).
    let join = server.join_token("orders");
    Svid::login(&server, &dir, "orders", join_token_evidence(&join))
        .unwrap_or_else(|r| panic!("login: {} {}", r.status, r.body));
    for evidence in [join_token_evidence(&join), bogus.clone()] {
        Svid::login(&server, &dir, "orders", evidence).expect_err("refused");
    }
    // payments: a refused login.
    Svid::login(&server, &dir, "payments", bogus.clone()).expect_err("refused");
    // orders: a denial 20 minutes ago and a recent failure, sent in by a gateway.
    let ingest = |time: &str, id: &str, outcome: &str| {
        let mut e = outside_event(time, id);
        e["actor"] = json!(fn_id("orders"));
        e["outcome"] = json!(outcome);
        server
            .curl("POST", "/v1/audit/events")
            .bearer(&server.admin_token())
            .json(&json!({"events": [e]}))
            .send()
            .expect(200);
    };
    ingest(
        &rfc3339_from_now(time::Duration::minutes(-20)),
        "old-denial",
        "denied",
    );
    ingest(
        &rfc3339_from_now(time::Duration::ZERO),
        "recent-failure",
        "failed",
    );

    let args = [
        "audit",
        "tail",
        "--fn",
        "orders",
        "--decision",
        "denied",
        "--since",
        "10m",
    ];
    let shown: Vec<Value> =
        json_lines(&server.cli_ok(&[&args[..], &["--format", "jsonl"]].concat()))
            .into_iter()
            .map(|l| l["event"].clone())
            .collect();
    assert_eq!(shown.len(), 2, "only orders' two refused logins: {shown:?}");
    for e in &shown {
        assert_eq!(e["actor"], fn_id("orders"), "{e}");
        assert_eq!(e["outcome"], "denied", "{e}");
        assert_eq!(e["action"], "writ:Login", "{e}");
    }
    // Without the filters, the others are there (so the filters did the work).
    let all = tail_events(&server);
    for id in ["old-denial", "recent-failure"] {
        assert!(all.iter().any(|e| e["requestId"] == id), "{id}: {all:?}");
    }
    assert!(all.iter().any(|e| e["actor"] == fn_id("payments")));
    assert!(
        all.iter()
            .any(|e| e["actor"] == fn_id("orders") && e["outcome"] == "allowed")
    );
    let text_out = server.cli_ok(&args);
    assert_eq!(text_out.lines().count(), 2, "{text_out}");
    for line in text_out.lines() {
        assert!(
            line.contains(" denied ") && line.contains(&fn_id("orders")),
            "{line}"
        );
    }

    // --follow prints what happens after it started.
    let mut child = server
        .cli_command()
        .args(args)
        .args(["--follow", "--format", "jsonl"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start writ audit tail --follow");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + PATIENCE;
    let next_line = |what: &str| -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no line from tail --follow for {what}: {e}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    let before: Vec<Value> = (0..2).map(|_| next_line("the earlier events")).collect();
    let last_seq = before[1]["seq"].as_i64().expect("seq");
    // Let it reach its long poll, then refuse another orders login and allow a payments one.
    std::thread::sleep(Duration::from_millis(300));
    Svid::login(&server, &dir, "payments", bogus.clone()).expect_err("refused");
    Svid::login(&server, &dir, "orders", bogus).expect_err("refused");
    let new = next_line("the new refusal");
    let _ = child.kill();
    let _ = child.wait();
    assert!(new["seq"].as_i64().expect("seq") > last_seq, "{new}");
    assert_eq!(new["event"]["actor"], fn_id("orders"), "{new}");
    assert_eq!(new["event"]["outcome"], "denied", "{new}");
    assert_eq!(new["event"]["action"], "writ:Login", "{new}");
    // Nothing else arrived (the payments refusal was filtered out).
    assert!(rx.try_recv().is_err());
}
