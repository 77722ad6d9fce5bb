//! The API client the operator commands share: finds the server and token from flags or
//! the environment, and trusts only writ's own CA for the server's certificate. It is
//! `writ_client`'s [`ApiClient`] behind a current-thread runtime, with its errors rendered
//! for people as the CLI has always shown them.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use writ_api::endpoint::Endpoint;
use writ_client::api::{ApiCallError, ApiClient, Credential};

/// Where the server is and how to authenticate to it, and the output format.
#[derive(clap::Args, Clone)]
pub struct ClientArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub format: ClientFormat,
}

/// Where the server is and how to authenticate to it. The token is never a flag value:
/// command lines end up in shell history and process listings.
#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// Server address.
    #[arg(
        long,
        env = "WRIT_ADDR",
        default_value = "https://127.0.0.1:7443",
        global = true
    )]
    addr: String,
    /// The trust bundle to verify the server against (the server keeps DATA_DIR/ca.pem).
    #[arg(long, env = "WRIT_CACERT", global = true)]
    ca_file: Option<PathBuf>,
    /// A file holding the admin token; otherwise WRIT_TOKEN.
    #[arg(long, env = "WRIT_TOKEN_FILE", global = true)]
    token_file: Option<PathBuf>,
}

/// Output format of the commands that talk to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientFormat {
    /// For people.
    Text,
    /// For programs: JSON on stdout.
    Json,
    /// For programs and archives: one JSON object per line (`writ audit tail`, `export`).
    Jsonl,
}

impl ClientFormat {
    /// Whether the output is for programs (JSON or JSON lines).
    pub fn is_json(self) -> bool {
        matches!(self, ClientFormat::Json | ClientFormat::Jsonl)
    }
}

/// A connected client.
pub struct Client {
    api: ApiClient,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    /// A client for the server at `addr` (https), verified against `ca_file`, with the
    /// token in `token_file`.
    pub fn connect(addr: &str, ca_file: PathBuf, token_file: PathBuf) -> Result<Client, String> {
        Client::new(&ClientArgs {
            server: ServerArgs {
                addr: addr.to_string(),
                ca_file: Some(ca_file),
                token_file: Some(token_file),
            },
            format: ClientFormat::Text,
        })
    }

    /// Builds a client from the arguments.
    pub fn new(args: &ClientArgs) -> Result<Client, String> {
        Client::with_headers(&args.server, reqwest::header::HeaderMap::new())
    }

    /// Builds a client that sends `headers` with every request (`writ apply` names its
    /// change in each, `Writ-Change-Id`).
    pub fn with_headers(
        args: &ServerArgs,
        headers: reqwest::header::HeaderMap,
    ) -> Result<Client, String> {
        let ca_file = args.ca_file.as_ref().ok_or(
            "give --ca-file or set WRIT_CACERT to the server's trust bundle (the server writes it to DATA_DIR/ca.pem; `writ ca show` prints it)",
        )?;
        let pem_text = std::fs::read_to_string(ca_file)
            .map_err(|e| format!("--ca-file {}: {e}", ca_file.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        let blocks = pem::parse_many(&pem_text)
            .map_err(|e| format!("--ca-file {}: {e}", ca_file.display()))?;
        for block in blocks.into_iter().filter(|b| b.tag() == "CERTIFICATE") {
            roots
                .add(block.into_contents().into())
                .map_err(|e| format!("--ca-file {}: {e}", ca_file.display()))?;
        }
        if roots.is_empty() {
            return Err(format!(
                "--ca-file {}: no certificates in it",
                ca_file.display()
            ));
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        if !args.addr.starts_with("https://") {
            return Err(format!(
                "--addr {}: writ speaks only HTTPS, and the token must never cross the network in the clear; use https://",
                args.addr
            ));
        }
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .default_headers(headers)
            .https_only(true)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let token = match &args.token_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("--token-file {}: {e}", path.display()))?
                .trim()
                .to_string(),
            None => std::env::var("WRIT_TOKEN").map_err(|_| {
                "set WRIT_TOKEN or give --token-file (tokens are never taken as flag values)"
                    .to_string()
            })?,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Client {
            api: ApiClient::new(&args.addr, http, Credential::AdminToken(token.into())),
            runtime,
        })
    }

    /// Sends `request` to the route `E` and returns its answer, or the error as the CLI
    /// shows it ([`render`]).
    pub fn send<E: Endpoint>(&self, request: &E::Request) -> Result<E::Answer, String> {
        self.try_send::<E>(request, None).map_err(render)
    }

    /// [`Client::send`] for a slow operation: waits up to `timeout` instead of 30 seconds.
    pub fn send_within<E: Endpoint>(
        &self,
        request: &E::Request,
        timeout: std::time::Duration,
    ) -> Result<E::Answer, String> {
        self.try_send::<E>(request, Some(timeout)).map_err(render)
    }

    /// [`Client::send`] with the typed error, for a caller that acts on it.
    pub fn try_send<E: Endpoint>(
        &self,
        request: &E::Request,
        timeout: Option<std::time::Duration>,
    ) -> Result<E::Answer, ApiCallError> {
        self.runtime.block_on(async {
            match timeout {
                Some(t) => self.api.send_within::<E>(request, t).await,
                None => self.api.send::<E>(request).await,
            }
        })
    }
}

/// A failed call as the CLI shows it: `server refused (STATUS): MESSAGE` when the server
/// answered, the URL and the whole chain of causes when it could not be reached.
pub fn render(e: ApiCallError) -> String {
    match e {
        ApiCallError::Transport { url, source } => format!("{url}: {}", describe(&source)),
        ApiCallError::Refused {
            status, message, ..
        } => format!("server refused ({status}): {message}"),
        ApiCallError::Status {
            status, json: true, ..
        } => format!("server refused ({status}): no message"),
        ApiCallError::Status {
            url,
            status,
            json: false,
        } => format!(
            "{url}: HTTP {}, not JSON",
            writ_client::api::status_text(status)
        ),
        other => other.to_string(),
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Prints an answer for programs: its JSON, pretty, with keys in order of name (as the
/// server's own answers have always printed).
pub fn print_answer(answer: &impl Serialize) {
    match serde_json::to_value(answer) {
        Ok(value) => print_json(&value),
        Err(e) => eprintln!("writ: the answer could not be printed as JSON: {e}"),
    }
}

/// Prints a JSON answer for programs.
pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
