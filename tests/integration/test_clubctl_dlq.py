"""clubctl dlq against a real clubd + redis-server: messages the webhook sink
refuses with HTTP 400 fail for good and land in the dead letters; `dlq list`
shows them (table, -q, --json, --limit/--cursor, Jalali dates under a fa
locale), `dlq retry` sends one again once the sink accepts (it becomes
"sent"), `dlq drop` removes one and keeps the message record, several
entries are each reported with exit 1 when any failed, role errors carry the
API's message, and usage and connection errors give exit 2 and 3.

Uses the Ctl runner of test_clubctl.py (tokens through CLUBD_TOKEN, never
argv; sanitizer reports fail the test; the token never appears in output).
"""

import re
from datetime import datetime, timezone

from harness import check, free_port, timeout, wait_until
from test_clubctl import Ctl, column_of, fa_digits, jalali_expected

GREG_RE = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"


def at_utc(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(timezone.utc)


def table_rows(out):
    """Rows of a clubctl table as dicts keyed by header, cut at the header's
    column starts (the cells here are ASCII or one column per character)."""
    lines = out.splitlines()
    head = lines[0]
    names = head.split()
    check(names == ["ENTRY", "MESSAGE", "REASON", "WHEN"], "table header: %r" % head)
    starts = [column_of(head, n) for n in names]
    rows = []
    for ln in lines[1:]:
        cells = [ln[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
        rows.append(dict(zip(names, cells)))
    return rows


@timeout(60)
def test_clubctl_dlq_offline(fx):
    """Usage errors (2) and a refused connection (3) need no server."""
    c = Ctl(fx, free_port())
    r = c.run("help", want=0)
    for cmd in ("dlq list", "dlq retry ENTRY...", "dlq drop ENTRY..."):
        check(cmd in r.out, "help lacks %r:\n%s" % (cmd, r.out))
    r = c.run("help", "dlq", "list", want=0)
    for opt in ("--limit", "--all", "--cursor"):
        check(opt in r.out, "help dlq list lacks %s:\n%s" % (opt, r.out))
    r = c.run("_complete", "dlq", want=0)
    check(r.out.split() == ["list", "retry", "drop"], "completion: %r" % r)
    for args in (["dlq"], ["dlq", "explode"], ["dlq", "list", "--limit", "0"],
                 ["dlq", "list", "--limit", "many"], ["dlq", "list", "--all", "--limit", "3"],
                 ["dlq", "list", "extra"], ["dlq", "retry"], ["dlq", "drop"], ["dlq", "retry", ""],
                 ["dlq", "drop", "1-1", "--bogus"]):
        r = c.run(*args)
        check(r.rc == 2 and r.err.strip(), "clubctl %s: want exit 2, got %r" % (" ".join(args), r))
    for args in (["dlq", "list"], ["--json", "dlq", "list"], ["dlq", "retry", "1-1"],
                 ["--json", "dlq", "drop", "1-1"]):
        r = c.run(*args, want=3)
        check("cannot talk to http://127.0.0.1:%d" % c.port in r.err and r.out == "",
              "connection refused: %r" % r)
    # a transport error stops: the other entries are not tried
    r = c.run("dlq", "retry", "1-1", "2-2", "3-3", want=3)
    check("stopped: 2 of 3 entries not tried" in r.err, "stop on transport error: %r" % r)
    check(r.err.count("cannot talk to") == 1, "one connection attempt: %r" % r)
    c.assert_no_token()


@timeout(120)
def test_clubctl_dlq(fx):
    r_srv = fx.redis()
    s = fx.sink()
    s.add_rule({"text": "reject"}, "400")
    d = fx.clubd(r_srv, s)
    mk = d.client("marketer")
    ids = [mk.send({"to": "0912123000%d" % i, "channel": "sms", "text": "reject"})["id"] for i in range(3)]
    wait_until(lambda: all(mk.message(m)["state"] == "failed" for m in ids), 20, "all three rejected")
    c = Ctl(fx, d.port, role="viewer")

    # --json: the API's items as one document
    j = c.run("--json", "dlq", "list", want=0).json()
    check(list(j) == ["items", "next_cursor"] and j["next_cursor"] is None, "list json: %r" % j)
    items = j["items"]
    check(sorted(i["message_id"] for i in items) == sorted(ids), "listed messages: %r" % items)
    check(all("400" in (i["reason"] or "") for i in items), "reasons name the 400: %r" % items)
    by_msg = {i["message_id"]: i for i in items}
    ea, eb, ec = (by_msg[m]["entry"] for m in ids)
    check(j == d.client("viewer").get("/v1/dlq").json, "--json list is the API's answer")

    # the human table: one row per entry, dates in local time (TZ=UTC)
    r = c.run("dlq", "list", want=0)
    rows = table_rows(r.out)
    check([x["ENTRY"] for x in rows] == [i["entry"] for i in items], "table order: %r" % r)
    for x in rows:
        it = next(i for i in items if i["entry"] == x["ENTRY"])
        check(x["MESSAGE"] == it["message_id"], "message column: %r" % x)
        check(x["REASON"] == it["reason"], "reason column: %r vs %r" % (x, it))
        check(x["WHEN"] == at_utc(it["at"]).strftime("%Y-%m-%d %H:%M:%S"), "when column: %r vs %r" % (x, it))
    check(r.err == "", "nothing on stderr: %r" % r)
    r = c.run("-q", "dlq", "list", want=0)
    check(r.out.split() == [i["entry"] for i in items], "-q list: %r" % r)

    # paging: --limit stops with a cursor hint, --cursor continues, --all follows
    j = c.run("--json", "dlq", "list", "--limit", "2", want=0).json()
    check([i["entry"] for i in j["items"]] == [i["entry"] for i in items[:2]] and j["next_cursor"],
          "--limit 2: %r" % j)
    r = c.run("dlq", "list", "--limit", "2", want=0)
    check(len(r.out.splitlines()) == 3 and "clubctl dlq list --cursor %s" % j["next_cursor"] in r.err,
          "cursor hint: %r" % r)
    r = c.run("dlq", "list", "--cursor", j["next_cursor"], want=0)
    check([x["ENTRY"] for x in table_rows(r.out)] == [items[2]["entry"]], "--cursor: %r" % r)
    j = c.run("--json", "dlq", "list", "--all", want=0).json()
    check(j == {"items": items, "next_cursor": None}, "--all: %r" % j)
    r = c.run("--json", "dlq", "list", "--cursor", "bogus", want=1)
    check(r.json()["error"]["field"] == "cursor" and "cursor:" in r.err and "HTTP 400" in r.err,
          "bad cursor: %r" % r)

    # Jalali dates with Persian digits under LANG=fa_IR; ids stay ASCII
    r = c.run("dlq", "list", env={"LANG": "fa_IR.UTF-8"}, want=0)
    rows = table_rows(r.out)
    for x in rows:
        it = next(i for i in items if i["entry"] == x["ENTRY"])
        check(re.fullmatch(r"[0-9]+-[0-9]+", x["ENTRY"]) and x["MESSAGE"] == it["message_id"],
              "ids in ASCII digits: %r" % x)
        t = at_utc(it["at"])
        m = re.fullmatch(r"([۰-۹]{4})/([۰-۹]{2})/([۰-۹]{2}) ([۰-۹]{2}:[۰-۹]{2}:[۰-۹]{2})", x["WHEN"])
        check(m and m.group(4) == fa_digits(t.strftime("%H:%M:%S")), "Jalali when: %r" % x)
        exp = jalali_expected(t.date())
        if exp:
            check(m.group(1, 2, 3) == (fa_digits("%04d" % exp[0]), fa_digits("%02d" % exp[1]),
                                       fa_digits("%02d" % exp[2])),
                  "Jalali date %s for %s, want %r" % (x["WHEN"], t.date(), exp))
        else:
            fx.note("at %s outside the test's Jalali anchors: date not compared" % t.date())
    r = c.run("dlq", "list", "--gregorian", env={"LC_ALL": "fa_IR.UTF-8"}, want=0)
    check(all(re.fullmatch(GREG_RE, x["WHEN"]) for x in table_rows(r.out)), "--gregorian: %r" % r)

    # roles: a viewer cannot retry, a marketer cannot drop (the API's message, exit 1)
    r = c.run("dlq", "retry", ea, want=1)
    check("clubctl: %s: role admin required (forbidden, HTTP 403)" % ea in r.err and r.out == "",
          "viewer retry: %r" % r)
    j = c.run("--json", "dlq", "retry", ea, want=1).json()
    check(j == {"results": [{"entry": ea, "status": 403,
                             "error": {"code": "forbidden", "message": "role admin required"}}],
                "failed": 1}, "viewer retry json: %r" % j)
    r = c.run("dlq", "drop", ec, role="marketer", want=1)
    check("%s: role admin required (forbidden, HTTP 403)" % ec in r.err, "marketer drop: %r" % r)
    r = c.run("dlq", "retry", ea, role=None, want=1)
    check("unauthorized" in r.err and "no token configured" in r.err, "no token: %r" % r)
    check(len(c.run("--json", "dlq", "list", want=0).json()["items"]) == 3, "nothing changed")

    # the provider is fixed: retry a (and an unknown entry: reported, exit 1)
    s.clear_rules()
    r = c.run("dlq", "retry", ea, "1-1", role="admin", want=1)
    check(r.out == "retried %s: message %s scheduled\n" % (ea, ids[0]), "retry output: %r" % r)
    check("clubctl: 1-1: no such dead letter (not_found, HTTP 404)" in r.err, "unknown entry: %r" % r)
    check("1 of 2 entries not retried" in r.err, "retry summary: %r" % r)
    wait_until(lambda: mk.message(ids[0])["state"] == "sent", 20, "retried message sent")
    r = c.run("--json", "messages", "status", ids[0], want=0)
    check(r.json()["state"] == "sent" and r.json()["attempts"] == 1, "status after retry: %r" % r)

    # --json retry of b: the API's answer with the entry
    j = c.run("--json", "dlq", "retry", eb, role="admin", want=0).json()
    check(j == {"results": [{"entry": eb, "message_id": ids[1], "state": "scheduled"}], "failed": 0},
          "retry json: %r" % j)
    wait_until(lambda: mk.message(ids[1])["state"] == "sent", 20, "second retried message sent")
    r = c.run("dlq", "retry", ea, role="admin", want=1)
    check("%s: no such dead letter" % ea in r.err and "entries not" not in r.err, "retry twice: %r" % r)

    # drop c: the entry goes, the message record stays
    r = c.run("dlq", "drop", ec, role="admin", want=0)
    check(r.out == "dropped %s\n" % ec and r.err == "", "drop: %r" % r)
    check(mk.message(ids[2])["state"] == "failed", "dropping keeps the message")
    j = c.run("--json", "dlq", "drop", ec, "not-an-entry", role="admin", want=1).json()
    check(j["failed"] == 2 and [x["entry"] for x in j["results"]] == [ec, "not-an-entry"]
          and all(x["status"] == 404 and x["error"]["code"] == "not_found" for x in j["results"]),
          "drop unknown json: %r" % j)
    r = c.run("-q", "dlq", "drop", ec, role="admin", want=1)
    check(r.out == "" and "no such dead letter" in r.err, "-q drop still reports errors: %r" % r)

    # empty
    r = c.run("dlq", "list", want=0)
    check(r.out == "" and "no dead letters" in r.err, "empty list: %r" % r)
    check(c.run("--json", "dlq", "list", want=0).json() == {"items": [], "next_cursor": None}, "empty json")
    c.assert_no_token()
