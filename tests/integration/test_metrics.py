"""/metrics against a strict parser of the Prometheus text format (0.0.4):
names, labels, TYPE before samples, counters named *_total, cumulative
histogram buckets with +Inf == _count, no duplicate series; and the figures
follow what the daemon did (messages sent, queue depths, per-route requests)."""

import re

from harness import check, timeout, wait_until

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))


def parse(text):
    """Returns {family: {"type": t, "samples": [(name, labels dict, value)]}}; fails on
    anything a strict scraper would refuse."""
    families, types, seen = {}, {}, set()
    check(text.endswith("\n"), "exposition ends with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            parts = line.split(" ", 3)
            check(len(parts) == 4 and re.fullmatch(NAME, parts[2]), "line %d: bad HELP" % n)
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            check(len(parts) == 4 and re.fullmatch(NAME, parts[2]), "line %d: bad TYPE" % n)
            check(parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"),
                  "line %d: type %r" % (n, parts[3]))
            check(parts[2] not in types, "line %d: TYPE of %s given twice" % (n, parts[2]))
            types[parts[2]] = parts[3]
            families[parts[2]] = {"type": parts[3], "samples": []}
            continue
        check(not line.startswith("#") and line.strip(), "line %d: stray %r" % (n, line))
        m = SAMPLE.match(line)
        check(m, "line %d: not a sample: %r" % (n, line))
        name, labels_txt, value = m.group(1), m.group(2) or "", m.group(3)
        fam = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        check(fam in types, "line %d: %s has no TYPE before it" % (n, name))
        if types[fam] == "counter":
            check(name.endswith("_total"), "counter %s must end in _total" % name)
        try:
            v = float(value)
        except ValueError:
            v = None
        check(v is not None or value in ("+Inf", "-Inf", "NaN"), "line %d: value %r" % (n, value))
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels_txt))
        key = (name, tuple(sorted(labels.items())))
        check(key not in seen, "line %d: duplicate series %r" % (n, key))
        seen.add(key)
        families[fam]["samples"].append((name, labels, v))
    for fam, f in families.items():
        if f["type"] != "histogram":
            continue
        series = {}
        for name, labels, v in f["samples"]:
            base = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
            series.setdefault(base, {"buckets": [], "count": None})
            if name.endswith("_bucket"):
                series[base]["buckets"].append((labels["le"], v))
            elif name.endswith("_count"):
                series[base]["count"] = v
        for base, s in series.items():
            vals = [v for _, v in s["buckets"]]
            check(vals == sorted(vals), "%s%r: buckets not cumulative" % (fam, base))
            check(s["buckets"] and s["buckets"][-1][0] == "+Inf", "%s: last bucket +Inf" % fam)
            check(s["buckets"][-1][1] == s["count"], "%s: +Inf bucket != _count" % fam)
    return families


def value(fams, fam, **labels):
    for name, l, v in fams[fam]["samples"]:
        if name == fam and all(l.get(k) == x for k, x in labels.items()):
            return v
    return None


@timeout(60)
def test_metrics_strict(fx):
    r = fx.redis()
    s = fx.sink()
    d = fx.clubd(r, s)
    c = d.client("marketer")
    ids = [c.send({"to": "0912000000%d" % i, "channel": "sms", "text": "m%d" % i})["id"]
           for i in range(5)]
    c.send({"to": "09120000009", "channel": "sms", "text": "later",
            "send_at": "2099-01-01T00:00:00Z"})
    wait_until(lambda: s.got_all(set(ids)), 20, "five delivered")
    wait_until(lambda: all(c.message(m)["state"] == "sent" for m in ids), 20, "states sent")
    x = d.client(None).get("/metrics")
    check(x.status == 200 and x.headers.get("Content-Type", "").startswith("text/plain"),
          "/metrics answers text: %r" % x)
    fams = parse(x.text)
    check(value(fams, "clubd_messages_total", result="sent") == 5, "5 sent counted")
    check(value(fams, "clubd_queue_scheduled") == 1, "one message scheduled for 2099")
    check(value(fams, "clubd_queue_ready", lane="sms") is not None, "ready depth per lane")
    check(value(fams, "clubd_channel_sends_total", channel="sms", result="ok") == 5,
          "channel counter")
    lat = [v for n, l, v in fams["clubd_send_duration_seconds"]["samples"]
           if n.endswith("_count") and l.get("channel") == "sms"]
    check(lat == [5], "send latency observed 5 times: %r" % lat)
    posts = [v for n, l, v in fams["clubd_http_requests_total"]["samples"]
             if l.get("route") == "/v1/messages" and l.get("method") == "POST" and l.get("code") == "2xx"]
    check(posts == [6], "per-route request counter: %r" % posts)
    # suppressions by reason, from the stats every instance shares
    opted = c.create_contact({"name": "No SMS", "addresses": {"sms": "09120000077"},
                              "preferences": {"consent": {"sms": False}}})
    sup = c.send({"contact_id": opted["id"], "channel": "sms", "text": "x"})["id"]
    wait_until(lambda: c.message(sup)["state"] == "suppressed", 20, "suppressed")
    fams = parse(d.client(None).get("/metrics").text)
    check(value(fams, "clubd_suppressed_total", reason="opted_out:sms") == 1,
          "suppressions by reason: %r" % fams.get("clubd_suppressed_total"))
    # with Redis down the page still answers, without the depths
    r.stop()
    wait_until(lambda: d.client(None).get("/readyz").status == 503, 10, "redis down seen")
    fams = parse(d.client(None).get("/metrics").text)
    check("clubd_queue_ready" not in fams, "no depths while Redis is down")
    check(value(fams, "clubd_redis_up", conn="main") == 0, "redis_up 0")
    r.start()
    wait_until(lambda: d.client(None).get("/readyz").status == 200, 20, "redis back")
