"""Backend instrumentation: driver call latency and errors, records per operation and outcome.

A driver error that blames the request (an unknown id, a conflict, an invalid record: answered
4xx) is counted as a *rejection*, apart from the backend's own failures (outages, refused
credentials, rate limits, unexpected exceptions), so that an alert on backend errors does not
fire because a client asked for a task that does not exist.

:func:`instrument_backend` times every public method of a driver *instance* and counts the
records processed from the per-item results, so neither the drivers nor the service need
telemetry code of their own.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from adapter.ops.logs import note_records
from adapter.ops.telemetry import Telemetry
from backends.base import Backend, BackendError, Entity, ItemResult

__all__ = ["instrument_backend"]


_BACKEND_METHODS = (
    "ping",
    "create_record",
    "create_records",
    "find_records",
    "match_records",
    "get_records",
    "update_record",
    "update_records",
    "create_associations",
    "create_activity",
    "create_task",
    "get_tasks",
    "get_task",
    "update_task",
    "update_tasks",
    "list_users",
    "counts",
    "list_records",
    "list_associated",
    "list_activities",
    "list_tasks",
)
# Batch methods whose per-item results count as "records processed" and the operation they
# belong to. The single-item primitives are not counted: the base class's batch defaults call
# them, and counting both would count each record twice.
_RECORD_OPS: dict[str, str] = {
    "create_records": "{entity}.create",
    "update_records": "{entity}.update",
    "create_associations": "associations.create",
}


# Set while a driver method runs, so calls it makes to other public methods (a batch default
# looping over its primitive) are not timed again: once per record would cost more than the
# record itself on a fast driver, and the outer call's latency already includes them.
_inside_call: contextvars.ContextVar[bool] = contextvars.ContextVar("_inside_call", default=False)


def _entity_of(args: tuple[Any, ...]) -> str:
    return args[0].plural if args and isinstance(args[0], Entity) else "records"


def instrument_backend(backend: Backend, telemetry: Telemetry) -> Backend:
    """Time every public driver method of ``backend`` *in place* and count processed records.

    Patching the instance (rather than wrapping it in a proxy) keeps the object the service
    holds, its class, ``capabilities`` and ``isinstance`` checks intact, and needs no change to
    drivers or to how the app passes the backend around. Calls made by a method to another one
    (a batch default looping over its primitive) are not timed again: only the outer call is.
    Idempotent per instance: a second call only re-targets the telemetry.
    """
    if getattr(backend, "_enginy_telemetry", None) is not None:
        backend._enginy_telemetry = telemetry  # type: ignore[attr-defined]
        return backend
    backend._enginy_telemetry = telemetry  # type: ignore[attr-defined]
    for name in _BACKEND_METHODS:
        original = getattr(backend, name, None)
        if original is None or not inspect.iscoroutinefunction(original):
            continue
        setattr(backend, name, _timed(backend, name, original))
    return backend


def _timed(
    backend: Backend, name: str, original: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    op_template = _RECORD_OPS.get(name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _inside_call.get():
            return await original(*args, **kwargs)
        telemetry: Telemetry = backend._enginy_telemetry  # type: ignore[attr-defined]
        start = time.perf_counter()
        token = _inside_call.set(True)
        try:
            result = await original(*args, **kwargs)
        except BackendError as exc:
            telemetry.observe_backend(name, time.perf_counter() - start, exc)
            raise
        except Exception:
            telemetry.observe_backend(name, time.perf_counter() - start, "exception")
            raise
        finally:
            _inside_call.reset(token)
        telemetry.observe_backend(name, time.perf_counter() - start)
        if op_template is not None and isinstance(result, list):
            _count_results(telemetry, op_template.format(entity=_entity_of(args)), result)
        elif name == "find_records" and isinstance(result, dict) and len(args) >= 3:
            _count_find(telemetry, _entity_of(args), len(set(args[2])), len(result))
        elif name == "match_records" and isinstance(result, list):
            matched = sum(record is not None for record in result)
            _count_find(telemetry, _entity_of(args), len(result), matched)
        elif name == "create_activity":
            telemetry.record_batch("activities.create", 1)
        elif name == "create_task":
            telemetry.record_batch("tasks.create", 1)
        elif name == "update_tasks" and isinstance(result, list):
            telemetry.record_batch("tasks.update", len(result))
        return result

    return wrapper


def _count_find(telemetry: Telemetry, entity: str, asked: int, matched: int) -> None:
    operation = f"{entity}.find"
    if matched:
        telemetry.count_records(operation, "matched", matched)
    if asked > matched:
        telemetry.count_records(operation, "unmatched", asked - matched)
    # A request's record count is its largest lookup, not the sum of several (a caller that
    # looks records up once per match key asks again for those still unmatched).
    note_records(asked, largest=True)


def _count_results(telemetry: Telemetry, operation: str, results: list[Any]) -> None:
    created = existing = failed = 0
    for item in results:
        if not isinstance(item, ItemResult) or not item.ok:
            failed += 1
        elif operation.endswith(".create") and not item.created:
            existing += 1
        else:
            created += 1
    if operation.endswith(".create") and not operation.startswith("associations"):
        telemetry.record_batch(operation, created, failed, existing=existing)
    else:
        telemetry.record_batch(operation, created + existing, failed)
