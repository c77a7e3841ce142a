"""Inbound SMS end to end through the real clubd: Kannel's get-url and post-url
(MO) and the generic signed JSON webhook.  Keywords change consent and get a
confirmation on the same channel (لغو from a local-form number withdraws the
marketing categories, so a promotional SMS is suppressed while the
transactional confirmation goes out; START gives them back), duplicates are
recorded and confirmed once, unknown senders become leads (or only the audit
with create_leads = no), a reply is attributed to the last campaign touch
(lc:{cid} -> cs:{camp} replies, eng:replied:{camp}) or to the last message
sent, the keyword lists, replies and the opt-out scope are configurable, and
bad signatures, replays and undecodable texts are refused."""

import hashlib
import hmac
import json
import os
import signal
import time
import urllib.parse

from harness import Client, check, timeout, wait_state, wait_until, write_config

SECRET = "callback-secret-for-tests-0123456789"
STOP_FA = "لغو عضویت شما انجام شد. برای عضویت دوباره «عضویت» را بفرستید."
START_EN = "You are subscribed again. Reply STOP to unsubscribe."
HELP_EN = "Reply STOP to unsubscribe or START to subscribe again."
STOP_EN = "You will no longer receive marketing messages from us. Reply START to subscribe again."
START_FA = "عضویت شما فعال شد. برای لغو «لغو» را بفرستید."
MARKETING = ("promotional", "survey", "lottery", "occasion")


def kannel_k():
    return hmac.new(SECRET.encode(), b"inbound:kannel", hashlib.sha256).hexdigest()[:32]


def start(fx, sink=True, inbound=None):
    with open(os.path.join(fx.tmp, "cb-secret"), "w") as f:
        f.write(SECRET + "\n")
    r = fx.redis()
    s = fx.sink() if sink else None
    ov = {"api": {"callback_secret_file": os.path.join(fx.tmp, "cb-secret")}}
    if inbound:
        ov["inbound"] = inbound
    d = fx.clubd(r, s, overrides=ov)
    return r, s, d


def kannel(d, frm, text, mid, k=None, to="30001234", extra=None):
    q = {"k": kannel_k() if k is None else k, "from": frm, "to": to, "text": text,
         "ts": "2026-11-23 10:05", "id": mid}
    q.update(extra or {})
    return Client(d.port).request("GET", "/v1/inbound/kannel?" + urllib.parse.urlencode(q),
                                  token=None)


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


def prefs(d, cid):
    x = d.client("viewer").get("/v1/contacts/" + cid)
    check(x.status == 200, "contact -> %r" % x)
    return x.json.get("preferences") or {}


def newest(d, cid, *types):
    """The newest timeline entry of one of types (sent messages interleave)."""
    for e in timeline(d, cid, limit=500)["items"]:
        if e.get("type") in types:
            return e
    return {}


def consent_sms(d, cid):
    return prefs(d, cid).get("consent", {}).get("sms")


def marketing(d, cid):
    cats = prefs(d, cid).get("categories", {})
    return [cats.get(c) for c in MARKETING]


def sink_bodies(s):
    with s._lock:
        return [r.body for v in s.log.values() for r in v]


def wait_sink_text(s, to, text, what):
    def got():
        return [b for b in sink_bodies(s) if b.get("to") == to and b.get("text") == text]
    return wait_until(got, 15, what, on_fail=lambda: json.dumps(
        [(b.get("to"), b.get("text")) for b in sink_bodies(s)], ensure_ascii=False))


def confirmations(r, kw=None):
    """Messages created by the router (field kw), as (kw, text, contact)."""
    rc = r.client()
    out = []
    for k in rc.keys("clubd:m:*"):
        h = rc.hgetall(k)
        if "kw" in h and (kw is None or h["kw"] == kw):
            out.append((h["kw"], h.get("text"), h.get("contact")))
    return out


