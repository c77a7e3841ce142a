#!/usr/bin/python3
"""smtp_sink.py - a scriptable SMTP server for clubd's email tests (aiosmtpd).

Run with Debian's /usr/bin/python3 (python3-aiosmtpd).

  smtp_sink.py serve --dir DIR [--auth USER:PASSWORD_FILE] [--tls CERT KEY]
                     [--tls-max 1.2|1.3] [--tls-tickets N] [--pipelining]
                     [--discard] [--slow S]
      Listens on 127.0.0.1 (a free port, printed as the first stdout line)
      until SIGTERM.  Every accepted message is written, byte for byte as
      received, to the Maildir DIR (tmp/ then renamed into new/) as
      CCCCCC.SSSSSS.sink (C = connection number, S = message number), with
      DIR/meta/<name>.json holding the envelope, the authenticated user,
      the TLS version and SNI name, the HELO name and X-Clubd-Message-Id.  DIR/conns holds the number of
      connections so far.  --auth requires AUTH (PLAIN/LOGIN; plain text is
      allowed: auth_require_tls=False); --tls offers STARTTLS with that
      certificate (--tls-tickets: TLS 1.3 session tickets sent after the
      handshake, OpenSSL's default 2); --pipelining advertises PIPELINING; --discard counts
      messages without writing them (benchmarks).
      Scripted answers by the recipient's local part (prefix match):
        tempfail-rcpt  451 at RCPT          reject-rcpt  550 at RCPT
        drop-rcpt      connection dropped at RCPT
        tempfail-data  451 after the dot   reject-data  554 after the dot
        drop-data      connection dropped after the dot, no reply
        slow-data      reply after --slow seconds (default 5)

  smtp_sink.py parse FILE
      Parse a saved message with the email package and print one JSON
      object: decoded subject and display names (RFC 2047 by
      email.header, so adjacent encoded words join exactly), addresses,
      Message-ID, Date check, List-Unsubscribe*, X-Clubd-Message-Id, the
      parts (type, transfer encoding, charset, decoded content with LF line
      ends), the longest line and every line over 78, bare CR/LF, 8-bit bytes, defects, and how
      often each header occurs.

  smtp_sink.py blast --port PORT --count N [--size BYTES] [--pipeline]
      The sink alone: send N messages over one connection, lock-step like
      libESMTP (or all written at once with --pipeline, the sink's own
      ceiling), and print "messages=N seconds=S rate=R".
"""
import argparse
import asyncio
import email
import email.header
import email.policy
import email.utils
import itertools
import json
import logging
import os
import signal
import socket
import ssl
import sys
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

conn_ids = itertools.count(1)
msg_ids = itertools.count(1)
SNI = {}  # id(ssl object) -> server name the client sent


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


class SinkSMTP(SMTP):
    def connection_made(self, transport):
        first = not hasattr(self, "conn_id")
        super().connection_made(transport)
        if first:
            self.conn_id = next(conn_ids)
            self.session.conn_id = self.conn_id
            opts = self.sink_opts
            opts.conns += 1
            if opts.dir:
                write_atomic(os.path.join(opts.dir, "conns"), b"%d\n" % opts.conns)
        else:
            self.session.conn_id = self.conn_id

    def drop(self):
        t = self._original_transport or self.transport
        if t is not None:
            t.abort()


