//! `writ secret`: store, read, list, describe, delete and restore secrets. A value is never
//! taken as a command-line argument, where it would land in shell history and process
//! listings: it comes from a file or standard input.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use writ_api::endpoints::{
    CreateSecret, DeleteSecret, DescribeSecret, GetSecretValue, ListSecrets, PutResourcePolicy,
    PutSecretValue, RestoreSecret, RotateSecret,
};
use writ_api::secrets::{
    CreateSecretRequest, DeleteSecretRequest, GetSecretRequest, Hook, PutSecretRequest,
    RotateSecretRequest, SecretName, SecretPolicyRequest,
};
use writ_client::api::ApiCallError;

use super::client::{Client, ClientArgs, print_answer, render};

/// `writ secret ...`
#[derive(clap::Args)]
pub struct SecretArgs {
    #[command(subcommand)]
    command: SecretCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(clap::Subcommand)]
enum SecretCommand {
    /// Store a value: creates the secret, or adds a version that becomes AWSCURRENT.
    #[command(after_help = "Examples:
  writ secret put prod/orders-db --value-file db-url.txt --description 'orders database'
  vault-or-whatever | writ secret put prod/stripe-key --value-stdin
  writ secret put certs/tls-key --value-file key.der --binary")]
    Put {
        /// The secret's name, e.g. prod/orders-db.
        name: String,
        /// Read the value from this file.
        #[arg(long, conflicts_with = "value_stdin", required_unless_present_any = ["value_stdin", "value"])]
        value_file: Option<PathBuf>,
        /// Read the value from standard input.
        #[arg(long)]
        value_stdin: bool,
        /// Refused: a value on the command line lands in shell history.
        #[arg(long, hide = true)]
        value: Option<String>,
        /// Store the bytes as a binary value (otherwise the value must be UTF-8 text).
        #[arg(long)]
        binary: bool,
        /// A description, when the secret is created.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Print a value (AWSCURRENT unless a stage or version is named).
    Get {
        /// The secret's name.
        name: String,
        /// A staging label, e.g. AWSPREVIOUS.
        #[arg(long, conflicts_with = "version_id")]
        version_stage: Option<String>,
        /// A version id.
        #[arg(long)]
        version_id: Option<String>,
    },
    /// List secrets.
    List,
    /// Show a secret's metadata and versions (never its value).
    Describe {
        /// The secret's name.
        name: String,
    },
    /// Schedule a secret's deletion; it can be restored within the recovery window.
    Delete {
        /// The secret's name.
        name: String,
        /// Days it stays restorable (7 to 30).
        #[arg(long, default_value_t = 30)]
        recovery_days: i64,
    },
    /// Cancel a scheduled deletion.
    Restore {
        /// The secret's name.
        name: String,
    },
    /// Rotate a secret now through its hook (create, set, test, finish), and set the hook
    /// and schedule. AWSCURRENT moves only when every step passes.
    #[command(after_help = "Examples:
  writ secret rotate prod/orders-db --hook-url https://rotator.internal/orders-db --every 30d
  writ secret rotate prod/orders-db                    # again, with the stored hook
  writ secret rotate prod/orders-db --hook-command db --no-rotate-now
  writ secret rotate prod/orders-db --every off --no-rotate-now   # stop the schedule

A hook URL is called with POST and a JSON body per step; the server presents its SVID
(spiffe://TRUST-DOMAIN/writ/server) as a client certificate. A hook command is one the
server's operator registered with writ server --rotation-hook NAME=PATH.")]
    Rotate {
        /// The secret's name.
        name: String,
        /// An HTTPS endpoint to drive through the steps.
        #[arg(long, conflicts_with = "hook_command")]
        hook_url: Option<String>,
        /// A rotation command registered on the server, by name.
        #[arg(long)]
        hook_command: Option<String>,
        /// Rotate on this schedule (e.g. 30d, 12h), or `off`.
        #[arg(long)]
        every: Option<String>,
        /// Only change the settings; do not rotate now.
        #[arg(long)]
        no_rotate_now: bool,
    },
    /// Set a secret's resource policy from a file (or remove it with --remove).
    Policy {
        /// The secret's name.
        name: String,
        /// The policy file (a resource policy: it names principals, e.g. SPIFFE IDs).
        #[arg(long, required_unless_present = "remove")]
        file: Option<PathBuf>,
        /// Remove the resource policy.
        #[arg(long)]
        remove: bool,
    },
}

fn read_value(file: Option<PathBuf>, stdin: bool) -> Result<Vec<u8>, String> {
    let limit = writ_secrets::model::MAX_VALUE_BYTES;
    let mut bytes = Vec::new();
    if stdin {
        std::io::stdin()
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("standard input: {e}"))?;
    } else if let Some(path) = file {
        std::fs::File::open(&path)
            .and_then(|f| f.take(limit as u64 + 1).read_to_end(&mut bytes))
            .map_err(|e| format!("--value-file {}: {e}", path.display()))?;
    }
    if bytes.len() > limit {
        return Err(format!(
            "the value is larger than {limit} bytes, the most a secret holds"
        ));
    }
    Ok(bytes)
}

/// Runs `writ secret`.
pub fn run(args: SecretArgs) -> Result<ExitCode, String> {
    if let SecretCommand::Put { value: Some(_), .. } = &args.command {
        return Err(
            "--value is refused: a value on the command line lands in shell history and process \
             listings. Use --value-file FILE, or pipe it to --value-stdin."
                .into(),
        );
    }
    let client = Client::new(&args.client)?;
    let json_out = args.client.format.is_json();
    match args.command {
        SecretCommand::Put {
            name,
            value_file,
            value_stdin,
            binary,
            description,
            ..
        } => {
            let bytes = read_value(value_file, value_stdin)?;
            let mut put = PutSecretRequest {
                name,
                ..PutSecretRequest::default()
            };
            if binary {
                put.secret_binary = Some(STANDARD.encode(&bytes));
            } else {
                let text = String::from_utf8(bytes).map_err(|_| {
                    "the value is not UTF-8 text; store it with --binary".to_string()
                })?;
                put.secret_string = Some(text);
            }
            match client.try_send::<PutSecretValue>(&put, None) {
                Ok(a) if json_out => print_answer(&a),
                Ok(a) => println!(
                    "stored {}: version {} ({})",
                    a.name,
                    a.version_id,
                    a.version_stages.join(", ")
                ),
                Err(ApiCallError::Refused {
                    status: 404,
                    message,
                    ..
                }) if message.contains("no secret named") => {
                    let a = client.send::<CreateSecret>(&CreateSecretRequest {
                        name: put.name,
                        secret_string: put.secret_string,
                        secret_binary: put.secret_binary,
                        description,
                        tags: Default::default(),
                    })?;
                    if json_out {
                        print_answer(&a);
                    } else {
                        println!("created {}: version {} (AWSCURRENT)", a.name, a.version_id);
                    }
                }
                Err(e) => return Err(render(e)),
            }
        }
        SecretCommand::Get {
            name,
            version_stage,
            version_id,
        } => {
            let a = client.send::<GetSecretValue>(&GetSecretRequest {
                name,
                version_id,
                version_stage,
            })?;
            if !json_out {
                let mut out = std::io::stdout().lock();
                let bytes = match (&a.secret_string, &a.secret_binary) {
                    (Some(s), _) => s.as_bytes().to_vec(),
                    (None, Some(b)) => STANDARD
                        .decode(b)
                        .map_err(|_| "the server sent malformed base64".to_string())?,
                    _ => Vec::new(),
                };
                out.write_all(&bytes).map_err(|e| e.to_string())?;
                return Ok(ExitCode::SUCCESS);
            }
            print_answer(&a);
        }
        SecretCommand::List => {
            let a = client.send::<ListSecrets>(&writ_api::NoRequest)?;
            if !json_out {
                for s in &a.secrets {
                    println!("{:<40} {}", s.name, s.description);
                }
                return Ok(ExitCode::SUCCESS);
            }
            print_answer(&a);
        }
        SecretCommand::Describe { name } => {
            let a = client.send::<DescribeSecret>(&SecretName { name })?;
            if json_out {
                print_answer(&a);
            } else {
                show_description(&a);
            }
        }
        SecretCommand::Delete {
            name,
            recovery_days,
        } => {
            let a = client.send::<DeleteSecret>(&DeleteSecretRequest {
                name,
                recovery_days: Some(recovery_days),
            })?;
            if json_out {
                print_answer(&a);
            } else {
                println!(
                    "{} is scheduled for deletion on {}; until then `writ secret restore {}` keeps it",
                    a.name, a.deletion_date, a.name
                );
            }
        }
        SecretCommand::Restore { name } => {
            let a = client.send::<RestoreSecret>(&SecretName { name })?;
            if json_out {
                print_answer(&a);
            } else {
                println!("restored {}", a.name);
            }
        }
        SecretCommand::Rotate {
            name,
            hook_url,
            hook_command,
            every,
            no_rotate_now,
        } => {
            let hook = match (hook_url, hook_command) {
                (Some(url), _) => Some(Hook::Https { url }),
                (None, Some(name)) => Some(Hook::Command { name }),
                (None, None) => None,
            };
            // Four hook steps of up to 15 seconds each.
            let a = client.send_within::<RotateSecret>(
                &RotateSecretRequest {
                    name: name.clone(),
                    hook,
                    every,
                    rotate_now: Some(!no_rotate_now),
                },
                std::time::Duration::from_secs(75),
            )?;
            if !json_out {
                match &a.version_id {
                    Some(v) => println!("rotated {name}: version {v} is AWSCURRENT"),
                    None => println!("rotation settings of {name} updated"),
                }
                return Ok(ExitCode::SUCCESS);
            }
            print_answer(&a);
        }
        SecretCommand::Policy { name, file, remove } => {
            let policy = match (file, remove) {
                (_, true) => None,
                (Some(path), false) => Some(Value::String(
                    std::fs::read_to_string(&path)
                        .map_err(|e| format!("--file {}: {e}", path.display()))?,
                )),
                (None, false) => return Err("give --file FILE or --remove".into()),
            };
            let removed = policy.is_none();
            let a = client.send::<PutResourcePolicy>(&SecretPolicyRequest { name, policy })?;
            if json_out {
                print_answer(&a);
            } else if removed {
                println!("removed the resource policy of {}", a.name);
            } else {
                println!("set the resource policy of {}", a.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A secret's description, for people (never a value).
fn show_description(a: &writ_api::secrets::SecretDescription) {
    println!("name:         {}", a.name);
    if !a.description.is_empty() {
        println!("description:  {}", a.description);
    }
    println!("created:      {}", a.created_date);
    println!("changed:      {}", a.last_changed_date);
    for (k, v) in &a.tags {
        println!("tag:          {k}={v}");
    }
    println!(
        "policy:       {}",
        if a.resource_policy.is_some() {
            "a resource policy (--format json shows it)"
        } else {
            "none"
        }
    );
    match &a.rotation {
        Some(r) => {
            let hook = match &r.hook {
                Hook::Https { url } => format!("https hook {url}"),
                Hook::Command { name } => format!("command hook {name}"),
            };
            let every = r.every.as_deref().unwrap_or("on demand");
            println!("rotation:     {hook}, every {every}");
            if let Some(next) = &r.next_rotation_date {
                println!("next:         {next}");
            }
        }
        None => println!("rotation:     none"),
    }
    println!("versions:");
    for v in &a.versions {
        println!(
            "  {}  {}  {}",
            v.version_id,
            v.created_date,
            v.version_stages.join(", ")
        );
    }
}
