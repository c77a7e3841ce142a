"""clubctl against a real clubd + redis-server: every command in human and
--json output, exit codes (1 API error with its message and field, 2 usage,
3 cannot connect), Persian text round trip and table alignment by display
width, Jalali dates, a 2,000-line NDJSON import with 2 bad lines, import
progress on a pipe and on a pseudo-terminal, a large import with bounded
memory, token and config file permission checks, and the token staying out
of output and of /proc/PID/cmdline.

The binary is $CLUBD_BUILD/clubctl (default build/clubctl).  Tokens reach it
through the environment (CLUBD_TOKEN) or a token file, never argv, except in
the one test that checks --token is scrubbed from the command line.
"""

import json
import os
import pty
import re
import select
import subprocess
import threading
import time
import unicodedata
from datetime import date, datetime

from harness import CLUBD, ROOT, SLOW, check, fail, free_port, timeout, wait_until

CLUBCTL = os.path.join(os.path.dirname(CLUBD), "clubctl")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
PERSIAN = "سارا احمدی\u200cزاده"  # with a ZWNJ
ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


# ---------------------------------------------------------------- helpers

def base_env(fx):
    home = os.path.join(fx.tmp, "home")
    os.makedirs(home, exist_ok=True)
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8",
         "TZ": "UTC"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            e[k] = os.environ[k]
    e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return e


class Result:
    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError:
            fail("clubctl %s: stdout is not JSON:\n%s\nstderr:\n%s" % (" ".join(self.args), self.out, self.err))

    def __repr__(self):
        return "exit %s\n--- stdout\n%s--- stderr\n%s" % (self.rc, self.out[-3000:], self.err[-3000:])


class Ctl:
    """Runs clubctl against one daemon with a role's token in CLUBD_TOKEN."""

    def __init__(self, fx, port, role="admin"):
        check(os.access(CLUBCTL, os.X_OK), "%s not built" % CLUBCTL)
        self.fx, self.port, self.role = fx, port, role
        self.outputs = []

    def env(self, role=Ellipsis, extra=None):
        e = base_env(self.fx)
        e["CLUBD_URL"] = "http://127.0.0.1:%d" % self.port
        role = self.role if role is Ellipsis else role
        if role:
            e["CLUBD_TOKEN"] = self.fx.tokens[role]
        e.update(extra or {})
        return e

    def run(self, *args, role=Ellipsis, env=None, stdin=None, want=None, timeout_s=60):
        args = [str(a) for a in args]
        p = subprocess.run([CLUBCTL] + args, input=stdin, capture_output=True,
                           timeout=timeout_s * SLOW, env=self.env(role, env), cwd=ROOT)
        r = Result(args, p.returncode, p.stdout.decode("utf-8", "replace"),
                   p.stderr.decode("utf-8", "replace"))
        self.outputs.append(r.out + r.err)
        for m in SANITIZER_MARKERS:
            check(m not in r.err, "sanitizer report from clubctl %s:\n%s" % (" ".join(args), r.err[-4000:]))
        if want is not None:
            check(r.rc == want, "clubctl %s: want exit %d, got %r" % (" ".join(args), want, r))
        return r

    def assert_no_token(self):
        for role, tok in self.fx.tokens.items():
            for o in self.outputs:
                check(tok not in o, "the %s token appeared in clubctl output:\n%s" % (role, o[-2000:]))


def disp_width(s):
    """Terminal columns of s, independently of clubctl's table."""
    w = 0
    for ch in s:
        cp = ord(ch)
        if unicodedata.combining(ch) or cp in (0x200B, 0x200C, 0x200D, 0x200E, 0x200F) \
                or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def column_of(line, text):
    """Display column where text starts in line."""
    i = line.index(text)
    return disp_width(line[:i])


def jalali_expected(d):
    """Jalali y/m/d for a Gregorian date in 1403..1405, from the Nowruz
    anchors (1403-01-01 = 2024-03-20, 1404-01-01 = 2025-03-21,
    1405-01-01 = 2026-03-21, 1406-01-01 = 2027-03-21); None outside."""
    anchors = [(1403, date(2024, 3, 20)), (1404, date(2025, 3, 21)), (1405, date(2026, 3, 21)),
               (1406, date(2027, 3, 21))]
    for (y, a), (_, b) in zip(anchors, anchors[1:]):
        if a <= d < b:
            n = (d - a).days
            if n < 186:
                return y, n // 31 + 1, n % 31 + 1
            return y, (n - 186) // 30 + 7, (n - 186) % 30 + 1
    return None


def fa_digits(s):
    return s.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))


