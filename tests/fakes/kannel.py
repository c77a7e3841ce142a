#!/usr/bin/python3
"""kannel.py - a fake Kannel smsbox sendsms interface for clubd's tests.

Usage: kannel.py --user NAME:PASSWORD [--user ...] [--log FILE] [--queued]
                 [--path /cgi-bin/sendsms]

Listens on 127.0.0.1 (a free port, printed as the first stdout line) and
speaks smsbox's wire format:
  GET  /cgi-bin/sendsms?username=..&password=..&to=..&text=..   parameters
       in the query string (percent-encoded, '+' is a space);
  POST /cgi-bin/sendsms  the text as the body (text/plain or
       application/octet-stream, charset from Content-Type) with the
       parameters in X-Kannel-Username, X-Kannel-Password, X-Kannel-To,
       X-Kannel-From, X-Kannel-Coding, X-Kannel-DLR-Mask, X-Kannel-DLR-Url,
       X-Kannel-SMSC headers.  Any other POST content type (including
       application/x-www-form-urlencoded) is answered 400 "Invalid
       content-type", as smsbox does.
Answers, as smsbox writes them (Content-Type text/html):
  202 "0: Accepted for delivery"          (or "3: Queued for later
                                            delivery" with --queued)
  403 "Authorization failed for sendsms"  unknown user or wrong password
  400 "Missing receiver number, rejected" / "Empty receiver number not
      allowed, rejected" / "Invalid content-type" / "Invalid coding"
Scripting: POST /_control/script with a JSON list of answers, used one per
following sendsms request instead of the normal answer (the request is still
recorded):  {"status": 503, "body": "Temporal failure, try again later.",
"retry_after": "7", "delay_ms": 0}.  POST /_control/reset clears it.
Recording: every sendsms request is appended to --log as one JSON line:
  {"method", "path", "raw_query" (the password's value as ***),
   "params": {name: value} (password left out),
   "password_ok": bool, "user": str, "text": the decoded text,
   "coding": int|null, "gsm_only": bool, "content_type": str,
   "answer": status}
Stop it with SIGTERM.
"""
import argparse
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USERS = {}
LOG = None
QUEUED = False
PATH = "/cgi-bin/sendsms"
script = []
lock = threading.Lock()

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXT = "^{}\\[~]|€\f"


def gsm_only(text):
    return all(ch in GSM_BASIC or ch in GSM_EXT for ch in text)


def redact_query(q):
    """The query string as sent, the password's value replaced by ***."""
    parts = []
    for p in q.split("&") if q else []:
        name = p.split("=", 1)[0]
        parts.append(name + "=***" if name in ("password", "pass") else p)
    return "&".join(parts)


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

    def answer(self, code, text, extra=()):
        body = text.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "text/html")
        self.send_header("Pragma", "no-cache")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def control(self, raw):
        global script
        if self.path == "/_control/script":
            items = json.loads(raw or b"[]")
            with lock:
                script.extend(items)
            return self.answer(200, "ok")
        if self.path == "/_control/reset":
            with lock:
                script = []
            return self.answer(200, "ok")
        return self.answer(404, "Unknown request.")

    def do_GET(self):
        self.handle_any(b"")

    def do_POST(self):
        self.handle_any(self.read_body())

    def handle_any(self, raw):
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/_control/"):
            return self.control(raw)
        if url.path != PATH:
            return self.answer(404, "Unknown request.")
        entry = {"method": self.command, "path": url.path,
                 "content_type": self.headers.get("Content-Type", ""),
                 "raw_query": redact_query(url.query)}
        status, text = self.sendsms(url, raw, entry)
        with lock:
            step = script.pop(0) if script else None
        extra = []
        if step is not None:
            status = step.get("status", 202)
            text = step.get("body", "")
            if "retry_after" in step:
                extra.append(("Retry-After", str(step["retry_after"])))
            if step.get("delay_ms"):
                time.sleep(step["delay_ms"] / 1000.0)
        entry["answer"] = status
        record(entry)
        self.answer(status, text, extra)

    def sendsms(self, url, raw, entry):
        """Validate like smsbox; fill entry; return (status, text)."""
        if self.command == "GET" or not raw:
            params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            user = params.get("username", params.get("user"))
            password = params.pop("password", params.pop("pass", None))
            text_bytes = params.get("text", "").encode("utf-8")
            charset = params.get("charset", "UTF-8")
        else:
            ctype = self.headers.get("Content-Type", "")
            mtype = ctype.split(";")[0].strip().lower()
            if mtype not in ("text/plain", "application/octet-stream"):
                entry["params"] = {}
                return 400, "Invalid content-type"
            charset = "UTF-8"
            for part in ctype.split(";")[1:]:
                k, _, v = part.strip().partition("=")
                if k.lower() == "charset":
                    charset = v.strip().strip('"')
            params = {}
            for h, name in (("X-Kannel-Username", "username"), ("X-Kannel-To", "to"),
                            ("X-Kannel-From", "from"), ("X-Kannel-Coding", "coding"),
                            ("X-Kannel-DLR-Mask", "dlr-mask"),
                            ("X-Kannel-DLR-Url", "dlr-url"), ("X-Kannel-SMSC", "smsc")):
                v = self.headers.get(h)
                if v is not None:
                    params[name] = v.strip()
            user = params.get("username")
            password = self.headers.get("X-Kannel-Password")
            password = password.strip() if password is not None else None
            text_bytes = raw
            params["charset"] = charset
        entry["params"] = params
        entry["user"] = user
        ok = user is not None and password is not None and USERS.get(user) == password
        entry["password_ok"] = ok
        try:
            text = text_bytes.decode(charset)
        except (LookupError, UnicodeDecodeError):
            text = None
        entry["text"] = text
        coding = params.get("coding")
        entry["coding"] = int(coding) if coding is not None and coding.isdigit() else None
        entry["gsm_only"] = gsm_only(text or "")
        if not ok:
            return 403, "Authorization failed for sendsms"
        if "to" not in params:
            return 400, "Missing receiver number, rejected"
        if params["to"] == "":
            return 400, "Empty receiver number not allowed, rejected"
        if coding is not None and entry["coding"] not in (0, 1, 2):
            return 400, "Invalid coding"
        if text is None:
            return 400, "Invalid charset"
        if QUEUED:
            return 202, "3: Queued for later delivery"
        return 202, "0: Accepted for delivery"


def main():
    global LOG, QUEUED, PATH
    ap = argparse.ArgumentParser()
    ap.add_argument("--user", action="append", default=[], help="NAME:PASSWORD")
    ap.add_argument("--log")
    ap.add_argument("--queued", action="store_true")
    ap.add_argument("--path", default=PATH)
    a = ap.parse_args()
    for u in a.user:
        name, _, pw = u.partition(":")
        USERS[name] = pw
    LOG = a.log
    QUEUED = a.queued
    PATH = a.path
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
