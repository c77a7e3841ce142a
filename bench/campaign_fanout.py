#!/usr/bin/python3
"""bench/campaign_fanout.py - campaign fan-out at scale (issue 4's aim:
1,000,000 recipients into the schedule in <= 10 s, <= 200 bytes of Redis
memory per queued recipient).

Starts a private redis-server (no persistence, so the figure is memory, not
disk) and build/clubd on 127.0.0.1, loads N contacts tagged "club" straight
into Redis in the layout clubd writes (pipelined; the API is not what is
measured here), creates a template and a campaign over the segment
{"tags":{"any":["club"]}} with rate_limit 1 (so recipients stay queued and
the memory per queued recipient can be read), launches it and measures:

  fanout_s          launch -> fan_done (every recipient in the list)
  fanout_per_s      recipients per second
  bytes_per_queued  (used_memory after - before launch) / queued recipients
  clubd_cpu_s, redis_cpu_s

usage: bench/campaign_fanout.py [N]     (default 1000000)
env:   B=build  BATCH=1000 (fanout_batch)
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.environ.get("B", os.path.join(ROOT, "build"))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
BATCH = os.environ.get("BATCH", "1000")
ALPHA = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cid(i):
    # 26 characters in the id alphabet, lexically ordered by i
    out = []
    for _ in range(10):
        out.append(ALPHA[i % 32])
        i //= 32
    return "01BENCH000000000" + "".join(reversed(out))


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def api(port, token, method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def main():
    tmp = tempfile.mkdtemp(prefix="clubd-bench-fanout-")
    procs = []
    try:
        rport = free_port()
        rs = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", tmp],
                              stdout=subprocess.DEVNULL)
        procs.append(rs)
        r = redis.Redis(port=rport)
        for _ in range(200):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        t0 = time.time()
        pipe = r.pipeline(transaction=False)
        for i in range(N):
            c = cid(i)
            phone = "+98912%07d" % i
            pipe.hset("clubd:c:" + c, mapping={"id": c, "name": "C%d" % i, "tags": '["club"]',
                                               "a:sms": phone, "created": "1700000000000",
                                               "v": "1"})
            pipe.zadd("clubd:contacts", {c: 0})
            pipe.sadd("clubd:tag:club", c)
            pipe.sadd("clubd:ct:" + c, "club")
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()
        load_s = time.time() - t0
        token = "bench-token-0123456789"
        import hashlib
        with open(os.path.join(tmp, "tokens"), "w") as f:
            f.write("bench admin %s\n" % hashlib.sha256(token.encode()).hexdigest())
        os.chmod(os.path.join(tmp, "tokens"), 0o600)
        os.makedirs(os.path.join(tmp, "outbox"))
        conf = os.path.join(tmp, "clubd.conf")
        with open(conf, "w") as f:
            f.write("[api]\nlisten = 127.0.0.1\nport = 0\ntokens_file = %s/tokens\n"
                    "port_file = %s/port\n[redis]\nport = %d\n[outbox]\ndir = %s/outbox\n"
                    "[campaigns]\nfanout_batch = %s\n[channel.sms]\ndriver = outbox\n"
                    "[log]\nlevel = notice\n" % (tmp, tmp, rport, tmp, BATCH))
        cd = subprocess.Popen([os.path.join(B, "clubd"), "-c", conf],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "log"), "w"))
        procs.append(cd)
        for _ in range(200):
            if os.path.exists(os.path.join(tmp, "port")) and open(os.path.join(tmp, "port")).read().strip():
                break
            time.sleep(0.05)
        port = int(open(os.path.join(tmp, "port")).read())
        api(port, token, "POST", "/v1/templates",
            {"id": "bench", "name": "bench", "default_lang": "en",
             "variants": [{"channel": "sms", "lang": "en", "text": "hello {{first_name}}"}]})
        camp = api(port, token, "POST", "/v1/campaigns",
                   {"name": "bench", "segment": {"tags": {"any": ["club"]}}, "channel": "sms",
                    "template": "bench", "rate_limit": 1})["id"]
        r.memory_purge() if hasattr(r, "memory_purge") else None
        before = r.info("memory")["used_memory"]
        c0, r0 = cpu_s(cd.pid), cpu_s(rs.pid)
        t1 = time.time()
        api(port, token, "POST", "/v1/campaigns/%s/launch" % camp)
        while r.hget("clubd:cp:" + camp, "fan_done") != b"1":
            if time.time() - t1 > 600:
                raise SystemExit("fan-out did not finish in 600 s")
            time.sleep(0.02)
        fan_s = time.time() - t1
        c1, r1 = cpu_s(cd.pid), cpu_s(rs.pid)
        after = r.info("memory")["used_memory"]
        queued = r.llen("clubd:cq:" + camp)
        print("contacts=%d load_s=%.1f" % (N, load_s))
        print("fanout_s=%.2f fanout_per_s=%d" % (fan_s, N / fan_s))
        print("queued=%d bytes_per_queued=%.1f used_memory_delta=%d" %
              (queued, (after - before) / max(queued, 1), after - before))
        print("clubd_cpu_s=%.2f redis_cpu_s=%.2f batch=%s" % (c1 - c0, r1 - r0, BATCH))
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        if not os.environ.get("KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept", tmp)


if __name__ == "__main__":
    main()
