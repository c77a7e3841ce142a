"""Cases 8-11: durability and concurrency - kill -9 of clubd mid-run, a
Redis restart mid-run, two instances sharing one Redis, SIGTERM drain."""

import signal
import time

from harness import (ASAN, Client, SLOW, check, make_contacts, rfc3339, send_many, serial, states,
                     timeout, wait_states, wait_until)


def bodies_for(contacts, n, tag, send_at=None):
    out = []
    for i in range(n):
        b = {"contact_id": contacts[i % len(contacts)]["id"], "channel": "sms",
             "text": "%s %d" % (tag, i)}
        if send_at:
            b["send_at"] = send_at
        out.append(b)
    return out


def due_after_creating(d, contacts, n, tag):
    """A send_at just far enough ahead that n messages can be created before
    any is due.  The creation rate is measured with 500 messages due in an
    hour (the same code path; they stay scheduled and must never be sent).
    Returns (send_at, calibration ids)."""
    t0 = time.monotonic()
    cal = send_many(d, bodies_for(contacts, 500, tag + "-later", rfc3339(time.time() + 3600)))
    rate = 500 / max(time.monotonic() - t0, 1e-3)
    # (a margin: a loaded machine creates them slower than it did the 500)
    return time.time() + n / rate * 1.5 + 1.0, set(cal)


def progress(s, ids):
    return lambda: "%d of %d delivered, stats %s" % (s.ok_count(ids), len(ids), s.stats())


@serial  # times message creation to schedule the sends: other tests' load skews it
@timeout(240)
def test_kill9_mid_run(fx):
    n = 4000 if ASAN else 10000  # sanitizers look for memory errors, not scale
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    t0 = time.monotonic()
    contacts = make_contacts(d, 100)
    at, later = due_after_creating(d, contacts, n, "kill9")
    ids = send_many(d, bodies_for(contacts, n, "kill9", rfc3339(at)))
    ids = set(ids)
    t_created = time.monotonic()
    check(len(ids) == n, "ids not unique")
    wait_until(lambda: s.unique() >= n // 4, 60, "a quarter of the messages sent",
               interval=0.01, on_fail=progress(s, ids))
    rc = d.kill()
    got = len(s.received_ids() & ids)
    check(rc == -signal.SIGKILL, "kill -9 exit status %s" % rc)
    check(got < n, "every message was sent before the kill: the test proves nothing")
    t_kill = time.monotonic()
    d.start()
    # reclaim_idle (3 s) plus the rest at full speed; not 64 per reclaim_interval
    wait_until(lambda: s.got_all(ids), 45, "all messages after the restart", interval=0.1,
               on_fail=progress(s, ids))
    t_done = time.monotonic()
    time.sleep(0.5)
    dups = {i: c for i, c in s.dup_ids().items() if i in ids}
    extra = sum(c - 1 for c in dups.values())
    bound = 64 + 32  # [dispatch] max_inflight + [channel.sms] max_inflight
    check(extra <= bound, "%d duplicate deliveries after kill -9 (bound %d), killed at %d/%d"
          % (extra, bound, got, n))
    wait_states(d, list(ids), "sent", 60)
    check(s.bad_signatures == 0, "bad signatures")
    check(not (s.received_ids() & later), "messages due in an hour were sent")
    fx.note("kill -9 after %d of %d sent; %d duplicates; created in %.1fs, killed at %.1fs, "
            "all delivered at %.1fs, states checked at %.1fs"
            % (got, n, extra, t_created - t0, t_kill - t0, t_done - t0, time.monotonic() - t0))


