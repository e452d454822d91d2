"""HubSpot search for records that hold no key property of the driver's: made by hand in the
portal, by HubSpot itself, by another integration, or before the key existed.

Every candidate a search returns is normalised again and kept only when it equals the wanted
value, the oldest first (``createdate``, then id). Limits followed (HubSpot, "Search the CRM"):
bodies of at most 3,000 characters, 200 results per page, 10,000 per query, 5 filter groups
of at most 6 filters and 18 filters in all, 5 searches per second per account (the client's
``search`` budget). Search lags writes: a record made in the last seconds is not found here.

Two strategies, chosen per key kind (:data:`backends.hubspot.keys.TOKEN_KINDS`):

* ``IN`` on the value's usual spellings (:func:`_search_in`): e-mails, domains, names, phones;
  about 25-100 values per call.
* for LinkedIn URLs and domains under any extension, whose hand-typed forms are open-ended,
  first *one* search for every record that has the field but not the driver's key (the
  "census", 200 per page). Most portals have few such records: that one call answers for all
  values. When there are more, whichever is cheaper of reading the census's further pages and
  one ``CONTAINS_TOKEN`` search per 5 values still missing (a filter group each, with the
  ``*`` wildcard, :func:`backends.hubspot.keys.token_pattern`).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from backends.hubspot.core import HubSpotCore
from backends.hubspot.keys import fallback_spellings, normalise_for_key, token_pattern

__all__ = ["SEARCH_BODY_LIMIT", "SearchMixin", "oldest_first"]

log = logging.getLogger("backends.hubspot")

#: Search limits (HubSpot docs, "Search the CRM"; see shared facts §3).
SEARCH_BODY_LIMIT = 3_000
SEARCH_PAGE = 200
SEARCH_MAX_RESULTS = 10_000
SEARCH_MAX_GROUPS = 5
#: IN values per search (each value counts against the body limit too).
SEARCH_MAX_VALUES = 100

Body = dict[str, Any]
Filter = dict[str, Any]


def _body(groups: list[list[Filter]], names: list[str]) -> Body:
    """A search: ``groups`` ORed (the filters of one ANDed), oldest first, 200 a page."""
    return {
        "filterGroups": [{"filters": filters} for filters in groups],
        "properties": names,
        "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}],
        "limit": SEARCH_PAGE,
    }


def _size(body: Body) -> int:
    return len(json.dumps(body, separators=(",", ":")))


def _age(obj: Mapping[str, Any]) -> tuple[str, int]:
    raw = str(obj.get("id") or "0")
    return (str(obj.get("createdAt") or ""), int(raw) if raw.isdigit() else 0)


def oldest_first(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records oldest first (creation time, then id): when several hold a key, the oldest is
    the match, as for every key."""
    return sorted(objects, key=_age)


