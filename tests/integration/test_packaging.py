"""Packaging and install: the man pages render without warnings and say what
the code does (clubd.conf(5)'s options are cfg_options[], clubd(8) names
every command-line option and environment variable), `make install` lays out
the FHS paths and keeps an edited clubd.conf, the .deb builds in a copy of
the tree and its programs run from a scratch root, and the systemd unit
passes tools/check-systemd.

Needs no redis-server.  Tests whose tool is missing (man, dpkg-buildpackage
and debhelper, systemd-analyze) pass with a note; tools/deps installs them.
Never builds in the work tree: the package is built in a copy of the files
git knows (tracked and untracked-not-ignored) under the test's directory.
"""

import difflib
import filecmp
import os
import re
import shutil
import stat
import subprocess

from harness import ASAN, CLUBD, ROOT, check, fail, free_port, tail, timeout, write_config

MAN_PAGES = ["man/clubd.8", "man/clubd.conf.5", "man/clubctl.1"]
BEGIN = '.\\" BEGIN OPTIONS'
END = '.\\" END OPTIONS'


def run(cmd, cwd=ROOT, timeout_s=60, env=None, stdin=None):
    e = dict(os.environ)
    e.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    if env:
        e.update(env)
    p = subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, timeout=timeout_s,
                       stdin=subprocess.DEVNULL if stdin is None else None, input=stdin)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def build_dir():
    return os.path.dirname(CLUBD)


# ---------------------------------------------------------------- man pages

@timeout(60)
def test_man_pages_render(fx):
    if not shutil.which("man"):
        fx.note("man not installed (apt-get install man-db): rendering not checked")
        return
    for page in MAN_PAGES:
        path = os.path.join(ROOT, page)
        check(os.path.isfile(path), "%s is missing" % page)
        rc, out, err = run(["man", "--warnings", "-l", path],
                           env={"MANWIDTH": "80", "LC_ALL": "C.UTF-8", "MAN_KEEP_STDERR": "1"})
        check(rc == 0, "man -l %s exited %d:\n%s" % (page, rc, err))
        check(err.strip() == "", "man --warnings -l %s warned:\n%s" % (page, err))
        check(len(out.splitlines()) > 40, "man -l %s rendered almost nothing:\n%s" % (page, out))


@timeout(60)
def test_clubd_8_matches_the_program(fx):
    """Every --option clubd --help lists, every environment variable the
    daemon reads and every signal it handles is in clubd(8)."""
    page = read("man/clubd.8")
    check(os.access(CLUBD, os.X_OK), "%s not built" % CLUBD)
    rc, out, err = run([CLUBD, "--help"])
    check(rc == 0, "clubd --help exited %d: %s" % (rc, err))
    opts = set(re.findall(r"--([a-z][a-z-]+)", out)) | {"help", "version"}
    check(len(opts) >= 5, "too few options found in clubd --help:\n%s" % out)
    for o in sorted(opts):
        check("\\-\\-" + o.replace("-", "\\-") in page, "clubd(8) does not describe --%s" % o)
    env = set()
    for d in ("daemon", "channels"):
        for fn in os.listdir(os.path.join(ROOT, d)):
            if fn.endswith(".c"):
                env |= set(re.findall(r'getenv\("([A-Z_]+)"\)', read(os.path.join(d, fn))))
    # sd_watchdog_enabled() reads WATCHDOG_USEC: no getenv() in our code
    env |= {"WATCHDOG_USEC", "NOTIFY_SOCKET", "CREDENTIALS_DIRECTORY"}
    envsec = page.split(".SH ENVIRONMENT", 1)[-1].split(".SH ", 1)[0]
    for v in sorted(env):
        check(v in envsec, "clubd(8) ENVIRONMENT does not name %s" % v)
    for s in ("SIGHUP", "SIGTERM", "SIGINT"):
        check(".B %s" % s in page, "clubd(8) SIGNALS does not describe %s" % s)
    for sec in ("SYNOPSIS", "OPTIONS", "SIGNALS", "FILES", "ENVIRONMENT", "EXIT STATUS",
                "SEE ALSO"):
        check(".SH %s" % sec in page, "clubd(8) has no %s section" % sec)


