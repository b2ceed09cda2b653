"""Adds an ``X-Council-Gateway`` trace header naming the gateway and the message id.

The header lets the clerk and the IT volunteer see that a message went through the gateway
(Stanion "Monitoring": the council may inspect its systems).
"""

from __future__ import annotations

from gateway import __version__
from gateway.config import Config
from gateway.context import MessageContext
from gateway.filters import register
from gateway.verdicts import Modify, Verdict


class TraceFilter:
    name = "trace"

    def __init__(self, hostname: str):
        self.hostname = hostname

    async def check(self, ctx: MessageContext) -> Verdict:
        value = f"{self.hostname} {ctx.direction} id={ctx.id} version={__version__}"
        return Modify(add_headers=(("X-Council-Gateway", value),))


@register("trace", order=10, summary="adds the X-Council-Gateway trace header")
def build(config: Config) -> TraceFilter:
    return TraceFilter(config.gateway.hostname)
