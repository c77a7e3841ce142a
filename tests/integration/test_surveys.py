"""Surveys end to end through the real clubd, the webhook sink and the signed
JSON inbound webhook (/v1/inbound/sms): a three-question SMS survey launched
to a segment and answered with Persian digits (۵, ۱۰), an invalid answer
re-asked once with the help text, a duplicate inbound delivery not counted
twice, STOP in the middle of a survey still opting out (keywords come first)
while the survey waits, the conversation surviving a daemon restart
mid-survey, results and results.csv exact (RFC 4180, Persian UTF-8), the
free-text list paged; the TTL ending a conversation (a later text is a plain
reply), one open survey per contact, a launch to a campaign's recipients, an
email launch (every question in one email); definitions validated with field
paths and frozen once launched; and `clubctl surveys` (bar charts, --json,
--csv)."""

import csv
import email
import email.policy
import hashlib
import hmac
import io
import json
import os
import subprocess
import time

from harness import CLUBD, ROOT, SLOW, Client, check, timeout, wait_until

SECRET = "callback-secret-for-tests-0123456789"
CLUBCTL = os.path.join(os.path.dirname(CLUBD), "clubctl")
SEG = {"tags": {"any": ["panel"]}}

SURVEY = {
    "id": "after-visit",
    "name": "نظرسنجی پس از خرید",
    "lang": "fa",
    "ttl": "1h",
    "intro": {"fa": "سلام {{first_name}}، لطفاً به سه پرسش پاسخ دهید.",
              "en": "Hi {{first_name}}, three quick questions."},
    "thanks": {"fa": "از پاسخ شما سپاسگزاریم.", "en": "Thank you!"},
    "questions": [
        {"id": "rate", "type": "rating", "text": {"fa": "از ۱ تا ۵ چه نمره‌ای می‌دهید؟",
                                                   "en": "From 1 to 5?"}},
        {"id": "nps", "type": "nps", "text": "از ۰ تا ۱۰ ما را به دوستانتان پیشنهاد می‌کنید؟",
         "help": {"fa": "فقط یک عدد از ۰ تا ۱۰ بفرستید.", "en": "Just a number from 0 to 10."}},
        {"id": "again", "type": "choice", "text": {"fa": "دوباره خرید می‌کنید؟", "en": "Again?"},
         "options": [{"fa": "بله", "en": "yes"}, {"fa": "خیر", "en": "no"}]},
    ],
}
Q1 = "از ۱ تا ۵ چه نمره‌ای می‌دهید؟"
Q2 = "از ۰ تا ۱۰ ما را به دوستانتان پیشنهاد می‌کنید؟"
Q3 = "دوباره خرید می‌کنید؟\n1) بله\n2) خیر"
HELP2 = "فقط یک عدد از ۰ تا ۱۰ بفرستید."
THANKS = "از پاسخ شما سپاسگزاریم."


# ---------------------------------------------------------------- helpers

def start(fx, sink=True, overrides=None):
    with open(os.path.join(fx.tmp, "cb-secret"), "w") as f:
        f.write(SECRET + "\n")
    r = fx.redis()
    s = fx.sink() if sink else None
    ov = {"api": {"callback_secret_file": os.path.join(fx.tmp, "cb-secret")}}
    ov.update(overrides or {})
    d = fx.clubd(r, s, overrides=ov)
    return r, s, d


def inbound(d, frm, text, mid):
    """One SMS through the signed JSON webhook; the answer's JSON."""
    body = json.dumps({"from": frm, "to": "30001234", "text": text, "id": mid},
                      ensure_ascii=False).encode()
    ts = str(int(time.time()))
    sig = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    x = Client(d.port).request("POST", "/v1/inbound/sms", raw=body, token=None,
                               headers={"X-Clubd-Timestamp": ts,
                                        "X-Clubd-Signature": "sha256=" + sig})
    check(x.status == 200, "inbound %s -> %r" % (mid, x))
    return x.json


def texts_to(s, phone):
    """The texts the sink received for phone, in arrival order."""
    with s._lock:
        reqs = [r for v in s.log.values() for r in v]
    reqs.sort(key=lambda r: r.at)
    out = []
    for r in reqs:
        if r.body.get("to") == phone and r.body.get("text") not in out:
            out.append(r.body.get("text"))
    return out


