"""Helpers shared by sub-commands (not a command itself)."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from gateway.assembly import load_config
from gateway.config import DEFAULT_CONFIG_PATH, Config, ConfigError

__all__ = ["add_config_option", "load_or_report", "report_problems", "with_config"]


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", "-c", metavar="PATH", default=None,
        help=f"the config file (default: {DEFAULT_CONFIG_PATH}, or the embedded default "
             "when that does not exist)",
    )


def report_problems(err: ConfigError) -> None:
    print(f"{err.source}: {len(err.problems)} problem(s) in the configuration:", file=sys.stderr)
    for p in err.problems:
        print(f"  - {p}", file=sys.stderr)


def load_or_report(args: argparse.Namespace) -> Config | None:
    """Load the config named by ``--config``; on problems print them and return None."""
    try:
        return load_config(args.config)
    except ConfigError as err:
        report_problems(err)
        return None


def with_config(command: Callable[[argparse.Namespace, Config], int]
                ) -> Callable[[argparse.Namespace], int]:
    """A command that needs the config: it gets it loaded, or exit status 2 after the problems
    are printed."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        config = load_or_report(args)
        return 2 if config is None else command(args, config)

    return run
