//! `writ audit tail|verify|export`: read the audit log, and check its chain and signed
//! checkpoints on this machine, without trusting the server that serves them.

use std::io::Write;
use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};
use writ_audit::chain::{Head, Record, verify_from};
use writ_audit::checkpoint::{Checkpoint, PublicKey, signature_ok};

use super::client::{Client, ClientArgs, ClientFormat};

/// `writ audit ...`
#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(clap::Subcommand)]
enum AuditCommand {
    /// Show recent events, oldest first; --follow keeps printing new ones.
    #[command(after_help = "Examples:
  writ audit tail --since 10m
  writ audit tail --fn orders --decision denied --follow
  writ audit tail --format json | jq .reason")]
    Tail {
        /// Only events whose actor is this function.
        #[arg(long = "fn")]
        function: Option<String>,
        /// Only allowed or only denied events.
        #[arg(long, value_parser = ["allowed", "denied"])]
        decision: Option<String>,
        /// How far back (90s, 10m, 1h, 7d).
        #[arg(long, default_value = "1h", value_parser = writ_server::duration::parse)]
        since: time::Duration,
        /// Keep waiting for new events.
        #[arg(long)]
        follow: bool,
    },
    /// Check the hash chain and every signed checkpoint. Exits 0 when intact; otherwise
    /// names the first event that breaks the chain and exits 1.
    Verify,
    /// Print every record (seq, event, prevHash, hash) as JSON lines (`--format jsonl`, the
    /// only format it has), for archiving and verifying elsewhere.
    Export,
}

/// Query-string encoding of one value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn records_page(client: &Client, after: i64, query: &str) -> Result<(Vec<Record>, i64), String> {
    let answer = client.call(
        Method::GET,
        &format!("/v1/audit/events?after={after}&limit=10000{query}"),
        None,
    )?;
    let records: Vec<Record> = serde_json::from_value(answer["records"].clone())
        .map_err(|e| format!("the server's answer is not a list of audit records: {e}"))?;
    let next = answer["next"].as_i64().unwrap_or(after);
    Ok((records, next))
}

/// Runs `writ audit`.
pub fn run(args: AuditArgs) -> Result<ExitCode, String> {
    let client = Client::new(&args.client)?;
    match args.command {
        AuditCommand::Tail {
            function,
            decision,
            since,
            follow,
        } => tail(
            &client,
            args.client.format,
            function,
            decision,
            since,
            follow,
        ),
        AuditCommand::Verify => verify(&client, args.client.format),
        AuditCommand::Export => {
            let mut after = 0;
            loop {
                let (records, next) = records_page(&client, after, "")?;
                if records.is_empty() {
                    return Ok(ExitCode::SUCCESS);
                }
                let mut out = std::io::stdout().lock();
                for r in &records {
                    let line = serde_json::to_string(r).unwrap_or_default();
                    // A closed pipe (`| head`) ends the export quietly.
                    if writeln!(out, "{line}").is_err() {
                        return Ok(ExitCode::SUCCESS);
                    }
                }
                after = next;
            }
        }
    }
}

