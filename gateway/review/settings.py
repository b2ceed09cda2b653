"""The ``[review]`` section: where the clerk's page listens and how it guards itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gateway.config import Config, Section

__all__ = ["ReviewConfig", "parse_review", "review_config"]


@dataclass(frozen=True)
class ReviewConfig:
    # ``run`` serves the page only when enabled; ``council-gateway review`` serves it regardless.
    enabled: bool = False
    listen: tuple[str, int] = ("127.0.0.1", 8025)
    password_file: Path = Path("config/review-password")
    session_minutes: int = 30
    secure_cookies: bool = False
    public_url: str = ""
    allow_downloads: bool = False
    page_size: int = 25


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
        secure_cookies=s.flag("secure_cookies", False),
        public_url=public_url,
        allow_downloads=s.flag("allow_downloads", False),
        page_size=s.integer("page_size", 25, minimum=5, maximum=500),
    )
    s.finish()
    return cfg


def review_config(config: Config) -> ReviewConfig:
    return config.section(ReviewConfig)
