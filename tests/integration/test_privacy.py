"""Privacy through the real clubd (docs/privacy.md).

Erasure: a contact with messages (by id and by address, with an idempotency
key), a campaign touch and an attributed reply, an opt-out keyword and its
confirmation, points and a referral code, a referrer, tags and a timeline is
exported (everything is in the document) and then erased with DELETE
/v1/contacts/{id}?erase=true; a SCAN over every key then proves that no key
name and no value (strings, hash fields and values, set and zset members,
list items, stream entries) holds the contact's id, phone, email, chat id,
name or reply text, while another contact is untouched and the campaign's
counters remain.

At rest: with [privacy] key_file, KEYS and every value hold no phone, email,
name or reply text in clear, yet the API shows them, a reply by phone (local
form) still finds its contact, a message to an address finds the contact,
and the sink gets the real number.

Rotation: a database written without a key is sealed with `clubd
--rotate-key none K1`, rotated to K2 (a second run changes nothing, a wrong
OLD key is reported), served by clubd with K2, and opened back with K2 ->
none.
"""

import hashlib
import hmac
import json
import os
import subprocess
import urllib.parse
import time

from harness import CLUBD, Client, check, rfc3339, timeout, wait_state, wait_until, write_config

P = "clubd:"
SECRET = "callback-secret-for-tests-0123456789"
PHONE = "+989121234567"
PHONE_LOCAL = "09121234567"
EMAIL = "sara.privacy@example.com"
CHAT = "80004217793"
NAME = "Sara Ahmadi-Privacy"
FIRST = "سارا"
REPLY = "privacy-reply-text-7731 ممنون"

OTHER_PHONE = "+989351112233"


SURVEY_ANSWER = "Because of the friendly staff at the Tajrish shop"


def kannel(d, frm, text, mid):
    k = hmac.new(SECRET.encode(), b"inbound:kannel", hashlib.sha256).hexdigest()[:32]
    q = {"k": k, "from": frm, "to": "30001234", "text": text, "ts": "2026-11-23 10:05",
         "id": mid}
    x = Client(d.port).request("GET", "/v1/inbound/kannel?" + urllib.parse.urlencode(q),
                               token=None)
    check(x.status == 200, "kannel MO -> %r" % x)


def start(fx, key_file=None, sink=True):
    with open(os.path.join(fx.tmp, "cb-secret"), "w") as f:
        f.write(SECRET + "\n")
    os.chmod(os.path.join(fx.tmp, "cb-secret"), 0o600)
    r = fx.redis()
    s = fx.sink() if sink else None
    ov = {"api": {"callback_secret_file": os.path.join(fx.tmp, "cb-secret")},
          "points": {"earn_points": "1", "earn_amount": "10000"},
          "referrals": {"referrer_points": "50", "referee_points": "20"},
          "links": {"base_url": "https://go.example"}}
    if key_file:
        ov["privacy"] = {"key_file": key_file}
    return r, s, fx.clubd(r, s, overrides=ov)


def key_file(fx, name, hexkey):
    path = os.path.join(fx.tmp, name)
    with open(path, "w") as f:
        f.write(hexkey + "\n")
    os.chmod(path, 0o600)
    return path


def everything(r):
    """Every key and every value in the store as (key, text) pairs, bytes decoded
    leniently: key names, strings, hash fields and values, set and zset members,
    list items, stream ids and fields."""
    import redis as redislib
    rc = redislib.Redis(host="127.0.0.1", port=r.port, decode_responses=False)
    out = []

    def t(b):
        return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)

    for k in rc.scan_iter(match=b"*", count=1000):
        name = t(k)
        out.append((name, name))
        typ = t(rc.type(k))
        if typ == "string":
            out.append((name, t(rc.get(k))))
        elif typ == "hash":
            for f, v in rc.hgetall(k).items():
                out.append((name, t(f)))
                out.append((name, t(v)))
        elif typ == "set":
            out.extend((name, t(m)) for m in rc.smembers(k))
        elif typ == "zset":
            out.extend((name, t(m)) for m, _ in rc.zrange(k, 0, -1, withscores=True))
        elif typ == "list":
            out.extend((name, t(v)) for v in rc.lrange(k, 0, -1))
        elif typ == "stream":
            for eid, fields in rc.xrange(k, "-", "+"):
                out.append((name, t(eid)))
                for f, v in fields.items():
                    out.append((name, t(f)))
                    out.append((name, t(v)))
    rc.close()
    return out