@timeout(90)
def test_kannel_opt_out_and_in(fx):
    r, s, d = start(fx)
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "Sara", "addresses": {"sms": "+989121234567"}})["id"]

    x = kannel(d, "09121234567", "  لغو ", "kannel-1")
    check(x.status == 200 and x.text == "OK", "kannel MO -> %r" % x)
    check(marketing(d, cid) == [False] * 4, "لغو withdrew the marketing categories: %r"
          % prefs(d, cid))
    check(consent_sms(d, cid) is not False, "the channel itself stays open for transactional")
    m = mk.send({"contact_id": cid, "channel": "sms", "category": "promotional", "text": "promo"})
    got = wait_state(d, m["id"], ("suppressed", "sent", "failed"))
    check(got["state"] == "suppressed" and got["last_error"] == "category_opt_out:promotional",
          "after لغو a promotional SMS is suppressed: %r" % got)
    # the confirmation: Persian (the keyword was), transactional, on SMS, sent
    b = wait_sink_text(s, "+989121234567", STOP_FA, "Persian stop confirmation sent")[0]
    check(b["category"] == "transactional" and b["channel"] == "sms", "confirmation %r" % b)

    # the same provider id again: recorded once, confirmed once
    check(kannel(d, "09121234567", "  لغو ", "kannel-1").status == 200, "duplicate answered 200")
    rc = r.client()
    check(rc.xlen("clubd:inbound") == 1, "duplicate stored once in the audit stream")
    tl = timeline(d, cid)["items"]
    consents = [e for e in tl if e.get("type") == "consent"]
    check(len(consents) == 1 and consents[0]["consent"] == "revoked"
          and consents[0]["channel"] == "sms" and consents[0]["scope"] == "categories",
          "one consent entry: %r" % tl)
    check(len(confirmations(r, "opt_out")) == 1, "one confirmation: %r" % confirmations(r))

    # START (Persian digits in the number; an English keyword: English reply)
    x = kannel(d, "۰۹۱۲۱۲۳۴۵۶۷", "START", "kannel-2")
    check(x.status == 200, "START -> %r" % x)
    check(marketing(d, cid) == [True] * 4 and consent_sms(d, cid) is True,
          "START gave the categories and sms back: %r" % prefs(d, cid))
    e = newest(d, cid, "consent", "help", "reply")
    check(e["type"] == "consent" and e["consent"] == "granted", "newest first: %r" % e)
    wait_sink_text(s, "+989121234567", START_EN, "English start confirmation")
    m2 = mk.send({"contact_id": cid, "channel": "sms", "category": "promotional",
                  "text": "welcome back"})
    got = wait_state(d, m2["id"], ("suppressed", "sent", "failed"))
    check(got["state"] == "sent", "after START the promotional SMS is sent: %r" % got)

    # HELP: recorded and answered, consent unchanged; Arabic-yeh عضويت is an opt-in
    check(kannel(d, "09121234567", "help", "kannel-3").status == 200, "help")
    check(newest(d, cid, "consent", "help", "reply")["type"] == "help", "help on the timeline")
    wait_sink_text(s, "+989121234567", HELP_EN, "help reply")
    check(marketing(d, cid) == [True] * 4, "help leaves consent alone")
    check(kannel(d, "09121234567", "عضويت", "kannel-3b").status == 200, "عضويت")
    wait_sink_text(s, "+989121234567", START_FA, "Persian start confirmation")

    # forged or missing k: refused, nothing recorded
    check(kannel(d, "09121234567", "STOP", "kannel-4", k="0" * 32).status == 403, "bad k -> 403")
    check(kannel(d, "09121234567", "STOP", "kannel-5", k="").status == 403, "no k -> 403")
    check(marketing(d, cid) == [True] * 4, "forged STOP changed nothing")
    # malformed fields; UCS-2 through a query cannot arrive intact
    x = kannel(d, "not-a-number", "hi", "kannel-6")
    check(x.status == 400 and x.err_field() == "from", "bad sender -> 400 from: %r" % x)
    x = kannel(d, "09121234567", "hi", "")
    check(x.status == 400 and x.err_field() == "id", "no id -> 400 id: %r" % x)
    x = kannel(d, "09121234567", "\u0644", "kannel-7", extra={"coding": "2", "charset": "UTF-16BE"})
    check(x.status == 400 and x.err_field() == "text" and "post-url" in x.text,
          "UCS-2 via get-url -> 400 with a hint: %r" % x)
    check(rc.xlen("clubd:inbound") == 4, "audit stream has the four accepted messages")


