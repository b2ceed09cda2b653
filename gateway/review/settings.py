"""The ``[review]`` section: where the clerk's page listens and how it guards itself."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gateway.config import Config, Section

__all__ = ["Network", "ReviewConfig", "parse_review", "review_config", "review_warnings"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ReviewConfig:
    # ``run`` serves the page only when enabled; ``council-gateway review`` serves it regardless.
    enabled: bool = False
    listen: tuple[str, int] = ("127.0.0.1", 8025)
    password_file: Path = Path("config/review-password")
    session_minutes: int = 30
    secure_cookies: bool = True
    public_url: str = ""
    allow_downloads: bool = False
    page_size: int = 25
    # Proxies whose X-Forwarded-For names the client; from anyone else it is ignored.
    trusted_proxies: tuple[Network, ...] = ()


def parse_review(s: Section) -> ReviewConfig:
    public_url = s.text("public_url", "").rstrip("/")
    if public_url:
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            s.problem("public_url", f'"{public_url}" is not a web address like '
                                    '"https://mail.stanion-pc.gov.uk/review"')
            public_url = ""
    cfg = ReviewConfig(
        enabled=s.flag("enabled", False),
        listen=s.hostport("listen", "127.0.0.1:8025"),
        password_file=s.path("password_file", "config/review-password"),
        session_minutes=s.integer("session_minutes", 30, minimum=1, maximum=24 * 60),
        secure_cookies=s.flag("secure_cookies", True),
        public_url=public_url,
        allow_downloads=s.flag("allow_downloads", False),
        page_size=s.integer("page_size", 25, minimum=5, maximum=500),
        trusted_proxies=s.networks("trusted_proxies", ()),
    )
    s.finish()
    return cfg


def review_config(config: Config) -> ReviewConfig:
    return config.section(ReviewConfig)


def _loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def review_warnings(cfg: ReviewConfig) -> list[str]:
    """Settings that work but probably not as meant, each with what to write instead."""
    warnings = []
    if (cfg.secure_cookies and not cfg.public_url.startswith("https://")
            and _loopback(cfg.listen[0])):
        host = f"[{cfg.listen[0]}]" if ":" in cfg.listen[0] else cfg.listen[0]
        warnings.append(
            f"review.secure_cookies: is true, so the browser will not send the login cookie "
            f"over plain http: at http://{host}:{cfg.listen[1]}/, or through a proxy without "
            f"https, the clerk cannot log in (some browsers make an exception for "
            f"http://127.0.0.1 and http://localhost on the same machine). Behind an https "
            f"proxy, set public_url to its https:// address; for plain http on loopback, set "
            f"secure_cookies = false in [review].")
    return warnings
