"""Chat replies from a Telegram-compatible bot through the real clubd and the
fake Bot API (tests/fakes/botapi.py):
- webhook: X-Telegram-Bot-Api-Secret-Token right/wrong/missing, a repeated
  update_id recorded once, unknown chats become leads, a shared contact (the
  sender's own number) links the chat to the contact owning the phone (or
  the phone to the chat's contact), someone else's contact card is ignored,
  a STOP in the chat is confirmed in the chat;
- getUpdates long polling: the offset lives in Redis and only moves with the
  stored update, so a restart resumes where it stopped and a kill -9 between
  getting the updates and storing them loses nothing and records nothing
  twice (Redis is paused with CLIENT PAUSE WRITE so the store cannot happen
  before the kill).  The polling test serves the API under /bale, as Bale's
  base_url is just another base for the same driver."""

import json
import os
import subprocess
import time

from harness import ROOT, Client, check, timeout, wait_until, write_config

BOTAPI = os.path.join(ROOT, "tests", "fakes", "botapi.py")
TOKEN = "424242:TEST-inbound_token"
SECRET = "tg-webhook-secret_0123456789"
STOP_FA = "لغو عضویت شما انجام شد. برای عضویت دوباره «عضویت» را بفرستید."


def msg(update_chat, text=None, contact=None, from_id=None, extra=None):
    m = {"message_id": int(time.time() * 1000) % 1000000, "date": int(time.time()),
         "chat": {"id": update_chat, "type": "private", "first_name": "Test"},
         "from": {"id": from_id or update_chat, "is_bot": False, "first_name": "Test"}}
    if text is not None:
        m["text"] = text
    if contact is not None:
        m["contact"] = contact
    u = {"message": m}
    u.update(extra or {})
    return u


