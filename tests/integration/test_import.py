"""Contacts import and export: POST /v1/contacts/import (CSV and NDJSON,
streamed), per-row errors that do not stop the import (bad phone, bad
UTF-8, a CRLF inside a name, broken quotes, impossible dates, too many
fields, huge numbers), column mapping, dedupe by address, the 1000-error
cap with the full count, bounded memory on a large upload, the export ->
import round trip, and clubctl: `contacts import` of a CSV in several
requests with a progress bar on a pseudo-terminal and plain lines
otherwise, errors named by the file's own row and line, and `contacts
export` to a file."""

import csv
import io
import json
import os
import re
import time

from harness import ASAN, check, timeout
from test_clubctl import CLUBCTL, Ctl, run_on_pty, vm_hwm_kib

assert CLUBCTL


def imp(cl, body, query="format=csv", ctype="text/csv"):
    data = body if isinstance(body, bytes) else body.encode()
    return cl.request("POST", "/v1/contacts/import?" + query, raw=data, ctype=ctype)


def lookup(cl, phone):
    r = cl.get("/v1/contacts?channel=sms&address=" + phone)
    check(r.status == 200, "lookup -> %r" % r)
    return r.json["items"][0] if r.json["items"] else None


@timeout(60)
def test_import_csv_rows(fx):
    d = fx.clubd(fx.redis())
    mk = d.client("marketer")
    rows = [
        b"\xef\xbb\xbfname,mobile,Email,tags,attrs.birthday,attrs.code,notes\r\n",            # 1
        "سارا,۰۹۱۲۱۲۳۴۵۶۷,Sara@Example.COM,vip; gold ,۱۳۶۹/۰۲/۲۷,123456789012345678901234567890,x\r\n".encode(),  # 2
        b"Bad phone,12345,,,,,\r\n",                                                           # 3
        b"\xff\xfe broken,09121111111,,,,,\r\n",                                               # 4
        b'"Two\r\nlines",09122222222,,,,,\r\n',                                                # 5-6
        b"\r\n",                                                                               # 7 (blank)
        b'"Ali ""the great""",09123333333,,"[""a"",""b""]",1990-05-17,,\r\n',                  # 8
        b"Dated,09124444444,,,1369/13/40,,\r\n",                                               # 9
        b"Wide,09125555555,,,,,,extra\r\n",                                                    # 10
        b'Stray "quote,09126666666,,,,,\r\n',                                                  # 11
        b"Reza,+98 912 777 7777,r@example.com,,--02-29,,\r\n",                                 # 12
        b",,,,,,\r\n",                                                                         # 13
        b'"Unclosed,09128888888,,,,,\r\nLast,09129999999,,,,,',                               # 14..
    ]
    r = imp(mk, b"".join(rows), "format=csv&map=phone:mobile")
    check(r.status == 200, "import -> %r" % r)
    j = r.json
    check(j["rows"] == 11 and j["created"] == 3 and j["failed"] == 8 and j["error_count"] == 8,
          "counts %r" % {k: j[k] for k in ("rows", "created", "updated", "failed")})
    errs = {(e["row"], e["line"]): e for e in j["errors"]}
    want = {(3, 3): ("mobile", "addresses.sms", "too short"),
            (4, 4): ("name", "name", "UTF-8"),
            (5, 5): ("name", "name", "control characters"),
            (8, 9): ("attrs.birthday", "attrs.birthday", "not a date"),
            (9, 10): (None, None, "8 fields"),
            (10, 11): ("name", None, "quote"),
            (12, 13): (None, None, "no contact field"),
            (13, 14): ("name", None, "ended inside a quoted field")}
    for k, (col, field, reason) in want.items():
        e = errs.get(k)
        check(e is not None, "no error at row/line %r: %r" % (k, j["errors"]))
        check(e["column"] == col and e["field"] == field and reason in e["reason"],
              "error %r: %r, want %r" % (k, e, (col, field, reason)))
    check(j["columns"] == {"name": "name", "mobile": "addresses.sms", "Email": "addresses.email",
                           "tags": "tags", "attrs.birthday": "attrs.birthday", "attrs.code": "attrs.code"},
          "columns %r" % j["columns"])
    check(j["ignored_columns"] == ["notes"], "ignored %r" % j["ignored_columns"])

    c = lookup(mk, "+989121234567")
    check(c and c["name"] == "سارا" and c["addresses"]["email"] == "sara@example.com", "row 2: %r" % c)
    check(c["tags"] == ["vip", "gold"] and c["attrs"] == {"birthday": "j:1369-02-27",
                                                          "code": "123456789012345678901234567890"},
          "row 2 tags/attrs %r" % c)
    c = lookup(mk, "+989123333333")
    check(c["name"] == 'Ali "the great"' and c["tags"] == ["a", "b"] and c["attrs"]["birthday"] == "1990-05-17",
          "row 8: %r" % c)
    check(lookup(mk, "+989127777777")["attrs"]["birthday"] == "--02-29", "row 12")
    check(lookup(mk, "+989122222222") is None and lookup(mk, "+989125555555") is None, "refused rows written")

    # whole-request refusals
    check(imp(mk, "a,b\n1,2\n").status == 400, "no known column")
    r = imp(mk, "name\nx\n", "format=csv&map=phone:mobile")
    check(r.status == 400 and r.err_field() == "map" and "mobile" in r.json["error"]["message"], "missing col %r" % r)
    check(imp(mk, "name\nx\n", "format=csv&map=shoe:name").status == 400, "unknown map field")
    check(imp(mk, "", "format=csv").status == 400, "empty csv")
    check(imp(mk, "x", "format=xml").status == 400, "bad format")
    check(imp(mk, "x", "format=csv&dedupe=fax").status == 400, "bad dedupe")
    check(imp(d.client("viewer"), "name\nx\n").status == 403, "viewer import")
    r = imp(mk, "name;phone\nN;09120001111\n", "format=csv&delimiter=%3B")
    check(r.status == 200 and r.json["created"] == 1, "semicolons -> %r" % r)


