"""Email replies end to end: the real clubd polls a real IMAP server (Debian's
dovecot, started by the test on a loopback port, tests/fakes/dovecot.py).
A Persian windows-1256 quoted-printable reply to an email clubd sent (its
In-Reply-To carries our Message-ID, taken from the outbox) lands on the
right contact's timeline with the quoted text stripped, attributed to that
message and its campaign even though another campaign touched the contact
later, and is marked \\Seen only once stored; the same Message-ID delivered
again is recorded once; STOP and لغو by email opt out (with a confirmation
by email); an unknown sender becomes a lead; a message over
max_message_size and an automatic answer are refused, audited and marked
seen; with Redis refusing writes (CLIENT PAUSE WRITE) a reply stays unseen
and is stored exactly once after Redis comes back; when the connection
drops between the size check and the fetch (a proxy cuts it) the message
is still stored once and marked seen."""

import base64
import os
import quopri
import socket
import threading
import time

from harness import check, timeout, wait_state, wait_until

from dovecot import Dovecot

MARKETING = ("promotional", "survey", "lottery", "occasion")


def start(fx, imap=None, inbound=None):
    r = fx.redis()
    dv = Dovecot(fx.tmp).start()
    fx.imap_server = dv
    ov = {"imap": {"url": dv.url(), "username": dv.user, "password_file": dv.password_file,
                   "tls": "no", "interval": "1s"}}
    ov["imap"].update(imap or {})
    if inbound:
        ov["inbound"] = inbound
    try:
        d = fx.clubd(r, overrides=ov)
    except Exception:
        dv.stop()
        raise
    return r, dv, d


def stop_imap(fx):
    dv = getattr(fx, "imap_server", None)
    if dv:
        dv.stop()


def cp1256(s):
    """Persian as an old windows-1256 client writes it: Arabic yeh, ASCII digits."""
    return s.replace("ی", "ي").translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")).encode("cp1256")


def timeline(d, cid):
    x = d.client("viewer").get("/v1/contacts/%s/timeline?limit=500" % cid)
    check(x.status == 200, "timeline -> %r" % x)
    return x.json["items"]


def replies(d, cid):
    return [e for e in timeline(d, cid) if e.get("type") == "reply"]


def marketing(d, cid):
    x = d.client("viewer").get("/v1/contacts/" + cid)
    check(x.status == 200, "contact -> %r" % x)
    cats = (x.json.get("preferences") or {}).get("categories", {})
    return [cats.get(c) for c in MARKETING]


def audit(r):
    """The raw inbound audit stream, oldest first, as dicts."""
    return [f for _, f in r.client().xrange("clubd:inbound")]


def metric(d, result):
    text = d.client(None).get("/metrics").text
    key = 'clubd_inbound_total{transport="imap",result="%s"} ' % result
    for line in text.splitlines():
        if line.startswith(key):
            return int(line.split()[-1])
    return None


def sent_message_id(fx, mid):
    """The Message-ID header of message mid in the outbox Maildir."""
    new = os.path.join(fx.outbox, "email", "new")
    for name in sorted(os.listdir(new)):
        with open(os.path.join(new, name), "rb") as f:
            raw = f.read()
        if mid.encode() not in raw:
            continue
        for line in raw.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                return line.split(b":", 1)[1].strip().decode()
    return None


