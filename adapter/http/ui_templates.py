"""The dashboard's templates: a Jinja2 environment that escapes every value, its filters, and
the headers every page is sent with (a Content-Security-Policy that forbids scripts outright)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from adapter.outbox import format_duration

__all__ = ["SECURITY_HEADERS", "TEMPLATES_DIR", "display", "template_environment"]

TEMPLATES_DIR = Path(__file__).parent / "templates"
SECURITY_HEADERS = {
    # No script may run on these pages, whatever a stored value contains.
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}


def display(value: Any) -> str:
    """A field value as text (escaping is the template's job, not this function's)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def template_environment() -> jinja2.Environment:
    """The environment of the dashboard's templates, with its filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # everywhere, not only for *.html: every value we render is untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["display"] = display
    env.filters["when"] = _when
    env.filters["duration"] = format_duration
    env.filters["q"] = lambda value: quote(str(value), safe="")
    return env
