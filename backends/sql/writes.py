"""Writing contacts and companies for :class:`SQLBackend`: batched, idempotent creates and
partial updates, each one transaction with a constant number of statements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from backends.base import (
    Conflict,
    Entity,
    InvalidRecord,
    ItemResult,
    NewRecord,
    NotFound,
    RecordUpdate,
)

from .batching import chunked
from .errors import is_record_error, reason
from .fastwrites import OneStatementWritesMixin, _Prepared, utcnow
from .ids import time_ordered_ids
from .mapped import RecordStore, ValueRejected, fits_managed
from .mapped_writes import MappedWritesMixin
from .patch import plan_patch, supports_patch
from .schema import KEY_VALUE_LENGTH

if TYPE_CHECKING:
    from .schema import ManagedTables

__all__ = ["RecordWritesMixin", "utcnow"]

T = TypeVar("T")


_NUL_VALUE = "field values cannot contain NUL characters on this database"


def _holds_nul(value: Any) -> bool:
    """Whether a field value (or a nested JSON value, or a key) holds a NUL character."""
    # Checked for every value of every record: plain loops, no generator per value; first,
    # for the usual record (names and values all text), two joins at C speed.
    if type(value) is dict:
        try:
            flat: str | None = "".join(value) + "".join(value.values())
        except TypeError:  # a name or a value that is not text: the walk below
            flat = None
        if flat is not None:
            return "\x00" in flat
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        for k, v in value.items():
            if "\x00" in k if isinstance(k, str) else _holds_nul(k):
                return True
            if "\x00" in v if type(v) is str else _holds_nul(v):
                return True
        return False
    if isinstance(value, list):
        for v in value:
            if "\x00" in v if type(v) is str else _holds_nul(v):
                return True
    return False


class RecordWritesMixin(MappedWritesMixin, OneStatementWritesMixin):
    """``create_records`` / ``update_records`` and the helpers they share. Mixed into
    :class:`SQLBackend`."""

    if TYPE_CHECKING:
        tables: ManagedTables
        engine: Any
        _secrets: tuple[str, ...]

        def _tx(
            self, what: str, *, write: bool = True
        ) -> AbstractAsyncContextManager[AsyncConnection]: ...
        def _store(self, entity: Entity) -> RecordStore: ...
        async def _retrying(self, run: Callable[[], Awaitable[T]]) -> T: ...
        def _insert_ignore(self, table: sa.Table, *keys: str) -> sa.Insert: ...
        def _storable(self, text: str) -> bool: ...
        def _lock(self, stmt: sa.Select[Any]) -> sa.Select[Any]: ...

    async def _write(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        key: sa.Column[Any],
        changes: Mapping[Any, Mapping[str, Any]],
        *,
        current: Mapping[Any, Mapping[str, Any]] | None = None,
        where: Any = None,
    ) -> None:
        """Write per-row different values to the rows ``changes`` names, in one statement.

        SQLite and PostgreSQL: one executemany ``UPDATE ... WHERE key = ?`` (asyncpg pipelines
        it). Every row carries the union of the changed columns; a row that does not change a
        column writes back its ``current`` value (the caller holds the row locks), so the
        statement count does not depend on how the rows differ. MySQL: its driver runs an
        executemany UPDATE row by row, so there it is one ``UPDATE ... SET c = CASE key ...``.
        """
        if not changes:
            return
        if conn.dialect.name in ("mysql", "mariadb"):
            # One CASE arm per row: chunked, so a huge batch stays under max_allowed_packet.
            for part in chunked(list(changes)):
                stmt = self._case_update(table, key, {pk: changes[pk] for pk in part})
                if stmt is not None:
                    await conn.execute(stmt if where is None else stmt.where(where))
            return
        union = sorted({c for row in changes.values() for c in row})
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for pk, row in changes.items():
            full = dict(row)
            if current is not None and pk in current:
                for col in union:
                    if col not in full:
                        full[col] = current[pk].get(col)
            params = {f"v_{c}": v for c, v in full.items()}
            params["k_key"] = pk
            groups.setdefault(tuple(sorted(full)), []).append(params)
        for cols, rows in groups.items():
            stmt = (
                sa.update(table)
                .where(key == sa.bindparam("k_key", type_=key.type))
                .values({c: sa.bindparam(f"v_{c}", type_=table.c[c].type) for c in cols})
            )
            if where is not None:
                stmt = stmt.where(where)
            await conn.execute(stmt, rows)

    @staticmethod
    def _case_update(
        table: sa.Table, key: sa.Column[Any], changes: Mapping[Any, Mapping[str, Any]]
    ) -> sa.Update | None:
        """One ``UPDATE ... SET col = CASE key WHEN ... END`` for per-row different values."""
        columns: dict[str, list[tuple[Any, Any]]] = {}
        for pk, row in changes.items():
            for col, value in row.items():
                columns.setdefault(col, []).append((pk, value))
        if not columns:
            return None
        values = {
            col: sa.case(
                *[
                    (key == sa.literal(pk, key.type), sa.literal(v, table.c[col].type))
                    for pk, v in pairs
                ],
                else_=table.c[col],
            )
            for col, pairs in columns.items()
        }
        return sa.update(table).where(key.in_(list(changes))).values(values)

    # -- contacts and companies -----------------------------------------------------------

    async def create_record(self, entity: Entity, record: NewRecord) -> ItemResult:
        """Create one record idempotently (see :meth:`create_records`)."""
        return (await self.create_records(entity, [record]))[0]

    async def create_records(
        self, entity: Entity, records: Sequence[NewRecord]
    ) -> list[ItemResult]:
        """Create records in one transaction, idempotently on ``external_id``.

        Returns one :class:`ItemResult` per input (``created=False`` for an external id that
        already had a record, or a repeat within the batch). A value the table rejects is that
        record's ``InvalidRecord``; the others land. Raises :class:`Unavailable` when the
        database fails (the transaction is rolled back: nothing is half-written).
        """
        store = self._store(entity)
        now = utcnow()
        results: list[ItemResult | None] = [None] * len(records)
        first: dict[str, int] = {}
        repeats: list[tuple[int, int]] = []
        prepared: list[_Prepared] = []
        # Once per batch, not per record: whether this database holds NUL in text.
        nul_ok = self._storable("\x00")
        for i, record in enumerate(records):
            ext = record.external_id
            if ext in first:
                repeats.append((i, first[ext]))
                continue
            if not ext or len(ext) > 255:
                results[i] = ItemResult(error=InvalidRecord("externalId must be 1-255 characters"))
                continue
            if not nul_ok and "\x00" in ext:
                results[i] = ItemResult(error=InvalidRecord("externalId cannot contain NUL"))
                continue
            if not nul_ok and _holds_nul(record.fields):
                # Refused up front: PostgreSQL would fail the batch's statement, SQLite's JSON
                # functions would cut the value at the NUL.
                results[i] = ItemResult(error=InvalidRecord(_NUL_VALUE))
                continue
            try:
                if store.managed:
                    row, parts = store.to_row(record.fields), None
                else:
                    row, parts = self._prepare_mapped(store, record.fields, now)
            except ValueRejected as exc:
                results[i] = ItemResult(error=InvalidRecord(str(exc)))
                continue
            first[ext] = i
            keys = {k: v for k, v in record.match_keys.items() if v and len(v) <= KEY_VALUE_LENGTH}
            prepared.append(_Prepared(i, ext, row, keys, parts, record.fields))
        if prepared:
            what = f"create {entity.plural}"
            create = self._create_direct if store.ext_col is not None else self._create
            try:
                outcome = await self._retrying(lambda: create(what, store, prepared, False))
            except InvalidRecord:
                # Some row broke the batch statement: replay row by row to isolate it.
                outcome = await self._retrying(lambda: create(what, store, prepared, True))
            for index, result in outcome.items():
                results[index] = result
        for i, j in repeats:
            done = results[j]
            assert done is not None
            results[i] = ItemResult(crm_id=done.crm_id, error=done.error, created=False)
        return [r if r is not None else ItemResult(error=InvalidRecord()) for r in results]

    async def _create_direct(
        self, what: str, store: RecordStore, prepared: list[_Prepared], careful: bool
    ) -> dict[int, ItemResult]:
        """Managed mode: the record row itself carries the unique external id.

        ``INSERT ... ON CONFLICT (external_id) DO NOTHING RETURNING external_id`` (PostgreSQL,
        SQLite) names the rows this transaction created; the others (already there, or
        created concurrently: the insert waited on the unique index) are read back. MySQL
        has no usable RETURNING here, so there every id is read back and compared with the
        one this transaction generated.
        """
        ext_col = store.ext_col
        assert ext_col is not None
        now = utcnow()
        # Managed tables: ids in time order, so that inserts land on the indexes' last pages.
        made_ids = time_ordered_ids(len(prepared)) if store.managed else None
        new_ids = {
            p.external_id: made_ids[i] if made_ids is not None else store.new_id()
            for i, p in enumerate(prepared)
        }
        by_ext = {p.external_id: p for p in prepared}
        if not careful and self._creates_at_once():
            return await self._create_at_once(what, store, by_ext, new_ids, now)
        insert = self._insert_ignore(store.table, ext_col.name)
        out: dict[int, ItemResult] = {}
        async with self._tx(what) as conn:
            returning = conn.dialect.name in ("postgresql", "sqlite")
            # Sorted so that concurrent batches take their unique-index locks in one order.
            rows = [
                {
                    **by_ext[ext].row,
                    store.pk.name: new_ids[ext],
                    ext_col.name: ext,
                    **{c: now for c in store.stamp_cols},
                }
                for ext in sorted(by_ext)
            ]
            made: set[str] = set()
            failed: dict[str, str] = {}
            if careful:
                for row in rows:
                    try:
                        async with conn.begin_nested():
                            await conn.execute(insert.values(row))
                    except sa_exc.DBAPIError as exc:
                        if not is_record_error(exc):
                            raise
                        failed[row[ext_col.name]] = reason(exc, self._secrets)
            elif returning:
                got = await conn.execute(insert.returning(ext_col), rows)
                made = set(got.scalars())
            else:
                await conn.execute(insert, rows)
            others = [ext for ext in by_ext if ext not in made and ext not in failed]
            held: dict[str, str] = {}
            for part in chunked(others):
                result = await conn.execute(sa.select(ext_col, store.pk).where(ext_col.in_(part)))
                held.update((ext, str(pk)) for ext, pk in result)
            for ext, p in by_ext.items():
                if ext in failed:
                    out[p.index] = ItemResult(error=InvalidRecord(failed[ext]))
                elif ext in made or held.get(ext) == new_ids[ext]:
                    made.add(ext)
                    out[p.index] = ItemResult(crm_id=new_ids[ext], created=True)
                elif ext in held:
                    out[p.index] = ItemResult(crm_id=held[ext], created=False)
                else:  # rolled back by its creator between our insert and our read
                    out[p.index] = ItemResult(
                        error=Conflict(f"externalId {ext!r} is being created elsewhere")
                    )
            key_rows = [
                {"entity": store.entity.value, "key_name": k, "value": v, "crm_id": new_ids[ext]}
                for ext in made
                for k, v in by_ext[ext].keys.items()
            ]
            if key_rows:
                await conn.execute(sa.insert(self.tables.match_keys), key_rows)
        return out

    async def _insert_rows(
        self, conn: AsyncConnection, store: RecordStore, rows: list[dict[str, Any]], careful: bool
    ) -> list[tuple[str | None, str | None]]:
        """Insert ``rows``; return ``(crm_id, None)`` per row, or ``(None, reason)`` for a row
        the database rejected (only in ``careful`` mode, where each row has a savepoint)."""
        table = store.table
        returning = conn.dialect.insert_returning and conn.dialect.use_insertmanyvalues
        if not careful and (store.makes_ids or returning):
            # Rows with different column sets go in separate statements: an explicit NULL
            # would override a mapped column's database default.
            groups: dict[tuple[str, ...], list[int]] = {}
            for i, row in enumerate(rows):
                groups.setdefault(tuple(sorted(row)), []).append(i)
            ids: list[str | None] = [None] * len(rows)
            for positions in groups.values():
                batch = [rows[i] for i in positions]
                if store.makes_ids:
                    await conn.execute(sa.insert(table), batch)
                    for i in positions:
                        ids[i] = str(rows[i][store.pk.name])
                else:
                    stmt = sa.insert(table).returning(store.pk, sort_by_parameter_order=True)
                    result = await conn.execute(stmt, batch)
                    for i, pk in zip(positions, result.scalars().all(), strict=True):
                        ids[i] = store.format_id(pk)
            return [(i, None) for i in ids]
        # Row by row: the careful replay (each in a savepoint), or MySQL without RETURNING.
        out: list[tuple[str | None, str | None]] = []
        for row in rows:
            try:
                if careful:
                    async with conn.begin_nested():
                        result = await conn.execute(sa.insert(table).values(row))
                else:
                    result = await conn.execute(sa.insert(table).values(row))
            except sa_exc.DBAPIError as exc:
                if not (careful and is_record_error(exc)):
                    raise
                out.append((None, reason(exc, self._secrets)))
                continue
            if store.makes_ids:
                out.append((str(row[store.pk.name]), None))
            else:
                pk = result.inserted_primary_key
                assert pk is not None
                out.append((store.format_id(pk[0]), None))
        return out

    async def update_record(self, entity: Entity, update: RecordUpdate) -> ItemResult:
        """Apply one partial update (see :meth:`update_records`)."""
        return (await self.update_records(entity, [update]))[0]

    async def update_records(
        self, entity: Entity, updates: Sequence[RecordUpdate]
    ) -> list[ItemResult]:
        """Apply partial updates in one transaction: the rows are read (locked), merged, and
        written back with one ``UPDATE ... CASE`` holding only the changed columns.

        Unknown ``crm_id`` → ``NotFound``; a rejected value → ``InvalidRecord`` for that
        update only. Idempotent.
        """
        if not self._storable("\x00") and any(_holds_nul(u.fields) for u in updates):
            # Refused up front, as in create_records; the others are applied.
            rest = [u for u in updates if not _holds_nul(u.fields)]
            done = iter(await self.update_records(entity, rest) if rest else [])
            return [
                ItemResult(error=InvalidRecord(_NUL_VALUE)) if _holds_nul(u.fields) else next(done)
                for u in updates
            ]
        store = self._store(entity)
        what = f"update {entity.plural}"
        dialect = self.engine.dialect
        plans = (
            [plan_patch(store, part, dialect.name) for part in chunked(updates)]
            if supports_patch(store, dialect.name)
            else []
        )
        try:
            if plans and all(plan is not None for plan in plans):
                ready = [plan for plan in plans if plan is not None]
                return await self._retrying(lambda: self._patch(what, store, updates, ready))
            if not store.managed:
                return await self._retrying(
                    lambda: self._update_mapped(what, store, updates, False)
                )
            return await self._retrying(lambda: self._update(what, store, updates, False))
        except InvalidRecord:
            if not store.managed:
                return await self._retrying(lambda: self._update_mapped(what, store, updates, True))
            return await self._retrying(lambda: self._update(what, store, updates, True))

    async def _update(
        self, what: str, store: RecordStore, updates: Sequence[RecordUpdate], careful: bool
    ) -> list[ItemResult]:
        results: list[ItemResult] = []
        pks = {u.crm_id: store.parse_id(u.crm_id) for u in updates}
        async with self._tx(what) as conn:
            # Sorted: chunks of concurrent batches lock their rows in one order.
            wanted = sorted({pk for pk in pks.values() if pk is not None})
            current: dict[Any, dict[str, Any]] = {}
            # Only the columns the batch can change (and the JSON column it merges into):
            # decoding whole rows would cost more than the update itself.
            names = {n for u in updates for n in (*u.fields, *u.clear)}
            cols = {store.pk, *(c for n, c in store.columns.items() if n in names)}
            if store.json_col is not None:
                cols.add(store.json_col)
            for part in chunked(wanted):
                rows = await conn.execute(
                    self._lock(
                        sa.select(*sorted(cols, key=lambda c: c.name)).where(store.pk.in_(part))
                    )
                )
                current.update((r[store.pk.name], dict(r)) for r in rows.mappings())
            changes: dict[Any, dict[str, Any]] = {}
            keys: dict[tuple[str, str], str | None] = {}
            for u in updates:
                pk = pks[u.crm_id]
                if pk is None or pk not in current:
                    results.append(
                        ItemResult(error=NotFound(f"No record exists with ID: {u.crm_id}"))
                    )
                    continue
                old = current[pk]
                try:
                    new = self._merge(store, old, u)
                except ValueRejected as exc:
                    results.append(ItemResult(error=InvalidRecord(str(exc))))
                    continue
                diff = {c: v for c, v in new.items() if old.get(c) != v}
                if diff and careful:
                    try:
                        async with conn.begin_nested():
                            await self._write(conn, store.table, store.pk, {pk: diff})
                    except sa_exc.DBAPIError as exc:
                        if not is_record_error(exc):
                            raise
                        results.append(ItemResult(error=InvalidRecord(reason(exc, self._secrets))))
                        continue
                elif diff:
                    changes.setdefault(pk, {}).update(diff)
                old.update(new)
                canonical = store.format_id(pk)
                for name, value in u.match_keys.items():
                    keys[(canonical, name)] = (
                        value if value and len(value) <= KEY_VALUE_LENGTH else None
                    )
                results.append(ItemResult(crm_id=canonical))
            if store.stamp_cols:
                now = utcnow()
                for row in changes.values():
                    row["updated_at"] = now
            await self._write(conn, store.table, store.pk, changes, current=current)
            if keys:
                await self._replace_keys(conn, store, keys)
        return results

    @staticmethod
    def _merge(store: RecordStore, old: Mapping[str, Any], update: RecordUpdate) -> dict[str, Any]:
        """Managed: the column values after ``update`` (only columns it may change)."""
        if store.managed:
            # Typed column when the value has the column's type, else the extra JSON (see
            # RecordStore.to_row); only the touched columns are returned.
            new: dict[str, Any] = {}
            extra = store.extra_of(old)
            touched = False
            for name, value in update.fields.items():
                column = store.columns.get(name)
                if column is not None and (value is None or fits_managed(column, value)):
                    new[column.name] = value
                    if name in extra:  # it was stored there when it had another type
                        del extra[name]
                        touched = True
                else:
                    if column is not None:
                        new[column.name] = None
                    extra[name] = value
                    touched = True
            for name in update.clear:
                column = store.columns.get(name)
                if column is not None:
                    new[column.name] = None
                if name in extra:
                    del extra[name]
                    touched = True
            if touched:
                new["extra"] = extra or None
            return new
        raise AssertionError("mapped updates go through _update_mapped")
