"""harness.py - processes and helpers for clubd's integration tests.

Owns: the per-test fixture (a temporary directory, a private redis-server on
a free loopback port, clubd processes built from $CLUBD_BUILD, sinks), the
generated config and tokens, an HTTP client, and bounded waits.  Never
touches a Redis or clubd it did not start; never uses an address other than
127.0.0.1.  Every process started here is stopped when the test ends (the
fixture's close(), and an atexit hook as a last resort).

Python 3 standard library + python3-redis only; run with /usr/bin/python3.
"""

import atexit
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "fakes"))

from sink import Sink  # noqa: E402

import redis as redislib  # noqa: E402  (python3-redis)

REDIS_SERVER = "/usr/bin/redis-server"
# AOF on, fsync at every write: a 2xx from clubd is on disk (CLUBD_TEST_FSYNC=everysec
# trades that for speed on slow disks).
REDIS_FSYNC = os.environ.get("CLUBD_TEST_FSYNC", "always")
BUILD = os.environ.get("CLUBD_BUILD", "build")
CLUBD = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD), "clubd")
ASAN = "asan" in os.path.basename(os.path.normpath(BUILD))
# Sanitizer builds are slower: stretch the bounded waits (not the asserts).
SLOW = float(os.environ.get("CLUBD_TEST_SLOW", "3" if ASAN else "1"))
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

_live = set()  # every Popen we started and have not reaped
_live_lock = threading.Lock()


class TestFailure(AssertionError):
    pass


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def timeout(seconds):
    """Decorator: the wall-clock limit of one test (default 60 s)."""

    def deco(fn):
        fn.timeout = seconds
        return fn

    return deco


def serial(fn):
    """Decorator: run.py -j N runs this test alone, after the others (it
    measures rates or durations that other tests' load would distort).
    A module-level SERIAL = True marks every test in the file."""
    fn.serial = True
    return fn


# Children die with the runner even when it is killed (setpriv sets
# PR_SET_PDEATHSIG before exec).  The death signal follows the thread that
# started the child: start processes from the test's main thread only.
_SETPRIV = ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"] if os.access("/usr/bin/setpriv", os.X_OK) else []


def _track(p):
    with _live_lock:
        _live.add(p)
    return p


def _untrack(p):
    with _live_lock:
        _live.discard(p)


@atexit.register
def _kill_leftovers():
    with _live_lock:
        procs = list(_live)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass


