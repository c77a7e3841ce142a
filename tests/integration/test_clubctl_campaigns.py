"""clubctl campaigns against a real clubd + redis-server: create (from a file
and from stdin), list, get, put, rm, launch, pause, resume, cancel, stats
and compare, each in human and --json output; exit codes 1 (the API's
message and field), 2 (usage) and 3 (no server); Persian names and reasons
aligned by display width; `stats --watch` redrawn in place on a
pseudo-terminal (cursor moved up over exactly the previous frame) until the
campaign completes, stopped by Ctrl-C on a paused campaign, and as plain
repeated blocks (or JSON Lines) on a pipe.

Templates and contacts are created through the API as test_campaigns.py
does; clubctl runs with the Ctl runner of test_clubctl.py (tokens through
CLUBD_TOKEN, sanitizer reports fail the test, the token never appears in
the output).
"""

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from datetime import datetime, timedelta, timezone

from harness import ROOT, SLOW, check, fail, free_port, timeout, wait_until
from test_campaigns import SEG, contacts, sink_by_contact, template
from test_clubctl import CLUBCTL, SANITIZER_MARKERS, Ctl, column_of, disp_width

NAME = "یلدا ۱۴۰۵"
REASON = "بررسی بودجه"


def write_json(fx, name, obj):
    path = os.path.join(fx.tmp, name)
    with open(path, "w") as f:
        json.dump(obj, f, ensure_ascii=False)
    return path


def api(client, method, path, body=None):
    r = client.request(method, path, body)
    check(200 <= r.status < 300, "%s %s: %r" % (method, path, r))
    return r.json


def kv(out):
    """The key/value lines of a human listing, up to the first blank line."""
    d = {}
    for ln in out.split("\n\n")[0].splitlines():
        m = re.match(r"^(\S+(?: \S+)?)\s{2,}(.*)$", ln)
        if m:
            d[m.group(1)] = m.group(2)
    return d


def table(text, first_header=None):
    """Lines of the first table in text (the block starting with a line
    that begins with first_header, or with spaces for an unnamed first
    column), up to the next blank line."""
    lines = text.splitlines()
    for i, ln in enumerate(lines):
        if (first_header and ln.startswith(first_header)) or (not first_header and re.match(r"^ +\S", ln)):
            out = []
            for x in lines[i:]:
                if not x.strip():
                    break
                out.append(x)
            return out
    fail("no table in:\n%s" % text)


def row_cells(lines, label):
    """The cells of the row whose label (first column) is label."""
    for ln in lines[1:]:
        if ln.startswith(label + "  ") or ln.startswith(label + " ("):
            return re.split(r"\s{2,}", ln.strip())[1:] if not ln.startswith(label + " (") else \
                re.split(r"\s{2,}", ln.split(")", 1)[1].strip())
    fail("no row %r in:\n%s" % (label, "\n".join(lines)))


def pct(x, sign=False):
    return None if x is None else (("%+.1f%%" if sign else "%.1f%%") % (x * 100.0))


# ---------------------------------------------------------------- pty


