"""Segments: saved definitions (CRUD, versions, validation with field
paths, roles), previews (count, examined, sample), exports, and the
semantics of every operator on a fixture of a few thousand contacts.

The fixture is generated here with a seeded RNG and written straight into
Redis in the layout lua/contact_write.lua keeps (plus the club's tier,
points and last_purchase fields and the engagement sets).  The expected
set for each definition is computed in Python, independently of the C
code: its own text normalisation, its own Jalali calendar (the jalaali
arithmetic of Borkowski, not ICU) and its own reading of the grammar in
docs/segments.md.  Each definition is saved, exported as NDJSON and the
ids compared exactly; the preview count must agree."""

import csv
import io
import json
import random
import time
from datetime import date, datetime, timedelta, timezone

from harness import check, timeout

DAY = 86400000
P = "clubd:"


# ---------------------------------------------------------------- Jalali

BREAKS = [-61, 9, 38, 199, 426, 686, 756, 818, 1111, 1181, 1210, 1635, 2060, 2097, 2192, 2262,
          2324, 2394, 2456, 3178]


def _div(a, b):
    return int(a / b)


def _mod(a, b):
    return a - int(a / b) * b


def jal_cal(jy):
    """(leap, gy, march): leap == 0 for a leap year, March day of Nowruz."""
    gy = jy + 621
    leap_j = -14
    jp = BREAKS[0]
    jump = 0
    for jm in BREAKS[1:]:
        jump = jm - jp
        if jy < jm:
            break
        leap_j += _div(jump, 33) * 8 + _div(_mod(jump, 33), 4)
        jp = jm
    n = jy - jp
    leap_j += _div(n, 33) * 8 + _div(_mod(n, 33) + 3, 4)
    if _mod(jump, 33) == 4 and jump - n == 4:
        leap_j += 1
    leap_g = _div(gy, 4) - _div((_div(gy, 100) + 1) * 3, 4) - 150
    march = 20 + leap_j - leap_g
    if jump - n < 6:
        n = n - jump + _div(jump + 4, 33) * 33
    leap = _mod(_mod(n + 1, 33) - 1, 4)
    if leap == -1:
        leap = 4
    return leap, gy, march


def j_leap(jy):
    return jal_cal(jy)[0] == 0


def j2g(jy, jm, jd):
    _, gy, march = jal_cal(jy)
    base = date(gy, 3, march).toordinal()
    return date.fromordinal(base + (jm - 1) * 31 - _div(jm, 7) * (jm - 7) + jd - 1)


def g2j(d):
    gy = d.year
    jy = gy - 621
    leap, _, march = jal_cal(jy)
    k = d.toordinal() - date(gy, 3, march).toordinal()
    if k >= 0:
        if k <= 185:
            return jy, 1 + _div(k, 31), _mod(k, 31) + 1
        k -= 186
    else:
        jy -= 1
        k += 179
        if leap == 1:
            k += 1
    return jy, 7 + _div(k, 30), _mod(k, 30) + 1


def j_month_len(jy, jm):
    return 31 if jm <= 6 else 30 if jm <= 11 else (30 if j_leap(jy) else 29)


# ---------------------------------------------------------------- text

def norm(s):
    """text_normalize: digits, Arabic yeh/kaf, trim, collapse, ASCII lower."""
    out = []
    for ch in s:
        o = ord(ch)
        if 0x6F0 <= o <= 0x6F9:
            ch = chr(o - 0x6F0 + 48)
        elif 0x660 <= o <= 0x669:
            ch = chr(o - 0x660 + 48)
        elif o == 0x64A:
            ch = "\u06cc"
        elif o == 0x643:
            ch = "\u06a9"
        out.append(ch)
    s = "".join(out)
    s = " ".join(s.split())
    return "".join(c.lower() if c.isascii() else c for c in s)


def num_of(s):
    """A strict decimal number, or None."""
    if not s or any(c not in "0123456789+-.eE" for c in s):
        return None
    try:
        return float(s)
    except ValueError:
        return None


