"""What the front answers for a driver's error: its status, and the sentence a body may carry.

A 5xx never repeats the driver's message (it may name a host, a user, a database or a file):
the body carries a fixed sentence per error class, and the message goes to the log.
"""

from __future__ import annotations

import math

from backends.base import (
    AuthFailed,
    BackendError,
    Conflict,
    InvalidRecord,
    NotFound,
    RateLimited,
    SchemaError,
    Unavailable,
    Unsupported,
)

__all__ = ["backend_status", "is_backend_failure", "public_message", "retry_after_header"]

#: Status code of each driver error class (the first class in the error's MRO wins).
_BACKEND_STATUS: dict[type[BackendError], int] = {
    NotFound: 404,
    Conflict: 409,
    InvalidRecord: 400,
    Unsupported: 501,
    # The schema or the configuration does not allow the operation: retrying cannot help
    # (Enginy retries a 503 for ever), an operator must act.
    SchemaError: 500,
    AuthFailed: 503,
    Unavailable: 503,  # RateLimited is a subclass
}


def is_backend_failure(error: BackendError) -> bool:
    """Whether ``error`` says the backend failed (an outage, refused credentials, a rate limit,
    an unknown error class), as opposed to refusing what the request asked: an unknown id, a
    conflict, an invalid record (4xx) or an operation it does not implement (501)."""
    status = backend_status(error)
    return status >= 500 and status != 501


def backend_status(error: BackendError) -> int:
    """The HTTP status for a driver error that failed a whole request."""
    for cls in type(error).__mro__:
        status = _BACKEND_STATUS.get(cls)
        if status is not None:
            return status
    # An error class of a third-party driver: transient ones are retried by Enginy.
    return 503 if error.retryable else 502


#: What a 5xx body says about a driver error, by class (first match in the error's MRO): the
#: driver's message may name a host, a user, a database or a file, so it is logged instead.
_PUBLIC_MESSAGES: dict[type[BackendError], str] = {
    RateLimited: "The CRM backend's rate limit was reached; retry later.",
    SchemaError: "The CRM backend's schema or the adapter's configuration does not allow this "
    "operation; an operator must fix it.",
    AuthFailed: "The CRM backend refused the adapter's credentials; an operator must fix its "
    "configuration.",
    Unavailable: "The CRM backend is unavailable; retry later.",
}


def public_message(error: BackendError) -> str:
    """The sentence an error body may carry for ``error`` (never the driver's own message)."""
    for cls in type(error).__mro__:
        message = _PUBLIC_MESSAGES.get(cls)
        if message is not None:
            return message
    if error.retryable:
        return "The CRM backend failed; retry later."
    return "The CRM backend failed."


def retry_after_header(error: BackendError) -> dict[str, str]:
    """The ``Retry-After`` header for a retryable ``error`` that says when (else none)."""
    seconds = getattr(error, "retry_after", None)
    if seconds is None or not error.retryable:
        return {}
    return {"Retry-After": str(max(0, math.ceil(seconds)))}
