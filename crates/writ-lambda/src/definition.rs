//! Function definitions: what the host runs and who may invoke it, read from a SAM template
//! (`AWS::Serverless::Function` and `AWS::Lambda::Permission` resources) and a small TOML
//! config. No I/O: the caller reads the files and passes their text and names.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::yaml::{self, Node, Pos, Value};

/// The default timeout of a function, in seconds, as Lambda's.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 3;
/// The default memory size, in MB, as Lambda's.
pub const DEFAULT_MEMORY_MB: u64 = 128;
/// The most execution environments a function gets when it sets no reserved concurrency.
pub const DEFAULT_MAX_ENVIRONMENTS: usize = 4;
/// The longest timeout Lambda allows, in seconds.
pub const MAX_TIMEOUT_SECONDS: u64 = 900;

/// An error in a template or config, with the file and, when known, the line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    /// The file.
    pub file: String,
    /// Where in it.
    pub pos: Option<Pos>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}: {}", self.file, p.line, p.column, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for DefinitionError {}

/// One function the host runs.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDef {
    /// The function's name (`FunctionName`, else the template's logical id).
    pub name: String,
    /// `Handler`, passed to the runtime as `_HANDLER`.
    pub handler: String,
    /// `Runtime` (`python3.12`, `nodejs20.x`, `provided.al2023`, ...).
    pub runtime: String,
    /// The code directory: the runtime's working directory and `LAMBDA_TASK_ROOT`.
    pub code_dir: PathBuf,
    /// The environment variables of `Environment.Variables`.
    pub environment: BTreeMap<String, String>,
    /// `Timeout`, in seconds.
    pub timeout_seconds: u64,
    /// `MemorySize`, in MB.
    pub memory_mb: u64,
    /// The most execution environments at once: `ReservedConcurrentExecutions`, else
    /// [`DEFAULT_MAX_ENVIRONMENTS`].
    pub max_environments: usize,
    /// `Layers`, as written. The host does not mount layers; it says so at start.
    pub layers: Vec<String>,
    /// The command that starts the runtime, when the config gives one; else the host picks
    /// one from the runtime.
    pub command: Option<Vec<String>>,
    /// The statements of the function's resource policy (from `AWS::Lambda::Permission`
    /// resources and the config), with `Resource` filled in by [`resource_policy`].
    pub permissions: Vec<Json>,
    /// Whether the runtime gets the host's `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN` (config `pass_aws_credentials`); never by default.
    pub pass_aws_credentials: bool,
    /// External extensions (argv of each), started in every execution environment before
    /// the runtime, as Lambda starts `/opt/extensions/*` (config `extensions`).
    pub extensions: Vec<Vec<String>>,
}

impl FunctionDef {
    /// The function's ARN in `region` and `account`.
    pub fn arn(&self, region: &str, account: &str) -> String {
        function_arn(region, account, &self.name)
    }

    /// The function's resource policy as a JSON document, or `None` when no statement
    /// grants anything.
    pub fn resource_policy(&self, region: &str, account: &str) -> Option<Json> {
        if self.permissions.is_empty() {
            return None;
        }
        let arn = self.arn(region, account);
        let statements: Vec<Json> = self
            .permissions
            .iter()
            .map(|s| {
                let mut s = s.clone();
                if let Some(o) = s.as_object_mut() {
                    o.entry("Resource").or_insert_with(|| json!(arn));
                }
                s
            })
            .collect();
        Some(json!({"Version": "2012-10-17", "Statement": statements}))
    }
}

/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
pub fn function_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:function:{name}")
}