def typed(raw, is_json):
    """(kind, value, text): kind 'bool' | 'text'; value a number or None."""
    if raw is None:
        return None
    if not is_json:
        t = norm(raw)
        return ("text", num_of(t), t)
    if raw in ("true", "false"):
        return ("bool", raw == "true", raw)
    v = json.loads(raw)
    if isinstance(v, str):
        t = norm(v)
        return ("text", num_of(t), t)
    return ("text", float(v), raw)


def cmp_ok(op, c):
    return {"eq": c == 0, "ne": c != 0, "lt": c < 0, "le": c <= 0, "gt": c > 0, "ge": c >= 0}[op]


def eval_cmp(cond, raw, is_json):
    op, want = cond["op"], cond.get("value")
    x = typed(raw, is_json)
    if x is None:
        return op == "ne" or (op == "exists" and want is False)
    kind, num, text = x
    if op == "exists":
        return want is not False
    if op == "contains":
        return norm(want) in text
    if isinstance(want, bool):
        eq = (kind == "bool" and num == want) or (kind == "text" and text == ("true" if want else "false"))
        return eq if op == "eq" else not eq
    if isinstance(want, (int, float)):
        wnum, wtext = float(want), None
    else:
        wtext = norm(want)
        wnum = num_of(wtext)
    if kind == "bool":
        num = None
    if wnum is not None and num is not None:
        return cmp_ok(op, (num > wnum) - (num < wnum))
    if wtext is None or (wnum is not None and op not in ("eq", "ne")):
        return op == "ne"
    return cmp_ok(op, (text > wtext) - (text < wtext))


# ---------------------------------------------------------------- dates

def lenient_date(s):
    """('G'|'J', y or 0, m, d), or None (segment_date_lenient)."""
    s = norm(s)
    cal = None
    if s.startswith("j:"):
        cal, s = "J", s[2:]
    yearless = s.startswith("--")
    parts = (s[2:] if yearless else s).replace("/", "-").split("-")
    if yearless:
        if len(parts) != 2:
            return None
        y, (m, d) = 0, parts
    else:
        if len(parts) != 3 or len(parts[0]) != 4:
            return None
        y, m, d = parts
    for p in ([y] if y else []) + [m, d]:
        if not p.isdigit() or (p is not y and len(p) > 2):
            return None
    y, m, d = int(y), int(m), int(d)
    if cal is None:
        cal = "J" if (y and y < 1700) else "G"
    if not 1 <= m <= 12 or d < 1:
        return None
    if cal == "G":
        lim = [31, 29 if (not y or (y % 4 == 0 and (y % 100 or y % 400 == 0))) else 28, 31, 30, 31, 30,
               31, 31, 30, 31, 30, 31][m - 1]
    else:
        lim = (31 if m <= 6 else 30) if not y else j_month_len(y, m)
    return (cal, y, m, d) if d <= lim else None


def g_leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def date_value(c, src):
    """('I', ms) or ('C', cdate) or None."""
    def from_json(raw):
        if raw is None:
            return None
        v = json.loads(raw)
        if isinstance(v, str):
            cd = lenient_date(v)
            if cd:
                return ("C", cd)
            try:
                return ("I", int(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1000))
            except ValueError:
                return None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return ("I", int(v))
        return None

    if src == "joined":
        return from_json(c.get("x:joined")) or ("I", int(c["created"]))
    if src in ("created", "last_purchase"):
        return ("I", int(c[src])) if c.get(src) else None
    if src == "birthday":
        return from_json(c.get("x:birthday"))
    return from_json(c.get("x:" + src[5:]))


def instant(dv):
    if dv[0] == "I":
        return dv[1]
    cal, y, m, d = dv[1]
    if not y:
        return None
    g = date(y, m, d) if cal == "G" else j2g(y, m, d)
    return (g.toordinal() - date(1970, 1, 1).toordinal()) * DAY