def free_port():
    """A currently free TCP port on 127.0.0.1."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(pred, timeout_s, what, interval=0.02, on_fail=None):
    """Poll pred() until truthy (returned) or fail after timeout_s * SLOW."""
    end = time.monotonic() + timeout_s * SLOW
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= end:
            extra = ""
            if on_fail is not None:
                extra = ": " + str(on_fail())
            fail("timed out after %.1fs waiting for %s%s" % (timeout_s * SLOW, what, extra))
        time.sleep(interval)


def tail(path, n=30):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return "(no log: %s)" % e


def rfc3339(t):
    """Unix seconds -> RFC 3339 UTC with milliseconds."""
    ms = int(round(t * 1000))
    d = datetime.fromtimestamp(ms // 1000, timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def parse_time(s):
    """RFC 3339 (any offset) -> unix seconds (float)."""
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    return datetime.fromisoformat(s).timestamp()


def sha256_hex(token):
    return hashlib.sha256(token.encode()).hexdigest()


# ---------------------------------------------------------------- HTTP client

class Resp:
    __slots__ = ("status", "json", "text", "headers")

    def __init__(self, status, text, headers):
        self.status = status
        self.text = text
        self.headers = headers
        try:
            self.json = json.loads(text) if text else None
        except ValueError:
            self.json = None

    def err_code(self):
        try:
            return self.json["error"]["code"]
        except (TypeError, KeyError):
            return None

    def err_field(self):
        try:
            return self.json["error"].get("field")
        except (TypeError, KeyError, AttributeError):
            return None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.text[:300])


class Client:
    """One keep-alive connection; JSON in, Resp out.  Not thread-safe: one
    Client per thread."""

    def __init__(self, port, token=None, timeout_s=10.0):
        self.port = port
        self.token = token
        self.timeout_s = timeout_s
        self._conn = None
        self._used = False

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method, path, body=None, raw=None, headers=None, token=Ellipsis,
                ctype=None):
        h = {}
        tok = self.token if token is Ellipsis else token
        if tok is not None:
            h["Authorization"] = "Bearer " + tok
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
            h["Content-Type"] = ctype or "application/json"
        elif body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
            h["Content-Type"] = ctype or "application/json"
        if headers:
            h.update(headers)
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                        timeout=self.timeout_s)
                self._used = False
            reused = self._used
            try:
                self._conn.request(method, path, body=data, headers=h)
                r = self._conn.getresponse()
                text = r.read().decode("utf-8", "replace")
                self._used = True
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return Resp(r.status, text, dict(r.getheaders()))
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A reused keep-alive connection the server had closed
                # (idle timeout): the request was never read, retry once.
                self.close()
                if attempt or not reused:
                    raise
            except Exception:
                self.close()
                raise
        raise AssertionError("unreachable")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- shortcuts used by most tests --
    def create_contact(self, obj):
        r = self.post("/v1/contacts", obj)
        check(r.status == 201, "POST /v1/contacts %s -> %r" % (json.dumps(obj, ensure_ascii=False)[:200], r))
        return r.json

    def send(self, obj, headers=None):
        r = self.post("/v1/messages", obj, headers=headers)
        check(r.status == 202, "POST /v1/messages -> %r" % r)
        check(isinstance(r.json, dict) and r.json.get("id"), "no id in %r" % r)
        return r.json

    def message(self, mid):
        r = self.get("/v1/messages/" + mid)
        check(r.status == 200, "GET /v1/messages/%s -> %r" % (mid, r))
        return r.json

    def list_all_contacts(self, limit=500, max_pages=1000):
        """Every contact id, following next_cursor."""
        ids, cursor = [], None
        for _ in range(max_pages):
            q = "/v1/contacts?limit=%d" % limit
            if cursor:
                q += "&cursor=" + urllib.parse.quote(cursor, safe="")
            r = self.get(q)
            check(r.status == 200, "GET %s -> %r" % (q, r))
            ids.extend(c["id"] for c in r.json["items"])
            cursor = r.json.get("next_cursor")
            if not cursor:
                return ids
        fail("contact listing did not end after %d pages" % max_pages)


def raw_http(port, head, body=b"", timeout_s=10.0):
    """Send head (bytes, with the final CRLFCRLF) and body over a fresh
    socket, tolerating an early answer (e.g. 413 before the body was read).
    Returns (status, body text)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    resp = b""
    try:
        s.sendall(head)
        s.setblocking(False)
        off, end = 0, time.monotonic() + timeout_s
        import select
        while time.monotonic() < end:
            want_w = off < len(body)
            r, w, _ = select.select([s], [s] if want_w else [], [], 0.2)
            if r:
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, BlockingIOError):
                    chunk = b""
                if not chunk:
                    break
                resp += chunk
                if _complete(resp):
                    break
            elif w:
                try:
                    off += s.send(body[off:off + 65536])
                except (BrokenPipeError, ConnectionResetError):
                    off = len(body)
            elif not want_w and _complete(resp):
                break
    finally:
        s.close()
    if not resp:
        fail("no HTTP answer")
    line, _, rest = resp.partition(b"\r\n")
    parts = line.split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    _, _, payload = rest.partition(b"\r\n\r\n")
    return status, payload.decode("utf-8", "replace")


def _complete(resp):
    head, sep, payload = resp.partition(b"\r\n\r\n")
    if not sep:
        return False
    for ln in head.split(b"\r\n")[1:]:
        k, _, v = ln.partition(b":")
        if k.strip().lower() == b"content-length":
            try:
                return len(payload) >= int(v.strip())
            except ValueError:
                return False
    return False


# ---------------------------------------------------------------- redis-server

