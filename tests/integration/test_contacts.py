"""Case 2: contacts CRUD, phone normalisation, reverse lookup, conflicts,
PATCH merge, DELETE, cursor pagination and bulk NDJSON."""

import json
import urllib.parse

from harness import check, parallel, timeout

PHONE = "+989121234567"


def lookup(c, channel, address):
    r = c.get("/v1/contacts?channel=%s&address=%s" % (channel, urllib.parse.quote(address, safe="")))
    check(r.status == 200 and isinstance(r.json.get("items"), list),
          "lookup %s %s -> %r" % (channel, address, r))
    return [x["id"] for x in r.json["items"]]


@timeout(60)
def test_crud_normalise_lookup(fx):
    d = fx.clubd(fx.redis())
    mk, adm, view = d.client("marketer"), d.client("admin"), d.client("viewer")

    r = mk.post("/v1/contacts", {
        "name": "سارا احمدی", "first_name": "سارا", "last_name": "احمدی", "lang": "fa",
        "addresses": {"sms": "۰۹۱۲۱۲۳۴۵۶۷", "email": "Sara@Example.COM"},
        "tags": ["vip"], "attrs": {"city": "Tehran", "visits": 3},
        "preferences": {"channels": ["sms", "email"], "consent": {"email": False}}})
    check(r.status == 201, "create -> %r" % r)
    c1 = r.json
    cid = c1["id"]
    check(c1["addresses"]["sms"] == PHONE, "Persian digits not normalised: %r" % c1["addresses"])
    check(c1["addresses"]["email"] == "sara@example.com", "email: %r" % c1["addresses"])
    # tz: unset may read as the default zone or as null (follows [contacts] default_tz)
    check(c1["name"] == "سارا احمدی" and c1["tz"] in ("Asia/Tehran", None), "fields: %r" % c1)
    check(c1["tags"] == ["vip"] and c1["attrs"] == {"city": "Tehran", "visits": 3}, "tags/attrs %r" % c1)
    check(c1.get("created_at") and c1.get("updated_at"), "timestamps missing: %r" % c1)

    g = view.get("/v1/contacts/" + cid)
    check(g.status == 200 and g.json["addresses"] == c1["addresses"] and g.json["name"] == c1["name"],
          "GET -> %r" % g)
    check(view.get("/v1/contacts/01JD3Z8Q6M0000000000000000").status == 404, "unknown id not 404")

    for form in ("09121234567", "+98 912 123 4567", "00989121234567", "۰۹۱۲۱۲۳۴۵۶۷", PHONE):
        check(lookup(view, "sms", form) == [cid], "reverse lookup by %r failed" % form)
    check(lookup(view, "email", "Sara@EXAMPLE.com") == [cid], "email lookup (domain case-insensitive)")
    check(lookup(view, "sms", "09129999999") == [], "lookup of an unknown number")

    for form in ("00989121234567", "+98 912 123 4567"):
        x = mk.post("/v1/contacts", {"name": "Other", "addresses": {"sms": form}})
        check(x.status == 409 and x.err_code() == "conflict" and x.err_field() == "addresses.sms",
              "taken address %r -> %r" % (form, x))

    # PATCH: top-level fields replace, addresses/attrs merge per key, null removes
    p = mk.patch("/v1/contacts/" + cid, {"name": "Sara A.", "addresses": {"email": None,
                 "chat": "123456789"}, "attrs": {"visits": None, "tier": "gold"}, "tags": ["new"]})
    check(p.status == 200, "PATCH -> %r" % p)
    c2 = p.json
    check(c2["name"] == "Sara A." and c2["lang"] == "fa", "PATCH fields %r" % c2)
    check(c2["addresses"] == {"sms": PHONE, "chat": "123456789"}, "address merge %r" % c2["addresses"])
    check(c2["attrs"] == {"city": "Tehran", "tier": "gold"}, "attrs merge %r" % c2["attrs"])
    check(c2["tags"] == ["new"], "tags replace %r" % c2["tags"])
    check(view.get("/v1/contacts/" + cid).json == c2, "GET after PATCH differs")
    check(lookup(view, "email", "sara@example.com") == [], "removed email still indexed")
    check(lookup(view, "chat", "123456789") == [cid], "added chat id not indexed")
    x = mk.patch("/v1/contacts/" + cid, {"addresses": {"sms": "bad"}})
    check(x.status == 400 and x.err_field() == "addresses.sms", "bad PATCH -> %r" % x)
    check(view.get("/v1/contacts/" + cid).json == c2, "failed PATCH changed the contact")

    # address moves between contacts only when free
    other = mk.create_contact({"name": "Reza", "addresses": {"sms": "09350001122"}})
    x = mk.patch("/v1/contacts/" + other["id"], {"addresses": {"sms": "09121234567"}})
    check(x.status == 409 and x.err_field() == "addresses.sms", "PATCH onto taken address -> %r" % x)

    x = mk.delete("/v1/contacts/" + cid)
    check(x.status == 403, "marketer DELETE -> %r" % x)
    x = adm.delete("/v1/contacts/" + cid)
    check(x.status == 204, "DELETE -> %r" % x)
    check(view.get("/v1/contacts/" + cid).status == 404, "deleted contact still there")
    check(lookup(view, "sms", PHONE) == [] and lookup(view, "chat", "123456789") == [],
          "reverse index entries survived DELETE")
    check(adm.delete("/v1/contacts/" + cid).status == 404, "second DELETE not 404")
    again = mk.create_contact({"name": "New owner", "addresses": {"sms": "09121234567"}})
    check(lookup(view, "sms", PHONE) == [again["id"]], "freed number not reusable")