class Handler:
    def __init__(self, opts):
        self.opts = opts

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.opts.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        lp = address.split("@")[0].lower()
        if lp.startswith("tempfail-rcpt"):
            return "451 4.2.0 Mailbox temporarily unavailable"
        if lp.startswith("reject-rcpt"):
            return "550 5.1.1 No such user here"
        if lp.startswith("drop-rcpt"):
            server.drop()
            await asyncio.sleep(3600)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        lps = [a.split("@")[0].lower() for a in envelope.rcpt_tos]
        if any(lp.startswith("drop-data") for lp in lps):
            server.drop()
            await asyncio.sleep(3600)
        if any(lp.startswith("tempfail-data") for lp in lps):
            return "451 4.3.0 Try again later"
        if any(lp.startswith("reject-data") for lp in lps):
            return "554 5.6.0 Message content rejected"
        if any(lp.startswith("slow-data") for lp in lps):
            await asyncio.sleep(self.opts.slow)
        n = next(msg_ids)
        name = "%06d.%06d.sink" % (session.conn_id, n)
        opts = self.opts
        opts.messages += 1
        if opts.dir and not opts.discard:
            tls_version = sni = None
            if session.ssl:
                obj = session.ssl.get("ssl_object")
                if obj is not None:
                    tls_version = obj.version()
                    sni = SNI.get(id(obj))
            meta = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "conn": session.conn_id,
                "auth_user": (session.auth_data.login.decode("utf-8", "replace")
                              if isinstance(session.auth_data, LoginPassword) else None),
                "tls_version": tls_version,
                "sni": sni,
                "helo": session.host_name,
                "x_clubd_message_id": xclubd(envelope.original_content),
            }
            write_atomic(os.path.join(opts.dir, "meta", name + ".json"),
                         json.dumps(meta).encode())
            tmp = os.path.join(opts.dir, "tmp", name)
            with open(tmp, "wb") as f:
                f.write(envelope.original_content)
            os.rename(tmp, os.path.join(opts.dir, "new", name))
        return "250 2.0.0 Ok: queued as " + name


