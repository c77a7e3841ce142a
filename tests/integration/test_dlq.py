"""Dead letters: a provider 400 ends in the dead-letter stream; an operator lists it,
sends it again once the cause is fixed (admin only) and it is delivered; dropping one
removes it; bad ids and roles get the right errors."""

from harness import check, timeout, wait_until


@timeout(60)
def test_dlq_list_retry_drop(fx):
    r = fx.redis()
    s = fx.sink()
    s.add_rule({"text": "reject"}, "400")
    d = fx.clubd(r, s)
    mk, admin, viewer = d.client("marketer"), d.client("admin"), d.client("viewer")
    a = mk.send({"to": "09121230001", "channel": "sms", "text": "reject"})["id"]
    b = mk.send({"to": "09121230002", "channel": "sms", "text": "reject"})["id"]
    wait_until(lambda: mk.message(a)["state"] == "failed" and mk.message(b)["state"] == "failed",
               20, "both rejected")
    x = viewer.get("/v1/dlq?limit=1")
    check(x.status == 200 and len(x.json["items"]) == 1 and x.json["next_cursor"], "page 1: %r" % x)
    first = x.json["items"][0]
    x2 = viewer.get("/v1/dlq?limit=1&cursor=" + x.json["next_cursor"])
    check(x2.status == 200 and len(x2.json["items"]) == 1, "page 2: %r" % x2)
    entries = {first["message_id"]: first, x2.json["items"][0]["message_id"]: x2.json["items"][0]}
    check(set(entries) == {a, b}, "both messages listed: %r" % entries)
    check("400" in entries[a]["reason"], "reason names the provider answer: %r" % entries[a])

    # roles: viewers and marketers cannot resend or drop
    check(viewer.post("/v1/dlq/%s/retry" % entries[a]["entry"]).status == 403, "viewer retry 403")
    check(mk.request("DELETE", "/v1/dlq/%s" % entries[a]["entry"]).status == 403, "marketer drop 403")
    check(admin.post("/v1/dlq/not-an-entry/retry").status == 404, "bad entry id 404")
    check(admin.post("/v1/dlq/1-1/retry").status == 404, "unknown entry 404")

    # the provider is fixed; resend a, drop b
    s.clear_rules()
    x = admin.post("/v1/dlq/%s/retry" % entries[a]["entry"])
    check(x.status == 200 and x.json == {"message_id": a, "state": "scheduled"}, "retry: %r" % x)
    wait_until(lambda: mk.message(a)["state"] == "sent", 20, "resent message delivered")
    m = mk.message(a)
    check(m["attempts"] == 1, "a fresh attempt count: %r" % m["attempts"])
    check(admin.post("/v1/dlq/%s/retry" % entries[a]["entry"]).status == 404, "entry gone after retry")
    x = admin.request("DELETE", "/v1/dlq/%s" % entries[b]["entry"])
    check(x.status == 204, "drop: %r" % x)
    check(viewer.get("/v1/dlq").json["items"] == [], "dead letters empty")
    check(mk.message(b)["state"] == "failed", "dropping keeps the message record")
