"""Points, tiers and referrals through the real clubd: points earned for a
backdated purchase expire at once (lazy FIFO expiry, also on a plain read
with a tiny expire_after), spending takes what expires first and answers 409
when short, a spend replay with its key changes nothing, a promotion queues
exactly one tier message (the sink sees one), an admin adjustment can
promote too, and a referral code credits the referrer and the new contact
once; unknown and own codes are refused."""

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


def start(fx, sink=True, points=None, referrals=None):
    r = fx.redis()
    s = fx.sink() if sink else None
    over = {"points": {"earn_points": "1", "earn_amount": "10000"}}
    over["points"].update(points or {})
    if referrals:
        over["referrals"] = referrals
    d = fx.clubd(r, s, overrides=over)
    return r, s, d


def seed_template(r, tid, text):
    r.client().hset(PREFIX + "tpl:" + tid, mapping={
        "json": json.dumps({"id": tid, "default_lang": "fa",
                            "variants": [{"channel": "any", "lang": "fa", "text": text}]},
                           ensure_ascii=False),
        "v": 1, "updated": int(time.time() * 1000)})


def event(d, body, key=None, role="marketer"):
    h = {"Idempotency-Key": key} if key else None
    x = d.client(role).post("/v1/events", body, headers=h)
    if x.status in (200, 201):
        conforms(x.json, "EventResult")
    return x


def purchase(d, cid, amount, at=None, key=None):
    b = {"type": "purchase", "contact_id": cid, "amount": amount, "currency": "IRR"}
    if at is not None:
        b["at"] = rfc3339(at)
    x = event(d, b, key=key)
    check(x.status in (200, 201), "purchase -> %r" % x)
    return x.json


def points(d, cid, **q):
    path = "/v1/contacts/%s/points" % cid
    if q:
        path += "?" + "&".join("%s=%s" % kv for kv in q.items())
    x = d.client("viewer").get(path)
    check(x.status == 200, "points -> %r" % x)
    return conforms(x.json, "PointsAccount")


def spend(d, cid, n, reason="gift", key=None, role="marketer", **extra):
    body = dict({"points": n, "reason": reason}, **extra)
    h = {"Idempotency-Key": key} if key else None
    x = d.client(role).post("/v1/contacts/%s/points/spend" % cid, body, headers=h)
    conforms(x.json, "PointsChangeResult" if x.status == 200 else "Error")
    return x


def timeline(d, cid):
    x = d.client("viewer").get("/v1/contacts/%s/timeline?limit=200" % cid)
    check(x.status == 200, "timeline -> %r" % x)
    return x.json["items"]


