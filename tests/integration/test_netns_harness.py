"""The namespace harness works: the gateway sees a real, untrusted, non-loopback client.

Clients run inside the namespace (``tests.netclient`` under ``ip netns exec``) while the gateway
and the sink go on running in this test's event loop on the host side of the veth.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gateway.people.users import UsersFile
from tests.certkit import openssl_self_signed
from tests.conftest import SmtpSink, build_config, running_gateway
from tests.helpers import make_message
from tests.netns import NetNs, cleanup_stale, create_netns, netns_fixture  # noqa: F401

pytest_plugins = ["pytester"]

RESIDENT = "resident@example.org"
CLERK = "clerk@stanion-pc.gov.uk"
COUNCILLOR = "cllr.jones@stanion-pc.gov.uk"
PASSWORD = "correct horse battery"


def _audit_clients(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()
    return [e["client"] for e in map(json.loads, lines) if e.get("event") == "message"]


def _by_cmd(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The netclient's lines keyed by command (the last one wins: EHLO after STARTTLS)."""
    return {line["cmd"]: line for line in lines}


def _gone(name: str, host_if: str) -> bool:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return (name not in listed.split() and not Path("/run/netns", name).exists()
            and not Path("/sys/class/net", host_if).exists())


async def _send(ns: NetNs, source: str, host: str, port: int) -> list[dict[str, Any]]:
    return await ns.aclient("session", "--source", source, "--host", host, "--port", str(port),
                            "--mail-from", RESIDENT, "--rcpt", CLERK, "--data", "-",
                            input=make_message(RESIDENT, CLERK))


# ---------------------------------------------------------------------- what the gateway sees

async def test_gateway_sees_each_namespace_address(tmp_path: Path, netns: NetNs,
                                                   smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, {
        "inbound": {"listen": f"{netns.host_v4}:0", "deliver_to": smtp_sink.url},
        "outbound": {"listen": f"{netns.host_v4}:0"},
    })
    async with running_gateway(config) as gw:
        # All at once: the loop serves gateway and sink while the clients run elsewhere.
        results = await asyncio.gather(*(_send(netns, a, netns.host_v4, gw.inbound_port)
                                         for a in netns.client_v4))
        await smtp_sink.wait_for(len(netns.client_v4))
    for address, lines in zip(netns.client_v4, results, strict=True):
        by = _by_cmd(lines)
        assert by["CONNECT"]["local"][0] == address
        assert by["MESSAGE"]["code"] == 250, lines
    assert sorted(_audit_clients(tmp_path)) == sorted(netns.client_v4)


async def test_outbound_refuses_the_untrusted_client_without_login(tmp_path: Path,
                                                                   netns: NetNs) -> None:
    config = build_config(tmp_path, {  # trusted_networks stays the default, 127.0.0.0/8
        "inbound": {"listen": f"{netns.host_v4}:0"},
        "outbound": {"listen": f"{netns.host_v4}:0"},
    })
    async with running_gateway(config) as gw:
        lines = await netns.aclient(
            "session", "--source", netns.client_v4[0], "--host", netns.host_v4,
            "--port", str(gw.outbound_port), "--mail-from", COUNCILLOR, "--rcpt", RESIDENT,
            "--data", "-", input=make_message(COUNCILLOR, RESIDENT))
    assert [line["cmd"] for line in lines] == ["CONNECT", "EHLO", "MAIL", "QUIT"]
    mail = _by_cmd(lines)["MAIL"]
    assert mail["code"] == 530 and mail["text"].startswith("5.7.0"), mail


async def test_ipv6_from_both_64s_reaches_the_gateway(tmp_path: Path, netns: NetNs,
                                                      smtp_sink: SmtpSink) -> None:
    config = build_config(tmp_path, {
        "inbound": {"listen": f"[{netns.host_v6}]:0", "deliver_to": smtp_sink.url},
    })
    sources = netns.client_v6_same64 + netns.client_v6_other64
    async with running_gateway(config) as gw:
        results = await asyncio.gather(*(_send(netns, a, netns.host_v6, gw.inbound_port)
                                         for a in sources))
        await smtp_sink.wait_for(len(sources))
    assert all(_by_cmd(lines)["MESSAGE"]["code"] == 250 for lines in results), results
    seen = {ipaddress.ip_address(c) for c in _audit_clients(tmp_path)}
    assert seen == {ipaddress.ip_address(a) for a in sources}
    assert {ipaddress.ip_network(f"{a}/64", strict=False) for a in seen} == {
        netns.net_v6_same64, netns.net_v6_other64}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return openssl_self_signed(tmp_path_factory.mktemp("tls"))