@timeout(60)
def test_import_dedupe(fx):
    red = fx.redis()
    d = fx.clubd(red)
    mk = d.client("marketer")
    body = "name,phone,email\n" + "".join("c%d,0915000%04d,c%d@example.com\n" % (i, i, i) for i in range(50))
    r = imp(mk, body)
    check(r.status == 200 and r.json["created"] == 50, "first -> %r" % r)
    r = imp(mk, body.replace(",09", ",+989").replace("c1,", "renamed,"))
    check(r.status == 200 and r.json["created"] == 0 and r.json["updated"] == 50, "again -> %r" % r)
    check(lookup(mk, "+989150000001")["name"] == "renamed", "update by phone")
    # none: every row's addresses are taken
    r = imp(mk, body, "format=csv&dedupe=none")
    check(r.status == 200 and r.json["failed"] == 50 and r.json["errors"][0]["field"].startswith("addresses."),
          "dedupe none -> %r" % r)
    # by email only: the email finds the contact, the new phone is added
    r = imp(mk, "name,email,phone\nby-email,c2@example.com,09160000002\n", "format=csv&dedupe=email")
    check(r.status == 200 and r.json["updated"] == 1, "dedupe email -> %r" % r)
    c = lookup(mk, "+989160000002")
    check(c and c["name"] == "by-email" and c["addresses"]["email"] == "c2@example.com", "merged %r" % c)
    # by phone only: a row whose email belongs to someone else is refused
    r = imp(mk, "name,phone,email\nclash,09170000000,c3@example.com\n", "format=csv&dedupe=phone")
    check(r.status == 200 and r.json["failed"] == 1 and r.json["errors"][0]["field"] == "addresses.email",
          "clash -> %r" % r)
    # the same phone twice in one file: one contact
    r = imp(mk, "name,phone\nfirst,09180000000\nsecond,0918 000 0000\n")
    check(r.status == 200 and r.json["created"] == 1 and r.json["updated"] == 1, "twice -> %r" % r)
    check(lookup(mk, "+989180000000")["name"] == "second", "later row wins")
    # rows go to Redis 100 at a time: one that fails in the script (its stored version is not a
    # number) fails alone, named by its line; the rows around it are written
    bad = lookup(mk, "+989150000007")["id"]
    rc = red.client()
    rc.hset("clubd:c:" + bad, "v", "not-a-number")
    body = "name,phone\n" + "".join("b%d,0915000%04d\n" % (i, i) for i in range(20))
    r = imp(mk, body)
    check(r.status == 200 and r.json["created"] + r.json["updated"] == 19 and r.json["failed"] == 1
          and r.json["errors"][0]["line"] == 9, "one bad row in a batch -> %r" % r)
    check(lookup(mk, "+989150000008")["name"] == "b8", "its neighbour written")
    rc.close()


