//! `writ plan`, `writ apply` and `writ export`: configuration as code (docs/config.md).
//! The shell around [`crate::config`]: reads the files and the server's state, prints the
//! plan, and makes its changes through the API.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;
use writ_api::endpoints::{
    DeleteFunction, DeleteIntention, DeleteSecret, DescribeSecret, ListFunctions, ListIntentions,
    ListSecrets, PutIntention, PutResourcePolicy, RegisterFunction, RotateSecret, UpdateFunction,
};
use writ_api::functions::{
    FunctionName, RegisterFunctionRequest, UpdateFunctionFor, UpdateFunctionRequest,
};
use writ_api::intentions::{IntentionPair, IntentionsQuery};
use writ_api::secrets::{
    DeleteSecretRequest, RotateSecretRequest, SecretName, SecretPolicyRequest,
};

use super::client::{Client, ClientArgs, ServerArgs, print_answer};
use crate::config::diff::{self, Change, Plan};
use crate::config::model::{FunctionSpec, RotationSpec, SecretSpec, State};
use crate::config::{emit, files, read};

/// Exit code of `writ plan` when there are changes to make (as `terraform plan
/// -detailed-exitcode`).
const CHANGES: u8 = 2;
/// Exit code of `writ apply` when the server's state is not the one planned from.
const STATE_CHANGED: u8 = 3;

/// `writ plan`
#[derive(clap::Args)]
#[command(
    after_help = "Exit codes: 0 no changes, 2 changes to make (or secrets to create \
first), 1 an error.

Examples:
  writ plan -f config/                 # what apply would change
  writ plan -f config/ --prune         # ... and remove what no file declares
  writ plan -f config/ --format json"
)]
pub struct PlanArgs {
    /// The configuration: a directory (its *.toml, *.yaml and *.yml files) or one file.
    #[arg(short = 'f', long = "file", value_name = "DIR|FILE")]
    path: PathBuf,
    /// Also remove functions, intentions and secrets that no file declares.
    #[arg(long)]
    prune: bool,
    #[command(flatten)]
    client: ClientArgs,
}

/// `writ apply`
#[derive(clap::Args)]
#[command(after_help = "Examples:
  writ apply -f config/
  writ apply -f config/ --prune
  writ apply -f config/ --if-state 3f9c...   # only if the server is as `writ plan` saw it")]
pub struct ApplyArgs {
    /// The configuration: a directory (its *.toml, *.yaml and *.yml files) or one file.
    #[arg(short = 'f', long = "file", value_name = "DIR|FILE")]
    path: PathBuf,
    /// Also remove functions, intentions and secrets that no file declares.
    #[arg(long)]
    prune: bool,
    /// The state fingerprint `writ plan` printed: apply refuses if the server's state is
    /// no longer the one that plan was computed from.
    #[arg(long, value_name = "FINGERPRINT")]
    if_state: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

/// `writ export`
#[derive(clap::Args)]
#[command(after_help = "Examples:
  writ export                          # TOML on stdout
  writ export --format yaml -o writ.yaml
  writ export -o config/               # config/writ.toml")]
pub struct ExportArgs {
    /// Where to write: a file, or a directory (then DIR/writ.toml or DIR/writ.yaml);
    /// stdout when absent.
    #[arg(short = 'o', long = "output", value_name = "DIR|FILE")]
    output: Option<PathBuf>,
    /// The format written (from the file's extension when not given).
    #[arg(long, value_enum)]
    format: Option<ExportFormat>,
    #[command(flatten)]
    server: ServerArgs,
}

/// The formats `writ export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// TOML.
    Toml,
    /// YAML.
    Yaml,
}

/// The declared configuration at `path`, or every error in it.
fn declared(path: &Path) -> Result<read::Declared, String> {
    let sources = files::load(path)?;
    read::declared(&sources).map_err(|errors| {
        let n = errors.len();
        format!(
            "{}\n{n} error{} in the configuration",
            errors.join("\n"),
            if n == 1 { "" } else { "s" }
        )
    })
}

