"""Inbound SMS end to end through the real clubd: Kannel's get-url (MO) and the
generic signed JSON webhook.  Keywords change consent (لغو from a local-form
number suppresses the next SMS with opted_out:sms, START gives it back),
duplicates are recorded once, unknown senders become leads, a reply is
attributed to the last message sent to the contact and shown on
GET /v1/contacts/{id}/timeline; bad signatures and replayed webhooks are 403."""

import hashlib
import hmac
import json
import os
import time
import urllib.parse

from harness import Client, check, timeout, wait_state

SECRET = "callback-secret-for-tests-0123456789"


def kannel_k():
    return hmac.new(SECRET.encode(), b"inbound:kannel", hashlib.sha256).hexdigest()[:32]


def start(fx, sink=True):
    with open(os.path.join(fx.tmp, "cb-secret"), "w") as f:
        f.write(SECRET + "\n")
    r = fx.redis()
    s = fx.sink() if sink else None
    d = fx.clubd(r, s, overrides={"api": {"callback_secret_file": os.path.join(fx.tmp, "cb-secret")}})
    return r, d


def kannel(d, frm, text, mid, k=None, to="30001234"):
    q = urllib.parse.urlencode({"k": kannel_k() if k is None else k, "from": frm, "to": to,
                                "text": text, "ts": "2026-11-23 10:05", "id": mid})
    return Client(d.port).request("GET", "/v1/inbound/kannel?" + q, token=None)


def webhook(d, obj, ts=None, secret=SECRET, raw=None):
    body = raw if raw is not None else json.dumps(obj, ensure_ascii=False).encode()
    ts = str(int(time.time())) if ts is None else str(ts)
    sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return Client(d.port).request("POST", "/v1/inbound/sms", raw=body, token=None,
                                  headers={"X-Clubd-Timestamp": ts,
                                           "X-Clubd-Signature": "sha256=" + sig})


def timeline(d, cid, **q):
    x = d.client("viewer").get("/v1/contacts/%s/timeline?%s" % (cid, urllib.parse.urlencode(q)))
    check(x.status == 200, "timeline -> %r" % x)
    return x.json


def consent_sms(d, cid):
    x = d.client("viewer").get("/v1/contacts/" + cid)
    check(x.status == 200, "contact -> %r" % x)
    return x.json.get("preferences", {}).get("consent", {}).get("sms")


@timeout(60)
def test_kannel_opt_out_and_in(fx):
    r, d = start(fx)
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "Sara", "addresses": {"sms": "+989121234567"}})["id"]

    x = kannel(d, "09121234567", "  لغو ", "kannel-1")
    check(x.status == 200 and x.text == "OK", "kannel MO -> %r" % x)
    check(consent_sms(d, cid) is False, "لغو withdrew sms consent")
    m = mk.send({"contact_id": cid, "channel": "sms", "text": "promo"})
    got = wait_state(d, m["id"], ("suppressed", "sent", "failed"))
    check(got["state"] == "suppressed" and got["last_error"] == "opted_out:sms",
          "after لغو the next SMS is suppressed: %r" % got)

    # the same provider id again: recorded once
    check(kannel(d, "09121234567", "  لغو ", "kannel-1").status == 200, "duplicate answered 200")
    rc = r.client()
    check(rc.xlen("clubd:inbound") == 1, "duplicate stored once in the audit stream")
    tl = timeline(d, cid)["items"]
    consents = [e for e in tl if e.get("type") == "consent"]
    check(len(consents) == 1 and consents[0]["consent"] == "revoked"
          and consents[0]["channel"] == "sms", "one consent entry: %r" % tl)

    x = kannel(d, "۰۹۱۲۱۲۳۴۵۶۷", "START", "kannel-2")
    check(x.status == 200, "START -> %r" % x)
    check(consent_sms(d, cid) is True, "START gave sms consent back")
    tl = timeline(d, cid)["items"]
    check(tl[0]["type"] == "consent" and tl[0]["consent"] == "granted", "newest first: %r" % tl[0])
    m2 = mk.send({"contact_id": cid, "channel": "sms", "text": "welcome back"})
    got = wait_state(d, m2["id"], ("suppressed", "sent", "failed"))
    check(got["state"] == "sent", "after START the SMS is sent: %r" % got)

    # HELP is recorded, consent unchanged
    check(kannel(d, "09121234567", "help", "kannel-3").status == 200, "help")
    check(timeline(d, cid)["items"][0]["type"] == "help", "help on the timeline")
    check(consent_sms(d, cid) is True, "help leaves consent alone")

    # forged or missing k: refused, nothing recorded
    check(kannel(d, "09121234567", "STOP", "kannel-4", k="0" * 32).status == 403, "bad k -> 403")
    check(kannel(d, "09121234567", "STOP", "kannel-5", k="").status == 403, "no k -> 403")
    check(consent_sms(d, cid) is True, "forged STOP changed nothing")
    # malformed fields
    x = kannel(d, "not-a-number", "hi", "kannel-6")
    check(x.status == 400 and x.err_field() == "from", "bad sender -> 400 from: %r" % x)
    x = kannel(d, "09121234567", "hi", "")
    check(x.status == 400 and x.err_field() == "id", "no id -> 400 id: %r" % x)
    check(rc.xlen("clubd:inbound") == 3, "audit stream has the three accepted messages")


