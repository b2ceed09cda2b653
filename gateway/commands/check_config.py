"""``council-gateway check-config``: says OK or lists every problem in the config file, and
names the new spelling of any old key it still reads."""

from __future__ import annotations

import argparse

from gateway.commands.common import add_config_option, with_config
from gateway.config import Config


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "check-config",
        help="check the config file and list every problem",
        description="Check the config file. Prints OK, or every problem with its key and line "
                    "(exit status 2). Old spellings that still work are listed with the new "
                    "one to write.",
    )
    add_config_option(p)
    p.set_defaults(func=run)


@with_config
def run(args: argparse.Namespace, config: Config) -> int:
    print(f"OK: {config.source}")
    if config.notes:
        print(f"{len(config.notes)} setting(s) use an old spelling that still works:")
        for note in config.notes:
            print(f"  - {note}")
    return 0