def found(r, needles):
    hits = []
    for key, text in everything(r):
        for n in needles:
            if n in text:
                hits.append((key, n, text[:120]))
    return hits


def timeline(d, cid):
    x = d.client("viewer").get("/v1/contacts/%s/timeline?limit=500" % cid)
    check(x.status == 200, "timeline -> %r" % x)
    return x.json["items"]


def sink_to(s):
    with s._lock:
        return [r.body.get("to") for v in s.log.values() for r in v]


def sink_texts(s):
    with s._lock:
        return [r.body.get("text") for v in s.log.values() for r in v]


@timeout(150)
def test_export_then_erase_leaves_nothing(fx):
    r, s, d = start(fx)
    mk, ad = d.client("marketer"), d.client("admin")
    rc = r.client()

    # another person, who refers ours and must survive the erasure
    other = mk.create_contact({"name": "Other Person", "tags": ["vip"],
                               "addresses": {"sms": OTHER_PHONE}})["id"]
    x = d.client("viewer").get("/v1/contacts/%s/referral" % other)
    check(x.status == 200, "referral code -> %r" % x)
    code = x.json["code"]
    cid = mk.create_contact({"name": NAME, "first_name": FIRST, "lang": "fa", "tags": ["vip"],
                             "attrs": {"birthday": "1990-05-17"},
                             "addresses": {"sms": PHONE, "email": EMAIL, "chat": CHAT}})["id"]
    x = mk.post("/v1/events", {"type": "signup", "contact_id": cid, "referral_code": code})
    check(x.status == 201 and x.json["referral"]["credited"], "referred signup -> %r" % x)
    check(d.client("viewer").get("/v1/contacts/%s/referral" % cid).status == 200, "own code")

    # a campaign to the tag: both get a message, ours gets the last touch
    t = mk.post("/v1/templates", {"id": "hello", "name": "hello", "default_lang": "fa",
                                  "variants": [{"channel": "any", "lang": "fa",
                                                "text": "Club news for members"}]})
    check(t.status == 201, "template -> %r" % t)
    c = mk.post("/v1/campaigns", {"name": "news", "segment": {"tags": {"any": ["vip"]}},
                                  "template": "hello", "channel": "sms",
                                  "attribution_window": "7d"})
    check(c.status == 201, "campaign -> %r" % c)
    camp = c.json["id"]
    check(mk.post("/v1/campaigns/%s/launch" % camp).status == 200, "launch")
    wait_until(lambda: rc.hget(P + "lc:" + cid, "msg") and
               (rc.hget(P + "cs:" + camp, "sent") or "0") == "2", 30, "campaign sent to both")

    # messages: by id, by address (with an idempotency key naming the contact)
    m1 = mk.send({"contact_id": cid, "channel": "sms", "category": "transactional",
                  "text": "Your code is 4711"})
    m2 = mk.send({"to": EMAIL, "channel": "email", "category": "transactional",
                  "subject": "Receipt", "text": "Receipt"},
                 headers={"Idempotency-Key": "receipt-" + cid})
    check(m2["contact_id"] == cid, "a message to the address found the contact %r" % m2)
    wait_state(d, m1["id"], "sent", 15)
    wait_state(d, m2["id"], "sent", 15)

    # a tracked link made for the contact, a survey with a free-text answer
    x = mk.post("/v1/links", {"url": "https://shop.example/yalda", "contact_id": cid,
                              "campaign": camp})
    check(x.status == 201, "link -> %r" % x)
    sv = mk.post("/v1/surveys", {"id": "pv", "name": "pv", "lang": "fa", "ttl": "1h",
                                 "questions": [{"id": "why", "type": "text",
                                                "text": "چرا؟"}]})
    check(sv.status == 201, "survey -> %r" % sv)
    x = mk.post("/v1/surveys/pv/launch", {"segment": {"tags": {"any": ["vip"]}},
                                          "channel": "sms"})
    check(x.status == 200 and x.json["sent"] >= 1, "survey launch -> %r" % x)
    kannel(d, PHONE_LOCAL, SURVEY_ANSWER, "mo-sv")
    wait_until(lambda: rc.hget(P + "svs:pv", "completed") == "1", 15, "the survey answered")
    # an entry in a raffle not yet drawn (with a single-use code)
    now = time.time()
    x = mk.post("/v1/raffles", {"id": "pr", "name": "قرعه‌کشی", "prize": "سفر",
                                "starts_at": rfc3339(now - 60), "ends_at": rfc3339(now + 3600),
                                "methods": ["code"], "codes": ["QZ77"], "winners": 1})
    check(x.status == 201, "raffle -> %r" % x)
    x = mk.post("/v1/raffles/pr/entries", {"contact_id": cid, "method": "code", "code": "QZ77"})
    check(x.status in (200, 201), "raffle entry -> %r" % x)
    # a reply (attributed to the campaign), then an opt-out with its confirmation; the desk
    # held back (its cursor far ahead), so the reply still waits in the desk's inbox
    rc.set(P + "desk:incur", "9999999999999-0")
    kannel(d, PHONE_LOCAL, REPLY, "mo-1")
    check([f for _, f in rc.xrange(P + "deskin") if f.get("contact") == cid],
          "the reply waits in the desk's inbox")
    kannel(d, PHONE_LOCAL, "STOP", "mo-2")
    wait_until(lambda: [m for m in rc.keys(P + "m:*") if rc.hget(m, "kw") == "opt_out"], 15,
               "the opt-out confirmation")
    check(rc.hget(P + "cs:" + camp, "replies") == "1", "reply attributed to the campaign")
    # points
    x = mk.post("/v1/events", {"type": "purchase", "contact_id": cid, "amount": 250000,
                               "currency": "IRR"})
    check(x.status == 201, "purchase -> %r" % x)
    check(any(e.get("type") == "reply" and e.get("text") == REPLY for e in timeline(d, cid)),
          "the reply is on the timeline")

    # export: everything in one document
    x = ad.get("/v1/contacts/%s/export" % cid)
    check(x.status == 200, "export -> %r" % x)
    doc = x.json
    from test_openapi import Validator, load_spec
    Validator(load_spec()).validate(doc, {"$ref": "#/components/schemas/ContactExport"},
                                    "ContactExport")
    check(doc["contact"]["name"] == NAME and doc["contact"]["first_name"] == FIRST, "names")
    check(doc["contact"]["addresses"] == {"sms": PHONE, "email": EMAIL, "chat": CHAT},
          "addresses %r" % doc["contact"]["addresses"])
    check(doc["tags"] == ["vip"] and doc["record"]["referred_by"] == other, "record")
    mids = {m["id"] for m in doc["messages"]}
    check({m1["id"], m2["id"]} <= mids and len(mids) >= 4,
          "messages: direct, by address, campaign, confirmation: %r" % mids)
    check(any(m.get("to") == EMAIL for m in doc["messages"]), "message addresses")
    check(any(e.get("text") == REPLY for e in doc["inbound"]) and len(doc["inbound"]) == 3,
          "the raw inbound audit entries %r" % doc["inbound"])
    check(any(e.get("type") == "reply" and e.get("text") == REPLY for e in doc["timeline"]),
          "timeline in the export")
    check(doc["last_campaign_touch"]["camp"] == camp, "campaign touch")
    eng = {(e["what"], e["id"]) for e in doc["engagement"]}
    check({("sent", camp), ("replied", camp)} <= eng, "engagement %r" % eng)
    check([e for e in doc["points"]["ledger"] if e.get("reason") == "purchase"], "ledger")
    check(any(o["entry"].startswith("k idem:") for o in doc["other"]), "registry %r"
          % doc["other"])
    check(d.client("marketer").get("/v1/contacts/%s/export" % cid).status == 403,
          "export is for admins")

    needles = [cid, PHONE, PHONE[3:], EMAIL, CHAT, NAME, FIRST, REPLY, REPLY[:20], SURVEY_ANSWER]
    check(found(r, needles), "the data is there before the erasure")

    # erase
    x = ad.delete("/v1/contacts/%s?erase=true" % cid)
    check(x.status == 204, "erase -> %r" % x)
    check(ad.delete("/v1/contacts/%s?erase=true" % cid).status == 404, "erased twice -> 404")
    check(ad.get("/v1/contacts/" + cid).status == 404, "contact gone")
    check(ad.get("/v1/contacts/%s/export" % cid).status == 404, "export gone")
    check(ad.delete("/v1/contacts/%s?erase=maybe" % other).status == 400, "erase=maybe")
    hits = found(r, needles)
    check(not hits, "left after the erasure:\n" + "\n".join(repr(h) for h in hits[:20]))

    # the other contact is whole, still found by its number; counters stay
    o = ad.get("/v1/contacts/" + other)
    check(o.status == 200 and o.json["addresses"]["sms"] == OTHER_PHONE, "other intact")
    lk = ad.get("/v1/contacts?channel=sms&address=" + urllib.parse.quote(OTHER_PHONE))
    check([i["id"] for i in lk.json["items"]] == [other], "other found by address")
    check(rc.sismember(P + "eng:sent:" + camp, other), "other's engagement stays")
    st = rc.hgetall(P + "cs:" + camp)
    check(st.get("sent") == "2" and st.get("replies") == "1", "aggregates stay %r" % st)
    check(rc.hget(P + "stats", "contacts_erased") == "1", "counted")
    # a new reply from the erased number is a new person (a lead), not the old one
    kannel(d, PHONE_LOCAL, "hello again", "mo-3")
    lk = ad.get("/v1/contacts?channel=sms&address=" + urllib.parse.quote(PHONE))
    check(len(lk.json["items"]) == 1 and lk.json["items"][0]["id"] != cid
          and lk.json["items"][0].get("lead"), "a new lead %r" % lk.json)


