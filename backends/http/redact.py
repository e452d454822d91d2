"""Secret-safe request logging: what an HTTP driver may write about a call.

Credentials travel in headers, which are never logged. A secret can still come back inside an
error message (an upstream echoing the token, an exception's text naming a URL), so every text
a driver logs or puts in an error goes through :meth:`Redactor.text`, and query parameters whose
name looks like a credential are masked in logged URLs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MASK", "Redactor", "log_attempt"]

MASK = "[redacted]"

#: Query-parameter names that carry credentials in common APIs (hapikey, api_key, token...).
_SECRET_NAME = re.compile(
    r"(?:^|_|-)(?:key|apikey|hapikey|token|secret|password|passwd|pwd|auth|signature|sig)$",
    re.IGNORECASE,
)


class Redactor:
    """Replaces known secret values (a token, a password) wherever they occur in a text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole. Very short values
        # would mask innocent text and are no secret worth the name.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            value = value.replace(secret, MASK)
        return value

    def url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """``path?query`` for a log line, credential-like parameters masked."""
        if not params:
            return self.text(path)
        shown = "&".join(
            f"{name}={MASK if _SECRET_NAME.search(str(name)) else value}"
            for name, value in params.items()
        )
        return self.text(f"{path}?{shown}")


def log_attempt(
    logger: logging.Logger,
    redactor: Redactor,
    method: str,
    url: str,
    attempt: int,
    outcome: str,
    elapsed: float,
    *,
    level: int = logging.DEBUG,
) -> None:
    """One line per HTTP attempt: ``GET /path?q -> 200 in 35 ms (attempt 1)``."""
    if logger.isEnabledFor(level):
        logger.log(
            level,
            "%s %s -> %s in %.0f ms (attempt %d)",
            method,
            url,
            redactor.text(outcome),
            elapsed * 1000,
            attempt,
        )
