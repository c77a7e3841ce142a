#!/usr/bin/python3
"""sink.py - a loopback HTTP receiver posing as clubd's webhook provider.

Owns: one ThreadingHTTPServer on 127.0.0.1 (never any other address), the
record of what it received, and the scripted answers.  Never touches Redis
or clubd.  Limits: bodies over 1 MiB are refused with 413; a "hang" lasts at
most hang_s (3 s by default) and ends early when the sink is closed.

Wire format verified (docs/api.md, channels/webhook):
  POST, Content-Type: application/json,
  X-Clubd-Message-Id, X-Clubd-Timestamp (unix seconds),
  X-Clubd-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body)),
  body {"id","channel","category","contact_id","to","subject","text","html",
        "attempt","created_at"}.
A request failing any check is counted in bad_signatures (or bad_requests)
and answered 401 (resp. 400).  A good one is answered 200 {"id": "sink-N"}
unless a rule says otherwise.

Use in-process (tests):
    s = Sink(secret=b"k"); s.start(); ... s.url("/hook") ...
    s.add_rule(lambda b: b["text"] == "x", "500", times=2)
    s.received_ids(), s.count(id), s.times(id), s.duplicates(), s.close()

Or as a script (bench, manual runs):
    sink.py --secret-file F [--port N] [--port-file F] [--delay-ms N]
with GET /_stats -> {"requests":N,"unique":N,"duplicates":N,
                     "bad_signatures":N,"bad_requests":N,"ok":N}
and POST /_reset.  SIGTERM/SIGINT print the stats as JSON and exit 0.
"""

import argparse
import hashlib
import hmac
import http.server
import json
import os
import signal
import socket
import sys
import threading
import time

MAX_BODY = 1 << 20
BODY_FIELDS = ("id", "channel", "category", "contact_id", "to", "subject", "text", "html",
               "attempt", "created_at")
ACTIONS = ("ok", "500", "503", "429", "400", "hang", "close")


class Rule:
    """Answer `action` to requests whose body matches `match`.

    times: per message id, apply to the first `times` requests of that id
    (None: always).  retry_after: seconds for 429.  hang_s: for "hang".
    """

    def __init__(self, match, action, times=None, retry_after=1, hang_s=3.0):
        if action not in ACTIONS:
            raise ValueError("unknown action %r" % action)
        self.match = match
        self.action = action
        self.times = times
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.applied = {}  # id -> times applied


class Received:
    """One request as seen by the sink."""

    __slots__ = ("at", "path", "attempt", "status", "body")

    def __init__(self, at, path, attempt, body):
        self.at = at
        self.path = path
        self.attempt = attempt
        self.status = None
        self.body = body


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "clubd-sink/1"
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, fmt, *args):  # quiet
        pass

    def _answer(self, status, obj=None, headers=None, close=False):
        data = json.dumps(obj if obj is not None else {}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except OSError:
            self.close_connection = True
            return False

    def do_GET(self):
        sink = self.server.sink
        if self.path == "/_stats":
            self._answer(200, sink.stats())
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self):
        sink = self.server.sink
        try:
            n = int(self.headers.get("Content-Length", ""))
        except ValueError:
            sink._count("bad_requests")
            self._answer(411, {"error": "length required"}, close=True)
            return
        if n < 0 or n > MAX_BODY:
            sink._count("bad_requests")
            self._answer(413, {"error": "too large"}, close=True)
            return
        raw = self.rfile.read(n)
        if self.path == "/_reset" and sink.control:
            sink.reset()
            self._answer(200, {"ok": True})
            return
        sink._handle(self, raw)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # A client vanishing (kill -9 of clubd, a timeout) is part of the
        # tests: count it instead of printing a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            self.sink._count("disconnects")
            return
        super().handle_error(request, client_address)


