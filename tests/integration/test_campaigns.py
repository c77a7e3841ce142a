"""Campaigns end to end through the real daemon: draft -> launch -> fan-out
-> pump -> render at dispatch -> sink; variants and the control group; the
budget cap pausing a campaign mid-way; pause / resume / cancel; fan-out
resumed after kill -9 with nobody twice and nobody skipped; counters exact
after a restart."""

import time

from harness import check, timeout, wait_until

SEG = {"tags": {"any": ["club"]}}


def template(mk, tid, text):
    r = mk.post("/v1/templates", {"id": tid, "name": tid, "default_lang": "fa",
                                  "variants": [{"channel": "sms", "lang": "fa", "text": text},
                                               {"channel": "any", "lang": "fa", "text": text}]})
    check(r.status == 201, "template create: %r" % r)


def contacts(d, n, tag="club", start=0):
    mk = d.client("marketer")
    out = []
    for i in range(start, start + n):
        r = mk.post("/v1/contacts", {"first_name": "مشتری%d" % i, "lang": "fa",
                                     "tags": [tag], "addresses": {"sms": "0912%07d" % i}})
        check(r.status == 201, "contact: %r" % r)
        out.append(r.json["id"])
    return out


def campaign(mk, body):
    r = mk.post("/v1/campaigns", body)
    check(r.status == 201, "campaign create: %r" % r)
    return r.json["id"]


def stats(mk, cid):
    r = mk.get("/v1/campaigns/%s/stats" % cid)
    check(r.status == 200, "stats: %r" % r)
    return r.json


def state(mk, cid):
    return mk.get("/v1/campaigns/%s" % cid).json["state"]


def sink_by_contact(s):
    seen = {}
    for mid in s.received_ids():
        b = s.requests_for(mid)[0].body
        seen.setdefault(b["contact_id"], []).append(b)
    return seen