class RedisServer:
    """A private redis-server (AOF on, fsync always) on a free port.
    Restartable on the same port and directory so the AOF survives."""

    def __init__(self, tmpdir, port=None):
        self.port = port or free_port()
        self.dir = os.path.join(tmpdir, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.log = os.path.join(tmpdir, "redis.log")
        self.proc = None

    def start(self, timeout_s=10):
        if self.proc is not None and self.proc.poll() is None:
            return self
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "yes", "--appendfsync", REDIS_FSYNC,
                "--dir", self.dir, "--daemonize", "no", "--protected-mode", "yes"]
        with open(self.log, "ab") as logf:
            self.proc = _track(subprocess.Popen(_SETPRIV + args, stdin=subprocess.DEVNULL, stdout=logf,
                                                stderr=subprocess.STDOUT))

        def up():
            if self.proc.poll() is not None:
                fail("redis-server exited with %s:\n%s" % (self.proc.returncode, tail(self.log)))
            try:
                return self.client(timeout=0.5).ping()
            except redislib.exceptions.RedisError:
                return False

        wait_until(up, timeout_s, "redis-server PING on port %d" % self.port, interval=0.02)
        return self

    def client(self, timeout=5):
        return redislib.Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout,
                              socket_connect_timeout=timeout, decode_responses=True)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout_s=10):
        """Signal and reap; returns the exit status (negative: signal)."""
        if self.proc is None:
            return None
        p = self.proc
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        _untrack(p)
        self.proc = None
        return p.returncode

    def kill(self):
        return self.stop(signal.SIGKILL)


# ---------------------------------------------------------------- clubd

DEFAULT_CONFIG = {
    "api": {"listen": "127.0.0.1", "port": "0", "max_body": "1048576"},
    "redis": {"host": "127.0.0.1", "prefix": "clubd:", "command_timeout": "2s"},
    "sched": {"tick": "50ms", "retry_min": "200ms", "retry_max": "2s", "max_attempts": "5",
              "reclaim_idle": "3s", "reclaim_interval": "1s", "message_ttl": "1h"},
    "dispatch": {"max_inflight": "64", "block": "200ms", "drain_timeout": "5s"},
    "contacts": {"default_country": "IR", "default_tz": "Asia/Tehran"},
    "prefs": {"quiet_hours": ""},
    "log": {"level": "info"},
}


def write_config(path, sections):
    """sections: {name: {key: value}} in order; a None value drops the key."""
    lines = ["# generated by tests/integration/harness.py"]
    for name, kv in sections.items():
        if kv is None:
            continue
        lines.append("")
        lines.append("[%s]" % name)
        for k, v in kv.items():
            if v is not None:
                lines.append("%s = %s" % (k, v))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def merge_config(base, overrides):
    out = {k: dict(v) for k, v in base.items()}
    for sec, kv in (overrides or {}).items():
        if kv is None:
            out.pop(sec, None)
            continue
        out.setdefault(sec, {}).update(kv)
    return out