class Sink:
    def __init__(self, secret, port=0, delay_s=0.0, control=False):
        if isinstance(secret, str):
            secret = secret.encode()
        self.secret = secret
        self.delay_s = delay_s
        self.control = control  # serve /_stats and /_reset
        self.rules = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.sink = self
        self.port = self._server.server_address[1]
        self._thread = None
        self.reset()

    # -- lifecycle --
    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="sink", daemon=True)
        self._thread.start()
        return self

    def close(self):
        self._closing.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    # -- scripting --
    def add_rule(self, match, action, times=None, retry_after=1, hang_s=3.0):
        """match: callable(body dict) -> bool, or a dict of field -> value."""
        if isinstance(match, dict):
            want = dict(match)
            match = lambda b: all(b.get(k) == v for k, v in want.items())  # noqa: E731
        r = Rule(match, action, times, retry_after, hang_s)
        with self._lock:
            self.rules.append(r)
        return r

    def clear_rules(self):
        with self._lock:
            self.rules = []

    def reset(self):
        with self._lock:
            self.log = {}  # id -> [Received]
            self._ok = set()  # ids answered 2xx at least once
            self.counters = {"requests": 0, "bad_signatures": 0, "bad_requests": 0, "ok": 0,
                             "disconnects": 0}
            self.errors = []  # first few reasons for bad requests, for test messages
            for r in getattr(self, "rules", []):
                r.applied = {}

    # -- results (all thread-safe snapshots) --
    def received_ids(self):
        with self._lock:
            return set(self.log)

    def ok_ids(self):
        """Ids answered 2xx at least once."""
        with self._lock:
            return set(self._ok)

    def got_all(self, ids):
        """True when every id in the set `ids` was answered 2xx (cheap)."""
        with self._lock:
            return ids <= self._ok

    def ok_count(self, ids=None):
        with self._lock:
            return len(self._ok) if ids is None else len(self._ok & ids)

    def count(self, mid):
        with self._lock:
            return len(self.log.get(mid, ()))

    def times(self, mid):
        with self._lock:
            return [r.at for r in self.log.get(mid, ())]

    def requests_for(self, mid):
        with self._lock:
            return list(self.log.get(mid, ()))

    def unique(self):
        with self._lock:
            return len(self.log)

    def duplicates(self):
        """Total extra receptions: sum over ids of (count - 1)."""
        with self._lock:
            return sum(len(v) - 1 for v in self.log.values())

    def dup_ids(self):
        with self._lock:
            return {i: len(v) for i, v in self.log.items() if len(v) > 1}

    def paths(self):
        """path -> number of distinct ids first received on it."""
        out = {}
        with self._lock:
            for rs in self.log.values():
                out[rs[0].path] = out.get(rs[0].path, 0) + 1
        return out

    @property
    def bad_signatures(self):
        with self._lock:
            return self.counters["bad_signatures"]

    @property
    def bad_requests(self):
        with self._lock:
            return self.counters["bad_requests"]

    def stats(self):
        with self._lock:
            d = dict(self.counters)
            d["unique"] = len(self.log)
            d["duplicates"] = sum(len(v) - 1 for v in self.log.values())
            d["errors"] = list(self.errors)
            return d

    # -- internals --
    def _count(self, what, reason=None):
        with self._lock:
            self.counters[what] += 1
            if reason and len(self.errors) < 20:
                self.errors.append(reason)

    def _verify(self, h, raw):
        """None when the request is well-formed and signed, else (status, reason)."""
        ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return 400, "content-type %r" % ctype
        mid = h.headers.get("X-Clubd-Message-Id")
        ts = h.headers.get("X-Clubd-Timestamp")
        sig = h.headers.get("X-Clubd-Signature")
        if not mid or not ts or not sig:
            return 401, "missing X-Clubd-* header"
        if not ts.isdigit() or abs(int(ts) - time.time()) > 300:
            return 401, "bad timestamp %r" % ts
        want = "sha256=" + hmac.new(self.secret, ts.encode() + b"." + raw,
                                    hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want.encode(), sig.strip().encode()):
            return 401, "bad signature"
        return None

    def _handle(self, h, raw):
        now = time.time()
        bad = self._verify(h, raw)
        if bad is not None:
            self._count("bad_signatures" if bad[0] == 401 else "bad_requests", bad[1])
            h._answer(bad[0], {"error": bad[1]})
            return
        try:
            body = json.loads(raw.decode("utf-8"))
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError) as e:
            self._count("bad_requests", "body: %s" % e)
            h._answer(400, {"error": "bad json"})
            return
        mid = h.headers.get("X-Clubd-Message-Id")
        missing = [f for f in BODY_FIELDS if f not in body]
        if body.get("id") != mid or missing:
            self._count("bad_requests", "id mismatch or missing fields %s" % missing)
            h._answer(400, {"error": "body does not match headers"})
            return
        rec = Received(now, h.path, body.get("attempt"), body)
        with self._lock:
            self.counters["requests"] += 1
            self.log.setdefault(mid, []).append(rec)
            action, rule = "ok", None
            for r in self.rules:
                try:
                    hit = r.match(body)
                except Exception:  # a predicate bug must not kill the sink
                    hit = False
                if not hit:
                    continue
                n = r.applied.get(mid, 0)
                if r.times is not None and n >= r.times:
                    continue
                r.applied[mid] = n + 1
                action, rule = r.action, r
                break
            seq = self.counters["requests"]
        if self.delay_s:
            self._closing.wait(self.delay_s)
        if action == "ok":
            if h._answer(200, {"id": "sink-%d" % seq}):
                with self._lock:
                    rec.status = 200
                    self.counters["ok"] += 1
                    self._ok.add(mid)
            else:
                rec.status = -3  # the client left before the answer
        elif action in ("500", "503"):
            rec.status = int(action)
            h._answer(rec.status, {"error": "scripted failure"})
        elif action == "429":
            rec.status = 429
            h._answer(429, {"error": "slow down"}, {"Retry-After": str(rule.retry_after)})
        elif action == "400":
            rec.status = 400
            h._answer(400, {"error": "scripted rejection"})
        elif action == "close":
            rec.status = -1
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif action == "hang":
            rec.status = -2
            self._closing.wait(rule.hang_s)
            h._answer(503, {"error": "hung"}, close=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--delay-ms", type=int, default=0)
    a = ap.parse_args(argv)
    with open(a.secret_file, "rb") as f:
        secret = f.read().rstrip(b"\r\n")
    s = Sink(secret, port=a.port, delay_s=a.delay_ms / 1000.0, control=True)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % s.port)
        os.replace(tmp, a.port_file)
    print("sink listening on http://127.0.0.1:%d/hook" % s.port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    s.start()
    while not done.wait(0.5):
        pass
    s.close()
    print(json.dumps(s.stats()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
