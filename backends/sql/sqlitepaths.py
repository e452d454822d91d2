"""The managed hot paths on SQLite, each one trip to the connection's thread.

Creates, syncs (every match key's lookup in one trip), updates and activities of the managed
schema run their statements as plain ``sqlite3`` calls on the connection's own thread
(:mod:`backends.sql.sqlitebatch`): the same statements as the statement-by-statement path
(:mod:`backends.sql.insert`, :mod:`backends.sql.patch`, the driver's lookups), compiled once
from SQLAlchemy, in the same transactions. Mixed into :class:`SQLBackend`; used only when
:attr:`_lite` is set (SQLite through aiosqlite) and the records are in the managed tables. The
row-by-row replay after a rejected batch, mapped tables and the other databases keep the
general path.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from backends.base import (
    Activity,
    Entity,
    FirstMatches,
    MatchKey,
    NotFound,
    RecordUpdate,
    StoredRecord,
)

from .batching import chunked
from .fastwrites import utcnow
from .ids import time_ordered_ids
from .insert import sqlite_create_statements
from .patch import PatchPlan, patch_statement
from .plans import driven_by_wanted
from .sqlitebatch import (
    Batch,
    Positional,
    SQLiteBatches,
    Statement,
    compile_positional,
    compile_sqlite,
    json_text,
    sqlite_timestamp,
)

if TYPE_CHECKING:
    from backends.base import NewActivity

    from .fastwrites import _Prepared
    from .mapped import RecordStore
    from .schema import ManagedTables
    from .statistics import TableStatistics

__all__ = ["SQLitePathsMixin"]

_DUMPS = json.JSONEncoder(separators=(",", ":")).encode


def _getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of ``names`` in a row (a dict), as a tuple (one C call per row)."""
    if len(names) == 1:
        only = names[0]
        return lambda row: (row[only],)
    get = operator.itemgetter(*names)
    return lambda row: get(row)


