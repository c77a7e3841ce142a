#!/usr/bin/python3
"""botapi.py - a fake Telegram-compatible Bot API server (Telegram, Bale).

Usage: botapi.py RECORD_JSONL PREFIX=TOKEN_FILE [PREFIX=TOKEN_FILE ...]

Listens on 127.0.0.1 (a free port, printed as the first stdout line) and
serves POST PREFIX/bot<TOKEN>/sendMessage for each PREFIX ("" for the root,
"/bale" for a second API under a path), each with its own token read from
TOKEN_FILE (one trailing LF or CRLF stripped, as clubd does).  Only
application/json bodies are accepted, as clubd sends.  Every request to a
.../sendMessage path is appended to RECORD_JSONL before it is answered, one
JSON object a line:
  {"n", "prefix", "token_ok", "content_type", "body" (parsed JSON or null),
   "raw_hex" (the body bytes in hex)}
The token itself is never written to the record.

Answers have the real API's shapes:
  {"ok":true,"result":{"message_id":N,"from":{...},"chat":{...},"date":T,"text":...}}
  {"ok":false,"error_code":C,"description":"...","parameters":{...}}
Wrong token: 401 Unauthorized.  Unknown path or method: 404 Not Found.
Scripted by chat_id (integers):
  403     403 Forbidden: bot was blocked by the user
  4031    403 Forbidden: user is deactivated
  400     400 Bad Request: chat not found
  4000    400 group chat was upgraded, parameters.migrate_to_chat_id
  429     429 with parameters.retry_after 2 the first time, then OK
  4290    429 with parameters.retry_after 2 every time
  500     500 Internal Server Error (Bot API JSON)
  502     502 with an HTML body, as a reverse proxy answers
  999     hang: sleep 60 s, then OK (for client timeouts)
  2000    200 with a body that is not JSON
  2001    200 {"ok":true,"result":true} (no message id)
Any other chat id (integer or "@username") gets OK.  Texts over 4096
characters: 400 message is too long; empty: 400 message text is empty;
a parse_mode other than HTML, MarkdownV2, Markdown: 400.

getUpdates (GET or POST PREFIX/bot<TOKEN>/getUpdates, parameters offset,
limit, timeout in the query or a JSON/form body), as the Bot API keeps
updates: every update with an id below a given offset is confirmed and
forgotten; the answer is {"ok":true,"result":[...]} with the pending ones
from the offset on (at most limit, default 100), or, when there are none,
[] after waiting up to timeout seconds (a long poll) for new ones.  While a
webhook is set for the prefix (control below) getUpdates answers 409, as
the real API does.  Each call is recorded: {"n", "prefix", "token_ok",
"method": "getUpdates", "offset", "timeout", "returned": [update ids],
"answer": 200 or 409, "body": null}.
Control (POST, JSON):
  /_control/updates {"prefix": "", "updates": [Update, ...]}  queue updates
      for getUpdates; an update without update_id gets the next one (from
      100000 up, per prefix); one with an id is queued as given (a
      redelivery).  Answers {"update_ids": [...]}.
  /_control/webhook {"url": "http://127.0.0.1:P/...", "secret": "..." or
      null, "update": Update, "prefix": ""}  POST the update to a loopback
      url as the Bot API's webhook does (X-Telegram-Bot-Api-Secret-Token
      when secret is set); answers {"status", "body", "update_id"}.
  /_control/set_webhook {"prefix": "", "on": true}  mark a webhook set.
  /_control/pending {"prefix": ""}  answers {"pending": [ids not confirmed]}.
Stop with SIGTERM.
"""
import itertools
import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RECORD = None
TOKENS = {}  # prefix -> token
lock = threading.Lock()
seq = itertools.count(1)
message_ids = {}  # chat key -> last message id
seen_429 = set()
cond = threading.Condition(lock)
pending = {}  # prefix -> [update] not yet confirmed, in id order
next_update = {}  # prefix -> next update_id
webhooks = set()  # prefixes with a webhook set


