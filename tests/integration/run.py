#!/usr/bin/python3
"""run.py - clubd's integration test runner.

Usage: /usr/bin/python3 tests/integration/run.py [-j N] [--list] [--keep] [FILTER...]

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

-j N (default: $CLUBD_TEST_JOBS, else 1) runs the tests in N worker
processes (this script with --worker), each taking one test at a time
from a queue ordered longest first (SLOW_FIRST below, then file order).
Each test's block is printed whole when it ends, so blocks never mix; they
come in the order tests finish.  Tests marked @harness.serial (or in a
module with SERIAL = True) run after all the others, one at a time.  A
worker that dies fails the test it was running and is replaced; one that
outlives its test's limit by GRACE_S (cleanup included) is killed.  With
-j 1 everything runs in this process, in file order, as before.
Environment: CLUBD_BUILD (default "build") selects the build directory.
"""

import importlib
import inspect
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

DEFAULT_TIMEOUT = 60
# How long past a test's own limit the parent waits for a worker's answer
# (the fixture's cleanup: up to 15 s per clubd SIGTERM, 10 s per redis),
# times harness.SLOW.
GRACE_S = 60

# The slowest tests (measured on a 2-core machine, default build), started
# first so a long one does not begin last and leave the other workers idle.
# Longest first; a name missing here is only scheduled later, never skipped.
SLOW_FIRST = (
    "test_packaging.test_deb_package",  # ~95 s: a whole dpkg-buildpackage
    "test_campaign_limits.test_render_cache_eviction_and_daily_run",
    "test_campaigns.test_fanout_resumes_after_kill9",
    "test_inbound_email.test_store_paused_nothing_lost_nothing_twice",
    "test_campaigns.test_pause_resume_rate_limited",
    "test_inbound_telegram.test_telegram_polling_offsets_across_restarts",
    "test_segments.test_segment_semantics",
    "test_surveys.test_email_survey_answered_over_imap",
    "test_imap_tls.test_untrusted_certificate_refused",
    "test_desk.test_desk_webhook_retried_then_failed",
    "test_clubctl_campaigns.test_clubctl_campaigns",
)


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
            if getattr(mod, "SERIAL", False):
                f.serial = True
            tests.append(("%s.%s" % (mod.__name__, n), f))
    return tests


def limit_of(fn):
    return getattr(fn, "timeout", DEFAULT_TIMEOUT) * harness.SLOW


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


def run_one(name, fn, keep, emit, started=None):
    """Runs one test; emit(line) gets its block line by line; started(tmp)
    is told the fixture's directory first.  Returns True when it passed."""
    limit = limit_of(fn)
    fx = harness.Fixture(name.split(".")[-1], keep=keep)
    if started is not None:
        started(fx.tmp)
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
        emit("ok %s (%.1fs)" % (name, dt))
        for n in fx.notes:
            emit("    " + n)
        return True
    emit("FAIL %s: %s" % (name, short(err)))
    if details.strip():
        emit(indent(details.rstrip()))
    for n in fx.notes:
        emit("    " + n)
    emit("    (%.1fs; files kept in %s)" % (dt, fx.tmp))
    return False


def printer(line):
    print(line, flush=True)


# ---------------------------------------------------------------- worker

