"""Campaign limits that bound memory and work, through the real daemon:
[campaigns] window (never more than `window` messages of one campaign
between made and ended: the provider sees at most that many at once, and
the campaign still completes); the preview's 4-at-once limit (a 5th and
6th preview answer 429 with the documented error while 4 are held open
by CLIENT PAUSE WRITE, and the 4 then succeed); the dispatcher's
64-campaign render cache (70 campaigns sent round-robin, one message of
each in flight, so every render follows an eviction: each message still
carries its own campaign's text); and a daily recurring campaign firing
on the real clock, then scheduled for the next day."""

import datetime
import threading
import time
import zoneinfo

from harness import SLOW, check, parallel, timeout, wait_until

from sink import Sink
from test_campaigns import campaign, state, template
from test_campaigns import contacts as campaigns_contacts


def contacts(d, n, tag):
    return campaigns_contacts(d, n, tag, start=1)


class CountingSink(Sink):
    """The webhook sink, counting the requests it is answering at once."""

    def __init__(self, secret, delay_s):
        super().__init__(secret, delay_s=delay_s)
        self._cl = threading.Lock()
        self.now = 0
        self.peak = 0

    def _handle(self, h, raw):
        with self._cl:
            self.now += 1
            self.peak = max(self.peak, self.now)
        left = [False]
        answer = h._answer

        def leave():
            with self._cl:
                if not left[0]:
                    left[0] = True
                    self.now -= 1

        def answer_after_leaving(*a, **kw):
            leave()  # before clubd can see the answer and send the next one
            return answer(*a, **kw)

        h._answer = answer_after_leaving
        try:
            super()._handle(h, raw)
        finally:
            leave()


@timeout(60)
def test_window_bounds_messages_in_flight(fx):
    """window = 5 with a provider that takes 0.4 s per send, and channel and
    dispatcher allowing 32 and 64 at once: the provider sees exactly 5 at a
    time at most, Redis never counts more than 5 made and not ended, and
    all 30 are sent."""
    r = fx.redis()
    s = CountingSink(fx.secret, delay_s=0.4)
    fx.sinks.append(s)
    s.start()
    d = fx.clubd(r, s, overrides={
        "campaigns": {"window": "5", "tick": "50ms"},
        "channel.sms": {"max_inflight": "32", "window_initial": "32"}})
    mk = d.client("marketer")
    template(mk, "w", "window test")
    contacts(d, 30, "w")
    cid = campaign(mk, {"name": "w", "segment": {"tags": {"any": ["w"]}}, "channel": "sms",
                        "template": "w"})
    check(mk.post("/v1/campaigns/%s/launch" % cid).status == 200, "launch")
    rc = r.client()
    seen = [0]

    def done():
        c = rc.hmget("clubd:cs:" + cid, "queued", "done")
        inflight = int(c[0] or 0) - int(c[1] or 0)
        seen[0] = max(seen[0], inflight)
        check(inflight <= 5, "%d messages made and not ended (window 5)" % inflight)
        return state(mk, cid) == "completed"

    wait_until(done, 30, "campaign completed", interval=0.05,
               on_fail=lambda: mk.get("/v1/campaigns/%s/stats" % cid).json)
    check(s.peak == 5, "at most (and, with a slow provider, exactly) 5 at once: peak %d" % s.peak)
    check(seen[0] >= 1, "in-flight observed in Redis")
    check(len(s.ok_ids()) == 30 and s.duplicates() == 0, "all 30 sent once: %d" % len(s.ok_ids()))
    t = mk.get("/v1/campaigns/%s/stats" % cid).json["totals"]
    check(t["sent"] == 30 and t["queued"] == 30, "stats %r" % t)


@timeout(60)
def test_preview_limit_429(fx):
    """Writes paused in Redis (CLIENT PAUSE WRITE also holds EVAL): the
    previews that get in wait on their first script, so exactly 4 are
    running whatever the order of arrival; the other 2 answer 429 at once.
    After UNPAUSE the 4 answer 200, and the slots are free again."""
    r = fx.redis()
    d = fx.clubd(r, overrides={"redis": {"command_timeout": "30s"}})
    mk = d.client("marketer")
    template(mk, "pv", "سلام {{first_name}}")
    contacts(d, 20, "pv")
    cid = campaign(mk, {"name": "pv", "segment": {"tags": {"any": ["pv"]}}, "channel": "sms",
                        "template": "pv"})
    rc = r.client()
    n = 6
    clients = [d.new_client("viewer") for _ in range(n)]
    for c in clients:
        c.timeout_s = 40
    out = [None] * n
    threads = []

    def run(i):
        try:
            out[i] = clients[i].post("/v1/campaigns/%s/preview?samples=1" % cid)
        except Exception as e:  # reported by the checks below
            out[i] = e

    check(rc.execute_command("CLIENT", "PAUSE", "30000", "WRITE") in (True, "OK"), "pause")
    try:
        for i in range(n):
            t = threading.Thread(target=run, args=(i,), daemon=True)
            t.start()
            threads.append(t)
        wait_until(lambda: sum(1 for x in out if getattr(x, "status", 0) == 429) == n - 4, 10,
                   "%d previews refused" % (n - 4), on_fail=lambda: out)
        time.sleep(0.2)  # nothing else comes back while paused
        check(all(x is None or getattr(x, "status", 0) == 429 for x in out),
              "only 429s while paused: %r" % out)
    finally:
        rc.execute_command("CLIENT", "UNPAUSE")
    for t in threads:
        t.join(20 * SLOW)
    for c in clients:
        c.close()
    refused = [x for x in out if getattr(x, "status", 0) == 429]
    ok = [x for x in out if getattr(x, "status", 0) == 200]
    check(len(refused) == 2 and len(ok) == 4, "2 x 429 and 4 x 200: %r" % out)
    for x in refused:
        check(x.json == {"error": {"code": "too_many_requests",
                                   "message": "4 previews are running; try again shortly"}},
              "429 body %r" % x.text)
        check(x.headers.get("Retry-After") == "1", "Retry-After %r" % x.headers)
    for x in ok:
        check(x.json["audience"] == 20 and len(x.json["samples"]) == 1, "preview %r" % x)
    # the 4 slots are given back
    clients = [d.new_client("viewer") for _ in range(4)]
    again = parallel(lambda w, _: clients[w].post(
        "/v1/campaigns/%s/preview?samples=0" % cid).status, range(4), threads=4)
    for c in clients:
        c.close()
    check(again == [200] * 4, "4 previews after the others ended: %r" % again)


