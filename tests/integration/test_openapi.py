"""docs/openapi.yaml against the code.

- the route tables of daemon/api_*.c (method, path, role, body kind) and the
  spec's paths match both ways, with x-required-role, security, request
  bodies and the status codes api.c adds to every route of a kind;
- the length limits in the spec are the #defines of the handlers;
- every error code the C code can send is in the Error schema's enum, and
  nothing else is;
- every example in the spec validates against its own schema, and the spec
  uses no JSON Schema keyword the small validator below does not implement;
- against a running clubd, real answers (contacts, messages, bulk, errors,
  503 with Redis down) have a status the operation lists and a body that
  validates against the schema given for it.

Needs python3-yaml (import yaml); everything else is the harness.
"""

import glob
import json
import os
import re
import time
import urllib.parse

from harness import ROOT, check, fail, timeout, wait_state, wait_until

SPEC_PATH = os.path.join(ROOT, "docs", "openapi.yaml")
HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
ROUTE_RE = re.compile(r'\{\s*"([A-Z]+)"\s*,\s*"(/[^"]*)"\s*,\s*(ROLE_[A-Z]+)\s*,\s*(API_BODY_[A-Z]+)\s*,')
ROLE_NAMES = {"ROLE_NONE": "none", "ROLE_VIEWER": "viewer", "ROLE_MARKETER": "marketer",
              "ROLE_ADMIN": "admin"}
BODY_TYPES = {"API_BODY_NONE": None, "API_BODY_JSON": "application/json",
              "API_BODY_STREAM": "application/x-ndjson"}


