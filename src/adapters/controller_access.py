"""Answers of the controller's re-run and user-token endpoints, as ``ControllerApiClient`` parses
them (``POST /api/v1/tasks/{id}/rerun``, ``POST /api/v1/builds/{id}/rerun``,
``/api/v1/tokens``). Unknown fields are kept, as for every answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    def document(self) -> dict[str, Any]:
        """Return the answer as JSON-ready data with the controller's field names."""
        return self.model_dump(mode="json", by_alias=True)


class AttemptInfo(_Answer):
    """A new attempt a re-run created."""

    id: str
    name: str = ""
    status: str
    attempt: int = 1
    rerun_of: str | None = Field(default=None, alias="rerunOf")


class TaskRerun(_Answer):
    """``POST /api/v1/tasks/{id}/rerun``: the task's new attempt and every attempt made."""

    id: str
    status: str
    attempts: tuple[AttemptInfo, ...] = ()


class BuildRerun(_Answer):
    """``POST /api/v1/builds/{id}/rerun``: the new attempts."""

    attempts: tuple[AttemptInfo, ...] = ()


class UserTokenEntry(_Answer):
    """A user token as listed (never the token itself)."""

    id: str
    name: str
    role: str
    created_at: str = Field(default="", alias="createdAt")


class UserTokenCreated(UserTokenEntry):
    """``POST /api/v1/tokens``: the new token, shown this once."""

    token: str


class UserTokenList(_Answer):
    """``GET /api/v1/tokens``."""

    tokens: tuple[UserTokenEntry, ...] = ()