class Bot:
    """The fake Bot API; prefix "/bale" serves it under a path, as a Bale-style
    base_url (https://tapi.bale.ai) is just another base for the same driver."""

    def __init__(self, fx, prefix=""):
        self.tok = os.path.join(fx.tmp, "bot-token")
        with open(self.tok, "w") as f:
            f.write(TOKEN + "\n")
        self.prefix = prefix
        self.rec = os.path.join(fx.tmp, "bot.jsonl")
        self.p = subprocess.Popen(["/usr/bin/python3", BOTAPI, self.rec, prefix + "=" + self.tok],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.port = int(self.p.stdout.readline().strip())
        self.base = "http://127.0.0.1:%d%s" % (self.port, prefix)
        self.ctl = Client(self.port)

    def control(self, what, body):
        body = dict(body, prefix=self.prefix)
        x = self.ctl.request("POST", "/_control/" + what, body=body, token=None)
        check(x.status == 200, "botapi control %s: %r" % (what, x))
        return x.json

    def records(self):
        if not os.path.exists(self.rec):
            return []
        return [json.loads(ln) for ln in open(self.rec, encoding="utf-8") if ln.strip()]

    def sent(self):
        return [r["body"] for r in self.records() if r.get("method") != "getUpdates" and r["body"]]

    def gets(self):
        return [r for r in self.records() if r.get("method") == "getUpdates"]

    def close(self):
        self.p.terminate()
        self.p.wait(5)


def daemon(fx, r, bot, inbound):
    with open(os.path.join(fx.tmp, "tg-secret"), "w") as f:
        f.write(SECRET + "\n")
    ov = {"inbound": dict(inbound)}
    if inbound.get("chat") == "webhook":
        ov["inbound"]["chat_secret_file"] = os.path.join(fx.tmp, "tg-secret")
    d = fx.clubd(r, start=False, overrides=ov)
    d.config["channel.chat"] = {"driver": "telegram", "base_url": bot.base,
                                "token_file": bot.tok, "timeout": "2s"}
    write_config(d.conf_path, d.config)
    return d.start()


def contact(d, cid):
    x = d.client("viewer").get("/v1/contacts/" + cid)
    check(x.status == 200, "contact %s -> %r" % (cid, x))
    return x.json


def timeline(d, cid):
    return d.client("viewer").get("/v1/contacts/%s/timeline?limit=500" % cid).json["items"]


@timeout(90)
def test_telegram_webhook_and_contact_link(fx):
    bot = Bot(fx)
    try:
        r = fx.redis()
        d = daemon(fx, r, bot, {"chat": "webhook"})
        rc = r.client()
        url = "http://127.0.0.1:%d/v1/inbound/telegram/chat" % d.port
        sara = d.client("marketer").create_contact(
            {"name": "سارا", "addresses": {"sms": "+989121234567"}})["id"]

        def hook(update, secret=SECRET, where=url):
            return bot.control("webhook", {"url": where, "secret": secret, "update": update})

        x = hook(msg(7001, "سلام"), secret="wrong-secret")
        check(x["status"] == 403, "wrong secret -> 403: %r" % x)
        x = hook(msg(7001, "سلام"), secret=None)
        check(x["status"] == 403, "no secret -> 403: %r" % x)
        check(rc.xlen("clubd:inbound") == 0, "nothing recorded")
        x = hook(msg(7001, "سلام"), where=url.replace("/chat", "/other"))
        check(x["status"] == 404, "unknown channel -> 404: %r" % x)

        x = hook(msg(7001, "سلام"))
        check(x["status"] == 200, "right secret -> 200: %r" % x)
        a = json.loads(x["body"])
        check(a["action"] == "reply" and a["duplicate"] is False, "answer %r" % a)
        lead = a["contact_id"]
        check(contact(d, lead)["addresses"].get("chat") == "7001", "lead with the chat address")
        check(rc.hget("clubd:c:" + lead, "lead") == "1", "a lead")
        ev = rc.xrange("clubd:inbound")[-1][1]
        check(ev["provider"] == "telegram" and ev["provider_id"] == "424242:%d" % x["update_id"]
              and ev["channel"] == "chat" and ev["transport"] == "telegram_webhook",
              "audit: %r" % ev)
        # the Bot API retries the same update
        y = bot.control("webhook", {"url": url, "secret": SECRET,
                                    "update": dict(msg(7001, "سلام"), update_id=x["update_id"])})
        check(json.loads(y["body"])["duplicate"] is True, "same update_id: duplicate: %r" % y)
        check(rc.xlen("clubd:inbound") == 1, "recorded once")

        # someone else's contact card does not link
        x = hook(msg(7001, contact={"phone_number": "989121234567", "user_id": 9999,
                                    "first_name": "X"}))
        check(x["status"] == 200 and "ignored" in json.loads(x["body"]), "ignored: %r" % x)
        check(rc.get("clubd:ix:chat:7001") == lead, "still the lead's")
        # edits and group messages are not ours
        x = hook({"edited_message": msg(7001, "STOP")["message"]})
        check(x["status"] == 200 and "ignored" in json.loads(x["body"]), "edit ignored: %r" % x)

        # the sender shares its own number: the chat moves to the contact owning the phone
        x = hook(msg(7001, contact={"phone_number": "989121234567", "user_id": 7001,
                                    "first_name": "Sara"}))
        a = json.loads(x["body"])
        check(x["status"] == 200 and a["action"] == "link" and a["contact_id"] == sara,
              "link -> %r" % x)
        c = contact(d, sara)
        check(c["addresses"].get("chat") == "7001" and c["addresses"].get("sms") == "+989121234567",
              "chat added to the phone's contact: %r" % c["addresses"])
        check(rc.get("clubd:ix:chat:7001") == sara, "reverse index moved")
        check("chat" not in contact(d, lead)["addresses"], "the lead let the chat go")
        check(any(e["type"] == "link" and e["chat"] == "7001" for e in timeline(d, sara)),
              "link on the timeline")

        # STOP in the chat: Sara's marketing consent goes, the confirmation comes in the chat
        x = hook(msg(7001, "لغو"))
        a = json.loads(x["body"])
        check(a["action"] == "opt_out" and a["contact_id"] == sara, "chat STOP: %r" % a)
        wait_until(lambda: any(b.get("chat_id") == 7001 and b.get("text") == STOP_FA
                               for b in bot.sent()), 15, "confirmation in the chat")

        # a chat's contact shares a number nobody has: the phone joins that contact
        x = hook(msg(7003, "hi"))
        l3 = json.loads(x["body"])["contact_id"]
        x = hook(msg(7003, contact={"phone_number": "+989350000002", "user_id": 7003}))
        check(json.loads(x["body"])["contact_id"] == l3, "same contact: %r" % x)
        check(contact(d, l3)["addresses"].get("sms") == "+989350000002", "phone added")
        check(rc.get("clubd:ix:sms:+989350000002") == l3, "phone index")
        # nobody knows chat or phone: a lead with both
        x = hook(msg(7002, contact={"phone_number": "989350000001", "user_id": 7002}))
        l2 = json.loads(x["body"])["contact_id"]
        ad = contact(d, l2)["addresses"]
        check(ad.get("chat") == "7002" and ad.get("sms") == "+989350000001", "lead with both: %r" % ad)
        # a body that is not an Update
        x = Client(d.port).request("POST", "/v1/inbound/telegram/chat", body={"hello": 1},
                                   token=None, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        check(x.status == 400, "not an update -> 400: %r" % x)
    finally:
        bot.close()


def tgoff(r):
    return int(r.client().get("clubd:tgoff:chat") or 0)


def audited(r, update_id):
    return [e for _, e in r.client().xrange("clubd:inbound")
            if e.get("provider_id") == "424242:%d" % update_id]


@timeout(120)
def test_telegram_polling_offsets_across_restarts(fx):
    bot = Bot(fx, prefix="/bale")
    try:
        r = fx.redis()
        d = daemon(fx, r, bot, {"chat": "poll", "chat_poll_timeout": "1s"})
        ids = bot.control("updates", {"updates": [
            msg(8001, "سلام"), {"edited_message": msg(8001, "x")["message"]},
            msg(8001, "STOP")]})["update_ids"]
        wait_until(lambda: tgoff(r) == ids[2] + 1, 15, "offset past the batch")
        lead = r.client().get("clubd:ix:chat:8001")
        check(lead, "a lead for the chat")
        types = [e["type"] for e in timeline(d, lead)]
        check(types.count("reply") == 1 and types.count("consent") == 1, "both stored: %r" % types)
        check(len(audited(r, ids[0])) == 1 and len(audited(r, ids[1])) == 0
              and len(audited(r, ids[2])) == 1, "the edit only moved the offset")
        wait_until(lambda: any(b.get("chat_id") == 8001 for b in bot.sent()), 15,
                   "STOP confirmed in the chat")
        wait_until(lambda: any(g["offset"] == ids[2] + 1 for g in bot.gets()), 10,
                   "the next poll confirms the batch")

        # a clean restart resumes from the stored offset
        check(d.term() == 0, "clean stop")
        n = len(bot.gets())
        d.start()
        wait_until(lambda: len(bot.gets()) > n, 10, "polling again")
        first = bot.gets()[n]
        check(first["offset"] == ids[2] + 1, "resumed from the stored offset: %r" % first)

        # kill -9 after getUpdates answered and before the update was stored
        rc = r.client()
        rc.execute_command("CLIENT", "PAUSE", "20000", "WRITE")
        try:
            u4 = bot.control("updates", {"updates": [msg(8001, "یک سوال دارم")]})["update_ids"][0]
            wait_until(lambda: any(u4 in g["returned"] for g in bot.gets()), 15,
                       "clubd got the update")
            d.kill()
            check(tgoff(r) == ids[2] + 1 and not audited(r, u4), "not stored before the kill")
        finally:
            rc.execute_command("CLIENT", "UNPAUSE")
        d.start()
        wait_until(lambda: tgoff(r) == u4 + 1, 15, "stored after the restart")
        check(len(audited(r, u4)) == 1, "recorded exactly once")
        texts = [e.get("text") for e in timeline(d, lead) if e["type"] == "reply"]
        check(texts.count("یک سوال دارم") == 1 and texts.count("سلام") == 1,
              "nothing lost, nothing twice: %r" % texts)
        check(bot.control("pending", {})["pending"] in ([], [u4]), "the fake was told")
        wait_until(lambda: bot.control("pending", {})["pending"] == [], 10, "confirmed")

        # a webhook set on the bot: getUpdates answers 409, logged, polling goes on
        bot.control("set_webhook", {"on": True})
        wait_until(lambda: any(g.get("answer") == 409 for g in bot.gets()), 10,
                   "polled into the conflict")
        wait_until(lambda: "409 conflict" in d.stderr(), 10, "the conflict is logged")
        bot.control("set_webhook", {"on": False})
        u5 = bot.control("updates", {"updates": [msg(8001, "دوباره")]})["update_ids"][0]
        wait_until(lambda: tgoff(r) == u5 + 1, 30, "back after the conflict")
        check(d.term() == 0, "clean stop while polling")
    finally:
        bot.close()
