"""Kavenegar receive polling through the real clubd: incoming SMS put in the
fake Kavenegar's inbox are fetched with sms/receive.json (linenumber,
isread=0) on [inbound] kavenegar_poll, stored once each (a messageid that
comes back is a duplicate), routed (a Persian STOP from a number written in
Persian digits is confirmed through Kavenegar's send), and an unreadable
entry is skipped without blocking the rest."""

import json
import os
import subprocess

from harness import ROOT, Client, check, timeout, wait_until, write_config

KAVENEGAR = os.path.join(ROOT, "tests", "fakes", "kavenegar.py")
KEY, LINE = "kv-inbound-key-77", "10004346"
STOP_FA = "لغو عضویت شما انجام شد. برای عضویت دوباره «عضویت» را بفرستید."


def calls(log, endpoint):
    if not os.path.exists(log):
        return []
    out = [json.loads(ln) for ln in open(log, encoding="utf-8") if ln.strip()]
    return [e for e in out if e.get("endpoint") == endpoint]


@timeout(90)
def test_kavenegar_receive_polling(fx):
    log = os.path.join(fx.tmp, "kavenegar.jsonl")
    kp = subprocess.Popen(["/usr/bin/python3", KAVENEGAR, "--key", KEY, "--line", LINE,
                           "--log", log],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        kport = int(kp.stdout.readline().strip())
        ctl = Client(kport)
        with open(os.path.join(fx.tmp, "kv-key"), "w") as f:
            f.write(KEY + "\n")
        r = fx.redis()
        d = fx.clubd(r, start=False, overrides={
            "provider.kv": {"driver": "kavenegar", "base_url": "http://127.0.0.1:%d" % kport,
                            "api_key_file": os.path.join(fx.tmp, "kv-key"), "sender": LINE,
                            "timeout": "2s"},
            "inbound": {"kavenegar_poll": "200ms"}})
        d.config["channel.sms"] = {"provider": "kv"}
        write_config(d.conf_path, d.config)
        d.start()
        cid = d.client("marketer").create_contact(
            {"name": "Kaveh", "addresses": {"sms": "+989121239999"}})["id"]

        def inbox(messages):
            x = ctl.request("POST", "/_control/inbox", body={"messages": messages}, token=None)
            check(x.status == 200, "fake inbox: %r" % x)
            return x.json["messageids"]

        ids = inbox([{"message": " لغو ", "sender": "۰۹۱۲۱۲۳۹۹۹۹", "receptor": LINE},
                     {"message": "x", "sender": "not-a-number", "receptor": LINE},
                     {"message": "سلام، کی باز هستید؟", "sender": "09120001111",
                      "receptor": LINE}])
        rc = r.client()
        wait_until(lambda: rc.xlen("clubd:inbound") == 2, 15, "two stored, the bad one skipped")
        got = calls(log, "sms/receive")
        check(got and got[0]["params"].get("linenumber") == LINE
              and got[0]["params"].get("isread") == "0", "receive.json asked right: %r" % got[:1])
        check(all(c["key_ok"] for c in got), "with the API key")
        ev = [e for _, e in rc.xrange("clubd:inbound")]
        check(ev[0]["provider"] == "kavenegar" and ev[0]["provider_id"] == str(ids[0])
              and ev[0]["from"] == "+989121239999" and ev[0]["transport"] == "kavenegar_poll",
              "audit: %r" % ev[0])
        prefs = d.client("viewer").get("/v1/contacts/" + cid).json["preferences"]
        check(prefs.get("categories", {}).get("promotional") is False,
              "Persian STOP understood: %r" % prefs)
        lead = rc.get("clubd:ix:sms:+989120001111")
        check(lead and any(e["type"] == "reply" and e["text"] == "سلام، کی باز هستید؟" for e in
                           d.client("viewer").get("/v1/contacts/%s/timeline" % lead).json["items"]),
              "the unknown sender's question is a lead's reply")

        # the confirmation goes out through Kavenegar's send
        wait_until(lambda: any(c["params"].get("message") == STOP_FA
                               and c["params"].get("receptor") in ("09121239999", "989121239999",
                                                                   "+989121239999")
                               for c in calls(log, "sms/send")), 15, "confirmation sent")

        # Kavenegar hands the first message out again: recorded once
        inbox([{"messageid": ids[0], "message": " لغو ", "sender": "09121239999",
                "receptor": LINE}])
        wait_until(lambda: any(ids[0] in c.get("returned", []) for c in calls(log, "sms/receive")[1:]),
                   15, "redelivered")
        n = len(calls(log, "sms/receive"))
        wait_until(lambda: len(calls(log, "sms/receive")) > n + 1, 10, "polling goes on")
        check(rc.xlen("clubd:inbound") == 2, "the duplicate was not stored again")
        check(rc.hget("clubd:stats", "inbound_duplicate") == "1", "counted as a duplicate")
        sends = [c for c in calls(log, "sms/send") if c["params"].get("message") == STOP_FA]
        check(len(sends) == 1, "one confirmation: %r" % sends)
    finally:
        kp.terminate()
        kp.wait(5)
