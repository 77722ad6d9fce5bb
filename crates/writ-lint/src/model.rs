//! What the rules look at: the security-relevant facts of a deployment, whatever format
//! declared them. The Terraform and CloudFormation readers fill a [`Model`]; the rules in
//! [`crate::rules`] read it.

use writ_policy::PolicyKind;

use crate::node::{Key, Node, Pos};

/// Everything found in one file.
#[derive(Debug, Default)]
pub(crate) struct Model {
    pub functions: Vec<Function>,
    pub urls: Vec<FunctionUrl>,
    pub permissions: Vec<Permission>,
    pub security_groups: Vec<SecurityGroup>,
    pub egress_rules: Vec<EgressRule>,
    pub invoke_configs: Vec<InvokeConfig>,
    pub policies: Vec<PolicyDoc>,
    /// Policies that are there but could not be read, so were not checked.
    pub unread_policies: Vec<UnreadPolicy>,
    pub cors: Vec<Cors>,
    /// Where function code comes from outside [`Function::code`]: the `source_path` of a
    /// Terraform module call (`terraform-aws-modules/lambda/aws`), by module address.
    pub code_sources: Vec<(String, Node)>,
    /// Terraform `data "archive_file"` blocks: their address and `source_dir`, so a
    /// function whose `filename` is the archive's `output_path` is traced to its code.
    pub archives: Vec<(String, Node)>,
}

/// A Lambda function.
#[derive(Debug, Default)]
pub(crate) struct Function {
    /// `aws_lambda_function.api` or a CloudFormation logical id.
    pub address: String,
    /// Where the resource is declared.
    pub pos: Pos,
    /// The execution role, as written.
    pub role: Option<Node>,
    pub runtime: Option<Node>,
    /// Environment variables, as written.
    pub env: Vec<(Key, Node)>,
    pub kms_key: bool,
    /// The tracing mode (`Active` or `PassThrough`), when set.
    pub tracing: Option<Node>,
    /// A dead-letter queue or an on-failure destination is configured on the function.
    pub dlq: bool,
    pub reserved_concurrency: bool,
    pub code_signing: bool,
    pub layers: Vec<Node>,
    pub security_groups: Vec<Node>,
    /// Environment variables that receive a secret from elsewhere in the file: the variable's
    /// name and where the secret comes from (a NoEcho parameter's default, a Cognito user
    /// pool client's secret).
    pub secret_sources: Vec<(String, String)>,
    /// Where the code is, as written: SAM `CodeUri`, CloudFormation `Code` (a local path
    /// before `aws cloudformation package`), Terraform `filename`.
    pub code: Option<Node>,
}

/// A function URL (a resource of its own, or SAM's `FunctionUrlConfig`).
#[derive(Debug)]
pub(crate) struct FunctionUrl {
    pub address: String,
    /// `authorization_type` / `AuthType`.
    pub auth: Option<Node>,
}

/// A CORS configuration (function URL or API Gateway).
#[derive(Debug)]
pub(crate) struct Cors {
    pub address: String,
    pub pos: Pos,
    pub origins: Vec<Node>,
    pub credentials: Option<Node>,
}

/// A Lambda permission: who may invoke a function.
#[derive(Debug)]
pub(crate) struct Permission {
    pub address: String,
    pub principal: Option<Node>,
    pub source_arn: bool,
    pub source_account: bool,
}

/// A security group and the places its egress is open to the world on every port.
#[derive(Debug)]
pub(crate) struct SecurityGroup {
    pub address: String,
    /// Names other resources use for it (`aws_security_group.lambda`, a logical id).
    pub target: String,
    pub pos: Pos,
    /// Positions of open egress rules; a CloudFormation group without rules is open by
    /// default and reports its own position with `default_open`.
    pub open_egress: Vec<Pos>,
    pub default_open: bool,
}

/// An egress rule declared as a resource of its own.
#[derive(Debug)]
pub(crate) struct EgressRule {
    pub address: String,
    pub pos: Pos,
    pub group: Option<String>,
    pub open: bool,
}

/// An asynchronous invocation config naming a function.
#[derive(Debug)]
pub(crate) struct InvokeConfig {
    pub function: Option<String>,
    pub on_failure: bool,
}

/// A policy document found in the file.
#[derive(Debug)]
pub(crate) struct PolicyDoc {
    /// Where it is attached, for messages: `aws_iam_role_policy.x.policy`, `Role.Policies[0]`.
    pub address: String,
    pub doc: Node,
    /// `None` to infer: a resource policy when a statement names a principal.
    pub kind: Option<PolicyKind>,
    /// The original JSON text when the whole file is the policy, so validation positions
    /// are exact; otherwise the document is re-serialised and positions mapped back by
    /// JSON path.
    pub text: Option<String>,
    /// What the policy is attached to, where a rule depends on it.
    pub attached: Attached,
}

/// What a resource policy is attached to, for the rules that judge it differently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Attached {
    #[default]
    Other,
    /// A KMS key's key policy (`AWS::KMS::Key` `KeyPolicy`, `aws_kms_key.policy`).
    KmsKey,
    /// The policy of an SNS topic, an SQS queue or an S3 bucket: where services deliver
    /// notifications.
    Notification,
}

/// A policy that is set but could not be read (a `file()` call, a variable without a
/// default, a heredoc that is not JSON once its known parts are filled in).
#[derive(Debug)]
pub(crate) struct UnreadPolicy {
    /// Where it is attached: `aws_iam_role_policy.x.policy`.
    pub address: String,
    /// Where its value starts.
    pub pos: Pos,
    /// Why it could not be read.
    pub why: String,
}

/// True for a CIDR that means "anywhere".
pub(crate) fn is_anywhere(cidr: &str) -> bool {
    matches!(cidr.trim(), "0.0.0.0/0" | "::/0")
}
