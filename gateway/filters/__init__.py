"""The filter registry.

A filter is a small object with a ``name`` and ``async def check(ctx) -> Verdict``. Each lives in
its own module in this package and registers a factory with :func:`register`; every module here is
imported on start-up, so adding a filter means adding one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.context import MessageContext
    from gateway.verdicts import Verdict

__all__ = ["Filter", "FilterSpec", "register", "known_filters", "default_chain", "spec", "REGISTRY"]


class Filter(Protocol):
    name: str

    async def check(self, ctx: MessageContext) -> Verdict: ...


@dataclass(frozen=True)
class FilterSpec:
    name: str
    factory: Callable[[Config], Filter]
    sides: tuple[str, ...]
    order: int  # position in the default chain (smaller runs first)
    summary: str
    # Where this filter must stand: "last" filters (DKIM signing) see the final bytes.
    last: bool = False


REGISTRY: dict[str, FilterSpec] = {}


def register(
    name: str,
    *,
    order: int,
    summary: str,
    sides: tuple[str, ...] = ("inbound", "outbound"),
    last: bool = False,
) -> Callable[[Callable[[Config], Filter]], Callable[[Config], Filter]]:
    """Register a filter factory under ``name``; a name can be registered once only."""

    def deco(factory: Callable[[Config], Filter]) -> Callable[[Config], Filter]:
        if name in REGISTRY:
            raise ValueError(f"filter {name!r} is registered twice")
        REGISTRY[name] = FilterSpec(name, factory, sides, order, summary, last)
        return factory

    return deco


def spec(name: str) -> FilterSpec:
    return REGISTRY[name]


def known_filters(side: str) -> list[str]:
    return sorted(n for n, s in REGISTRY.items() if side in s.sides)


def default_chain(side: str) -> list[str]:
    return [s.name for s in sorted(REGISTRY.values(), key=lambda s: (s.order, s.name))
            if side in s.sides]


def _import_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


_import_all()