def worker_main(fd, log, keep):
    """run.py --worker FD LOG: reads test names from stdin, one a line;
    answers on FD with JSON lines {"start": name, "tmp": dir} then
    {"name", "ok", "block"}.  stdout/stderr go to LOG (the parent's), so
    whatever a test or its children print there is added to its block."""
    out = os.fdopen(fd, "w", buffering=1)
    tests = dict(discover())

    def send(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    send({"ready": os.getpid()})
    for line in sys.stdin:
        name = line.strip()
        if not name:
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        pos = os.path.getsize(log)
        block = []
        ok = run_one(name, tests[name], keep, block.append,
                     started=lambda tmp: send({"start": name, "tmp": tmp}))
        sys.stdout.flush()
        sys.stderr.flush()
        stray = read_from(log, pos)
        if stray.strip():
            block.append("    output:")
            block.append(indent(stray.rstrip(), 6))
        send({"name": name, "ok": ok, "block": "\n".join(block)})
    return 0


def read_from(path, pos, cap=8192):
    """The text appended to path after pos (its last cap bytes)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            f.seek(max(pos, end - cap))
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return "(%s)" % e


class Worker:
    def __init__(self, keep, logdir, n, sel):
        self.log = os.path.join(logdir, "worker-%d.log" % n)
        rfd, wfd = os.pipe()
        # harness._SETPRIV: the worker (and so its tests' daemons) dies with us
        args = harness._SETPRIV + [sys.executable, os.path.abspath(__file__), "--worker", str(wfd), self.log]
        if keep:
            args.append("--keep")
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=logf, stderr=logf,
                                         pass_fds=(wfd,), close_fds=True)
        os.close(wfd)
        self.rfd = rfd
        self.buf = b""
        self.test = None  # (name, fn) being run
        self.tmp = None
        self.deadline = None
        self.ready = False
        self.sel = sel
        sel.register(rfd, selectors.EVENT_READ, self)

    def give(self, name, fn):
        self.test = (name, fn)
        self.tmp = None
        self.log_pos = os.path.getsize(self.log)  # the worker flushed it after its last test
        self.t0 = time.monotonic()
        self.deadline = self.t0 + limit_of(fn) + GRACE_S * harness.SLOW
        try:
            self.proc.stdin.write((name + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            pass  # it died: its pipe's EOF fails the test

    def messages(self):
        """Reads what is there; returns (messages, eof)."""
        chunk = os.read(self.rfd, 65536)
        if not chunk:
            return [], True
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        return [json.loads(ln) for ln in lines if ln.strip()], False

    def close(self):
        """Ends the worker (EOF on its stdin) and reaps it."""
        try:
            self.sel.unregister(self.rfd)
        except (KeyError, ValueError):
            pass
        os.close(self.rfd)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        return self.close()


def run_parallel(tests, jobs, keep, counts):
    """Runs tests in jobs workers; prints each block when it ends and
    counts it in counts["passed"] or counts["failed"]."""
    rank = {n: i for i, n in enumerate(SLOW_FIRST)}
    order = {n: i for i, (n, _) in enumerate(tests)}
    par = [t for t in tests if not getattr(t[1], "serial", False)]
    par.sort(key=lambda t: (rank.get(t[0], len(rank)), order[t[0]]))
    ser = [t for t in tests if getattr(t[1], "serial", False)]
    queue = par + ser
    n_par = len(par)

    def report(ok, block):
        counts["passed" if ok else "failed"] += 1
        sys.stdout.write(block + "\n")
        sys.stdout.flush()

    logdir = tempfile.mkdtemp(prefix="clubd-it-workers-")
    sel = selectors.DefaultSelector()
    workers = []
    spawned = 0

    def spawn():
        nonlocal spawned
        spawned += 1
        w = Worker(keep, logdir, spawned, sel)
        workers.append(w)
        return w

    def lost(w, why):
        """w died or hung: fail its test, replace it if it had one."""
        name, fn = w.test
        rc = w.kill()
        workers.remove(w)
        tail = read_from(w.log, w.log_pos, 4000).rstrip()
        block = ["FAIL %s: %s (worker exit status %s)" % (name, why, rc)]
        if tail:
            block.append("    worker output:")
            block.append(indent(tail, 6))
        block.append("    (%.1fs; files kept in %s)" % (time.monotonic() - w.t0, w.tmp or "(none made)"))
        report(False, "\n".join(block))
        if next_index[0] < len(queue):
            spawn()

    next_index = [0]
    try:
        for _ in range(min(jobs, len(queue))):
            spawn()
        while True:
            busy = [w for w in workers if w.test is not None]
            i = next_index[0]
            # hand out work: parallel tests to any idle ready worker; a serial
            # test only when nothing else runs, and then to one worker
            for w in workers:
                if i >= len(queue) or w.test is not None or not w.ready:
                    continue
                if i >= n_par and busy:
                    break
                w.give(*queue[i])
                busy.append(w)
                i += 1
            next_index[0] = i
            if i >= len(queue):
                for w in [w for w in workers if w.test is None]:
                    w.close()
                    workers.remove(w)
            if not workers:
                break
            now = time.monotonic()
            waits = [w.deadline - now for w in workers if w.test is not None]
            for key, _ in sel.select(max(0.0, min(waits)) + 0.05 if waits else None):
                w = key.data
                msgs, eof = w.messages()
                for m in msgs:
                    if "ready" in m:
                        w.ready = True
                    elif "start" in m:
                        w.tmp = m["tmp"]
                    elif w.test is not None and m.get("name") == w.test[0]:
                        w.test = None
                        report(m["ok"], m["block"])
                if eof:
                    if w.test is not None:
                        lost(w, "the worker died")
                    else:
                        w.close()
                        workers.remove(w)
                        if not workers and next_index[0] < len(queue):
                            # a worker that dies idle (say, at startup) is not
                            # replaced: the remaining tests fail, the run ends
                            for name, _ in queue[next_index[0]:]:
                                report(False, "FAIL %s: not run (no worker left)" % name)
                            next_index[0] = len(queue)
            now = time.monotonic()
            for w in [w for w in workers if w.test is not None and now > w.deadline]:
                lost(w, "no answer %.0fs after its %.0fs limit" % (
                    GRACE_S * harness.SLOW, limit_of(w.test[1])))
    finally:
        for w in workers:
            w.kill()
        sel.close()
        for fn in os.listdir(logdir):
            os.unlink(os.path.join(logdir, fn))
        os.rmdir(logdir)


# ---------------------------------------------------------------- main

def parse_jobs(argv):
    """(jobs, rest of argv): -j N, -jN or --jobs=N; default $CLUBD_TEST_JOBS or 1."""
    jobs = os.environ.get("CLUBD_TEST_JOBS", "") or "1"
    rest = []
    it = iter(argv)
    for a in it:
        if a in ("-j", "--jobs"):
            jobs = next(it, "")
        elif a.startswith("--jobs="):
            jobs = a[len("--jobs="):]
        elif a.startswith("-j"):
            jobs = a[2:]
        else:
            rest.append(a)
    if not jobs.isdigit() or int(jobs) < 1:
        raise SystemExit("run.py: -j wants a number >= 1, not %r" % jobs)
    return int(jobs), rest


def main(argv):
    if argv[:1] == ["--worker"]:
        return worker_main(int(argv[1]), argv[2], "--keep" in argv[3:])
    jobs, argv = parse_jobs(argv)
    keep = "--keep" in argv
    listing = "--list" in argv
    filters = [a for a in argv if not a.startswith("--")]
    tests = [(n, f) for n, f in discover() if not filters or any(x in n for x in filters)]
    if listing:
        for n, _ in tests:
            print(n)
        return 0
    jobs = min(jobs, max(1, len(tests)))
    print("integration: %d tests, clubd=%s%s%s" % (len(tests), harness.CLUBD,
                                                   " (sanitizers)" if harness.ASAN else "",
                                                   ", %d workers" % jobs if jobs > 1 else ""),
          flush=True)
    counts = {"passed": 0, "failed": 0}
    try:
        if jobs > 1:
            run_parallel(tests, jobs, keep, counts)
        else:
            for n, f in tests:
                counts["passed" if run_one(n, f, keep, printer) else "failed"] += 1
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        counts["failed"] += 1
    print("%d passed, %d failed" % (counts["passed"], counts["failed"]), flush=True)
    return 1 if counts["failed"] or not tests else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
