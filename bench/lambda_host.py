#!/usr/bin/env python3
"""writ lambda: cold start and added latency, against running the same handler directly.

Usage (from the repository root, with the venv .ci/run creates):
  ~/.cache/writ/venv/bin/python bench/lambda_host.py HOST_BINARY [ROUNDS] [INVOCATIONS]

HOST_BINARY is `target/release/examples/lambda_host` (cargo build --release -p writ-lambda
--example lambda_host) or the `writ` binary (then run as `writ lambda`).

cold start: process start of the host to the first invocation answered (host start, runtime
  process start, awslambdaric and handler import, SigV4 + policy + audit, the invocation),
  against `python -c 'import app; app.handler({}, None)'` (interpreter start, import, call).
warm latency: one keep-alive connection, a request signed once by botocore (the host does not
  refuse replays within the 5-minute skew) and sent as prepared bytes, the answer read with
  a minimal parser, median over INVOCATIONS, against calling the handler's function in this
  process.
gateway + host (when HOST_BINARY is `writ`): a `writ gateway` (one worker, a public route whose
  upstream is `lambda = { function = "Bench", endpoint = HOST }`, signing each invocation with
  the credentials the host's file allows) in front of the same host; one kept-alive TLS
  connection POSTs the payload to the gateway with the same client code, which builds the payload 2.0 event, signs and
  sends the invocation, and maps the handler's bare answer back to a 200. Measured in blocks
  alternating with direct invocations of the host, median over INVOCATIONS each, against
  calling the handler's function in this process on the same payload 2.0 event.
"""

import http.client
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HANDLER = "def handler(event, context):\n    return {'ok': True, 'echo': event}\n"
TEMPLATE = """Resources:
  Bench:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Runtime: python3.12
      CodeUri: src/
      Timeout: 30
"""
AKID, SECRET = "AKIDBENCHEXAMPLE", "bench-secret-key"
CREDS = f"""[[credential]]
access_key_id = "{AKID}"
secret_access_key = "{SECRET}"
principal = "arn:aws:iam::123456789012:user/bench"
policies = ['{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*"}}]}}']
"""
PAYLOAD = b'{"n": 1}'


def setup(d):
    os.makedirs(os.path.join(d, "src"), exist_ok=True)
    with open(os.path.join(d, "src", "app.py"), "w") as f:
        f.write(HANDLER)
    with open(os.path.join(d, "template.yaml"), "w") as f:
        f.write(TEMPLATE)
    with open(os.path.join(d, "lambda.toml"), "w") as f:
        f.write(f'[runtimes]\npython = "{sys.executable}"\n')
    path = os.path.join(d, "creds.toml")
    with open(path, "w") as f:
        f.write(CREDS)
    os.chmod(path, 0o600)


