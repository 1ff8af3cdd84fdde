"""The one error of the workspace adapter."""

from __future__ import annotations

from domain.errors import CirrusError


class WorkspaceError(CirrusError):
    """The project directory or its repository cannot give what was asked; ``str()`` is one
    line for the user (what failed and where), never a git traceback."""
