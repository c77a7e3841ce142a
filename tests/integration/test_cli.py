"""Case 14 and the other command-line modes: --check-config names FILE:LINE
and exits 1, --hash-token matches sha256, --version."""

import os
import subprocess

from harness import CLUBD, ROOT, check, free_port, sha256_hex, timeout, write_config

BROKEN = [
    # (text, line, key)
    ("[api]\nlisten = 127.0.0.1\nport = 99999\n", 3, "api.port"),
    ("# comment\n\n[sched]\ntick = 50ms\nretry_min = soon\n", 5, "sched.retry_min"),
    ("[redis]\nhost = 127.0.0.1\n\n[dispatch]\nmax_inflight = 64\nno_such_key = 1\n", 6,
     "dispatch.no_such_key"),
    ("[channel.sms]\ndriver = no-such-driver\n", 2, "channel.sms.driver"),
]


def run(args, stdin=None):
    check(os.access(CLUBD, os.X_OK), "%s not built" % CLUBD)
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    p = subprocess.run([CLUBD] + args, input=stdin, capture_output=True, timeout=20, cwd=ROOT,
                       env=env)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    for m in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
        check(m not in out, "sanitizer report from clubd %s:\n%s" % (" ".join(args), out[-3000:]))
    return p.returncode, p.stdout.decode("utf-8", "replace"), out


@timeout(60)
def test_check_config(fx):
    good = os.path.join(fx.tmp, "good.conf")
    cfg = fx.config(free_port())  # no redis needed to check a config
    cfg["api"]["tokens_file"] = fx.tokens_file
    write_config(good, cfg)
    rc, _, out = run(["--check-config", "-c", good])
    check(rc == 0, "valid config refused (exit %s):\n%s" % (rc, out))
    for i, (text, line, key) in enumerate(BROKEN):
        path = os.path.join(fx.tmp, "broken%d.conf" % i)
        with open(path, "w") as f:
            f.write(text)
        rc, _, out = run(["--check-config", "-c", path])
        want = "%s:%d: %s:" % (path, line, key)
        check(rc == 1, "broken config %d: exit %s, output:\n%s" % (i, rc, out))
        check(want in out, "broken config %d: expected %r in:\n%s" % (i, want, out))
    # the daemon itself refuses to start on the first broken file, same message
    path = os.path.join(fx.tmp, "broken0.conf")
    rc, _, out = run(["-c", path])
    check(rc != 0 and "%s:3: api.port:" % path in out, "start with a broken config: %s\n%s" % (rc, out))


@timeout(30)
def test_hash_token_and_version(fx):
    tok = "s3cret-Token_value"
    for stdin in (tok, tok + "\n"):
        rc, stdout, out = run(["--hash-token"], stdin=stdin.encode())
        check(rc == 0 and stdout.strip() == sha256_hex(tok),
              "--hash-token %r -> %s %r" % (stdin, rc, out))
    rc, stdout, out = run(["--version"])
    check(rc == 0 and "clubd" in stdout, "--version -> %s %r" % (rc, out))


@timeout(30)
def test_check_config_reads_tokens_and_secrets(fx):
    """--check-config fails on what would otherwise only fail at start: a missing or
    malformed tokens file, an unreadable Redis password file."""
    cfg = fx.config(free_port())
    for key, section, value, want in (
        ("tokens_file", "api", os.path.join(fx.tmp, "nope"), "cannot open tokens file"),
        ("tokens_file", "api", fx.secret_file, "tokens"),  # a file that is not a tokens file
        ("password_file", "redis", os.path.join(fx.tmp, "nope"), "nope"),
    ):
        c = dict((k, dict(v)) for k, v in cfg.items())
        c["api"]["tokens_file"] = fx.tokens_file
        c[section][key] = value
        path = os.path.join(fx.tmp, "c-%s.conf" % key)
        write_config(path, c)
        rc, _, out = run(["--check-config", "-c", path])
        check(rc == 1 and want in out, "%s=%s: exit %s:\n%s" % (key, value, rc, out))
