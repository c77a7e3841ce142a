"""Chat through the Telegram driver of the real daemon against the fake Bot API:
Persian text arrives, 429 retry_after is honoured by the scheduler, and a user who
blocked the bot (403) ends the message failed AND withdraws the contact's chat
consent, so the next chat message is suppressed and 'preferred' falls back to SMS."""

import json
import os
import subprocess

from harness import ROOT, check, timeout, wait_until, write_config

BOTAPI = os.path.join(ROOT, "tests", "fakes", "botapi.py")


@timeout(90)
def test_telegram_consent_withdrawn_on_block(fx):
    tok = os.path.join(fx.tmp, "bot-token")
    with open(tok, "w") as f:
        f.write("123456:TEST-token_abc\n")
    rec = os.path.join(fx.tmp, "bot.jsonl")
    bp = subprocess.Popen(["/usr/bin/python3", BOTAPI, rec, "=" + tok],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        bport = int(bp.stdout.readline().strip())
        r = fx.redis()
        d = fx.clubd(r, start=False, overrides={"sched": {"retry_min": "200ms"}})
        d.config["channel.chat"] = {"driver": "telegram", "base_url": "http://127.0.0.1:%d" % bport,
                                    "token_file": tok, "timeout": "2s", "window_initial": "8",
                                    "max_inflight": "8"}
        write_config(d.conf_path, d.config)
        d.start()
        c = d.client("marketer")
        fine = c.create_contact({"name": "آرش", "addresses": {"chat": "5551234"}})
        blocked = c.create_contact({"name": "نگار", "addresses": {"chat": "403", "sms": "09121117777"},
                                    "preferences": {"channels": ["chat", "sms"]}})
        slow = c.create_contact({"name": "کاوه", "addresses": {"chat": "429"}})
        m1 = c.send({"contact_id": fine["id"], "channel": "chat", "text": "سلام آرش، خوش آمدی"})["id"]
        m2 = c.send({"contact_id": blocked["id"], "channel": "chat", "text": "سلام"})["id"]
        m3 = c.send({"contact_id": slow["id"], "channel": "chat", "text": "صبر"})["id"]
        wait_until(lambda: c.message(m1)["state"] == "sent", 20, "chat sent")
        msg1 = c.message(m1)
        check(msg1["provider_id"].startswith("5551234:"), "provider id chat:message_id: %r" % msg1)
        bodies = [json.loads(l)["body"] for l in open(rec) if l.strip()]
        check(any(b and b.get("text") == "سلام آرش، خوش آمدی" and b.get("chat_id") == 5551234
                  for b in bodies), "Persian text and numeric chat_id on the wire")
        wait_until(lambda: c.message(m2)["state"] == "failed", 20, "blocked -> failed")
        check("403" in (c.message(m2)["last_error"] or "") or
              "blocked" in (c.message(m2)["last_error"] or ""), "reason names the block")
        prefs = c.get("/v1/contacts/" + blocked["id"]).json["preferences"]
        check(prefs.get("consent", {}).get("chat") is False, "chat consent withdrawn: %r" % prefs)
        check(prefs.get("channels") == ["chat", "sms"], "other preferences kept: %r" % prefs)
        again = c.send({"contact_id": blocked["id"], "channel": "chat", "text": "دوباره"})["id"]
        wait_until(lambda: c.message(again)["state"] == "suppressed", 20, "next chat suppressed")
        check(c.message(again)["last_error"] == "opted_out:chat", "reason opted_out:chat")
        pref = c.send({"contact_id": blocked["id"], "channel": "preferred", "text": "پیامک"})["id"]
        wait_until(lambda: c.message(pref)["state"] == "sent", 20, "preferred falls back")
        check(c.message(pref)["sent_channel"] == "sms", "fell back to sms")
        # 429 with retry_after 2: retried after at least 2 s, then sent
        wait_until(lambda: c.message(m3)["state"] == "sent", 30, "429 then sent")
        h = c.message(m3)["history"]
        sends = [e for e in h if e.get("state") == "sending"]
        check(len(sends) == 2, "two attempts for the 429: %r" % h)
    finally:
        bp.terminate()
        bp.wait(5)
