"""AWS SDK code run unchanged against writ (crates/writ/tests/aws_sdk.rs runs this).

Credentials come from botocore's own web identity provider: AWS_WEB_IDENTITY_TOKEN_FILE
(a JWT-SVID), AWS_ROLE_ARN and AWS_ROLE_SESSION_NAME, with AWS_ENDPOINT_URL pointing every
service (STS included) at the writ server and AWS_CA_BUNDLE at its trust bundle. Nothing
below names writ. Each mode prints one JSON document.

    python aws_sdk.py article | boto3 | powertools | credentials | with-credentials NAME
    python aws_sdk.py walk unsigned|tampered|denied
    python aws_sdk.py sigv4-call URL BODY   (static credentials; GATEWAY_CA: the gateway's CA)
"""

import json
import sys

import boto3
from botocore import UNSIGNED, xform_name
from botocore.config import Config
from botocore.exceptions import ClientError

NO_RETRIES = Config(retries={"total_max_attempts": 1})


def error_of(e):
    return {
        "code": e.response["Error"]["Code"],
        "message": e.response["Error"].get("Message", ""),
        "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
    }


def article():
    # The seed article's snippets (seeds/003), verbatim in seed_003/: the endpoint comes
    # from the environment (AWS_ENDPOINT_URL), as it would for any AWS-compatible endpoint.
    import os
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed_003")
    connected = {}

    def connect(**kwargs):
        connected.update(kwargs)

    secrets = {"connect": connect}
    with open(os.path.join(here, "secrets_manager.py")) as f:
        exec(compile(f.read(), "secrets_manager.py", "exec"), secrets)
    secrets["handler"]({}, None)
    ssm = {}
    with open(os.path.join(here, "ssm_parameter.py")) as f:
        exec(compile(f.read(), "ssm_parameter.py", "exec"), ssm)
    ssm["handler"]({}, None)
    return {
        "host": connected["host"],
        "user": connected["user"],
        "password": connected["password"],
        # The handler keeps it in its cache: asking again does not call the API.
        "api_endpoint": ssm["get_parameter"]("/prod/orders/api-endpoint"),
        "ssm_calls": ssm["get_parameter"].cache_info().misses,
    }


