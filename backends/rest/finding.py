"""``find:``: how records are found by a match key, one component per way, chosen by ``type``.

Each key (``externalId``, ``email``, ``domain``, any key the front configures) lists its
strategies in order; values one strategy did not find go to the next.

* ``filter``: a server-side filter, ``value`` (one per call) or ``values`` (``per_call`` of
  them: an ``IN`` list, an ``_or``) in the query or the body; the records it answers are
  compared;
* ``search``: a search endpoint whose hits hold ids (maybe a partial record); each hit's full
  record is read (``get``/``get_many``), then compared;
* ``list``: the whole list, page by page, at most ``max_records``, every record compared; a
  longer list makes it give way to the next strategy.

What an API calls a match is never trusted as is (``?email=`` is ``icontains`` on BottleCRM,
Pipedrive's search is fuzzy unless asked): every candidate's field (``match``: one or more
record paths, a list value such as ``emails.*.value`` matching by any item) is normalised as
the front normalises keys (:mod:`backends.keys`) and compared with the value sought. When
several records hold one value the resource's ``several`` rule picks one (oldest by default).

A compound key (several fields making one key, as the front may configure) compares the
``match`` paths' normalised values joined by ``separator``; an OR rule is one filter request
carrying several values (``per_call``), its answer split by comparison.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backends.keys import NORMALISER_BY_KEY, compound_value, key_kind, normalise_for_key
from backends.rest.components import tagged
from backends.rest.pagination import Pagination
from backends.rest.paths import MISSING, check_path, get_path
from backends.rest.requests import RequestSpec, ResponseSpec

__all__ = [
    "FIND_ROOTS",
    "FilterStrategy",
    "FindHost",
    "FindStrategy",
    "KeyPlan",
    "ListStrategy",
    "SearchStrategy",
    "run_strategy",
]

#: The roots a strategy's request may read.
FIND_ROOTS = {"value", "values", "parts", "key", "vars"}

#: ``contains``: the value sought appears in the field's text (an idempotency marker kept in
#: a note's body).
Normaliser = Literal["exact", "contains", "email", "domain", "linkedin", "name", "phone"]


class _Strategy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request: RequestSpec
    response: ResponseSpec = Field(default_factory=ResponseSpec)
    #: Record path(s) compared with the value sought (default: where the key is kept).
    match: str | list[str] | None = None
    #: How compared values are normalised (default: the key's own normaliser).
    normaliser: Normaliser | None = None
    separator: str = " "
    pagination: tagged(Pagination) | None = None  # type: ignore[valid-type]
    #: Used only when at least this many values are sought (a list read pays off for a
    #: batch, not for the one lookup before a create).
    min_values: int = Field(default=1, ge=1)

    @field_validator("match")
    @classmethod
    def _paths(cls, value: str | list[str] | None) -> str | list[str] | None:
        for path in [value] if isinstance(value, str) else value or []:
            check_path(path)
        return value


class FilterStrategy(_Strategy):
    type: Literal["filter"]
    #: Values one request carries (1: the request reads ``value``; more: ``values``).
    per_call: int = Field(1, ge=1, le=1000)


class SearchStrategy(_Strategy):
    type: Literal["search"]
    per_call: int = Field(1, ge=1, le=1000)


class ListStrategy(_Strategy):
    type: Literal["list"]
    #: The most records read; a longer list makes this strategy give way to the next.
    max_records: int = Field(1000, ge=1, le=100_000)
    #: A complete read ends the search: values it did not find are not sought by the next
    #: strategies (``false`` when they compare other fields than this one).
    exhaustive: bool = True


FindStrategy = FilterStrategy | SearchStrategy | ListStrategy


@dataclass(frozen=True)
class KeyPlan:
    """What is compared for one key: the record paths, the normaliser, and the separator of a
    compound key's parts."""

    name: str
    paths: tuple[str, ...]
    normaliser: str | None  # None: exact; "compound": the front's several-field keys
    separator: str = " "