def month_of(dv, jalali, today):
    if dv[0] == "I":
        g = datetime.fromtimestamp(dv[1] / 1000, timezone.utc).date()
    else:
        cal, _, m, d = dv[1]
        if cal == "G":
            y = today.year
            if m == 2 and d == 29 and not g_leap(y):
                d = 28
            g = date(y, m, d)
        else:
            jy = g2j(today)[0]
            if m == 12 and d == 30 and not j_leap(jy):
                d = 29
            g = j2g(jy, m, d)
    return g2j(g)[1] if jalali else g.month


def eval_date(cond, c, now, today):
    dv = date_value(c, cond["date"])
    op = cond["op"]
    if op == "exists":
        return (dv is not None) == cond.get("value", True)
    if dv is None:
        return False
    if op == "month":
        jal = cond.get("calendar") == "jalali"
        want = cond["value"]
        if want in ("current", "next"):
            cur = g2j(today)[1] if jal else today.month
            want = cur if want == "current" else cur % 12 + 1
        return month_of(dv, jal, today) == want
    t = instant(dv)
    if t is None:
        return False
    v = cond["value"]
    if op == "within_last":
        return now - int(v[:-1]) * DAY <= t <= now
    if v.endswith("d"):
        ref = now - int(v[:-1]) * DAY
    else:
        ref = (date.fromisoformat(v).toordinal() - date(1970, 1, 1).toordinal()) * DAY
    return t < ref if op == "before" else t > ref


# ---------------------------------------------------------------- evaluation

CATS = ("transactional", "promotional", "survey", "lottery", "occasion")


def evaluate(cond, c, eng, now, today):
    if "all" in cond:
        return all(evaluate(x, c, eng, now, today) for x in cond["all"])
    if "any" in cond:
        return any(evaluate(x, c, eng, now, today) for x in cond["any"])
    if "not" in cond:
        return not evaluate(cond["not"], c, eng, now, today)
    if "tags" in cond:
        t = set(json.loads(c.get("tags", "[]")))
        spec = cond["tags"]
        return (all(x in t for x in spec.get("all", [])) and not any(x in t for x in spec.get("none", []))
                and (not spec.get("any") or any(x in t for x in spec["any"])))
    if "tier" in cond:
        tier = c.get("tier")
        return (tier in cond["tier"]["in"]) if tier else (None in cond["tier"]["in"])
    if "attr" in cond:
        return eval_cmp(cond, c.get("x:" + cond["attr"]), True)
    if "field" in cond:
        return eval_cmp(cond, c.get(cond["field"]), False)
    if "date" in cond:
        return eval_date(cond, c, now, today)
    if "engaged" in cond:
        return c["id"] in eng.get((cond["engaged"], cond["id"]), set())
    if "reachable" in cond:
        prefs = json.loads(c.get("prefs", "{}"))
        kinds = ("sms", "email", "chat") if cond["reachable"] == "any" else (cond["reachable"],)
        cat = cond.get("category")
        for k in kinds:
            if not c.get("a:" + k) or prefs.get("consent", {}).get(k) is False:
                continue
            if cat and cat != "transactional" and prefs.get("categories", {}).get(cat) is False:
                continue
            return True
        return False
    if not cond:
        return True
    raise AssertionError("no evaluator for %r" % cond)


# ---------------------------------------------------------------- fixture

TAGS = ["vip", "tehran", "new", "inactive", "b2b", "مشتری-ویژه"]
CITIES = ["Tehran", "tehran ", "تهران", "Shiraz", "شيراز", "شیراز", "Isfahan", "ISFAHAN", "Mashhad"]
CAMPS = ["yalda-1403", "nowruz"]