def xclubd(raw):
    """The X-Clubd-Message-Id header of a raw message, or None."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"x-clubd-message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii", "replace")
    return None


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return authenticator


def serve(opts):
    logging.basicConfig(level=logging.CRITICAL)
    warnings.simplefilter("ignore")
    opts.conns = 0
    opts.messages = 0
    if opts.dir:
        for sub in ("tmp", "new", "cur", "meta"):
            os.makedirs(os.path.join(opts.dir, sub), exist_ok=True)
    kwargs = {}
    if opts.auth:
        user, pwfile = opts.auth.split(":", 1)
        with open(pwfile) as f:
            password = f.read().rstrip("\r\n")
        kwargs.update(authenticator=make_authenticator(user, password),
                      auth_required=True, auth_require_tls=False)
    if opts.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(opts.tls[0], opts.tls[1])
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = (ssl.TLSVersion.TLSv1_2 if opts.tls_max == "1.2"
                               else ssl.TLSVersion.TLSv1_3)

        def sni_cb(obj, name, _ctx):
            SNI[id(obj)] = name
            return None
        ctx.sni_callback = sni_cb
        if opts.tls_tickets is not None:
            ctx.num_tickets = opts.tls_tickets
        kwargs["tls_context"] = ctx

    handler = Handler(opts)

    def factory():
        s = SinkSMTP(handler, hostname="sink.test", **kwargs)
        s.sink_opts = opts
        return s

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()
    return 0


def decoded_mailbox(raw):
    """(display name, address) with RFC 2047 decoding done by email.header,
    which joins adjacent encoded words exactly as the RFC says."""
    if raw is None:
        return None, None
    unfolded = raw.replace("\r\n", "").replace("\n", "")
    text = str(email.header.make_header(email.header.decode_header(unfolded)))
    name, addr = email.utils.parseaddr(text)
    return name, addr


def parse(path):
    raw = open(path, "rb").read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    compat = email.message_from_bytes(raw, policy=email.policy.compat32)
    lines = raw.split(b"\r\n")
    out = {
        "max_line": max(len(l) for l in lines),
        "long_lines": [l.decode("ascii", "replace") for l in lines if len(l) > 78],
        "bare_lf": b"\n" in raw.replace(b"\r\n", b""),
        "bare_cr": b"\r" in raw.replace(b"\r\n", b""),
        "eight_bit": any(b > 127 for b in raw),
        "subject": str(msg["Subject"]) if msg["Subject"] is not None else None,
        "message_id": compat["Message-ID"],
        "date": compat["Date"],
        "x_clubd_message_id": compat["X-Clubd-Message-Id"],
        "list_unsubscribe": (compat["List-Unsubscribe"] or "").replace("\r\n", "") or None,
        "list_unsubscribe_post": compat["List-Unsubscribe-Post"],
        "mime_version": compat["MIME-Version"],
        "content_type": msg.get_content_type(),
        "parts": [],
        "defects": [type(d).__name__ for p in msg.walk() for d in p.defects],
        "header_counts": {},
    }
    try:
        out["date_ok"] = email.utils.parsedate_to_datetime(compat["Date"]) is not None
    except (TypeError, ValueError):
        out["date_ok"] = False
    out["from_name"], out["from_addr"] = decoded_mailbox(compat["From"])
    out["to_name"], out["to_addr"] = decoded_mailbox(compat["To"])
    for k in compat.keys():
        out["header_counts"][k.lower()] = out["header_counts"].get(k.lower(), 0) + 1
    for part in msg.walk():
        if part.is_multipart():
            continue
        content = part.get_content()
        if isinstance(content, bytes):
            content = content.decode("utf-8", "replace")
        out["parts"].append({
            "type": part.get_content_type(),
            "cte": part.get("Content-Transfer-Encoding"),
            "charset": part.get_content_charset(),
            "content": content.replace("\r\n", "\n"),
        })
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def blast(opts):
    """Send opts.count messages on one connection.  Lock-step (wait for
    every reply, like libESMTP) or, with --pipeline, everything written at
    once while a thread reads the replies: the sink's own ceiling."""
    import threading
    s = socket.create_connection(("127.0.0.1", opts.port))
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if not line:
                raise SystemExit("connection closed")
            if line[3:4] != b"-":
                return int(line[:3])

    def cmd(line, want):
        s.sendall(line)
        code = reply()
        if code != want:
            raise SystemExit("%r answered %d" % (line, code))

    body = (b"From: a@example.test\r\nTo: b@example.test\r\nSubject: blast\r\n\r\n"
            + (b"x" * 70 + b"\r\n") * max(1, opts.size // 72))
    if reply() != 220:
        raise SystemExit("no greeting")
    cmd(b"EHLO blast.test\r\n", 250)
    one = (b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
           + body + b".\r\n")
    t0 = time.monotonic()
    if opts.pipeline:
        bad = []

        def reader():
            for _ in range(opts.count):
                codes = (reply(), reply(), reply(), reply())
                if codes != (250, 250, 354, 250):
                    bad.append(codes)
        t = threading.Thread(target=reader)
        t.start()
        for _ in range(opts.count):
            s.sendall(one)
        t.join()
        if bad:
            raise SystemExit("unexpected replies %r" % (bad[0],))
    else:
        for _ in range(opts.count):
            cmd(b"MAIL FROM:<a@example.test>\r\n", 250)
            cmd(b"RCPT TO:<b@example.test>\r\n", 250)
            cmd(b"DATA\r\n", 354)
            cmd(body + b".\r\n", 250)
    dt = time.monotonic() - t0
    cmd(b"QUIT\r\n", 221)
    print("messages=%d seconds=%.3f rate=%.0f" % (opts.count, dt, opts.count / dt))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--dir")
    sv.add_argument("--auth")
    sv.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    sv.add_argument("--tls-max", choices=("1.2", "1.3"), default="1.3")
    sv.add_argument("--tls-tickets", type=int)
    sv.add_argument("--pipelining", action="store_true")
    sv.add_argument("--discard", action="store_true")
    sv.add_argument("--slow", type=float, default=5.0)
    pa = sub.add_parser("parse")
    pa.add_argument("file")
    bl = sub.add_parser("blast")
    bl.add_argument("--port", type=int, required=True)
    bl.add_argument("--count", type=int, default=1000)
    bl.add_argument("--size", type=int, default=1024)
    bl.add_argument("--pipeline", action="store_true")
    opts = ap.parse_args()
    if opts.cmd == "serve":
        return serve(opts)
    if opts.cmd == "parse":
        return parse(opts.file)
    return blast(opts)


if __name__ == "__main__":
    sys.exit(main())
