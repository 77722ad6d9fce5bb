//! `writ fn`: register, update, list, show, delete and reinstate functions.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};
use writ_api::endpoints::{
    DeleteFunction, GetFunction, ListFunctions, RegisterFunction, ReinstateFunction, UpdateFunction,
};
use writ_api::functions::{
    AttestationRule, AwsIamRule, Function, FunctionName, RegisterFunctionRequest,
    UpdateFunctionFor, UpdateFunctionRequest, default_rules,
};

use super::client::{Client, ClientArgs, ClientFormat, print_answer, print_json};

/// `writ fn ...`
#[derive(clap::Args)]
pub struct FnArgs {
    #[command(subcommand)]
    command: FnCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(clap::Subcommand)]
enum FnCommand {
    /// Register a function: its identity becomes spiffe://TRUST-DOMAIN/fn/NAME.
    #[command(after_help = "Examples:
  writ fn register orders                       # join tokens only
  writ fn register orders --attestation rules.json --x509-ttl 30m
  writ fn register orders --aws-iam-role 'arn:aws:iam::123456789012:role/orders-*' \\
      --aws-iam-session-name orders              # AWS IAM attestation (Lambda)

rules.json is a JSON array of rules, e.g.
  [{\"type\": \"joinToken\"},
   {\"type\": \"oidc\", \"issuer\": \"https://token.actions.githubusercontent.com\",
    \"jwksUrl\": \"https://token.actions.githubusercontent.com/.well-known/jwks\",
    \"audience\": \"writ\", \"subject\": \"repo:acme/orders:ref:refs/heads/main\"}]")]
    Register {
        /// The function's name: lowercase letters, digits, '-' and '_'.
        name: String,
        #[command(flatten)]
        flags: FunctionFlags,
    },
    /// Update a function: its attestation rules, SVID lifetime and policies become the ones
    /// given (the same flags as register; what is not given returns to its default).
    #[command(after_help = "Examples:
  writ fn update orders --policy orders-v2.json      # new policies, join tokens only
  writ fn update orders --attestation rules.json --x509-ttl 15m")]
    Update {
        /// The function's name.
        name: String,
        #[command(flatten)]
        flags: FunctionFlags,
    },
    /// Reinstate a revoked function: it may log in again (a new life: its SVIDs from
    /// before stay revoked). Needs writ:ReinstateFunction.
    Reinstate {
        /// The function's name.
        name: String,
    },
    /// List functions.
    List,
    /// Show one function.
    Show {
        /// The function's name.
        name: String,
    },
    /// Delete a function and its join tokens.
    Delete {
        /// The function's name.
        name: String,
    },
}

/// What a registration or an update gives a function.
#[derive(clap::Args)]
struct FunctionFlags {
    /// A JSON file with the attestation rules (default: join tokens).
    #[arg(long)]
    attestation: Option<PathBuf>,
    /// Accept AWS IAM attestation from a role whose ARN matches this pattern
    /// (repeatable; `*` and `?` wildcards, the role's name without its path). Replaces
    /// the default join-token rule; added to the rules of --attestation.
    #[arg(long = "aws-iam-role", value_name = "ARN_PATTERN")]
    aws_iam_roles: Vec<String>,
    /// With --aws-iam-role: the AWS account (12 digits) the role must be in
    /// (repeatable).
    #[arg(
        long = "aws-iam-account",
        value_name = "ACCOUNT",
        requires = "aws_iam_roles"
    )]
    aws_iam_accounts: Vec<String>,
    /// With --aws-iam-role: a pattern the role session's name must match (Lambda names
    /// the session after the function).
    #[arg(
        long = "aws-iam-session-name",
        value_name = "PATTERN",
        requires = "aws_iam_roles"
    )]
    aws_iam_session_name: Option<String>,
    /// X.509-SVID lifetime for this function (default: the server's).
    #[arg(long)]
    x509_ttl: Option<String>,
    /// An identity policy file: what the function may do, such as reading a secret
    /// (repeatable; none means nothing).
    #[arg(long)]
    policy: Vec<PathBuf>,
}

impl FunctionFlags {
    /// The rules, TTL and policies the flags give, files read.
    fn read(self) -> Result<UpdateFunctionRequest, String> {
        let mut request = UpdateFunctionRequest {
            attestation: default_rules(),
            x509_ttl: self.x509_ttl,
            policies: Vec::new(),
        };
        let attestation_file = self.attestation.clone();
        if let Some(path) = self.attestation {
            request.attestation = read_rules(&path)?;
        }
        if !self.aws_iam_roles.is_empty() {
            let rule = AttestationRule::AwsIam(AwsIamRule {
                role_arns: self.aws_iam_roles,
                accounts: self.aws_iam_accounts,
                session_name: self.aws_iam_session_name,
            });
            if request.attestation == default_rules() && attestation_file.is_none() {
                request.attestation = vec![rule];
            } else {
                request.attestation.push(rule);
            }
        }
        for path in &self.policy {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--policy {}: {e}", path.display()))?;
            request.policies.push(Value::String(text));
        }
        Ok(request)
    }
}

