"""Operator lifecycle of the real binary: SIGHUP reload (what reloads, what is
refused, that a bad file changes nothing) and sd_notify under a fake service
manager (READY, STATUS, WATCHDOG, RELOADING, STOPPING on NOTIFY_SOCKET)."""

import os
import re
import signal
import socket
import time

from harness import SLOW, check, sha256_hex, timeout, wait_until, write_config


def _log_has(d, text):
    return text in d.stderr()


@timeout(60)
def test_sighup_reload(fx):
    r = fx.redis()
    d = fx.clubd(r)
    c = d.client("admin")
    check(c.get("/v1/contacts").status == 200, "admin token works before reload")

    # A new token appears in the tokens file: usable only after SIGHUP.
    new_token = "reload-token-0123456789abcdef"
    with open(fx.tokens_file, "a") as f:
        f.write("late-viewer viewer %s\n" % sha256_hex(new_token))
    late = d.new_client(None)
    hdr = {"Authorization": "Bearer " + new_token}
    check(late.get("/v1/contacts", headers=hdr).status == 401, "unknown token refused before reload")
    d.signal(signal.SIGHUP)
    wait_until(lambda: _log_has(d, "configuration reloaded"), 10, "reload logged")
    check(late.get("/v1/contacts", headers=hdr).status == 200, "token from the reloaded file accepted")

    # Changing a restart-only option is refused and names it; the daemon keeps serving.
    d.config["api"]["listen"] = "::1"
    write_config(d.conf_path, d.config)
    d.signal(signal.SIGHUP)
    wait_until(lambda: _log_has(d, "reload refused"), 10, "refused reload logged")
    check("api.listen" in d.stderr().split("reload refused")[-1], "refusal names api.listen")
    check(c.get("/healthz").status == 200, "still serving after a refused reload")

    # A broken file is refused too.
    with open(d.conf_path, "a") as f:
        f.write("\n[dispatch]\nmax_inflight = lots\n")
    n_before = d.stderr().count("reload refused")
    d.signal(signal.SIGHUP)
    wait_until(lambda: d.stderr().count("reload refused") > n_before, 10, "second refusal")
    check(c.get("/healthz").status == 200, "still serving after a broken file")
    check(late.get("/v1/contacts", headers=hdr).status == 200, "previous tokens kept")
    late.close()
    check(d.term() == 0, "clean exit after reloads")


@timeout(60)
def test_sd_notify(fx):
    r = fx.redis()
    sock_path = os.path.join(fx.tmp, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(0.2)
    d = fx.clubd(r, start=False)
    base_env = d.env

    def env():
        e = base_env()
        e["NOTIFY_SOCKET"] = sock_path
        e["WATCHDOG_USEC"] = "400000"  # ping every 200 ms
        e.pop("WATCHDOG_PID", None)
        return e

    d.env = env
    got = []

    def drain():
        while True:
            try:
                got.append(s.recv(4096).decode())
            except socket.timeout:
                return

    def seen(field):
        drain()
        return any(field in m.split("\n") for m in got)

    try:
        d.start()
        wait_until(lambda: seen("READY=1"), 10, "READY=1")
        check(any(l.startswith("STATUS=") for m in got for l in m.split("\n")), "a STATUS= line")
        got.clear()
        t0 = time.time()
        wait_until(lambda: sum(m.count("WATCHDOG=1") for m in got) >= 3 or seen("nothing"), 10,
                   "three watchdog pings")
        check(time.time() - t0 < 9, "watchdog pings arrive on the interval")
        got.clear()
        d.signal(signal.SIGHUP)
        wait_until(lambda: seen("RELOADING=1"), 10, "RELOADING=1 on SIGHUP")
        wait_until(lambda: seen("READY=1"), 10, "READY=1 after the reload")
        d.signal(signal.SIGTERM)
        wait_until(lambda: seen("STOPPING=1"), 10, "STOPPING=1 on SIGTERM")
        # wait for that SIGTERM's exit (d.term() would send a second one, which can land
        # after the handlers are gone while a sanitizer build is still exiting)
        d.proc.wait(15 * SLOW)
        check(d._reap() == 0, "clean exit")
    finally:
        s.close()


@timeout(60)
def test_log_formats(fx):
    """--log-format=json: every line is one JSON object with ts, level, sub, line;
    under systemd (JOURNAL_STREAM set) key=value lines carry <N> priorities."""
    import json
    import subprocess
    from harness import CLUBD, ROOT, free_port
    r = fx.redis()
    d = fx.clubd(r, start=False)
    for args, env_extra, check_line in (
        (["--log-format=json"], {}, "json"),
        ([], {"JOURNAL_STREAM": "8:12345"}, "journal"),
    ):
        env = d.env()
        env.update(env_extra)
        p = subprocess.Popen([CLUBD, "-c", d.conf_path] + args, cwd=ROOT, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: os.path.exists(d.port_file), 10, "clubd up")
        finally:
            p.terminate()
            _, err = p.communicate(timeout=20)
            os.unlink(d.port_file)
        check(p.returncode == 0, "exit %s" % p.returncode)
        lines = [l for l in err.split("\n") if l]
        check(len(lines) >= 5, "some log lines: %r" % lines)
        for l in lines:
            if check_line == "json":
                o = json.loads(l)
                check(set(o) == {"ts", "level", "sub", "line"}, "json keys: %r" % o)
            else:
                check(re.match(r"^<[0-7]>sub=[a-z]+ ", l), "journal line: %r" % l)
