"""Cases 3, 4, 12, 13 and the outbox driver: exactly-once delivery through
the webhook, send_at, idempotency keys, cancel."""

import json
import os
import time

from harness import (check, make_contacts, parse_time, rfc3339, send_many, timeout, wait_state,
                     wait_states, wait_until)


def settle(sink, seconds=0.5):
    """Let late duplicates (if any) arrive before counting."""
    time.sleep(seconds)
    return sink.dup_ids()


@timeout(120)
def test_thousand_exactly_once(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    contacts = make_contacts(d, 20)
    bodies = [{"contact_id": contacts[i % 20]["id"], "channel": "sms", "text": "msg %d" % i}
              for i in range(1000)]
    ids = send_many(d, bodies)
    check(len(set(ids)) == 1000, "ids not unique")
    wait_until(lambda: s.got_all(set(ids)), 60, "1000 messages at the sink",
               on_fail=lambda: "%d of 1000 received, stats %s" % (s.ok_count(set(ids)), s.stats()))
    dups = settle(s)
    check(not dups, "duplicates at the sink: %s" % dict(list(dups.items())[:5]))
    check(s.received_ids() == set(ids), "unexpected ids at the sink")
    check(s.bad_signatures == 0 and s.bad_requests == 0, "bad requests at the sink: %s" % s.stats())
    # the wire body matches what was asked for
    by_id = dict(zip(ids, bodies))
    phone = {c["id"]: c["addresses"]["sms"] for c in contacts}
    for mid in ids[:50]:
        b = s.requests_for(mid)[0].body
        want = by_id[mid]
        check(b["channel"] == "sms" and b["category"] == "transactional" and b["attempt"] == 1
              and b["contact_id"] == want["contact_id"] and b["text"] == want["text"]
              and b["to"] == phone[want["contact_id"]], "wire body %r" % b)
        parse_time(b["created_at"])
    msgs = wait_states(d, ids, "sent", 30)
    for mid in ids[:50]:
        m = msgs[mid]
        check(m["attempts"] == 1 and m.get("sent_channel") == "sms"
              and str(m.get("provider_id", "")).startswith("sink-"), "message %r" % m)
        st = [h["state"] for h in m["history"]]
        check("sending" in st and st[-1] == "sent", "history %r" % st)


@timeout(60)
def test_send_at_in_future(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    c = make_contacts(d, 1)[0]
    mk = d.client("marketer")
    at = rfc3339(time.time() + 2.0)
    m = mk.send({"contact_id": c["id"], "channel": "sms", "text": "later", "send_at": at})
    check(m["state"] == "scheduled", "future send_at answered %r" % m)
    check(abs(parse_time(m["due_at"]) - parse_time(at)) < 0.002, "due_at %s != send_at %s" % (m["due_at"], at))
    now = mk.send({"contact_id": c["id"], "channel": "sms", "text": "now",
                   "send_at": rfc3339(time.time() - 60)})
    check(now["state"] == "ready", "past send_at answered %r" % now)
    wait_until(lambda: now["id"] in s.ok_ids(), 10, "the immediate message")
    check(m["id"] not in s.received_ids(), "scheduled message sent before send_at")
    wait_until(lambda: m["id"] in s.ok_ids(), 10, "the scheduled message")
    got = s.times(m["id"])[0]
    check(got >= parse_time(at), "received %.3fs before send_at" % (parse_time(at) - got))
    wait_state(d, m["id"], "sent")


@timeout(60)
def test_idempotency_key(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    c = make_contacts(d, 1)[0]
    body = {"contact_id": c["id"], "channel": "sms", "text": "receipt 7781"}
    key = {"Idempotency-Key": "order-7781-receipt"}
    mk = d.client("marketer")
    a = mk.post("/v1/messages", body, headers=key)
    check(a.status == 202, "first POST -> %r" % a)
    b = mk.post("/v1/messages", body, headers=key)
    check(b.status == 200 and b.json["id"] == a.json["id"], "replay -> %r (first %r)" % (b, a))
    other = mk.post("/v1/messages", body, headers={"Idempotency-Key": "order-7782-receipt"})
    check(other.status == 202 and other.json["id"] != a.json["id"], "other key -> %r" % other)
    adm = d.client("admin").post("/v1/messages", body, headers=key)
    check(adm.status == 202 and adm.json["id"] not in (a.json["id"], other.json["id"]),
          "same key from another token -> %r" % adm)
    ids = {a.json["id"], other.json["id"], adm.json["id"]}
    wait_until(lambda: s.got_all(ids), 10, "three deliveries")
    c2 = mk.post("/v1/messages", body, headers=key)
    check(c2.status == 200 and c2.json["id"] == a.json["id"], "replay after sending -> %r" % c2)
    dups = settle(s, 1.0)
    check(not dups and s.received_ids() == ids, "deliveries %s, duplicates %s" % (s.received_ids(), dups))
    x = mk.post("/v1/messages", body, headers={"Idempotency-Key": "k" * 201})
    check(x.status == 400, "201-byte key -> %r" % x)


@timeout(60)
def test_cancel(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    c = make_contacts(d, 1)[0]
    mk = d.client("marketer")
    at = time.time() + 1.5
    m = mk.send({"contact_id": c["id"], "channel": "sms", "text": "never", "send_at": rfc3339(at)})
    x = d.client("viewer").post("/v1/messages/%s/cancel" % m["id"])
    check(x.status == 403, "viewer cancel -> %r" % x)
    x = mk.post("/v1/messages/%s/cancel" % m["id"])
    check(x.status == 200 and x.json["state"] == "cancelled", "cancel -> %r" % x)
    check(mk.message(m["id"])["state"] == "cancelled", "GET after cancel")
    sent = mk.send({"contact_id": c["id"], "channel": "sms", "text": "goes"})
    wait_state(d, sent["id"], "sent")
    x = mk.post("/v1/messages/%s/cancel" % sent["id"])
    check(x.status == 409 and x.err_code() == "conflict", "cancel after sent -> %r" % x)
    x = mk.post("/v1/messages/%s/cancel" % m["id"])
    check(x.status in (200, 409), "second cancel -> %r" % x)
    check(mk.post("/v1/messages/01JD3Z8Q6M0000000000000000/cancel").status == 404, "unknown id")
    time.sleep(max(0, at - time.time()) + 1.0)
    check(m["id"] not in s.received_ids(), "cancelled message was delivered")
    check(mk.message(m["id"])["state"] == "cancelled", "cancelled state changed")
    check(mk.message(sent["id"])["state"] == "sent", "sent state changed")


@timeout(60)
def test_outbox_driver(fx):
    r = fx.redis()
    d = fx.clubd(r)  # no sink: every channel writes to the outbox
    mk = d.client("marketer")
    c = mk.create_contact({"name": "Outbox", "addresses": {"sms": "09121234567",
                                                           "email": "o@example.com",
                                                           "chat": "123456789"}})
    ids = {}
    for ch in ("sms", "chat", "email"):
        ids[ch] = mk.send({"contact_id": c["id"], "channel": ch, "text": "via %s" % ch,
                           "subject": "Outbox test %s" % ch})["id"]
    for ch, mid in ids.items():
        wait_state(d, mid, "sent")

    def jsonl_has(path, mid):
        try:
            with open(path, encoding="utf-8") as f:
                lines = [ln for ln in f if ln.strip()]
        except FileNotFoundError:
            return False
        for ln in lines:
            json.loads(ln)  # every line is one JSON document
        return any(mid in ln for ln in lines)

    for ch in ("sms", "chat"):
        p = os.path.join(fx.outbox, ch + ".jsonl")
        check(jsonl_has(p, ids[ch]), "%s has no line for message %s" % (p, ids[ch]))
    new = os.path.join(fx.outbox, "email", "new")
    files = os.listdir(new) if os.path.isdir(new) else []
    check(len(files) == 1, "Maildir %s holds %r" % (new, files))
    with open(os.path.join(new, files[0]), "rb") as f:
        mail = f.read()
    check(b"Outbox test email" in mail and b"o@example.com" in mail, "mail: %r" % mail[:400])
