"""The gateway speaks SMTP the way Postfix expects, with a real Postfix on both sides of it.

Two Postfix instances stay up for the module: the councillors' office server (``office``, the
mailboxes of stanion-pc.gov.uk, relaying everything else to the gateway's outbound side) and a
smarthost at the far end (``smarthost``, the mailboxes of example.org, sending anything for the
council back through the gateway's inbound side, as the Internet would). Each test starts its own
gateway between them:

    office ──relayhost──▶ gateway outbound ──▶ smarthost ──relayhost──▶ gateway inbound ──▶ office

What is checked: DSN requests pass through to a next hop that honours them (the report comes
from the far end), PIPELINING keeps the per-recipient before-queue contract, SIZE is learned
from the next hop and enforced at MAIL, a submission without Date: or Message-ID: is completed
before it is signed so a Postfix on the way adds nothing, lines up to 2048 characters and
bare-LF messages are taken (longer lines refused at the end of the data, and recorded), and
clamd sees the message as it arrived (a uuencoded EICAR).
"""

from __future__ import annotations

import binascii
import json
import re
import smtplib
import socket
import subprocess
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import dkim
import pytest

from gateway.adapters.dkim_signing import generate_key, txt_record, write_private_key, zone_line
from gateway.config import Config
from tests.conftest import SmtpSink, build_config, running_gateway
from tests.fixtures_clamd import ClamdInstance
from tests.helpers import in_thread, make_message, send, smtp_session
from tests.postfix import PostfixInstance, free_port, poll
from tests.samples import EICAR

ROOT = Path(__file__).resolve().parent.parent.parent
DKIM_VERIFY = ROOT / "tests" / "tools" / "dkim_verify.pl"

COUNCIL = "stanion-pc.gov.uk"
COUNCILLOR = f"councillor@{COUNCIL}"
CLERK = f"clerk@{COUNCIL}"
RESIDENT = "resident@example.org"
GHOST = "ghost@example.org"  # no such mailbox at the far end

Reply = tuple[int, bytes]  # as smtplib gives it


def _postfix(**kwargs: Any) -> Iterator[PostfixInstance]:
    pf = PostfixInstance(relay_port=free_port(), **kwargs)
    try:
        pf.start()
        yield pf
    finally:
        try:
            pf.stop()
        finally:
            pf.remove()


@pytest.fixture(scope="module")
def office() -> Iterator[PostfixInstance]:
    # debug_peer_list: its SMTP client logs every command and reply it exchanges with the
    # gateway, so the log shows whether it pipelined.
    yield from _postfix(mailboxes=["councillor", "clerk"],
                        settings={"debug_peer_list": "127.0.0.1"})


@pytest.fixture(scope="module")
def smarthost() -> Iterator[PostfixInstance]:
    # always_add_missing_headers: it would complete a message without Date: or Message-ID:
    # itself, after the gateway's signature, if the gateway had not done it first.
    yield from _postfix(mailboxes=["resident"], domain="example.org",
                        settings={"always_add_missing_headers": "yes"})


def _config(tmp_path: Path, office: PostfixInstance, next_hop: PostfixInstance | None,
            **sections: dict[str, Any]) -> Config:
    """The gateway between the two: outbound where the office relays to, delivering to
    ``next_hop`` (the outbox Maildir when None); inbound where the smarthost relays to,
    delivering to the office."""
    outbound: dict[str, Any] = {"listen": f"127.0.0.1:{office.relay_port}"}
    if next_hop is not None:
        outbound["deliver_to"] = f"smtp://127.0.0.1:{next_hop.port}"
        inbound = {"listen": f"127.0.0.1:{next_hop.relay_port}",
                   "deliver_to": f"smtp://127.0.0.1:{office.port}"}
    else:
        inbound = {"deliver_to": f"smtp://127.0.0.1:{office.port}"}
    overrides: dict[str, Any] = {"outbound": outbound, "inbound": inbound}
    for name, values in sections.items():
        overrides[name] = {**overrides.get(name, {}), **values}
    return build_config(tmp_path, overrides)


def _dkim_sections(tmp_path: Path) -> tuple[dict[str, Any], str]:
    """The [dkim] section with a fresh key, and the TXT record that goes with it."""
    private, public = generate_key("rsa-sha256")
    write_private_key(tmp_path / "dkim.key", private)
    return ({"selector": "e2e", "private_key_file": str(tmp_path / "dkim.key")},
            txt_record("rsa-sha256", public))


