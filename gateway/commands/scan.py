"""``council-gateway scan FILE...``: runs saved messages (.eml) through the antivirus and
attachment checks, exactly as the gateway would, and prints the verdict. For the IT volunteer to
check the set-up (is clamd answering, does EICAR get stopped) without sending mail."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from email.utils import getaddresses, parseaddr
from typing import Any

from gateway.assembly import BY_NAME, Assembly, assemble
from gateway.commands.common import add_config_option, with_config
from gateway.config import Config
from gateway.context import Envelope, MessageContext
from gateway.pipeline import Pipeline
from gateway.smtp.replies import refusal
from gateway.verdicts import Action, Decision

__all__ = ["add_parser", "run", "scan_bytes"]

FILTERS = ("antivirus", "attachments")
EXIT_CLEAN, EXIT_FOUND, EXIT_CONFIG, EXIT_UNAVAILABLE = 0, 1, 2, 3


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "scan",
        help="check saved messages for viruses and dangerous attachments",
        description="Check saved messages (.eml files, or - for standard input) with the "
                    "antivirus and attachment checks the gateway runs, and print what the "
                    "gateway would do. Exit status: 0 all clean, 1 something was found, "
                    "2 configuration problem, 3 the virus scanner could not be reached.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help='a message file, or "-" for stdin')
    p.add_argument("--direction", choices=("inbound", "outbound"), default="inbound",
                   help="treat the messages as received from outside (inbound, the default) "
                        "or as sent by a councillor (outbound)")
    p.add_argument("--json", action="store_true", help="print one JSON object per run")
    add_config_option(p)
    p.set_defaults(func=run)


def _describe(decision: Decision) -> str:
    """The reply line the gateway would give the sending server."""
    if decision.action in (Action.REFUSE, Action.TEMPFAIL):
        return refusal(decision)
    if decision.action is Action.HOLD:
        return "250 2.0.0 held for the clerk: " + "; ".join(decision.reasons)
    return "250 2.0.0 accepted"


def _envelope(data: bytes) -> Envelope:
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields: dict[str, list[str]] = {}
    for m in re.finditer(r"^(From|To|Cc):(.*(?:\r\n[ \t].*)*)", head, re.M | re.I):
        fields.setdefault(m.group(1).lower(), []).append(m.group(2))
    sender = parseaddr(" ".join(fields.get("from", [])))[1]
    rcpts = [a for _, a in getaddresses(fields.get("to", []) + fields.get("cc", [])) if a]
    return Envelope(sender, tuple(rcpts))


async def scan_bytes(assembly: Assembly, data: bytes, side: str, name: str = "message"
                     ) -> dict[str, Any]:
    """Run each check on its own over one message, each under the same deadline rules and the
    same policy as in the gateway."""
    data = re.sub(rb"\r?\n", b"\r\n", data)
    config, policy = assembly.config, assembly.policy
    result: dict[str, Any] = {"file": name, "filters": []}
    strongest = Decision(Action.DELIVER)
    for filter_name in FILTERS:
        ctx = MessageContext(id=f"scan-{filter_name}", side=side,  # type: ignore[arg-type]
                             envelope=_envelope(data), data=data)
        pipeline = Pipeline(side,  # type: ignore[arg-type]
                            [BY_NAME[filter_name].build(config)], policy,
                            config.gateway.filter_timeout)
        outcome = await pipeline.run(ctx)
        decision = outcome.decision
        entry: dict[str, Any] = {
            "name": filter_name, "verdict": decision.action.value,
            "findings": [f.text for f in outcome.findings],
            "codes": [f.code for f in outcome.findings],
        }
        if ctx.data != data and ctx.data.endswith(data):  # the headers the check added
            added = ctx.data[:len(ctx.data) - len(data)].decode("utf-8", "replace")
            entry["headers"] = [h for h in added.split("\r\n") if h]
        result["filters"].append(entry)
        if decision.action.strength > strongest.action.strength:
            strongest = decision
    result["verdict"] = strongest.action.value
    result["reply"] = _describe(strongest)
    return result


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    with open(name, "rb") as f:
        return f.read()


async def _scan_all(assembly: Assembly, args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for name in args.files:
        try:
            data = _read(name)
        except OSError as e:
            results.append({"file": name, "verdict": "error", "reply": "",
                            "error": f"cannot read {name}: {e.strerror or e}", "filters": []})
            continue
        results.append(await scan_bytes(assembly, data, args.direction,
                                        "(stdin)" if name == "-" else name))
    return results


@with_config
def run(args: argparse.Namespace, config: Config) -> int:
    results = asyncio.run(_scan_all(assemble(config), args))
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    else:
        for r in results:
            if r["verdict"] == "error":
                print(f"{r['file']}: {r['error']}")
                continue
            print(f"{r['file']}: {r['verdict'].upper()} ({r['reply']})")
            for f in r["filters"]:
                extra = f["findings"] or f.get("headers") or []
                print(f"  {f['name']}: {f['verdict']}" + (f" - {'; '.join(extra)}" if extra
                                                           else ""))
    verdicts = {r["verdict"] for r in results}
    if "tempfail" in verdicts:
        return EXIT_UNAVAILABLE
    if verdicts - {"deliver", "tag"}:
        return EXIT_FOUND
    return EXIT_CLEAN