/// The server's state, as the configuration sees it.
fn current(client: &Client) -> Result<State, String> {
    let mut state = State::default();
    for f in client
        .send::<ListFunctions>(&writ_api::NoRequest)?
        .functions
    {
        if f.revoked_at.is_some() {
            state.revoked.push(f.name.clone());
        }
        let x509_ttl = if f.x509_ttl_pinned {
            let d = writ_server::duration::parse(&f.x509_ttl)
                .map_err(|e| format!("the server's x509Ttl of {}: {e}", f.name))?;
            Some(writ_server::duration::format(d))
        } else {
            None
        };
        state.functions.insert(
            f.name,
            FunctionSpec {
                attestation: f.attestation,
                x509_ttl,
                policies: f.policies,
            },
        );
    }
    for entry in client
        .send::<ListIntentions>(&IntentionsQuery::default())?
        .intentions
    {
        let i = entry.intention;
        state
            .intentions
            .insert((i.source.clone(), i.destination.clone()), i);
    }
    for s in client.send::<ListSecrets>(&writ_api::NoRequest)?.secrets {
        let described = client.send::<DescribeSecret>(&SecretName {
            name: s.name.clone(),
        })?;
        let rotation = match described.rotation {
            Some(r) => Some(RotationSpec {
                hook: r.hook,
                every: read::canonical_every(r.every.as_deref())
                    .map_err(|e| format!("the server's rotation of {}: {e}", s.name))?,
            }),
            None => None,
        };
        state.secrets.insert(
            s.name,
            SecretSpec {
                description: described.description,
                resource_policy: described.resource_policy,
                rotation,
            },
        );
    }
    Ok(state)
}

/// The plan as `--format json` prints it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanOutput<'a> {
    /// The fingerprint of the state the plan was computed from.
    state: &'a str,
    #[serde(flatten)]
    plan: &'a Plan,
    /// The gateway configuration files checked.
    gateway_files: &'a [String],
}

fn print_plan(plan: &Plan, fingerprint: &str, gateway_files: &[String], json: bool) {
    if json {
        print_answer(&PlanOutput {
            state: fingerprint,
            plan,
            gateway_files,
        });
        return;
    }
    for change in &plan.changes {
        println!("{}", change.line());
    }
    for name in &plan.missing_secrets {
        println!(
            "! secret {name} is declared but absent: create it with its value first \
             (writ secret put {name} --value-file FILE); apply refuses until then"
        );
    }
    for note in &plan.notes {
        println!("note: {note}");
    }
    for file in gateway_files {
        println!(
            "gateway file {file}: checked (the gateway reads it itself; apply does not send it)"
        );
    }
    let n = plan.changes.len();
    if plan.is_empty() {
        println!("no changes");
    } else {
        println!("{n} change{}", if n == 1 { "" } else { "s" });
    }
    println!("state: {fingerprint}");
}

/// Runs `writ plan`.
pub fn plan(args: PlanArgs) -> Result<ExitCode, String> {
    let declared = declared(&args.path)?;
    let client = Client::new(&args.client)?;
    let state = current(&client)?;
    let fingerprint = state.fingerprint();
    let plan = diff::plan(&state, &declared.state, args.prune);
    print_plan(
        &plan,
        &fingerprint,
        &declared.gateway_files,
        args.client.format.is_json(),
    );
    Ok(if plan.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(CHANGES)
    })
}

