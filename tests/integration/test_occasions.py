"""Occasions through the real daemon: rules created over the API, operator runs
for a date (POST /v1/occasions/{id}/run?date=) whose messages reach the sink
with rendered Persian text, the periodic pass on every contact's local today,
preview counts, exactly one message per (rule, contact, year) when a run is
repeated, when two daemons share one Redis, and when the daemon is killed
with -9 in the middle of a run and restarted."""

import json
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from harness import check, fail, timeout, wait_until

TPL_NOWRUZ = {
    "id": "nowruz", "name": "Nowruz", "default_lang": "fa",
    "variants": [{"channel": "sms", "lang": "fa",
                  "text": "{{first_name|\"مشتری گرامی\"}}، نوروز {{event.occasion.year|fa}} مبارک! "
                          "({{event.occasion.date|jdate:\"d MMMM yyyy\"|fa}})"}]}
TPL_BIRTHDAY = {
    "id": "birthday", "name": "Birthday", "default_lang": "fa",
    "variants": [{"channel": "any", "lang": "fa",
                  "text": "{{first_name|\"دوست\"}} عزیز، {{event.occasion.years|fa}} سالگی‌ات مبارک!"}]}
OVERRIDES = {"occasions": {"interval": "1s", "lease": "2s", "batch": "50", "grace": "0ms"}}


def setup(fx, overrides=None, names=("a",)):
    r = fx.redis()
    s = fx.sink()
    ov = dict(OVERRIDES)
    for k, v in (overrides or {}).items():
        ov[k] = dict(ov.get(k, {}), **v)
    ds = [fx.clubd(r, s, overrides=ov, name=n) for n in names]
    mk = ds[0].client("marketer")
    for t in (TPL_NOWRUZ, TPL_BIRTHDAY):
        x = mk.post("/v1/templates", t)
        check(x.status == 201, "POST /v1/templates -> %r" % x)
    return r, s, ds


def create_rule(d, rule, status=201):
    x = d.client("marketer").post("/v1/occasions", rule)
    check(x.status == status, "POST /v1/occasions %s -> %r" % (json.dumps(rule, ensure_ascii=False), x))
    return x.json


def run(d, rid, date=None, role="admin"):
    q = "/v1/occasions/%s/run" % rid + ("?date=" + date if date else "")
    return d.client(role).post(q)


def wait_run_done(d, rid, what="run", timeout_s=30):
    last = [None]

    def done():
        x = d.client("viewer").get("/v1/occasions/" + rid)
        check(x.status == 200, "GET occasion -> %r" % x)
        last[0] = x.json.get(what)
        return last[0] and last[0]["state"] in ("done", "failed") and last[0]

    got = wait_until(done, timeout_s, "occasion %s %s finished" % (rid, what), interval=0.05,
                     on_fail=lambda: last[0])
    check(got["state"] == "done", "run failed: %r" % got)
    return got


_SPEC = []


def spec_check(x, method, path, status):
    """The answer x has the status and validates against docs/openapi.yaml."""
    from test_openapi import Validator, load_spec
    if not _SPEC:
        _SPEC.append(load_spec())
    v = Validator(_SPEC[0])
    check(x.status == status, "%s %s: want %d, got %r" % (method, path, status, x))
    resp = v.deref(_SPEC[0]["paths"][path][method.lower()]["responses"][str(status)])
    if "content" in resp:
        v.validate(x.json, resp["content"]["application/json"]["schema"], "%s %s %d" % (method, path, status))


def sink_msgs(s):
    """[(message id, body)] of everything the sink received (first delivery)."""
    out = []
    for mid in s.received_ids():
        out.append((mid, s.requests_for(mid)[0].body))
    return out


def by_contact(s):
    per = {}
    for mid, b in sink_msgs(s):
        per.setdefault(b["contact_id"], set()).add(mid)
    return per


def occ_messages(redis, rule):
    """contact -> [message ids] of the messages the rule created (from Redis)."""
    cl = redis.client()
    out = {}
    for k in cl.scan_iter("clubd:m:*", count=1000):
        h = cl.hmget(k, "occ", "contact", "id")
        if h[0] == rule:
            out.setdefault(h[1], []).append(h[2])
    return out


