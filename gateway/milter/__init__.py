"""The milter front-end: every rule of the gateway inside a Postfix that already runs.

Postfix hands each message to the gateway over the milter protocol (``smtpd_milters``); the
same pipeline, policy, quarantine and audit log decide, and the verdict comes back as milter
actions: a refusal with the same reply, a hold (kept in the gateway's quarantine and discarded
from Postfix's queue), or header and body changes so the footer and DKIM signature arrive as
they would through the proxy. :mod:`~gateway.milter.server` speaks the protocol on asyncio with
the ``kilter.protocol`` parsers; :mod:`~gateway.milter.session` is one connection's
transactions; :mod:`~gateway.milter.edits` turns the message the pipeline made into edits.
"""