@timeout(90)
def test_pagination_120(fx):
    d = fx.clubd(fx.redis())
    clients = [d.new_client("marketer") for _ in range(4)]
    made = parallel(lambda w, i: clients[w].create_contact(
        {"name": "P %d" % i, "addresses": {"sms": "0913%07d" % i}})["id"], range(120), 4)
    for c in clients:
        c.close()
    check(len(set(made)) == 120, "duplicate ids handed out")
    view = d.client("viewer")
    seen, cursor, pages = [], None, 0
    while True:
        q = "/v1/contacts?limit=50" + ("&cursor=" + urllib.parse.quote(cursor, safe="") if cursor else "")
        r = view.get(q)
        check(r.status == 200, "%s -> %r" % (q, r))
        items = r.json["items"]
        check(len(items) <= 50, "page larger than limit: %d" % len(items))
        seen.extend(x["id"] for x in items)
        pages += 1
        cursor = r.json.get("next_cursor")
        check(pages <= 4, "more pages than needed")
        if not cursor:
            break
        check(len(items) == 50, "short page %d before the end" % len(items))
    check(pages in (3, 4), "pages %d" % pages)
    check(len(seen) == 120 and set(seen) == set(made), "listing lost or repeated contacts: %d seen" % len(seen))
    check(seen == sorted(seen), "listing not in id order")
    for bad in ("limit=0", "limit=501", "limit=x"):
        r = view.get("/v1/contacts?" + bad)
        check(r.status == 400, "?%s -> %r" % (bad, r))


@timeout(60)
def test_bulk_ndjson(fx):
    d = fx.clubd(fx.redis())
    mk, view = d.client("marketer"), d.client("viewer")
    old = mk.create_contact({"name": "Old", "addresses": {"sms": "09121110000"}})
    lines = [
        {"name": "B1", "addresses": {"sms": "09121110001"}},
        {"name": "B2", "addresses": {"email": "b2@example.com"}},
        {"name": "B3", "addresses": {"sms": "not a phone"}},
        {"name": "Old renamed", "addresses": {"sms": "+989121110000"}, "attrs": {"city": "Shiraz"}},
        "{broken json",
        {"id": old["id"], "name": "Old by id", "addresses": {"sms": "09121110000"},
         "attrs": {"city": "Shiraz"}},
    ]
    body = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines) + "\n"
    r = mk.post("/v1/contacts/bulk", raw=body.encode(), ctype="application/x-ndjson")
    check(r.status == 200, "bulk -> %r" % r)
    j = r.json
    check((j["created"], j["updated"], j["failed"]) == (2, 2, 2), "bulk counts %r" % j)
    errs = {e["line"]: e for e in j["errors"]}
    check(set(errs) == {3, 5}, "error lines %r" % j["errors"])
    check(errs[3]["field"] == "addresses.sms" and errs[3].get("reason"), "line 3 error %r" % errs[3])
    check(lookup(view, "sms", "09121110001") != [], "line 1 not created")
    check(lookup(view, "email", "b2@example.com") != [], "line 2 not created")
    check(lookup(view, "sms", "09121110000") == [old["id"]], "upsert by address made a new contact")
    o = view.get("/v1/contacts/" + old["id"]).json
    check(o["name"] == "Old by id" and o["attrs"].get("city") == "Shiraz", "updates not applied: %r" % o)
    check(len(view.list_all_contacts()) == 3, "contact count after bulk")
