#!/usr/bin/python3
"""generic_sms.py - a fake "local SMS provider" with several simple HTTP APIs,
for clubd's generic_http driver tests.

Usage: generic_sms.py --key API_KEY [--log FILE]

Listens on 127.0.0.1 (a free port, printed as the first stdout line).  APIs,
each checking the key and answering like the small providers do:
  POST /json/send   JSON {"to", "text", "from", "id"}, key in
                    "Authorization: Bearer KEY"
                    -> 200 {"status": 0, "message_id": "gm-N"}
                    bad key -> 401 {"error": "invalid api key KEY"} (the key
                    echoed on purpose: clubd must redact it)
                    bad JSON or a missing field -> 400 {"error": ...}
  POST /form/send   application/x-www-form-urlencoded key, to, text, from
                    -> 200 "OK N", bad key -> 403 "ERR bad key KEY"
  GET  /get/send?key=..&to=..&text=..   -> 200 {"ok": true, "id": N}; a bad
                    key is still 200: {"ok": false, "error": "bad key KEY"}
  POST /xml/send    XML <sms><to/><text/><key/></sms>
                    -> 200 <response><status>0</status><id>N</id></response>,
                    bad key -> 200 <response><status>7</status></response>
Scripting: POST /_control/script with a JSON list of answers used one per
following API request instead of the normal answer (the request is still
recorded): {"status": 429, "body": "...", "headers": {"Retry-After": "5"},
"content_type": "application/json", "delay_ms": 0}.  POST /_control/reset
clears it.
Recording: every API request is appended to --log as one JSON line:
  {"method", "path", "query": {..}, "headers": {lower-case name: value},
   "body": text, "json": parsed or null, "form": {..} or null,
   "xml": {tag: text} or null, "key_ok": bool, "answer": status}
Stop it with SIGTERM.
"""
import argparse
import itertools
import json
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = ""
LOG = None
script = []
lock = threading.Lock()
ids = itertools.count(1)


def record(entry):
    if not LOG:
        return
    with lock:
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def answer(self, code, body, ctype="application/json", extra=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.handle_any(b"")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.handle_any(self.rfile.read(n) if n else b"")

    def do_PUT(self):
        self.do_POST()

    def control(self, path, raw):
        global script
        if path == "/_control/script":
            with lock:
                script.extend(json.loads(raw or b"[]"))
            return self.answer(200, {"ok": True})
        if path == "/_control/reset":
            with lock:
                script = []
            return self.answer(200, {"ok": True})
        return self.answer(404, {"error": "no such control"})

    def handle_any(self, raw):
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/_control/"):
            return self.control(url.path, raw)
        text = raw.decode("utf-8", errors="replace")
        entry = {
            "method": self.command, "path": url.path,
            "query": dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True)),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": text, "json": None, "form": None, "xml": None, "key_ok": False,
        }
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype == "application/json":
            try:
                entry["json"] = json.loads(text)
            except ValueError:
                pass
        elif ctype == "application/x-www-form-urlencoded":
            entry["form"] = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
        elif ctype in ("application/xml", "text/xml"):
            try:
                root = ET.fromstring(raw)
                entry["xml"] = {c.tag: (c.text or "") for c in root}
                entry["xml"]["@root"] = root.tag
            except ET.ParseError:
                pass
        status, body, rtype, extra = self.api(url.path, entry)
        with lock:
            step = script.pop(0) if script else None
        if step is not None:
            status = step.get("status", 200)
            body = step.get("body", "")
            rtype = step.get("content_type", "text/plain")
            extra = list(step.get("headers", {}).items())
            if step.get("delay_ms"):
                time.sleep(step["delay_ms"] / 1000.0)
        entry["answer"] = status
        record(entry)
        self.answer(status, body, rtype, extra)

    def api(self, path, e):
        """The normal answer: (status, body, content type, extra headers)."""
        J = "application/json"
        if path == "/json/send":
            auth = self.headers.get("Authorization", "")
            key = auth[7:] if auth.startswith("Bearer ") else ""
            e["key_ok"] = key == KEY
            if not e["key_ok"]:
                return 401, {"error": "invalid api key " + key}, J, []
            doc = e["json"]
            if not isinstance(doc, dict) or not all(
                    isinstance(doc.get(f), str) for f in ("to", "text")):
                return 400, {"error": "bad request"}, J, []
            return 200, {"status": 0, "message_id": "gm-%d" % next(ids)}, J, []
        if path == "/form/send":
            form = e["form"] or {}
            e["key_ok"] = form.get("key") == KEY
            if not e["key_ok"]:
                return 403, "ERR bad key " + form.get("key", ""), "text/plain", []
            if not form.get("to") or "text" not in form:
                return 400, "ERR missing to or text", "text/plain", []
            return 200, "OK %d" % next(ids), "text/plain", []
        if path == "/get/send":
            q = e["query"]
            e["key_ok"] = q.get("key") == KEY
            if not e["key_ok"]:
                return 200, {"ok": False, "error": "bad key " + q.get("key", "")}, J, []
            return 200, {"ok": True, "id": next(ids)}, J, []
        if path == "/xml/send":
            x = e["xml"] or {}
            e["key_ok"] = x.get("key") == KEY
            if not e["key_ok"]:
                return 200, "<response><status>7</status></response>", "application/xml", []
            return (200, "<response><status>0</status><id>%d</id></response>" % next(ids),
                    "application/xml", [])
        return 404, {"error": "not found"}, J, []


def main():
    global KEY, LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True)
    ap.add_argument("--log")
    a = ap.parse_args()
    KEY = a.key
    LOG = a.log
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