/// The host's settings from the config file, with defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The region in ARNs and `AWS_REGION` (default `us-east-1`).
    #[serde(default = "default_region")]
    pub region: String,
    /// The account id in ARNs (default `123456789012`).
    #[serde(default = "default_account")]
    pub account_id: String,
    /// The directory where failed asynchronous invocations are written, one JSON file each
    /// (default: `lambda-failures` under the data dir).
    #[serde(default)]
    pub on_failure_dir: Option<PathBuf>,
    /// The delays before the two retries of a failed asynchronous invocation, in seconds
    /// (default 60 and 120, as Lambda's).
    #[serde(default = "default_retry_delays")]
    pub retry_delays_seconds: Vec<f64>,
    /// The commands that start each runtime family.
    #[serde(default)]
    pub runtimes: Runtimes,
    /// Functions, or settings of the template's functions, by name.
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionConfig>,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            region: default_region(),
            account_id: default_account(),
            on_failure_dir: None,
            retry_delays_seconds: default_retry_delays(),
            runtimes: Runtimes::default(),
            functions: BTreeMap::new(),
        }
    }
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_account() -> String {
    "123456789012".into()
}
fn default_retry_delays() -> Vec<f64> {
    vec![60.0, 120.0]
}

/// The interpreters that run runtime interface clients.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtimes {
    /// The Python interpreter for `python3.*` functions, run as `PYTHON -m awslambdaric
    /// HANDLER` (default `python3`; it needs the `awslambdaric` package).
    #[serde(default = "default_python")]
    pub python: String,
    /// The command for `nodejs*` functions, run as `NODE HANDLER` (default
    /// `aws-lambda-ric`, from the npm package of that name).
    #[serde(default = "default_node")]
    pub node: String,
}

impl Default for Runtimes {
    fn default() -> Self {
        Runtimes {
            python: default_python(),
            node: default_node(),
        }
    }
}

fn default_python() -> String {
    "python3".into()
}
fn default_node() -> String {
    "aws-lambda-ric".into()
}

/// A function in the config: a whole definition, or settings that override the template's.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    /// `Handler`.
    pub handler: Option<String>,
    /// `Runtime`.
    pub runtime: Option<String>,
    /// `CodeUri`, relative to the config file.
    pub code_uri: Option<PathBuf>,
    /// The command that starts the runtime (argv), instead of the runtime's default.
    pub command: Option<Vec<String>>,
    /// `Timeout`, seconds.
    pub timeout: Option<u64>,
    /// `MemorySize`, MB.
    pub memory_size: Option<u64>,
    /// `ReservedConcurrentExecutions`.
    pub reserved_concurrent_executions: Option<usize>,
    /// More environment variables (they win over the template's).
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Resource policy statements (IAM JSON, `Resource` optional), added to the template's
    /// permissions.
    #[serde(default)]
    pub resource_policy: Vec<toml::Value>,
    /// Pass the host's AWS credentials to the runtime.
    #[serde(default)]
    pub pass_aws_credentials: bool,
    /// External extensions to start in each execution environment: one argv each.
    #[serde(default)]
    pub extensions: Vec<Vec<String>>,
}

/// Reads the host config (TOML). `file` names it in errors.
pub fn parse_config(file: &str, text: &str) -> Result<HostConfig, DefinitionError> {
    toml::from_str(text).map_err(|e| {
        let pos = e.span().map(|s| offset_pos(text, s.start));
        DefinitionError {
            file: file.into(),
            pos,
            message: e.message().to_string(),
        }
    })
}

fn offset_pos(text: &str, offset: usize) -> Pos {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Pos { line, column }
}

