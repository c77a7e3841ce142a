"""Raffles through the real clubd: creation publishes SHA-256(seed) and never
the seed; entries by API are idempotent on (raffle, contact, method, ref)
and refused outside the window, past the maximum, with a reused or unknown
code and without enough points (which a points entry spends through the
ledger); the draw happens exactly once (also when two instances are asked
at the same moment), reveals the seed, stores a record from which
build/clubd-draw-verify and an independent Python re-implementation
reproduce the winners, and queues each winner's message (the sink gets
it); a Persian keyword texted in through the signed SMS webhook enters
the sender (a lead for an unknown number) and gets the reply template;
clubctl raffles, every command once, human and --json."""

import hashlib
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.parse

from harness import CLUBD, Client, check, rfc3339, timeout, wait_until
from test_draw_verify import reference_draw
from test_inbound import start as inbound_start
from test_inbound import webhook

PREFIX = "clubd:"
VERIFIER = os.path.join(os.path.dirname(CLUBD), "clubd-draw-verify")
YALDA = "یلدا"
YALDA_ARABIC = "يلدا"  # Arabic yeh: normalised to the Persian one
WIN_TEXT = "تبریک {{first_name|\"دوست عزیز\"}}! برنده {{event.prize}} شدید (رتبه {{event.rank}})."
REPLY_TEXT = "{{event.name}}: {{event.result}} ({{event.entries|\"0\"}})"

_SPEC = []


def conforms(obj, schema):
    from test_openapi import Validator, load_spec
    if not _SPEC:
        _SPEC.append(Validator(load_spec()))
    _SPEC[0].validate(obj, {"$ref": "#/components/schemas/" + schema}, schema)
    return obj


def template(d, tid, text):
    x = d.client("marketer").post("/v1/templates", {
        "id": tid, "name": tid, "default_lang": "fa",
        "variants": [{"channel": "any", "lang": "fa", "text": text}]})
    check(x.status == 201, "template %s -> %r" % (tid, x))


def raffle_def(rid, **over):
    now = time.time()
    d = {"id": rid, "name": "قرعه‌کشی یلدا", "prize": "سفر کیش",
         "starts_at": rfc3339(now - 3600), "ends_at": rfc3339(now + 3600),
         "methods": ["keyword", "code", "purchase", "points"], "keyword": "YALDA",
         "codes": ["AB12", "CD34", "EF56"],
         "purchase": {"min_amount": "500000", "currency": "IRR", "entries_per": "500000"},
         "points_cost": 100, "max_entries_per_contact": 2,
         "weights": {"methods": {"purchase": 2}, "tiers": {"gold": 5}},
         "winners": 2, "notify_template": "raffle-win"}
    d.update(over)
    return {k: v for k, v in d.items() if v is not None}


def create(d, body, role="marketer"):
    x = d.client(role).post("/v1/raffles", body)
    if x.status == 201:
        conforms(x.json, "Raffle")
    return x


def enter(d, rid, body, role="marketer"):
    x = d.client(role).post("/v1/raffles/%s/entries" % rid, body)
    conforms(x.json, "RaffleEntryResult" if x.status in (200, 201) else "Error")
    return x


def no_seed(obj):
    """The seed never appears before the draw: as a key with a value, anywhere."""
    s = json.dumps(obj)
    return '"seed": null' in s or '"seed"' not in s


def contacts(d, n, prefix="0912100"):
    mk = d.client("marketer")
    return [mk.create_contact({"name": "Entrant %d" % i, "first_name": "نفر%d" % i,
                               "addresses": {"sms": "%s%04d" % (prefix, i)}})["id"]
            for i in range(n)]


