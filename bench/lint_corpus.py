"""Writes a corpus of Terraform, CloudFormation (YAML and JSON) and IAM policy files for
bench/lint.sh: python3 bench/lint_corpus.py DIR [FILES]. Deterministic (seeded), about 45%
Terraform, 25% CloudFormation YAML, 12% CloudFormation JSON, 18% IAM JSON, 100 files per
directory (a Terraform module each), 1-6 KB per file; some files carry the mistakes writ lint
reports, most are clean."""

import json
import os
import random
import sys

out = sys.argv[1]
total = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
rng = random.Random(8)

SERVICES = ["dynamodb", "s3", "sqs", "sns", "secretsmanager", "kms", "logs", "events", "states"]
ACTIONS = {
    "dynamodb": ["GetItem", "Query", "PutItem", "UpdateItem", "BatchGetItem"],
    "s3": ["GetObject", "PutObject", "ListBucket"],
    "sqs": ["SendMessage", "ReceiveMessage", "DeleteMessage"],
    "sns": ["Publish"],
    "secretsmanager": ["GetSecretValue"],
    "kms": ["Decrypt", "GenerateDataKey"],
    "logs": ["CreateLogGroup", "CreateLogStream", "PutLogEvents"],
    "events": ["PutEvents"],
    "states": ["StartExecution"],
}
RUNTIMES = ["python3.12", "python3.11", "nodejs20.x", "nodejs22.x", "java21", "provided.al2023"] * 6 + [
    "python3.8", "nodejs16.x", "go1.x"]


def arn(service, i):
    if service == "s3":
        return f"arn:aws:s3:::bucket-{i}/*"
    return f"arn:aws:{service}:us-east-1:123456789012:{service}-thing/name-{i}"


def statements(i, bad):
    sts = []
    for k in range(rng.randint(2, 6)):
        svc = rng.choice(SERVICES)
        acts = [f"{svc}:{a}" for a in rng.sample(ACTIONS[svc], min(len(ACTIONS[svc]), rng.randint(1, 3)))]
        sts.append({"Sid": f"S{k}{svc.title()}", "Effect": "Allow", "Action": acts, "Resource": [arn(svc, i + k)]})
    if bad and rng.random() < 0.5:
        sts.append({"Effect": "Allow", "Action": rng.choice(["*", "s3:*", "iam:PassRole"]), "Resource": "*"})
    return sts


def iam_json(i, bad):
    return json.dumps({"Version": "2012-10-17", "Statement": statements(i, bad)}, indent=2) + "\n"


def hcl_list(xs):
    return "[" + ", ".join(json.dumps(x) for x in xs) + "]"


def terraform(i, bad):
    name = f"fn{i}"
    parts = [f'''locals {{
  service = "svc-{i}"
  table   = "orders-{i}"
}}

variable "environment" {{
  default = "prod"
}}

resource "aws_iam_role" "{name}" {{
  name               = "${{local.service}}-role"
  assume_role_policy = data.aws_iam_policy_document.{name}_trust.json
}}

data "aws_iam_policy_document" "{name}_trust" {{
  statement {{
    actions = ["sts:AssumeRole"]
    principals {{
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }}
  }}
}}
''']
    pol = []
    for st in statements(i, bad):
        pol.append(f'''      {{
        Effect   = "{st["Effect"]}"
        Action   = {hcl_list(st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
        Resource = {hcl_list(st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])}
      }}''')
    joined = ",\n".join(pol)
    parts.append(f'''
resource "aws_iam_role_policy" "{name}" {{
  role = aws_iam_role.{name}.id
  policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [
{joined}
    ]
  }})
}}
''')
    env = {"TABLE": "${local.table}", "ENVIRONMENT": "${var.environment}", "LOG_LEVEL": "INFO"}
    env_lines = "\n".join(f'      {k} = "{v}"' for k, v in env.items())
    if bad and rng.random() < 0.3:
        env_lines += '\n      DB_PASSWORD = "hunter2-' + str(i) + '"'
    hardening = "" if bad else f'''  kms_key_arn                    = aws_kms_key.k.arn
  reserved_concurrent_executions = {rng.randint(5, 100)}
  code_signing_config_arn        = aws_lambda_code_signing_config.c.arn
  tracing_config {{
    mode = "Active"
  }}
  dead_letter_config {{
    target_arn = aws_sqs_queue.dlq.arn
  }}
'''
    parts.append(f'''
resource "aws_lambda_function" "{name}" {{
  function_name = "${{local.service}}-handler"
  role          = aws_iam_role.{name}.arn
  runtime       = "{rng.choice(RUNTIMES)}"
  handler       = "main.handler"
  memory_size   = {rng.choice([128, 256, 512, 1024])}
  timeout       = {rng.randint(3, 60)}
{hardening}  environment {{
    variables = {{
{env_lines}
    }}
  }}
  vpc_config {{
    subnet_ids         = [aws_subnet.a.id, aws_subnet.b.id]
    security_group_ids = [aws_security_group.{name}.id]
  }}
}}

resource "aws_security_group" "{name}" {{
  name   = "${{local.service}}-sg"
  vpc_id = aws_vpc.main.id
  egress {{
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }}
}}

resource "aws_lambda_permission" "{name}" {{
  statement_id  = "AllowEvents"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.{name}.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.{name}.arn
}}
''')
    if rng.random() < 0.3:
        auth = "NONE" if bad else "AWS_IAM"
        parts.append(f'''
resource "aws_lambda_function_url" "{name}" {{
  function_name      = aws_lambda_function.{name}.function_name
  authorization_type = "{auth}"
}}
''')
    return "".join(parts)