def rand_birthday(rng):
    k = rng.randrange(8)
    if k == 0:
        y = rng.choice([1972, 1984, 1996, 2000])  # leap years: Feb 29 possible
        m = rng.randrange(1, 13)
        d = rng.randrange(1, [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1] + 1)
        return "%04d-%02d-%02d" % (y, m, d)
    if k == 1:
        jy = rng.randrange(1330, 1386)
        jm = rng.randrange(1, 13)
        jd = rng.randrange(1, j_month_len(jy, jm) + 1)
        return "j:%04d-%02d-%02d" % (jy, jm, jd)
    if k == 2:
        m = rng.randrange(1, 13)
        return "--%02d-%02d" % (m, rng.randrange(1, [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1] + 1))
    if k == 3:
        m = rng.randrange(1, 13)
        return "j:--%02d-%02d" % (m, rng.randrange(1, (31 if m <= 6 else 30) + 1))
    if k == 4:
        return rng.choice(["--02-29", "j:--12-30", "j:1375-12-30", "1996-02-29"])
    if k == 5:  # as people type it: Persian digits and slashes
        jy = rng.randrange(1340, 1380)
        jm = rng.randrange(1, 13)
        s = "%d/%d/%d" % (jy, jm, rng.randrange(1, 30))
        return s.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    if k == 6:
        return rng.choice(["unknown", "1990-13-01", "j:1404-12-30"])
    return None


