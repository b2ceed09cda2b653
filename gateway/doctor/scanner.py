"""The virus scanner: does each clamd of ``[clamav] address`` answer, and how old are its
signatures?

:func:`assess_clamd` is pure (what PING and VERSION answered, and today's date); the talking is
:class:`gateway.adapters.clamd.ClamdClient`, each address asked on its own.
"""

from __future__ import annotations

import asyncio
from datetime import date

from gateway.adapters.clamd import ClamdAddress, ClamdClient, ClamdVersion
from gateway.doctor.results import Result, ok, problem, warning
from gateway.filters.antivirus import ClamavConfig

__all__ = ["MAX_SIGNATURE_AGE_DAYS", "assess_clamd", "check_clamd"]

MAX_SIGNATURE_AGE_DAYS = 3  # freshclam updates several times a day; older means it is not running

_FRESHCLAM = ("Install and run freshclam (apt-get install clamav-freshclam; see its log, "
              "/var/log/clamav/freshclam.log), then restart clamd.")


def assess_clamd(address: str, answered: bool, version: ClamdVersion | None, today: date, *,
                 others_answer: bool = False) -> list[Result]:
    """``answered``: PING got PONG; ``others_answer``: another configured clamd does."""
    if not answered:
        if others_answer:
            return [warning("clamd.ping", address,
                            f"clamd at {address} does not answer; the gateway scans with the "
                            "other clamd it is given, which does.",
                            "Start it, or remove it from [clamav] address.")]
        return [problem("clamd.ping", address,
                        f"clamd at {address} does not answer, so mail cannot be virus-checked "
                        "(it is turned away for now until it can be).",
                        "Start clamd (scripts/start-clamd, or systemctl start clamav-daemon), "
                        "or correct [clamav] address.")]
    if version is None:
        return [ok("clamd.ping", address, f"clamd at {address} answers."),
                warning("clamd.signatures", address,
                        f"clamd at {address} did not say which signatures it has.",
                        f"Ask it yourself (clamdscan --version) and check its log. {_FRESHCLAM}")]
    out = [ok("clamd.ping", address, f"clamd at {address} answers (ClamAV {version.engine}).")]
    if version.test_signatures_only:
        out.append(warning("clamd.signatures", address,
                           f"clamd at {address} has ONLY TEST SIGNATURES: real viruses are not "
                           "detected.", _FRESHCLAM))
    elif version.db_date is None:
        out.append(warning("clamd.signatures", address,
                           f"clamd at {address} has signatures version {version.db_version} "
                           "but did not say how old they are.", _FRESHCLAM))
    else:
        age = (today - version.db_date).days
        when = f"version {version.db_version} of {version.db_date.isoformat()}"
        if age > MAX_SIGNATURE_AGE_DAYS:
            out.append(warning("clamd.signatures", address,
                               f"clamd at {address} has signatures {age} days old ({when}): "
                               "new viruses are not detected.",
                               f"Check that freshclam runs and can reach database.clamav.net. "
                               f"{_FRESHCLAM}"))
        else:
            out.append(ok("clamd.signatures", address,
                          f"clamd at {address} has up-to-date signatures ({when})."))
    return out


async def _ask(address: ClamdAddress, scan_seconds: float, wait: float
               ) -> tuple[bool, ClamdVersion | None]:
    client = ClamdClient((address,), scan_seconds)
    if not await client.ping(wait=wait):
        return False, None
    return True, await client.version(wait=wait)


async def check_clamd(cfg: ClamavConfig, today: date, *, used: bool, wait: float = 5.0
                      ) -> list[Result]:
    """Each address of ``[clamav]`` at once; ``used``: a side runs the antivirus filter."""
    if not used:
        return [warning("clamd.used", "[clamav]",
                        "Neither side runs the antivirus filter, so mail is not virus-checked "
                        "(clamd was not asked).",
                        'Add "antivirus" to the filters list of [inbound] and [outbound], or '
                        "remove the lists to run every filter.")]
    answers = await asyncio.gather(*(_ask(a, cfg.timeout, wait) for a in cfg.addresses))
    any_answer = any(answered for answered, _ in answers)
    out: list[Result] = []
    for address, (answered, version) in zip(cfg.addresses, answers, strict=True):
        out += assess_clamd(str(address), answered, version, today, others_answer=any_answer)
    return out
