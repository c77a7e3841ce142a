"""The signed unsubscribe link (List-Unsubscribe / RFC 8058 one-click): GET shows a
page and changes nothing; POST opts the contact out of the message's category (or,
for a transactional message, its channel); forged links are refused; the next
message of that category is suppressed with the reason."""

import hashlib
import hmac
import os

from harness import Client, check, timeout, wait_until

SECRET = "unsubscribe-secret-for-tests-0123456789"


def sig(mid):
    return hmac.new(SECRET.encode(), ("unsub:" + mid).encode(), hashlib.sha256).hexdigest()[:32]


@timeout(60)
def test_unsubscribe_link(fx):
    with open(os.path.join(fx.tmp, "cb"), "w") as f:
        f.write(SECRET + "\n")
    r = fx.redis()
    d = fx.clubd(r, overrides={"api": {"callback_secret_file": os.path.join(fx.tmp, "cb")}})
    c = d.client("marketer")
    promo = c.send({"to": "09121239999", "channel": "sms", "category": "promotional",
                    "text": "تخفیف ویژه"})
    wait_until(lambda: c.message(promo["id"])["state"] == "sent", 20, "promo sent")
    anon = Client(d.port)
    path = "/v1/unsubscribe?m=%s&k=%s" % (promo["id"], sig(promo["id"]))
    x = anon.request("GET", path, token=None)
    check(x.status == 200 and "Unsubscribe" in x.text, "confirmation page: %r" % x)
    contact = c.get("/v1/contacts/" + promo["contact_id"]).json
    check(contact["preferences"] == {}, "GET changed nothing: %r" % contact["preferences"])
    bad = "/v1/unsubscribe?m=%s&k=%s" % (promo["id"], "0" * 32)
    check(anon.request("POST", bad, raw=b"List-Unsubscribe=One-Click", token=None,
                       ctype="application/x-www-form-urlencoded").status == 403, "forged link 403")
    x = anon.request("POST", path, raw=b"List-Unsubscribe=One-Click", token=None,
                     ctype="application/x-www-form-urlencoded")
    check(x.status == 200, "one-click POST: %r" % x)
    prefs = c.get("/v1/contacts/" + promo["contact_id"]).json["preferences"]
    check(prefs.get("categories", {}).get("promotional") is False, "promotional off: %r" % prefs)
    nxt = c.send({"contact_id": promo["contact_id"], "channel": "sms", "category": "promotional",
                  "text": "دوباره"})
    wait_until(lambda: c.message(nxt["id"])["state"] == "suppressed", 20, "next promo suppressed")
    check(c.message(nxt["id"])["last_error"] == "category_opt_out:promotional", "reason")
    tx = c.send({"contact_id": promo["contact_id"], "channel": "sms", "text": "رسید خرید"})
    wait_until(lambda: c.message(tx["id"])["state"] == "sent", 20, "transactional still sent")
