//! The gateway's configuration: a TOML file, checked whole before anything starts. Errors
//! name the file, line and column (TOML syntax and types) or the route and field (meaning).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a route authenticates callers. A route lists one or several; the first that the
/// request presents credentials for decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// An X.509-SVID as the TLS client certificate.
    Mtls,
    /// A JWT-SVID as a bearer token, whose audience is the route's function.
    Jwt,
    /// An HMAC-signed webhook (see [`Webhook`]).
    Webhook,
    /// An API key in the `x-api-key` header.
    ApiKey,
    /// An AWS SigV4 signature made with writ credentials (from writ's STS), as AWS checks
    /// a function URL with `AuthType: AWS_IAM` (see [`AwsIam`]).
    AwsIam,
}

impl AuthMethod {
    /// The name in configuration, events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Mtls => "mtls",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Webhook => "webhook",
            AuthMethod::ApiKey => "api-key",
            AuthMethod::AwsIam => "aws-iam",
        }
    }
}

/// Which webhook signature scheme a route checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookStyle {
    /// `X-Hub-Signature-256: sha256=<hex of HMAC-SHA256(key, body)>`.
    Github,
    /// `Stripe-Signature: t=<unix time>,v1=<hex of HMAC-SHA256(key, "t.body")>`, within a
    /// replay window.
    Stripe,
}

/// A route's webhook settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// The signature scheme.
    pub style: WebhookStyle,
    /// The secret in writ's store that holds the signing key (its AWSCURRENT value).
    pub secret: String,
    /// Stripe style: how far the signed time may be from now.
    #[serde(default = "default_tolerance", with = "duration")]
    pub tolerance: Duration,
}

fn default_tolerance() -> Duration {
    Duration::from_secs(300)
}

/// Requests per second with a burst, as a token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// How many may come at once.
    pub burst: u32,
}

/// A usage plan for API keys: a rate and a quota per key.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePlan {
    /// The rate limit per key.
    pub rate: Option<RateLimit>,
    /// The most requests per key in each `quota_period`.
    pub quota: Option<u64>,
    /// The quota's period (default one day). A shared quota's periods are aligned to the
    /// wall clock (they start at multiples of the period since the Unix epoch); a local
    /// one's start at the key's first request.
    #[serde(default = "default_quota_period", with = "duration")]
    pub quota_period: Duration,
    /// Whether the quota is counted through the server, together with every other
    /// gateway whose plan for the key says so, rather than by this gateway alone
    /// ([`crate::quota_lease`]). The gateway's token then needs `writ:LeaseQuota` on
    /// `writ:quotas`.
    #[serde(default)]
    pub shared: bool,
    /// For a shared quota: how many admissions the gateway leases from the server at a
    /// time (default a hundredth of the quota, 1 to 1000). Larger leases mean fewer calls
    /// to the server, and more of the quota held unused by gateways that go quiet.
    #[serde(default)]
    pub lease: Option<u64>,
}

fn default_quota_period() -> Duration {
    Duration::from_secs(86_400)
}

/// An API key: its id and the SHA-256 of its secret part, never the key itself.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// The id (the `ID` in `writ.apikey.ID.SECRET`).
    pub id: String,
    /// `sha256:<hex>` of the secret part, as `writ gateway apikey create` prints it.
    pub hash: String,
    /// The usage plan's name.
    pub plan: String,
    /// The routes (by name) the key may call; it is refused on every other route.
    pub routes: Vec<String>,
}

/// Cross-origin settings of a route.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// Origins allowed to call (`*` for any, which cannot go with credentials).
    pub allow_origins: Vec<String>,
    /// Methods allowed (default GET, POST).
    #[serde(default = "default_cors_methods")]
    pub allow_methods: Vec<String>,
    /// Request headers allowed.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Whether credentials may be sent.
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long a preflight answer may be cached, in seconds.
    #[serde(default = "default_max_age")]
    pub max_age: u64,
}

fn default_cors_methods() -> Vec<String> {
    vec!["GET".into(), "POST".into()]
}

fn default_max_age() -> u64 {
    600
}

/// One route: requests for a host and path prefix go to one function's upstream.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// A name for logs, events and metrics.
    pub name: String,
    /// The destination function: intentions name it, and JWT-SVIDs must be for it.
    pub function: String,
    /// Only requests for this host (the `Host` header, without port); any host if unset.
    #[serde(default)]
    pub host: Option<String>,
    /// Requests whose path starts with this; the longest matching prefix wins.
    #[serde(default = "default_prefix")]
    pub path_prefix: String,
    /// The upstream, `http://HOST[:PORT][/PATH]` or `https://HOST[:PORT][/PATH]`; a route
    /// gives this or `lambda`.
    #[serde(default)]
    pub upstream: Option<String>,
    /// An AWS Lambda function invoked with the Invoke API instead of an HTTP upstream.
    #[serde(default)]
    pub lambda: Option<toml::Spanned<Lambda>>,
    /// For an `https://` upstream (or Lambda endpoint): a PEM file of the CA certificates
    /// its certificate must chain to, instead of the system's roots.
    #[serde(default)]
    pub upstream_ca: Option<PathBuf>,
    /// How callers authenticate; empty only with `public = true`.
    #[serde(default)]
    pub auth: Vec<AuthMethod>,
    /// Lets unauthenticated requests through. `writ lint` flags it.
    #[serde(default)]
    pub public: bool,
    /// The largest request body, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body: usize,
    /// How long the upstream may take to begin its answer, and then to send each next
    /// piece of the answer's body.
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// A JSON Schema file that request bodies must satisfy.
    #[serde(default)]
    pub schema: Option<PathBuf>,
    /// A rate limit for the route as a whole.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// CORS.
    #[serde(default)]
    pub cors: Option<Cors>,
    /// Webhook signature checking, for `auth = ["webhook"]`.
    #[serde(default)]
    pub webhook: Option<Webhook>,
    /// Accepts JWT-SVIDs whose `aud` names other audiences besides this route's function.
    /// Off by default: such a token is refused, because every other audience it names
    /// received it and could replay it here. Only with `auth` including `jwt`.
    #[serde(default)]
    pub allow_multi_audience: bool,
    /// The SigV4 scope `auth = ["aws-iam"]` requires (service `lambda` and any region when
    /// absent). Only with `auth` including `aws-iam`.
    #[serde(default)]
    pub aws_iam: Option<AwsIam>,
}

