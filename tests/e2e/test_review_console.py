"""``council-gateway review`` and ``review set-password`` as the IT volunteer runs them, and
``run`` serving the page beside the listeners when ``[review] enabled = true``."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import httpx

from gateway.review.auth import read_password_hash, verify_password
from tests.conftest import write_config
from tests.e2e.test_console import ROOT, Running


async def _cli(config: Path, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, "--config", str(config), cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _config(tmp_path: Path, **review: object) -> Path:
    return write_config(tmp_path, {"review": {
        "password_file": str(tmp_path / "secret" / "review-password"),
        "listen": "127.0.0.1:0", **review}})


async def test_set_password_keeps_only_an_argon2_hash(tmp_path):
    config = _config(tmp_path)
    code, out, err = await _cli(config, "review", "set-password", "--stdin",
                                stdin=b"village hall 1894\n")
    assert code == 0, err
    assert "Password set" in out
    stored = read_password_hash(tmp_path / "secret" / "review-password")
    assert stored is not None and stored.startswith("$argon2id$")
    assert "village hall" not in stored
    assert verify_password(stored, "village hall 1894")

    code, _, err = await _cli(config, "review", "set-password", "--stdin", stdin=b"short\n")
    assert code == 1 and "at least 10 characters" in err
    assert read_password_hash(tmp_path / "secret" / "review-password") == stored


async def _get_login(port: int) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://127.0.0.1:{port}/login")


async def test_review_command_serves_the_page_until_sigterm(tmp_path):
    config = _config(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "review", "--config", str(config), cwd=str(ROOT),
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    running = Running(proc)
    try:
        m = await running.wait_for_line(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
        r = await _get_login(int(m.group(1)))
        assert r.status_code == 200 and "Log in to review held mail" in r.text
        assert "No password has been set" in r.text
        assert any("no password is set yet" in line for line in running.lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            code = await proc.wait()
    assert code == 0


async def test_run_serves_the_page_when_enabled(tmp_path):
    config = _config(tmp_path, enabled=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "run", "--config", str(config), cwd=str(ROOT),
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    running = Running(proc)
    try:
        m = await running.wait_for_line(r"review page listening on 127\.0\.0\.1:(\d+)")
        r = await _get_login(int(m.group(1)))
        assert r.status_code == 200 and "Log in to review held mail" in r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            code = await proc.wait()
    assert code == 0
    await running.wait_for_line("stopped")


async def test_check_config_accepts_the_review_section_and_reports_its_mistakes(tmp_path):
    code, out, err = await _cli(_config(tmp_path, enabled=True), "check-config")
    assert code == 0, out + err
    bad = tmp_path / "bad.toml"
    bad.write_text(_config(tmp_path).read_text() + 'session_minutes = "soon"\n')
    code, out, err = await _cli(bad, "check-config")
    assert code == 2
    assert "review.session_minutes" in out + err and "whole number" in out + err
