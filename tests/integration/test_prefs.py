"""Cases 5 and 6: preferences are law at dispatch time - quiet hours defer
(never drop), consent suppresses with a reason, preferred order falls back."""

import json
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from harness import check, parse_time, rfc3339, timeout, wait_state, wait_until


@timeout(60)
def test_quiet_hours_defer(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    mk = d.client("marketer")
    now = datetime.now(ZoneInfo("Asia/Tehran")).replace(second=0, microsecond=0)
    start, end = now - timedelta(hours=1), now + timedelta(minutes=2)
    quiet = {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
    c = mk.create_contact({"name": "شب‌بیدار", "tz": "Asia/Tehran",
                           "addresses": {"sms": "09121234567"},
                           "preferences": {"quiet_hours": quiet}})
    check(c["preferences"]["quiet_hours"] == quiet, "quiet hours not stored: %r" % c["preferences"])
    m = mk.send({"contact_id": c["id"], "channel": "sms", "category": "promotional",
                 "text": "تخفیف ویژه"})

    last = {}

    def deferred():
        last.update(mk.message(m["id"]))
        return last["state"] == "scheduled" and "quiet_hours" in json.dumps(last)

    wait_until(deferred, 10, "the message deferred for quiet hours",
               on_fail=lambda: json.dumps(last, ensure_ascii=False)[:800])
    due = parse_time(last["due_at"])
    check(abs(due - end.timestamp()) <= 1.0,
          "due_at %s, expected the end of quiet hours %s (%s local)"
          % (last["due_at"], rfc3339(end.timestamp()), quiet["end"]))
    time.sleep(1.0)
    check(m["id"] not in s.received_ids(), "message sent inside quiet hours")
    check(mk.message(m["id"])["state"] == "scheduled", "deferred message left scheduled")


@timeout(60)
def test_opted_out_suppressed(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    mk = d.client("marketer")
    out = mk.create_contact({"name": "No SMS", "addresses": {"sms": "09121234567"},
                             "preferences": {"consent": {"sms": False}}})
    m = mk.send({"contact_id": out["id"], "channel": "sms", "text": "hello"})
    got = wait_state(d, m["id"], ("suppressed", "sent", "failed"))
    check(got["state"] == "suppressed" and got["last_error"] == "opted_out:sms",
          "opted-out contact: %r" % got)

    promo = mk.create_contact({"name": "No promos", "addresses": {"sms": "09121234568"},
                               "preferences": {"categories": {"promotional": False}}})
    p = mk.send({"contact_id": promo["id"], "channel": "sms", "category": "promotional",
                 "text": "sale"})
    got = wait_state(d, p["id"], ("suppressed", "sent", "failed"))
    check(got["state"] == "suppressed" and got["last_error"] == "category_opt_out:promotional",
          "category opt-out: %r" % got)
    t = mk.send({"contact_id": promo["id"], "channel": "sms", "category": "transactional",
                 "text": "receipt"})
    wait_state(d, t["id"], "sent")
    time.sleep(0.5)
    check(s.received_ids() == {t["id"]}, "the sink got %s" % s.received_ids())


@timeout(60)
def test_preferred_channel_fallback(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    mk = d.client("marketer")
    c = mk.create_contact({"name": "Chat first", "addresses": {"sms": "09121234567",
                                                               "chat": "@chatfirst"},
                           "preferences": {"channels": ["chat", "sms"]}})
    a = mk.send({"contact_id": c["id"], "text": "to chat"})  # channel defaults to preferred
    got = wait_state(d, a["id"], "sent")
    check(got["sent_channel"] == "chat" and got["to"] == "@chatfirst", "preferred: %r" % got)
    check(s.requests_for(a["id"])[0].path == "/hook/chat", "sink path %s" % s.requests_for(a["id"])[0].path)
    p = mk.patch("/v1/contacts/" + c["id"], {"preferences": {"channels": ["chat", "sms"],
                                                            "consent": {"chat": False}}})
    check(p.status == 200, "PATCH -> %r" % p)
    b = mk.send({"contact_id": c["id"], "channel": "preferred", "text": "to sms"})
    got = wait_state(d, b["id"], "sent")
    check(got["sent_channel"] == "sms" and got["to"] == "+989121234567", "fallback: %r" % got)
    check(s.requests_for(b["id"])[0].path == "/hook/sms", "sink path")