def write_private(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


# ---------------------------------------------------------------- tests

@timeout(60)
def test_clubctl_offline(fx):
    """--version, help, the self-check, usage errors (2) and a refused
    connection (3), none of which need a server."""
    c = Ctl(fx, free_port())
    r = c.run("--version", want=0)
    check(r.out.startswith("clubctl ") and "libcurl" in r.out, "version: %r" % r)
    r = c.run("help", want=0)
    for cmd in ("status", "contacts add", "contacts import FILE", "messages send", "messages cancel ID"):
        check(cmd in r.out, "help lacks %r:\n%s" % (cmd, r.out))
    r = c.run("help", "contacts", "add", want=0)
    for opt in ("--name", "--phone", "--tag", "--attr", "--pref-json", "--file"):
        check(opt in r.out, "help contacts add lacks %s:\n%s" % (opt, r.out))
    c.run("messages", "send", "--help", want=0)
    r = c.run("_selftest", want=0)
    check("selftest: ok" in r.out, "selftest: %r" % r)

    usage = [
        ["frobnicate"],
        ["contacts"],
        ["contacts", "explode"],
        ["contacts", "get"],
        ["contacts", "get", "A", "B"],
        ["contacts", "add", "--bogus"],
        ["contacts", "add"],
        ["contacts", "find"],
        ["contacts", "find", "--phone", "1", "--email", "a@b.c"],
        ["contacts", "list", "--limit", "zero"],
        ["contacts", "add", "--attr", "novalue"],
        ["contacts", "add", "--name"],
        ["messages", "send", "--to", "0912", "--text", "x"],
        ["messages", "send", "--to", "0912", "--contact", "X", "--channel", "sms", "--text", "x"],
        ["messages", "send", "--contact", "X", "--channel", "fax", "--text", "x"],
        ["messages", "send", "--contact", "X", "--text", "x", "--at", "tomorrow-ish"],
        ["messages", "send", "--contact", "X", "--text", "x", "--idempotency-key", "has space"],
        ["messages", "send", "--contact", "X"],
        ["--timeout", "soon", "status"],
        ["--url", "ftp://127.0.0.1/", "status"],
    ]
    for args in usage:
        r = c.run(*args)
        check(r.rc == 2, "clubctl %s: want exit 2 (usage), got %r" % (" ".join(args), r))
        check(r.err.strip(), "clubctl %s: no message on stderr" % " ".join(args))
    # nothing listens on that port: exit 3 for every command that talks
    for args in (["status"], ["contacts", "list"], ["contacts", "get", "01JD3Z8Q6M0000000000000000"],
                 ["--json", "messages", "status", "01JD3Z8Q6M0000000000000000"]):
        r = c.run(*args, want=3)
        check("cannot talk to http://127.0.0.1:%d" % c.port in r.err, "no connect message: %r" % r)
        check(r.out == "", "stdout on a connection failure: %r" % r)
    c.assert_no_token()


@timeout(60)
def test_clubctl_status(fx):
    r_srv = fx.redis()
    d = fx.clubd(r_srv)
    c = Ctl(fx, d.port, role=None)  # the health routes need no token
    r = c.run("status", want=0)
    for key in ("server", "health", "ready", "redis", "in flight", "outcomes", "queues"):
        check(re.search(r"^%s\s" % key, r.out, re.M), "status lacks %r:\n%s" % (key, r.out))
    check(re.search(r"^redis\s+main up, reader up$", r.out, re.M), "redis line: %r" % r)
    check(re.search(r"^queues\s+scheduled \d+, ready \d+, pending \d+, dead letters \d+$",
                    r.out, re.M), "queues line: %r" % r.out)
    check("CHANNEL" in r.out and
          re.search(r"^sms\s+\d+\s+\d+\s+\d+\s+\d+\s+closed$", r.out, re.M),
          "channel table: %r" % r)

    # send one so the counters move, then read them back in --json
    d.client("marketer").send({"to": "09121234567", "channel": "sms", "text": "x"})
    wait_until(lambda: c.run("--json", "status", want=0).json()["summary"]["sent"] >= 1, 10,
               "status --json summary.sent >= 1")
    j = c.run("--json", "status", want=0).json()
    check(j["healthz"] == {"status": "ok"} and j["readyz"]["status"] == "ready", "status json: %r" % j)
    s = j["summary"]
    check(s["live"] is True and s["ready"] is True and s["redis_up"] is True, "summary: %r" % s)
    for k in ("inflight", "sent", "failed", "suppressed"):
        check(isinstance(s[k], int), "summary.%s not a number: %r" % (k, s))
    check(any(m["name"] == "clubd_up" and m["value"] == 1 for m in j["metrics"]), "metrics: %r" % j["metrics"][:5])

    # Redis gone: live but not ready -> exit 1, and the human output says so
    r_srv.kill()
    wait_until(lambda: c.run("status").rc == 1, 15, "clubctl status exit 1 without redis")
    r = c.run("status", want=1)
    check(re.search(r"^ready\s+NOT READY \(HTTP 503\)$", r.out, re.M), "not-ready output: %r" % r)
    check("not ready" in r.err, "no not-ready message: %r" % r)
    j = c.run("--json", "status", want=1).json()
    check(j["summary"]["ready"] is False and j["summary"]["redis_up"] is False, "json not ready: %r" % j)
    r_srv.start()
    d.wait_ready()


@timeout(90)
def test_clubctl_contacts(fx):
    d = fx.clubd(fx.redis())
    c = Ctl(fx, d.port, role="marketer")

    # add: human output, then the stored contact through get --json
    r = c.run("contacts", "add", "--name", PERSIAN, "--phone", "۰۹۱۲۱۲۳۴۵۶۷", "--email", "Sara@Example.COM",
              "--tag", "vip", "--tag", "مشتری-ویژه", "--attr", "city=تهران", "--attr", "visits:=3",
              "--attr", "newsletter:=true", "--tz", "Asia/Tehran", "--lang", "fa",
              "--pref-json", '{"channels":["sms","email"],"quiet_hours":{"start":"22:00","end":"08:00"}}',
              want=0)
    m = re.search(r"^id\s+(\S+)$", r.out, re.M)
    check(m and ID_RE.match(m.group(1)), "add output has no id: %r" % r)
    cid = m.group(1)
    check(re.search(r"^name\s+%s$" % re.escape(PERSIAN), r.out, re.M), "Persian name not shown: %r" % r)
    check(re.search(r"^phone\s+\+989121234567$", r.out, re.M), "phone: %r" % r)
    check(re.search(r"^tags\s+vip, مشتری-ویژه$", r.out, re.M), "tags: %r" % r)

    j = c.run("--json", "contacts", "get", cid, role="viewer", want=0).json()
    check(j["name"] == PERSIAN, "Persian name round trip: %r" % j["name"])
    check(j["addresses"] == {"sms": "+989121234567", "email": "sara@example.com"}, "addresses: %r" % j)
    check(j["attrs"] == {"city": "تهران", "visits": 3, "newsletter": True}, "attrs: %r" % j["attrs"])
    check(j["tags"] == ["vip", "مشتری-ویژه"] and j["preferences"]["channels"] == ["sms", "email"], "j: %r" % j)
    r = c.run("contacts", "get", cid, role="viewer", want=0)
    m = re.search(r"^attrs\s+(.*)$", r.out, re.M)
    check(m and sorted(m.group(1).split(", ")) == ["city=تهران", "newsletter=true", "visits=3"], "get: %r" % r)
    r = c.run("-q", "contacts", "get", cid, want=0)
    check(r.out.strip() == cid, "-q get: %r" % r)

    # add from a file, flags on top; --json answer
    body = os.path.join(fx.tmp, "c.json")
    with open(body, "w") as f:
        json.dump({"name": "从文件", "addresses": {"email": "file@example.com"}, "tags": ["f"]}, f,
                  ensure_ascii=False)
    j = c.run("--json", "contacts", "add", "-f", body, "--chat", "123456789", want=0).json()
    check(j["name"] == "从文件" and j["addresses"] == {"email": "file@example.com", "chat": "123456789"},
          "add -f: %r" % j)
    cid2 = j["id"]
    j = c.run("--json", "contacts", "add", "-f", "-", stdin=json.dumps({"name": "Plain", "tags": []}).encode(),
              want=0).json()
    cid3 = j["id"]

    # API errors: exit 1 with the message and the field; --json prints the error object
    r = c.run("contacts", "add", "--name", "Dup", "--phone", "09121234567", want=1)
    check("addresses.sms" in r.err and "conflict" in r.err and "HTTP 409" in r.err, "conflict: %r" % r)
    r = c.run("--json", "contacts", "add", "--name", "Bad", "--tz", "Mars/Olympus", want=1)
    check(r.json()["error"]["field"] == "tz" and "tz" in r.err, "tz error: %r" % r)
    r = c.run("contacts", "add", "--name", "x", "--pref-json", "[1]", want=2)

    # find: human, --json, and not found (exit 1)
    r = c.run("contacts", "find", "--phone", "0912 123 4567", role="viewer", want=0)
    check(re.search(r"^id\s+%s$" % cid, r.out, re.M), "find: %r" % r)
    j = c.run("--json", "contacts", "find", "--email", "file@EXAMPLE.com", want=0).json()
    check([x["id"] for x in j["items"]] == [cid2] and j["next_cursor"] is None, "find json: %r" % j)
    r = c.run("contacts", "find", "--chat", "999", want=1)
    check("no contact" in r.err, "find miss: %r" % r)
    check(c.run("--json", "contacts", "find", "--chat", "999", want=1).json() == {"items": [], "next_cursor": None},
          "find miss json")

    # edit: merge attrs, unset one, replace tags, remove an address, clear lang
    r = c.run("contacts", "edit", cid, "--attr", "tier=طلایی", "--unset-attr", "visits", "--tag", "gold",
              "--unset-addr", "email", "--unset", "lang", want=0)
    check(re.search(r"^tags\s+gold$", r.out, re.M) and re.search(r"^email\s+-$", r.out, re.M)
          and re.search(r"^lang\s+-$", r.out, re.M), "edit output: %r" % r)
    j = c.run("--json", "contacts", "edit", cid, "--first-name", "سارا", want=0).json()
    check(j["attrs"] == {"city": "تهران", "newsletter": True, "tier": "طلایی"}, "edit attrs: %r" % j["attrs"])
    check(j["tags"] == ["gold"] and "email" not in j["addresses"] and j["lang"] is None
          and j["first_name"] == "سارا" and j["name"] == PERSIAN, "edit json: %r" % j)
    c.run("contacts", "edit", cid, want=2)  # nothing to change
    r = c.run("contacts", "edit", "01JD3Z8Q6M0000000000000000", "--name", "x", want=1)
    check("HTTP 404" in r.err, "edit missing: %r" % r)

    # list: a table aligned by display width (Persian with ZWNJ, CJK), --json, --limit + cursor hint
    c.run("contacts", "add", "--name", "مُحَمَّد", "--phone", "09350000001", want=0)
    r = c.run("contacts", "list", role="viewer", want=0)
    lines = r.out.splitlines()
    check(lines and lines[0].startswith("ID ") and "NAME" in lines[0] and "CREATED" in lines[0], "list: %r" % r)
    check(len(lines) == 5, "list: 4 contacts expected: %r" % r)
    col_created = column_of(lines[0], "CREATED")
    col_email = column_of(lines[0], "EMAIL")
    for ln in lines[1:]:
        m = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", ln)
        check(m, "no date at the end of %r" % ln)
        check(column_of(ln, m.group(0)) == col_created,
              "CREATED column misaligned (display width) in:\n%s" % r.out)
    row = [ln for ln in lines if ln.startswith(cid2)][0]
    check(column_of(row, "file@example.com") == col_email, "EMAIL misaligned after CJK name:\n%s" % r.out)
    j = c.run("--json", "contacts", "list", "--limit", "2", want=0).json()
    check(len(j["items"]) == 2 and j["items"][0]["id"] == cid and j["next_cursor"], "list json: %r" % j)
    r = c.run("contacts", "list", "--limit", "2", want=0)
    check("--cursor %s" % j["next_cursor"] in r.err, "no cursor hint: %r" % r)
    r = c.run("contacts", "list", "--cursor", j["next_cursor"], want=0)
    check(len(r.out.splitlines()) == 3 and cid not in r.out, "list --cursor: %r" % r)
    j2 = c.run("--json", "contacts", "list", "--all", want=0).json()
    check(len(j2["items"]) == 4 and j2["next_cursor"] is None, "list --all: %r" % j2)
    r = c.run("-q", "contacts", "list", "--all", want=0)
    check(r.out.split() == [x["id"] for x in j2["items"]], "-q list: %r" % r)

    # Jalali dates and Persian digits under LANG=fa_IR (TZ=UTC), --gregorian overrides
    created = datetime.fromisoformat(j["items"][0]["created_at"].replace("Z", "+00:00"))
    r = c.run("contacts", "get", cid, env={"LANG": "fa_IR.UTF-8"}, want=0)
    m = re.search(r"^created\s+([۰-۹]{4})/([۰-۹]{2})/([۰-۹]{2}) ([۰-۹]{2}):([۰-۹]{2}):([۰-۹]{2})$", r.out, re.M)
    check(m, "no Jalali date with Persian digits: %r" % r)
    exp = jalali_expected(created.date())
    if exp:
        check(m.group(1, 2, 3) == tuple(fa_digits("%04d" % exp[0] if i == 0 else "%02d" % exp[i]) for i in range(3)),
              "Jalali date %s for %s, want %r" % (m.group(0), created.date(), exp))
    else:
        fx.note("created_at %s outside the test's Jalali anchors: date not compared" % created.date())
    check(m.group(4) == fa_digits("%02d" % created.hour), "Jalali hour: %r" % m.group(0))
    r = c.run("contacts", "get", cid, "--gregorian", env={"LC_ALL": "fa_IR.UTF-8"}, want=0)
    check(re.search(r"^created\s+%s$" % created.strftime("%Y-%m-%d %H:%M:%S"), r.out, re.M), "gregorian: %r" % r)
    r = c.run("contacts", "get", cid, "--jalali", env={"TZ": "Asia/Tehran"}, want=0)
    check(re.search(r"^created\s+[۰-۹]{4}/", r.out, re.M), "--jalali: %r" % r)

    # rm: marketer is refused (403, exit 1), admin deletes, then 404
    r = c.run("contacts", "rm", cid3, want=1)
    check("forbidden" in r.err and "HTTP 403" in r.err, "rm as marketer: %r" % r)
    r = c.run("contacts", "rm", cid3, role="admin", want=0)
    check(r.out.strip() == "deleted contact %s" % cid3, "rm: %r" % r)
    j = c.run("--json", "contacts", "rm", cid2, role="admin", want=0).json()
    check(j == {"id": cid2, "deleted": True}, "rm json: %r" % j)
    r = c.run("contacts", "get", cid3, want=1)
    check("no such contact" in r.err and "not_found" in r.err, "get after rm: %r" % r)
    # no token at all: 401 with a hint
    r = c.run("contacts", "list", role=None, want=1)
    check("unauthorized" in r.err and "no token configured" in r.err, "401: %r" % r)
    c.assert_no_token()


@timeout(90)
def test_clubctl_messages(fx):
    d = fx.clubd(fx.redis())
    c = Ctl(fx, d.port, role="marketer")
    cid = c.run("-q", "contacts", "add", "--name", PERSIAN, "--phone", "09121234567", want=0).out.strip()

    # send to an address: human output, then status until sent (history table)
    r = c.run("messages", "send", "--to", "09129876543", "--channel", "sms", "--text", "سلام دنیا", want=0)
    m = re.search(r"^id\s+(\S+)$", r.out, re.M)
    check(m and re.search(r"^state\s+(ready|scheduled)$", r.out, re.M), "send: %r" % r)
    mid = m.group(1)

    def sent():
        return c.run("--json", "messages", "status", mid, role="viewer", want=0).json()["state"] == "sent"

    wait_until(sent, 15, "message %s sent" % mid)
    r = c.run("messages", "status", mid, role="viewer", want=0)
    check(re.search(r"^state\s+sent$", r.out, re.M) and re.search(r"^to\s+\+989129876543$", r.out, re.M),
          "status: %r" % r)
    check(re.search(r"^text\s+سلام دنیا$", r.out, re.M), "status text: %r" % r)
    hist = r.out[r.out.index("AT "):].splitlines()
    check(hist[0].split() == ["AT", "STATE", "ATTEMPT", "DETAIL"], "history header: %r" % hist)
    states = [ln.split()[2] for ln in hist[1:]]
    check(states[-1] == "sent" and "sending" in states, "history states %r in %r" % (states, r.out))
    j = c.run("--json", "messages", "status", mid, want=0).json()
    check(j["id"] == mid and j["state"] == "sent" and j["history"], "status json: %r" % j)

    # a scheduled message to the contact: --json send, idempotent replay, cancel
    args = ["messages", "send", "--contact", cid, "--text", "بعدا", "--category", "promotional",
            "--at", "+1h", "--expires", "+2h", "--idempotency-key", "order-7781"]
    j = c.run("--json", *args, want=0).json()
    check(j["state"] == "scheduled" and j["contact_id"] == cid and ID_RE.match(j["id"]), "send json: %r" % j)
    due = datetime.fromisoformat(j["due_at"].replace("Z", "+00:00")).timestamp()
    check(3500 < due - time.time() < 3700, "--at +1h gave due_at %s" % j["due_at"])
    sid = j["id"]
    j2 = c.run("--json", *args, want=0).json()
    check(j2["id"] == sid and j2.get("replayed") is True, "replay json: %r" % j2)
    r = c.run(*args, want=0)
    check("nothing new was sent" in r.err and re.search(r"^id\s+%s$" % sid, r.out, re.M), "replay: %r" % r)

    # local-time and Jalali --at forms reach the server as the right instant
    j = c.run("--json", "messages", "send", "--contact", cid, "--text", "x", "--at", "2030-01-02 03:04",
              env={"TZ": "Asia/Tehran"}, want=0).json()
    check(j["due_at"] == "2030-01-01T23:34:00.000Z", "local --at: %r" % j)
    c.run("messages", "cancel", j["id"], want=0)
    j = c.run("--json", "messages", "send", "--contact", cid, "--text", "x", "--at", "۱۴۰۸/۱۰/۱۲ ۰۳:۰۴".replace("/", "-"),
              env={"TZ": "UTC"}, want=0).json()
    check(j["due_at"] == "2030-01-01T03:04:00.000Z", "Jalali --at (1408-10-12 = 2030-01-01): %r" % j)
    c.run("--json", "messages", "cancel", j["id"], want=0)

    r = c.run("messages", "cancel", sid, want=0)
    check(r.out.strip() == "cancelled message %s" % sid, "cancel: %r" % r)
    r = c.run("messages", "cancel", sid, want=1)
    check("conflict" in r.err and "cancelled" in r.err and "HTTP 409" in r.err, "cancel again: %r" % r)
    j = c.run("--json", "messages", "cancel", sid, want=1).json()
    check(j["error"]["code"] == "conflict", "cancel again json: %r" % j)
    r = c.run("messages", "status", sid, want=0)
    check(re.search(r"^state\s+cancelled$", r.out, re.M), "status after cancel: %r" % r)
    j = c.run("--json", "messages", "cancel", mid, want=1).json()  # already sent
    check(j["error"]["code"] == "conflict", "cancel sent: %r" % j)

    # API errors with their field
    r = c.run("messages", "send", "--contact", cid, "--channel", "email", "--text", "x", want=1)
    check("subject" in r.err and "missing_field" in r.err, "email without subject: %r" % r)
    r = c.run("messages", "send", "--contact", "01JD3Z8Q6M0000000000000000", "--text", "x", want=1)
    check("contact_id" in r.err and "HTTP 404" in r.err, "unknown contact: %r" % r)
    r = c.run("messages", "status", "01JD3Z8Q6M0000000000000000", want=1)
    check("not_found" in r.err, "unknown message: %r" % r)
    r = c.run("messages", "send", "--contact", cid, "--text", "x", role="viewer", want=1)
    check("forbidden" in r.err, "viewer send: %r" % r)

    # text from stdin and from a file
    r = c.run("-q", "messages", "send", "--contact", cid, "--text", "-", stdin="از ورودی\n".encode(), want=0)
    qid = r.out.split()[0]
    check(c.run("--json", "messages", "status", qid, want=0).json()["text"] == "از ورودی\n", "stdin text")
    c.assert_no_token()


def make_import_file(path, n=2000, bad=(500, 1500)):
    """n lines, 0-based indexes in bad broken (bad JSON, then a bad phone)."""
    with open(path, "w") as f:
        for i in range(n):
            if i == bad[0]:
                f.write('{"name": "broken\n')
            elif i == bad[1]:
                f.write(json.dumps({"name": "bad", "addresses": {"sms": "12"}}) + "\n")
            else:
                f.write(json.dumps({"name": "مشتری %d" % i, "addresses": {"sms": "0913%07d" % i},
                                    "tags": ["imported"]}, ensure_ascii=False) + "\n")


@timeout(120)
def test_clubctl_import(fx):
    d = fx.clubd(fx.redis())
    c = Ctl(fx, d.port, role="marketer")
    path = os.path.join(fx.tmp, "contacts.ndjson")
    make_import_file(path)

    # not a terminal: plain periodic lines (rate-capped so there are several)
    r = c.run("contacts", "import", path, "--max-rate", "80k", "--progress-interval", "300ms", want=1)
    check(r.out.startswith("created 1998, updated 0, failed 2 (2000 lines sent in "), "summary: %r" % r)
    err_rows = [ln.split(None, 2) for ln in r.out.splitlines() if re.match(r"^\s*\d+\s", ln)]
    check([e[0] for e in err_rows] == ["501", "1501"], "error lines: %r" % r)
    check(err_rows[1][1] == "addresses.sms" and "too short" in err_rows[1][2], "line 1501: %r" % err_rows)
    check(err_rows[0][1] == "-" and "invalid JSON" in err_rows[0][2], "line 501: %r" % err_rows)
    prog = [ln for ln in r.err.splitlines() if ln.startswith("import: ")]
    check(len(prog) >= 3, "want several progress lines, got:\n%s" % r.err)
    check("\r" not in r.err and "\033" not in r.err, "terminal codes on a pipe: %r" % r.err)
    check(all(re.search(r"\d+ rows sent, \d+ rows/s", ln) for ln in prog), "progress lines: %r" % prog)
    check(re.search(r"\(100%\), 2000 rows sent.*waiting for the server", prog[-1]), "last progress: %r" % prog[-1])
    check("2 lines refused" in r.err, "no refused count: %r" % r.err)

    # again with --json: the same lines now update; -q: no progress at all
    j = c.run("--json", "-q", "contacts", "import", path, want=1).json()
    check(j["created"] == 0 and j["updated"] == 1998 and j["failed"] == 2, "import json: %r" % j)
    check([(e["line"], e["field"]) for e in j["errors"]] == [(501, None), (1501, "addresses.sms")], "errors: %r" % j)
    # from stdin (chunked upload, size unknown)
    good = os.path.join(fx.tmp, "good.ndjson")
    with open(good, "w") as f:
        f.write(json.dumps({"name": "از stdin", "addresses": {"email": "stdin@example.com"}}, ensure_ascii=False))
    with open(good, "rb") as f:
        r = c.run("contacts", "import", "-", stdin=f.read(), want=0)
    check(r.out.startswith("created 1, updated 0, failed 0 (1 lines sent"), "stdin import: %r" % r)

    # --all follows next_cursor past the 500-per-page limit
    j = c.run("--json", "contacts", "list", "--all", role="viewer", want=0).json()
    check(len(j["items"]) == 1999 and len({x["id"] for x in j["items"]}) == 1999, "list --all: %d" % len(j["items"]))
    r = c.run("contacts", "list", "--all", role="viewer", want=0)
    check(len(r.out.splitlines()) == 2000, "human list --all: %d lines" % len(r.out.splitlines()))

    # a pseudo-terminal on stderr: a redrawn bar with \r, rows, rate, ETA
    out, rc = run_on_pty(c, ["contacts", "import", path, "--max-rate", "80k"])
    check(rc == 1, "pty import exit %s:\n%s" % (rc, out))
    frames = [f for f in out.split("\r") if f.startswith("[")]
    check(len(frames) >= 3, "want several redraws on a terminal, got:\n%r" % out[-2000:])
    check(all(re.match(r"\[[#-]+\] +\d+% ", f) for f in frames), "bar frames: %r" % frames[:5])
    check(any("ETA" in f for f in frames), "no ETA in the bar: %r" % frames)
    check(any(re.search(r"\] 100% .* 2000 rows .*done", f) for f in frames), "no final frame: %r" % frames[-3:])
    check("\033[K" in out, "no erase-line in the bar")
    check("created 0, updated 1998, failed 2" in out, "summary on the terminal: %r" % out[-1500:])

    # refused as a whole: a viewer token gets 403 and exit 1
    r = c.run("contacts", "import", path, role="viewer", want=1)
    check("forbidden" in r.err, "viewer import: %r" % r)
    c.run("contacts", "import", os.path.join(fx.tmp, "missing.ndjson"), want=2)
    c.assert_no_token()


def run_on_pty(c, args, timeout_s=60):
    """Run clubctl with stdin/stdout/stderr on a pseudo-terminal; returns
    (everything it wrote, exit status)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([CLUBCTL] + args, stdin=slave, stdout=slave, stderr=slave, env=c.env(),
                         cwd=ROOT, close_fds=True)
    os.close(slave)
    chunks = []
    end = time.monotonic() + timeout_s * SLOW
    try:
        while time.monotonic() < end:
            rl, _, _ = select.select([master], [], [], 0.2)
            if rl:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif p.poll() is not None:
                break
        else:
            p.kill()
            fail("clubctl on a pty did not finish in time")
        rc = p.wait(10)
    finally:
        os.close(master)
    out = b"".join(chunks).decode("utf-8", "replace")
    for m in SANITIZER_MARKERS:
        check(m not in out, "sanitizer report from clubctl on a pty:\n%s" % out[-4000:])
    return out, rc


def vm_hwm_kib(pid):
    """Peak RSS of a live process from /proc (None once it is gone).  Not
    ru_maxrss: a child's ru_maxrss starts from the forking Python's RSS."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1])
    except (OSError, ValueError):
        return None
    return None


@timeout(120)
def test_clubctl_import_streams(fx):
    """A 96 MiB import never sits in clubctl's memory: its peak RSS, read
    from /proc while the (rate-capped) upload runs, stays far below the
    file size."""
    d = fx.clubd(fx.redis(), overrides={"api": {"max_bulk_body": "512M", "request_timeout": "60s"}})
    c = Ctl(fx, d.port, role="marketer")
    path = os.path.join(fx.tmp, "big.ndjson")
    blank = " " * 65000 + "\n"  # blank lines: read and skipped by the server
    with open(path, "w") as f:
        f.write(json.dumps({"name": "first", "addresses": {"sms": "09121110000"}}) + "\n")
        for _ in range(96 * 1024 * 1024 // len(blank)):
            f.write(blank)
        f.write(json.dumps({"name": "last", "addresses": {"sms": "09121110001"}}) + "\n")
    size = os.path.getsize(path)
    p = subprocess.Popen([CLUBCTL, "contacts", "import", path, "--max-rate", "48M", "-q"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=c.env(), cwd=ROOT)
    bufs = {}
    ts = [threading.Thread(target=lambda n=n, f=f: bufs.__setitem__(n, f.read()), daemon=True)
          for n, f in (("out", p.stdout), ("err", p.stderr))]
    for t in ts:
        t.start()
    peak, samples = 0, 0
    end = time.monotonic() + 90 * SLOW
    while p.poll() is None and time.monotonic() < end:
        v = vm_hwm_kib(p.pid)
        if v is not None:
            peak, samples = max(peak, v), samples + 1
        time.sleep(0.02)
    if p.poll() is None:
        p.kill()
    p.wait()
    for t in ts:
        t.join(30)
    out, err = bufs.get("out", b""), bufs.get("err", b"")
    for m in SANITIZER_MARKERS:
        check(m.encode() not in err, "sanitizer report from clubctl:\n%s" % err.decode()[-4000:])
    check(p.returncode == 0, "big import exit %s:\n%s\n%s" % (p.returncode, out.decode(), err.decode()[-2000:]))
    check(out.decode().startswith("created 2, updated 0, failed 0"), "big import: %r" % out)
    check(samples >= 10, "too few RSS samples (%d): the upload ended too soon" % samples)
    check(peak * 1024 < size // 3, "clubctl peaked at %d KiB importing a %d KiB file" % (peak, size >> 10))
    fx.note("import of %d MiB: clubctl peak RSS %d KiB (%d samples)" % (size >> 20, peak, samples))


@timeout(60)
def test_clubctl_token_files(fx):
    d = fx.clubd(fx.redis())
    c = Ctl(fx, d.port, role=None)
    home = base_env(fx)["HOME"]
    tok = fx.tokens["viewer"]

    # --token-file: 0644 refused like ssh does (exit 2), 0600 accepted
    tf = os.path.join(fx.tmp, "token")
    write_private(tf, tok + "\n", 0o644)
    r = c.run("--token-file", tf, "contacts", "list", want=2)
    check("permissions 0644 for '%s' are too open" % tf in r.err and "chmod 600" in r.err, "0644 token: %r" % r)
    os.chmod(tf, 0o640)
    c.run("--token-file", tf, "contacts", "list", want=2)
    os.chmod(tf, 0o600)
    c.run("--token-file", tf, "contacts", "list", want=0)
    c.run("contacts", "list", env={"CLUBD_TOKEN_FILE": tf}, want=0)
    write_private(tf, "two words\n")
    r = c.run("--token-file", tf, "contacts", "list", want=2)
    check("first line must be the token" in r.err, "bad token file: %r" % r)

    # the config file: url + token_file, found in ~/.config/clubctl/config
    cdir = os.path.join(home, ".config", "clubctl")
    os.makedirs(cdir, exist_ok=True)
    write_private(os.path.join(cdir, "tok"), tok + "\n")
    cfg = os.path.join(cdir, "config")
    write_private(cfg, "# clubctl\nurl = http://127.0.0.1:%d/\ntoken_file = tok\ntimeout = 10s\n" % d.port)
    env = {"CLUBD_URL": ""}
    r = c.run("contacts", "list", env=env, want=0)
    check(r.out.startswith("ID") or "no contacts" in r.err, "config file: %r" % r)
    os.chmod(cfg, 0o644)
    r = c.run("contacts", "list", env=env, want=2)
    check("permissions 0644 for '%s' are too open" % cfg in r.err, "0644 config: %r" % r)
    write_private(cfg, "url = http://127.0.0.1:%d\ntoken = %s\n" % (d.port, tok))
    c.run("status", env=env, want=0)
    c.run("--json", "contacts", "list", env=env, want=0)
    write_private(cfg, "url = http://127.0.0.1:%d\ntoken = %s\nbogus = 1\n" % (d.port, tok))
    r = c.run("contacts", "list", env=env, want=2)
    check("%s:3: unknown key \"bogus\"" % cfg in r.err, "bad key: %r" % r)
    # an explicit --config must exist
    c.run("--config", os.path.join(fx.tmp, "nope"), "status", want=2)
    # flags beat the environment, which beats the config file
    write_private(cfg, "url = http://127.0.0.1:%d\ntoken = wrong-token\n" % free_port())
    c.run("contacts", "list", env={"CLUBD_URL": "http://127.0.0.1:%d" % d.port, "CLUBD_TOKEN": tok}, want=0)
    r = c.run("contacts", "list", env={"CLUBD_URL": ""}, want=3)
    c.assert_no_token()


@timeout(60)
def test_clubctl_token_not_in_cmdline(fx):
    """--token is overwritten in argv at once, so /proc/PID/cmdline does
    not show it while a (slow, rate-capped) import runs."""
    d = fx.clubd(fx.redis())
    path = os.path.join(fx.tmp, "contacts.ndjson")
    make_import_file(path, n=900, bad=(-1, -1))
    tok = fx.tokens["marketer"]
    env = base_env(fx)
    p = subprocess.Popen([CLUBCTL, "--url", "http://127.0.0.1:%d" % d.port, "--token", tok, "contacts", "import",
                          path, "--max-rate", "16k", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, cwd=ROOT)
    t0 = time.monotonic()
    seen = []  # (seconds since start, cmdline)
    try:
        end = t0 + 20 * SLOW
        while p.poll() is None and time.monotonic() < end:
            try:
                with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                    seen.append((time.monotonic() - t0, f.read()))
            except OSError:
                break
            time.sleep(0.05)
        out, err = p.communicate(timeout=60 * SLOW)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check(p.returncode == 0, "import with --token: exit %s %r %r" % (p.returncode, out, err))
    # samples from before main() ran (exec, dynamic linking, sanitizer start) may show it
    later = [s for t, s in seen if t > 0.5 * SLOW and s]
    check(len(later) >= 5, "the import ended too fast to look at its cmdline (%d samples)" % len(later))
    check(all(tok.encode() not in s for s in later), "the token is visible in /proc/PID/cmdline")
    check(all(b"contacts\0import" in s for s in later), "cmdline samples look wrong: %r" % later[:1])
    check(tok.encode() not in out + err, "token in output")


@timeout(60)
def test_clubctl_contact_timeline_export_erase(fx):
    """contacts timeline, export ID (one person's data) and erase."""
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "سارا", "addresses": {"sms": "09121110000"}})["id"]
    m = mk.send({"contact_id": cid, "channel": "sms", "text": "hello"})["id"]
    wait_until(lambda: mk.message(m)["state"] == "sent", 20, "sent")
    c = Ctl(fx, d.port, role="admin")
    out = c.run("contacts", "timeline", cid, want=0).out
    check(out.splitlines()[0].split() == ["AT", "TYPE", "DETAILS"] and "message" in out
          and "state=sent" in out, "timeline: %r" % out)
    j = c.run("--json", "contacts", "timeline", cid, want=0).json()
    check(j["items"] and j["items"][0]["type"] == "message", "timeline json %r" % j)
    c.run("contacts", "timeline", cid, "--limit", "0", want=2)
    doc = c.run("contacts", "export", cid, want=0).json()
    check(doc["contact"]["addresses"]["sms"] == "+989121110000" and
          any(x["id"] == m for x in doc["messages"]), "export: %r" % list(doc))
    check("forbidden" in c.run("contacts", "erase", cid, role="marketer", want=1).err,
          "erase needs admin")
    out = c.run("contacts", "erase", cid, want=0).out
    check(out.startswith("erased contact " + cid), "erase: %r" % out)
    check(c.run("contacts", "get", cid, want=1).err, "gone")
    check(c.run("--json", "contacts", "erase", cid, want=1).json()["error"]["code"] == "not_found",
          "erase twice -> not found")
