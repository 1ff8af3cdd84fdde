"""The OpenAPI entries of re-runs and user tokens (merged into ``openapi``):
``/api/v1/tasks/{id}/rerun``, ``/api/v1/builds/{id}/rerun`` and ``/api/v1/tokens``."""

from __future__ import annotations

from typing import Any

from app.controller.openapi_parts import error_response as _error
from app.controller.openapi_parts import json_response as _json
from app.controller.openapi_parts import path_parameter
from app.controller.openapi_parts import ref as _ref
from domain.tokens import TOKEN_NAME_MAX, Role


def _id_parameter() -> dict[str, Any]:
    return path_parameter("id")


FORBIDDEN = _error("the token's role may not do this; `error` names the role needed")
"""The 403 every role-checked operation may answer."""

_UNAUTHORIZED = _error("missing or wrong token")
_NOT_FINAL = _error("not re-run: a task not final, an earlier attempt, or nothing to re-run")
_ROLES = [role.value for role in Role]

ACCESS_PATHS: dict[str, Any] = {
    "/api/v1/tasks/{id}/rerun": {
        "post": {
            "summary": "Re-run a final task as a new attempt (operators)",
            "description": "The new attempt is a new task of the same build, linked to this one "
            "(`rerunOf`); this one stays as it ended. Final tasks that depend on it get new "
            "attempts too, which wait for the new attempt. The build counts the latest "
            "attempt of each task.",
            "parameters": [_id_parameter()],
            "responses": {
                "201": _json(_ref("TaskRerun"), "the new attempt, and every attempt created"),
                "401": _UNAUTHORIZED,
                "403": FORBIDDEN,
                "404": _error("no such task"),
                "409": _NOT_FINAL,
            },
        }
    },
    "/api/v1/builds/{id}/rerun": {
        "post": {
            "summary": "Re-run a build's final tasks, or only its failed ones (operators)",
            "parameters": [_id_parameter()],
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": _ref("BuildRerunRequest")}},
            },
            "responses": {
                "201": _json(_ref("BuildRerun"), "the new attempts"),
                "400": _error("the body is malformed"),
                "401": _UNAUTHORIZED,
                "403": FORBIDDEN,
                "404": _error("no such build"),
                "409": _NOT_FINAL,
            },
        }
    },
    "/api/v1/tokens": {
        "get": {
            "summary": "User tokens: names, roles and creation times, never a token (admins)",
            "responses": {
                "200": _json(_ref("UserTokenList"), "every user token, oldest first"),
                "401": _UNAUTHORIZED,
                "403": FORBIDDEN,
            },
        },
        "post": {
            "summary": "Make a user token with a role (admins); the answer holds it, once",
            "description": "viewer: read; operator: also submit, cancel, re-run and trigger "
            "builds and tasks, pause and resume workers; admin: everything. Only the token's "
            "SHA-256 is stored.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("UserTokenRequest")}},
            },
            "responses": {
                "201": _json(_ref("UserTokenCreated"), "the new token"),
                "400": _error("an unknown role, a bad name, or a malformed body"),
                "401": _UNAUTHORIZED,
                "403": FORBIDDEN,
            },
        },
    },
}

_ATTEMPT = {
    "type": "object",
    "required": ["id", "name", "status", "attempt", "rerunOf"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "status": {"type": "string"},
        "attempt": {"type": "integer", "minimum": 1},
        "rerunOf": {"type": ["string", "null"]},
    },
}
_TOKEN_PROPERTIES = {
    "id": {"type": "string"},
    "name": {"type": "string"},
    "role": {"type": "string", "enum": _ROLES},
    "createdAt": {"type": "string", "format": "date-time"},
}

ACCESS_SCHEMAS: dict[str, Any] = {
    "Attempt": _ATTEMPT,
    "TaskRerun": {
        "type": "object",
        "required": ["id", "status", "attempts"],
        "properties": {
            "id": {"type": "string", "description": "the re-run task's new attempt"},
            "status": {"type": "string"},
            "attempts": {"type": "array", "items": _ref("Attempt")},
        },
    },
    "BuildRerunRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "failedOnly": {
                "type": "boolean",
                "default": False,
                "description": "only FAILED and ABORTED tasks (and their dependants)",
            }
        },
    },
    "BuildRerun": {
        "type": "object",
        "required": ["attempts"],
        "properties": {"attempts": {"type": "array", "items": _ref("Attempt")}},
    },
    "UserTokenRequest": {
        "type": "object",
        "required": ["role"],
        "additionalProperties": False,
        "properties": {
            "role": {"type": "string", "enum": _ROLES},
            "name": {"type": "string", "maxLength": TOKEN_NAME_MAX},
        },
    },
    "UserToken": {
        "type": "object",
        "required": list(_TOKEN_PROPERTIES),
        "properties": _TOKEN_PROPERTIES,
    },
    "UserTokenCreated": {
        "type": "object",
        "required": [*_TOKEN_PROPERTIES, "token"],
        "properties": {**_TOKEN_PROPERTIES, "token": {"type": "string"}},
    },
    "UserTokenList": {
        "type": "object",
        "required": ["tokens"],
        "properties": {"tokens": {"type": "array", "items": _ref("UserToken")}},
    },
}
