"""POST /v1/events through the real clubd: a purchase earns points once even
when replayed with its Idempotency-Key, a contact given by address becomes a
lead, the event shows on the contact's timeline, the thank-you message goes
out through the sink once (consent and age respected), campaign revenue is
attributed from P lc:{cid} inside the window only, and bad input is refused
with 400 and the field."""

import json
import time

from harness import check, parse_time, rfc3339, timeout, wait_state, wait_until

DAY = 86400
PREFIX = "clubd:"


_SPEC = []


def conforms(obj, schema):
    """obj validates against docs/openapi.yaml's components/schemas/<schema>."""
    from test_openapi import Validator, load_spec
    if not _SPEC:
        _SPEC.append(Validator(load_spec()))
    _SPEC[0].validate(obj, {"$ref": "#/components/schemas/" + schema}, schema)
    return obj


def start(fx, sink=True, points=None, events=None):
    r = fx.redis()
    s = fx.sink() if sink else None
    over = {"points": {"earn_points": "1", "earn_amount": "10000"}}
    over["points"].update(points or {})
    if events:
        over["events"] = events
    d = fx.clubd(r, s, overrides=over)
    return r, s, d


def seed_template(r, tid, variants):
    r.client().hset(PREFIX + "tpl:" + tid, mapping={
        "json": json.dumps({"id": tid, "default_lang": "fa", "variants": variants},
                           ensure_ascii=False),
        "v": 1, "updated": int(time.time() * 1000)})


def event(d, body, key=None, role="marketer"):
    h = {"Idempotency-Key": key} if key else None
    x = d.client(role).post("/v1/events", body, headers=h)
    if x.status in (200, 201):
        conforms(x.json, "EventResult")
    elif x.status != 401:
        conforms(x.json, "Error")
    return x


def points(d, cid):
    x = d.client("viewer").get("/v1/contacts/%s/points" % cid)
    check(x.status == 200, "points -> %r" % x)
    return conforms(x.json, "PointsAccount")


def timeline(d, cid):
    x = d.client("viewer").get("/v1/contacts/%s/timeline?limit=100" % cid)
    check(x.status == 200, "timeline -> %r" % x)
    return x.json["items"]


def sink_texts(s):
    out = []
    for mid in s.received_ids():
        reqs = s.requests_for(mid)
        if reqs:
            out.append(reqs[0].body)
    return out


@timeout(60)
def test_purchase_replay_counts_once(fx):
    r, s, d = start(fx, sink=False)
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "سارا", "addresses": {"sms": "09121110001"}})["id"]
    body = {"type": "purchase", "contact_id": cid, "amount": 125000, "currency": "IRR",
            "properties": {"order": "A-7781", "items": [1, 2], "big": 12345678901234567}}
    x = event(d, body, key="order-7781")
    check(x.status == 201, "purchase -> %r" % x)
    a = x.json
    check(a["type"] == "purchase" and a["contact_id"] == cid and a["amount"] == "125000.00"
          and a["currency"] == "IRR", "answer %r" % a)
    check(a["points"]["earned"] == 12 and a["points"]["balance"] == 12, "12 points: %r" % a)
    check(a["properties"] == body["properties"], "properties kept as given: %r" % a["properties"])
    check("replayed" not in a and a["messages"] == [], "no messages configured: %r" % a)

    # the same key again: the original answer, nothing counted twice
    y = event(d, body, key="order-7781")
    check(y.status == 200 and y.json.get("replayed") is True, "replay -> %r" % y)
    check(y.json["id"] == a["id"] and y.json["points"] == a["points"], "same answer %r" % y.json)
    # even with another body: the key wins
    z = event(d, dict(body, amount=999999), key="order-7781")
    check(z.status == 200 and z.json["id"] == a["id"], "key wins -> %r" % z)
    p = points(d, cid)
    check(p["balance"] == 12 and p["lifetime"] == 12, "balance after replays %r" % p)
    check(len(p["history"]) == 1 and p["history"][0]["delta"] == 12
          and p["history"][0]["reason"] == "purchase" and p["history"][0]["ref"] == a["id"],
          "one ledger entry %r" % p["history"])
    # the key is per token: an admin using it records a new event
    w = event(d, body, key="order-7781", role="admin")
    check(w.status == 201 and w.json["id"] != a["id"], "another token -> %r" % w)
    check(points(d, cid)["balance"] == 24, "second event counted")

    # decimals and string amounts; earning rounds down to whole units
    x = event(d, {"type": "purchase", "contact_id": cid, "amount": "19999.99",
                  "currency": "IRR"})
    check(x.status == 201 and x.json["amount"] == "19999.99" and x.json["points"]["earned"] == 1,
          "19999.99 earns 1: %r" % x)
    # a custom event earns nothing, needs no amount
    x = event(d, {"type": "store.visit", "contact_id": cid, "properties": {"branch": "تجریش"}})
    check(x.status == 201 and x.json["points"]["earned"] == 0 and "amount" not in x.json,
          "custom event %r" % x)

    # timeline: events and points in time order, newest first
    tl = timeline(d, cid)
    kinds = [(e["type"], e.get("event") or e.get("reason")) for e in tl]
    check(kinds[0] == ("event", "store.visit"), "newest first: %r" % kinds)
    evs = [e for e in tl if e["type"] == "event"]
    check(len(evs) == 4, "four events on the timeline: %r" % kinds)
    first = evs[-1]
    check(first["event_id"] == a["id"] and first["amount"] == "125000.00"
          and json.loads(first["properties"]) == body["properties"], "event entry %r" % first)
    pts = [e for e in tl if e["type"] == "points"]
    check([e["delta"] for e in pts] == ["1", "12", "12"], "points entries %r" % pts)
    ids = [e["id"] for e in tl]
    check(ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))), reverse=True),
          "time order %r" % ids)
    # last_purchase is the latest purchase time
    lp = int(r.client().hget(PREFIX + "c:" + cid, "last_purchase"))
    check(abs(lp / 1000 - time.time()) < 60, "last_purchase %r" % lp)


