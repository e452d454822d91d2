"""The Redis server for tests that need one (the shared rate limit).

``ENGINY_TEST_REDIS_URL`` names it (default: the local server). When it is unreachable a test
skips with the reason, unless ``ENGINY_REQUIRE_DATABASES=1`` (CI), where it fails, as the
PostgreSQL and MariaDB tests do.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

REDIS_URL = os.environ.get("ENGINY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> str:
    """``REDIS_URL`` when its server answers; otherwise skip (or fail in CI)."""
    parts = urlsplit(REDIS_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        with socket.create_connection((host, port), 2):
            return REDIS_URL
    except OSError:
        message = f"Redis not reachable at {host}:{port}"
        if os.environ.get("ENGINY_REQUIRE_DATABASES") == "1":
            pytest.fail(f"{message} (ENGINY_REQUIRE_DATABASES=1)")
        pytest.skip(f"{message}; set ENGINY_REQUIRE_DATABASES=1 to make this mandatory")