FOOTER = {"text_file": str(ROOT / "config" / "footer.txt"),
          "html_file": str(ROOT / "config" / "footer.html")}


def _crlf(data: bytes) -> bytes:
    """A message as Postfix's Maildir stores it (LF) in its wire form (CRLF)."""
    return re.sub(rb"\r?\n", b"\r\n", data)


def _verify_dkim(tmp_path: Path, data: bytes, txt: str) -> None:
    """The signature passes with dkimpy and with Mail::DKIM."""
    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return txt.encode() if name.decode().rstrip(".") == f"e2e._domainkey.{COUNCIL}" else None

    assert dkim.verify(data, dnsfunc=dns), "dkimpy does not verify the delivered message"
    zone = tmp_path / "zone"
    zone.write_text(zone_line("e2e", COUNCIL, txt) + "\n")
    message_file = tmp_path / "delivered.eml"
    message_file.write_bytes(data)
    perl = subprocess.run(["perl", str(DKIM_VERIFY), str(message_file), str(zone)],
                          capture_output=True, text=True, check=True, timeout=60)
    assert perl.stdout.splitlines() == [f"pass {COUNCIL} e2e rsa-sha256 pass", "overall pass"]


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "logs" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _swaks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["swaks", "--helo", "client.example.org", "--timeout", "30", *args],
                          capture_output=True, text=True, timeout=90, check=False)


def _server_lines(transcript: str) -> list[str]:
    """What the server said in a swaks transcript (its ``<-`` and ``<**`` lines)."""
    return [m.group(1) for m in re.finditer(r"^ *<[-*~]+ +(.*)$", transcript, re.M)]


def _ehlo(port: int) -> dict[str, str]:
    def steps(c: smtplib.SMTP) -> dict[str, str]:
        code, _ = c.ehlo("client.example.org")
        assert code == 250
        return dict(c.esmtp_features)
    return smtp_session(port, steps)


def _delivery_status(report: bytes) -> tuple[Message, list[Message]]:
    """The per-message fields and the per-recipient field groups of a DSN (RFC 3464)."""
    msg = message_from_bytes(report, policy=default_policy)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    part = next(p for p in msg.walk() if p.get_content_type() == "message/delivery-status")
    groups = [g for g in part.get_payload() if isinstance(g, Message)]
    assert len(groups) >= 2, part
    return groups[0], groups[1:]


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _message_lines(data: bytes) -> list[bytes]:
    return re.split(rb"\r?\n", data)


# ------------------------------------------------------------------------------------ 1. DSN

async def test_dsn_requests_pass_through_and_the_far_end_reports_delivery(
        tmp_path: Path, office: PostfixInstance, smarthost: PostfixInstance) -> None:
    """sendmail -N success,failure -V: the smarthost, not the office server, reports the
    delivery (the gateway passed NOTIFY, ORCPT and ENVID on as written); the unknown recipient's
    refusal comes back as a failure report carrying the smarthost's own words."""
    envid = "Council-Envid-7Q"  # mixed case: RFC 3461 xtext is kept as written
    data = make_message(sender=COUNCILLOR, to=f"{RESIDENT}, {GHOST}",
                        subject="Grant application acknowledged", body="Thank you.\n")
    async with running_gateway(_config(tmp_path, office, smarthost)) as gw:
        assert "dsn" in await in_thread(_ehlo, gw.outbound_port)
        await in_thread(office.sendmail, COUNCILLOR, [RESIDENT, GHOST], data,
                        ("-N", "success,failure", "-V", envid))
        delivered = await in_thread(smarthost.wait_for_subject, "resident",
                                    "Grant application acknowledged")

        def report(action: str) -> Callable[[bytes], bool]:
            return lambda m: (envid.encode() in m and b"message/delivery-status" in m
                              and f"Action: {action}".encode() in m)
        success = await in_thread(office.wait_for, "councillor", report("delivered"),
                                  "success report")
        failure = await in_thread(office.wait_for, "councillor", report("failed"),
                                  "failure report")

    assert message_from_bytes(delivered, policy=default_policy)["delivered-to"] == RESIDENT

    fields, (rcpt,) = _delivery_status(success)
    assert _one_line(fields["reporting-mta"]) == "dns; mail.example.org"  # the far end
    assert fields["original-envelope-id"] == envid
    assert _one_line(rcpt["final-recipient"]) == f"rfc822; {RESIDENT}"
    assert _one_line(rcpt["original-recipient"]) == f"rfc822;{RESIDENT}"
    assert (rcpt["action"], rcpt["status"]) == ("delivered", "2.0.0")

    fields, (rcpt,) = _delivery_status(failure)
    assert _one_line(fields["reporting-mta"]) == f"dns; mail.{COUNCIL}"  # the office bounces
    assert fields["original-envelope-id"] == envid
    assert _one_line(rcpt["final-recipient"]) == f"rfc822; {GHOST}"
    assert (rcpt["action"], rcpt["status"]) == ("failed", "5.1.1")
    diagnostic = _one_line(rcpt["diagnostic-code"])
    assert diagnostic.startswith(f"smtp; 550 5.1.1 <{GHOST}>: Recipient address rejected")
    assert "User unknown in virtual mailbox table" in diagnostic

    # The office server sent no "relayed" notice of its own: it saw a DSN-aware server.
    assert not [m for m in office.messages("councillor")
                if envid.encode() in m and b"Action: relayed" in m]