def check_sealed_at_rest(r, needles):
    hits = found(r, needles)
    check(not hits, "in clear at rest:\n" + "\n".join(repr(h) for h in hits[:20]))


@timeout(120)
def test_sealed_at_rest(fx):
    k = key_file(fx, "privacy.key", "5a" * 32)
    r, s, d = start(fx, key_file=k)
    mk, ad = d.client("marketer"), d.client("admin")
    rc = r.client()
    cid = mk.create_contact({"name": NAME, "first_name": FIRST, "last_name": "Ahmadi",
                             "addresses": {"sms": PHONE, "email": EMAIL, "chat": CHAT}})["id"]
    g = ad.get("/v1/contacts/" + cid).json
    check(g["name"] == NAME and g["first_name"] == FIRST and g["last_name"] == "Ahmadi"
          and g["addresses"] == {"sms": PHONE, "email": EMAIL, "chat": CHAT},
          "the API shows the clear values %r" % g)
    raw = rc.hgetall(P + "c:" + cid)
    check(raw["name"].startswith("\x01t") and raw["a:sms"].startswith("\x01a"), "sealed fields")
    # lookups by address: the API, a message to the address, an inbound reply
    lk = ad.get("/v1/contacts?channel=sms&address=" + PHONE_LOCAL)
    check([i["id"] for i in lk.json["items"]] == [cid], "lookup by local number %r" % lk.json)
    m = mk.send({"to": EMAIL, "channel": "email", "category": "transactional", "subject": "Hi",
                 "text": "Hi"})
    check(m["contact_id"] == cid, "a message to the address found the contact %r" % m)
    m1 = mk.send({"contact_id": cid, "channel": "sms", "category": "transactional",
                  "text": "Your code is 4711"})
    got = wait_state(d, m1["id"], "sent", 15)
    check(got["to"] == PHONE, "the message's address opens for the API %r" % got)
    wait_until(lambda: PHONE in sink_to(s), 10, "the sink got the real number")
    kannel(d, PHONE_LOCAL, REPLY, "mo-1")
    tl = timeline(d, cid)
    check([e for e in tl if e.get("type") == "reply" and e.get("text") == REPLY],
          "the reply found its contact by phone and reads back %r" % tl)
    check(not [c for c in rc.keys(P + "c:*") if rc.hget(c, "lead")], "no lead was made")
    # a patch moves the sealed index along
    x = mk.patch("/v1/contacts/" + cid, {"addresses": {"sms": OTHER_PHONE}})
    check(x.status == 200 and x.json["addresses"]["sms"] == OTHER_PHONE, "patch %r" % x)
    lk = ad.get("/v1/contacts?channel=sms&address=" + urllib.parse.quote(OTHER_PHONE))
    check([i["id"] for i in lk.json["items"]] == [cid], "new number found")
    lk = ad.get("/v1/contacts?channel=sms&address=" + urllib.parse.quote(PHONE))
    check(lk.json["items"] == [], "old number let go")
    x = mk.patch("/v1/contacts/" + cid, {"addresses": {"sms": PHONE}})
    check(x.status == 200, "patch back")

    # a body with the name in it, and a campaign rendering {{first_name}} at dispatch
    m3 = mk.send({"contact_id": cid, "channel": "sms", "category": "transactional",
                  "text": "Dear %s, welcome" % NAME})
    got = wait_state(d, m3["id"], "sent", 15)
    check(got["text"] == "Dear %s, welcome" % NAME, "the body reads back %r" % got)
    check(rc.hget(P + "m:" + m3["id"], "text").startswith("\x01t"), "the body is sealed")
    t = mk.post("/v1/templates", {"id": "hi", "name": "hi", "default_lang": "fa",
                                  "variants": [{"channel": "any", "lang": "fa",
                                                "text": "Salam {{first_name}}!"}]})
    check(t.status == 201, "template -> %r" % t)
    mk.patch("/v1/contacts/" + cid, {"tags": ["vip"]})
    c = mk.post("/v1/campaigns", {"name": "hi", "segment": {"tags": {"any": ["vip"]}},
                                  "template": "hi", "channel": "sms"})
    check(c.status == 201, "campaign -> %r" % c)
    check(mk.post("/v1/campaigns/%s/launch" % c.json["id"]).status == 200, "launch")
    wait_until(lambda: "Salam %s!" % FIRST in sink_texts(s), 20,
               "the campaign rendered the opened first name",
               on_fail=lambda: repr(sink_texts(s)))
    check("Dear %s, welcome" % NAME in sink_texts(s), "the sealed body went out opened")

    needles = [PHONE, PHONE[3:], EMAIL, CHAT, NAME, FIRST, "Ahmadi", REPLY, REPLY[:20],
               OTHER_PHONE[3:]]
    check_sealed_at_rest(r, needles)
    # the export opens everything
    doc = ad.get("/v1/contacts/%s/export" % cid).json
    check(doc["contact"]["addresses"]["sms"] == PHONE and doc["record"]["name"] == NAME
          and any(e.get("text") == REPLY for e in doc["inbound"])
          and any(e.get("from") == PHONE for e in doc["inbound"]), "export opened")
    # and the erasure works on sealed data
    check(ad.delete("/v1/contacts/%s?erase=true" % cid).status == 204, "erase")
    hits = found(r, [cid])
    check(not hits, "left after the erasure:\n" + "\n".join(repr(h) for h in hits[:20]))
    ks = [k for k in rc.keys(P + "ix:*")]
    check(ks == [], "no index left %r" % ks)