fn tail(
    client: &Client,
    format: ClientFormat,
    function: Option<String>,
    decision: Option<String>,
    since: time::Duration,
    follow: bool,
) -> Result<ExitCode, String> {
    let mut query = String::new();
    if let Some(name) = function {
        let health = client.call(Method::GET, "/v1/health", None)?;
        let td = health["trustDomain"].as_str().unwrap_or_default();
        query.push_str(&format!(
            "&actor={}",
            encode(&format!("spiffe://{td}/fn/{name}"))
        ));
    }
    if let Some(d) = decision {
        query.push_str(&format!("&outcome={d}"));
    }
    let since_ms = (time::OffsetDateTime::now_utc() - since).unix_timestamp() * 1000;
    query.push_str(&format!("&sinceMs={since_ms}"));
    let mut after = 0;
    loop {
        let wait = if follow { "&wait=30" } else { "" };
        let (records, next) = records_page(client, after, &format!("{query}{wait}"))?;
        let mut out = std::io::stdout().lock();
        for r in &records {
            let event: Value = serde_json::from_str(&r.event).unwrap_or(Value::Null);
            let line = if format.is_json() {
                json!({"seq": r.seq, "event": event}).to_string()
            } else {
                let s = |k: &str| event[k].as_str().unwrap_or("").to_string();
                let reason = event["reason"]
                    .as_str()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                // Events sent in by a gateway or agent say so: their content is the sender's word.
                let reported = event["reportedBy"]
                    .as_str()
                    .map(|r| format!(" [reported by {r}]"))
                    .unwrap_or_default();
                format!(
                    "{} {:<7} {} {} {}{reason}{reported}",
                    s("time"),
                    s("outcome"),
                    s("actor"),
                    s("action"),
                    s("resource")
                )
            };
            if writeln!(out, "{line}").is_err() {
                return Ok(ExitCode::SUCCESS);
            }
        }
        drop(out);
        after = next;
        if records.is_empty() && !follow {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

fn verify(client: &Client, format: ClientFormat) -> Result<ExitCode, String> {
    let answer = client.call(Method::GET, "/v1/audit/checkpoints?after=0", None)?;
    let keys: Vec<PublicKey> = serde_json::from_value(answer["publicKeys"].clone())
        .map_err(|e| format!("the server's audit keys are unreadable: {e}"))?;
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    let mut page: Vec<Checkpoint> = serde_json::from_value(answer["checkpoints"].clone())
        .map_err(|e| format!("the server's checkpoints are unreadable: {e}"))?;
    while let Some(last) = page.last().map(|c| c.seq) {
        checkpoints.append(&mut page);
        let more = client.call(
            Method::GET,
            &format!("/v1/audit/checkpoints?after={last}"),
            None,
        )?;
        page = serde_json::from_value(more["checkpoints"].clone())
            .map_err(|e| format!("the server's checkpoints are unreadable: {e}"))?;
    }
    // Walk the chain page by page, checking each checkpoint against the record it covers.
    let mut head = Head::genesis();
    let mut pending = checkpoints.iter().peekable();
    let mut signed_through = 0;
    let broken = |seq: i64, problem: String| -> Result<ExitCode, String> {
        if format.is_json() {
            println!(
                "{}",
                json!({"intact": false, "seq": seq, "problem": problem})
            );
        } else {
            println!("audit log broken at event {seq}: {problem}");
        }
        Ok(ExitCode::from(1))
    };
    loop {
        let (records, _) = records_page(client, head.seq, "")?;
        if records.is_empty() {
            break;
        }
        let start = head;
        head = match verify_from(&start, &records) {
            Ok(h) => h,
            Err(b) => return broken(b.seq, b.problem),
        };
        while let Some(cp) = pending.peek().filter(|cp| cp.seq <= head.seq) {
            if !signature_ok(cp, &keys) {
                return broken(
                    cp.seq,
                    format!(
                        "the checkpoint signed at {} does not verify under audit key {} (forged or altered checkpoint)",
                        cp.time, cp.key_id
                    ),
                );
            }
            let covered = usize::try_from(cp.seq - start.seq - 1)
                .ok()
                .and_then(|i| records.get(i));
            match covered {
                Some(r) if r.hash == cp.hash => signed_through = cp.seq,
                Some(_) => {
                    return broken(
                        cp.seq,
                        format!(
                            "the chain differs from what the checkpoint signed at {} says (events rewritten up to here)",
                            cp.time
                        ),
                    );
                }
                // A checkpoint of an earlier page: cannot happen, pages are in order.
                None => {}
            }
            pending.next();
        }
    }
    if let Some(cp) = pending.next() {
        return broken(
            cp.seq,
            format!(
                "a checkpoint signed at {} covers this event, but the log ends at {} (events deleted from the end)",
                cp.time, head.seq
            ),
        );
    }
    if format.is_json() {
        println!(
            "{}",
            json!({"intact": true, "events": head.seq, "checkpoints": checkpoints.len(), "signedThrough": signed_through})
        );
    } else {
        println!(
            "audit log intact: {} events, {} checkpoints, signed through event {}",
            head.seq,
            checkpoints.len(),
            signed_through
        );
    }
    Ok(ExitCode::SUCCESS)
}
