"""The relay battery: every recipient and sender form an open-relay probe tries, on both sides.

A client in a network namespace (not loopback, so neither trusted nor allowed to log in without
TLS) sends each form of one table to the gateway: the MX side must take mail only for the
council and refuse every local part that a mailbox server could read as a route onward; the
submission side must take mail only from a login or a trusted network, as an address that client
may use. Each row names the reply it must get: accepted (any 2xx) or refused with which code and
enhanced code. Every form gets its own connection, sent exactly as written (``netclient --raw``:
smtplib would rewrite a source route), and what the MX side accepts must reach the next hop byte
for byte as the client wrote it.

Then the same MX forms go through the gateway to a real Postfix that would relay them: the
council domain is in its ``mydestination``, the gateway's address (loopback) in its
``mynetworks``, and the old routing conventions are on (``allow_percent_hack``,
``swap_bangpath``, ``resolve_dequoted_address``, as Postfix ships them). Every domain that is not
the council's is "outside": ``relayhost`` points at a recording SMTP sink on loopback, so a relay
attempt is a message arriving there instead of a DNS lookup that fails somewhere. After the run
Postfix's queue must be empty, its log must show deliveries to its own Maildirs only, and the
outside sink must have received nothing. Last, the same forms are handed to Postfix directly (as
the gateway would, from loopback), which shows that this Postfix does relay the routing forms:
the gateway's refusals are what stands between them and the outside.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP as AioSMTP

from gateway.people.users import UsersFile
from tests.certkit import openssl_self_signed
from tests.conftest import SinkHandler, SmtpSink, build_config, running_gateway
from tests.helpers import in_thread, make_message
from tests.netns import NetNs, netns_fixture  # noqa: F401
from tests.postfix import DOMAIN, PostfixInstance, poll

D = DOMAIN  # stanion-pc.gov.uk, the council
COUNCILLOR = f"cllr.jones@{D}"
PASSWORD = "correct horse battery"
RESIDENT = "resident@example.org"
# A pattern the IT volunteer allowed: an old mailbox whose quoted name has a space in it.
ALLOWED = r'"parish [a-z]+"'


# ---------------------------------------------------------------------- the table

@dataclass(frozen=True)
class Expect:
    """The reply a form must get. ``code`` 250 means accepted (any 2xx); otherwise the code,
    the enhanced codes that are right (two only where either reading is), and a phrase the
    sentence must contain."""

    code: int
    enhanced: tuple[str, ...] = ()
    words: str = ""

    @property
    def accepted(self) -> bool:
        return self.code // 100 == 2

    def matches(self, code: int | None, text: str) -> bool:
        if code is None:
            return False
        if self.accepted:
            return code // 100 == 2
        return (code == self.code and text.split(" ", 1)[0] in self.enhanced
                and self.words.lower() in text.lower())

    def __str__(self) -> str:
        if self.accepted:
            return "accepted"
        words = f' "...{self.words}..."' if self.words else ""
        return f"{self.code} {'|'.join(self.enhanced)}{words}"


OK = Expect(250)
ROUTE = Expect(550, ("5.1.3",))                    # a local part that routes onward
SOURCE_ROUTE = Expect(550, ("5.1.3",), "source route")
SYNTAX = Expect(553, ("5.1.3",))                   # not RFC 5321 syntax at all
RELAY = Expect(550, ("5.7.1",), "relay")           # not a council domain
# An address literal is RFC 5321 syntax but not the council's domain: a syntax refusal or a
# relay refusal are both a right answer; what matters is that it is refused for good.
LITERAL = Expect(550, ("5.7.1",)), Expect(553, ("5.1.3",))
LOGIN_FIRST = Expect(530, ("5.7.0",))
NOT_YOURS = Expect(553, ("5.7.1",))
BAD_SENDER = Expect(501, ("5.1.7",))


@dataclass(frozen=True)
class Case:
    """One row: the client, MAIL FROM and RCPT TO as they go on the wire, the command whose
    reply is checked (``probe``) and what it must be. A MAIL probe that must be accepted also
    needs its RCPT taken: the form has to go all the way."""

    side: str      # "mx" (inbound) or "submission" (outbound)
    client: str    # "stranger" (untrusted), "office" (trusted network), "councillor" (logged in)
    mail_from: str
    rcpt: str
    probe: str     # "MAIL" or "RCPT"
    expect: Expect | tuple[Expect, ...]
    why: str

    @property
    def form(self) -> str:
        return self.rcpt if self.probe == "RCPT" else self.mail_from

    @property
    def name(self) -> str:
        return f"{self.side}/{self.client}/{self.probe} {self.form}"

    def options(self) -> tuple[Expect, ...]:
        return self.expect if isinstance(self.expect, tuple) else (self.expect,)

    @property
    def accepted(self) -> bool:
        return all(e.accepted for e in self.options())


def mx(rcpt: str, expect: Expect | tuple[Expect, ...], why: str, *,
       wire: str | None = None) -> Case:
    """A recipient form on the MX side, from a stranger (``wire``: when not in brackets)."""
    return Case("mx", "stranger", f"<{RESIDENT}>", wire or f"<{rcpt}>", "RCPT", expect, why)


def mx_from(sender: str, why: str) -> Case:
    return Case("mx", "stranger", f"<{sender}>", f"<clerk@{D}>", "MAIL", OK, why)


def sub_from(client: str, sender: str, expect: Expect, why: str) -> Case:
    return Case("submission", client, f"<{sender}>", f"<{RESIDENT}>", "MAIL", expect, why)


def sub_to(client: str, rcpt: str, why: str) -> Case:
    sender = COUNCILLOR if client == "councillor" else f"clerk@{D}"
    return Case("submission", client, f"<{sender}>", f"<{rcpt}>", "RCPT", OK, why)


TABLE: tuple[Case, ...] = (
    # --- MX side, accepted: the council's own mailboxes, however they are spelt
    mx(f"clerk@{D}", OK, "the clerk"),
    mx("Clerk@STANION-PC.GOV.UK", OK, "domains are case-blind"),
    mx("clerk@Stanion-PC.Gov.UK", OK, "mixed case"),
    mx(f'"clerk"@{D}', OK, "needless quotes, kept as written"),
    mx(f'"john.smith"@{D}', OK, "quoted dot-atom"),
    mx(f'"jo\\"hn"@{D}', OK, "an escaped quote routes nowhere"),
    mx(f'"o\'brien"@{D}', OK, "quoted apostrophe"),
    mx(f"clerk+planning@{D}", OK, "sub-address"),
    mx(f'"parish clerk"@{D}', OK, "allowed_local_parts lets this pattern in"),
    mx(f'"Parish Clerk"@{D}', OK, "allowed_local_parts matches case-blind"),
    mx(f"clerk@{D}", OK, "no angle brackets", wire=f"clerk@{D}"),
    mx(f'"john.smith"@{D}', OK, "no angle brackets, quoted", wire=f'"john.smith"@{D}'),
    # --- MX side: local parts a mailbox server reads as a route onward
    mx(f"user%evil.example@{D}", ROUTE, "percent hack"),
    mx(f"evil.example!user@{D}", ROUTE, "bang path"),
    mx("USER%EVIL.EXAMPLE@STANION-PC.GOV.UK", ROUTE, "percent hack, upper case"),
    mx(f"clerk%{D}@{D}", ROUTE, "percent hack back to the council is still a route"),
    mx(f"%evil.example@{D}", ROUTE, "percent hack, empty user"),
    mx(f"user!@{D}", ROUTE, "bang path, empty host"),
    mx(f"evil.example!user%{D}@{D}", ROUTE, "bang and percent together"),
    mx(f'"user@evil.example"@{D}', ROUTE, "quoted address"),
    mx(f'"user%evil.example"@{D}', ROUTE, "quoted percent hack"),
    mx(f'"evil.example!user"@{D}', ROUTE, "quoted bang path"),
    mx(f'"user\\"@evil.example"@{D}', ROUTE, "escaped quote before an @"),
    mx(f'"user\\@evil.example"@{D}', ROUTE, "escaped @"),
    mx(f'"<user@evil.example>"@{D}', ROUTE, "quoted angle address"),
    mx(f'"user@evil.example x"@{D}', ROUTE, "quoted address and a space"),
    mx(f'"@evil.example:user"@{D}', ROUTE, "quoted source route"),
    mx(f'"john smith"@{D}', ROUTE, "a space, not the allowed pattern"),
    mx(f'"john\\ smith"@{D}', ROUTE, "an escaped space is a space"),
    mx(f'"parish clerk x"@{D}', ROUTE, "the allowed pattern must match the whole local part"),
    mx(f"user%evil.example@{D}", ROUTE, "percent hack, no brackets",
       wire=f"user%evil.example@{D}"),
    mx(f'"user@evil.example"@{D}', ROUTE, "quoted address, no brackets",
       wire=f'"user@evil.example"@{D}'),
    # --- MX side: source routes (RFC 5321 syntax, obsolete, and a route onward)
    mx(f"@relay.evil.example:clerk@{D}", SOURCE_ROUTE, "source route"),
    mx(f"@a.example,@b.example:clerk@{D}", SOURCE_ROUTE, "two-hop source route"),
    mx(f"@{D}:user@evil.example", (SOURCE_ROUTE, RELAY), "source route through the council"),
    # --- MX side: not RFC 5321 syntax
    mx(f'"john\tsmith"@{D}', SYNTAX, "a raw tab is not allowed even in quotes"),
    mx(f"clerk@{D}.", SYNTAX, "trailing dot"),
    mx("clerk@STANION-PC.GOV.UK.", SYNTAX, "trailing dot, upper case"),
    mx("user@evil.example.", SYNTAX, "trailing dot, another domain"),
    mx(f"user@evil.example@{D}", SYNTAX, "two @ signs"),
    mx(f"clerk@{D}@evil.example", SYNTAX, "two @ signs, ours first"),
    mx(f"clerk@{D}%evil.example", SYNTAX, "percent in the domain"),
    # --- MX side: address literals
    mx("clerk@[127.0.0.1]", LITERAL, "the next hop's own address: local to Postfix"),
    mx("user@[192.0.2.1]", LITERAL, "some other server"),
    mx("clerk@[IPv6:::1]", LITERAL, "IPv6 literal"),
    # --- MX side: other domains
    mx("user@evil.example", RELAY, "another domain"),
    mx('"clerk"@evil.example', RELAY, "quoted, another domain"),
    mx("user%evil.example@evil.example", RELAY, "percent hack at another domain"),
    mx(f"clerk@mail.{D}", RELAY, "a sub-domain is not the council domain"),
    mx(f"clerk@{D}.evil.example", RELAY, "the council domain as a prefix"),
    mx(f"clerk@x{D}", RELAY, "the council domain as a suffix"),
    mx("clerk@evil-stanion-pc.gov.uk", RELAY, "a look-alike"),
    # --- MX side: senders are not routed by the gateway; outside mail comes in
    mx_from("", "null sender: bounces must come in"),
    mx_from(f"clerk@{D}", "a stranger claiming the council: SPF and DMARC decide, later"),
    mx_from("user%evil.example@example.org", "a routing sender is the sender's business"),
    # --- submission side, stranger (no login, untrusted): nothing at all
    sub_from("stranger", f"clerk@{D}", LOGIN_FIRST, "log in first"),
    sub_from("stranger", "", LOGIN_FIRST, "log in first, null sender"),
    sub_from("stranger", RESIDENT, LOGIN_FIRST, "log in first, outside sender"),
    # --- submission side, the office (trusted network, no login): any council address
    sub_from("office", f"clerk@{D}", OK, "a council address"),
    sub_from("office", "Clerk@STANION-PC.GOV.UK", OK, "case-blind domain"),
    sub_from("office", "", NOT_YOURS, "no null sender from inside"),
    sub_from("office", "someone@evil.example", NOT_YOURS, "another domain"),
    sub_from("office", f"clerk@mail.{D}", NOT_YOURS, "a sub-domain"),
    sub_from("office", f"clerk@{D}.evil.example", NOT_YOURS, "the council domain as a prefix"),
    sub_from("office", f'"clerk@{D}"@evil.example', NOT_YOURS, "quoted council address"),
    sub_from("office", f"clerk%{D}@evil.example", NOT_YOURS, "percent hack to the council"),
    sub_from("office", f"clerk@{D}.", BAD_SENDER, "trailing dot"),
    # Sending out to anywhere is what the submission side is for: a logged-in or trusted
    # client writing to a routing address elsewhere is not relaying, it is their mail.
    sub_to("office", RESIDENT, "ordinary outgoing mail"),
    sub_to("office", "user%evil.example@example.org", "percent hack, outbound"),
    sub_to("office", "evil.example!user@example.org", "bang path, outbound"),
    sub_to("office", '"user@evil.example"@example.org', "quoted address, outbound"),
    # --- submission side, a logged-in councillor: only the login's own addresses
    sub_from("councillor", COUNCILLOR, OK, "the login's own address"),
    sub_from("councillor", "CLLR.JONES@STANION-PC.GOV.UK", OK, "its own address, any case"),
    sub_from("councillor", f"clerk@{D}", OK, "an address it may send as"),
    sub_from("councillor", f"mayor@{D}", NOT_YOURS, "another councillor's address"),
    sub_from("councillor", "", NOT_YOURS, "no null sender"),
    sub_from("councillor", "cllr.jones@evil.example", NOT_YOURS, "its name at another domain"),
    sub_from("councillor", f"cllr.jones@{D}.evil.example", NOT_YOURS, "council domain prefix"),
    sub_from("councillor", f'"{COUNCILLOR}"@evil.example', NOT_YOURS, "its address quoted"),
    sub_from("councillor", f"cllr.jones%{D}@{D}", NOT_YOURS, "its address as a route"),
    sub_from("councillor", f"cllr.jones@mail.{D}", NOT_YOURS, "a sub-domain"),
    sub_to("councillor", "user%evil.example@example.org", "percent hack, outbound"),
    sub_to("councillor", '"user@evil.example"@example.org', "quoted address, outbound"),
    sub_to("councillor", "evil.example!user@example.org", "bang path, outbound"),
    sub_to("councillor", f"user%evil.example@{D}", "percent hack to a council address"),
)
MX_CASES = tuple(c for c in TABLE if c.side == "mx")
SUBMISSION_CASES = tuple(c for c in TABLE if c.side == "submission")


def _unbracketed(wire: str) -> str:
    return wire[1:-1] if wire.startswith("<") and wire.endswith(">") else wire


def _mailbox(wire: str) -> tuple[str, str]:
    """(local part exactly as on the wire, domain in lower case) of a path or ``TO:<path>``."""
    local, _, domain = _unbracketed(wire.removeprefix("TO:")).rpartition("@")
    return local, domain.lower()


def _expected(case: Case) -> str:
    return " or ".join(str(e) for e in case.options())


# ---------------------------------------------------------------------- a sink that keeps the wire

class _WireSMTP(AioSMTP):
    """aiosmtpd as the sink runs it, also keeping each MAIL and RCPT argument as it arrived
    (aiosmtpd's parsed address drops quotes it finds needless)."""

    async def smtp_MAIL(self, arg: str) -> None:
        self.event_handler.wire_mail.append(arg)
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str) -> None:
        self.event_handler.wire_rcpt.append(arg)
        await super().smtp_RCPT(arg)


