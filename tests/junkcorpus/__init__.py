"""A corpus of the mail a parish council receives, good and junk, generated from our own tables.

``corpus()`` returns the same list every time (a fixed seed): at least 300 good messages and 150
junk ones, each with its category, the envelope and the server it came from. ``publish`` puts the
senders' SPF, DKIM and DMARC records into a loopback DNS server; ``outbound_recipients`` are the
addresses the councillors wrote to, from which the gateway learns its known senders; ``judge``
runs every message through the gateway's real inbound checks.
"""

from __future__ import annotations

from tests.junkcorpus.build import Mail, corpus, outbound_recipients
from tests.junkcorpus.judge import Judged, config_overrides, judge, publish, summary

__all__ = ["Judged", "Mail", "config_overrides", "corpus", "judge", "outbound_recipients",
           "publish", "summary"]
