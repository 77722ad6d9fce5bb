"""Signs requests with botocore and the AWS CLI and prints them as JSON, for writ-sigv4's
tests/botocore.rs to verify.

botocore's signers (SigV4Auth, S3SigV4Auth, SigV4QueryAuth, S3SigV4QueryAuth) sign request
objects directly. The AWS CLI sends real HTTP requests to a capturing server on 127.0.0.1,
which records them as they arrive on the wire.
"""

import binascii
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AKID = "AKIDBOTOCORETEST"
SECRET = "botocore/Secret+Key/EXAMPLEKEY0123456789"
TOKEN = "FwoGZXIvYXdzEJr//////////wEaDExampleSessionToken+/="
REGION = "us-east-1"

out = []


def emit(name, prepared, service, *, s3=False, session_token=None, payload_signed=True, form="header"):
    url = urlsplit(prepared.url)
    headers = [[k, v.decode() if isinstance(v, bytes) else v] for k, v in prepared.headers.items()]
    if not any(k.lower() == "host" for k, _ in headers):
        # What an HTTP client sends; botocore signs the same value from the URL.
        headers.append(["Host", url.netloc])
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    out.append({
        "name": name,
        "method": prepared.method,
        "path": url.path,
        "query": url.query,
        "headers": headers,
        "body_hex": binascii.hexlify(body).decode(),
        "now": time.time(),
        "service": service,
        "s3": s3,
        "session_token": session_token,
        "payload_signed": payload_signed,
        "form": form,
    })


def sign(name, auth, request, service, **kw):
    auth.add_auth(request)
    emit(name, request.prepare(), service, **kw)


creds = Credentials(AKID, SECRET)
temp = Credentials(AKID, SECRET, TOKEN)

# Secrets Manager's JSON 1.1 protocol, temporary credentials.
r = AWSRequest(
    method="POST",
    url="https://secretsmanager.us-east-1.amazonaws.com/",
    data=json.dumps({"SecretId": "prod/orders-db"}).encode(),
    headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "secretsmanager.GetSecretValue",
    },
)
sign("json 1.1 with session token", SigV4Auth(temp, "secretsmanager", REGION), r, "secretsmanager",
     session_token=TOKEN)

# A path and query that need encoding: spaces, UTF-8, reserved characters, repeated keys.
r = AWSRequest(
    method="GET",
    url="https://execute-api.example.org/prod/a%20b/%E1%88%B4/x%2By",
    params=[("b", "a b"), ("a", "\u1234"), ("c", "x/y=z&w"), ("empty", ""), ("tilde", "~*'()"), ("a", "1")],
    headers={"X-Custom": "  padded   value  "},
)
sign("query and path needing encoding", SigV4Auth(creds, "execute-api", REGION), r, "execute-api")

# UNSIGNED-PAYLOAD without the header, as SigV4Auth does when payload signing is off.
r = AWSRequest(
    method="POST",
    url="https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/orders/invocations",
    data=b'{"order": 42}',
)
r.context["payload_signing_enabled"] = False
sign("unsigned payload", SigV4Auth(creds, "lambda", REGION), r, "lambda", payload_signed=False)

# STS GetCallerIdentity as a form body, with an extra signed header naming a server.
r = AWSRequest(
    method="POST",
    url="https://sts.us-east-1.amazonaws.com/",
    data=b"Action=GetCallerIdentity&Version=2011-06-15",
    headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "X-Writ-Server-Id": "writ.example.org",
    },
)
sign("sts form body with server id header", SigV4Auth(temp, "sts", REGION), r, "sts", session_token=TOKEN)

# S3: no path normalization, single encoding, X-Amz-Content-SHA256 header.
r = AWSRequest(
    method="PUT",
    url="https://bucket.s3.amazonaws.com/my-object//example//photo%20one.jpg",
    data=b"jpeg bytes",
)
sign("s3 put", S3SigV4Auth(creds, "s3", REGION), r, "s3", s3=True)

# Presigned URLs.
r = AWSRequest(
    method="GET",
    url="https://sts.amazonaws.com/",
    params={"Action": "GetCallerIdentity", "Version": "2011-06-15"},
)
sign("presigned sts with session token", SigV4QueryAuth(temp, "sts", REGION, expires=900), r, "sts",
     session_token=TOKEN, form="presigned")  # signed with the empty body's hash, not UNSIGNED-PAYLOAD
r = AWSRequest(method="GET", url="https://bucket.s3.amazonaws.com/a%20b/c~d", params={"versionId": "v 1"})
sign("presigned s3", S3SigV4QueryAuth(creds, "s3", REGION, expires=604800), r, "s3", s3=True,
     payload_signed=False, form="presigned")


# The AWS CLI, through real HTTP to a capturing server.
class Capture(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        path, _, query = self.path.partition("?")
        captured.append((self.command, path, query, list(self.headers.items()), body))
        answer = b'{"__type":"AccessDeniedException","message":"captured"}'
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST

    def log_message(self, *args):
        pass


captured = []
server = http.server.HTTPServer(("127.0.0.1", 0), Capture)
threading.Thread(target=server.serve_forever, daemon=True).start()
endpoint = "http://127.0.0.1:%d" % server.server_address[1]
env = dict(os.environ, AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN,
           AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
           AWS_MAX_ATTEMPTS="1")
for args, service in [
    (["secretsmanager", "get-secret-value", "--secret-id", "prod/orders db"], "secretsmanager"),
    (["ssm", "get-parameter", "--name", "/prod/orders/db-url", "--with-decryption"], "ssm"),
]:
    before = len(captured)
    subprocess.run([sys.executable, "-m", "awscli", *args, "--endpoint-url", endpoint],
                   env=env, capture_output=True, timeout=120)
    if len(captured) != before + 1:
        sys.exit("the AWS CLI sent %d requests for %s, expected 1" % (len(captured) - before, args))
    method, path, query, headers, body = captured[-1]
    out.append({
        "name": "aws cli " + " ".join(args[:2]),
        "method": method,
        "path": path,
        "query": query,
        "headers": [[k, v] for k, v in headers],
        "body_hex": binascii.hexlify(body).decode(),
        "now": time.time(),
        "service": service,
        "s3": False,
        "session_token": TOKEN,
        "payload_signed": True,
        "form": "header",
    })
server.shutdown()

json.dump({"access_key_id": AKID, "secret": SECRET, "requests": out}, sys.stdout, indent=1)