/// Reads the functions of a SAM template. `file` names it in errors; `dir` is where
/// relative `CodeUri`s start.
pub fn parse_template(
    file: &str,
    dir: &Path,
    text: &str,
) -> Result<Vec<FunctionDef>, DefinitionError> {
    let err = |pos: Pos, message: String| DefinitionError {
        file: file.into(),
        pos: Some(pos),
        message,
    };
    let doc = yaml::parse(text).map_err(|e| err(e.pos, e.message))?;
    let resources = doc
        .get("Resources")
        .and_then(Node::entries)
        .ok_or_else(|| err(doc.pos, "the template has no Resources mapping".into()))?;
    let globals = doc.get("Globals").and_then(|g| g.get("Function"));
    let mut functions = Vec::new();
    let mut logical_to_name = BTreeMap::new();
    for (id, resource) in resources {
        let Some(kind) = resource.get("Type").and_then(Node::as_str) else {
            continue;
        };
        if kind != "AWS::Serverless::Function" {
            continue;
        }
        let empty = Node {
            pos: resource.pos,
            value: Value::Map(Vec::new()),
        };
        let props = resource.get("Properties").unwrap_or(&empty);
        let prop = |name: &str| {
            props
                .get(name)
                .or_else(|| globals.and_then(|g| g.get(name)))
        };
        let string = |name: &str, required: bool| -> Result<Option<String>, DefinitionError> {
            match prop(name) {
                None if required => Err(err(
                    props.pos,
                    format!("Resources.{id}.Properties.{name} is required"),
                )),
                None => Ok(None),
                Some(n) => n.as_str().map(|s| Some(s.to_string())).ok_or_else(|| {
                    err(
                        n.pos,
                        format!(
                            "Resources.{id}.Properties.{name} must be a plain string here: the \
                             local host resolves no intrinsic functions; set it in --config"
                        ),
                    )
                }),
            }
        };
        let number = |name: &str| -> Result<Option<u64>, DefinitionError> {
            match prop(name) {
                None => Ok(None),
                Some(n) => n
                    .as_str()
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(Some)
                    .ok_or_else(|| {
                        err(
                            n.pos,
                            format!("Resources.{id}.Properties.{name} must be a whole number"),
                        )
                    }),
            }
        };
        let name = string("FunctionName", false)?.unwrap_or_else(|| id.clone());
        let handler = string("Handler", false)?.unwrap_or_default();
        let runtime = string("Runtime", false)?.unwrap_or_default();
        let code_uri = string("CodeUri", false)?.unwrap_or_else(|| ".".into());
        let mut environment = BTreeMap::new();
        for source in [globals, Some(props)].into_iter().flatten() {
            if let Some(vars) = source.get("Environment").and_then(|e| e.get("Variables")) {
                let entries = vars.entries().ok_or_else(|| {
                    err(
                        vars.pos,
                        format!("Resources.{id}: Environment.Variables must be a mapping"),
                    )
                })?;
                for (k, v) in entries {
                    let value = match &v.value {
                        Value::Scalar(s) => s.clone(),
                        Value::Null => String::new(),
                        _ => {
                            return Err(err(
                                v.pos,
                                format!(
                                    "Resources.{id}.Properties.Environment.Variables.{k} must be \
                                     a plain string: the local host resolves no intrinsic \
                                     functions; set it under [functions.{name}.environment] in \
                                     --config"
                                ),
                            ));
                        }
                    };
                    environment.insert(k.clone(), value);
                }
            }
        }
        let timeout_seconds = number("Timeout")?.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        if timeout_seconds == 0 || timeout_seconds > MAX_TIMEOUT_SECONDS {
            let pos = prop("Timeout").map_or(props.pos, |n| n.pos);
            return Err(err(
                pos,
                format!(
                    "Resources.{id}.Properties.Timeout must be 1 to {MAX_TIMEOUT_SECONDS} seconds"
                ),
            ));
        }
        let reserved = number("ReservedConcurrentExecutions")?;
        if reserved == Some(0) {
            let pos = prop("ReservedConcurrentExecutions").map_or(props.pos, |n| n.pos);
            return Err(err(
                pos,
                format!(
                    "Resources.{id}.Properties.ReservedConcurrentExecutions is 0, which throttles \
                     every invocation; the local host needs at least 1"
                ),
            ));
        }
        let layers = match prop("Layers") {
            Some(Node {
                value: Value::Seq(items),
                ..
            }) => items
                .iter()
                .map(|n| {
                    n.as_str()
                        .map_or_else(|| "(an intrinsic)".into(), str::to_string)
                })
                .collect(),
            _ => Vec::new(),
        };
        logical_to_name.insert(id.clone(), name.clone());
        functions.push(FunctionDef {
            name,
            handler,
            runtime,
            code_dir: dir.join(code_uri),
            environment,
            timeout_seconds,
            memory_mb: number("MemorySize")?.unwrap_or(DEFAULT_MEMORY_MB),
            max_environments: reserved.map_or(DEFAULT_MAX_ENVIRONMENTS, |r| r as usize),
            layers,
            command: None,
            permissions: Vec::new(),
            pass_aws_credentials: false,
            extensions: Vec::new(),
        });
    }
    for (id, resource) in resources {
        if resource.get("Type").and_then(Node::as_str) != Some("AWS::Lambda::Permission") {
            continue;
        }
        let props = resource.get("Properties").ok_or_else(|| {
            err(
                resource.pos,
                format!("Resources.{id}: a Permission needs Properties"),
            )
        })?;
        let field = |name: &str| -> Result<&Node, DefinitionError> {
            props.get(name).ok_or_else(|| {
                err(
                    props.pos,
                    format!("Resources.{id}.Properties.{name} is required"),
                )
            })
        };
        let target = field("FunctionName")?;
        let function = permission_target(target, &logical_to_name).ok_or_else(|| {
            err(
                target.pos,
                format!(
                    "Resources.{id}.Properties.FunctionName names no function of this template \
                     (write !Ref LogicalId, !GetAtt LogicalId.Arn or the function's name)"
                ),
            )
        })?;
        let plain = |name: &str| -> Result<Option<String>, DefinitionError> {
            match props.get(name) {
                None => Ok(None),
                Some(n) => n.as_str().map(|s| Some(s.to_string())).ok_or_else(|| {
                    err(
                        n.pos,
                        format!(
                            "Resources.{id}.Properties.{name} must be a plain string: the local \
                             host resolves no intrinsic functions"
                        ),
                    )
                }),
            }
        };
        let action = plain("Action")?.ok_or_else(|| {
            err(
                props.pos,
                format!("Resources.{id}.Properties.Action is required"),
            )
        })?;
        let principal = plain("Principal")?.ok_or_else(|| {
            err(
                props.pos,
                format!("Resources.{id}.Properties.Principal is required"),
            )
        })?;
        let principal = if principal == "*" {
            json!("*")
        } else if principal.ends_with(".amazonaws.com") {
            json!({"Service": principal})
        } else {
            json!({"AWS": principal})
        };
        let mut statement = json!({
            "Sid": id,
            "Effect": "Allow",
            "Principal": principal,
            "Action": action,
        });
        let mut condition = serde_json::Map::new();
        if let Some(arn) = plain("SourceArn")? {
            condition.insert("ArnLike".into(), json!({"aws:SourceArn": arn}));
        }
        if let Some(account) = plain("SourceAccount")? {
            condition.insert("StringEquals".into(), json!({"aws:SourceAccount": account}));
        }
        if let Some(org) = plain("PrincipalOrgID")? {
            let entry = condition.entry("StringEquals").or_insert_with(|| json!({}));
            entry["aws:PrincipalOrgID"] = json!(org);
        }
        if !condition.is_empty() {
            statement["Condition"] = Json::Object(condition);
        }
        if let Some(f) = functions.iter_mut().find(|f| f.name == function) {
            f.permissions.push(statement);
        }
    }
    Ok(functions)
}

