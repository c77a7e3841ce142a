"""The hard limits of the API each get hit once, and each answer names the field;
nothing is written by a refused request."""

import json

from harness import check, timeout


@timeout(60)
def test_limits_and_hostile_input(fx):
    r = fx.redis()
    d = fx.clubd(r)
    c = d.client("marketer")
    ct = c.create_contact({"name": "x", "addresses": {"sms": "09121112222"}})

    def refused(body, field, code="invalid_field", headers=None):
        x = c.post("/v1/messages", body, headers=headers)
        check(x.status == 400 and x.err_code() == code and x.err_field() == field,
              "%s: %r" % (field, x))

    refused({"contact_id": ct["id"], "channel": "sms", "text": "x" * (16 * 1024 + 1)}, "text")
    refused({"contact_id": ct["id"], "channel": "email", "subject": "hi\r\nBcc: evil@example.com",
             "text": "x"}, "subject")
    refused({"contact_id": ct["id"], "channel": "sms", "text": "x", "send_at": "tomorrow"}, "send_at")
    refused({"contact_id": ct["id"], "channel": "sms", "text": "x", "priority": 1}, "priority")
    refused({"contact_id": ct["id"], "channel": "fax", "text": "x"}, "channel")
    refused({"contact_id": ct["id"], "channel": "sms", "text": "x"}, "Idempotency-Key",
            headers={"Idempotency-Key": "k" * 201})
    refused({"to": "0912", "channel": "sms", "text": "x"}, "to")
    refused({"to": "09121112222", "text": "x"}, "channel")

    def refused_contact(body, field):
        x = c.post("/v1/contacts", body)
        check(x.status == 400 and x.err_field() == field, "%s: %r" % (field, x))

    refused_contact({"tags": ["t%d" % i for i in range(65)]}, "tags")
    refused_contact({"attrs": {"k%d" % i: i for i in range(65)}}, "attrs")
    refused_contact({"attrs": {"bad key": 1}}, "attrs.bad key")
    refused_contact({"attrs": {"city": "x" * 1025}}, "attrs.city")
    refused_contact({"name": "x" * 201}, "name")
    x = c.post("/v1/contacts", {"name": "a\u0000b"})  # NUL never gets past the JSON parser
    check(x.status == 400 and x.err_code() == "invalid_json", "NUL: %r" % x)
    refused_contact({"tz": "Mars/Olympus"}, "tz")
    refused_contact({"addresses": {"email": "a@b.com\r\nBcc: x@y.z"}}, "addresses.email")
    refused_contact({"preferences": {"quiet_hours": {"start": "25:00", "end": "08:00"}}},
                    "preferences.quiet_hours.start")
    # huge numbers are refused where a number is expected, kept exact where free-form
    x = c.get("/v1/contacts?limit=99999999999999999999999")
    check(x.status == 400 and x.err_field() == "limit", "huge limit: %r" % x)
    big = c.create_contact({"attrs": {"n": 123456789012345678}})
    check(big["attrs"]["n"] == 123456789012345678, "64-bit attribute kept exactly")

    # a bulk line over 64 KiB is one error; the lines around it are written
    lines = [json.dumps({"addresses": {"sms": "0912333000%d" % i}}) for i in range(2)]
    huge = json.dumps({"name": "x" * 70000})
    body = (lines[0] + "\n" + huge + "\n" + lines[1] + "\n").encode()
    x = c.request("POST", "/v1/contacts/bulk", raw=body, ctype="application/x-ndjson")
    check(x.status == 200 and x.json["created"] == 2 and x.json["failed"] == 1, "bulk: %r" % x)
    check(x.json["errors"][0]["line"] == 2, "the long line is line 2: %r" % x.json["errors"])

    # nothing was written by the refused requests: only the contacts created above exist
    ids = list(c.list_all_contacts())
    check(len(ids) == 4, "contacts after refusals: %d" % len(ids))
    stats = r.client().hgetall("clubd:stats")
    check(int(stats.get("created", 0)) == 0, "no message was created: %r" % stats)


@timeout(60)
def test_header_size_limit(fx):
    """libmicrohttpd's per-connection pool (16 KiB) holds the request line and
    headers: about 12 KiB of headers are served, 20 KiB are refused by the
    library (431 or 400) without harming the daemon."""
    from harness import raw_http
    r = fx.redis()
    d = fx.clubd(r)
    tok = fx.tokens["viewer"]

    def head(pad):
        return ("GET /v1/contacts?limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Authorization: Bearer %s\r\nX-Pad: %s\r\nConnection: close\r\n\r\n"
                % (tok, "p" * pad)).encode()

    st, _ = raw_http(d.port, head(12 * 1024))
    check(st == 200, "12 KiB of headers -> %r" % st)
    st, _ = raw_http(d.port, head(20 * 1024))
    check(st in (400, 431), "20 KiB of headers -> %r" % st)
    x = d.client("viewer").get("/v1/contacts?limit=1")
    check(x.status == 200, "still serving -> %r" % x)
