"""The ``[milter]`` section: where the milter listens for Postfix and how long a message may
take. Held mail is kept in the gateway's quarantine and discarded from Postfix's queue, so it
exists once; a release goes to the side's ``next_hop``, which for a Postfix council is a Postfix
listener without the milter (see docs/operations.md)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Section, parse_hostport

__all__ = ["MilterConfig", "parse_milter"]


@dataclass(frozen=True)
class MilterConfig:
    listen: str = ""  # "" off; "host:port" or "unix:/path"
    timeout: float = 300.0  # for one message's checks (Postfix's milter_content_timeout)
    socket_group: str = ""  # the group a unix socket is given, so Postfix may connect

    @property
    def enabled(self) -> bool:
        return bool(self.listen)


def parse_milter(s: Section) -> MilterConfig:
    listen = s.text("listen", "")
    if listen and not listen.startswith("unix:"):
        try:
            parse_hostport(listen)
        except ValueError as e:
            s.problem("listen", f'{e}, or "unix:/run/council-gateway/milter.sock"')
            listen = ""
    cfg = MilterConfig(listen=listen,
                       timeout=s.number("timeout", 300.0, minimum=5, maximum=3600),
                       socket_group=s.text("socket_group", ""))
    s.finish()
    return cfg