class SearchMixin(HubSpotCore):
    """Searches of :class:`backends.hubspot.HubSpotBackend` (see the module docstring)."""

    async def search_field(
        self,
        object_type: str,
        field: str,
        kind: str,
        values: Sequence[str],
        properties: Sequence[str],
        *,
        key_property: str | None = None,
    ) -> dict[str, dict[str, Any]]:
        """``{value: oldest record}`` for the normalised ``values`` that some record's
        ``field`` holds in any spelling; ``key_property`` (the driver's key for that kind,
        when the portal has it) narrows token searches to records without it."""
        wanted = [v for v in dict.fromkeys(values) if v]
        if not wanted:
            return {}
        patterns = {v: token_pattern(kind, v) for v in wanted}
        tokens = [v for v, p in patterns.items() if p is not None]
        found: dict[str, dict[str, Any]] = {}
        if tokens:
            found = await self._search_tokens(
                object_type, field, kind, tokens, properties, key_property
            )
        exact = [v for v, p in patterns.items() if p is None]
        if exact:
            found.update(await self._search_in(object_type, field, kind, exact, properties))
        return found

    # -- plumbing -------------------------------------------------------------------------------

    def _names(
        self, field: str, properties: Sequence[str], probe: Body, need: Sequence[str] = ()
    ) -> tuple[list[str], bool]:
        """The properties a search asks for, and whether matches must be read again: with many
        custom properties their names alone would eat the body limit, so the search asks for
        the field (and ``need``) and the external id, and the matches are read with
        ``batch/read``."""
        names = sorted(set(properties) | {field} | set(need))
        if _size({**probe, "properties": names, "after": str(SEARCH_MAX_RESULTS)}) > (
            SEARCH_BODY_LIMIT // 2
        ):
            return sorted({field, *need, self.options.external_id_property}), True
        return names, False

    async def _pages(
        self,
        object_type: str,
        body: Body,
        sink: Callable[[list[dict[str, Any]]], None],
        done: Callable[[], bool],
        after: str | None = None,
    ) -> Body:
        """Read ``body``'s pages (200 each, up to HubSpot's 10,000 results), from ``after``,
        into ``sink`` until ``done()`` or the last page. Returns the first answer."""
        first: Body | None = None
        seen = int(after) if after and after.isdigit() else 0
        while True:
            page = {**body, "after": after} if after else body
            response = await self.client.request(
                "POST", self.client.paths.search(object_type), json=page, search=True
            )
            data = response.json_dict()
            first = first or data
            results = [r for r in data.get("results") or [] if isinstance(r, dict)]
            sink(results)
            seen += len(results)
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after or done() or seen + SEARCH_PAGE > SEARCH_MAX_RESULTS:
                return first

    async def _matched(
        self,
        object_type: str,
        candidates: Iterable[dict[str, Any]],
        field: str,
        kind: str,
        wanted: Iterable[str],
        properties: Sequence[str],
        reread: bool,
    ) -> dict[str, dict[str, Any]]:
        """``{value: oldest candidate}`` whose ``field`` normalises to a wanted value; read
        again in full when the search asked for a few properties only."""
        wanted_set = set(wanted)
        out: dict[str, dict[str, Any]] = {}
        for obj in oldest_first(candidates):
            value = normalise_for_key(kind, (obj.get("properties") or {}).get(field))
            if value is not None and value in wanted_set and value not in out:
                out[value] = obj
        if reread and out:
            full = await self.read_again(object_type, out.values(), properties)
            out = {v: full[str(o["id"])] for v, o in out.items() if str(o["id"]) in full}
        return out

    async def read_again(
        self, object_type: str, objects: Iterable[Mapping[str, Any]], properties: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """``{id: record}`` read with every property in ``properties`` (``batch/read``)."""
        ids = [str(o["id"]) for o in objects]
        return {str(o.get("id")): o for o in await self.batch_read(object_type, ids, properties)}

    # -- IN on spellings --------------------------------------------------------------------------

    async def _search_in(
        self,
        object_type: str,
        field: str,
        kind: str,
        values: Sequence[str],
        properties: Sequence[str],
    ) -> dict[str, dict[str, Any]]:
        """``field IN spellings`` (lower-cased, as HubSpot requires), packed under the
        3,000-character body limit; the oldest match per value."""
        candidates, reread = await self.in_candidates(object_type, field, kind, values, properties)
        return await self._matched(object_type, candidates, field, kind, values, properties, reread)

    async def in_candidates(
        self,
        object_type: str,
        field: str,
        kind: str,
        values: Sequence[str],
        properties: Sequence[str],
        need: Sequence[str] = (),
    ) -> tuple[list[dict[str, Any]], bool]:
        """Every record whose ``field`` is one of the values' spellings, with ``properties``
        (or only ``field``, ``need`` and the external id, then ``True``: read them again)."""
        names: list[str] = []

        def body_for(spellings: list[str]) -> Body:
            return _body([[{"propertyName": field, "operator": "IN", "values": spellings}]], names)

        def fits(body: Body) -> bool:
            return _size({**body, "after": str(SEARCH_MAX_RESULTS)}) <= SEARCH_BODY_LIMIT

        probe = body_for(fallback_spellings(kind, values[0]))
        names, reread = self._names(field, properties, probe, need)
        groups: list[list[str]] = []
        batch: list[str] = []
        for value in values:
            spellings = fallback_spellings(kind, value)
            trial = batch + spellings
            if batch and (not fits(body_for(trial)) or len(trial) > SEARCH_MAX_VALUES):
                groups.append(batch)
                trial = spellings
            batch = trial
        if batch:
            groups.append(batch)
        candidates: list[dict[str, Any]] = []
        for group in groups:
            await self._pages(object_type, body_for(group), candidates.extend, lambda: False)
        return candidates, reread

    # -- CONTAINS_TOKEN ---------------------------------------------------------------------------

    async def _search_tokens(
        self,
        object_type: str,
        field: str,
        kind: str,
        values: Sequence[str],
        properties: Sequence[str],
        key_property: str | None,
    ) -> dict[str, dict[str, Any]]:
        """The census of records without the key, then the cheaper of its further pages and
        ``CONTAINS_TOKEN`` searches, 5 values each (see the module docstring)."""
        unkeyed: list[Filter] = (
            [{"propertyName": key_property, "operator": "NOT_HAS_PROPERTY"}] if key_property else []
        )
        names: list[str] = []

        def body_for(groups: list[list[Filter]]) -> Body:
            return _body(groups, names)

        def token_groups(chunk: Iterable[str]) -> list[list[Filter]]:
            return [
                [
                    {
                        "propertyName": field,
                        "operator": "CONTAINS_TOKEN",
                        "value": token_pattern(kind, value),
                    },
                    *unkeyed,
                ]
                for value in chunk
            ]

        longest = sorted(values, key=len)[-SEARCH_MAX_GROUPS:]
        names, reread = self._names(field, properties, body_for(token_groups(longest)))
        candidates: list[dict[str, Any]] = []
        left = set(values)

        def sink(results: list[dict[str, Any]]) -> None:
            candidates.extend(results)
            for obj in results:
                value = normalise_for_key(kind, (obj.get("properties") or {}).get(field))
                left.discard(value or "")

        census = body_for([[{"propertyName": field, "operator": "HAS_PROPERTY"}, *unkeyed]])
        first = await self._pages(object_type, census, sink, lambda: True)
        after = ((first.get("paging") or {}).get("next") or {}).get("after")
        if left and after:
            total = int(first.get("total") or 0)
            pages_left = math.ceil((min(total, SEARCH_MAX_RESULTS) - SEARCH_PAGE) / SEARCH_PAGE)
            searches = math.ceil(len(left) / SEARCH_MAX_GROUPS)
            if total <= SEARCH_MAX_RESULTS and pages_left <= searches:
                await self._pages(object_type, census, sink, lambda: not left, after=after)
            else:
                log.debug(
                    "hubspot: %d %s have %s but not %s: %d CONTAINS_TOKEN searches for %d values",
                    total, object_type, field, key_property, searches, len(left),
                )  # fmt: skip
                pending = sorted(left)
                for start in range(0, len(pending), SEARCH_MAX_GROUPS):
                    chunk = frozenset(pending[start : start + SEARCH_MAX_GROUPS])

                    def found_all(chunk: frozenset[str] = chunk) -> bool:
                        return not chunk & left

                    body = body_for(token_groups(sorted(chunk)))
                    await self._pages(object_type, body, sink, found_all)
        return await self._matched(object_type, candidates, field, kind, values, properties, reread)
