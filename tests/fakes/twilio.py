#!/usr/bin/python3
"""twilio.py - a fake Twilio Messages API for clubd's tests.

Usage: twilio.py --account SID:AUTHTOKEN [--account ...] [--log FILE]
                 [--callbacks]

Listens on 127.0.0.1 (a free port, printed as the first stdout line) and
speaks the Programmable Messaging wire format:
  POST /2010-04-01/Accounts/{AccountSid}/Messages.json
       HTTP Basic auth (AccountSid:AuthToken), Content-Type
       application/x-www-form-urlencoded, parameters To, From or
       MessagingServiceSid, Body, StatusCallback.
  GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json
Answers, as Twilio writes them (application/json):
  201 the Message resource: sid "SM" + 32 hex, status "queued" ("accepted"
      with a MessagingServiceSid and no From), num_segments as a string
  401 {"code": 20003, "message": "Authenticate", ...}   bad credentials
  404 {"code": 20404, ...}          the URL names another account
  400 {"code": 21604|21602|21603|21211|21617, ...}       missing/bad input
Twilio's magic test numbers answer as they do with test credentials:
  +15005550001 21211 invalid number, +15005550002 21612 not reachable,
  +15005550003 21408 region not enabled, +15005550004 21610 unsubscribed
  (the recipient replied STOP), +15005550009 21614 not a mobile number.
Scripting:
  POST /_control/script  a JSON list of answers used one per following
      request (any recipient);
  POST /_control/number  {"to": "+98...", "answers": [...], "dlr":
      "delivered"|"undelivered"|"failed", "error_code": "30003"}: answers
      for that recipient first (before the global script), and the final
      status its status callbacks report;
  POST /_control/reset   clears both.
  POST /_control/inbound  {"url": "http://127.0.0.1:P/v1/inbound/twilio",
      "from": "+98...", "to": "+1500...", "body": "...", "sid": "SM..." (new
      when absent), "account": AccountSid (the first --account when absent),
      "bad_signature": false, "signed_url": the URL to sign (default url),
      "num_media": 0}: deliver an incoming message as Twilio's messaging
      webhook does (the full parameter set, form-encoded, signed with the
      account's auth token) to a loopback url; answers {"status", "body",
      "content_type", "sid"} of that request.
  An answer: {"status": 429, "code": 20429, "message": "Too Many Requests",
  "retry_after": "3", "delay_ms": 0} (a Twilio error body), {"status": 500,
  "body": "raw text"} (that body as text/plain), or {"status": 201,
  "twilio_status": "failed", "num_segments": "3"} (a Message resource with
  that status and/or segment count).
Recording: every Messages request is appended to --log as one JSON line:
  {"method", "path", "account", "auth_ok", "content_type", "raw_body",
   "params": {name: value}, "repeated": [names given twice],
   "segments", "answer": status, "sid"}; no credentials are recorded.
Callbacks (--callbacks): after a 201 whose StatusCallback points at
127.0.0.1/localhost/::1, POST "sent" and then the final status to it,
form-encoded and signed with X-Twilio-Signature, as Twilio does.  Other
hosts are never called.
Stop it with SIGTERM.
"""
import argparse
import base64
import hashlib
import hmac
import json
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNTS = {}
LOG = None
CALLBACKS = False
script = []
numbers = {}
messages = {}
lock = threading.Lock()

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXT = "^{}\\[~]|€\f"

MAGIC = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number: +15005550002, is not currently "
                            "reachable using the 'From' phone number via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region "
                            "indicated by the 'To' number: +15005550003."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


def segments(text):
    """Parts a handset sees: GSM 7-bit 160/153, else UCS-2 70/67."""
    if all(ch in GSM_BASIC or ch in GSM_EXT for ch in text):
        units = sum(2 if ch in GSM_EXT else 1 for ch in text)
        single, multi = 160, 153
    else:
        units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)
        single, multi = 70, 67
    if units <= single:
        return 1
    return -(-units // multi)


def record(entry):
    if not LOG:
        return
    with lock:
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")


def signature(token, url, params):
    s = url + "".join(k + v for k, v in sorted(set(params.items())))
    mac = hmac.new(token.encode(), s.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def send_callbacks(token, url, msg, final, error_code):
    host = urllib.parse.urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        return
    for status in ("sent", final):
        params = {"AccountSid": msg["account_sid"], "ApiVersion": "2010-04-01",
                  "From": msg["from"] or "", "MessageSid": msg["sid"],
                  "MessageStatus": status, "SmsSid": msg["sid"], "SmsStatus": status,
                  "To": msg["to"]}
        if status in ("undelivered", "failed") and error_code:
            params["ErrorCode"] = error_code
        data = urllib.parse.urlencode(params).encode()
        rq = urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature(token, url, params),
            "User-Agent": "TwilioProxy/1.1"})
        try:
            urllib.request.urlopen(rq, timeout=5).read()
        except Exception:  # the receiver's problem; Twilio does not retry either
            pass


