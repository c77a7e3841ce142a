"""Tracked links through the real daemon: POST /v1/links makes a short link for a
contact and campaign; GET /l/{code} answers 302 to the URL and counts the click
(clicks, per-variant clicks, unique clickers once per contact, the engagement set
eng:clicked:{camp}, a "click" entry on the contact's timeline); HEAD requests and
link-preview bots are redirected but not counted; unknown, expired and malformed
codes get a plain-text 404 and count nothing; URLs with CR/LF or other schemes are
refused at creation; without [links] base_url creation answers 409; the save
script the dispatcher uses writes a batch of links all or nothing."""

import os
import urllib.parse

from harness import ROOT, Client, check, raw_http, timeout, wait_until

BASE = "https://s.example.com"
P = "clubd:"
URL = "https://shop.example/yalda?utm_source=sms&q=سلام"
URL_LOCATION = "https://shop.example/yalda?utm_source=sms&q=" + urllib.parse.quote("سلام")


def header(r, name):
    for k, v in r.headers.items():
        if k.lower() == name.lower():
            return v
    return None


def click(d, code, method="GET", headers=None):
    return Client(d.port).request(method, "/l/" + code, token=None, headers=headers)


def plain_404(r, what):
    check(r.status == 404, "%s: expected 404, got %r" % (what, r))
    check(r.text == "not found\n", "%s: body %r" % (what, r.text))
    check((header(r, "Content-Type") or "").startswith("text/plain"),
          "%s: Content-Type %r" % (what, header(r, "Content-Type")))
    check(header(r, "Location") is None, "%s: a Location header" % what)


