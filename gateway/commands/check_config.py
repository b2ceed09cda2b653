"""``council-gateway check-config``: says OK or lists every problem in the config file, names
the new spelling of any old key it still reads, and notes settings that work but probably not
as meant, and secrets or mail folders that others on the machine can read."""

from __future__ import annotations

import argparse

from gateway.commands.common import add_config_option, with_config
from gateway.config import Config
from gateway.permissions import loose_permissions
from gateway.review.settings import ReviewConfig, review_warnings


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "check-config",
        help="check the config file and list every problem",
        description="Check the config file. Prints OK, or every problem with its key and line "
                    "(exit status 2). Old spellings that still work are listed with the new "
                    "one to write, and settings that are probably not what was meant are "
                    "explained (these do not change the exit status).",
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
    review = config.section(ReviewConfig)
    # Only for a page that runs; `council-gateway review` gives the same warnings itself.
    warnings = review_warnings(review) if review.enabled else []
    if warnings:
        print(f"{len(warnings)} setting(s) work but are probably not what you meant:")
        for warning in warnings:
            print(f"  - {warning}")
    loose = loose_permissions(config)
    if loose:
        print(f"{len(loose)} file(s) or folder(s) other users of this machine can read:")
        for warning in loose:
            print(f"  - {warning}")
    return 0
