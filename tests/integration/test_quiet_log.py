"""An ordinary message leaves no warning in the gateway's log: warnings must stay worth reading."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import build_config, running_gateway
from tests.helpers import in_thread, make_message, send


async def test_delivering_a_message_logs_no_warning(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    config = build_config(tmp_path)
    caplog.set_level(logging.INFO)
    async with running_gateway(config) as gw:
        refused = await in_thread(send, gw.inbound_port, "resident@example.org",
                                  ["clerk@stanion-pc.gov.uk"], make_message())
    assert refused == {}
    assert any("verdict=deliver" in r.getMessage() for r in caplog.records)
    warnings = [f"{r.name}: {r.getMessage()}" for r in caplog.records
                if r.levelno >= logging.WARNING]
    assert warnings == []