/// A fresh change id: 16 random lowercase hex digits.
fn change_id() -> Result<String, String> {
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| "the system's random source failed".to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs `writ apply`.
pub fn apply(args: ApplyArgs) -> Result<ExitCode, String> {
    let declared = declared(&args.path)?;
    let id = change_id()?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        writ_server::tls::CHANGE_ID_HEADER,
        reqwest::header::HeaderValue::from_str(&id).map_err(|e| e.to_string())?,
    );
    let client = Client::with_headers(&args.client.server, headers)?;
    let json = args.client.format.is_json();
    let state = current(&client)?;
    let fingerprint = state.fingerprint();
    if let Some(expected) = &args.if_state
        && *expected != fingerprint
    {
        eprintln!(
            "writ: the server's state changed since the plan (planned from {expected}, now \
             {fingerprint}); nothing was changed. Run writ plan again and review it."
        );
        return Ok(ExitCode::from(STATE_CHANGED));
    }
    let plan = diff::plan(&state, &declared.state, args.prune);
    if !plan.missing_secrets.is_empty() {
        return Err(format!(
            "nothing was changed: declared secrets the server does not have: {}. writ never \
             holds a secret's value; create each with it (writ secret put NAME --value-file FILE), then \
             apply again",
            plan.missing_secrets.join(", ")
        ));
    }
    if plan.changes.is_empty() {
        print_plan(&plan, &fingerprint, &declared.gateway_files, json);
        return Ok(ExitCode::SUCCESS);
    }
    // The state is read again just before the first write: a change made meanwhile (by
    // another operator, another apply) is never overwritten unseen.
    let again = current(&client)?.fingerprint();
    if again != fingerprint {
        eprintln!(
            "writ: the server's state changed while the plan was made (from {fingerprint} to \
             {again}); nothing was changed. Run writ apply again."
        );
        return Ok(ExitCode::from(STATE_CHANGED));
    }
    let mut done: Vec<String> = Vec::new();
    for change in &plan.changes {
        if let Err(e) = make(&client, change) {
            for line in &done {
                println!("{line}");
            }
            return Err(format!(
                "{}: {e}\nchange {id}: {} of {} changes were made before this one failed; \
                 writ apply again makes the rest (it plans from the server's state)",
                change.line(),
                done.len(),
                plan.changes.len()
            ));
        }
        done.push(change.line());
    }
    if json {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Applied<'a> {
            change_id: &'a str,
            changes: &'a [Change],
            notes: &'a [String],
        }
        print_answer(&Applied {
            change_id: &id,
            changes: &plan.changes,
            notes: &plan.notes,
        });
    } else {
        for line in &done {
            println!("{line}");
        }
        for note in &plan.notes {
            println!("note: {note}");
        }
        println!(
            "applied {} change{} as change {id} (audit events' requestId starts with {id}-)",
            done.len(),
            if done.len() == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Makes one change through the API.
fn make(client: &Client, change: &Change) -> Result<(), String> {
    match change {
        Change::CreateFunction { name, spec } => {
            client.send::<RegisterFunction>(&RegisterFunctionRequest {
                name: name.clone(),
                attestation: spec.attestation.clone(),
                x509_ttl: spec.x509_ttl.clone(),
                policies: spec.policies.clone(),
            })?;
        }
        Change::UpdateFunction { name, spec, .. } => {
            client.send::<UpdateFunction>(&UpdateFunctionFor {
                function: FunctionName(name.clone()),
                request: UpdateFunctionRequest {
                    attestation: spec.attestation.clone(),
                    x509_ttl: spec.x509_ttl.clone(),
                    policies: spec.policies.clone(),
                },
            })?;
        }
        Change::DeleteFunction { name } => {
            client.send::<DeleteFunction>(&FunctionName(name.clone()))?;
        }
        Change::PutIntention { intention, .. } => {
            client.send::<PutIntention>(intention)?;
        }
        Change::DeleteIntention {
            source,
            destination,
        } => {
            client.send::<DeleteIntention>(&IntentionPair {
                source: source.clone(),
                destination: destination.clone(),
            })?;
        }
        Change::SetSecretPolicy { name, policy } => {
            client.send::<PutResourcePolicy>(&SecretPolicyRequest {
                name: name.clone(),
                policy: policy.clone(),
            })?;
        }
        Change::SetSecretRotation { name, rotation } => {
            client.send::<RotateSecret>(&RotateSecretRequest {
                name: name.clone(),
                hook: Some(rotation.hook.clone()),
                every: Some(rotation.every.clone().unwrap_or_else(|| "off".into())),
                rotate_now: Some(false),
            })?;
        }
        Change::DeleteSecret { name } => {
            client.send::<DeleteSecret>(&DeleteSecretRequest {
                name: name.clone(),
                recovery_days: None,
            })?;
        }
    }
    Ok(())
}

/// Runs `writ export`.
pub fn export(args: ExportArgs) -> Result<ExitCode, String> {
    let format =
        args.format
            .unwrap_or_else(|| match args.output.as_deref().and_then(files::format_of) {
                Some(read::Format::Yaml) => ExportFormat::Yaml,
                _ => ExportFormat::Toml,
            });
    let client = Client::with_headers(&args.server, reqwest::header::HeaderMap::new())?;
    let state = current(&client)?;
    let doc = state.to_document();
    let text = match format {
        ExportFormat::Toml => emit::toml(&doc)?,
        ExportFormat::Yaml => emit::yaml(&doc)?,
    };
    match &args.output {
        None => print!("{text}"),
        Some(path) => {
            let path = if path.is_dir() {
                path.join(match format {
                    ExportFormat::Toml => "writ.toml",
                    ExportFormat::Yaml => "writ.yaml",
                })
            } else {
                path.clone()
            };
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("writ: wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