@timeout(60)
def test_import_ndjson(fx):
    d = fx.clubd(fx.redis())
    mk = d.client("marketer")
    a = mk.create_contact({"name": "old", "addresses": {"email": "a@example.com"}})
    lines = [json.dumps({"name": "نیلوفر", "addresses": {"sms": "۰۹۱۹۱۱۱۲۲۲۲"}, "tags": ["x"],
                         "attrs": {"visits": 3}}, ensure_ascii=False),
             json.dumps({"id": a["id"], "name": "patched"}),
             "{not json",
             json.dumps({"id": "nope", "name": "x"}),
             json.dumps({"name": "bad", "addresses": {"sms": "1"}}),
             ""]
    r = imp(mk, "\n".join(lines) + "\n", "format=ndjson", "application/x-ndjson")
    check(r.status == 200 and r.json["rows"] == 5 and r.json["created"] == 1 and r.json["updated"] == 1
          and r.json["failed"] == 3, "ndjson -> %r" % r)
    check([(e["row"], e["field"]) for e in r.json["errors"]] == [(3, None), (4, "id"), (5, "addresses.sms")],
          "errors %r" % r.json["errors"])
    check(mk.get("/v1/contacts/" + a["id"]).json["name"] == "patched", "id patch")
    # flat objects with a map
    flat = "\n".join(json.dumps(o, ensure_ascii=False) for o in [
        {"full_name": "Flat", "cell": "09190000001", "city": "Tabriz", "score": 7},
        {"full_name": "Flat 2", "cell": "bad"}])
    r = imp(mk, flat, "format=ndjson&map=name:full_name,phone:cell,attrs.city:city,attrs.score:score",
            "application/x-ndjson")
    check(r.status == 200 and r.json["created"] == 1 and r.json["failed"] == 1, "flat -> %r" % r)
    check(r.json["errors"][0]["column"] == "cell", "flat error column %r" % r.json["errors"])
    c = lookup(mk, "+989190000001")
    check(c["name"] == "Flat" and c["attrs"] == {"city": "Tabriz", "score": "7"}, "flat contact %r" % c)


@timeout(120)
def test_export_import_roundtrip(fx):
    red = fx.redis()
    d1 = fx.clubd(red)
    mk1 = d1.client("marketer")
    people = [{"name": "Reza, Jr.", "addresses": {"sms": "09120000001", "email": "r@example.com"},
               "tags": ["vip", "a;b"], "attrs": {"city": "تهران", "n": 5, "birthday": "j:1369-02-27"},
               "lang": "fa", "tz": "Asia/Tehran",
               "preferences": {"consent": {"email": False}, "categories": {"promotional": False}}},
              {"name": 'Mina "M"', "first_name": "Mina", "last_name": "Moradi",
               "addresses": {"chat": "@mina_moradi"}, "tags": []},
              {"name": "دو  فاصله", "addresses": {"sms": "09120000003"}, "tags": ["مشتری"]}]
    for p in people:
        mk1.create_contact(p)
    csv1 = mk1.get("/v1/contacts/export").text
    nd1 = [json.loads(x) for x in mk1.get("/v1/contacts/export?format=ndjson").text.splitlines()]

    d2 = fx.clubd(red, overrides={"redis": {"prefix": "other:"}})  # an empty store
    mk2 = d2.client("marketer")
    r = imp(mk2, csv1)
    check(r.status == 200 and r.json["created"] == 3 and r.json["failed"] == 0, "re-import -> %r" % r)
    check(sorted(r.json["ignored_columns"]) == ["created_at", "id", "updated_at"], "ignored %r" % r.json)
    nd2 = [json.loads(x) for x in mk2.get("/v1/contacts/export?format=ndjson").text.splitlines()]

    def strip(c):
        return {k: v for k, v in c.items() if k not in ("id", "created_at", "updated_at")}
    # (rows imported in the same millisecond get ids in no particular order)
    check(sorted(json.dumps(strip(c), sort_keys=True) for c in nd1)
          == sorted(json.dumps(strip(c), sort_keys=True) for c in nd2), "round trip:\n%r\n%r" % (nd1, nd2))
    # the same CSV again: nothing new (every row has an address)
    r = imp(mk2, csv1)
    check(r.json["created"] == 0 and r.json["updated"] == 3, "idempotent re-import %r" % r)
    rows = list(csv.reader(io.StringIO(csv1, newline="")))
    check(rows[0][:4] == ["id", "name", "first_name", "last_name"] and len(rows) == 4, "csv %r" % rows)