def make_fixture(r, n, now, seed=20260315):
    rng = random.Random(seed)
    contacts, eng = [], {}
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        cid = "01JSEG%020d" % i
        c = {"id": cid, "v": "1"}
        c["created"] = str(int(now - (rng.randrange(0, 900) + 0.37) * DAY))
        c["updated"] = c["created"]
        if rng.random() < 0.9:
            c["name"] = rng.choice(["Sara", "Ali", "سارا", "علی", "Reza, Jr.", "Mina \"M\""]) + " %d" % i
        tags = sorted(set(rng.sample(TAGS, rng.randrange(0, 4))))
        if tags or rng.random() < 0.5:
            c["tags"] = json.dumps(tags, ensure_ascii=False, separators=(",", ":"))
        if rng.random() < 0.7:
            c["tier"] = rng.choice(["gold", "silver", "bronze"])
        if rng.random() < 0.8:
            c["x:city"] = json.dumps(rng.choice(CITIES), ensure_ascii=False)
        k = rng.random()
        if k < 0.5:
            c["x:age"] = str(rng.randrange(15, 80))
        elif k < 0.7:
            c["x:age"] = json.dumps(str(rng.randrange(15, 80)).translate(
                str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")), ensure_ascii=False)
        elif k < 0.75:
            c["x:age"] = rng.choice(["true", "\"unknown\"", "99999999999999999999"])
        if rng.random() < 0.6:
            c["points"] = str(rng.randrange(0, 2000))
        if rng.random() < 0.6:
            c["last_purchase"] = str(int(now - (rng.randrange(0, 120) + 0.5) * DAY))
        if rng.random() < 0.15:
            c["x:joined"] = json.dumps(rng.choice(["2019-05-01", "2023-12-31", "j:1402-01-01", "2024-06-01"]))
        bd = rand_birthday(rng)
        if bd is not None:
            c["x:birthday"] = json.dumps(bd, ensure_ascii=False)
        if rng.random() < 0.7:
            c["a:sms"] = "+98912%07d" % i
        if rng.random() < 0.4:
            c["a:email"] = "c%d@example.com" % i
        if rng.random() < 0.2:
            c["a:chat"] = str(100000 + i)
        prefs = {}
        if rng.random() < 0.3:
            prefs["consent"] = {k: rng.random() < 0.5 for k in rng.sample(["sms", "email", "chat"], 2)}
        if rng.random() < 0.3:
            prefs["categories"] = {"promotional": rng.random() < 0.4}
        if prefs:
            c["prefs"] = json.dumps(prefs, separators=(",", ":"))
        for camp in CAMPS:
            if rng.random() < 0.5:
                eng.setdefault(("sent", camp), set()).add(cid)
                if rng.random() < 0.3:
                    eng.setdefault(("replied", camp), set()).add(cid)
        contacts.append(c)
        pipe.hset(P + "c:" + cid, mapping=c)
        pipe.zadd(P + "contacts", {cid: 0})
        for t in tags:
            pipe.sadd(P + "tag:" + t, cid)
            pipe.sadd(P + "ct:" + cid, t)
        for k in ("sms", "email", "chat"):
            if c.get("a:" + k):
                pipe.set(P + "ix:%s:%s" % (k, c["a:" + k]), cid)
        if i % 500 == 499:
            pipe.execute()
    for (what, ref), ids in eng.items():
        pipe.sadd(P + "eng:%s:%s" % (what, ref), *sorted(ids))
    pipe.execute()
    return contacts, eng


def export_ids(cl, sid):
    r = cl.get("/v1/segments/%s/export?format=ndjson" % sid)
    check(r.status == 200, "export %s -> %r" % (sid, r))
    return [json.loads(ln)["id"] for ln in r.text.splitlines() if ln.strip()]


# ---------------------------------------------------------------- tests

@timeout(60)
def test_segment_crud(fx):
    d = fx.clubd(fx.redis())
    mk, view, adm = d.client("marketer"), d.client("viewer"), d.client("admin")
    body = {"id": "vip-tehran", "name": "VIP در تهران", "description": "مشتریان ویژه",
            "match": {"all": [{"tags": {"any": ["vip"]}}, {"attr": "city", "op": "eq", "value": "تهران"}]}}
    r = mk.post("/v1/segments", body)
    check(r.status == 201 and r.json["v"] == 1 and r.json["id"] == "vip-tehran", "create -> %r" % r)
    check(r.json["match"] == body["match"] and r.json["name"] == body["name"], "stored form %r" % r.json)
    check(mk.post("/v1/segments", body).status == 409, "duplicate id not 409")
    check(view.post("/v1/segments", dict(body, id="x")).status == 403, "viewer may not create")
    g = view.get("/v1/segments/vip-tehran")
    check(g.status == 200 and g.json["v"] == 1 and g.json.get("updated_at"), "get -> %r" % g)
    gen = mk.post("/v1/segments", {"match": {}})
    check(gen.status == 201 and len(gen.json["id"]) == 26 and gen.json["name"] is None, "generated id %r" % gen)

    # replace: the version read is checked when given
    upd = dict(g.json, name="VIP")
    r = mk.request("PUT", "/v1/segments/vip-tehran", body=upd)
    check(r.status == 200 and r.json["v"] == 2 and r.json["name"] == "VIP", "put -> %r" % r)
    r = mk.request("PUT", "/v1/segments/vip-tehran", body=upd)  # still says v 1
    check(r.status == 409 and r.err_field() == "v", "stale version -> %r" % r)
    r = mk.request("PUT", "/v1/segments/nope", body={"match": {}})
    check(r.status == 404, "put unknown -> %r" % r)
    r = mk.request("PUT", "/v1/segments/vip-tehran", body={"id": "other", "match": {}})
    check(r.status == 400 and r.err_field() == "id", "id mismatch -> %r" % r)

    # validation names the field
    bad = [({"match": {"all": [{"tags": {"all": ["vip"]}}, {"attr": "city", "op": "like", "value": 1}]}},
            "match.all[1].op"),
           ({"match": {"date": "birthday", "op": "month", "value": 13}}, "match.value"),
           ({"match": {"not": {"engaged": "replied"}}}, "match.not.id"),
           ({"match": {"reachable": "sms", "category": "spam"}}, "match.category"),
           ({"name": "x"}, "match"),
           ({"match": {}, "colour": "red"}, "colour"),
           ({"id": "bad id", "match": {}}, "id"),
           ({"name": "a\nb", "match": {}}, "name")]
    for b, field in bad:
        r = mk.post("/v1/segments", b)
        check(r.status == 400 and r.err_field() == field, "%r -> %r (want field %s)" % (b, r, field))

    # list pages
    for i in range(5):
        check(mk.post("/v1/segments", {"id": "s%d" % i, "match": {}}).status == 201, "create s%d" % i)
    seen, cursor = [], None
    for _ in range(10):
        r = view.get("/v1/segments?limit=3" + ("&cursor=" + cursor if cursor else ""))
        check(r.status == 200, "list -> %r" % r)
        seen += [x["id"] for x in r.json["items"]]
        cursor = r.json["next_cursor"]
        if not cursor:
            break
    check(seen == sorted(seen) and len(seen) == 7 and "vip-tehran" in seen, "pages %r" % seen)

    # delete; a re-created id never reuses a version
    check(view.delete("/v1/segments/s0").status == 403, "viewer delete")
    check(mk.delete("/v1/segments/vip-tehran").status == 204, "delete")
    check(mk.delete("/v1/segments/vip-tehran").status == 404, "delete twice")
    check(view.get("/v1/segments/vip-tehran").status == 404, "get deleted")
    r = mk.post("/v1/segments", body)
    check(r.status == 201 and r.json["v"] == 3, "re-created keeps counting versions: %r" % r)
    check(adm.get("/v1/segments/vip-tehran/preview?sample=500").status == 400, "sample bound")
    check(adm.get("/v1/segments/nothing/preview").status == 404, "preview unknown")
    check(adm.get("/v1/segments/nothing/export").status == 404, "export unknown")
    check(view.get("/v1/segments/vip-tehran/export").status == 403, "viewer export")
    check(mk.get("/v1/segments/vip-tehran/export?format=xml").status == 400, "bad format")


@timeout(300)
def test_segment_semantics(fx):
    red = fx.redis()
    d = fx.clubd(red)
    mk = d.client("marketer")
    mk.timeout_s = 60
    now = int(time.time() * 1000)
    contacts, eng = make_fixture(red.client(), 3000, now)
    today = datetime.now(timezone.utc).date()
    tm = datetime.now(timezone.utc)
    near_midnight = tm.hour == 23 and tm.minute >= 50

    defs = [
        {"tags": {"all": ["vip"]}},
        {"tags": {"any": ["vip", "b2b"]}},
        {"tags": {"none": ["inactive"]}},
        {"tags": {"all": ["مشتری-ویژه"], "none": ["new"]}},
        {"tier": {"in": ["gold"]}},
        {"tier": {"in": ["silver", None]}},
        {"attr": "city", "op": "eq", "value": "tehran"},
        {"attr": "city", "op": "eq", "value": "شیراز"},
        {"attr": "city", "op": "ne", "value": "Isfahan"},
        {"attr": "city", "op": "contains", "value": "HRA"},
        {"attr": "city", "op": "exists"},
        {"attr": "city", "op": "exists", "value": False},
        {"attr": "city", "op": "lt", "value": "n"},
        {"attr": "age", "op": "gt", "value": 40},
        {"attr": "age", "op": "le", "value": 30},
        {"attr": "age", "op": "ge", "value": "۴۰"},
        {"attr": "age", "op": "eq", "value": 35},
        {"attr": "age", "op": "ne", "value": 35},
        {"attr": "age", "op": "eq", "value": True},
        {"field": "points", "op": "ge", "value": 500},
        {"field": "tier", "op": "ne", "value": "GOLD"},
        {"date": "last_purchase", "op": "within_last", "value": "30d"},
        {"not": {"date": "last_purchase", "op": "within_last", "value": "30d"}},
        {"date": "last_purchase", "op": "before", "value": "60d"},
        {"date": "created", "op": "after", "value": "2025-06-01"},
        {"date": "joined", "op": "before", "value": "2024-01-01"},
        {"date": "birthday", "op": "exists"},
        {"date": "birthday", "op": "exists", "value": False},
        {"date": "birthday", "op": "before", "value": "1980-01-01"},
    ]
    for m in (1, 2, 3, 6, 12):
        defs.append({"date": "birthday", "op": "month", "value": m})
        defs.append({"date": "birthday", "op": "month", "value": m, "calendar": "jalali"})
    if not near_midnight:
        defs += [{"date": "birthday", "op": "month", "value": "current", "calendar": "jalali"},
                 {"date": "birthday", "op": "month", "value": "next"}]
    defs += [
        {"engaged": "replied", "id": "yalda-1403"},
        {"all": [{"engaged": "sent", "id": "yalda-1403"}, {"not": {"engaged": "replied", "id": "yalda-1403"}}]},
        {"any": [{"engaged": "replied", "id": "yalda-1403"}, {"engaged": "replied", "id": "nowruz"}]},
        {"reachable": "sms", "category": "promotional"},
        {"reachable": "email"},
        {"reachable": "any", "category": "promotional"},
        {"not": {"reachable": "any"}},
        {"all": [{"tags": {"any": ["vip"]}}, {"reachable": "sms", "category": "promotional"},
                 {"not": {"engaged": "replied", "id": "nowruz"}}, {"attr": "age", "op": "ge", "value": 25}]},
        {"any": [{"tier": {"in": ["gold"]}}, {"all": [{"date": "birthday", "op": "month", "value": 12,
                                                        "calendar": "jalali"}, {"tags": {"none": ["inactive"]}}]}]},
        {},
    ]
    nonempty = 0
    for i, cond in enumerate(defs):
        want = sorted(c["id"] for c in contacts if evaluate(cond, c, eng, now, today))
        sid = "sem%02d" % i
        r = mk.post("/v1/segments", {"id": sid, "match": cond})
        check(r.status == 201, "save %r -> %r" % (cond, r))
        got = export_ids(mk, sid)
        if got != want:
            extra, missing = sorted(set(got) - set(want))[:5], sorted(set(want) - set(got))[:5]
            byid = {c["id"]: c for c in contacts}
            fail_detail = [byid[x] for x in (extra + missing)[:3]]
            check(False, "%s %s: got %d want %d; extra %r missing %r; e.g. %s" % (
                sid, json.dumps(cond, ensure_ascii=False), len(got), len(want), extra, missing,
                json.dumps(fail_detail, ensure_ascii=False)))
        p = mk.get("/v1/segments/%s/preview?sample=5" % sid)
        check(p.status == 200 and p.json["count"] == len(want) and p.json["examined"] == 3000,
              "preview %s -> %r (want %d)" % (sid, p, len(want)))
        check([x["id"] for x in p.json["sample"]] == want[:5], "sample %s: %r" % (sid, p.json["sample"]))
        nonempty += 0 < len(want) < 3000
    check(nonempty >= len(defs) - 4, "the fixture should make most definitions select some but not all")
    fx.note("%d definitions checked against an independent evaluation of 3000 contacts" % len(defs))


@timeout(60)
def test_preview_inline(fx):
    d = fx.clubd(fx.redis())
    mk, view = d.client("marketer"), d.client("viewer")
    ids = []
    for i in range(30):
        ids.append(mk.create_contact({"name": "مشتری %d" % i, "addresses": {"sms": "0912000%04d" % i},
                                      "tags": ["vip"] if i % 3 == 0 else [],
                                      "attrs": {"visits": i}})["id"])
    r = view.post("/v1/segments/preview?sample=3", {"match": {"tags": {"all": ["vip"]}}})
    check(r.status == 200 and r.json["count"] == 10 and r.json["examined"] == 30, "preview -> %r" % r)
    s = r.json["sample"]
    check([x["id"] for x in s] == [ids[0], ids[3], ids[6]], "sample order %r" % s)
    check(s[1]["name"] == "مشتری 3" and s[1]["addresses"] == {"sms": "+989120000003"}, "sample fields %r" % s)
    check(isinstance(r.json["elapsed_ms"], int) and r.json["elapsed_ms"] >= 0, "elapsed_ms %r" % r.json)
    # a bare condition works too; sample=0 gives only the count
    r = view.post("/v1/segments/preview?sample=0", {"attr": "visits", "op": "ge", "value": "۲۰"})
    check(r.status == 200 and r.json["count"] == 10 and r.json["sample"] == [], "bare -> %r" % r)
    r = view.post("/v1/segments/preview", {"match": {"attr": "visits", "op": "between", "value": 1}})
    check(r.status == 400 and r.err_field() == "match.op", "bad op -> %r" % r)
    r = view.post("/v1/segments/preview?sample=101", {"match": {}})
    check(r.status == 400 and r.err_field() == "sample", "sample bound -> %r" % r)
    check(d.client(None).post("/v1/segments/preview", {"match": {}}, token=None).status == 401, "no token")


@timeout(120)
def test_export_formats(fx):
    d = fx.clubd(fx.redis())
    mk = d.client("marketer")
    tricky = [("Reza, Jr.", ["vip", "a;b"]), ("Mina \"M\"", []), ("دو\nخطی", ["مشتری"]), (" padded ", ["x"])]
    ids = []
    for i, (name, tags) in enumerate(tricky):
        ids.append(mk.create_contact({"name": name.replace("\n", " ") if i == 2 else name,
                                      "addresses": {"sms": "0913000%04d" % i}, "tags": tags,
                                      "attrs": {"city": "تهران", "n": i}})["id"])
    # enough contacts for several scan batches
    body = "".join(json.dumps({"name": "c%d" % i, "addresses": {"email": "c%d@example.com" % i}}) + "\n"
                   for i in range(1200))
    r = mk.request("POST", "/v1/contacts/import?format=ndjson", raw=body, ctype="application/x-ndjson")
    check(r.status == 200 and r.json["created"] == 1200, "seed import -> %r" % r)

    r = mk.get("/v1/contacts/export")
    check(r.status == 200 and r.headers.get("Content-Type", "").startswith("text/csv"), "csv export -> %r" % r)
    check(r.headers.get("Transfer-Encoding") == "chunked", "not streamed: %r" % r.headers)
    check('filename="contacts.csv"' in r.headers.get("Content-Disposition", ""), "disposition %r" % r.headers)
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    check(len(rows) == 1204, "csv rows %d" % len(rows))
    check([x["id"] for x in rows[:4]] == ids, "order %r" % [x["id"] for x in rows[:4]])
    check(rows[0]["name"] == "Reza, Jr." and rows[1]["name"] == 'Mina "M"' and rows[3]["name"] == " padded ",
          "quoted names %r" % rows[:4])
    check(rows[0]["tags"] == '["vip","a;b"]' and rows[2]["tags"] == "مشتری", "tags cells %r" % rows[:3])
    check(json.loads(rows[0]["attrs"]) == {"city": "تهران", "n": 0} and rows[0]["phone"] == "+989130000000",
          "attrs/phone %r" % rows[0])
    check(rows[10]["attrs"] == "" and rows[10]["email"].endswith("@example.com"), "empty attrs %r" % rows[10])

    r = mk.get("/v1/contacts/export?format=ndjson")
    lines = [json.loads(x) for x in r.text.splitlines()]
    check(r.status == 200 and len(lines) == 1204 and lines[2]["tags"] == ["مشتری"], "ndjson export")
    r = mk.get("/v1/contacts/export?bom=1")
    check(r.text.startswith("\ufeffid,name,"), "bom: %r" % r.text[:20])
    check(d.client("viewer").get("/v1/contacts/export").status == 403, "viewer export")
    check(mk.get("/v1/contacts/export?format=xls").status == 400, "bad format")
    # a client that goes away in the middle: the daemon carries on
    import socket
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(("GET /v1/contacts/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
               % fx.tokens["marketer"]).encode())
    s.recv(100)
    s.close()
    check(mk.get("/v1/segments").status == 200, "daemon after an abandoned export")
