"""The Starlette application behind the clerk's page.

Every page but the login page and the style sheet needs a logged-in session; every form carries
the session's CSRF token and every POST checks it. Message content is hostile: it reaches the
page only through Jinja2's autoescaping, after :func:`gateway.quarantine.view.clean_text` has
made control and bidi-override characters visible, and HTML bodies arrive already reduced to text
by :func:`gateway.quarantine.view.view`. Decisions go through
:func:`gateway.quarantine.store.resolve`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.config import Config
from gateway.quarantine.store import HeldMessage, NotFound, QuarantineStore, resolve
from gateway.quarantine.view import clean_text, view
from gateway.review.auth import (
    LoginLimiter,
    Session,
    Sessions,
    read_password_hash,
    verify_password,
)
from gateway.review.downloads import attachment_bytes, downloads_allowed
from gateway.review.settings import ReviewConfig, review_config

__all__ = ["create_app", "CSP", "ACTOR", "ACTIONS"]

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
]
ACTOR = "clerk (web)"


@dataclass(frozen=True)
class ActionText:
    title: str  # "Release this message?"
    explain: str  # what will happen, in plain English; {sender} is filled in
    button: str  # "Yes, release it"
    bulk: bool = False


ACTIONS: dict[str, ActionText] = {
    "release": ActionText(
        "Release this message?",
        "It will be delivered to its recipients now. It will not be checked for junk again.",
        "Yes, release it"),
    "release_and_trust": ActionText(
        "Release this message and trust the sender?",
        "It will be delivered to its recipients now, and {sender} will be added to the known "
        "senders, so their mail is no longer held just because the council does not know them.",
        "Yes, release it and trust the sender"),
    "block_sender": ActionText(
        "Block this sender?",
        "Mail from {sender} will always be held from now on, and this message will be deleted.",
        "Yes, block the sender"),
    "delete": ActionText(
        "Delete this message?",
        "It will be deleted for good. Nobody will receive it, and this cannot be undone.",
        "Yes, delete it", bulk=True),
}

_SURROGATES = re.compile("[\ud800-\udfff]")


def safe(value: Any) -> Any:
    """Every value written into a page: visible control characters, no lone surrogates."""
    if isinstance(value, str):
        return clean_text(_SURROGATES.sub("\ufffd", value))
    return value


def plain_reason(text: str) -> str:
    text = " ".join(text.split())
    if text.lower().startswith("virus: "):
        text = "Virus found: " + text[7:]
    return text[:1].upper() + text[1:] if text else "(no reason recorded)"


def when(dt: datetime) -> str:
    return dt.astimezone().strftime("%a %d %b %Y, %H:%M")


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / 1048576:.1f} MB"


def matches(h: HeldMessage, query: str) -> bool:
    hay = " ".join((h.from_header, h.mail_from, " ".join(h.rcpt_tos), h.subject,
                    " ".join(h.reasons))).casefold()
    return all(word in hay for word in query.casefold().split())


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                      undefined=StrictUndefined, finalize=safe, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(when=when, size=human_size, reason=plain_reason)
    return env


class SecurityHeaders:
    """Adds the CSP and friends to every response, and forbids caching of pages."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                if not is_static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


ConfigSource = Config | Callable[[], Config]


