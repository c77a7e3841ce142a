"""Templates through the real daemon: /v1/templates create/list/get/put/
delete/validate/preview, language fallback (fa, fa-IR, de -> default),
HTML escaping of a contact's name in the email HTML part only, Jalali dates
in the contact's zone, SMS segments of Persian text (UCS-2, 70 in one part,
67 per part beyond) and their cost at [channel.sms] price_per_segment,
template syntax errors with line and column, 404s, versions (PUT bumps v,
a stale v is refused, a re-created id never reuses a version), roles, and
bad input (invalid UTF-8, an oversize body, oversize templates, too many
variants) refused cleanly; then clubctl templates, human and --json.
"""

import json
import math
import os
import subprocess

from harness import CLUBD, ROOT, SLOW, check, free_port, raw_http, timeout

CLUBCTL = os.path.join(os.path.dirname(CLUBD), "clubctl")
PRICE = 750
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

WELCOME = {
    "id": "welcome",
    "name": "خوش‌آمدگویی",
    "default_lang": "en",
    "variants": [
        {"channel": "sms", "lang": "fa",
         "text": "سلام {{first_name|\"مشتری گرامی\"}}! به باشگاه خوش آمدید. شهر: {{attrs.city|\"-\"}}"},
        {"channel": "sms", "lang": "en", "text": "Hi {{first_name|\"friend\"}}, welcome!"},
        {"channel": "email", "lang": "fa", "subject": "خوش آمدید {{first_name}}",
         "text": "سلام {{first_name}}", "html": "<p dir=\"rtl\">سلام <b>{{first_name}}</b></p>"},
        {"channel": "email", "lang": "en", "subject": "Welcome {{first_name}}",
         "text": "Hello {{first_name}}", "html": "<p>Hello <b>{{first_name}}</b></p>"},
    ],
}


def sms_segments(text):
    """What a handset bills: GSM-7 is not possible for Persian, so UCS-2:
    70 code units in one part, else 67 per part."""
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def put(c, path, body):
    return c.request("PUT", path, body=body)


def start(fx):
    """redis + clubd with a Kannel SMS channel that has a price (never sent to)."""
    pw = os.path.join(fx.tmp, "kannel-password")
    with open(pw, "w") as f:
        f.write("secret\n")
    os.chmod(pw, 0o600)
    sms = {"driver": "kannel", "url": "http://127.0.0.1:%d/cgi-bin/sendsms" % free_port(),
           "username": "club", "password_file": pw, "price_per_segment": str(PRICE),
           "max_segments": "3", "timeout": "2s"}
    return fx.clubd(fx.redis(), overrides={"channel.sms": sms})


def make_contacts(d):
    mk = d.client("marketer")
    fa = mk.create_contact({"name": "سارا رضایی", "first_name": "سارا", "lang": "fa",
                            "tz": "Asia/Tehran", "attrs": {"city": "تهران"},
                            "addresses": {"sms": "09121234567"}})
    de = mk.create_contact({"name": "Evil", "first_name": "<script>alert('x')</script>",
                            "lang": "de", "tz": "Europe/Berlin",
                            "addresses": {"email": "evil@example.com"}})
    return fa["id"], de["id"]


