"""Managed-mode writes that send a whole batch as JSON parameters of one statement (see
:mod:`backends.sql.insert` and :mod:`backends.sql.patch`). Mixed into :class:`SQLBackend`
through :class:`backends.sql.writes.RecordWritesMixin`, which falls back to its
statement-per-step paths for mapped tables, MySQL and the row-by-row replay."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from backends.base import Conflict, Entity, ItemResult, NotFound, RecordUpdate

from .batching import chunked
from .insert import create_payload, create_statement, sqlite_create_statements
from .mapped import RecordStore, RowParts
from .patch import PatchPlan, patch_statement
from .schema import KEY_VALUE_LENGTH

if TYPE_CHECKING:
    from .schema import ManagedTables

__all__ = ["OneStatementWritesMixin", "utcnow"]


def utcnow() -> dt.datetime:
    """Naive UTC, as every timestamp column stores it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class _Prepared:
    index: int
    external_id: str
    row: dict[str, Any]
    keys: dict[str, str]
    #: Mapped mode: the record's values for child tables, its extension table and the
    #: extra-fields side table, and its fields (the inputs of configured values).
    satellites: RowParts | None = None
    fields: Mapping[str, Any] | None = None


class OneStatementWritesMixin:
    """Creates (PostgreSQL, SQLite) and updates (same) of managed records in one statement."""

    if TYPE_CHECKING:
        tables: ManagedTables
        engine: Any
        _patch_statements: dict[Entity, sa.TextClause]
        _create_statements: dict[Entity, sa.TextClause]
        _sqlite_create_statements: dict[Entity, tuple[sa.TextClause, sa.TextClause]]

        _lite: Any

        def _tx(
            self, what: str, *, write: bool = True
        ) -> AbstractAsyncContextManager[AsyncConnection]: ...
        async def _lite_create(
            self,
            what: str,
            store: RecordStore,
            by_ext: Mapping[str, _Prepared],
            new_ids: Mapping[str, str],
            now: dt.datetime,
        ) -> tuple[set[str], dict[str, str]]: ...
        async def _lite_patch(
            self,
            what: str,
            store: RecordStore,
            updates: Sequence[RecordUpdate],
            plans: Sequence[PatchPlan],
            now: dt.datetime,
            settle: Callable[[set[Any]], tuple[Any, Mapping[tuple[str, str], str | None]]],
        ) -> Any: ...

    def _creates_at_once(self) -> bool:
        """Whether managed creates take their rows from JSON parameters (PostgreSQL: one
        statement with data-modifying CTEs; SQLite: two ``INSERT ... SELECT``)."""
        return bool(self.engine.dialect.name in ("postgresql", "sqlite"))

    async def _create_at_once(
        self,
        what: str,
        store: RecordStore,
        by_ext: Mapping[str, _Prepared],
        new_ids: Mapping[str, str],
        now: dt.datetime,
    ) -> dict[int, ItemResult]:
        """Managed mode on PostgreSQL: rows and keys in one statement, outside a transaction
        (see :mod:`backends.sql.insert`); then, only when some external id already had a
        record, one read of their ids. A batch larger than one chunk
        (:mod:`backends.sql.batching`) is one statement per chunk, in a transaction."""
        ext_col = store.ext_col
        assert ext_col is not None
        if self._lite is not None:
            made, held = await self._lite_create(what, store, by_ext, new_ids, now)
            return self._created(by_ext, new_ids, made, held)
        sqlite = self.engine.dialect.name == "sqlite"
        # Sorted before chunking: concurrent batches take their unique-index locks in one order.
        parts = list(chunked(sorted(by_ext)))
        made = set()
        async with self._tx(what, write=sqlite or len(parts) > 1) as conn:
            for part in parts:
                chunk = {ext: by_ext[ext] for ext in part}
                rows = [
                    {**p.row, "id": new_ids[ext], "external_id": ext} for ext, p in chunk.items()
                ]
                if sqlite:
                    made |= await self._create_sqlite(conn, store, chunk, rows, new_ids, now)
                    continue
                statement = self._create_statements.get(store.entity)
                if statement is None:
                    statement = self._create_statements[store.entity] = create_statement(
                        store, self.tables.match_keys, self.engine.dialect
                    )
                keys = [(ext, k, v) for ext, p in chunk.items() for k, v in p.keys.items()]
                rows_doc, keys_doc = create_payload(rows, keys)
                params = {"rows": rows_doc, "keys": keys_doc, "now": now}
                params["entity"] = store.entity.value
                made.update((await conn.execute(statement, params)).scalars())
            others = [ext for ext in by_ext if ext not in made]
            held = {}
            for part in chunked(others):
                result = await conn.execute(sa.select(ext_col, store.pk).where(ext_col.in_(part)))
                held.update((ext, str(pk)) for ext, pk in result)
        return self._created(by_ext, new_ids, made, held)

    @staticmethod
    def _created(
        by_ext: Mapping[str, _Prepared],
        new_ids: Mapping[str, str],
        made: set[str],
        held: Mapping[str, str],
    ) -> dict[int, ItemResult]:
        """Each record's result: made here, held by an existing record, or neither."""
        out: dict[int, ItemResult] = {}
        for ext, p in by_ext.items():
            if ext in made:
                out[p.index] = ItemResult(crm_id=new_ids[ext], created=True)
            elif ext in held:
                out[p.index] = ItemResult(crm_id=held[ext], created=False)
            else:  # rolled back by its creator between our insert and our read
                out[p.index] = ItemResult(
                    error=Conflict(f"externalId {ext!r} is being created elsewhere")
                )
        return out

    async def _create_sqlite(
        self,
        conn: AsyncConnection,
        store: RecordStore,
        by_ext: Mapping[str, _Prepared],
        rows: list[dict[str, Any]],
        new_ids: Mapping[str, str],
        now: dt.datetime,
    ) -> set[str]:
        """SQLite's half of :meth:`_create_at_once`: the rows, then the keys of those made."""
        pair = self._sqlite_create_statements.get(store.entity)
        if pair is None:
            pair = self._sqlite_create_statements[store.entity] = sqlite_create_statements(
                store, self.tables.match_keys, self.engine.dialect
            )
        rows_doc, _ = create_payload(rows, [])
        made = set((await conn.execute(pair[0], {"rows": rows_doc, "now": now})).scalars())
        keys = [[new_ids[ext], k, v] for ext in made for k, v in by_ext[ext].keys.items()]
        if keys:
            keys_doc = json.dumps(keys, separators=(",", ":"))
            await conn.execute(pair[1], {"keys": keys_doc, "entity": store.entity.value})
        return made

    async def _patch(
        self,
        what: str,
        store: RecordStore,
        updates: Sequence[RecordUpdate],
        plans: Sequence[PatchPlan],
    ) -> list[ItemResult]:
        """Managed mode on PostgreSQL and SQLite: the batch is one ``UPDATE ... RETURNING``
        per chunk of updates (``plans``, see :mod:`backends.sql.patch`; one for up to
        :data:`~backends.sql.batching.CHUNK` updates), plus the changed match keys."""
        statement = self._patch_statements.get(store.entity)
        if statement is None:
            statement = self._patch_statements[store.entity] = patch_statement(
                store, self.engine.dialect
            )
        # Without match keys to change, the one UPDATE is atomic by itself: no BEGIN/COMMIT
        # round trips (PostgreSQL autocommit; SQLite runs it as its own write transaction).
        keyed = any(u.match_keys for u in updates)
        now = utcnow()

        def settle(
            found: set[Any],
        ) -> tuple[list[ItemResult], dict[tuple[str, str], str | None]]:
            return self._patched(store, updates, plans, found)

        if self._lite is not None:
            results: list[ItemResult] = await self._lite_patch(
                what, store, updates, plans, now, settle
            )
            return results
        async with self._tx(what, write=keyed or len(plans) > 1) as conn:
            found: set[Any] = set()
            for plan in plans:
                result = await conn.execute(statement, {"payload": plan.payload, "now": now})
                found.update(result.scalars())
            results, keys = settle(found)
            if keys:
                await self._replace_keys(conn, store, keys)
        return results

    @staticmethod
    def _patched(
        store: RecordStore,
        updates: Sequence[RecordUpdate],
        plans: Sequence[PatchPlan],
        found: set[Any],
    ) -> tuple[list[ItemResult], dict[tuple[str, str], str | None]]:
        """Each update's result given the ids the statement ``found``, and the match keys to
        replace (``None``: the key is gone)."""
        results: list[ItemResult] = []
        keys: dict[tuple[str, str], str | None] = {}
        pks = [pk for plan in plans for pk in plan.pks]
        for u, pk in zip(updates, pks, strict=True):
            if pk is None or pk not in found:
                results.append(ItemResult(error=NotFound(f"No record exists with ID: {u.crm_id}")))
                continue
            canonical = store.format_id(pk)
            for name, value in u.match_keys.items():
                keys[(canonical, name)] = (
                    value if value and len(value) <= KEY_VALUE_LENGTH else None
                )
            results.append(ItemResult(crm_id=canonical))
        return results, keys

    async def _replace_keys(
        self, conn: AsyncConnection, store: RecordStore, keys: Mapping[tuple[str, str], str | None]
    ) -> None:
        """Replace the ``(crm_id, key name)`` match keys with their new values (``None``: gone)."""
        mk = self.tables.match_keys
        # One statement with a row-value IN (MySQL's driver would run an executemany DELETE
        # row by row), per chunk: PostgreSQL's parser overflows its stack on a row-value IN
        # of some thousands of pairs.
        for part in chunked(list(keys)):
            await conn.execute(
                sa.delete(mk).where(
                    mk.c.entity == store.entity.value,
                    sa.tuple_(mk.c.crm_id, mk.c.key_name).in_(part),
                )
            )
        fresh = [
            {"entity": store.entity.value, "key_name": k, "value": v, "crm_id": c}
            for (c, k), v in keys.items()
            if v is not None
        ]
        if fresh:
            await conn.execute(sa.insert(mk), fresh)
