"""The Starlette application behind the clerk's page.

Every page but the login page and the style sheet needs a logged-in session; every form carries
the session's CSRF token and every POST checks it. The login form's token is signed over the
cookie instead of kept here (:class:`gateway.review.auth.LoginForms`); a slot of the login limit
is taken before a password is checked; a session ends when the password is changed.

Message content is hostile: see :mod:`gateway.review.render`; HTML bodies arrive already reduced
to text by :func:`gateway.quarantine.view.view`. Each held message is worded by
:func:`gateway.quarantine.explain.explain`, and the page offers only the decisions that can
work for it. Decisions go through :func:`gateway.quarantine.resolve.resolve`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.config import Config
from gateway.quarantine.explain import Explanation, explain
from gateway.quarantine.resolve import resolve
from gateway.quarantine.store import HeldMessage, NotFound, QuarantineStore
from gateway.quarantine.view import view
from gateway.review.auth import (
    LoginForms,
    LoginLimiter,
    Session,
    Sessions,
    client_address,
    read_password_hash,
    verify_password,
)
from gateway.review.downloads import attachment_bytes, downloads_allowed
from gateway.review.render import CONFIRM, HERE, SecurityHeaders, environment, matches, safe
from gateway.review.settings import ReviewConfig
from gateway.verdicts import Release

if TYPE_CHECKING:
    from gateway.assembly import Assembly

__all__ = ["ACTOR", "create_app"]

log = logging.getLogger(__name__)

ACTOR = "clerk (web)"
NO_COOKIE = ("Your browser did not send back this page's cookie, so you could not be logged in. "
             "Please try again. If this keeps happening, ask the person who looks after the "
             "mail gateway to run council-gateway check-config: it explains the secure_cookies "
             "setting.")


class ReviewApp:
    """State shared by the routes: the live assembly, the sessions, the login form's key and
    the login limiter."""

    def __init__(self, source: Assembly | Callable[[], Assembly]):
        self._source = source
        self.sessions = Sessions(idle_seconds=self.review.session_minutes * 60)
        self.login_forms = LoginForms(max_age=self.review.session_minutes * 60)
        self.limiter = LoginLimiter()
        self.env = environment()

    @property
    def assembly(self) -> Assembly:
        return self._source() if callable(self._source) else self._source

    @property
    def config(self) -> Config:
        return self.assembly.config

    @property
    def review(self) -> ReviewConfig:
        return self.config.section(ReviewConfig)

    def explain(self, held: HeldMessage) -> Explanation:
        return explain(self.assembly.policy, held)

    @property
    def store(self) -> QuarantineStore:
        return QuarantineStore(self.config.quarantine.path)

    @property
    def cookie_name(self) -> str:
        # The __Host- prefix makes the browser refuse the cookie unless Secure, Path=/, no Domain.
        return "__Host-council-review" if self.review.secure_cookies else "council-review"

    # ------------------------------------------------------------------ helpers
    def client(self, request: Request) -> str:
        """The client's address: the peer's, or the one a trusted proxy forwarded."""
        peer = request.client.host if request.client else "unknown"
        return client_address(peer, request.headers.getlist("x-forwarded-for"),
                              self.review.trusted_proxies)

    def set_cookie(self, response: Response, token: str) -> None:
        response.set_cookie(self.cookie_name, token, httponly=True, samesite="strict",
                            secure=self.review.secure_cookies, path="/")

    def render(self, request: Request, name: str, status: int = 200,
               session: Session | None = None, **context: Any) -> HTMLResponse:
        flashes = []
        if session is not None:
            flashes, session.flash = session.flash, []
        html = self.env.get_template(name).render(
            root=request.scope.get("root_path", ""), session=session, flashes=flashes,
            logged_in=session is not None, **context)
        return HTMLResponse(html, status_code=status)

    def login_form(self, request: Request, csrf: str, nxt: str, status: int = 200,
                   error: str = "", no_password: bool = False) -> HTMLResponse:
        return self.render(request, "login.html", status=status, csrf=csrf, next=nxt,
                           error=error, no_password=no_password)

    def to_login(self, request: Request) -> RedirectResponse:
        root = request.scope.get("root_path", "")
        path = request.url.path
        if root and path.startswith(root + "/"):
            path = path[len(root):]  # uvicorn puts the root path in front; "next" is without it
        target = path + (f"?{request.url.query}" if request.url.query else "")
        nxt = "" if request.method != "GET" or target == "/" else "?" + urlencode({"next": target})
        return RedirectResponse(f"{root}/login{nxt}", status_code=303)

    def logged_in(self, request: Request) -> Session | None:
        """The clerk's session, if the cookie names one that is live and was opened with the
        password that is set now."""
        minutes = self.review.session_minutes
        self.sessions.idle_seconds = self.login_forms.max_age = minutes * 60
        token = request.cookies.get(self.cookie_name)
        session = self.sessions.get(token)
        if session is None:
            return None
        if not session.opened_with(read_password_hash(self.review.password_file)):
            self.sessions.end(token)
            log.info("review: the password has changed; the session from %s is ended",
                     session.client)
            return None
        return session

    def refused(self, request: Request, session: Session | None) -> HTMLResponse:
        return self.render(request, "refused.html", status=403, session=session)


def _local_path(target: str) -> str:
    """Only a path on this site may follow the login (never another site)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _ids(form: FormData) -> list[str]:
    return [str(v) for v in form.getlist("id") if str(v)]


