"""The harness checks itself (no clubd needed): redis-server with AOF survives
a restart on the same port, the sink verifies signatures and follows its
script, the small helpers round-trip."""

import hashlib
import hmac
import http.client
import json
import time

from harness import check, parse_time, rfc3339, serial, timeout, wait_until


def signed_post(sink, body, secret=None, path="/hook/sms", ts=None, conn=None):
    raw = json.dumps(body).encode()
    ts = str(int(time.time())) if ts is None else ts
    key = (secret or sink.secret)
    if isinstance(key, str):
        key = key.encode()
    sig = "sha256=" + hmac.new(key, ts.encode() + b"." + raw, hashlib.sha256).hexdigest()
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", sink.port, timeout=5)
    try:
        conn.request("POST", path, body=raw, headers={
            "Content-Type": "application/json", "X-Clubd-Message-Id": body["id"],
            "X-Clubd-Timestamp": ts, "X-Clubd-Signature": sig})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        if own:
            conn.close()


def body(mid, text="hello"):
    return {"id": mid, "channel": "sms", "category": "transactional", "contact_id": "c1",
            "to": "+989121234567", "subject": None, "text": text, "html": None, "attempt": 1,
            "created_at": rfc3339(time.time())}


@timeout(30)
def test_redis_aof_survives_restart(fx):
    r = fx.redis()
    port = r.port
    c = r.client()
    c.set("k", "v")
    c.xadd("s", {"a": "1"})
    check(r.stop() == 0, "redis-server did not exit 0 on SIGTERM")
    check(not r.running(), "still running")
    r.start()
    check(r.port == port, "port changed")
    c = r.client()
    check(c.get("k") == "v", "key lost across restart")
    check(c.xlen("s") == 1, "stream lost across restart")
    check(r.kill() == -9, "kill -9 status")


@timeout(30)
def test_sink_verifies_and_scripts(fx):
    s = fx.sink()
    st, _, data = signed_post(s, body("m1"))
    check(st == 200 and json.loads(data)["id"].startswith("sink-"), "good request -> %s" % st)
    st, _, _ = signed_post(s, body("m2"), secret="wrong")
    check(st == 401 and s.bad_signatures == 1, "bad signature not refused/counted")
    st, _, _ = signed_post(s, body("m3"), ts=str(int(time.time()) - 3600))
    check(st == 401 and s.bad_signatures == 2, "stale timestamp not refused")
    check(s.received_ids() == {"m1"}, "received %s" % s.received_ids())

    s.add_rule(lambda b: b["text"] == "flaky", "500", times=2)
    s.add_rule({"text": "busy"}, "429", times=1, retry_after=1)
    s.add_rule(lambda b: b["id"].startswith("bad"), "400")
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)  # keep-alive
    got = [signed_post(s, body("f1", "flaky"), conn=conn)[0] for _ in range(3)]
    check(got == [500, 500, 200], "flaky -> %s" % got)
    check(signed_post(s, body("f2", "flaky"), conn=conn)[0] == 500, "per-id counting")
    st, hdrs, _ = signed_post(s, body("b1", "busy"), conn=conn)
    check(st == 429 and hdrs.get("Retry-After") == "1", "429 -> %s %s" % (st, hdrs))
    check(signed_post(s, body("b1", "busy"), conn=conn)[0] == 200, "429 only once")
    check(signed_post(s, body("bad-1"), conn=conn)[0] == 400, "predicate 400")
    check(signed_post(s, body("bad-1"), conn=conn)[0] == 400, "400 always")
    conn.close()
    check(s.count("f1") == 3 and s.duplicates() == 2 + 1 + 1, "counts %s" % s.dup_ids())
    check(s.ok_ids() == {"m1", "f1", "b1"}, "ok ids %s" % s.ok_ids())
    t = s.times("b1")
    check(len(t) == 2 and t[0] <= t[1], "times %s" % t)
    check(s.paths() == {"/hook/sms": 5}, "paths %s" % s.paths())


@serial  # times a 0.5 s client timeout against the sink's 1.5 s hang
@timeout(30)
def test_sink_hang_and_delay(fx):
    s = fx.sink(delay_s=0.2)
    s.add_rule({"text": "slow"}, "hang", times=1, hang_s=1.5)
    t0 = time.monotonic()
    check(signed_post(s, body("d1"))[0] == 200, "delayed request failed")
    check(time.monotonic() - t0 >= 0.2, "delay not applied")
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=0.5)
    t0 = time.monotonic()
    try:
        signed_post(s, body("h1", "slow"), conn=conn)
        check(False, "hang answered in time")
    except OSError:
        pass
    finally:
        conn.close()
    check(time.monotonic() - t0 < 1.4, "client timeout not honoured")
    check(signed_post(s, body("h1", "slow"))[0] == 200, "second try after hang")
    # the sink books a 200 just after sending it: wait for it, do not race it
    wait_until(lambda: s.count("h1") == 2 and s.ok_ids() >= {"d1", "h1"}, 5, "hang bookkeeping",
               on_fail=lambda: "count %d, ok %s" % (s.count("h1"), s.ok_ids()))


def test_time_helpers(fx):
    t = 1764000000.123
    s = rfc3339(t)
    check(s == "2025-11-24T16:00:00.123Z", s)
    check(abs(parse_time(s) - t) < 1e-6, "round trip")
    check(abs(parse_time("2025-11-24T19:30:00.123+03:30") - t) < 1e-6, "offset")
