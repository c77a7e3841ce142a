"""The raffle draw is reproducible by anyone from docs/raffles.md:
clubd-draw-verify ($CLUBD_BUILD/clubd-draw-verify) against an independent
Python re-implementation of the documented algorithm (hashlib + hmac only,
nothing taken from the C code), the published test vectors, and the
verifier's refusals (wrong commit, --expect mismatch, malformed files with
their line numbers, usage errors)."""

import hashlib
import hmac
import os
import random
import subprocess

from harness import CLUBD, ROOT, check, timeout

TOOL = os.path.join(os.path.dirname(CLUBD), "clubd-draw-verify")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

# ------------------------------------------------ the reference (docs/raffles.md)

CONTEXT = b"clubd-draw-v1"


def commit_of(seed):
    return hashlib.sha256(seed).hexdigest()


def canonical(entries):
    """[(id, weight)] -> sorted by id bytes; duplicates are the caller's bug."""
    out = sorted(entries, key=lambda e: e[0].encode("ascii"))
    ids = [e[0] for e in out]
    assert len(set(ids)) == len(ids), "duplicate ids in a test list"
    return out


def entries_digest(entries):
    text = "".join("%s\t%d\n" % (cid, w) for cid, w in entries)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def words(seed, digest):
    i = 0
    while True:
        msg = CONTEXT + digest.encode("ascii") + i.to_bytes(8, "big")
        block = hmac.new(seed, msg, hashlib.sha256).digest()
        for j in range(0, 32, 8):
            yield int.from_bytes(block[j:j + 8], "big")
        i += 1


def reference_draw(seed, entries, k):
    """(entries_digest, [winner ids in order]) per the document."""
    entries = canonical(entries)
    digest = entries_digest(entries)
    stream = words(seed, digest)
    remaining = list(entries)
    winners = []
    for _ in range(k):
        total = sum(w for _, w in remaining)
        limit = 2 ** 64 - (2 ** 64) % total
        x = next(stream)
        while x >= limit:
            x = next(stream)
        r = x % total
        for idx, (cid, w) in enumerate(remaining):
            if r < w:
                winners.append(cid)
                del remaining[idx]
                break
            r -= w
    return digest, winners


# ------------------------------------------------ running the verifier

def run(fx, args, stdin=None):
    check(os.access(TOOL, os.X_OK), "%s not built" % TOOL)
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    p = subprocess.run([TOOL] + args, input=stdin, capture_output=True, timeout=60, cwd=ROOT,
                       env=env)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    for m in SANITIZER_MARKERS:
        check(m not in err, "sanitizer report from %s:\n%s" % (args, err[-3000:]))
    return p.returncode, out, err


def parse(out):
    """stdout -> (fields dict, [winners in order])."""
    fields, winners = {}, []
    for ln in out.splitlines():
        key, _, value = ln.partition(": ")
        if key.startswith("winner "):
            check(int(key.split()[1]) == len(winners) + 1, "winner numbering in:\n" + out)
            winners.append(value)
        else:
            fields[key] = value
    return fields, winners


def write_entries(fx, name, lines, crlf=False):
    path = os.path.join(fx.tmp, name)
    with open(path, "wb") as f:
        for ln in lines:
            f.write(ln.encode("latin-1") if isinstance(ln, str) else ln)
            f.write(b"\r\n" if crlf else b"\n")
    return path


def entry_lines(entries, rnd):
    """File lines in a random order; weight-1 entries sometimes bare."""
    lines = ["%s\t%d" % (cid, w) if w != 1 or rnd.random() < 0.5 else cid
             for cid, w in entries]
    rnd.shuffle(lines)
    return lines


def verify(fx, seed, entries, k, name, rnd=None, expect=None, crlf=False):
    rnd = rnd or random.Random(0)
    path = write_entries(fx, name, entry_lines(entries, rnd), crlf=crlf)
    args = ["--seed", seed.hex(), "--commit", commit_of(seed), "--winners", str(k)]
    if expect is not None:
        args += ["--expect", ",".join(expect)]
    return run(fx, args + [path])


# ------------------------------------------------ the tests

# docs/raffles.md, "Test vectors": seed 00 01 .. 1f, c01..c10 weighted (i mod 3) + 1
VECTOR_SEED = bytes(range(32))
VECTOR_ENTRIES = [("c%02d" % i, i % 3 + 1) for i in range(1, 11)]
VECTOR_COMMIT = "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
VECTOR_DIGEST = "f555bf8707c3a51519479f48527986867c6b85338aea565f17019fb6cfdd4937"
VECTOR_WINNERS = ["c10", "c05", "c03", "c07", "c08", "c02", "c01", "c04", "c06", "c09"]