def rotate(d, old, new):
    p = subprocess.run([CLUBD, "-c", d.conf_path, "--rotate-key", old, new],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    return p.returncode, p.stdout.decode()


def keyids(r):
    ids = set()
    for _, text in everything(r):
        i = text.find("\x01")
        while i >= 0:
            ids.add(text[i + 2:i + 10])
            i = text.find("\x01", i + 1)
    return ids


@timeout(150)
def test_rotate_key(fx):
    k1 = key_file(fx, "k1", "11" * 32)
    k2 = key_file(fx, "k2", "22" * 32)
    r, s, d = start(fx, sink=False)
    mk = d.client("marketer")
    cid = mk.create_contact({"name": NAME, "addresses": {"sms": PHONE, "email": EMAIL}})["id"]
    kannel(d, PHONE_LOCAL, "HELP", "mo-1")
    m = mk.send({"contact_id": cid, "channel": "sms", "category": "transactional", "text": "x"})
    wait_state(d, m["id"], "sent", 15)
    check(d.term() == 0, "stopped")
    needles = [PHONE, PHONE[3:], EMAIL, NAME]
    check(found(r, needles), "clear before")
    rc = r.client()
    help_text = lambda: [v for _, f in rc.xrange(P + "tl:" + cid) for k_, v in f.items()
                         if k_ == "text"] + [f.get("text") for _, f in rc.xrange(P + "inbound")]

    # no key -> K1: everything personal is sealed
    rc_, out = rotate(d, "none", k1)
    check(rc_ == 0 and "resealed=" in out, "rotate none -> k1: %s" % out)
    check_sealed_at_rest(r, needles)
    check(help_text() and all(t.startswith("\x01t") for t in help_text()),
          "inbound texts sealed %r" % help_text())
    ids1 = keyids(r)
    check(len(ids1) == 1, "one key id %r" % ids1)
    rc_, out2 = rotate(d, "none", k1)
    check(rc_ == 0 and "resealed=0" in out2, "a second run changes nothing: %s" % out2)

    def serve(key):
        d.config["privacy"] = {"key_file": key}
        write_config(d.conf_path, d.config)
        d.start()
        ad = d.client("admin")
        g = ad.get("/v1/contacts/" + cid).json
        check(g["name"] == NAME and g["addresses"]["sms"] == PHONE, "served %r" % g)
        lk = ad.get("/v1/contacts?channel=email&address=" + EMAIL).json["items"]
        check([i["id"] for i in lk] == [cid], "email lookup")
        tl = timeline(d, cid)
        check([e for e in tl if e.get("text") == "HELP"], "inbound text reads back")
        msg = ad.get("/v1/messages/" + m["id"]).json
        check(msg["to"] == PHONE, "message address %r" % msg)

    serve(k1)
    kannel(d, PHONE_LOCAL, "HELP", "mo-2")
    check(len(d.client("admin").get("/v1/contacts").json["items"]) == 1, "the reply found it")
    check(d.term() == 0, "stopped")

    # a sealed value copied into JSON in a list (as the desk keeps conversations) rotates too
    sealed_name = rc.hget(P + "c:" + cid, "name")
    rc.rpush(P + "zz:conv", json.dumps({"text": sealed_name, "n": 1}))

    # K1 -> K2; a wrong OLD key is reported, not guessed
    k3 = key_file(fx, "k3", "33" * 32)
    bad, out = rotate(d, k3, k2)
    check(bad == 1 and "other_key=0" not in out and keyids(r) == ids1,
          "a wrong old key -> 1, nothing changed: %s" % out)
    rc_, out = rotate(d, k1, k2)
    check(rc_ == 0, "rotate k1 -> k2: %s" % out)
    ids2 = keyids(r)
    check(len(ids2) == 1 and ids2 != ids1, "all under k2 %r %r" % (ids1, ids2))
    conv = json.loads(rc.lindex(P + "zz:conv", 0))["text"]
    check(conv.startswith("\x01t" + list(ids2)[0]) and conv != sealed_name,
          "the JSON copy was re-sealed %r" % conv)
    check_sealed_at_rest(r, needles)
    serve(k2)
    check(d.term() == 0, "stopped")

    # K2 -> none: back in clear, served without a key
    rc_, out = rotate(d, k2, "none")
    check(rc_ == 0 and keyids(r) == set(), "opened: %s" % out)
    check(json.loads(rc.lindex(P + "zz:conv", 0)) == {"text": NAME, "n": 1}, "JSON copy opened")
    d.config["privacy"] = {"key_file": ""}
    write_config(d.conf_path, d.config)
    d.start()
    lk = d.client("admin").get("/v1/contacts?channel=sms&address=" + PHONE_LOCAL).json
    check([i["id"] for i in lk["items"]] == [cid], "plain lookup %r" % lk)
    check(rotate(d, "none", "none")[0] == 2, "none -> none refused")


@timeout(60)
def test_bad_key_refused(fx):
    r = fx.redis()
    short = key_file(fx, "short.key", "abcd")
    d = fx.clubd(r, None, overrides={"privacy": {"key_file": short}}, start=False)
    p = subprocess.run([CLUBD, "-c", d.conf_path, "--check-config"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    out = p.stdout.decode()
    check(p.returncode == 1 and "privacy.key_file" in out and "abcd" not in out,
          "a short key is refused without showing it: %s" % out)
    good = key_file(fx, "good.key", "ab" * 32)
    d.config["privacy"] = {"key_file": good}
    write_config(d.conf_path, d.config)
    p = subprocess.run([CLUBD, "-c", d.conf_path, "--check-config"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    check(p.returncode == 0, "a good key passes: %s" % p.stdout.decode())
    d.start()
    check(json.dumps(d.client("admin").get("/v1/contacts").json) is not None, "serves")