def wait_texts(s, phone, n, what):
    return wait_until(lambda: texts_to(s, phone) if len(texts_to(s, phone)) >= n else None,
                      15, what, on_fail=lambda: json.dumps(texts_to(s, phone), ensure_ascii=False))


def contact(mk, first, phone, tags=("panel",), lang="fa", email_addr=None):
    addrs = {"sms": phone}
    if email_addr:
        addrs["email"] = email_addr
    r = mk.post("/v1/contacts", {"first_name": first, "lang": lang, "tags": list(tags),
                                 "addresses": addrs})
    check(r.status == 201, "contact: %r" % r)
    return r.json["id"]


_spec = []


def conforms(obj, schema):
    """obj validates against docs/openapi.yaml's components.schemas[schema]."""
    from test_openapi import Validator, load_spec
    if not _spec:
        _spec.append(Validator(load_spec()))
    _spec[0].validate(obj, {"$ref": "#/components/schemas/" + schema}, schema)


def header(x, name):
    for k, v in x.headers.items():
        if k.lower() == name:
            return v
    return ""


def results(d, sid):
    x = d.client("viewer").get("/v1/surveys/%s/results" % sid)
    check(x.status == 200, "results -> %r" % x)
    return x.json


def question(res, qid):
    return [q for q in res["questions"] if q["id"] == qid][0]


def ctl(fx, d, *args, role="marketer", want=0):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": fx.tmp, "LANG": "C.UTF-8",
           "TZ": "UTC", "CLUBD_URL": "http://127.0.0.1:%d" % d.port,
           "CLUBD_TOKEN": fx.tokens[role]}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    p = subprocess.run([CLUBCTL] + [str(a) for a in args], capture_output=True, env=env,
                       cwd=ROOT, timeout=60 * SLOW)
    out, err = p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")
    check("runtime error:" not in err and "AddressSanitizer" not in err, "sanitizer: %s" % err)
    check(p.returncode == want, "clubctl %s: exit %d\n%s\n%s" % (" ".join(args), p.returncode,
                                                                 out, err))
    return out, err


# ---------------------------------------------------------------- the SMS survey