@timeout(90)
def test_conf_5_options_are_the_table(fx):
    """The part of clubd.conf(5) between the markers is exactly what
    tools/gen-man-conf prints from cfg_options[]."""
    if not shutil.which(os.environ.get("CC", "cc")):
        fail("no C compiler to build tools/gen-man-conf.c")
    rc, gen, err = run(["sh", "tools/gen-man-conf"], timeout_s=60)
    check(rc == 0, "tools/gen-man-conf exited %d:\n%s" % (rc, err))
    lines = read("man/clubd.conf.5").split("\n")
    check(lines.count(BEGIN) == 1 and lines.count(END) == 1,
          "man/clubd.conf.5 needs one %r and one %r line" % (BEGIN, END))
    b, e = lines.index(BEGIN), lines.index(END)
    check(b < e, "the END marker comes before BEGIN in man/clubd.conf.5")
    have = lines[b + 1:e]
    want = gen.rstrip("\n").split("\n")
    if have != want:
        diff = "\n".join(difflib.unified_diff(have, want, "man/clubd.conf.5", "gen-man-conf",
                                              lineterm="", n=1))
        fail("man/clubd.conf.5 differs from cfg_options[]; run: sh tools/gen-man-conf --update\n"
             + diff[:4000])

    # The generator covers every row of the table (a bug there would
    # silently shorten the page and its own check alike).
    src = read("daemon/config.c")
    table = src.split("cfg_options[] = {", 1)[1].split("\n};", 1)[0]
    rows = re.findall(r'^\s*OPT\("([a-z_]+)",\s*"([a-z_]+)"', table, re.M)
    check(len(rows) >= 30, "found only %d OPT rows in daemon/config.c" % len(rows))
    check(want.count(".TP") == len(rows), "gen-man-conf printed %d options for %d OPT rows"
          % (want.count(".TP"), len(rows)))
    sections = [ln for ln in want if ln.startswith(".SS ")]
    for sec, name in rows:
        check('.SS "[%s]"' % sec in sections, "no [%s] heading in the generated part" % sec)
        check(".B " + name.replace("-", "\\-") in want, "option %s.%s not in the page" % (sec, name))

    # The channel keys parsed by config.c (not in the table) are written by
    # hand under CHANNEL SECTIONS: every one of them must be there.
    m = re.search(r"channel_common\[\]\s*=\s*\{([^}]*)\}", src)
    check(m is not None, "channel_common[] not found in daemon/config.c")
    keys = re.findall(r'"([a-z_]+)"', m.group(1))
    check(len(keys) >= 3, "channel_common[] parsed as %r" % keys)
    chan = "\n".join(lines).split(".SH CHANNEL SECTIONS", 1)
    check(len(chan) == 2, "clubd.conf(5) has no CHANNEL SECTIONS")
    chan = chan[1].split("\n.SH ", 1)[0].split("\n")
    for k in keys:
        check(".B " + k in chan, "channel key %s is not described in clubd.conf(5)" % k)


# ---------------------------------------------------------------- make install

def make_install(destdir, prefix):
    b = build_dir()
    for prog in ("clubd", "clubctl"):
        check(os.access(os.path.join(b, prog), os.X_OK), "%s/%s not built" % (b, prog))
    # -o: install what is built, never rebuild (a sanitizer build dir must
    # not get objects with the default flags)
    cmd = ["make", "-s", "-o", os.path.join(b, "clubd"), "-o", os.path.join(b, "clubctl"),
           "B=" + b, "install", "DESTDIR=" + destdir, "PREFIX=" + prefix]
    rc, out, err = run(cmd, timeout_s=120)
    check(rc == 0, "%s exited %d:\n%s%s" % (" ".join(cmd), rc, out, err))


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@timeout(120)
def test_make_install_layout(fx):
    dest = os.path.join(fx.tmp, "root")
    make_install(dest, "/usr")
    b = build_dir()
    layout = [
        # (installed, source or None, mode)
        ("usr/sbin/clubd", os.path.join(b, "clubd"), 0o755),
        ("usr/bin/clubctl", os.path.join(b, "clubctl"), 0o755),
        ("etc/clubd/clubd.conf", "config/clubd.conf", 0o640),
        ("etc/clubd/tokens.example", "config/tokens.example", 0o640),
        ("usr/lib/systemd/system/clubd.service", None, 0o644),
        ("usr/lib/sysusers.d/clubd.conf", "systemd/clubd.sysusers", 0o644),
        ("usr/lib/tmpfiles.d/clubd.conf", "systemd/clubd.tmpfiles", 0o644),
        ("usr/share/man/man8/clubd.8", "man/clubd.8", 0o644),
        ("usr/share/man/man5/clubd.conf.5", "man/clubd.conf.5", 0o644),
        ("usr/share/man/man1/clubctl.1", "man/clubctl.1", 0o644),
        ("usr/share/bash-completion/completions/clubctl",
         "tools/clubctl/clubctl.bash-completion", 0o644),
    ]
    for rel, src, want_mode in layout:
        path = os.path.join(dest, rel)
        check(os.path.isfile(path), "make install did not install /%s" % rel)
        check(mode(path) == want_mode, "/%s has mode %o, want %o" % (rel, mode(path), want_mode))
        if src is not None:
            check(filecmp.cmp(path, os.path.join(ROOT, src), shallow=False),
                  "/%s differs from %s" % (rel, src))
    with open(os.path.join(dest, "usr/lib/systemd/system/clubd.service")) as f:
        unit = f.read()
    left = re.findall(r"@[A-Z_]+@", unit)
    check(not left, "unsubstituted placeholders in the installed unit: %r" % left)
    check("ExecStart=/usr/sbin/clubd -c /etc/clubd/clubd.conf" in unit,
          "installed unit does not run /usr/sbin/clubd -c /etc/clubd/clubd.conf")

    # A second install keeps the operator's edited clubd.conf and refreshes
    # everything else.
    conf = os.path.join(dest, "etc/clubd/clubd.conf")
    with open(conf, "a") as f:
        f.write("\n# edited by the operator\n")
    with open(conf) as f:
        edited = f.read()
    os.unlink(os.path.join(dest, "usr/share/man/man8/clubd.8"))
    make_install(dest, "/usr")
    with open(conf) as f:
        check(f.read() == edited, "a second make install overwrote the edited clubd.conf")
    check(os.path.isfile(os.path.join(dest, "usr/share/man/man8/clubd.8")),
          "a second make install did not reinstall clubd.8")

    # The default PREFIX layout: /usr/local, config still in /etc.
    dest2 = os.path.join(fx.tmp, "root-local")
    make_install(dest2, "/usr/local")
    for rel in ("usr/local/sbin/clubd", "usr/local/bin/clubctl", "etc/clubd/clubd.conf",
                "usr/local/lib/systemd/system/clubd.service",
                "usr/local/share/man/man5/clubd.conf.5"):
        check(os.path.isfile(os.path.join(dest2, rel)), "PREFIX=/usr/local: no /%s" % rel)
    with open(os.path.join(dest2, "usr/local/lib/systemd/system/clubd.service")) as f:
        check("ExecStart=/usr/local/sbin/clubd " in f.read(),
              "PREFIX=/usr/local: the unit does not run /usr/local/sbin/clubd")


