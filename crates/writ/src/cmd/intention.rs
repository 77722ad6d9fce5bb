//! `writ intention`: which function may call which, Consul style. The most specific
//! intention decides (exact destination first, then exact source); an allow may carry L7
//! rules on method, path and headers; with no matching intention, calls are denied.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Client, ClientArgs, print_json, query_encode};

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
fn permission_text(p: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(methods) = p["methods"].as_array() {
        let m: Vec<&str> = methods.iter().filter_map(Value::as_str).collect();
        parts.push(m.join("|"));
    }
    if let Some(path) = p["pathExact"].as_str() {
        parts.push(path.to_string());
    }
    if let Some(prefix) = p["pathPrefix"].as_str() {
        parts.push(format!("{prefix}*"));
    }
    for h in p["headers"].as_array().cloned().unwrap_or_default() {
        let name = h["name"].as_str().unwrap_or("");
        parts.push(if let Some(v) = h["exact"].as_str() {
            format!("{name}={v}")
        } else if let Some(v) = h["prefix"].as_str() {
            format!("{name}={v}*")
        } else if h["present"] == json!(false) {
            format!("!{name}")
        } else {
            name.to_string()
        });
    }
    parts.join(" ")
}

fn intention_text(it: &Value) -> String {
    let mut text = format!(
        "{} {} -> {}",
        it["action"].as_str().unwrap_or("?"),
        it["source"].as_str().unwrap_or("?"),
        it["destination"].as_str().unwrap_or("?"),
    );
    let permissions: Vec<String> = it["permissions"]
        .as_array()
        .map(|ps| ps.iter().map(permission_text).collect())
        .unwrap_or_default();
    if !permissions.is_empty() {
        text.push_str(&format!(" ({})", permissions.join("; ")));
    }
    text
}

fn header_match(text: &str) -> Result<Value, String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok(json!({"name": name, "exact": value})),
        None if !text.is_empty() => Ok(json!({"name": text, "present": true})),
        _ => Err(format!(
            "--header {text:?}: write NAME=VALUE for an exact value, or NAME for presence"
        )),
    }
}

/// Runs `writ intention`.
pub fn run(args: IntentionArgs) -> Result<ExitCode, String> {
    let client = Client::new(&args.client)?;
    let json_out = args.client.format.is_json();
    let answer = match args.command {
        IntentionCommand::Allow {
            source,
            destination,
            methods,
            path_prefix,
            path,
            headers,
            description,
        } => {
            let mut body = json!({"source": source, "destination": destination, "action": "allow"});
            if !methods.is_empty() || path_prefix.is_some() || path.is_some() || !headers.is_empty()
            {
                let mut permission = json!({});
                if !methods.is_empty() {
                    permission["methods"] = json!(methods);
                }
                if let Some(p) = path_prefix {
                    permission["pathPrefix"] = json!(p);
                }
                if let Some(p) = path {
                    permission["pathExact"] = json!(p);
                }
                if !headers.is_empty() {
                    permission["headers"] = headers
                        .iter()
                        .map(|h| header_match(h))
                        .collect::<Result<Vec<_>, _>>()?
                        .into();
                }
                body["permissions"] = json!([permission]);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            match write(&client, body, json_out)? {
                Some(a) => a,
                None => return Ok(ExitCode::SUCCESS),
            }
        }
        IntentionCommand::Deny {
            source,
            destination,
            description,
        } => {
            let mut body = json!({"source": source, "destination": destination, "action": "deny"});
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            match write(&client, body, json_out)? {
                Some(a) => a,
                None => return Ok(ExitCode::SUCCESS),
            }
        }
        IntentionCommand::List => {
            let a = client.call(Method::GET, "/v1/intentions", None)?;
            if !json_out {
                let all = a["intentions"].as_array().cloned().unwrap_or_default();
                if all.is_empty() {
                    println!("no intentions: every call between functions is denied");
                }
                for it in all {
                    let description = it["description"].as_str().unwrap_or("");
                    println!(
                        "{:<6} {:<20} -> {:<20} {}{}",
                        it["action"].as_str().unwrap_or("?"),
                        it["source"].as_str().unwrap_or("?"),
                        it["destination"].as_str().unwrap_or("?"),
                        it["permissions"]
                            .as_array()
                            .map(|ps| ps
                                .iter()
                                .map(permission_text)
                                .collect::<Vec<_>>()
                                .join("; "))
                            .unwrap_or_default(),
                        if description.is_empty() {
                            String::new()
                        } else {
                            format!("  # {description}")
                        }
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            a
        }
        IntentionCommand::Delete {
            source,
            destination,
        } => {
            let a = client.call(
                Method::DELETE,
                &format!(
                    "/v1/intentions?source={}&destination={}",
                    query_encode(&source),
                    query_encode(&destination)
                ),
                None,
            )?;
            if !json_out {
                println!("deleted intention {source} -> {destination}");
                return Ok(ExitCode::SUCCESS);
            }
            a
        }
        IntentionCommand::Check {
            source,
            destination,
            method,
            path,
            headers,
        } => {
            let mut body = json!({"source": source, "destination": destination});
            if let Some(m) = method {
                body["method"] = json!(m);
            }
            if let Some(p) = path {
                body["path"] = json!(p);
            }
            let mut map = serde_json::Map::new();
            for h in &headers {
                let (name, value) = h
                    .split_once('=')
                    .filter(|(n, _)| !n.is_empty())
                    .ok_or_else(|| format!("--header {h:?}: write NAME=VALUE"))?;
                map.insert(name.to_string(), json!(value));
            }
            if !map.is_empty() {
                body["headers"] = Value::Object(map);
            }
            let a = client.call(Method::POST, "/v1/intentions/check", Some(body))?;
            if json_out {
                print_json(&a);
            } else {
                println!("{}", a["reason"].as_str().unwrap_or("?"));
            }
            return Ok(if a["decision"] == "allowed" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    };
    print_json(&answer);
    Ok(ExitCode::SUCCESS)
}

/// PUTs an intention. For people, says what changed and returns `None`; for programs,
/// returns the answer to print.
fn write(client: &Client, body: Value, json_out: bool) -> Result<Option<Value>, String> {
    let a = client.call(Method::PUT, "/v1/intentions", Some(body))?;
    if !json_out {
        let verb = if a["created"] == json!(true) {
            "created"
        } else {
            "replaced"
        };
        println!("{verb} intention: {}", intention_text(&a["intention"]));
        return Ok(None);
    }
    Ok(Some(a))
}