@timeout(90)
def test_templates_api(fx):
    d = start(fx)
    mk, view, adm = d.client("marketer"), d.client("viewer"), d.client("admin")
    fa_id, de_id = make_contacts(d)

    # create, conflicts, roles
    r = mk.post("/v1/templates", WELCOME)
    check(r.status == 201, "create -> %r" % r)
    t = r.json
    check(t["id"] == "welcome" and t["v"] == 1 and t["updated_at"].endswith("Z"), "created %r" % t)
    check(t["variants"] == WELCOME["variants"] and t["name"] == WELCOME["name"], "stored form %r" % t)
    r = mk.post("/v1/templates", WELCOME)
    check(r.status == 409 and r.err_code() == "conflict" and r.err_field() == "id", "dup -> %r" % r)
    r = view.post("/v1/templates", dict(WELCOME, id="other"))
    check(r.status == 403, "viewer create -> %r" % r)
    g = view.get("/v1/templates/welcome")
    check(g.status == 200 and g.json == t, "GET -> %r" % g)
    anon = mk.post("/v1/templates", {"variants": [{"channel": "chat", "lang": "en", "text": "x"}]})
    check(anon.status == 201 and len(anon.json["id"]) == 26 and anon.json["id"].islower(),
          "generated id %r" % anon)

    # list
    l1 = view.get("/v1/templates?limit=1")
    check(l1.status == 200 and len(l1.json["items"]) == 1 and l1.json["next_cursor"], "page 1 %r" % l1)
    l2 = view.get("/v1/templates?limit=1&cursor=" + l1.json["next_cursor"])
    ids = [x["id"] for x in l1.json["items"] + l2.json["items"]]
    check(sorted(ids) == sorted([anon.json["id"], "welcome"]) and l2.json["next_cursor"] is None,
          "pages %r %r" % (l1, l2))
    w = [x for x in l1.json["items"] + l2.json["items"] if x["id"] == "welcome"][0]
    check(w["v"] == 1 and w["variants"][0] == {"channel": "sms", "lang": "fa"} and "text" not in w["variants"][0],
          "summary %r" % w)
    check(view.get("/v1/templates?limit=0").status == 400, "limit 0 accepted")
    check(view.get("/v1/templates?cursor=BAD!").status == 400, "bad cursor accepted")

    # preview: the fa contact gets the fa SMS variant; Persian is UCS-2
    p = view.post("/v1/templates/welcome/preview", {"contact_id": fa_id, "channel": "sms"})
    check(p.status == 200, "preview -> %r" % p)
    want = "سلام سارا! به باشگاه خوش آمدید. شهر: تهران"
    check(p.json["text"] == want and p.json["lang"] == "fa" and p.json["channel"] == "sms",
          "fa preview %r" % p.json)
    check(p.json["subject"] is None and p.json["html"] is None and p.json["v"] == 1, "sms parts %r" % p.json)
    sms = p.json["sms"]
    segs = sms_segments(want)
    check(sms["encoding"] == "ucs2" and sms["segments"] == segs and sms["chars"] == len(want)
          and sms["cost"] == segs * PRICE and sms["cost_micros"] == segs * PRICE * 10**6
          and sms["price_per_segment"] == PRICE, "sms info %r" % sms)
    # "fa-IR" asked for explicitly: base fa
    p = view.post("/v1/templates/welcome/preview", {"contact_id": fa_id, "lang": "fa-IR"})
    check(p.status == 200 and p.json["lang"] == "fa" and p.json["lang_requested"] == "fa-IR", "fa-IR %r" % p)
    # the de contact falls back to default_lang en; its name is escaped in
    # the HTML part only
    p = view.post("/v1/templates/welcome/preview", {"contact_id": de_id, "channel": "email"})
    check(p.status == 200 and p.json["lang"] == "en" and p.json["lang_requested"] == "de", "de %r" % p)
    check(p.json["subject"] == "Welcome <script>alert('x')</script>", "subject %r" % p.json)
    check(p.json["text"] == "Hello <script>alert('x')</script>", "text %r" % p.json)
    check(p.json["html"] == "<p>Hello <b>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</b></p>",
          "html not escaped: %r" % p.json["html"])
    check("sms" not in p.json, "sms info on an email %r" % p.json)
    p = view.post("/v1/templates/welcome/preview", {"contact_id": de_id, "channel": "sms"})
    check(p.json["text"] == "Hi <script>alert('x')</script>, welcome!" and p.json["sms"]["encoding"] == "gsm7",
          "de sms %r" % p.json)
    # inline contact, no contact at all
    p = view.post("/v1/templates/welcome/preview", {"contact": {"first_name": "Ali", "lang": "en"}})
    check(p.status == 200 and p.json["text"] == "Hi Ali, welcome!", "inline %r" % p)
    p = view.post("/v1/templates/welcome/preview", {"lang": "fa"})
    check(p.status == 200 and p.json["text"].startswith("سلام مشتری گرامی!"), "no contact %r" % p)
    # no chat variant and no "any"
    p = view.post("/v1/templates/welcome/preview", {"contact_id": fa_id, "channel": "chat"})
    check(p.status == 422 and p.err_code() == "invalid_field" and p.err_field() == "channel", "chat %r" % p)

    # Jalali date and Persian digits through the event, in the contact's zone
    dates = {"id": "receipt", "default_lang": "fa", "variants": [
        {"channel": "sms", "lang": "fa",
         "text": "{{first_name}}، خرید {{event.amount|num|fa}} تومانی شما در "
                 "{{event.at|jdate:\"EEEE d MMMM yyyy\"|fa}} ثبت شد. کد: {{code}}"}]}
    check(mk.post("/v1/templates", dates).status == 201, "receipt create")
    p = view.post("/v1/templates/receipt/preview", {
        "contact_id": fa_id, "event": {"amount": 1250000, "at": "2024-03-20T22:00:00Z"},
        "vars": {"code": "NOWRUZ"}})
    check(p.status == 200 and p.json["text"] ==
          "سارا، خرید ۱٬۲۵۰٬۰۰۰ تومانی شما در پنجشنبه ۲ فروردین ۱۴۰۳ ثبت شد. کد: NOWRUZ",
          "jalali preview %r" % p)

    # SMS segments of Persian text: 70 in one part, then 67 per part; cost
    long_t = {"id": "long", "variants": [{"channel": "sms", "lang": "fa", "text": "{{x}}"}]}
    check(mk.post("/v1/templates", long_t).status == 201, "long create")
    for n, segs in ((70, 1), (71, 2), (134, 2), (135, 3), (202, 4)):
        p = view.post("/v1/templates/long/preview", {"vars": {"x": "س" * n}})
        s = p.json["sms"]
        check(p.status == 200 and s["segments"] == segs and s["units"] == n and s["encoding"] == "ucs2"
              and s["per_segment"] == (70 if segs == 1 else 67) and s["cost"] == segs * PRICE
              and s["too_long"] == (segs > 3), "%d Persian letters -> %r" % (n, s))
    p = view.post("/v1/templates/long/preview", {"vars": {"x": "a" * 161}})
    check(p.json["sms"]["encoding"] == "gsm7" and p.json["sms"]["segments"] == 2, "GSM %r" % p.json)

    # template syntax errors: 400 with field, line and column
    bad = json.loads(json.dumps(WELCOME))
    bad["id"] = "bad"
    bad["variants"][1]["text"] = "ok"
    bad["variants"][0]["text"] = "سلام\nخوش آمدید {{first_name"
    r = mk.post("/v1/templates", bad)
    e = (r.json or {}).get("error", {})
    check(r.status == 400 and e.get("code") == "invalid_field" and e.get("field") == "variants[0].text"
          and e.get("line") == 2 and e.get("col") == 11 and "unclosed" in e.get("message", ""),
          "syntax error -> %r" % r)
    bad["variants"][0]["text"] = "{{#vip}}x"
    bad["variants"][2]["html"] = "<p>{{name|numm}}</p>"
    r = mk.post("/v1/templates", bad)
    check(r.status == 400 and r.json["error"]["field"] == "variants[0].text", "first error %r" % r)
    v = view.post("/v1/templates/validate", bad)
    check(v.status == 200 and v.json["valid"] is False and len(v.json["errors"]) == 2, "validate %r" % v)
    e0, e1 = v.json["errors"]
    check(e0["field"] == "variants[0].text" and e0["line"] == 1 and e0["col"] == 1, "e0 %r" % e0)
    check(e1["field"] == "variants[2].html" and e1["line"] == 1 and e1["col"] == 11
          and "numm" in e1["reason"], "e1 %r" % e1)
    v = view.post("/v1/templates/validate", WELCOME)
    check(v.status == 200 and v.json == {"valid": True, "errors": []}, "valid %r" % v)
    check(view.get("/v1/templates/bad").status == 404, "a refused template was stored")
    for body, field in (({"variants": [{"channel": "email", "lang": "fa", "text": "x"}]}, "variants[0].subject"),
                        ({"variants": [{"channel": "fax", "lang": "fa", "text": "x"}]}, "variants[0].channel"),
                        ({"variants": [{"channel": "sms", "lang": "FA", "text": "x"}]}, "variants[0].lang"),
                        ({"id": "Bad", "variants": [{"channel": "sms", "lang": "fa", "text": "x"}]}, "id"),
                        ({"variants": []}, "variants"),
                        ({"colour": 1, "variants": [{"channel": "sms", "lang": "fa", "text": "x"}]}, "colour")):
        r = mk.post("/v1/templates", body)
        check(r.status == 400 and r.err_code() == "invalid_field" and r.err_field() == field
              and "line" not in r.json["error"], "%r -> %r" % (body, r))

    # 404s
    for path in ("/v1/templates/nope", "/v1/templates/NOPE", "/v1/templates/" + "a" * 65):
        check(view.get(path).status == 404, "GET %s not 404" % path)
    r = put(mk, "/v1/templates/nope", dict(WELCOME, id="nope"))
    check(r.status == 404 and r.err_code() == "not_found", "PUT unknown %r" % r)
    check(mk.delete("/v1/templates/nope").status == 404, "DELETE unknown")
    r = view.post("/v1/templates/nope/preview", {"contact_id": fa_id})
    check(r.status == 404 and r.err_code() == "not_found", "preview unknown template %r" % r)
    r = view.post("/v1/templates/welcome/preview", {"contact_id": "01JD3Z8Q6M0000000000000000"})
    check(r.status == 404 and r.err_field() == "contact_id", "preview unknown contact %r" % r)
    r = view.post("/v1/templates/welcome/preview", {"contact_id": "x"})
    check(r.status == 400 and r.err_field() == "contact_id", "preview bad contact id %r" % r)
    r = view.post("/v1/templates/welcome/preview", {"channel": "fax"})
    check(r.status == 400 and r.err_field() == "channel", "preview bad channel %r" % r)
    r = view.post("/v1/templates/welcome/preview", {"contact_id": fa_id, "contact": {}})
    check(r.status == 400, "contact and contact_id %r" % r)

    # PUT bumps the version; a stale v is refused; ids must agree
    new = json.loads(json.dumps(WELCOME))
    new["variants"][0]["text"] = "درود {{first_name}}"
    r = put(mk, "/v1/templates/welcome", new)
    check(r.status == 200 and r.json["v"] == 2, "PUT -> %r" % r)
    p = view.post("/v1/templates/welcome/preview", {"contact_id": fa_id})
    check(p.json["text"] == "درود سارا" and p.json["v"] == 2, "preview after PUT %r" % p.json)
    got = view.get("/v1/templates/welcome").json
    got["variants"][0]["text"] = "salam {{first_name}}"
    r = put(mk, "/v1/templates/welcome", got)  # carries v: 2, the current one
    check(r.status == 200 and r.json["v"] == 3, "PUT with current v -> %r" % r)
    r = put(mk, "/v1/templates/welcome", got)  # v: 2 again, now stale
    check(r.status == 409 and r.err_field() == "v", "stale v -> %r" % r)
    r = put(mk, "/v1/templates/welcome", dict(new, id="other"))
    check(r.status == 400 and r.err_field() == "id", "id mismatch -> %r" % r)
    check(put(view, "/v1/templates/welcome", new).status == 403, "viewer PUT")

    # DELETE; a re-created template continues its version numbers
    check(view.delete("/v1/templates/welcome").status == 403, "viewer DELETE")
    r = mk.delete("/v1/templates/welcome")
    check(r.status == 204, "DELETE -> %r" % r)
    check(view.get("/v1/templates/welcome").status == 404, "GET after DELETE")
    check(mk.delete("/v1/templates/welcome").status == 404, "second DELETE")
    r = adm.post("/v1/templates", WELCOME)
    check(r.status == 201 and r.json["v"] == 4, "re-create -> %r" % r)

    # bad input is refused cleanly
    r = mk.request("POST", "/v1/templates", raw=b'{"id":"u","variants":[{"channel":"sms","lang":"fa","text":"\xd8"}]}')
    check(r.status == 400 and r.err_code() == "invalid_json", "bad UTF-8 -> %r" % r)
    big = b'{"id": "x", "name": "' + b"a" * (1536 * 1024) + b'"}'
    head = ("POST /v1/templates HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (fx.tokens["marketer"], len(big))).encode()
    st, text = raw_http(d.port, head, big)
    check(st == 413 and json.loads(text)["error"]["code"] == "body_too_large",
          "oversize body -> %d %s" % (st, text[:200]))
    r = mk.post("/v1/templates", {"id": "big", "variants": [{"channel": "sms", "lang": "fa", "text": "س" * 40000}]})
    check(r.status == 400 and r.err_field() == "variants[0].text", "64 KiB template -> %r" % r)
    many = {"id": "many", "variants": [{"channel": "sms", "lang": "l" + chr(97 + i % 26) + ("x" if i >= 26 else ""),
                                        "text": "x"} for i in range(33)]}
    r = mk.post("/v1/templates", many)
    check(r.status == 400 and r.err_field() == "variants", "33 variants -> %r" % r)
    many["variants"].pop()
    check(mk.post("/v1/templates", many).status == 201, "32 variants refused")
    r = view.post("/v1/templates/long/preview", {"vars": {"x": "س"}, "extra": 1})
    check(r.status == 400 and r.err_field() == "extra", "unknown preview field %r" % r)
    # rendered output over the cap is an error, not a truncation
    huge = {"id": "huge", "variants": [{"channel": "sms", "lang": "en", "text": "{{#l}}{{x}}{{/l}}"}]}
    check(mk.post("/v1/templates", huge).status == 201, "huge create")
    r = view.post("/v1/templates/huge/preview", {"vars": {"x": "y" * 100000, "l": [1, 2, 3]}})
    check(r.status == 422 and r.err_code() == "render_failed", "output cap -> %r" % r)
    check(d.client("viewer").get("/readyz").status == 200, "daemon unwell after bad input")


def ctl(fx, d, *args, role="marketer", want=0):
    home = os.path.join(fx.tmp, "home")
    os.makedirs(home, exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8",
           "TZ": "UTC", "CLUBD_URL": "http://127.0.0.1:%d" % d.port, "CLUBD_TOKEN": fx.tokens[role]}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    p = subprocess.run([CLUBCTL] + [str(a) for a in args], capture_output=True, env=env, cwd=ROOT,
                       timeout=60 * SLOW)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    for m in SANITIZER_MARKERS:
        check(m not in err, "sanitizer report from clubctl %s:\n%s" % (args, err[-3000:]))
    check(p.returncode == want, "clubctl %s: exit %d, want %d\n%s\n%s" % (args, p.returncode, want, out, err))
    return out, err


@timeout(90)
def test_templates_clubctl(fx):
    check(os.access(CLUBCTL, os.X_OK), "%s not built" % CLUBCTL)
    d = start(fx)
    fa_id, _ = make_contacts(d)
    path = os.path.join(fx.tmp, "welcome.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(WELCOME, f, ensure_ascii=False)

    out, _ = ctl(fx, d, "templates", "create", path)
    check("created template welcome (version 1)" in out, "create output %r" % out)
    out, err = ctl(fx, d, "templates", "create", path, want=1)
    check("conflict" in err and "HTTP 409" in err, "dup create %r" % err)
    out, _ = ctl(fx, d, "templates", "list")
    check("welcome" in out and "sms:fa sms:en email:fa email:en" in out, "list %r" % out)
    out, _ = ctl(fx, d, "templates", "get", "welcome")
    check("version" in out and "خوش‌آمدگویی" in out and "CHANNEL" in out, "get %r" % out)

    # preview, human: the text as sent, then segments and cost
    out, _ = ctl(fx, d, "templates", "preview", "welcome", "--contact", fa_id, role="viewer")
    want = "سلام سارا! به باشگاه خوش آمدید. شهر: تهران"
    segs = sms_segments(want)
    check("  " + want + "\n" in out, "preview text %r" % out)
    check("segments %d (ucs2), cost %d" % (segs, segs * PRICE) in out, "preview sms line %r" % out)
    check("language  fa" in out, "language line %r" % out)
    # --json: the API's answer
    out, _ = ctl(fx, d, "--json", "templates", "preview", "welcome", "--contact", fa_id,
                 "--channel", "email", "--lang", "de", role="viewer")
    j = json.loads(out)
    check(j["channel"] == "email" and j["lang"] == "en" and j["subject"] == "Welcome سارا"
          and j["html"] == "<p>Hello <b>سارا</b></p>", "preview --json %r" % j)

    # validate and errors with positions
    bad = dict(WELCOME, id="bad2", variants=[{"channel": "sms", "lang": "fa", "text": "سلام {{first_name"}])
    bpath = os.path.join(fx.tmp, "bad.json")
    with open(bpath, "w", encoding="utf-8") as f:
        json.dump(bad, f, ensure_ascii=False)
    _, err = ctl(fx, d, "templates", "validate", bpath, want=1)
    check("variants[0].text:1:6: unclosed tag" in err, "validate output %r" % err)
    _, err = ctl(fx, d, "templates", "create", bpath, want=1)
    check("variants[0].text: line 1, column 6: unclosed tag" in err, "create error %r" % err)
    _, err = ctl(fx, d, "templates", "create", os.path.join(fx.tmp, "missing.json"), want=2)

    # put, rm
    new = dict(WELCOME, variants=WELCOME["variants"][1:])
    with open(path, "w", encoding="utf-8") as f:
        json.dump(new, f, ensure_ascii=False)
    out, _ = ctl(fx, d, "templates", "put", "welcome", path)
    check("replaced template welcome (version 2)" in out, "put %r" % out)
    out, _ = ctl(fx, d, "--json", "templates", "get", "welcome")
    check(json.loads(out)["v"] == 2, "get --json %r" % out)
    out, _ = ctl(fx, d, "templates", "rm", "welcome")
    check("deleted template welcome" in out, "rm %r" % out)
    _, err = ctl(fx, d, "templates", "get", "welcome", want=1)
    check("HTTP 404" in err, "get after rm %r" % err)
    ctl(fx, d, "templates", "preview", want=2)
