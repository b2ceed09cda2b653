"""``council-gateway footer FILE.eml``: shows a message as it would leave, footer added."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from gateway.adapters.dkim_signing import sign
from gateway.commands.common import add_config_option, with_config
from gateway.config import Config
from gateway.filters.dkim import DkimConfig, signing_keys
from gateway.filters.footer import FooterConfig, load_footer
from gateway.mime.footer import apply_footer

__all__ = ["add_parser", "run"]

_SAY = {
    "added": "footer added",
    "wrapped": "footer added as its own part (the body could not be changed safely)",
    "signed-wrapped": "signed or encrypted message: footer added as its own part, "
                      "signature untouched",
    "present": "the message already ends with the footer; nothing changed",
    "signed-skipped": 'signed or encrypted message: sent without the footer ([footer] signed = '
                      '"skip")',
    "signed-rejected": 'signed or encrypted message: the gateway would refuse it ([footer] '
                       'signed = "reject")',
}


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "footer",
        help="show a message as it would leave, with the privacy-notice footer",
        description="Read a message (an .eml file, or - for standard input) and print it as "
                    "the gateway would send it, with the privacy-notice footer from the "
                    "[footer] section. What was done is said on standard error.",
    )
    p.add_argument("file", metavar="FILE.eml", help="the message file, or - to read stdin")
    p.add_argument("--output", "-o", metavar="PATH",
                   help="write the exact bytes (CRLF line ends) to PATH instead of printing")
    p.add_argument("--dkim", action="store_true",
                   help="also add the DKIM signature, when [dkim] has a key")
    add_config_option(p)
    p.set_defaults(func=run)


@with_config
def run(args: argparse.Namespace, config: Config) -> int:
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as e:
        print(f"footer: cannot read {args.file}: {e.strerror}", file=sys.stderr)
        return 1
    data = re.sub(rb"\r?\n", b"\r\n", raw)  # as the SMTP listener hands it on
    cfg = config.section(FooterConfig)
    result = apply_footer(data, load_footer(cfg), cfg.signed)
    print(f"footer: {_SAY[result.outcome]}", file=sys.stderr)
    if result.outcome == "signed-rejected":
        return 1
    out = result.data if result.data is not None else data
    if args.dkim:
        _, keys = signing_keys(config.section(DkimConfig), config.gateway.council_domains)
        if keys:
            out = sign(out, keys) + out
            print("footer: DKIM signature added", file=sys.stderr)
        else:
            print("footer: no DKIM key in [dkim]; not signed", file=sys.stderr)
    if args.output:
        Path(args.output).write_bytes(out)
    else:
        sys.stdout.buffer.write(out.replace(b"\r\n", b"\n"))
        sys.stdout.buffer.flush()
    return 0