@timeout(60)
def test_known_answer_vector(fx):
    # the reference reproduces the published vector...
    check(commit_of(VECTOR_SEED) == VECTOR_COMMIT, "commit of the vector seed")
    digest, winners = reference_draw(VECTOR_SEED, VECTOR_ENTRIES, 10)
    check(digest == VECTOR_DIGEST, "reference digest %s" % digest)
    check(winners == VECTOR_WINNERS, "reference winners %s" % winners)
    # ...and so does the verifier, from a shuffled file, for every k
    rnd = random.Random(10)
    for k in (1, 3, 10):
        rc, out, err = verify(fx, VECTOR_SEED, VECTOR_ENTRIES, k, "vector%d" % k, rnd)
        check(rc == 0, "exit %s:\n%s%s" % (rc, out, err))
        fields, got = parse(out)
        check(fields.get("entries_digest") == VECTOR_DIGEST, "digest in:\n" + out)
        check(fields.get("commit") == "ok" and fields.get("entries") == "10" and
              fields.get("total_weight") == "20", "fields in:\n" + out)
        check(got == VECTOR_WINNERS[:k], "k=%d winners %s" % (k, got))
    # --expect with the announced winners; the commit in upper case is the same commit
    path = write_entries(fx, "vector", entry_lines(VECTOR_ENTRIES, rnd), crlf=True)
    rc, out, err = run(fx, ["--seed", VECTOR_SEED.hex().upper(), "--commit", VECTOR_COMMIT.upper(),
                            "--winners", "4", "--expect", ",".join(VECTOR_WINNERS[:4]), path])
    check(rc == 0 and "expect: ok" in out, "expect: exit %s\n%s%s" % (rc, out, err))
    # the same list from standard input
    data = "\n".join(entry_lines(VECTOR_ENTRIES, rnd)).encode()
    rc, out, err = run(fx, ["--seed", VECTOR_SEED.hex(), "--commit", VECTOR_COMMIT,
                            "--winners", "10", "-"], stdin=data)
    check(rc == 0 and parse(out)[1] == VECTOR_WINNERS, "stdin: exit %s\n%s%s" % (rc, out, err))


def random_id(rnd, length, alphabet):
    return "".join(rnd.choice(alphabet) for _ in range(length))


