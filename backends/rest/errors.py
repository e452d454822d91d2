"""``errors:``: a failed answer → one error class, by status, body and headers (one table).

The manifest lists rules, first match wins; the built-in rules after them cover what every
JSON API means by its status codes. A rule names a ``class``:

* ``invalid``: the record is wrong; reported on that item (``errors[]``, ``success: false``);
* ``conflict``: "already exists"; a create looks the record up by its match keys and answers
  with it;
* ``not_found``: an id names nothing (per item, or 404);
* ``rate_limited``: wait (``Retry-After`` as seconds, an HTTP date or a body field, or the reset
  header) and retry; 503 + ``Retry-After`` when the wait outlasts the budget;
* ``retryable``: back off and retry (a create looks first); 503 after the last attempt;
* ``auth``: the credentials are refused (after one OAuth2 refresh); 503, never retried in a
  loop;
* ``config``: the configuration cannot work (a 402, a 405, a missing trailing slash's 301); 502.

Built-in rules, after the manifest's: 401/403 auth, 402/405/301/302/307/308 config, 404 and 410
not found, 409 conflict, 429 rate limited, 408/425/5xx retryable, any other 4xx invalid.

The message of an error is read from the first of ``message`` (paths into the body) that is
present; a mapping of field → messages (``{"email": ["already exists"]}``) reads as
``email: already exists``; an HTML page reads as its first 200 characters of text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backends.base import (
    AuthFailed,
    BackendError,
    Conflict,
    InvalidRecord,
    NotFound,
    RateLimited,
    Unavailable,
)
from backends.http import Decision, RetryPolicy, parse_retry_after
from backends.rest.paths import MISSING, check_path, get_path

__all__ = [
    "BUILTIN_RULES",
    "ErrorClass",
    "ErrorRule",
    "ErrorTable",
    "ErrorsSpec",
    "RestRetryPolicy",
    "message_of",
]

ErrorClass = Literal[
    "invalid", "conflict", "not_found", "rate_limited", "retryable", "auth", "config"
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BodyMatch(_Spec):
    """A condition on the body: the value at ``path`` equals ``equals``, or its text contains
    ``contains`` / matches the regular expression ``matches`` (case-insensitive)."""

    path: str = ""
    equals: Any = None
    contains: str | None = None
    matches: str | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_path(value)

    @field_validator("matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value

    def test(self, body: Any) -> bool:
        value = get_path(body, self.path)
        if value is MISSING:
            return False
        if self.equals is not None and value != self.equals:
            return False
        text = _text(value).lower()
        if self.contains is not None and self.contains.lower() not in text:
            return False
        return self.matches is None or re.search(self.matches, text, re.IGNORECASE) is not None


class ErrorRule(_Spec):
    """One row of the table: every condition given must hold."""

    #: A status (``400``), a list, or a class (``"4xx"``).
    status: int | list[int] | Literal["2xx", "3xx", "4xx", "5xx"] | None = None
    #: A regular expression searched (case-insensitive) in the error's message.
    message: str | None = None
    body: BodyMatch | None = None
    #: A header that must be present (``Retry-After``, ``X-RateLimit-Remaining``...).
    header: str | None = None
    class_: ErrorClass = Field(alias="class")

    @field_validator("message")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value

    def test(self, status: int, body: Any, message: str, headers: Mapping[str, str]) -> bool:
        if isinstance(self.status, int) and status != self.status:
            return False
        if isinstance(self.status, list) and status not in self.status:
            return False
        if isinstance(self.status, str) and str(status)[0] != self.status[0]:
            return False
        if self.message is not None and not re.search(self.message, message, re.IGNORECASE):
            return False
        if self.body is not None and not self.body.test(body):
            return False
        return self.header is None or self.header.lower() in {h.lower() for h in headers}


def _rule(status: Any, cls: ErrorClass) -> ErrorRule:
    return ErrorRule.model_validate({"status": status, "class": cls})


BUILTIN_RULES: tuple[ErrorRule, ...] = (
    _rule([401, 403], "auth"),
    _rule([301, 302, 307, 308, 402, 405], "config"),
    _rule([404, 410], "not_found"),
    _rule(409, "conflict"),
    _rule(429, "rate_limited"),
    _rule([408, 425], "retryable"),
    _rule("5xx", "retryable"),
    _rule("4xx", "invalid"),
    _rule("3xx", "config"),
)


class RetryAfterSpec(_Spec):
    """Where the wait before a retry is read, first found wins."""

    header: str = "Retry-After"
    #: A body path holding seconds or an HTTP date (``error.retry_after``).
    body: str | None = None
    #: A header holding when the window resets: seconds from now, or an epoch time.
    reset_header: str | None = None
    reset_is_epoch: bool = False


class ErrorsSpec(_Spec):
    """``errors:`` in the manifest."""

    #: Body paths tried in order for the message.
    message: list[str] = Field(
        default_factory=lambda: [
            "error.message",
            "errors.0.message",
            "message",
            "error",
            "errors",
            "detail",
            "title",
        ]
    )
    rules: list[ErrorRule] = Field(default_factory=list)
    retry_after: RetryAfterSpec = Field(default_factory=RetryAfterSpec)

    @field_validator("message")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        return [check_path(p) for p in value]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    return "" if value is None else str(value)


def message_of(spec: ErrorsSpec, body: Any) -> str:
    """The error's message as one line (see the module docstring)."""
    for path in spec.message:
        value = get_path(body, path)
        if value is not MISSING and not isinstance(value, bool) and value not in (None, "", [], {}):
            return " ".join(_text(value).split())[:500]
    return ""