def cfn(i, bad):
    fns = {}
    res = {}
    for k in range(rng.randint(1, 4)):
        fid = f"Fn{k}"
        props = {
            "Runtime": rng.choice(RUNTIMES),
            "Handler": "app.handler",
            "Role": {"Fn::GetAtt": [f"Role{k if not bad else 0}", "Arn"]},
            "MemorySize": rng.choice([128, 512, 1024]),
            "Environment": {"Variables": {"TABLE": {"Ref": "Table"}, "STAGE": "prod"}},
            "TracingConfig": {"Mode": "Active" if not bad else "PassThrough"},
        }
        if not bad:
            props.update({"KmsKeyArn": {"Fn::GetAtt": ["Key", "Arn"]}, "ReservedConcurrentExecutions": 10,
                          "CodeSigningConfigArn": {"Ref": "Signing"},
                          "DeadLetterConfig": {"TargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}}})
        fns[fid] = {"Type": "AWS::Lambda::Function", "Properties": props}
        res[f"Role{k}"] = {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
            "Policies": [{"PolicyName": "inline", "PolicyDocument": {"Version": "2012-10-17",
                                                                      "Statement": statements(i + k, bad)}}]}}
        res[f"Perm{k}"] = {"Type": "AWS::Lambda::Permission", "Properties": {
            "Action": "lambda:InvokeFunction", "FunctionName": {"Ref": fid}, "Principal": "s3.amazonaws.com",
            **({} if bad else {"SourceArn": {"Fn::GetAtt": ["Bucket", "Arn"]}, "SourceAccount": "123456789012"})}}
    res.update(fns)
    return {"AWSTemplateFormatVersion": "2010-09-09", "Description": f"service {i}", "Resources": res}


def to_yaml(v, indent=0):
    pad = "  " * indent
    if isinstance(v, dict):
        if len(v) == 1:
            (k, x), = v.items()
            if k == "Ref":
                return f"!Ref {x}"
            if k == "Fn::GetAtt":
                return f"!GetAtt {'.'.join(x)}"
        lines = []
        for k, x in v.items():
            s = to_yaml(x, indent + 1)
            if isinstance(x, (dict, list)) and not s.startswith("!"):
                lines.append(f"{pad}{k}:\n{s}")
            else:
                lines.append(f"{pad}{k}: {s}")
        return "\n".join(lines)
    if isinstance(v, list):
        lines = []
        for x in v:
            s = to_yaml(x, indent + 1)
            if isinstance(x, dict) and not s.startswith("!"):
                lines.append(f"{pad}- " + s.lstrip())
            else:
                lines.append(f"{pad}- {s}")
        return "\n".join(lines)
    if isinstance(v, str):
        return json.dumps(v) if any(c in v for c in ":*{}[]#") or v in ("true", "false") or v[:1].isdigit() else v
    return json.dumps(v)


counts = {"tf": 0, "yaml": 0, "json-cfn": 0, "json-iam": 0}
size = 0
for i in range(total):
    d = os.path.join(out, f"svc{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    bad = rng.random() < 0.25
    r = rng.random()
    if r < 0.45:
        path, text, kind = os.path.join(d, f"f{i}.tf"), terraform(i, bad), "tf"
    elif r < 0.70:
        path, text, kind = os.path.join(d, f"t{i}.yaml"), to_yaml(cfn(i, bad)) + "\n", "yaml"
    elif r < 0.82:
        path, text, kind = os.path.join(d, f"t{i}.json"), json.dumps(cfn(i, bad), indent=2) + "\n", "json-cfn"
    else:
        path, text, kind = os.path.join(d, f"p{i}.json"), iam_json(i, bad), "json-iam"
    with open(path, "w") as f:
        f.write(text)
    counts[kind] += 1
    size += len(text)
print(f"{total} files, {size / 1e6:.1f} MB: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
