"""Helpers shared by sub-commands (not a command itself)."""

from __future__ import annotations

import argparse
import sys

from gateway.assembly import load_config
from gateway.config import DEFAULT_CONFIG_PATH, Config, ConfigError

__all__ = ["add_config_option", "load_or_report", "report_problems"]


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