/// What a route taking `aws-iam` checks of a SigV4 signature besides the signature itself:
/// `aws_iam = { service = "lambda", region = "us-east-1" }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AwsIam {
    /// The service the credential scope must name: `lambda` by default, as function URLs
    /// with `AuthType: AWS_IAM` use (`awscurl --service lambda`).
    #[serde(default = "default_aws_service")]
    pub service: String,
    /// The region the credential scope must name; any region when absent.
    #[serde(default)]
    pub region: Option<String>,
}

impl Default for AwsIam {
    fn default() -> Self {
        AwsIam {
            service: default_aws_service(),
            region: None,
        }
    }
}

fn default_aws_service() -> String {
    "lambda".into()
}

/// A route's Lambda function: `lambda = { function = "orders", region = "us-east-1" }`.
/// Strings keep their place in the file, so that a mistake is reported at its line and
/// column.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Lambda {
    /// The function's name (`orders`) or ARN
    /// (`arn:aws:lambda:us-east-1:123456789012:function:orders`).
    pub function: toml::Spanned<String>,
    /// The region (`us-east-1`); by default `AWS_REGION`, else `AWS_DEFAULT_REGION`, as the
    /// gateway starts.
    #[serde(default)]
    pub region: Option<toml::Spanned<String>>,
    /// Where the Invoke API is: by default `https://lambda.REGION.amazonaws.com`. Plain
    /// `http://` only to a loopback address (a local Lambda host such as `writ lambda`).
    #[serde(default)]
    pub endpoint: Option<toml::Spanned<String>>,
    /// A version or alias to invoke (`live`, `7`, `$LATEST`).
    #[serde(default)]
    pub qualifier: Option<toml::Spanned<String>>,
}

impl Lambda {
    /// The Invoke API's base URL for `region`: the configured endpoint, or AWS's.
    pub fn endpoint_url(&self, region: &str) -> String {
        match &self.endpoint {
            Some(e) => e.get_ref().trim_end_matches('/').to_string(),
            None => format!("https://lambda.{region}.amazonaws.com"),
        }
    }
}

fn default_prefix() -> String {
    "/".into()
}

fn default_max_body() -> usize {
    1024 * 1024
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Where the control plane is.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerLink {
    /// `https://HOST:PORT` of `writ server`.
    pub addr: String,
    /// The trust bundle to verify the server with (its `DATA_DIR/ca.pem`).
    pub ca_file: PathBuf,
    /// A file holding an admin token whose policy allows `writ:ReadRevocations`,
    /// `writ:ReadIntentions`, `writ:PutAuditEvents` and `secrets:GetSecretValue` on the
    /// webhook secrets.
    pub token_file: PathBuf,
}

/// The gateway's own TLS certificate: from files (`cert` and `key`), or issued by writ
/// (`from_writ`), one or the other.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The certificate chain (PEM).
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM, PKCS#8 or SEC1).
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// The gateway logs in to writ (`[server] addr`, verified with `ca_file`) as
    /// `spiffe://TD/writ/gateway/NAME` and serves the X.509-SVID writ issues it, which
    /// carries the DNS names and IP addresses it was registered with, renewing it at half
    /// its life.
    #[serde(default)]
    pub from_writ: Option<FromWrit>,
}

/// How the gateway proves itself to writ for its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attest {
    /// A one-time join token (`writ gateway join-token NAME`), read from `token_file`.
    JoinToken,
    /// An OIDC ID token, read from `token_file` (which platforms refresh).
    Oidc,
    /// A GetCallerIdentity request signed with the AWS credentials in the environment.
    AwsIam,
}

/// `[tls] from_writ`: the gateway's identity in writ, and its evidence.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FromWrit {
    /// The gateway's name, as registered (`writ gateway register NAME`).
    pub name: String,
    /// How it proves itself.
    pub attest: Attest,
    /// The file holding the join token or the OIDC token (for `join-token` and `oidc`).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The writ server's id for `aws-iam` (its trust domain when absent).
    #[serde(default)]
    pub aws_iam_server_id: Option<String>,
    /// DNS names and IP addresses the gateway asks for; each must be one it was registered
    /// with, or it does not start. Absent: whatever it was registered with.
    #[serde(default)]
    pub names: Vec<String>,
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to listen (HTTPS).
    pub listen: SocketAddr,
    /// Where to serve `/metrics` (plain HTTP; keep it on loopback), if anywhere.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// The trust domain of callers' SVIDs.
    pub trust_domain: String,
    /// The control plane.
    pub server: ServerLink,
    /// The gateway's certificate.
    pub tls: Tls,
    /// Where the last known control-plane state is kept, for serving while the server is
    /// unreachable.
    pub state_dir: PathBuf,
    /// How long the gateway keeps enforcing its last known state without hearing from the
    /// server; after that it refuses authenticated requests (503).
    #[serde(default = "default_staleness", with = "duration")]
    pub max_staleness: Duration,
    /// The routes.
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    /// Usage plans for API keys, by name.
    #[serde(default, rename = "usage_plan")]
    pub usage_plans: BTreeMap<String, UsagePlan>,
    /// API keys, hashed.
    #[serde(default, rename = "api_key")]
    pub api_keys: Vec<ApiKey>,
    /// How many worker threads serve connections (nginx's `worker_processes`, Envoy's
    /// `--concurrency`): by default one per core. Fewer leave cores to other processes on
    /// a shared host.
    #[serde(default)]
    pub workers: Option<usize>,
    /// The most bytes of request bodies held, across all connections, before their
    /// requests are authenticated (webhook bodies, which the signature covers). Past it,
    /// such a request is answered 503 with `Retry-After`. At least every webhook route's
    /// `max_body`.
    #[serde(default = "default_unauthenticated_body_budget")]
    pub unauthenticated_body_budget: usize,
    /// The most connections open at once from one client (an IPv4 address or an IPv6
    /// /64); more are closed as they are accepted. 0 for no limit.
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
}

fn default_unauthenticated_body_budget() -> usize {
    64 * 1024 * 1024
}

fn default_max_connections_per_client() -> usize {
    256
}

/// The most worker threads a configuration may ask for.
pub const MAX_WORKERS: usize = 1024;

impl Config {
    /// How many worker threads serve connections: `workers`, or one per core.
    pub fn worker_count(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
    }
}

