#!/usr/bin/python3
"""bench/import.py - contacts import and segment preview at scale.

Starts, all on 127.0.0.1 and private to this run (tests/integration/harness.py
does the process handling; everything is stopped at the end):
  redis-server  appendonly yes, appendfsync everysec (CLUBD_TEST_FSYNC)
  build/clubd   the test configuration, log level notice

then
  1. writes a CSV of N contacts (default 1,000,000): name, a unique phone,
     an email for every third, tags from a small set, a city, a birthday in
     either calendar (some with Persian digits), about 1% of the rows with
     a bad phone;
  2. imports it with `build/clubctl contacts import FILE --map ...` (the
     real client: 50,000-row requests, the server's pipelined upserts) and
     reports rows/s, clubd's and clubctl's peak RSS and Redis used_memory;
  3. previews a few segments over all N contacts (POST /v1/segments/preview,
     the median of 3 runs each): tags only (read from the tag sets), an
     attribute comparison (one HMGET per contact), a Jalali birthday month,
     and a combination; reports count and milliseconds.

With --previews-only the contacts of step 3 are written straight into Redis
(a Lua script, in the layout lua/contact_write.lua keeps) instead of being
imported, so the previews can be measured on a large store in little time.

usage: /usr/bin/python3 bench/import.py [N] [--previews-only | --import-only]
env:   CLUBD_BUILD=build  KEEP=1 (keep the temp dir)  RESULTS=FILE (key=value lines)
       PREVIEW_RUNS=3  BATCH_ROWS=N (clubctl --batch-rows; default its own)
"""

import os
import random
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("CLUBD_TEST_FSYNC", "everysec")

import harness  # noqa: E402

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
N = int(ARGS[0]) if ARGS else 1000000
PREVIEWS_ONLY = "--previews-only" in sys.argv
IMPORT_ONLY = "--import-only" in sys.argv
PREVIEW_RUNS = int(os.environ.get("PREVIEW_RUNS", "3"))

# Contacts n0..n1 as contact_write.lua would leave them (plus tag sets).
FILL_LUA = """
local P, n0, n1 = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local tags = {'vip', 'new', 'b2b', 'inactive', 'tehran'}
local cities = {'"Tehran"', '"\\u062a\\u0647\\u0631\\u0627\\u0646"', '"Shiraz"', '"Isfahan"', '"Tabriz"', '"Mashhad"'}
for i = n0, n1 do
  local id = string.format('01JBENCH%018d', i)
  local ck = P .. 'c:' .. id
  local t1, t2 = tags[i % 5 + 1], tags[(i * 7) % 5 + 1]
  local tj = '["' .. t1 .. '"]'
  if t1 ~= t2 then tj = '["' .. t1 .. '","' .. t2 .. '"]' end
  local bd
  if i % 3 == 0 then bd = string.format('"j:%04d-%02d-%02d"', 1340 + i % 45, 1 + i % 12, 1 + i % 29)
  else bd = string.format('"%04d-%02d-%02d"', 1960 + i % 45, 1 + (i * 5) % 12, 1 + i % 28) end
  local phone = string.format('+98912%07d', i)
  redis.call('HSET', ck, 'id', id, 'name', 'Contact ' .. i, 'created', '1700000000000',
             'updated', '1700000000000', 'v', '1', 'tags', tj, 'x:city', cities[i % 6 + 1],
             'x:birthday', bd, 'a:sms', phone)
  if i % 10 == 0 then redis.call('HSET', ck, 'prefs', '{"categories":{"promotional":false}}') end
  redis.call('SET', P .. 'ix:sms:' .. phone, id)
  redis.call('SADD', P .. 'tag:' .. t1, id)
  redis.call('SADD', P .. 'tag:' .. t2, id)
  redis.call('SADD', P .. 'ct:' .. id, t1, t2)
  redis.call('ZADD', P .. 'contacts', 0, id)
end
return n1 - n0 + 1
"""
CLUBCTL = os.path.join(os.path.dirname(harness.CLUBD), "clubctl")
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def write_csv(path, n, seed=7):
    rng = random.Random(seed)
    tags = ["vip", "new", "b2b", "inactive", "tehran"]
    cities = ["Tehran", "تهران", "Shiraz", "Isfahan", "Tabriz", "Mashhad"]
    bad = 0
    with open(path, "w", newline="") as f:
        f.write("نام,موبایل,email,tags,city,birthday\r\n")
        out = []
        for i in range(n):
            phone = "0912%07d" % i if i < 10000000 else "0935%07d" % (i - 10000000)
            if rng.random() < 0.01:
                phone, bad = "12%d" % i, bad + 1
            email = "c%d@example.com" % i if i % 3 == 0 else ""
            t = ";".join(rng.sample(tags, rng.randrange(0, 3)))
            k = rng.randrange(3)
            if k == 0:
                bd = "%d-%02d-%02d" % (rng.randrange(1960, 2006), rng.randrange(1, 13), rng.randrange(1, 29))
            elif k == 1:
                bd = ("%d/%d/%d" % (rng.randrange(1340, 1385), rng.randrange(1, 13),
                                    rng.randrange(1, 30))).translate(PERSIAN)
            else:
                bd = ""
            out.append("مشتری %d,%s,%s,%s,%s,%s\r\n" % (i, phone, email, t, rng.choice(cities), bd))
            if len(out) == 10000:
                f.write("".join(out))
                out = []
        f.write("".join(out))
    return bad


def peak_rss(pid, stop, box):
    while not stop.is_set():
        v = harness_hwm(pid)
        if v:
            box[0] = max(box[0], v)
        time.sleep(0.05)


def harness_hwm(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1])
    except (OSError, ValueError):
        return None
    return None


