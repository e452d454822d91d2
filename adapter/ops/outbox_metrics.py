"""The outbox's metrics: queue depth, oldest age, deliveries, failed attempts, dead letters.

:class:`OutboxMetrics` is the :class:`~adapter.outbox.OutboxEvents` the composition root
gives the outbox; its metrics live in the app's :class:`~adapter.ops.telemetry.Telemetry`
registry. The depth and the oldest age describe the *shared* queue (every replica reports the
same values: aggregate them with ``max``, not ``sum``); the counters are this process's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from adapter.outbox import EXPIRED, OutboxStats, State, WriteKind
from backends.base import (
    AuthFailed,
    Conflict,
    InvalidRecord,
    NotFound,
    RateLimited,
    Unavailable,
    Unsupported,
)

__all__ = ["OutboxMetrics"]

#: Error codes kept as label values; a third-party driver's own codes count as ``other`` (a
#: label must not take unbounded values).
_CODES = frozenset(
    {
        Unavailable.code,
        RateLimited.code,
        AuthFailed.code,
        NotFound.code,
        InvalidRecord.code,
        Conflict.code,
        Unsupported.code,
        EXPIRED,
        "internal_error",
    }
)
_KINDS = frozenset(kind.value for kind in WriteKind)


def _code(code: str) -> str:
    return code if code in _CODES else "other"


def _kind(kind: str) -> str:
    return kind if kind in _KINDS else "other"


class OutboxMetrics:
    """Outbox metrics in ``registry``; ``clock`` gives seconds since the epoch."""

    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.items = Gauge(
            "enginy_adapter_outbox_items",
            "Items in the outbox queue by state (pending: waiting for delivery; dead: given up, "
            "kept for an operator)",
            ["state"],
            registry=registry,
        )
        self.oldest = Gauge(
            "enginy_adapter_outbox_oldest_age_seconds",
            "Age of the oldest pending item of the outbox (0 when none is pending)",
            registry=registry,
        )
        self.enqueued_total = Counter(
            "enginy_adapter_outbox_enqueued",
            "Writes accepted into the outbox, by kind",
            ["kind"],
            registry=registry,
        )
        self.delivered_total = Counter(
            "enginy_adapter_outbox_delivered",
            "Queued writes delivered to the backend, by kind",
            ["kind"],
            registry=registry,
        )
        self.failed_total = Counter(
            "enginy_adapter_outbox_attempts_failed",
            "Delivery attempts that failed for a passing reason (retried later), by kind and error",
            ["kind", "error"],
            registry=registry,
        )
        self.dead_total = Counter(
            "enginy_adapter_outbox_dead_letters",
            "Queued writes given up (dead letters), by kind and error",
            ["kind", "error"],
            registry=registry,
        )
        for state in State:
            self.items.labels(state.value).set(0)
        self._oldest_at: float | None = None
        self.oldest.set_function(self._oldest_age)

    def _oldest_age(self) -> float:
        at = self._oldest_at
        return 0.0 if at is None else max(0.0, self.clock() - at)

    # -- OutboxEvents ---------------------------------------------------------------------------

    def enqueued(self, kind: str, count: int) -> None:
        self.enqueued_total.labels(_kind(kind)).inc(count)

    def delivered(self, kind: str, count: int) -> None:
        self.delivered_total.labels(_kind(kind)).inc(count)

    def attempt_failed(self, kind: str, code: str) -> None:
        self.failed_total.labels(_kind(kind), _code(code)).inc()

    def dead_letter(self, kind: str, code: str) -> None:
        self.dead_total.labels(_kind(kind), _code(code)).inc()

    def stats(self, stats: OutboxStats) -> None:
        self.items.labels(State.PENDING.value).set(stats.pending)
        self.items.labels(State.DEAD.value).set(stats.dead)
        self._oldest_at = stats.oldest_pending_at
