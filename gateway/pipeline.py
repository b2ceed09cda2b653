"""Runs the ordered filter chain of one side over one message.

Rules decide facts, the chain maps them to one outcome: filters run in the configured order, changes
from ``Modify`` verdicts are applied as they come, and the first decisive verdict (reject,
temp-fail, quarantine) ends the run. Each filter runs under an absolute deadline; what a timeout or
an error means is the filter's ``on_error`` ("tempfail" unless the filter says otherwise).
"""

from __future__ import annotations

import asyncio
import email.header
import logging
import time
from dataclasses import dataclass, field

from gateway.config import Config
from gateway.context import MessageContext
from gateway.filters import REGISTRY, Filter, default_chain
from gateway.verdicts import Accept, Modify, Quarantine, TempFail, Verdict, is_decisive

__all__ = ["Pipeline", "PipelineResult", "StepRecord", "chain_names", "prepend_headers"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepRecord:
    filter: str
    outcome: str  # verdict class name, or "error"/"timeout"
    ms: float


@dataclass
class PipelineResult:
    verdict: Verdict
    steps: list[StepRecord] = field(default_factory=list)


def chain_names(config: Config, side: str) -> list[str]:
    listener = config.inbound if side == "inbound" else config.outbound
    names = list(listener.filters) if listener.filters is not None else default_chain(side)
    # Filters that must see the final bytes (DKIM) run last whatever the list says.
    return [n for n in names if not REGISTRY[n].last] + [n for n in names if REGISTRY[n].last]


def prepend_headers(data: bytes, headers: tuple[tuple[str, str], ...]) -> bytes:
    """Put header fields on top without touching (or refolding) anything below."""
    if not headers:
        return data
    return b"".join(fold_header(name, value) for name, value in headers) + data


def fold_header(name: str, value: str, width: int = 78) -> bytes:
    """One header field, folded at spaces to ``width`` where it can be (RFC 5322 2.2.3).

    Plain ASCII is filled greedily (the ``email`` package's policy would move the whole value
    to a continuation line); anything else is RFC 2047-encoded.
    """
    value = " ".join(value.split())
    if not value.isascii():
        encoded = email.header.Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
        return f"{name}: {encoded}\r\n".encode("ascii")
    line, lines = f"{name}:", []
    for word in value.split(" "):
        if len(line) + 1 + len(word) > width and line.strip() and line != f"{name}:":
            lines.append(line)
            line = " " + word
        else:
            line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


class Pipeline:
    """The built filters of one side, ready to run many messages (shared, stateless)."""

    def __init__(self, config: Config, side: str, filters: list[Filter] | None = None):
        self.side = side
        self.default_timeout = config.gateway.filter_timeout
        if filters is None:
            filters = [REGISTRY[name].factory(config) for name in chain_names(config, side)]
        self.filters = filters

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.filters]

    async def run(self, ctx: MessageContext) -> PipelineResult:
        result = PipelineResult(verdict=Accept())
        for flt in self.filters:
            if flt.name in ctx.skip_filters:
                continue
            started = time.monotonic()
            verdict, outcome = await self._run_one(flt, ctx)
            result.steps.append(StepRecord(flt.name, outcome, (time.monotonic() - started) * 1000))
            ctx.findings.extend(verdict.findings)
            if is_decisive(verdict):
                if isinstance(verdict, Quarantine) and verdict.add_headers:
                    ctx.replace_data(prepend_headers(ctx.data, verdict.add_headers))
                result.verdict = verdict
                return result
            if isinstance(verdict, Modify):
                data = verdict.new_bytes if verdict.new_bytes is not None else ctx.data
                ctx.replace_data(prepend_headers(data, verdict.add_headers))
        return result

    async def _run_one(self, flt: Filter, ctx: MessageContext) -> tuple[Verdict, str]:
        timeout = getattr(flt, "timeout", None) or self.default_timeout
        on_error = getattr(flt, "on_error", "tempfail")
        try:
            async with asyncio.timeout(timeout):
                verdict = await flt.check(ctx)
            return verdict, type(verdict).__name__
        except TimeoutError:
            log.error("id=%s filter=%s timed out after %.0fs", ctx.id, flt.name, timeout)
            outcome = "timeout"
        except Exception:
            log.exception("id=%s filter=%s failed", ctx.id, flt.name)
            outcome = "error"
        if on_error == "accept":
            return Accept(), outcome
        return TempFail(
            f"The {flt.name} check could not finish; please try again later", 451, "4.3.0"
        ), outcome