@timeout(180)
def test_import_large_bounded(fx):
    """400k rows (~24 MiB, most of them refused) stream through with the
    errors capped at 1000 and all counted, and clubd's memory does not
    grow with the file."""
    d = fx.clubd(fx.redis(), overrides={"api": {"request_timeout": "60s"}})
    mk = d.client("marketer")
    mk.timeout_s = 150
    mk.get("/v1/segments")
    base = vm_hwm_kib(d.proc.pid)
    n = 400000

    def gen():
        yield b"name,phone,attrs.note\n"
        chunk = []
        for i in range(n):
            phone = "0914%07d" % i if i % 1000 == 0 else "12%d" % i
            chunk.append(("row number %d,%s,%s\n" % (i, phone, "x" * 30)).encode())
            if len(chunk) == 5000:
                yield b"".join(chunk)
                chunk = []
        yield b"".join(chunk)

    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=150)
    t0 = time.monotonic()
    conn.request("POST", "/v1/contacts/import?format=csv", body=gen(), encode_chunked=True,
                 headers={"Authorization": "Bearer " + fx.tokens["marketer"], "Content-Type": "text/csv"})
    resp = conn.getresponse()
    j = json.loads(resp.read())
    secs = time.monotonic() - t0
    check(resp.status == 200, "large import -> %d %r" % (resp.status, j))
    check(j["rows"] == n and j["created"] == n // 1000 and j["failed"] == n - n // 1000
          and j["error_count"] == j["failed"] and len(j["errors"]) == 1000, "counts %r" %
          {k: j[k] for k in ("rows", "created", "failed", "error_count")})
    check(j["errors"][0]["row"] == 3 and j["errors"][-1]["row"] == 1003, "first/last kept %r" % j["errors"][-1])
    peak = vm_hwm_kib(d.proc.pid)
    # (under ASan freed memory sits in the quarantine: the RSS says nothing)
    check(ASAN or peak - base < 40 * 1024, "clubd grew from %d to %d KiB on a 24 MiB upload" % (base, peak))
    fx.note("%d rows in %.1fs; clubd peak RSS %d KiB (%+d KiB)" % (n, secs, peak, peak - base))


def make_csv(path, n, bad_rows, multiline_at):
    """n data rows; rows (0-based) in bad_rows get a bad phone; the row at
    multiline_at has a city over two lines (so later lines != rows)."""
    with open(path, "w", newline="") as f:
        f.write("Name,Mobile,City\r\n")
        for i in range(n):
            phone = "12" if i in bad_rows else "0911%07d" % i
            city = '"two\r\nlines"' if i == multiline_at else "Tehran"
            f.write("مشتری %d,%s,%s\r\n" % (i, phone, city))


