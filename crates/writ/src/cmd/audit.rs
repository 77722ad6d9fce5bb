//! `writ audit tail|verify|export`: read the audit log, and check its chain and signed
//! checkpoints on this machine, without trusting the server that serves them.

use std::io::Write;
use std::process::ExitCode;

use serde_json::{Value, json};
use writ_api::audit::{CheckpointsQuery, EventsQuery, MAX_PAGE};
use writ_api::endpoints::{GetHealth, ReadAuditCheckpoints, ReadAuditEvents};
use writ_audit::chain::Record;
use writ_audit::checkpoint::{Checkpoint, PublicKey};

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

/// A page of records after `after`, as `query` filters them (its own `after` and `limit`
/// are replaced), and the position to read on from.
fn records_page(
    client: &Client,
    after: i64,
    query: &EventsQuery,
) -> Result<(Vec<Record>, i64), String> {
    let answer = client.send::<ReadAuditEvents>(&EventsQuery {
        after,
        limit: Some(MAX_PAGE),
        ..query.clone()
    })?;
    Ok((answer.records, answer.next))
}

/// The SPIFFE ID of the function `name` in the server's trust domain.
pub fn function_id(client: &Client, name: &str) -> Result<String, String> {
    let health = client.send::<GetHealth>(&writ_api::NoRequest)?;
    Ok(format!("spiffe://{}/fn/{name}", health.trust_domain))
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
                let (records, next) = records_page(&client, after, &EventsQuery::default())?;
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
    let mut query = EventsQuery::default();
    if let Some(name) = function {
        query.actor = Some(function_id(client, &name)?);
    }
    query.outcome = match decision.as_deref() {
        Some("allowed") => Some(writ_audit::Outcome::Allowed),
        Some("denied") => Some(writ_audit::Outcome::Denied),
        Some(other) => return Err(format!("--decision {other:?}: give allowed or denied")),
        None => None,
    };
    query.since_ms = Some((time::OffsetDateTime::now_utc() - since).unix_timestamp() * 1000);
    if follow {
        query.wait = 30;
    }
    let mut after = 0;
    loop {
        let (records, next) = records_page(client, after, &query)?;
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

/// All checkpoints after `after`, page by page; refuses a server whose pages do not move
/// forward.
fn checkpoints_after(
    client: &Client,
    mut after: i64,
) -> Result<(Vec<Checkpoint>, Vec<PublicKey>), String> {
    let mut all = Vec::new();
    loop {
        let answer =
            client.send::<ReadAuditCheckpoints>(&CheckpointsQuery { after, limit: None })?;
        let keys: Vec<PublicKey> = answer.public_keys;
        let page: Vec<Checkpoint> = answer.checkpoints;
        let Some(last) = page.last().map(|c| c.seq) else {
            return Ok((all, keys));
        };
        if page.iter().any(|c| c.seq <= after) || page.windows(2).any(|w| w[1].seq <= w[0].seq) {
            return Err("the server's checkpoints are out of order".into());
        }
        all.extend(page);
        after = last;
    }
}

/// A log that verified: how many events, how many checkpoints, signed through which event,
/// and the newest hash.
pub struct Intact {
    /// The newest event's sequence number.
    pub head: i64,
    /// How many checkpoints were checked.
    pub checkpoints: usize,
    /// The newest event a signed checkpoint covers.
    pub signed_through: i64,
    /// The newest event's hash.
    pub head_hash: String,
}

/// Reads the whole log and its checkpoints and verifies them: `Ok(Err((seq, problem)))`
/// when the log is broken, `Err` when it could not be read.
pub fn check(client: &Client) -> Result<Result<Intact, (i64, String)>, String> {
    // Checkpoints first: one that covers an event missing from the records read after it
    // means events were deleted from the end.
    let (mut checkpoints, keys) = checkpoints_after(client, 0)?;
    let mut records: Vec<Record> = Vec::new();
    loop {
        let after = records.last().map_or(0, |r| r.seq);
        let (page, _) = records_page(client, after, &EventsQuery::default())?;
        if page.is_empty() {
            break;
        }
        if page.iter().any(|r| r.seq <= after) {
            return Ok(Err((
                after + 1,
                "the server sent events out of order".into(),
            )));
        }
        records.extend(page);
    }
    let head = records.last().map_or(0, |r| r.seq);
    // Events appended while this ran are covered by checkpoints made after the first read.
    let newest = checkpoints.last().map_or(0, |c| c.seq);
    if head > newest {
        let (later, _) = checkpoints_after(client, newest)?;
        checkpoints.extend(later.into_iter().filter(|c| c.seq <= head));
    }
    let report = match writ_audit::checkpoint::verify_log(&records, &checkpoints, &keys) {
        Ok(r) => r,
        Err(b) => return Ok(Err((b.seq, b.problem))),
    };
    // Every batch is committed with its checkpoint, so each event is covered by one: an
    // uncovered end means checkpoints were deleted and events changed after the last one.
    if report.signed_through < head {
        return Ok(Err((
            report.signed_through + 1,
            format!(
                "events {} to {head} are not covered by a signed checkpoint (checkpoints deleted, or events written outside writ)",
                report.signed_through + 1
            ),
        )));
    }
    Ok(Ok(Intact {
        head,
        checkpoints: checkpoints.len(),
        signed_through: report.signed_through,
        head_hash: records.last().map(|r| r.hash.clone()).unwrap_or_default(),
    }))
}

fn verify(client: &Client, format: ClientFormat) -> Result<ExitCode, String> {
    let Intact {
        head,
        checkpoints,
        signed_through,
        head_hash,
    } = match check(client)? {
        Ok(intact) => intact,
        Err((seq, problem)) => {
            if format.is_json() {
                println!(
                    "{}",
                    json!({"intact": false, "seq": seq, "problem": problem})
                );
            } else {
                println!("audit log broken at event {seq}: {problem}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    if format.is_json() {
        println!(
            "{}",
            json!({"intact": true, "events": head, "checkpoints": checkpoints, "signedThrough": signed_through, "headHash": head_hash})
        );
    } else {
        println!(
            "audit log intact: {head} events, {checkpoints} checkpoints, signed through event {signed_through}"
        );
        println!("head: event {head}, hash {head_hash}");
    }
    Ok(ExitCode::SUCCESS)
}
