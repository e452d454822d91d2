"""The CRM fixtures' tests build one database per test module (module-scoped async
fixtures), so the anyio backend must live at least that long."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"