/// The function a Permission's `FunctionName` names: `!Ref Id`, `!GetAtt Id.Arn` or a name.
fn permission_target(node: &Node, logical_to_name: &BTreeMap<String, String>) -> Option<String> {
    if let Some(id) = node.get("Ref").and_then(Node::as_str) {
        return logical_to_name.get(id).cloned();
    }
    if let Some(att) = node.get("Fn::GetAtt") {
        let id = match &att.value {
            Value::Scalar(s) => s.split('.').next().map(str::to_string),
            Value::Seq(items) => items.first().and_then(Node::as_str).map(str::to_string),
            _ => None,
        }?;
        return logical_to_name.get(&id).cloned();
    }
    let name = node.as_str()?;
    let name = name.rsplit(":function:").next().unwrap_or(name);
    logical_to_name.values().find(|n| *n == name).cloned()
}

/// Applies the config to the template's functions: overrides their settings and adds the
/// functions only the config defines. `config_dir` is where the config's relative paths
/// start. Checks that every function can be run.
pub fn merge(
    mut functions: Vec<FunctionDef>,
    config: &HostConfig,
    config_file: &str,
    config_dir: &Path,
) -> Result<Vec<FunctionDef>, DefinitionError> {
    let err = |message: String| DefinitionError {
        file: config_file.into(),
        pos: None,
        message,
    };
    for (name, c) in &config.functions {
        let index = match functions.iter().position(|f| &f.name == name) {
            Some(i) => i,
            None => {
                functions.push(FunctionDef {
                    name: name.clone(),
                    handler: String::new(),
                    runtime: String::new(),
                    code_dir: config_dir.to_path_buf(),
                    environment: BTreeMap::new(),
                    timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
                    memory_mb: DEFAULT_MEMORY_MB,
                    max_environments: DEFAULT_MAX_ENVIRONMENTS,
                    layers: Vec::new(),
                    command: None,
                    permissions: Vec::new(),
                    pass_aws_credentials: false,
                    extensions: Vec::new(),
                });
                functions.len() - 1
            }
        };
        let f = &mut functions[index];
        if let Some(h) = &c.handler {
            f.handler = h.clone();
        }
        if let Some(r) = &c.runtime {
            f.runtime = r.clone();
        }
        if let Some(dir) = &c.code_uri {
            f.code_dir = config_dir.join(dir);
        }
        if let Some(cmd) = &c.command {
            if cmd.is_empty() {
                return Err(err(format!("functions.{name}.command is empty")));
            }
            f.command = Some(cmd.clone());
        }
        if let Some(t) = c.timeout {
            if t == 0 || t > MAX_TIMEOUT_SECONDS {
                return Err(err(format!(
                    "functions.{name}.timeout must be 1 to {MAX_TIMEOUT_SECONDS} seconds"
                )));
            }
            f.timeout_seconds = t;
        }
        if let Some(m) = c.memory_size {
            f.memory_mb = m;
        }
        if let Some(r) = c.reserved_concurrent_executions {
            if r == 0 {
                return Err(err(format!(
                    "functions.{name}.reserved_concurrent_executions must be at least 1"
                )));
            }
            f.max_environments = r;
        }
        f.environment.extend(c.environment.clone());
        for (i, s) in c.resource_policy.iter().enumerate() {
            let statement = serde_json::to_value(s)
                .map_err(|e| err(format!("functions.{name}.resource_policy[{i}]: {e}")))?;
            if !statement.is_object() {
                return Err(err(format!(
                    "functions.{name}.resource_policy[{i}] must be a statement (a table)"
                )));
            }
            f.permissions.push(statement);
        }
        f.pass_aws_credentials |= c.pass_aws_credentials;
        for (i, e) in c.extensions.iter().enumerate() {
            if e.is_empty() {
                return Err(err(format!("functions.{name}.extensions[{i}] is empty")));
            }
            f.extensions.push(e.clone());
        }
    }
    for f in &functions {
        if f.handler.is_empty() && f.command.is_none() {
            return Err(err(format!(
                "function {}: no Handler (set it in the template or functions.{}.handler)",
                f.name, f.name
            )));
        }
        if f.runtime.is_empty() && f.command.is_none() {
            return Err(err(format!(
                "function {}: no Runtime (set it in the template, functions.{}.runtime or \
                 functions.{}.command)",
                f.name, f.name, f.name
            )));
        }
    }
    Ok(functions)
}

