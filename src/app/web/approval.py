"""``POST /builds/{id}/approve``: the build page's button that approves a fork's build
(operators, CSRF-checked, as the page's other buttons)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.web.site import WebInterface

Approve = Callable[[str], Awaitable[bool]]


def approval_route(web: WebInterface, approve: Approve) -> Route:
    """Return the route; ``approve`` approves a build by id (False: it was not waiting)."""

    async def endpoint(request: Request) -> Response:
        visitor, form = await web.checked_form(request)
        if form is None:
            return web.refused(request, visitor)
        build_id = request.path_params["build_id"]
        if await web.store.get_build(build_id) is None:
            return web.not_found(request, visitor, "There is no such build.")
        await approve(build_id)
        return RedirectResponse(f"/builds/{build_id}", 303)

    return Route("/builds/{build_id}/approve", endpoint, methods=["POST"])