def utf8_mail(frm, text, msgid, extra=""):
    body = base64.encodebytes(text.encode()).decode()
    return ("From: %s\r\nTo: club@example.com\r\nSubject: Re: offer\r\nMessage-ID: <%s>\r\n%s"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n%s" % (frm, msgid, extra, body)).encode()


@timeout(120)
def test_persian_reply_attributed_and_deduped(fx):
    try:
        r, dv, d = start(fx)
        mk = d.client("marketer")
        cid = mk.create_contact({"name": "Ali", "addresses": {"email": "ali.rezaei@example.ir"},
                                 "lang": "fa"})["id"]
        mid = mk.send({"contact_id": cid, "channel": "email", "subject": "جشنواره یلدا",
                       "text": "۲۰٪ تخفیف تا پایان هفته", "category": "promotional"})["id"]
        wait_state(d, mid, "sent")
        our_id = sent_message_id(fx, mid)
        check(our_id and mid in our_id, "our Message-ID %r names %s" % (our_id, mid))
        # the message was a campaign's (variant A); a later campaign touched the contact since
        rc = r.client()
        rc.hset("clubd:m:" + mid, mapping={"camp": "yalda", "var": "A"})
        rc.hset("clubd:lc:" + cid, mapping={"camp": "later", "var": "B", "msg": "01LATERMSG000000000000000",
                                            "at": int(time.time() * 1000), "win": 86400000})

        body = cp1256("سلام، ممنون از پیشنهاد.\nلطفاً برای من هم یک کد تخفیف بفرستید.\n\n"
                      "در تاریخ دوشنبه ۲ آذر ۱۴۰۵، باشگاه <club@localhost> نوشت:\n"
                      "> ۲۰% تخفیف تا پایان هفته\n> لغو: ارسال «لغو»\n")
        subject = "=?windows-1256?B?%s?=" % base64.b64encode(cp1256("پاسخ: جشنواره یلدا")).decode()
        raw = (("From: =?windows-1256?B?%s?= <ali.rezaei@Example.IR>\r\n"
                "To: club@localhost\r\nSubject: %s\r\nDate: Mon, 23 Nov 2026 10:15:00 +0330\r\n"
                "Message-ID: <fa-reply-1@mail.example.ir>\r\nIn-Reply-To: %s\r\nReferences: %s\r\n"
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"windows-1256\"\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n")
               % (base64.b64encode(cp1256("علی")).decode(), subject, our_id, our_id)).encode()
        raw += quopri.encodestring(body).replace(b"\n", b"\r\n")
        uid = dv.append(raw)

        got = wait_until(lambda: replies(d, cid), 20, "the reply on the timeline",
                         on_fail=lambda: dv.tail())
        check(len(got) == 1, "one reply: %r" % got)
        e = got[0]
        want = "سلام، ممنون از پيشنهاد.\nلطفاً براي من هم يک کد تخفيف بفرستيد."
        check(e.get("text") == want, "decoded, quote stripped: %r" % e.get("text"))
        check(e.get("channel") == "email", "channel: %r" % e)
        check(e.get("m") == mid and e.get("camp") == "yalda",
              "attributed to the message it answers and its campaign: %r" % e)
        wait_until(lambda: dv.seen(uid), 10, "\\Seen after the store")
        cs = rc.hgetall("clubd:cs:yalda")
        check(cs.get("replies") == "1" and cs.get("A:replies") == "1", "campaign counters: %r" % cs)
        check(not rc.hget("clubd:cs:later", "replies"), "the later touch got nothing")
        check(rc.sismember("clubd:eng:replied:yalda", cid), "engagement set")
        check(metric(d, "stored") == 1, "metrics: stored 1")

        # the same Message-ID delivered again: recorded once
        uid2 = dv.append(raw)
        wait_until(lambda: dv.seen(uid2), 20, "the second copy marked seen")
        check(len(replies(d, cid)) == 1, "still one reply: %r" % replies(d, cid))
        check(rc.hget("clubd:cs:yalda", "replies") == "1", "not counted twice")
        check(metric(d, "duplicate") == 1, "metrics: one duplicate")
        check(sum(1 for a in audit(r) if a.get("provider_id") == "fa-reply-1@mail.example.ir") == 1,
              "one audit entry")
    finally:
        stop_imap(fx)


@timeout(120)
def test_stop_by_email_and_leads(fx):
    try:
        r, dv, d = start(fx)
        mk = d.client("marketer")
        bob = mk.create_contact({"name": "Bob", "addresses": {"email": "bob@example.com"}})["id"]
        sara = mk.create_contact({"name": "Sara", "addresses": {"email": "sara@example.ir"},
                                  "lang": "fa"})["id"]
        check(marketing(d, bob) == [None] * 4, "bob starts with defaults")
        stop = utf8_mail("Bob <bob@EXAMPLE.com>", "STOP\n\nSent from my iPhone\n\n"
                         "On Mon, Nov 23, 2026 at 10:00 AM Club <club@localhost> wrote:\n> Big sale!\n",
                         "stop-bob@example.com")
        lagv = utf8_mail("sara@example.ir", "لغو\n\nدر تاریخ ۱۴۰۵/۰۹/۰۲ باشگاه نوشت:\n> حراج\n",
                         "lagv-sara@example.ir")
        lead = utf8_mail("New Person <new.person@example.org>", "Hi! How do I join the club?\n",
                         "lead-1@example.org")
        u1, u2, u3 = dv.append(stop), dv.append(lagv), dv.append(lead)
        wait_until(lambda: marketing(d, bob) == [False] * 4, 20, "STOP by email opts bob out",
                   on_fail=lambda: dv.tail())
        wait_until(lambda: marketing(d, sara) == [False] * 4, 20, "لغو by email opts sara out")

        def lead_entry():
            return [a for a in audit(r) if a.get("provider_id") == "lead-1@example.org"]
        a = wait_until(lead_entry, 20, "the lead's message recorded")[0]
        lid = a.get("contact")
        check(lid and lid not in (bob, sara), "a new contact: %r" % a)
        c = d.client("viewer").get("/v1/contacts/" + lid).json
        check(c["addresses"].get("email") == "new.person@example.org", "lead's address: %r" % c)
        check(r.client().hget("clubd:c:" + lid, "lead") == "1", "marked as a lead")
        check([e.get("text") for e in replies(d, lid)] == ["Hi! How do I join the club?"],
              "lead's reply on its timeline")
        for u in (u1, u2, u3):
            wait_until(lambda: dv.seen(u), 10, "uid %d seen" % u)

        # the confirmations go out by email (transactional), in each one's language
        def confirmations():
            rc = r.client()
            out = {}
            for k in rc.keys("clubd:m:*"):
                h = rc.hgetall(k)
                if h.get("kw") == "opt_out":
                    out[h.get("contact")] = h
            return out if len(out) == 2 else None
        conf = wait_until(confirmations, 20, "two opt-out confirmations")
        check(conf[bob].get("channel") == "email" and conf[sara].get("channel") == "email",
              "confirmed by email: %r" % conf)
        check("لغو" in conf[sara].get("text", ""), "Persian confirmation for لغو: %r" % conf[sara])
        check("STOP" not in conf[sara].get("text", "") and "START" in conf[bob].get("text", ""),
              "English for STOP: %r" % conf[bob])
    finally:
        stop_imap(fx)


@timeout(120)
def test_refused_oversized_and_automatic(fx):
    try:
        r, dv, d = start(fx, imap={"max_message_size": "16k"})
        big = utf8_mail("big@example.com", "x" * 40000, "big-1@example.com")
        ooo = utf8_mail("away@example.com", "I am out of the office.", "ooo-1@example.com",
                        extra="Auto-Submitted: auto-replied\r\n")
        ok = utf8_mail("fine@example.com", "just fine", "fine-1@example.com")
        ub, uo, uf = dv.append(big), dv.append(ooo), dv.append(ok)
        for u in (ub, uo, uf):
            wait_until(lambda: dv.seen(u), 20, "uid %d seen" % u, on_fail=lambda: dv.tail())
        refused = {a.get("uid"): a for a in audit(r) if a.get("action") == "refused"}
        check(refused.get(str(ub), {}).get("reason") == "too large", "too large audited: %r" % refused)
        check(int(refused[str(ub)]["size"]) > 16384, "its size: %r" % refused[str(ub)])
        check(refused.get(str(uo), {}).get("reason") == "automatic answer",
              "automatic answer audited: %r" % refused)
        check(refused[str(uo)].get("provider_id") == "ooo-1@example.com", "by Message-ID")
        routed = [a for a in audit(r) if a.get("action") == "reply"]
        check([a.get("provider_id") for a in routed] == ["fine-1@example.com"],
              "only the ordinary message is routed: %r" % routed)
        check(metric(d, "rejected") == 2 and metric(d, "stored") == 1,
              "metrics: %r %r" % (metric(d, "rejected"), metric(d, "stored")))
    finally:
        stop_imap(fx)


@timeout(120)
def test_store_paused_nothing_lost_nothing_twice(fx):
    try:
        r, dv, d = start(fx, imap={"interval": "1s"})
        mk = d.client("marketer")
        cid = mk.create_contact({"name": "Pat", "addresses": {"email": "pat@example.com"}})["id"]
        rc = r.client()
        check(rc.execute_command("CLIENT", "PAUSE", "6000", "WRITE") in (True, "OK", b"OK"),
              "pause")
        uid = dv.append(utf8_mail("pat@example.com", "are you there?", "paused-1@example.com"))
        # at least one poll fetches it while writes are refused: it stays unseen
        t_end = time.monotonic() + 4
        while time.monotonic() < t_end:
            check(not dv.seen(uid), "marked seen while the store refused writes")
            time.sleep(0.2)
        log = d.stderr()
        check("imap" in log, "the poller ran")
        rc.execute_command("CLIENT", "UNPAUSE")
        wait_until(lambda: dv.seen(uid), 30, "seen once stored", on_fail=lambda: d.stderr()[-3000:])
        time.sleep(2.5)  # more polls: nothing is recorded again
        got = replies(d, cid)
        check([e.get("text") for e in got] == ["are you there?"], "exactly one reply: %r" % got)
        check(sum(1 for a in audit(r) if a.get("provider_id") == "paused-1@example.com") == 1,
              "one audit entry")
    finally:
        stop_imap(fx)


@timeout(60)
def test_config_checked(fx):
    """imaps:// with tls = no, and a missing password file, stop the start."""
    r = fx.redis()
    pw = os.path.join(fx.tmp, "pw")
    with open(pw, "w") as f:
        f.write("x\n")
    for imap, needle in (({"url": "imaps://127.0.0.1:1", "username": "u", "password_file": pw,
                           "tls": "no"}, "imap.tls"),
                         ({"url": "imap://127.0.0.1:1", "username": "u",
                           "password_file": os.path.join(fx.tmp, "missing")}, "imap.password_file"),
                         ({"url": "imap://user@127.0.0.1:1", "username": "u", "password_file": pw},
                          "imap.url")):
        d = fx.clubd(r, overrides={"imap": imap}, start=False)
        try:
            d.start(timeout_s=5)
            ok = False
        except AssertionError:
            ok = True
        check(ok, "clubd started with %r" % imap)
        check(needle in d.stderr(), "error names %s: %s" % (needle, d.stderr()[-500:]))


class DropProxy:
    """A TCP proxy in front of dovecot that closes the client's connection
    once, right after the answer to the first "RFC822.SIZE" command, so
    libcurl's next transfer (the fetch) opens a new connection."""

    def __init__(self, port):
        self.target = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.dropped = 0
        self.conns = 0
        self.closed = False
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closed = True
        self.sock.close()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target))
            state = {"tag": None}
            with self.lock:
                self.conns += 1
            threading.Thread(target=self._up, args=(c, s, state), daemon=True).start()
            threading.Thread(target=self._down, args=(s, c, state), daemon=True).start()

    def _up(self, c, s, state):
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                for line in data.split(b"\r\n"):
                    if b"RFC822.SIZE" in line and self.dropped == 0 and b" " in line:
                        state["tag"] = line.split(b" ", 1)[0]
                s.sendall(data)
        except OSError:
            pass
        for x in (c, s):
            try:
                x.close()
            except OSError:
                pass

    def _down(self, s, c, state):
        buf = b""
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                c.sendall(data)
                buf = (buf + data)[-4096:]
                tag = state["tag"]
                if tag and (buf.startswith(tag + b" OK") or (b"\r\n" + tag + b" OK") in buf):
                    with self.lock:
                        self.dropped += 1
                    state["tag"] = None
                    break
        except OSError:
            pass
        for x in (c, s):
            try:
                x.shutdown(socket.SHUT_RDWR)
                x.close()
            except OSError:
                pass


