"""Case 7: provider answers drive retries - 5xx and timeouts retry with
backoff, 429 honours Retry-After, other 4xx dead-letter at once."""

from harness import check, make_contacts, timeout, wait_state, wait_until


@timeout(90)
def test_provider_failures(fx):
    r = fx.redis()
    s = fx.sink()
    s.add_rule({"text": "flaky"}, "500", times=2)
    s.add_rule({"text": "busy"}, "429", times=1, retry_after=1)
    s.add_rule({"text": "slow"}, "hang", times=1, hang_s=2.5)
    s.add_rule({"text": "reject"}, "400")
    d = fx.clubd(r, s, overrides={"channel.sms": {"timeout": "1s"}})
    c = make_contacts(d, 1)[0]
    mk = d.client("marketer")
    ids = {t: mk.send({"contact_id": c["id"], "channel": "sms", "text": t})["id"]
           for t in ("flaky", "busy", "slow", "reject", "fine")}

    got = {t: wait_state(d, ids[t], ("sent", "failed", "suppressed", "expired"), 30)
           for t in ids}

    m = got["flaky"]
    check(m["state"] == "sent" and m["attempts"] == 3, "500 twice then ok: %r" % m)
    seen = [q.attempt for q in s.requests_for(ids["flaky"])]
    check(seen == [1, 2, 3], "attempt numbers on the wire %r" % seen)

    m = got["busy"]
    check(m["state"] == "sent" and m["attempts"] == 2, "429 then ok: %r" % m)
    t = s.times(ids["busy"])
    check(len(t) == 2 and t[1] - t[0] >= 0.99, "retried %.3fs after a 429 with Retry-After: 1"
          % (t[1] - t[0] if len(t) == 2 else -1))

    m = got["slow"]
    check(m["state"] == "sent" and m["attempts"] >= 2, "timeout then ok: %r" % m)
    t = s.times(ids["slow"])
    check(len(t) >= 2 and t[1] - t[0] >= 0.99, "retried before the 1 s timeout: %r" % t)
    check(ids["slow"] in s.ok_ids(), "timed-out message never answered 200")

    m = got["reject"]
    check(m["state"] == "failed" and m["attempts"] == 1 and m.get("last_error"), "400: %r" % m)
    check(s.count(ids["reject"]) == 1, "a 400 was retried (%d requests)" % s.count(ids["reject"]))
    rc = r.client()
    wait_until(lambda: any(ids["reject"] in str(v) for _, f in rc.xrange("clubd:dlq")
                           for v in f.values()), 5, "the 400 in the clubd:dlq stream",
               on_fail=lambda: rc.xrange("clubd:dlq", count=5))
    check(not any(ids[x] in str(v) for _, f in rc.xrange("clubd:dlq") for v in f.values()
                  for x in ("flaky", "busy", "slow", "fine")), "a delivered message is in the DLQ")

    m = got["fine"]
    check(m["state"] == "sent" and m["attempts"] == 1 and s.count(ids["fine"]) == 1, "plain: %r" % m)
    check(s.bad_signatures == 0, "bad signatures %d" % s.bad_signatures)


@timeout(60)
def test_retries_exhausted(fx):
    r = fx.redis()
    s = fx.sink()
    s.add_rule({"text": "down"}, "503")
    d = fx.clubd(r, s, overrides={"sched": {"max_attempts": "3", "retry_max": "1s"}})
    c = make_contacts(d, 1)[0]
    mid = d.client("marketer").send({"contact_id": c["id"], "channel": "sms", "text": "down"})["id"]
    m = wait_state(d, mid, ("failed", "sent", "expired"), 20)
    check(m["state"] == "failed" and m["attempts"] == 3, "after max_attempts: %r" % m)
    check(s.count(mid) == 3, "%d requests for max_attempts=3" % s.count(mid))
    rc = r.client()
    wait_until(lambda: any(mid in str(v) for _, f in rc.xrange("clubd:dlq") for v in f.values()),
               5, "the exhausted message in clubd:dlq")
