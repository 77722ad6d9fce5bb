"""A stand-in for the payments function behind the README's gateway: it answers every
request with who called it (the gateway's verified `x-writ-caller`), the method, the path
and the body's size. Standard library only.

    python3 examples/payments.py 127.0.0.1:9001
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Payments(BaseHTTPRequestHandler):
    def answer(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = json.dumps(
            {
                "function": "payments",
                "caller": self.headers.get("x-writ-caller"),
                "method": self.command,
                "path": self.path,
                "bytes": len(body),
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = answer

    def log_message(self, format, *args):
        pass


def main():
    host, _, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9001").rpartition(":")
    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Payments)
    print(f"payments listening on http://{host or '127.0.0.1'}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
