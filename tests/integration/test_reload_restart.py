"""A reload that cannot apply a setting says so: listening addresses (the proxy's sides, the
clerk's page, the metrics, the milter) are bound once, when the gateway starts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.assembly import restart_needed
from tests.conftest import build_config, running_gateway


def test_only_settings_read_at_start_are_named(tmp_path: Path) -> None:
    running = build_config(tmp_path, {"review": {"listen": "127.0.0.1:8025"}})
    new = build_config(tmp_path, {
        "inbound": {"listen": "127.0.0.1:2626"},
        "review": {"enabled": True, "listen": "127.0.0.1:8026"},
        "milter": {"listen": "127.0.0.1:8894"},
        "metrics": {"listen": "127.0.0.1:9125"},
        "gateway": {"max_message_size": "2MiB"},  # applies to the next message: not named
    })
    assert restart_needed(running, new) == [
        "inbound.listen", "review.enabled", "review.listen", "milter.listen", "metrics.listen"]
    assert restart_needed(running, running) == []


async def test_a_reload_warns_and_the_rest_applies(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    async with running_gateway(build_config(tmp_path)) as gw:
        with caplog.at_level(logging.WARNING, logger="gateway.smtp.server"):
            gw.reload(build_config(tmp_path, {"milter": {"listen": "127.0.0.1:8894"},
                                              "gateway": {"max_message_size": "2MiB"}}))
    assert ("milter.listen changed: it takes effect when the gateway is restarted; until then "
            "the running value stays") in caplog.messages
    assert gw.config.gateway.max_message_size == 2 * 1024 * 1024
