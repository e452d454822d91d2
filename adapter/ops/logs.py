"""Log lines: request ids, the JSON and text formats, and the debug body log.

* Every request gets an id (taken from ``X-Request-ID`` when sane, else made up), kept in a
  context variable so that any log line written while serving it carries it
  (:func:`current_request_id`), with the number of records it processed (:func:`note_records`).
* :func:`configure_logging` routes every log record of the process (ours, drivers', uvicorn's)
  through one handler in the JSON (default) or text format.
* :func:`body_for_log` is what ``logs.bodies: true`` (debug only) writes of a body: secrets
  removed by :func:`adapter.redaction.redact` and e-mail addresses masked.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapter.config import LogsConfig
from adapter.redaction import redact

__all__ = [
    "ACCESS_FIELDS",
    "CURRENT_REQUEST",
    "REDACTED",
    "JsonFormatter",
    "RequestContext",
    "TextFormatter",
    "body_for_log",
    "configure_logging",
    "current_request",
    "current_request_id",
    "mask_emails",
    "note_records",
]

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
#: What a secret is replaced with in a logged body.
REDACTED = "[redacted]"


# --------------------------------------------------------------------------------------------
# Per-request context
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class RequestContext:
    request_id: str
    records: int | None = None


#: The request being served in this task (set by the telemetry middleware).
CURRENT_REQUEST: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "enginy_adapter_request", default=None
)


def current_request_id() -> str | None:
    """The id of the request being served in this task, if any (for other log lines)."""
    ctx = CURRENT_REQUEST.get()
    return ctx.request_id if ctx is not None else None


def note_records(count: int, *, largest: bool = False) -> None:
    """Add ``count`` to the current request's record count (or keep the larger of the two
    with ``largest``); no-op outside a request."""
    ctx = CURRENT_REQUEST.get()
    if ctx is not None:
        ctx.records = max(ctx.records or 0, count) if largest else (ctx.records or 0) + count


def current_request() -> RequestContext | None:
    """The context of the request being served in this task, if any."""
    return CURRENT_REQUEST.get()


# --------------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------------


def mask_emails(text: str) -> str:
    """Replace every e-mail address by its first letter and domain: ``j***@example.com``."""
    return _EMAIL.sub(r"\1***@\2", text)


def body_for_log(
    raw: bytes, limit: int, secret_names: Iterable[str] = (), secret_values: Iterable[str] = ()
) -> str:
    """A request or response body as the debug body log writes it: JSON with secrets replaced
    by :data:`REDACTED` (``secret_names``: further key names whose values are secret, such as
    the API-key header; ``secret_values``: the service's own keys), e-mails masked, at most
    ``limit`` characters."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        # Not JSON: there are no keys to recognise, so log only its size; masking e-mails in
        # free text would still leave any token in it.
        return f"<{len(raw)} bytes, not JSON>"
    redacted = redact(parsed, secret_values, names=secret_names, mask=REDACTED)
    text = mask_emails(json.dumps(redacted, ensure_ascii=False, separators=(",", ":")))
    return text if len(text) <= limit else text[:limit] + "…"


# --------------------------------------------------------------------------------------------
# Log formatting
# --------------------------------------------------------------------------------------------

#: The per-request fields, in the order they are written (``detail``, the cause an error body
#: withheld, only when there is one).
ACCESS_FIELDS = ("request_id", "method", "route", "status", "latency_ms", "records", "error")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message`` plus, for request
    lines, the fields of :data:`ACCESS_FIELDS` (and ``request_body`` / ``response_body`` in
    debug mode)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            out.update(access)
        elif (rid := current_request_id()) is not None:
            out["request_id"] = rid
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines for local use."""

    def format(self, record: logging.LogRecord) -> str:
        access = getattr(record, "access", None)
        head = f"{_iso(record.created)} {record.levelname:<7}"
        if isinstance(access, dict):
            line = (
                f"{head} {access['request_id']} {access['method']} {access['route']} "
                f"{access['status']} {access['latency_ms']}ms"
                f" records={access['records'] if access['records'] is not None else '-'}"
                f" error={access['error'] or '-'}"
            )
            if access.get("detail"):
                line += f" detail={access['detail']!r}"
            for k in ("request_body", "response_body"):
                if k in access:
                    line += f" {k}={access[k]}"
        else:
            rid = current_request_id()
            where = f" [{rid}]" if rid is not None else ""
            line = f"{head} {record.name}{where}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(config: LogsConfig, stream: Any = None) -> logging.Handler:
    """Route every log record of the process (ours, drivers', uvicorn's) through one handler in
    the configured format. Run uvicorn with ``log_config=None, access_log=False``: the adapter
    writes its own access line per request, with the route template and request id."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if config.format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    return handler
