"""The hostile-sender benchmark's third part: a connection flood from one address (see
bench/hostile.py)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from bench._rig import (
    CLERK,
    RESIDENT,
    GatewayProcess,
    Options,
    gateway,
    gateway_config,
    median,
    spread,
)
from bench.hostile_mail import (
    COUNCILLOR,
    FLOODER_ADDR,
    OTHER_ADDR,
    PROBE_ADDR,
    Sent,
    reply_counts,
    send,
    short_reply,
    small_message,
    warm_up,
)

# ---------------------------------------------------------------------------- 3. flood

@dataclass
class FloodRun:
    n_in: int
    n_out: int
    accepted: Counter[str]          # side -> greeted with 220
    refused: Counter[str]           # first line the flooder got, beyond the cap
    refused_ms: list[float]         # how fast a refused connection was answered
    councillor: list[Sent]
    mx_sender: list[Sent]
    councillor_before: list[Sent]
    mx_before: list[Sent]
    recovered_ms: float             # flooder closed its connections -> greeted again


async def _legit(gw: GatewayProcess, rounds: int) -> tuple[list[Sent], list[Sent]]:
    councillor = []
    mx = []
    for i in range(rounds):
        councillor.append(await send(gw.out_port, COUNCILLOR, [RESIDENT],
                                     small_message(i, COUNCILLOR, RESIDENT), local=PROBE_ADDR,
                                     deadline=30))
        mx.append(await send(gw.in_port, "neighbour@example.net", [CLERK],
                             small_message(i, "neighbour@example.net"), local=OTHER_ADDR,
                             deadline=30))
    return councillor, mx


async def _open_idle(port: int) -> tuple[str, float, asyncio.StreamWriter | None]:
    """Connect from the flooder's address and read the first line; keep the connection open
    (the writer) when it was a greeting."""
    t0 = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       local_addr=(FLOODER_ADDR, 0))
    except OSError as e:
        return f"connect failed: {e}", (time.perf_counter() - t0) * 1000, None
    try:
        line = await asyncio.wait_for(reader.readline(), 10)
    except (TimeoutError, OSError):
        line = b""
    text = line.decode("utf-8", "replace").rstrip("\r\n") or "(nothing within 10 s)"
    ms = (time.perf_counter() - t0) * 1000
    if text.startswith("220"):
        return text, ms, writer
    writer.close()
    return text, ms, None


async def flood_run(opts: Options, n_in: int, n_out: int, rounds: int, label: str) -> FloodRun:
    async with gateway(opts, label) as gw:
        await warm_up(gw)
        before = await _legit(gw, rounds)
        held: list[asyncio.StreamWriter] = []
        accepted: Counter[str] = Counter()
        refused: Counter[str] = Counter()
        refused_ms: list[float] = []
        for side, port, n in (("MX", gw.in_port, n_in), ("submission", gw.out_port, n_out)):
            # One after another, as a flooder holding its connections open does: each new one
            # sees all the earlier ones counted.
            for _ in range(n):
                text, ms, writer = await _open_idle(port)
                if writer is not None:
                    held.append(writer)
                    accepted[side] += 1
                else:
                    refused[f"{side}: {short_reply(text)}"] += 1
                    refused_ms.append(ms)
        during = await _legit(gw, rounds)
        for w in held:
            w.close()
        closed = time.perf_counter()
        recovered = float("nan")
        while time.perf_counter() - closed < 10:
            text, _, writer = await _open_idle(gw.in_port)
            if writer is not None:
                writer.write(b"QUIT\r\n")
                writer.close()
                recovered = (time.perf_counter() - closed) * 1000
                break
            await asyncio.sleep(0.005)
    return FloodRun(n_in, n_out, accepted, refused, refused_ms, during[0], during[1],
                    before[0], before[1], recovered)


def _served(sent: list[Sent]) -> str:
    ok = [s.seconds * 1000 for s in sent if s.code == 250]
    bad = Counter(short_reply(s.reply) for s in sent if s.code != 250)
    text = f"{len(ok)}/{len(sent)}, {median(ok):.0f} ms" if ok else f"0/{len(sent)}"
    return text + (f"; {reply_counts(bad)}" if bad else "")


async def flood_section(opts: Options, runs: int, rounds: int) -> list[str]:
    caps = per_address_caps(opts)
    levels = [(caps[0], caps[1]), (caps[0] * 5, caps[1] * 5)]
    rows = []
    refusals: Counter[str] = Counter()
    for n_in, n_out in levels:
        results = [await flood_run(opts, n_in, n_out, rounds, f"flood-{n_in}-{run}")
                   for run in range(runs)]
        for r in results:
            refusals.update(r.refused)
            print(f"  flood {n_in}/{n_out}: accepted {dict(r.accepted)}, refused "
                  f"{dict(r.refused)}, councillor {_served(r.councillor)}, MX "
                  f"{_served(r.mx_sender)}, recovered {r.recovered_ms:.0f} ms", file=sys.stderr)
        acc_in = median([r.accepted["MX"] for r in results])
        acc_out = median([r.accepted["submission"] for r in results])
        ref = median([sum(r.refused.values()) for r in results])
        refused_ms = median([x for r in results for x in r.refused_ms])
        rows.append(
            f"| {n_in} MX + {n_out} submission | {acc_in:.0f} + {acc_out:.0f} | {ref:.0f}"
            f"{f', answered in {refused_ms:.1f} ms' if ref else ''}"
            f" | {_served([s for r in results for s in r.councillor_before])} | "
            f"{_served([s for r in results for s in r.councillor])} | "
            f"{_served([s for r in results for s in r.mx_before])} | "
            f"{_served([s for r in results for s in r.mx_sender])} | "
            f"{spread([r.recovered_ms for r in results], '{:.1f}')} |")
    lines = [
        f"Per-address caps in force: MX {caps[0]}, submission {caps[1]} "
        f"(side pools: {caps[2]} each).",
        "",
        "| flooder's idle connections (one address) | kept open | refused | councillor "
        "(submission) before | councillor during | other sender (MX) before | other sender "
        "during | flooder greeted again after closing ms |",
        "|---|---:|---:|---|---|---|---|---:|",
        *rows,
    ]
    if refusals:
        lines += ["", "Replies the flooder got beyond its cap (all runs):", ""]
        lines += [f"- {n} × `{text}`" for text, n in refusals.most_common()]
    return lines


def per_address_caps(opts: Options) -> tuple[int, int, int]:
    """(MX cap, submission cap, side pool) as the gateway reads this benchmark's config; the
    shipped defaults when this gateway version has no such settings."""
    try:
        from gateway.assembly import parse_config
        cfg = parse_config(tomli_w.dumps(gateway_config(
            Path(tempfile.gettempdir()), opts.sink.port, opts.sink.dns_port, opts.clamd_address, 1,
            2)))
        return (int(getattr(cfg.inbound, "max_connections_per_address", 20)),
                int(getattr(cfg.outbound, "max_connections_per_address", 10)),
                int(getattr(cfg.inbound, "max_connections", cfg.gateway.max_connections)))
    except Exception:
        return 20, 10, 100


def inbound_chain(opts: Options) -> str:
    try:
        from gateway.assembly import chain_names, parse_config
        cfg = parse_config(tomli_w.dumps(gateway_config(
            Path(tempfile.gettempdir()), opts.sink.port, opts.sink.dns_port, opts.clamd_address, 1,
            2)))
        return ", ".join(chain_names(cfg, "inbound"))
    except Exception as e:
        return f"? ({e})"


