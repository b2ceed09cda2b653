"""The one list: the filters in their default order, the config sections, the background jobs.

Everything the gateway is made of is named here and built here from one parsed config; nothing
registers itself on import. A new filter is one file in ``gateway/filters/`` and one entry in
:data:`FILTERS` (see docs/architecture.md). SIGHUP builds a new :class:`Assembly` from the new
config and swaps it in whole.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.authcheck.resolver import DnsConfig, Resolver, parse_dns
from gateway.config import Config, Schema, SectionSpec
from gateway.config import load as _load
from gateway.doctor.settings import parse_doctor
from gateway.filters import (
    access_codes,
    antivirus,
    attachments,
    confidential,
    dkim,
    footer,
    junk,
    language,
    textrule,
    trace,
)
from gateway.metrics import parse_metrics
from gateway.metrics.serve import metrics_job
from gateway.milter.settings import parse_milter
from gateway.mime.limits import MimeLimits
from gateway.people.senders import SendersConfig, parse_senders
from gateway.pipeline import PIPELINE_KINDS, Filter, Pipeline, Stage
from gateway.policy import Policy, PolicyConfig, Side, parse_policy
from gateway.quarantine import jobs as quarantine_jobs
from gateway.review.settings import parse_review
from gateway.verdicts import Kind

if TYPE_CHECKING:
    from gateway.smtp.server import Gateway

__all__ = [
    "FILTERS",
    "JOBS",
    "SCHEMA",
    "Assembly",
    "FilterEntry",
    "assemble",
    "default_chain",
    "load_config",
    "parse_config",
    "restart_needed",
]

BOTH: tuple[Side, ...] = ("inbound", "outbound")
OUT: tuple[Side, ...] = ("outbound",)
IN: tuple[Side, ...] = ("inbound",)


@dataclass(frozen=True)
class FilterEntry:
    name: str
    sides: tuple[Side, ...]
    stage: Stage
    summary: str
    kinds: tuple[Kind, ...]
    build: Callable[[Config], Filter]


# Checks run in this order unless a side's ``filters`` list says otherwise; finishing steps
# always run last, in this order, so the DKIM signature covers the final bytes.
FILTERS: tuple[FilterEntry, ...] = (
    FilterEntry("antivirus", BOTH, Stage.CHECK,
                "scans every message with clamd; stops viruses", antivirus.KINDS,
                lambda c: antivirus.AntivirusFilter(c.section(antivirus.ClamavConfig),
                                                    c.gateway)),
    FilterEntry("attachments", BOTH, Stage.CHECK,
                "stops programs, macro files, disguised and locked attachments",
                attachments.KINDS,
                lambda c: attachments.AttachmentsFilter(
                    c.section(attachments.AttachmentsConfig))),
    FilterEntry("junk", IN, Stage.CHECK,
                "holds junk from unknown senders for the clerk, with the reasons", junk.KINDS,
                lambda c: junk.JunkFilter(
                    c.section(junk.JunkConfig), c.section(SendersConfig),
                    Resolver(c.section(DnsConfig)), hostname=c.gateway.hostname,
                    council_domains=c.gateway.council_domains)),
    FilterEntry("confidential", BOTH, Stage.CHECK,
                "flags, holds or refuses confidential material sent without the 'Restricted "
                "Distribution Private and Confidential' label", confidential.KINDS,
                lambda c: confidential.ConfidentialFilter(
                    c.section(confidential.ConfidentialConfig), c.gateway.council_domains)),
    FilterEntry("access_codes", OUT, Stage.CHECK,
                "flags, holds or refuses passwords, PINs and door codes in outgoing mail",
                (*access_codes.KINDS, textrule.UNREADABLE),
                lambda c: access_codes.AccessCodesFilter(
                    c.section(access_codes.AccessCodesConfig))),
    FilterEntry("language", OUT, Stage.CHECK,
                "flags, holds or refuses insulting, threatening or obscene language in "
                "outgoing mail", (*language.KINDS, textrule.UNREADABLE),
                lambda c: language.LanguageFilter(c.section(language.LanguageConfig))),
    FilterEntry("footer", OUT, Stage.FINISH,
                "adds the privacy-notice footer to outgoing mail, once (Kirkham rule 11)",
                footer.KINDS,
                lambda c: footer.FooterFilter(footer.load_footer(c.section(footer.FooterConfig)),
                                              c.section(footer.FooterConfig).signed)),
    FilterEntry("trace", BOTH, Stage.FINISH,
                "adds the X-Council-Gateway trace header with the message id and the findings",
                (), lambda c: trace.TraceFilter(c.gateway.hostname)),
    FilterEntry("dkim", OUT, Stage.FINISH,
                "DKIM-signs mail from the council's domains, over the final bytes", dkim.KINDS,
                lambda c: dkim.DkimFilter.from_config(c.section(dkim.DkimConfig),
                                                      c.gateway.council_domains)),
)
BY_NAME: Mapping[str, FilterEntry] = {f.name: f for f in FILTERS}

# Every finding code the gateway can report: the policy's vocabulary.
KINDS: tuple[Kind, ...] = tuple(dict.fromkeys(
    (*PIPELINE_KINDS, *(k for f in FILTERS for k in f.kinds))))

SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec("policy", lambda s: parse_policy(s, KINDS)),
    SectionSpec("clamav", antivirus.parse_clamav),
    SectionSpec("attachments", attachments.parse_attachments),
    SectionSpec("senders", parse_senders),
    SectionSpec("junk", junk.parse_junk),
    SectionSpec("dns", parse_dns),
    SectionSpec("confidential", confidential.parse_confidential),
    SectionSpec("access_codes", access_codes.parse_access_codes),
    SectionSpec("language", language.parse_language),
    SectionSpec("footer", footer.parse_footer),
    SectionSpec("dkim", dkim.parse_dkim),
    SectionSpec("review", parse_review, restart=("enabled", "listen")),
    SectionSpec("doctor", parse_doctor),
    SectionSpec("milter", parse_milter, restart=("listen", "socket_group")),
    SectionSpec("metrics", parse_metrics, restart=("listen",)),
)


def restart_needed(running: Config, new: Config) -> list[str]:
    """The settings that changed but apply only when the gateway starts again."""
    changed = [f"{side}.listen" for side in ("inbound", "outbound")
               if running.listener(side).listen != new.listener(side).listen]
    for spec in SECTIONS:
        old_values, new_values = running.sections.get(spec.name), new.sections.get(spec.name)
        changed += [f"{spec.name}.{key}" for key in spec.restart
                    if getattr(old_values, key, None) != getattr(new_values, key, None)]
    return changed


def default_chain(side: Side) -> list[str]:
    return [f.name for f in FILTERS if side in f.sides]


SCHEMA = Schema(SECTIONS, {side: tuple(default_chain(side)) for side in BOTH})


def parse_config(text: str, source: str = "<text>") -> Config:
    return _load.parse_config(text, SCHEMA, source)


def load_config(path: str | Path | None = None) -> Config:
    return _load.load_config(path, SCHEMA)


def chain_names(config: Config, side: Side) -> list[str]:
    """The filters a side runs: its ``filters`` list (or the default chain), checks in the
    listed order, then the finishing steps in their fixed order."""
    listed = config.listener(side).filters
    names = list(listed) if listed is not None else default_chain(side)
    checks = [n for n in names if BY_NAME[n].stage is Stage.CHECK]
    finishers = [f.name for f in FILTERS if f.stage is Stage.FINISH and f.name in names]
    return checks + finishers


@dataclass(frozen=True)
class Assembly:
    """The gateway built from one config: the policy and each side's pipeline."""

    config: Config
    policy: Policy
    pipelines: Mapping[Side, Pipeline]