@dataclass
class _WireHandler(SinkHandler):
    wire_mail: list[str] = field(default_factory=list)
    wire_rcpt: list[str] = field(default_factory=list)


class WireSink(SmtpSink):
    """The conftest's recording sink, with the raw MAIL/RCPT arguments in ``handler``."""

    def __init__(self) -> None:
        super().__init__()
        self.handler: _WireHandler = _WireHandler()

    async def start(self) -> None:
        self.handler.arrived = asyncio.Condition()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _WireSMTP(self.handler, enable_SMTPUTF8=True, hostname="sink.test"),
            host=self.host, port=0)
        self.port = self._server.sockets[0].getsockname()[1]


@pytest.fixture
async def smtp_sink() -> AsyncIterator[WireSink]:
    """The next hop (overrides the conftest's ``smtp_sink`` with one that keeps the wire)."""
    sink = WireSink()
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return openssl_self_signed(tmp_path_factory.mktemp("tls"))


# ---------------------------------------------------------------------- running rows

def _config_overrides(netns: NetNs, inbound_hop: str, cert: tuple[Path, Path]) -> dict[str, Any]:
    return {
        "inbound": {"listen": f"{netns.host_v4}:0", "deliver_to": inbound_hop,
                    "allowed_local_parts": [ALLOWED]},
        "outbound": {"listen": f"{netns.host_v4}:0",
                     "trusted_networks": [f"{netns.client_v4[1]}/32"]},
        "tls": {"cert_file": str(cert[0]), "key_file": str(cert[1])},
    }


