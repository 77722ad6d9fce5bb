"""The gateway's Lambda upstream against its HTTP upstream, fronting the same local handler.

One Python process (asyncio, kept-alive HTTP/1.1) serves one handler two ways: as a Lambda
Invoke API (`POST /2015-03-31/functions/bench/invocations`: the event is parsed as JSON,
the handler runs, its `{"statusCode", "headers", "body"}` answer is returned) and as a plain
HTTP upstream (any other path: the handler runs, its body is returned). The endpoint does
not verify the signature (the gateway still signs every invocation). The gateway (a real
`writ gateway`, two public routes, no server: public routes do not need the control
plane) fronts both; a Python client on one kept-alive TLS connection sends GET requests
one at a time, alternating blocks of BLOCK requests per path, ROUNDS times, and prints the
median and p90 latency of each path, and the Lambda route's added median over the HTTP
route's.

    python3 bench/gateway_lambda.py [WRIT_BIN] [ROUNDS] [BLOCK]
    # defaults: $CARGO_TARGET_DIR/release/writ, 20 rounds of 200

Not run by CI.
"""

import asyncio
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def handler(event):
    return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": "ok"}


class Upstream(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            target = head[0].split(" ")[1]
            if target.startswith("/2015-03-31/functions/"):
                out = json.dumps(handler(json.loads(body))).encode()
                ctype = b"application/json"
            else:
                answer = handler({"rawPath": target})
                out = answer["body"].encode()
                ctype = b"text/plain"
            self.t.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: " + ctype
                + b"\r\ncontent-length: " + str(len(out)).encode() + b"\r\n\r\n" + out
            )


def serve_upstream(ready):
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(Upstream, "127.0.0.1", 0))
    ready.append(server.sockets[0].getsockname()[1])
    loop.run_forever()


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/writ/target"))
    writ = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "release", "writ")
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    block = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    work = tempfile.mkdtemp(prefix="writ-gwlambda-")
    ready = []
    threading.Thread(target=serve_upstream, args=(ready,), daemon=True).start()
    while not ready:
        time.sleep(0.01)
    up = ready[0]
    cert, key = os.path.join(work, "gw.pem"), os.path.join(work, "gw.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    with open(os.path.join(work, "token"), "w") as f:
        f.write("unused")
    config = f"""
listen = "127.0.0.1:0"
trust_domain = "example.org"
state_dir = "state"
workers = 1
[server]
addr = "https://127.0.0.1:1"
ca_file = "{cert}"
token_file = "token"
[tls]
cert = "{cert}"
key = "{key}"
[[route]]
name = "http"
function = "bench"
path_prefix = "/http"
upstream = "http://127.0.0.1:{up}"
public = true
[[route]]
name = "lambda"
function = "bench"
path_prefix = "/lambda"
lambda = {{ function = "bench", region = "us-east-1", endpoint = "http://127.0.0.1:{up}" }}
public = true
"""
    with open(os.path.join(work, "gateway.toml"), "w") as f:
        f.write(config)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDBENCH", AWS_SECRET_ACCESS_KEY="bench-secret",
               WRIT_LOG="warn")
    gw = subprocess.Popen([writ, "gateway", "--config", os.path.join(work, "gateway.toml")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    port = None
    for line in gw.stdout:
        if "gateway listening on " in line:
            port = int(line.rsplit(":", 1)[1].split()[0])
            break
    threading.Thread(target=lambda: [None for _ in gw.stdout], daemon=True).start()
    ctx = ssl.create_default_context(cafile=cert)
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                           server_hostname="127.0.0.1")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = sock.makefile("rb")

    def get(path):
        sock.sendall(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode())
        status = reader.readline()
        length = 0
        while True:
            line = reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = reader.read(length)
        assert status.split()[1] == b"200" and body == b"ok", (status, body)

    times = {"/http": [], "/lambda": []}
    for path in times:
        for _ in range(200):
            get(path)
    for r in range(rounds):
        order = ["/http", "/lambda"] if r % 2 == 0 else ["/lambda", "/http"]
        for path in order:
            for _ in range(block):
                t = time.perf_counter()
                get(path)
                times[path].append(time.perf_counter() - t)
    gw.terminate()
    gw.wait()
    out = {}
    for path, ts in times.items():
        ts.sort()
        out[path] = {"median_us": round(statistics.median(ts) * 1e6, 1),
                     "p90_us": round(ts[int(len(ts) * 0.9)] * 1e6, 1), "n": len(ts)}
    added = out["/lambda"]["median_us"] - out["/http"]["median_us"]
    print(json.dumps({"http_upstream": out["/http"], "lambda_upstream": out["/lambda"],
                      "lambda_added_median_us": round(added, 1),
                      "ratio_median": round(out["/lambda"]["median_us"] / out["/http"]["median_us"], 3)}))


if __name__ == "__main__":
    main()