@timeout(180)
def test_sms_survey_end_to_end(fx):
    r, s, d = start(fx)
    mk = d.client("marketer")
    x = mk.post("/v1/surveys", SURVEY)
    check(x.status == 201, "create %r" % x)
    check(x.json["id"] == "after-visit" and x.json["v"] == 1 and x.json["launched"] is False,
          "created %r" % x.json)
    conforms(x.json, "Survey")
    pa, pb, pc = "+989121000001", "+989121000002", "+989121000003"
    a = contact(mk, "سارا", "09121000001")
    b = contact(mk, "رضا", "09121000002")
    c = contact(mk, "مینا", "09121000003")
    contact(mk, "Other", "09121000009", tags=("other",))

    x = mk.post("/v1/surveys/after-visit/launch", {"segment": SEG, "channel": "sms"})
    check(x.status == 200, "launch %r" % x)
    check(x.json["sent"] == 3 and x.json["examined"] == 3 and x.json["failed"] == 0,
          "launch counts %r" % x.json)
    conforms(x.json, "SurveyLaunchResult")
    first = "سلام سارا، لطفاً به سه پرسش پاسخ دهید.\n\n" + Q1
    check(wait_texts(s, pa, 1, "question 1 to A") == [first], "A got %r" % texts_to(s, pa))
    wait_texts(s, pb, 1, "question 1 to B")
    wait_texts(s, pc, 1, "question 1 to C")
    # a second launch skips all three (already sent), nobody gets it twice
    x = mk.post("/v1/surveys/after-visit/launch", {"segment": SEG, "channel": "sms"})
    check(x.json["sent"] == 0 and x.json["skipped"]["already"] == 3, "relaunch %r" % x.json)
    # frozen once launched
    x = mk.request("PUT", "/v1/surveys/after-visit", body=SURVEY)
    check(x.status == 409 and x.err_code() == "conflict", "put after launch %r" % x)

    # A: Persian five, an invalid answer re-asked with the help, then ۱۰, then a choice
    check(inbound(d, "09121000001", "۵", "a-1")["action"] == "taken", "A q1 taken")
    wait_texts(s, pa, 2, "question 2 to A")
    check(inbound(d, "09121000001", "عالی", "a-2")["action"] == "taken", "A invalid taken")
    wait_texts(s, pa, 3, "the re-ask to A")
    check(inbound(d, "09121000001", " ۱۰ ", "a-3")["action"] == "taken", "A q2 taken")
    wait_texts(s, pa, 4, "question 3 to A")
    # the provider delivers a-3 again: recorded once, no second message
    dup = inbound(d, "09121000001", " ۱۰ ", "a-3")
    check(dup["duplicate"] is True, "duplicate %r" % dup)
    check(inbound(d, "09121000001", "بله", "a-4")["action"] == "taken", "A q3 taken")
    got = wait_texts(s, pa, 5, "thanks to A")
    check(got == [first, Q2, HELP2 + "\n\n" + Q2, Q3, THANKS], "A's conversation %s"
          % json.dumps(got, ensure_ascii=False))

    # B: answers q1, then STOP: an opt-out (keywords come first), the survey waits
    check(inbound(d, "09121000002", "3", "b-1")["action"] == "taken", "B q1")
    wait_texts(s, pb, 2, "question 2 to B")
    x = inbound(d, "09121000002", "STOP", "b-2")
    check(x["action"] == "opt_out", "STOP during a survey: %r" % x)
    rc = r.client()
    check(rc.hget("clubd:sv:" + b, "q") == "1", "B's survey did not move: %r"
          % rc.hgetall("clubd:sv:" + b))
    prefs = mk.get("/v1/contacts/" + b).json.get("preferences") or {}
    check(prefs.get("categories", {}).get("survey") is False, "survey consent %r" % prefs)
    # B still answers: recorded; the next question is suppressed by consent
    check(inbound(d, "09121000002", "7", "b-3")["action"] == "taken", "B q2")

    def b_next():
        for k in rc.keys("clubd:m:*"):
            h = rc.hgetall(k)
            if h.get("contact") == b and h.get("text") == Q3:
                return h.get("state")
        return None
    st = wait_until(lambda: b_next() if b_next() in ("suppressed", "sent", "delivered") else None,
                    15, "B's question 3 settled")
    check(st == "suppressed", "B's question 3 after STOP: %s" % st)
    check(Q3 not in texts_to(s, pb), "question 3 reached B after STOP")

    # C: answers q1, the daemon restarts, the conversation goes on
    check(inbound(d, "09121000003", "4", "c-1")["action"] == "taken", "C q1")
    wait_texts(s, pc, 2, "question 2 to C")
    check(d.term() == 0, "clean stop")
    d.start()
    mk = d.client("marketer")  # a new port
    check(rc.hget("clubd:sv:" + c, "q") == "1", "C's state after restart")
    check(inbound(d, "09121000003", "8", "c-2")["action"] == "taken", "C q2 after restart")
    wait_texts(s, pc, 3, "question 3 to C")
    check(inbound(d, "09121000003", "2", "c-3")["action"] == "taken", "C q3")
    got = wait_texts(s, pc, 4, "thanks to C")
    check(got[1:] == [Q2, Q3, THANKS], "C's conversation %s" % json.dumps(got, ensure_ascii=False))

    # no conversation left open but B's
    check(not rc.exists("clubd:sv:" + a) and not rc.exists("clubd:sv:" + c), "closed")
    check(rc.smembers("clubd:eng:answered:after-visit") == {a, b, c}, "eng:answered")

    # ---- results, exact
    res = results(d, "after-visit")
    conforms(res, "SurveyResults")
    check((res["sent"], res["started"], res["completed"]) == (3, 3, 2), "counts %r" % res)
    check(res["response_rate"] == 1.0 and res["completion_rate"] == 0.6667, "rates %r" % res)
    q1 = question(res, "rate")
    check(q1["answers"] == 3 and q1["invalid"] == 0 and q1["mean"] == 4.0 and
          q1["distribution"] == {"1": 0, "2": 0, "3": 1, "4": 1, "5": 1}, "rate %r" % q1)
    q2 = question(res, "nps")
    check(q2["answers"] == 3 and q2["distribution"]["10"] == 1 and q2["distribution"]["8"] == 1
          and q2["distribution"]["7"] == 1 and sum(q2["distribution"].values()) == 3, "nps %r" % q2)
    check(q2["mean"] == 8.33 and q2["nps"] == 33.3 and
          (q2["promoters"], q2["passives"], q2["detractors"]) == (1, 2, 0), "nps score %r" % q2)
    q3 = question(res, "again")
    check(q3["answers"] == 2 and q3["distribution"] == {"1": 1, "2": 1} and
          q3["options"] == ["بله", "خیر"] and "mean" not in q3, "again %r" % q3)

    # ---- CSV, exact: one row per contact who answered, in answer order
    x = mk.get("/v1/surveys/after-visit/results.csv")
    check(x.status == 200 and header(x, "content-type").startswith("text/csv"),
          "csv %r" % x)
    raw = x.text
    check(raw.count("\r\n") == 4 and raw.endswith("\r\n"), "CRLF records: %r" % raw)
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    check(rows[0] == ["contact_id", "channel", "sent_at", "answered_at", "completed_at",
                      "rate", "nps", "again"], "header %r" % rows[0])
    body = [[row[0], row[1], row[5], row[6], row[7], bool(row[4])] for row in rows[1:]]
    check(body == [[a, "sms", "5", "10", "بله", True], [b, "sms", "3", "7", "", False],
                   [c, "sms", "4", "8", "خیر", True]], "csv rows %r" % body)
    for row in rows[1:]:
        check(row[2].endswith("Z") and row[3].endswith("Z"), "times %r" % row)
    # the timeline shows the answers
    tl = d.client("viewer").get("/v1/contacts/%s/timeline?limit=100" % a).json["items"]
    ans = sorted((e["question"], e["value"]) for e in tl if e.get("type") == "answer")
    check(ans == [("again", "1"), ("nps", "10"), ("rate", "5")], "timeline %r" % ans)

    # ---- clubctl: bar charts, --json, --csv
    out, _ = ctl(fx, d, "surveys", "results", "after-visit")
    check("sent 3, started 3 (100.0%), completed 2 (66.7%)" in out, "summary:\n" + out)
    check("mean 4.00" in out and "NPS +33.3 (promoters 1, passives 2, detractors 0)" in out,
          "mean/nps:\n" + out)
    bar_lines = [ln for ln in out.splitlines() if "\u2588" in ln]
    check(len(bar_lines) == 3 + 3 + 2, "bars:\n" + out)
    five = [ln for ln in out.splitlines() if ln.strip().startswith("5 ")][0]
    check("1   33.3%" in five and "\u2588" * 30 in five, "the 5 bar: %r" % five)
    yes = [ln for ln in out.splitlines() if "1) بله" in ln][0]
    check("\u2588" * 30 in yes and yes.rstrip().endswith("50.0%"), "choice bar %r" % yes)
    out, _ = ctl(fx, d, "--json", "surveys", "results", "after-visit", role="viewer")
    check(json.loads(out)["questions"][0]["distribution"]["5"] == 1, "json:\n" + out)
    out, _ = ctl(fx, d, "surveys", "results", "after-visit", "--csv")
    check(out.replace("\r\n", "\n") == raw.replace("\r\n", "\n"), "csv via clubctl:\n" + out)
    out, _ = ctl(fx, d, "surveys", "list")
    check("after-visit" in out and "نظرسنجی پس از خرید" in out, "list:\n" + out)
    out, _ = ctl(fx, d, "surveys", "get", "after-visit")
    check("again" in out and "choice" in out and "3 sent, 3 started, 2 completed" in out,
          "get:\n" + out)
    out, err = ctl(fx, d, "surveys", "results", "nope", want=1)
    check("no such survey" in err, "404 via clubctl: %s" % err)