# ---------------------------------------------------------------- .deb

def copy_tree(dst):
    """The files git knows (tracked, and untracked but not ignored) as they
    are in the work tree, copied to dst."""
    rc, out, err = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    check(rc == 0, "git ls-files failed: %s" % err)
    n = 0
    for rel in out.split("\0"):
        if not rel:
            continue
        src = os.path.join(ROOT, rel)
        if not os.path.lexists(src) or (os.path.isdir(src) and not os.path.islink(src)):
            continue  # deleted in the work tree, or a submodule
        target = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), target)
        else:
            shutil.copy2(src, target)
        n += 1
    check(n > 50, "only %d files copied from the work tree" % n)


def changelog_version():
    first = read("debian/changelog").split("\n", 1)[0]
    m = re.match(r"^clubd \(([^)]+)\) ", first)
    check(m is not None, "debian/changelog does not start with 'clubd (VERSION)': %r" % first)
    return m.group(1)


@timeout(180)
def test_deb_package(fx):
    if ASAN:
        fx.note("package build skipped in the sanitizer run (the normal run builds it)")
        return
    missing = [t for t in ("dpkg-buildpackage", "dh", "dpkg-deb") if not shutil.which(t)]
    if missing:
        fx.note("%s not installed (apt-get install debhelper dpkg-dev): .deb not built"
                % ", ".join(missing))
        return
    version = changelog_version()
    rc, arch, err = run(["dpkg", "--print-architecture"])
    arch = arch.strip()
    check(rc == 0 and arch, "dpkg --print-architecture: %s" % err)
    before = sorted(os.listdir(os.path.join(ROOT, "debian")))

    src = os.path.join(fx.tmp, "src")
    copy_tree(src)
    log = os.path.join(fx.tmp, "dpkg-buildpackage.log")
    jobs = max(1, min(8, os.cpu_count() or 1))
    env = dict(os.environ, DEB_BUILD_OPTIONS="parallel=%d" % jobs)
    with open(log, "wb") as f:
        p = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env,
                           stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                           timeout=150)
    check(p.returncode == 0, "dpkg-buildpackage exited %d:\n%s" % (p.returncode, tail(log, 40)))
    check(sorted(os.listdir(os.path.join(ROOT, "debian"))) == before,
          "the package build changed the work tree's debian/")
    deb = os.path.join(fx.tmp, "clubd_%s_%s.deb" % (version, arch))
    check(os.path.isfile(deb), "no %s; the build made %s" % (os.path.basename(deb),
                                                              sorted(os.listdir(fx.tmp))))

    # control fields, contents, conffiles, maintainer scripts
    rc, out, err = run(["dpkg-deb", "-f", deb, "Package", "Version", "Depends", "Recommends"])
    check(rc == 0, "dpkg-deb -f: %s" % err)
    fields = dict(ln.split(": ", 1) for ln in out.splitlines() if ": " in ln)
    check(fields.get("Package") == "clubd" and fields.get("Version") == version,
          "control fields: %r" % fields)
    check("redis-server" in fields.get("Recommends", ""), "no Recommends: redis-server")
    for lib in ("libuv1", "libhiredis", "libcurl", "libjansson", "libmicrohttpd", "libc6"):
        check(lib in fields.get("Depends", ""), "Depends lacks %s: %r" % (lib, fields.get("Depends")))
    rc, out, err = run(["dpkg-deb", "-c", deb])
    check(rc == 0, "dpkg-deb -c: %s" % err)
    names = set(ln.split()[-1].lstrip(".") for ln in out.splitlines() if ln.strip())
    for want in ("/usr/sbin/clubd", "/usr/bin/clubctl", "/etc/clubd/clubd.conf",
                 "/lib/systemd/system/clubd.service", "/usr/lib/sysusers.d/clubd.conf",
                 "/usr/lib/tmpfiles.d/clubd.conf", "/usr/share/man/man8/clubd.8.gz",
                 "/usr/share/man/man5/clubd.conf.5.gz", "/usr/share/man/man1/clubctl.1.gz",
                 "/usr/share/doc/clubd/copyright"):
        check(want in names, "%s is not in the package" % want)
    ctl = os.path.join(fx.tmp, "DEBIAN")
    rc, _, err = run(["dpkg-deb", "-e", deb, ctl])
    check(rc == 0, "dpkg-deb -e: %s" % err)
    with open(os.path.join(ctl, "conffiles")) as f:
        conffiles = f.read().split()
    check("/etc/clubd/clubd.conf" in conffiles, "clubd.conf is not a conffile: %r" % conffiles)
    with open(os.path.join(ctl, "postinst")) as f:
        postinst = f.read()
    for want in ("systemd-sysusers", "systemd-tmpfiles", "clubd.service"):
        check(want in postinst, "postinst does not mention %s" % want)
    check(postinst.index("systemd-sysusers") < postinst.index("systemd-tmpfiles"),
          "postinst runs systemd-tmpfiles before the clubd user exists")

    # Unpack into a scratch root and run the installed programs from there.
    root = os.path.join(fx.tmp, "scratch")
    rc, _, err = run(["dpkg", "-x", deb, root])
    check(rc == 0, "dpkg -x: %s" % err)
    conf = os.path.join(fx.tmp, "deb.conf")
    write_config(conf, {
        "api": {"listen": "127.0.0.1", "port": str(free_port())},
        "redis": {"host": "127.0.0.1", "port": str(free_port())},
        "outbox": {"dir": fx.outbox},
        "channel.sms": {"driver": "outbox", "timeout": "2s"},
        "channel.email": {"driver": "outbox", "timeout": "2s"},
    })
    clubd = os.path.join(root, "usr/sbin/clubd")
    rc, out, err = run([clubd, "--check-config", "-c", conf])
    check(rc == 0 and "configuration OK (2 channels)" in out,
          "installed clubd --check-config exited %d:\n%s%s" % (rc, out, err))
    rc, out, err = run([clubd, "--version"])
    check(rc == 0 and out.strip() == "clubd " + version.rsplit("-", 1)[0],
          "installed clubd --version says %r, the package is %s" % (out.strip(), version))
    rc, out, err = run([os.path.join(root, "usr/bin/clubctl"), "--version"])
    check(rc == 0 and out.startswith("clubctl "), "installed clubctl --version exited %d: %r %r"
          % (rc, out, err))
    fx.note("built %s (%d KiB)" % (os.path.basename(deb), os.path.getsize(deb) // 1024))


# ---------------------------------------------------------------- systemd

@timeout(60)
def test_systemd_unit(fx):
    if not shutil.which("systemd-analyze"):
        fx.note("systemd-analyze not installed: unit not checked")
        return
    rc, out, err = run(["sh", "tools/check-systemd", "2.0"])
    check(rc == 0, "tools/check-systemd exited %d:\n%s%s" % (rc, out[-4000:], err))
    m = re.search(r"^security: exposure ([0-9.]+) \(max 2\.0\): ok$", out, re.M)
    check(m is not None, "no exposure line in tools/check-systemd output:\n%s" % out[-3000:])
    check(float(m.group(1)) <= 2.0, "exposure %s is above 2.0" % m.group(1))
    fx.note("systemd-analyze security exposure %s" % m.group(1))
