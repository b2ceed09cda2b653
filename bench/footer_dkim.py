"""How long the footer and the DKIM signature take on a 50 KB and a 10 MB message.

Run from the repository root:  python bench/footer_dkim.py  [--runs N]
Prints a Markdown table for docs/benchmarks.md: the median of N runs of the footer
(``gateway.mime.footer.apply_footer``), of the RSA-2048 DKIM signature over the footered bytes
(``gateway.adapters.dkim_signing.sign``), of both together, and of an extra ed25519 signature.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.adapters.dkim_signing import SigningKey, generate_key, sign  # noqa: E402
from gateway.mime.footer import Footer, apply_footer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PARAGRAPH = ("The parish council met on Monday to discuss the village hall roof, the allotment "
             "rents for next year and the footpath by the church. Councillors agreed to ask "
             "for three quotes before the next meeting. ")


def _base(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Clerk <clerk@stanion-pc.gov.uk>"
    msg["To"] = "Councillors <councillors@stanion-pc.gov.uk>"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 06 Jan 2025 10:00:00 +0000"
    msg["Message-ID"] = "<bench@stanion-pc.gov.uk>"
    return msg


def newsletter(size: int) -> bytes:
    """Text and HTML alternatives, ``size`` bytes in all."""
    words = (PARAGRAPH * (size // len(PARAGRAPH) // 2 + 1))
    text = "\n".join(words[i:i + 72] for i in range(0, size * 2 // 5, 72))
    html = "<html><body>" + "".join(f"<p>{words[i:i + 300]}</p>\n"
                                     for i in range(0, size // 2, 300)) + "</body></html>"
    msg = _base("Newsletter")
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes(policy=SMTP)


def with_attachment(size: int) -> bytes:
    """A short note with a PDF-like attachment making the message ``size`` bytes."""
    msg = _base("Minutes")
    msg.set_content("Please find the minutes attached.\n")
    msg.add_alternative("<html><body><p>Please find the minutes attached.</p></body></html>",
                        subtype="html")
    msg.add_attachment(os.urandom(size * 3 // 4), maintype="application", subtype="pdf",
                       filename="minutes.pdf")
    return msg.as_bytes(policy=SMTP)


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    footer = Footer((ROOT / "config" / "footer.txt").read_text(),
                    (ROOT / "config" / "footer.html").read_text())
    rsa_key = SigningKey("stanion-pc.gov.uk", "gateway", "rsa-sha256", generate_key()[0])
    ed_key = SigningKey("stanion-pc.gov.uk", "gateway-ed", "ed25519-sha256",
                        generate_key("ed25519-sha256")[0].strip())
    shapes = [
        ("50 KB text + HTML newsletter", newsletter(50_000)),
        ("50 KB note + attachment", with_attachment(50_000)),
        ("10 MB note + attachment", with_attachment(10_000_000)),
        ("10 MB text + HTML newsletter", newsletter(10_000_000)),
    ]
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, median of {args.runs} runs")
    print()
    print("| message | size | footer | DKIM RSA-2048 | footer + DKIM | extra ed25519 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, data in shapes:
        out = apply_footer(data, footer).data
        assert out is not None
        footer_ms = median_ms(lambda d=data: apply_footer(d, footer), args.runs)
        rsa_ms = median_ms(lambda o=out: sign(o, [rsa_key]), args.runs)
        both_ms = median_ms(
            lambda d=data: sign(apply_footer(d, footer).data or d, [rsa_key]), args.runs)
        ed_ms = median_ms(lambda o=out: sign(o, [ed_key]), args.runs)
        print(f"| {name} | {len(data) / 1e6:.2f} MB | {footer_ms:.1f} ms | {rsa_ms:.1f} ms | "
              f"{both_ms:.1f} ms | {ed_ms:.1f} ms |")


if __name__ == "__main__":
    main()
