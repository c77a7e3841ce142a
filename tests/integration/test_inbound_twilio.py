"""Twilio's incoming-message webhook through the real clubd: the fake Twilio
delivers a signed form (the full parameter set Twilio sends) to
POST /v1/inbound/twilio; a valid X-Twilio-Signature is recorded and answered
with empty TwiML, a bad one is 403 and records nothing, a repeated
MessageSid is recorded once and confirmed once (the confirmation goes back
out through the Twilio driver), [inbound] twilio_url names the URL Twilio
signs, and clubd_inbound_total counts stored, duplicate and rejected."""

import json
import os
import subprocess
import sys

from harness import ROOT, Client, check, timeout, wait_until, write_config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_metrics import parse  # noqa: E402

TWILIO = os.path.join(ROOT, "tests", "fakes", "twilio.py")
SID, TOKEN = "AC" + "2" * 32, "twilio-auth-token-inbound-42"
STOP_FA = "لغو عضویت شما انجام شد. برای عضویت دوباره «عضویت» را بفرستید."


def sends(log):
    if not os.path.exists(log):
        return []
    return [json.loads(ln) for ln in open(log, encoding="utf-8") if ln.strip()]


def inbound_count(d, transport, result):
    fams = parse(d.client(None).get("/metrics").text)
    for name, labels, v in fams["clubd_inbound_total"]["samples"]:
        if labels == {"transport": transport, "result": result}:
            return v
    return None


@timeout(90)
def test_twilio_inbound(fx):
    log = os.path.join(fx.tmp, "twilio.jsonl")
    tp = subprocess.Popen(["/usr/bin/python3", TWILIO, "--account", "%s:%s" % (SID, TOKEN),
                           "--log", log],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        tport = int(tp.stdout.readline().strip())
        ctl = Client(tport)
        with open(os.path.join(fx.tmp, "tw-token"), "w") as f:
            f.write(TOKEN + "\n")
        r = fx.redis()
        d = fx.clubd(r, start=False, overrides={
            "provider.tw": {"driver": "twilio", "base_url": "http://127.0.0.1:%d" % tport,
                            "account_sid": SID, "auth_token_file": os.path.join(fx.tmp, "tw-token"),
                            "from": "+15017122661", "timeout": "2s"}})
        d.config["channel.sms"] = {"provider": "tw"}
        write_config(d.conf_path, d.config)
        d.start()
        cid = d.client("marketer").create_contact(
            {"name": "Ali", "addresses": {"sms": "+989121110011"}})["id"]
        url = "http://127.0.0.1:%d/v1/inbound/twilio" % d.port

        def deliver(body, **kw):
            item = {"url": url, "from": "+989121110011", "to": "+15017122661", "body": body}
            item.update(kw)
            x = ctl.request("POST", "/_control/inbound", body=item, token=None)
            check(x.status == 200, "fake control: %r" % x)
            return x.json

        a = deliver("لغو")
        check(a["status"] == 200 and a["body"] == "<Response/>"
              and a["content_type"].startswith("text/xml"), "valid signature -> TwiML: %r" % a)
        prefs = d.client("viewer").get("/v1/contacts/" + cid).json["preferences"]
        check(prefs.get("categories", {}).get("promotional") is False, "opted out: %r" % prefs)
        rc = r.client()
        ev = rc.xrange("clubd:inbound")[-1][1]
        check(ev["provider"] == "twilio" and ev["provider_id"] == a["sid"]
              and ev["transport"] == "twilio" and ev["to"] == "+15017122661", "audit: %r" % ev)

        def confirmations():
            return [e for e in sends(log) if e.get("path", "").endswith("/Messages.json")
                    and e["params"].get("Body") == STOP_FA]
        wait_until(lambda: len(confirmations()) == 1, 15, "confirmation sent through Twilio")
        check(confirmations()[0]["params"]["To"] == "+989121110011", "to the sender")

        # Twilio retries the same MessageSid: answered, recorded and confirmed once
        b = deliver("لغو", sid=a["sid"])
        check(b["status"] == 200 and b["body"] == "<Response/>", "duplicate answered: %r" % b)
        check(rc.xlen("clubd:inbound") == 1, "duplicate not stored again")

        # a bad signature, or one over another URL: 403, nothing recorded
        c = deliver("START", bad_signature=True)
        check(c["status"] == 403 and "X-Twilio-Signature" in c["body"], "bad signature: %r" % c)
        c = deliver("START", signed_url="https://club.example.com/v1/inbound/twilio")
        check(c["status"] == 403, "signature over another URL: %r" % c)
        check(rc.xlen("clubd:inbound") == 1, "refused requests recorded nothing")
        prefs = d.client("viewer").get("/v1/contacts/" + cid).json["preferences"]
        check(prefs.get("categories", {}).get("promotional") is False, "forged START ignored")
        x = Client(d.port).request("POST", "/v1/inbound/twilio", raw=b"Body=hi", token=None,
                                   ctype="application/x-www-form-urlencoded")
        check(x.status == 403, "unsigned -> 403: %r" % x)

        # a plain reply lands on the timeline
        e = deliver("ممنون از پیگیری")
        check(e["status"] == 200, "reply: %r" % e)
        tl = d.client("viewer").get("/v1/contacts/%s/timeline" % cid).json["items"]
        check(any(t["type"] == "reply" and t["text"] == "ممنون از پیگیری" for t in tl),
              "reply on the timeline: %r" % tl[:3])
        check(len(confirmations()) == 1, "still one confirmation")

        check(inbound_count(d, "twilio", "stored") == 2, "stored counted")
        check(inbound_count(d, "twilio", "duplicate") == 1, "duplicate counted")
        check(inbound_count(d, "twilio", "rejected") == 3, "rejected counted")
        check(inbound_count(d, "kannel", "stored") == 0, "other transports listed at 0")

        # [inbound] twilio_url: the URL configured in Twilio is the one signed
        check(d.term() == 0, "clean stop")
        d.config["inbound"] = {"twilio_url": "https://club.example.com/v1/inbound/twilio"}
        write_config(d.conf_path, d.config)
        d.start()
        url = "http://127.0.0.1:%d/v1/inbound/twilio" % d.port
        f = deliver("HELP", signed_url="https://club.example.com/v1/inbound/twilio")
        check(f["status"] == 200, "signed over twilio_url: %r" % f)
        g = deliver("HELP")
        check(g["status"] == 403, "signed over the local URL: refused: %r" % g)
    finally:
        tp.terminate()
        tp.wait(5)