@timeout(60)
def test_kannel_post_url_ucs2(fx):
    r, s, d = start(fx)
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "Nima", "addresses": {"sms": "+989351112222"}})["id"]
    path = "/v1/inbound/kannel?k=%s&id=post-1" % kannel_k()
    body = " لغو ".encode("utf-16-be")  # spaces put NUL bytes in the body
    x = Client(d.port).request("POST", path, raw=body, token=None,
                               ctype="text/plain; charset=UTF-16BE",
                               headers={"X-Kannel-From": "+989351112222", "X-Kannel-To": "3000",
                                        "X-Kannel-Time": "2026-11-23 10:05:07",
                                        "X-Kannel-Coding": "2"})
    check(x.status == 200 and x.text == "OK", "post-url -> %r" % x)
    check(marketing(d, cid) == [False] * 4, "UCS-2 لغو understood")
    ev = r.client().xrange("clubd:inbound")[-1][1]
    check(ev["text"] == " لغو " and ev["transport"] == "kannel", "audit keeps the text: %r" % ev)
    wait_sink_text(s, "+989351112222", STOP_FA, "confirmation")
    # windows-1256 through post-url; a binary (octet-stream) message is refused
    x = Client(d.port).request("POST", "/v1/inbound/kannel?k=%s&id=post-2" % kannel_k(),
                               raw="سلام".encode("cp1256"), token=None,
                               ctype="text/plain; charset=windows-1256",
                               headers={"X-Kannel-From": "+989351112222"})
    check(x.status == 200, "windows-1256 -> %r" % x)
    e = newest(d, cid, "consent", "reply")
    check(e["type"] == "reply" and e["text"] == "سلام", "decoded reply: %r" % e)
    x = Client(d.port).request("POST", "/v1/inbound/kannel?k=%s&id=post-3" % kannel_k(),
                               raw=b"\x01\x02", token=None, ctype="application/octet-stream",
                               headers={"X-Kannel-From": "+989351112222"})
    check(x.status == 400 and x.err_field() == "text", "binary -> 400: %r" % x)
    x = Client(d.port).request("POST", "/v1/inbound/kannel?k=bad&id=post-4", raw=b"x",
                               token=None, ctype="text/plain",
                               headers={"X-Kannel-From": "+989351112222"})
    check(x.status == 403, "bad k on post-url -> 403: %r" % x)


