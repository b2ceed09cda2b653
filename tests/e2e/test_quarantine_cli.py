"""The clerk's review from the command line: ``council-gateway quarantine ...`` and ``senders``.

Mail is held by the real gateway (real inbound listener, real DNS on loopback); the commands run
as separate processes (``python -m gateway``); releases go to a real SMTP sink.
Stanion "Email": junk is not opened; attachments are opened only from trusted sources.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

from gateway.assembly import load_config
from gateway.quarantine.store import QuarantineStore
from tests.conftest import running_gateway, write_config
from tests.helpers import cli
from tests.junkkit import CLERK, overrides, talk
from tests.mailmaker import make_mail
from tests.reviewkit import hold

ROOT = Path(__file__).resolve().parents[2]
PDF = ("minutes.pdf", "application/pdf", b"%PDF-1.4\n" + b"x" * 1000)


def setup(tmp_path: Path, dns, sink, **extra):
    path = write_config(tmp_path, overrides(tmp_path, dns.address, sink.url, **extra))
    return path, load_config(path)


def store(tmp_path: Path) -> QuarantineStore:
    return QuarantineStore(tmp_path / "quarantine")


HOSTILE_HTML = """<html><head><style>body{color:red}</style>
<script>alert('pwned')</script></head><body>
<p>Dear Clerk, please see the <a href="http://evil.example/inv">attached invoice</a>.</p>
<div style="display:none">secret filter-fooling words</div>
<img src="http://track.example/pixel.gif?id=42" width="1" height="1">
<img src="http://cdn.example/logo.png" alt="Logo">
<iframe src="http://evil.example/frame"></iframe>
<p>Terminal trick: \x1b[2J\x1b]0;owned\x07 and bidi \u202egnp.exe</p>
</body></html>"""


async def test_list_show_release_trust_delete_purge(tmp_path, dns_server, smtp_sink):
    dns_server.add("trusted-later.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    path, config = setup(tmp_path, dns_server, smtp_sink)
    invoice = make_mail(from_='"Chairman" <boss@gmail.com>', subject="Urgent invoice",
                        body=None, html=HOSTILE_HTML, attachments=(PDF,))
    minutes = make_mail(from_="Sam <sam@trusted-later.example>", subject="Draft minutes",
                        attachments=(PDF,))
    async with running_gateway(config) as gw:
        assert (await talk(gw.inbound_port, "boss@gmail.com",
                           [CLERK, "cllr.jones@stanion-pc.gov.uk"], invoice))[0] == 250
        assert (await talk(gw.inbound_port, "sam@trusted-later.example", [CLERK],
                           minutes))[0] == 250

        # list: plain English, every recipient, the reasons
        rc, out, _ = await cli(path, "quarantine", "list")
        assert rc == 0
        assert "2 messages held:" in out
        assert 'the name says "Chairman" but the address is a free-mail one' in out
        assert "clerk@stanion-pc.gov.uk, cllr.jones@stanion-pc.gov.uk" in out
        rc, out, _ = await cli(path, "quarantine", "list", "--json")
        listed = {h["subject"]: h for h in json.loads(out)}
        assert set(listed) == {"Urgent invoice", "Draft minutes"}
        bad_id, sam_id = listed["Urgent invoice"]["id"], listed["Draft minutes"]["id"]
        assert any("Has 1 attachment (minutes.pdf)" in r
                   for r in listed["Draft minutes"]["reasons"])

        # show: headers, the text, the attachments; nothing active survives
        rc, out, _ = await cli(path, "quarantine", "show", bad_id)
        assert rc == 0
        assert "Subject: Urgent invoice" in out
        assert "From: Chairman <boss@gmail.com>" in out
        assert "Dear Clerk, please see the attached invoice <http://evil.example/inv>." in out
        assert "minutes.pdf  (application/pdf, 1009 bytes)" in out
        assert "[image: Logo (not loaded from cdn.example)]" in out
        assert "1 tracking image(s) removed" in out and "track.example" not in out
        assert "hidden text of" in out and "filter-fooling" not in out
        assert "<script" not in out and "alert(" not in out and "evil.example/frame" not in out
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
        assert "<U+001B>[2J" in out and "<U+202E>" in out  # shown, harmlessly
        assert "Held-Because: Looks like phishing" in out
        assert "Looks: Danger" in out

        # release --trust-sender: delivered with the original envelope, sender now known
        rc, out, err = await cli(path, "quarantine", "release", sam_id, "--trust-sender")
        assert rc == 0, err
        assert " INFO " not in err  # the answer is what it prints, not log lines beside it
        assert "Released: delivered to clerk@stanion-pc.gov.uk." in out
        assert "sam@trusted-later.example is now a known sender." in out
        [released] = smtp_sink.messages
        assert released.mail_from == "sam@trusted-later.example"
        assert released.rcpt_tos == [CLERK]
        assert b"X-Quarantine-" not in released.data
        assert b"Subject: Draft minutes" in released.data
        assert "sam@trusted-later.example" in (tmp_path / "known-senders.txt").read_text()
        # ... so Sam's next attachment is delivered, not held
        assert (await talk(gw.inbound_port, "sam@trusted-later.example", [CLERK],
                           minutes))[0] == 250
        await smtp_sink.wait_for(2)
        assert [h.id for h in store(tmp_path).list()] == [bad_id]

        # delete
        rc, out, _ = await cli(path, "quarantine", "delete", bad_id)
        assert (rc, out.strip()) == (0, "Deleted.")
        assert store(tmp_path).list() == []
        rc, _, err = await cli(path, "quarantine", "show", bad_id)
        assert rc == 1 and "No held message with id" in err

    # purge: only mail older than retention_days goes
    hold(tmp_path / "quarantine", make_mail(), reasons=("old",), minutes_ago=31 * 24 * 60)
    kept = hold(tmp_path / "quarantine", make_mail(), reasons=("young",),
                minutes_ago=29 * 24 * 60)
    rc, out, _ = await cli(path, "quarantine", "purge")
    assert (rc, out.strip()) == (0, "Deleted 1 held message older than 30 days.")
    assert [h.id for h in store(tmp_path).list()] == [kept]


async def test_release_refused_by_next_hop_keeps_the_message(tmp_path, dns_server, smtp_sink):
    path, config = setup(tmp_path, dns_server, smtp_sink)
    async with running_gateway(config) as gw:
        await talk(gw.inbound_port, "pat@resident.example", [CLERK],
                   make_mail(attachments=(PDF,)))
    [h] = store(tmp_path).list()
    smtp_sink.refuse_rcpt.add(CLERK)
    rc, out, err = await cli(path, "quarantine", "release", h.id)
    assert rc == 1
    assert "Not released: the mail server answered" in err and "550" in err
    assert "still in the quarantine" in err
    assert [x.id for x in store(tmp_path).list()] == [h.id]
    smtp_sink.refuse_rcpt.clear()
    rc, out, _ = await cli(path, "quarantine", "release", h.id)
    assert rc == 0 and store(tmp_path).list() == []
    assert len(smtp_sink.messages) == 1


async def test_block_sender_holds_their_next_mail(tmp_path, dns_server, smtp_sink):
    path, config = setup(tmp_path, dns_server, smtp_sink)
    async with running_gateway(config) as gw:
        await talk(gw.inbound_port, "pest@nuisance.example", [CLERK],
                   make_mail(from_="pest@nuisance.example",
                             body="Forward this to everyone you know. Do not break this chain.\n"))
        [h] = store(tmp_path).list()
        rc, out, _ = await cli(path, "quarantine", "block-sender", h.id)
        assert rc == 0
        assert out.startswith("Blocked pest@nuisance.example: their mail will always be held.")
        assert store(tmp_path).list() == []
        # a perfectly plain message from them is now held too
        await talk(gw.inbound_port, "pest@nuisance.example", [CLERK],
                   make_mail(from_="pest@nuisance.example", body="Hello.\n"))
    [h2] = store(tmp_path).list()
    assert h2.reasons == ("The clerk has blocked this sender (pest@nuisance.example).",)
    assert smtp_sink.messages == []
    rc, out, _ = await cli(path, "senders", "list", "--json")
    assert {"address": "pest@nuisance.example", "name": "", "source": "blocked"} in json.loads(out)


async def test_senders_commands(tmp_path, dns_server, smtp_sink):
    path, _ = setup(tmp_path, dns_server, smtp_sink)
    rc, out, _ = await cli(path, "senders", "add", "Bob Hall <Bob@Hall.example>")
    assert rc == 0 and "added to" in out
    rc, out, _ = await cli(path, "senders", "add", "@suppliers.example")
    rc, _, err = await cli(path, "senders", "add", "suppliers.example")
    assert rc == 2 and 'write "@suppliers.example" for a whole domain' in err
    rc, out, _ = await cli(path, "senders", "list")
    assert "Bob Hall <bob@hall.example>" in out and "@suppliers.example" in out
    assert "Jane Smith <jane@nalc.example>" in out  # from the config
    rc, out, _ = await cli(path, "senders", "remove", "bob@hall.example")
    assert rc == 0 and "removed from: known senders file" in out
    rc, _, err = await cli(path, "senders", "remove", "jane@nalc.example")
    assert rc == 0 and "remove it there" in err
    rc, _, err = await cli(path, "senders", "remove", "nobody@x.example")
    assert rc == 1 and "is not on any list" in err


async def test_digest_lists_every_recipient_and_reason(tmp_path, dns_server, smtp_sink):
    path, config = setup(tmp_path, dns_server, smtp_sink,
                         quarantine={"digest_to": [CLERK, "rfo@stanion-pc.gov.uk"]})
    async with running_gateway(config) as gw:
        await talk(gw.inbound_port, "boss@gmail.com",
                   [CLERK, "cllr.a@stanion-pc.gov.uk", "cllr.b@stanion-pc.gov.uk"],
                   make_mail(from_='"Mayor" <boss@gmail.com>', subject="Gift cards"))
        await talk(gw.inbound_port, "news@garden.example", [CLERK],
                   make_mail(from_="news@garden.example", subject="Spring sale\x1b[31m",
                             headers=(("Precedence", "bulk"),)))
    rc, printed, _ = await cli(path, "quarantine", "digest")
    assert rc == 0
    assert "Subject: Mail held for review: 2 new, 2 in all" in printed
    rc, out, err = await cli(path, "quarantine", "digest", "--send")
    assert rc == 0, err
    assert out.strip() == "Digest sent to clerk@stanion-pc.gov.uk, rfo@stanion-pc.gov.uk."
    [sent] = smtp_sink.messages
    assert sent.mail_from == ""  # the null sender: no bounces, no auto-replies
    assert sorted(sent.rcpt_tos) == [CLERK, "rfo@stanion-pc.gov.uk"]
    msg = message_from_bytes(sent.data, policy=default_policy)
    body = msg.get_body().get_content()  # type: ignore[union-attr]
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "holding 2 messages for you to review" in body
    assert ("To:      clerk@stanion-pc.gov.uk, cllr.a@stanion-pc.gov.uk, "
            "cllr.b@stanion-pc.gov.uk") in body
    assert 'the name says "Mayor" but the address is a free-mail one (boss@gmail.com)' in body
    assert "Mailing-list or bulk mail that its sender marks as sent in bulk" in body
    assert "1. PROBABLY ADVERTISING" in body and "2. DANGER" in body  # newest first
    assert re.search(r"The last seven days in numbers:\s+0 delivered, 2 held for review, 0 refused",
                     body)
    assert "council-gateway" not in body  # no commands for the clerk to type
    assert "Subject: Gift cards" in body
    assert "\x1b" not in body and "Spring sale<U+001B>[31m" in body
    ids = {h.id for h in store(tmp_path).list()}
    assert ids == set(re.findall(r"Id:\s+(\S+)", body))


async def test_list_read_only_in_part_ends_quietly(tmp_path, dns_server, smtp_sink):
    path, config = setup(tmp_path, dns_server, smtp_sink)
    async with running_gateway(config) as gw:
        for n in range(200):  # a list longer than a pipe holds, so printing it must wait
            mail = make_mail(from_=f"Sam <sam{n}@unknown.example>", subject=f"Minutes {n}",
                             attachments=(PDF,))
            assert (await talk(gw.inbound_port, f"sam{n}@unknown.example", [CLERK],
                               mail))[0] == 250
    # ``quarantine list | head -1``: the reader is gone before the list ends.
    proc = await asyncio.create_subprocess_shell(
        f"{sys.executable} -m gateway quarantine list --config {path} | head -1", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert out.decode() == "200 messages held:\n"
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err
