//! `writ intention`: which function may call which, Consul style. The most specific
//! intention decides (exact destination first, then exact source); an allow may carry L7
//! rules on method, path and headers; with no matching intention, calls are denied.

use std::process::ExitCode;

use writ_api::endpoints::{CheckIntention, DeleteIntention, ListIntentions, PutIntention};
use writ_api::intentions::{CheckRequest, IntentionPair, IntentionsQuery};
use writ_policy::intentions::{HeaderMatch, Intention, IntentionAction, Permission};

use super::client::{Client, ClientArgs, print_answer};

/// `writ intention ...`
#[derive(clap::Args)]
pub struct IntentionArgs {
    #[command(subcommand)]
    command: IntentionCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(clap::Subcommand)]
enum IntentionCommand {
    /// Allow SRC to call DST, optionally only with some methods, paths or headers.
    /// Replaces any intention from SRC to DST.
    #[command(after_help = "Examples:
  writ intention allow orders payments
  writ intention allow orders payments --method POST --path /charge
  writ intention allow '*' health --method GET --path-prefix /health
  writ intention allow ci deploy --header x-env=prod --header authorization

SRC and DST are function names, or '*' (quoted, for the shell) for any function. With
L7 rules, calls from SRC to DST that match none of them are denied: they do not fall
through to a less specific intention.")]
    Allow {
        /// The calling function, or '*'.
        source: String,
        /// The called function, or '*'.
        destination: String,
        /// Allow only these methods (repeat for several), e.g. POST.
        #[arg(long = "method", value_name = "METHOD")]
        methods: Vec<String>,
        /// Allow only paths starting with this.
        #[arg(long, value_name = "PREFIX", conflicts_with = "path")]
        path_prefix: Option<String>,
        /// Allow only this exact path.
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
        /// Require a header: NAME=VALUE for an exact value, NAME alone for presence
        /// (repeat for several; all must hold).
        #[arg(long = "header", value_name = "NAME[=VALUE]")]
        headers: Vec<String>,
        /// A note for people.
        #[arg(long)]
        description: Option<String>,
    },
    /// Deny SRC calling DST. Replaces any intention from SRC to DST.
    #[command(after_help = "Examples:
  writ intention deny '*' payments      # only named callers may call payments
  writ intention deny orders '*'")]
    Deny {
        /// The calling function, or '*'.
        source: String,
        /// The called function, or '*'.
        destination: String,
        /// A note for people.
        #[arg(long)]
        description: Option<String>,
    },
    /// List every intention.
    List,
    /// Delete the intention from SRC to DST.
    #[command(after_help = "Example:
  writ intention delete '*' payments")]
    Delete {
        /// The calling function, or '*'.
        source: String,
        /// The called function, or '*'.
        destination: String,
    },
    /// Would SRC be allowed to call DST? Prints the decision and the intention that made
    /// it; exits 0 when allowed, 1 when denied.
    #[command(after_help = "Examples:
  writ intention check orders payments
  writ intention check orders payments --method POST --path /charge")]
    Check {
        /// The calling function.
        source: String,
        /// The called function.
        destination: String,
        /// The request's method.
        #[arg(long)]
        method: Option<String>,
        /// The request's path.
        #[arg(long)]
        path: Option<String>,
        /// A request header, NAME=VALUE (repeat for several).
        #[arg(long = "header", value_name = "NAME=VALUE")]
        headers: Vec<String>,
    },
}

/// One permission's conditions as a line for people: `POST|PUT /charge*`.
fn permission_text(p: &Permission) -> String {
    let mut parts = Vec::new();
    if !p.methods.is_empty() {
        parts.push(p.methods.join("|"));
    }
    if let Some(path) = &p.path_exact {
        parts.push(path.clone());
    }
    if let Some(prefix) = &p.path_prefix {
        parts.push(format!("{prefix}*"));
    }
    for h in &p.headers {
        let name = &h.name;
        parts.push(if let Some(v) = &h.exact {
            format!("{name}={v}")
        } else if let Some(v) = &h.prefix {
            format!("{name}={v}*")
        } else if h.present == Some(false) {
            format!("!{name}")
        } else {
            name.clone()
        });
    }
    parts.join(" ")
}

