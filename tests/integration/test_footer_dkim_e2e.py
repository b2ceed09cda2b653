"""Through the real outbound listener: a councillor's message reaches the next hop with the
privacy notice once (Kirkham rule 11) and a DKIM signature that dkimpy and Mail::DKIM accept."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dkim

from gateway.adapters.dkim_signing import generate_key, txt_record, write_private_key, zone_line
from gateway.mime.footer import Footer
from tests.conftest import SmtpSink, build_config, running_gateway
from tests.footer_support import parse, text_of, to_bytes
from tests.helpers import in_thread, send
from tests.unit.test_footer_corpus import mixed_with_attachments

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "tests" / "tools" / "dkim_verify.pl"
FOOTER = Footer((ROOT / "config" / "footer.txt").read_text(),
                (ROOT / "config" / "footer.html").read_text())


async def test_submitted_message_leaves_with_one_footer_and_a_valid_signature(
        tmp_path: Path, smtp_sink: SmtpSink) -> None:
    private, public = generate_key("rsa-sha256")
    write_private_key(tmp_path / "dkim.key", private)
    config = build_config(tmp_path, {
        "outbound": {"filters": ["trace", "footer", "dkim"], "deliver_to": smtp_sink.url},
        "footer": {"text_file": str(ROOT / "config" / "footer.txt"),
                   "html_file": str(ROOT / "config" / "footer.html")},
        "dkim": {"selector": "e2e", "private_key_file": str(tmp_path / "dkim.key")},
    })
    original = to_bytes(mixed_with_attachments())
    async with running_gateway(config) as gw:
        refused = await in_thread(send, gw.outbound_port, "clerk@stanion-pc.gov.uk",
                                  ["resident@example.org"], original)
        assert refused == {}
        # The message comes back to the gateway (say, a copy to the council): no second footer.
        received = (await smtp_sink.wait_for(1))[0].data
        await in_thread(send, gw.outbound_port, "clerk@stanion-pc.gov.uk",
                        ["resident@example.org"], received)
        again = (await smtp_sink.wait_for(2))[1].data

    # The gateway's Received field on top (it is not signed), the signature right below it.
    assert received.startswith(b"Received: from ")
    after_received = received.split(b"\r\n", 4)[4]
    assert after_received.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    msg = parse(received)
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert " ".join(text_of(plain).split()).endswith(FOOTER.text_norm)
    assert text_of(html).count('class="council-footer"') == 1
    attachments = {p.get_filename(): p.get_payload(decode=True) for p in msg.iter_attachments()}
    assert set(attachments) == {"minutes.pdf", "map.png", "budget.csv"}
    assert attachments["minutes.pdf"] == next(
        p.get_payload(decode=True) for p in parse(original).iter_attachments()
        if p.get_filename() == "minutes.pdf")

    txt = txt_record("rsa-sha256", public)

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return txt.encode() if name.decode().rstrip(".") == "e2e._domainkey.stanion-pc.gov.uk" \
            else None

    assert dkim.verify(received, dnsfunc=dns)
    zone = tmp_path / "zone"
    zone.write_text(zone_line("e2e", "stanion-pc.gov.uk", txt) + "\n")
    message_file = tmp_path / "received.eml"
    message_file.write_bytes(received)
    perl = await in_thread(lambda: subprocess.run(
        ["perl", str(SCRIPT), str(message_file), str(zone)],
        capture_output=True, text=True, check=True, timeout=60))
    assert perl.stdout.splitlines() == ["pass stanion-pc.gov.uk e2e rsa-sha256 pass",
                                        "overall pass"]

    second = parse(again)
    second_plain = second.get_body(preferencelist=("plain",))
    assert second_plain is not None
    assert text_of(second_plain).count(FOOTER.text.split("\n")[0]) == 1
    assert dkim.verify(again, dnsfunc=dns)
