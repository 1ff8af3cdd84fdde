"""``POST /webhooks/github`` and ``POST /webhooks/gitea``: forge deliveries become builds.

A delivery names its repository; the repository must be registered (``cirrus repo add``) and
the delivery signed with its webhook secret (``X-Hub-Signature-256``, Gitea's
``X-Gitea-Signature``), checked in constant time before anything else happens: a bad signature
is a 401 and changes nothing. Each delivery id is handled once (a redelivery answers 200 and
creates nothing). Events nobody handles get a 202, as forges expect a 2xx for them.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.controller.api import Endpoint, error_response
from app.controller.forge_builds import ForgeBuilds, NoConfiguration
from app.controller.request_body import BodyError, parse_json, read_capped
from domain.build import BuildConfigError
from domain.cirrus_config.context import SecretError, SecretReader
from domain.cirrus_config.limits import ConfigLimitError
from domain.forge_client import ForgeError
from domain.forge_events import (
    EventKind,
    ForgeEvent,
    ForgeEventError,
    parse_event,
    signature_valid,
)
from domain.forge_store import ForgeStore
from domain.repositories import Forge, Repository, RepositoryStore

log = logging.getLogger("cirrus.controller")

MAX_DELIVERY_BYTES = 25 * 1024 * 1024
"""GitHub caps a delivery's payload at 25 MB."""

_HEADERS = {
    Forge.GITHUB: ("x-github-event", "x-github-delivery", ("x-hub-signature-256",)),
    Forge.GITEA: (
        "x-gitea-event",
        "x-gitea-delivery",
        ("x-gitea-signature", "x-hub-signature-256"),
    ),
}


class WebhooksApi:
    """The forges' webhook endpoints."""

    def __init__(
        self,
        repositories: RepositoryStore,
        forge_store: ForgeStore,
        builds: ForgeBuilds,
        secrets: SecretReader,
    ) -> None:
        self._repositories = repositories
        self._forge = forge_store
        self._builds = builds
        self._secrets = secrets

    def routes(self) -> list[Route]:
        """Return one route per forge."""
        return [
            Route(f"/webhooks/{forge.value}", self._endpoint(forge), methods=["POST"])
            for forge in Forge
        ]

    def _endpoint(self, forge: Forge) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return await self.receive(forge, request)

        return endpoint

    async def receive(self, forge: Forge, request: Request) -> Response:
        """Check, record and handle one delivery."""
        event_header, delivery_header, signature_headers = _HEADERS[forge]
        try:
            body = await read_capped(request, MAX_DELIVERY_BYTES)
            payload = parse_json(body)
        except BodyError as error:
            return error_response(error.status, error.message)
        event = request.headers.get(event_header) or request.headers.get("x-github-event", "")
        delivery = request.headers.get(delivery_header) or request.headers.get(
            "x-github-delivery", ""
        )
        if not isinstance(payload, dict) or not event or not delivery:
            return error_response(400, f"not a {forge.value} webhook delivery")
        repository_data = payload.get("repository")
        name = repository_data.get("full_name") if isinstance(repository_data, dict) else None
        repository = await self._repositories.get_repository(str(name)) if name else None
        if repository is None:
            return error_response(404, f"repository {name!r} is not registered")
        if repository.forge is not forge:
            return error_response(400, f"{repository.name} is registered on another forge")
        present = [request.headers[h] for h in signature_headers if h in request.headers]
        signature = present[0] if present else ""
        try:
            secret = self._secrets.decrypt(repository.encrypted_webhook_secret, repository.name)
        except SecretError:
            log.error("%s: the webhook secret cannot be decrypted", repository.name)
            return error_response(500, "the repository's webhook secret cannot be used")
        if not signature_valid(secret, body, signature):
            return error_response(401, "the delivery's signature does not match")
        try:
            parsed = parse_event(event, payload)
        except ForgeEventError as error:
            return error_response(400, f"{event} delivery: {error}")
        if parsed.kind is EventKind.IGNORED:
            return JSONResponse({"ignored": parsed.ignored}, status_code=202)
        delivery_id = f"{forge.value}:{delivery}"
        if not await self._forge.record_delivery(delivery_id, forge.value, event):
            return JSONResponse({"duplicate": delivery}, status_code=200)
        try:
            return await self._handle(repository, parsed, delivery_id)
        except BaseException:
            await self._forge.forget_delivery(delivery_id)
            raise

    async def _handle(
        self, repository: Repository, parsed: ForgeEvent, delivery_id: str
    ) -> Response:
        if parsed.kind is EventKind.BRANCH_DELETED:
            cancelled = await self._builds.branch_deleted(repository, parsed.branch)
            return JSONResponse({"cancelled": cancelled})
        try:
            build = await self._builds.from_event(repository, parsed)
        except NoConfiguration as error:
            return JSONResponse({"ignored": str(error)}, status_code=202)
        except ForgeError as error:
            await self._forge.forget_delivery(delivery_id)
            return error_response(502, f"the forge's API failed: {error}")
        except (BuildConfigError, ConfigLimitError) as error:
            # The commit's configuration is wrong: a redelivery cannot fix it.
            return error_response(422, str(error))
        except RecursionError:
            return error_response(422, "the configuration is nested too deeply")
        await self._forge.set_delivery_build(delivery_id, build.id)
        log.info("%s: build %s for %s", repository.name, build.id, parsed.commit)
        return JSONResponse({"build": build.id}, status_code=201)