@timeout(120)
def test_random_lists_match_reference(fx):
    visible = [chr(c) for c in range(0x21, 0x7f)]
    plain = [c for c in visible if c != ","]  # --expect splits on commas
    rnd = random.Random(20240611)
    lengths = [1, 2, 3, 5, 8, 13, 26, 40, 64, 128, 255]
    cases = 0
    for case in range(40):
        seed = bytes(rnd.getrandbits(8) for _ in range(32))
        n = rnd.choice([1, 2, 3, 7, 10, 31, 100, 257])
        alphabet = visible if case % 3 == 0 else plain
        ids = set()
        while len(ids) < n:
            ids.add(random_id(rnd, rnd.choice(lengths), alphabet))
        mode = case % 4
        if mode == 0:      # unweighted
            ws = [1] * n
        elif mode == 1:    # small weights
            ws = [rnd.randint(1, 10) for _ in range(n)]
        elif mode == 2:    # huge weights: totals past 2^63, many rejected words
            ws = [rnd.randint(1, (2 ** 64 - 1) // n) for _ in range(n)]
        else:              # mixed
            ws = [rnd.choice([1, 1, 2, 1000, 2 ** 40 + 3]) for _ in range(n)]
        entries = list(zip(sorted(ids), ws))
        k = rnd.randint(1, n)
        digest, want = reference_draw(seed, entries, k)
        expect = want if alphabet is plain else None
        rc, out, err = verify(fx, seed, entries, k, "case%d" % case, rnd, expect=expect,
                              crlf=case % 5 == 0)
        check(rc == 0, "case %d: exit %s\n%s%s" % (case, rc, out[-2000:], err[-2000:]))
        fields, got = parse(out)
        check(fields.get("entries_digest") == digest,
              "case %d: digest %s, reference %s" % (case, fields.get("entries_digest"), digest))
        check(fields.get("total_weight") == str(sum(ws)), "case %d: total weight" % case)
        check(got == want, "case %d (n=%d k=%d): winners differ\n verifier %s\n reference %s"
              % (case, n, k, got[:10], want[:10]))
        if expect is not None:
            check("expect: ok" in out, "case %d: no 'expect: ok' in\n%s" % (case, out[-500:]))
        cases += 1
    # a bigger list, unweighted: the common case
    seed = bytes(rnd.getrandbits(8) for _ in range(32))
    entries = [("01J%023d" % i, 1) for i in range(5000)]
    digest, want = reference_draw(seed, entries, 50)
    rc, out, err = verify(fx, seed, entries, 50, "big", rnd)
    check(rc == 0 and parse(out)[1] == want and parse(out)[0].get("entries_digest") == digest,
          "5000 entries: exit %s\n%s" % (rc, err))
    fx.note("%d random lists and one of 5000 entries agree with the reference" % (cases))


@timeout(60)
def test_wrong_commit(fx):
    seed = bytes(range(32))
    path = write_entries(fx, "e", ["a", "b\t2", "c"])
    other = commit_of(bytes(32))
    rc, out, err = run(fx, ["--seed", seed.hex(), "--commit", other, "--winners", "2", path])
    check(rc == 1, "wrong commit: exit %s\n%s%s" % (rc, out, err))
    check("commit mismatch" in err and commit_of(seed) in err and other in err,
          "unclear message: %r" % err)
    check("winner " not in out and "commit: MISMATCH" in out, "output after a mismatch:\n" + out)
    check(parse(out)[0].get("entries_digest") == entries_digest(canonical(
        [("a", 1), ("b", 2), ("c", 1)])), "digest still printed:\n" + out)
    # a seed one bit off
    bad = bytearray(seed)
    bad[0] ^= 1
    rc, out, err = run(fx, ["--seed", bytes(bad).hex(), "--commit", commit_of(seed),
                            "--winners", "1", path])
    check(rc == 1 and "commit mismatch" in err, "flipped seed bit: exit %s %r" % (rc, err))


@timeout(60)
def test_expect_mismatch(fx):
    seed = bytes(range(32))
    base = ["--seed", seed.hex(), "--commit", commit_of(seed)]
    path = write_entries(fx, "e", ["%s\t%d" % e for e in VECTOR_ENTRIES])
    good = VECTOR_WINNERS[:3]
    rc, out, err = run(fx, base + ["--winners", "3", "--expect", ",".join(good), path])
    check(rc == 0, "right expectation refused: %s %s" % (rc, err))
    for name, lst in (("order", [good[1], good[0], good[2]]), ("fewer", good[:2]),
                      ("more", good + ["c09"]), ("other", [good[0], good[1], "zzz"])):
        rc, out, err = run(fx, base + ["--winners", "3", "--expect", ",".join(lst), path])
        check(rc == 1, "%s: exit %s\n%s%s" % (name, rc, out, err))
        check("expect: MISMATCH" in out and "--expect mismatch" in err,
              "%s: output\n%s%s" % (name, out, err))
        check(parse(out)[1] == good, "%s: winners still printed" % name)
    # a malformed list is a usage error
    for lst in ("c10,,c05", "c10,", "", "c 10"):
        rc, out, err = run(fx, base + ["--winners", "3", "--expect", lst, path])
        check(rc == 2, "--expect %r: exit %s %s" % (lst, rc, err))


MALFORMED = [
    # (lines, line number, words expected in the message)
    (["alice", "bob\t2", "carol smith", "dave"], 3, "visible ASCII"),
    (["alice\t0"], 1, "weight"),
    (["alice", "bob\t-1"], 2, "weight"),
    (["alice", "bob\t+3"], 2, "weight"),
    (["alice", "bob", "carol\t01"], 3, "weight"),
    (["alice\t"], 1, "weight"),
    (["alice\t1.5"], 1, "weight"),
    (["alice\t18446744073709551616"], 1, "weight"),
    (["alice\t99999999999999999999999"], 1, "weight"),
    (["alice\t2\textra"], 1, "fields"),
    (["\t2"], 1, "empty contact id"),
    (["alice", "bob", "x" * 256], 3, "too long"),
    (["alice", "\u0639\u0644\u06cc".encode("utf-8")], 2, "visible ASCII"),  # Persian id
    (["alice", "b\x00b"], 2, "NUL"),
    (["alice", "bob", "carol", "bob\t2"], 4, "duplicate contact id \"bob\" (first on line 2)"),
]


@timeout(60)
def test_malformed_files(fx):
    seed = bytes(range(32))
    base = ["--seed", seed.hex(), "--commit", commit_of(seed), "--winners", "1"]
    for i, (lines, line, words_) in enumerate(MALFORMED):
        path = write_entries(fx, "bad%d" % i, lines)
        rc, out, err = run(fx, base + [path])
        check(rc == 2, "bad%d: exit %s\n%s%s" % (i, rc, out, err))
        check("%s:%d: " % (path, line) in err and words_ in err,
              "bad%d: expected %s:%d and %r in:\n%s" % (i, path, line, words_, err))
        check("winner " not in out, "bad%d: drew anyway:\n%s" % (i, out))
    # several errors are all reported, with their lines; blank lines count
    path = write_entries(fx, "many", ["ok1", "", "bad one", "ok2", "x\t0"])
    rc, out, err = run(fx, base + [path])
    check(rc == 2 and "%s:3: " % path in err and "%s:5: " % path in err,
          "many: exit %s\n%s" % (rc, err))
    # weights adding up to 2^64 do not fit in 64 bits
    path = write_entries(fx, "overflow", ["a\t9223372036854775807", "b\t9223372036854775808",
                                          "c"])
    rc, out, err = run(fx, base + [path])
    check(rc == 2 and "add up" in err, "overflow: exit %s %s" % (rc, err))
    # and exactly 2^64 - 1 is fine
    path = write_entries(fx, "max", ["a\t9223372036854775807", "b\t9223372036854775807",
                                     "c"])
    rc, out, err = run(fx, base + [path])
    check(rc == 0 and parse(out)[0].get("total_weight") == str(2 ** 64 - 1),
          "2^64-1: exit %s %s%s" % (rc, out, err))
    path = write_entries(fx, "one", ["a\t18446744073709551615"])
    rc, out, err = run(fx, base + [path])
    check(rc == 0 and parse(out)[0].get("total_weight") == str(2 ** 64 - 1),
          "2^64-1: exit %s %s%s" % (rc, out, err))
    # empty file, only blank lines
    for name, lines in (("empty", []), ("blank", ["", "", ""])):
        path = write_entries(fx, name, lines)
        rc, out, err = run(fx, base + [path])
        check(rc == 2 and "no entries" in err, "%s: exit %s %s" % (name, rc, err))


@timeout(60)
def test_usage_errors(fx):
    seed = bytes(range(32))
    c = commit_of(seed)
    path = write_entries(fx, "e", ["a", "b", "c"])
    cases = [
        [],
        ["--commit", c, "--winners", "1", path],                        # no seed
        ["--seed", seed.hex(), "--winners", "1", path],                 # no commit
        ["--seed", seed.hex(), "--commit", c, path],                    # no winners
        ["--seed", seed.hex(), "--commit", c, "--winners", "1"],        # no file
        ["--seed", seed.hex(), "--commit", c, "--winners", "1", path, path],
        ["--seed", seed.hex()[:-2], "--commit", c, "--winners", "1", path],
        ["--seed", seed.hex()[:-1] + "g", "--commit", c, "--winners", "1", path],
        ["--seed", seed.hex(), "--commit", c[:10], "--winners", "1", path],
        ["--seed", seed.hex(), "--commit", c, "--winners", "0", path],
        ["--seed", seed.hex(), "--commit", c, "--winners", "-1", path],
        ["--seed", seed.hex(), "--commit", c, "--winners", "two", path],
        ["--seed", seed.hex(), "--commit", c, "--winners", "4", path],  # 3 entries
        ["--seed", seed.hex(), "--commit", c, "--winners", "1", "--bogus", path],
        ["--seed", seed.hex(), "--commit", c, "--winners", "1",
         os.path.join(fx.tmp, "no-such-file")],
    ]
    for args in cases:
        rc, out, err = run(fx, args)
        check(rc == 2, "%s: exit %s\n%s%s" % (args, rc, out, err))
        check(err.strip(), "%s: no message" % args)
    rc, out, err = run(fx, ["--help"])
    check(rc == 0 and "--seed" in out and "--expect" in out, "--help: %s %s" % (rc, out))
    rc, out, err = run(fx, ["--seed", seed.hex(), "--commit", c, "--winners", "3", path])
    check(rc == 0 and sorted(parse(out)[1]) == ["a", "b", "c"], "k = n: %s %s" % (rc, out))
