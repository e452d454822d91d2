"""Mapped mode's writes: creates and updates of rows in the customer's tables, with what
surrounds them (child tables, the extension table, the extra-fields side table) and the values
the configuration adds (``on_create`` / ``on_update``: constants, timestamps, templates).

A batch is one transaction with a constant number of statements. When the database rejects a
statement for some row's values, the batch is replayed record by record, each record's whole
write (its row and everything around it) in one savepoint, so only that record fails.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from backends.base import Conflict, InvalidRecord, ItemResult, NotFound, RecordUpdate

from .batching import chunked
from .children import ChildWrite
from .coerce import ValueRejected, coerce, column_is_text
from .errors import is_record_error, reason
from .fastwrites import _Prepared, utcnow
from .mapped import RecordStore, RowParts
from .mapped_options import ValueSpec
from .schema import KEY_VALUE_LENGTH
from .values import column_values

if TYPE_CHECKING:
    from .schema import ManagedTables

__all__ = ["MappedWritesMixin"]

T = TypeVar("T")
#: ``(record key, its parts, the inputs of its configured values)``.
Around = tuple[Any, RowParts, Mapping[str, Any]]


def _canonical(store: RecordStore, crm_id: str) -> str:
    """``crm_id`` as the store formats ids (an upper-case uuid names the same row)."""
    key = store.parse_id(crm_id)
    return crm_id if key is None else store.format_id(key)


def _dropped(p: _Prepared) -> dict[str, str]:
    return dict(p.satellites.dropped) if p.satellites is not None else {}


def _cleared(column: sa.Column[Any]) -> Any:
    """What clearing ``column`` writes: NULL, or the empty string for a ``NOT NULL`` text
    column (Twenty's text properties: "no value" is ``''``)."""
    if not column.nullable and column_is_text(column):
        return ""
    return coerce(column, None)


class _Claim:
    __slots__ = ("claim", "crm_id")

    def __init__(self, crm_id: str | None, claim: str) -> None:
        self.crm_id = crm_id
        self.claim = claim


class MappedWritesMixin:
    """Creates and updates of mapped records. Mixed into :class:`SQLBackend`."""

    if TYPE_CHECKING:
        tables: ManagedTables
        _secrets: tuple[str, ...]

        def _tx(
            self, what: str, *, write: bool = True
        ) -> AbstractAsyncContextManager[AsyncConnection]: ...
        async def _retrying(self, run: Callable[[], Awaitable[T]]) -> T: ...
        def _insert_ignore(self, table: sa.Table, *keys: str) -> sa.Insert: ...
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
        ) -> None: ...
        async def _insert_rows(
            self,
            conn: AsyncConnection,
            store: RecordStore,
            rows: list[dict[str, Any]],
            careful: bool,
        ) -> list[tuple[str | None, str | None]]: ...
        async def _replace_keys(
            self,
            conn: AsyncConnection,
            store: RecordStore,
            keys: Mapping[tuple[str, str], str | None],
        ) -> None: ...
        async def _load(
            self,
            conn: AsyncConnection,
            store: RecordStore,
            crm_ids: Iterable[str],
            *,
            complete: bool = True,
        ) -> dict[str, tuple[Any, Any]]: ...

    # -- preparing ---------------------------------------------------------------------------

    @staticmethod
    def _prepare_mapped(
        store: RecordStore, fields: Mapping[str, Any], now: dt.datetime
    ) -> tuple[dict[str, Any], RowParts]:
        """The new row (configured values, then the record's own columns, which win) and
        what goes around it. Raises :class:`ValueRejected`."""
        parts = store.split(fields)
        key = store.pk.name
        specs = {
            c: s
            for c, s in store.insert_values.items()
            if c not in parts.row and key not in s.fields()
        }
        row = {**column_values(store.table, specs, fields, now), **parts.row}
        return row, parts

    @staticmethod
    def _id_values(store: RecordStore, p: _Prepared, key: Any, now: dt.datetime) -> dict[str, Any]:
        """The ``on_create`` values that read the row's own key (Odoo's
        ``commercial_partner_id``), once the key is known."""
        specs = {
            c: s
            for c, s in store.insert_values.items()
            if c not in p.row and store.pk.name in s.fields()
        }
        if not specs:
            return {}
        inputs = {**p.row, **(p.fields or {}), store.pk.name: key}
        return column_values(store.table, specs, inputs, now)

    # -- around the row ------------------------------------------------------------------------

    async def _write_around(
        self,
        conn: AsyncConnection,
        store: RecordStore,
        items: Sequence[Around],
        now: dt.datetime,
        *,
        fresh: bool,
    ) -> None:
        """Child-table values, extension columns and side-table fields of ``items``
        (``fresh``: the records were just inserted)."""
        for name, child in store.children.items():
            writes = [
                ChildWrite(pk, parts.children[name], inputs)
                for pk, parts, inputs in items
                if name in parts.children
            ]
            await child.write(conn, writes, now, fresh=fresh)
        extension = [(pk, parts.extension) for pk, parts, _ in items if parts.extension]
        if extension:
            await self._write_extension(conn, store, extension, fresh=fresh)
        side = [(pk, parts.side) for pk, parts, _ in items if parts.side]
        if side:
            await self._write_side(conn, store, side, now, fresh=fresh)

    async def _write_extension(
        self,
        conn: AsyncConnection,
        store: RecordStore,
        items: list[tuple[Any, dict[str, Any]]],
        *,
        fresh: bool,
    ) -> None:
        table, key = store.extension, store.extension_key
        assert table is not None and key is not None
        there: set[Any] = set()
        if not fresh:
            for part in chunked([pk for pk, _ in items]):
                rows = await conn.execute(sa.select(key).where(key.in_(part)))
                there.update(rows.scalars())
        inserts = [{key.name: pk, **values} for pk, values in items if pk not in there]
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in inserts:
            groups.setdefault(tuple(sorted(row)), []).append(row)
        for group in groups.values():
            for part in chunked(group):
                await conn.execute(sa.insert(table), part)
        updates = {pk: values for pk, values in items if pk in there}
        await self._write(conn, table, key, updates)

    async def _write_side(
        self,
        conn: AsyncConnection,
        store: RecordStore,
        items: list[tuple[Any, dict[str, Any]]],
        now: dt.datetime,
        *,
        fresh: bool,
    ) -> None:
        """``<prefix>extra_fields``: set the fields (a ``None`` value removes one)."""
        side = self.tables.extra_fields
        entity = store.entity.value
        by_id = {store.format_id(pk): values for pk, values in items}
        old: dict[str, dict[str, Any]] = {}
        if not fresh:
            for part in chunked(sorted(by_id)):
                rows = await conn.execute(
                    self._lock(
                        sa.select(side.c.crm_id, side.c.data).where(
                            side.c.entity == entity, side.c.crm_id.in_(part)
                        )
                    )
                )
                old.update((c, dict(d) if isinstance(d, dict) else {}) for c, d in rows)
        inserts: list[dict[str, Any]] = []
        updates: dict[str, dict[str, Any]] = {}
        for crm_id, values in by_id.items():
            data = {**old.get(crm_id, {}), **values}
            data = {k: v for k, v in data.items() if v is not None}
            if crm_id in old:
                updates[crm_id] = {"data": data, "updated_at": now}
            elif data:
                inserts.append(
                    {"entity": entity, "crm_id": crm_id, "data": data, "updated_at": now}
                )
        for rows in chunked(inserts):
            await conn.execute(sa.insert(side), rows)
        await self._write(conn, side, side.c.crm_id, updates, where=side.c.entity == entity)

    # -- creates -------------------------------------------------------------------------------

    async def _create(
        self, what: str, store: RecordStore, prepared: list[_Prepared], careful: bool
    ) -> dict[int, ItemResult]:
        """Mapped mode: claim each external id in ``<prefix>links`` first (the customer's
        table has no column for it), then create the rows whose claims this transaction
        won, and what goes around them."""
        entity = store.entity.value
        links = self.tables.links
        now = utcnow()
        token = str(uuid.uuid4())
        new_ids = {p.external_id: store.new_id() if store.makes_ids else None for p in prepared}
        out: dict[int, ItemResult] = {}
        async with self._tx(what) as conn:
            # Sorted so that concurrent batches take their unique-index locks in one order.
            claims = [
                {
                    "entity": entity,
                    "external_id": ext,
                    "crm_id": new_ids[ext],
                    "claim": token,
                    "created_at": now,
                }
                for ext in sorted(new_ids)
            ]
            claim = self._insert_ignore(links, "entity", "external_id")
            held: dict[str, _Claim] = {}
            if conn.dialect.name in ("postgresql", "sqlite"):
                # RETURNING lists the claims that were inserted; only a conflict (an existing
                # or concurrently created external id) needs the extra read below. (MariaDB's
                # ON DUPLICATE KEY ... RETURNING also returns the duplicates: not usable.)
                got = await conn.execute(claim.returning(links.c.external_id), claims)
                held = {ext: _Claim(new_ids[ext], token) for ext in got.scalars()}
            else:
                await conn.execute(claim, claims)
            others = [ext for ext in new_ids if ext not in held]
            for part in chunked(others):
                for r in await conn.execute(
                    sa.select(links.c.external_id, links.c.crm_id, links.c.claim).where(
                        links.c.entity == entity, links.c.external_id.in_(part)
                    )
                ):
                    held[r.external_id] = _Claim(r.crm_id, r.claim)
            mine: list[_Prepared] = []
            for p in prepared:
                link = held.get(p.external_id)
                if link is not None and link.claim == token:
                    mine.append(p)
                elif link is not None and link.crm_id is not None:
                    out[p.index] = ItemResult(crm_id=link.crm_id, created=False)
                else:
                    out[p.index] = ItemResult(
                        error=Conflict(f"externalId {p.external_id!r} is being created elsewhere")
                    )
            if not mine:
                return out
            made = await self._insert_mapped(conn, store, mine, new_ids, now, careful, out)
            gone = [p.external_id for p in mine if p.external_id not in made]
            for part in chunked(gone):
                await conn.execute(
                    sa.delete(links).where(
                        links.c.entity == entity,
                        links.c.external_id.in_(part),
                        links.c.claim == token,
                    )
                )
            if not store.makes_ids and made:
                await self._write(
                    conn,
                    links,
                    links.c.external_id,
                    {ext: {"crm_id": crm_id} for ext, crm_id in made.items()},
                    where=links.c.entity == entity,
                )
            key_rows = [
                {"entity": entity, "key_name": k, "value": v, "crm_id": made[p.external_id]}
                for p in mine
                if p.external_id in made
                for k, v in p.keys.items()
            ]
            if key_rows:
                await conn.execute(sa.insert(self.tables.match_keys), key_rows)
        return out

    async def _insert_mapped(
        self,
        conn: AsyncConnection,
        store: RecordStore,
        mine: list[_Prepared],
        new_ids: Mapping[str, str | None],
        now: dt.datetime,
        careful: bool,
        out: dict[int, ItemResult],
    ) -> dict[str, str]:
        """Insert the rows of ``mine`` and what goes around them; ``{external id: crm id}``
        of those created (the others' errors are put in ``out``)."""

        def row_of(p: _Prepared) -> dict[str, Any]:
            made_id = new_ids[p.external_id]
            if made_id is None:
                return p.row
            key = store.parse_id(made_id)
            return {**p.row, store.pk.name: key, **self._id_values(store, p, key, now)}

        async def after_insert(batch: list[_Prepared], ids: list[str]) -> None:
            """Values reading a key the database made, then what goes around the rows."""
            later: dict[Any, dict[str, Any]] = {}
            around: list[Any] = []
            for p, crm_id in zip(batch, ids, strict=True):
                key = store.parse_id(crm_id)
                if new_ids[p.external_id] is None:
                    values = self._id_values(store, p, key, now)
                    if values:
                        later[key] = values
                if p.satellites is not None:
                    around.append((key, p.satellites, p.fields or {}))
            await self._write(conn, store.table, store.pk, later)
            await self._write_around(conn, store, around, now, fresh=True)

        made: dict[str, str] = {}
        if not careful:
            inserted = await self._insert_rows(conn, store, [row_of(p) for p in mine], False)
            ids = [crm_id for crm_id, _ in inserted if crm_id is not None]
            await after_insert(mine, ids)
            for p, crm_id in zip(mine, ids, strict=True):
                made[p.external_id] = crm_id
                out[p.index] = ItemResult(crm_id=crm_id, created=True, dropped=_dropped(p))
            return made
        for p in mine:
            try:
                async with conn.begin_nested():
                    [(got, _)] = await self._insert_rows(conn, store, [row_of(p)], False)
                    assert got is not None
                    await after_insert([p], [got])
            except ValueRejected as exc:
                out[p.index] = ItemResult(error=InvalidRecord(str(exc)))
                continue
            except sa_exc.DBAPIError as exc:
                if not is_record_error(exc):
                    raise
                out[p.index] = ItemResult(error=InvalidRecord(reason(exc, self._secrets)))
                continue
            made[p.external_id] = got
            out[p.index] = ItemResult(crm_id=got, created=True, dropped=_dropped(p))
        return made

    # -- updates -------------------------------------------------------------------------------

    async def _update_mapped(
        self, what: str, store: RecordStore, updates: Sequence[RecordUpdate], careful: bool
    ) -> list[ItemResult]:
        """Partial updates of visible rows: a locked read of the columns the batch changes,
        the changed columns and the configured ``on_update`` values written back, and what
        goes around each row."""
        now = utcnow()
        pks = {u.crm_id: store.parse_id(u.crm_id) for u in updates}
        results: list[ItemResult] = []
        async with self._tx(what) as conn:
            wanted = sorted({pk for pk in pks.values() if pk is not None}, key=str)
            names = {n for u in updates for n in (*u.fields, *u.clear)}
            cols = {store.pk, *(c for n, c in store.columns.items() if n in names)}
            cols |= {store.table.c[c] for c in store.update_values}
            if store.json_col is not None:
                cols.add(store.json_col)
            current: dict[Any, dict[str, Any]] = {}
            for part in chunked(wanted):
                stmt = sa.select(*sorted(cols, key=lambda c: c.name)).where(store.pk.in_(part))
                rows = await conn.execute(self._lock(store.only_visible(stmt)))
                current.update((r[store.pk.name], dict(r)) for r in rows.mappings())
            # Templates recompute from the whole record when a field they read changes.
            recompute = [u.crm_id for u in updates if store.template_inputs & {*u.fields, *u.clear}]
            full: dict[str, Any] = {}
            if recompute:
                full = {
                    c: r.fields for c, (_, r) in (await self._load(conn, store, recompute)).items()
                }
            changes: dict[Any, dict[str, Any]] = {}
            around: list[Around] = []
            keys: dict[tuple[str, str], str | None] = {}
            for u in updates:
                pk = pks[u.crm_id]
                if pk is None or pk not in current:
                    results.append(
                        ItemResult(error=NotFound(f"No record exists with ID: {u.crm_id}"))
                    )
                    continue
                try:
                    diff, parts, inputs = self._plan_update(store, current[pk], u, full, now)
                except ValueRejected as exc:
                    results.append(ItemResult(error=InvalidRecord(str(exc))))
                    continue
                if careful:
                    try:
                        async with conn.begin_nested():
                            await self._write(conn, store.table, store.pk, {pk: diff})
                            await self._write_around(
                                conn, store, [(pk, parts, inputs)], now, fresh=False
                            )
                    except sa_exc.DBAPIError as exc:
                        if not is_record_error(exc):
                            raise
                        results.append(ItemResult(error=InvalidRecord(reason(exc, self._secrets))))
                        continue
                else:
                    if diff:
                        changes.setdefault(pk, {}).update(diff)
                    around.append((pk, parts, inputs))
                current[pk].update(diff)
                canonical = store.format_id(pk)
                for name, value in u.match_keys.items():
                    keys[(canonical, name)] = (
                        value if value and len(value) <= KEY_VALUE_LENGTH else None
                    )
                results.append(ItemResult(crm_id=canonical, dropped=dict(parts.dropped)))
            await self._write(conn, store.table, store.pk, changes, current=current)
            await self._write_around(conn, store, around, now, fresh=False)
            if keys:
                await self._replace_keys(conn, store, keys)
        return results

    @staticmethod
    def _plan_update(
        store: RecordStore,
        old: Mapping[str, Any],
        update: RecordUpdate,
        full: Mapping[str, Any],
        now: dt.datetime,
    ) -> tuple[dict[str, Any], RowParts, dict[str, Any]]:
        """The changed columns of one row, what changes around it, and the inputs of its
        configured values. Raises :class:`ValueRejected`."""
        parts = store.split(update.fields)
        new = parts.row
        json_col = store.json_col
        extra = store.extra_of(old)
        json_touched = json_col is not None and json_col.name in new
        if json_touched:
            extra.update(store.extra_of(new))
        for name in update.clear:
            column = store.columns.get(name)
            if column is not None:
                new[column.name] = _cleared(column)
            elif name in store.children:
                parts.children[name] = None
                if not store.children[name].config.create_rows:
                    parts.side[name] = None
            elif name in store.extension_columns:
                parts.extension[store.extension_columns[name].name] = None
            elif store.extra_fields == "side_table":
                parts.side[name] = None
            elif name in extra:
                extra.pop(name)
                json_touched = True
        if json_col is not None and json_touched:
            new[json_col.name] = store._encode_json(extra) if extra else None
        diff = {c: v for c, v in new.items() if old.get(c) != v}
        inputs: dict[str, Any] = {
            **full.get(_canonical(store, update.crm_id), {}),
            **update.fields,
            **dict.fromkeys(update.clear),
        }
        if diff or parts.children or parts.extension or parts.side:
            # A value is recomputed when a field it reads changed, or a column computed
            # before it in the list (``complete_name`` reading a recomputed ``name``).
            touched = {*update.fields, *update.clear}
            specs: dict[str, ValueSpec] = {}
            for target, spec in store.update_values.items():
                if target not in new and (not spec.fields() or spec.fields() & touched):
                    specs[target] = spec
                    touched.add(target)
            values = column_values(store.table, specs, inputs, now)
            diff.update({c: v for c, v in values.items() if old.get(c) != v or c not in old})
        return diff, parts, inputs