def record_line(rec):
    with open(RECORD, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def queue_updates(prefix, updates):
    ids = []
    with cond:
        q = pending.setdefault(prefix, [])
        for u in updates:
            u = dict(u)
            if "update_id" not in u:
                u["update_id"] = next_update.get(prefix, 100000)
            next_update[prefix] = max(next_update.get(prefix, 100000), u["update_id"] + 1)
            q.append(u)
            ids.append(u["update_id"])
        cond.notify_all()
    return ids


def post_webhook(item):
    url = item["url"]
    if urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return {"status": None, "body": "refused: not a loopback url"}
    u = dict(item["update"])
    if "update_id" not in u:
        prefix = item.get("prefix", "")
        with cond:
            u["update_id"] = next_update.get(prefix, 100000)
            next_update[prefix] = u["update_id"] + 1
    headers = {"Content-Type": "application/json"}
    if item.get("secret") is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = item["secret"]
    rq = urllib.request.Request(url, data=json.dumps(u, ensure_ascii=False).encode(),
                                method="POST", headers=headers)
    try:
        with urllib.request.urlopen(rq, timeout=10) as r:
            return {"status": r.status, "body": r.read().decode("utf-8", "replace"),
                    "update_id": u["update_id"]}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode("utf-8", "replace"),
                "update_id": u["update_id"]}