def boto3_tour():
    out = {}
    sts = boto3.client("sts")
    out["identity"] = sts.get_caller_identity()
    sm = boto3.client("secretsmanager", config=NO_RETRIES)
    got = sm.get_secret_value(SecretId="prod/orders-db")
    out["get"] = {k: got[k] for k in ("ARN", "Name", "VersionId", "VersionStages", "SecretString")}
    out["get_by_arn"] = sm.get_secret_value(SecretId=got["ARN"])["SecretString"]
    created = sm.create_secret(Name="prod/orders-token", SecretString="t0",
                               Description="made by boto3", Tags=[{"Key": "team", "Value": "orders"}])
    out["created"] = {k: created[k] for k in ("ARN", "Name", "VersionId")}
    put = sm.put_secret_value(SecretId="prod/orders-token", SecretString="t1")
    out["put"] = {k: put[k] for k in ("VersionId", "VersionStages")}
    out["after_put"] = sm.get_secret_value(SecretId="prod/orders-token")["SecretString"]
    out["previous"] = sm.get_secret_value(SecretId="prod/orders-token",
                                          VersionStage="AWSPREVIOUS")["SecretString"]
    binary = sm.create_secret(Name="prod/orders-cert", SecretBinary=b"\xff\x00\xfe")
    out["binary"] = list(sm.get_secret_value(SecretId=binary["ARN"])["SecretBinary"])
    described = sm.describe_secret(SecretId="prod/orders-token")
    out["described"] = {
        "ARN": described["ARN"],
        "Description": described["Description"],
        "Tags": described["Tags"],
        "Stages": sorted(s for v in described["VersionIdsToStages"].values() for s in v),
        "has_dates": hasattr(described["CreatedDate"], "year"),
    }
    sm.update_secret_version_stage(SecretId="prod/orders-token", VersionStage="AWSCURRENT",
                                   MoveToVersionId=created["VersionId"],
                                   RemoveFromVersionId=put["VersionId"])
    out["after_stage_move"] = sm.get_secret_value(SecretId="prod/orders-token")["SecretString"]
    names = []
    for page in sm.get_paginator("list_secrets").paginate(PaginationConfig={"PageSize": 1}):
        names += [s["Name"] for s in page["SecretList"]]
    out["listed"] = names
    batch = sm.batch_get_secret_value(SecretIdList=["prod/orders-db", "prod/orders-token"])
    out["batch"] = sorted(v["Name"] for v in batch["SecretValues"])
    out["by_version"] = sm.get_secret_value(SecretId="prod/orders-token",
                                            VersionId=put["VersionId"])["SecretString"]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"SPIFFE": "spiffe://example.org/fn/billing"},
        "Action": "secrets:GetSecretValue", "Resource": "writ:secret/prod/orders-token"}]})
    sm.put_resource_policy(SecretId="prod/orders-token", ResourcePolicy=policy)
    out["policy"] = json.loads(sm.get_resource_policy(SecretId="prod/orders-token")["ResourcePolicy"])
    deleted = sm.delete_secret(SecretId="prod/orders-cert", RecoveryWindowInDays=7)
    out["deleted"] = {"Name": deleted["Name"], "has_date": hasattr(deleted["DeletionDate"], "year")}
    try:
        sm.get_secret_value(SecretId="prod/orders-cert")
    except ClientError as e:
        out["while_deleted"] = error_of(e)
    sm.restore_secret(SecretId="prod/orders-cert")
    out["restored"] = list(sm.get_secret_value(SecretId="prod/orders-cert")["SecretBinary"])
    for name, call in [
        ("force_delete", lambda: sm.delete_secret(SecretId="prod/orders-cert",
                                                  ForceDeleteWithoutRecovery=True)),
        ("rotate_lambda", lambda: sm.rotate_secret(
            SecretId="prod/orders-db",
            RotationLambdaARN="arn:aws:lambda:eu-west-1:000000000000:function:rotate")),
        ("rotate_without_hook", lambda: sm.rotate_secret(SecretId="prod/orders-db")),
        ("kms_key", lambda: sm.create_secret(Name="prod/with-kms", SecretString="x",
                                             KmsKeyId="alias/mine")),
    ]:
        try:
            call()
            out[name] = {"code": "ok"}
        except ClientError as e:
            out[name] = error_of(e)
    try:
        sm.get_secret_value(SecretId="prod/nothing-here")
    except ClientError as e:
        out["missing"] = error_of(e)
    try:
        sm.create_secret(Name="prod/orders-token", SecretString="again")
    except ClientError as e:
        out["exists"] = error_of(e)
    ssm = boto3.client("ssm", config=NO_RETRIES)
    out["put_parameter"] = ssm.put_parameter(Name="/prod/orders/region", Value="eu-west-1",
                                             Type="String")["Version"]
    out["overwrite"] = ssm.put_parameter(Name="/prod/orders/region", Value="eu-central-1",
                                         Type="String", Overwrite=True)["Version"]
    p = ssm.get_parameter(Name="/prod/orders/region")["Parameter"]
    out["parameter"] = {k: p[k] for k in ("Name", "Type", "Value", "Version", "ARN")}
    many = ssm.get_parameters(Names=["/prod/orders/region", "/prod/orders/none"],
                              WithDecryption=True)
    out["parameters"] = {"found": [x["Name"] for x in many["Parameters"]],
                         "invalid": many["InvalidParameters"]}
    by_path = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(
            Path="/prod/orders", Recursive=True, WithDecryption=True,
            PaginationConfig={"PageSize": 1}):
        by_path += [(x["Name"], x["Value"]) for x in page["Parameters"]]
    out["by_path"] = by_path
    try:
        ssm.get_parameter(Name="/prod/orders/api-endpoint")
    except ClientError as e:
        out["no_decryption"] = error_of(e)
    try:
        ssm.put_parameter(Name="/prod/orders/list", Value="a,b", Type="StringList")
    except ClientError as e:
        out["string_list"] = error_of(e)
    try:
        ssm.put_parameter(Name="/prod/orders/region", Value="x", Type="String")
    except ClientError as e:
        out["parameter_exists"] = error_of(e)
    return out


def powertools():
    from aws_lambda_powertools.utilities import parameters
    return {
        "secret": parameters.get_secret("prod/orders-db", transform="json")["username"],
        "parameter": parameters.get_parameter("/prod/orders/api-endpoint", decrypt=True),
    }


