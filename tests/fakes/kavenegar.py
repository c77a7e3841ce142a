#!/usr/bin/python3
"""kavenegar.py - a fake Kavenegar REST API for clubd's tests.

Usage: kavenegar.py --key APIKEY [--key ...] [--line 10004346 ...]
                    [--credit RIALS] [--part-cost RIALS] [--log FILE]

Listens on 127.0.0.1 (a free port, printed as the first stdout line) and
speaks Kavenegar's wire format: every method is /v1/{APIKEY}/{scope}/
{method}.json, called with GET (query string) or POST (form-urlencoded),
answering JSON {"return": {"status": N, "message": "..."}, "entries": ...}
with the HTTP status equal to return.status (200, or the error code):
  sms/send.json                 receptor, sender, message, localid
  sms/status.json               messageid=a,b,...
  sms/statuslocalmessageid.json localid=a,b,... (at most 500)
  account/info.json             remaincredit
  sms/receive.json              linenumber, isread: the inbox of that line
                                (isread=0: unread messages, which this call
                                marks read, as Kavenegar does; isread=1: read
                                ones), at most 100, oldest first: entries
                                {messageid, message, sender, receptor, date}
An unknown key answers 403, an unknown method 404.  send checks the
receptor (09xxxxxxxxx or 989xxxxxxxxx; comma-separated lists allowed, each
checked: 411), the sender (one of --line; the first is the default: 412),
the message (non-empty, at most 900 characters: 413), localid (digits, as
Kavenegar stores a long: 400) and the credit (parts x --part-cost: 418).
A localid already used returns the earlier message again, unsent and
uncharged ("duplicate": true in the record).
Scripting:
  POST /_control/script  a JSON list of answers, one per following API call;
  POST /_control/number  {"receptor": "989...", "answers": [...],
      "dlr": 11}: answers for sends to that receptor first, and the status
      its messages report when polled (default 10, delivered);
  POST /_control/credit  {"credit": N};   POST /_control/reset.
  POST /_control/inbox  {"messages": [{"message": "...", "sender":
      "0912...", "receptor": "3000...", "messageid": N (new when absent),
      "date": T (now when absent)}]}: incoming SMS, unread; a messageid
      already delivered comes back unread (a provider duplicate).  Answers
      {"messageids": [...]}.
  An answer: {"return": 418} (that error, Persian message, HTTP 418),
  {"http": 502, "body": "<html>..."} (a raw body), {"return": 200,
  "entry_status": 14} (accepted, entry with that status); each may add
  "retry_after": "5" and "delay_ms": 300.
Recording: every API call is appended to --log as one JSON line:
  {"method", "endpoint" ("sms/send"), "key_ok", "raw_path" (the key as
   ***), "raw_query", "content_type", "raw_body", "params", "receptors",
   "answer" (return.status), "http", "messageid", "duplicate"}; the key is
   never recorded.
Stop it with SIGTERM.
"""
import argparse
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEYS = set()
LINES = []
LOG = None
PART_COST = 120
credit = 10 ** 9
script = []
numbers = {}
by_id = {}
by_local = {}
next_id = [8792343]
inbox = []  # incoming messages: dict + "_read"
next_in = [500000001]
lock = threading.Lock()

MESSAGES = {
    200: "تایید شد",
    400: "پارامترها ناقص هستند",
    401: "حساب کاربری غیرفعال شده است",
    402: "عملیات ناموفق بود",
    403: "کد شناسائی API-Key معتبر نمیباشد",
    404: "متد نامشخص است",
    405: "متد Get/Post اشتباه است",
    406: "پارامترهای اجباری خالی ارسال شده اند",
    407: "دسترسی به اطلاعات مورد نظر برای شما امکان پذیر نیست",
    409: "سرور قادر به پاسخگوئی نیست بعدا تلاش کنید",
    411: "دریافت کننده نامعتبر است",
    412: "ارسال کننده نامعتبر است",
    413: "پیام خالی است و یا طول پیام بیش از حد مجاز میباشد",
    414: "حجم درخواست بیشتر از حد مجاز است",
    416: "IP سرویس مبدا با تنظیمات مطابقت ندارد",
    418: "اعتبار شما کافی نمیباشد",
    422: "داده ها به دلیل وجود کاراکتر نامناسب قابل پردازش نیست",
    429: "IP محدود شده است",
    451: "فراخوانی بیش از حد در بازه زمانی مشخص IP محدود شده",
}
STATUS_TEXT = {
    1: "در صف ارسال", 2: "زمان بندی شده", 4: "ارسال شده به مخابرات",
    5: "ارسال شده به مخابرات", 6: "خطا در ارسال پیام", 10: "رسیده به گیرنده",
    11: "نرسیده به گیرنده", 13: "ارسال پیام لغو شده", 14: "بلاک شده است",
    100: "شناسه پیامک نامعتبر است",
}
RECEPTOR = re.compile(r"^(09[0-9]{9}|989[0-9]{9})$")

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXT = "^{}\\[~]|€\f"