@timeout(60)
def test_expiry_and_spending(fx):
    r, s, d = start(fx, sink=False, points={"expire_after": "365d"})
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "Nima", "addresses": {"sms": "09121112001"}})["id"]
    # earned 400 days ago: expired at day 365, applied as soon as the ledger is touched
    a = purchase(d, cid, 125000, at=time.time() - 400 * DAY)
    check(a["points"]["earned"] == 12 and a["points"]["balance"] == 0
          and a["points"]["lifetime"] == 12, "earned and expired %r" % a["points"])
    p = points(d, cid)
    hist = [(h["reason"], h["delta"], h["balance"]) for h in p["history"]]
    check(hist == [("expire", -12, 0), ("purchase", 12, 12)], "ledger %r" % hist)
    earn = p["history"][1]
    check(abs(parse_time(earn["expires_at"]) - parse_time(earn["at"]) - 365 * DAY) < 1,
          "expires a year after the purchase %r" % earn)
    check(p["history"][0]["at"] == earn["expires_at"], "expired at its expiry %r" % p["history"])

    # two live lots: 300 days old (expires in 65 days) and today's
    purchase(d, cid, 100000, at=time.time() - 300 * DAY)  # 10
    purchase(d, cid, 100000)  # 10
    p = points(d, cid)
    check(p["balance"] == 20 and len(p["expiring"]) == 2, "two lots %r" % p)
    check(p["expiring"][0]["points"] == 10 and
          parse_time(p["expiring"][0]["at"]) < parse_time(p["expiring"][1]["at"]),
          "soonest first %r" % p["expiring"])

    x = spend(d, cid, 21)
    check(x.status == 409 and x.err_code() == "insufficient_points" and x.err_field() == "points",
          "short -> %r" % x)
    check(points(d, cid)["balance"] == 20, "a refused spend changes nothing")
    # 15: all of the lot that expires first, 5 of today's
    x = spend(d, cid, 15, reason="کارت هدیه", key="redeem-1", ref="POS-9")
    check(x.status == 200 and x.json["balance"] == 5 and x.json["delta"] == -15, "spend %r" % x)
    y = spend(d, cid, 15, reason="کارت هدیه", key="redeem-1", ref="POS-9")
    check(y.status == 200 and y.json.get("replayed") is True and y.json["entry"] == x.json["entry"],
          "replay %r" % y)
    p = points(d, cid)
    check(p["balance"] == 5 and len(p["expiring"]) == 1 and p["expiring"][0]["points"] == 5,
          "what expires first was spent first %r" % p)
    top = p["history"][0]
    check(top["reason"] == "spend" and top["note"] == "کارت هدیه" and top["ref"] == "POS-9"
          and top["by"] == "test-marketer" and top["delta"] == -15, "spend entry %r" % top)
    # the key in the body works the same
    x = spend(d, cid, 5, idempotency_key="redeem-2")
    y = spend(d, cid, 5, idempotency_key="redeem-2")
    check(x.status == 200 and y.status == 200 and y.json.get("replayed"), "body key %r %r" % (x, y))
    check(points(d, cid)["balance"] == 0, "balance 0")
    # bad input
    for body, field in (({"points": 0}, "points"), ({"points": -3}, "points"),
                        ({"points": 1.5}, "points"), ({"reason": "x"}, "points"),
                        ({"points": 1, "reason": "a\nb"}, "reason"),
                        ({"points": 1, "bogus": 1}, "bogus")):
        x = d.client("marketer").post("/v1/contacts/%s/points/spend" % cid, body)
        check(x.status == 400 and x.err_field() == field, "%r -> %r" % (body, x))
    x = spend(d, "0" * 26, 1)
    check(x.status == 404, "unknown contact -> %r" % x)
    x = spend(d, cid, 1, role="viewer")
    check(x.status == 403, "viewer -> %r" % x)
    # history pages
    p1 = points(d, cid, limit=2)
    check(len(p1["history"]) == 2 and p1["next_cursor"], "page 1 %r" % p1)
    p2 = points(d, cid, limit=2, cursor=p1["next_cursor"])
    sid = lambda e: tuple(map(int, e["id"].split("-")))  # noqa: E731
    check(p2["history"] and sid(p2["history"][0]) < sid(p1["history"][1]),
          "page 2 is older: %r then %r" % (p1["history"], p2["history"]))
    # the timeline shows points entries
    tl = [e for e in timeline(d, cid) if e["type"] == "points"]
    check(any(e["reason"] == "expire" for e in tl) and any(e["reason"] == "spend" for e in tl),
          "points on the timeline %r" % tl)


@timeout(60)
def test_expiry_on_read(fx):
    # 6 s: long enough that the reads right after the purchase still see the
    # points on a loaded machine
    r, s, d = start(fx, sink=False, points={"expire_after": "6s"})
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "Tara", "addresses": {"sms": "09121112002"}})["id"]
    check(purchase(d, cid, 50000)["points"]["balance"] == 5, "5 points now")
    check(points(d, cid)["balance"] == 5, "still 5")
    # a plain read applies the expiry once the lot's time has come
    wait_until(lambda: points(d, cid)["balance"] == 0, 20, "the points to expire on read")
    p = points(d, cid)
    check(p["history"][0]["reason"] == "expire" and p["lifetime"] == 5, "expired %r" % p)
    check(r.client().hget(PREFIX + "c:" + cid, "points") == "0", "the contact hash follows")
    x = spend(d, cid, 1)
    check(x.status == 409, "nothing left to spend -> %r" % x)


