"""Password guessing against the submission side, as an attacker would do it.

The attacker sits in a network namespace (not loopback, so AUTH only after STARTTLS) and
reconnects for every try with ``tests.netclient guess``, rotating through the addresses of its
IPv6 /64 as a rented server can. The right password is placed late in its list (at 120, as in
the attack measured), so what is measured is whether the limits stop the list before it gets
there: 10 failures from one network (an IPv4 address, an IPv6 /64) lock logging in from it, the
right password included; 20 failures against one account lock that account for the networks
that failed recently, while a network that did not fail still logs in (the councillor at home);
``council-gateway user unlock`` ends a lock and the running gateway honours it at once.

The submission side listens on ``[::]`` for these tests, the usual dual-stack socket of a real
submission port: IPv4 clients arrive as ``::ffff:10.231.X.Y`` and must still count as their own
IPv4 address (not as one /64 that would hold every IPv4 client there is). It is bound for the
few seconds of a test; only a login made in the test's users file exists.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.people.users import UsersFile
from tests.conftest import build_config, running_gateway
from tests.netns import PYTHON, REPO, NetNs, netns_fixture  # noqa: F401

D = "stanion-pc.gov.uk"
COUNCILLOR = f"cllr.jones@{D}"
PASSWORD = "correct horse battery"
RIGHT_AT = 120
ATTACK = [f"guess-{i:03d}" if i != RIGHT_AT else PASSWORD for i in range(130)]
DELAY = 0.05  # auth_failure_delay: each failure waits DELAY x the network's recent failures
NETWORK_FAILURES, ACCOUNT_FAILURES = 10, 20  # the limits the gateway enforces


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=gw.stanion-pc.gov.uk",
         "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


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


def _config(tmp_path: Path, cert: tuple[Path, Path]) -> Any:
    UsersFile(tmp_path / "users").add(COUNCILLOR, PASSWORD)
    return build_config(tmp_path, {
        "gateway": {"auth_failure_delay": DELAY},
        "outbound": {"listen": "[::]:0", "trusted_networks": []},
        "tls": {"cert_file": str(cert[0]), "key_file": str(cert[1])},
    })


def _is(auth: dict[str, Any], code: int, enhanced: str, words: str = "") -> bool:
    return (auth["code"] == code and auth["text"].startswith(enhanced + " ")
            and words in auth["text"])


def _v4(address: str) -> str:
    """How the gateway names an IPv4 client on its dual-stack socket."""
    return f"::ffff:{address}"


# ---------------------------------------------------------------------- one network

async def test_guessing_from_one_64_stops_after_ten_and_never_reaches_the_password(
        tmp_path: Path, netns: NetNs, certificate: tuple[Path, Path]) -> None:
    async with running_gateway(_config(tmp_path, certificate)) as gw:
        attack = Attack(netns, gw.outbound_port, certificate[0], tmp_path)
        started = time.monotonic()
        result = await attack.guess(netns.client_v6_same64, ATTACK)
        attack_seconds = time.monotonic() - started
        # Another address in the same /64 is the same network: locked, right password or not.
        same64 = await attack.login(netns.client_v6_same64[-1], PASSWORD)
        # The other /64 and an IPv4 address are counted on their own: a wrong password is just
        # wrong there, and the right one logs in.
        other64 = [await attack.login(netns.client_v6_other64[0], p) for p in ("nope", PASSWORD)]
        ipv4 = [await attack.login(netns.client_v4[0], p) for p in ("nope", PASSWORD)]
        locks = attack.locks()
        events = attack.lock_events()

    codes = [code for _, _, code in result["trail"]]
    assert (result["tries"], result["connections"]) == (130, 130), result
    assert result["by_source"] == {a: 33 if i < 2 else 32
                                   for i, a in enumerate(netns.client_v6_same64)}, result
    # Not one guess got in; ten were answered, then the network was locked for the rest, the
    # right password at 120 included.
    assert (result["accepted"], result["accepted_at"]) == (0, []), result
    assert result["rejected"] == NETWORK_FAILURES
    assert result["other"] == {"454": 130 - NETWORK_FAILURES}
    assert (result["refused"], result["disconnected"], result["greeting"]) == (0, 0, {})
    assert codes == [535] * NETWORK_FAILURES + [454] * (130 - NETWORK_FAILURES)
    assert codes[RIGHT_AT] == 454
    # Rotating addresses did not reset the count: the ten failures came from all four.
    failed_from = {source for source, (_, _, code) in zip(
        [s for _, s, _ in result["trail"]], result["trail"], strict=True) if code == 535}
    assert failed_from == set(netns.client_v6_same64)
    assert _is(same64, 454, "4.7.0", "from your network"), same64
    assert _is(other64[0], 535, "5.7.8") and _is(other64[1], 235, "2.7.0"), other64
    assert _is(ipv4[0], 535, "5.7.8") and _is(ipv4[1], 235, "2.7.0"), ipv4
    # The lock is on record: in the locks file and once in the audit log.
    net = str(netns.net_v6_same64)
    assert list(locks["networks"]) == [net] and locks["accounts"] == {}, locks
    assert [(e["locked"], e["user"]) for e in events] == [(f"network {net}", COUNCILLOR)]
    assert events[0]["client"] in netns.client_v6_same64

    # Each failure waited DELAY x the network's failures so far before its answer.
    answered = [t for t, _, code in result["trail"] if code == 535]
    for n in range(2, NETWORK_FAILURES + 1):
        gap = answered[n - 1] - answered[n - 2]
        assert gap >= DELAY * n - 0.005, (n, gap)

    # Guesses per hour the limits allow one network, from what was observed: ten guesses take
    # `spent` seconds at the observed rate, then the network waits out its lock (which ends at
    # the time in the locks file, measured from the tenth answer, so the lock cannot be
    # shorter than that); then ten more.
    spent = answered[-1] - answered[0]
    lock = locks["networks"][net] - answered[-1]
    rate = (NETWORK_FAILURES - 1) / spent
    per_hour = NETWORK_FAILURES * 3600 / (spent + lock)
    # With the shipped delay (2 s) the ten failures alone take 2 x (1 + ... + 10) = 110 s.
    shipped = NETWORK_FAILURES * 3600 / (110 + lock)
    print(f"\n130 tries in {attack_seconds:.2f}s; answered guesses at {rate:.1f}/s until the "
          f"lock; lock {lock:.0f}s; so at most {per_hour:.2f} guesses per network per hour "
          f"(with the shipped 2 s delay: {shipped:.2f})")
    assert lock >= 899, lock
    assert per_hour <= 40, (per_hour, spent, lock)


# ---------------------------------------------------------------------- one account, many networks

async def test_account_lock_stops_networks_that_failed_lets_a_fresh_one_in_and_unlock_ends_it(
        tmp_path: Path, netns: NetNs, certificate: tuple[Path, Path]) -> None:
    wrong = [f"guess-{i:03d}" for i in range(NETWORK_FAILURES)]
    v4, same64, other64 = netns.client_v4, netns.client_v6_same64, netns.client_v6_other64
    async with running_gateway(_config(tmp_path, certificate)) as gw:
        attack = Attack(netns, gw.outbound_port, certificate[0], tmp_path)
        # 10 failures from a /64 (that network is locked), 5 + 5 from two IPv4 addresses:
        # 20 against the account, which locks it.
        first = await attack.guess(same64, wrong)
        second = await attack.guess([v4[0]], wrong[:5])
        third = await attack.guess([v4[1]], wrong[:5])
        locked = attack.locks()
        # Networks that failed recently are refused even with the right password ...
        failed_before = [await attack.login(a, PASSWORD) for a in (v4[0], v4[1])]
        # ... one that did not fail logs in (the councillor at home) ...
        fresh = await attack.login(other64[0], PASSWORD)
        # ... and a fresh network gets one guess: after it, it is one that failed recently.
        one_guess = [await attack.login(v4[2], p) for p in ("nope nope", PASSWORD)]

        # The IT volunteer ends the account lock; the running gateway honours it at once.
        unlocked = await attack.unlock(COUNCILLOR)
        after_unlock = [await attack.login(a, PASSWORD) for a in (v4[0], v4[1], v4[2])]
        after_account_unlock = attack.locks()
        # The network lock is its own, and ends the same way (an address names its /64).
        still_locked = await attack.login(same64[1], PASSWORD)
        net_unlocked = await attack.unlock(same64[2])
        net_after = await attack.login(same64[0], PASSWORD)
        events = attack.lock_events()
        locks_at_end = attack.locks()

    assert (first["rejected"], first["accepted"], first["other"]) == (10, 0, {}), first
    assert (second["rejected"], third["rejected"]) == (5, 5), (second, third)
    net = str(netns.net_v6_same64)
    assert set(locked["networks"]) == {net} and set(locked["accounts"]) == {COUNCILLOR}, locked
    for auth in failed_before:
        assert _is(auth, 454, "4.7.0", "for this account"), failed_before
    assert _is(fresh, 235, "2.7.0"), fresh
    assert _is(one_guess[0], 535, "5.7.8"), one_guess
    assert _is(one_guess[1], 454, "4.7.0", "for this account"), one_guess

    assert unlocked.returncode == 0 and "Unlocked" in unlocked.stdout, unlocked
    assert all(_is(a, 235, "2.7.0") for a in after_unlock), after_unlock
    assert after_account_unlock["accounts"] == {}, after_account_unlock
    assert _is(still_locked, 454, "4.7.0", "from your network"), still_locked
    assert net_unlocked.returncode == 0, net_unlocked
    assert _is(net_after, 235, "2.7.0"), net_after
    assert locks_at_end == {"networks": {}, "accounts": {}}, locks_at_end

    # Both locks are in the audit log, each once, with the client whose failure set it.
    assert [(e["locked"], e["user"]) for e in events] == [
        (f"network {net}", COUNCILLOR), (f"account {COUNCILLOR}", COUNCILLOR)], events
    assert events[0]["client"] in same64
    assert ipaddress.ip_address(events[1]["client"]) == ipaddress.ip_address(_v4(v4[1]))
