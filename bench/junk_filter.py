"""How long the junk filter takes per message, DNS answered by a loopback server.

Run: python bench/junk_filter.py [N]. Figures go to docs/benchmarks.md.
Three cases: a resident's plain message (SPF none), a known sender with a DKIM-signed attachment
(SPF, DKIM and DMARC pass), and an HTML advert with links (several signals).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.assembly import BY_NAME  # noqa: E402
from gateway.context import Envelope, MessageContext  # noqa: E402
from tests.conftest import build_config  # noqa: E402
from tests.fixtures_dns import DnsServer  # noqa: E402
from tests.mailmaker import dkim_sign, dkim_txt, make_mail  # noqa: E402


async def main(n: int) -> None:
    dns = DnsServer().start()
    dns.add("nalc.example", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    dns.add("_dmarc.nalc.example", "TXT", "v=DMARC1; p=reject")
    dns.add("sel._domainkey.nalc.example", "TXT", dkim_txt())
    tmp = Path(tempfile.mkdtemp())
    config = build_config(tmp, {"dns": {"nameservers": [dns.address]},
                                "senders": {"known": ["@nalc.example"],
                                            "file": str(tmp / "k.txt")}})
    flt = BY_NAME["junk"].build(config)
    cases = {
        "resident, plain text": ("pat@resident.example", make_mail(from_="pat@resident.example")),
        "known sender, DKIM-signed 200 KiB attachment": (
            "jane@nalc.example",
            dkim_sign(make_mail(from_="jane@nalc.example",
                                attachments=(("a.pdf", "application/pdf", b"x" * 200_000),)),
                      "nalc.example")),
        "HTML advert with 50 links": ("deals@shop.example", make_mail(
            from_="deals@shop.example", body="Limited time offer",
            html="".join(f'<a href="https://shop.example/{i}">Offer {i}</a>' for i in range(50)))),
    }
    print(f"| case | median ms | p95 ms | (n={n}) |")
    print("|---|---|---|---|")
    for name, (mail_from, data) in cases.items():
        times = []
        for i in range(n):
            ctx = MessageContext(id=str(i), side="inbound",
                                 envelope=Envelope(mail_from, ("clerk@stanion-pc.gov.uk",)),
                                 data=data, client_address="127.0.0.1", client_helo="mx.example")
            t = time.perf_counter()
            await flt.check(ctx)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        print(f"| {name} | {statistics.median(times):.1f} | {times[int(n * 0.95) - 1]:.1f} | |")
    dns.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