async def test_a_maildir_next_hop_means_no_dsn_is_offered(
        tmp_path: Path, office: PostfixInstance) -> None:
    """Nothing downstream could honour NOTIFY=SUCCESS, so DSN is not offered, and the office
    server tells the councillor itself that the message was relayed to a non-DSN server."""
    envid = "Council-Envid-Maildir"
    data = make_message(sender=COUNCILLOR, to=RESIDENT, subject="Hall booking confirmed")
    outbox = tmp_path / "outbox" / "new"
    async with running_gateway(_config(tmp_path, office, None)) as gw:
        features = await in_thread(_ehlo, gw.outbound_port)
        assert "dsn" not in features
        assert {"pipelining", "enhancedstatuscodes", "size"} <= set(features)
        await in_thread(office.sendmail, COUNCILLOR, [RESIDENT], data,
                        ("-N", "success", "-V", envid))
        await in_thread(poll, lambda: outbox.is_dir() and list(outbox.iterdir()), 20,
                        lambda: f"nothing reached the outbox\n--- maillog ---\n{office.log()}")
        relayed = await in_thread(
            office.wait_for, "councillor",
            lambda m: envid.encode() in m and b"message/delivery-status" in m, "relay notice")
    fields, (rcpt,) = _delivery_status(relayed)
    assert _one_line(fields["reporting-mta"]) == f"dns; mail.{COUNCIL}"
    assert (rcpt["action"], rcpt["status"]) == ("relayed", "2.0.0")


# ----------------------------------------------------------------------------- 2. PIPELINING

def _smtp_exchange(log: str, port: int) -> list[tuple[str, str]]:
    """The office's SMTP client's debug lines with the gateway at ``port``, in order:
    ("<" or ">", the command or reply)."""
    pattern = re.compile(rf"postfix-e2e/smtp\[\d+\]: ([<>]) 127\.0\.0\.1\[127\.0\.0\.1\]:"
                         rf"{port}: (.*)$", re.M)
    return [(m.group(1), m.group(2)) for m in pattern.finditer(log)]


