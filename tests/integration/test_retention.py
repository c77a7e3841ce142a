"""[sched] retention: an ended message and its history expire from Redis after the
retention time; one that has not ended does not."""

from harness import check, timeout, wait_until


@timeout(60)
def test_retention(fx):
    r = fx.redis()
    d = fx.clubd(r, overrides={"sched": {"retention": "2s"}})
    c = d.client("marketer")
    sent = c.send({"to": "09121115555", "channel": "sms", "text": "x"})["id"]
    later = c.send({"to": "09121115555", "channel": "sms", "text": "y",
                    "send_at": "2099-01-01T00:00:00Z"})["id"]
    cancelled = c.send({"to": "09121115555", "channel": "sms", "text": "z",
                        "send_at": "2099-01-01T00:00:00Z"})["id"]
    check(c.post("/v1/messages/%s/cancel" % cancelled).status == 200, "cancel")
    wait_until(lambda: c.message(sent)["state"] == "sent", 20, "sent")
    rc = r.client()
    ttl = rc.ttl("clubd:m:" + sent)
    check(0 < ttl <= 2, "an ended message has the retention TTL: %r" % ttl)
    check(rc.ttl("clubd:m:" + later) == -1, "a scheduled message does not expire")
    wait_until(lambda: c.get("/v1/messages/" + sent).status == 404, 15,
               "sent message gone after retention")
    # (cancelled after "sent" was sent, on a loaded machine: so gone a bit later)
    wait_until(lambda: c.get("/v1/messages/" + cancelled).status == 404, 15,
               "cancelled message gone too")
    check(not rc.exists("clubd:mh:" + sent), "history gone too")
    check(c.get("/v1/messages/" + later).status == 200, "scheduled message kept")


@timeout(60)
def test_retention_of_expired(fx):
    """A message the scheduler finds expired also ends: it gets the retention TTL."""
    r = fx.redis()
    d = fx.clubd(r, overrides={"sched": {"retention": "1h"}})
    c = d.client("marketer")
    m = c.send({"to": "09121115556", "channel": "sms", "text": "x",
                "send_at": "2099-01-01T00:00:00Z"})["id"]
    rc = r.client()
    # make it due now with an expiry in the past: the promote script must expire it
    rc.hset("clubd:m:" + m, "expires", "1")
    rc.zadd("clubd:due", {m: 0})
    wait_until(lambda: c.message(m)["state"] == "expired", 20, "expired by the scheduler")
    ttl = rc.ttl("clubd:m:" + m)
    check(0 < ttl <= 3600, "an expired message has the retention TTL: %r" % ttl)
    check(0 < rc.ttl("clubd:mh:" + m) <= 3600, "its history too")