@timeout(60)
def test_contact_by_address_and_backdated(fx):
    r, s, d = start(fx, sink=False)
    x = event(d, {"type": "purchase", "contact": {"phone": "۰۹۱۲۳۳۳۴۴۵۵"}, "amount": "50000",
                  "currency": "IRR"})
    check(x.status == 201 and x.json["contact_created"] is True, "by phone -> %r" % x)
    cid = x.json["contact_id"]
    c = d.client("viewer").get("/v1/contacts/" + cid).json
    check(c["addresses"]["sms"] == "+989123334455" and c.get("lead") is True, "a lead %r" % c)
    y = event(d, {"type": "purchase", "contact": {"phone": "+989123334455"}, "amount": 10000,
                  "currency": "IRR", "at": rfc3339(time.time() - 3 * DAY)})
    check(y.status == 201 and y.json["contact_id"] == cid and y.json["contact_created"] is False,
          "same contact -> %r" % y)
    # a backdated purchase does not move last_purchase back
    lp = int(r.client().hget(PREFIX + "c:" + cid, "last_purchase"))
    check(abs(lp / 1000 - time.time()) < 60, "last_purchase kept %r" % lp)
    check(points(d, cid)["balance"] == 6, "5 + 1 points")
    # unknown email -> another lead; a signup by address is not a lead
    z = event(d, {"type": "signup", "contact": {"email": "Reza@Example.COM"}})
    check(z.status == 201 and z.json["contact_created"], "signup by email -> %r" % z)
    c = d.client("viewer").get("/v1/contacts/" + z.json["contact_id"]).json
    check(c["addresses"]["email"] == "reza@example.com" and "lead" not in c, "signup %r" % c)


