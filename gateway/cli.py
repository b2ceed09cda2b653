"""The ``council-gateway`` console script.

Each sub-command lives in its own module under ``gateway.commands`` and exposes
``add_parser(subparsers)``, which adds the command and sets ``func(args) -> int``; they are
listed in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gateway import __version__
from gateway.commands import (
    check_config,
    dkim_keygen,
    footer,
    pipeline,
    quarantine,
    review,
    run,
    scan,
    senders,
    user,
)
from gateway.logctx import ConnIdFilter

__all__ = ["COMMANDS", "build_parser", "main", "setup_logging"]

COMMANDS = (check_config, dkim_keygen, footer, pipeline, quarantine, review, run, scan, senders,
            user)

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_CONFIG = 2


def setup_logging(verbose: bool = False) -> None:
    """Greppable lines on stderr: time, level, logger, then key=value words."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ConnIdFilter())
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s conn=%(conn)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler],
                        force=True)
    # aiosmtpd logs every command at INFO; our own summary lines say what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING if not verbose else logging.DEBUG)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="council-gateway",
        description="A mail gateway that enforces the council's mail policy.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Everything the gateway writes (mail, the audit log, keys, state) is its own to read.
    os.umask(0o077)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_PROBLEM
    setup_logging(args.verbose)
    return int(args.func(args) or 0)