fn default_staleness() -> Duration {
    Duration::from_secs(300)
}

/// Durations written as `90s`, `10m`, `1h`, `7d` (or a number of seconds).
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a duration as [`super::parse_duration`] reads it, in the largest unit that
    /// holds it exactly (`1d`, `90s`, `1500ms`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => super::parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Writes a duration as [`parse_duration`] reads it, in the largest unit that holds it
/// exactly; below a millisecond is dropped (the file cannot say it).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (per, unit) in [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ] {
        if ms != 0 && ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// Writes the configuration in the file's format (TOML): every setting, defaults filled
/// and paths as resolved, so that reading the text back gives the same configuration. It
/// holds nothing secret: API keys are only hashes, and the token is named by its file.
pub fn to_toml(config: &Config) -> Result<String, String> {
    toml::to_string(config).map_err(|e| format!("the configuration cannot be written as TOML: {e}"))
}

/// The first setting, other than the routes, usage plans and API keys, that differs
/// between `old` and `new`, by its name in the file: what a reload cannot change
/// without a restart. `None` when only those three differ.
pub fn fixed_setting_changed(old: &Config, new: &Config) -> Result<Option<String>, String> {
    let fixed = |c: &Config| -> Result<toml::Table, String> {
        let mut c = c.clone();
        c.routes.clear();
        c.usage_plans.clear();
        c.api_keys.clear();
        toml::Table::try_from(&c).map_err(|e| format!("the configuration cannot be compared: {e}"))
    };
    let (old, new) = (fixed(old)?, fixed(new)?);
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    Ok(names
        .into_iter()
        .find(|name| old.get(*name) != new.get(*name))
        .cloned())
}

/// Parses `<digits><unit>` with unit `ms`, `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?}: write a number and a unit, such as 500ms, 30s, 5m or 1h");
    let at = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: u64 = text[..at].parse().map_err(|_| bad())?;
    let per_ms = match &text[at..] {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    Ok(Duration::from_millis(
        n.checked_mul(per_ms).ok_or_else(bad)?,
    ))
}

/// Reads and checks a configuration file. Relative paths in it are taken from the file's
/// directory.
pub fn load(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, &path.display().to_string(), base)
}

/// Parses and checks configuration text; `shown` names it in errors.
pub fn parse(text: &str, shown: &str, base: &Path) -> Result<Config, String> {
    let mut config: Config = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("{shown}:{line}:{col}")
            })
            .unwrap_or_else(|| shown.to_string());
        format!("{at}: {}", e.message())
    })?;
    let resolve = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    resolve(&mut config.server.ca_file);
    resolve(&mut config.server.token_file);
    if let Some(p) = &mut config.tls.cert {
        resolve(p);
    }
    if let Some(p) = &mut config.tls.key {
        resolve(p);
    }
    if let Some(p) = config
        .tls
        .from_writ
        .as_mut()
        .and_then(|f| f.token_file.as_mut())
    {
        resolve(p);
    }
    resolve(&mut config.state_dir);
    for r in &mut config.routes {
        if let Some(s) = &mut r.schema {
            resolve(s);
        }
        if let Some(ca) = &mut r.upstream_ca {
            resolve(ca);
        }
    }
    check(&config).map_err(|e| format!("{shown}: {e}"))?;
    check_lambdas(&config, text, shown)?;
    Ok(config)
}

/// The gateway's certificate comes from files (`cert` and `key`) or from writ
/// (`from_writ`), and each way has what it needs.
fn check_tls(tls: &Tls, trust_domain: &str) -> Result<(), String> {
    match (&tls.cert, &tls.key, &tls.from_writ) {
        (Some(_), Some(_), None) => Ok(()),
        (None, None, Some(f)) => {
            writ_identity::SpiffeId::for_gateway(
                &writ_identity::TrustDomain::new(trust_domain).map_err(|e| e.to_string())?,
                &f.name,
            )
            .map_err(|e| format!("tls.from_writ.name: {e}"))?;
            match (f.attest, &f.token_file) {
                (Attest::JoinToken | Attest::Oidc, None) => Err(
                    "tls.from_writ.token_file: join-token and oidc read their token from a file"
                        .into(),
                ),
                (Attest::AwsIam, Some(_)) => Err(
                    "tls.from_writ.token_file: aws-iam signs with the environment's AWS credentials; give no token_file"
                        .into(),
                ),
                _ => Ok(()),
            }
        }
        (_, _, Some(_)) => Err(
            "tls: give either cert and key, or from_writ (the certificate writ issues), not both"
                .into(),
        ),
        _ => Err(
            "tls: give cert and key (PEM files), or from_writ = { name = \"NAME\", attest = \"join-token\", token_file = \"...\" } to serve the certificate writ issues"
                .into(),
        ),
    }
}

/// `file:line:col` of a byte offset in the file's text.
fn place(text: &str, shown: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{shown}:{line}:{col}")
}

