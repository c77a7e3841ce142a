#!/usr/bin/python3
"""run.py - clubd's integration test runner.

Usage: /usr/bin/python3 tests/integration/run.py [--list] [--keep] [FILTER...]

Discovers tests/integration/test_*.py and runs every function named test_*
(in file order) with a fresh harness.Fixture: its own temporary directory,
and whatever redis-server, clubd and sinks the test starts.  A FILTER keeps
the tests whose name ("module.function") contains it.  Prints one line per
test, "ok NAME (1.2s)" or "FAIL NAME: reason" (details indented below it),
then "N passed, N failed" alone on the last line; exits 1 on any failure.

Every test has a wall-clock limit (@harness.timeout(S), default 60 s,
stretched under sanitizers); the fixture stops every process it started
even on failure, and a daemon that does not exit 0 on SIGTERM at the end of
a test, or that printed a sanitizer report, fails the test.  A failed
test's directory (configs, logs, AOF) is kept and named; --keep keeps all.
Environment: CLUBD_BUILD (default "build") selects the build directory.
"""

import importlib
import inspect
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

DEFAULT_TIMEOUT = 60


class TestTimeout(BaseException):
    pass


def _alarm(signum, frame):
    raise TestTimeout()


def discover():
    tests = []
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        mod = importlib.import_module(fn[:-3])
        funcs = [(f.__code__.co_firstlineno, n, f) for n, f in vars(mod).items()
                 if n.startswith("test_") and inspect.isfunction(f) and f.__module__ == mod.__name__]
        for _, n, f in sorted(funcs):
            tests.append(("%s.%s" % (mod.__name__, n), f))
    return tests


def short(e):
    if isinstance(e, TestTimeout):
        return "timeout"
    msg = str(e).strip() or e.__class__.__name__
    first = msg.splitlines()[0]
    if not isinstance(e, AssertionError):
        first = "%s: %s" % (e.__class__.__name__, first)
    return first[:300]


def where(e):
    """'at test_x.py:LINE in func: source' for the deepest test-file frame."""
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if os.path.basename(f.filename).startswith("test_")]
    if not frames:
        return ""
    f = frames[-1]
    return "at %s:%d in %s: %s\n" % (os.path.basename(f.filename), f.lineno, f.name,
                                     (f.line or "").strip())


def indent(text, n=4):
    pad = " " * n
    return "\n".join(pad + ln for ln in text.splitlines())


def run_one(name, fn, keep):
    limit = getattr(fn, "timeout", DEFAULT_TIMEOUT) * harness.SLOW
    fx = harness.Fixture(name.split(".")[-1], keep=keep)
    t0 = time.monotonic()
    err, details = None, ""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        fn(fx)
    except TestTimeout as e:
        err = e
        details = "wall-clock limit %.0fs reached in:\n%s" % (
            limit, "".join(traceback.format_tb(e.__traceback__)[-4:]))
    except Exception as e:
        err = e
        if isinstance(e, harness.TestFailure):
            # the first line is on the FAIL line already
            details = where(e) + "\n".join(str(e).splitlines()[1:])
        else:
            tb = traceback.format_exception(type(e), e, e.__traceback__)
            details = "".join(tb[-6:])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    problems = fx.close()
    dt = time.monotonic() - t0
    if problems:
        if err is None:
            err = harness.TestFailure(problems[0].splitlines()[0])
            details = "\n".join(problems)
        else:
            details += "\nwhile cleaning up:\n" + "\n".join(problems)
    if err is None:
        fx.cleanup_dir()
        print("ok %s (%.1fs)" % (name, dt), flush=True)
        for n in fx.notes:
            print("    " + n, flush=True)
        return True
    print("FAIL %s: %s" % (name, short(err)), flush=True)
    print(indent(details.rstrip()), flush=True)
    for n in fx.notes:
        print("    " + n, flush=True)
    print("    (%.1fs; files kept in %s)" % (dt, fx.tmp), flush=True)
    return False


def main(argv):
    keep = "--keep" in argv
    listing = "--list" in argv
    filters = [a for a in argv if not a.startswith("--")]
    tests = [(n, f) for n, f in discover() if not filters or any(x in n for x in filters)]
    if listing:
        for n, _ in tests:
            print(n)
        return 0
    print("integration: %d tests, clubd=%s%s" % (len(tests), harness.CLUBD,
                                                 " (sanitizers)" if harness.ASAN else ""), flush=True)
    passed = failed = 0
    try:
        for n, f in tests:
            if run_one(n, f, keep):
                passed += 1
            else:
                failed += 1
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        failed += 1
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed or not tests else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
