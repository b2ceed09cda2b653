"""``council-gateway check-config``: says OK or lists every problem in the config file."""

from __future__ import annotations

import argparse

from gateway.commands.common import add_config_option, load_or_report


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check-config",
        help="check the config file and list every problem",
        description="Check the config file. Prints OK, or every problem with its key and line "
                    "(exit status 2).",
    )
    add_config_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args)
    if config is None:
        return 2
    print(f"OK: {config.source}")
    return 0