class SQLitePathsMixin:
    """``_lite_*``: the managed hot paths as one batch function each."""

    if TYPE_CHECKING:
        tables: ManagedTables
        engine: Any
        _lite: SQLiteBatches | None
        _statistics: TableStatistics | None
        _lite_sql: dict[Any, Any]

        def _store(self, entity: Entity) -> RecordStore: ...
        def _find_statement(self, store: RecordStore, name: str, *, fallback: bool) -> Any: ...
        def _lookup_values(self, values: Iterable[str]) -> list[str]: ...
        @staticmethod
        def _best(
            hits: Iterable[tuple[Any, Any, StoredRecord]],
        ) -> dict[str, StoredRecord]: ...

    def _lite_statement(self, key: Any, build: Callable[[], Any]) -> Any:
        """``build()``, once per ``key`` (compiled statements and their layouts)."""
        found = self._lite_sql.get(key)
        if found is None:
            found = self._lite_sql[key] = build()
        return found

    def _lite_ok(self, *stores: RecordStore) -> bool:
        return self._lite is not None and all(s.managed for s in stores)

    # -- creates ------------------------------------------------------------------------------

    async def _lite_create(
        self,
        what: str,
        store: RecordStore,
        by_ext: Mapping[str, _Prepared],
        new_ids: Mapping[str, str],
        now: dt.datetime,
    ) -> tuple[set[str], dict[str, str]]:
        """The rows (one executemany ``INSERT ... ON CONFLICT (external_id) DO NOTHING``), the
        keys of the rows made (another), and the ids of the external ids that were there
        already: ``(external ids made, {external id: its record's id})``.

        Under ``BEGIN IMMEDIATE`` no other writer can add a row meanwhile, so when the insert
        changed as many rows as it was given, every row is new; only otherwise one read tells
        which external ids already had a record (and their ids)."""
        assert self._lite is not None
        rows_sql, keys_sql, held_sql, typed, to_json = self._lite_statement(
            ("create", store.entity), lambda: self._lite_create_sql(store)
        )
        stamp = sqlite_timestamp(now)
        entity = store.entity.value
        # Sorted before chunking: concurrent batches take their unique-index locks in one order.
        parts = list(chunked(sorted(by_ext)))

        def work(batch: Batch) -> tuple[set[str], dict[str, str], int]:
            made: set[str] = set()
            held: dict[str, str] = {}
            key_rows = 0
            for part in parts:
                # Tuples in the statement's order: id, external id, the typed columns, extra,
                # the two timestamps (see _lite_create_sql).
                rows = []
                for ext in part:
                    row = by_ext[ext].row
                    rows.append(
                        (new_ids[ext], ext, *typed(row), to_json(row["extra"]), stamp, stamp)
                    )
                fresh = part
                if batch.many(rows_sql, rows) != len(rows):
                    there = dict(batch.rows(held_sql, {"wanted": _DUMPS(part)}))
                    fresh = [ext for ext in part if there.get(ext) == new_ids[ext]]
                    held.update((e, i) for e, i in there.items() if i != new_ids[e])
                made.update(fresh)
                keys = [
                    (entity, k, v, new_ids[ext])
                    for ext in fresh
                    for k, v in by_ext[ext].keys.items()
                ]
                if keys:
                    batch.many(keys_sql, keys)
                    key_rows += len(keys)
            return made, held, key_rows

        made, held, key_rows = await self._lite.run(what, work, write=True)
        statistics = self._statistics
        if statistics is not None:
            statistics.added(store.table.name, len(made))
            statistics.added(self.tables.match_keys.name, key_rows)
        return made, held

    def _lite_create_sql(
        self, store: RecordStore
    ) -> tuple[Positional, Positional, Statement, Callable[[Any], Any], Callable[[Any], Any]]:
        """The create's statements (rows and keys with ``?`` parameters, the read of the ids
        already held), the row's typed values as a tuple, and the JSON column's conversion."""
        table, mk = store.table, self.tables.match_keys
        ext_col = store.ext_col
        assert ext_col is not None and store.json_col is not None
        fixed = {store.pk.name, ext_col.name, store.json_col.name, *store.stamp_cols}
        typed_names = [c.name for c in table.c if c.name not in fixed and c is not store.order]
        names = [store.pk.name, ext_col.name, *typed_names, store.json_col.name]
        names += sorted(store.stamp_cols)
        rows = (
            sqlite.insert(table)
            .values({n: sa.bindparam(n) for n in names})
            .on_conflict_do_nothing(index_elements=[ext_col.name])
        )
        key_names = ("entity", "key_name", "value", "crm_id")
        keys = sa.insert(mk).values({n: sa.bindparam(n) for n in key_names})
        held = driven_by_wanted(sa.select(ext_col, store.pk), ext_col)
        # The JSON column's own conversion (None is stored as JSON null), as SQLAlchemy's:
        # json.dumps, unless the engine was given a serializer of its own.
        dialect = self.engine.dialect
        to_json: Callable[[Any], Any] | None = json_text
        if getattr(dialect, "_json_serializer", None) is not None:
            to_json = store.json_col.type.dialect_impl(dialect).bind_processor(dialect)
        assert to_json is not None
        rows_sql, keys_sql = compile_positional(rows), compile_positional(keys)
        # The tuples' layouts must be the statements' parameter orders.
        assert rows_sql.names == tuple(names), rows_sql.names
        assert keys_sql.names == key_names, keys_sql.names
        typed = _getter(typed_names)
        return rows_sql, keys_sql, compile_sqlite(held), typed, to_json

    # -- syncs --------------------------------------------------------------------------------

    async def _lite_find(
        self, store: RecordStore, name: str, wanted: Sequence[str]
    ) -> list[tuple[Any, Any, StoredRecord]]:
        """``(matched value, order value, record)`` per hit of the lookup of key ``name``
        (the driver's own statement, compiled once): one read, no transaction."""
        assert self._lite is not None
        read = self._lite_reader(store, name)
        return await self._lite.run(
            f"find {store.entity.plural}", lambda batch: read(batch, wanted), write=False
        )

    async def _lite_match(
        self,
        store: RecordStore,
        keys: Sequence[MatchKey],
        values: Sequence[Sequence[str | None]],
    ) -> list[StoredRecord | None]:
        """``match_records``: every key's lookup, each for the items still unmatched, in one
        trip to the connection's thread (one read, no transaction)."""
        assert self._lite is not None
        readers = [self._lite_reader(store, key.name) for key in keys]
        usable, best = self._lookup_values, self._best

        def work(batch: Batch) -> list[StoredRecord | None]:
            matches = FirstMatches(values)
            for read, wanted in matches.rounds(readers):
                lookup = usable(wanted)
                matches.take(best(read(batch, lookup)) if lookup else {})
            return matches.found

        return await self._lite.run(f"find {store.entity.plural}", work, write=False)

    def _lite_reader(
        self, store: RecordStore, name: str
    ) -> Callable[[Batch, Sequence[str]], list[tuple[Any, Any, StoredRecord]]]:
        """The lookup of key ``name`` as a function run on the connection's thread:
        ``(matched value, order value, record)`` per hit."""
        sql, value_at, ext_at = self._lite_statement(
            ("find", store.entity, name), lambda: self._lite_find_sql(store, name)
        )
        pk_at, order_at = store.positions[store.pk.name], store.positions[store.order.name]
        fmt, fields_at = store.format_id, store.fields_at

        def read(batch: Batch, wanted: Sequence[str]) -> list[tuple[Any, Any, StoredRecord]]:
            hits = []
            for part in chunked(wanted):
                for row in batch.rows(sql, {"wanted": _DUMPS(part)}):
                    hits.append(
                        (
                            row[value_at],
                            row[order_at],
                            StoredRecord(fmt(row[pk_at]), row[ext_at], fields_at(row)),
                        )
                    )
            return hits

        return read

    def _lite_find_sql(self, store: RecordStore, name: str) -> tuple[Statement, int, int]:
        stmt = self._find_statement(store, name, fallback=False)
        names = list(stmt.selected_columns.keys())
        return compile_sqlite(stmt), names.index("_enginy_value"), names.index("_enginy_ext")

    # -- updates ------------------------------------------------------------------------------

    async def _lite_patch(
        self,
        what: str,
        store: RecordStore,
        updates: Sequence[RecordUpdate],
        plans: Sequence[PatchPlan],
        now: dt.datetime,
        settle: Callable[[set[Any]], tuple[Any, Mapping[tuple[str, str], str | None]]],
    ) -> Any:
        """The patch statement per plan, then ``settle(ids found)`` (the per-update results and
        the match keys to replace), then the keys' replacement: one transaction."""
        assert self._lite is not None
        patch_sql, delete_sql, keys_sql = self._lite_statement(
            ("patch", store.entity), lambda: self._lite_patch_sql(store)
        )
        stamp = sqlite_timestamp(now)
        entity = store.entity.value
        # One UPDATE without keys to replace is atomic by itself: no BEGIN / COMMIT.
        atomic = len(plans) > 1 or any(u.match_keys for u in updates)

        def work(batch: Batch) -> Any:
            found: set[Any] = set()
            for plan in plans:
                found.update(
                    r[0] for r in batch.rows(patch_sql, {"payload": plan.payload, "now": stamp})
                )
            results, keys = settle(found)
            for pairs in chunked(list(keys)):
                batch.execute(delete_sql, {"pairs": _DUMPS(pairs), "entity": entity})
            fresh = [[c, k, v] for (c, k), v in keys.items() if v is not None]
            for triples in chunked(fresh):
                batch.execute(keys_sql, {"keys": _DUMPS(triples), "entity": entity})
            return results

        return await self._lite.run(what, work, write=True, atomic=atomic)

    def _lite_patch_sql(self, store: RecordStore) -> tuple[Statement, Statement, Statement]:
        mk = self.tables.match_keys
        dialect = sqlite.dialect()
        _, keys = sqlite_create_statements(store, mk, dialect)
        pairs = sa.func.json_each(sa.bindparam("pairs")).table_valued("value")
        delete = sa.delete(mk).where(
            mk.c.entity == sa.bindparam("entity"),
            sa.tuple_(mk.c.crm_id, mk.c.key_name).in_(
                sa.select(
                    sa.func.json_extract(pairs.c.value, "$[0]"),
                    sa.func.json_extract(pairs.c.value, "$[1]"),
                )
            ),
        )
        patch = patch_statement(store, dialect)
        return compile_sqlite(patch), compile_sqlite(delete), compile_sqlite(keys)

    # -- activities ---------------------------------------------------------------------------

    async def _lite_activity(
        self, activity: NewActivity, key: str | None, occurred: Any
    ) -> Activity:
        """Find the activity by its idempotency key, else check its contact and company and
        insert it: one write transaction."""
        assert self._lite is not None
        table = self.tables.activities
        sql = self._lite_statement(("activity",), self._lite_activity_sql)
        contacts, companies = self._store(Entity.CONTACT), self._store(Entity.COMPANY)
        dialect = self.engine.dialect
        binds = {c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.c}
        values = {
            "id": time_ordered_ids(1)[0],
            "type": activity.type,
            "direction": activity.direction,
            "subject": activity.subject,
            "body": activity.body,
            "owner_id": activity.owner_id,
            "occurred_at": occurred,
            "contact_id": activity.contact_id,
            "company_id": activity.company_id,
            "metadata": dict(activity.metadata) or None,
            "extra": dict(activity.extra) or None,
            "idempotency_key": key,
            "created_at": utcnow(),
        }
        # The column types' own conversions (JSON text, timestamps), as SQLAlchemy binds them.
        params = {
            name: bind(value) if (bind := binds[name]) is not None else value
            for name, value in values.items()
        }
        links = [
            (sql["contact"], activity.contact_id, Entity.CONTACT),
            (sql["company"], activity.company_id, Entity.COMPANY),
        ]

        def work(batch: Batch) -> Any:
            if key is not None:
                row = batch.execute(sql["by_key"], {"key": key}).fetchone()
                if row is not None:
                    return row
            for check, crm_id, entity in links:
                store = contacts if entity is Entity.CONTACT else companies
                if crm_id is not None and (
                    store.parse_id(crm_id) is None
                    or batch.execute(check, {"id": crm_id}).fetchone() is None
                ):
                    raise NotFound(f"No {entity.value} exists with ID: {crm_id}")
            batch.execute(sql["insert"] if key is None else sql["insert_ignore"], params)
            if key is None:
                return batch.execute(sql["by_id"], {"id": values["id"]}).fetchone()
            return batch.execute(sql["by_key"], {"key": key}).fetchone()

        row = await self._lite.run("create activity", work, write=True)
        readers = sql["readers"]
        record = {
            name: (read(value) if read is not None else value)
            for (name, read), value in zip(readers, row, strict=True)
        }
        return self._activity(record)  # type: ignore[attr-defined,no-any-return]

    def _lite_activity_sql(self) -> dict[str, Any]:
        table = self.tables.activities
        dialect = self.engine.dialect
        names = [c.name for c in table.c if c.name != "seq"]
        columns = [table.c[n] for n in names]
        select = sa.select(*columns)
        insert = sa.insert(table).values({n: sa.bindparam(n) for n in names})
        ignore = (
            sqlite.insert(table)
            .values({n: sa.bindparam(n) for n in names})
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )
        contacts, companies = self._store(Entity.CONTACT), self._store(Entity.COMPANY)
        return {
            "by_key": compile_sqlite(select.where(table.c.idempotency_key == sa.bindparam("key"))),
            "by_id": compile_sqlite(select.where(table.c.id == sa.bindparam("id"))),
            "insert": compile_sqlite(insert),
            "insert_ignore": compile_sqlite(ignore),
            "contact": compile_sqlite(
                sa.select(sa.literal(1)).where(contacts.pk == sa.bindparam("id"))
            ),
            "company": compile_sqlite(
                sa.select(sa.literal(1)).where(companies.pk == sa.bindparam("id"))
            ),
            "readers": [
                (c.name, c.type.dialect_impl(dialect).result_processor(dialect, None))
                for c in columns
            ],
        }