async def test_login_needs_tls_off_loopback_and_guesses_are_counted(
        tmp_path: Path, netns: NetNs, certificate: tuple[Path, Path]) -> None:
    UsersFile(tmp_path / "users").add(COUNCILLOR, PASSWORD)
    cert, key = certificate
    config = build_config(tmp_path, {
        "outbound": {"listen": f"{netns.host_v4}:0", "trusted_networks": []},
        "tls": {"cert_file": str(cert), "key_file": str(key)},
    })
    async with running_gateway(config) as gw:
        target = ["--host", netns.host_v4, "--port", str(gw.outbound_port)]
        plain = await netns.aclient("session", "--source", netns.client_v4[1], *target,
                                    "--auth", "PLAIN", "--user", COUNCILLOR,
                                    "--password", PASSWORD)
        tls = await netns.aclient("session", "--source", netns.client_v4[1], *target,
                                  "--starttls", "--cafile", str(cert), "--auth", "LOGIN",
                                  "--user", COUNCILLOR, "--password", PASSWORD)
        [guesses] = await netns.aclient(
            "guess", "--source", netns.client_v4[2], *target, "--starttls", "--user", COUNCILLOR,
            "--passwords", "-", "--per-connection", "2",
            input=f"wrong one\nwrong two\n{PASSWORD}\n")
    # Not loopback, so no login in clear text (538 5.7.11 encryption required).
    assert _by_cmd(plain)["AUTH"]["code"] == 538, plain
    assert _by_cmd(tls)["STARTTLS"]["tls"].startswith("TLS")
    assert _by_cmd(tls)["AUTH"]["code"] == 235, tls
    assert guesses["tries"] == 3 and guesses["connections"] == 2, guesses
    assert (guesses["rejected"], guesses["accepted"], guesses["accepted_at"]) == (2, 1, [2])
    assert guesses["other"] == {} and guesses["refused"] == 0 and guesses["elapsed"] > 0


async def test_python_runs_inside_the_namespace(netns: NetNs) -> None:
    done = await netns.apython(
        "import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print('ok')",
        netns.client_v4[0])
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    routes = netns.run(["ip", "-6", "route", "show", "default"], check=True).stdout
    assert "via fe80::1" in routes


# ---------------------------------------------------------------------- clean-up on every path

def test_namespace_and_veth_are_gone_after_use() -> None:
    with create_netns() as ns:
        name, host_if = ns.name, ns.host_if
        assert not _gone(name, host_if)
    assert _gone(name, host_if)


def test_namespace_is_removed_when_the_body_fails() -> None:
    with pytest.raises(RuntimeError, match="on purpose"), create_netns() as ns:
        name, host_if = ns.name, ns.host_if
        raise RuntimeError("on purpose")
    assert _gone(name, host_if)


async def test_a_client_left_running_is_killed_at_tear_down() -> None:
    with create_netns() as ns:
        proc = await ns.aspawn(["sleep", "60"])
        name, host_if = ns.name, ns.host_if
    assert await asyncio.wait_for(proc.wait(), 5) == -9
    assert _gone(name, host_if)


def test_leftovers_of_a_dead_run_are_removed() -> None:
    ns = create_netns()
    # Pretend the run died: its lock is released, the namespace and veth stay behind.
    assert ns._lock is not None
    ns._lock.close()
    ns._lock, ns.closed = None, True
    assert not _gone(ns.name, ns.host_if)
    assert ns.index in cleanup_stale()
    assert _gone(ns.name, ns.host_if)


def test_the_fixture_cleans_up_after_a_failing_test(pytester: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the inner run needs none
    record = pytester.path / "names.txt"
    pytester.makepyfile(test_inner=f"""
        from pathlib import Path
        from tests.netns import netns_fixture  # noqa: F401

        def test_fails(netns):
            Path({str(record)!r}).write_text(netns.name + " " + netns.host_if)
            assert False, "on purpose"
        """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    name, host_if = record.read_text().split()
    assert _gone(name, host_if)
    assert os.path.basename(name).startswith("gwtest-")