class FindHost(Protocol):
    """What a strategy needs from the driver."""

    async def collect(
        self, strategy: _Strategy, ctx: Mapping[str, Any], limit: int | None = None
    ) -> list[Any]:
        """The items of every page of ``strategy``'s request for ``ctx``."""

    async def fetch(self, ids: Sequence[str]) -> list[Mapping[str, Any]]:
        """Full records for ids (unknown ids absent)."""

    async def gather(self, calls: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
        """Run calls with the driver's bounded concurrency, results in order."""


def _normalise(value: Any, normaliser: str | None) -> str | None:
    if value is MISSING or value is None:
        return None
    if normaliser is None or normaliser == "exact":
        text = str(value).strip()
        return text or None
    return normalise_for_key(normaliser, value if isinstance(value, str) else str(value))


def _part_kind(path: str) -> str:
    name = path.rsplit(".", 1)[-1]
    return NORMALISER_BY_KEY.get(name) or key_kind(name)


def _text(value: Any) -> Any:
    return value if isinstance(value, str) or value in (MISSING, None) else str(value)


def keys_of(record: Any, plan: KeyPlan) -> set[str]:
    """The normalised values of ``plan``'s key that ``record`` holds (a list field gives one
    per item; a compound key gives the joined value)."""
    if not isinstance(record, Mapping):
        return set()
    if plan.normaliser == "compound":
        # The front's compound key: each field through the normaliser its name implies, the
        # parts as a JSON array (adapter/matching.py writes the value so).
        parts = [
            normalise_for_key(_part_kind(path), _text(get_path(record, path)))
            for path in plan.paths
        ]
        return set() if None in parts else {compound_value([p for p in parts if p])}
    if len(plan.paths) == 1:
        raw = get_path(record, plan.paths[0])
        values = raw if isinstance(raw, list) else [raw]
        return {v for v in (_normalise(x, plan.normaliser) for x in values) if v is not None}
    parts = [_normalise(get_path(record, path), plan.normaliser) for path in plan.paths]
    if any(part is None for part in parts):
        return set()
    return {plan.separator.join(p for p in parts if p is not None)}


async def run_strategy(
    strategy: FindStrategy,
    host: FindHost,
    plan: KeyPlan,
    wanted: Sequence[str],
    base_ctx: Mapping[str, Any],
    resolve: Callable[[str], str] = str,
) -> dict[str, list[Mapping[str, Any]]] | None:
    """The records holding each wanted value, by value (values found nowhere absent, or with
    no records after an exhaustive list: sought no further); ``None`` when the strategy does
    not apply (a list longer than its bound). ``resolve`` turns a
    ``match`` path naming a custom field by label into its key."""
    if strategy.normaliser is not None or strategy.match is not None:
        paths = [strategy.match] if isinstance(strategy.match, str) else strategy.match
        paths = [resolve(p) for p in paths or []]
        normaliser = plan.normaliser if strategy.normaliser is None else strategy.normaliser
        plan = KeyPlan(plan.name, tuple(paths or plan.paths), normaliser, strategy.separator)
    wanted_set = set(wanted)
    found: dict[str, list[Mapping[str, Any]]] = {}

    def take(records: Sequence[Any]) -> None:
        for record in records:
            if plan.normaliser == "contains":
                texts = [str(get_path(record, p)) for p in plan.paths]
                held = {w for w in wanted_set if any(w in text for text in texts)}
            else:
                held = keys_of(record, plan) & wanted_set
            for value in held:
                bucket = found.setdefault(value, [])
                if all(record is not other for other in bucket):
                    bucket.append(record)

    if isinstance(strategy, ListStrategy):
        ctx = {**base_ctx, "key": plan.name, "values": list(wanted)}
        items = await host.collect(strategy, ctx, limit=strategy.max_records + 1)
        if len(items) > strategy.max_records:
            return None
        take(items)
        if strategy.exhaustive:
            found.update({value: [] for value in wanted if value not in found})
        return found

    size = strategy.per_call
    chunks = [list(wanted[i : i + size]) for i in range(0, len(wanted), size)]

    async def one(chunk: list[str]) -> list[Any]:
        ctx = {**base_ctx, "key": plan.name, "value": chunk[0], "values": chunk}
        if plan.normaliser == "compound":  # a compound value's parts, for the request
            ctx["parts"] = json.loads(chunk[0])
        return await host.collect(strategy, ctx)

    pages = await host.gather([partial(one, chunk) for chunk in chunks])
    if isinstance(strategy, SearchStrategy):
        # Every hit of every search, read whole in one go (get_many takes 100 ids a call).
        ids = [
            str(i)
            for page in pages
            for i in (get_path(hit, strategy.response.item_id) for hit in page)
            if i not in (MISSING, None)
        ]
        pages = [list(await host.fetch(list(dict.fromkeys(ids))))] if ids else []
    for records in pages:
        take(records)
    return found