def quiet_zone():
    """A zone whose local time is far from midnight now (the live pass uses
    the real clock)."""
    for z in ("Asia/Tehran", "Europe/Berlin", "America/New_York", "Asia/Tokyo",
              "America/Los_Angeles", "Pacific/Auckland"):
        h = datetime.now(ZoneInfo(z)).hour
        if 2 <= h <= 20:
            return z
    fail("no zone far from midnight")


# ---------------------------------------------------------------- API

@timeout(60)
def test_occasions_crud(fx):
    _, _, (d,) = setup(fx)
    mk, view, adm = d.client("marketer"), d.client("viewer"), d.client("admin")
    nowruz = {"id": "nowruz", "name": "نوروز", "kind": "fixed_jalali", "date": "01-01",
              "template": "nowruz", "channel": "sms", "window": "09:00-12:00"}
    x = mk.post("/v1/occasions", nowruz)
    spec_check(x, "POST", "/v1/occasions", 201)
    got = x.json
    check(got["id"] == "nowruz" and got["kind"] == "fixed_jalali" and got["date"] == "01-01"
          and got["offset_days"] == 0 and got["category"] == "occasion" and got["enabled"] is True
          and got["window"] == "09:00-12:00" and got["version"] == 1 and got["run"] is None,
          "created %r" % got)
    spec_check(mk.post("/v1/occasions", nowruz), "POST", "/v1/occasions", 409)
    x = view.post("/v1/occasions", dict(nowruz, id="other"))
    check(x.status == 403, "viewer create -> %r" % x)
    # validation names the field
    for body, field in [
        (dict(nowruz, id="x1", kind="easter"), "kind"),
        (dict(nowruz, id="x2", date="07-31"), "date"),
        (dict(nowruz, id="x3", window="20:00-02:00"), "window"),
        (dict(nowruz, id="x4", offset_days=-400), "offset_days"),
        (dict(nowruz, id="x5", template="nope"), "template"),
        (dict(nowruz, id="x6", segment={"tags": {"some": ["vip"]}}), "segment"),
        (dict(nowruz, id="x7", segment="no-such-segment"), "segment"),
        (dict(nowruz, id="x8", colour="red"), "colour"),
        ({"id": "x9", "kind": "date_attr", "template": "nowruz"}, "attr"),
    ]:
        x = mk.post("/v1/occasions", body)
        check(x.status == 400 and x.err_field() == field,
              "%s: want 400 on %s, got %r" % (json.dumps(body, ensure_ascii=False), field, x))
    # an id is made up when none is given
    x = mk.post("/v1/occasions", {"kind": "birthday", "template": "birthday"})
    check(x.status == 201 and len(x.json["id"]) == 26, "POST without id -> %r" % x)
    auto = x.json["id"]
    lst = view.get("/v1/occasions")
    spec_check(lst, "GET", "/v1/occasions", 200)
    spec_check(view.get("/v1/occasions/nowruz"), "GET", "/v1/occasions/{id}", 200)
    spec_check(view.get("/v1/occasions/nope"), "GET", "/v1/occasions/{id}", 404)
    check(lst.status == 200 and sorted(i["id"] for i in lst.json["items"]) == sorted(["nowruz", auto]),
          "list %r" % lst)
    # replace
    x = mk.request("PUT", "/v1/occasions/nowruz", body=dict(nowruz, offset_days=-1, enabled=False))
    spec_check(x, "PUT", "/v1/occasions/{id}", 200)
    check(x.status == 200 and x.json["offset_days"] == -1 and x.json["version"] == 2
          and x.json["enabled"] is False, "PUT -> %r" % x)
    x = mk.request("PUT", "/v1/occasions/nowruz", body=dict(nowruz, id="other"))
    check(x.status == 400 and x.err_field() == "id", "PUT with another id -> %r" % x)
    x = mk.request("PUT", "/v1/occasions/missing", body=nowruz)
    check(x.status in (400, 404), "PUT unknown -> %r" % x)
    # runs: admin only, a valid date, an enabled rule
    check(run(d, "nowruz", role="marketer").status == 403, "marketer may not run")
    x = run(d, "nowruz", "2025-03-21")
    spec_check(x, "POST", "/v1/occasions/{id}/run", 409)
    mk.request("PUT", "/v1/occasions/nowruz", body=nowruz)
    x = run(d, "nowruz", "2025-02-30")
    spec_check(x, "POST", "/v1/occasions/{id}/run", 400)
    check(x.err_field() == "date", "bad date -> %r" % x)
    check(run(d, "missing", "2025-03-21").status == 404, "run of an unknown rule")
    x = d.client("marketer").post("/v1/occasions/nowruz/preview?date=1404-01-01")
    check(x.status == 400 and x.err_field() == "date", "Jalali date in preview -> %r" % x)
    # delete
    spec_check(mk.delete("/v1/occasions/" + auto), "DELETE", "/v1/occasions/{id}", 204)
    check(view.get("/v1/occasions/" + auto).status == 404, "deleted rule still there")
    check(mk.delete("/v1/occasions/" + auto).status == 404, "second delete")


