"""The complaints desk (people in the loop) through the real clubd: teams and
routing rules (validated), replies that arrive through the signed JSON
webhook (/v1/inbound/sms) become tickets routed by keyword (a Persian
complaint written with Arabic kaf/yeh) to the complaints team, whose webhook
(a loopback sink checking X-Clubd-Signature) is notified; assign and answer
send an SMS back to the customer on the channel used (the SMS sink) and
record the first-response time (ticket, team stats, the metrics histogram
under the strict parser); the customer writing again reopens the answered
ticket; duplicates make one ticket; STOP/لغو/HELP are never tickets; a
campaign with forward_replies_to sends its replies to that team (notified
by email through the message pipeline); and no reply is lost when clubd is
killed with -9 between recording replies and opening their tickets."""

import hashlib
import hmac
import http.server
import json
import os
import threading
import time
import urllib.parse

from harness import check, parallel, timeout, wait_state, wait_until
from test_metrics import parse as parse_metrics

SECRET = "callback-secret-for-desk-tests-0123"
COMPLAINT_AR = "از خدمات شما شكايت دارم"  # Arabic kaf (ك) and yeh (ي)
ANSWER = "ببخشید، همین امروز پیگیری می‌کنیم."


class TeamHook:
    """A loopback receiver for team notifications; keeps what it got and
    whether each signature verified."""

    def __init__(self, secret, statuses=None):
        self.secret = secret.encode()
        self.got = []  # (verified, headers, body)
        self.statuses = list(statuses or [])  # answers to give first, then 200
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                ts = self.headers.get("X-Clubd-Timestamp", "")
                sig = self.headers.get("X-Clubd-Signature", "")
                want = "sha256=" + hmac.new(outer.secret, ts.encode() + b"." + raw,
                                            hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(want, sig) and abs(int(ts or 0) - time.time()) < 300
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with outer.lock:
                    outer.got.append((ok, dict(self.headers), body))
                    status = outer.statuses.pop(0) if outer.statuses else 200
                data = b"{}"
                self.send_response(status if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/team"):
        return "http://127.0.0.1:%d%s" % (self.srv.server_address[1], path)

    def events(self):
        with self.lock:
            return list(self.got)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def start(fx, sink=True, overrides=None):
    path = os.path.join(fx.tmp, "cb-secret")
    with open(path, "w") as f:
        f.write(SECRET + "\n")
    r = fx.redis()
    s = fx.sink() if sink else None
    ov = {"api": {"callback_secret_file": path}}
    for k, v in (overrides or {}).items():
        ov.setdefault(k, {}).update(v)
    d = fx.clubd(r, s, overrides=ov)
    return r, s, d


def inbound(d, frm, text, mid, client=None):
    body = json.dumps({"from": frm, "to": "30001234", "text": text, "id": mid},
                      ensure_ascii=False).encode()
    ts = str(int(time.time()))
    sig = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    c = client or d.client(None)
    return c.request("POST", "/v1/inbound/sms", raw=body, token=None,
                     headers={"X-Clubd-Timestamp": ts, "X-Clubd-Signature": "sha256=" + sig})


def tickets(d, **q):
    x = d.client("viewer").get("/v1/tickets?" + urllib.parse.urlencode(dict(q, limit=200)))
    check(x.status == 200, "GET /v1/tickets -> %r" % x)
    return x.json["items"]


def ticket(d, tid):
    x = d.client("viewer").get("/v1/tickets/" + tid)
    check(x.status == 200, "GET /v1/tickets/%s -> %r" % (tid, x))
    return x.json


def sink_texts(s, to):
    with s._lock:
        return [r.body for v in s.log.values() for r in v if r.body.get("to") == to]


def setup_desk(d, hook):
    adm = d.client("admin")
    x = adm.post("/v1/teams", {"id": "complaints", "name": "رسیدگی به شکایات",
                               "notify": {"webhook": hook.url()}, "members": ["sara", "ali"]})
    check(x.status == 201 and x.json["notify"]["webhook"] == hook.url(), "team -> %r" % x)
    check(adm.post("/v1/teams", {"id": "support", "name": "Support"}).status == 201, "support")
    check(adm.post("/v1/teams", {"id": "vip", "notify": {"chat": "-100777"}}).status == 201, "vip")
    return adm


@timeout(120)
def test_desk_complaint_routed_answered_reopened(fx):
    r, s, d = start(fx)
    hook = TeamHook(SECRET)
    try:
        run_complaint(fx, r, s, d, hook)
    finally:
        hook.close()


def run_complaint(fx, r, s, d, hook):
    adm = setup_desk(d, hook)
    mk, view = d.client("marketer"), d.client("viewer")

    # ---- validation of teams and rules
    x = adm.post("/v1/teams", {"id": "complaints"})
    check(x.status == 409 and x.err_field() == "id", "team twice -> %r" % x)
    x = adm.post("/v1/teams", {"name": "x"})
    check(x.status == 400 and x.err_code() == "missing_field", "no id -> %r" % x)
    x = adm.post("/v1/teams", {"id": "t2", "notify": {"webhook": "ftp://x"}})
    check(x.status == 400 and x.err_field() == "notify.webhook", "bad webhook -> %r" % x)
    check(mk.post("/v1/teams", {"id": "t3"}).status == 403, "marketers do not make teams")
    x = adm.request("PUT", "/v1/desk/rules", {"rules": [{"team": "nobody", "keywords": ["x"]}]})
    check(x.status == 400 and x.err_field() == "rules[0].team", "unknown team -> %r" % x)
    x = adm.request("PUT", "/v1/desk/rules", {"rules": [{"team": "vip", "keywords": [" "]}]})
    check(x.status == 400 and x.err_field() == "rules[0].keywords[0]", "blank keyword -> %r" % x)
    x = adm.request("PUT", "/v1/desk/rules", {"rules": [], "default_team": "ghost"})
    check(x.status == 400 and x.err_field() == "default_team", "unknown default -> %r" % x)
    rules = {"rules": [{"name": "vip", "team": "vip", "tags": ["vip"]},
                       {"name": "complaints", "team": "complaints",
                        "keywords": ["شکایت", "complaint"]}],
             "default_team": "support"}
    x = adm.request("PUT", "/v1/desk/rules", rules)
    check(x.status == 200 and x.json["v"] == 1 and x.json["rules"][1]["keywords"] == ["شکایت", "complaint"],
          "rules -> %r" % x)
    check(view.get("/v1/desk/rules").json["default_team"] == "support", "rules read back")
    x = adm.delete("/v1/teams/complaints")
    check(x.status == 409, "a team the rules name is not deleted -> %r" % x)

    # ---- a complaint by SMS: routed by keyword, the team's webhook notified
    cid = mk.create_contact({"name": "Sara", "addresses": {"sms": "+989121234567"}})["id"]
    x = inbound(d, "09121234567", COMPLAINT_AR, "wh-c1")
    check(x.status == 200 and x.json["action"] == "reply", "inbound -> %r" % x)
    got = wait_until(lambda: tickets(d, team="complaints"), 10, "a complaints ticket")
    check(len(got) == 1, "one ticket: %r" % got)
    t = got[0]
    check(t["state"] == "open" and t["contact_id"] == cid and t["channel"] == "sms"
          and t["from"] == "+989121234567" and t["routed"] == {"via": "rule", "rule": "complaints"}
          and t["last_text"] == COMPLAINT_AR, "ticket %r" % t)
    tid = t["id"]
    ev = wait_until(lambda: [e for e in hook.events() if e[2] and e[2]["event"] == "ticket.opened"],
                    10, "the team's webhook notified")
    ok, headers, body = ev[0]
    check(ok, "the notification is signed with the callback secret: %r" % headers)
    check(body["ticket"]["id"] == tid and body["ticket"]["team"] == "complaints"
          and body["ticket"]["text"] == COMPLAINT_AR and body["ticket"]["contact_id"] == cid,
          "notification body %r" % body)
    check(headers.get("X-Clubd-Event") == "ticket.opened", "event header %r" % headers)
    wait_until(lambda: ticket(d, tid)["notified"].get("webhook") == "ok", 10,
               "notification recorded on the ticket")

    # the provider delivers the same message again: still one ticket
    x = inbound(d, "09121234567", COMPLAINT_AR, "wh-c1")
    check(x.status == 200 and x.json["duplicate"] is True, "duplicate -> %r" % x)
    time.sleep(1.5)
    check(len(tickets(d)) == 1 and ticket(d, tid)["messages"] == 1, "no second ticket or message")

    # ---- assign, answer: an SMS to the customer on the channel used
    x = mk.post("/v1/tickets/%s/assign" % tid, {"operator": "sara"})
    check(x.status == 200 and x.json["state"] == "assigned" and x.json["operator"] == "sara",
          "assign -> %r" % x)
    check(mk.post("/v1/tickets/%s/assign" % tid, {}).status == 400, "assign without operator")
    check(view.post("/v1/tickets/%s/assign" % tid, {"operator": "x"}).status == 403, "viewer")
    x = mk.post("/v1/tickets/%s/answer" % tid, {"text": ANSWER})
    check(x.status == 200 and x.json["state"] == "answered" and x.json["message_id"]
          and x.json["first_response_ms"] is not None and x.json["first_response_ms"] >= 0,
          "answer -> %r" % x)
    mid, fr = x.json["message_id"], x.json["first_response_ms"]
    m = wait_state(d, mid, ("sent", "failed", "suppressed"))
    check(m["state"] == "sent" and m["channel"] == "sms" and m["category"] == "transactional",
          "the answer went out by SMS: %r" % m)
    b = wait_until(lambda: [b for b in sink_texts(s, "+989121234567") if b["text"] == ANSWER],
                   10, "the answer at the SMS provider")
    check(b[0]["category"] == "transactional" and b[0]["contact_id"] == cid, "sink %r" % b[0])
    # the same request again (a client retry): the same message, recorded once
    x = mk.post("/v1/tickets/%s/answer" % tid, {"text": ANSWER})
    check(x.status == 200 and x.json["message_id"] == mid and x.json["answers"] == 1,
          "retried answer -> %r" % x)
    tk = ticket(d, tid)
    kinds = [(e["dir"], e.get("event")) for e in tk["conversation"]]
    check(kinds == [("in", None), ("event", "assigned"), ("out", None)], "conversation %r" % kinds)
    check(tk["conversation"][2]["text"] == ANSWER and tk["conversation"][2]["message_id"] == mid,
          "the answer on the ticket %r" % tk["conversation"][2])
    tl = view.get("/v1/contacts/%s/timeline?limit=50" % cid).json["items"]
    check(any(e.get("type") == "desk_answer" and e.get("ticket") == tid and e.get("text") == ANSWER
              for e in tl), "the answer on the contact's timeline")
    check(tl[-1]["type"] == "reply" and tl[-1]["text"] == COMPLAINT_AR,
          "the reply on the timeline (no other entry for the ticket): %r" % [e["type"] for e in tl])

    # ---- first response: stats and the histogram
    st = view.get("/v1/teams/complaints/stats?days=7")
    check(st.status == 200 and st.json["tickets"]["answered"] == 1
          and st.json["first_response"]["count"] == 1
          and st.json["first_response"]["p50_ms"] == fr and st.json["first_response"]["p90_ms"] == fr,
          "stats -> %r" % st)
    check(view.get("/v1/teams/complaints/stats?days=0").status == 400, "days 0 refused")
    fams = parse_metrics(d.client(None).get("/metrics").text)
    counts = [v for n, l, v in fams["clubd_desk_first_response_seconds"]["samples"]
              if n.endswith("_count") and l.get("team") == "complaints"]
    check(counts == [1], "histogram observed once: %r" % counts)
    opened = [v for n, l, v in fams["clubd_desk_tickets_total"]["samples"]
              if l.get("event") == "opened"]
    check(opened == [1], "tickets counter %r" % opened)

    # ---- the customer writes again: the answered ticket reopens, to its operator
    x = inbound(d, "+989121234567", "هنوز درست نشده", "wh-c2")
    check(x.status == 200, "second message -> %r" % x)
    wait_until(lambda: ticket(d, tid)["messages"] == 2, 10, "appended to the ticket")
    tk = ticket(d, tid)
    check(tk["state"] == "assigned" and tk["reopened"] == 1 and len(tickets(d)) == 1,
          "reopened %r" % tk)
    wait_until(lambda: [e for e in hook.events() if e[2] and e[2]["event"] == "ticket.reopened"],
               10, "the team told about the reopened ticket")
    x = mk.post("/v1/tickets/%s/answer" % tid, {"text": "درست شد؟", "operator": "ali"})
    check(x.status == 200 and x.json["first_response_ms"] == fr and x.json["answers"] == 2,
          "a second answer keeps the first response: %r" % x)
    x = mk.post("/v1/tickets/%s/close" % tid)
    check(x.status == 200 and x.json["state"] == "closed", "close -> %r" % x)
    check(mk.post("/v1/tickets/%s/close" % tid).status == 409, "closed twice")
    x = mk.post("/v1/tickets/%s/answer" % tid, {"text": "x"})
    check(x.status == 409 and x.err_field() == "state", "no answer to a closed ticket -> %r" % x)
    check(mk.post("/v1/tickets/00000000000000000000000000/close").status == 404, "unknown")

    # after close: a new ticket; no keyword -> the default team
    x = inbound(d, "+989121234567", "سلام دوباره", "wh-c3")
    t2 = wait_until(lambda: tickets(d, team="support"), 10, "a new ticket after close")
    check(len(t2) == 1 and t2[0]["id"] != tid and t2[0]["routed"]["via"] == "default",
          "new ticket %r" % t2)

    # ---- keywords are not tickets: STOP, لغو, HELP
    n = len(tickets(d))
    for i, kw in enumerate(("STOP", "لغو", "HELP", "start")):
        x = inbound(d, "+989121234567", kw, "wh-kw-%d" % i)
        check(x.status == 200 and x.json["action"] in ("opt_out", "opt_in", "help"),
              "%s -> %r" % (kw, x))
    # an unknown sender's reply: a lead and a ticket; a tagged VIP: the VIP team
    vip = mk.create_contact({"name": "V", "tags": ["vip"], "addresses": {"sms": "09120000077"}})
    inbound(d, "09120000066", "hello?", "wh-lead")
    inbound(d, "09120000077", "my complaint", "wh-vip")
    wait_until(lambda: len(tickets(d)) == n + 2, 10, "two more tickets, none for keywords",
               on_fail=lambda: tickets(d))
    time.sleep(1.2)
    check(len(tickets(d)) == n + 2, "keywords made no ticket: %r" % tickets(d))
    v = tickets(d, team="vip")
    check(len(v) == 1 and v[0]["contact_id"] == vip["id"], "first match wins: vip %r" % v)
    # the VIP team is told by chat through the message pipeline
    rc = r.client()
    wait_until(lambda: [k for k in rc.keys("clubd:m:*") if rc.hget(k, "tk") == v[0]["id"]
                        and rc.hget(k, "channel") == "chat"], 10, "a chat message to the VIP team")
    lead = [t for t in tickets(d, team="support") if t["from"] == "+989120000066"]
    check(len(lead) == 1 and lead[0]["contact_id"], "lead ticket %r" % lead)
    open_ = tickets(d, state="open")
    check({t["id"] for t in open_} >= {v[0]["id"], lead[0]["id"]}, "state index %r" % open_)
    check(view.get("/v1/tickets?state=reopened").status == 400, "unknown state")

    # the answers match docs/openapi.yaml
    from test_openapi import Validator, load_spec
    v_ = Validator(load_spec())
    sch = "#/components/schemas/"
    v_.validate(ticket(d, tid), {"$ref": sch + "Ticket"}, "GET /v1/tickets/{id}")
    v_.validate(view.get("/v1/tickets?limit=2").json, {"$ref": sch + "TicketList"}, "ticket list")
    v_.validate(view.get("/v1/teams").json, {"$ref": sch + "TeamList"}, "team list")
    v_.validate(view.get("/v1/teams/complaints/stats").json, {"$ref": sch + "TeamStats"}, "stats")
    v_.validate(view.get("/v1/desk/rules").json, {"$ref": sch + "DeskRules"}, "rules")

    # teams list, update, delete once unused
    lst = view.get("/v1/teams").json["items"]
    check([t["id"] for t in lst] == ["complaints", "support", "vip"], "teams %r" % lst)
    x = adm.request("PUT", "/v1/teams/support", {"name": "پشتیبانی", "members": ["reza"]})
    check(x.status == 200 and x.json["v"] == 2 and x.json["members"] == ["reza"], "put -> %r" % x)
    check(adm.request("PUT", "/v1/teams/nope", {"name": "x"}).status == 404, "put unknown")
    check(adm.request("PUT", "/v1/desk/rules", {"rules": []}).status == 200, "no rules")
    check(adm.delete("/v1/teams/complaints").status == 204, "delete")
    check(view.get("/v1/teams/complaints").status == 404, "deleted")


@timeout(150)
def test_desk_campaign_forward_replies_to(fx):
    r, s, d = start(fx)
    adm, mk = d.client("admin"), d.client("marketer")
    check(adm.post("/v1/teams", {"id": "sales", "notify": {"email": "sales@club.example"}}).status
          == 201, "sales team")
    check(adm.post("/v1/teams", {"id": "complaints"}).status == 201, "complaints team")
    check(adm.request("PUT", "/v1/desk/rules",
                      {"rules": [{"team": "complaints", "keywords": ["complaint", "شکایت"]}]}
                      ).status == 200, "rules")
    x = mk.post("/v1/templates", {"id": "yalda", "name": "yalda", "default_lang": "fa",
                                  "variants": [{"channel": "any", "lang": "fa",
                                                "text": "یلدا مبارک {{first_name}}"}]})
    check(x.status == 201, "template %r" % x)
    cid = mk.create_contact({"first_name": "مریم", "lang": "fa", "tags": ["club"],
                             "addresses": {"sms": "09121110000"}})["id"]
    x = mk.post("/v1/campaigns", {"name": "yalda", "segment": {"tags": {"any": ["club"]}},
                                  "channel": "sms", "template": "yalda",
                                  "attribution_window": "7d", "forward_replies_to": "sales"})
    check(x.status == 201, "campaign %r" % x)
    camp = x.json["id"]
    check(mk.post("/v1/campaigns/%s/launch" % camp).status == 200, "launch")
    wait_until(lambda: sink_texts(s, "+989121110000"), 30, "the campaign SMS sent")
    wait_until(lambda: r.client().hget("clubd:lc:" + cid, "camp") == camp, 10, "last touch")
    # the reply has a complaint keyword, but the campaign forwards to sales
    x = inbound(d, "09121110000", "complaint: the code did not work", "wh-camp-1")
    check(x.status == 200, "reply %r" % x)
    t = wait_until(lambda: tickets(d, team="sales"), 10, "the reply at the sales team",
                   on_fail=lambda: tickets(d))
    check(t[0]["campaign"] == camp and t[0]["routed"]["via"] == "campaign"
          and not tickets(d, team="complaints"), "forwarded regardless of rules: %r" % t)
    # sales is told by email, through the pipeline (the outbox Maildir here)
    rc = r.client()
    msgs = wait_until(lambda: [k for k in rc.keys("clubd:m:*") if rc.hget(k, "tk") == t[0]["id"]],
                      10, "the notification message")
    m = wait_state(d, msgs[0].split(":")[-1], ("sent", "failed", "suppressed"))
    check(m["state"] == "sent" and m["channel"] == "email" and m["category"] == "transactional",
          "email notification %r" % m)
    mail = os.path.join(fx.outbox, "email", "new")
    files = wait_until(lambda: os.listdir(mail) if os.path.isdir(mail) else [], 10, "maildir")
    with open(os.path.join(mail, files[0]), "rb") as f:
        raw = f.read().decode("utf-8", "replace")
    check(t[0]["id"] in raw and "sales@club.example" in raw, "the mail names the ticket")
    check(ticket(d, t[0]["id"])["notified"].get("email") == "ok", "recorded as notified")


@timeout(180)
def test_desk_no_reply_lost_on_kill9(fx):
    """Replies recorded by the router right before kill -9 (their tickets not
    opened yet) become tickets when clubd is back: the desk's cursor in the
    audit stream only moves in the script that opens the tickets."""
    r, s, d = start(fx, sink=False)
    rc = r.client()

    def entry_tickets():
        # audit entry -> the tickets whose conversation holds it
        held = {}
        for tk in rc.zrange("clubd:tickets", 0, -1):
            for m in rc.lrange("clubd:tkm:" + tk, 0, -1):
                aid = json.loads(m).get("inbound")
                if aid:
                    held.setdefault(aid, []).append(tk)
        return held

    def orphans():
        held = entry_tickets()
        return [aid for aid, f in rc.xrange("clubd:inbound")
                if f.get("action") == "reply" and aid not in held]

    sent = 0
    hit = False
    for attempt in range(4):
        clients = [d.new_client(None) for _ in range(4)]
        stop = threading.Event()

        def post(w, i, base=sent):
            if stop.is_set():
                return None
            try:
                return inbound(d, "0912%07d" % (base + i), "reply %d" % i, "kill-%d" % (base + i),
                               client=clients[w]).status
            except Exception:  # the daemon was killed under us
                return None

        t = threading.Thread(target=lambda: parallel(post, range(400), threads=4), daemon=True)
        t.start()
        wait_until(lambda: rc.xlen("clubd:inbound") >= sent + 60, 20, "replies arriving")
        d.kill()
        stop.set()
        t.join(30)
        for c in clients:
            c.close()
        sent = rc.xlen("clubd:inbound")
        lost = orphans()
        if lost:
            hit = True
            fx.note("round %d: %d replies recorded without a ticket at the kill" % (attempt, len(lost)))
        d.start()
        wait_until(lambda: not orphans(), 20, "every recorded reply has a ticket after the restart",
                   on_fail=lambda: orphans()[:5])
        if hit:
            break
    check(hit, "no kill landed between a record and its ticket in 4 rounds")
    # one ticket per reply (every sender is a new lead), no duplicates
    replies = [aid for aid, f in rc.xrange("clubd:inbound") if f.get("action") == "reply"]
    held = entry_tickets()
    twice = [a for a in replies if len(held.get(a, [])) != 1]
    tks = {held[a][0] for a in replies if a in held}
    check(not twice, "every reply in exactly one ticket's conversation: %r" % twice[:5])
    check(len(tks) == len(replies) == rc.zcard("clubd:tickets"),
          "%d replies, %d tickets" % (len(replies), rc.zcard("clubd:tickets")))
    # the desk's inbox keeps nothing it has opened
    wait_until(lambda: rc.xlen("clubd:deskin") == 0, 10, "the inbox trimmed behind the desk",
               on_fail=lambda: rc.xrange("clubd:deskin", count=3))


@timeout(120)
def test_desk_clubctl(fx):
    from test_clubctl import Ctl

    r, s, d = start(fx)
    adm = d.client("admin")
    check(adm.post("/v1/teams", {"id": "complaints", "name": "شکایات",
                                 "notify": {"email": "desk@club.example"},
                                 "members": ["sara"]}).status == 201, "team")
    check(adm.request("PUT", "/v1/desk/rules",
                      {"rules": [{"team": "complaints", "keywords": ["شکایت"]}]}).status == 200,
          "rules")
    inbound(d, "09121234567", "یک شکایت دارم", "ctl-1")
    tid = wait_until(lambda: tickets(d), 10, "a ticket")[0]["id"]
    ctl = Ctl(fx, d.port, role="marketer")

    x = ctl.run("desk", "tickets", "--team", "complaints", want=0)
    lines = x.out.splitlines()
    check(lines[0].split()[:3] == ["ID", "TEAM", "STATE"] and tid in lines[1]
          and "یک شکایت دارم" in lines[1] and "open" in lines[1], "human list:\n%s" % x.out)
    x = ctl.run("desk", "tickets", "--state", "closed", "--json", want=0)
    check(x.json()["items"] == [], "no closed tickets: %r" % x.out)
    ctl.run("desk", "tickets", "--state", "nope", want=2)
    x = ctl.run("desk", "tickets", "-q", want=0)
    check(x.out.split() == [tid], "quiet ids %r" % x.out)

    ctl.run("desk", "assign", tid, want=2)  # --to is required
    x = ctl.run("desk", "assign", tid, "--to", "sara", want=0)
    check("assigned" in x.out and "sara" in x.out, "assign:\n%s" % x.out)
    x = ctl.run("desk", "answer", tid, "پیگیری شد", "--json", want=0)
    a = x.json()
    check(a["state"] == "answered" and a["message_id"] and a["first_response_ms"] >= 0,
          "answer json %r" % a)
    wait_until(lambda: [b for b in sink_texts(s, "+989121234567") if b["text"] == "پیگیری شد"],
               10, "the answer at the SMS provider")
    x = ctl.run("desk", "answer", tid, "پیگیری شد", want=0)
    check("sent as" in x.out and a["message_id"] in x.out, "the same answer again:\n%s" % x.out)
    x = ctl.run("desk", "show", tid, want=0)
    check("first response" in x.out and "customer (sms)" in x.out and "پیگیری شد" in x.out
          and "[assigned by sara]" in x.out, "show:\n%s" % x.out)
    x = ctl.run("desk", "show", tid, "--json", want=0)
    check(len(x.json()["conversation"]) == 3, "conversation %r" % x.out)
    x = ctl.run("desk", "teams", want=0)
    check("complaints" in x.out and "email: desk@club.example" in x.out and "sara" in x.out,
          "teams:\n%s" % x.out)
    x = ctl.run("desk", "stats", "complaints", want=0)
    check("answered" in x.out and "p50" in x.out, "stats:\n%s" % x.out)
    x = ctl.run("desk", "stats", "complaints", "--json", "--days", "7", want=0)
    check(x.json()["tickets"]["answered"] == 1 and x.json()["first_response"]["count"] == 1,
          "stats json %r" % x.out)
    ctl.run("desk", "close", tid, want=0)
    x = ctl.run("desk", "close", tid, want=1)
    check("closed" in x.err, "closing twice is refused: %r" % x)
    ctl.run("desk", "show", "00000000000000000000000000", want=1)
    ctl.run("desk", "teams", role="viewer", want=0)
    ctl.assert_no_token()


@timeout(90)
def test_desk_webhook_retried_then_failed(fx):
    """A team webhook answering 503 is retried (the same X-Clubd-Delivery) until
    it takes the notification; one answering 404 fails at once, recorded on
    the ticket and counted."""
    r, s, d = start(fx, sink=False)
    flaky = TeamHook(SECRET, statuses=[503])
    gone = TeamHook(SECRET, statuses=[404, 404, 404])
    try:
        adm = d.client("admin")
        check(adm.post("/v1/teams", {"id": "a", "notify": {"webhook": flaky.url()}}).status == 201, "a")
        check(adm.post("/v1/teams", {"id": "b", "notify": {"webhook": gone.url("/gone")}}).status
              == 201, "b")
        check(adm.request("PUT", "/v1/desk/rules", {"rules": [{"team": "b", "keywords": ["refund"]}],
                                                    "default_team": "a"}).status == 200, "rules")
        inbound(d, "09121230001", "hello", "re-1")
        inbound(d, "09121230002", "refund please", "re-2")
        ta = wait_until(lambda: tickets(d, team="a"), 10, "ticket a")[0]["id"]
        tb = wait_until(lambda: tickets(d, team="b"), 10, "ticket b")[0]["id"]
        wait_until(lambda: ticket(d, tb)["notified"].get("webhook", "").startswith("failed: http 404"),
                   10, "a 404 fails at once", on_fail=lambda: ticket(d, tb)["notified"])
        check(len(gone.events()) == 1, "not retried after a 404: %d" % len(gone.events()))
        wait_until(lambda: ticket(d, ta)["notified"].get("webhook", "").startswith(
            "retrying: http 503"), 10, "a 503 is retried", on_fail=lambda: ticket(d, ta)["notified"])
        wait_until(lambda: ticket(d, ta)["notified"].get("webhook") == "ok", 20,
                   "delivered on the second attempt")
        ev = flaky.events()
        check(len(ev) == 2 and all(e[0] for e in ev)
              and ev[0][1]["X-Clubd-Delivery"] == ev[1][1]["X-Clubd-Delivery"]
              and [e[2]["attempt"] for e in ev] == [1, 2], "two signed attempts: %r"
              % [(e[0], e[1].get("X-Clubd-Delivery"), e[2]) for e in ev])
        fams = parse_metrics(d.client(None).get("/metrics").text)
        res = {l["result"]: v for n, l, v in fams["clubd_desk_notifications_total"]["samples"]
               if l.get("kind") == "webhook"}
        check(res == {"ok": 1, "retry": 1, "failed": 1}, "notification counters %r" % res)
    finally:
        flaky.close()
        gone.close()


@timeout(90)
def test_desk_with_sealed_personal_data(fx):
    """With [privacy] key_file the tickets keep the sealed forms of the
    customer's address and texts (nothing readable in Redis), route on the
    plain text, and the API, the notification and the answer use the plain
    values."""
    key = os.path.join(fx.tmp, "privacy.key")
    with open(key, "w") as f:
        f.write("5a" * 32 + "\n")
    os.chmod(key, 0o600)
    r, s, d = start(fx, overrides={"privacy": {"key_file": key}})
    hook = TeamHook(SECRET)
    try:
        adm = d.client("admin")
        check(adm.post("/v1/teams", {"id": "complaints", "notify": {"webhook": hook.url()}})
              .status == 201, "team")
        check(adm.request("PUT", "/v1/desk/rules",
                          {"rules": [{"team": "complaints", "keywords": ["شکایت"]}]}).status
              == 200, "rules")
        check(inbound(d, "09121239999", COMPLAINT_AR, "sealed-1").status == 200, "inbound")
        t = wait_until(lambda: tickets(d, team="complaints"), 10, "routed on the plain text")[0]
        check(t["from"] == "+989121239999" and t["last_text"] == COMPLAINT_AR, "plain in the API %r" % t)
        rc = r.client()
        raw = rc.hgetall("clubd:tk:" + t["id"])
        conv = rc.lrange("clubd:tkm:" + t["id"], 0, -1)
        blob = json.dumps(raw, ensure_ascii=False) + "".join(conv)
        check("9121239999" not in blob and "شكايت" not in blob and "خدمات" not in blob,
              "nothing readable at rest: %r" % raw)
        ev = wait_until(lambda: hook.events(), 10, "notified")
        check(ev[0][2]["ticket"]["text"] == COMPLAINT_AR
              and ev[0][2]["ticket"]["from"] == "+989121239999", "plain notification %r" % ev[0][2])
        x = d.client("marketer").post("/v1/tickets/%s/answer" % t["id"], {"text": ANSWER})
        check(x.status == 200, "answer %r" % x)
        wait_until(lambda: [b for b in sink_texts(s, "+989121239999") if b["text"] == ANSWER], 10,
                   "the answer at the SMS provider")
        tk = ticket(d, t["id"])
        check([e.get("text") for e in tk["conversation"]] == [COMPLAINT_AR, ANSWER],
              "plain conversation %r" % tk["conversation"])
        check(ANSWER not in "".join(rc.lrange("clubd:tkm:" + t["id"], 0, -1)), "answer sealed")
    finally:
        hook.close()
