"""The OpenAPI entries of build approval and crons (merged into ``openapi``):
``/api/v1/builds/{id}/approve`` and ``/api/v1/crons``."""

from __future__ import annotations

from typing import Any

from app.controller.openapi_parts import error_response as _error
from app.controller.openapi_parts import json_response as _json
from app.controller.openapi_parts import path_parameter
from app.controller.openapi_parts import ref as _ref

_UNAUTHORIZED = _error("missing or wrong token")

FORGE_PATHS: dict[str, Any] = {
    "/api/v1/builds/{id}/approve": {
        "post": {
            "summary": "Approve a build of a pull request from a fork (operators)",
            "description": "Its tasks were held, without secrets, until a person with write "
            "access approves the build; they start now.",
            "parameters": [path_parameter("id")],
            "responses": {
                "200": _json(_ref("Build"), "the approved build"),
                "401": _UNAUTHORIZED,
                "404": _error("no such build"),
                "409": _error("the build is not waiting for an approval"),
            },
        }
    },
    "/api/v1/crons": {
        "get": {
            "summary": "Cron builds of registered repositories",
            "responses": {
                "200": _json(_ref("CronList"), "every cron"),
                "401": _UNAUTHORIZED,
            },
        },
        "post": {
            "summary": "Add or replace a cron build of a registered repository (operators)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("CronRequest")}},
            },
            "responses": {
                "200": _json(_ref("Cron"), "the cron, replaced"),
                "201": _json(_ref("Cron"), "the cron, added"),
                "400": _error("a malformed body or cron expression"),
                "401": _UNAUTHORIZED,
                "404": _error("the repository is not registered"),
                "413": _error("the body is larger than 64 KiB"),
            },
        },
    },
}

_TIME = {"type": "string", "format": "date-time"}

FORGE_SCHEMAS: dict[str, Any] = {
    "CronRequest": {
        "type": "object",
        "required": ["name", "repository", "branch", "expression"],
        "properties": {
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "pattern": "^[A-Za-z0-9_.-]+$",
            },
            "repository": {"type": "string", "description": "OWNER/NAME, registered"},
            "branch": {"type": "string", "minLength": 1, "maxLength": 250},
            "expression": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "description": "five-field cron expression, UTC",
            },
        },
    },
    "Cron": {
        "type": "object",
        "required": ["name", "repository", "branch", "expression", "nextRun"],
        "properties": {
            "name": {"type": "string"},
            "repository": {"type": "string"},
            "branch": {"type": "string"},
            "expression": {"type": "string"},
            "nextRun": _TIME,
            "lastRun": {"type": ["string", "null"], "format": "date-time"},
            "lastBuildId": {"type": ["string", "null"]},
            "lastError": {"type": ["string", "null"]},
        },
    },
    "CronList": {
        "type": "object",
        "required": ["crons"],
        "properties": {"crons": {"type": "array", "items": _ref("Cron")}},
    },
}