@timeout(90)
def test_thank_you_once_and_consent(fx):
    r, s, d = start(fx, events={"thank_you_template": "thanks", "thank_you_delay": "0"})
    seed_template(r, "thanks", [
        {"channel": "sms", "lang": "fa",
         "text": "{{first_name|\"مشتری\"}} عزیز، از خرید {{event.amount}} {{event.currency}} ممنونیم"},
        {"channel": "email", "lang": "fa", "subject": "ممنون", "text": "سپاس"}])
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "مریم", "first_name": "مریم",
                             "addresses": {"sms": "09121110002"}})["id"]
    x = event(d, {"type": "purchase", "contact_id": cid, "amount": "125000", "currency": "IRR"},
              key="t-1")
    check(x.status == 201, "purchase -> %r" % x)
    msgs = x.json["messages"]
    check(len(msgs) == 1 and msgs[0]["kind"] == "thank_you" and msgs[0].get("message_id")
          and msgs[0]["channel"] == "sms", "one thank-you %r" % msgs)
    mid = msgs[0]["message_id"]
    m = wait_state(d, mid, ("sent", "failed", "suppressed"))
    check(m["state"] == "sent" and m["category"] == "promotional", "sent %r" % m)
    wait_until(lambda: s.count(mid) >= 1, 10, "the sink got the thank-you")
    body = s.requests_for(mid)[0].body
    check(body["text"] == "مریم عزیز، از خرید 125000 IRR ممنونیم", "rendered %r" % body["text"])
    # replay: the same message, nothing new queued
    y = event(d, {"type": "purchase", "contact_id": cid, "amount": "125000", "currency": "IRR"},
              key="t-1")
    check(y.status == 200 and y.json["messages"][0]["message_id"] == mid, "replay %r" % y.json)
    time.sleep(0.5)
    check(s.unique() == 1 and s.count(mid) == 1, "one thank-you at the sink: %r" % s.stats())

    # a delay: due at + delay
    d2 = fx.clubd(r, None, name="b", overrides={
        "events": {"thank_you_template": "thanks", "thank_you_delay": "2h"},
        "sched": {"message_ttl": "1d"}})
    at = time.time() - 600
    x = event(d2, {"type": "purchase", "contact_id": cid, "amount": 1, "currency": "EUR",
                   "at": rfc3339(at)})
    check(x.status == 201, "delayed -> %r" % x)
    m = d2.client("viewer").message(x.json["messages"][0]["message_id"])
    due = parse_time(m["due_at"])
    check(m["state"] == "scheduled" and abs(due - (at + 7200)) < 2, "due at+2h: %r" % m)
    # too old to thank: skipped
    x = event(d2, {"type": "purchase", "contact_id": cid, "amount": 1, "currency": "EUR",
                   "at": rfc3339(time.time() - 400 * DAY)})
    check(x.status == 201 and x.json["messages"][0].get("skipped") == "too_old", "old %r" % x.json)

    # promotional consent withdrawn: nothing queued, the reason is given
    c2 = mk.create_contact({"name": "Ali", "addresses": {"sms": "09121110003"},
                            "preferences": {"categories": {"promotional": False}}})["id"]
    x = event(d, {"type": "purchase", "contact_id": c2, "amount": 5, "currency": "IRR"})
    check(x.status == 201 and x.json["messages"][0].get("skipped")
          == "category_opt_out:promotional", "consent %r" % x.json)
    # no address the template has a variant for: chat only
    c3 = mk.create_contact({"name": "Chat", "addresses": {"chat": "123456789"}})["id"]
    x = event(d, {"type": "purchase", "contact_id": c3, "amount": 5, "currency": "IRR"})
    check(x.status == 201 and x.json["messages"][0].get("skipped") == "no_variant",
          "no variant %r" % x.json)
    # a custom event gets no thank-you
    x = event(d, {"type": "review", "contact_id": cid})
    check(x.status == 201 and x.json["messages"] == [], "review %r" % x.json)


@timeout(60)
def test_campaign_attribution(fx):
    r, s, d = start(fx, sink=False)
    mk = d.client("marketer")
    rc = r.client()
    inside = mk.create_contact({"name": "In", "addresses": {"sms": "09121110010"}})["id"]
    outside = mk.create_contact({"name": "Out", "addresses": {"sms": "09121110011"}})["id"]
    control = mk.create_contact({"name": "Ctl", "addresses": {"sms": "09121110012"}})["id"]
    now = int(time.time() * 1000)
    rc.hset(PREFIX + "lc:" + inside, mapping={"camp": "yalda", "var": "A", "msg": "M" * 26,
                                               "at": now - 3600 * 1000, "win": 7200 * 1000})
    rc.hset(PREFIX + "lc:" + outside, mapping={"camp": "yalda", "var": "B", "msg": "N" * 26,
                                                "at": now - 3 * 3600 * 1000, "win": 7200 * 1000})
    rc.hset(PREFIX + "lc:" + control, mapping={"camp": "yalda", "var": "control", "msg": "",
                                                "at": now - 60 * 1000, "win": 7200 * 1000})

    x = event(d, {"type": "purchase", "contact_id": inside, "amount": "125000.50",
                  "currency": "IRR"})
    check(x.status == 201 and x.json["attribution"] == {"campaign": "yalda", "variant": "A",
                                                        "message_id": "M" * 26},
          "attributed %r" % x.json)
    x = event(d, {"type": "purchase", "contact_id": outside, "amount": 70000, "currency": "IRR"})
    check(x.status == 201 and x.json["attribution"] is None, "outside the window %r" % x.json)
    x = event(d, {"type": "purchase", "contact_id": control, "amount": 3000, "currency": "IRR"})
    check(x.json["attribution"] == {"campaign": "yalda", "variant": "control",
                                    "message_id": None}, "control %r" % x.json)
    # a purchase that happened before the touch is not the campaign's
    x = event(d, {"type": "purchase", "contact_id": inside, "amount": 1, "currency": "IRR",
                  "at": rfc3339(time.time() - 2 * 3600)})
    check(x.json["attribution"] is None, "before the touch %r" % x.json)
    # only purchases count
    event(d, {"type": "signup", "contact_id": inside})

    cs = rc.hgetall(PREFIX + "cs:yalda")
    check(cs == {"purchases": "2", "revenue_c": "12800050", "A:purchases": "1",
                 "A:revenue_c": "12500050", "control:purchases": "1",
                 "control:revenue_c": "300000"}, "counters %r" % cs)
    ev = [e for e in timeline(d, inside) if e["type"] == "event" and e["event"] == "purchase"]
    check(ev[-1].get("camp") == "yalda" and ev[-1].get("var") == "A"
          and ev[-1].get("m") == "M" * 26, "timeline names the campaign %r" % ev[-1])
    check("camp" not in ev[0], "the unattributed one does not %r" % ev[0])