@timeout(180)
def test_clubctl_import_export(fx):
    d = fx.clubd(fx.redis())
    c = Ctl(fx, d.port, role="marketer")
    path = os.path.join(fx.tmp, "big.csv")
    bad = {150, 1234, 2999}
    make_csv(path, 3000, bad, multiline_at=1000)
    # row numbers count the header as row 1; the record at 1000 takes two lines
    want_err = sorted((i + 2, i + 2 + (1 if i > 1000 else 0)) for i in bad)

    # not a terminal: plain lines, several requests, errors so far
    r = c.run("contacts", "import", path, "--map", "Mobile=phone", "--map", "City=attrs.city",
              "--batch-rows", "500", "--max-rate", "40k", "--progress-interval", "300ms", want=1)
    check(r.out.startswith("created 2997, updated 0, failed 3 (3000 rows sent in "), "summary %r" % r.out)
    got = [tuple(int(x) for x in ln.split()[:2]) for ln in r.out.splitlines() if re.match(r"^\s*\d+\s+\d+\s", ln)]
    check(got == want_err, "error rows/lines %r, want %r" % (got, want_err))
    check("Mobile" in r.out and "addresses.sms" in r.out, "column and field in the table: %r" % r.out)
    prog = [ln for ln in r.err.splitlines() if ln.startswith("import: ")]
    check(len(prog) >= 3 and "\r" not in r.err, "progress lines %r" % r.err)
    check(any(re.search(r", [1-3] errors? so far", ln) for ln in prog), "no errors so far: %r" % prog)
    check("3 rows refused" in r.err, "refused count %r" % r.err)

    # --json: the totals of every request
    j = c.run("--json", "-q", "contacts", "import", path, "--map", "Mobile=phone", "--batch-rows", "700",
              want=1).json()
    check(j["updated"] == 2997 and j["failed"] == 3 and j["rows"] == 3000, "json totals %r" % j)
    check([(e["row"], e["line"]) for e in j["errors"]] == want_err, "json errors %r" % j["errors"])

    # a pseudo-terminal: a redrawn bar with the errors
    out, rc = run_on_pty(c, ["contacts", "import", path, "--map", "Mobile=phone", "--batch-rows", "1000",
                             "--max-rate", "60k"])
    check(rc == 1, "pty exit %s: %s" % (rc, out[-500:]))
    frames = [f for f in out.split("\r") if f.startswith("[")]
    check(len(frames) >= 3 and all(re.match(r"\[[#-]+\] +\d+% ", f) for f in frames), "frames %r" % frames[:4])
    check(any(re.search(r"\d errors?", f) for f in frames), "no errors in the bar: %r" % frames[-3:])
    check(any(re.search(r"\] 100% .* 3000 rows .*done", f) for f in frames), "final frame %r" % frames[-2:])

    # export: a segment to a file (0600), everything to stdout
    mk = d.client("marketer")
    check(mk.post("/v1/segments", {"id": "bad-rows", "match": {"attr": "city", "op": "eq",
                                                                "value": "tehran"}}).status == 201, "segment")
    outp = os.path.join(fx.tmp, "out.csv")
    r = c.run("contacts", "export", "--segment", "bad-rows", "-o", outp, want=0)
    check(os.stat(outp).st_mode & 0o777 == 0o600, "export file mode %o" % os.stat(outp).st_mode)
    with open(outp, newline="") as f:
        rows = list(csv.DictReader(f))
    check(len(rows) == 2996 and "exported 2996 contacts" in r.err, "export file %d %r" % (len(rows), r.err))
    check(all(json.loads(x["attrs"]) == {"city": "Tehran"} for x in rows), "segment export rows")
    r = c.run("contacts", "export", "--format", "ndjson", want=0)
    lines = [json.loads(x) for x in r.out.splitlines()]
    check(len(lines) == 2997, "stdout export %d" % len(lines))
    multi = [x for x in lines if x["name"] == "مشتری 1000"]
    check(multi and multi[0]["attrs"]["city"] == "two\r\nlines", "multi-line cell survived: %r" % multi)
    r = c.run("contacts", "export", "--segment", "nope", want=1)
    check("not_found" in r.err or "no such segment" in r.err, "unknown segment %r" % r.err)
    # and the segments command
    r = c.run("segments", "preview", "bad-rows", "--sample", "2", want=0)
    check(r.out.startswith("2996 of 2997 contacts match"), "preview %r" % r.out)
    r = c.run("segments", "list", want=0)
    check("bad-rows" in r.out, "segments list %r" % r.out)
    r = c.run("--json", "segments", "create", "--id", "vip", "--name", "VIP",
              "--match", '{"tags":{"any":["vip"]}}', want=0)
    check(r.json()["v"] == 1, "segments create %r" % r.out)
    r = c.run("segments", "create", "--match", '{"tags":{"any":"vip"}}', want=1)
    check("match.tags.any" in r.err, "field in the error %r" % r.err)
    c.run("segments", "edit", "vip", "--name", "VIP 2", want=0)
    r = c.run("segments", "get", "vip", want=0)
    check("VIP 2" in r.out and '"vip"' in r.out, "get after edit %r" % r.out)
    c.run("segments", "rm", "vip", want=0)
    c.run("segments", "get", "vip", want=1)
    c.assert_no_token()