# ---------------------------------------------------------------- runs

@timeout(90)
def test_occasions_run_persian(fx):
    redis, s, (d,) = setup(fx)
    mk = d.client("marketer")
    sara = mk.create_contact({"name": "سارا رضایی", "first_name": "سارا", "tz": "Asia/Tehran",
                              "addresses": {"sms": "09120000001"}, "tags": ["vip"],
                              "attrs": {"birthday": "j:1369-02-27"}})
    hans = mk.create_contact({"name": "Hans", "tz": "Europe/Berlin", "lang": "fa",
                              "addresses": {"sms": "+4915100000002"},
                              "attrs": {"birthday": "1996-02-29"}})
    create_rule(d, {"id": "nowruz", "name": "نوروز", "kind": "fixed_jalali", "date": "01-01",
                    "template": "nowruz", "channel": "sms"})
    # preview: both on 1 Farvardin 1404 (21 March 2025), nobody the day after
    x = mk.post("/v1/occasions/nowruz/preview?date=2025-03-21")
    spec_check(x, "POST", "/v1/occasions/{id}/preview", 200)
    check(x.status == 200 and x.json["count"] == 2 and x.json["already_sent"] == 0
          and len(x.json["sample"]) == 2, "preview -> %r" % x)
    smp = {e["contact_id"]: e for e in x.json["sample"]}
    check(smp[sara["id"]]["year"] == 1404 and smp[sara["id"]]["jdate"] == "1404-01-01"
          and smp[sara["id"]]["due_at"] == "2025-03-21T05:30:00.000Z"
          and smp[hans["id"]]["due_at"] == "2025-03-21T08:00:00.000Z", "sample %r" % smp)
    x = mk.post("/v1/occasions/nowruz/preview?date=2025-03-22")
    check(x.status == 200 and x.json["count"] == 0, "preview next day -> %r" % x)

    x = run(d, "nowruz", "2025-03-21")
    spec_check(x, "POST", "/v1/occasions/{id}/run", 202)
    check(x.json["run"]["date"] == "2025-03-21", "run -> %r" % x)
    st = wait_run_done(d, "nowruz")
    spec_check(d.client("viewer").get("/v1/occasions/nowruz"), "GET", "/v1/occasions/{id}", 200)
    check(st["created"] == 2 and st["matched"] == 2 and st["examined"] == 2, "run counters %r" % st)
    wait_until(lambda: s.unique() == 2, 15, "2 Nowruz messages at the sink",
               on_fail=lambda: s.stats())
    texts = {b["contact_id"]: b for _, b in sink_msgs(s)}
    check(texts[sara["id"]]["text"] == "سارا، نوروز ۱۴۰۴ مبارک! (۱ فروردین ۱۴۰۴)",
          "Sara's text %r" % texts[sara["id"]]["text"])
    check(texts[hans["id"]]["text"] == "مشتری گرامی، نوروز ۱۴۰۴ مبارک! (۱ فروردین ۱۴۰۴)",
          "Hans's text %r" % texts[hans["id"]]["text"])
    check(all(b["category"] == "occasion" and b["channel"] == "sms" for b in texts.values()),
          "category/channel %r" % texts)

    # the same run again, and a run for the same Jalali year on another
    # day of it (offset changed): nothing new
    check(run(d, "nowruz", "2025-03-21").status == 202, "second run")
    st = wait_run_done(d, "nowruz")
    check(st["created"] == 0 and st["dup"] == 2, "second run counters %r" % st)
    x = mk.post("/v1/occasions/nowruz/preview?date=2025-03-21")
    check(x.json["already_sent"] == 2, "preview after the run %r" % x.json)
    # 1405 is a new year: new messages
    check(run(d, "nowruz", "2026-03-21").status == 202, "run 1405")
    st = wait_run_done(d, "nowruz")
    check(st["created"] == 2, "1405 run counters %r" % st)
    wait_until(lambda: s.unique() == 4, 15, "4 messages at the sink")
    check("نوروز ۱۴۰۵ مبارک" in " ".join(b["text"] for _, b in sink_msgs(s)), "1405 text")

    # Jalali birthday (27 Ordibehesht 1404 = 17 May 2025), Feb 29 in a
    # common year (28 Feb 2025), limited to a segment
    create_rule(d, {"id": "bd", "kind": "birthday", "template": "birthday", "channel": "preferred"})
    check(run(d, "bd", "2025-05-17").status == 202, "birthday run")
    st = wait_run_done(d, "bd")
    check(st["created"] == 1, "birthday counters %r" % st)
    check(run(d, "bd", "2025-02-28").status == 202, "Feb 29 run")
    st = wait_run_done(d, "bd")
    check(st["created"] == 1, "Feb 29 counters %r" % st)
    wait_until(lambda: s.unique() == 6, 15, "6 messages at the sink")
    txt = [b["text"] for _, b in sink_msgs(s) if "سالگی" in b["text"]]
    check(sorted(txt) == sorted(["سارا عزیز، ۳۵ سالگی‌ات مبارک!", "دوست عزیز، ۲۹ سالگی‌ات مبارک!"]),
          "birthday texts %r" % txt)
    create_rule(d, {"id": "vip-nowruz", "kind": "fixed_jalali", "date": "01-01", "template": "nowruz",
                    "segment": {"tags": {"any": ["vip"]}}})
    check(run(d, "vip-nowruz", "2025-03-21").status == 202, "segment run")
    st = wait_run_done(d, "vip-nowruz")
    check(st["created"] == 1 and st["examined"] == 1, "segment run counters %r" % st)
    per = occ_messages(redis, "vip-nowruz")
    check(list(per) == [sara["id"]], "segment rule reached %r" % per)


