"""The milter driven by Debian's ``miltertest`` (the Sendmail milter test driver, from OpenDKIM):
an independent implementation of the MTA side of the protocol, scripted in Lua.

One script, two connections: a clean message from outside is accepted with the gateway's fields
inserted at the top, and a recipient outside the council's domains is refused at RCPT with a
reply code (the relay rule), as Postfix would be told.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from gateway.milter.server import running_milter
from gateway.milter.settings import MilterConfig
from tests.conftest import build_config, running_gateway
from tests.helpers import in_thread

SCRIPT = """
local function expect(conn, want, what)
  local got = mt.getreply(conn)
  if got ~= want then error(what .. ": reply " .. tostring(got)) end
end

local conn = mt.connect("inet:{port}@127.0.0.1")
if conn == nil then error("cannot connect") end
if mt.conninfo(conn, "client.example", "198.51.100.20") ~= nil then error("conninfo") end
expect(conn, SMFIR_CONTINUE, "connect")
if mt.helo(conn, "client.example") ~= nil then error("helo") end
expect(conn, SMFIR_CONTINUE, "helo")
if mt.mailfrom(conn, "<resident@example.org>") ~= nil then error("mail") end
expect(conn, SMFIR_CONTINUE, "mail")
if mt.rcptto(conn, "<clerk@stanion-pc.gov.uk>") ~= nil then error("rcpt") end
expect(conn, SMFIR_CONTINUE, "rcpt")
mt.header(conn, "From", "Resident <resident@example.org>")
mt.header(conn, "To", "clerk@stanion-pc.gov.uk")
mt.header(conn, "Subject", "Grass cutting on the green")
mt.header(conn, "Message-ID", "<grass.1@example.org>")
mt.header(conn, "Date", "Tue, 01 Dec 2026 10:00:00 +0000")
if mt.eoh(conn) ~= nil then error("eoh") end
expect(conn, SMFIR_CONTINUE, "eoh")
if mt.bodystring(conn, "When will the grass be cut?\\r\\n") ~= nil then error("body") end
expect(conn, SMFIR_CONTINUE, "body")
if mt.eom(conn) ~= nil then error("eom") end
expect(conn, SMFIR_ACCEPT, "eom")
if not mt.eom_check(conn, MT_HDRINSERT, "X-Council-Gateway") then
  error("the gateway's mark was not inserted")
end
mt.disconnect(conn)

local relay = mt.connect("inet:{port}@127.0.0.1")
if mt.conninfo(relay, "client.example", "198.51.100.20") ~= nil then error("conninfo 2") end
expect(relay, SMFIR_CONTINUE, "connect 2")
if mt.mailfrom(relay, "<resident@example.org>") ~= nil then error("mail 2") end
expect(relay, SMFIR_CONTINUE, "mail 2")
if mt.rcptto(relay, "<someone@example.net>") ~= nil then error("rcpt 2") end
expect(relay, SMFIR_REPLYCODE, "a recipient outside the council")
mt.disconnect(relay)
mt.echo("all as expected")
"""


async def test_miltertest_sees_the_gateways_edits_and_its_relay_refusal(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"milter": {"listen": "127.0.0.1:0"},
                                     "outbound": {"trusted_networks": ["192.0.2.0/24"]}})
    async with running_gateway(config) as gw, running_milter(
            gw, config.section(MilterConfig)) as milter:
        script = tmp_path / "session.lua"
        script.write_text(SCRIPT.replace("{port}", str(milter.port)))
        done = await in_thread(lambda: subprocess.run(
            ["miltertest", "-s", str(script)], capture_output=True, text=True, timeout=60))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all as expected" in done.stdout
