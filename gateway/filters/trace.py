"""Adds an ``X-Council-Gateway`` trace header: the gateway, the side, the message's one id and
the codes of everything the checks found (as Mailman's rule hits).

The header lets the clerk and the IT volunteer see that a message went through the gateway and
what it noticed (Stanion "Monitoring": the council may inspect its systems). It is a finishing
step, so it sees every finding.
"""

from __future__ import annotations

from gateway import __version__
from gateway.context import MessageContext
from gateway.pipeline import Stage
from gateway.verdicts import Change, Report

__all__ = ["HEADER", "TraceFilter"]

HEADER = "X-Council-Gateway"


class TraceFilter:
    name = "trace"
    stage = Stage.FINISH
    reads_content = False  # it reads the bytes, not the parsed message
    timeout: float | None = None
    kinds = ()

    def __init__(self, hostname: str):
        self.hostname = hostname

    async def check(self, ctx: MessageContext) -> Report:
        codes = list(dict.fromkeys(f.code for f in ctx.findings))
        value = f"{self.hostname} {ctx.side} id={ctx.id} version={__version__}"
        if codes:
            value += " findings=" + ",".join(codes)
        return Report(change=Change(add_headers=((HEADER, value),)))
