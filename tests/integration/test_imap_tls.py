"""Email replies over TLS: the real clubd polls a real dovecot (Debian's,
started by the test on loopback, tests/fakes/dovecot.py) that serves a
self-signed certificate for 127.0.0.1 made here with `openssl req -x509`.
With [imap] ca_file naming that certificate, imaps:// and STARTTLS on
imap:// both fetch a reply (dovecot logs the login as TLS) and mark it
seen; without it (the system's CAs) the certificate is refused, the poll
fails and the message stays unseen; ca_file with tls = no, or unreadable,
stops the start."""

import imaplib
import os
import signal
import ssl
import subprocess
import time

from harness import check, fail, timeout, wait_until

from dovecot import Dovecot, _free_port


def make_cert(tmp):
    """A self-signed EC certificate for IP 127.0.0.1 (it is its own CA)."""
    cert, key = os.path.join(tmp, "imap-cert.pem"), os.path.join(tmp, "imap-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=clubd test IMAP", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=30)
    os.chmod(key, 0o600)
    return cert, key


class TlsDovecot(Dovecot):
    """The test dovecot with ssl = yes (STARTTLS on the plain port, which
    still takes plain logins for the helpers) and an imaps listener."""

    def __init__(self, tmpdir, cert, key):
        super().__init__(tmpdir)
        self.cert, self.key = cert, key
        self.tls_port = None

    def start(self, timeout_s=15):
        super().start(timeout_s)  # writes the config and starts dovecot without TLS
        conf_path = os.path.join(self.dir, "dovecot.conf")
        with open(conf_path) as f:
            conf = f.read()
        self.tls_port = _free_port()
        old_ssl = "ssl = no\n"
        old_imaps = "  inet_listener imaps {\n    port = 0\n  }\n"
        if old_ssl not in conf or old_imaps not in conf:
            self.stop()
            fail("tests/fakes/dovecot.py's config changed; update TlsDovecot")
        conf = conf.replace(old_ssl, "ssl = yes\nssl_cert = <%s\nssl_key = <%s\n"
                            "ssl_min_protocol = TLSv1.2\n" % (self.cert, self.key))
        conf = conf.replace(old_imaps, "  inet_listener imaps {\n    address = 127.0.0.1\n"
                            "    port = %d\n    ssl = yes\n  }\n" % self.tls_port)
        with open(conf_path, "w") as f:
            f.write(conf)
        self.proc.send_signal(signal.SIGHUP)  # dovecot reloads: TLS and the imaps listener
        ctx = ssl.create_default_context(cafile=self.cert)
        end = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited %s: %s" % (self.proc.returncode, self.tail()))
            try:
                c = imaplib.IMAP4_SSL("127.0.0.1", self.tls_port, ssl_context=ctx, timeout=5)
                c.logout()
                return self
            except (OSError, imaplib.IMAP4.error):
                if time.monotonic() > end:
                    self.stop()
                    raise RuntimeError("dovecot (TLS) did not answer: %s" % self.tail())
                time.sleep(0.05)

    def tls_logins(self):
        """dovecot's log lines of logins over TLS (the helpers log in plain,
        which loopback marks "secured"; only clubd speaks TLS)."""
        with open(self.log, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return [ln for ln in lines
                if "imap-login: Info: Login: user=<%s>," % self.user in ln and ", TLS," in ln]


def mail(frm, text, msgid):
    return ("From: %s\r\nTo: club@example.com\r\nSubject: Re: offer\r\nMessage-ID: <%s>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n"
            % (frm, msgid, text)).encode()


def replies(d, cid):
    x = d.client("viewer").get("/v1/contacts/%s/timeline?limit=50" % cid)
    check(x.status == 200, "timeline -> %r" % x)
    return [e.get("text") for e in x.json["items"] if e.get("type") == "reply"]


def imap_conf(dv, url, **kw):
    c = {"url": url, "username": dv.user, "password_file": dv.password_file, "interval": "1s"}
    c.update(kw)
    return {"imap": c}


@timeout(90)
def test_imaps_and_starttls_with_ca_file(fx):
    r = fx.redis()
    cert, key = make_cert(fx.tmp)
    dv = TlsDovecot(fx.tmp, cert, key).start()
    try:
        # imaps://
        d = fx.clubd(r, overrides=imap_conf(dv, "imaps://127.0.0.1:%d" % dv.tls_port,
                                            ca_file=cert))
        mk = d.client("marketer")
        cid = mk.create_contact({"name": "Tara", "addresses": {"email": "tara@example.com"}})["id"]
        u1 = dv.append(mail("tara@example.com", "over imaps", "tls-1@example.com"))
        wait_until(lambda: dv.seen(u1), 20, "imaps: stored and seen",
                   on_fail=lambda: d.stderr()[-2000:] + dv.tail())
        check(replies(d, cid) == ["over imaps"], "imaps reply: %r" % replies(d, cid))
        wait_until(dv.tls_logins, 5, "clubd's login over TLS in dovecot's log",
                   on_fail=dv.tail)
        d.term()

        # STARTTLS on imap:// (tls = yes is the default)
        n_before = len(dv.tls_logins())
        d2 = fx.clubd(r, overrides=imap_conf(dv, "imap://127.0.0.1:%d" % dv.port, ca_file=cert))
        u2 = dv.append(mail("tara@example.com", "over starttls", "tls-2@example.com"))
        wait_until(lambda: dv.seen(u2), 20, "STARTTLS: stored and seen",
                   on_fail=lambda: d2.stderr()[-2000:] + dv.tail())
        check(sorted(replies(d2, cid)) == ["over imaps", "over starttls"],
              "both replies: %r" % replies(d2, cid))
        wait_until(lambda: len(dv.tls_logins()) > n_before, 5, "a STARTTLS login",
                   on_fail=dv.tail)
    finally:
        dv.stop()


@timeout(90)
def test_untrusted_certificate_refused(fx):
    """Without ca_file the self-signed certificate is not trusted: the poll
    fails (logged with curl's reason), nothing is fetched, the message stays
    unseen; both on imaps:// and with STARTTLS (no fallback to plain IMAP).
    With ca_file but another host name (localhost; the certificate names
    127.0.0.1) the same."""
    r = fx.redis()
    cert, key = make_cert(fx.tmp)
    dv = TlsDovecot(fx.tmp, cert, key).start()
    try:
        for url, ca in (("imaps://127.0.0.1:%d" % dv.tls_port, None),
                        ("imap://127.0.0.1:%d" % dv.port, None),
                        ("imaps://localhost:%d" % dv.tls_port, cert)):
            d = fx.clubd(r, overrides=imap_conf(dv, url, ca_file=ca))
            u = dv.append(mail("x@example.com", "not trusted", "untrusted-%s@example.com"
                               % d.name))
            wait_until(lambda: "poll failed" in d.stderr(), 15, "the poll fails on %s" % url,
                       on_fail=lambda: d.stderr()[-2000:])
            log = d.stderr()
            line = [ln for ln in log.splitlines() if "poll failed" in ln][0]
            check("certificate" in line, "the log names the certificate problem: %s" % line)
            check(not dv.seen(u), "unseen: not fetched over an untrusted connection")
            check(not dv.tls_logins(), "no login: %r" % dv.tls_logins())
            check(not r.client().xlen("clubd:inbound"), "nothing routed")
            d.term()
    finally:
        dv.stop()


@timeout(60)
def test_ca_file_checked(fx):
    """ca_file with tls = no, or a file that cannot be read, stops the start
    with an error naming imap.ca_file."""
    r = fx.redis()
    cert, _ = make_cert(fx.tmp)
    pw = os.path.join(fx.tmp, "pw")
    with open(pw, "w") as f:
        f.write("x\n")
    base = {"username": "u", "password_file": pw}
    for imap in (dict(base, url="imap://127.0.0.1:1", tls="no", ca_file=cert),
                 dict(base, url="imaps://127.0.0.1:1", ca_file=os.path.join(fx.tmp, "nope.pem"))):
        d = fx.clubd(r, overrides={"imap": imap}, start=False)
        try:
            d.start(timeout_s=5)
            started = True
        except AssertionError:
            started = False
        check(not started, "clubd started with %r" % imap)
        check("imap.ca_file" in d.stderr(), "error names imap.ca_file: %s" % d.stderr()[-500:])
