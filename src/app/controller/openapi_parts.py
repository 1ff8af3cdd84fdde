"""Small builders of OpenAPI fragments shared by the API's description modules."""

from __future__ import annotations

from typing import Any


def ref(name: str) -> dict[str, str]:
    """Return a reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """Return a response with a JSON body of ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_response(description: str) -> dict[str, Any]:
    """Return a refusal: an ``Error`` body (``{"error": ...}``)."""
    return json_response(ref("Error"), description)


def path_parameter(name: str, description: str = "") -> dict[str, Any]:
    """Return a required string path parameter."""
    parameter: dict[str, Any] = {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    if description:
        parameter["description"] = description
    return parameter
