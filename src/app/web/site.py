"""The web interface's plumbing: templates, sessions, CSRF-checked forms, static files, routes.

``WebInterface(store, scheduler, admin_token, public=..., artifacts=..., blobs=...).routes()`` is
what ``create_app`` mounts at ``/``; its ``live.close()`` ends the SSE streams when the
controller shuts down.
"""

from __future__ import annotations

import hashlib
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from app.controller.auth import ApiAccess, TokenHash
from app.controller.request_body import BodyError, read_capped
from app.controller.scheduler_service import SchedulerService
from app.web.access import (
    ANONYMOUS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Permissions,
    Session,
    SessionCodec,
    csrf_valid,
    permissions_of,
    session_key,
)
from app.web.live import LiveStreams
from app.web.views import change_of, format_duration, format_time, status_class
from domain.artifacts import ArtifactStore
from domain.blobs import BlobStore
from domain.store import ControllerStore
from domain.wire_protocol import IsolationWriter

HERE = Path(__file__).parent
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
FORM_LIMIT_BYTES = 16 * 1024
SECURITY_HEADERS = {
    # rich's log colours are inline style attributes; scripts only from this origin.
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who asks: the verified session and what it may do."""

    session: Session
    may: Permissions


class WebInterface:
    """The pages, forms and streams of the web interface."""

    def __init__(
        self,
        store: ControllerStore,
        scheduler: SchedulerService,
        admin_token: TokenHash,
        *,
        isolation_json: IsolationWriter,
        public: bool = False,
        access: ApiAccess | None = None,
        artifacts: ArtifactStore | None = None,
        blobs: BlobStore | None = None,
    ) -> None:
        self.store = store
        # Both or neither: the task page lists artifacts and tests, and serves their bytes.
        self.artifacts = artifacts if blobs is not None else None
        self.blobs = blobs
        self.scheduler = scheduler
        # A task's isolation as the API shows it (the task page's one-line summary).
        self.isolation_json = isolation_json
        # Why a build waits for an approval (a fork's pull request; ``forge_setup`` sets it).
        self.approval_wait: Callable[[str], Awaitable[str | None]] | None = None
        self.public = public
        self.live = LiveStreams(store)
        self._admin_token = admin_token
        # Who may log in, with which role: the admin token, and user tokens.
        self._access = access or ApiAccess(admin_token)
        self._codec: SessionCodec | None = None
        environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates = Jinja2Templates(env=environment)
        self._static = {
            path.name: path.read_bytes() for path in (HERE / "static").iterdir() if path.is_file()
        }
        self._versions = {
            name: hashlib.sha256(data).hexdigest()[:12] for name, data in self._static.items()
        }
        environment.globals.update(
            static=self.static_url,
            status_class=status_class,
            format_duration=format_duration,
            format_time=format_time,
            change_of=change_of,
        )

    def routes(self) -> list[Route]:
        """Return every route of the web interface."""
        from app.web.artifact_pages import artifact_routes  # they use this module's helpers
        from app.web.pages import page_routes

        return [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/static/{name}", self.static_file, methods=["GET"]),
            *page_routes(self),
            *artifact_routes(self),
        ]

    # --- sessions ---------------------------------------------------------------------------

    async def codec(self) -> SessionCodec:
        """Return the session codec (its key is read from the store once)."""
        if self._codec is None:
            self._codec = SessionCodec(await session_key(self.store), self._admin_token.sha256)
        return self._codec

    async def visitor(self, request: Request) -> Visitor:
        """Return who sent ``request``."""
        cookie = request.cookies.get(SESSION_COOKIE)
        session = (await self.codec()).verify(cookie, time.time()) if cookie else ANONYMOUS
        return Visitor(session, permissions_of(session, public=self.public))

    def render(
        self, request: Request, visitor: Visitor, name: str, status: int = 200, **context: Any
    ) -> Response:
        """Return a rendered page with the security headers."""
        context.update(request=request, may=visitor.may, csrf=visitor.session.csrf)
        response = self.templates.TemplateResponse(request, name, context, status_code=status)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "no-store"
        return response

    def to_login(self, request: Request) -> Response:
        """Return a redirect to the login page that comes back to this page."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urllib.parse.urlencode({"next": target}), 303)

    def not_found(self, request: Request, visitor: Visitor, what: str) -> Response:
        """Return the 404 page."""
        return self.render(request, visitor, "error.html", 404, title="Not found", message=what)

    async def login_form(self, request: Request) -> Response:
        """``GET /login``."""
        visitor = await self.visitor(request)
        return self.render(
            request, visitor, "login.html", next=_safe_next(request.query_params.get("next"))
        )

    async def login(self, request: Request) -> Response:
        """``POST /login``: a token (the admin token or a user token) in exchange for a session
        cookie with the token's role."""
        form = await _form(request)
        target = _safe_next(form.get("next") if form else None)
        who = None if form is None else await self._access.identity_of(form.get("token", ""))
        if who is None:
            visitor = await self.visitor(request)
            return self.render(
                request, visitor, "login.html", 401, next=target, error="Wrong token."
            )
        user, role = who
        cookie, _session = (await self.codec()).issue(role, time.time(), user)
        response = RedirectResponse(target, 303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        """``POST /logout`` (CSRF-checked): forget the session cookie."""
        visitor, form = await self.checked_form(request, need_operate=False)
        if form is None:
            return self.refused(request, visitor)
        response = RedirectResponse("/", 303)
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax")
        return response

    # --- forms ------------------------------------------------------------------------------

    async def checked_form(
        self, request: Request, *, need_operate: bool = True
    ) -> tuple[Visitor, dict[str, str] | None]:
        """Return the visitor and the form of a state-changing POST, the form ``None`` unless
        the visitor may do this and the form carries the session's CSRF token."""
        visitor = await self.visitor(request)
        form = await _form(request)
        allowed = visitor.may.operate if need_operate else visitor.may.logged_in
        if form is None or not allowed or not csrf_valid(visitor.session, form.get("csrf", "")):
            return visitor, None
        return visitor, form

    def refused(self, request: Request, visitor: Visitor) -> Response:
        """Return the 403 page of a POST without permission or CSRF token."""
        return self.render(
            request,
            visitor,
            "error.html",
            403,
            title="Refused",
            message="You may not do this, or the form is stale: reload the page and try again.",
        )

    # --- static files -----------------------------------------------------------------------

    def static_url(self, name: str) -> str:
        """Return a static file's URL, versioned by its content so it can be cached long."""
        return f"/static/{name}?v={self._versions[name]}"

    async def static_file(self, request: Request) -> Response:
        """``GET /static/{name}``: a versioned URL is cached for a year, others for 5 minutes."""
        name = request.path_params["name"]
        data = self._static.get(name)
        if data is None:
            return Response("not found", 404, media_type="text/plain")
        current = request.query_params.get("v") == self._versions[name]
        cache = "public, max-age=31536000, immutable" if current else "public, max-age=300"
        media = STATIC_TYPES.get(Path(name).suffix, "application/octet-stream")
        return Response(
            data, media_type=media, headers={"Cache-Control": cache, "ETag": self._versions[name]}
        )


Handler = Callable[[Request], Awaitable[Response]]


async def _form(request: Request) -> dict[str, str] | None:
    """Return an urlencoded form's first value per field (``None`` if it is not one)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    try:
        body = await read_capped(request, FORM_LIMIT_BYTES)
        fields = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except (BodyError, UnicodeDecodeError, ValueError):
        return None
    return {name: values[0] for name, values in fields.items()}


def _safe_next(target: str | None) -> str:
    """Return a local path to go to after login (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