def start(binary, d):
    if os.path.basename(binary) == "writ":
        argv = [binary, "lambda", "--template", "template.yaml", "--config", "lambda.toml",
                "--credentials", "creds.toml", "--listen", "127.0.0.1:0", "--data-dir", "data"]
    else:
        argv = [binary, "template.yaml", "lambda.toml", "creds.toml", "127.0.0.1:0", "data"]
    env = dict(os.environ, RUST_LOG="warn", WRIT_LOG="warn")
    p = subprocess.Popen(argv, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    line = p.stdout.readline().decode()
    addr = line.strip().rsplit("http://", 1)[1]
    return p, addr


def signed_headers(host):
    req = AWSRequest(method="POST", url=f"http://{host}/2015-03-31/functions/Bench/invocations",
                     data=PAYLOAD, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(AKID, SECRET), "lambda", "us-east-1").add_auth(req)
    return dict(req.headers.items())


def invoke(conn, headers):
    conn.request("POST", "/2015-03-31/functions/Bench/invocations", body=PAYLOAD, headers=headers)
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200 and r.getheader("X-Amz-Function-Error") is None, (r.status, body)
    return body


def start_gateway(writ, d, host):
    """A `writ gateway` with one public lambda route to the host; returns (process, port, CA)."""
    cert, key = os.path.join(d, "gw.pem"), os.path.join(d, "gw.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    with open(os.path.join(d, "gw-token"), "w") as f:
        f.write("unused")
    # Public routes do not need the control plane: the server address is never reached.
    config = f"""
listen = "127.0.0.1:0"
trust_domain = "example.org"
state_dir = "gw-state"
workers = 1
[server]
addr = "https://127.0.0.1:1"
ca_file = "{cert}"
token_file = "gw-token"
[tls]
cert = "{cert}"
key = "{key}"
[[route]]
name = "bench"
function = "bench"
path_prefix = "/bench"
lambda = {{ function = "Bench", region = "us-east-1", endpoint = "http://{host}" }}
public = true
timeout = "30s"
"""
    path = os.path.join(d, "gateway.toml")
    with open(path, "w") as f:
        f.write(config)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET, WRIT_LOG="warn")
    for k in ("AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
              "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        env.pop(k, None)
    gw = subprocess.Popen([writ, "gateway", "--config", path], cwd=d, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=env, text=True)
    port = None
    for line in gw.stdout:
        if "gateway listening on " in line:
            port = int(line.rsplit(":", 1)[1].split()[0])
            break
    assert port, "the gateway did not start"
    threading.Thread(target=lambda: [None for _ in gw.stdout], daemon=True).start()
    return gw, port, cert


class Raw:
    """One kept-alive connection sending one prepared POST of PAYLOAD again and again, and
    reading answers with as little client work as possible: the same for the host and the
    gateway, so the client's own cost is the same in both numbers."""

    def __init__(self, sock, path, headers):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.reader = sock.makefile("rb")
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()
                       if k.lower() != "content-length")
        self.request = (f"POST {path} HTTP/1.1\r\n{head}"
                        f"content-length: {len(PAYLOAD)}\r\n\r\n").encode() + PAYLOAD

    def post(self):
        self.sock.sendall(self.request)
        status = self.reader.readline()
        length = 0
        while True:
            line = self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = self.reader.read(length)
        assert status.split()[1] == b"200", (status, body)
        return body


def to_host(addr, headers):
    host, port = addr.rsplit(":", 1)
    # The signature covers the host header: the one botocore signed, with the port.
    headers = dict(headers, host=addr) if "host" not in {k.lower() for k in headers} else headers
    return Raw(socket.create_connection((host, int(port))),
               "/2015-03-31/functions/Bench/invocations", headers)


def to_gateway(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                           server_hostname="127.0.0.1")
    return Raw(sock, "/bench", {"host": "127.0.0.1", "content-type": "application/json"})


def stop(p):
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()


def ms(xs):
    return f"median {statistics.median(xs) * 1e3:.2f} ms, min {min(xs) * 1e3:.2f} ms, max {max(xs) * 1e3:.2f} ms"


def main():
    binary = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    with_gateway = os.path.basename(binary) == "writ"
    with tempfile.TemporaryDirectory() as d:
        setup(d)
        cold = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            p, addr = start(binary, d)
            conn = http.client.HTTPConnection(addr)
            invoke(conn, signed_headers(addr))
            cold.append(time.perf_counter() - t0)
            conn.close()
            stop(p)
        direct_cold = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import app; app.handler({'n': 1}, None)"],
                           cwd=os.path.join(d, "src"), check=True)
            direct_cold.append(time.perf_counter() - t0)

        ric_import = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import awslambdaric.bootstrap, app"],
                           cwd=os.path.join(d, "src"), check=True)
            ric_import.append(time.perf_counter() - t0)

        p, addr = start(binary, d)
        direct_host = to_host(addr, signed_headers(addr))
        for _ in range(200):
            direct_host.post()
        gateway = None
        if with_gateway:
            gw, port, ca = start_gateway(binary, d, addr)
            gateway = to_gateway(port, ca)
            for _ in range(200):
                event = json.loads(gateway.post())["echo"]
        warm, through_gateway = [], []
        blocks = 20 if with_gateway else 1
        for b in range(blocks):
            order = ["host", "gateway"] if b % 2 == 0 else ["gateway", "host"]
            for what in order:
                if what == "host":
                    for _ in range(n // blocks):
                        t0 = time.perf_counter()
                        direct_host.post()
                        warm.append(time.perf_counter() - t0)
                elif gateway:
                    for _ in range(n // blocks):
                        t0 = time.perf_counter()
                        gateway.post()
                        through_gateway.append(time.perf_counter() - t0)
        if with_gateway:
            gw.terminate()
            gw.wait()
        stop(p)
        sys.path.insert(0, os.path.join(d, "src"))
        import app  # noqa: E402
        direct = []
        for _ in range(n):
            t0 = time.perf_counter()
            json.dumps(app.handler(json.loads(PAYLOAD), None)).encode()
            direct.append(time.perf_counter() - t0)
        direct_event = []
        if with_gateway:
            event_bytes = json.dumps(event).encode()
            for _ in range(n):
                t0 = time.perf_counter()
                json.dumps(app.handler(json.loads(event_bytes), None)).encode()
                direct_event.append(time.perf_counter() - t0)

    print(f"cold start through the host ({rounds} rounds): {ms(cold)}")
    print(f"cold start, handler run directly ({rounds} rounds): {ms(direct_cold)}")
    print(f"python start + import awslambdaric and the handler ({rounds} rounds): {ms(ric_import)}")
    print(f"warm invocation through the host ({n}): {ms(warm)}, "
          f"p90 {statistics.quantiles(warm, n=10)[-1] * 1e3:.2f} ms")
    print(f"handler called directly, with JSON in and out ({n}): median {statistics.median(direct) * 1e6:.1f} us")
    print(f"added median latency: {(statistics.median(warm) - statistics.median(direct)) * 1e3:.2f} ms")
    if with_gateway:
        print(f"warm invocation through gateway + host ({len(through_gateway)}): {ms(through_gateway)}, "
              f"p90 {statistics.quantiles(through_gateway, n=10)[-1] * 1e3:.2f} ms")
        print(f"handler called directly on the payload 2.0 event, with JSON in and out ({n}): "
              f"median {statistics.median(direct_event) * 1e6:.1f} us")
        print(f"added median latency through gateway + host: "
              f"{(statistics.median(through_gateway) - statistics.median(direct_event)) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
