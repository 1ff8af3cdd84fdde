"""The hand-written OpenAPI 3.1 document of the controller's HTTP API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

_STATUS = {
    "type": "string",
    "enum": [
        "CREATED",
        "SCHEDULED",
        "EXECUTING",
        "COMPLETED",
        "FAILED",
        "ABORTED",
        "SKIPPED",
    ],
}
_COMMAND_STATUS = {
    "type": "string",
    "enum": ["CREATED", "EXECUTING", "COMPLETED", "FAILED", "SKIPPED", "ABORTED"],
}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_NUMBER_MAP = {"type": "object", "additionalProperties": {"type": "number"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), "refused; `error` says why")
_UNAUTHORIZED = _json(_ref("Error"), "missing or wrong admin token")
_NOT_FOUND = _json(_ref("Error"), "no such build, task or command")


def _id_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


OPENAPI_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Cirrus controller API",
        "version": "1",
        "description": "Submit builds, follow their tasks and logs, list workers. Every "
        "/api/v1 call needs `Authorization: Bearer <admin token>`.",
    },
    "security": [{"adminToken": []}],
    "paths": {
        "/healthz": {
            "get": {
                "summary": "Liveness of the controller process",
                "security": [],
                "responses": {"200": _json(_ref("Health"), "the controller answers")},
            }
        },
        "/api/v1/builds": {
            "post": {
                "summary": "Submit a build from a .cirrus.yml text",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("BuildSubmission")}},
                },
                "responses": {
                    "201": _json(_ref("Build"), "the build and its tasks"),
                    "400": _json(
                        _ref("Error"),
                        "refused: the body, or the configuration (its error, with line and "
                        "column; also past config-max-depth or config-max-nodes)",
                    ),
                    "401": _UNAUTHORIZED,
                    "413": _json(
                        _ref("Error"),
                        "config or starlark is larger than config-max-bytes (1 MiB unless "
                        "the controller file says otherwise), or the body larger than six "
                        "times that plus 64 KiB",
                    ),
                },
            }
        },
        "/api/v1/builds/{id}": {
            "get": {
                "summary": "A build and the status of its tasks",
                "parameters": [_id_parameter("id")],
                "responses": {
                    "200": _json(_ref("Build"), "the build"),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                },
            }
        },
        "/api/v1/tasks/{id}": {
            "get": {
                "summary": "A task: where it runs, its status and its commands",
                "parameters": [_id_parameter("id")],
                "responses": {
                    "200": _json(_ref("Task"), "the task"),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                },
            }
        },
        "/api/v1/tasks/{id}/logs/{command}": {
            "get": {
                "summary": "The log bytes of one command so far",
                "parameters": [_id_parameter("id"), _id_parameter("command")],
                "responses": {
                    "200": {
                        "description": "the raw log bytes",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                },
            }
        },
        "/api/v1/tasks/{id}/cancel": {
            "post": {
                "summary": "Cancel a task (a running one turns ABORTED once its worker stops it)",
                "parameters": [_id_parameter("id")],
                "responses": {
                    "200": _json(_ref("TaskStatus"), "the status right after the request"),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                },
            }
        },
        "/api/v1/tasks/{id}/trigger": {
            "post": {
                "summary": "Trigger a `trigger_type: manual` task",
                "description": "The task then waits for its dependencies as any other; "
                "triggering it again changes nothing. Until triggered it stays CREATED (its "
                "pendingReason says so) and does not hold its build open.",
                "parameters": [_id_parameter("id")],
                "responses": {
                    "200": _json(_ref("TaskStatus"), "the status right after the trigger"),
                    "401": _UNAUTHORIZED,
                    "404": _NOT_FOUND,
                    "409": _json(_ref("Error"), "the task is not a manual one"),
                },
            }
        },
        "/api/v1/workers": {
            "get": {
                "summary": "Registered workers as of their last poll",
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Worker")}, "every worker"),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/api/v1/secrets/encrypt": {
            "post": {
                "summary": "Encrypt a value into an ENCRYPTED[...] text for .cirrus.yml",
                "description": "Only this controller (its key) can decrypt the answer. With "
                "`repository`, only builds of that repository (CIRRUS_REPO_FULL_NAME, compared "
                "case-insensitively) can use it; without, every build can.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SecretEncryption")}},
                },
                "responses": {
                    "200": _json(_ref("EncryptedSecret"), "the ENCRYPTED[...] text"),
                    "400": _ERROR,
                    "401": _UNAUTHORIZED,
                    "413": _json(_ref("Error"), "the body is larger than 256 KiB"),
                },
            }
        },
    },
    "components": {
        "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
            "Health": {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"const": "ok"}},
            },
            "BuildSubmission": {
                "type": "object",
                "required": ["config"],
                "properties": {
                    "config": {"type": "string", "description": "the .cirrus.yml text"},
                    "environment": _STRING_MAP,
                    "starlark": {
                        "type": "string",
                        "description": "the .cirrus.star text, if any (its tasks are added)",
                    },
                },
            },
            "SecretEncryption": {
                "type": "object",
                "required": ["value"],
                "additionalProperties": False,
                "properties": {
                    "value": {
                        "type": "string",
                        "minLength": 1,
                        "description": "the plain value (at most 64 KiB of UTF-8)",
                    },
                    "repository": {
                        "type": ["string", "null"],
                        "description": "OWNER/NAME the value is bound to; absent or empty: any",
                    },
                },
            },
            "EncryptedSecret": {
                "type": "object",
                "required": ["encrypted"],
                "properties": {
                    "encrypted": {
                        "type": "string",
                        "pattern": "^ENCRYPTED\\[v1:[A-Za-z0-9_-]+\\]$",
                    }
                },
            },
            "TaskSummary": {
                "type": "object",
                "required": ["id", "name", "status"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "status": _STATUS,
                },
            },
            "Build": {
                "type": "object",
                "required": ["id", "status", "tasks"],
                "properties": {
                    "id": {"type": "string"},
                    "status": _STATUS,
                    "tasks": {"type": "array", "items": _ref("TaskSummary")},
                },
            },
            "TaskStatus": {
                "type": "object",
                "required": ["id", "status"],
                "properties": {"id": {"type": "string"}, "status": _STATUS},
            },
            "Command": {
                "type": "object",
                "required": ["name", "status", "durationInNanos"],
                "properties": {
                    "name": {"type": "string"},
                    "status": _COMMAND_STATUS,
                    "durationInNanos": {"type": "integer"},
                },
            },
            "Task": {
                "type": "object",
                "required": [
                    "id",
                    "buildId",
                    "name",
                    "status",
                    "worker",
                    "failureMessage",
                    "labels",
                    "resources",
                    "isolation",
                    "commands",
                ],
                "properties": {
                    "id": {"type": "string"},
                    "buildId": {"type": "string"},
                    "name": {"type": "string"},
                    "status": _STATUS,
                    "worker": {"type": ["string", "null"]},
                    "failureMessage": {"type": "string"},
                    "labels": _STRING_MAP,
                    "resources": _NUMBER_MAP,
                    "isolation": {
                        "type": "object",
                        "description": "proto3 JSON of the Isolation oneof, e.g. "
                        '{"none": {}} or {"tart": {...}}',
                    },
                    "timeoutInSeconds": {"type": "integer"},
                    "dependsOn": {"type": "array", "items": {"type": "string"}},
                    "alias": {"type": "string", "description": "empty without `alias`"},
                    "allowFailures": {
                        "type": "boolean",
                        "description": "a failure of this task does not fail the build",
                    },
                    "triggerType": {"type": "string", "enum": ["AUTOMATIC", "MANUAL"]},
                    "skipReason": {
                        "type": "string",
                        "description": "why the task was created SKIPPED (`skip`); else empty",
                    },
                    "commands": {"type": "array", "items": _ref("Command")},
                    "pendingReason": {
                        "type": "string",
                        "description": "why a CREATED or SCHEDULED task has no worker yet",
                    },
                },
            },
            "Worker": {
                "type": "object",
                "required": [
                    "name",
                    "labels",
                    "resourcesTotal",
                    "resourcesInUse",
                    "runningTasks",
                    "disabled",
                    "online",
                    "lastSeen",
                ],
                "properties": {
                    "name": {"type": "string"},
                    "labels": _STRING_MAP,
                    "resourcesTotal": _NUMBER_MAP,
                    "resourcesInUse": _NUMBER_MAP,
                    "runningTasks": {"type": "array", "items": {"type": "string"}},
                    "disabled": {"type": "boolean"},
                    "online": {"type": "boolean"},
                    "lastSeen": {"type": "string", "format": "date-time"},
                },
            },
        },
    },
}
"""The document; ``/healthz`` and this document itself need no token."""

_UNAVAILABLE = _json(_ref("Error"), "the controller's database failed; try again")
for _path, _operations in OPENAPI_DOCUMENT["paths"].items():
    if _path.startswith("/api/v1/"):
        for _operation in _operations.values():
            _operation["responses"]["503"] = _UNAVAILABLE
