"""deliver_to URLs without a port: server-to-server relay is port 25, implicit TLS 465."""

from __future__ import annotations

import pytest

from gateway.config.reader import parse_next_hop


@pytest.mark.parametrize(("url", "port", "tls"), [
    ("smtp://mx.example", 25, "none"),
    ("smtp+starttls://tenant.mail.protection.outlook.com", 25, "starttls"),
    ("smtps://relay.example", 465, "implicit"),
    # A port written out is kept, 587 included.
    ("smtp+starttls://smarthost.example:587", 587, "starttls"),
    ("smtp://mx.example:2525", 2525, "none"),
    ("smtps://relay.example:4650", 4650, "implicit"),
])
def test_default_and_written_ports(url: str, port: int, tls: str) -> None:
    hop = parse_next_hop(url)
    assert (hop.kind, hop.port, hop.tls) == ("smtp", port, tls)


def test_the_port_is_shown_when_the_hop_is_printed() -> None:
    assert str(parse_next_hop("smtp+starttls://aspmx.l.google.com")) == \
        "smtp+starttls://aspmx.l.google.com:25"