fn intention_text(it: &Intention) -> String {
    let mut text = format!("{} {} -> {}", it.action, it.source, it.destination);
    let permissions: Vec<String> = it.permissions.iter().map(permission_text).collect();
    if !permissions.is_empty() {
        text.push_str(&format!(" ({})", permissions.join("; ")));
    }
    text
}

fn header_match(text: &str) -> Result<HeaderMatch, String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok(HeaderMatch {
            name: name.to_string(),
            exact: Some(value.to_string()),
            ..HeaderMatch::default()
        }),
        None if !text.is_empty() => Ok(HeaderMatch {
            name: text.to_string(),
            present: Some(true),
            ..HeaderMatch::default()
        }),
        _ => Err(format!(
            "--header {text:?}: write NAME=VALUE for an exact value, or NAME for presence"
        )),
    }
}

/// Runs `writ intention`.
pub fn run(args: IntentionArgs) -> Result<ExitCode, String> {
    let client = Client::new(&args.client)?;
    let json_out = args.client.format.is_json();
    match args.command {
        IntentionCommand::Allow {
            source,
            destination,
            methods,
            path_prefix,
            path,
            headers,
            description,
        } => {
            let mut intention = Intention {
                source,
                destination,
                action: IntentionAction::Allow,
                permissions: Vec::new(),
                description,
            };
            if !methods.is_empty() || path_prefix.is_some() || path.is_some() || !headers.is_empty()
            {
                intention.permissions.push(Permission {
                    methods,
                    path_prefix,
                    path_exact: path,
                    headers: headers
                        .iter()
                        .map(|h| header_match(h))
                        .collect::<Result<Vec<_>, _>>()?,
                });
            }
            write(&client, &intention, json_out)?;
        }
        IntentionCommand::Deny {
            source,
            destination,
            description,
        } => {
            let intention = Intention {
                source,
                destination,
                action: IntentionAction::Deny,
                permissions: Vec::new(),
                description,
            };
            write(&client, &intention, json_out)?;
        }
        IntentionCommand::List => {
            let a = client.send::<ListIntentions>(&IntentionsQuery::default())?;
            if json_out {
                print_answer(&a);
                return Ok(ExitCode::SUCCESS);
            }
            if a.intentions.is_empty() {
                println!("no intentions: every call between functions is denied");
            }
            for entry in &a.intentions {
                let it = &entry.intention;
                let description = it.description.as_deref().unwrap_or("");
                println!(
                    "{:<6} {:<20} -> {:<20} {}{}",
                    it.action.as_str(),
                    it.source,
                    it.destination,
                    it.permissions
                        .iter()
                        .map(permission_text)
                        .collect::<Vec<_>>()
                        .join("; "),
                    if description.is_empty() {
                        String::new()
                    } else {
                        format!("  # {description}")
                    }
                );
            }
        }
        IntentionCommand::Delete {
            source,
            destination,
        } => {
            let a = client.send::<DeleteIntention>(&IntentionPair {
                source: source.clone(),
                destination: destination.clone(),
            })?;
            if json_out {
                print_answer(&a);
            } else {
                println!("deleted intention {source} -> {destination}");
            }
        }
        IntentionCommand::Check {
            source,
            destination,
            method,
            path,
            headers,
        } => {
            let mut request = CheckRequest {
                source,
                destination,
                method,
                path,
                ..CheckRequest::default()
            };
            for h in &headers {
                let (name, value) = h
                    .split_once('=')
                    .filter(|(n, _)| !n.is_empty())
                    .ok_or_else(|| format!("--header {h:?}: write NAME=VALUE"))?;
                request.headers.insert(name.to_string(), value.to_string());
            }
            let a = client.send::<CheckIntention>(&request)?;
            if json_out {
                print_answer(&a);
            } else {
                println!("{}", a.reason);
            }
            return Ok(if a.allowed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// PUTs an intention. For people, says what changed; for programs, prints the answer.
fn write(client: &Client, intention: &Intention, json_out: bool) -> Result<(), String> {
    let a = client.send::<PutIntention>(intention)?;
    if json_out {
        print_answer(&a);
    } else {
        let verb = if a.created { "created" } else { "replaced" };
        println!("{verb} intention: {}", intention_text(&a.intention));
    }
    Ok(())
}