def _source(netns: NetNs, client: str) -> str:
    return {"stranger": netns.client_v4[0], "office": netns.client_v4[1],
            "councillor": netns.client_v4[2]}[client]


async def _run(netns: NetNs, ports: dict[str, int], cert: Path, case: Case,
               gate: asyncio.Semaphore, *, data: bytes | None = None) -> list[dict[str, Any]]:
    args = ["session", "--raw", "--source", _source(netns, case.client), "--host",
            netns.host_v4, "--port", str(ports[case.side]), "--mail-from", case.mail_from,
            "--rcpt", case.rcpt]
    if case.client == "councillor":
        args += ["--starttls", "--cafile", str(cert), "--auth", "PLAIN", "--user", COUNCILLOR,
                 "--password", PASSWORD]
    if data is not None:
        args += ["--data", "-"]
    async with gate:
        return await netns.aclient(*args, input=data)


async def _run_all(netns: NetNs, ports: dict[str, int], cert: Path, cases: Sequence[Case],
                   *, with_data: bool = False) -> list[list[dict[str, Any]]]:
    # A few clients at a time: two CPUs, argon2 for logins, and the per-network connection limit.
    gate = asyncio.Semaphore(5)
    return await asyncio.gather(*(
        _run(netns, ports, cert, case, gate,
             data=make_message(RESIDENT, f"clerk@{D}", subject=f"row {i}") if with_data
             else None)
        for i, case in enumerate(cases)))