def credentials():
    c = boto3.Session().get_credentials().get_frozen_credentials()
    return {"access_key_id": c.access_key, "secret": c.secret_key, "token": c.token}


def with_credentials(name):
    # Static credentials from the environment (AWS_ACCESS_KEY_ID, ...), as a caller that
    # kept them would use them.
    sm = boto3.client("secretsmanager", config=NO_RETRIES)
    try:
        return {"value": sm.get_secret_value(SecretId=name)["SecretString"]}
    except ClientError as e:
        return {"error": error_of(e)}


def sigv4_call(url, body):
    # A POST signed by botocore's SigV4Auth for the service lambda, as a caller of a function
    # URL whose AuthType is AWS_IAM signs it, with the static credentials of the
    # environment; sent with urllib, trusting the gateway's CA.
    import os
    import ssl
    import urllib.error
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    creds = boto3.Session().get_credentials().get_frozen_credentials()
    request = AWSRequest(method="POST", url=url, data=body.encode(),
                         headers={"content-type": "application/json"})
    SigV4Auth(creds, "lambda", os.environ["AWS_REGION"]).add_auth(request)
    prepared = request.prepare()
    sent = urllib.request.Request(url, data=body.encode(), method="POST",
                                  headers=dict(prepared.headers.items()))
    context = ssl.create_default_context(cafile=os.environ["GATEWAY_CA"])
    try:
        with urllib.request.urlopen(sent, context=context, timeout=10) as r:
            return {"status": r.status, "body": json.loads(r.read())}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": json.loads(e.read() or b"null")}


# One request each operation of writ's table can take, by service and operation.
OPERATIONS = {
    "secretsmanager": {
        "GetSecretValue": {"SecretId": "prod/orders-db"},
        "BatchGetSecretValue": {"SecretIdList": ["prod/orders-db"]},
        "CreateSecret": {"Name": "prod/new-one", "SecretString": "x"},
        "PutSecretValue": {"SecretId": "prod/orders-db", "SecretString": "x"},
        "DescribeSecret": {"SecretId": "prod/orders-db"},
        "ListSecrets": {},
        "UpdateSecretVersionStage": {"SecretId": "prod/orders-db", "VersionStage": "MINE",
                                     "MoveToVersionId": "0" * 32},
        "DeleteSecret": {"SecretId": "prod/orders-db"},
        "RestoreSecret": {"SecretId": "prod/orders-db"},
        "RotateSecret": {"SecretId": "prod/orders-db"},
        "GetResourcePolicy": {"SecretId": "prod/orders-db"},
        "PutResourcePolicy": {"SecretId": "prod/orders-db", "ResourcePolicy": "{}"},
    },
    "ssm": {
        "GetParameter": {"Name": "/prod/orders/api-endpoint", "WithDecryption": True},
        "GetParameters": {"Names": ["/prod/orders/api-endpoint"], "WithDecryption": True},
        "GetParametersByPath": {"Path": "/prod", "Recursive": True},
        "PutParameter": {"Name": "/prod/x", "Value": "v", "Type": "String"},
    },
}


def walk(how):
    results = {}
    for service, operations in OPERATIONS.items():
        config = NO_RETRIES
        if how == "unsigned":
            config = config.merge(Config(signature_version=UNSIGNED))
        client = boto3.client(service, config=config)
        if how == "tampered":
            def tamper(request, **_):
                auth = request.headers["Authorization"]
                if isinstance(auth, bytes):
                    auth = auth.decode()
                last = auth[-1]
                request.headers["Authorization"] = auth[:-1] + ("0" if last != "0" else "1")
            client.meta.events.register("before-send", tamper)
        for operation, params in operations.items():
            try:
                getattr(client, xform_name(operation))(**params)
                results[f"{service}.{operation}"] = {"code": "ok"}
            except ClientError as e:
                results[f"{service}.{operation}"] = error_of(e)
    return results


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "article":
        result = article()
    elif mode == "boto3":
        result = boto3_tour()
    elif mode == "powertools":
        result = powertools()
    elif mode == "credentials":
        result = credentials()
    elif mode == "with-credentials":
        result = with_credentials(sys.argv[2])
    elif mode == "walk":
        result = walk(sys.argv[2])
    elif mode == "sigv4-call":
        result = sigv4_call(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(result, default=str))