def parts(text):
    if all(ch in GSM_BASIC or ch in GSM_EXT for ch in text):
        units, single, multi = sum(2 if ch in GSM_EXT else 1 for ch in text), 160, 153
    else:
        units, single, multi = sum(2 if ord(ch) > 0xFFFF else 1 for ch in text), 70, 67
    return 1 if units <= single else -(-units // multi)


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

    pending = None  # the record of this call, written before the answer

    def reply(self, http, body, ctype="application/json; charset=utf-8", extra=()):
        if not isinstance(body, bytes):
            body = body.encode("utf-8")
        if self.pending is not None:
            # record first: a client reading the log after the answer sees it
            record(self.pending)
            self.pending = None
        self.send_response(http)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def answer(self, status, entries=None, extra=()):
        body = {"return": {"status": status, "message": MESSAGES.get(status, "خطا")},
                "entries": entries}
        self.reply(200 if status == 200 else status, json.dumps(body, ensure_ascii=False),
                   extra=extra)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def control(self, path, raw):
        global script, numbers, credit
        item = json.loads(raw or b"null")
        with lock:
            if path == "/_control/script":
                script.extend(item)
            elif path == "/_control/number":
                n = numbers.setdefault(item["receptor"], {"answers": []})
                n["answers"].extend(item.get("answers", []))
                if "dlr" in item:
                    n["dlr"] = item["dlr"]
            elif path == "/_control/credit":
                credit = item["credit"]
            elif path == "/_control/inbox":
                ids = []
                for m in item.get("messages", []):
                    mid = m.get("messageid")
                    if mid is None:
                        mid = next_in[0]
                        next_in[0] += 1
                    inbox.append({"messageid": mid, "message": m.get("message", ""),
                                  "sender": m.get("sender", ""),
                                  "receptor": m.get("receptor", LINES[0] if LINES else ""),
                                  "date": m.get("date", int(time.time())), "_read": False})
                    ids.append(mid)
                self.send_response(200)
                body = json.dumps({"messageids": ids}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            elif path == "/_control/reset":
                script, numbers = [], {}
            else:
                return self.reply(404, "{}")
        self.reply(200, "{}")

    def do_GET(self):
        self.handle_any(b"")

    def do_POST(self):
        self.handle_any(self.read_body())

    def handle_any(self, raw):
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/_control/"):
            return self.control(url.path, raw)
        m = re.fullmatch(r"/v1/([^/]+)/([a-z]+)/([a-z]+)\.json", url.path)
        key = urllib.parse.unquote(m.group(1)) if m else None
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        ctype = self.headers.get("Content-Type", "")
        text = raw.decode("utf-8", "replace")
        if raw:
            params.update(urllib.parse.parse_qsl(text, keep_blank_values=True))
        entry = {"method": self.command,
                 "endpoint": "%s/%s" % (m.group(2), m.group(3)) if m else url.path,
                 "key_ok": key in KEYS,
                 "raw_path": re.sub(r"^/v1/[^/]+/", "/v1/***/", url.path),
                 "raw_query": url.query, "content_type": ctype, "raw_body": text,
                 "params": params}
        self.pending = entry
        if not m:
            entry.update(answer=404, http=404)
            return self.answer(404)
        if key not in KEYS:
            entry.update(answer=403, http=403)
            return self.answer(403)
        if self.scripted(entry, params) is not None:
            return
        fn = {"sms/send": self.send_sms, "sms/status": self.status,
              "sms/statuslocalmessageid": self.status_local,
              "account/info": self.info, "sms/receive": self.receive}.get(entry["endpoint"])
        if fn is None:
            status, entries = 404, None
        else:
            status, entries = fn(params, entry)
        entry.update(answer=status, http=200 if status == 200 else status)
        self.answer(status, entries)

    def scripted(self, entry, params):
        """Answer from a script when one applies; None otherwise."""
        step = None
        with lock:
            if entry["endpoint"] == "sms/send":
                n = numbers.get(params.get("receptor", ""))
                if n and n["answers"]:
                    step = n["answers"].pop(0)
            if step is None and script:
                step = script.pop(0)
        if step is None:
            return None
        if step.get("delay_ms"):
            time.sleep(step["delay_ms"] / 1000.0)
        extra = [("Retry-After", str(step["retry_after"]))] if "retry_after" in step else []
        if "http" in step:
            entry.update(answer=None, http=step["http"])
            self.reply(step["http"], step.get("body", ""), "text/html", extra)
            return True
        status = step.get("return", 200)
        if status == 200 and entry["endpoint"] == "sms/send":
            st, entries = self.send_sms(params, entry, step.get("entry_status"))
            entry.update(answer=st, http=200 if st == 200 else st)
            self.answer(st, entries, extra)
            return True
        entry.update(answer=status, http=200 if status == 200 else status)
        self.answer(status, [] if status == 200 else None, extra)
        return True

    def send_sms(self, params, entry, entry_status=None):
        global credit
        receptors = [r for r in params.get("receptor", "").split(",") if r != ""]
        entry["receptors"] = len(receptors)
        message = params.get("message", "")
        sender = params.get("sender") or (LINES[0] if LINES else "")
        localid = params.get("localid")
        if not receptors:
            return 406, None
        if any(not RECEPTOR.match(r) for r in receptors):
            return 411, None
        if LINES and sender not in LINES:
            return 412, None
        if not message or len(message) > 900:
            return 413, None
        if localid is not None and (not re.fullmatch(r"[0-9]{1,19}", localid) or
                                    int(localid) >= 2 ** 63):
            return 400, None
        n = parts(message)
        cost = n * PART_COST
        entries = []
        with lock:
            if localid is not None and localid in by_local:
                entry["duplicate"] = True
                msg = by_id[by_local[localid]]
                entry["messageid"] = msg["messageid"]
                return 200, [dict((k, msg[k]) for k in msg if not k.startswith("_"))]
            if credit < cost * len(receptors):
                return 418, None
            for r in receptors:
                credit -= cost
                mid = next_id[0]
                next_id[0] += 1
                st = entry_status if entry_status is not None else 1
                dlr = numbers.get(r, {}).get("dlr", 10)
                msg = {"messageid": mid, "message": message, "status": st,
                       "statustext": STATUS_TEXT.get(st, ""), "sender": sender,
                       "receptor": r, "date": int(time.time()), "cost": cost,
                       "_localid": localid, "_dlr": dlr if st == 1 else st}
                by_id[mid] = msg
                if localid is not None:
                    by_local[localid] = mid
                entries.append(dict((k, msg[k]) for k in msg if not k.startswith("_")))
        entry["messageid"] = entries[0]["messageid"]
        entry["parts"] = n
        return 200, entries

    def status(self, params, entry):
        ids = [i for i in params.get("messageid", "").split(",") if i]
        if not ids:
            return 406, None
        if len(ids) > 500:
            return 414, None
        out = []
        with lock:
            for i in ids:
                msg = by_id.get(int(i)) if i.isdigit() else None
                st = msg["_dlr"] if msg else 100
                out.append({"messageid": int(i) if i.isdigit() else 0, "status": st,
                            "statustext": STATUS_TEXT.get(st, "")})
        return 200, out

    def status_local(self, params, entry):
        ids = [i for i in params.get("localid", "").split(",") if i]
        entry["localids"] = len(ids)
        if not ids:
            return 406, None
        if len(ids) > 500:
            return 414, None
        out = []
        with lock:
            for lid in ids:
                mid = by_local.get(lid)
                msg = by_id.get(mid) if mid else None
                st = msg["_dlr"] if msg else 100
                out.append({"messageid": mid or 0, "localid": lid, "status": st,
                            "statustext": STATUS_TEXT.get(st, "")})
        return 200, out

    def receive(self, params, entry):
        line = params.get("linenumber", "")
        isread = params.get("isread", "0")
        if not line or isread not in ("0", "1"):
            return 406, None
        if LINES and line not in LINES:
            return 412, None
        want_read = isread == "1"
        out = []
        with lock:
            for m in inbox:
                if len(out) == 100:
                    break
                if m["receptor"] == line and m["_read"] == want_read:
                    out.append(dict((k, v) for k, v in m.items() if not k.startswith("_")))
                    m["_read"] = True
        entry["returned"] = [m["messageid"] for m in out]
        return 200, out

    def info(self, params, entry):
        with lock:
            return 200, {"remaincredit": credit, "expiredate": 0, "type": "master"}


def main():
    global LOG, PART_COST, credit
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", action="append", default=[])
    ap.add_argument("--line", action="append", default=[])
    ap.add_argument("--credit", type=int, default=10 ** 9)
    ap.add_argument("--part-cost", type=int, default=120)
    ap.add_argument("--log")
    a = ap.parse_args()
    KEYS.update(a.key)
    LINES.extend(a.line)
    LOG = a.log
    PART_COST = a.part_cost
    credit = a.credit
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
