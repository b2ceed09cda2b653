"""How long the confidential, access_codes and language filters take on 10 MB messages.

Run from the repository root:  python bench/confidential.py  [--runs N]
Prints a Markdown table for docs/benchmarks.md. Each shape is a real message (made with the same
libraries the tests use); each run builds a fresh MessageContext, so the first filter pays for
reading the text and the two after it share that reading, as in the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.assembly import (
    BY_NAME,  # noqa: E402
    parse_config,  # noqa: E402
)
from gateway.config import Config  # noqa: E402
from gateway.context import Envelope, MessageContext  # noqa: E402
from gateway.mime.reading import extract_async  # noqa: E402
from tests.documents import (  # noqa: E402
    DOCX,
    XLSX,
    as_bytes,
    make_docx,
    make_pdf,
    make_xlsx,
    message_with,
)

MB = 1_000_000
WORDS = ("the council meeting will discuss the planning application for the new village hall "
         "and the parish footpaths on Tuesday evening with residents grants budget precept "
         "allotments cemetery play area bins lighting").split()


def prose(chars: int, seed: int = 1) -> str:
    rnd = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < chars:
        sentence = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(8, 20))).capitalize()
        out.append(sentence + ".")
        size += len(sentence) + 2
        if rnd.random() < 0.2:
            out.append("\n\n")
    return " ".join(out)[:chars]


def plain() -> EmailMessage:
    return message_with(body=prose(int(9.6 * MB)) + "\nThis is personal data.\n")


NEAR_MISSES = ("password policy reset your PIN code of conduct personal details data protection "
               "sort the account 12-03-24 invoice 20240312 part 2 of the report confidentiality "
               "security network idiotic Scunthorpe intended recipient").split()


def near_misses() -> EmailMessage:
    """The worst case for the matchers: every trigger word is there, nothing quite matches."""
    rnd = random.Random(2)
    words = WORDS + NEAR_MISSES
    text = " ".join(rnd.choice(words) for _ in range(1_330_000))
    return message_with(body=text[: int(9.6 * MB)] + "\n")


def html() -> EmailMessage:
    paragraphs = prose(int(9.4 * MB)).split("\n\n")
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return message_with(body="See the HTML version.\n",
                        html=f"<html><body>{body}<p>personal data</p></body></html>")


def documents() -> EmailMessage:
    text = prose(400_000)
    return message_with(body=prose(MB), attachments=(
        ("report.docx", make_docx(*text.split("\n\n")), DOCX),
        ("budget.xlsx", make_xlsx([[w, i, w.upper()] for i, w in
                                   enumerate(prose(300_000).split())][:40_000]), XLSX),
        ("minutes.pdf", make_pdf(*[text[i:i + 90] for i in range(0, 4500, 90)], pages=60),
         "application/pdf"),
        ("photo.jpg", os.urandom(int(5.3 * MB)), "image/jpeg"),
    ))


def picture() -> EmailMessage:
    return message_with(body="Photo of the pothole attached.\n",
                        attachments=(("pothole.jpg", os.urandom(int(7.3 * MB)), "image/jpeg"),))


SHAPES: dict[str, Callable[[], EmailMessage]] = {
    "plain text body": plain,
    "plain text full of near misses": near_misses,
    "HTML body": html,
    "1 MB text + .docx, .xlsx, .pdf + 5 MB photo": documents,
    "one 7 MB photo": picture,
}
FILTERS = ("confidential", "access_codes", "language")


def config() -> Config:
    tmp = tempfile.mkdtemp()
    return parse_config(f"""
[gateway]
council_domains = ["stanion-pc.gov.uk"]
audit_log = "{tmp}/audit.jsonl"
max_message_size = "25MiB"
""")


async def one_run(cfg: Config, data: bytes) -> dict[str, float]:
    filters = [BY_NAME[name].build(cfg) for name in FILTERS]
    ctx = MessageContext("bench", "outbound",
                         Envelope("cllr@stanion-pc.gov.uk", ("clerk@stanion-pc.gov.uk",)), data)
    times: dict[str, float] = {}
    started = time.perf_counter()
    await extract_async(data)
    times["reading"] = time.perf_counter() - started
    for flt in filters:
        started = time.perf_counter()
        await flt.check(ctx)
        times[flt.name] = time.perf_counter() - started
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cfg = config()
    print(f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
          f"median of {args.runs} runs\n")
    print("| message (about 10 MB) | size | reading the text alone | confidential (reads the "
          "text) | access_codes | language | all three filters |")
    print("|---|---|---|---|---|---|---|")
    for name, make in SHAPES.items():
        data = as_bytes(make())
        runs = [await one_run(cfg, data) for _ in range(args.runs)]
        med = {f: statistics.median(r[f] for r in runs) for f in (*FILTERS, "reading")}
        total = statistics.median(sum(r[f] for f in FILTERS) for r in runs)
        print(f"| {name} | {len(data) / MB:.1f} MB | {med['reading']:.2f} s | "
              f"{med['confidential']:.2f} s | "
              f"{med['access_codes']:.2f} s | {med['language']:.2f} s | {total:.2f} s |")


if __name__ == "__main__":
    asyncio.run(main())