def run_watch_on_pty(c, args, on_frame=None, timeout_s=60, rows=50):
    """Run clubctl with a pseudo-terminal (120 columns, `rows` rows) as its
    controlling terminal; on_frame(output so far, proc, master) is called
    after every read and may write to the terminal or act on the server.
    Returns (output, exit status)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, 120, 0, 0))

    def ctty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen([CLUBCTL] + args, stdin=slave, stdout=slave, stderr=slave, env=c.env(),
                         cwd=ROOT, close_fds=True, start_new_session=True, preexec_fn=ctty)
    os.close(slave)
    chunks = []
    end = time.monotonic() + timeout_s * SLOW
    try:
        while time.monotonic() < end:
            rl, _, _ = select.select([master], [], [], 0.1)
            if rl:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
                if on_frame:
                    on_frame(b"".join(chunks).decode("utf-8", "replace"), p, master)
            elif p.poll() is not None:
                break
        else:
            p.kill()
            fail("clubctl %s on a pty did not finish in time:\n%r" % (" ".join(args), b"".join(chunks)[-3000:]))
        rc = p.wait(10 * SLOW)
    finally:
        os.close(master)
    out = b"".join(chunks).decode("utf-8", "replace")
    for m in SANITIZER_MARKERS:
        check(m not in out, "sanitizer report from clubctl on a pty:\n%s" % out[-4000:])
    return out, rc


def frames_of(out):
    """Split a pty watch into frames at the cursor-up sequences; returns
    [(rows moved up before the frame or 0, frame text)]."""
    parts = re.split(r"\x1b\[(\d+)A\r", out)
    frames = [(0, parts[0])]
    for i in range(1, len(parts), 2):
        frames.append((int(parts[i]), parts[i + 1]))
    return frames


# ---------------------------------------------------------------- tests


@timeout(60)
def test_clubctl_campaigns_offline(fx):
    """help, completion, usage errors (2) and a refused connection (3)."""
    c = Ctl(fx, free_port())
    r = c.run("help", want=0)
    for cmd in ("campaigns create FILE", "campaigns list", "campaigns get ID", "campaigns put ID FILE",
                "campaigns rm ID", "campaigns launch ID", "campaigns pause ID", "campaigns resume ID",
                "campaigns cancel ID", "campaigns stats ID", "campaigns compare ID ID..."):
        check(cmd in r.out, "help lacks %r:\n%s" % (cmd, r.out))
    r = c.run("help", "campaigns", "stats", want=0)
    check("--watch" in r.out and "--interval DURATION" in r.out, "help stats: %r" % r)
    r = c.run("campaigns", "pause", "--help", want=0)
    check("--reason TEXT" in r.out, "help pause: %r" % r)
    r = c.run("_complete", "campaigns", want=0)
    check(r.out.split() == ["list", "get", "create", "put", "rm", "launch", "preview", "pause", "resume", "cancel",
                            "stats", "compare"], "completion: %r" % r)
    check("campaigns" in c.run("_complete", want=0).out.split(), "group not completed")
    r = c.run("_complete", "campaigns", "stats", "x", want=0)
    check({"--watch", "--interval", "--json"} <= set(r.out.split()), "stats options: %r" % r)
    check("--reason" in c.run("_complete", "campaigns", "cancel", want=0).out.split(), "cancel --reason")
    check("@file" in c.run("_complete", "campaigns", "create", want=0).out.split(), "create completes files")

    bad_json = os.path.join(fx.tmp, "bad.json")
    with open(bad_json, "w") as f:
        f.write('{"name": "x",\n "segment": }')
    arr = write_json(fx, "arr.json", [1, 2])
    usage = [
        ["campaigns"], ["campaigns", "explode"], ["campaigns", "get"], ["campaigns", "get", "a", "b"],
        ["campaigns", "create"], ["campaigns", "create", os.path.join(fx.tmp, "missing.json")],
        ["campaigns", "create", bad_json], ["campaigns", "create", arr], ["campaigns", "put", "a"],
        ["campaigns", "compare", "a"], ["campaigns", "compare"] + ["c%d" % i for i in range(11)],
        ["campaigns", "compare", "a,b", "c"], ["campaigns", "compare", "a", ""],
        ["campaigns", "stats", "a", "--interval", "1s"],
        ["campaigns", "stats", "a", "--watch", "--interval", "10ms"],
        ["campaigns", "stats", "a", "--watch", "--interval", "soon"],
        ["campaigns", "pause", "a", "--reason", "two\nlines"], ["campaigns", "pause", "a", "--reason", "x" * 201],
        ["campaigns", "resume", "a", "--reason", "x"], ["campaigns", "launch", "a", "--watch"],
        ["campaigns", "list", "--limit", "0"], ["campaigns", "list", "--all", "--limit", "3"],
        ["campaigns", "list", "extra"],
    ]
    for args in usage:
        r = c.run(*args)
        check(r.rc == 2 and r.err.strip() and r.out == "", "clubctl %s: want exit 2, got %r" % (" ".join(args), r))
    r = c.run("campaigns", "create", bad_json, want=2)
    check("invalid JSON at line 2" in r.err, "JSON error position: %r" % r)
    for args in (["campaigns", "list"], ["--json", "campaigns", "get", "x"], ["campaigns", "launch", "x"],
                 ["campaigns", "stats", "x", "--watch"], ["campaigns", "compare", "a", "b"]):
        r = c.run(*args, want=3)
        check("cannot talk to http://127.0.0.1:%d" % c.port in r.err and r.out == "", "refused: %r" % r)
    c.assert_no_token()


def definition(**kw):
    d = {"id": "yalda", "name": NAME, "segment": SEG, "channel": "sms",
         "variants": [{"name": "A", "template": "hello-a"}, {"name": "B", "template": "hello-b"}],
         "control_percent": 20, "rate_limit": 10, "attribution_window": "7d",
         "budget": "1000000.00", "currency": "IRR"}
    d.update(kw)
    return {k: v for k, v in d.items() if v is not None}


@timeout(240)
def test_clubctl_campaigns(fx):
    r_srv = fx.redis()
    s = fx.sink()
    d = fx.clubd(r_srv, s)
    mk = d.client("marketer")
    vw = d.client("viewer")
    template(mk, "hello-a", "سلام {{first_name}}، یلدا مبارک")
    template(mk, "hello-b", "{{first_name}} عزیز، تخفیف یلدا")
    ids = contacts(d, 40)
    c = Ctl(fx, d.port, role="marketer")

    # ---- create: from a file (human), from stdin (--json), refused ones
    path = write_json(fx, "yalda.json", definition(rate_limit=5))
    r = c.run("campaigns", "create", path, want=0)
    check(r.out == "created campaign yalda (draft, version 1)\n" and r.err == "", "create: %r" % r)
    body = json.dumps(definition(name="draft from stdin", id=None), ensure_ascii=False).encode()
    j = c.run("--json", "campaigns", "create", "-", stdin=body, want=0).json()
    check(set(j) == {"id", "state", "version"} and j["state"] == "draft" and j["version"] == 1, "create json: %r" % j)
    tmp_id = j["id"]
    check(api(vw, "GET", "/v1/campaigns/" + tmp_id)["definition"]["name"] == "draft from stdin", "stdin definition")
    r = c.run("campaigns", "create", path, want=1)
    check("id: a campaign with this id exists (conflict, HTTP 409)" in r.err and r.out == "", "exists: %r" % r)
    bad = write_json(fx, "bad.json", definition(id="bad", control_percent=90))
    r = c.run("--json", "campaigns", "create", bad, want=1)
    check(r.json()["error"]["field"] == "control_percent" and "control_percent: " in r.err
          and "(invalid_field, HTTP 400)" in r.err, "refused definition: %r" % r)
    r = c.run("campaigns", "create", path, role="viewer", want=1)
    check("forbidden" in r.err and "HTTP 403" in r.err, "viewer create: %r" % r)
    for cid, name in (("autumn", "پاییز"), ("winter", "winter sale")):
        c.run("-q", "campaigns", "create", write_json(fx, cid + ".json", definition(
            id=cid, name=name, variants=None, template="hello-a", control_percent=0)), want=0)
    r = c.run("campaigns", "create", write_json(fx, "x.json", {"name": "x"}), want=1)
    check(r.err.startswith("clubctl: segment: ") or "HTTP 400" in r.err, "incomplete definition: %r" % r)

    # ---- put: a draft's definition replaced, the version grows
    r = c.run("campaigns", "put", "yalda", write_json(fx, "yalda2.json", definition()), want=0)
    check(r.out == "replaced campaign yalda (draft, version 2)\n", "put: %r" % r)
    j = c.run("--json", "campaigns", "put", "autumn", write_json(fx, "autumn2.json", definition(
        id="autumn", name="پاییز", variants=None, template="hello-b", control_percent=0, rate_limit=20)), want=0).json()
    check(j == {"id": "autumn", "state": "draft", "version": 2}, "put json: %r" % j)
    r = c.run("campaigns", "put", "nope", path, want=1)
    check("no such campaign (not_found, HTTP 404)" in r.err, "put unknown: %r" % r)

    # ---- preview: audience, sample renders, nothing sent
    r = c.run("campaigns", "preview", "yalda", "--samples", "1", role="viewer", want=0)
    check(r.out.startswith("audience       40\ncontrol (est.) 8\n") and "[A] 1 segment(s), ucs2" in r.out
          and "سلام" in r.out, "preview: %r" % r.out)
    j = c.run("--json", "campaigns", "preview", "yalda", role="viewer", want=0).json()
    check(j["audience"] == 40 and len(j["samples"]) == 3, "preview json: %r" % j)
    c.run("campaigns", "preview", "yalda", "--samples", "11", want=2)
    check(len(s.received_ids()) == 0, "preview sends nothing")

    # ---- list: a table aligned by display width, --json = the API's, -q, paging
    r = c.run("campaigns", "list", role="viewer", want=0)
    lines = r.out.splitlines()
    check(lines[0].split() == ["ID", "NAME", "STATE", "CHANNEL", "UPDATED"], "list header: %r" % r)
    listed = [x["id"] for x in api(vw, "GET", "/v1/campaigns")["items"]]
    check([ln.split()[0] for ln in lines[1:]] == listed and len(listed) == 4, "list rows: %r / %r" % (r.out, listed))
    col = column_of(lines[0], "STATE")
    for ln in lines[1:]:
        check(disp_width(ln[:ln.index("  draft  ") + 2]) == col, "STATE misaligned (display width):\n%s" % r.out)
        check(re.search(r"  sms  +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", ln), "channel and date: %r" % ln)
    check(any(NAME in ln for ln in lines) and any("پاییز" in ln for ln in lines), "Persian names: %r" % r.out)
    j = c.run("--json", "campaigns", "list", role="viewer", want=0).json()
    check(j == api(vw, "GET", "/v1/campaigns"), "--json list is the API's answer: %r" % j)
    r = c.run("-q", "campaigns", "list", want=0)
    check(r.out.split() == listed, "-q list: %r" % r)
    r = c.run("campaigns", "list", "--limit", "2", want=0)
    check(len(r.out.splitlines()) == 3 and "clubctl campaigns list --cursor %s" % listed[1] in r.err,
          "cursor hint: %r" % r)
    r = c.run("-q", "campaigns", "list", "--cursor", listed[1], want=0)
    check(r.out.split() == listed[2:], "--cursor: %r" % r)
    j = c.run("--json", "campaigns", "list", "--all", want=0).json()
    check([x["id"] for x in j["items"]] == listed and j["next_cursor"] is None, "--all: %r" % j)

    # ---- get: definition, state, history; --json = the API's
    r = c.run("campaigns", "get", "yalda", role="viewer", want=0)
    g = kv(r.out)
    check(g["id"] == "yalda" and g["name"] == NAME and g["state"] == "draft" and g["version"] == "2",
          "get: %r" % r)
    check(g["variants"] == "A: hello-a, B: hello-b" and g["control"] == "20%" and g["channel"] == "sms"
          and g["budget"] == "1000000.00 IRR" and g["rate limit"] == "10 messages/s"
          and g["schedule"] == "on launch" and g["segment"].startswith("inline {\"tags\""), "get fields: %r" % g)
    hist = table(r.out, "AT ")
    check(hist[0].split() == ["AT", "VERB", "FROM", "STATE", "BY", "REASON"] and len(hist) == 2, "history: %r" % r)
    j = c.run("--json", "campaigns", "get", "yalda", want=0).json()
    check(j == api(vw, "GET", "/v1/campaigns/yalda"), "--json get is the API's answer")
    check(c.run("-q", "campaigns", "get", "yalda", want=0).out == "yalda\n", "-q get")
    r = c.run("campaigns", "get", "nope", want=1)
    check(r.err == "clubctl: id: no such campaign (not_found, HTTP 404)\n" and r.out == "", "get unknown: %r" % r)
    r = c.run("--json", "campaigns", "get", "nope", want=1)
    check(r.json() == {"error": {"code": "not_found", "message": "no such campaign", "field": "id"}},
          "get unknown json: %r" % r)
    r = c.run("campaigns", "get", "yalda", env={"LANG": "fa_IR.UTF-8"}, want=0)
    check(re.fullmatch(r"[۰-۹]{4}/[۰-۹]{2}/[۰-۹]{2} [۰-۹]{2}:[۰-۹]{2}:[۰-۹]{2}", kv(r.out)["created"]),
          "Jalali created: %r" % r)

    # ---- launch, then pause with a Persian reason
    r = c.run("campaigns", "launch", "yalda", want=0)
    check(r.out == "campaign yalda: draft -> running\n", "launch: %r" % r)
    wait_until(lambda: len(s.received_ids()) >= 3, 20, "first messages")
    r = c.run("campaigns", "launch", "yalda", want=1)
    check("state: cannot launch a running campaign (conflict, HTTP 409)" in r.err, "launch twice: %r" % r)
    r = c.run("campaigns", "pause", "yalda", "--reason", REASON, want=0)
    check(r.out == "campaign yalda: running -> paused\n", "pause: %r" % r)
    j = c.run("--json", "campaigns", "pause", "yalda", want=1).json()
    check(j["error"]["code"] == "conflict" and j["error"]["field"] == "state", "pause twice: %r" % j)
    g = kv(c.run("campaigns", "get", "yalda", want=0).out)
    check(g["state"] == "paused (%s)" % REASON, "paused with reason: %r" % g)
    time.sleep(1.0)  # what was in flight settles

    # ---- stats while paused: human and --json
    def stable():
        a = api(vw, "GET", "/v1/campaigns/yalda/stats")
        time.sleep(0.3)
        return a if a == api(vw, "GET", "/v1/campaigns/yalda/stats") else None

    st = wait_until(stable, 10, "stable counters")
    j = c.run("--json", "campaigns", "stats", "yalda", role="viewer", want=0).json()
    check(j == st, "--json stats is the API's answer:\n%r\n%r" % (j, st))
    r = c.run("campaigns", "stats", "yalda", want=0)
    g = kv(r.out)
    check(g["campaign"] == "yalda  " + NAME and g["state"] == "paused (%s)" % REASON
          and g["budget"] == "1000000.00 IRR, spent 0.00 (0.0%)" and g["control"] == "20% held out",
          "stats head: %r" % r)
    t = table(r.out)
    check(t[0].split() == ["TOTAL", "A", "B", "CONTROL"], "stats columns: %r" % t[0])
    widths = {disp_width(ln) for ln in t}
    check(len(widths) == 1, "stats table not right-aligned by display width:\n%s" % "\n".join(t))
    arms = [st["totals"]] + st["variants"] + [st["control"]]
    for label, key in (("targeted", "targeted"), ("sent", "sent"), ("delivered", "delivered"),
                       ("suppressed", "suppressed")):
        check(row_cells(t, label) == [str(a[key]) for a in arms], "%s row: %r" % (label, t))
    check(row_cells(t, "queued") == [str(st["totals"]["queued"]), "-", "-", "-"], "queued: %r" % t)
    check(row_cells(t, "template") == ["-", "hello-a", "hello-b", "-"], "templates: %r" % t)
    check(row_cells(t, "revenue") == [a["revenue"] for a in arms], "revenue: %r" % t)
    check(any(ln.startswith("revenue (IRR)") for ln in t), "currency in the label: %r" % t)
    check(row_cells(t, "reply rate") == [pct(a["reply_rate"]) for a in arms], "rates: %r" % t)
    check(0 < st["totals"]["sent"] < st["totals"]["targeted"] - st["control"]["targeted"],
          "paused mid-way (rate limit 10/s): %r" % st["totals"])

    # ---- stats --watch on a terminal: the paused campaign is resumed once the
    # first frame is up; frames are redrawn in place until it completes
    acted = []

    def resume_after_first(out, p, master):
        if not acted and "TOTAL" in out:
            acted.append(1)
            rr = c.run("-q", "campaigns", "resume", "yalda", want=0)
            check(rr.out == "yalda running\n", "-q resume: %r" % rr)

    out, rc = run_watch_on_pty(c, ["campaigns", "stats", "yalda", "--watch", "--interval", "300ms"],
                               on_frame=resume_after_first, timeout_s=90)
    check(rc == 0 and acted, "watch on a pty: exit %s\n%r" % (rc, out[-2000:]))
    fr = frames_of(out)
    check(len(fr) >= 3, "want several frames, got %d:\n%r" % (len(fr), out[-3000:]))
    for (_, prev), (up, cur) in zip(fr, fr[1:]):
        check(up == prev.count("\n"), "moved up %d rows over a %d-line frame" % (up, prev.count("\n")))
        check(cur.endswith("\x1b[J"), "frame does not erase below: %r" % cur[-40:])
    check(all(ln.endswith("\x1b[K") for ln in fr[-1][1].split("\r\n")[:-1]), "lines erased to the end")
    first = fr[0][1].replace("\x1b[K", "")
    last = fr[-1][1].replace("\x1b[K", "").replace("\x1b[J", "")
    check("every 0.3s, Ctrl-C stops" in first and "paused (%s)" % REASON in first, "first frame: %r" % first)
    check(re.search(r"^state +completed\r?$", last, re.M), "last frame completed: %r" % last)
    check(api(vw, "GET", "/v1/campaigns/yalda")["state"] == "completed", "completed")
    st = api(vw, "GET", "/v1/campaigns/yalda/stats")
    check(row_cells(table(last.replace("\r", "")), "sent") == [str(a["sent"]) for a in
                                                               [st["totals"]] + st["variants"] + [st["control"]]],
          "last frame shows the final counters:\n%s" % last)

    # history: launch, pause with the reason and who, resume, complete
    r = c.run("campaigns", "get", "yalda", want=0)
    h = table(r.out, "AT ")
    check([x.split()[2] for x in h[1:]] == ["-", "launch", "pause", "resume", "complete"], "verbs: %r" % h)
    check(h[3].rstrip().endswith("test-marketer  " + REASON), "pause row: %r" % h[3])
    check(kv(r.out)["fan-out"] == "done", "fan-out done")

    # ---- purchases: two by treated contacts, one in the control group
    seen = sink_by_contact(s)
    treated = [x for x in ids if x in seen]
    control = [x for x in ids if x not in seen]
    check(len(control) == st["control"]["targeted"] > 0, "control group: %d / %r" % (len(control), st["control"]))
    for cid, amount in ((treated[0], "150000"), (treated[1], "50000"), (control[0], "100000")):
        api(mk, "POST", "/v1/events", {"type": "purchase", "contact_id": cid, "amount": amount, "currency": "IRR"})
    st = api(vw, "GET", "/v1/campaigns/yalda/stats")
    check(st["totals"]["purchases"] == 3 and st["control"]["purchases"] == 1, "attributed: %r" % st["totals"])
    r = c.run("campaigns", "stats", "yalda", want=0)
    t = table(r.out)
    arms = [st["totals"]] + st["variants"] + [st["control"]]
    check(row_cells(t, "purchases") == [str(a["purchases"]) for a in arms], "purchases: %r" % t)
    check(row_cells(t, "revenue") == [a["revenue"] for a in arms], "revenue: %r" % t)
    check(row_cells(t, "conversion lift") == ["-"] + [pct(v["conversion_lift"], True) or "-" for v in st["variants"]]
          + ["-"], "lift row: %r vs %r" % (t, st["variants"]))
    check(row_cells(t, "conversion rate") == [pct(a["conversion_rate"]) for a in arms], "conversion rate: %r" % t)

    # ---- a second campaign launched and paused, watched through a pipe
    r = c.run("campaigns", "launch", "autumn", want=0)
    check(r.out == "campaign autumn: draft -> running\n", "launch autumn: %r" % r)
    c.run("campaigns", "pause", "autumn", want=0)
    p = subprocess.Popen([CLUBCTL, "campaigns", "stats", "autumn", "--watch", "--interval", "200ms"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=c.env(), cwd=ROOT)
    time.sleep(1.0 * SLOW)
    c.run("campaigns", "resume", "autumn", want=0)
    try:
        pout, perr = p.communicate(timeout=60 * SLOW)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("watch on a pipe did not stop when the campaign completed")
    pout = pout.decode()
    check(p.returncode == 0 and perr == b"", "watch on a pipe: exit %s %r" % (p.returncode, perr))
    check("\x1b" not in pout and "\r" not in pout, "terminal codes on a pipe: %r" % pout[:500])
    blocks = re.split(r"(?:^|\n\n)-- .+ --\n", pout)
    heads = re.findall(r"^-- (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) --$", pout, re.M)
    check(len(heads) >= 3 and len(blocks) == len(heads) + 1 and blocks[0] == "", "blocks: %r" % pout[:800])
    check(all(re.search(r"^state +paused$", b, re.M) for b in blocks[1:3]), "paused at first: %r" % blocks[1][:300])
    check(re.search(r"^state +completed$", blocks[-1], re.M) and not any(
        re.search(r"^state +completed$", b, re.M) for b in blocks[1:-1]), "stops at completed: %r" % blocks[-1][:300])
    check(table(blocks[-1])[0].split() == ["TOTAL", "A"], "no control column without a control group: %r" % blocks[-1])
    # --json --watch: one document per line; a finished campaign gives one
    r = c.run("--json", "campaigns", "stats", "autumn", "--watch", want=0)
    check(r.out.count("\n") == 1 and json.loads(r.out) == api(vw, "GET", "/v1/campaigns/autumn/stats"),
          "json watch: %r" % r)

    # ---- compare: one column per campaign, --json = the API's
    r = c.run("campaigns", "compare", "yalda", "autumn", role="viewer", want=0)
    t = r.out.splitlines()
    check(t[0].split() == ["yalda", "autumn"], "compare header: %r" % r)
    check(len({disp_width(ln) for ln in t}) == 1, "compare not aligned by display width:\n%s" % r.out)
    cmp = api(vw, "GET", "/v1/campaigns/compare?ids=yalda,autumn")["campaigns"]
    check(row_cells(t, "name") == [NAME, "پاییز"] and row_cells(t, "state") == ["completed", "completed"],
          "names: %r" % t)
    for key in ("targeted", "sent", "delivered", "replies", "clicks", "purchases"):
        check(row_cells(t, key) == [str(x["totals"][key]) for x in cmp], "%s: %r" % (key, t))
    check(row_cells(t, "revenue") == ["%s IRR" % x["totals"]["revenue"] for x in cmp], "revenue: %r" % t)
    check(row_cells(t, "cost") == ["%s IRR" % x["totals"]["cost"] for x in cmp], "cost: %r" % t)
    check(row_cells(t, "ROI") == [pct(x["totals"]["roi"]) for x in cmp], "ROI: %r" % t)
    # the lift of all variants together over the control group
    y = cmp[0]
    ct, cp = y["control"]["targeted"], y["control"]["purchases"]
    tt, tp = y["totals"]["targeted"] - ct, y["totals"]["purchases"] - cp
    lift = (tp / tt - cp / ct) / (cp / ct)
    cr = float(y["control"]["revenue"]) / ct
    rlift = ((float(y["totals"]["revenue"]) - float(y["control"]["revenue"])) / tt - cr) / cr
    check(row_cells(t, "conversion lift") == [pct(lift, True), "-"], "conversion lift: %r (want %.4f)" % (t, lift))
    check(row_cells(t, "revenue lift") == [pct(rlift, True), "-"], "revenue lift: %r (want %.4f)" % (t, rlift))
    j = c.run("--json", "campaigns", "compare", "yalda", "autumn", want=0).json()
    check(j == {"campaigns": cmp}, "--json compare is the API's answer")
    r = c.run("campaigns", "compare", "yalda", "nope", want=1)
    check("ids: no such campaign: nope (not_found, HTTP 404)" in r.err and r.out == "", "compare unknown: %r" % r)

    # ---- cancel: a scheduled campaign, with a reason; watch ends at once
    at = (datetime.now(timezone.utc) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    c.run("campaigns", "put", "winter", write_json(fx, "winter2.json", definition(
        id="winter", name="winter sale", variants=None, template="hello-a", control_percent=0,
        schedule={"at": at})), want=0)
    check(kv(c.run("campaigns", "get", "winter", want=0).out)["schedule"].startswith("at "), "schedule shown")
    r = c.run("campaigns", "launch", "winter", want=0)
    check(r.out == "campaign winter: draft -> scheduled\n", "scheduled: %r" % r)
    j = c.run("--json", "campaigns", "cancel", "winter", "--reason", "منصرف شدیم", want=0).json()
    check(j == {"id": "winter", "from": "scheduled", "state": "cancelled"}, "cancel json: %r" % j)
    check(api(vw, "GET", "/v1/campaigns/winter")["history"][-1]["reason"] == "منصرف شدیم", "cancel reason kept")
    r = c.run("campaigns", "cancel", "winter", want=1)
    check("cannot cancel a cancelled campaign" in r.err, "cancel twice: %r" % r)
    r = c.run("campaigns", "stats", "winter", "--watch", "--interval", "5s", want=0, timeout_s=20)
    check(r.out.count("-- ") == 1 and "cancelled (منصرف شدیم)" in r.out, "watch a cancelled campaign: %r" % r)
    r = c.run("campaigns", "resume", "winter", want=1)
    check("cannot resume a cancelled campaign" in r.err, "resume cancelled: %r" % r)

    # ---- Ctrl-C stops a watch (exit 0): a campaign paused for good, on a
    # terminal of 16 rows: the frames leave out the rows that are all zero
    c.run("campaigns", "launch", tmp_id, want=0)
    c.run("campaigns", "pause", tmp_id, want=0)
    sent_ctrl_c = []

    def ctrl_c(out, p, master):
        if not sent_ctrl_c and len(frames_of(out)) >= 3:
            sent_ctrl_c.append(1)
            os.write(master, b"\x03")

    out, rc = run_watch_on_pty(c, ["campaigns", "stats", tmp_id, "--watch", "--interval", "200ms"],
                               on_frame=ctrl_c, timeout_s=30, rows=16)
    check(sent_ctrl_c and rc == 0, "Ctrl-C: exit %s\n%r" % (rc, out[-1500:]))
    fr = frames_of(out)
    for (_, prev), (up, cur) in zip(fr, fr[1:]):
        check(up == prev.count("\n") <= 15, "moved up %d rows over a %d-line frame" % (up, prev.count("\n")))
    f1 = fr[1][1].replace("\x1b[K", "").replace("\r", "")
    check(re.search(r"^targeted ", f1, re.M) and not re.search(r"^failed ", f1, re.M), "compact frame: %r" % f1)
    check(len(c.run("campaigns", "stats", tmp_id, want=0).out.splitlines()) > 16, "full block without a terminal")
    # a terminal too short even for that: the first lines and a note
    out, rc = run_watch_on_pty(c, ["campaigns", "stats", "autumn", "--watch"], rows=8)
    check(rc == 0 and out.count("\r\n") == 7 and re.search(r"\.\.\. \d+ more lines \(a taller terminal", out),
          "8-row terminal: %r" % out)

    # ---- rm: not while paused; drafts and finished ones go
    r = c.run("campaigns", "rm", tmp_id, want=1)
    check("state: cancel the campaign first" in r.err and "HTTP 409" in r.err, "rm paused: %r" % r)
    r = c.run("-q", "campaigns", "cancel", tmp_id, want=0)
    check(r.out == "%s cancelled\n" % tmp_id, "-q cancel: %r" % r)
    r = c.run("-q", "campaigns", "rm", tmp_id, want=0)
    check(r.out == "" and r.err == "", "-q rm: %r" % r)
    r = c.run("campaigns", "rm", "winter", want=0)
    check(r.out == "deleted campaign winter\n", "rm: %r" % r)
    j = c.run("--json", "campaigns", "rm", "autumn", want=0).json()
    check(j == {"id": "autumn", "deleted": True}, "rm json: %r" % j)
    r = c.run("campaigns", "rm", "winter", want=1)
    check("no such campaign (not_found, HTTP 404)" in r.err, "rm twice: %r" % r)
    r = c.run("campaigns", "rm", "yalda", role="viewer", want=1)
    check("HTTP 403" in r.err, "viewer rm: %r" % r)
    check(c.run("-q", "campaigns", "list", want=0).out.split() == ["yalda"], "one left")
    c.assert_no_token()