@timeout(90)
def test_occasions_live_pass(fx):
    """The periodic pass on the real clock: a contact whose local today is its
    birthday gets the message; a window already over today sends nothing
    (grace 0); a window later today schedules the message at its start."""
    zone = quiet_zone()
    now = datetime.now(ZoneInfo(zone))
    redis, s, (d,) = setup(fx)
    mk = d.client("marketer")
    today = "--%02d-%02d" % (now.month, now.day)
    c = mk.create_contact({"name": "Live", "first_name": "Live", "tz": zone,
                           "addresses": {"sms": "09120000009"}, "attrs": {"birthday": today}})
    create_rule(d, {"id": "bd-now", "kind": "birthday", "template": "birthday",
                    "window": "00:00-24:00"})
    create_rule(d, {"id": "bd-missed", "kind": "birthday", "template": "birthday",
                    "window": "00:00-00:01"})
    create_rule(d, {"id": "bd-later", "kind": "birthday", "template": "birthday",
                    "window": "23:00-23:30"})
    wait_until(lambda: s.unique() == 1, 20, "the live pass message at the sink",
               on_fail=lambda: d.client("viewer").get("/v1/occasions/bd-now").json)
    (mid, body), = sink_msgs(s)
    check(body["contact_id"] == c["id"] and body["text"].startswith("Live عزیز"), "body %r" % body)
    missed = wait_run_done(d, "bd-missed", "last_pass")
    check(missed["missed"] == 1 and missed["created"] == 0, "missed pass %r" % missed)
    later = wait_run_done(d, "bd-later", "last_pass")
    check(later["created"] + later["dup"] == 1, "later pass %r" % later)
    (lid,) = occ_messages(redis, "bd-later")[c["id"]]
    m = d.client("viewer").message(lid)
    want = now.replace(hour=23, minute=0, second=0, microsecond=0)
    check(m["state"] == "scheduled" and m["due_at"] ==
          want.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
          "scheduled at the window start: %r" % m)
    x = mk.post("/v1/occasions/bd-missed/preview")
    check(x.json["count"] == 1 and x.json["missed"] == 1 and x.json["due"] == 0, "preview %r" % x.json)
    # passes keep coming (interval 1s): still one message per rule
    time.sleep(2.5)
    for rule in ("bd-now", "bd-later"):
        check([len(v) for v in occ_messages(redis, rule).values()] == [1], "%s sent twice" % rule)
    check(occ_messages(redis, "bd-missed") == {}, "missed window sent anyway")