@timeout(90)
def test_webhook_reply_lead_and_replay(fx):
    r, s, d = start(fx)
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
          and tl[0]["m"] == m["id"] and tl[0]["camp"] == "",
          "reply attributed to the last message: %r" % tl[0])
    check(tl[0]["at"].endswith("Z") and tl[0]["id"], "entry has id and RFC 3339 at: %r" % tl[0])
    check(any(e.get("type") == "message" and e.get("m") == m["id"] for e in tl[1:]),
          "the sent message is on the timeline too: %r" % tl)

    # duplicate delivery of the same webhook: answered, flagged, recorded once
    x = webhook(d, {"from": "+989350001111", "text": "خیلی خوب بود، ممنون", "id": "wh-1"})
    check(x.status == 200 and x.json["duplicate"] is True and x.json["contact_id"] == cid,
          "duplicate -> %r" % x)
    check(len([e for e in timeline(d, cid)["items"] if e.get("type") == "reply"]) == 1,
          "the reply is recorded once")

    # unknown sender: a lead contact; STOP from it withdraws its marketing consent
    x = webhook(d, {"from": "09120009999", "text": "STOP", "id": "wh-2"})
    check(x.status == 200 and x.json["action"] == "opt_out" and x.json.get("confirmation"),
          "stop -> %r" % x)
    lead = x.json["contact_id"]
    check(lead != cid, "a new contact for an unknown number")
    c = d.client("viewer").get("/v1/contacts/" + lead).json
    check(c["addresses"]["sms"] == "+989120009999", "lead's address: %r" % c)
    check(r.client().hget("clubd:c:" + lead, "lead") == "1", "marked as a lead")
    check(marketing(d, lead) == [False] * 4, "lead opted out")
    conf = wait_state(d, x.json["confirmation"], ("sent", "failed", "suppressed"))
    check(conf["state"] == "sent" and conf["category"] == "transactional",
          "the confirmation went out despite the opt-out: %r" % conf)
    wait_sink_text(s, "+989120009999", STOP_EN, "English stop confirmation")
    # the provider retries the STOP: no second confirmation
    x = webhook(d, {"from": "09120009999", "text": "STOP", "id": "wh-2"})
    check(x.json["duplicate"] is True, "retry is a duplicate: %r" % x)
    check(len(confirmations(r, "opt_out")) == 1, "still one confirmation")

    # replay (timestamp 10 minutes old), bad signature, wrong secret: 403
    body = {"from": "09120009999", "text": "START", "id": "wh-3"}
    x = webhook(d, body, ts=int(time.time()) - 600)
    check(x.status == 403 and x.err_field() == "X-Clubd-Timestamp", "replay -> 403: %r" % x)
    x = webhook(d, body, secret="another-secret-0123456789")
    check(x.status == 403 and x.err_field() == "X-Clubd-Signature", "bad signature -> 403: %r" % x)
    x = Client(d.port).request("POST", "/v1/inbound/sms", body=body, token=None)
    check(x.status == 403, "unsigned -> 403: %r" % x)
    check(marketing(d, lead) == [False] * 4, "refused webhooks changed nothing")
    # malformed bodies
    x = webhook(d, None, raw=b"{not json")
    check(x.status == 400 and x.err_code() == "invalid_json", "bad json -> %r" % x)
    x = webhook(d, {"from": "09120009999", "id": "wh-4"})
    check(x.status == 400 and x.err_field() == "text", "no text -> %r" % x)
    x = webhook(d, {"from": "09120009999", "id": "wh-5", "text": "x" * 4097})
    check(x.status == 400 and x.err_field() == "text", "text over 4 KiB -> %r" % x)
    x = webhook(d, {"from": "09120009999", "id": "wh-6", "text": "x", "received_at": "soon"})
    check(x.status == 400 and x.err_field() == "received_at", "bad time -> %r" % x)

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


@timeout(60)
def test_campaign_attribution(fx):
    """A reply within the last campaign touch's window counts for the campaign
    and its variant (contracts.md); outside the window it does not."""
    r, s, d = start(fx, sink=False)
    mk = d.client("marketer")
    a = mk.create_contact({"name": "A", "addresses": {"sms": "+989121110001"}})["id"]
    b = mk.create_contact({"name": "B", "addresses": {"sms": "+989121110002"}})["id"]
    rc = r.client()
    now = int(time.time() * 1000)
    rc.hset("clubd:lc:" + a, mapping={"camp": "yalda", "var": "A", "msg": "01MSGFORA0000000000000000",
                                      "at": now - 60000, "win": 7 * 86400000})
    rc.hset("clubd:lc:" + b, mapping={"camp": "yalda", "var": "B", "msg": "01MSGFORB0000000000000000",
                                      "at": now - 3 * 86400000, "win": 86400000})
    x = webhook(d, {"from": "+989121110001", "text": "عالی بود", "id": "c-1"})
    check(x.status == 200 and x.json["action"] == "reply", "reply a -> %r" % x)
    check(webhook(d, {"from": "+989121110001", "text": "باز هم", "id": "c-2"}).status == 200, "a2")
    check(webhook(d, {"from": "+989121110002", "text": "late", "id": "c-3"}).status == 200, "b")
    cs = rc.hgetall("clubd:cs:yalda")
    check(cs.get("replies") == "2" and cs.get("A:replies") == "2" and "B:replies" not in cs,
          "counters: %r" % cs)
    check(rc.smembers("clubd:eng:replied:yalda") == {a}, "engaged: only a")
    e = timeline(d, a)["items"][0]
    check(e["camp"] == "yalda" and e["m"] == "01MSGFORA0000000000000000", "entry names camp/msg: %r" % e)
    e = timeline(d, b)["items"][0]
    check(e["camp"] == "" and e["m"] == "", "outside the window: no attribution: %r" % e)
    # a duplicate does not count twice
    check(webhook(d, {"from": "+989121110001", "text": "عالی بود", "id": "c-1"}).json["duplicate"],
          "dup")
    check(rc.hget("clubd:cs:yalda", "replies") == "2", "duplicate not counted")


