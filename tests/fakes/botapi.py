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
a parse_mode other than HTML, MarkdownV2, Markdown: 400.  Stop with SIGTERM.
"""
import itertools
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RECORD = None
TOKENS = {}  # prefix -> token
lock = threading.Lock()
seq = itertools.count(1)
message_ids = {}  # chat key -> last message id
seen_429 = set()


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
        self.answer(*api_error(404, "Not Found"))

    def route(self):
        """(prefix, token_ok) for a .../bot<T>/sendMessage path, else None."""
        path = self.path.split("?", 1)[0]
        tail = "/sendMessage"
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