@timeout(60)
def test_bad_input(fx):
    r, s, d = start(fx, sink=False)
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "X", "addresses": {"sms": "09121110020"}})["id"]
    good = {"type": "purchase", "contact_id": cid, "amount": 100, "currency": "IRR"}
    cases = [
        (dict(good, amount=10000000000000), "amount"),
        (dict(good, amount="1000000000000.01"), "amount"),
        (dict(good, amount=12.505), "amount"),
        (dict(good, amount="12.505"), "amount"),
        (dict(good, amount=0), "amount"),
        (dict(good, amount=-5), "amount"),
        (dict(good, amount="12,5"), "amount"),
        (dict(good, amount=True), "amount"),
        ({"type": "purchase", "contact_id": cid, "currency": "IRR"}, "amount"),
        (dict(good, currency="rial"), "currency"),
        (dict(good, currency="IR"), "currency"),
        ({"type": "purchase", "contact_id": cid, "amount": 100}, "currency"),
        ({"type": "visit", "contact_id": cid, "currency": "IRR"}, "amount"),
        (dict(good, type="buy\r\nX-Evil: 1"), "type"),
        (dict(good, type="Purchase"), "type"),
        (dict(good, type="x" * 41), "type"),
        (dict(good, type=""), "type"),
        ({"contact_id": cid}, "type"),
        (dict(good, contact={"phone": "09121110020"}), "contact"),
        ({"type": "visit"}, "contact_id"),
        ({"type": "visit", "contact": {"phone": "12"}}, "contact.phone"),
        ({"type": "visit", "contact": {"fax": "1"}}, "contact"),
        ({"type": "visit", "contact": {"phone": "09121110020", "email": "a@b.co"}}, "contact"),
        (dict(good, at="yesterday"), "at"),
        (dict(good, at=rfc3339(time.time() + 2 * 3600)), "at"),
        (dict(good, at="1999-12-31T00:00:00Z"), "at"),
        (dict(good, properties=[1, 2]), "properties"),
        (dict(good, properties={"x": "y" * 5000}), "properties"),
        (dict(good, referral_code="ABCD2345"), "referral_code"),
        ({"type": "signup", "contact_id": cid, "referral_code": "O0I1L"}, "referral_code"),
        ({"type": "signup", "contact_id": cid, "referral_code": "ABCD2345"}, "referral_code"),
        (dict(good, extra=1), "extra"),
    ]
    for body, field in cases:
        x = event(d, body)
        check(x.status == 400 and x.err_field() == field,
              "%s -> %r (want 400 %s)" % (json.dumps(body, ensure_ascii=False)[:120], x, field))
    x = event(d, good, key="bad key")
    check(x.status == 400 and x.err_field() == "Idempotency-Key", "bad key -> %r" % x)
    x = event(d, dict(good, contact_id="0" * 26))
    check(x.status == 404 and x.err_field() == "contact_id", "unknown contact -> %r" % x)
    x = event(d, good, role="viewer")
    check(x.status == 403, "viewer -> %r" % x)
    x = d.client(None).post("/v1/events", good)
    check(x.status == 401, "no token -> %r" % x)
    # nothing was recorded by the refused requests
    check(points(d, cid)["balance"] == 0 and timeline(d, cid) == [], "nothing recorded")
    x = event(d, good)
    check(x.status == 201, "the good one -> %r" % x)
    check(r.client().hget(PREFIX + "stats", "events") == "1", "one event counted")
