"""A small SMTP client for tests, run where the test needs it (usually inside a namespace).

    python -m tests.netclient session --host H --port P [--source ADDR] [--helo NAME]
        [--starttls [--cafile F]] [--auth PLAIN|LOGIN --user U --password PW]
        [--mail-from ADDR] [--rcpt ADDR ...] [--raw] [--data FILE|-] [--keep-going] [--timeout S]

prints one JSON line per command: ``{"cmd": "MAIL", "arg": "...", "code": 530, "text": "5.7.0
..."}``. Commands are CONNECT (the greeting), EHLO, STARTTLS, AUTH (the last reply of the
exchange), MAIL, RCPT (one line per recipient), DATA (the 354), MESSAGE (the reply after the
final dot) and QUIT. A command that got no reply has ``"code": null`` and an ``"error"``; the
session ends there. Like a real client it stops after a refused STARTTLS, AUTH or MAIL, and skips
DATA when no recipient was taken (``--keep-going`` sends every command regardless). Without
``--mail-from`` it ends after AUTH, for tests of login alone. DATA bytes get CRLF line ends and
dot-stuffing, as smtplib's ``sendmail`` does. With ``--raw`` the ``--mail-from`` and ``--rcpt``
values go on the wire verbatim after ``MAIL FROM:`` and ``RCPT TO:`` (give the angle brackets
yourself): smtplib would otherwise rewrite forms like a source route ``<@a:b@c>`` to ``<b@c>``.

    python -m tests.netclient guess --host H --port P [--source ADDR] --user U
        (--password PW ... | --passwords FILE|-) [--mechanism PLAIN|LOGIN] [--starttls]
        [--per-connection N] [--stop-on-success] [--sources A,B,...] [--timeout S]

tries each password in turn, reconnecting every N tries (default 1) and after a success, and
prints one JSON object: ``tries``, ``connections``, ``accepted`` (235), ``rejected`` (535),
``other`` (AUTH reply code -> count), ``greeting`` (non-220 banner code -> count), ``refused``
(TCP connection refused), ``disconnected`` (the server hung up before answering), ``accepted_at``
(indexes of the passwords taken), ``elapsed`` (seconds) and the first few ``errors``. With
``--sources`` each new connection binds to the next of those addresses in turn (an attacker
rotating through its range); ``by_source`` counts the connections made from each. ``trail`` has
one ``[time, source, code]`` per try: the wall-clock time its answer came, the address used and
the AUTH reply code (null when there was none: refused, disconnected or a non-220 greeting).

The exit status is 0 whatever the server answered; only bad arguments give 2. Passwords go out
as given (smtplib sends ASCII only). Without ``--cafile`` STARTTLS does not check the
certificate: the tests' certificates are self-signed and name no IP address.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import smtplib
import socket
import ssl
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main", "parse_lines"]


def parse_lines(stdout: str) -> list[dict[str, Any]]:
    """The JSON lines a run printed, as dicts."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _emit(cmd: str, code: int | None, text: bytes | str = "", **extra: Any) -> None:
    print(json.dumps({"cmd": cmd, "code": code, "text": _text(text), **extra}), flush=True)


def _tls_context(cafile: str | None) -> ssl.SSLContext:
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False  # we connect to an address; the chain is what is checked
        return ctx
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _connect(args: argparse.Namespace,
             bind: str | None = None) -> tuple[smtplib.SMTP, int, bytes]:
    """Connect (bound to ``bind``, else ``--source``, when given): the client and the greeting.

    Raises OSError (refused, unreachable, timeout) and SMTPServerDisconnected.
    """
    address = bind or args.source
    source = (address, 0) if address else None
    c = smtplib.SMTP(timeout=args.timeout, source_address=source)
    try:
        code, text = c.connect(args.host, args.port)
    except BaseException:
        c.close()
        raise
    return c, code, text


class _Gone(Exception):
    """The server stopped answering: the session is over."""


def _step(cmd: str, call: Callable[[], tuple[int, bytes]], **extra: Any) -> tuple[int, bytes]:
    """Send one command and print its line; a lost connection prints an error and ends."""
    try:
        code, text = call()
    except (smtplib.SMTPException, OSError) as e:  # disconnected, timed out, TLS failed
        _emit(cmd, None, error=f"{type(e).__name__}: {e}", **extra)
        raise _Gone from e
    _emit(cmd, code, text, **extra)
    return code, text


