"""How often the junk decision is right, over the generated corpus of council mail.

Run: python -m bench.junk_accuracy [--misses]. Prints the confusion matrix by category (Markdown,
for docs/benchmarks.md) and, with --misses, every good message held and every junk message let
through with its findings. DNS answers come from a loopback server; the gateway's real inbound
checks (attachments, junk, trace) judge each message, as tests/integration/test_junk_corpus.py
does.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import build_config  # noqa: E402
from tests.fixtures_dns import DnsServer  # noqa: E402
from tests.junkcorpus import config_overrides, corpus, judge, publish, summary  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    dns = DnsServer().start()
    try:
        publish(dns)
        tmp = Path(tempfile.mkdtemp(prefix="junk-accuracy-"))
        config = build_config(tmp, config_overrides(tmp, dns.address))
        mails = corpus()
        started = time.perf_counter()
        judged = await judge(mails, config)
        took = time.perf_counter() - started
    finally:
        dns.stop()
    print(summary(judged))
    print(f"\n{len(judged)} messages judged in {took:.1f} s ({1000 * took / len(judged):.0f} ms "
          "each, DNS on loopback)")
    if args.misses:
        for j in judged:
            if j.false_hold or (not j.mail.good and not j.held):
                kind = "good, held" if j.mail.good else "junk, let through"
                print(f"- {kind}: {j.mail.category}: {j.mail.mail_from} {list(j.codes)}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--misses", action="store_true",
                   help="list the good messages held and the junk let through")
    asyncio.run(main(p.parse_args()))
