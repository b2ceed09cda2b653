"""The optional SpamAssassin opinion, from a real spamd started on loopback by the test.

Kirkham rule 15 (spam). The rules are the test's own (no rule updates are fetched): one body rule
worth 10 points against spamd's limit of 5.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.adapters.spamd import parse_spamd_reply, spamd_check
from gateway.quarantine.store import QuarantineStore
from tests.conftest import build_config, running_gateway
from tests.junkkit import CLERK, overrides, talk
from tests.mailmaker import make_mail

SPAMD = "/usr/sbin/spamd"
RULES = """body COUNCIL_TEST_SPAM /zz council test spam zz/i
describe COUNCIL_TEST_SPAM Test phrase for the council gateway
score COUNCIL_TEST_SPAM 10.0
required_score 5.0
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def spamd() -> Iterator[tuple[str, int]]:
    base = Path(tempfile.mkdtemp(prefix="council-spamd-"))
    os.chmod(base, 0o755)  # spamd's child drops to "nobody" when started as root
    rules, site = base / "rules", base / "site"
    rules.mkdir()
    site.mkdir()
    (rules / "50_council_test.cf").write_text(RULES)
    for pre in Path("/etc/spamassassin").glob("*.pre"):  # plugin loading, shipped with spamd
        shutil.copy(pre, site / pre.name)
    for d in (base, rules, site):
        os.chmod(d, 0o755)
    port = _free_port()
    cmd = [SPAMD, f"--listen=127.0.0.1:{port}", f"--configpath={rules}",
           f"--siteconfigpath={site}", "-x", "--max-children=1", "-s", "stderr"]
    if os.geteuid() == 0:
        cmd += ["-u", "nobody"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:  # wait for the listener, with a deadline
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError as e:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("spamd did not start: "
                                   + (proc.stderr.read().decode() if proc.stderr else "")) from e
            time.sleep(0.05)
    yield "127.0.0.1", port
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("reply,expected", [
    (b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 10.0 / 5.0\r\n\r\n", (True, 10.0, 5.0)),
    (b"SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.1 / 5.0\r\n\r\n", (False, -0.1, 5.0)),
    (b"SPAMD/1.0 76 Bad header line\r\n", None),
    (b"", None),
])
def test_parse_spamd_reply(reply, expected):
    got = parse_spamd_reply(reply)
    assert (None if got is None else (got.is_spam, got.score, got.required)) == expected


async def test_real_spamd_scores(spamd):
    spam = await spamd_check(spamd, make_mail(body="zz council test spam zz\n"), deadline=20)
    ham = await spamd_check(spamd, make_mail(), deadline=20)
    assert spam is not None and spam.is_spam and spam.score >= 10
    assert ham is not None and not ham.is_spam


async def test_spamd_down_gives_no_opinion():
    assert await spamd_check(("127.0.0.1", _free_port()), make_mail(), deadline=2) is None


async def test_spamd_opinion_holds_mail_end_to_end(tmp_path, dns_server, smtp_sink, spamd):
    config = build_config(tmp_path, overrides(
        tmp_path, dns_server.address, smtp_sink.url,
        junk={"spamd": f"{spamd[0]}:{spamd[1]}", "spamd_timeout": 20}))
    async with running_gateway(config) as gw:
        assert (await talk(gw.inbound_port, "pat@resident.example", [CLERK],
                           make_mail(body="Hello zz council test spam zz\n")))[0] == 250
        assert (await talk(gw.inbound_port, "pat@resident.example", [CLERK],
                           make_mail()))[0] == 250
    [h] = QuarantineStore(tmp_path / "quarantine").list()
    assert h.reasons[1:] == ("The spam checker (SpamAssassin) scores it 10 points; it counts 5 "
                             "or more as spam.",)
    assert len(smtp_sink.messages) == 1