class ReviewApp:
    """State shared by the routes: the live config, the sessions and the login limiter."""

    def __init__(self, config: ConfigSource):
        self._config = config
        self.sessions = Sessions(idle_seconds=self.review.session_minutes * 60)
        self.limiter = LoginLimiter()
        self.env = _env()

    @property
    def config(self) -> Config:
        return self._config() if callable(self._config) else self._config

    @property
    def review(self) -> ReviewConfig:
        return review_config(self.config)

    @property
    def store(self) -> QuarantineStore:
        return QuarantineStore(self.config.quarantine.path)

    @property
    def cookie_name(self) -> str:
        # The __Host- prefix makes the browser refuse the cookie unless Secure, Path=/, no Domain.
        return "__Host-council-review" if self.review.secure_cookies else "council-review"

    # ------------------------------------------------------------------ helpers
    def client(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def session(self, request: Request) -> Session | None:
        self.sessions.idle_seconds = self.review.session_minutes * 60
        return self.sessions.get(request.cookies.get(self.cookie_name))

    def set_cookie(self, response: Response, token: str) -> None:
        response.set_cookie(self.cookie_name, token, httponly=True, samesite="strict",
                            secure=self.review.secure_cookies, path="/")

    def render(self, request: Request, name: str, status: int = 200,
               session: Session | None = None, **context: Any) -> HTMLResponse:
        flashes = []
        if session is not None and session.logged_in:
            flashes, session.flash = session.flash, []
        html = self.env.get_template(name).render(
            root=request.scope.get("root_path", ""), session=session, flashes=flashes,
            logged_in=bool(session and session.logged_in), **context)
        return HTMLResponse(html, status_code=status)

    def to_login(self, request: Request) -> RedirectResponse:
        root = request.scope.get("root_path", "")
        path = request.url.path
        if root and path.startswith(root + "/"):
            path = path[len(root):]  # uvicorn puts the root path in front; "next" is without it
        target = path + (f"?{request.url.query}" if request.url.query else "")
        nxt = "" if request.method != "GET" or target == "/" else "?" + urlencode({"next": target})
        return RedirectResponse(f"{root}/login{nxt}", status_code=303)

    def logged_in(self, request: Request) -> Session | None:
        s = self.session(request)
        return s if s is not None and s.logged_in else None

    def refused(self, request: Request, session: Session | None) -> HTMLResponse:
        return self.render(request, "refused.html", status=403, session=session)


def _local_path(target: str) -> str:
    """Only a path on this site may follow the login (never another site)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _ids(form: FormData) -> list[str]:
    return [str(v) for v in form.getlist("id") if str(v)]


def create_app(config: ConfigSource) -> Starlette:
    """The clerk's page for ``config`` (a Config, or a function giving the live one)."""
    app = ReviewApp(config)

    async def login_page(request: Request) -> Response:
        if app.logged_in(request):
            return RedirectResponse(f"{request.scope.get('root_path', '')}/", status_code=303)
        token, session = app.sessions.new(client=app.client(request))
        response = app.render(request, "login.html", session=session, error="",
                              next=_local_path(request.query_params.get("next", "/")),
                              no_password=read_password_hash(app.review.password_file) is None)
        app.set_cookie(response, token)
        return response

    async def login(request: Request) -> Response:
        form = await request.form()
        session = app.session(request)
        if session is None or not session.check_csrf(str(form.get("csrf", ""))):
            return app.refused(request, None)
        client = app.client(request)
        nxt = _local_path(str(form.get("next", "/")))
        wait = app.limiter.wait_seconds(client)
        if wait:
            minutes = max(1, math.ceil(wait / 60))
            return app.render(request, "login.html", status=429, session=session, next=nxt,
                              no_password=False,
                              error=f"Too many wrong passwords. Please wait {minutes} "
                                    f"minute{'s' if minutes != 1 else ''} and try again.")
        stored = read_password_hash(app.review.password_file)
        password = str(form.get("password", ""))
        ok = stored is not None and await asyncio.to_thread(verify_password, stored, password)
        if not ok:
            app.limiter.failed(client)
            log.warning("review login failed from %s", client)
            return app.render(request, "login.html", status=401, session=session, next=nxt,
                              no_password=stored is None,
                              error="That password is not right. Please try again.")
        app.limiter.succeeded(client)
        app.sessions.end(request.cookies.get(app.cookie_name))  # a new token after login
        token, _ = app.sessions.new(logged_in=True, client=client)
        log.info("review login from %s", client)
        response = RedirectResponse(f"{request.scope.get('root_path', '')}{nxt}",
                                    status_code=303)
        app.set_cookie(response, token)
        return response

    async def logout(request: Request) -> Response:
        form = await request.form()
        session = app.logged_in(request)
        if session is None:
            return app.to_login(request)
        if not session.check_csrf(str(form.get("csrf", ""))):
            return app.refused(request, session)
        app.sessions.end(request.cookies.get(app.cookie_name))
        response = RedirectResponse(f"{request.scope.get('root_path', '')}/login",
                                    status_code=303)
        response.delete_cookie(app.cookie_name, path="/", secure=app.review.secure_cookies,
                               httponly=True, samesite="strict")
        return response

    async def held_list(request: Request) -> Response:
        session = app.logged_in(request)
        if session is None:
            return app.to_login(request)
        query = request.query_params.get("q", "").strip()[:200]
        held = await asyncio.to_thread(app.store.list)
        total = len(held)
        if query:
            held = [h for h in held if matches(h, query)]
        size = app.review.page_size
        pages = max(1, math.ceil(len(held) / size))
        try:
            page = min(max(1, int(request.query_params.get("page", "1"))), pages)
        except ValueError:
            page = 1
        shown = held[(page - 1) * size: page * size]

        def page_link(n: int) -> str:
            return "?" + urlencode({**({"q": query} if query else {}), "page": n})

        return app.render(request, "list.html", session=session, held=shown, total=total,
                          found=len(held), query=query, page=page, pages=pages,
                          prev_link=page_link(page - 1) if page > 1 else "",
                          next_link=page_link(page + 1) if page < pages else "")

    async def load(request: Request) -> tuple[Any, HeldMessage, bytes] | Response:
        """The logged-in session and the held message the URL names, or the page to show."""
        session = app.logged_in(request)
        if session is None:
            return app.to_login(request)
        qid = request.path_params["qid"]
        try:
            held = await asyncio.to_thread(app.store.get, qid)
            data = await asyncio.to_thread(app.store.read, qid)
        except NotFound:
            return app.render(request, "gone.html", status=404, session=session)
        return session, held, data

    async def message(request: Request) -> Response:
        loaded = await load(request)
        if isinstance(loaded, Response):
            return loaded
        session, held, data = loaded
        v = await asyncio.to_thread(view, data)
        return app.render(request, "message.html", session=session, h=held, v=v,
                          downloads=downloads_allowed(app.review, held))

    async def download(request: Request) -> Response:
        loaded = await load(request)
        if isinstance(loaded, Response):
            return loaded
        session, held, data = loaded
        if not downloads_allowed(app.review, held):
            return app.render(request, "refused.html", status=403, session=session)
        found = attachment_bytes(data, request.path_params["n"])
        if found is None:
            return app.render(request, "gone.html", status=404, session=session)
        name, payload = found
        ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "attachment"
        return Response(payload, media_type="application/octet-stream", headers={
            "content-disposition": f"attachment; filename=\"{ascii_name}\"; "
                                   f"filename*=UTF-8''{quote(name[:100])}",
            "content-security-policy": "sandbox; default-src 'none'",
        })

    async def confirm(request: Request) -> Response:
        session = app.logged_in(request)
        if session is None:
            return app.to_login(request)
        action = request.query_params.get("action", "")
        ids = [i for i in request.query_params.getlist("id") if i]
        text = ACTIONS.get(action)
        if text is None or not ids or (len(ids) > 1 and not text.bulk):
            session.flash.append(("error", "Tick at least one message first."
                                  if not ids else "That action cannot be done here."))
            return RedirectResponse(f"{request.scope.get('root_path', '')}/", status_code=303)
        store = app.store
        held = []
        for qid in dict.fromkeys(ids):
            try:
                held.append(await asyncio.to_thread(store.get, qid))
            except NotFound:
                continue
        if not held:
            return app.render(request, "gone.html", status=404, session=session)
        sender = held[0].mail_from or held[0].from_header or "this sender"
        return app.render(request, "confirm.html", session=session, action=action, text=text,
                          held=held, explain=text.explain.format(sender=safe(sender)))

    async def act(request: Request) -> Response:
        session = app.logged_in(request)
        if session is None:
            return app.to_login(request)
        form = await request.form()
        if not session.check_csrf(str(form.get("csrf", ""))):
            log.warning("review: POST with a missing or wrong form token from %s",
                        app.client(request))
            return app.refused(request, session)
        action = str(form.get("action", ""))
        ids = list(dict.fromkeys(_ids(form)))
        text = ACTIONS.get(action)
        if text is None or not ids or (len(ids) > 1 and not text.bulk):
            return app.refused(request, session)
        actor = f"{ACTOR} from {app.client(request)}"
        done = 0
        for qid in ids:
            result = await resolve(app.config, qid, action, actor)
            if result.ok:
                done += 1
                if len(ids) == 1:
                    session.flash.append(("ok", result.message))
            else:
                session.flash.append(("error", result.message))
        if len(ids) > 1 and done:
            session.flash.append(("ok", f"Deleted {done} message{'s' if done != 1 else ''}."))
        return RedirectResponse(f"{request.scope.get('root_path', '')}/", status_code=303)

    routes = [
        Route("/", held_list),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/message/{qid}", message),
        Route("/message/{qid}/attachment/{n:int}", download),
        Route("/confirm", confirm),
        Route("/act", act, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    starlette = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
    starlette.state.review = app
    return starlette