def api_error(code, desc, params=None):
    doc = {"ok": False, "error_code": code, "description": desc}
    if params:
        doc["parameters"] = params
    return code, json.dumps(doc).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def answer(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.route("/getUpdates") is not None:
            return self.get_updates(b"")
        self.answer(*api_error(404, "Not Found"))

    def control(self, raw):
        path = self.path.split("?", 1)[0]
        item = json.loads(raw.decode("utf-8") or "{}")
        if path == "/_control/updates":
            out = {"update_ids": queue_updates(item.get("prefix", ""), item.get("updates", []))}
        elif path == "/_control/webhook":
            out = post_webhook(item)
        elif path == "/_control/set_webhook":
            with cond:
                if item.get("on", True):
                    webhooks.add(item.get("prefix", ""))
                else:
                    webhooks.discard(item.get("prefix", ""))
            out = {}
        elif path == "/_control/pending":
            with cond:
                out = {"pending": [u["update_id"] for u in pending.get(item.get("prefix", ""), [])]}
        else:
            return self.answer(*api_error(404, "Not Found"))
        self.answer(200, json.dumps(out).encode())

    def get_updates(self, raw):
        prefix, token_ok = self.route("/getUpdates")
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        if raw:
            try:
                q.update(json.loads(raw.decode("utf-8")))
            except ValueError:
                q.update(urllib.parse.parse_qsl(raw.decode("utf-8", "replace")))
        rec = {"n": next(seq), "prefix": prefix, "token_ok": token_ok, "method": "getUpdates",
               "offset": None, "timeout": None, "returned": [], "body": None}
        if not token_ok:
            with lock:
                record_line(rec)
            return self.answer(*api_error(401, "Unauthorized"))
        try:
            offset = int(q["offset"]) if "offset" in q else None
            timeout = min(max(int(q.get("timeout", 0)), 0), 60)
            limit = min(max(int(q.get("limit", 100)), 1), 100)
        except ValueError:
            return self.answer(*api_error(400, "Bad Request: wrong parameter"))
        rec["offset"], rec["timeout"] = offset, timeout
        deadline = time.time() + timeout
        with cond:
            if prefix in webhooks:
                rec["answer"] = 409
                record_line(rec)
                return self.answer(*api_error(
                    409, "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first"))
            while True:
                qq = pending.setdefault(prefix, [])
                if offset is not None:
                    qq[:] = [u for u in qq if u["update_id"] >= offset]
                if qq or time.time() >= deadline:
                    break
                cond.wait(max(0.0, deadline - time.time()))
            result = list(qq[:limit])
            rec["returned"] = [u["update_id"] for u in result]
            rec["answer"] = 200
            record_line(rec)
        self.answer(200, json.dumps({"ok": True, "result": result}).encode())

    def route(self, tail="/sendMessage"):
        """(prefix, token_ok) for a .../bot<T><tail> path, else None."""
        path = self.path.split("?", 1)[0]
        if not path.endswith(tail):
            return None
        head = path[: -len(tail)]
        i = head.rfind("/bot")
        if i < 0:
            return None
        prefix, token = head[:i], head[i + 4:]
        if prefix not in TOKENS:
            return None
        return prefix, token == TOKENS[prefix]

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        if self.path.startswith("/_control/"):
            return self.control(raw)
        if self.route("/getUpdates") is not None:
            return self.get_updates(raw)
        r = self.route()
        if r is None:
            self.answer(*api_error(404, "Not Found"))
            return
        prefix, token_ok = r
        ctype = self.headers.get("Content-Type", "")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            body = None
        rec = {"n": next(seq), "prefix": prefix, "token_ok": token_ok,
               "content_type": ctype, "body": body, "raw_hex": raw.hex()}
        with lock:
            with open(RECORD, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        if not token_ok:
            self.answer(*api_error(401, "Unauthorized"))
            return
        code, out, ctype_out = self.send_message(ctype, body)
        self.answer(code, out, ctype_out)

    def send_message(self, ctype, body):
        if ctype.split(";")[0].strip() != "application/json" or not isinstance(body, dict):
            return api_error(400, "Bad Request: message text is empty") + ("application/json",)
        chat = body.get("chat_id")
        text = body.get("text")
        if not isinstance(chat, (int, str)) or isinstance(chat, bool):
            return api_error(400, "Bad Request: chat_id is empty") + ("application/json",)
        if not isinstance(text, str) or not text.strip():
            return api_error(400, "Bad Request: message text is empty") + ("application/json",)
        if len(text) > 4096:
            return api_error(400, "Bad Request: message is too long") + ("application/json",)
        pm = body.get("parse_mode")
        if pm is not None and pm not in ("HTML", "MarkdownV2", "Markdown"):
            return api_error(400, "Bad Request: unsupported parse_mode") + ("application/json",)
        key = str(chat)
        j = "application/json"
        if chat == 403:
            return api_error(403, "Forbidden: bot was blocked by the user") + (j,)
        if chat == 4031:
            return api_error(403, "Forbidden: user is deactivated") + (j,)
        if chat == 400:
            return api_error(400, "Bad Request: chat not found") + (j,)
        if chat == 4000:
            return api_error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                             {"migrate_to_chat_id": -1001234567890}) + (j,)
        if chat == 4290 or (chat == 429 and key not in seen_429):
            with lock:
                seen_429.add(key)
            return api_error(429, "Too Many Requests: retry after 2", {"retry_after": 2}) + (j,)
        if chat == 500:
            return api_error(500, "Internal Server Error") + (j,)
        if chat == 502:
            return 502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"
        if chat == 999:
            time.sleep(60)
        if chat == 2000:
            return 200, b"{\"ok\":tru", j
        if chat == 2001:
            return 200, b"{\"ok\":true,\"result\":true}", j
        with lock:
            mid = message_ids.get(key, 0) + 1
            message_ids[key] = mid
        if isinstance(chat, str):
            chat_obj = {"id": -1001000000000 - len(chat), "title": chat[1:],
                        "username": chat[1:], "type": "channel"}
        else:
            chat_obj = {"id": chat, "first_name": "Test", "type": "private"}
        result = {"message_id": mid,
                  "from": {"id": 1000001, "is_bot": True, "first_name": "clubd test bot",
                           "username": "clubd_test_bot"},
                  "chat": chat_obj, "date": int(time.time()), "text": text}
        return 200, json.dumps({"ok": True, "result": result}).encode(), j


def main():
    global RECORD
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    RECORD = sys.argv[1]
    for arg in sys.argv[2:]:
        prefix, _, path = arg.partition("=")
        with open(path, encoding="utf-8") as f:
            tok = f.read()
        if tok.endswith("\r\n"):
            tok = tok[:-2]
        elif tok.endswith("\n"):
            tok = tok[:-1]
        TOKENS[prefix.rstrip("/")] = tok
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    sys.stdout.write("%d\n" % srv.server_address[1])
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