def verify_with_tool(rec, fx):
    path = os.path.join(fx.tmp, "entries.txt")
    with open(path, "w") as f:
        f.write(rec["entries"])
    p = subprocess.run([VERIFIER, "--seed", rec["seed"], "--commit", rec["commit"],
                        "--winners", str(rec["winners_count"]),
                        "--expect", ",".join(rec["winners"]), path],
                       capture_output=True, timeout=30)
    out = p.stdout.decode()
    check(p.returncode == 0, "clubd-draw-verify exit %d:\n%s\n%s" % (p.returncode, out,
                                                                     p.stderr.decode()))
    check("entries_digest: %s" % rec["entries_digest"] in out, "digest printed: %s" % out)
    for i, w in enumerate(rec["winners"]):
        check("winner %d: %s" % (i + 1, w) in out, "winner %d in %s" % (i + 1, out))
    return out


@timeout(120)
def test_create_enter_draw_verify(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    template(d, "raffle-win", WIN_TEXT)
    a, b, c, dd, e, f = contacts(d, 6)

    # create: the commitment is public, the seed is not
    x = create(d, raffle_def("yalda"))
    check(x.status == 201, "create -> %r" % x)
    rf = x.json
    check(len(rf["commit"]) == 64 and int(rf["commit"], 16) >= 0, "commit %r" % rf["commit"])
    check(rf["seed"] is None and no_seed(rf), "no seed before the draw: %r" % rf)
    check(rf["state"] == "open" and rf["open_now"] is True and rf["codes_total"] == 3
          and "codes" not in rf and "AB12" not in json.dumps(rf), "public form %r" % rf)
    check(rf["entries"] == {"count": 0, "contacts": 0, "weight": 0}, "no entries yet")
    g = d.client("viewer").get("/v1/raffles/yalda")
    check(g.status == 200 and g.json["commit"] == rf["commit"] and no_seed(g.json), "get %r" % g)
    lst = d.client("viewer").get("/v1/raffles")
    check(lst.status == 200 and [i["id"] for i in lst.json["items"]] == ["yalda"]
          and no_seed(lst.json), "list %r" % lst)
    conforms(lst.json, "RaffleList")
    seed_hex = r.client().hget(PREFIX + "rf:yalda", "seed")
    check(hashlib.sha256(bytes.fromhex(seed_hex)).hexdigest() == rf["commit"],
          "the stored seed is the one committed to")
    check(create(d, raffle_def("yalda")).status == 409, "same id -> 409")
    x = create(d, raffle_def("bad", notify_template="nope"))
    check(x.status == 400 and x.err_field() == "notify_template", "unknown template -> %r" % x)
    x = create(d, raffle_def("bad", methods=["keyword", "lotto"]))
    check(x.status == 400 and x.err_field() == "methods[1]", "bad method -> %r" % x)
    x = create(d, raffle_def("bad", winners=None))
    check(x.status == 400 and x.err_code() == "missing_field" and x.err_field() == "winners",
          "no winners -> %r" % x)
    check(create(d, raffle_def("v"), role="viewer").status == 403, "viewer cannot create")

    # keyword: idempotent per ref, at most 2 per contact
    x = enter(d, "yalda", {"contact_id": a, "method": "keyword"})
    check(x.status == 201 and x.json["entries"] == 1 and x.json["replayed"] is False
          and x.json["contact_entries"] == 1, "enter -> %r" % x)
    y = enter(d, "yalda", {"contact_id": a, "method": "keyword"})
    check(y.status == 200 and y.json["replayed"] is True and y.json["entry"] == x.json["entry"],
          "same (contact, method, ref) -> the first answer: %r" % y)
    x = enter(d, "yalda", {"contact_id": a, "method": "keyword", "ref": "sms-2"})
    check(x.status == 201 and x.json["contact_entries"] == 2, "second entry %r" % x)
    x = enter(d, "yalda", {"contact_id": a, "method": "keyword", "ref": "sms-3"})
    check(x.status == 409 and x.err_code() == "conflict" and x.err_field() == "contact_id",
          "third entry -> max: %r" % x)

    # codes: single use, normalised (Persian digits, case)
    x = enter(d, "yalda", {"contact_id": b, "method": "code", "code": "ab۱۲"})
    check(x.status == 201, "code -> %r" % x)
    x = enter(d, "yalda", {"contact_id": c, "method": "code", "code": "AB12"})
    check(x.status == 409 and x.err_field() == "code", "used code -> %r" % x)
    x = enter(d, "yalda", {"contact_id": c, "method": "code", "code": "ZZ99"})
    check(x.status == 400 and x.err_field() == "code", "unknown code -> %r" % x)
    x = enter(d, "yalda", {"contact_id": c, "method": "code", "code": "CD34"})
    check(x.status == 201, "another code -> %r" % x)
    x = enter(d, "yalda", {"contact_id": c, "method": "code", "code": "CD34"})
    check(x.status == 200 and x.json["replayed"], "the same code again by its owner: replay %r" % x)

    # purchase: one entry per 500000, capped at the contact's max; weight x2
    x = enter(d, "yalda", {"contact_id": dd, "method": "purchase", "amount": "1500000",
                           "currency": "IRR", "ref": "order-1"})
    check(x.status == 201 and x.json["entries"] == 2 and x.json["capped"] is True
          and x.json["weight"] == 4, "purchase -> %r" % x)
    x = enter(d, "yalda", {"contact_id": f, "method": "purchase", "amount": 400000,
                           "currency": "IRR"})
    check(x.status == 400 and x.err_field() == "amount", "below minimum -> %r" % x)
    x = enter(d, "yalda", {"contact_id": f, "method": "purchase", "amount": 900000,
                           "currency": "USD"})
    check(x.status == 400 and x.err_field() == "currency", "currency -> %r" % x)

    # points: spent through the ledger in the same step; a gold contact weighs 5
    x = d.client("admin").post("/v1/contacts/%s/points/adjust" % e,
                               {"points": 150, "reason": "gift"})
    check(x.status == 200, "adjust -> %r" % x)
    r.client().hset(PREFIX + "c:" + e, "tier", "gold")
    x = enter(d, "yalda", {"contact_id": e, "method": "points", "ref": "p1"})
    check(x.status == 201 and x.json["points"]["points"] == 100
          and x.json["points"]["balance"] == 50 and x.json["weight"] == 5, "points -> %r" % x)
    x = enter(d, "yalda", {"contact_id": e, "method": "points", "ref": "p2"})
    check(x.status == 409 and x.err_code() == "insufficient_points"
          and x.err_field() == "points", "short -> %r" % x)
    pts = d.client("viewer").get("/v1/contacts/%s/points" % e).json
    top = pts["history"][0]
    check(pts["balance"] == 50 and top["reason"] == "spend" and top["delta"] == -100
          and top["ref"] == "raffle:yalda" and top["by"] == "test-marketer",
          "the ledger shows the spend: %r" % pts)
    check(pts["lifetime"] == 150, "spending leaves lifetime points alone: %r" % pts)

    # bad requests
    for body, code, field in (({"method": "keyword"}, 400, "contact_id"),
                              ({"contact_id": f}, 400, "method"),
                              ({"contact_id": f, "method": "coupon"}, 400, "method"),
                              ({"contact_id": f, "method": "code"}, 400, "code"),
                              ({"contact_id": f, "method": "keyword", "code": "AB12"}, 400, "code"),
                              ({"contact_id": f, "method": "keyword", "count": 2}, 400, "count"),
                              ({"contact_id": f, "method": "keyword", "x": 1}, 400, "x"),
                              ({"contact_id": "0" * 26, "method": "keyword"}, 404, "contact_id")):
        x = enter(d, "yalda", body)
        check(x.status == code and x.err_field() == field, "%r -> %r" % (body, x))
    check(enter(d, "nope", {"contact_id": f, "method": "keyword"}).status == 404, "no raffle")
    check(enter(d, "yalda", {"contact_id": f, "method": "keyword"}, role="viewer").status == 403,
          "viewer cannot enter")

    # the window
    now = time.time()
    check(create(d, raffle_def("later", starts_at=rfc3339(now + 3600),
                               ends_at=rfc3339(now + 7200))).status == 201, "later")
    x = enter(d, "later", {"contact_id": f, "method": "keyword"})
    check(x.status == 409 and x.err_field() == "starts_at", "not started -> %r" % x)
    check(create(d, raffle_def("past", starts_at=rfc3339(now - 7200),
                               ends_at=rfc3339(now - 3600))).status == 201, "past")
    x = enter(d, "past", {"contact_id": f, "method": "keyword"})
    check(x.status == 409 and x.err_field() == "ends_at", "ended -> %r" % x)
    check(d.client("admin").delete("/v1/raffles/later").status == 204, "delete, no entries")
    check(d.client("viewer").get("/v1/raffles/later").status == 404, "deleted")
    x = d.client("admin").delete("/v1/raffles/yalda")
    check(x.status == 409, "delete with entries -> %r" % x)
    check(d.client("marketer").delete("/v1/raffles/past").status == 403, "delete is admin's")

    # entries: timeline, engagement set, paged log
    tl = d.client("viewer").get("/v1/contacts/%s/timeline?limit=50" % a).json["items"]
    ents = [t for t in tl if t.get("type") == "entry"]
    check(len(ents) == 2 and ents[0]["raffle"] == "yalda" and ents[0]["method"] == "keyword",
          "timeline %r" % tl)
    check(r.client().smembers(PREFIX + "eng:entered:yalda") == {a, b, c, dd, e},
          "eng:entered")
    seen, cursor = [], None
    for _ in range(10):
        q = "?limit=2" + ("&cursor=" + urllib.parse.quote(cursor) if cursor else "")
        page = d.client("viewer").get("/v1/raffles/yalda/entries" + q)
        check(page.status == 200, "entries -> %r" % page)
        conforms(page.json, "RaffleEntryPage")
        seen += page.json["items"]
        cursor = page.json["next_cursor"]
        if not cursor:
            break
    check([i["contact_id"] for i in seen] == [a, a, b, c, dd, e], "entry log %r" % seen)
    check(seen[2]["code"] == "ab12" and seen[4]["entries"] == 2 and seen[4]["weight"] == 4,
          "log fields %r" % seen)
    g = d.client("viewer").get("/v1/raffles/yalda").json
    check(g["entries"] == {"count": 7, "contacts": 5, "weight": 13} and g["codes_used"] == 2,
          "counters %r" % g)

    # the draw: not before the window ends unless forced, then exactly once
    x = d.client("admin").post("/v1/raffles/yalda/draw")
    check(x.status == 409 and x.err_field() == "ends_at", "early -> %r" % x)
    check(d.client("marketer").post("/v1/raffles/yalda/draw").status == 403, "draw is admin's")
    check(d.client("viewer").get("/v1/raffles/yalda/draw").status == 404, "no record yet")
    x = d.client("admin").post("/v1/raffles/yalda/draw?force=true")
    check(x.status == 200, "draw -> %r" % x)
    rec = conforms(x.json, "RaffleDraw")
    check(hashlib.sha256(bytes.fromhex(rec["seed"])).hexdigest() == rf["commit"] == rec["commit"],
          "commitment == SHA-256(revealed seed)")
    check(rec["winners_count"] == 2 and len(set(rec["winners"])) == 2
          and set(rec["winners"]) <= {a, b, c, dd, e}, "winners %r" % rec)
    want_entries = "".join("%s\t%d\n" % kv for kv in sorted(
        {a: 2, b: 1, c: 1, dd: 4, e: 5}.items()))
    check(rec["entries"] == want_entries, "canonical entries %r" % rec["entries"])
    # an independent implementation of docs/raffles.md agrees
    ref_digest, ref_winners = reference_draw(
        bytes.fromhex(rec["seed"]), [(k, v) for k, v in {a: 2, b: 1, c: 1, dd: 4, e: 5}.items()], 2)
    check(ref_digest == rec["entries_digest"] and ref_winners == rec["winners"],
          "reference draw %r %r" % (ref_winners, rec["winners"]))
    y = d.client("admin").post("/v1/raffles/yalda/draw?force=true")
    check(y.status == 409 and y.err_code() == "conflict", "second draw -> %r" % y)
    g = d.client("viewer").get("/v1/raffles/yalda")
    check(g.json["state"] == "drawn" and g.json["seed"] == rec["seed"], "seed published %r" % g)
    x = enter(d, "yalda", {"contact_id": f, "method": "keyword"})
    check(x.status == 409, "entries closed after the draw -> %r" % x)

    # GET .../draw gives the same record; the verifier reproduces it
    got = d.client("viewer").get("/v1/raffles/yalda/draw")
    check(got.status == 200, "record -> %r" % got)
    conforms(got.json, "RaffleDraw")
    for k in ("seed", "commit", "entries", "entries_digest", "winners", "winners_count"):
        check(got.json[k] == rec[k], "record %s" % k)
    verify_with_tool(got.json, fx)
    txt = Client(d.port, token=fx.tokens["viewer"]).request(
        "GET", "/v1/raffles/yalda/draw?format=entries")
    check(txt.status == 200 and txt.text == rec["entries"], "entries as text %r" % txt)
    # a tampered list or seed does not verify
    path = os.path.join(fx.tmp, "tampered.txt")
    with open(path, "w") as fh:
        fh.write(rec["entries"].replace("\t1\n", "\t9\n", 1))
    p = subprocess.run([VERIFIER, "--seed", rec["seed"], "--commit", rec["commit"],
                        "--winners", "2", "--expect", ",".join(rec["winners"]), path],
                       capture_output=True, timeout=30)
    check(p.returncode == 1, "a changed list gives other winners: %d %s" % (p.returncode, p.stdout))

    # the winners' messages: lottery, preferred channel, the template rendered
    notes = {n["contact_id"]: n for n in rec["notifications"]}
    check(set(notes) == set(rec["winners"]) and all(n.get("message_id") for n in notes.values()),
          "a message per winner %r" % rec["notifications"])
    for rank, w in enumerate(rec["winners"], 1):
        mid = notes[w]["message_id"]
        wait_until(lambda: s.count(mid) >= 1, 15, "the sink got the winner's message")
        body = s.requests_for(mid)[0].body
        i = [a, b, c, dd, e, f].index(w)
        check(body["category"] == "lottery" and body["contact_id"] == w
              and body["text"] == "تبریک نفر%d! برنده سفر کیش شدید (رتبه %d)." % (i, rank),
              "message %r" % body)
        m = d.client("viewer").get("/v1/messages/" + mid).json
        check(m["category"] == "lottery", "message %r" % m)
    check(r.client().hget(PREFIX + "m:" + notes[rec["winners"][0]]["message_id"], "channel")
          == "preferred", "lane preferred")
    wtl = d.client("viewer").get("/v1/contacts/%s/timeline?limit=50" % rec["winners"][0]).json
    check(any(t.get("type") == "raffle" and t.get("result") == "won" and t.get("rank") == "1"
              for t in wtl["items"]), "the win is on the timeline %r" % wtl)
    check(s.unique() == 2, "exactly the winners' messages: %r" % s.stats())

    # an instance that died between the draw and the messages: the next POST
    # queues them again, without duplicates (their idempotency keys)
    rc = r.client()
    rc.hset(PREFIX + "rf:yalda", mapping={"notify": "pending", "lease_until": "0"})
    x = d.client("admin").post("/v1/raffles/yalda/draw")
    check(x.status == 409 and "queued again" in x.json["error"]["message"], "renotify -> %r" % x)
    check(rc.hget(PREFIX + "rf:yalda", "notify") == "done", "notifications recorded")
    mids = [k for k in rc.keys(PREFIX + "m:*") if rc.hget(k, "raffle") == "yalda"]
    check(len(mids) == 2, "still one message per winner: %r" % mids)
    got = d.client("viewer").get("/v1/raffles/yalda/draw").json
    check(sorted(n["message_id"] for n in got["notifications"])
          == sorted(n["message_id"] for n in rec["notifications"]), "the same messages")
    time.sleep(0.3)
    check(s.unique() == 2 and s.duplicates() == 0, "nothing sent twice: %r" % s.stats())


@timeout(90)
def test_draw_once_across_instances(fx):
    r = fx.redis()
    d1 = fx.clubd(r)
    d2 = fx.clubd(r)
    cids = contacts(d1, 30, prefix="0912200")
    x = create(d1, raffle_def("race", methods=["keyword"], codes=None, purchase=None,
                              points_cost=None, notify_template=None, winners=3))
    check(x.status == 201, "create -> %r" % x)
    for cid in cids:
        check(enter(d1, "race", {"contact_id": cid, "method": "keyword"}).status == 201, "enter")
    results = []
    barrier = threading.Barrier(4)

    def draw(dm):
        cl = dm.new_client("admin")
        barrier.wait()
        results.append(cl.post("/v1/raffles/race/draw?force=true"))
        cl.close()

    ts = [threading.Thread(target=draw, args=(dm,)) for dm in (d1, d2, d1, d2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ok = [x for x in results if x.status == 200]
    check(len(ok) == 1 and all(x.status == 409 for x in results if x.status != 200),
          "one draw, the others 409: %r" % [(x.status, x.text[:120]) for x in results])
    rec = ok[0].json
    check(rec["notifications"] == [], "no template: nobody messaged")
    for dm in (d1, d2):
        got = dm.client("viewer").get("/v1/raffles/race/draw").json
        check(got["winners"] == rec["winners"] and got["seed"] == rec["seed"], "same record")
    check(r.client().hlen(PREFIX + "rfw:race") == 30, "30 entrants")
    verify_with_tool(rec, fx)

    # nobody entered: a draw with no winners, recorded all the same
    check(create(d1, raffle_def("empty", methods=["keyword"], codes=None, purchase=None,
                                points_cost=None, notify_template=None)).status == 201, "empty")
    x = d1.client("admin").post("/v1/raffles/empty/draw?force=true")
    check(x.status == 200 and x.json["winners"] == [] and x.json["entries"] == ""
          and x.json["entries_digest"] == hashlib.sha256(b"").hexdigest(), "empty draw %r" % x)
    x = d1.client("admin").post("/v1/raffles/empty/draw?force=bogus")
    check(x.status == 400 and x.err_field() == "force", "force=bogus -> %r" % x)


@timeout(90)
def test_persian_keyword_by_sms(fx):
    r, s, d = inbound_start(fx)
    template(d, "raffle-reply", REPLY_TEXT)
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "Sara", "addresses": {"sms": "09123334444"}})["id"]
    x = create(d, raffle_def("shab-yalda", keyword=YALDA, codes=["Q7۱"],
                             methods=["keyword", "code"], purchase=None, points_cost=None,
                             notify_template=None, reply_template="raffle-reply",
                             max_entries_per_contact=1))
    check(x.status == 201 and x.json["keyword"] == YALDA, "create -> %r" % x)

    # Arabic yeh and surrounding blanks: the same keyword after normalising
    x = webhook(d, {"from": "+989123334444", "text": "  %s " % YALDA_ARABIC, "id": "fa-1"})
    check(x.status == 200 and x.json["action"] == "taken" and x.json["contact_id"] == cid,
          "keyword -> %r" % x)
    ents = d.client("viewer").get("/v1/raffles/shab-yalda/entries").json["items"]
    check(len(ents) == 1 and ents[0]["contact_id"] == cid and ents[0]["method"] == "keyword"
          and ents[0]["ref"] == "webhook:fa-1", "entry %r" % ents)
    wait_until(lambda: [b for b in sink_texts(s) if b == "قرعه‌کشی یلدا: entered (1)"], 15,
               "the reply template reached the sink",
               on_fail=lambda: json.dumps(sink_texts(s), ensure_ascii=False))
    # the provider retries: nothing new
    x = webhook(d, {"from": "+989123334444", "text": YALDA, "id": "fa-1"})
    check(x.status == 200 and x.json["duplicate"] is True, "retry -> %r" % x)
    # a second text: the contact already has its one entry
    x = webhook(d, {"from": "+989123334444", "text": YALDA, "id": "fa-2"})
    check(x.status == 200 and x.json["action"] == "taken", "second -> %r" % x)
    check(len(d.client("viewer").get("/v1/raffles/shab-yalda/entries").json["items"]) == 1,
          "still one entry")
    wait_until(lambda: "قرعه‌کشی یلدا: max_entries (0)" in sink_texts(s), 15, "max reply",
               on_fail=lambda: json.dumps(sink_texts(s), ensure_ascii=False))
    # an unknown number texting a code (Persian digits): a lead, entered
    x = webhook(d, {"from": "09125556666", "text": "q۷1", "id": "fa-3"})
    check(x.status == 200 and x.json["action"] == "taken" and x.json["contact_id"] != cid,
          "code from a new number -> %r" % x)
    lead = x.json["contact_id"]
    check(r.client().hget(PREFIX + "c:" + lead, "lead") == "1", "a lead")
    ents = d.client("viewer").get("/v1/raffles/shab-yalda/entries").json["items"]
    check(ents[-1]["contact_id"] == lead and ents[-1]["code"] == "q71", "code entry %r" % ents)
    # other texts are ordinary replies
    x = webhook(d, {"from": "+989123334444", "text": "سلام", "id": "fa-4"})
    check(x.json["action"] == "reply", "not a keyword -> %r" % x)
    tl = d.client("viewer").get("/v1/contacts/%s/timeline?limit=50" % cid).json["items"]
    check(any(t.get("type") == "entry" and t.get("raffle") == "shab-yalda" for t in tl),
          "on the timeline %r" % tl)


def sink_texts(s):
    with s._lock:
        return [rq.body.get("text") for v in s.log.values() for rq in v]


@timeout(120)
def test_clubctl_raffles(fx):
    from test_clubctl import Ctl
    r = fx.redis()
    d = fx.clubd(r)
    cids = contacts(d, 3, prefix="0912300")
    ctl = Ctl(fx, d.port)
    now = time.time()
    path = os.path.join(fx.tmp, "raffle.json")
    with open(path, "w") as f:
        json.dump(raffle_def("cli", methods=["keyword", "code"], purchase=None, points_cost=None,
                             notify_template=None, codes=["X1", "X2"],
                             starts_at=rfc3339(now - 60), ends_at=rfc3339(now + 600)),
                  f, ensure_ascii=False)
    res = ctl.run("raffles", "create", path, want=0)
    check("created raffle cli" in res.out and "commitment" in res.out, "create %r" % res)
    with open(path, "w") as f:
        json.dump(raffle_def("cli2", methods=["keyword"], codes=None, purchase=None,
                             points_cost=None, notify_template=None), f)
    js = ctl.run("--json", "raffles", "create", path, want=0).json()
    check(js["id"] == "cli2" and js["seed"] is None, "create --json %r" % js)
    res = ctl.run("raffles", "list", want=0)
    check("cli" in res.out and "cli2" in res.out, "list %r" % res)
    check([i["id"] for i in ctl.run("--json", "raffles", "list", want=0).json()["items"]]
          == ["cli", "cli2"], "list --json")
    res = ctl.run("raffles", "get", "cli", want=0)
    check("YALDA" in res.out and "commit" in res.out and "0 of 2 used" in res.out, "get %r" % res)
    check(ctl.run("--json", "raffles", "get", "cli", want=0).json()["codes_total"] == 2, "get json")
    res = ctl.run("raffles", "enter", "cli", "--contact", cids[0], want=0)
    check("entered" in res.out, "enter %r" % res)
    res = ctl.run("raffles", "enter", "cli", "--contact", cids[0], want=0)
    check("already entered" in res.out, "enter again %r" % res)
    js = ctl.run("--json", "raffles", "enter", "cli", "--contact", cids[1], "--method", "code",
                 "--code", "x1", want=0).json()
    check(js["method"] == "code" and js["replayed"] is False, "enter --json %r" % js)
    res = ctl.run("raffles", "enter", "cli", "--contact", cids[2], "--method", "code",
                  "--code", "X1", want=1)
    check("used" in res.err, "reused code %r" % res)
    ctl.run("raffles", "enter", "cli", "--contact", cids[2], "--method", "code", "--code", "X2",
            want=0)
    res = ctl.run("raffles", "entries", "cli", want=0)
    check(all(c in res.out for c in cids), "entries %r" % res)
    check(len(ctl.run("--json", "raffles", "entries", "cli", want=0).json()["items"]) == 3,
          "entries json")
    res = ctl.run("raffles", "verify", "cli", want=1)
    check("not been drawn" in res.err, "verify before the draw %r" % res)
    res = ctl.run("raffles", "draw", "cli", want=1)
    check("force" in res.err, "early draw %r" % res)
    res = ctl.run("raffles", "draw", "cli", "--force", want=0)
    check("winner 1" in res.out and "seed" in res.out, "draw %r" % res)
    js = ctl.run("--json", "raffles", "draw", "cli2", "--force", want=0).json()
    check(js["winners"] == [], "draw --json of an empty raffle %r" % js)
    res = ctl.run("raffles", "verify", "cli", want=0)
    check("commit: ok" in res.out and "expect: ok" in res.out and "verified" in res.out,
          "verify %r" % res)
    js = ctl.run("--json", "raffles", "verify", "cli", want=0).json()
    check(js["verified"] is True and js["verifier_exit"] == 0 and len(js["winners"]) == 2,
          "verify --json %r" % js)
    # a verifier that disagrees (a fake one printing another digest) fails the check
    fake = os.path.join(fx.tmp, "fake-verify")
    with open(fake, "w") as f:
        f.write("#!/bin/sh\ncat >/dev/null\necho 'entries_digest: 00'\nexit 0\n")
    os.chmod(fake, 0o755)
    res = ctl.run("raffles", "verify", "cli", "--verifier", fake, want=1)
    check("NOT verified" in res.out, "a wrong digest is caught %r" % res)
    ctl.assert_no_token()


@timeout(60)
def test_purchase_event_enters_raffle(fx):
    """POST /v1/events with a purchase enters every open raffle that takes
    purchases, once per event: a replay with the same Idempotency-Key does
    not add entries, and a purchase under the minimum is refused with its
    reason in the answer."""
    r = fx.redis()
    d = fx.clubd(r)
    template(d, "raffle-win", "برنده شدید")
    check(create(d, raffle_def("buy", methods=["purchase"], codes=None, keyword=None,
                               points_cost=None, weights=None)).status == 201, "create")
    c = contacts(d, 1)[0]
    mk = d.client("marketer")
    ev = {"type": "purchase", "contact_id": c, "amount": "1000000", "currency": "IRR"}
    x = mk.post("/v1/events", ev, headers={"Idempotency-Key": "order-77"})
    check(x.status == 201, "event %r" % x)
    check(x.json.get("raffle_entries") == [{"raffle": "buy", "status": "ok"}],
          "entries in the answer %r" % x.json.get("raffle_entries"))
    y = mk.post("/v1/events", ev, headers={"Idempotency-Key": "order-77"})
    check(y.status == 200 and y.json.get("replayed") is True, "replay %r" % y)
    check(y.json.get("raffle_entries") == [{"raffle": "buy", "status": "dup"}],
          "replay does not enter twice %r" % y.json.get("raffle_entries"))
    small = dict(ev, amount="1000")
    z = mk.post("/v1/events", small, headers={"Idempotency-Key": "order-78"})
    check(z.status == 201 and z.json["raffle_entries"][0]["status"] == "refused", "small %r" % z)
    got = mk.get("/v1/raffles/buy/entries")
    check(got.status == 200, "entries %r" % got)
    items = got.json.get("items", got.json.get("entries", []))
    mine = [i for i in items if i.get("contact_id") == c]
    check(len(mine) == 1 and mine[0].get("method") == "purchase", "one purchase entry %r" % items)