@timeout(60)
def test_links_click_counts(fx):
    r = fx.redis()
    d = fx.clubd(r, overrides={"links": {"base_url": BASE + "/"}})
    rc = r.client()
    mk, view = d.client("marketer"), d.client("viewer")
    cid = mk.create_contact({"name": "سارا", "addresses": {"sms": "09121234567"}})["id"]

    x = mk.post("/v1/links", {"url": URL, "contact_id": cid, "campaign": "yalda1403",
                              "variant": "A"})
    check(x.status == 201, "POST /v1/links -> %r" % x)
    code = x.json["code"]
    check(len(code) == 10 and code.isascii() and code.isalnum(), "code %r" % code)
    check(x.json["short_url"] == BASE + "/l/" + code, "short_url %r" % x.json)
    check(x.json["url"] == URL and x.json["contact_id"] == cid and
          x.json["campaign"] == "yalda1403" and x.json["variant"] == "A", "echo %r" % x.json)
    ttl = rc.ttl(P + "ln:" + code)
    check(89 * 86400 < ttl <= 90 * 86400, "ln:{code} TTL %r (default 90 days)" % ttl)
    other = mk.post("/v1/links", {"url": URL, "contact_id": cid, "campaign": "yalda1403",
                                  "variant": "A"}).json["code"]
    check(other != code, "the same URL got the same code twice")

    # HEAD and link-preview bots are redirected, not counted
    h = click(d, code, "HEAD")
    check(h.status == 302 and header(h, "Location") == URL_LOCATION, "HEAD -> %r %r" % (h, h.headers))
    for ua in ("TelegramBot (like TwitterBot)", "facebookexternalhit/1.1",
               "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
               "WhatsApp/2.23.20.0"):
        b = click(d, code, headers={"User-Agent": ua})
        check(b.status == 302, "bot %s -> %r" % (ua, b))
    b = click(d, code, headers={"Sec-Purpose": "prefetch"})
    check(b.status == 302, "prefetch -> %r" % b)
    check(rc.hget(P + "ln:" + code, "n") == "0", "HEAD/bots counted: %r" % rc.hgetall(P + "ln:" + code))
    check(not rc.exists(P + "cs:yalda1403"), "HEAD/bots touched the campaign counters")

    # two real clicks (a phone whose model contains "bot" is not a bot)
    for ua in ("Mozilla/5.0 (Linux; Android 9; CUBOT X19) Chrome/120.0 Mobile", None):
        c = click(d, code, headers={"User-Agent": ua} if ua else None)
        check(c.status == 302, "click -> %r" % c)
        check(header(c, "Location") == URL_LOCATION, "Location %r" % header(c, "Location"))
        check(c.text == "", "302 with a body %r" % c.text)
        check(header(c, "Cache-Control") == "no-store", "302 without Cache-Control: no-store")
    cs = rc.hgetall(P + "cs:yalda1403")
    check(cs == {"clicks": "2", "A:clicks": "2", "clickers": "1", "A:clickers": "1"},
          "cs:yalda1403 %r" % cs)
    check(rc.smembers(P + "eng:clicked:yalda1403") == {cid}, "eng:clicked %r"
          % rc.smembers(P + "eng:clicked:yalda1403"))
    # a click on the second link of the same contact: one more click, still one clicker
    check(click(d, other).status == 302, "second link")
    cs = rc.hgetall(P + "cs:yalda1403")
    check(cs["clicks"] == "3" and cs["clickers"] == "1" and cs["A:clickers"] == "1", "cs %r" % cs)

    tl = view.get("/v1/contacts/%s/timeline" % cid)
    check(tl.status == 200, "timeline -> %r" % tl)
    clicks = [e for e in tl.json["items"] if e.get("type") == "click"]
    check(len(clicks) == 3, "timeline clicks %r" % tl.json["items"])
    check(clicks[-1]["link"] == code and clicks[-1]["url"] == URL and
          clicks[-1]["camp"] == "yalda1403" and clicks[-1]["var"] == "A", "entry %r" % clicks[-1])

    g = view.get("/v1/links/" + code)
    check(g.status == 200, "GET /v1/links/{code} -> %r" % g)
    j = g.json
    check(j["clicks"] == 2 and j["url"] == URL and j["campaign"] == "yalda1403" and
          j["variant"] == "A" and j["contact_id"] == cid and j["message_id"] is None and
          j["short_url"] == BASE + "/l/" + code and j["first_click"] and j["created_at"] and
          j["expires_at"], "link %r" % j)
    check(j["first_click"] >= j["created_at"], "first_click before created_at: %r" % j)
    check(view.get("/v1/links/" + other).json["clicks"] == 1, "the other link's clicks")

    # a link without contact or campaign counts on the link only
    bare = mk.post("/v1/links", {"url": "http://shop.example/"}).json
    check(bare.keys() == {"code", "url", "short_url", "expires_at"}, "bare link %r" % bare)
    check(click(d, bare["code"]).status == 302, "bare click")
    check(view.get("/v1/links/" + bare["code"]).json["clicks"] == 1, "bare clicks")

    # an erased contact: the click counts, the contact is not tracked again
    gone = mk.create_contact({"name": "Reza", "addresses": {"sms": "09121230000"}})["id"]
    gl = mk.post("/v1/links", {"url": URL, "contact_id": gone, "campaign": "yalda1403",
                               "variant": "B"}).json["code"]
    check(d.client("admin").delete("/v1/contacts/" + gone).status == 204, "erase contact")
    check(click(d, gl).status == 302, "click of an erased contact")
    cs = rc.hgetall(P + "cs:yalda1403")
    check(cs["clicks"] == "4" and cs["B:clicks"] == "1" and cs["clickers"] == "1" and
          "B:clickers" not in cs, "erased contact counted as clicker: %r" % cs)
    check(not rc.exists(P + "tl:" + gone), "timeline written for an erased contact")

    # expired: gone like an unknown code, and nothing counted
    rc.pexpire(P + "ln:" + other, 1)
    wait_until(lambda: not rc.exists(P + "ln:" + other), 5, "ln:{code} expired")
    plain_404(click(d, other), "expired code")
    check(rc.hget(P + "cs:yalda1403", "clicks") == "4", "expired link counted")