# ---------------------------------------------------------------- TTL, open surveys, free text

@timeout(120)
def test_ttl_open_survey_and_texts(fx):
    r, s, d = start(fx)
    mk = d.client("marketer")
    short = {"id": "quick", "name": "Quick", "ttl": "2s", "lang": "en",
             "questions": [{"type": "nps", "text": "0-10?"}, {"type": "text", "text": "Why?"}]}
    check(mk.post("/v1/surveys", short).status == 201, "create quick")
    other = {"id": "other", "name": "Other", "questions": [{"type": "rating", "text": "1-5?"}]}
    check(mk.post("/v1/surveys", other).status == 201, "create other")
    ids = [contact(mk, "P%d" % i, "0912200000%d" % i, lang="en") for i in range(3)]
    phones = ["+98912200000%d" % i for i in range(3)]
    check(mk.post("/v1/segments", {"id": "panel", "name": "Panel",
                                   "match": SEG}).status == 201, "segment")
    x = mk.post("/v1/surveys/quick/launch", {"segment": "panel"})  # preferred channel
    check(x.status == 200 and x.json["sent"] == 3 and x.json["channel"] == "preferred",
          "launch %r" % x)
    for p in phones:
        check(wait_texts(s, p, 1, "quick q1") == ["0-10?"], "q1 %r" % texts_to(s, p))
    # one open survey per contact
    x = mk.post("/v1/surveys/other/launch", {"segment": "panel", "channel": "sms"})
    check(x.json["sent"] == 0 and x.json["skipped"]["open"] == 3, "open %r" % x.json)
    # two answer the free-text question with Persian text and a comma, one waits
    for i in (0, 1):
        inbound(d, phones[i], "9", "t-%d-1" % i)
        wait_texts(s, phones[i], 2, "why?")
    inbound(d, phones[0], "خیلی خوب، ممنون", "t-0-2")
    inbound(d, phones[1], 'quote "this"', "t-1-2")
    # the third never answers: after the TTL its text is an ordinary reply
    time.sleep(2.5)
    x = inbound(d, phones[2], "10", "t-2-1")
    check(x["action"] == "reply", "after the TTL: %r" % x)
    res = results(d, "quick")
    conforms(res, "SurveyResults")
    check((res["sent"], res["started"], res["completed"]) == (3, 2, 2), "counts %r" % res)
    check(res["response_rate"] == 0.6667, "rate %r" % res["response_rate"])
    why = question(res, "q2")
    check(why["answers"] == 2 and "distribution" not in why and "mean" not in why, "q2 %r" % why)
    items = why["texts"]["items"]
    check([(t["contact_id"], t["text"]) for t in items] ==
          [(ids[0], "خیلی خوب، ممنون"), (ids[1], 'quote "this"')], "texts %r" % items)
    check(items[0]["at"].endswith("Z") and why["texts"]["next_cursor"] is None, "at %r" % items)
    # paged
    v = d.client("viewer")
    p1 = v.get("/v1/surveys/quick/results/q2/texts?limit=1")
    check(p1.status == 200 and len(p1.json["items"]) == 1 and p1.json["next_cursor"], "page 1 %r" % p1)
    conforms(p1.json, "SurveyTextPage")
    p2 = v.get("/v1/surveys/quick/results/q2/texts?limit=1&cursor=" + p1.json["next_cursor"])
    check([t["text"] for t in p2.json["items"]] == ['quote "this"'] and
          p2.json["next_cursor"] is None, "page 2 %r" % p2.json)
    check(v.get("/v1/surveys/quick/results/q1/texts").status == 404, "q1 has no texts")
    # CSV quoting (RFC 4180) and Persian text as UTF-8
    raw = mk.get("/v1/surveys/quick/results.csv").text
    check(',9,"quote ""this"""\r\n' in raw and ",9,خیلی خوب، ممنون\r\n" in raw, "csv %r" % raw)
    # after the TTL a launch skips the contact as already sent (a survey goes once)
    x = mk.post("/v1/surveys/quick/launch", {"segment": "panel"})
    check(x.json["sent"] == 0 and x.json["skipped"]["already"] == 3, "relaunch %r" % x.json)
    # completed or expired: free for another survey now
    x = mk.post("/v1/surveys/other/launch", {"segment": "panel", "channel": "sms"})
    check(x.json["sent"] == 3 and x.json["skipped"]["open"] == 0, "other %r" % x.json)