@timeout(120)
def test_occasions_two_instances(fx):
    """Two daemons on one Redis: live passes on both, operator runs on both at
    once: every contact gets exactly one message."""
    zone = quiet_zone()
    now = datetime.now(ZoneInfo(zone))
    redis, s, (a, b) = setup(fx, names=("a", "b"))
    lines = []
    n = 150
    for i in range(n):
        lines.append(json.dumps({"name": "C%d" % i, "tz": zone, "addresses": {"sms": "0912100%04d" % i},
                                 "attrs": {"birthday": "1990-%02d-%02d" % (now.month, now.day)
                                           if (now.month, now.day) != (2, 29) else "--02-29"}}))
    x = a.client("marketer").post("/v1/contacts/bulk", raw="\n".join(lines).encode(),
                                  ctype="application/x-ndjson")
    check(x.status == 200 and x.json["created"] == n, "bulk -> %r" % x)
    create_rule(a, {"id": "bd", "kind": "birthday", "template": "birthday", "window": "00:00-24:00"})
    day = now.strftime("%Y-%m-%d")
    for _ in range(3):
        ra, rb = run(a, "bd", day), run(b, "bd", day)
        check({ra.status, rb.status} <= {202, 409}, "runs -> %r %r" % (ra, rb))
        time.sleep(0.3)
    wait_until(lambda: s.unique() >= n, 30, "%d messages at the sink" % n, on_fail=lambda: s.stats())
    time.sleep(2.5)  # more passes on both
    wait_run_done(a, "bd")
    per = occ_messages(redis, "bd")
    check(len(per) == n and all(len(v) == 1 for v in per.values()),
          "messages per contact: %d contacts, max %d" % (len(per), max(len(v) for v in per.values())))
    sink = by_contact(s)
    check(len(sink) == n and all(len(v) == 1 for v in sink.values()), "sink per contact")


@timeout(180)
def test_occasions_kill9_resume(fx):
    """kill -9 in the middle of a run, then a restart: the run resumes from
    its last saved batch after the lease; nobody twice, nobody skipped."""
    redis, s, (d,) = setup(fx, overrides={"occasions": {"batch": "2", "lease": "2s"}})
    n = 400
    lines = [json.dumps({"name": "K%d" % i, "tz": "Asia/Tehran",
                         "addresses": {"sms": "0912200%04d" % i}}) for i in range(n)]
    x = d.client("marketer").post("/v1/contacts/bulk", raw="\n".join(lines).encode(),
                                  ctype="application/x-ndjson")
    check(x.status == 200 and x.json["created"] == n, "bulk -> %r" % x)
    create_rule(d, {"id": "yalda", "kind": "fixed_jalali", "date": "09-30", "template": "nowruz"})
    check(run(d, "yalda", "2025-12-21").status == 202, "run")
    cl = redis.client()

    def progressing():
        v = cl.hget("clubd:occ:run:yalda", "examined")
        return v is not None and int(v) >= 40 and int(v)

    wait_until(progressing, 30, "the run under way", interval=0.005)
    d.kill()
    rec = cl.hgetall("clubd:occ:run:yalda")
    if rec.get("state") != "running":
        fail("the run finished before the kill (%r): make it longer" % rec)
    before = sum(len(v) for v in occ_messages(redis, "yalda").values())
    check(0 < before < n, "%d messages before the kill" % before)
    fx.note("killed after %s contacts, %d messages" % (rec.get("examined"), before))
    d.start()
    st = wait_run_done(d, "yalda", timeout_s=60)
    per = occ_messages(redis, "yalda")
    check(len(per) == n, "%d of %d contacts got a message" % (len(per), n))
    check(all(len(v) == 1 for v in per.values()), "a contact got two messages")
    check(st["examined"] >= n and st["matched"] >= n, "counters after resume %r" % st)
    wait_until(lambda: len(by_contact(s)) == n, 60, "every contact's message at the sink",
               on_fail=lambda: s.stats())
    check(all(len(v) == 1 for v in by_contact(s).values()), "two messages for a contact at the sink")