async def test_postfix_pipelines_and_each_recipient_gets_its_own_answer(
        tmp_path: Path, office: PostfixInstance, smarthost: PostfixInstance) -> None:
    subject = "Footpath closure notice"
    data = make_message(sender=COUNCILLOR, to=f"{RESIDENT}, {GHOST}", subject=subject)
    start = len(office.log())
    async with running_gateway(_config(tmp_path, office, smarthost)) as gw:
        await in_thread(office.sendmail, COUNCILLOR, [RESIDENT, GHOST], data)
        delivered = await in_thread(smarthost.wait_for_subject, "resident", subject)
        bounce = await in_thread(
            office.wait_for, "councillor",
            lambda m: subject.encode() in m and b"Action: failed" in m, "bounce for ghost")
        port = gw.outbound_port

    exchange = _smtp_exchange(office.log()[start:], port)
    mail_at = next(i for i, (way, line) in enumerate(exchange)
                   if way == ">" and line.startswith("MAIL FROM:"))
    sent, answers = exchange[mail_at:mail_at + 4], exchange[mail_at + 4:mail_at + 8]
    # Pipelined: MAIL, both RCPTs and DATA went out before the first reply came back, and
    # the replies came back in the same order (Postfix sorts the recipients).
    assert [way for way, _ in sent] == [">"] * 4, exchange
    assert [way for way, _ in answers] == ["<"] * 4, exchange
    commands = [line.split(":")[0].split(" ")[0] for _, line in sent]
    assert commands == ["MAIL", "RCPT", "RCPT", "DATA"], exchange
    said = {line.split("<", 1)[1].split(">", 1)[0]: answer
            for (_, line), (_, answer) in zip(sent[1:3], answers[1:3], strict=True)}
    assert answers[0][1].startswith("250 2.1.0"), exchange
    assert said[RESIDENT].startswith("250 2.1.5"), exchange
    assert said[GHOST].startswith(f"550 5.1.1 <{GHOST}>: Recipient address rejected"), exchange
    assert answers[3][1].startswith("354"), exchange

    msg = message_from_bytes(delivered, policy=default_policy)
    assert msg["delivered-to"] == RESIDENT
    _, (rcpt,) = _delivery_status(bounce)
    assert _one_line(rcpt["final-recipient"]) == f"rfc822; {GHOST}"
    assert (rcpt["action"], rcpt["status"]) == ("failed", "5.1.1")
    assert "User unknown in virtual mailbox table" in _one_line(rcpt["diagnostic-code"])


