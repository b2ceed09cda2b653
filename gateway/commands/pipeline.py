"""``council-gateway pipeline``: prints each side's filters in the order they run."""

from __future__ import annotations

import argparse
import json

from gateway.commands.common import add_config_option, load_or_report
from gateway.filters import REGISTRY
from gateway.pipeline import chain_names


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("pipeline", help="show the filters each side runs, in order",
                              description="Show the filters each side runs, in order.")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_config_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_or_report(args)
    if config is None:
        return 2
    chains = {side: chain_names(config, side) for side in ("inbound", "outbound")}
    if args.json:
        print(json.dumps(chains))
        return 0
    for side, names in chains.items():
        listener = config.inbound if side == "inbound" else config.outbound
        print(f"{side} ({listener.listen[0]}:{listener.listen[1]} -> {listener.deliver_to}):")
        for i, name in enumerate(names, 1):
            print(f"  {i}. {name:14} {REGISTRY[name].summary}")
    return 0