class ErrorTable:
    """The manifest's rules plus the built-in ones, as the HTTP layer's error factory."""

    def __init__(self, spec: ErrorsSpec, name: str = "the CRM") -> None:
        self.spec, self.name = spec, name
        self.rules = (*spec.rules, *BUILTIN_RULES)

    def classify(self, status: int, body: Any, headers: Mapping[str, str]) -> ErrorClass:
        message = message_of(self.spec, body)
        for rule in self.rules:
            if rule.test(status, body, message, headers):
                return rule.class_
        return "invalid" if status < 500 else "retryable"

    def __call__(
        self,
        status: int,
        body: Mapping[str, Any],
        *,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> BackendError:
        kind = self.classify(status, body, headers or {})
        message = message_of(self.spec, body) or f"HTTP {status}"
        text = f"{self.name} answered {status}: {message}"
        if kind == "auth":
            return AuthFailed(f"{text} (check backend.options.auth and the token's rights)")
        if kind == "config":
            return BackendError(
                f"{text} (check the operation's method and path in backend.options)",
                code="backend_configuration",
            )
        if kind == "rate_limited":
            return RateLimited(text, retry_after=retry_after)
        if kind == "retryable":
            return Unavailable(text, retry_after=retry_after)
        classes: dict[str, type[BackendError]] = {
            "conflict": Conflict,
            "not_found": NotFound,
            "invalid": InvalidRecord,
        }
        return classes[kind](text)


class RestRetryPolicy(RetryPolicy):
    """The shared retry policy, deciding by the manifest's error table: what it calls
    ``rate_limited`` waits the server's time, ``retryable`` backs off, the rest is final."""

    def __init__(
        self, table: ErrorTable, *, now: Callable[[], float] = time.time, **kwargs: Any
    ) -> None:
        spec = table.spec.retry_after
        super().__init__(retry_after_field=spec.body, now=now, **kwargs)
        self.table, self._wall = table, now

    def retry_after(self, headers: Mapping[str, str], body: Any) -> float | None:
        spec = self.table.spec.retry_after
        found = parse_retry_after(headers.get(spec.header.lower()), self._wall)
        if found is None and spec.body:
            found = parse_retry_after(get_path(body, spec.body), self._wall)
        if found is None and spec.reset_header:
            reset = parse_retry_after(headers.get(spec.reset_header.lower()), self._wall)
            if reset is not None:
                found = max(0.0, reset - self._wall()) if spec.reset_is_epoch else reset
        return found

    def for_response(
        self, status: int, body: Any, headers: Mapping[str, str], attempt: int
    ) -> Decision:
        kind = self.table.classify(status, body, headers)
        after = self.retry_after(headers, body)
        if kind == "rate_limited":
            wait = after if after is not None else self.rate_limit_wait
            return Decision(True, wait, "429", True, self.rate_limit_budget)
        if kind == "retryable":
            if after is not None:
                return Decision(True, after, f"{status // 100}xx", True)
            return Decision(True, self.backoff(attempt), f"{status // 100}xx")
        return Decision(False, kind="permanent")
