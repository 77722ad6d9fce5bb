//! The server's storage, crashed on purpose: a `kill -9` in the middle of secret writes.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::common::{Curl, PATIENCE, Server, TempDir, wait_for};

const SECRETS: usize = 4;
const WRITERS: usize = 24;

/// A POST to the server as the bootstrap operator, made without the [`Server`] (which the
/// test kills).
fn post(addr: &str, ca: &Path, token: &str, path: &str, body: &Value) -> Curl {
    Curl::new("POST", &format!("{addr}{path}"), ca)
        .bearer(token)
        .json(body)
}

/// The audit events in the store, through the API.
fn stored_events(server: &Server) -> Vec<Value> {
    server
        .cli_ok(&["audit", "export", "--format", "jsonl"])
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|l| match &l["event"] {
            // A record holds its event's JSON as stored and hashed.
            Value::String(event) => serde_json::from_str(event).unwrap_or(Value::Null),
            event => event.clone(),
        })
        .collect()
}

/// Finding 10: after a `kill -9`, some AWSCURRENT versions had no create or put event;
/// their writes were never acknowledged, yet they were current. A version and its event
/// now commit together, so every stored version has its event, whenever the server dies.
#[test]
fn every_stored_secret_version_has_its_audit_event_after_kill_9() {
    let dir = TempDir::new("storage-kill");
    let data = dir.join("data");
    let server = Server::start(&data, &["--trust-domain", "example.org"]);
    let (addr, ca, token) = (server.addr(), server.ca_file(), server.admin_token());
    for i in 0..SECRETS {
        post(
            &addr,
            &ca,
            &token,
            "/v1/secrets/create",
            &json!({"name": format!("load/s{i}"), "secretString": "v0"}),
        )
        .send()
        .expect(200);
    }

    // Writers put values until the server is gone.
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (addr, ca, token) = (addr.clone(), ca.clone(), token.clone());
            let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = json!({
                        "name": format!("load/s{}", (w + n) % SECRETS),
                        // Large enough that writing it takes the store a while.
                        "secretString": format!("writer {w} value {n} {}", "x".repeat(32 * 1024)),
                    });
                    match post(&addr, &ca, &token, "/v1/secrets/put", &body).try_send() {
                        Ok(r) if r.status == 200 => {
                            acknowledged.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                    n += 1;
                }
            })
        })
        .collect();
    wait_for("puts acknowledged under load", PATIENCE * 4, || {
        (acknowledged.load(Ordering::Relaxed) >= 200).then_some(())
    });
    // SIGKILL, with puts in flight.
    drop(server);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer thread");
    }

    let server = Server::start(&data, &["--trust-domain", "example.org"]);
    // Every version the store holds, and which is current.
    let mut versions: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..SECRETS {
        let name = format!("load/s{i}");
        let d = server
            .curl("POST", "/v1/secrets/describe")
            .bearer(&token)
            .json(&json!({ "name": name }))
            .send()
            .expect(200)
            .json();
        let ids: Vec<String> = d["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .map(|v| v["versionId"].as_str().expect("versionId").to_string())
            .collect();
        let current = d["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .filter(|v| {
                v["versionStages"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s == "AWSCURRENT"))
            })
            .count();
        assert_eq!(current, 1, "{name}: {d}");
        versions.insert(name, ids);
    }
    // The versions the audit log records as written.
    let recorded: HashSet<(String, String)> = stored_events(&server)
        .iter()
        .filter(|e| {
            (e["action"] == "secrets:CreateSecret" || e["action"] == "secrets:PutSecretValue")
                && e["outcome"] == "allowed"
        })
        .filter_map(|e| {
            let name = e["resource"].as_str()?.strip_prefix("writ:secret/")?;
            let version = e["reason"].as_str()?.strip_prefix("version ")?;
            Some((name.to_string(), version.to_string()))
        })
        .collect();
    let mut unrecorded = Vec::new();
    let mut stored = 0;
    for (name, ids) in &versions {
        for id in ids {
            stored += 1;
            if !recorded.contains(&(name.clone(), id.clone())) {
                unrecorded.push(format!("{name} {id}"));
            }
        }
    }
    assert!(
        stored > SECRETS + 200,
        "only {stored} versions stored, though 200 puts were acknowledged"
    );
    assert!(
        unrecorded.is_empty(),
        "{} of {stored} versions stored without their audit event, e.g. {:?}",
        unrecorded.len(),
        &unrecorded[..unrecorded.len().min(5)]
    );
}