@timeout(60)
def test_links_not_found_and_malformed(fx):
    r = fx.redis()
    d = fx.clubd(r, overrides={"links": {"base_url": BASE}})
    rc = r.client()
    mk, view = d.client("marketer"), d.client("viewer")
    code = mk.post("/v1/links", {"url": URL, "campaign": "c1"}).json["code"]
    plain_404(click(d, "ZZZZZZZZZZ" if code != "ZZZZZZZZZZ" else "YYYYYYYYYY"), "unknown code")
    # (libmicrohttpd decodes the path before clubd sees it and a %00 ends it:
    # code + "%00" arrives as the code itself, so only a NUL inside the
    # 10 characters can be told apart, and is)
    for bad in (code[:9], code + "x", code[:9] + "-", code[:9] + "_",
                code[:9] + "%00", code[:5] + "%00" + code[5:9], code[:9] + "%21",
                code[:9] + "%C3%A9"):
        plain_404(click(d, bad), "code %r" % bad)
    # other shapes of the path: no route, the generic 404
    for path in ("/l/", "/l/%00", "/l/%s/" % code, "/l/%s/x" % code, "/l", "/l/..%2F..%2Fx",
                 "/l/" + code[:9] + "%2F"):
        x = Client(d.port).request("GET", path, token=None)
        check(x.status == 404, "%s -> %r" % (path, x))
    # the raw request line, byte for byte
    st, body = raw_http(d.port, b"GET /l/" + code[:8].encode() + b"%00%00 HTTP/1.1\r\n"
                        b"Host: x\r\nConnection: close\r\n\r\n")
    check(st == 404 and body == "not found\n", "raw %%00 -> %d %r" % (st, body))
    check(rc.hget(P + "ln:" + code, "n") == "0" and not rc.exists(P + "cs:c1"),
          "a 404 counted a click")
    # the redirect is public, the stats are not
    check(click(d, code).status == 302, "the real code")
    check(Client(d.port).get("/v1/links/" + code, token=None).status == 401, "stats need a token")
    x = view.get("/v1/links/" + code[:9])
    check(x.status == 404 and x.err_code() == "not_found", "malformed code stats %r" % x)
    x = view.get("/v1/links/ZZZZZZZZZZ" if code != "ZZZZZZZZZZ" else "/v1/links/YYYYYYYYYY")
    check(x.status == 404 and x.err_code() == "not_found", "unknown code stats %r" % x)
    # a body on the public route is refused like on every body-less route
    x = Client(d.port).request("GET", "/l/" + code, raw=b"{}", token=None)
    check(x.status == 400, "GET /l with a body -> %r" % x)