@timeout(90)
def test_tier_change_queues_one_message(fx):
    r, s, d = start(fx, points={"tiers": "برنزی:0, silver:20, gold:100",
                                "tier_template": "tier-up", "expire_after": "0"})
    seed_template(r, "tier-up", "تبریک! سطح شما اکنون {{event.to}} است ({{points}} امتیاز)")
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "Sina", "addresses": {"sms": "09121112003"}})["id"]
    a = purchase(d, cid, 120000)  # 12: the base tier, no message
    check(a["points"]["tier"] == "برنزی" and a["points"]["tier_change"]["direction"] == "initial"
          and a["messages"] == [], "base tier without a message %r" % a)
    b = purchase(d, cid, 120000, key="k-2")  # 24: silver
    check(b["points"]["tier"] == "silver" and b["points"]["tier_change"] ==
          {"from": "برنزی", "to": "silver", "direction": "up"}, "silver %r" % b["points"])
    check(len(b["messages"]) == 1 and b["messages"][0]["kind"] == "tier"
          and b["messages"][0].get("message_id"), "one tier message %r" % b["messages"])
    mid = b["messages"][0]["message_id"]
    m = wait_state(d, mid, ("sent", "failed", "suppressed"))
    check(m["state"] == "sent", "sent %r" % m)
    wait_until(lambda: s.count(mid) == 1, 10, "the sink got the tier message")
    check(s.requests_for(mid)[0].body["text"] == "تبریک! سطح شما اکنون silver است (24 امتیاز)",
          "text %r" % s.requests_for(mid)[0].body["text"])
    # a replay and more purchases inside the tier: no new message
    c = purchase(d, cid, 120000, key="k-2")
    check(c["messages"][0]["message_id"] == mid, "replay names the same message %r" % c)
    purchase(d, cid, 10000)
    time.sleep(0.5)
    check(s.unique() == 1, "exactly one tier message: %r" % s.stats())
    p = points(d, cid)
    check(p["tier"] == "silver" and p["next_tier"] == {"name": "gold", "threshold": 100,
                                                       "points_needed": 75}, "next tier %r" % p)
    # spending never demotes
    check(spend(d, cid, 20).status == 200, "spend")
    check(points(d, cid)["tier"] == "silver", "still silver")
    # an admin adjustment promotes (and queues); a marketer may not adjust
    x = d.client("marketer").post("/v1/contacts/%s/points/adjust" % cid,
                                  {"points": 100, "reason": "جبران"})
    check(x.status == 403, "marketer adjust -> %r" % x)
    x = d.client("admin").post("/v1/contacts/%s/points/adjust" % cid, {"points": 100})
    check(x.status == 400 and x.err_field() == "reason", "adjust needs a reason -> %r" % x)
    x = d.client("admin").post("/v1/contacts/%s/points/adjust" % cid,
                               {"points": 100, "reason": "جبران تاخیر"})
    check(x.status == 200 and x.json["tier"] == "gold" and len(x.json["messages"]) == 1,
          "gold %r" % x)
    conforms(x.json, "PointsChangeResult")
    wait_until(lambda: s.unique() == 2, 10, "the gold message at the sink")
    # a correction demotes without a message
    x = d.client("admin").post("/v1/contacts/%s/points/adjust" % cid,
                               {"points": -100, "reason": "اصلاح"})
    check(x.status == 200 and x.json["tier"] == "silver" and x.json["messages"] == []
          and x.json["tier_change"]["direction"] == "down", "correction %r" % x.json)
    tiers = [(e["from"], e["to"], e["direction"]) for e in timeline(d, cid) if e["type"] == "tier"]
    check(tiers == [("gold", "silver", "down"), ("silver", "gold", "up"),
                    ("برنزی", "silver", "up"), ("", "برنزی", "initial")], "tier entries %r" % tiers)
    time.sleep(0.5)
    check(s.unique() == 2 and s.duplicates() == 0, "two tier messages in all: %r" % s.stats())