@timeout(120)
def test_connection_dropped_before_fetch(fx):
    r = fx.redis()
    dv = Dovecot(fx.tmp).start()
    proxy = DropProxy(dv.port)
    try:
        d = fx.clubd(r, overrides={"imap": {"url": "imap://127.0.0.1:%d" % proxy.port,
                                            "username": dv.user, "password_file": dv.password_file,
                                            "tls": "no", "interval": "1s"}})
        mk = d.client("marketer")
        cid = mk.create_contact({"name": "Dan", "addresses": {"email": "dan@example.com"}})["id"]
        uid = dv.append(utf8_mail("dan@example.com", "hello again", "drop-1@example.com"))
        wait_until(lambda: dv.seen(uid), 30, "stored and seen", on_fail=lambda: d.stderr()[-3000:])
        check(proxy.dropped == 1 and proxy.conns >= 2, "the proxy cut one connection (%d, %d)"
              % (proxy.dropped, proxy.conns))
        # libcurl either reuses the dead connection (the fetch fails, the next poll
        # takes the message) or notices and opens a new one (curl's own SELECT makes
        # the fetch set \\Seen, which the poller takes back before fetching again)
        log = d.stderr()
        check("fetched on a new connection" in log or "poll failed" in log,
              "the drop was noticed:\n" + log[-2000:])
        time.sleep(1.5)
        check([e.get("text") for e in replies(d, cid)] == ["hello again"], "stored once")
    finally:
        proxy.close()
        dv.stop()
