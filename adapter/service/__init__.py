"""Translation between Enginy's contract and the driver interface.

The :class:`Service` takes validated wire models (``adapter.contract``), applies the YAML
field mapping and computes match keys once (:mod:`adapter.mapping`, :mod:`adapter.matching`),
calls the driver, and builds the wire responses. It knows nothing about HTTP: failures leave as
exceptions (:class:`adapter.errors.ApiError` or a driver's :class:`backends.base.BackendError`)
and are rendered by :mod:`adapter.errors`.

Decisions of the contract's Part A implemented here: idempotent creates and per-record batch
outcomes (A.4, A.5), partial updates with the null policy (A.6), sync matching in priority
order with one driver call per key per batch (A.7), field mapping both ways (A.8), activity
idempotency keys and unknown types (A.9), task completion (A.10), users (A.11) and the cached
health check (A.12).

The class is assembled from two halves, :mod:`adapter.service.records` (contacts and
companies) and :mod:`adapter.service.engagements` (associations, activities, tasks, users; the
tasks in :mod:`adapter.service.tasks`), plus the cached :mod:`adapter.service.health` check.
"""

from __future__ import annotations

from adapter.service.core import Service
from adapter.service.engagements import KNOWN_ACTIVITY_TYPES
from adapter.service.health import HealthCheck

__all__ = ["KNOWN_ACTIVITY_TYPES", "HealthCheck", "Service"]
