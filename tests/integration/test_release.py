"""Releasing held mail resumes the pipeline after the check that held it.

Kirkham rule 11: every message sent carries the privacy notice; so outbound mail that was held
(here for confidential material, with [policy] confidential = hold) and then released by the
clerk must leave with the footer once and the council's DKIM signature, whether released from the
page or from the command line. Stanion "Email" and "Virus Protection": a disguised program is
released only by the IT volunteer, on purpose and on the record; a virus never. Everything runs
for real: the listeners, the clerk's page over HTTP, the console script as its own process, an
SMTP sink as the next hop, dkimpy and Perl's Mail::DKIM as verifiers.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dkim
import httpx

from gateway.adapters.dkim_signing import generate_key, txt_record, write_private_key, zone_line
from gateway.assembly import assemble, load_config
from gateway.quarantine.store import QuarantineStore
from gateway.review.serve import running_review
from tests.conftest import SmtpSink, running_gateway, write_config
from tests.helpers import cli, in_thread, send
from tests.junkkit import CLERK
from tests.mailmaker import make_mail
from tests.reviewkit import csrf_of, log_in, review_overrides, set_password
from tests.samples import clam_exe

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "tools" / "dkim_verify.pl"
FOOTER_LINE = (ROOT / "config" / "footer.txt").read_text().strip().splitlines()[0]
CLLR = "cllr.brown@stanion-pc.gov.uk"
RESIDENT = "pat@resident.example"


def audit(tmp_path: Path) -> list[dict]:
    path = tmp_path / "logs" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def outbound_setup(tmp_path: Path, sink: SmtpSink) -> tuple[Path, str]:
    """A gateway whose outbound side holds unlabelled confidential mail, then adds the footer
    and signs; returns the config file and the DKIM record to publish."""
    private, public = generate_key("rsa-sha256")
    write_private_key(tmp_path / "dkim.key", private)
    set_password(tmp_path)
    path = write_config(tmp_path, {
        "outbound": {"filters": ["confidential", "footer", "trace", "dkim"],
                     "deliver_to": sink.url},
        "policy": {"confidential": {"outbound": "hold"}},
        "footer": {"text_file": str(ROOT / "config" / "footer.txt"),
                   "html_file": str(ROOT / "config" / "footer.html")},
        "dkim": {"selector": "rel", "private_key_file": str(tmp_path / "dkim.key")},
        **review_overrides(tmp_path),
    })
    return path, txt_record("rsa-sha256", public)


async def verified_by_both(tmp_path: Path, data: bytes, txt: str) -> None:
    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return txt.encode() if name.decode().rstrip(".") == "rel._domainkey.stanion-pc.gov.uk" \
            else None

    assert dkim.verify(data, dnsfunc=dns)
    zone = tmp_path / "zone"
    zone.write_text(zone_line("rel", "stanion-pc.gov.uk", txt) + "\n")
    message = tmp_path / "released.eml"
    message.write_bytes(data)
    perl = await in_thread(lambda: subprocess.run(
        ["perl", str(SCRIPT), str(message), str(zone)], capture_output=True, text=True,
        check=True, timeout=60))
    assert perl.stdout.splitlines() == ["pass stanion-pc.gov.uk rel rsa-sha256 pass",
                                        "overall pass"]


def confidential_mail(subject: str) -> bytes:
    return make_mail(from_=f"Cllr Brown <{CLLR}>", to=RESIDENT, subject=subject,
                     body="Here are the commercially sensitive tender figures.\n")


async def submit_and_hold(port: int, tmp_path: Path, subject: str) -> str:
    assert await in_thread(send, port, CLLR, [RESIDENT], confidential_mail(subject)) == {}
    [held] = [h for h in QuarantineStore(tmp_path / "quarantine").list()
              if h.subject == subject]
    assert held.held_by == "confidential"
    return held.id


async def test_held_outbound_mail_released_from_the_page_gets_footer_and_signature(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    path, txt = outbound_setup(tmp_path, smtp_sink)
    config = load_config(path)
    async with running_gateway(config) as gw:
        qid = await submit_and_hold(gw.outbound_port, tmp_path, "Tender figures")
        assert smtp_sink.messages == []
        async with running_review(lambda: gw.assembly, "127.0.0.1", 0) as server, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                                  follow_redirects=True) as client:
            await log_in(client)
            page = await client.get(f"/confirm?action=release&id={qid}")
            done = await client.post("/act", data={"csrf": csrf_of(page.text),
                                                   "action": "release", "id": qid})
        assert "Released: delivered to pat@resident.example." in done.text
    [out] = smtp_sink.messages
    assert out.mail_from == CLLR and out.rcpt_tos == [RESIDENT]
    assert out.data.count(FOOTER_LINE.encode()) == 1
    await verified_by_both(tmp_path, out.data, txt)
    assert QuarantineStore(tmp_path / "quarantine").list() == []
    # One id: the message's audit line, the release and the trace header all name it.
    events = audit(tmp_path)
    assert [e["event"] for e in events] == ["message", "quarantine-release"]
    assert events[0]["id"] == events[1]["id"] == qid
    assert f"id={qid} ".encode() in out.data


async def test_held_outbound_mail_released_from_the_command_line_too(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    path, txt = outbound_setup(tmp_path, smtp_sink)
    async with running_gateway(load_config(path)) as gw:
        qid = await submit_and_hold(gw.outbound_port, tmp_path, "Tender figures again")
    rc, out, err = await cli(path, "quarantine", "release", qid)
    assert rc == 0, err
    assert "Released: delivered to pat@resident.example." in out
    [sent] = smtp_sink.messages
    assert sent.data.count(FOOTER_LINE.encode()) == 1
    assert b"X-Quarantine-" not in sent.data
    await verified_by_both(tmp_path, sent.data, txt)


async def test_a_disguised_program_is_released_only_with_force_and_on_the_record(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    set_password(tmp_path)
    path = write_config(tmp_path, {
        "inbound": {"filters": ["attachments", "junk", "confidential", "trace"],
                    "deliver_to": smtp_sink.url},
        **review_overrides(tmp_path)})
    config = load_config(path)
    program = make_mail(from_=f"Pat <{RESIDENT}>", subject="Delivery form",
                        body="Please fill in the delivery form; it is confidential.\n",
                        attachments=(("delivery_form.pdf.exe", "application/pdf",
                                      clam_exe()),))
    async with running_gateway(config) as gw:
        assert await in_thread(send, gw.inbound_port, RESIDENT, [CLERK], program) == {}
    [held] = QuarantineStore(tmp_path / "quarantine").list()
    assert held.held_by == "attachments"
    codes = set(held.codes)
    # Every finding, also those of the checks after the one that held it.
    assert {"attachment.double-extension", "junk", "attachment-unknown-sender",
            "confidential.marker"} <= codes, codes
    assert {f["code"] for f in audit(tmp_path)[-1]["findings"]} == codes

    async with running_review(assemble(config), "127.0.0.1", 0) as server, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                              follow_redirects=True) as client:
        await log_in(client)
        shown = (await client.get(f"/message/{held.id}")).text
        assert 'value="release"' not in shown and 'value="release_and_trust"' not in shown
        assert "only the IT volunteer can release it" in shown
        asked = await client.get(f"/confirm?action=release&id={held.id}")
        assert "Yes, release it" not in asked.text
        assert "only the IT volunteer can release it" in asked.text
        forced = await client.post("/act", data={"csrf": csrf_of(asked.text),
                                                 "action": "release", "id": held.id})
        assert "Only the IT volunteer can release it." in forced.text
    assert smtp_sink.messages == []

    rc, _, err = await cli(path, "quarantine", "release", held.id)
    assert rc == 1 and "Only the IT volunteer can release it." in err
    assert smtp_sink.messages == []
    rc, out, err = await cli(path, "quarantine", "release", held.id, "--force")
    assert rc == 0, err
    [sent] = smtp_sink.messages
    assert b"delivery_form.pdf.exe" in sent.data
    assert QuarantineStore(tmp_path / "quarantine").list() == []
    releases = [e for e in audit(tmp_path) if e["event"] == "quarantine-release"]
    assert [(e["ok"], e["forced"]) for e in releases] == [(False, False), (False, False),
                                                         (True, True)]
    assert releases[-1]["actor"].endswith("(forced)")
