"""The hand-written OpenAPI 3.1 document of the controller's HTTP API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

from app.controller.openapi_access import ACCESS_PATHS, ACCESS_SCHEMAS, FORBIDDEN
from app.controller.openapi_artifacts import ARTIFACT_PATHS, ARTIFACT_SCHEMAS
from app.controller.openapi_forge import FORGE_PATHS, FORGE_SCHEMAS
from domain.scheduling import WaitKind

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


_BINARY = {"type": "string", "format": "binary"}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _id_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


OPENAPI_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Cirrus controller API",
        "version": "1",
        "description": "Submit builds, follow their tasks and logs, re-run them, list workers. "
        "Every /api/v1 call needs `Authorization: Bearer <token>`: the admin token, or a user "
        "token whose role (viewer, operator, admin) allows the call (403 otherwise).",
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
            "get": {
                "summary": "Builds, newest first, filtered by their source and status",
                "parameters": [
                    _query("repository", {"type": "string"}, "only builds of OWNER/NAME"),
                    _query("branch", {"type": "string"}, "only builds of this branch"),
                    _query("status", _STATUS, "only builds with this status"),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                        "at most this many builds",
                    ),
                    _query("before", {"type": "string"}, "only builds older than this build id"),
                ],
                "responses": {
                    "200": _json(_ref("BuildList"), "the builds, newest first"),
                    "400": _json(_ref("Error"), "a query parameter is malformed or unknown"),
                    "401": _UNAUTHORIZED,
                },
            },
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
                        "refused: the body, its source (a malformed field, an unknown "
                        "snapshot), or the configuration (its error, with line and "
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
            },
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
        "/api/v1/snapshots": {
            "post": {
                "summary": "Upload a snapshot: the .tar.gz of a working tree, for a build's source",
                "requestBody": {
                    "required": True,
                    "description": "the .tar.gz bytes; any Content-Type is accepted "
                    "(clients send application/gzip)",
                    "content": {"application/octet-stream": {"schema": _BINARY}},
                },
                "responses": {
                    "201": _json(_ref("Snapshot"), "the stored snapshot"),
                    "400": _json(
                        _ref("Error"),
                        "not a gzip'd tar, or a member would land outside the tree",
                    ),
                    "401": _UNAUTHORIZED,
                    "413": _json(
                        _ref("Error"),
                        "larger than snapshot-max-bytes (256 MiB unless the controller says "
                        "otherwise)",
                    ),
                },
            }
        },
        "/api/v1/snapshots/{id}": {
            "get": {
                "summary": "Download a snapshot's .tar.gz",
                "description": "With the admin token, or with the task-scoped headers of the "
                "worker protocol (registration-token, session-token, worker-name, "
                "org.cirruslabs.task-id, org.cirruslabs.client-secret) of a running task whose "
                "build's source is this snapshot.",
                "parameters": [_id_parameter("id")],
                "responses": {
                    "200": {
                        "description": "the archive's bytes",
                        "content": {"application/gzip": {"schema": _BINARY}},
                    },
                    "401": _json(_ref("Error"), "missing or wrong admin token or task headers"),
                    "403": _json(_ref("Error"), "the task is not one of a build of the snapshot"),
                    "404": _json(_ref("Error"), "no such snapshot"),
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
        "/api/v1/repositories": {
            "post": {
                "summary": "Register a forge repository, or update its registration",
                "description": "The token and the webhook secret are stored encrypted and never "
                "answered, except a webhook secret the controller generates for a new "
                "repository (no `webhookSecret` given): that one is in this answer alone. An "
                "update without `webhookSecret` keeps the stored one. Tasks of builds whose "
                "CIRRUS_REPO_FULL_NAME names the repository get the token as "
                "CIRRUS_REPO_CLONE_TOKEN.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("RepositoryRegistration")}},
                },
                "responses": {
                    "201": _json(_ref("RepositoryRegistered"), "registered"),
                    "200": _json(_ref("RepositoryRegistered"), "it was registered: updated"),
                    "400": _ERROR,
                    "401": _UNAUTHORIZED,
                    "413": _json(_ref("Error"), "the body is larger than 256 KiB"),
                },
            },
            "get": {
                "summary": "Registered repositories, by name, without credentials",
                "responses": {
                    "200": _json(_ref("RepositoryList"), "every registered repository"),
                    "401": _UNAUTHORIZED,
                },
            },
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
                    "source": _ref("BuildSource"),
                },
            },
            "BuildSource": {
                "type": "object",
                "description": "where the build's code comes from: a git source (cloneUrl) or "
                "an uploaded snapshot; its CIRRUS_* variables join the build's environment "
                "(the submitted environment wins)",
                "additionalProperties": False,
                "properties": {
                    "repository": {"type": "string", "description": "OWNER/NAME"},
                    "cloneUrl": {"type": "string"},
                    "branch": {"type": "string"},
                    "tag": {"type": "string"},
                    "pr": {"type": "integer", "minimum": 1},
                    "baseBranch": {"type": "string"},
                    "commit": {"type": "string", "pattern": "^[0-9a-fA-F]{7,64}$"},
                    "changeTitle": {"type": "string"},
                    "changeMessage": {"type": "string"},
                    "changeAuthor": {"type": "string"},
                    "defaultBranch": {"type": "string"},
                    "changedFiles": {"type": "array", "items": {"type": "string"}},
                    "snapshot": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                    "snapshotSha256": {"type": "string"},
                },
            },
            "Snapshot": {
                "type": "object",
                "required": ["id", "sha256", "size"],
                "properties": {
                    "id": {"type": "string"},
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "size": {"type": "integer", "minimum": 0},
                },
            },
            "BuildList": {
                "type": "object",
                "required": ["builds"],
                "properties": {"builds": {"type": "array", "items": _ref("Build")}},
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
            "RepositoryRegistration": {
                "type": "object",
                "required": ["name", "forge", "url", "token"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "description": "OWNER/NAME"},
                    "forge": {"type": "string", "enum": ["github", "gitea"]},
                    "url": {
                        "type": "string",
                        "description": "the forge's API, e.g. https://api.github.com",
                    },
                    "token": {
                        "type": "string",
                        "minLength": 1,
                        "description": "the forge token (at most 64 KiB of UTF-8)",
                    },
                    "cloneUrl": {
                        "type": ["string", "null"],
                        "description": "absent: https://github.com/OWNER/NAME.git for the "
                        "public GitHub API, else the API URL without its /api/v3, /api/v1 or "
                        "/api, followed by /OWNER/NAME.git",
                    },
                    "webhookSecret": {
                        "type": ["string", "null"],
                        "description": "absent: generated for a new repository, kept on update",
                    },
                },
            },
            "Repository": {
                "type": "object",
                "required": ["name", "forge", "url", "cloneUrl", "createdAt", "updatedAt"],
                "properties": {
                    "name": {"type": "string"},
                    "forge": {"type": "string", "enum": ["github", "gitea"]},
                    "url": {"type": "string"},
                    "cloneUrl": {"type": "string"},
                    "defaultBranch": {"type": "string", "description": "absent until known"},
                    "createdAt": {"type": "string", "format": "date-time"},
                    "updatedAt": {"type": "string", "format": "date-time"},
                },
            },
            "RepositoryRegistered": {
                "allOf": [
                    _ref("Repository"),
                    {
                        "type": "object",
                        "required": ["created"],
                        "properties": {
                            "created": {"type": "boolean"},
                            "webhookSecret": {
                                "type": "string",
                                "description": "only when the controller generated it now",
                            },
                        },
                    },
                ]
            },
            "RepositoryList": {
                "type": "object",
                "required": ["repositories"],
                "properties": {"repositories": {"type": "array", "items": _ref("Repository")}},
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
                    "attempt": {"type": "integer", "minimum": 1},
                },
            },
            "Build": {
                "type": "object",
                "required": ["id", "status", "tasks", "source", "createdAt"],
                "properties": {
                    "id": {"type": "string"},
                    "status": _STATUS,
                    "tasks": {
                        "type": "array",
                        "items": _ref("TaskSummary"),
                        "description": "the latest attempt of each task, in configuration "
                        "order; the status counts these",
                    },
                    "source": _ref("BuildSource"),
                    "createdAt": {"type": "string", "format": "date-time"},
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
                    "pendingReasonKind": {
                        "type": "string",
                        "enum": [kind.value for kind in WaitKind],
                        "description": "the category of pendingReason, for a SCHEDULED task "
                        "no worker has taken yet",
                    },
                    "attempt": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "1 as submitted, n+1 for a re-run of attempt n",
                    },
                    "rerunOf": {
                        "type": ["string", "null"],
                        "description": "the id of the attempt this one re-runs",
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

OPENAPI_DOCUMENT["paths"].update(ARTIFACT_PATHS)
OPENAPI_DOCUMENT["components"]["schemas"].update(ARTIFACT_SCHEMAS)
OPENAPI_DOCUMENT["paths"].update(ACCESS_PATHS)
OPENAPI_DOCUMENT["components"]["schemas"].update(ACCESS_SCHEMAS)
OPENAPI_DOCUMENT["paths"].update(FORGE_PATHS)
OPENAPI_DOCUMENT["components"]["schemas"].update(FORGE_SCHEMAS)

_UNAVAILABLE = _json(_ref("Error"), "the controller's database failed; try again")
for _path, _operations in OPENAPI_DOCUMENT["paths"].items():
    if _path.startswith("/api/v1/"):
        for _operation in _operations.values():
            _operation["responses"]["503"] = _UNAVAILABLE
            _operation["responses"].setdefault("403", FORBIDDEN)