class RawClient:
    """A bare SMTP client: writes exactly what it is given, reads replies one by one."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> tuple[int, str]:
        lines: list[str] = []
        while True:
            while b"\r\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"connection closed after {lines!r}")
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line.decode())
            if line[3:4] != b"-":
                return int(line[:3]), "\n".join(x[4:] for x in lines)

    def close(self) -> None:
        self.sock.close()


def _pipelined(port: int, data: bytes) -> list[tuple[int, str]]:
    c = RawClient(port)
    try:
        out = [c.reply()]
        c.send(b"EHLO client.example.org\r\n")
        out.append(c.reply())
        c.send(f"MAIL FROM:<{COUNCILLOR}>\r\nRCPT TO:<{GHOST}>\r\nRCPT TO:<{RESIDENT}>\r\n"
               "DATA\r\n".encode())
        out += [c.reply() for _ in range(4)]
        c.send(data + b".\r\n")
        out.append(c.reply())
        c.send(b"QUIT\r\n")
        out.append(c.reply())
        return out
    finally:
        c.close()


async def test_pipelined_commands_in_one_write_are_answered_in_order(
        tmp_path: Path, office: PostfixInstance, smarthost: PostfixInstance) -> None:
    subject = "Precept consultation"
    data = make_message(sender=COUNCILLOR, to=f"{GHOST}, {RESIDENT}", subject=subject)
    async with running_gateway(_config(tmp_path, office, smarthost)) as gw:
        replies = await in_thread(_pipelined, gw.outbound_port, data)
        delivered = await in_thread(smarthost.wait_for_subject, "resident", subject)
    greeting, ehlo, mail, ghost, resident, go_ahead, taken, bye = replies
    assert greeting[0] == 220 and ehlo[0] == 250 and "PIPELINING" in ehlo[1]
    assert mail == (250, "2.1.0 Sender OK")
    assert ghost[0] == 550 and ghost[1].startswith(f"5.1.1 <{GHOST}>: Recipient address rejected")
    assert resident == (250, "2.1.5 Recipient OK")
    assert go_ahead[0] == 354
    assert taken[0] == 250 and taken[1].startswith("2.0.0")
    assert bye[0] == 221
    assert message_from_bytes(delivered, policy=default_policy)["delivered-to"] == RESIDENT


# ----------------------------------------------------------------------------------- 3. SIZE

@pytest.fixture
def small_smarthost() -> Iterator[PostfixInstance]:
    yield from _postfix(mailboxes=["resident"], domain="example.org",
                        settings={"message_size_limit": "1000000"})


def _size_session(port: int) -> tuple[dict[str, str], Reply, Reply, Reply]:
    def steps(c: smtplib.SMTP) -> tuple[dict[str, str], Reply, Reply, Reply]:
        c.ehlo("client.example.org")
        features = dict(c.esmtp_features)
        too_big = c.mail(COUNCILLOR, ["SIZE=1500000"])
        after = c.rcpt(RESIDENT)
        fits = c.mail(COUNCILLOR, ["SIZE=4000"])
        c.rset()
        return features, too_big, after, fits
    return smtp_session(port, steps)


async def test_size_is_learned_from_the_next_hop_and_refused_at_mail(
        tmp_path: Path, office: PostfixInstance, small_smarthost: PostfixInstance) -> None:
    config = _config(tmp_path, office, small_smarthost,
                     gateway={"max_message_size": "10MiB"})
    async with running_gateway(config) as gw:
        features, too_big, after, fits = await in_thread(_size_session, gw.outbound_port)

        # Postfix as the client reads the SIZE offered and does not even try.
        subject = "Annual accounts with scans"
        big = make_message(sender=COUNCILLOR, to=RESIDENT, subject=subject,
                           body=("scan " * 15 + "\n") * 20000)  # about 1.5 MB
        await in_thread(office.sendmail, COUNCILLOR, [RESIDENT], big)
        bounce = await in_thread(
            office.wait_for, "councillor",
            lambda m: subject.encode() in m and b"Action: failed" in m, "size bounce")

    assert features["size"] == "1000000"
    assert too_big[0] == 552 and too_big[1].startswith(b"5.3.4 "), too_big
    assert after[0] == 503, after  # no transaction was opened
    assert fits[0] == 250
    _, (rcpt,) = _delivery_status(bounce)
    assert rcpt["status"] == "5.3.4"
    assert "exceeds size limit 1000000 of server" in _one_line(rcpt["diagnostic-code"])

    refusals = [e for e in _audit(tmp_path) if e.get("event") == "refused"]
    assert [(e["stage"], e["reply"][:9]) for e in refusals] == [("mail", "552 5.3.4")]
    # The next hop was asked what it offers, and never saw a MAIL command.
    disconnects = await in_thread(
        poll, lambda: [line for line in small_smarthost.log().splitlines()
                       if "disconnect from" in line], 10, small_smarthost.log)
    assert not [line for line in disconnects if " mail=" in line], disconnects


def _undeclared(port: int, data: bytes) -> tuple[Reply, Reply]:
    def steps(c: smtplib.SMTP) -> tuple[Reply, Reply]:
        c.ehlo("client.example.org")
        assert c.mail(COUNCILLOR)[0] == 250  # no SIZE= given
        rcpt = c.rcpt(RESIDENT)
        code, text = c.data(data)
        return rcpt, (code, text)
    return smtp_session(port, steps)


async def test_an_undeclared_oversize_message_gets_the_next_hops_own_552(
        tmp_path: Path, office: PostfixInstance, small_smarthost: PostfixInstance) -> None:
    """Without SIZE= nothing is known at MAIL: the data goes to the next hop, whose refusal is
    the answer (the gateway's own limit is larger)."""
    config = _config(tmp_path, office, small_smarthost,
                     gateway={"max_message_size": "10MiB"})
    big = make_message(sender=COUNCILLOR, to=RESIDENT, subject="Scans, undeclared",
                       body=("scan " * 15 + "\n") * 20000)
    async with running_gateway(config) as gw:
        rcpt, end = await in_thread(_undeclared, gw.outbound_port, big)
    assert rcpt[0] == 250
    assert end[0] == 552 and end[1].startswith(b"5.3.4 "), end
    assert small_smarthost.messages("resident") == []


# ----------------------------------------------------------------------- 4. Date, Message-ID

def _without_origin_fields() -> bytes:
    msg = EmailMessage()
    msg["From"] = COUNCILLOR
    msg["To"] = RESIDENT
    msg["Subject"] = "Bin collection dates"
    msg.set_content("The new dates are on the noticeboard.\n")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


async def test_submission_gets_date_and_message_id_before_signing_and_survives_postfix(
        tmp_path: Path, office: PostfixInstance, smarthost: PostfixInstance) -> None:
    data = _without_origin_fields()
    assert b"\r\nDate:" not in data and b"Message-ID" not in data
    dkim_section, txt = _dkim_sections(tmp_path)
    config = _config(tmp_path, office, smarthost,
                     outbound={"filters": ["trace", "footer", "dkim"]},
                     footer=FOOTER, dkim=dkim_section)
    async with running_gateway(config) as gw:
        # A control: the smarthost is the kind of server that completes what is missing.
        control = data.replace(b"Bin collection dates", b"Bin collection (control)")
        assert await in_thread(send, smarthost.port, COUNCILLOR, [RESIDENT], control) == {}
        completed = await in_thread(smarthost.wait_for_subject, "resident",
                                    "Bin collection (control)")
        refused = await in_thread(send, gw.outbound_port, COUNCILLOR, [RESIDENT], data)
        stored = await in_thread(smarthost.wait_for_subject, "resident",
                                 "Bin collection dates")
    assert refused == {}
    added = message_from_bytes(completed, policy=default_policy)
    assert added["date"] and added["message-id"]

    delivered = _crlf(stored)
    msg = message_from_bytes(delivered, policy=default_policy)
    assert len(msg.get_all("date") or []) == 1
    assert len(msg.get_all("message-id") or []) == 1
    assert msg["message-id"].endswith("@gw.stanion-pc.gov.uk>")
    signature = _one_line(msg["dkim-signature"])
    signed = re.search(r"\bh=([^;]+)", signature)
    assert signed is not None
    names = [n.strip().lower() for n in signed.group(1).split(":")]
    assert "date" in names and "message-id" in names
    # Only fields that are there are named (naming an absent one forbids adding it).
    assert set(names) <= {k.lower() for k in msg.keys()}, names
    await in_thread(_verify_dkim, tmp_path, delivered, txt)


# ------------------------------------------------------------------- 5. long lines, bare LF

LINE_1500 = ("Minute 14/26: " + "the council resolved to repair the bus shelter " * 40)[:1500]


async def test_a_1500_character_line_is_delivered_inbound_as_it_came(
        tmp_path: Path, office: PostfixInstance) -> None:
    subject = "Long line inbound"
    async with running_gateway(_config(tmp_path, office, None)) as gw:
        done = await in_thread(lambda: _swaks(
            "--server", f"127.0.0.1:{gw.inbound_port}", "--from", RESIDENT, "--to", CLERK,
            "--h-Subject", subject, "--body", LINE_1500))
        stored = await in_thread(office.wait_for_subject, "clerk", subject)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _server_lines(done.stdout)[-2].startswith("250 2.0.0")
    assert LINE_1500.encode() in _message_lines(stored)


@pytest.mark.parametrize("filters", [["trace", "footer", "dkim"], ["trace", "dkim"]],
                         ids=["with-footer", "without-footer"])
async def test_a_1500_character_line_leaves_re_encoded_and_signed(
        tmp_path: Path, office: PostfixInstance, smarthost: PostfixInstance,
        filters: list[str]) -> None:
    subject = f"Long line outbound {len(filters)}"
    dkim_section, txt = _dkim_sections(tmp_path)
    config = _config(tmp_path, office, smarthost, outbound={"filters": filters},
                     footer=FOOTER, dkim=dkim_section)
    async with running_gateway(config) as gw:
        done = await in_thread(lambda: _swaks(
            "--server", f"127.0.0.1:{gw.outbound_port}", "--from", COUNCILLOR, "--to", RESIDENT,
            "--h-Subject", subject, "--body", LINE_1500))
        stored = await in_thread(smarthost.wait_for_subject, "resident", subject)
    assert done.returncode == 0, done.stdout + done.stderr
    delivered = _crlf(stored)
    longest = max(len(line) for line in _message_lines(delivered))
    assert longest <= 998, f"a line of {longest} characters left the gateway"
    msg = message_from_bytes(delivered, policy=default_policy)
    plain = msg.get_body(preferencelist=("plain",))
    assert plain is not None
    assert plain["content-transfer-encoding"] == "quoted-printable"
    assert LINE_1500 in plain.get_content().splitlines()
    await in_thread(_verify_dkim, tmp_path, delivered, txt)


def _swaks_exact(port: int, sender: str, rcpt: str, data: bytes, path: Path
                 ) -> subprocess.CompletedProcess[str]:
    """swaks sending ``data`` as it is (it adds only the CRLF after the final dot)."""
    path.write_bytes(data + b"\r\n.")
    return _swaks("--server", f"127.0.0.1:{port}", "--from", sender, "--to", rcpt,
                  "--no-data-fixup", "--data", f"@{path}")


def _with_line(subject: str, sender: str, to: str, line: bytes, after: bytes = b"") -> bytes:
    """A message whose body is ``line``, then ``after`` (nothing: the line is the last one,
    right before the end-of-data dot)."""
    head = (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.lower().replace(' ', '-')}@client.example.org>\r\n")
    return head.encode() + b"\r\n" + line + (b"\r\n" + after if after else b"")


# Long enough for a broken end-of-data to show as a timeout (421 4.4.2) instead of a refusal.
QUICK_DATA_TIMEOUT = {"data_timeout": 5}


@pytest.mark.parametrize("where", ["last-line", "followed-by-text"])
@pytest.mark.parametrize("side", ["inbound", "outbound"])
async def test_a_3000_character_line_is_refused_and_recorded(
        tmp_path: Path, office: PostfixInstance, smarthost: PostfixInstance,
        side: str, where: str) -> None:
    """500 5.5.2 at the end of the data, whether the long line is the message's last (its CRLF
    is the one that starts the end-of-data CRLF.CRLF, as most clients send it) or not."""
    sender, rcpt, next_hop = ((RESIDENT, CLERK, office) if side == "inbound"
                              else (COUNCILLOR, RESIDENT, smarthost))
    subject = f"Far too long a line {side} {where}"
    data = _with_line(subject, sender, rcpt, b"x" * 3000,
                      b"" if where == "last-line" else b"Yours, a resident.")
    config = _config(tmp_path, office, smarthost, gateway=QUICK_DATA_TIMEOUT)
    async with running_gateway(config) as gw:
        port = gw.inbound_port if side == "inbound" else gw.outbound_port
        done = await in_thread(_swaks_exact, port, sender, rcpt, data, tmp_path / "long.eml")
    said = _server_lines(done.stdout)
    assert done.returncode != 0
    assert any(line.startswith("500 5.5.2 ") for line in said), said[-3:]
    refusals = [e for e in _audit(tmp_path) if e.get("event") == "refused"]
    assert [(e["stage"], e["direction"], e["reply"][:9]) for e in refusals] == \
        [("line", side, "500 5.5.2")]
    message_id = subject.lower().replace(" ", "-")
    assert message_id not in next_hop.log()  # nothing was queued there
    assert not [m for m in next_hop.messages(rcpt.split("@")[0]) if message_id.encode() in m]


async def test_the_line_limit_is_2048_characters(
        tmp_path: Path, office: PostfixInstance) -> None:
    config = _config(tmp_path, office, None, gateway=QUICK_DATA_TIMEOUT)
    longest = b"y" * 2048
    async with running_gateway(config) as gw:
        taken = await in_thread(_swaks_exact, gw.inbound_port, RESIDENT, CLERK,
                                _with_line("Line of 2048", RESIDENT, CLERK, longest),
                                tmp_path / "2048.eml")
        stored = await in_thread(office.wait_for_subject, "clerk", "Line of 2048")
        refused = await in_thread(_swaks_exact, gw.inbound_port, RESIDENT, CLERK,
                                  _with_line("Line of 2049", RESIDENT, CLERK, longest + b"y"),
                                  tmp_path / "2049.eml")
    assert taken.returncode == 0, _server_lines(taken.stdout)[-3:]
    assert longest in _message_lines(stored)
    said = _server_lines(refused.stdout)
    assert any(line.startswith("500 5.5.2 ") for line in said), said[-3:]


def _bare_lf_message(subject: str, sender: str, to: str) -> tuple[bytes, list[bytes]]:
    """A message whose lines end in bare LF (the last one CRLF, then the end-of-data dot as
    swaks sends it), over 2 KB; and its body lines."""
    body = [f"{n:02d} The allotment rent rises to four pounds a pole next year.".encode()
            for n in range(60)]
    head = [f"From: {sender}".encode(), f"To: {to}".encode(), f"Subject: {subject}".encode(),
            b"Date: Mon, 23 Nov 2026 10:00:00 +0000",
            f"Message-ID: <{subject.lower().replace(' ', '-')}@client.example.org>".encode()]
    data = b"\n".join([*head, b"", *body]) + b"\r\n."
    assert len(data) > 2048 and b"\r\n" not in data[:-3]
    return data, body


async def test_a_bare_lf_message_over_2kb_is_delivered_with_crlf(
        tmp_path: Path, office: PostfixInstance, smarthost: PostfixInstance,
        smtp_sink: SmtpSink) -> None:
    """Inbound to the recording sink (which sees the bytes as sent; its own reader takes CRLF
    lines of at most 1001 characters, so bare LFs passed on would be one over-long line) and
    outbound to the smarthost."""
    config = _config(tmp_path, office, smarthost, inbound={"deliver_to": smtp_sink.url})
    inbound, body = _bare_lf_message("Bare line feeds in", RESIDENT, CLERK)
    outbound, _ = _bare_lf_message("Bare line feeds out", COUNCILLOR, RESIDENT)
    (tmp_path / "in.eml").write_bytes(inbound)
    (tmp_path / "out.eml").write_bytes(outbound)
    async with running_gateway(config) as gw:
        sent_in = await in_thread(lambda: _swaks(
            "--server", f"127.0.0.1:{gw.inbound_port}", "--from", RESIDENT, "--to", CLERK,
            "--no-data-fixup", "--data", f"@{tmp_path / 'in.eml'}"))
        sent_out = await in_thread(lambda: _swaks(
            "--server", f"127.0.0.1:{gw.outbound_port}", "--from", COUNCILLOR, "--to", RESIDENT,
            "--no-data-fixup", "--data", f"@{tmp_path / 'out.eml'}"))
        received = (await smtp_sink.wait_for(1))[0].data
        stored = await in_thread(smarthost.wait_for_subject, "resident", "Bare line feeds out")
    for done in (sent_in, sent_out):
        assert done.returncode == 0, done.stdout + done.stderr
        assert _server_lines(done.stdout)[-2].startswith("250 2.0.0"), done.stdout
    assert re.search(rb"(?<!\r)\n", received) is None, "a bare LF was passed on"
    assert b"\r\n\r\n" + b"\r\n".join(body) + b"\r\n" in received
    lines = _message_lines(stored)
    start = lines.index(b"")
    assert lines[start + 1:start + 1 + len(body)] == body


# ------------------------------------------------------------------------- 6. uuencoded EICAR

def _uuencoded(name: str, payload: bytes) -> str:
    lines = [binascii.b2a_uu(payload[i:i + 45]).decode().rstrip("\n")
             for i in range(0, len(payload), 45)]
    return "\n".join([f"begin 644 {name}", *lines, "`", "end"]) + "\n"


async def test_a_uuencoded_eicar_in_plain_text_is_refused(
        tmp_path: Path, office: PostfixInstance, clamd: ClamdInstance) -> None:
    config = _config(tmp_path, office, None, inbound={"filters": ["antivirus", "trace"]},
                     clamav={"address": clamd.address, "timeout": 10})
    infected = make_message(subject="Invoice attached (uuencoded)",
                            body="Please run the attached file.\n\n"
                                 + _uuencoded("eicar.com", EICAR))
    clean = make_message(subject="Minutes attached (uuencoded)",
                         body="The minutes, as before.\n\n"
                              + _uuencoded("minutes.txt", b"Minutes of 12 November.\n" * 4))
    assert b"\r\nbegin 644 eicar.com\r\n" in infected  # plain text on the wire, not MIME-encoded
    assert EICAR not in infected
    async with running_gateway(config) as gw:
        with pytest.raises(smtplib.SMTPDataError) as info:
            await in_thread(send, gw.inbound_port, RESIDENT, [CLERK], infected)
        assert await in_thread(send, gw.inbound_port, RESIDENT, [CLERK], clean) == {}
        await in_thread(office.wait_for_subject, "clerk", "Minutes attached (uuencoded)")
    code, text = info.value.smtp_code, info.value.smtp_error
    assert code == 554 and isinstance(text, bytes)
    assert text.startswith(b"5.7.1 ") and b"Eicar" in text, text
    assert not [m for m in office.messages("clerk") if b"Invoice attached" in m]