class Clubd:
    """One clubd process with its own config file; restartable."""

    def __init__(self, fx, name, config):
        self.fx = fx
        self.name = name
        self.config = config
        self.dir = fx.tmp
        self.conf_path = os.path.join(fx.tmp, "clubd-%s.conf" % name)
        self.port_file = os.path.join(fx.tmp, "clubd-%s.port" % name)
        self.log = os.path.join(fx.tmp, "clubd-%s.log" % name)
        self.config["api"]["port_file"] = self.port_file
        self.config["api"]["tokens_file"] = fx.tokens_file
        write_config(self.conf_path, self.config)
        self.proc = None
        self.port = None
        self.exits = []  # exit statuses of every run
        self._clients = {}

    def env(self):
        e = dict(os.environ)
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        return e

    def start(self, timeout_s=10):
        check(os.access(CLUBD, os.X_OK), "%s not built (CLUBD_BUILD=%s)" % (CLUBD, BUILD))
        check(self.proc is None or self.proc.poll() is not None, "clubd %s already running" % self.name)
        try:
            os.unlink(self.port_file)
        except FileNotFoundError:
            pass
        with open(self.log, "ab") as logf:
            logf.write(("--- start %s ---\n" % rfc3339(time.time())).encode())
            logf.flush()
            self.proc = _track(subprocess.Popen(_SETPRIV + [CLUBD, "-c", self.conf_path], cwd=ROOT,
                                                stdin=subprocess.DEVNULL, stdout=logf,
                                                stderr=logf, env=self.env()))
        self.port = None
        self._clients = {}

        def port_ready():
            self._check_alive("while starting")
            try:
                with open(self.port_file) as f:
                    txt = f.read().strip()
            except FileNotFoundError:
                return None
            return int(txt) if txt.isdigit() and int(txt) > 0 else None

        self.port = wait_until(port_ready, timeout_s, "clubd %s port file" % self.name,
                               on_fail=lambda: "\n" + tail(self.log))
        self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s=10):
        c = Client(self.port, timeout_s=2)

        def ready():
            self._check_alive("while waiting for /readyz")
            try:
                return c.get("/readyz").status == 200
            except OSError:
                return False

        try:
            wait_until(ready, timeout_s, "clubd %s /readyz 200" % self.name, interval=0.05,
                       on_fail=lambda: "\n" + tail(self.log))
        finally:
            c.close()

    def _check_alive(self, when):
        if self.proc is not None and self.proc.poll() is not None:
            rc = self._reap()
            fail("clubd %s exited with %s %s:\n%s" % (self.name, rc, when, tail(self.log)))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _reap(self):
        p = self.proc
        rc = p.wait()
        _untrack(p)
        self.exits.append(rc)
        self.proc = None
        for c in self._clients.values():
            c.close()
        self._clients = {}
        self.check_sanitizers()
        return rc

    def signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def term(self, timeout_s=None):
        """SIGTERM and wait; returns the exit status or fails when the
        daemon does not exit in time (then it is killed)."""
        if self.proc is None:
            return None
        if timeout_s is None:
            timeout_s = 15 * SLOW
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self._reap()
            fail("clubd %s did not exit within %.1fs of SIGTERM:\n%s"
                 % (self.name, timeout_s, tail(self.log)))
        return self._reap()

    def kill(self):
        """kill -9; returns the exit status (-9)."""
        if self.proc is None:
            return None
        self.proc.kill()
        return self._reap()

    def check_sanitizers(self):
        try:
            with open(self.log, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return
        for m in SANITIZER_MARKERS:
            i = text.find(m)
            if i >= 0:
                fail("sanitizer report in clubd %s stderr:\n%s" % (self.name, text[max(0, i - 200):i + 3000]))

    def client(self, role="admin"):
        """A cached keep-alive client for this thread's use (main thread)."""
        c = self._clients.get(role)
        if c is None:
            check(self.port, "clubd %s not started" % self.name)
            c = Client(self.port, self.fx.tokens[role] if role else None)
            self._clients[role] = c
        return c

    def new_client(self, role="admin"):
        return Client(self.port, self.fx.tokens[role] if role else None)

    def stderr(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


# ---------------------------------------------------------------- fixture

class Fixture:
    """Everything one test uses; close() stops it all."""

    def __init__(self, name, keep=False):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="clubd-it-%s-" % name.replace("/", "_"))
        self.keep = keep
        self.tokens = {r: secrets.token_urlsafe(24) for r in ("admin", "marketer", "viewer")}
        self.tokens_file = os.path.join(self.tmp, "tokens")
        with open(self.tokens_file, "w") as f:
            for r in ("admin", "marketer", "viewer"):
                f.write("test-%s %s %s\n" % (r, r, sha256_hex(self.tokens[r])))
        os.chmod(self.tokens_file, 0o600)
        self.secret = secrets.token_hex(16)
        self.secret_file = os.path.join(self.tmp, "webhook-secret")
        with open(self.secret_file, "w") as f:
            f.write(self.secret + "\n")
        os.chmod(self.secret_file, 0o600)
        self.outbox = os.path.join(self.tmp, "outbox")
        os.makedirs(self.outbox)
        self.redises = []
        self.sinks = []
        self.clubds = []
        self.notes = []

    def note(self, msg):
        """A line printed (indented) under the test's result line."""
        self.notes.append(msg)

    def redis(self):
        r = RedisServer(self.tmp)
        self.redises.append(r)
        return r.start()

    def sink(self, delay_s=0.0):
        s = Sink(self.secret, delay_s=delay_s)
        self.sinks.append(s)
        return s.start()

    def config(self, redis, sink=None, overrides=None, hook_path="/hook"):
        """The default test config: sms and chat through the webhook driver
        to sink (outbox when no sink), email to the outbox."""
        port = getattr(redis, "port", redis)  # a RedisServer or a port number
        c = merge_config(DEFAULT_CONFIG, {"redis": {"port": str(port)},
                                          "outbox": {"dir": self.outbox}})
        for ch in ("sms", "chat"):
            if sink is not None:
                c["channel." + ch] = {"driver": "webhook", "url": sink.url(hook_path + "/" + ch),
                                      "secret_file": self.secret_file, "max_inflight": "32",
                                      "rate": "0", "timeout": "2s"}
            else:
                c["channel." + ch] = {"driver": "outbox", "timeout": "2s"}
        # every channel timeout must stay below [sched] reclaim_idle (3s)
        c["channel.email"] = {"driver": "outbox", "timeout": "2s"}
        return merge_config(c, overrides)

    def clubd(self, redis, sink=None, overrides=None, name=None, hook_path="/hook", start=True):
        name = name or "abcdefgh"[len(self.clubds)]
        d = Clubd(self, name, self.config(redis, sink, overrides, hook_path))
        self.clubds.append(d)
        if start:
            d.start()
        return d

    def close(self):
        """Stop everything; returns a list of problems found on the way
        (a daemon not exiting 0 on SIGTERM, sanitizer reports)."""
        problems = []
        for d in self.clubds:
            try:
                if d.running():
                    rc = d.term()
                    if rc != 0:
                        problems.append("clubd %s exited %s on SIGTERM:\n%s" % (d.name, rc, tail(d.log)))
                else:
                    d.check_sanitizers()
            except TestFailure as e:
                problems.append(str(e))
            except Exception as e:  # keep cleaning up
                problems.append("stopping clubd %s: %r" % (d.name, e))
            if d.proc is not None:
                try:
                    d.kill()
                except Exception:
                    pass
        for r in self.redises:
            try:
                r.stop()
            except Exception as e:
                problems.append("stopping redis: %r" % e)
        for s in self.sinks:
            try:
                s.close()
            except Exception as e:
                problems.append("closing sink: %r" % e)
        return problems

    def cleanup_dir(self):
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- helpers

def parallel(fn, items, threads=4):
    """fn(client_index, item) over items with a few threads; results in
    order.  The first exception is re-raised."""
    items = list(items)
    out = [None] * len(items)
    errors = []
    nxt = [0]
    lock = threading.Lock()

    def worker(w):
        while True:
            with lock:
                if errors or nxt[0] >= len(items):
                    return
                i = nxt[0]
                nxt[0] += 1
            try:
                out[i] = fn(w, items[i])
            except BaseException as e:  # noqa: B902 - reported below
                with lock:
                    errors.append(e)
                return

    ts = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return out


def send_many(clubd, bodies, threads=4, role="marketer"):
    """POST every body to /v1/messages (keep-alive, a few threads); ids."""
    clients = [clubd.new_client(role) for _ in range(threads)]
    try:
        return parallel(lambda w, b: clients[w].send(b)["id"], bodies, threads)
    finally:
        for c in clients:
            c.close()


def states(clubd, ids, threads=4):
    """id -> message JSON for every id (GET, a few threads)."""
    clients = [clubd.new_client("viewer") for _ in range(threads)]
    try:
        msgs = parallel(lambda w, i: clients[w].message(i), ids, threads)
    finally:
        for c in clients:
            c.close()
    return dict(zip(ids, msgs))


def wait_states(clubd, ids, want, timeout_s, threads=4):
    """Poll until every message is in state `want`; returns the messages."""
    pending = list(ids)
    got = {}
    end = time.monotonic() + timeout_s * SLOW
    while True:
        cur = states(clubd, pending, threads)
        got.update(cur)
        pending = [i for i in pending if cur[i].get("state") != want]
        if not pending:
            return got
        if time.monotonic() >= end:
            sample = {i: (cur[i].get("state"), cur[i].get("last_error")) for i in pending[:5]}
            fail("%d of %d messages not %s after %.1fs, e.g. %s"
                 % (len(pending), len(ids), want, timeout_s * SLOW, sample))
        time.sleep(0.2)


def wait_state(clubd, mid, want, timeout_s=10):
    """Poll one message until its state is in `want` (a str or a tuple)."""
    want = (want,) if isinstance(want, str) else tuple(want)
    c = clubd.client("viewer")
    last = [None]

    def ok():
        last[0] = c.message(mid)
        return last[0].get("state") in want

    wait_until(ok, timeout_s, "message %s state %s" % (mid, "/".join(want)), interval=0.05,
               on_fail=lambda: json.dumps(last[0], ensure_ascii=False)[:800])
    return last[0]


def make_contacts(clubd, n, start=0, prefix="Contact"):
    """n contacts with distinct phones 0912000NNNN (+98912000NNNN)."""
    c = clubd.client("marketer")
    out = []
    for i in range(start, start + n):
        out.append(c.create_contact({"name": "%s %d" % (prefix, i),
                                     "addresses": {"sms": "0912%07d" % i}}))
    return out
