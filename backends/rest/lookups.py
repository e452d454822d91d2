"""Finding and reading records: the strategies of :mod:`backends.rest.finding` run for one
resource, the rule for a value several records hold, and reads by id."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

from backends.base import EXTERNAL_ID, Entity, MatchKey, NotFound, StoredRecord
from backends.keys import NORMALISER_BY_KEY, key_kind
from backends.rest.core import RestCore
from backends.rest.finding import KeyPlan, run_strategy
from backends.rest.paths import MISSING, get_path

__all__ = ["FindingMixin", "StrategyHost", "pick"]

log = logging.getLogger("backends.rest")


def _order_key(value: Any) -> tuple[int, float, str]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    text = "" if value in (MISSING, None) else str(value)
    return (0, float(text), "") if text.isdigit() else (1, 0.0, text)


def pick(records: Sequence[Mapping[str, Any]], rule: str, created: str | None, id_path: str) -> Any:
    """The record a value held by several gives: ``first`` as answered, else the ``oldest`` /
    ``newest`` by creation time (then id, numerically when ids are numbers)."""
    if rule == "first" or len(records) == 1:
        return records[0]

    def order(record: Mapping[str, Any]) -> tuple[Any, ...]:
        when = get_path(record, created) if created else MISSING
        return (_order_key(when), _order_key(get_path(record, id_path)))

    ordered = sorted(records, key=order)
    return ordered[0] if rule == "oldest" else ordered[-1]


Fetch = Callable[[Sequence[str]], Awaitable[list[Mapping[str, Any]]]]


class StrategyHost:
    """What the strategies need (:class:`backends.rest.finding.FindHost`): pages of a
    strategy's request, full records by id (``fetch``), bounded concurrency."""

    def __init__(self, driver: RestCore, fetch: Fetch | None = None) -> None:
        self.driver, self._fetch = driver, fetch

    async def collect(
        self, strategy: Any, ctx: Mapping[str, Any], limit: int | None = None
    ) -> list[Any]:
        return await self.driver.client.collect(
            strategy.request, strategy.response, strategy.pagination, ctx, limit
        )

    async def fetch(self, ids: Sequence[str]) -> list[Mapping[str, Any]]:
        return await self._fetch(ids) if self._fetch is not None else []

    async def gather(self, calls: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
        return await self.driver.gather(calls)


class FindingMixin(RestCore):
    """``find_records`` and reads by id."""

    _warned: set[tuple[str, str]]

    def plan(self, entity: Entity, key: MatchKey) -> KeyPlan:
        """What is compared for ``key``: the driver-kept field (exact), the external id
        (exact), or the key's own field normalised as the front normalises it."""
        spec = self.resource(entity)
        codec = self.codecs[entity]
        if key.name == EXTERNAL_ID:
            return KeyPlan(key.name, (codec.resolve(spec.external_id),), None)
        if key.name in spec.keys:
            return KeyPlan(key.name, (codec.resolve(spec.keys[key.name]),), None)
        if key.normaliser == "compound" and key.fields:
            return KeyPlan(key.name, tuple(key.fields), "compound")
        normaliser = key.normaliser or NORMALISER_BY_KEY.get(key.name)
        return KeyPlan(key.name, (key.field or key.name,), normaliser or key_kind(key.name))

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        """Records by one key, each value's strategies in order; values found nowhere absent,
        the ``several`` rule for values several records hold."""
        spec = self.resource(entity)
        strategies = spec.find.get(key.name)
        wanted = [v for v in dict.fromkeys(values) if v]
        if not wanted:
            return {}
        if not strategies:
            self._warn_once(entity, key.name)
            return {}
        plan = self.plan(entity, key)
        host = StrategyHost(self, lambda ids: self.fetch_raw(entity, ids))
        found: dict[str, StoredRecord] = {}
        settled: set[str] = set()  # found nowhere by an exhaustive read: sought no further
        with self.client.budget():
            for strategy in strategies:
                remaining = [v for v in wanted if v not in found and v not in settled]
                if not remaining:
                    break
                if len(remaining) < strategy.min_values:
                    continue
                hits = await run_strategy(
                    strategy, host, plan, remaining, {}, self.codecs[entity].resolve
                )
                if hits is None:
                    continue  # a list longer than the strategy's bound: the next one
                for value, records in hits.items():
                    if not records:
                        settled.add(value)
                        continue
                    chosen = pick(records, spec.several, spec.record.created, spec.record.id)
                    stored = await self.codecs[entity].decode(chosen)
                    if stored is not None:
                        found[value] = stored
                        self.known[(entity, stored.crm_id)] = True
        return found

    def _warn_once(self, entity: Entity, key: str) -> None:
        warned = self.__dict__.setdefault("_warned", set())
        if (entity.value, key) not in warned:
            warned.add((entity.value, key))
            log.warning(
                "rest: %s.find has no strategy for key %r: nothing is found by it",
                entity.plural,
                key,
            )

    async def _by_external_id(
        self, entity: Entity, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        if self.options.dry_run:
            return {}
        return await self.find_records(entity, MatchKey(EXTERNAL_ID), values)

    async def _collect_ids(self, op: Any, ids: list[str]) -> list[Any]:
        return await self.client.collect(op.request, op.response, None, {"ids": ids})

    async def fetch_raw(self, entity: Entity, ids: Sequence[str]) -> list[Mapping[str, Any]]:
        """The API's records for ``ids`` (unknown ids left out): ``get_many`` in chunks, else
        ``get`` per id, ``concurrency`` at a time."""
        spec = self.resource(entity)
        ids = self.usable_ids(ids, spec.record.id_format)
        if not ids:
            return []
        if spec.get_many is not None:
            many = spec.get_many
            chunks = [ids[i : i + many.per_call] for i in range(0, len(ids), many.per_call)]
            pages = await self.gather([partial(self._collect_ids, many, c) for c in chunks])
            return [r for page in pages for r in page if isinstance(r, Mapping)]
        get = spec.get
        assert get is not None  # the manifest requires get or get_many

        async def one(crm_id: str) -> Mapping[str, Any] | None:
            try:
                answer = await self.client.send(get.request, get.response, {"id": crm_id})
            except NotFound:
                return None
            record = get.response.record_of(answer.body)
            return record if isinstance(record, Mapping) else None

        found = await self.gather([partial(one, i) for i in ids])
        return [r for r in found if r is not None]
