"""Case 1: health, readiness, auth and input errors leave the state untouched."""

import json

from harness import check, raw_http, timeout


def contact_count(d):
    return len(d.client("viewer").list_all_contacts())


@timeout(60)
def test_health_and_ready(fx):
    r = fx.redis()
    d = fx.clubd(r)
    c = d.client(None)  # no token
    h = c.get("/healthz")
    check(h.status == 200 and h.json == {"status": "ok"}, "/healthz -> %r" % h)
    h = c.get("/readyz")
    check(h.status == 200 and h.json.get("status") == "ready" and h.json.get("redis") == "up",
          "/readyz -> %r" % h)
    m = c.get("/metrics")
    check(m.status == 200 and m.headers.get("Content-Type", "").startswith("text/plain"),
          "/metrics -> %r" % m)
    n = c.get("/v1/nope", token=fx.tokens["admin"])
    check(n.status == 404 and n.err_code() == "not_found", "unknown route -> %r" % n)
    n = c.request("PUT", "/v1/contacts", token=fx.tokens["admin"])
    check(n.status == 405 and n.err_code() == "method_not_allowed", "PUT -> %r" % n)


@timeout(60)
def test_auth_and_bad_input(fx):
    r = fx.redis()
    d = fx.clubd(r)
    adm = d.client("admin")
    adm.create_contact({"name": "Existing", "addresses": {"sms": "09120000001"}})
    before = contact_count(d)
    check(before == 1, "expected 1 contact, listing says %d" % before)
    good = {"name": "Ali", "addresses": {"sms": "09121112233"}}

    anon = d.client(None)
    x = anon.post("/v1/contacts", good)
    check(x.status == 401 and x.err_code() == "unauthorized", "no token -> %r" % x)
    x = anon.get("/v1/contacts")
    check(x.status == 401 and x.err_code() == "unauthorized", "GET without token -> %r" % x)
    x = anon.post("/v1/contacts", good, token="not-a-real-token")
    check(x.status == 401 and x.err_code() == "unauthorized", "wrong token -> %r" % x)
    x = anon.post("/v1/contacts", good, headers={"Authorization": "Basic " + fx.tokens["admin"]})
    check(x.status == 401, "non-bearer scheme -> %r" % x)
    x = d.client("viewer").post("/v1/contacts", good)
    check(x.status == 403 and x.err_code() == "forbidden", "viewer POST -> %r" % x)
    x = d.client("viewer").post("/v1/messages", {"to": "09121112233", "channel": "sms",
                                                  "text": "hi"})
    check(x.status == 403 and x.err_code() == "forbidden", "viewer send -> %r" % x)

    mk = d.client("marketer")
    for bad in (b"{", b"[1,2]", b"\"str\"", b"{\"name\": \"\xff\xfe\"}", b""):
        x = mk.post("/v1/contacts", raw=bad)
        check(x.status == 400 and x.err_code() in ("invalid_json", "missing_field"),
              "body %r -> %r" % (bad, x))
        if bad:
            check(x.err_code() == "invalid_json", "body %r -> %r" % (bad, x))

    # over [api] max_body (1 MiB in the test config): 413, body not needed
    big = b"{\"name\":\"" + b"a" * (1536 * 1024) + b"\"}"
    head = ("POST /v1/contacts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (fx.tokens["marketer"], len(big))).encode()
    st, text = raw_http(d.port, head, big)
    check(st == 413, "oversize body -> %d %s" % (st, text[:200]))
    check(json.loads(text)["error"]["code"] == "body_too_large", "oversize -> %s" % text[:200])

    x = mk.post("/v1/contacts", {"name": "Bad", "addresses": {"sms": "12"}})
    check(x.status == 400 and x.err_code() == "invalid_field" and x.err_field() == "addresses.sms",
          "bad phone -> %r" % x)
    x = mk.post("/v1/contacts", {"name": "Bad", "addresses": {"email": "not-an-email"}})
    check(x.status == 400 and x.err_field() == "addresses.email", "bad email -> %r" % x)
    x = mk.post("/v1/contacts", {"name": "Bad", "tz": "Mars/Olympus"})
    check(x.status == 400 and x.err_field() == "tz", "bad tz -> %r" % x)
    x = mk.post("/v1/messages", {"channel": "sms", "text": "no recipient"})
    check(x.status == 400 and x.err_code() in ("missing_field", "invalid_field"),
          "message without recipient -> %r" % x)

    after = contact_count(d)
    check(after == before, "contact count changed from %d to %d" % (before, after))
    # the service still works after all that
    adm.create_contact(good)
    check(contact_count(d) == before + 1, "valid create not counted")