/// Whether `host` (from a URL, IPv6 bracketed or not) is a loopback address or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `name` is a Lambda function name (1 to 64 letters, digits, `-`, `_`) or a
/// function ARN (`arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME`).
pub fn is_lambda_function(name: &str) -> bool {
    let plain = |n: &str| {
        (1..=64).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    match name.strip_prefix("arn:") {
        None => plain(name),
        Some(rest) => {
            let parts: Vec<&str> = rest.split(':').collect();
            parts.len() == 6
                && !parts[0].is_empty()
                && parts[1] == "lambda"
                && is_region(parts[2])
                && parts[3].len() == 12
                && parts[3].bytes().all(|b| b.is_ascii_digit())
                && parts[4] == "function"
                && plain(parts[5])
        }
    }
}

/// Whether `region` looks like an AWS region (`us-east-1`): lower-case letters, digits, `-`.
pub fn is_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `q` is a Lambda qualifier: a version (`7`, `$LATEST`) or an alias (1 to 128
/// letters, digits, `-`, `_`).
pub fn is_qualifier(q: &str) -> bool {
    q == "$LATEST"
        || ((1..=128).contains(&q.len())
            && q.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// Checks each route's `lambda` table, naming the place in the file of what is wrong.
fn check_lambdas(config: &Config, text: &str, shown: &str) -> Result<(), String> {
    for (i, r) in config.routes.iter().enumerate() {
        let at = format!("route[{i}] ({:?})", r.name);
        let Some(lambda) = &r.lambda else { continue };
        let table = place(text, shown, lambda.span().start);
        let l = lambda.get_ref();
        let f = &l.function;
        if !is_lambda_function(f.get_ref()) {
            return Err(format!(
                "{}: {at}.lambda.function: {:?}: write the function's name (letters, digits, - and _, at most 64) or its ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)",
                place(text, shown, f.span().start),
                f.get_ref()
            ));
        }
        if let Some(region) = &l.region
            && !is_region(region.get_ref())
        {
            return Err(format!(
                "{}: {at}.lambda.region: {:?}: write a region such as us-east-1",
                place(text, shown, region.span().start),
                region.get_ref()
            ));
        }
        if let Some(q) = &l.qualifier
            && !is_qualifier(q.get_ref())
        {
            return Err(format!(
                "{}: {at}.lambda.qualifier: {:?}: write a version (7, $LATEST) or an alias (letters, digits, - and _)",
                place(text, shown, q.span().start),
                q.get_ref()
            ));
        }
        if let Some(e) = &l.endpoint {
            let here = place(text, shown, e.span().start);
            let uri = e
                .get_ref()
                .parse::<hyper::Uri>()
                .map_err(|err| format!("{here}: {at}.lambda.endpoint: {:?}: {err}", e.get_ref()))?;
            let host = uri.host().unwrap_or_default();
            if host.is_empty() {
                return Err(format!(
                    "{here}: {at}.lambda.endpoint: {:?}: write https://HOST[:PORT], or http://127.0.0.1:PORT for a local Lambda host",
                    e.get_ref()
                ));
            }
            if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
                return Err(format!(
                    "{here}: {at}.lambda.endpoint: {:?}: give the endpoint without a path or query",
                    e.get_ref()
                ));
            }
            match uri.scheme_str() {
                Some("https") => {}
                Some("http") if is_loopback_host(host) => {}
                Some("http") => {
                    return Err(format!(
                        "{here}: {at}.lambda.endpoint: {:?}: plain http:// only to a loopback address (signed requests and the function's answers would cross the network in the clear); write https://",
                        e.get_ref()
                    ));
                }
                _ => {
                    return Err(format!(
                        "{here}: {at}.lambda.endpoint: {:?}: write https://HOST[:PORT], or http://127.0.0.1:PORT for a local Lambda host",
                        e.get_ref()
                    ));
                }
            }
            if r.upstream_ca.is_some() && uri.scheme_str() == Some("http") {
                return Err(format!(
                    "{here}: {at}.upstream_ca: applies to https:// endpoints; remove it, or write https://"
                ));
            }
        }
        if r.upstream.is_some() {
            return Err(format!("{table}: {at}: give upstream or lambda, not both"));
        }
    }
    Ok(())
}

/// Checks an HTTP(S) upstream URL.
fn check_upstream(at: &str, url: &str, has_ca: bool) -> Result<(), String> {
    let upstream = url
        .parse::<hyper::Uri>()
        .map_err(|e| format!("{at}.upstream: {url:?}: {e}"))?;
    let https = match upstream.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            return Err(format!(
                "{at}.upstream: {url:?}: write http://HOST:PORT or https://HOST:PORT"
            ));
        }
    };
    if upstream.host().is_none_or(str::is_empty) {
        return Err(format!("{at}.upstream: {url:?}: no host"));
    }
    if has_ca && !https {
        return Err(format!(
            "{at}.upstream_ca: applies to https:// upstreams; remove it, or write https://"
        ));
    }
    Ok(())
}

fn check(config: &Config) -> Result<(), String> {
    writ_identity::TrustDomain::new(&config.trust_domain)
        .map_err(|e| format!("trust_domain: {e}"))?;
    check_tls(&config.tls, &config.trust_domain)?;
    if config.routes.is_empty() {
        return Err("no [[route]]: the gateway would refuse everything".into());
    }
    if let Some(n) = config.workers
        && !(1..=MAX_WORKERS).contains(&n)
    {
        return Err(format!("workers: {n}: must be 1 to {MAX_WORKERS}"));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, r) in config.routes.iter().enumerate() {
        let at = format!("route[{i}] ({:?})", r.name);
        if !names.insert(r.name.as_str()) {
            return Err(format!("{at}.name: used by another route"));
        }
        writ_identity::SpiffeId::for_function(
            &writ_identity::TrustDomain::new(&config.trust_domain).map_err(|e| e.to_string())?,
            &r.function,
        )
        .map_err(|e| format!("{at}.function: {e}"))?;
        if !r.path_prefix.starts_with('/') {
            return Err(format!("{at}.path_prefix: must start with /"));
        }
        match (&r.upstream, &r.lambda) {
            (None, None) => {
                return Err(format!(
                    "{at}: give upstream = \"http(s)://HOST:PORT\" or lambda = {{ function = \"NAME\", region = \"REGION\" }}"
                ));
            }
            (Some(upstream), None) => check_upstream(&at, upstream, r.upstream_ca.is_some())?,
            // Checked with their place in the file.
            (_, Some(_)) => {}
        }
        match (r.public, r.auth.is_empty()) {
            (true, false) => {
                return Err(format!(
                    "{at}: public = true lets anyone through; remove auth, or public"
                ));
            }
            (false, true) => {
                return Err(format!(
                    "{at}.auth: give one or more of mtls, jwt, webhook, api-key, aws-iam (or public = true)"
                ));
            }
            _ => {}
        }
        if r.auth.contains(&AuthMethod::Webhook) != r.webhook.is_some() {
            return Err(format!(
                "{at}: auth webhook and a [route.webhook] table go together"
            ));
        }
        if r.auth.contains(&AuthMethod::Webhook) && r.max_body > config.unauthenticated_body_budget
        {
            return Err(format!(
                "{at}.max_body: {} bytes is over unauthenticated_body_budget ({} bytes): a webhook's body is read before authentication, within that budget; raise the budget or lower max_body",
                r.max_body, config.unauthenticated_body_budget
            ));
        }
        if r.allow_multi_audience && !r.auth.contains(&AuthMethod::Jwt) {
            return Err(format!(
                "{at}.allow_multi_audience: applies to JWT-SVIDs; add jwt to auth, or remove it"
            ));
        }
        if r.aws_iam.is_some() && !r.auth.contains(&AuthMethod::AwsIam) {
            return Err(format!(
                "{at}.aws_iam: applies to SigV4-signed requests; add aws-iam to auth, or remove it"
            ));
        }
        if let Some(a) = &r.aws_iam {
            let valid = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            };
            if !valid(&a.service) {
                return Err(format!(
                    "{at}.aws_iam.service: {:?} is not a service name (lower-case letters, digits and -, as in the credential scope)",
                    a.service
                ));
            }
            if let Some(region) = &a.region
                && !valid(region)
            {
                return Err(format!(
                    "{at}.aws_iam.region: {region:?} is not a region name (lower-case letters, digits and -)"
                ));
            }
        }
        if r.auth.contains(&AuthMethod::AwsIam) && r.max_body > config.unauthenticated_body_budget {
            return Err(format!(
                "{at}.max_body: {} bytes is over unauthenticated_body_budget ({} bytes): a SigV4-signed body is read before authentication, within that budget; raise the budget or lower max_body",
                r.max_body, config.unauthenticated_body_budget
            ));
        }
        if let Some(c) = &r.cors
            && c.allow_credentials
            && c.allow_origins.iter().any(|o| o == "*")
        {
            return Err(format!(
                "{at}.cors: allow_origins = \"*\" with allow_credentials lets any site act as the user"
            ));
        }
        if let Some(rl) = &r.rate_limit
            && (rl.per_second.is_nan() || rl.per_second <= 0.0 || rl.burst == 0)
        {
            return Err(format!(
                "{at}.rate_limit: per_second and burst must be positive"
            ));
        }
    }
    for (name, plan) in &config.usage_plans {
        if let Some(rl) = &plan.rate
            && (rl.per_second.is_nan() || rl.per_second <= 0.0 || rl.burst == 0)
        {
            return Err(format!(
                "usage_plan.{name}.rate: per_second and burst must be positive"
            ));
        }
        if plan.shared && plan.quota.is_none() {
            return Err(format!(
                "usage_plan.{name}.shared: a shared plan needs a quota"
            ));
        }
        if let (Some(lease), Some(quota)) = (plan.lease, plan.quota)
            && (lease == 0 || lease > quota)
        {
            return Err(format!(
                "usage_plan.{name}.lease: from 1 to the quota ({quota}), got {lease}"
            ));
        }
        if plan.shared && plan.quota_period.subsec_nanos() != 0 {
            return Err(format!(
                "usage_plan.{name}.quota_period: a shared quota's period is whole seconds"
            ));
        }
        if plan.lease.is_some() && !plan.shared {
            return Err(format!(
                "usage_plan.{name}.lease: only a shared plan leases; set shared = true or remove it"
            ));
        }
        if plan.quota_period.is_zero() {
            return Err(format!(
                "usage_plan.{name}.quota_period: must be longer than zero"
            ));
        }
    }
    let mut ids = std::collections::BTreeSet::new();
    for (i, k) in config.api_keys.iter().enumerate() {
        if !ids.insert(k.id.as_str()) {
            return Err(format!("api_key[{i}] ({}).id: used by another key", k.id));
        }
        if k.routes.is_empty() {
            return Err(format!(
                "api_key[{i}] ({}).routes: name the routes the key may call",
                k.id
            ));
        }
        for r in &k.routes {
            match config.routes.iter().find(|route| &route.name == r) {
                None => return Err(format!("api_key[{i}] ({}).routes: no route {r:?}", k.id)),
                Some(route) if !route.auth.contains(&AuthMethod::ApiKey) => {
                    return Err(format!(
                        "api_key[{i}] ({}).routes: route {r:?} does not take API keys",
                        k.id
                    ));
                }
                Some(_) => {}
            }
        }
        if !config.usage_plans.contains_key(&k.plan) {
            return Err(format!(
                "api_key[{i}] ({}).plan: no usage plan {:?}",
                k.id, k.plan
            ));
        }
        if config.usage_plans[&k.plan].shared
            && (k.id.len() > 128
                || !k
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            return Err(format!(
                "api_key[{i}] ({}).id: a key of a shared plan is counted by the server by its id: 1 to 128 letters, digits, '-', '_' or '.'",
                k.id
            ));
        }
        let hex = k.hash.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "api_key[{i}] ({}).hash: write sha256:<64 hex digits>, as `writ gateway apikey create` prints it",
                k.id
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
listen = "127.0.0.1:8443"
trust_domain = "example.org"
state_dir = "state"
[server]
addr = "https://127.0.0.1:7443"
ca_file = "ca.pem"
token_file = "token"
[tls]
cert = "gw.pem"
key = "gw.key"
"#;

    fn with(route: &str) -> Result<Config, String> {
        parse(
            &format!("{BASE}{route}"),
            "gateway.toml",
            Path::new("/etc/writ"),
        )
    }

    #[test]
    fn a_route_parses_with_defaults_and_paths_resolve_from_the_file() {
        let c = with(
            r#"
[[route]]
name = "payments"
function = "payments"
path_prefix = "/charge"
upstream = "http://127.0.0.1:9001"
auth = ["mtls", "jwt"]
timeout = "5s"
"#,
        )
        .unwrap();
        let r = &c.routes[0];
        assert_eq!(r.auth, [AuthMethod::Mtls, AuthMethod::Jwt]);
        assert_eq!(r.timeout, Duration::from_secs(5));
        assert_eq!(r.max_body, 1024 * 1024);
        assert!(
            !r.allow_multi_audience,
            "single-audience JWT-SVIDs by default"
        );
        assert_eq!(c.server.ca_file, Path::new("/etc/writ/ca.pem"));
        assert_eq!(c.max_staleness, Duration::from_secs(300));
        assert_eq!(c.unauthenticated_body_budget, 64 * 1024 * 1024);
        assert_eq!(c.max_connections_per_client, 256);
    }

    #[test]
    fn mistakes_are_named_with_where_they_are() {
        let e = with("[[route]]\nname = 7\n").unwrap_err();
        assert!(e.starts_with("gateway.toml:13:8:"), "{e}");
        for (route, expect) in [
            (
                "name='a'\nfunction='f'\nupstream='http://h:1'\n",
                "route[0] (\"a\").auth",
            ),
            (
                "name='a'\nfunction='f'\nupstream='http://h:1'\npublic=true\nauth=['mtls']\n",
                "public = true lets anyone",
            ),
            (
                "name='a'\nfunction='f'\nupstream='ftp://h:1'\nauth=['mtls']\n",
                "route[0] (\"a\").upstream: \"ftp://h:1\": write http://HOST:PORT or https://HOST:PORT",
            ),
            (
                "name='a'\nfunction='f'\nupstream='h:1'\nauth=['mtls']\n",
                "route[0] (\"a\").upstream: \"h:1\": write http://",
            ),
            (
                "name='a'\nfunction='f'\nupstream='http://h:1'\nupstream_ca='ca.pem'\nauth=['mtls']\n",
                "route[0] (\"a\").upstream_ca: applies to https:// upstreams",
            ),
            (
                "name='a'\nfunction='f'\nupstream='http://h:1'\nauth=['webhook']\n",
                "go together",
            ),
            (
                "name='a'\nfunction='f'\nupstream='http://h:1'\nauth=['jwt']\n[route.cors]\nallow_origins=['*']\nallow_credentials=true\n",
                "any site",
            ),
            (
                "name='a'\nfunction='no/slash'\nupstream='http://h:1'\nauth=['jwt']\n",
                ".function",
            ),
            (
                "name='a'\nfunction='f'\nupstream='http://h:1'\nauth=['magic']\n",
                "unknown variant",
            ),
            (
                "name='a'\nfunction='f'\nupstream='http://h:1'\nauth=['jwt']\ntimeout='soon'\n",
                "500ms",
            ),
            (
                "name='a'\nfunction='f'\nupstream='http://h:1'\nauth=['mtls']\nallow_multi_audience=true\n",
                "route[0] (\"a\").allow_multi_audience: applies to JWT-SVIDs",
            ),
            (
                "name='a'\nfunction='f'\nupstream='http://h:1'\nauth=['mtls']\naws_iam={service='lambda'}\n",
                "route[0] (\"a\").aws_iam: applies to SigV4-signed requests",
            ),
            (
                "name='a'\nfunction='f'\nupstream='http://h:1'\nauth=['aws-iam']\naws_iam={service='Lambda'}\n",
                "route[0] (\"a\").aws_iam.service: \"Lambda\" is not a service name",
            ),
            (
                "name='a'\nfunction='f'\nupstream='http://h:1'\nauth=['aws-iam']\naws_iam={region='eu west'}\n",
                "route[0] (\"a\").aws_iam.region",
            ),
            (
                "name='a'\nfunction='f'\nupstream='http://h:1'\nauth=['aws-iam']\nmax_body=999999999999\n",
                "route[0] (\"a\").max_body: 999999999999 bytes is over unauthenticated_body_budget",
            ),
        ] {
            let e = with(&format!("[[route]]\n{route}")).unwrap_err();
            assert!(e.contains(expect), "{route}: {e}");
        }
        assert!(with("").unwrap_err().contains("no [[route]]"));
    }

    #[test]
    fn https_upstreams_take_a_ca_file_from_the_files_directory() {
        let c = with(
            "[[route]]\nname='a'\nfunction='f'\nupstream='https://fn.example.org/base'\nupstream_ca='certs/upstream-ca.pem'\nauth=['mtls']\n[[route]]\nname='b'\nfunction='f'\npath_prefix='/b'\nupstream='https://127.0.0.1:8443'\nauth=['mtls']\n",
        )
        .unwrap();
        assert_eq!(
            c.routes[0].upstream.as_deref(),
            Some("https://fn.example.org/base")
        );
        assert_eq!(
            c.routes[0].upstream_ca.as_deref(),
            Some(Path::new("/etc/writ/certs/upstream-ca.pem"))
        );
        // Without a CA file: the system's roots.
        assert_eq!(c.routes[1].upstream_ca, None);
        // The file's line and column for a setting of the wrong type.
        let e = with(
            "[[route]]\nname='a'\nfunction='f'\nupstream='https://h'\nupstream_ca=7\nauth=['mtls']\n",
        )
        .unwrap_err();
        assert!(e.starts_with("gateway.toml:16:13:"), "{e}");
    }

    #[test]
    fn workers_default_to_the_cores_and_take_one_to_the_limit() {
        let route = "[[route]]\nname='a'\nfunction='f'\nupstream='http://h:1'\nauth=['mtls']\n";
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        assert_eq!(with(route).unwrap().worker_count(), cores);
        let parse_top = |top: &str| {
            parse(
                &format!("{top}\n{BASE}{route}"),
                "gateway.toml",
                Path::new("/etc/writ"),
            )
        };
        assert_eq!(parse_top("workers = 3").unwrap().worker_count(), 3);
        assert_eq!(parse_top("workers = 1024").unwrap().worker_count(), 1024);
        for bad in ["workers = 0", "workers = 1025"] {
            let e = parse_top(bad).unwrap_err();
            assert!(
                e.contains("workers:") && e.contains("1 to 1024"),
                "{bad}: {e}"
            );
        }
        let e = parse_top("workers = -1").unwrap_err();
        assert!(e.starts_with("gateway.toml:1:11:"), "{e}");
    }

    #[test]
    fn the_budget_for_unauthenticated_bodies_holds_every_webhook_body() {
        let hook = "[[route]]\nname='gh'\nfunction='f'\nupstream='http://h:1'\nauth=['webhook']\nmax_body=2048\n[route.webhook]\nstyle='github'\nsecret='s'\n";
        let parse_top = |top: &str| {
            parse(
                &format!("{top}\n{BASE}{hook}"),
                "gateway.toml",
                Path::new("/etc/writ"),
            )
        };
        let c = parse_top("unauthenticated_body_budget = 2048\nmax_connections_per_client = 0")
            .unwrap();
        assert_eq!(c.unauthenticated_body_budget, 2048);
        assert_eq!(c.max_connections_per_client, 0);
        let e = parse_top("unauthenticated_body_budget = 2047").unwrap_err();
        assert!(
            e.contains("route[0] (\"gh\").max_body: 2048 bytes is over unauthenticated_body_budget (2047 bytes)"),
            "{e}"
        );
    }

    #[test]
    fn an_aws_iam_route_defaults_to_the_lambda_service_in_any_region() {
        let c = with(
            "[[route]]\nname='a'\nfunction='f'\nupstream='http://h:1'\nauth=['aws-iam', 'mtls']\n",
        )
        .unwrap();
        let r = &c.routes[0];
        assert_eq!(r.auth, [AuthMethod::AwsIam, AuthMethod::Mtls]);
        assert!(r.aws_iam.is_none());
        let d = AwsIam::default();
        assert_eq!((d.service.as_str(), d.region), ("lambda", None));
        let c = with(
            "[[route]]\nname='a'\nfunction='f'\nupstream='http://h:1'\nauth=['aws-iam']\naws_iam={service='execute-api', region='eu-west-1'}\n",
        )
        .unwrap();
        let a = c.routes[0].aws_iam.as_ref().unwrap();
        assert_eq!(
            (a.service.as_str(), a.region.as_deref()),
            ("execute-api", Some("eu-west-1"))
        );
    }

    #[test]
    fn a_lambda_route_reads_beside_an_upstream_and_its_mistakes_have_a_place() {
        let c = with(
            "[[route]]\nname='orders'\nfunction='orders'\nauth=['mtls']\nlambda = { function = 'orders', region = 'us-east-1', qualifier = 'live' }\n[[route]]\nname='local'\nfunction='f'\npath_prefix='/l'\nauth=['mtls']\nlambda = { function = 'arn:aws:lambda:eu-west-1:123456789012:function:f', endpoint = 'http://127.0.0.1:9001' }\n",
        )
        .unwrap();
        let l = c.routes[0].lambda.as_ref().unwrap().get_ref();
        assert_eq!(c.routes[0].upstream, None);
        assert_eq!(l.function.get_ref(), "orders");
        assert_eq!(l.qualifier.as_ref().unwrap().get_ref(), "live");
        assert_eq!(
            l.endpoint_url("us-east-1"),
            "https://lambda.us-east-1.amazonaws.com"
        );
        let l = c.routes[1].lambda.as_ref().unwrap().get_ref();
        assert_eq!(l.endpoint_url("eu-west-1"), "http://127.0.0.1:9001");
        // BASE is 12 lines; the route starts on line 13, its lambda on line 16.
        for (lambda, expect) in [
            (
                "lambda = { function = 'no/slash' }",
                "gateway.toml:16:23: route[0] (\"a\").lambda.function: \"no/slash\"",
            ),
            (
                "lambda = { function = 'f', region = 'US East' }",
                "gateway.toml:16:37: route[0] (\"a\").lambda.region",
            ),
            (
                "lambda = { function = 'f', qualifier = 'a b' }",
                "gateway.toml:16:40: route[0] (\"a\").lambda.qualifier",
            ),
            (
                "lambda = { function = 'f', endpoint = 'http://lambda.example.org' }",
                "gateway.toml:16:39: route[0] (\"a\").lambda.endpoint: \"http://lambda.example.org\": plain http:// only to a loopback address",
            ),
            (
                "lambda = { function = 'f', endpoint = 'https://h/path' }",
                "without a path",
            ),
            (
                "lambda = { function = 'f', endpoint = 'ftp://h' }",
                "write https://HOST",
            ),
            (
                "lambda = { function = 'f', region = 'us-east-1' }\nupstream = 'http://h:1'",
                "gateway.toml:16:10: route[0] (\"a\"): give upstream or lambda, not both",
            ),
            ("lambda = { function = 'f', fn = 'x' }", "gateway.toml:16:"),
        ] {
            let e = with(&format!(
                "[[route]]\nname='a'\nfunction='f'\nauth=['mtls']\n{lambda}\n"
            ))
            .unwrap_err();
            assert!(e.contains(expect), "{lambda}: {e}");
        }
        let e = with("[[route]]\nname='a'\nfunction='f'\nauth=['mtls']\n").unwrap_err();
        assert!(e.contains("route[0] (\"a\"): give upstream"), "{e}");
        for ok in [
            "http://localhost:9001",
            "http://[::1]:9001",
            "https://lambda.example.org",
        ] {
            with(&format!(
                "[[route]]\nname='a'\nfunction='f'\nauth=['mtls']\nlambda = {{ function = 'f', endpoint = '{ok}' }}\n"
            ))
            .unwrap();
        }
    }

    #[test]
    fn the_certificate_comes_from_files_or_from_writ() {
        let route = "[[route]]\nname='a'\nfunction='f'\nupstream='http://h:1'\nauth=['mtls']\n";
        let head = BASE.split("[tls]").next().unwrap();
        let parse_tls = |tls: &str| {
            parse(
                &format!("{head}[tls]\n{tls}\n{route}"),
                "gateway.toml",
                Path::new("/etc/writ"),
            )
        };
        let c = parse_tls(
            "from_writ = { name = 'edge', attest = 'join-token', token_file = 'edge.token', names = ['gw.internal'] }",
        )
        .unwrap();
        let from = c.tls.from_writ.unwrap();
        assert_eq!(from.attest, Attest::JoinToken);
        assert_eq!(from.token_file.unwrap(), Path::new("/etc/writ/edge.token"));
        assert_eq!(from.names, ["gw.internal"]);
        assert!(parse_tls("from_writ = { name = 'edge', attest = 'aws-iam' }").is_ok());
        for (tls, want) in [
            ("", "tls: give cert and key"),
            ("cert = 'a.pem'", "tls: give cert and key"),
            (
                "cert = 'a.pem'\nkey = 'a.key'\nfrom_writ = { name = 'edge', attest = 'aws-iam' }",
                "not both",
            ),
            (
                "from_writ = { name = 'edge', attest = 'join-token' }",
                "tls.from_writ.token_file",
            ),
            (
                "from_writ = { name = 'edge', attest = 'aws-iam', token_file = 't' }",
                "tls.from_writ.token_file",
            ),
            (
                "from_writ = { name = 'a/b', attest = 'oidc', token_file = 't' }",
                "tls.from_writ.name",
            ),
            (
                "from_writ = { name = 'edge', attest = 'magic' }",
                "unknown variant",
            ),
        ] {
            let e = parse_tls(tls).unwrap_err();
            assert!(e.contains(want), "{tls}: {e}");
        }
    }

    #[test]
    fn a_shared_plan_needs_a_quota_of_whole_seconds_and_a_lease_within_it() {
        const KEY: &str = r#"
[[route]]
name = "partner"
function = "partner"
upstream = "http://127.0.0.1:9001"
auth = ["api-key"]
[[api_key]]
id = "partner-a"
hash = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
plan = "p"
routes = ["partner"]
"#;
        let c = with(&format!(
            "{KEY}[usage_plan.p]\nquota = 500\nquota_period = \"1m\"\nshared = true\n"
        ))
        .unwrap();
        let plan = &c.usage_plans["p"];
        assert!(plan.shared);
        assert_eq!(plan.lease, None);
        assert!(
            !with(&format!("{KEY}[usage_plan.p]\nquota = 500\n"))
                .unwrap()
                .usage_plans["p"]
                .shared
        );
        for (plan, expect) in [
            (
                "shared = true\n",
                "usage_plan.p.shared: a shared plan needs a quota",
            ),
            (
                "quota = 5\nshared = true\nlease = 6\n",
                "usage_plan.p.lease: from 1 to the quota (5), got 6",
            ),
            (
                "quota = 5\nshared = true\nlease = 0\n",
                "usage_plan.p.lease: from 1 to the quota (5), got 0",
            ),
            (
                "quota = 5\nlease = 2\n",
                "usage_plan.p.lease: only a shared plan leases",
            ),
            (
                "quota = 5\nshared = true\nquota_period = \"1500ms\"\n",
                "usage_plan.p.quota_period: a shared quota's period is whole seconds",
            ),
        ] {
            let e = with(&format!("{KEY}[usage_plan.p]\n{plan}")).unwrap_err();
            assert!(e.contains(expect), "{plan}: {e}");
        }
        let e = with(&format!(
            "{}[usage_plan.p]\nquota = 5\nshared = true\n",
            KEY.replace("partner-a", "partner a")
        ))
        .unwrap_err();
        assert!(
            e.contains("api_key[0] (partner a).id: a key of a shared plan"),
            "{e}"
        );
    }

    #[test]
    fn the_printed_configuration_reads_back_as_the_same_configuration() {
        let text = format!(
            r#"metrics_listen = "127.0.0.1:9090"
max_staleness = "90s"
workers = 2
{BASE}
[[route]]
name = "payments"
function = "payments"
path_prefix = "/pay"
upstream = "https://127.0.0.1:9001/v2"
upstream_ca = "ledger-ca.pem"
auth = ["mtls", "jwt"]
timeout = "1500ms"
schema = "charge.json"
rate_limit = {{ per_second = 2.5, burst = 4 }}
allow_multi_audience = true
cors = {{ allow_origins = ["https://shop.example.org"], allow_methods = ["POST"] }}

[[route]]
name = "hooks"
function = "hooks"
path_prefix = "/hooks"
upstream = "http://127.0.0.1:9002"
auth = ["webhook"]
webhook = {{ style = "stripe", secret = "hooks/stripe", tolerance = "5m" }}

[[route]]
name = "orders"
function = "orders"
path_prefix = "/orders"
lambda = {{ function = "orders", region = "us-east-1", qualifier = "live" }}
auth = ["aws-iam", "api-key"]
aws_iam = {{ service = "lambda", region = "eu-west-1" }}

[usage_plan.basic]
rate = {{ per_second = 5.0, burst = 10 }}
quota = 1000
quota_period = "1d"
shared = true
lease = 10

[[api_key]]
id = "partner-a"
hash = "sha256:{hash}"
plan = "basic"
routes = ["orders"]
"#,
            hash = "ab".repeat(32)
        );
        let first = parse(&text, "gateway.toml", Path::new("/etc/writ")).unwrap();
        let printed = to_toml(&first).unwrap();
        // TOML, not Rust's Debug output.
        assert!(
            printed.starts_with("listen = \"127.0.0.1:8443\"\n"),
            "{printed}"
        );
        assert!(
            !printed.contains("Spanned") && !printed.contains("Config {"),
            "{printed}"
        );
        // Defaults filled, durations in the file's units, paths resolved.
        for line in [
            "max_staleness = \"90s\"",
            "timeout = \"1500ms\"",
            "quota_period = \"1d\"",
            "tolerance = \"5m\"",
            "ca_file = \"/etc/writ/ca.pem\"",
            "max_connections_per_client = 256",
            "shared = true",
        ] {
            assert!(printed.contains(line), "{line} in {printed}");
        }
        // Read from anywhere else, it is the same configuration, and prints the same.
        let again = parse(&printed, "printed.toml", Path::new("/elsewhere")).unwrap();
        assert_eq!(to_toml(&again).unwrap(), printed);
        assert_eq!(again.server.ca_file, Path::new("/etc/writ/ca.pem"));
        assert_eq!(again.routes[0].timeout, Duration::from_millis(1500));
        assert_eq!(
            again.routes[0].schema.as_deref(),
            Some(Path::new("/etc/writ/charge.json"))
        );
        assert_eq!(
            again.routes[2]
                .lambda
                .as_ref()
                .unwrap()
                .get_ref()
                .qualifier
                .as_ref()
                .unwrap()
                .get_ref(),
            "live"
        );
        assert_eq!(again.usage_plans, first.usage_plans);
        assert_eq!(again.max_staleness, Duration::from_secs(90));
        assert_eq!(again.workers, Some(2));
    }

    #[test]
    fn durations_are_written_in_the_largest_exact_unit() {
        for (d, text) in [
            (Duration::from_secs(86_400), "1d"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::ZERO, "0ms"),
        ] {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text).unwrap(), d);
        }
    }

    #[test]
    fn a_reload_may_change_routes_plans_and_keys_and_nothing_else() {
        let route =
            "[[route]]\nname = \"a\"\nfunction = \"a\"\nupstream = \"http://h:1\"\npublic = true\n";
        let old = with(route).unwrap();
        let more = with(&format!(
            "{route}{}[usage_plan.p]\nquota = 5\n",
            route.replace("\"a\"", "\"b\"")
        ))
        .unwrap();
        assert_eq!(fixed_setting_changed(&old, &more).unwrap(), None);
        let slower = parse(
            &format!("max_staleness = \"1m\"\n{BASE}{route}"),
            "gateway.toml",
            Path::new("/etc/writ"),
        )
        .unwrap();
        assert_eq!(
            fixed_setting_changed(&more, &slower).unwrap().as_deref(),
            Some("max_staleness")
        );
        let elsewhere =
            parse(&format!("{BASE}{route}"), "gateway.toml", Path::new("/srv")).unwrap();
        assert_eq!(
            fixed_setting_changed(&old, &elsewhere).unwrap().as_deref(),
            Some("server"),
            "the token and CA files moved with the directory"
        );
    }
}
