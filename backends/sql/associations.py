"""Contact → company links for :class:`SQLBackend`, wherever the schema keeps them.

* the adapter's ``<prefix>associations`` (managed mode, or mapped without ``associations``);
* a customer link table, with its own key, soft-delete flag and dates when it has them
  (SuiteCRM ``accounts_contacts``): a link is created unless a visible one exists;
* a foreign-key column of the contacts table (Odoo ``parent_id``, CiviCRM ``employer_id``,
  Twenty ``companyId``): a contact has one company, the last link wins;
* both (EspoCRM keeps ``contact.account_id`` and ``account_contact``).

One transaction, a constant number of statements. A pair the database still rejects is
replayed alone in a savepoint, so only that pair fails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from backends.base import AssociationPair, Entity, InvalidRecord, ItemResult, NotFound

from .batching import chunked
from .coerce import ValueRejected, coerce
from .errors import is_record_error, reason
from .fastwrites import utcnow
from .id_strategies import id_generator
from .mapped import RecordStore
from .values import column_values, where_clause

if TYPE_CHECKING:
    from .options import SQLOptions
    from .schema import ManagedTables

__all__ = ["AssociationsMixin"]

T = TypeVar("T")
Pair = tuple[str, str]


class AssociationsMixin:
    """``create_associations``. Mixed into :class:`SQLBackend`."""

    if TYPE_CHECKING:
        options: SQLOptions
        tables: ManagedTables
        _secrets: tuple[str, ...]

        def _tx(
            self, what: str, *, write: bool = True
        ) -> AbstractAsyncContextManager[AsyncConnection]: ...
        def _store(self, entity: Entity) -> RecordStore: ...
        def _table(self, name: str, schema: str | None) -> sa.Table: ...
        def _insert_ignore(self, table: sa.Table, *keys: str) -> sa.Insert: ...
        async def _retrying(self, run: Callable[[], Awaitable[T]]) -> T: ...
        async def _existing(
            self, conn: AsyncConnection, store: RecordStore, crm_ids: Iterable[str]
        ) -> set[str]: ...
        async def _load(
            self,
            conn: AsyncConnection,
            store: RecordStore,
            crm_ids: Iterable[str],
            *,
            complete: bool = True,
        ) -> dict[str, tuple[Any, Any]]: ...
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

    async def create_associations(self, pairs: Sequence[AssociationPair]) -> list[ItemResult]:
        """Link contacts to companies in one transaction; existing links succeed silently.
        An unknown (or invisible) contact or company → that pair's ``NotFound``; a pair the
        database rejects → that pair's ``InvalidRecord``."""
        contacts, companies = self._store(Entity.CONTACT), self._store(Entity.COMPANY)
        async with self._tx("check associations", write=False) as conn:
            have_contacts = await self._existing(conn, contacts, [p.contact_id for p in pairs])
            have_companies = await self._existing(conn, companies, [p.company_id for p in pairs])
        results: list[ItemResult | None] = []
        good: dict[Pair, None] = {}
        for p in pairs:
            if p.contact_id not in have_contacts:
                results.append(
                    ItemResult(error=NotFound(f"No contact exists with ID: {p.contact_id}"))
                )
            elif p.company_id not in have_companies:
                results.append(
                    ItemResult(error=NotFound(f"No company exists with ID: {p.company_id}"))
                )
            else:
                good[(p.contact_id, p.company_id)] = None
                results.append(None)
        failed: dict[Pair, str] = {}
        if good:
            try:
                await self._retrying(lambda: self._link(list(good), careful=False))
            except InvalidRecord:
                failed = await self._retrying(lambda: self._link(list(good), careful=True))
        out: list[ItemResult] = []
        for p, result in zip(pairs, results, strict=True):
            if result is not None:
                out.append(result)
            elif (p.contact_id, p.company_id) in failed:
                why = failed[(p.contact_id, p.company_id)]
                out.append(ItemResult(error=InvalidRecord(why)))
            else:
                out.append(ItemResult(crm_id=p.contact_id))
        return out

    async def _link(self, pairs: list[Pair], *, careful: bool) -> dict[Pair, str]:
        """Write ``pairs`` in one transaction (``careful``: each in a savepoint, returning the
        ones the database rejected with its reason)."""
        failed: dict[Pair, str] = {}
        async with self._tx("create associations") as conn:
            if not careful:
                await self._write_links(conn, pairs)
                return failed
            for pair in pairs:
                try:
                    async with conn.begin_nested():
                        await self._write_links(conn, [pair])
                except ValueRejected as exc:
                    failed[pair] = str(exc)
                except sa_exc.DBAPIError as exc:
                    if not is_record_error(exc):
                        raise
                    failed[pair] = reason(exc, self._secrets)
        return failed

    async def _linked_fields(
        self, conn: AsyncConnection, pairs: list[Pair]
    ) -> dict[Pair, dict[str, Any]]:
        """``{pair: {"contact": fields, "company": fields}}`` (each with its key under the key
        column's name): the inputs of association values that read the linked records."""
        contacts, companies = self._store(Entity.CONTACT), self._store(Entity.COMPANY)
        people = await self._load(conn, contacts, {c for c, _ in pairs})
        firms = await self._load(conn, companies, {k for _, k in pairs})

        def fields(store: RecordStore, loaded: Any, crm_id: str) -> dict[str, Any]:
            record = loaded.get(crm_id)
            values = dict(record[1].fields) if record is not None else {}
            values[store.pk.name] = store.parse_id(crm_id)
            return values

        return {
            (c, k): {
                "contact": fields(contacts, people, c),
                "company": fields(companies, firms, k),
            }
            for c, k in pairs
        }

    async def _write_links(self, conn: AsyncConnection, pairs: list[Pair]) -> None:
        contacts, companies = self._store(Entity.CONTACT), self._store(Entity.COMPANY)
        assoc = self.options.associations
        now = utcnow()
        if assoc is None:
            table = self.tables.associations
            await conn.execute(
                self._insert_ignore(table, "contact_id", "company_id"),
                [{"contact_id": c, "company_id": k, "created_at": now} for c, k in pairs],
            )
            return
        reads_records = any(
            s.fields() for s in (*assoc.on_create.values(), *assoc.on_link.values())
        )
        linked = await self._linked_fields(conn, pairs) if reads_records else {}
        if assoc.table is not None:
            await self._link_rows(conn, pairs, linked, now)
        if assoc.fk_column is not None:
            stamps = {c: spec for c, spec in contacts.update_values.items() if not spec.fields()}
            changes: dict[Any, dict[str, Any]] = {}
            for c, k in pairs:  # in order: the last company of a contact wins
                inputs = linked.get((c, k), {})
                values = column_values(contacts.table, stamps, {}, now)
                if assoc.on_link:
                    scope = {**inputs.get("contact", {}), "company": inputs.get("company", {})}
                    values.update(column_values(contacts.table, assoc.on_link, scope, now))
                changes[contacts.parse_id(c)] = {
                    **values,
                    assoc.fk_column: companies.parse_id(k),
                }
            await self._write(conn, contacts.table, contacts.pk, changes)

    async def _link_rows(
        self,
        conn: AsyncConnection,
        pairs: list[Pair],
        linked: Mapping[Pair, Mapping[str, Any]],
        now: Any,
    ) -> None:
        """Rows of the customer's link table: created, or revived when a retired one (outside
        ``where``: ``deleted = 1``) exists for the pair; visible ones are left alone."""
        assoc = self.options.associations
        assert assoc is not None and assoc.table is not None
        contacts, companies = self._store(Entity.CONTACT), self._store(Entity.COMPANY)
        table = self._table(assoc.table, assoc.db_schema)
        ccol, kcol = table.c[assoc.contact_column], table.c[assoc.company_column]
        visible = where_clause(table, assoc.where)
        keyed = {(contacts.parse_id(c), companies.parse_id(k)): (c, k) for c, k in pairs}
        there: dict[tuple[Any, Any], bool] = {}
        flag = visible if visible is not None else sa.true()
        for part in chunked(list(keyed)):
            stmt = sa.select(ccol, kcol, sa.case((flag, 1), else_=0)).where(
                ccol.in_({c for c, _ in part}), kcol.in_({k for _, k in part})
            )
            for c, k, shown in await conn.execute(stmt):
                there[(c, k)] = there.get((c, k), False) or bool(shown)
        specs = assoc.insert_values()
        revive = {c: s for c, s in specs.items() if c in assoc.where}
        rows = []
        for key in sorted(keyed, key=str):
            if there.get(key):
                continue
            inputs = linked.get(keyed[key], {})
            if key in there:  # retired: bring it back
                values = column_values(table, revive, inputs, now)
                await conn.execute(
                    sa.update(table).where(ccol == key[0], kcol == key[1]).values(values)
                )
                continue
            row = column_values(table, specs, inputs, now)
            row.update({ccol.name: key[0], kcol.name: key[1]})
            if assoc.primary_key is not None and assoc.id_strategy != "database":
                pk = table.c[assoc.primary_key]
                row[pk.name] = coerce(pk, id_generator(assoc.id_strategy)())
            rows.append(row)
        for chunk in chunked(rows):
            await conn.execute(sa.insert(table), chunk)