@timeout(90)
def test_configured_keywords_scope_and_leads(fx):
    """Own keyword lists (Arabic kaf matches the Persian one), a channel-wide
    opt-out (no confirmation: the dispatcher would suppress it), replies in
    the contact's language, and create_leads = no."""
    r, s, d = start(fx, inbound={"stop_keywords": "STOP,کنسل", "start_keywords": "YES",
                                 "help_keywords": "INFO", "stop_scope": "channel",
                                 "create_leads": "no",
                                 "help_reply_fa": "برای راهنمایی با ۰۲۱-۱۲۳۴ تماس بگیرید"})
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "مریم", "lang": "fa",
                             "addresses": {"sms": "+989121234000"}})["id"]
    x = webhook(d, {"from": "09121234000", "text": " كنسل ", "id": "k-1"})  # Arabic kaf
    check(x.status == 200 and x.json["action"] == "opt_out" and "confirmation" not in x.json,
          "كنسل is the configured opt-out, no confirmation with scope channel: %r" % x)
    check(consent_sms(d, cid) is False and marketing(d, cid) == [None] * 4,
          "channel consent withdrawn, categories untouched: %r" % prefs(d, cid))
    e = newest(d, cid, "consent")
    check(e["scope"] == "channel:sms", "scope on the timeline: %r" % e)
    check(confirmations(r) == [], "nothing queued")
    x = webhook(d, {"from": "09121234000", "text": "لغو", "id": "k-2"})
    check(x.json["action"] == "reply", "لغو is not in this list: %r" % x)
    x = webhook(d, {"from": "09121234000", "text": "HELP", "id": "k-3"})
    check(x.json["action"] == "reply", "HELP is not in this list: %r" % x)
    x = webhook(d, {"from": "09121234000", "text": "info", "id": "k-4"})
    check(x.json["action"] == "help" and x.json.get("confirmation"), "INFO is help: %r" % x)
    conf = d.client("viewer").message(x.json["confirmation"])
    check(conf["text"] == "برای راهنمایی با ۰۲۱-۱۲۳۴ تماس بگیرید",
          "the contact's language (fa) picks the Persian reply: %r" % conf)
    check(wait_state(d, conf["id"], ("sent", "suppressed", "failed"))["last_error"] == "opted_out:sms",
          "the channel opt-out suppresses even the help reply")
    x = webhook(d, {"from": "09121234000", "text": "Yes", "id": "k-5"})
    check(x.json["action"] == "opt_in" and consent_sms(d, cid) is True, "YES opts in: %r" % x)
    conf = wait_state(d, x.json["confirmation"], ("sent", "suppressed", "failed"))
    check(conf["state"] == "sent" and conf["text"] == START_FA, "Persian start reply: %r" % conf)

    # unknown sender with create_leads = no: audit only
    n = r.client().zcard("clubd:contacts")
    x = webhook(d, {"from": "09127770000", "text": "STOP", "id": "k-6"})
    check(x.status == 200 and x.json["contact_id"] is None and x.json["action"] == "opt_out",
          "audit only: %r" % x)
    check(r.client().zcard("clubd:contacts") == n, "no lead created")
    ev = r.client().xrange("clubd:inbound")[-1][1]
    check(ev["from"] == "+989127770000" and ev["contact"] == "", "audited: %r" % ev)

    # the lists are reloadable (SIGHUP)
    d.config["inbound"]["stop_keywords"] = "BASTA, بس"
    write_config(d.conf_path, d.config)
    d.signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in d.stderr(), 10, "reloaded")
    x = webhook(d, {"from": "09121234000", "text": "Basta", "id": "k-7"})
    check(x.json["action"] == "opt_out", "reloaded list: %r" % x)
    x = webhook(d, {"from": "09121234000", "text": "STOP", "id": "k-8"})
    check(x.json["action"] == "reply", "STOP is no longer listed: %r" % x)