@timeout(60)
def test_referral_credit_once(fx):
    r, s, d = start(fx, sink=False, points={"signup_points": "10", "expire_after": "0"},
                    referrals={"referrer_points": "50", "referee_points": "20"})
    mk = d.client("marketer")
    rc = r.client()
    referrer = mk.create_contact({"name": "Ava", "addresses": {"sms": "09121112010"}})["id"]
    x = d.client("viewer").get("/v1/contacts/%s/referral" % referrer)
    check(x.status == 200 and x.json["created"] is True and len(x.json["code"]) == 8, "code %r" % x)
    conforms(x.json, "ReferralCode")
    code = x.json["code"]
    check(all(ch in "23456789ABCDEFGHJKMNPQRSTUVWXYZ" for ch in code), "alphabet %r" % code)
    y = d.client("viewer").get("/v1/contacts/%s/referral" % referrer)
    check(y.json == {"contact_id": referrer, "code": code, "created": False}, "same code %r" % y)
    check(rc.get(PREFIX + "ref:" + code) == referrer, "code index")
    check(d.client("viewer").get("/v1/contacts/%s/referral" % ("0" * 26)).status == 404, "404")

    # a new contact signs up with the code, typed loosely
    typed = code[:4].lower() + "-" + code[4:]
    a = event(d, {"type": "signup", "contact": {"phone": "09121112011"}, "referral_code": typed},
              key="su-1")
    check(a.status == 201, "signup -> %r" % a)
    ref = a.json["referral"]
    check(ref["credited"] is True and ref["referrer_id"] == referrer and ref["code"] == code
          and ref["referrer_points"] == 50 and ref["referee_points"] == 20, "credit %r" % ref)
    newc = a.json["contact_id"]
    check(a.json["points"]["earned"] == 30 and a.json["points"]["balance"] == 30, "10 + 20")
    check(points(d, referrer)["balance"] == 50, "referrer 50")
    check(rc.hget(PREFIX + "c:" + newc, "referred_by") == referrer, "referred_by")
    check(rc.hget(PREFIX + "c:" + referrer, "referrals") == "1", "referrals counter")
    # the replay, and a second signup of the same person: no second credit
    b = event(d, {"type": "signup", "contact": {"phone": "09121112011"}, "referral_code": code},
              key="su-1")
    check(b.status == 200 and b.json["referral"] == a.json["referral"], "replay %r" % b)
    c = event(d, {"type": "signup", "contact_id": newc, "referral_code": code})
    check(c.status == 201 and c.json["referral"]["credited"] is False
          and c.json["referral"]["reason"] == "already_signed_up"
          and c.json["points"]["earned"] == 0, "second signup %r" % c.json)
    check(points(d, referrer)["balance"] == 50 and points(d, newc)["balance"] == 30,
          "credited once")
    # both timelines tell
    tr = [e for e in timeline(d, referrer) if e["type"] == "referral"]
    te = [e for e in timeline(d, newc) if e["type"] == "referral"]
    check(len(tr) == 1 and tr[0]["role"] == "referrer" and tr[0]["referee"] == newc
          and tr[0]["points"] == "50", "referrer timeline %r" % tr)
    check(len(te) == 1 and te[0]["role"] == "referee" and te[0]["referrer"] == referrer,
          "referee timeline %r" % te)

    # own code, unknown code: 400 referral_code, nothing written
    x = event(d, {"type": "signup", "contact_id": referrer, "referral_code": code})
    check(x.status == 400 and x.err_field() == "referral_code" and "own" in x.json["error"]["message"],
          "self-referral -> %r" % x)
    x = event(d, {"type": "signup", "contact": {"phone": "09121112012"},
                  "referral_code": "2345ABCD" if code != "2345ABCD" else "2345ABCE"})
    check(x.status == 400 and x.err_field() == "referral_code", "unknown code -> %r" % x)
    check(rc.get(PREFIX + "ix:sms:+989121112012") is None, "no contact made for a refused event")
    check(points(d, referrer)["balance"] == 50, "unchanged")


@timeout(60)
def test_clubctl_events_and_points(fx):
    from test_clubctl import Ctl
    r, s, d = start(fx, sink=False, points={"tiers": "bronze:0, silver:10"})
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "Leila", "addresses": {"sms": "09121112030"}})["id"]
    ctl = Ctl(fx, d.port, role="marketer")
    x = ctl.run("events", "post", "--type", "purchase", "--contact", cid, "--amount", "۱۲۵۰۰۰",
                "--currency", "IRR", "--prop", "branch=تجریش", "--prop", "items:=3",
                "--idempotency-key", "pos-1", want=0)
    check("+12, balance 12" in x.out and "silver (up from none)" in x.out, "human %r" % x)
    y = ctl.run("--json", "events", "post", "--type", "purchase", "--contact", cid, "--amount",
                "125000", "--currency", "IRR", "--idempotency-key", "pos-1", want=0)
    e = conforms(y.json(), "EventResult")
    check(e["replayed"] is True and e["properties"] == {"branch": "تجریش", "items": 3},
          "replay %r" % e)
    x = ctl.run("points", "show", cid, want=0)
    check("balance" in x.out and " 12" in x.out and "purchase" in x.out, "show %r" % x)
    j = conforms(ctl.run("--json", "points", "show", cid, want=0).json(), "PointsAccount")
    check(j["balance"] == 12 and j["tier"] == "silver", "json show %r" % j)
    x = ctl.run("points", "spend", cid, "100", "--reason", "x", want=1)
    check("balance is 12" in x.err, "insufficient %r" % x)
    x = ctl.run("points", "spend", cid, "۵", "--reason", "هدیه", want=0)
    check("spent 5 points; balance 7" in x.out, "spent %r" % x)
    check(len(ctl.run("points", "referral", cid, want=0).out.strip()) == 8, "referral code")
    ctl.run("points", "adjust", cid, "5", "--reason", "x", want=1)  # marketer: 403
    x = ctl.run("points", "adjust", cid, "--reason", "اصلاح", "--", "-2", role="admin", want=0)
    check("took 2 points; balance 5" in x.out, "adjust %r" % x)
    ctl.run("events", "post", "--contact", cid, want=2)
    ctl.run("events", "post", "--type", "x", want=2)
    ctl.run("points", "spend", cid, "0", want=2)
    ctl.assert_no_token()