@timeout(120)
def test_render_cache_eviction_and_daily_run(fx):
    """70 campaigns (the cache holds 64) with window = 1 start at the same
    instant on the same 3 contacts: the pump makes one message per campaign
    per round, so the dispatcher meets the campaigns round-robin and every
    render follows an eviction.  Each message carries its own campaign's
    text.  Meanwhile a daily campaign whose time of day is the next minute
    (in Asia/Tehran) fires on the real clock, not before, and is scheduled
    for the same time the next day."""
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s, overrides={"campaigns": {"window": "1", "tick": "50ms"},
                                  "channel.sms": {"max_inflight": "64", "window_initial": "64"}})
    mk = d.client("marketer")
    rc = r.client()
    ids = contacts(d, 3, "many")
    # the daily campaign: its run is the next whole minute at least 3 s ahead
    teh = zoneinfo.ZoneInfo("Asia/Tehran")
    mk.create_contact({"name": "D", "tags": ["daily"], "addresses": {"sms": "09129999999"}})
    template(mk, "daily", "daily run")
    now = datetime.datetime.now(tz=teh)
    soonest = now + datetime.timedelta(seconds=3 * SLOW)
    at = soonest.replace(second=0, microsecond=0)
    if at < soonest:
        at += datetime.timedelta(minutes=1)
    daily = campaign(mk, {"name": "daily", "segment": {"tags": {"any": ["daily"]}},
                          "channel": "sms", "template": "daily",
                          "schedule": {"every": "day", "at": at.strftime("%H:%M"),
                                       "zone": "Asia/Tehran", "count": 3}})
    lr = mk.post("/v1/campaigns/%s/launch" % daily)
    check(lr.status == 200 and lr.json["state"] == "scheduled", "daily launch %r" % lr)
    at_ms = int(at.timestamp() * 1000)
    check(int(rc.hget("clubd:cp:" + daily, "start")) == at_ms, "first run at %s" % at)

    n = 70
    camps = []
    for i in range(n):
        template(mk, "t%02d" % i, "campaign %02d {{first_name}}" % i)
    start_at = int(time.time() + 2 * SLOW) + 1  # whole seconds, as sent
    for i in range(n):
        camps.append(campaign(mk, {"name": "c%02d" % i, "segment": {"tags": {"any": ["many"]}},
                                   "channel": "sms", "template": "t%02d" % i,
                                   "category": "transactional",
                                   "schedule": {"at": time.strftime(
                                       "%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_at))}}))
    late = 0
    for c in camps:
        x = mk.post("/v1/campaigns/%s/launch" % c)
        check(x.status == 200, "launch %r" % x)
        late += x.json["state"] == "running"
    if late:
        fx.note("%d campaigns launched after their start time" % late)
    index = {c: i for i, c in enumerate(camps)}

    def many_sent():
        return sum(1 for m in s.ok_ids() if s.requests_for(m)[0].body["contact_id"] in ids)
    wait_until(lambda: many_sent() == 3 * n, 60, "%d campaign messages" % (3 * n),
               on_fail=many_sent)
    fx.note("70 campaigns sent in %.1fs" % (time.time() - start_at))
    per = {}
    for mid in s.received_ids():
        body = s.requests_for(mid)[0].body
        camp = rc.hget("clubd:m:" + mid, "camp")
        if camp == daily:
            continue
        check(camp in index, "message %s of campaign %r" % (mid, camp))
        want = "campaign %02d مشتری" % index[camp]
        check(body["text"].startswith(want), "message of %s (%s) says %r" %
              (camp, want, body["text"]))
        per.setdefault(camp, set()).add(body["contact_id"])
    check(len(per) == n and all(v == set(ids) for v in per.values()),
          "each campaign to each contact: %d campaigns" % len(per))
    check(s.duplicates() == 0, "nothing sent twice")
    check("render failed" not in d.stderr(), "no render failures")
    wait_until(lambda: all(state(mk, c) == "completed" for c in camps), 20, "all completed")

    # the daily run: fired on the clock, then scheduled for tomorrow
    def daily_sent():
        return [m for m in s.received_ids() if rc.hget("clubd:m:" + m, "camp") == daily]
    got = wait_until(daily_sent, 70, "the daily run")
    first = s.times(got[0])[0]
    check(first >= at.timestamp() - 0.01, "sent %.3f before its time" % (at.timestamp() - first))
    wait_until(lambda: state(mk, daily) == "scheduled"
               and int(rc.hget("clubd:cp:" + daily, "start")) > at_ms, 20,
               "scheduled for the next run")
    nxt = datetime.datetime.fromtimestamp(int(rc.hget("clubd:cp:" + daily, "start")) / 1000, tz=teh)
    check(nxt == at + datetime.timedelta(days=1), "next run %s, want %s" % (nxt, at))
    check(len(got) == 1, "one message per run")
    fx.note("daily run %.1fs after launch" % (first - now.timestamp()))