# ---------------------------------------------------------------- clubctl

@timeout(90)
def test_clubctl_occasions(fx):
    from test_clubctl import Ctl

    _, s, (d,) = setup(fx)
    d.client("marketer").create_contact({"name": "سارا", "first_name": "سارا", "tz": "Asia/Tehran",
                                         "addresses": {"sms": "09120000001"}})
    mk, adm = Ctl(fx, d.port, "marketer"), Ctl(fx, d.port, "admin")
    path = fx.tmp + "/nowruz.json"
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"id": "nowruz", "name": "نوروز", "kind": "fixed_jalali", "date": "01-01",
                   "template": "nowruz", "channel": "sms", "window": "09:00-12:00"}, f,
                  ensure_ascii=False)
    r = mk.run("occasions", "create", path, want=0)
    check("created occasion nowruz (version 1)" in r.out, "create: %r" % r)
    r = mk.run("--json", "occasions", "create", "-", stdin=json.dumps(
        {"id": "bd", "kind": "birthday", "template": "birthday", "offset_days": -3}).encode(), want=0)
    check(r.json()["id"] == "bd" and r.json()["offset_days"] == -3, "create --json: %r" % r)
    mk.run("occasions", "create", path, want=1)  # exists: 409
    r = mk.run("occasions", "list", want=0)
    check("nowruz" in r.out and "j:01-01" in r.out and "attrs.birthday -3d" in r.out, "list: %r" % r)
    r = mk.run("--json", "occasions", "list", want=0)
    check(sorted(i["id"] for i in r.json()["items"]) == ["bd", "nowruz"], "list --json: %r" % r)
    r = mk.run("occasions", "get", "nowruz", want=0)
    check("fixed_jalali" in r.out and "09:00-12:00" in r.out and "نوروز" in r.out
          and "none yet" in r.out, "get: %r" % r)
    check(mk.run("--json", "occasions", "get", "nowruz", want=0).json()["kind"] == "fixed_jalali",
          "get --json")
    mk.run("occasions", "get", "missing", want=1)
    # a Jalali date with Persian digits is 1 Farvardin 1404 = 21 March 2025
    r = mk.run("occasions", "preview", "nowruz", "--date", "۱۴۰۴-۰۱-۰۱", want=0)
    check("1 contacts on 2025-03-21" in r.out and "1404-01-01" in r.out, "preview: %r" % r)
    r = mk.run("--json", "occasions", "preview", "nowruz", "--date", "2025-03-22", want=0)
    check(r.json()["count"] == 0 and r.json()["date"] == "2025-03-22", "preview --json: %r" % r)
    mk.run("occasions", "preview", "nowruz", "--date", "1404-13-01", want=2)
    mk.run("occasions", "run", "nowruz", "--date", "1404-01-01", want=1)  # marketer: 403
    r = adm.run("occasions", "run", "nowruz", "--date", "1404-01-01", "--wait", want=0)
    check("created 1" in r.out and "done for 2025-03-21" in r.out, "run --wait: %r" % r)
    r = adm.run("--json", "occasions", "run", "nowruz", "--date", "2025-03-21", "--wait", want=0)
    check(r.json()["created"] == 0 and r.json()["dup"] == 1, "second run --json: %r" % r)
    wait_until(lambda: s.unique() == 1, 15, "one message at the sink")
    r = mk.run("occasions", "rm", "nowruz", want=0)
    check("deleted occasion nowruz" in r.out, "rm: %r" % r)
    mk.run("occasions", "rm", "nowruz", want=1)
    mk.assert_no_token()
    adm.assert_no_token()
