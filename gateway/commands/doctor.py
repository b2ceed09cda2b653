"""``council-gateway doctor``: checks the live environment the gateway depends on (DNS for the
council's domains, the TLS certificate, clamd, each side's next hop, the listen ports, file
permissions and free disk space) and says, for each check, ok, warning or problem, in one
sentence, with the fix.

Exit status 0 when nothing is a problem (warnings allowed), 1 otherwise, 2 when the config
itself has problems. The checks are :mod:`gateway.doctor`; this module is the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import textwrap
from collections.abc import Sequence

from gateway.assembly import load_config
from gateway.commands.common import add_config_option, report_problems
from gateway.config import ConfigError
from gateway.doctor.results import Result, Status, exit_status
from gateway.doctor.runner import DEFAULT_DEADLINE, diagnose

__all__ = ["add_parser", "format_text", "run"]

AREAS = {
    "dns": "DNS for the council's domains",
    "tls": "The gateway's TLS certificate",
    "clamd": "The virus scanner (clamd)",
    "next-hop": "The next hops",
    "listen": "Listening",
    "files": "Files",
    "disk": "Disk space",
    "config": "The configuration",
}
WIDTH = 100


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError("give between 0 and 600 seconds")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "doctor",
        help="check DNS, the TLS certificate, clamd, the next hops and this machine",
        description="Check the live environment: the MX, SPF, DKIM and DMARC records of each "
                    "council domain, the TLS certificate, clamd and its signatures, each side's "
                    "next hop, the listen ports, file permissions and free disk space. Each "
                    "check says ok, warning or problem, why, and the fix. Exit status 0 when "
                    "nothing is a problem (warnings allowed), 1 otherwise, 2 when the config "
                    "has problems.",
    )
    p.add_argument("--json", action="store_true",
                   help="print a JSON list: check, subject, status, sentence, fix")
    p.add_argument("--timeout", type=_seconds, default=DEFAULT_DEADLINE, metavar="SECONDS",
                   help=f"the deadline for each check (default {DEFAULT_DEADLINE:g})")
    add_config_option(p)
    p.set_defaults(func=run)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def format_text(results: Sequence[Result], source: str) -> str:
    """The results for a person: grouped by area, each sentence with its fix under it."""
    lines = [f"Checking the gateway's set-up ({source}):"]
    area = None
    for r in results:
        if r.area != area:
            area = r.area
            lines += ["", AREAS.get(area, area)]
        label = f"  {r.status.value:<8} "
        lines.append(textwrap.fill(r.sentence, WIDTH, initial_indent=label,
                                   subsequent_indent=" " * len(label), break_long_words=False,
                                   break_on_hyphens=False))
        if r.fix:
            lines.append(f"{' ' * len(label)}Fix: {r.fix}")
    counts = {s: sum(1 for r in results if r.status is s) for s in Status}
    lines += ["", f"{_count(counts[Status.PROBLEM], 'problem')}, "
                  f"{_count(counts[Status.WARNING], 'warning')}, {counts[Status.OK]} ok."]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as err:
        report_problems(err)
        if args.json:
            print(json.dumps([Result("config", p.key, Status.PROBLEM, str(p),
                                     "Correct it in the config file (council-gateway "
                                     "check-config lists every problem).").as_dict()
                              for p in err.problems], indent=2))
        return 2
    results = asyncio.run(diagnose(config, deadline=args.timeout))
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print(format_text(results, config.source))
    return exit_status(results)
