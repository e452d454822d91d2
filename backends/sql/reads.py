"""Reading contacts and companies for :class:`SQLBackend`: loads by id and sync lookups.

A lookup is one indexed ``IN`` per match key joined to the records: on the managed record's
own external-id column, or on ``<prefix>links`` / ``<prefix>match_keys`` (mapped mode), then,
for values still unmatched in mapped mode, on the customer's own column or child table through
:mod:`backends.sql.lookup` (rows the adapter did not write). Mapped reads see only the rows
the configured ``where`` admits, and complete each record with its child-table values and its
``<prefix>extra_fields`` (one statement each per batch).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from backends.base import EXTERNAL_ID, Entity, FirstMatches, MatchKey, StoredRecord
from backends.keys import normalise_domain_any_extension, normalise_name

from .batching import chunked
from .coerce import column_is_text
from .lookup import (
    DEFAULT_NORMALISERS,
    Comparison,
    comparison,
    stem_patterns,
    variants,
)
from .mapped import RecordStore
from .mapped_options import Lookup
from .plans import driven_by_wanted, wanted_values
from .schema import KEY_VALUE_LENGTH

if TYPE_CHECKING:
    from .schema import ManagedTables

__all__ = ["RecordReadsMixin"]

Hit = tuple[Any, Any, StoredRecord]


class RecordReadsMixin:
    """``find_records`` / ``get_records`` and the loading helpers the writers share."""

    if TYPE_CHECKING:
        tables: ManagedTables
        engine: Any
        _find_statements: dict[tuple[Entity, str, bool], Any]

        def _tx(
            self, what: str, *, write: bool = True
        ) -> AbstractAsyncContextManager[AsyncConnection]: ...
        def _store(self, entity: Entity) -> RecordStore: ...
        def _storable(self, text: str) -> bool: ...
        def _lite_ok(self, *stores: RecordStore) -> bool: ...
        async def _lite_match(
            self,
            store: RecordStore,
            keys: Sequence[MatchKey],
            values: Sequence[Sequence[str | None]],
        ) -> list[StoredRecord | None]: ...
        async def _lite_find(
            self, store: RecordStore, name: str, wanted: Sequence[str]
        ) -> list[tuple[Any, Any, StoredRecord]]: ...

    # -- joins with the adapter's text ids --------------------------------------------------

    @staticmethod
    def _id_equals(store: RecordStore, text: sa.Column[Any], *, from_text: bool) -> Any:
        """``record key = text id`` (a side table's ``crm_id``), indexable from the driving
        side: an integer or uuid key is compared through a cast on the side that is *not*
        looked up by index."""
        if store.text_ids:
            return text == store.pk
        if from_text:
            return store.pk == sa.cast(text, store.pk.type)
        return text == sa.cast(store.pk, text.type)

    def _links_on(self, store: RecordStore, *, from_links: bool) -> Any:
        """Join condition records ↔ ``<prefix>links``."""
        links = self.tables.links
        cond = self._id_equals(store, links.c.crm_id, from_text=from_links)
        return sa.and_(links.c.entity == store.entity.value, cond)

    def _with_ext(self, store: RecordStore, *extra: Any) -> sa.Select[Any]:
        """``SELECT`` of whole visible records plus their external id as ``_enginy_ext``
        (joined from ``<prefix>links`` in mapped mode)."""
        if store.ext_col is not None:
            return sa.select(store.table, store.ext_col.label("_enginy_ext"), *extra)
        links = self.tables.links
        stmt = sa.select(
            *store.selected(), links.c.external_id.label("_enginy_ext"), *extra
        ).select_from(store.source().outerjoin(links, self._links_on(store, from_links=False)))
        visible: sa.Select[Any] = store.only_visible(stmt)
        return visible

    def _record_rows(
        self, store: RecordStore, rows: sa.CursorResult[Any], value_label: str | None = None
    ) -> list[Hit]:
        """``(matched value, order value, record)`` per result row (see ``_load``) of a
        ``SELECT <table>, <labels>``: read by position."""
        names = list(rows.keys())
        ext_at = names.index("_enginy_ext")
        value_at = names.index(value_label) if value_label else None
        pk_at, order_at = store.positions[store.pk.name], store.positions[store.order.name]
        fmt, fields_at = store.format_id, store.fields_at
        return [
            (
                row[value_at] if value_at is not None else None,
                row[order_at],
                StoredRecord(fmt(row[pk_at]), row[ext_at], fields_at(row)),
            )
            for row in rows
        ]

    async def _complete(
        self, conn: AsyncConnection, store: RecordStore, records: Sequence[StoredRecord]
    ) -> dict[str, StoredRecord]:
        """Mapped: ``{crm_id: record}`` with the child-table values and the side table's extra
        fields added (one statement each per batch); managed: as given."""
        by_id = {r.crm_id: r for r in records}
        if (
            store.managed
            or not records
            or not (store.children or store.extra_fields == "side_table")
        ):
            return by_id
        pks = {store.parse_id(c): c for c in by_id}
        added: dict[str, dict[str, Any]] = {c: {} for c in by_id}
        for name, child in store.children.items():
            for pk, (value, _) in (await child.primary_rows(conn, pks)).items():
                crm_id = pks.get(pk)
                if crm_id is not None and value is not None:
                    added[crm_id][name] = value
        if store.extra_fields == "side_table":
            side = self.tables.extra_fields
            for part in chunked(list(by_id)):
                rows = await conn.execute(
                    sa.select(side.c.crm_id, side.c.data).where(
                        side.c.entity == store.entity.value, side.c.crm_id.in_(part)
                    )
                )
                for crm_id, data in rows:
                    if isinstance(data, dict) and crm_id in added:
                        # Stored fields never hide the table's own values.
                        added[crm_id] = {**data, **added[crm_id]}
        return {
            c: StoredRecord(r.crm_id, r.external_id, {**added[c], **r.fields}) if added[c] else r
            for c, r in by_id.items()
        }

    async def _load(
        self,
        conn: AsyncConnection,
        store: RecordStore,
        crm_ids: Iterable[str],
        *,
        complete: bool = True,
    ) -> dict[str, tuple[Any, StoredRecord]]:
        """``{crm_id: (order value, record)}`` for the visible ids that exist (``complete``:
        with their child-table values and extra fields)."""
        pks = {pk for c in set(crm_ids) if (pk := store.parse_id(c)) is not None}
        rows: list[Hit] = []
        for part in chunked(pks):
            stmt = self._with_ext(store).where(store.pk.in_(part))
            rows += self._record_rows(store, await conn.execute(stmt))
        if not complete:
            return {r.crm_id: (order, r) for _, order, r in rows}
        done = await self._complete(conn, store, [r for _, _, r in rows])
        return {r.crm_id: (order, done[r.crm_id]) for _, order, r in rows}

    async def _existing(
        self, conn: AsyncConnection, store: RecordStore, crm_ids: Iterable[str]
    ) -> set[str]:
        """The ids among ``crm_ids`` that name a visible record."""
        pks = {pk for c in set(crm_ids) if c and (pk := store.parse_id(c)) is not None}
        found: set[str] = set()
        for part in chunked(pks):
            stmt = store.only_visible(sa.select(store.pk).where(store.pk.in_(part)))
            found.update(store.format_id(pk) for pk in (await conn.execute(stmt)).scalars())
        return found

    # -- lookups ------------------------------------------------------------------------------

    def _wanted(self, expr: Any) -> Any:
        """``expr IN :wanted``. PostgreSQL: ``= ANY(:wanted)`` with an array, so the statement
        text (and asyncpg's prepared statement) is the same whatever the number of values."""
        name = self.engine.dialect.name
        if name == "postgresql":
            return expr == sa.any_(sa.bindparam("wanted", type_=postgresql.ARRAY(sa.String())))
        if name == "sqlite":
            # The values as one JSON array: no per-call rendering of an IN list.
            return expr.in_(sa.select(wanted_values().c.value))
        return expr.in_(sa.bindparam("wanted", expanding=True))

    def _where_wanted(self, stmt: sa.Select[Any], expr: Any) -> sa.Select[Any]:
        """``stmt`` restricted to the rows whose ``expr`` is one of the ``wanted`` values: on
        SQLite driven by the values, so that each is an index search whatever the table's
        statistics say (:mod:`backends.sql.plans`), elsewhere :meth:`_wanted`."""
        if self.engine.dialect.name == "sqlite":
            return driven_by_wanted(stmt, expr)
        return stmt.where(self._wanted(expr))

    @staticmethod
    def _comparison(store: RecordStore, field: str) -> Comparison | None:
        """How a mapped column of ``field`` is compared with key forms (``None``: it is not a
        text column)."""
        lookup = store.lookups.get(field, Lookup())
        column = store.table.c[lookup.column] if lookup.column else store.columns.get(field)
        if column is None or not column_is_text(column):
            return None
        return comparison(column, lookup, column.name in store.case_insensitive)

    def _find_statement(self, store: RecordStore, name: str, *, fallback: bool) -> Any:
        """The lookup of :meth:`find_records` for key ``name`` (or, ``fallback``, of mapped
        field ``name``'s column itself), built once: values come as the ``wanted``
        parameter."""
        cache_key = (store.entity, name, fallback)
        stmt = self._find_statements.get(cache_key)
        if stmt is not None:
            return stmt
        entity = store.entity
        links, mk = self.tables.links, self.tables.match_keys
        if fallback:
            compare = self._comparison(store, name)
            assert compare is not None
            expr = compare.expression
            stmt = self._with_ext(store, expr.label("_enginy_value")).where(self._wanted(expr))
        elif name == EXTERNAL_ID and store.ext_col is not None:
            stmt = self._where_wanted(
                self._with_ext(store, store.ext_col.label("_enginy_value")), store.ext_col
            )
        elif name == EXTERNAL_ID:
            stmt = self._where_wanted(
                store.only_visible(
                    sa.select(
                        *store.selected(),
                        links.c.external_id.label("_enginy_ext"),
                        links.c.external_id.label("_enginy_value"),
                    )
                    .select_from(links.join(store.source(), self._links_on(store, from_links=True)))
                    .where(links.c.entity == entity.value)
                ),
                links.c.external_id,
            )
        else:
            on_record = self._id_equals(store, mk.c.crm_id, from_text=True)
            joined = mk.join(store.source(), on_record)
            if store.ext_col is not None:
                ext = store.ext_col.label("_enginy_ext")
            else:
                on_link = sa.and_(links.c.entity == entity.value, links.c.crm_id == mk.c.crm_id)
                joined = joined.outerjoin(links, on_link)
                ext = links.c.external_id.label("_enginy_ext")
            stmt = self._where_wanted(
                store.only_visible(
                    sa.select(*store.selected(), ext, mk.c.value.label("_enginy_value"))
                    .select_from(joined)
                    .where(mk.c.entity == entity.value, mk.c.key_name == name)
                ),
                mk.c.value,
            )
        self._find_statements[cache_key] = stmt
        return stmt

    async def find_records(
        self, entity: Entity, key: MatchKey, values: Sequence[str]
    ) -> dict[str, StoredRecord]:
        """Find records by external id or by a normalised match key: one indexed ``IN``
        lookup joined to the records (mapped mode: then one on the customer's column or child
        table for the values not found). The oldest record wins when several hold a value."""
        store = self._store(entity)
        wanted = self._lookup_values(values)
        if not wanted:
            return {}
        if self._lite_ok(store):
            # SQLite, managed: one trip to the connection's thread (sqlitepaths.py).
            return self._best(await self._lite_find(store, key.name, wanted))
        async with self._tx(f"find {entity.plural}", write=False) as conn:
            return await self._find_in(conn, store, key, wanted)

    async def match_records(
        self,
        entity: Entity,
        keys: Sequence[MatchKey],
        values: Sequence[Sequence[str | None]],
    ) -> list[StoredRecord | None]:
        """A sync's lookups, key after key for the items still unmatched (see
        :class:`~backends.base.FirstMatches`), on one connection: on SQLite (managed) in one
        trip to the connection's thread, elsewhere one checkout for every key's statement."""
        store = self._store(entity)
        if self._lite_ok(store):
            return await self._lite_match(store, keys, values)
        matches = FirstMatches(values)
        async with self._tx(f"find {entity.plural}", write=False) as conn:
            for key, wanted in matches.rounds(keys):
                usable = self._lookup_values(wanted)
                matches.take(await self._find_in(conn, store, key, usable) if usable else {})
        return matches.found

    def _lookup_values(self, values: Iterable[str]) -> list[str]:
        """The values a lookup can match, each once: not empty, not longer than a stored key,
        and without NUL where the database cannot store one."""
        nul_ok = self._storable("\x00")
        return list(
            {v for v in values if v and len(v) <= KEY_VALUE_LENGTH and (nul_ok or "\x00" not in v)}
        )

    async def _find_in(
        self, conn: AsyncConnection, store: RecordStore, key: MatchKey, wanted: list[str]
    ) -> dict[str, StoredRecord]:
        """:meth:`find_records`'s lookup of ``wanted`` (usable values) on ``conn``."""
        stmt = self._find_statement(store, key.name, fallback=False)
        hits: list[Hit] = []
        for part in chunked(wanted):  # one statement unless the batch is huge
            found = await conn.execute(stmt, {"wanted": part})
            hits += self._record_rows(store, found, "_enginy_value")
        rest = list(set(wanted) - {value for value, _, _ in hits})
        if not store.managed and key.name != EXTERNAL_ID and (key.field or key.fields) and rest:
            hits += await self._find_stored(conn, store, key, rest)
        complete = await self._complete(conn, store, [r for _, _, r in hits])
        return self._best((v, o, complete[r.crm_id]) for v, o, r in hits)

    @staticmethod
    def _best(hits: Iterable[Hit]) -> dict[str, StoredRecord]:
        """``{value: record}``: the oldest record (lowest order value) holding each value."""
        best: dict[str, tuple[Any, StoredRecord]] = {}
        for value, order, record in hits:
            if value not in best or order < best[value][0]:
                best[value] = (order, record)
        return {value: record for value, (_, record) in best.items()}

    async def _find_stored(
        self, conn: AsyncConnection, store: RecordStore, key: MatchKey, values: list[str]
    ) -> list[Hit]:
        """Mapped: rows the adapter did not write, by their stored values (see
        :mod:`backends.sql.lookup`): the key's column or child table, through an index."""
        field = key.field or ""
        normaliser = key.normaliser or DEFAULT_NORMALISERS.get(key.name)
        if normaliser == "compound":
            return await self._find_compound(conn, store, key, values)
        if normaliser == "domain_any_extension":
            return await self._find_by_stem(conn, store, field, values)
        forms: dict[str, str] = {}
        for value in values:
            for form in variants(normaliser, value):
                forms.setdefault(form, value)
        child = store.children.get(field)
        if child is not None:
            matches = await child.lookup(conn, forms)
            if not matches:
                return []
            ids = {store.format_id(pk) for _, pk in matches}
            loaded = await self._load(conn, store, ids, complete=False)
            return [
                (value, *loaded[crm_id])
                for value, pk in matches
                if (crm_id := store.format_id(pk)) in loaded
            ]
        compare = self._comparison(store, field)
        if compare is None:
            return []
        stmt = self._find_statement(store, field, fallback=True)
        hits: list[Hit] = []
        for part in chunked(list(forms)):
            found = await conn.execute(stmt, {"wanted": compare.forms(part)})
            for stored, order, record in self._record_rows(store, found, "_enginy_value"):
                matched = forms.get(compare.form_of(stored) or "")
                if matched is not None:
                    hits.append((matched, order, record))
        return hits

    async def _find_by_stem(
        self, conn: AsyncConnection, store: RecordStore, field: str, stems: list[str]
    ) -> list[Hit]:
        """``domain_any_extension`` keys on stored websites: prefix ``LIKE``s (an index on the
        column serves them), each match's name checked again in Python."""
        wanted = set(stems)
        patterns = [p for stem in sorted(wanted) for p in stem_patterns(stem)]
        child = store.children.get(field)
        if child is not None:
            matches = await child.lookup_like(conn, patterns)
            pairs = [
                (stem, pk)
                for stored, pk in matches
                if (stem := normalise_domain_any_extension(stored)) in wanted
            ]
            ids = {store.format_id(pk) for _, pk in pairs}
            loaded = await self._load(conn, store, ids, complete=False)
            return [
                (stem, *loaded[crm_id])
                for stem, pk in pairs
                if (crm_id := store.format_id(pk)) in loaded
            ]
        compare = self._comparison(store, field)
        if compare is None:
            return []
        expr = compare.expression
        hits: list[Hit] = []
        for part in chunked(patterns, 120):
            likes = [expr.like(compare.transform(p), escape="\\") for p in part]
            stmt = self._with_ext(store, expr.label("_enginy_value")).where(sa.or_(*likes))
            for stored, order, record in self._record_rows(
                store, await conn.execute(stmt), "_enginy_value"
            ):
                stem = normalise_domain_any_extension(stored)
                if stem in wanted:
                    hits.append((stem, order, record))
        return hits

    async def _find_compound(
        self, conn: AsyncConnection, store: RecordStore, key: MatchKey, values: list[str]
    ) -> list[Hit]:
        """Compound keys (first + last name + company) on rows the adapter did not write:
        each part's column compared with that part's values (an index on any of them serves
        it), each match's parts checked again together in Python."""
        compares = [self._comparison(store, field) for field in key.fields]
        if not key.fields or any(c is None for c in compares):
            return []  # a part outside the record's own text columns: the key table only
        wanted: dict[tuple[str, ...], str] = {}
        for value in values:
            try:
                parts = json.loads(value)
            except ValueError:
                continue
            if isinstance(parts, list) and len(parts) == len(compares):
                wanted[tuple(str(p) for p in parts)] = value
        hits: list[Hit] = []
        for chunk in chunked(list(wanted)):
            labels = [c.expression.label(f"_enginy_p{i}") for i, c in enumerate(compares) if c]
            conditions = [
                c.expression.in_(c.forms(sorted({t[i] for t in chunk})))
                for i, c in enumerate(compares)
                if c
            ]
            stmt = self._with_ext(store, *labels).where(*conditions)
            rows = await conn.execute(stmt)
            names = list(rows.keys())
            at = [names.index(label.name) for label in labels]
            rows_ = list(rows)
            for row, (_, order, record) in zip(
                rows_, self._rows_of(store, names, rows_), strict=True
            ):
                stored = tuple(normalise_name(row[i]) or "" for i in at)
                if stored in wanted:
                    hits.append((wanted[stored], order, record))
        return hits

    def _rows_of(self, store: RecordStore, names: list[str], rows: Sequence[Any]) -> list[Hit]:
        """:meth:`_record_rows` over rows already fetched (``names``: their labels)."""
        ext_at = names.index("_enginy_ext")
        pk_at, order_at = store.positions[store.pk.name], store.positions[store.order.name]
        return [
            (
                None,
                row[order_at],
                StoredRecord(store.format_id(row[pk_at]), row[ext_at], store.fields_at(row)),
            )
            for row in rows
        ]

    async def get_records(self, entity: Entity, crm_ids: Sequence[str]) -> dict[str, StoredRecord]:
        """``{crm_id: record}`` for the ids that exist (and are visible). Read-only."""
        store = self._store(entity)
        async with self._tx(f"get {entity.plural}", write=False) as conn:
            loaded = await self._load(conn, store, crm_ids)
        return {crm_id: record for crm_id, (_, record) in loaded.items()}