def cpu_s(pid):
    """user + system CPU seconds of a live process."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    results = {}
    fx = harness.Fixture("bench-import", keep=os.environ.get("KEEP") == "1")
    try:
        red = fx.redis()
        d = fx.clubd(red, overrides={"log": {"level": "notice"}, "api": {"request_timeout": "60s"}})
        if PREVIEWS_ONLY:
            rc = red.client()
            rc.config_set("appendonly", "no")  # only a fixture
            t0 = time.monotonic()
            for n0 in range(0, N, 50000):
                rc.eval(FILL_LUA, 0, "clubd:", n0, min(N, n0 + 50000) - 1)
            print("filled %d contacts in %.1fs" % (N, time.monotonic() - t0), flush=True)
            return previews(fx, d, results)
        path = os.path.join(fx.tmp, "contacts.csv")
        t0 = time.monotonic()
        bad = write_csv(path, N)
        size = os.path.getsize(path)
        print("csv: %d rows, %.1f MiB, %d bad phones (written in %.1fs)" % (
            N, size / 1048576.0, bad, time.monotonic() - t0), flush=True)
        env = dict(os.environ, CLUBD_URL="http://127.0.0.1:%d" % d.port,
                   CLUBD_TOKEN=fx.tokens["marketer"], LANG="C.UTF-8")
        stop = threading.Event()
        clubd_peak, ctl_peak = [0], [0]
        rss_idle = harness_hwm(d.proc.pid)
        t0 = time.monotonic()
        extra = ["--batch-rows", os.environ["BATCH_ROWS"]] if os.environ.get("BATCH_ROWS") else []
        p = subprocess.Popen([CLUBCTL, "--json", "-q", "contacts", "import", path, "--map", "city=attrs.city",
                              "--map", "birthday=attrs.birthday"] + extra, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        ts = [threading.Thread(target=peak_rss, args=(d.proc.pid, stop, clubd_peak), daemon=True),
              threading.Thread(target=peak_rss, args=(p.pid, stop, ctl_peak), daemon=True)]
        for t in ts:
            t.start()
        cpu0 = cpu_s(d.proc.pid), red.client().info("cpu")
        out, err = p.communicate(timeout=600)
        secs = time.monotonic() - t0
        stop.set()
        rc = red.client().info("cpu")
        cpu_clubd = cpu_s(d.proc.pid) - cpu0[0]
        cpu_redis = (rc["used_cpu_user"] + rc["used_cpu_sys"]) - (cpu0[1]["used_cpu_user"] + cpu0[1]["used_cpu_sys"])
        print("        CPU seconds: clubd %.1f, redis %.1f" % (cpu_clubd, cpu_redis), flush=True)
        results.update(import_cpu_clubd_s="%.1f" % cpu_clubd, import_cpu_redis_s="%.1f" % cpu_redis)
        import json
        j = json.loads(out)
        mem = red.client().info("memory")["used_memory"]
        print("import: %d rows in %.1fs = %.0f rows/s; created %d, failed %d (exit %d)" % (
            j["rows"], secs, j["rows"] / secs, j["created"], j["failed"], p.returncode), flush=True)
        print("        clubd RSS idle %d KiB, peak %d KiB; clubctl peak %d KiB; Redis used_memory %.0f MiB"
              % (rss_idle, clubd_peak[0], ctl_peak[0], mem / 1048576.0), flush=True)
        results.update(import_rows=j["rows"], import_s="%.1f" % secs, import_rows_per_s="%.0f" % (j["rows"] / secs),
                       import_created=j["created"], import_failed=j["failed"], clubd_peak_kib=clubd_peak[0],
                       clubctl_peak_kib=ctl_peak[0], redis_used_mib="%.0f" % (mem / 1048576.0))
        if j["created"] != N - bad or j["failed"] != bad:
            print("bench: unexpected counts %r" % {k: j[k] for k in ("rows", "created", "failed")})
            return 1

        if IMPORT_ONLY:
            return 0
        return previews(fx, d, results)
    finally:
        problems = fx.close()
        for pr in problems:
            print("bench: %s" % pr)
        fx.cleanup_dir()
        if os.environ.get("RESULTS"):
            with open(os.environ["RESULTS"], "w") as f:
                for k, v in results.items():
                    f.write("%s=%s\n" % (k, v))


def previews(fx, d, results):
    if True:
        cl = d.client("viewer")
        cl.timeout_s = 120
        defs = [("tags", {"tags": {"all": ["vip"], "none": ["inactive"]}}),
                ("attr", {"attr": "city", "op": "eq", "value": "tehran"}),
                ("jalali_month", {"date": "birthday", "op": "month", "value": 1, "calendar": "jalali"}),
                ("combined", {"all": [{"tags": {"any": ["vip", "b2b"]}}, {"reachable": "sms", "category": "promotional"},
                                      {"attr": "city", "op": "ne", "value": "Shiraz"}]}),
                ("everyone", {})]
        for name, cond in defs:
            ms, count = [], None
            for _ in range(PREVIEW_RUNS):
                t1 = time.monotonic()
                r = cl.post("/v1/segments/preview?sample=20", {"match": cond})
                ms.append((time.monotonic() - t1) * 1000)
                if r.status != 200:
                    print("bench: preview %s -> %r" % (name, r))
                    return 1
                count = r.json["count"]
            med = statistics.median(ms)
            print("preview %-13s %8d of %d contacts in %5.0f ms (median of %d; server said %d ms)" % (
                name, count, r.json["examined"], med, PREVIEW_RUNS, r.json["elapsed_ms"]), flush=True)
            results["preview_%s_ms" % name] = "%.0f" % med
            results["preview_%s_count" % name] = count
        results["loadavg"] = open("/proc/loadavg").read().split()[0]
        print("load average at the end: %s" % results["loadavg"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
