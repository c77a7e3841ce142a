"""clubctl(1) names every clubctl command, and nothing else: the command
tables (tools/clubctl/groups.def and the cmd_*.c tables, as `clubctl help`
prints them) against man/clubctl.1's .SS headings and SYNOPSIS lines, so a
new command or group without a man page section fails here.

Needs no server and no redis-server: it only runs `clubctl help` (which
never reads a config or token) and reads files of the tree.
"""

import os
import re
import subprocess

from harness import CLUBD, ROOT, check, fail, timeout

CLUBCTL = os.path.join(os.path.dirname(CLUBD), "clubctl")
MAN = os.path.join(ROOT, "man", "clubctl.1")
GROUPS_DEF = os.path.join(ROOT, "tools", "clubctl", "groups.def")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")


def clubctl(*args):
    check(os.access(CLUBCTL, os.X_OK), "%s not built" % CLUBCTL)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "HOME": "/nonexistent"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    p = subprocess.run([CLUBCTL] + list(args), capture_output=True, timeout=30, env=env,
                       cwd=ROOT)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    for m in SANITIZER_MARKERS:
        check(m not in err, "sanitizer report from clubctl %s:\n%s" % (" ".join(args), err))
    check(p.returncode == 0, "clubctl %s exited %d:\n%s%s" % (" ".join(args), p.returncode,
                                                              out, err))
    return out


def groups_def():
    names = []
    with open(GROUPS_DEF, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\s*CTL_GROUP\((\w+)\)", line)
            if m:
                names.append(m.group(1))
    check(names, "no CTL_GROUP line in %s" % GROUPS_DEF)
    return names


def command_list(text, groups):
    """(group, command-or-None) pairs from the "Commands:" block of a help text."""
    cmds = []
    lines = text.split("\n")
    check("Commands:" in lines, "no 'Commands:' block in:\n%s" % text)
    for line in lines[lines.index("Commands:") + 1:]:
        if not line.strip():
            break
        words = line.split()
        check(words[0] in groups, "help lists %r, not a group of groups.def: %r" % (words[0], line))
        # "status    show ..." has no subcommand; "contacts get ID  show ..." has one.
        sub = words[1] if len(words) > 1 and re.fullmatch(r"[a-z][a-z0-9-]*", words[1]) \
            and line.index(words[1]) - line.index(words[0]) == len(words[0]) + 1 else None
        cmds.append((words[0], sub))
    return cmds


def roff_plain(s):
    """Roff text without font escapes, with \\- as -."""
    s = re.sub(r"\\f[BIRP]", "", s)
    s = re.sub(r"\\f\(..|\\f\[[^]]*\]", "", s)
    return s.replace("\\-", "-").replace("\\e", "\\")


def man_lines():
    with open(MAN, encoding="utf-8") as f:
        return f.read().split("\n")


def man_headings(lines):
    """(group, command-or-None) of every .SS heading under COMMANDS."""
    out, in_cmds = [], False
    for line in lines:
        if line.startswith(".SH "):
            in_cmds = line.strip() == ".SH COMMANDS"
        elif in_cmds and line.startswith(".SS "):
            words = roff_plain(line[4:]).split()
            check(words, "empty .SS heading in man/clubctl.1")
            sub = words[1] if len(words) > 1 and re.fullmatch(r"[a-z][a-z0-9-]*", words[1]) \
                else None
            out.append((words[0], sub))
    return out


def man_synopsis(lines, groups):
    """group -> set of commands named in the SYNOPSIS ({} for a bare group)."""
    syn, in_syn, last = {}, False, None
    for line in lines:
        if line.startswith(".SH "):
            in_syn = line.strip() == ".SH SYNOPSIS"
            continue
        if not in_syn:
            continue
        if line.startswith(".B "):
            words = roff_plain(line[3:]).strip('"').split()
            last = None
            if words and words[0] in groups:
                last = words[0]
                syn.setdefault(last, set()).update(words[1:2])
        elif line.startswith(".RB {") and last:
            syn[last].update(w for w in roff_plain(line[4:]).split() if w not in "{|}")
            last = None
        else:
            last = last if line.startswith(".RI") else None
    return syn


@timeout(60)
def test_man_page_names_every_command(fx):
    groups = groups_def()
    top = command_list(clubctl("help"), groups)
    listed = {g for g, _ in top}
    missing = [g for g in groups if g not in listed]
    check(not missing, "groups.def groups missing from `clubctl help`: %s" % missing)

    # every group's own help lists the same commands as the overview
    commands = []
    for g in groups:
        text = clubctl("help", g)
        if text.startswith("Usage: clubctl %s" % g):  # a group that is one command (status)
            mine = [(g, None)]
        else:
            mine = command_list(text, groups)
        check(mine == [c for c in top if c[0] == g],
              "`clubctl help %s` lists %s, `clubctl help` %s" % (g, mine,
                                                                [c for c in top if c[0] == g]))
        for _, cmd in mine:
            # and each command has its own help
            clubctl("help", g, *([cmd] if cmd else []))
        commands.extend(mine)
    check(len(commands) > len(groups), "too few commands parsed: %s" % commands)

    lines = man_lines()
    headings = man_headings(lines)
    name = lambda c: c[0] + (" " + c[1] if c[1] else "")
    absent = [name(c) for c in commands if c not in headings]
    check(not absent, "man/clubctl.1 has no .SS section for: %s\n(add one under COMMANDS, "
          "in the style of the others)" % ", ".join(absent))
    stale = [name(h) for h in headings if h not in commands]
    check(not stale, "man/clubctl.1 has .SS sections for commands clubctl does not have: %s"
          % ", ".join(stale))
    dup = sorted({name(h) for h in headings if headings.count(h) > 1})
    check(not dup, "man/clubctl.1 has more than one .SS section for: %s" % ", ".join(dup))

    syn = man_synopsis(lines, groups)
    for g in groups:
        want = {c for gg, c in commands if gg == g and c}
        if g not in syn:
            fail("man/clubctl.1's SYNOPSIS has no line for %s" % g)
        check(syn[g] == want, "man/clubctl.1's SYNOPSIS for %s names %s; clubctl has %s"
              % (g, sorted(syn[g]), sorted(want)))
