"""The OpenAPI entries of ``/api/v1/tasks/{id}/artifacts`` (merged into ``openapi``)."""

from __future__ import annotations

from typing import Any

from app.controller.openapi_parts import error_response as _error
from app.controller.openapi_parts import path_parameter as _path_parameter
from app.controller.openapi_parts import ref as _ref

_UNAUTHORIZED = _error("missing or wrong token (the admin token or a user token)")

ARTIFACT_PATHS: dict[str, Any] = {
    "/api/v1/tasks/{id}/artifacts": {
        "get": {
            "summary": "A task's committed artifact files and its JUnit test results",
            "description": "`tests` is null when the task committed no `format: junit` "
            "artifact; a JUnit file that could not be read adds a notice.",
            "parameters": [_path_parameter("id")],
            "responses": {
                "200": {
                    "description": "the artifacts and the test results",
                    "content": {"application/json": {"schema": _ref("TaskArtifacts")}},
                },
                "401": _UNAUTHORIZED,
                "404": _error("no such task"),
            },
        }
    },
    "/api/v1/tasks/{id}/artifacts/{path}": {
        "get": {
            "summary": "The bytes of one artifact file",
            "parameters": [
                _path_parameter("id"),
                _path_parameter("path", "`<artifact name>/<file path>`"),
            ],
            "responses": {
                "200": {
                    "description": "the file, streamed; `X-Cirrus-Sha256` is its SHA-256",
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                "401": _UNAUTHORIZED,
                "404": _error("no such task or artifact file"),
                "410": _error("the file's blob was deleted (retention)"),
            },
        }
    },
}

_COUNT = {"type": "integer", "minimum": 0}

ARTIFACT_SCHEMAS: dict[str, Any] = {
    "Artifact": {
        "type": "object",
        "required": ["name", "path", "size", "sha256", "type", "format"],
        "properties": {
            "name": {"type": "string"},
            "path": {"type": "string"},
            "size": _COUNT,
            "sha256": {"type": "string"},
            "type": {"type": "string", "description": "MIME type, as the instruction said"},
            "format": {"type": "string", "description": "e.g. `junit`"},
        },
    },
    "TestResults": {
        "type": "object",
        "required": ["passed", "failed", "skipped", "failures"],
        "properties": {
            "passed": _COUNT,
            "failed": _COUNT,
            "skipped": _COUNT,
            "failures": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "message"],
                    "properties": {
                        "name": {"type": "string", "description": "`classname.name`"},
                        "message": {"type": "string"},
                    },
                },
            },
            "notices": {"type": "array", "items": {"type": "string"}},
        },
    },
    "TaskArtifacts": {
        "type": "object",
        "required": ["artifacts", "tests"],
        "properties": {
            "artifacts": {"type": "array", "items": _ref("Artifact")},
            "tests": {"oneOf": [_ref("TestResults"), {"type": "null"}]},
        },
    },
}