def assemble(config: Config) -> Assembly:
    """Build every filter of both sides from ``config`` (raises if one cannot be built)."""
    policy = Policy(KINDS, config.section(PolicyConfig))
    pipelines = {
        side: Pipeline(side, [BY_NAME[n].build(config) for n in chain_names(config, side)],
                       policy, config.gateway.filter_timeout,
                       MimeLimits(config.gateway.max_parts, config.gateway.max_depth,
                                  config.gateway.max_text_size, config.gateway.max_header_field,
                                  config.gateway.max_header_size))
        for side in BOTH
    }
    return Assembly(config, policy, pipelines)


Job = Callable[["Gateway"], Coroutine[Any, Any, None]]


async def _review_page(gateway: Gateway) -> None:
    from gateway.review.serve import review_job  # the web stack loads only when it is used

    await review_job(gateway)


async def _milter(gateway: Gateway) -> None:
    from gateway.milter.server import milter_job  # the protocol loads only when it is used

    await milter_job(gateway)


# Long-running jobs ``run`` starts beside the listeners, each following the live assembly.
JOBS: tuple[tuple[str, Job], ...] = (
    ("quarantine purge", quarantine_jobs.purge_job),
    ("daily digest", quarantine_jobs.digest_job),
    ("review page", _review_page),
    ("milter", _milter),
    ("metrics", metrics_job),
)