def deliver_inbound(item):
    """POST one incoming SMS to clubd the way Twilio's messaging webhook does."""
    url = item["url"]
    if urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return {"status": None, "body": "refused: not a loopback url"}
    account = item.get("account") or next(iter(ACCOUNTS))
    token = ACCOUNTS[account]
    sid = item.get("sid") or "SM" + secrets.token_hex(16)
    params = {"ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid,
              "NumMedia": str(item.get("num_media", 0)), "ToCity": "", "FromZip": "",
              "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
              "Body": item.get("body", ""), "FromCountry": "IR", "To": item.get("to", ""),
              "MessagingServiceSid": "", "ToZip": "", "NumSegments": "1",
              "MessageSid": sid, "AccountSid": account, "From": item.get("from", ""),
              "ApiVersion": "2010-04-01"}
    sig = signature(token, item.get("signed_url") or url, params)
    if item.get("bad_signature"):
        sig = signature(token + "x", url, params)
    data = urllib.parse.urlencode(params).encode()
    rq = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "X-Twilio-Signature": sig, "I-Twilio-Idempotency-Token": secrets.token_hex(8),
        "User-Agent": "TwilioProxy/1.1"})
    try:
        with urllib.request.urlopen(rq, timeout=10) as r:
            return {"status": r.status, "body": r.read().decode("utf-8", "replace"),
                    "content_type": r.headers.get("Content-Type", ""), "sid": sid}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode("utf-8", "replace"),
                "content_type": e.headers.get("Content-Type", ""), "sid": sid}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    pending = None  # the record of this request, written before the answer

    def reply(self, code, body, ctype="application/json; charset=utf-8", extra=()):
        if not isinstance(body, bytes):
            body = body.encode("utf-8")
        if self.pending is not None:
            # record first: a client reading the log after the answer sees it
            self.pending["answer"] = code
            if code >= 300:
                self.pending["sid"] = None
            record(self.pending)
            self.pending = None
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Twilio-Request-Id", "RQ" + secrets.token_hex(16))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, code, message, extra=()):
        body = {"code": code, "message": message,
                "more_info": "https://www.twilio.com/docs/errors/%d" % code,
                "status": status}
        self.reply(status, json.dumps(body), extra=extra)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def auth(self):
        h = self.headers.get("Authorization", "")
        if not h.startswith("Basic "):
            return None
        try:
            user, _, pw = base64.b64decode(h[6:], validate=True).decode().partition(":")
        except Exception:
            return None
        if user in ACCOUNTS and hmac.compare_digest(ACCOUNTS[user], pw):
            return user
        return None

    def control(self, raw):
        global script, numbers
        if self.path == "/_control/script":
            items = json.loads(raw or b"[]")
            with lock:
                script.extend(items)
            return self.reply(200, "{}")
        if self.path == "/_control/number":
            item = json.loads(raw or b"{}")
            with lock:
                n = numbers.setdefault(item["to"], {"answers": []})
                n["answers"].extend(item.get("answers", []))
                for k in ("dlr", "error_code"):
                    if k in item:
                        n[k] = item[k]
            return self.reply(200, "{}")
        if self.path == "/_control/inbound":
            return self.reply(200, json.dumps(deliver_inbound(json.loads(raw or b"{}"))))
        if self.path == "/_control/reset":
            with lock:
                script = []
                numbers = {}
            return self.reply(200, "{}")
        return self.error(404, 20404, "The requested resource was not found")

    def do_GET(self):
        m = re.fullmatch(r"/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})/Messages/(SM[0-9a-f]{32})"
                         r"\.json", urllib.parse.urlsplit(self.path).path)
        if not m:
            return self.error(404, 20404, "The requested resource was not found")
        user = self.auth()
        if user is None:
            return self.error(401, 20003, "Authenticate")
        with lock:
            msg = messages.get(m.group(2))
        if user != m.group(1) or msg is None or msg["account_sid"] != user:
            return self.error(404, 20404, "The requested resource %s was not found" % self.path)
        self.reply(200, json.dumps(msg))

    def do_POST(self):
        raw = self.read_body()
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/_control/"):
            return self.control(raw)
        m = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/Messages\.json", path)
        if not m:
            return self.error(404, 20404, "The requested resource %s was not found" % path)
        user = self.auth()
        ctype = self.headers.get("Content-Type", "")
        entry = {"method": "POST", "path": path, "account": m.group(1),
                 "auth_ok": user is not None, "content_type": ctype,
                 "raw_body": raw.decode("utf-8", "replace")}
        pairs = urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        params, repeated = {}, []
        for k, v in pairs:
            if k in params:
                repeated.append(k)
            params[k] = v
        entry["params"] = params
        entry["repeated"] = repeated
        entry["sid"] = None
        self.pending = entry
        self.messages(user, m.group(1), ctype, params, entry)

    def messages(self, user, path_sid, ctype, params, entry):
        """Validate like Twilio, answer, return (status, sid)."""
        if user is None:
            self.error(401, 20003, "Authenticate")
            return 401, None
        if user != path_sid:
            self.error(404, 20404, "The requested resource /2010-04-01/Accounts/%s/"
                       "Messages.json was not found" % path_sid)
            return 404, None
        if ctype.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            self.error(400, 20001, "Unsupported content type")
            return 400, None
        to = params.get("To")
        body = params.get("Body", "")
        entry["segments"] = segments(body)
        with lock:
            n = numbers.get(to or "")
            step = n["answers"].pop(0) if n and n["answers"] else None
            if step is None and script:
                step = script.pop(0)
            dlr = (n or {}).get("dlr", "delivered")
            error_code = (n or {}).get("error_code")
        if step is not None and step.get("delay_ms"):
            time.sleep(step["delay_ms"] / 1000.0)
        if step is not None and not (200 <= step.get("status", 201) < 300 and
                                     "body" not in step):
            st = step.get("status", 500)
            extra = [("Retry-After", str(step["retry_after"]))] if "retry_after" in step else []
            if "body" in step:
                self.reply(st, step["body"], "text/plain; charset=utf-8", extra)
            else:
                self.error(st, step.get("code", 20500), step.get("message", "Internal error"),
                           extra)
            return st, None
        if not to:
            self.error(400, 21604, "A 'To' phone number is required.")
            return 400, None
        if not params.get("From") and not params.get("MessagingServiceSid"):
            self.error(400, 21603, "A 'From' phone number is required.")
            return 400, None
        if not body:
            self.error(400, 21602, "Message body is required.")
            return 400, None
        if not E164.match(to):
            self.error(400, 21211, "The 'To' number %s is not a valid phone number." % to)
            return 400, None
        if len(body) > 1600:
            self.error(400, 21617, "The concatenated message body exceeds the 1600 character "
                                   "limit.")
            return 400, None
        if to in MAGIC:
            code, text = MAGIC[to]
            self.error(400, code, text)
            return 400, None
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True).replace("GMT", "+0000")
        mss = params.get("MessagingServiceSid")
        status = "accepted" if mss and not params.get("From") else "queued"
        if step is not None and "twilio_status" in step:
            status = step["twilio_status"]
        nseg = str(entry["segments"])
        if step is not None and "num_segments" in step:
            nseg = step["num_segments"]
        msg = {"account_sid": user, "api_version": "2010-04-01", "body": body,
               "date_created": now, "date_sent": None, "date_updated": now,
               "direction": "outbound-api", "error_code": None, "error_message": None,
               "from": params.get("From"), "messaging_service_sid": mss,
               "num_media": "0", "num_segments": nseg, "price": None,
               "price_unit": "USD", "sid": sid, "status": status,
               "subresource_uris": {"media": "/2010-04-01/Accounts/%s/Messages/%s/Media.json"
                                    % (user, sid)},
               "to": to, "uri": "/2010-04-01/Accounts/%s/Messages/%s.json" % (user, sid)}
        with lock:
            messages[sid] = msg
        entry["sid"] = sid
        self.reply(step.get("status", 201) if step else 201, json.dumps(msg))
        cb = params.get("StatusCallback")
        if CALLBACKS and cb:
            threading.Thread(target=send_callbacks,
                             args=(ACCOUNTS[user], cb, msg, dlr, error_code),
                             daemon=True).start()
        return 201, sid


def main():
    global LOG, CALLBACKS
    ap = argparse.ArgumentParser()
    ap.add_argument("--account", action="append", default=[], help="SID:AUTHTOKEN")
    ap.add_argument("--log")
    ap.add_argument("--callbacks", action="store_true")
    a = ap.parse_args()
    for acc in a.account:
        sid, _, tok = acc.partition(":")
        ACCOUNTS[sid] = tok
    LOG = a.log
    CALLBACKS = a.callbacks
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
