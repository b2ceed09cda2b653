"""The filter registry and the pipeline's ordering rules, without sockets."""

from __future__ import annotations

import pytest

from gateway.config import parse_config
from gateway.context import Envelope, MessageContext
from gateway.filters import REGISTRY, default_chain, register
from gateway.pipeline import Pipeline, chain_names, prepend_headers
from gateway.verdicts import Accept, Modify, Quarantine, Reject, TempFail, Verdict


def _ctx() -> MessageContext:
    return MessageContext(id="t1", direction="inbound",
                          envelope=Envelope("a@example.org", ["clerk@stanion-pc.gov.uk"]),
                          data=b"Subject: hi\r\n\r\nbody\r\n")


class Fixed:
    def __init__(self, name: str, verdict: Verdict, log: list[str]):
        self.name, self.verdict, self.log = name, verdict, log

    async def check(self, ctx: MessageContext) -> Verdict:
        self.log.append(self.name)
        return self.verdict


def test_a_filter_name_can_be_registered_once_only() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register("trace", order=1, summary="again")(lambda config: None)  # type: ignore


def test_default_chain_is_sorted_by_order() -> None:
    chain = default_chain("inbound")
    assert chain[0] == "trace"
    assert [REGISTRY[n].order for n in chain] == sorted(REGISTRY[n].order for n in chain)


def test_configured_order_is_kept() -> None:
    config = parse_config('[gateway]\ncouncil_domains = ["stanion-pc.gov.uk"]\n'
                          '[inbound]\nfilters = ["trace"]\n')
    assert chain_names(config, "inbound") == ["trace"]


@pytest.mark.parametrize("verdict", [
    Reject("no"), TempFail("later"), Quarantine(("junk",)),
])
async def test_decisive_verdict_stops_the_chain(verdict: Verdict) -> None:
    log: list[str] = []
    config = parse_config('[gateway]\ncouncil_domains = ["stanion-pc.gov.uk"]\n')
    pipe = Pipeline(config, "inbound", filters=[
        Fixed("one", Accept(), log), Fixed("two", verdict, log), Fixed("three", Accept(), log)])
    result = await pipe.run(_ctx())
    assert result.verdict == verdict
    assert log == ["one", "two"]
    assert [s.filter for s in result.steps] == ["one", "two"]


async def test_modifications_accumulate_and_later_filters_see_them() -> None:
    seen: list[bytes] = []

    class Looker:
        name = "looker"

        async def check(self, ctx: MessageContext) -> Verdict:
            seen.append(ctx.data)
            assert ctx.message["X-One"] == "1"
            return Accept()

    config = parse_config('[gateway]\ncouncil_domains = ["stanion-pc.gov.uk"]\n')
    ctx = _ctx()
    pipe = Pipeline(config, "inbound", filters=[
        Fixed("one", Modify(add_headers=(("X-One", "1"),)), []), Looker()])
    result = await pipe.run(ctx)
    assert isinstance(result.verdict, Accept)
    assert seen == [b"X-One: 1\r\nSubject: hi\r\n\r\nbody\r\n"]


async def test_skip_filters_are_not_run() -> None:
    log: list[str] = []
    config = parse_config('[gateway]\ncouncil_domains = ["stanion-pc.gov.uk"]\n')
    ctx = _ctx()
    ctx.skip_filters = frozenset({"two"})
    pipe = Pipeline(config, "inbound", filters=[
        Fixed("one", Accept(), log), Fixed("two", Reject("no"), log)])
    assert isinstance((await pipe.run(ctx)).verdict, Accept)
    assert log == ["one"]


def test_prepend_headers_folds_long_and_encodes_non_ascii() -> None:
    out = prepend_headers(b"Subject: x\r\n\r\n", (("X-Note", "café " * 30),))
    head = out.split(b"\r\n\r\n")[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert b"=?utf-8?" in out
    assert out.endswith(b"Subject: x\r\n\r\n")


@pytest.mark.parametrize("cls,args", [
    (Reject, ("x", 451, "4.7.1")), (TempFail, ("x", 554, "5.7.1")), (Reject, ("x", 554, "4.7.1")),
])
def test_verdict_codes_are_checked(cls: type, args: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        cls(*args)


def test_failed_logins_are_counted_per_address_and_forgotten() -> None:
    from gateway.smtp.handler import FailureCounter

    counter = FailureCounter(window=60)
    assert [counter.record("192.0.2.1") for _ in range(3)] == [1, 2, 3]
    assert counter.count("192.0.2.2") == 0
    counter.clear("192.0.2.1")
    assert counter.count("192.0.2.1") == 0
    gone = FailureCounter(window=0)
    gone.record("192.0.2.1")
    assert gone.count("192.0.2.1") == 0
