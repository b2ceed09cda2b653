"""``council-gateway pipeline``: each side's filters in the order they run, and the policy:
every kind of finding with what the gateway does about it on each side."""

from __future__ import annotations

import argparse
import json

from gateway.assembly import BY_NAME, KINDS, chain_names
from gateway.commands.common import add_config_option, with_config
from gateway.config import Config
from gateway.policy import Policy, PolicyConfig


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "pipeline", help="show the filters each side runs, in order, and the policy",
        description="Show the filters each side runs, in order, then every kind of finding "
                    "with the action the policy takes on each side ([policy] in the config).")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_config_option(p)
    p.set_defaults(func=run)


@with_config
def run(args: argparse.Namespace, config: Config) -> int:
    chains = {side: chain_names(config, side) for side in ("inbound", "outbound")}
    policy = Policy(KINDS, config.section(PolicyConfig))
    table = {k.code: {"inbound": policy.action_for(k.code, "inbound").value,
                      "outbound": policy.action_for(k.code, "outbound").value,
                      "release": k.release.value, "summary": k.summary} for k in KINDS}
    if args.json:
        print(json.dumps({**chains, "policy": table}))
        return 0
    for side, names in chains.items():
        listener = config.listener(side)
        where = ":".join(map(str, listener.listen)) if listener.listen else "not listening"
        print(f"{side} ({where} -> {listener.deliver_to}):")
        for i, name in enumerate(names, 1):
            print(f"  {i}. {name:14} {BY_NAME[name].summary}")
    print("policy (finding: inbound / outbound):")
    for code, row in table.items():
        print(f"  {code:28} {row['inbound']:8} / {row['outbound']:8}  {row['summary']}")
    return 0
