"""Delivery reports end to end: the real clubd sends through the Kannel driver
to the fake smsbox, which records the signed dlr-url; calling that URL the way
Kannel does moves the message sent -> delivered (or failed and dead-lettered).
Also Twilio's StatusCallback form post, forged and duplicate reports."""

import hashlib
import hmac
import json
import os
import subprocess
import time
import urllib.parse

from harness import (ROOT, Client, check, free_port, timeout, wait_until, write_config)

KANNEL = os.path.join(ROOT, "tests", "fakes", "kannel.py")


def start_kannel(fx):
    log = os.path.join(fx.tmp, "kannel.jsonl")
    p = subprocess.Popen(["/usr/bin/python3", KANNEL, "--user", "clubd:kannel-pass", "--log", log],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = int(p.stdout.readline().strip())
    return p, port, log


def records(log):
    try:
        with open(log) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def dlr_url_for(log, mid):
    for r in records(log):
        u = r.get("params", {}).get("dlr-url", "")
        if ("m=" + mid) in u:
            return u
    return None


@timeout(90)
def test_kannel_dlr(fx):
    kp, kport, klog = start_kannel(fx)
    try:
        with open(os.path.join(fx.tmp, "kannel-pass"), "w") as f:
            f.write("kannel-pass\n")
        with open(os.path.join(fx.tmp, "cb-secret"), "w") as f:
            f.write("callback-secret-for-tests-0123456789\n")
        api_port = free_port()
        r = fx.redis()
        d = fx.clubd(r, start=False, overrides={
            "api": {"port": str(api_port), "callback_secret_file": os.path.join(fx.tmp, "cb-secret")},
            "provider.kannel": {"driver": "kannel", "url": "http://127.0.0.1:%d/cgi-bin/sendsms" % kport,
                                "username": "clubd", "password_file": os.path.join(fx.tmp, "kannel-pass"),
                                "sender": "30001234", "timeout": "2s",
                                "dlr_url": "http://127.0.0.1:%d/v1/dlr/kannel" % api_port},
        })
        d.config["channel.sms"] = {"provider": "kannel"}
        write_config(d.conf_path, d.config)
        d.start()
        c = d.client("marketer")
        ids = [c.send({"to": "0912123456%d" % i, "channel": "sms", "text": "سلام %d" % i})["id"]
               for i in range(3)]
        wait_until(lambda: all(dlr_url_for(klog, m) for m in ids), 20, "kannel got all three")
        wait_until(lambda: all(c.message(m)["state"] == "sent" for m in ids), 20, "all sent")

        def call(url, status):
            u = url.replace("%d", str(status)).replace("%T", str(int(time.time()))).replace(
                "%p", "989121234560").replace("%F", "smsc-77")
            parts = urllib.parse.urlsplit(u)
            check(parts.hostname == "127.0.0.1", "dlr-url points at loopback clubd: %s" % u)
            return Client(parts.port).request("GET", parts.path + "?" + parts.query, token=None)

        # 8 = delivered to SMSC (progress only), then 1 = delivered to the phone
        u0 = dlr_url_for(klog, ids[0])
        check(call(u0, 8).status == 200, "progress report accepted")
        check(c.message(ids[0])["state"] == "sent", "progress report keeps 'sent'")
        check(call(u0, 1).status == 200, "delivered report accepted")
        m0 = c.message(ids[0])
        check(m0["state"] == "delivered", "state after DLR 1: %r" % m0["state"])
        check(m0.get("smsc_id") == "smsc-77", "the SMSC's id (%%F) is kept: %r" % m0)
        # a duplicate and an out-of-order failure after delivery change nothing
        check(call(u0, 1).status == 200 and call(u0, 2).status == 200, "duplicates answered 200")
        check(c.message(ids[0])["state"] == "delivered", "duplicate/late reports are harmless")

        # 16 = non-delivered to SMSC -> failed, dead-lettered with the code
        u1 = dlr_url_for(klog, ids[1])
        check(call(u1, 16).status == 200, "undelivered report accepted")
        m1 = c.message(ids[1])
        check(m1["state"] == "failed" and "undelivered" in (m1["last_error"] or ""),
              "undelivered -> failed: %r" % m1)
        dlq = r.client().xrange("clubd:dlq")
        check(any(f.get("m") == ids[1] for _, f in dlq), "undelivered message dead-lettered")

        # a forged signature, or one for another message, is refused and changes nothing
        u2 = dlr_url_for(klog, ids[2])
        forged = u2.replace("k=", "k=0")[: len(u2)]
        check(call(forged, 1).status == 403, "bad signature -> 403")
        swapped = u2.replace("m=" + ids[2], "m=" + ids[1])
        check(call(swapped, 1).status == 403, "signature of another message -> 403")
        check(c.message(ids[2])["state"] == "sent", "state untouched by forged reports")

        # Twilio-style StatusCallback (form post) on the same signing scheme
        q = urllib.parse.urlsplit(u2).query
        sig = urllib.parse.parse_qs(q)["k"][0]
        body = urllib.parse.urlencode({"MessageSid": "SM123", "MessageStatus": "delivered"}).encode()
        x = Client(api_port).request("POST", "/v1/dlr/twilio?m=%s&k=%s" % (ids[2], sig),
                                     raw=body, token=None,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        check(x.status == 200, "twilio callback -> %r" % x)
        check(c.message(ids[2])["state"] == "delivered", "twilio delivered report applied")
        x = Client(api_port).request("POST", "/v1/dlr/twilio?m=%s&k=%s" % (ids[2], sig),
                                     raw=b"MessageStatus=%zz", token=None,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        check(x.status == 400, "malformed form -> 400, got %r" % x)
    finally:
        kp.terminate()
        kp.wait(5)


KAVENEGAR = os.path.join(ROOT, "tests", "fakes", "kavenegar.py")


@timeout(90)
def test_kavenegar_status_polling(fx):
    """Kavenegar has no callbacks here: clubd polls statuslocalmessageid.json and
    records the answers (10 delivered, 11 undelivered); pending ones stay sent."""
    log = os.path.join(fx.tmp, "kavenegar.jsonl")
    kp = subprocess.Popen(["/usr/bin/python3", KAVENEGAR, "--key", "kv-test-key-123", "--line",
                           "10004346", "--log", log],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        kport = int(kp.stdout.readline().strip())
        ctl = Client(kport)

        def number(receptor, dlr):
            x = ctl.request("POST", "/_control/number", body={"receptor": receptor, "dlr": dlr},
                            token=None)
            check(x.status == 200, "fake control: %r" % x)

        number("989121110001", 10)
        number("989121110002", 11)
        number("989121110003", 4)  # handed to the operator: still pending
        with open(os.path.join(fx.tmp, "kv-key"), "w") as f:
            f.write("kv-test-key-123\n")
        r = fx.redis()
        d = fx.clubd(r, start=False, overrides={
            "dispatch": {"status_poll": "1s"},
            "provider.kv": {"driver": "kavenegar", "base_url": "http://127.0.0.1:%d" % kport,
                            "api_key_file": os.path.join(fx.tmp, "kv-key"), "sender": "10004346",
                            "timeout": "2s"},
        })
        d.config["channel.sms"] = {"provider": "kv"}
        write_config(d.conf_path, d.config)
        d.start()
        c = d.client("marketer")
        ids = [c.send({"to": "0912111000%d" % i, "channel": "sms", "text": "سلام"})["id"]
               for i in (1, 2, 3)]
        wait_until(lambda: c.message(ids[0])["state"] == "delivered", 20, "polled: delivered")
        wait_until(lambda: c.message(ids[1])["state"] == "failed", 20, "polled: undelivered")
        m1 = c.message(ids[1])
        check("undelivered" in (m1["last_error"] or ""), "undelivered reason: %r" % m1)
        time.sleep(1.5)  # at least one more poll
        check(c.message(ids[2])["state"] == "sent", "a pending status keeps 'sent'")
        rc = r.client()
        await_ids = set(rc.zrange("clubd:await:sms", 0, -1))
        check(await_ids == {ids[2]}, "only the pending message is still awaited: %r" % await_ids)
        polls = [json.loads(l) for l in open(log) if '"sms/statuslocalmessageid"' in l]
        check(polls, "clubd polled statuslocalmessageid.json")
    finally:
        kp.terminate()
        kp.wait(5)


TWILIO = os.path.join(ROOT, "tests", "fakes", "twilio.py")


@timeout(90)
def test_twilio_status_callbacks(fx):
    """The Twilio fake posts signed StatusCallbacks (X-Twilio-Signature) back to
    clubd: delivered and undelivered land on the messages; a callback whose
    Twilio signature is wrong is refused even with our own valid k."""
    sid, token = "AC" + "1" * 32, "twilio-auth-token-123456"
    kp = subprocess.Popen(["/usr/bin/python3", TWILIO, "--account", "%s:%s" % (sid, token),
                           "--callbacks"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        tport = int(kp.stdout.readline().strip())
        ctl = Client(tport)
        x = ctl.request("POST", "/_control/number", token=None,
                        body={"to": "+989121110022", "dlr": "undelivered", "error_code": "30003"})
        check(x.status == 200, "fake control: %r" % x)
        for name, text in (("tw-token", token), ("cb-secret", "callback-secret-for-tests-0123456789")):
            with open(os.path.join(fx.tmp, name), "w") as f:
                f.write(text + "\n")
        api_port = free_port()
        r = fx.redis()
        d = fx.clubd(r, start=False, overrides={
            "api": {"port": str(api_port), "callback_secret_file": os.path.join(fx.tmp, "cb-secret")},
            "provider.tw": {"driver": "twilio", "base_url": "http://127.0.0.1:%d" % tport,
                            "account_sid": sid, "auth_token_file": os.path.join(fx.tmp, "tw-token"),
                            "from": "+15017122661", "timeout": "2s",
                            "status_callback": "http://127.0.0.1:%d/v1/dlr/twilio" % api_port},
        })
        d.config["channel.sms"] = {"provider": "tw"}
        write_config(d.conf_path, d.config)
        d.start()
        c = d.client("marketer")
        ok = c.send({"to": "09121110011", "channel": "sms", "text": "سلام"})["id"]
        bad = c.send({"to": "09121110022", "channel": "sms", "text": "سلام"})["id"]
        wait_until(lambda: c.message(ok)["state"] == "delivered", 20, "twilio: delivered")
        wait_until(lambda: c.message(bad)["state"] == "failed", 20, "twilio: undelivered")
        check("30003" in (c.message(bad)["last_error"] or ""), "error code kept: %r" % c.message(bad))
        # our k is valid, but the Twilio signature is not: refused
        third = c.send({"to": "09121110033", "channel": "sms", "text": "x"})["id"]
        sig = hmac.new(b"callback-secret-for-tests-0123456789", ("dlr:" + third).encode(),
                       hashlib.sha256).hexdigest()[:32]
        x = Client(api_port).request("POST", "/v1/dlr/twilio?m=%s&k=%s" % (third, sig),
                                     raw=b"MessageStatus=delivered&MessageSid=SMx", token=None,
                                     ctype="application/x-www-form-urlencoded",
                                     headers={"X-Twilio-Signature": "AAAA"})
        check(x.status == 403, "forged Twilio signature -> 403, got %r" % x)
    finally:
        kp.terminate()
        kp.wait(5)
