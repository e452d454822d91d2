"""The answers of ``GET /users`` and ``GET /health``."""

from __future__ import annotations

from .types import _Closed

__all__ = ["HealthOk", "UserOut"]


class UserOut(_Closed):
    id: str
    name: str
    email: str | None = None


class HealthOk(_Closed):
    status: str = "ok"