# ---------------------------------------------------------------- definitions and the API

@timeout(60)
def test_definitions_validation_and_lifecycle(fx):
    r, s, d = start(fx)
    mk = d.client("marketer")
    bad = [
        ({"questions": [{"type": "rating", "text": "a"}]}, "missing_field", "name"),
        ({"name": "x", "questions": [{"type": "rating", "text": "a"}, {"type": "stars",
                                                                         "text": "b"}]},
         "invalid_field", "questions[1].type"),
        ({"name": "x", "questions": [{"type": "choice", "text": "a"}]}, "missing_field",
         "questions[0].options"),
        ({"name": "x", "questions": [{"type": "choice", "text": "a",
                                      "options": ["بله", "بله "]}]},
         "invalid_field", "questions[0].options[1]"),
        ({"name": "x", "questions": [{"type": "text", "text": {"fa": "{{#x}}"}}]},
         "invalid_field", "questions[0].text.fa"),
        ({"name": "x", "ttl": "forever", "questions": [{"type": "text", "text": "a"}]},
         "invalid_field", "ttl"),
        ({"name": "x", "questions": [{"type": "text", "text": "a"}], "extra": 1},
         "invalid_field", "extra"),
    ]
    for body, code, field in bad:
        x = mk.post("/v1/surveys", body)
        check(x.status == 400 and x.err_code() == code and x.err_field() == field,
              "%r -> %r" % (body, x))
    check(d.client("viewer").post("/v1/surveys", SURVEY).status == 403, "viewer cannot create")
    x = mk.post("/v1/surveys", {"name": "no id", "questions": [{"type": "text", "text": "a"}]})
    check(x.status == 201 and len(x.json["id"]) == 26 and x.json["questions"][0]["id"] == "q1",
          "generated ids %r" % x.json)
    check(mk.post("/v1/surveys", SURVEY).status == 201, "create")
    check(mk.post("/v1/surveys", SURVEY).status == 409, "exists")
    g = mk.get("/v1/surveys/after-visit").json
    g["name"] = "renamed"
    x = mk.request("PUT", "/v1/surveys/after-visit", body=g)
    check(x.status == 200 and x.json["v"] == 2 and x.json["name"] == "renamed", "put %r" % x)
    x = mk.request("PUT", "/v1/surveys/after-visit", body=g)  # g still says v 1
    check(x.status == 409 and x.err_field() == "v", "stale put %r" % x)
    lst = mk.get("/v1/surveys?limit=1")
    check(lst.status == 200 and len(lst.json["items"]) == 1 and lst.json["next_cursor"],
          "list %r" % lst)
    conforms(lst.json, "SurveyList")
    x = mk.post("/v1/surveys/after-visit/launch", {"segment": SEG, "campaign": "c1"})
    check(x.status == 400, "both %r" % x)
    x = mk.post("/v1/surveys/after-visit/launch", {})
    check(x.status == 400 and x.err_field() == "segment", "none %r" % x)
    x = mk.post("/v1/surveys/after-visit/launch", {"segment": SEG, "channel": "fax"})
    check(x.status == 400 and x.err_field() == "channel", "channel %r" % x)
    x = mk.post("/v1/surveys/after-visit/launch", {"segment": {"tags": {"some": ["a"]}}})
    check(x.status == 400 and x.err_field().startswith("segment"), "bad segment %r" % x)
    x = mk.post("/v1/surveys/after-visit/launch", {"segment": "nope"})
    check(x.status == 404, "unknown segment %r" % x)
    x = mk.post("/v1/surveys/after-visit/launch", {"campaign": "nope"})
    check(x.status == 404 and x.err_field() == "campaign", "unknown campaign %r" % x)
    x = mk.post("/v1/surveys/nope/launch", {"segment": SEG})
    check(x.status == 404, "unknown survey %r" % x)
    contact(mk, "A", "09123000001")
    x = mk.post("/v1/surveys/after-visit/launch", {"segment": SEG, "channel": "sms"})
    check(x.json["sent"] == 1, "launched %r" % x.json)
    x = mk.delete("/v1/surveys/after-visit")
    check(x.status == 409, "delete launched %r" % x)
    check(mk.delete("/v1/surveys/after-visit?force=true").status == 403, "force needs admin")
    check(d.client("admin").delete("/v1/surveys/after-visit?force=true").status == 204, "force")
    check(mk.get("/v1/surveys/after-visit").status == 404, "gone")
    rc = r.client()
    check(not rc.keys("clubd:sv*after-visit*") and not rc.keys("clubd:sv:*"),
          "conversation and results gone: %r" % rc.keys("clubd:sv*"))