def load_spec():
    try:
        import yaml
    except ImportError:
        fail("python3-yaml is not installed (Debian package python3-yaml): tools/deps must list it")
    with open(SPEC_PATH, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    check(isinstance(spec, dict) and spec.get("openapi") == "3.0.3",
          "%s: not an OpenAPI 3.0.3 document" % SPEC_PATH)
    return spec


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def strip_c_comments(text):
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def c_routes():
    """{(METHOD, path): (role, body, file)} from every daemon/api_*.c."""
    routes = {}
    tables = []
    for fn in sorted(glob.glob(os.path.join(ROOT, "daemon", "api_*.c"))):
        text = strip_c_comments(read(os.path.relpath(fn, ROOT)))
        tables += re.findall(r"const\s+struct\s+api_route\s+(\w+)\s*\[\s*\]", text)
        for m in ROUTE_RE.finditer(text):
            key = (m.group(1), m.group(2))
            check(key not in routes, "route %s %s defined twice" % key)
            check(m.group(3) in ROLE_NAMES, "%s: unknown role %s" % (fn, m.group(3)))
            check(m.group(4) in BODY_TYPES, "%s: unknown body kind %s" % (fn, m.group(4)))
            routes[key] = (ROLE_NAMES[m.group(3)], m.group(4), os.path.basename(fn))
    check(routes, "no route rows found in daemon/api_*.c (did the table format change?)")
    main = strip_c_comments(read("daemon/main.c"))
    for t in tables:
        check(t in main, "route table %s is not registered in daemon/main.c" % t)
    return routes


def operations(spec):
    """[(METHOD, path, operation, path item)]"""
    out = []
    for path, item in spec["paths"].items():
        for m in HTTP_METHODS:
            if m in item:
                out.append((m.upper(), path, item[m], item))
    return out


def c_define(text, name):
    m = re.search(r"^\s*#\s*define\s+%s\s+(.+?)\s*(?:/\*.*)?$" % re.escape(name), text, re.M)
    check(m, "#define %s not found" % name)
    expr = m.group(1)
    check(re.fullmatch(r"[\d\s()*+]+", expr), "#define %s is not a plain number: %r" % (name, expr))
    return eval(expr, {"__builtins__": {}})  # digits, + * and parentheses only


# ---------------------------------------------------------------- validator

ANNOTATIONS = {"description", "example", "default", "format", "title", "deprecated", "readOnly",
               "writeOnly", "externalDocs", "xml", "discriminator"}
KEYWORDS = {"$ref", "type", "nullable", "enum", "required", "properties", "additionalProperties",
            "items", "minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "pattern",
            "minimum", "maximum", "minProperties", "maxProperties", "allOf", "oneOf", "anyOf"}
DATE_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class Validator:
    """The subset of OpenAPI 3.0 Schema this spec uses: $ref (JSON pointers
    into the spec), type, nullable, enum, required, properties,
    additionalProperties (false or a schema), items, min/maxItems,
    uniqueItems, min/maxLength (characters), pattern, minimum, maximum,
    min/maxProperties, allOf, oneOf, anyOf, and format date-time."""

    def __init__(self, spec):
        self.spec = spec

    def resolve(self, ref):
        check(isinstance(ref, str) and ref.startswith("#/"), "unsupported $ref %r" % (ref,))
        node = self.spec
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            check(isinstance(node, dict) and part in node, "unresolvable $ref %s" % ref)
            node = node[part]
        return node

    def deref(self, node):
        for _ in range(32):
            if not (isinstance(node, dict) and "$ref" in node):
                return node
            node = self.resolve(node["$ref"])
        fail("$ref loop")

    @staticmethod
    def type_ok(t, x):
        if t == "string":
            return isinstance(x, str)
        if t == "integer":
            return isinstance(x, int) and not isinstance(x, bool)
        if t == "number":
            return isinstance(x, (int, float)) and not isinstance(x, bool)
        if t == "boolean":
            return isinstance(x, bool)
        if t == "object":
            return isinstance(x, dict)
        if t == "array":
            return isinstance(x, list)
        fail("unknown schema type %r" % t)

    def errors(self, x, schema, at="$"):
        s = self.deref(schema)
        check(isinstance(s, dict), "schema at %s is not an object: %r" % (at, s))
        if x is None and s.get("nullable"):
            return []
        errs = []
        t = s.get("type")
        if t is not None and not self.type_ok(t, x):
            return ["%s: %s is not of type %s" % (at, json.dumps(x, ensure_ascii=False)[:80], t)]
        if "enum" in s and not any(type(x) is type(e) and x == e for e in s["enum"]):
            errs.append("%s: %r is not one of %r" % (at, x, s["enum"]))
        if isinstance(x, str):
            if "minLength" in s and len(x) < s["minLength"]:
                errs.append("%s: shorter than %d" % (at, s["minLength"]))
            if "maxLength" in s and len(x) > s["maxLength"]:
                errs.append("%s: longer than %d" % (at, s["maxLength"]))
            if "pattern" in s and not re.search(s["pattern"], x):
                errs.append("%s: %r does not match %s" % (at, x, s["pattern"]))
            if s.get("format") == "date-time" and not DATE_TIME_RE.match(x):
                errs.append("%s: %r is not an RFC 3339 date-time" % (at, x))
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            if "minimum" in s and x < s["minimum"]:
                errs.append("%s: %r < minimum %r" % (at, x, s["minimum"]))
            if "maximum" in s and x > s["maximum"]:
                errs.append("%s: %r > maximum %r" % (at, x, s["maximum"]))
        if isinstance(x, list):
            if "minItems" in s and len(x) < s["minItems"]:
                errs.append("%s: fewer than %d items" % (at, s["minItems"]))
            if "maxItems" in s and len(x) > s["maxItems"]:
                errs.append("%s: more than %d items" % (at, s["maxItems"]))
            if s.get("uniqueItems"):
                seen = [json.dumps(i, sort_keys=True) for i in x]
                if len(set(seen)) != len(seen):
                    errs.append("%s: items are not unique" % at)
            if "items" in s:
                for i, item in enumerate(x):
                    errs += self.errors(item, s["items"], "%s[%d]" % (at, i))
        if isinstance(x, dict):
            props = s.get("properties", {})
            for k in s.get("required", []):
                if k not in x:
                    errs.append("%s: required property %r missing" % (at, k))
            if "minProperties" in s and len(x) < s["minProperties"]:
                errs.append("%s: fewer than %d properties" % (at, s["minProperties"]))
            if "maxProperties" in s and len(x) > s["maxProperties"]:
                errs.append("%s: more than %d properties" % (at, s["maxProperties"]))
            extra = s.get("additionalProperties", True)
            for k, v in x.items():
                if k in props:
                    errs += self.errors(v, props[k], "%s.%s" % (at, k))
                elif extra is False:
                    errs.append("%s: unexpected property %r" % (at, k))
                elif isinstance(extra, dict):
                    errs += self.errors(v, extra, "%s.%s" % (at, k))
        for sub in s.get("allOf", []):
            errs += self.errors(x, sub, at)
        if "oneOf" in s:
            n = sum(1 for sub in s["oneOf"] if not self.errors(x, sub, at))
            if n != 1:
                errs.append("%s: matches %d of the oneOf schemas, not exactly 1" % (at, n))
        if "anyOf" in s and not any(not self.errors(x, sub, at) for sub in s["anyOf"]):
            errs.append("%s: matches none of the anyOf schemas" % at)
        if x is None and t is None and not s.get("nullable") and not errs and \
                not any(k in s for k in ("allOf", "oneOf", "anyOf")):
            errs.append("%s: null is not allowed" % at)
        return errs

    def validate(self, x, schema, what):
        errs = self.errors(x, schema)
        check(not errs, "%s does not match its schema:\n  %s\nvalue: %s" % (
            what, "\n  ".join(errs[:10]), json.dumps(x, ensure_ascii=False)[:1500]))


def media_base(ctype):
    return ctype.split(";")[0].strip().lower()


# ---------------------------------------------------------------- walking the spec

def each_media(v, op):
    """(where, media type, media object) for the request body and every response."""
    if "requestBody" in op:
        rb = v.deref(op["requestBody"])
        for mt, mo in rb.get("content", {}).items():
            yield "requestBody", mt, mo
    for status, resp in op.get("responses", {}).items():
        resp = v.deref(resp)
        for mt, mo in resp.get("content", {}).items():
            yield "response %s" % status, mt, mo


def example_values(v, mo):
    if "example" in mo:
        yield "example", mo["example"]
    for name, ex in mo.get("examples", {}).items():
        ex = v.deref(ex)
        check("value" in ex, "example %s has no value" % name)
        yield "examples.%s" % name, ex["value"]


def walk_schema(v, s, where, seen):
    """Check keywords and validate schema-level examples, recursively."""
    if isinstance(s, dict) and "$ref" in s:
        check(set(s) == {"$ref"}, "%s: $ref with siblings %r" % (where, sorted(s)))
        ref = s["$ref"]
        if ref not in seen:
            seen.add(ref)
            walk_schema(v, v.resolve(ref), ref, seen)
        return
    check(isinstance(s, dict), "%s: schema is not an object" % where)
    for k in s:
        check(k in KEYWORDS or k in ANNOTATIONS or k.startswith("x-"),
              "%s: schema keyword %r is not implemented by the test's validator" % (where, k))
    check(s.get("additionalProperties", True) is not True or "additionalProperties" not in s,
          "%s: write additionalProperties as false or a schema" % where)
    if "example" in s:
        v.validate(s["example"], s, "%s example" % where)
    for k, sub in s.get("properties", {}).items():
        walk_schema(v, sub, "%s.properties.%s" % (where, k), seen)
    for k in ("items", "additionalProperties", "x-ndjson-line"):
        if isinstance(s.get(k), dict):
            walk_schema(v, s[k], "%s.%s" % (where, k), seen)
    for k in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(s.get(k, [])):
            walk_schema(v, sub, "%s.%s[%d]" % (where, k, i), seen)


# ---------------------------------------------------------------- tests

@timeout(30)
def test_openapi_routes_match_code(fx):
    spec = load_spec()
    v = Validator(spec)
    routes = c_routes()
    ops = operations(spec)
    spec_keys = {(m, p) for m, p, _, _ in ops}
    check(not (set(routes) - spec_keys), "routes in the code but not in docs/openapi.yaml: %s"
          % sorted(set(routes) - spec_keys))
    check(not (spec_keys - set(routes)), "operations in docs/openapi.yaml but not in the code: %s"
          % sorted(spec_keys - set(routes)))
    op_ids = [op.get("operationId") for _, _, op, _ in ops]
    check(all(op_ids) and len(set(op_ids)) == len(op_ids), "operationIds missing or repeated")
    global_sec = spec.get("security", [])
    schemes = spec["components"]["securitySchemes"]
    check(schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer",
          "bearerAuth must be an http bearer scheme")

    for method, path, op, item in ops:
        role, body, fn = routes[(method, path)]
        name = "%s %s (%s)" % (method, path, fn)
        check(op.get("x-required-role") == role,
              "%s: x-required-role %r, the code says %r" % (name, op.get("x-required-role"), role))
        sec = op.get("security", global_sec)
        if role == "none":
            check(sec == [], "%s needs no token: security must be []" % name)
        else:
            check(any("bearerAuth" in req for req in sec), "%s: bearerAuth not required" % name)
        # path parameters
        params = [v.deref(p) for p in item.get("parameters", []) + op.get("parameters", [])]
        want = set(re.findall(r"\{(\w+)\}", path))
        have = {p["name"] for p in params if p.get("in") == "path"}
        check(want == have, "%s: path parameters %s declared as %s" % (name, sorted(want), sorted(have)))
        for p in params:
            if p.get("in") == "path":
                check(p.get("required") is True, "%s: path parameter %s not required" % (name, p["name"]))
        # request body
        rb = v.deref(op["requestBody"]) if "requestBody" in op else None
        if BODY_TYPES[body] is None:
            check(rb is None, "%s takes no body but the spec gives one" % name)
        else:
            check(rb is not None and rb.get("required") is True, "%s: required requestBody missing" % name)
            want = [BODY_TYPES[body]]
            if body == "API_BODY_STREAM" and op.get("x-signed-callback"):
                # provider callbacks post forms; signed JSON webhooks (the
                # signature covers the raw body) post JSON
                want = ["application/x-www-form-urlencoded"]
                if list(rb.get("content", {})) == ["application/json"]:
                    want = ["application/json"]
                elif list(rb.get("content", {})) == ["text/plain"]:
                    want = ["text/plain"]  # Kannel post-url MO: the raw text
            check(list(rb.get("content", {})) == want,
                  "%s: request media types %s, the code takes %s"
                  % (name, list(rb["content"]), want))
        # status codes api.c gives every route of a kind
        st = set(op["responses"])
        check(any(s[0] in "23" for s in st), "%s: no 2xx or 3xx answer" % name)
        check("503" in st, "%s: 503 (unavailable, shutting down) missing" % name)
        if role == "none":
            check("401" not in st, "%s needs no token: no 401" % name)
            # provider callbacks carry a signature instead: a bad one is 403
            check(("403" in st) == bool(op.get("x-signed-callback")),
                  "%s: 403 only for signed callbacks" % name)
        else:
            check("401" in st, "%s: 401 missing" % name)
            # every valid token is at least viewer: only higher roles can get 403
            check(("403" in st) == (role != "viewer"),
                  "%s: 403 %s for role %s" % (name, "listed" if "403" in st else "missing", role))
        if body == "API_BODY_JSON":
            check({"400", "413", "415"} <= st, "%s: JSON body routes answer 400, 413, 415" % name)
        elif body == "API_BODY_STREAM":
            check({"400", "413"} <= st and "415" not in st,
                  "%s: stream routes answer 400 and 413 and never check the Content-Type" % name)
        else:
            check("400" in st and not ({"413", "415"} & st),
                  "%s: body-less routes answer 400 body_not_allowed, never 413/415" % name)
        for s_, resp in op["responses"].items():
            check(re.fullmatch(r"[1-5]\d\d", s_), "%s: response key %r" % (name, s_))
            check("description" in v.deref(resp), "%s: response %s has no description" % (name, s_))


@timeout(30)
def test_openapi_error_codes_and_limits(fx):
    spec = load_spec()
    v = Validator(spec)
    # every error code the C code sends, and only those, in the enum
    codes = set()
    for fn in sorted(glob.glob(os.path.join(ROOT, "daemon", "api*.c"))):
        text = strip_c_comments(read(os.path.relpath(fn, ROOT)))
        codes |= set(re.findall(r'api_reply_error\(\s*[\w>.-]+\s*,\s*\d+\s*,\s*"(\w+)"', text))
        codes |= set(re.findall(r'verr_set\(\s*\w+\s*,\s*"(\w+)"', text))
        codes |= set(re.findall(r'\\"code\\":\\"(\w+)\\"', text))
    check("unavailable" in codes and "invalid_field" in codes, "error code scan found %r" % codes)
    err = spec["components"]["schemas"]["Error"]["properties"]["error"]
    enum = set(err["properties"]["code"]["enum"])
    check(codes == enum, "Error.code enum differs from the code: missing %s, never sent %s"
          % (sorted(codes - enum), sorted(enum - codes)))

    sch = spec["components"]["schemas"]
    msgs, cons = read("daemon/api_messages.c"), read("daemon/api_contacts.c")
    addr_max = c_define(read("daemon/addr.h"), "ADDR_MAX")
    ci = sch["ContactInput"]["properties"]
    pairs = [
        ("MessageCreate.text.maxLength", sch["MessageCreate"]["properties"]["text"]["maxLength"],
         c_define(msgs, "TEXT_MAX")),
        ("MessageCreate.html.maxLength", sch["MessageCreate"]["properties"]["html"]["maxLength"],
         c_define(msgs, "HTML_MAX")),
        ("MessageCreate.subject.maxLength", sch["MessageCreate"]["properties"]["subject"]["maxLength"],
         c_define(msgs, "SUBJECT_MAX")),
        ("MessageCreate.to.maxLength", sch["MessageCreate"]["properties"]["to"]["maxLength"], addr_max),
        ("Idempotency-Key maxLength",
         spec["components"]["parameters"]["IdempotencyKey"]["schema"]["maxLength"],
         c_define(msgs, "IDEM_MAX")),
        ("ContactInput.tags.maxItems", ci["tags"]["maxItems"], c_define(cons, "TAGS_MAX")),
        ("ContactInput.tags.items.maxLength", ci["tags"]["items"]["maxLength"],
         c_define(cons, "TAG_MAX_BYTES")),
        ("ContactInput.attrs.maxProperties", ci["attrs"]["maxProperties"], c_define(cons, "ATTRS_MAX")),
        ("AttrValue string maxLength", sch["AttrValue"]["oneOf"][0]["maxLength"],
         c_define(cons, "ATTR_VALUE_MAX")),
        ("BulkResult.errors.maxItems", sch["BulkResult"]["properties"]["errors"]["maxItems"],
         c_define(cons, "BULK_ERRORS_MAX")),
    ]
    for f in ("name", "first_name", "last_name"):
        pairs.append(("ContactInput.%s.maxLength" % f, ci[f]["maxLength"], c_define(cons, "NAME_MAX_BYTES")))
    for k in ("sms", "email", "chat"):
        pairs.append(("ContactInput.addresses.%s.maxLength" % k,
                      ci["addresses"]["properties"][k]["maxLength"], addr_max))
    # GET /v1/contacts limit: "int64_t limit = 50" and parse_i64(l, 1, 500, ...)
    m = re.search(r"int64_t\s+limit\s*=\s*(\d+)\s*;", cons)
    n = re.search(r"parse_i64\(\s*l\s*,\s*(\d+)\s*,\s*(\d+)\s*,", cons)
    check(m and n, "list limit parsing not found in daemon/api_contacts.c")
    lim = [v.deref(p) for p in spec["paths"]["/v1/contacts"]["get"]["parameters"]
           if v.deref(p)["name"] == "limit"][0]["schema"]
    pairs += [("limit default", lim["default"], int(m.group(1))),
              ("limit minimum", lim["minimum"], int(n.group(1))),
              ("limit maximum", lim["maximum"], int(n.group(2))),
              ("ContactList.items.maxItems", sch["ContactList"]["properties"]["items"]["maxItems"],
               int(n.group(2)))]
    t = re.search(r"LTRIM',\s*P\s*\.\.\s*'mh:'\s*\.\.\s*id,\s*-(\d+)", read("daemon/lua/msg_settle.lua"))
    check(t, "history trim not found in daemon/lua/msg_settle.lua")
    hist = sch["Message"]["properties"]["history"]["description"]
    check("last %s entries" % t.group(1) in hist,
          "Message.history description does not say the last %s entries are kept" % t.group(1))
    bad = ["%s: spec %r, code %r" % p for p in pairs if p[1] != p[2]]
    check(not bad, "limits in docs/openapi.yaml differ from the code:\n  " + "\n  ".join(bad))


@timeout(30)
def test_openapi_examples_valid(fx):
    spec = load_spec()
    v = Validator(spec)
    seen = set()
    for name, s in spec["components"]["schemas"].items():
        walk_schema(v, s, "#/components/schemas/" + name, seen)
    for name, p in spec["components"].get("parameters", {}).items():
        walk_schema(v, p["schema"], "parameter " + name, seen)
        if "example" in p:
            v.validate(p["example"], p["schema"], "parameter %s example" % name)
    count = 0
    for method, path, op, item in operations(spec):
        name = "%s %s" % (method, path)
        for p in [v.deref(p) for p in item.get("parameters", []) + op.get("parameters", [])]:
            walk_schema(v, p["schema"], "%s parameter %s" % (name, p["name"]), seen)
            if "example" in p:
                v.validate(p["example"], p["schema"], "%s parameter %s example" % (name, p["name"]))
        for status, resp in op["responses"].items():
            for h, ho in v.deref(resp).get("headers", {}).items():
                walk_schema(v, ho["schema"], "%s %s header %s" % (name, status, h), seen)
        for where, mt, mo in each_media(v, op):
            what = "%s %s %s" % (name, where, mt)
            check("schema" in mo, "%s: no schema" % what)
            walk_schema(v, mo["schema"], what, seen)
            for ex_name, value in example_values(v, mo):
                count += 1
                base = media_base(mt)
                if base == "application/json":
                    v.validate(value, mo["schema"], "%s %s" % (what, ex_name))
                elif base == "application/x-ndjson":
                    line_schema = v.deref(mo["schema"]).get("x-ndjson-line")
                    check(line_schema and isinstance(value, str),
                          "%s: NDJSON example needs x-ndjson-line" % what)
                    for i, ln in enumerate(value.splitlines(), 1):
                        if ln.strip():
                            v.validate(json.loads(ln), line_schema, "%s %s line %d" % (what, ex_name, i))
                else:
                    check(isinstance(value, str), "%s: a text example must be a string" % what)
    check(count >= 20, "only %d examples checked" % count)
    # the validator itself must be able to fail
    c = {"$ref": "#/components/schemas/Contact"}
    good = v.deref(spec["components"]["examples"]["ContactSara"])["value"]
    check(not v.errors(good, c), "ContactSara example invalid")
    for broken in (dict(good, extra=1), {k: x for k, x in good.items() if k != "tags"},
                   dict(good, tags="vip"), dict(good, lead=False), dict(good, name=5),
                   dict(good, created_at="yesterday"), dict(good, preferences={"channels": ["fax"]})):
        check(v.errors(broken, c), "validator accepted a broken contact: %r" % broken)


@timeout(90)
def test_openapi_live_responses(fx):
    spec = load_spec()
    v = Validator(spec)
    redis = fx.redis()
    d = fx.clubd(redis)
    mk, view, adm, anon = d.client("marketer"), d.client("viewer"), d.client("admin"), d.client(None)
    checked = []

    def header(r, name):
        for k, x in r.headers.items():
            if k.lower() == name.lower():
                return x
        return None

    def conform(method, template, r, want=None):
        """r must have a status the operation lists and a body its schema accepts."""
        call = "%s %s -> %d" % (method, template, r.status)
        if want is not None:
            check(r.status == want, "%s, expected %d: %r" % (call, want, r))
        op = spec["paths"][template][method.lower()]
        resp = op["responses"].get(str(r.status))
        check(resp is not None, "%s: status not listed in docs/openapi.yaml (%s): %r"
              % (call, sorted(op["responses"]), r))
        content = v.deref(resp).get("content")
        checked.append(call)
        if not content:
            check(r.text == "", "%s: the spec gives no body, got %r" % (call, r.text[:200]))
            return None
        ctype = header(r, "Content-Type") or ""
        mts = [mt for mt in content if media_base(mt) == media_base(ctype)]
        check(mts, "%s: Content-Type %r, the spec lists %s" % (call, ctype, list(content)))
        if media_base(ctype) != "application/json":
            return r.text
        check(r.json is not None, "%s: body is not JSON: %r" % (call, r.text[:200]))
        v.validate(r.json, content[mts[0]]["schema"], call)
        return r.json

    def error(r, status, code):
        """A generic error (404 unknown path, 405) against the Error schema."""
        check(r.status == status and r.err_code() == code, "expected %d %s: %r" % (status, code, r))
        v.validate(r.json, {"$ref": "#/components/schemas/Error"}, "%d %s" % (status, code))

    def ex(template, method, name):
        rb = v.deref(spec["paths"][template][method]["requestBody"])["content"]
        mo = list(rb.values())[0]
        value = mo["example"] if name is None else v.deref(mo["examples"][name])["value"]
        return json.loads(json.dumps(value))  # a deep copy

    # health
    conform("GET", "/healthz", anon.get("/healthz"), 200)
    conform("GET", "/readyz", anon.get("/readyz"), 200)
    m = conform("GET", "/metrics", anon.get("/metrics"), 200)
    for fam in ("clubd_up", "clubd_redis_up", "clubd_messages_total",
                "clubd_channel_sends_total", "clubd_http_requests_total"):
        check("# TYPE %s " % fam in m and fam in op_text(spec, "/metrics"),
              "metric %s missing from /metrics or from its description" % fam)

    # contacts, with the spec's own examples as input
    c = conform("POST", "/v1/contacts", mk.post("/v1/contacts", ex("/v1/contacts", "post", "persian")), 201)
    cid = c["id"]
    check(c["addresses"]["sms"] == "+989121234567" and c["name"] == "سارا احمدی",
          "created contact %r" % c)
    g = conform("GET", "/v1/contacts/{id}", view.get("/v1/contacts/" + cid), 200)
    check(g == c, "GET differs from the POST answer")
    p = conform("PATCH", "/v1/contacts/{id}",
                mk.patch("/v1/contacts/" + cid, ex("/v1/contacts/{id}", "patch", None)), 200)
    check(p["addresses"].get("chat") == "@sara_ahmadi" and "email" not in p["addresses"], "PATCH %r" % p)
    conform("GET", "/v1/contacts", view.get("/v1/contacts?limit=1"), 200)
    lk = conform("GET", "/v1/contacts", view.get("/v1/contacts?channel=sms&address="
                                                 + urllib.parse.quote("۰۹۱۲۱۲۳۴۵۶۷")), 200)
    check([x["id"] for x in lk["items"]] == [cid] and lk["next_cursor"] is None, "lookup %r" % lk)
    nd = ex("/v1/contacts/bulk", "post", None).replace("01JD3Z8Q6M0000000000000000", cid)
    b = conform("POST", "/v1/contacts/bulk",
                mk.post("/v1/contacts/bulk", raw=nd.encode(), ctype="application/x-ndjson"), 200)
    check(b["failed"] == 0 and b["created"] + b["updated"] == 3, "bulk %r" % b)

    # messages
    body = ex("/v1/messages", "post", "receipt")
    body["contact_id"] = cid
    key = {"Idempotency-Key": "order-7781-receipt"}
    a = conform("POST", "/v1/messages", mk.post("/v1/messages", body, headers=key), 202)
    mid = a["id"]
    conform("GET", "/v1/messages/{id}", view.get("/v1/messages/" + mid), 200)
    wait_state(d, mid, "sent", 10)
    sent = conform("GET", "/v1/messages/{id}", view.get("/v1/messages/" + mid), 200)
    check(sent["text"] == body["text"] and sent["sent_channel"] and
          any(h.get("attempt") for h in sent["history"]), "sent message %r" % sent)
    rp = conform("POST", "/v1/messages", mk.post("/v1/messages", body, headers=key), 200)
    check(rp["id"] == mid and rp.get("replayed") is True, "replay %r" % rp)
    later = ex("/v1/messages", "post", "scheduled_sms")
    now = time.time()
    later["send_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600))
    later["expires_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 7200))
    s = conform("POST", "/v1/messages", mk.post("/v1/messages", later), 202)
    check(s["state"] == "scheduled", "scheduled send %r" % s)
    em = ex("/v1/messages", "post", "email")
    em["contact_id"] = cid
    conform("POST", "/v1/messages", mk.post("/v1/messages", em), 202)
    cn = conform("POST", "/v1/messages/{id}/cancel", mk.post("/v1/messages/%s/cancel" % s["id"]), 200)
    check(cn == {"id": s["id"], "state": "cancelled"}, "cancel %r" % cn)
    conform("POST", "/v1/messages/{id}/cancel", mk.post("/v1/messages/%s/cancel" % s["id"]), 409)
    conform("POST", "/v1/messages/{id}/cancel", mk.post("/v1/messages/%s/cancel" % mid), 409)
    conform("GET", "/v1/messages/{id}", view.get("/v1/messages/" + s["id"]), 200)

    # errors
    unknown = "01JD3Z8Q6M0000000000000000"
    conform("GET", "/v1/contacts/{id}", view.get("/v1/contacts/" + unknown), 404)
    conform("GET", "/v1/contacts/{id}", view.get("/v1/contacts/not-an-id"), 404)
    conform("GET", "/v1/messages/{id}", view.get("/v1/messages/" + unknown), 404)
    conform("POST", "/v1/messages/{id}/cancel", mk.post("/v1/messages/%s/cancel" % unknown), 404)
    conform("POST", "/v1/contacts", mk.post("/v1/contacts", {"addresses": {"sms": "12"}}), 400)
    conform("POST", "/v1/contacts", mk.post("/v1/contacts", {"name": "x", "id": unknown}), 400)
    conform("POST", "/v1/contacts", mk.post("/v1/contacts", raw=b"[1]"), 400)
    conform("POST", "/v1/contacts", mk.post("/v1/contacts", {"name": "رضا"}, ctype="text/plain"), 415)
    conform("POST", "/v1/contacts", mk.post("/v1/contacts", {"addresses": {"sms": "09121234567"}}), 409)
    conform("POST", "/v1/contacts", anon.post("/v1/contacts", {"name": "رضا"}), 401)
    check(header(anon.post("/v1/contacts", {"name": "x"}), "WWW-Authenticate"),
          "401 without WWW-Authenticate")
    conform("POST", "/v1/contacts", view.post("/v1/contacts", {"name": "رضا"}), 403)
    conform("GET", "/v1/contacts", anon.get("/v1/contacts"), 401)
    conform("GET", "/v1/contacts", view.get("/v1/contacts?limit=0"), 400)
    conform("GET", "/v1/contacts", view.get("/v1/contacts?channel=sms"), 400)
    conform("GET", "/v1/contacts/{id}", view.request("GET", "/v1/contacts/" + cid, raw=b"{}"), 400)
    conform("POST", "/v1/messages", mk.post("/v1/messages", {}), 400)
    conform("POST", "/v1/messages", mk.post("/v1/messages", {"contact_id": unknown, "text": "سلام"}), 404)
    conform("POST", "/v1/messages", mk.post("/v1/messages", {"contact_id": cid, "text": "x"},
                                            headers={"Idempotency-Key": "has space"}), 400)
    conform("DELETE", "/v1/contacts/{id}", mk.delete("/v1/contacts/" + cid), 403)
    r = adm.request("PUT", "/v1/contacts")
    error(r, 405, "method_not_allowed")
    check(header(r, "Allow") and "POST" in header(r, "Allow"), "405 without Allow: %r" % r.headers)
    error(view.get("/v1/no-such-thing"), 404, "not_found")
    conform("DELETE", "/v1/contacts/{id}", adm.delete("/v1/contacts/" + cid), 204)
    conform("DELETE", "/v1/contacts/{id}", adm.delete("/v1/contacts/" + cid), 404)

    # Redis down: 503 everywhere a store is needed, readiness says so
    redis.stop()
    wait_until(lambda: anon.get("/readyz").status == 503, 10, "/readyz 503 with Redis stopped")
    conform("GET", "/readyz", anon.get("/readyz"), 503)
    conform("GET", "/healthz", anon.get("/healthz"), 200)
    conform("POST", "/v1/contacts", mk.post("/v1/contacts", {"name": "رضا"}), 503)
    conform("GET", "/v1/messages/{id}", view.get("/v1/messages/" + mid), 503)
    conform("POST", "/v1/messages", mk.post("/v1/messages", {"contact_id": unknown, "text": "x"}), 503)
    redis.start()
    d.wait_ready(15)
    fx.note("%d answers validated against docs/openapi.yaml" % len(checked))


def op_text(spec, path):
    return json.dumps(spec["paths"][path], ensure_ascii=False)