@serial  # expects full-speed delivery within 10 s after the restart
@timeout(180)
def test_redis_restart_mid_run(fx):
    n = 2000
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s, overrides={"redis": {"reconnect_max": "1s"}})
    contacts = make_contacts(d, 50)
    t0 = time.monotonic()
    at, later = due_after_creating(d, contacts, n, "redis")
    ids = set(send_many(d, bodies_for(contacts, n, "redis", rfc3339(at))))
    t_created = time.monotonic()
    wait_until(lambda: s.unique() >= 200, 30, "200 messages sent", interval=0.005,
               on_fail=progress(s, ids))
    check(r.stop() == 0, "redis-server did not stop cleanly")
    got = len(s.received_ids() & ids)
    anon = Client(d.port, timeout_s=10)
    mk = d.new_client("marketer")
    try:
        ready = {}

        def not_ready():
            x = anon.get("/readyz")
            ready["last"] = x
            return x.status == 503

        wait_until(not_ready, 10, "/readyz 503 with redis down", interval=0.05,
                   on_fail=lambda: ready.get("last"))
        x = ready["last"]
        check(x.json == {"status": "not_ready", "redis": "down"}, "/readyz body %r" % x)
        check(anon.get("/healthz").status == 200, "/healthz while redis is down")
        t1 = time.monotonic()
        x = mk.post("/v1/messages", {"contact_id": contacts[0]["id"], "channel": "sms",
                                     "text": "while down"})
        check(x.status == 503 and x.err_code() == "unavailable", "POST while down -> %r" % x)
        check(time.monotonic() - t1 < 5 * SLOW, "POST while down took %.1fs" % (time.monotonic() - t1))
        time.sleep(1.0)
        t_down = time.monotonic()
        r.start()
        wait_until(lambda: anon.get("/readyz").status == 200, 20, "/readyz 200 after redis is back",
                   interval=0.1)
        t_up = time.monotonic()
        after = mk.send({"contact_id": contacts[0]["id"], "channel": "sms", "text": "after"})
        ids.add(after["id"])
    finally:
        anon.close()
        mk.close()
    # at full speed the rest (about 1,800) takes 1-3 s; a dispatcher that only
    # moves messages through reclaim (max_inflight per reclaim_interval) takes 25+ s
    wait_until(lambda: s.got_all(ids), 10, "every message after the redis restart (delivery "
               "should resume at full speed)", interval=0.1, on_fail=progress(s, ids))
    t_done = time.monotonic()
    wait_states(d, list(ids), "sent", 60)
    check(not (s.received_ids() & later), "messages due in an hour were sent")
    fx.note("redis stopped after %d of %d sent; %d duplicates; created in %.1fs, redis back at "
            "%.1fs, ready at %.1fs, all delivered at %.1fs" % (got, n, s.duplicates(),
            t_created - t0, t_down - t0, t_up - t0, t_done - t0))


@timeout(120)
def test_two_instances(fx):
    n = 2000
    r = fx.redis()
    s = fx.sink(delay_s=0.002)
    a = fx.clubd(r, s, name="a", hook_path="/a")
    b = fx.clubd(r, s, name="b", hook_path="/b")
    contacts = make_contacts(a, 50)
    ids = set(send_many(a, bodies_for(contacts[:25], n // 2, "two-a")) +
              send_many(b, bodies_for(contacts[25:], n // 2, "two-b")))
    check(len(ids) == n, "ids not unique")
    wait_until(lambda: s.got_all(ids), 90, "all messages via two instances", interval=0.1,
               on_fail=progress(s, ids))
    time.sleep(0.5)
    dups = s.dup_ids()
    check(not dups, "%d messages delivered more than once, e.g. %s" % (len(dups), list(dups.items())[:5]))
    check(s.received_ids() == ids, "unexpected ids at the sink")
    by = s.paths()
    check(by.get("/a/sms", 0) > 0 and by.get("/b/sms", 0) > 0, "one instance did all the work: %s" % by)
    msgs = wait_states(b, list(ids), "sent", 30)
    via = {m["id"] for m in msgs.values() if m["attempts"] != 1}
    check(not via, "messages with attempts != 1: %s" % list(via)[:5])
    fx.note("split: %s" % by)


@serial  # times the exit against drain_timeout
@timeout(120)
def test_sigterm_drains(fx):
    n = 200
    r = fx.redis()
    s = fx.sink(delay_s=0.2)
    d = fx.clubd(r, s, overrides={"channel.sms": {"max_inflight": "8"},
                                  "dispatch": {"drain_timeout": "5s"}})
    contacts = make_contacts(d, 10)
    ids = send_many(d, bodies_for(contacts, n, "drain"))
    wait_until(lambda: s.unique() >= 16, 30, "16 messages at the (slow) sink")
    t0 = time.monotonic()
    rc = d.term(timeout_s=30)
    took = time.monotonic() - t0
    received = s.received_ids()
    answered = s.ok_ids()
    check(rc == 0, "exit status %s after SIGTERM" % rc)
    check(took <= 5.0 + 1.0 * SLOW, "exit took %.1fs, drain_timeout is 5s" % took)
    check(received == answered, "%d requests cut off by the shutdown" % len(received - answered))
    check(len(received) < n, "everything was sent before SIGTERM: the test proves nothing")
    s.delay_s = 0.0
    d.start()
    now = states(d, sorted(received))
    bad = {i: m["state"] for i, m in now.items() if m["state"] != "sent"}
    check(not bad, "%d messages the sink accepted are not 'sent' after the drain: %s"
          % (len(bad), list(bad.items())[:5]))
    wait_until(lambda: s.got_all(set(ids)), 60, "the rest after the restart",
               on_fail=progress(s, set(ids)))
    wait_states(d, ids, "sent", 30)
    resent = [i for i in received if s.count(i) > 1]
    check(not resent, "%d messages sent before SIGTERM were sent again" % len(resent))
    fx.note("SIGTERM with %d sent, exit after %.2fs" % (len(received), took))