def _stuff(data: bytes) -> bytes:
    """CRLF line ends, leading dots doubled, and the final dot line: smtplib's own rules."""
    data = re.sub(rb"\r\n|\n|\r", b"\r\n", data)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _read_data(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    with open(source, "rb") as f:
        return f.read()


def _auth(c: smtplib.SMTP, mechanism: str, user: str, password: str) -> tuple[int, bytes]:
    """One AUTH exchange; PLAIN with the initial response, LOGIN with challenges."""
    c.user, c.password = user, password
    handler: Callable[..., str] = c.auth_plain if mechanism == "PLAIN" else c.auth_login
    try:
        return c.auth(mechanism, handler, initial_response_ok=mechanism == "PLAIN")
    except smtplib.SMTPAuthenticationError as e:
        err = e.smtp_error
        return e.smtp_code, err if isinstance(err, bytes) else str(err).encode()


def _starttls(c: smtplib.SMTP, ctx: ssl.SSLContext) -> tuple[int, bytes]:
    """STARTTLS (sent even if not advertised, to see the answer); on 220 the handshake."""
    code, text = c.docmd("STARTTLS")
    if code == 220:
        assert c.sock is not None
        c.sock = ctx.wrap_socket(c.sock, server_hostname=None)
        c.file = None
        # RFC 3207: forget what the server said before TLS; EHLO again.
        c.helo_resp = c.ehlo_resp = None
        c.esmtp_features = {}
        c.does_esmtp = False
    return code, text


def _tls_version(c: smtplib.SMTP) -> str:
    return (c.sock.version() or "") if isinstance(c.sock, ssl.SSLSocket) else ""


def session(args: argparse.Namespace) -> None:
    try:
        c, code, text = _connect(args)
    except (smtplib.SMTPException, OSError) as e:
        _emit("CONNECT", None, error=f"{type(e).__name__}: {e}")
        return
    local = list(c.sock.getsockname()[:2]) if c.sock else []
    _emit("CONNECT", code, text, local=local)
    try:
        if code == 220 or args.keep_going:
            _transaction(c, args)
    except _Gone:
        c.close()
        return
    _quit(c)


def _transaction(c: smtplib.SMTP, args: argparse.Namespace) -> None:
    """EHLO to the final dot; returns early where a real client would give up."""
    keep = args.keep_going
    _step("EHLO", lambda: c.ehlo(args.helo))
    if args.starttls:
        ctx = _tls_context(args.cafile)
        try:
            code, text = _starttls(c, ctx)
        except (smtplib.SMTPException, OSError) as e:
            _emit("STARTTLS", None, error=f"{type(e).__name__}: {e}")
            raise _Gone from e
        _emit("STARTTLS", code, text, tls=_tls_version(c))
        if code == 220:
            _step("EHLO", lambda: c.ehlo(args.helo))
        elif not keep:
            return
    if args.auth:
        code, _ = _step("AUTH", lambda: _auth(c, args.auth, args.user, args.password),
                        mechanism=args.auth)
        if code != 235 and not keep:
            return
    if args.mail_from is None:
        return
    if args.raw:  # verbatim: the test wrote the whole path, brackets and all
        mail: Callable[[], tuple[int, bytes]] = functools.partial(
            c.docmd, "MAIL", f"FROM:{args.mail_from}")
    else:
        mail = functools.partial(c.mail, args.mail_from)
    code, _ = _step("MAIL", mail, arg=args.mail_from)
    if code // 100 != 2 and not keep:
        return
    taken = 0
    for rcpt in args.rcpt:
        call = (functools.partial(c.docmd, "RCPT", f"TO:{rcpt}") if args.raw
                else functools.partial(c.rcpt, rcpt))
        code, _ = _step("RCPT", call, arg=rcpt)
        taken += code // 100 == 2
    if args.data is None or (not taken and not keep):
        return
    code, _ = _step("DATA", lambda: c.docmd("DATA"))
    if code != 354:
        return
    data = _stuff(_read_data(args.data))

    def send() -> tuple[int, bytes]:
        c.send(data)
        return c.getreply()
    _step("MESSAGE", send)


def _quit(c: smtplib.SMTP) -> None:
    try:
        _step("QUIT", c.quit)
    except _Gone:
        pass
    finally:
        c.close()


def _passwords(args: argparse.Namespace) -> list[str]:
    if args.passwords is None:
        return list(args.password or [])
    text = sys.stdin.read() if args.passwords == "-" else open(args.passwords).read()
    return text.splitlines()


def guess(args: argparse.Namespace) -> None:
    passwords = _passwords(args)
    result: dict[str, Any] = {"tries": 0, "connections": 0, "accepted": 0, "rejected": 0,
                              "other": Counter(), "greeting": Counter(), "refused": 0,
                              "disconnected": 0, "accepted_at": [], "errors": [],
                              "by_source": Counter(), "trail": []}
    sources = [a for a in (args.sources or "").split(",") if a] or [args.source or ""]
    source = sources[0]
    ctx = _tls_context(args.cafile) if args.starttls else None
    c: smtplib.SMTP | None = None
    on_this = 0

    def error(e: BaseException) -> None:
        if len(result["errors"]) < 5:
            result["errors"].append(f"{type(e).__name__}: {e}")

    def hang_up() -> None:
        nonlocal c
        if c is not None:
            try:
                c.quit()
            except (smtplib.SMTPException, OSError):
                pass
            c.close()
            c = None

    def note(code: int | None) -> None:
        result["trail"].append([round(time.time(), 4), source, code])

    start = time.monotonic()
    for i, password in enumerate(passwords):
        result["tries"] += 1
        if c is not None and on_this >= args.per_connection:
            hang_up()
        if c is None:
            on_this = 0
            source = sources[result["connections"] % len(sources)]
            try:
                c, code, _ = _connect(args, source or None)
                result["connections"] += 1
                result["by_source"][source] += 1
                if code != 220:
                    result["greeting"][str(code)] += 1
                    note(None)
                    hang_up()
                    continue
                c.ehlo(args.helo)
                if ctx is not None:
                    code, text = _starttls(c, ctx)
                    if code != 220:
                        raise smtplib.SMTPResponseException(code, text)
                    c.ehlo(args.helo)
            except ConnectionRefusedError as e:
                result["refused"] += 1
                error(e)
                note(None)
                continue
            except (smtplib.SMTPException, OSError) as e:
                result["disconnected"] += 1
                error(e)
                note(None)
                if c is not None:
                    c.close()
                c = None
                continue
        on_this += 1
        assert c is not None
        try:
            code, _ = _auth(c, args.mechanism, args.user, password)
        except (smtplib.SMTPException, OSError) as e:
            result["disconnected"] += 1
            error(e)
            note(None)
            c.close()
            c = None
            continue
        note(code)
        if code == 235:
            result["accepted"] += 1
            result["accepted_at"].append(i)
            hang_up()  # logged in: the next try needs a fresh connection
            if args.stop_on_success:
                break
        elif code == 535:
            result["rejected"] += 1
        else:
            result["other"][str(code)] += 1
    hang_up()
    result["elapsed"] = round(time.monotonic() - start, 3)
    print(json.dumps(result), flush=True)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.netclient", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(s: argparse.ArgumentParser) -> None:
        s.add_argument("--host", required=True, help="the gateway's address")
        s.add_argument("--port", required=True, type=int)
        s.add_argument("--source", help="bind to this local address (port chosen by the kernel)")
        s.add_argument("--helo", default="client.example.org", help="the EHLO name")
        s.add_argument("--starttls", action="store_true")
        s.add_argument("--cafile", help="check the server certificate against this CA")
        s.add_argument("--timeout", type=float, default=20.0, help="seconds per socket operation")

    s = sub.add_parser("session", help="one SMTP transaction, one JSON line per command")
    common(s)
    s.add_argument("--auth", type=str.upper, choices=["PLAIN", "LOGIN"])
    s.add_argument("--user", default="")
    s.add_argument("--password", default="")
    s.add_argument("--mail-from", help='the envelope sender ("" for <>)')
    s.add_argument("--rcpt", action="append", default=[], help="a recipient (repeatable)")
    s.add_argument("--data", help="the message: a file, or - for stdin")
    s.add_argument("--keep-going", action="store_true", help="send every command regardless")
    s.add_argument("--raw", action="store_true",
                   help="send --mail-from and --rcpt verbatim (brackets included)")
    s.set_defaults(run=session)

    g = sub.add_parser("guess", help="try passwords for one login, print counts as JSON")
    common(g)
    g.add_argument("--user", required=True)
    g.add_argument("--mechanism", type=str.upper, choices=["PLAIN", "LOGIN"], default="PLAIN")
    g.add_argument("--password", action="append", help="a password to try (repeatable)")
    g.add_argument("--passwords", help="a file of passwords, one a line, or - for stdin")
    g.add_argument("--per-connection", type=int, default=1, help="tries before reconnecting")
    g.add_argument("--stop-on-success", action="store_true")
    g.add_argument("--sources", help="comma-separated addresses; each connection binds to the "
                                     "next in turn (overrides --source)")
    g.set_defaults(run=guess)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "session" and args.auth and not args.user:
        _parser().error("--auth needs --user (and --password)")
    if getattr(args, "per_connection", 1) < 1:
        _parser().error("--per-connection must be at least 1")
    socket.setdefaulttimeout(args.timeout)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