@timeout(60)
def test_links_create_validation(fx):
    r = fx.redis()
    d = fx.clubd(r, overrides={"links": {"base_url": BASE}})
    rc = r.client()
    mk = d.client("marketer")
    cid = mk.create_contact({"name": "x", "addresses": {"sms": "09121234568"}})["id"]
    cases = [
        ({"url": "https://shop.example/\r\nSet-Cookie: a=1"}, 400, "invalid_field", "url"),
        ({"url": "https://shop.example/\nx"}, 400, "invalid_field", "url"),
        ({"url": "https://shop.example/a b"}, 400, "invalid_field", "url"),
        ({"url": "https://shop.example/\u0085"}, 400, "invalid_field", "url"),
        ({"url": "https://shop.example/\u0000x"}, 400, "invalid_json", None),
        ({"url": "javascript:alert(1)"}, 400, "invalid_field", "url"),
        ({"url": "ftp://shop.example/"}, 400, "invalid_field", "url"),
        ({"url": "https://"}, 400, "invalid_field", "url"),
        ({"url": "https://shop.example/" + "a" * 2100}, 400, "invalid_field", "url"),
        ({"url": 5}, 400, "invalid_field", "url"),
        ({}, 400, "missing_field", "url"),
        ({"url": URL, "extra": 1}, 400, "invalid_field", "extra"),
        ({"url": URL, "variant": "A"}, 400, "missing_field", "campaign"),
        ({"url": URL, "campaign": "a:b"}, 400, "invalid_field", "campaign"),
        ({"url": URL, "campaign": ""}, 400, "invalid_field", "campaign"),
        ({"url": URL, "campaign": "c", "variant": "x y"}, 400, "invalid_field", "variant"),
        ({"url": URL, "message_id": "nope"}, 400, "invalid_field", "message_id"),
        ({"url": URL, "contact_id": "01JD3Z8Q6M0000000000000000"}, 404, "not_found", "contact_id"),
        ({"url": URL, "contact_id": "not-an-id"}, 404, "not_found", "contact_id"),
    ]
    for body, status, code, field in cases:
        x = mk.post("/v1/links", body)
        check(x.status == status and x.err_code() == code and x.err_field() == field,
              "%r -> %r (want %d %s %s)" % (body, x, status, code, field))
    check(not rc.keys(P + "ln:*"), "a refused link was stored: %r" % rc.keys(P + "ln:*"))
    ok = mk.post("/v1/links", {"url": "https://shop.example/" + "a" * (2048 - 21),
                               "contact_id": cid, "message_id": "01JD3Z8Q6M0000000000000001"})
    check(ok.status == 201 and ok.json["message_id"] == "01JD3Z8Q6M0000000000000001",
          "2048-byte URL -> %r" % ok)
    check(d.client("viewer").post("/v1/links", {"url": URL}).status == 403, "viewer may not create")
    check(Client(d.port).post("/v1/links", {"url": URL}, token=None).status == 401, "anonymous")

    # tracking off: creation is refused, nothing stored
    d2 = fx.clubd(r)
    x = d2.client("marketer").post("/v1/links", {"url": URL})
    check(x.status == 409 and x.err_code() == "conflict", "no base_url -> %r" % x)
    check("tracking_off" in d2.stderr(), "no start-up notice about tracking being off")
    check("tracking_off" not in d.stderr(), "tracking_off logged with a base_url")


@timeout(30)
def test_links_save_script_all_or_nothing(fx):
    """daemon/lua/link_save.lua, what store_links_save() runs for the dispatcher:
    every link of a batch or none; a taken code (or one repeated in the batch)
    is a collision; contacts are checked only when asked."""
    with open(os.path.join(ROOT, "daemon", "lua", "link_save.lua"), encoding="utf-8") as f:
        src = f.read()
    rc = fx.redis().client()
    rc.hset(P + "c:C1", "id", "C1")

    def save(check_contacts, *links):
        argv = [P, "1700000000000", "3600", "1" if check_contacts else "0"]
        for ln in links:
            argv += list(ln)
        return rc.eval(src, 0, *argv)

    a = ("AAAAAAAAAA", "https://shop.example/a", "M1", "C1", "camp", "A")
    b = ("BBBBBBBBBB", "https://shop.example/b", "", "C2", "camp", "")
    check(save(True, a, b) == ["no_contact", "C2"], "unknown contact with the check")
    check(not rc.keys(P + "ln:*"), "a refused batch wrote something")
    check(save(False, a, b) == ["ok", 2], "batch of two")
    check(rc.hgetall(P + "ln:AAAAAAAAAA") == {"u": "https://shop.example/a", "m": "M1", "c": "C1",
                                            "k": "camp", "v": "A", "at": "1700000000000", "n": "0"},
          "stored %r" % rc.hgetall(P + "ln:AAAAAAAAAA"))
    check(0 < rc.ttl(P + "ln:BBBBBBBBBB") <= 3600, "TTL")
    c = ("CCCCCCCCCC", "https://shop.example/c", "", "", "", "")
    check(save(False, c, a) == ["collision", "AAAAAAAAAA"], "a taken code")
    check(not rc.exists(P + "ln:CCCCCCCCCC"), "the batch with a collision wrote its other link")
    check(rc.hget(P + "ln:AAAAAAAAAA", "u") == "https://shop.example/a", "a taken code was overwritten")
    check(save(False, c, c) == ["collision", "CCCCCCCCCC"], "a code twice in one batch")
    check(save(False) == ["ok", 0], "an empty batch")
