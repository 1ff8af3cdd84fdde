"""Answers of the controller's cron API (``app.controller.forge_api``), as the CLI reads them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CronEntry(BaseModel):
    """One cron: ``POST /api/v1/crons`` and an entry of ``GET /api/v1/crons``."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    name: str
    repository: str
    branch: str
    expression: str
    next_run: str = Field(default="", alias="nextRun")
    last_run: str | None = Field(default=None, alias="lastRun")
    last_build_id: str = Field(default="", alias="lastBuildId")
    last_error: str = Field(default="", alias="lastError")

    def document(self) -> dict[str, Any]:
        """Return the answer with the controller's field names."""
        return self.model_dump(mode="json", by_alias=True)


class CronList(BaseModel):
    """``GET /api/v1/crons``."""

    model_config = ConfigDict(frozen=True, extra="allow")

    crons: tuple[CronEntry, ...] = ()