/// Runs `writ fn`.
pub fn run(args: FnArgs) -> Result<ExitCode, String> {
    let client = Client::new(&args.client)?;
    let format = args.client.format;
    match args.command {
        FnCommand::Register { name, flags } => {
            let given = flags.read()?;
            let request = RegisterFunctionRequest {
                name,
                attestation: given.attestation,
                x509_ttl: given.x509_ttl,
                policies: given.policies,
            };
            let f = client.send::<RegisterFunction>(&request)?;
            show(&f, format, Shown::Registered);
        }
        FnCommand::Update { name, flags } => {
            let f = client.send::<UpdateFunction>(&UpdateFunctionFor {
                function: FunctionName(name),
                request: flags.read()?,
            })?;
            show(&f, format, Shown::Updated);
        }
        FnCommand::Reinstate { name } => {
            let f = client.send::<ReinstateFunction>(&FunctionName(name))?;
            show(&f, format, Shown::Reinstated);
        }
        FnCommand::List => {
            let all = client.send::<ListFunctions>(&writ_api::NoRequest)?;
            if format.is_json() {
                print_answer(&all);
            } else {
                if all.functions.is_empty() {
                    println!("no functions registered");
                }
                for f in &all.functions {
                    let methods: Vec<&str> =
                        f.attestation.iter().map(AttestationRule::method).collect();
                    let state = if f.revoked_at.is_none() {
                        ""
                    } else {
                        "  REVOKED"
                    };
                    println!(
                        "{:<24} {:<48} {}{state}",
                        f.name,
                        f.spiffe_id,
                        methods.join(",")
                    );
                }
            }
        }
        FnCommand::Show { name } => {
            let f = client.send::<GetFunction>(&FunctionName(name))?;
            show(&f, format, Shown::Plain);
        }
        FnCommand::Delete { name } => {
            client.send::<DeleteFunction>(&FunctionName(name.clone()))?;
            if format.is_json() {
                print_json(&json!({"deleted": name}));
            } else {
                println!("deleted function {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The attestation rules in the JSON file `path` (`--attestation`); errors name
/// file:line:col.
pub(super) fn read_rules(path: &std::path::Path) -> Result<Vec<AttestationRule>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--attestation {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "--attestation {}:{}:{}: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

/// An attestation rule, for people: how the function may prove itself.
fn rule_text(rule: &AttestationRule) -> String {
    match rule {
        AttestationRule::JoinToken => "a join token (writ token create --fn NAME)".to_string(),
        AttestationRule::Oidc(o) => {
            let subject = o
                .subject
                .as_deref()
                .map(|s| format!(", subject {s}"))
                .unwrap_or_default();
            format!(
                "an OIDC token from {}, audience {}{subject}",
                o.issuer, o.audience
            )
        }
        AttestationRule::AwsIam(a) => {
            let accounts = if a.accounts.is_empty() {
                String::new()
            } else {
                format!(" in account {}", a.accounts.join(", "))
            };
            format!(
                "its AWS role, matching {}{accounts}",
                a.role_arns.join(", ")
            )
        }
    }
}

/// What just happened to the function shown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    Plain,
    Registered,
    Updated,
    Reinstated,
}

fn show(f: &Function, format: ClientFormat, shown: Shown) {
    if format.is_json() {
        print_answer(f);
        return;
    }
    match shown {
        Shown::Plain => {}
        Shown::Registered => println!("registered {}", f.spiffe_id),
        Shown::Updated => println!("updated {}", f.spiffe_id),
        Shown::Reinstated => println!(
            "reinstated {}: it may log in again; its SVIDs from before stay revoked",
            f.spiffe_id
        ),
    }
    println!("name:        {}", f.name);
    println!("spiffe id:   {}", f.spiffe_id);
    println!("x509 ttl:    {}", f.x509_ttl);
    println!("created:     {}", f.created_at);
    if let Some(r) = &f.revoked_at {
        println!("revoked:     {r}");
    }
    for (i, rule) in f.attestation.iter().enumerate() {
        let label = if i == 0 { "attestation:" } else { "" };
        println!("{label:<12} {}", rule_text(rule));
    }
    let policies = f.policies.len();
    match &f.permissions_boundary {
        Some(boundary) => println!(
            "policies:    {policies}, bounded by the {} of the token that set them (--format json shows them)",
            if boundary.len() == 1 {
                "policy".to_string()
            } else {
                format!("{} policies", boundary.len())
            }
        ),
        None => println!("policies:    {policies}"),
    }
}