/// The command that starts a function's runtime: the config's `command`, else one chosen by
/// the runtime family. `None` when the host knows no way to run the runtime.
pub fn runtime_command(f: &FunctionDef, runtimes: &Runtimes) -> Option<Vec<String>> {
    if let Some(c) = &f.command {
        return Some(c.clone());
    }
    if f.runtime.starts_with("python") {
        return Some(vec![
            runtimes.python.clone(),
            "-m".into(),
            "awslambdaric".into(),
            f.handler.clone(),
        ]);
    }
    if f.runtime.starts_with("nodejs") {
        return Some(vec![runtimes.node.clone(), f.handler.clone()]);
    }
    if f.runtime.starts_with("provided") {
        return Some(vec![f.code_dir.join("bootstrap").display().to_string()]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 5
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: python3.12
      CodeUri: hello/
      MemorySize: 256
      ReservedConcurrentExecutions: 2
      Environment:
        Variables:
          GREETING: hi
  HelloPermission:
    Type: AWS::Lambda::Permission
    Properties:
      FunctionName: !GetAtt Hello.Arn
      Action: lambda:InvokeFunction
      Principal: arn:aws:iam::123456789012:user/alice
";

    #[test]
    fn reads_functions_and_permissions() {
        let fs = parse_template("t.yaml", Path::new("/app"), TEMPLATE).unwrap();
        assert_eq!(fs.len(), 1);
        let f = &fs[0];
        assert_eq!(f.name, "Hello");
        assert_eq!(f.timeout_seconds, 5);
        assert_eq!(f.memory_mb, 256);
        assert_eq!(f.max_environments, 2);
        assert_eq!(f.code_dir, Path::new("/app/hello/"));
        assert_eq!(f.environment["GREETING"], "hi");
        let policy = f.resource_policy("us-east-1", "123456789012").unwrap();
        assert_eq!(
            policy["Statement"][0]["Resource"],
            "arn:aws:lambda:us-east-1:123456789012:function:Hello"
        );
        assert_eq!(
            policy["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::123456789012:user/alice"
        );
    }

    #[test]
    fn intrinsic_in_a_plain_field_is_an_error_with_a_position() {
        let text = TEMPLATE.replace("Handler: app.handler", "Handler: !Ref H");
        let e = parse_template("t.yaml", Path::new("/"), &text).unwrap_err();
        assert_eq!(e.pos.unwrap().line, 9, "{e}");
        assert!(e.to_string().starts_with("t.yaml:9:"), "{e}");
        assert!(e.message.contains("Handler"), "{e}");
    }

    #[test]
    fn bad_timeout_is_refused() {
        let text = TEMPLATE.replace("Timeout: 5", "Timeout: 0");
        let e = parse_template("t.yaml", Path::new("/"), &text).unwrap_err();
        assert!(e.message.contains("Timeout"), "{e}");
    }

    #[test]
    fn config_overrides_and_adds_functions() {
        let config = parse_config(
            "c.toml",
            "region = \"eu-west-1\"\n[functions.Hello]\ntimeout = 1\n\
             [functions.Other]\nhandler = \"x.y\"\nruntime = \"python3.12\"\n\
             [[functions.Other.resource_policy]]\nEffect = \"Allow\"\nPrincipal = \"*\"\n\
             Action = \"lambda:InvokeFunction\"\n",
        )
        .unwrap();
        let fs = parse_template("t.yaml", Path::new("/app"), TEMPLATE).unwrap();
        let fs = merge(fs, &config, "c.toml", Path::new("/cfg")).unwrap();
        assert_eq!(fs[0].timeout_seconds, 1);
        assert_eq!(fs[1].name, "Other");
        assert_eq!(fs[1].permissions.len(), 1);
        assert_eq!(config.region, "eu-west-1");
    }

    #[test]
    fn config_errors_have_positions() {
        let e = parse_config("c.toml", "region = 1\n").unwrap_err();
        assert_eq!(e.pos.unwrap().line, 1);
        let e = parse_config("c.toml", "bogus = 1\n").unwrap_err();
        assert!(e.message.contains("bogus"), "{e}");
    }

    #[test]
    fn python_runs_under_awslambdaric() {
        let fs = parse_template("t.yaml", Path::new("/app"), TEMPLATE).unwrap();
        let cmd = runtime_command(&fs[0], &Runtimes::default()).unwrap();
        assert_eq!(cmd, ["python3", "-m", "awslambdaric", "app.handler"]);
    }
}
