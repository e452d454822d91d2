"""``server.limits``: how much time, how many connections and how much memory a client may take.

The defaults are meant to be safe for a service exposed to the internet, and roomy for Enginy:
its calls carry at most a few megabytes and are answered in seconds. ``docs/operations.md``
explains each limit and what a client sees when it hits one. Used by
:mod:`adapter.ops.connections` (the protocol layer: headers, connections) and
:mod:`adapter.ops.limits` (the ASGI layer: requests in flight, bodies).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_BODY_BUDGET", "LimitsConfig"]

#: Default budget of request-body bytes being handled at once: three bodies of the default
#: ``server.max_body_bytes`` (10 MiB). Parsed JSON takes several times its size in memory,
#: so this is what keeps a burst of large syncs within a few hundred megabytes.
DEFAULT_BODY_BUDGET = 32 * 1024 * 1024


class LimitsConfig(BaseModel):
    """``server.limits``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Seconds a client has to send a request's line and headers, counted from the moment the
    #: connection opens and, on a kept-alive connection, from the first byte of each further
    #: request. A connection that stalls (or trickles) past it gets 408 and is closed.
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    #: Seconds an idle kept-alive connection stays open between requests (uvicorn's
    #: ``timeout_keep_alive``). Keep it above the idle timeout of a proxy in front, if any.
    keep_alive_seconds: float = Field(default=30.0, gt=0, le=3600)
    #: Seconds a request body may go without a byte arriving: a stalled upload gets 408 and its
    #: connection is closed.
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    #: Open connections per process. Beyond it the connection idle the longest (between
    #: requests, or still waiting for its headers) is closed to make room; when none is idle,
    #: the new connection is answered 503 with ``Retry-After`` and closed. It is also lowered,
    #: with a warning, to what the process's file-descriptor limit allows.
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    #: Requests being served at once per process; beyond it the answer is 503 with
    #: ``Retry-After`` (``error: overloaded``).
    max_requests_in_flight: int = Field(default=128, ge=1, le=100_000)
    #: Request-body bytes admitted at once per process (the size a body declares, or
    #: ``server.max_body_bytes`` for a chunked one), held until its answer is sent. A body that
    #: does not fit waits its turn; a body larger than the whole budget waits for it to empty.
    max_body_bytes_in_flight: int = Field(default=DEFAULT_BODY_BUDGET, gt=0)
    #: Seconds a body may wait for room in that budget before the answer is 503 with
    #: ``Retry-After`` (``error: overloaded``).
    body_wait_seconds: float = Field(default=15.0, ge=0, le=600)
