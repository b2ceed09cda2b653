"""Password guessing against the submission side, as an attacker would do it.

The attacker sits in a network namespace (not loopback, so AUTH only after STARTTLS) and
reconnects for every try with ``tests.netclient guess``, rotating through the addresses of its
IPv6 /64 as a rented server can. The right password is placed late in its list (at 120, as in
the attack measured), so what is measured is whether the limits stop the list before it gets
there: 10 failures from one network (an IPv4 address, an IPv6 /64) lock logging in from it, the
right password included; 20 failures against one account lock that account for the networks
that failed recently, while a network that did not fail still logs in (the councillor at home);
``council-gateway user unlock`` ends a lock and the running gateway honours it at once.

One listener is one address family (asyncio binds ``[::]`` IPv6-only), so the IPv6 and the
IPv4 runs each have a gateway listening on the host end of the namespace's veth.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Config
from gateway.people.users import UsersFile
from tests.certkit import openssl_self_signed
from tests.conftest import build_config, running_gateway
from tests.netns import PYTHON, REPO, NetNs, create_netns

D = "stanion-pc.gov.uk"
COUNCILLOR = f"cllr.jones@{D}"
PASSWORD = "correct horse battery"
RIGHT_AT = 120
ATTACK = [f"guess-{i:03d}" if i != RIGHT_AT else PASSWORD for i in range(130)]
DELAY = 0.05  # auth_failure_delay: each failure waits DELAY x the network's recent failures
NETWORK_FAILURES, ACCOUNT_FAILURES = 10, 20  # the limits the gateway enforces


@pytest.fixture
def netns() -> Iterator[NetNs]:
    """The harness's namespace with five IPv4 client addresses (each its own network)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2's ip")
    with create_netns(n_v4=5) as ns:
        yield ns


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return openssl_self_signed(tmp_path_factory.mktemp("tls"))


class Attack:
    """The namespace, the gateway's port and certificate: ways to try passwords."""

    def __init__(self, netns: NetNs, port: int, cert: Path, tmp_path: Path):
        self.ns, self.port, self.cert, self.tmp_path = netns, port, cert, tmp_path

    def _target(self, source: str) -> list[str]:
        host = self.ns.host_v6 if ":" in source else self.ns.host_v4
        return ["--host", host, "--port", str(self.port), "--starttls", "--cafile",
                str(self.cert)]

    async def guess(self, sources: list[str], passwords: list[str]) -> dict[str, Any]:
        """``netclient guess``: one connection per try, rotating through ``sources``."""
        [result] = await self.ns.aclient(
            "guess", "--sources", ",".join(sources), *self._target(sources[0]),
            "--user", COUNCILLOR, "--passwords", "-", input="\n".join(passwords) + "\n",
            timeout=120)
        return result

    async def login(self, source: str, password: str) -> dict[str, Any]:
        """One connection, one AUTH PLAIN: its reply line."""
        lines = await self.ns.aclient("session", "--source", source, *self._target(source),
                                      "--auth", "PLAIN", "--user", COUNCILLOR,
                                      "--password", password)
        [auth] = [line for line in lines if line["cmd"] == "AUTH"]
        return auth

    def locks(self) -> dict[str, dict[str, float]]:
        path = self.tmp_path / "state" / "login-locks.json"
        data: dict[str, dict[str, float]] = json.loads(path.read_text()) if path.exists() else {}
        return {"networks": data.get("networks", {}), "accounts": data.get("accounts", {})}

    def lock_events(self) -> list[dict[str, Any]]:
        lines = (self.tmp_path / "logs" / "audit.jsonl").read_text().splitlines()
        return [e for e in map(json.loads, lines) if e.get("event") == "login-lock"]

    async def unlock(self, name: str) -> subprocess.CompletedProcess[str]:
        """``council-gateway user unlock NAME``, the console command, in its own process."""
        proc = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "gateway", "user", "unlock", name, "--config",
            str(self.tmp_path / "gateway.toml"), cwd=REPO, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return subprocess.CompletedProcess([], proc.returncode, out.decode(), err.decode())


def _config(tmp_path: Path, cert: tuple[Path, Path], listen: str) -> Config:
    UsersFile(tmp_path / "users").add(COUNCILLOR, PASSWORD)
    return build_config(tmp_path, {
        "gateway": {"auth_failure_delay": DELAY},
        "outbound": {"listen": listen, "trusted_networks": []},
        "tls": {"cert_file": str(cert[0]), "key_file": str(cert[1])},
    })


