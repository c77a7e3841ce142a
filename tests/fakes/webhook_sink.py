#!/usr/bin/python3
"""webhook_sink.py - a fake receiver for clubd's signed JSON webhook.

Usage: webhook_sink.py SECRET_FILE
Listens on 127.0.0.1 (a free port, printed as the first stdout line) and
answers by path:
  /ok        verify the request, 200 {"id": "prov-<message id>"}
  /noid      verify, 200 with a plain-text body (no provider id)
  /conn      verify, 200 {"id": "conn-<n>"}: n numbers TCP connections
  /unsigned  200 only when no signature header was sent, else 400
  /429       429 with "Retry-After: 7"
  /429date   429 with Retry-After as an HTTP-date 120 s ahead
  /500 /400 /408   that status
  /302       a redirect (clubd must not follow it)
  /slow      sleep 5 s, then 200
  /big       200 with a 100 KiB body
Verification failures answer 401 (bad or missing signature) or 422 (a
missing field or a header that disagrees with the body), so the client
sees a PERMFAIL it cannot mistake for success.  Stop it with SIGTERM.
"""
import email.utils
import hashlib
import hmac
import itertools
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = b""
FIELDS = ("id", "channel", "category", "contact_id", "to", "subject", "text",
          "html", "attempt", "created_at")
conn_ids = itertools.count(1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.conn_id = next(conn_ids)

    def log_message(self, fmt, *args):  # quiet
        pass

    def answer(self, code, body=b"", ctype="application/json", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def verify(self, body, signed=True):
        """None when the request is good, else (status, reason)."""
        try:
            doc = json.loads(body)
        except ValueError:
            return 422, "body is not JSON"
        if not isinstance(doc, dict):
            return 422, "body is not an object"
        for f in FIELDS:
            if f not in doc:
                return 422, "missing " + f
        if self.headers.get("Content-Type") != "application/json":
            return 422, "content type"
        if self.headers.get("X-Clubd-Message-Id") != doc["id"]:
            return 422, "message id header"
        ts = self.headers.get("X-Clubd-Timestamp", "")
        if not ts.isdigit() or abs(int(ts) - time.time()) > 300:
            return 422, "timestamp"
        sig = self.headers.get("X-Clubd-Signature")
        if not signed:
            return (400, "unexpected signature") if sig else None
        want = "sha256=" + hmac.new(SECRET, ts.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
        if not sig or not hmac.compare_digest(sig, want):
            return 401, "bad signature"
        return None

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        path = self.path
        if path == "/slow":
            time.sleep(5)
            return self.answer(200, b"{}")
        if path in ("/500", "/400", "/408"):
            return self.answer(int(path[1:]), b'{"error":"x"}')
        if path == "/429":
            return self.answer(429, b"", extra=[("Retry-After", "7")])
        if path == "/429date":
            when = email.utils.formatdate(time.time() + 120, usegmt=True)
            return self.answer(429, b"", extra=[("Retry-After", when)])
        if path == "/302":
            return self.answer(302, b"", extra=[("Location", "/ok")])
        if path == "/big":
            return self.answer(200, b"x" * (100 * 1024), "text/plain")
        bad = self.verify(body, signed=(path != "/unsigned"))
        if bad:
            return self.answer(bad[0], json.dumps({"error": bad[1]}).encode())
        doc = json.loads(body)
        if path in ("/ok", "/unsigned"):
            return self.answer(200, json.dumps({"id": "prov-" + doc["id"]}).encode())
        if path == "/noid":
            return self.answer(200, b"accepted", "text/plain")
        if path == "/conn":
            return self.answer(200, json.dumps({"id": "conn-%d" % self.conn_id}).encode())
        return self.answer(404, b"{}")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many concurrent connects, no SYN drops

    def handle_error(self, request, client_address):
        pass  # clients time out and hang up on purpose


def main():
    global SECRET
    with open(sys.argv[1], "rb") as f:
        SECRET = f.read().rstrip(b"\r\n")
    srv = Server(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