def create_app(source: Assembly | Callable[[], Assembly]) -> Starlette:
    """The clerk's page for an assembly (or a function giving the live one)."""
    app = ReviewApp(source)

    async def login_page(request: Request) -> Response:
        if app.logged_in(request):
            return RedirectResponse(f"{request.scope.get('root_path', '')}/", status_code=303)
        # Nothing is kept for a visitor: the cookie gets a random value, the form a token
        # signed over it.
        nonce, csrf = app.login_forms.new()
        page = app.login_form(request, csrf, _local_path(request.query_params.get("next", "/")),
                              no_password=read_password_hash(app.review.password_file) is None)
        app.set_cookie(page, nonce)
        return page

    async def login(request: Request) -> Response:
        form = await request.form()
        client = app.client(request)
        nxt = _local_path(str(form.get("next", "/")))
        nonce = request.cookies.get(app.cookie_name)
        if nonce is None:  # a browser that does not keep the cookie, or a Secure one over http
            log.warning("review login from %s came without the page's cookie%s", client,
                        " (with secure_cookies = true it is sent only over https)"
                        if app.review.secure_cookies else "")
            nonce, csrf = app.login_forms.new()
            page = app.login_form(request, csrf, nxt, status=403, error=NO_COOKIE)
            app.set_cookie(page, nonce)
            return page
        if not app.login_forms.check(nonce, str(form.get("csrf", ""))):
            return app.refused(request, None)
        csrf = app.login_forms.token_for(nonce)  # for the form if it is shown again
        attempt = app.limiter.begin(client)  # before the password is looked at
        if attempt is None:
            minutes = max(1, math.ceil(app.limiter.wait_seconds(client) / 60))
            return app.login_form(request, csrf, nxt, status=429,
                                  error=f"Too many wrong passwords. Please wait {minutes} "
                                        f"minute{'s' if minutes != 1 else ''} and try again.")
        stored = read_password_hash(app.review.password_file)
        password = str(form.get("password", ""))
        if stored is None or not await asyncio.to_thread(verify_password, stored, password):
            log.warning("review login failed from %s", client)  # the slot stays a failure
            return app.login_form(request, csrf, nxt, status=401, no_password=stored is None,
                                  error="That password is not right. Please try again.")
        attempt.succeeded()
        app.sessions.end(nonce)  # a new token after login, if this browser had a session
        token, _ = app.sessions.new(client=client, password_hash=stored)
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
                          why={h.id: app.explain(h) for h in shown},
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
        why = app.explain(held)
        return app.render(request, "message.html", session=session, h=held, v=v, why=why,
                          releasable=why.release is Release.YES,
                          downloads=downloads_allowed(app.review, why))

    async def download(request: Request) -> Response:
        loaded = await load(request)
        if isinstance(loaded, Response):
            return loaded
        session, held, data = loaded
        if not downloads_allowed(app.review, app.explain(held)):
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
        text = CONFIRM.get(action)
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
        if text.releases and (why := app.explain(held[0])).release is not Release.YES:
            session.flash.append(("error", why.why_not))
            return RedirectResponse(f"{request.scope.get('root_path', '')}/message/"
                                    f"{held[0].id}", status_code=303)
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
        text = CONFIRM.get(action)
        if text is None or not ids or (len(ids) > 1 and not text.bulk):
            return app.refused(request, session)
        actor = f"{ACTOR} from {app.client(request)}"
        done = 0
        for qid in ids:
            result = await resolve(app.assembly, qid, action, actor)
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