# ---------------------------------------------------------------- campaign recipients, email

@timeout(120)
def test_campaign_recipients_and_email(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    mk = d.client("marketer")
    x = mk.post("/v1/templates", {"id": "promo", "name": "promo", "default_lang": "en",
                                  "variants": [{"channel": "any", "lang": "en", "text": "Sale"}]})
    check(x.status == 201, "template %r" % x)
    ids = [contact(mk, "E%d" % i, "0912400000%d" % i, lang="en",
                   email_addr="e%d@example.com" % i) for i in range(2)]
    contact(mk, "Not", "09124000009", tags=("other",), lang="en")
    x = mk.post("/v1/campaigns", {"name": "promo", "segment": SEG, "channel": "sms",
                                  "template": "promo", "category": "promotional"})
    check(x.status == 201, "campaign %r" % x)
    camp = x.json["id"]
    check(mk.post("/v1/campaigns/%s/launch" % camp).status == 200, "campaign launch")
    rc = r.client()
    wait_until(lambda: rc.scard("clubd:eng:sent:" + camp) == 2, 30, "campaign sent to 2")
    en = dict(SURVEY, id="by-mail")
    check(mk.post("/v1/surveys", en).status == 201, "create")
    x = mk.post("/v1/surveys/by-mail/launch", {"campaign": camp, "channel": "email"})
    check(x.status == 200 and x.json["sent"] == 2 and x.json["campaign"] == camp, "launch %r" % x)
    new = os.path.join(fx.outbox, "email", "new")

    def mails():
        try:
            return sorted(os.listdir(new))
        except FileNotFoundError:
            return []
    wait_until(lambda: len(mails()) == 2, 15, "two survey emails")
    for f in mails():
        with open(os.path.join(new, f), "rb") as fh:
            m = email.message_from_binary_file(fh, policy=email.policy.default)
        body = m.get_body(preferencelist=("plain",)).get_content()
        check(m["subject"] == SURVEY["name"], "subject %r" % m["subject"])
        for want in ("Hi E", "1. From 1 to 5?", "2. ", "3. Again?", "   1) yes",
                     "one line per question", "1: 5"):
            check(want in body, "%r not in the email:\n%s" % (want, body))
    for cid in ids:
        check(rc.hget("clubd:sv:" + cid, "mode") == "email", "email mode for %s" % cid)


# ---------------------------------------------------------------- email replies over IMAP

@timeout(150)
def test_email_survey_answered_over_imap(fx):
    """The email reply transport (IMAP, a real dovecot) hands the reply to the
    same router and survey stage as SMS: every answer from one email."""
    import base64
    from dovecot import Dovecot
    r = fx.redis()
    dv = Dovecot(fx.tmp).start()
    try:
        d = fx.clubd(r, overrides={"imap": {"url": dv.url(), "username": dv.user,
                                            "password_file": dv.password_file, "tls": "no",
                                            "interval": "1s"}})
        mk = d.client("marketer")
        r1 = mk.post("/v1/contacts", {"first_name": "Sara", "lang": "fa", "tags": ["panel"],
                                      "addresses": {"email": "sara@example.ir"}})
        check(r1.status == 201, "contact %r" % r1)
        cid = r1.json["id"]
        check(mk.post("/v1/surveys", SURVEY).status == 201, "create")
        x = mk.post("/v1/surveys/after-visit/launch", {"segment": SEG, "channel": "email"})
        check(x.status == 200 and x.json["sent"] == 1, "launch %r" % x)
        new = os.path.join(fx.outbox, "email", "new")
        wait_until(lambda: os.path.isdir(new) and len(os.listdir(new)) == 1, 15, "the email")
        with open(os.path.join(new, os.listdir(new)[0]), "rb") as fh:
            sent = email.message_from_binary_file(fh, policy=email.policy.default)
        body = sent.get_body(preferencelist=("plain",)).get_content()
        check("1. " + Q1 in body and "   2) خیر" in body, "the survey email:\n" + body)

        reply = ("ممنون\n۱: ۵\n۲) ۹\n۳. بله\n\n"
                 "در تاریخ ... نوشت:\n> 1. " + Q1 + "\n")
        raw = ("From: Sara <sara@example.ir>\r\nTo: club@localhost\r\n"
               "Subject: Re: survey\r\nMessage-ID: <sv-1@example.ir>\r\n"
               "In-Reply-To: %s\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: base64\r\n\r\n%s"
               % (sent["Message-ID"], base64.encodebytes(reply.encode()).decode())).encode()
        dv.append(raw)
        res = wait_until(lambda: (lambda j: j if j["completed"] == 1 else None)(
            results(d, "after-visit")), 30, "the emailed answers recorded")
        check([question(res, q)["distribution"] for q in ("rate", "again")] ==
              [{"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}, {"1": 1, "2": 0}], "answers %r" % res)
        check(question(res, "nps")["distribution"]["9"] == 1, "nps %r" % res)
        # the thanks goes back by email; the same email delivered again changes nothing
        wait_until(lambda: len(os.listdir(new)) == 2, 15, "the thanks email")
        dv.append(raw)
        time.sleep(3 * SLOW)
        res = results(d, "after-visit")
        check(res["completed"] == 1 and question(res, "rate")["answers"] == 1, "dup %r" % res)
        check(len(os.listdir(new)) == 2, "no second thanks")
        tl = d.client("viewer").get("/v1/contacts/%s/timeline?limit=100" % cid).json["items"]
        check(sorted(e["question"] for e in tl if e.get("type") == "answer") ==
              ["again", "nps", "rate"], "timeline %r" % tl)
    finally:
        dv.stop()


@timeout(90)
def test_frequency_cap_spares_the_conversation(fx):
    """[prefs] caps survey:1/7d: the launch's first question uses the
    contact's one survey message of the week, yet the next questions and the
    thanks of the conversation the contact is answering still go out; a
    second survey launched to the same contact is capped."""
    r, s, d = start(fx, overrides={"prefs": {"caps": "survey:1/7d"}})
    mk = d.client("marketer")
    check(mk.post("/v1/surveys", SURVEY).status == 201, "create")
    pa = "+989121000001"
    contact(mk, "سارا", "09121000001")
    check(mk.post("/v1/surveys/after-visit/launch", {"segment": SEG, "channel": "sms"}).status
          == 200, "launch")
    wait_texts(s, pa, 1, "question 1")
    inbound(d, "09121000001", "5", "c-1")
    wait_texts(s, pa, 2, "question 2 despite the cap")
    inbound(d, "09121000001", "9", "c-2")
    wait_texts(s, pa, 3, "question 3 despite the cap")
    inbound(d, "09121000001", "بله", "c-3")
    got = wait_texts(s, pa, 4, "thanks despite the cap")
    check(got[-1] == THANKS, "the conversation ran to its end: %r" % got)
    other = dict(SURVEY, id="second")
    check(mk.post("/v1/surveys", other).status == 201, "second survey")
    check(mk.post("/v1/surveys/second/launch", {"segment": SEG, "channel": "sms"}).status
          == 200, "second launch")
    rc = r.client()

    def capped():
        for k in rc.scan_iter("clubd:m:*"):
            h = rc.hgetall(k)
            if h.get("survey") == "second":
                return h.get("state") == "suppressed" and \
                    h.get("last_error") == "frequency_cap:survey"
        return False
    wait_until(capped, 20, "the second survey's first question capped")
    check(len(texts_to(s, pa)) == 4, "nothing more sent")
