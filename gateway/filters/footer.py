"""Adds the council's privacy-notice footer to every outgoing message, exactly once.

Kirkham rule 11: "All emails sent must contain the Councils standard business 'footer' which
includes a privacy notice." The MIME work is :mod:`gateway.mime.footer`; this module reads the
``[footer]`` section and the footer files, and turns the outcome into a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from gateway.config import Section
from gateway.context import MessageContext
from gateway.mime.footer import SIGNED_POLICIES, Footer, apply_footer
from gateway.mime.workers import in_worker
from gateway.pipeline import Stage
from gateway.verdicts import Action, Change, Finding, Kind, Report, Severity

__all__ = ["KINDS", "FooterConfig", "FooterFilter", "load_footer", "parse_footer"]

DEFAULT_TEXT_FILE = "config/footer.txt"
DEFAULT_HTML_FILE = "config/footer.html"
# Messages larger than this are changed in a worker thread so the event loop stays responsive.
_THREAD_ABOVE = 256 * 1024


@dataclass(frozen=True)
class FooterConfig:
    text_file: Path | None  # None: the copy shipped inside the package
    html_file: Path | None  # None: shipped copy, unless html_derived
    html_derived: bool = False  # the HTML form is made from the text
    signed: str = "wrap"


def _read(path: Path | None, packaged: str) -> str:
    if path is None:
        return files("gateway").joinpath(f"data/{packaged}").read_text(encoding="utf-8")
    return path.read_text(encoding="utf-8")


def load_footer(cfg: FooterConfig) -> Footer:
    """The footer named by the config, in both forms (raises OSError/ValueError)."""
    text = _read(cfg.text_file, "footer.txt")
    html = "" if cfg.html_derived else _read(cfg.html_file, "footer.html")
    return Footer(text, html)


def _file_key(s: Section, name: str, default: str) -> tuple[Path | None, bool]:
    """(path, found): the shipped default path falls back to the packaged copy (None) when the
    gateway runs outside its directory; any other path must exist."""
    value = s.text(name, default)
    if not value:
        return None, False
    p = Path(value)
    if value == default and not p.exists():
        return None, True
    try:
        p.read_text(encoding="utf-8")
    except FileNotFoundError:
        s.problem(name, f'the file "{p}" does not exist')
        return None, False
    except (OSError, UnicodeDecodeError) as e:
        s.problem(name, f'the file "{p}" cannot be read as UTF-8 text: {e}')
        return None, False
    return p, True


def parse_footer(s: Section) -> FooterConfig:
    """``[footer]``: text_file, html_file (empty: made from the text), signed."""
    text_file, _ = _file_key(s, "text_file", DEFAULT_TEXT_FILE)
    # The shipped HTML goes with the shipped text only: with a council's own text it would say
    # something else, so then the HTML is made from the text unless html_file names one.
    own_text = s.text("text_file", DEFAULT_TEXT_FILE) != DEFAULT_TEXT_FILE
    html_default = "" if own_text and not s.has("html_file") else DEFAULT_HTML_FILE
    html_file, html_found = _file_key(s, "html_file", html_default)
    derived = not html_found or (html_file is None and own_text)
    cfg = FooterConfig(text_file, html_file, derived, s.choice("signed", "wrap", SIGNED_POLICIES))
    try:
        load_footer(cfg)
    except ValueError as e:
        s.problem("text_file", f"{e}; write the privacy notice in it")
    except OSError:
        pass  # reported above
    s.finish()
    return cfg


_SAY = {
    "added": "privacy notice footer added (Kirkham rule 11)",
    "wrapped": "privacy notice footer added as its own part (Kirkham rule 11)",
    "signed-wrapped": "signed or encrypted message wrapped with the privacy notice footer "
                      "as its own part; the signature is untouched (Kirkham rule 11)",
    "present": "privacy notice footer already present",
    "signed-skipped": "signed or encrypted message sent without the privacy notice footer "
                      '([footer] signed = "skip")',
    "signed-rejected": "This message is signed or encrypted, so the gateway cannot add the "
                       "council's privacy notice to it; send it unsigned",
}
KINDS = (
    *(Kind(f"footer.{outcome}", text) for outcome, text in _SAY.items()
      if outcome != "signed-rejected"),
    Kind("footer.signed-rejected", "a signed or encrypted message the footer cannot be added "
         'to, with [footer] signed = "reject"', Action.REFUSE, Action.REFUSE),
)


class FooterFilter:
    name = "footer"
    stage = Stage.FINISH
    timeout: float | None = None

    def __init__(self, footer: Footer, signed: str = "wrap"):
        self.footer = footer
        self.signed = signed

    async def check(self, ctx: MessageContext) -> Report:
        if ctx.size > _THREAD_ABOVE:
            result = await in_worker(ctx.size, apply_footer, ctx.data, self.footer, self.signed)
        else:
            result = apply_footer(ctx.data, self.footer, self.signed)
        severity = Severity.MEDIUM if result.outcome == "signed-rejected" else Severity.INFO
        finding = Finding(self.name, f"footer.{result.outcome}", severity, _SAY[result.outcome])
        change = Change(new_bytes=result.data) if result.data is not None else None
        return Report((finding,), change)