def _lines(lines: list[dict[str, Any]], cmd: str) -> dict[str, Any] | None:
    found = [line for line in lines if line["cmd"] == cmd]
    return found[-1] if found else None


def _got(line: dict[str, Any] | None) -> str:
    return "no such command" if line is None else f"{line['code']} {line['text']}"


def _mismatch(case: Case, lines: list[dict[str, Any]]) -> str | None:
    """None when the row got its reply; else what it got instead."""
    if case.client == "councillor":
        auth = _lines(lines, "AUTH")
        if auth is None or auth["code"] != 235:
            return f"login failed: {_got(auth)}"
    mail, rcpt = _lines(lines, "MAIL"), _lines(lines, "RCPT")
    if case.probe == "RCPT" and (mail is None or mail["code"] // 100 != 2):
        return f"MAIL refused first: {_got(mail)}"
    probed = mail if case.probe == "MAIL" else rcpt
    if probed is None or not any(e.matches(probed["code"], probed["text"])
                                 for e in case.options()):
        return _got(probed)
    if case.probe == "MAIL" and case.accepted and (rcpt is None or rcpt["code"] // 100 != 2):
        return f"sender taken, but then RCPT {_got(rcpt)}"
    return None


def _report(cases: Sequence[Case], results: Sequence[list[dict[str, Any]]]) -> list[str]:
    out = []
    for case, lines in zip(cases, results, strict=True):
        wrong = _mismatch(case, lines)
        if wrong is not None:
            out.append(f"{case.name!r} ({case.why}): expected {_expected(case)}, got {wrong}")
    return out


# ---------------------------------------------------------------------- the table itself

def test_the_table_covers_the_forms_an_open_relay_probe_tries() -> None:
    forms = {c.form for c in TABLE}
    for needed in (f"<user%evil.example@{D}>", f"<evil.example!user@{D}>",
                   f'<"user@evil.example"@{D}>', f'<"user%evil.example"@{D}>',
                   f'<"evil.example!user"@{D}>', f'<"user\\"@evil.example"@{D}>',
                   f'<"<user@evil.example>"@{D}>', f'<"user@evil.example x"@{D}>',
                   f"<@relay.evil.example:clerk@{D}>", "<user@evil.example>",
                   "<Clerk@STANION-PC.GOV.UK>", f"<clerk@{D}.>", f"<clerk@mail.{D}>",
                   "<user@[192.0.2.1]>", "<>", f'<"parish clerk"@{D}>'):
        assert needed in forms, needed
    assert len(TABLE) >= 40
    assert {(c.side, c.client) for c in TABLE} == {
        ("mx", "stranger"), ("submission", "stranger"), ("submission", "office"),
        ("submission", "councillor")}
    assert len({c.name for c in TABLE}) == len(TABLE), "every row is a different form"


# ---------------------------------------------------------------------- both sides, recording sink

async def test_mx_side_takes_only_council_mailboxes_and_passes_them_on_as_written(
        tmp_path: Path, netns: NetNs, smtp_sink: WireSink,
        certificate: tuple[Path, Path]) -> None:
    config = build_config(tmp_path, _config_overrides(netns, smtp_sink.url, certificate))
    async with running_gateway(config) as gw:
        ports = {"mx": gw.inbound_port, "submission": gw.outbound_port}
        results = await _run_all(netns, ports, certificate[0], MX_CASES)
    problems = _report(MX_CASES, results)
    # What the MX side took reached the next hop with its local part exactly as the client
    # wrote it (the domain may come in DNS's lower case: it is the one that was checked), and
    # quoted forms byte for byte; nothing it refused reached the next hop at all.
    taken = [case for case, lines in zip(MX_CASES, results, strict=True)
             if (line := _lines(lines, "RCPT")) is not None and line["code"] // 100 == 2]
    wire = smtp_sink.handler.wire_rcpt
    expected, arrived = Counter(_mailbox(c.rcpt) for c in taken), Counter(map(_mailbox, wire))
    for local, domain in sorted((expected - arrived).elements()):
        problems.append(f"next hop did not get local part {local!r} (@{domain}) as written; "
                        f"it got {sorted(wire)}")
    for local, domain in sorted((arrived - expected).elements()):
        problems.append(f"next hop got {local!r}@{domain}, which no client wrote or was "
                        f"refused")
    quoted = Counter(f"TO:<{_unbracketed(c.rcpt)}>" for c in taken
                     if _unbracketed(c.rcpt).startswith('"'))
    for rcpt in sorted((quoted - Counter(wire)).elements()):
        problems.append(f"quoted form {rcpt!r} did not reach the next hop byte for byte")
    null = [m for m in smtp_sink.handler.wire_mail if m.split(" ", 1)[0] == "FROM:<>"]
    if not null:
        problems.append(f"the null sender did not reach the next hop: "
                        f"{smtp_sink.handler.wire_mail}")
    assert not problems, "\n".join(problems)


async def test_submission_side_takes_only_logins_and_trusted_networks_as_their_addresses(
        tmp_path: Path, netns: NetNs, certificate: tuple[Path, Path]) -> None:
    UsersFile(tmp_path / "users").add(COUNCILLOR, PASSWORD, (COUNCILLOR, f"clerk@{D}"))
    config = build_config(tmp_path, _config_overrides(netns, "maildir:" + str(tmp_path / "mb"),
                                                      certificate))
    async with running_gateway(config) as gw:
        ports = {"mx": gw.inbound_port, "submission": gw.outbound_port}
        results = await _run_all(netns, ports, certificate[0], SUBMISSION_CASES)
    problems = _report(SUBMISSION_CASES, results)
    assert not problems, "\n".join(problems)


async def test_without_allowed_local_parts_the_pattern_is_refused(
        tmp_path: Path, netns: NetNs, smtp_sink: WireSink) -> None:
    config = build_config(tmp_path, {
        "inbound": {"listen": f"{netns.host_v4}:0", "deliver_to": smtp_sink.url}})
    cases = [mx(f'"parish clerk"@{D}', ROUTE, "no pattern allows it"),
             mx(f'"Parish Clerk"@{D}', ROUTE, "no pattern allows it")]
    async with running_gateway(config) as gw:
        ports = {"mx": gw.inbound_port}
        results = await _run_all(netns, ports, Path("-"), cases)
    assert not _report(cases, results), _report(cases, results)
    assert smtp_sink.handler.wire_rcpt == []


# ---------------------------------------------------------------------- a real Postfix behind

_OPEN_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
meta_directory = /etc/postfix
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
syslog_name = postfix-relay-battery
myhostname = mail.{domain}
mydomain = {domain}
myorigin = {domain}
# The council's mail server proper: its domain is local here ...
mydestination = {domain}
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
# ... and the gateway (connecting from loopback) may relay anywhere.
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = $myhostname ESMTP
smtpd_peername_lookup = no
# The old routing conventions, on as Postfix ships them: user%evil.example@{domain},
# evil.example!user@{domain} and "user@evil.example"@{domain} all mean user@evil.example here.
allow_percent_hack = yes
swap_bangpath = yes
resolve_dequoted_address = yes
# The mailboxes: local addresses go into Maildirs (virtual(8) does that without unix users).
local_transport = virtual
local_recipient_maps = $virtual_mailbox_maps
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = texthash:{root}/conf/mailboxes
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
# Everything else is outside: one recording sink on loopback plays every other domain.
relayhost = [127.0.0.1]:{relay_port}
smtp_dns_support_level = disabled
"""


class OpenPostfix(PostfixInstance):
    """tests.postfix's instance as the council's mailbox server that trusts the gateway: the
    council domain in ``mydestination``, loopback in ``mynetworks``, ``relayhost`` the outside
    sink (``relay_port``)."""

    def _write_config(self) -> None:
        super()._write_config()  # directories, master.cf and the mailbox list stay as they are
        st = (self.root / "mail").stat()  # owned by nobody: virtual(8) delivers as them
        (self.conf / "main.cf").write_text(_OPEN_MAIN_CF.format(
            root=self.root, domain=DOMAIN, relay_port=self.relay_port, uid=st.st_uid,
            gid=st.st_gid))

    def queue(self) -> list[dict[str, Any]]:
        """What is still queued (``postqueue -j``: one JSON object a message)."""
        done = subprocess.run(["postqueue", "-c", str(self.conf), "-j"], capture_output=True,
                              text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise AssertionError(f"postqueue failed: {done.stderr}")
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def delivered(self) -> dict[str, int]:
        """Mailbox -> messages in its Maildir."""
        mail = self.root / "mail"
        return {p.name: len(list((p / "new").iterdir())) for p in sorted(mail.iterdir())
                if (p / "new").is_dir()}

    def deliveries(self) -> list[str]:
        """The log lines that record a delivery attempt (``status=``)."""
        return [line for line in self.log().splitlines() if " status=" in line]


@pytest.fixture
async def outside() -> AsyncIterator[SmtpSink]:
    """Every domain that is not the council's: where an open relay's mail would go."""
    sink = SmtpSink()
    await sink.start()
    yield sink
    await sink.stop()


@pytest.fixture
async def open_postfix(outside: SmtpSink) -> AsyncIterator[OpenPostfix]:
    pf = OpenPostfix(mailboxes=["clerk", "john.smith"], relay_port=outside.port)
    try:
        await in_thread(pf.start)
        yield pf
    finally:
        try:
            await in_thread(pf.stop)
        finally:
            pf.remove()


async def _drained(pf: OpenPostfix, deadline: float = 30.0) -> None:
    """Wait (a deadline, not a sleep) until Postfix has nothing left in its queue."""
    await in_thread(poll, lambda: not pf.queue(), deadline,
                    lambda: f"Postfix still has mail queued after {deadline:.0f}s: "
                            f"{pf.queue()}\n--- maillog ---\n{pf.log()}")


def _direct(port: int, cases: Sequence[Case]) -> list[int | None]:
    """Hand each form to Postfix as the gateway would (from loopback, verbatim): RCPT codes."""
    codes: list[int | None] = []
    for i, case in enumerate(cases):
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as c:
            c.ehlo("gw.stanion-pc.gov.uk")
            c.docmd("MAIL", f"FROM:{case.mail_from}")
            code, _ = c.docmd("RCPT", f"TO:{case.rcpt}")
            codes.append(code)
            if code // 100 == 2:
                c.docmd("DATA")
                body = make_message(RESIDENT, f"clerk@{D}", subject=f"direct {i}")
                c.send(body + b".\r\n")
                c.getreply()
    return codes


def _subjects(sink: SmtpSink) -> list[str]:
    return [str(message_from_bytes(m.data, policy=default_policy)["subject"])
            for m in sink.messages]


async def test_postfix_behind_the_mx_side_relays_none_of_the_forms(
        tmp_path: Path, netns: NetNs, open_postfix: OpenPostfix, outside: SmtpSink) -> None:
    pf = open_postfix
    config = build_config(tmp_path, {
        "inbound": {"listen": f"{netns.host_v4}:0", "deliver_to": f"smtp://127.0.0.1:{pf.port}",
                    "allowed_local_parts": [ALLOWED]}})
    async with running_gateway(config) as gw:
        results = await _run_all(netns, {"mx": gw.inbound_port}, Path("-"), MX_CASES,
                                 with_data=True)
        await _drained(pf)
    problems = []
    stored = 0
    for case, lines in zip(MX_CASES, results, strict=True):
        rcpt, message = _lines(lines, "RCPT"), _lines(lines, "MESSAGE")
        if not case.accepted:
            # Refused by the gateway for good, before Postfix saw it (which refusal exactly is
            # the business of the test above).
            if rcpt is None or rcpt["code"] // 100 != 5 or message is not None:
                problems.append(f"{case.name!r}: expected {_expected(case)}, got "
                                f"{_got(rcpt)} then {_got(message)}")
            continue
        # Taken by the gateway: Postfix decides (its mailbox or its own 550 5.1.1).
        assert rcpt is not None, lines
        if rcpt["code"] // 100 == 2:
            if message is None or message["code"] != 250:
                problems.append(f"{case.name!r}: message not taken: {_got(message)}")
            stored += 1
        elif not (rcpt["code"] == 550 and rcpt["text"].startswith("5.1.1")):
            problems.append(f"{case.name!r}: Postfix answered {_got(rcpt)}")
    # Nothing went outside, nothing waits to go outside, and every delivery Postfix logged
    # went into one of its own Maildirs.
    if outside.messages:
        problems.append(f"relayed outside: {_subjects(outside)} to "
                        f"{[m.rcpt_tos for m in outside.messages]}")
    not_local = [line for line in pf.deliveries()
                 if "relay=virtual" not in line or "status=sent" not in line]
    problems += [f"not a local delivery: {line}" for line in not_local]
    problems += [f"mentions evil.example: {line}" for line in pf.log().splitlines()
                 if "to=<" in line and "evil.example" in line]
    delivered = pf.delivered()
    if sum(delivered.values()) != stored:
        problems.append(f"{stored} messages taken but Maildirs hold {delivered}")
    assert stored >= 6, results  # the council's own forms did get through
    assert not problems, "\n".join(problems) + f"\n--- maillog ---\n{pf.log()}"

    # The control: the same forms handed to this Postfix directly. It relays the routing forms
    # to the outside sink, so the check above would have seen a gateway that let one through.
    codes = await in_thread(_direct, pf.port, MX_CASES)
    await _drained(pf)
    relayed = {MX_CASES[int(s.split()[1])].rcpt for s in _subjects(outside)
               if s.startswith("direct ")}
    for must in (f"<user%evil.example@{D}>", f"<evil.example!user@{D}>",
                 f'<"user@evil.example"@{D}>', f'<"user%evil.example"@{D}>',
                 f'<"evil.example!user"@{D}>', f"<@{D}:user@evil.example>"):
        assert must in relayed, (must, sorted(relayed), codes, pf.log())
    taken_by_gateway = {c.rcpt for c in MX_CASES if c.accepted}
    assert not relayed & taken_by_gateway, sorted(relayed & taken_by_gateway)
    print(f"\nPostfix relays {len(relayed)} of the {len(MX_CASES)} MX forms when spoken to "
          f"directly: {sorted(relayed)}")