@timeout(120)
def test_campaign_variants_control_and_stats(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    mk = d.client("marketer")
    template(mk, "hello-a", "سلام {{first_name}}، یلدا مبارک")
    template(mk, "hello-b", "{{first_name}} عزیز، تخفیف یلدا")
    ids = contacts(d, 60)
    contacts(d, 5, tag="other", start=100)
    # validation
    bad = mk.post("/v1/campaigns", {"name": "x", "segment": SEG, "template": "hello-a",
                                    "control_percent": 90})
    check(bad.status == 400 and bad.err_field() == "control_percent", "bad control: %r" % bad)
    bad = mk.post("/v1/campaigns", {"name": "x\r\nBcc: y", "segment": SEG, "template": "hello-a"})
    check(bad.status == 400 and bad.err_field() == "name", "CRLF name: %r" % bad)
    bad = mk.post("/v1/campaigns", {"name": "x", "segment": SEG, "template": "hello-a",
                                    "budget": "12.345", "currency": "IRR"})
    check(bad.status == 400 and bad.err_field() == "budget", "3 decimals: %r" % bad)
    cid = campaign(mk, {"name": "یلدا ۱۴۰۵", "segment": SEG, "channel": "sms",
                        "variants": [{"name": "A", "template": "hello-a"},
                                     {"name": "B", "template": "hello-b"}],
                        "control_percent": 20, "attribution_window": "7d"})
    check(state(mk, cid) == "draft", "draft")
    r1 = mk.post("/v1/campaigns/%s/launch" % cid)
    check(r1.status == 200 and r1.json["state"] == "running", "launch: %r" % r1)
    r2 = mk.post("/v1/campaigns/%s/launch" % cid)
    check(r2.status == 409, "second launch: %r" % r2)
    wait_until(lambda: state(mk, cid) == "completed", 60, "campaign completed",
               on_fail=lambda: "stats %r" % stats(mk, cid))
    st = stats(mk, cid)
    t = st["totals"]
    seen = sink_by_contact(s)
    check(t["targeted"] == 60, "targeted %r" % t)
    ctl = st["control"]["targeted"]
    check(0 < ctl < 30, "control size %d" % ctl)
    check(len(seen) == 60 - ctl and all(len(v) == 1 for v in seen.values()),
          "each non-control contact once: %d contacts" % len(seen))
    check(set(seen) <= set(ids), "only the segment")
    check(t["sent"] == 60 - ctl and t["queued"] == 60 - ctl, "sent %r" % t)
    arms = {a["name"]: a for a in st["variants"]}
    check(arms["A"]["sent"] + arms["B"]["sent"] == t["sent"] and arms["A"]["sent"] > 0
          and arms["B"]["sent"] > 0, "arms %r" % arms)
    texts = [v[0]["text"] for v in seen.values()]
    check(all("مشتری" in x for x in texts), "rendered per contact: %r" % texts[:3])
    check(sum("یلدا مبارک" in x for x in texts) == arms["A"]["sent"], "variant A texts")
    hist = [h["state"] for h in mk.get("/v1/campaigns/%s" % cid).json["history"]]
    check(hist == ["draft", "running", "completed"], "history %r" % hist)
    # revenue attributed to the arms through the last campaign touch
    rr = r.client()
    victim = next(iter(seen))
    lc = rr.hgetall("clubd:lc:" + victim)
    check(lc.get("camp") == cid, "last touch %r" % lc)
    # counters are exact after a restart
    d.term()
    d.start()
    check(stats(mk2 := d.client("marketer"), cid)["totals"] == t, "stats after restart")
    cmp = mk2.get("/v1/campaigns/compare?ids=%s,%s" % (cid, cid))
    check(cmp.status == 200 and len(cmp.json["campaigns"]) == 2, "compare %r" % cmp)
    check(mk2.get("/v1/campaigns/compare?ids=a,,b").status == 400, "bad compare ids")
    eleven = ",".join([cid] * 11)
    x = mk2.get("/v1/campaigns/compare?ids=" + eleven)
    check(x.status == 400 and x.err_field() == "ids", "at most 10 to compare: %r" % x)
    x = mk2.get("/v1/campaigns/compare?ids=" + ",".join([cid] * 10))
    check(x.status == 200 and len(x.json["campaigns"]) == 10, "10 to compare")
    check(mk2.get("/v1/campaigns/nope/stats").status == 404, "unknown campaign")


@timeout(120)
def test_budget_pauses_campaign(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s, overrides={"channel.sms": {"price": "1.5"}})
    mk = d.client("marketer")
    template(mk, "promo", "Sale today")  # one GSM-7 segment = 1.50
    contacts(d, 20)
    cid = campaign(mk, {"name": "budget", "segment": SEG, "channel": "sms",
                        "template": "promo", "budget": "9.00", "currency": "EUR"})
    check(mk.post("/v1/campaigns/%s/launch" % cid).status == 200, "launch")
    wait_until(lambda: state(mk, cid) == "paused", 30, "paused by the budget")
    time.sleep(0.5)
    st = stats(mk, cid)
    check(st["reason"] == "budget_exhausted", "reason %r" % st)
    check(st["totals"]["sent"] == 6 and len(s.received_ids()) == 6,
          "6 x 1.50 fit in 9.00: %r / %d" % (st["totals"], len(s.received_ids())))
    check(st["totals"]["cost"] == "9.00", "cost %r" % st["totals"]["cost"])
    hist = mk.get("/v1/campaigns/%s" % cid).json["history"]
    check(hist[-1]["verb"] == "self_pause" and hist[-1]["reason"] == "budget_exhausted",
          "history %r" % hist)
    # cancel: nothing more goes out, the rest is counted as cancelled
    check(mk.post("/v1/campaigns/%s/cancel" % cid).status == 200, "cancel")
    time.sleep(1.0)
    st = stats(mk, cid)
    check(len(s.received_ids()) == 6 and st["state"] == "cancelled", "after cancel %r" % st)
    check(st["totals"]["sent"] + st["totals"]["cancelled"] == 20, "all accounted %r" % st)


@timeout(120)
def test_pause_resume_rate_limited(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    mk = d.client("marketer")
    template(mk, "slow", "hi {{first_name}}")
    contacts(d, 30)
    cid = campaign(mk, {"name": "slow", "segment": SEG, "channel": "sms",
                        "template": "slow", "rate_limit": 5})
    check(mk.post("/v1/campaigns/%s/launch" % cid).status == 200, "launch")
    wait_until(lambda: len(s.received_ids()) >= 3, 20, "first messages")
    p = mk.post("/v1/campaigns/%s/pause?reason=check" % cid)
    check(p.status == 200 and p.json["state"] == "paused", "pause %r" % p)
    time.sleep(1.0)  # what was in flight settles
    n = len(s.received_ids())
    time.sleep(2.0)
    check(len(s.received_ids()) == n, "nothing sent while paused (%d -> %d)" %
          (n, len(s.received_ids())))
    check(n < 30, "rate limit held the campaign back (%d)" % n)
    check(mk.post("/v1/campaigns/%s/pause" % cid).status == 409, "pause twice")
    check(mk.post("/v1/campaigns/%s/resume" % cid).status == 200, "resume")
    wait_until(lambda: state(mk, cid) == "completed", 60, "completed after resume",
               on_fail=lambda: "stats %r" % stats(mk, cid))
    seen = sink_by_contact(s)
    check(len(seen) == 30 and all(len(v) == 1 for v in seen.values()), "30 once each")


@timeout(180)
def test_fanout_resumes_after_kill9(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s, overrides={"campaigns": {"fanout_batch": "20", "pump_batch": "10"}})
    mk = d.client("marketer")
    template(mk, "k9", "hello")
    ids = contacts(d, 400)
    cid = campaign(mk, {"name": "k9", "segment": SEG, "channel": "sms", "template": "k9",
                        "rate_limit": 100})
    check(mk.post("/v1/campaigns/%s/launch" % cid).status == 200, "launch")
    wait_until(lambda: stats(mk, cid)["totals"]["targeted"] >= 60, 30, "fan-out under way")
    d.kill()
    d.start()
    mk = d.client("marketer")
    wait_until(lambda: state(mk, cid) == "completed", 120, "completed after kill -9",
               on_fail=lambda: "stats %r" % stats(mk, cid))
    time.sleep(0.5)
    seen = sink_by_contact(s)
    st = stats(mk, cid)["totals"]
    check(st["targeted"] == 400, "targeted once each: %r" % st)
    check(set(seen) == set(ids), "nobody skipped (%d of 400)" % len(seen))
    # one message id per contact: the fan-out added nobody twice (a resend of
    # the same message after kill -9 would repeat its id, not add one)
    dup = [c for c, v in seen.items() if len(v) > 1]
    check(not dup, "contacts with two campaign messages: %d" % len(dup))


@timeout(90)
def test_frequency_caps(fx):
    """promotional:1/1d: the second promotional message to a contact is
    suppressed (and counted by reason); transactional ones are not capped;
    a suppressed or failed message does not use up the cap."""
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s, overrides={"prefs": {"caps": "promotional:1/1d,survey:2/7d"}})
    mk = d.client("marketer")
    cid = contacts(d, 1)[0]
    sent = []
    for i, cat in enumerate(["promotional", "promotional", "transactional", "transactional",
                             "survey", "survey", "survey"]):
        rr = mk.post("/v1/messages", {"contact_id": cid, "channel": "sms", "category": cat,
                                      "text": "m%d" % i})
        check(rr.status == 202, "send: %r" % rr)
        sent.append(rr.json["id"])
        # one at a time, so the order of claims is the order of sends
        wait_until(lambda: mk.get("/v1/messages/" + sent[-1]).json["state"]
                   in ("sent", "suppressed"), 20, "message %d settled" % i)
    states = [mk.get("/v1/messages/" + m).json for m in sent]
    got = [m["state"] for m in states]
    check(got == ["sent", "suppressed", "sent", "sent", "sent", "sent", "suppressed"],
          "states %r" % got)
    check(states[1]["last_error"] == "frequency_cap:promotional", "reason %r" % states[1])
    check(len(s.received_ids()) == 5, "5 at the sink")
    # a campaign to the same contact is capped too, and counted by reason
    template(mk, "capped", "sale")
    camp = campaign(mk, {"name": "capped", "segment": SEG, "channel": "sms",
                         "template": "capped"})
    check(mk.post("/v1/campaigns/%s/launch" % camp).status == 200, "launch")
    wait_until(lambda: state(mk, camp) == "completed", 30, "completed")
    t = stats(mk, camp)["totals"]
    check(t["suppressed"] == 1 and t["suppressed_by_reason"] == {"frequency_cap:promotional": 1},
          "campaign suppressions %r" % t)


@timeout(90)
def test_local_time_per_time_zone(fx):
    """schedule.local_time: each contact gets it at that wall-clock time in
    their own zone.  Tehran (UTC+3:30) is 2.5 hours ahead of Berlin (UTC+1
    in winter): with the local time set to Tehran's current minute, the
    Tehran contact gets it now and the Berlin one is held until 10:00
    Berlin time the same day, i.e. exactly 2.5 hours later."""
    import datetime
    import zoneinfo
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    mk = d.client("marketer")
    template(mk, "local", "good morning")
    teh = zoneinfo.ZoneInfo("Asia/Tehran")
    now = datetime.datetime.now(tz=teh)
    hhmm = now.strftime("%H:%M")
    date = now.strftime("%Y-%m-%d")
    a = mk.post("/v1/contacts", {"name": "T", "tz": "Asia/Tehran", "tags": ["club"],
                                 "addresses": {"sms": "09120000001"}}).json["id"]
    b = mk.post("/v1/contacts", {"name": "B", "tz": "Europe/Berlin", "tags": ["club"],
                                 "addresses": {"sms": "09120000002"}}).json["id"]
    camp = campaign(mk, {"name": "local", "segment": SEG, "channel": "sms", "template": "local",
                         "schedule": {"local_time": hhmm, "date": date}})
    check(mk.post("/v1/campaigns/%s/launch" % camp).status == 200, "launch")
    wait_until(lambda: len(s.received_ids()) == 1, 20, "the Tehran message")
    seen = sink_by_contact(s)
    check(list(seen) == [a], "only Tehran so far: %r" % list(seen))
    rc = r.client()

    def berlin_msg():
        for k in rc.scan_iter("clubd:m:*"):
            h = rc.hgetall(k)
            if h.get("contact") == b and h.get("camp") == camp:
                return h
        return None
    wait_until(lambda: (berlin_msg() or {}).get("state") == "scheduled", 20, "Berlin held")
    h = berlin_msg()
    ber = zoneinfo.ZoneInfo("Europe/Berlin")
    local = datetime.datetime.strptime(date + " " + hhmm, "%Y-%m-%d %H:%M")
    want = int(local.replace(tzinfo=ber).timestamp() * 1000)
    check(int(h["due"]) == want, "Berlin due %s, want %s" % (h["due"], want))
    check(h["last_error"] == "local_time", "reason %r" % h.get("last_error"))
    st = stats(mk, camp)["totals"]
    check(st["sent"] == 1 and st["queued"] == 2, "stats %r" % st)


@timeout(120)
def test_recurring_runs(fx):
    """A weekly campaign with count 2: launch schedules the first run at the
    next matching day and time; each run walks the audience again; after the
    second run the campaign completes.  The test moves the stored start time
    instead of waiting days."""
    import datetime
    import zoneinfo
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    mk = d.client("marketer")
    template(mk, "weekly", "هفتگی")
    ids = contacts(d, 5)
    camp = campaign(mk, {"name": "weekly", "segment": SEG, "channel": "sms",
                         "template": "weekly",
                         "schedule": {"every": "week", "days": ["sat", "wed"], "at": "10:00",
                                      "zone": "Asia/Tehran", "count": 2}})
    lr = mk.post("/v1/campaigns/%s/launch" % camp)
    check(lr.status == 200 and lr.json["state"] == "scheduled", "launch %r" % lr)
    rc = r.client()
    key = "clubd:cp:" + camp
    teh = zoneinfo.ZoneInfo("Asia/Tehran")
    start = datetime.datetime.fromtimestamp(int(rc.hget(key, "start")) / 1000, tz=teh)
    check(start.strftime("%a %H:%M") in ("Sat 10:00", "Wed 10:00") and
          start > datetime.datetime.now(tz=teh), "first run %s" % start)
    time.sleep(0.6)
    check(len(s.received_ids()) == 0, "nothing before the run")
    for run in (1, 2):
        rc.hset(key, "start", int(time.time() * 1000))  # "the time has come"
        wait_until(lambda: len(s.received_ids()) == 5 * run, 30, "run %d delivered" % run)
        if run == 1:
            wait_until(lambda: state(mk, camp) == "scheduled", 20, "scheduled for run 2")
            nxt = datetime.datetime.fromtimestamp(int(rc.hget(key, "start")) / 1000, tz=teh)
            check(nxt.strftime("%H:%M") == "10:00" and nxt.strftime("%a") in ("Sat", "Wed")
                  and nxt > datetime.datetime.now(tz=teh), "second run %s" % nxt)
    wait_until(lambda: state(mk, camp) == "completed", 30, "completed after 2 runs")
    seen = sink_by_contact(s)
    check(set(seen) == set(ids) and all(len(v) == 2 for v in seen.values()),
          "each contact once per run")
    t = stats(mk, camp)["totals"]
    check(t["targeted"] == 10 and t["sent"] == 10, "cumulative stats %r" % t)


@timeout(60)
def test_preview(fx):
    """The preview counts the audience, renders every variant for sample
    contacts on the channel their preferences pick (SMS segments: Persian
    is UCS-2) and estimates the cost from [channel.sms] price."""
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s, overrides={"channel.sms": {"price": "2"}})
    mk = d.client("marketer")
    template(mk, "pa", "سلام {{first_name}}")
    template(mk, "pb", "Our Yalda sale is on")
    contacts(d, 12)
    contacts(d, 3, tag="other", start=50)
    camp = campaign(mk, {"name": "p", "segment": SEG, "channel": "sms",
                         "variants": [{"name": "A", "template": "pa"},
                                      {"name": "B", "template": "pb"}],
                         "control_percent": 25})
    p = d.client("viewer").post("/v1/campaigns/%s/preview?samples=2" % camp)
    check(p.status == 200, "preview %r" % p)
    j = p.json
    check(j["audience"] == 12 and j["control_expected"] == 3, "counts %r" % j)
    check(len(j["samples"]) == 2, "samples %r" % j["samples"])
    v = {x["name"]: x for x in j["samples"][0]["variants"]}
    check(j["samples"][0]["channel"] == "sms", "channel")
    check(v["A"]["text"].startswith("سلام مشتری") and v["A"]["sms"]["encoding"] == "ucs2",
          "A %r" % v["A"])
    check(v["B"]["sms"]["encoding"] == "gsm7" and v["B"]["cost_micros"] == 2000000, "B %r" % v["B"])
    check(j["estimated_cost"] == "18.00", "9 recipients x 2.00: %r" % j["estimated_cost"])
    check(len(s.received_ids()) == 0, "a preview sends nothing")
    check(d.client("viewer").post("/v1/campaigns/%s/preview?samples=99" % camp).status == 400,
          "samples bound")
    check(d.client("viewer").post("/v1/campaigns/nope/preview").status == 404, "404")