@timeout(60)
def test_webhook_reply_lead_and_replay(fx):
    r, d = start(fx)
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "Reza", "addresses": {"sms": "09350001111"}})["id"]
    m = mk.send({"contact_id": cid, "channel": "sms", "text": "how was your visit?"})
    check(wait_state(d, m["id"], ("sent", "failed", "suppressed"))["state"] == "sent", "sent")

    x = webhook(d, {"from": "+989350001111", "to": "30001234", "text": "خیلی خوب بود، ممنون",
                    "id": "wh-1", "received_at": "2026-11-23T10:00:00Z"})
    check(x.status == 200, "webhook -> %r" % x)
    check(x.json == {"action": "reply", "contact_id": cid, "duplicate": False}, "answer %r" % x.json)
    tl = timeline(d, cid)["items"]
    check(tl[0]["type"] == "reply" and tl[0]["text"] == "خیلی خوب بود، ممنون"
          and tl[0]["m"] == m["id"], "reply attributed to the last message: %r" % tl[0])
    check(tl[0]["at"].endswith("Z") and tl[0]["id"], "entry has id and RFC 3339 at: %r" % tl[0])
    check(any(e.get("type") == "message" and e.get("m") == m["id"] for e in tl[1:]),
          "the sent message is on the timeline too: %r" % tl)

    # duplicate delivery of the same webhook: answered, flagged, recorded once
    x = webhook(d, {"from": "+989350001111", "text": "خیلی خوب بود، ممنون", "id": "wh-1"})
    check(x.status == 200 and x.json["duplicate"] is True and x.json["contact_id"] == cid,
          "duplicate -> %r" % x)
    check(len([e for e in timeline(d, cid)["items"] if e.get("type") == "reply"]) == 1,
          "the reply is recorded once")

    # unknown sender: a lead contact; STOP from it withdraws its consent
    x = webhook(d, {"from": "09120009999", "text": "STOP", "id": "wh-2"})
    check(x.status == 200 and x.json["action"] == "opt_out", "stop -> %r" % x)
    lead = x.json["contact_id"]
    check(lead != cid, "a new contact for an unknown number")
    c = d.client("viewer").get("/v1/contacts/" + lead).json
    check(c["addresses"]["sms"] == "+989120009999", "lead's address: %r" % c)
    check(r.client().hget("clubd:c:" + lead, "lead") == "1", "marked as a lead")
    check(consent_sms(d, lead) is False, "lead opted out")

    # replay (timestamp 10 minutes old), bad signature, wrong secret: 403
    body = {"from": "09120009999", "text": "START", "id": "wh-3"}
    x = webhook(d, body, ts=int(time.time()) - 600)
    check(x.status == 403 and x.err_field() == "X-Clubd-Timestamp", "replay -> 403: %r" % x)
    x = webhook(d, body, secret="another-secret-0123456789")
    check(x.status == 403 and x.err_field() == "X-Clubd-Signature", "bad signature -> 403: %r" % x)
    x = Client(d.port).request("POST", "/v1/inbound/sms", body=body, token=None)
    check(x.status == 403, "unsigned -> 403: %r" % x)
    check(consent_sms(d, lead) is False, "refused webhooks changed nothing")
    # malformed bodies
    x = webhook(d, None, raw=b"{not json")
    check(x.status == 400 and x.err_code() == "invalid_json", "bad json -> %r" % x)
    x = webhook(d, {"from": "09120009999", "id": "wh-4"})
    check(x.status == 400 and x.err_field() == "text", "no text -> %r" % x)
    x = webhook(d, {"from": "09120009999", "id": "wh-5", "text": "x" * 4097})
    check(x.status == 400 and x.err_field() == "text", "text over 4 KiB -> %r" % x)

    # timeline paging: limit/cursor over the stream, newest first, no overlap
    for i in range(5):
        check(webhook(d, {"from": "09350001111", "text": "msg %d" % i, "id": "p-%d" % i}).status
              == 200, "reply %d" % i)
    seen, cursor = [], None
    for _ in range(20):
        q = {"limit": 2}
        if cursor:
            q["cursor"] = cursor
        page = timeline(d, cid, **q)
        check(len(page["items"]) <= 2, "page size")
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    full = [e["id"] for e in timeline(d, cid, limit=500)["items"]]
    check(seen == full and len(set(seen)) == len(seen), "pages cover the timeline once")
    check(full == sorted(full, key=lambda s: tuple(map(int, s.split("-"))), reverse=True),
          "newest first")
    check(d.client("viewer").get("/v1/contacts/%s/timeline?cursor=zz" % cid).status == 400,
          "bad cursor -> 400")
    check(d.client("viewer").get("/v1/contacts/01ZZZZZZZZZZZZZZZZZZZZZZZZ/timeline").status == 404,
          "unknown contact -> 404")