def _is(auth: dict[str, Any], code: int, enhanced: str, words: str = "") -> bool:
    return (auth["code"] == code and auth["text"].startswith(enhanced + " ")
            and words in auth["text"])


# ---------------------------------------------------------------------- one network

@dataclass(frozen=True)
class Family:
    """Where the attacker guesses from, and its neighbours, in one address family."""

    listen: str                # the gateway's listener
    attacker: list[str]        # the addresses the attack rotates through (one network)
    same_network: str          # another address of that network
    other_network: str         # an address of a different network next to it
    network: str               # how the gateway names the attacker's network


def _family(netns: NetNs, name: str) -> Family:
    if name == "ipv6":  # four addresses of one /64; the other /64 is next door
        return Family(f"[{netns.host_v6}]:0", netns.client_v6_same64,
                      netns.client_v6_same64[-1], netns.client_v6_other64[0],
                      str(netns.net_v6_same64))
    # One IPv4 address is one network: its neighbour in the same /24 is another.
    return Family(f"{netns.host_v4}:0", [netns.client_v4[0]], netns.client_v4[0],
                  netns.client_v4[1], netns.client_v4[0])


@pytest.mark.parametrize("family", ["ipv6", "ipv4"])
async def test_guessing_from_one_network_stops_after_ten_and_never_reaches_the_password(
        tmp_path: Path, netns: NetNs, certificate: tuple[Path, Path], family: str) -> None:
    f = _family(netns, family)
    async with running_gateway(_config(tmp_path, certificate, f.listen)) as gw:
        attack = Attack(netns, gw.outbound_port, certificate[0], tmp_path)
        started = time.monotonic()
        result = await attack.guess(f.attacker, ATTACK)
        attack_seconds = time.monotonic() - started
        # Another address of the same network: locked too, right password or not.
        same = await attack.login(f.same_network, PASSWORD)
        # The network next door is counted on its own: a wrong password is just wrong there,
        # and the right one logs in.
        other = [await attack.login(f.other_network, p) for p in ("nope nope", PASSWORD)]
        locks = attack.locks()
        events = attack.lock_events()
        # The IT volunteer ends the network lock (naming any address in it): at once.
        unlocked = await attack.unlock(f.attacker[-1])
        after_unlock = await attack.login(f.attacker[0], PASSWORD)
        locks_after = attack.locks()

    tries = len(ATTACK)
    codes = [code for _, _, code in result["trail"]]
    assert (result["tries"], result["connections"]) == (tries, tries), result
    n = len(f.attacker)
    assert result["by_source"] == {a: -(-(tries - i) // n) for i, a in enumerate(f.attacker)}
    # Not one guess got in; ten were answered, then the network was locked for the rest, the
    # right password at 120 included.
    assert (result["accepted"], result["accepted_at"]) == (0, []), result
    assert result["rejected"] == NETWORK_FAILURES
    assert result["other"] == {"454": tries - NETWORK_FAILURES}
    assert (result["refused"], result["disconnected"], result["greeting"]) == (0, 0, {})
    assert codes == [535] * NETWORK_FAILURES + [454] * (tries - NETWORK_FAILURES)
    assert codes[RIGHT_AT] == 454
    # Rotating addresses did not reset the count: the ten failures came from all of them.
    assert {source for _, source, code in result["trail"] if code == 535} == set(f.attacker)
    assert _is(same, 454, "4.7.0", "from your network"), same
    assert _is(other[0], 535, "5.7.8") and _is(other[1], 235, "2.7.0"), other
    # The lock is on record: in the locks file and once in the audit log.
    assert list(locks["networks"]) == [f.network] and locks["accounts"] == {}, locks
    assert [(e["locked"], e["user"]) for e in events] == [(f"network {f.network}", COUNCILLOR)]
    assert events[0]["client"] in f.attacker
    assert unlocked.returncode == 0 and "Unlocked" in unlocked.stdout, unlocked
    assert _is(after_unlock, 235, "2.7.0"), after_unlock
    assert locks_after["networks"] == {}, locks_after

    # Each failure waited DELAY x the network's failures so far before its answer.
    answered = [t for t, _, code in result["trail"] if code == 535]
    for k in range(2, NETWORK_FAILURES + 1):
        gap = answered[k - 1] - answered[k - 2]
        assert gap >= DELAY * k - 0.005, (k, gap)

    # Guesses per hour the limits allow one network, from what was observed: ten guesses take
    # `spent` seconds at the observed rate, then the network waits out its lock (which ends at
    # the time in the locks file; measured from the tenth answer it cannot come out longer
    # than it is); then ten more.
    spent = answered[-1] - answered[0]
    lock = locks["networks"][f.network] - answered[-1]
    rate = (NETWORK_FAILURES - 1) / spent
    per_hour = NETWORK_FAILURES * 3600 / (spent + lock)
    # With the shipped delay (2 s) the ten failures alone wait 2 x (1 + ... + 10) = 110 s.
    shipped = NETWORK_FAILURES * 3600 / (110 + lock)
    print(f"\n{family}: {tries} tries in {attack_seconds:.2f}s; guesses answered at "
          f"{rate:.1f}/s until the lock; lock {lock:.0f}s; so at most {per_hour:.2f} guesses "
          f"per network per hour (with the shipped 2 s delay: {shipped:.2f})")
    assert lock > 890, lock  # 900 s, less the last delay and the time to answer
    assert per_hour <= 40, (per_hour, spent, lock)


# ---------------------------------------------------------------------- one account, many networks

async def test_account_lock_stops_networks_that_failed_lets_a_fresh_one_in_and_unlock_ends_it(
        tmp_path: Path, netns: NetNs, certificate: tuple[Path, Path]) -> None:
    wrong = [f"guess-{i:03d}" for i in range(NETWORK_FAILURES)]
    v4 = netns.client_v4
    async with running_gateway(_config(tmp_path, certificate, f"{netns.host_v4}:0")) as gw:
        attack = Attack(netns, gw.outbound_port, certificate[0], tmp_path)
        # 10 failures from one network (it is locked), 5 + 5 from two more: 20 against the
        # account, which locks it.
        first = await attack.guess([v4[0]], wrong)
        second = await attack.guess([v4[1]], wrong[:5])
        third = await attack.guess([v4[2]], wrong[:5])
        locked = attack.locks()
        # Networks that failed recently are refused even with the right password ...
        failed_before = [await attack.login(a, PASSWORD) for a in (v4[1], v4[2])]
        # ... one that did not fail logs in (the councillor at home) ...
        fresh = await attack.login(v4[3], PASSWORD)
        # ... and a fresh network gets one guess: after it, it is one that failed recently.
        one_guess = [await attack.login(v4[4], p) for p in ("nope nope", PASSWORD)]

        # The IT volunteer ends the account lock; the running gateway honours it at once.
        unlocked = await attack.unlock(COUNCILLOR)
        after_unlock = [await attack.login(a, PASSWORD) for a in (v4[1], v4[2], v4[4])]
        after_account_unlock = attack.locks()
        # The network lock is its own, and stays.
        still_locked = await attack.login(v4[0], PASSWORD)
        events = attack.lock_events()

    assert (first["rejected"], first["accepted"], first["other"]) == (10, 0, {}), first
    assert (second["rejected"], third["rejected"]) == (5, 5), (second, third)
    assert (second["accepted"], third["accepted"]) == (0, 0), (second, third)
    assert set(locked["networks"]) == {v4[0]}, locked
    assert set(locked["accounts"]) == {COUNCILLOR}, locked
    for auth in failed_before:
        assert _is(auth, 454, "4.7.0", "for this account"), failed_before
    assert _is(fresh, 235, "2.7.0"), fresh
    assert _is(one_guess[0], 535, "5.7.8"), one_guess
    assert _is(one_guess[1], 454, "4.7.0", "for this account"), one_guess

    assert unlocked.returncode == 0 and "Unlocked" in unlocked.stdout, unlocked
    assert all(_is(a, 235, "2.7.0") for a in after_unlock), after_unlock
    assert after_account_unlock == {"networks": {v4[0]: locked["networks"][v4[0]]},
                                    "accounts": {}}, after_account_unlock
    assert _is(still_locked, 454, "4.7.0", "from your network"), still_locked

    # Both locks are in the audit log, each once, with the client whose failure set it.
    assert [(e["locked"], e["client"], e["user"]) for e in events] == [
        (f"network {v4[0]}", v4[0], COUNCILLOR),
        (f"account {COUNCILLOR}", v4[2], COUNCILLOR)], events
