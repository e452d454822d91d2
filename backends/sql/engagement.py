"""Activities, tasks, users and the dashboard's browsing, for :class:`SQLBackend`.

These live in the adapter's own tables (``<prefix>activities``, ``<prefix>tasks``) in both
schema modes; in mapped mode with ``activities`` / ``tasks`` configured they are also written
into the CRM's own tables, under the CRM row's id (see :mod:`backends.sql.crm_engagement`).
Users come from the configured ``users`` table (which may be ``<prefix>users``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from backends.base import (
    Activity,
    Entity,
    InvalidRecord,
    NewActivity,
    NewTask,
    NotFound,
    StoredRecord,
    Task,
    TaskChanges,
    Unsupported,
    User,
)

from .batching import chunked
from .coerce import column_is_text
from .crm_engagement import EngagementStore, task_overlay
from .fastwrites import utcnow
from .ids import time_ordered_ids
from .mapped_options import template_fields
from .values import render_template, where_clause

if TYPE_CHECKING:
    from .mapped import RecordStore
    from .options import SQLOptions
    from .schema import ManagedTables

__all__ = ["EngagementMixin"]


def to_db(value: Any) -> dt.datetime | None:
    """A timestamp as stored: naive UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        text = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise InvalidRecord("dates must be ISO 8601 date-times") from None
    if not isinstance(value, dt.datetime):
        raise InvalidRecord("dates must be ISO 8601 date-times")
    moment: dt.datetime = value
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def from_db(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.replace(tzinfo=dt.UTC)


def _alternatives(template: str | list[str] | None) -> list[str]:
    return [template] if isinstance(template, str) else list(template or [])


def _inputs(values: Mapping[str, Any]) -> dict[str, Any]:
    """An activity's attributes as configured values read them (``{metadata.messageId}``)."""
    inputs = dict(values)
    inputs["metadata"] = dict(values.get("metadata") or {})
    inputs.update((k, v) for k, v in (values.get("extra") or {}).items() if k not in inputs)
    return inputs


def _idem(key: str | None) -> str | None:
    # The unique column is 255 characters; longer keys (long message ids) are hashed.
    if key is None or len(key) <= 255:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class EngagementMixin:
    """Activities, tasks, users and browsing. Mixed into :class:`SQLBackend`."""

    if TYPE_CHECKING:
        options: SQLOptions
        tables: ManagedTables
        _engagement: dict[str, EngagementStore]

        def _table(self, name: str, schema: str | None) -> sa.Table: ...

        def _tx(
            self, what: str, *, write: bool = True
        ) -> AbstractAsyncContextManager[AsyncConnection]: ...
        def _store(self, entity: Entity) -> RecordStore: ...
        def _links_on(self, store: RecordStore, *, from_links: bool) -> Any: ...
        async def _existing(
            self, conn: AsyncConnection, store: RecordStore, crm_ids: Iterable[str]
        ) -> set[str]: ...
        async def _load(
            self, conn: AsyncConnection, store: RecordStore, crm_ids: Iterable[str]
        ) -> dict[str, tuple[Any, StoredRecord]]: ...
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
        ) -> None: ...
        async def _retrying(self, run: Any) -> Any: ...
        def _lite_ok(self, *stores: RecordStore) -> bool: ...
        async def _lite_activity(
            self, activity: NewActivity, key: str | None, occurred: Any
        ) -> Activity: ...

    async def _check_links(
        self, conn: AsyncConnection, contact_id: str | None, company_id: str | None
    ) -> None:
        for entity, crm_id in ((Entity.CONTACT, contact_id), (Entity.COMPANY, company_id)):
            if crm_id is not None and not await self._existing(conn, self._store(entity), [crm_id]):
                raise NotFound(f"No {entity.value} exists with ID: {crm_id}")

    # -- activities ----------------------------------------------------------------------------

    async def create_activity(self, activity: NewActivity) -> Activity:
        """Store an activity (mapped mode with ``activities``: also in the CRM's table, whose
        row id is the activity's id); a repeated ``idempotency_key`` returns the first one
        (also under concurrency: the key is unique). Raises :class:`NotFound` for an unknown
        contact or company."""
        table = self.tables.activities
        crm = self._engagement.get("activities")
        key = _idem(activity.idempotency_key)
        if self._lite_ok(self._store(Entity.CONTACT), self._store(Entity.COMPANY)):
            return await self._lite_activity(activity, key, to_db(activity.occurred_at))
        now = utcnow()
        async with self._tx("create activity") as conn:
            if key is not None:
                row = (
                    (await conn.execute(sa.select(table).where(table.c.idempotency_key == key)))
                    .mappings()
                    .first()
                )
                if row is not None:
                    return self._activity(row)
            await self._check_links(conn, activity.contact_id, activity.company_id)
            new_id = time_ordered_ids(1)[0]
            values = {
                "id": new_id,
                "type": activity.type,
                "direction": activity.direction,
                "subject": activity.subject,
                "body": activity.body,
                "owner_id": activity.owner_id,
                "occurred_at": to_db(activity.occurred_at),
                "contact_id": activity.contact_id,
                "company_id": activity.company_id,
                "metadata": dict(activity.metadata) or None,
                "extra": dict(activity.extra) or None,
                "idempotency_key": key,
                "created_at": now,
            }
            if key is None:
                if crm is not None:
                    values["id"] = new_id = await crm.insert(conn, _inputs(values), now)
                await conn.execute(sa.insert(table).values(values))
                where = table.c.id == new_id
            else:
                # The key is claimed first: a concurrent twin waits on it, then finds ours.
                await conn.execute(self._insert_ignore(table, "idempotency_key").values(values))
                where = table.c.idempotency_key == key
                mine = (await conn.execute(sa.select(table.c.id).where(where))).scalar()
                if mine == new_id and crm is not None:
                    crm_id = await crm.insert(conn, _inputs(values), now)
                    await conn.execute(
                        sa.update(table).where(table.c.id == new_id).values(id=crm_id)
                    )
            row = (await conn.execute(sa.select(table).where(where))).mappings().one()
        return self._activity(row)

    @staticmethod
    def _activity(row: Mapping[Any, Any]) -> Activity:
        return Activity(
            id=row["id"],
            type=row["type"],
            direction=row["direction"],
            subject=row["subject"],
            body=row["body"],
            owner_id=row["owner_id"],
            occurred_at=from_db(row["occurred_at"]),
            contact_id=row["contact_id"],
            company_id=row["company_id"],
            metadata=row["metadata"] or {},
            created_at=from_db(row["created_at"]),
        )

    # -- tasks ---------------------------------------------------------------------------------

    async def create_task(self, task: NewTask) -> Task:
        """Create a task (not completed). Raises :class:`NotFound` for an unknown contact or
        company. Not idempotent."""
        table = self.tables.tasks
        now = utcnow()
        async with self._tx("create task") as conn:
            await self._check_links(conn, task.contact_id, task.company_id)
            values = {
                "id": time_ordered_ids(1)[0],
                "subject": task.subject,
                "description": task.description,
                "type": task.type,
                "owner_id": task.owner_id,
                "due_date": to_db(task.due_date),
                "contact_id": task.contact_id,
                "company_id": task.company_id,
                "completed": False,
                "completed_at": None,
                "extra": dict(task.extra) or None,
                "created_at": now,
                "updated_at": now,
            }
            crm = self._engagement.get("tasks")
            if crm is not None:
                values["id"] = await crm.insert(conn, values, now)
            await conn.execute(sa.insert(table).values(values))
        return self._task(values)

    @staticmethod
    def _task(row: Mapping[Any, Any]) -> Task:
        return Task(
            id=row["id"],
            subject=row["subject"],
            description=row["description"],
            type=row["type"],
            owner_id=row["owner_id"],
            due_date=from_db(row["due_date"]),
            contact_id=row["contact_id"],
            company_id=row["company_id"],
            completed=bool(row["completed"]),
            completed_at=from_db(row["completed_at"]),
            created_at=from_db(row["created_at"]),
            updated_at=from_db(row["updated_at"]),
        )

    async def get_tasks(self, ids: Sequence[str]) -> list[Task]:
        """The tasks with these ids, in the order asked, without unknown or repeated ids."""
        table = self.tables.tasks
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str) and self._storable(i)))
        if not wanted:
            return []
        by_id: dict[str, Task] = {}
        crm = self._engagement.get("tasks")
        async with self._tx("get tasks", write=False) as conn:
            stored: dict[str, Any] = {}
            for part in chunked(wanted):
                rows = await conn.execute(sa.select(table).where(table.c.id.in_(part)))
                stored.update((str(r["id"]), r) for r in rows.mappings())
            # The CRM's row wins: a task completed (or deleted) there is so for Enginy too.
            there = await crm.read(conn, stored) if crm is not None else None
        for task_id, row in stored.items():
            if there is None:
                by_id[task_id] = self._task(row)
            elif task_id in there:
                by_id[task_id] = self._task(task_overlay(row, there[task_id]))
        return [by_id[i] for i in wanted if i in by_id]

    async def update_task(self, task_id: str, changes: TaskChanges) -> Task:
        """Apply a partial update; raises :class:`NotFound` for an unknown id. Idempotent."""
        updated = await self.update_tasks([task_id], changes)
        if not updated:
            raise NotFound(f"No task exists with ID: {task_id}")
        return updated[0]

    async def update_tasks(self, ids: Sequence[str], changes: TaskChanges) -> list[Task]:
        """Apply the same changes to several tasks in one transaction (one read, one write);
        returns the updated tasks in the order asked, skipping unknown ids."""
        table = self.tables.tasks
        wanted = list(dict.fromkeys(i for i in ids if self._storable(i)))
        if not wanted:
            return []
        fields = dict(changes.fields)
        for name in ("due_date",):
            if name in fields:
                fields[name] = to_db(fields[name])
        now = to_db(changes.now)
        async with self._tx("update tasks") as conn:
            contact = fields.get("contact_id")
            company = fields.get("company_id")
            await self._check_links(conn, contact, company)
            current: dict[str, dict[str, Any]] = {}
            # Sorted: chunks of concurrent batches lock their rows in one order.
            for part in chunked(sorted(wanted)):
                rows = await conn.execute(self._lock(sa.select(table).where(table.c.id.in_(part))))
                current.update((r["id"], dict(r)) for r in rows.mappings())
            crm = self._engagement.get("tasks")
            if crm is not None:
                there = await crm.read(conn, current)
                current = {k: task_overlay(v, there[k]) for k, v in current.items() if k in there}
            before = {k: dict(v) for k, v in current.items()}
            writes: dict[str, dict[str, Any]] = {}
            for task_id, row in current.items():
                new = dict(fields)
                if changes.completed is True:
                    new["completed"] = True
                    if changes.completed_at is not None:
                        new["completed_at"] = to_db(changes.completed_at)
                    elif not row["completed"] or row["completed_at"] is None:
                        new["completed_at"] = now
                elif changes.completed is False:
                    new["completed"] = False
                    new["completed_at"] = None
                new["updated_at"] = now
                writes[task_id] = new
                row.update(new)
            await self._write(conn, table, table.c.id, writes, current=before)
            if crm is not None:
                changed = {k: (current[k], set(w)) for k, w in writes.items()}
                await crm.update(conn, changed, now or utcnow())
        return [self._task(current[i]) for i in wanted if i in current]

    # -- users ---------------------------------------------------------------------------------

    async def list_users(self) -> list[User]:
        """The users of the configured users table (declared only when ``users`` is set)."""
        config = self.options.users
        if config is None:
            raise Unsupported("no users table is configured (backend.options.users)")
        t = self._table(config.table, config.db_schema)
        source: Any = t
        joined = None
        if config.join is not None:
            joined = self._table(config.join.table, config.join.db_schema)
            source = t.outerjoin(joined, t.c[config.join.column] == joined.c[config.join.key])

        def column(name: str) -> Any:
            table, _, col = name.rpartition(".")
            if table and joined is not None and table == joined.name:
                return joined.c[col]
            return t.c[col]

        names = (
            sorted({f for a in _alternatives(config.name) for f in template_fields(a)})
            if config.name
            else [config.name_column]
        )
        cols = [t.c[config.id_column], *(column(n) for n in names)]
        cols.append(column(config.email_column) if config.email_column else sa.null())
        stmt = sa.select(*cols).select_from(source).order_by(t.c[config.id_column])
        for table, where in ((t, config.where), (joined, config.join.where if config.join else {})):
            visible = where_clause(table, where) if table is not None else None
            if visible is not None:
                stmt = stmt.where(visible)
        async with self._tx("list users", write=False) as conn:
            rows = (await conn.execute(stmt)).all()
        users = []
        for row in rows:
            values = dict(zip(names, row[1:-1], strict=True))
            if config.name:
                name = render_template(config.name, values) or ""
            else:
                name = str(values[config.name_column] or "")
            email = row[-1]
            users.append(User(id=str(row[0]), name=name, email=str(email) if email else None))
        return sorted(users, key=lambda u: (u.name, u.id))

    # -- browsing ------------------------------------------------------------------------------

    def _assoc_source(self) -> tuple[sa.Table, sa.Column[Any], sa.Column[Any], Any]:
        """The link table, its contact / company columns and the condition of the links the
        adapter sees (FK mode: the contacts table and its visible rows)."""
        assoc = self.options.associations
        if assoc is None:
            t = self.tables.associations
            return t, t.c.contact_id, t.c.company_id, None
        if assoc.table is not None:
            t = self._table(assoc.table, assoc.db_schema)
            visible = where_clause(t, assoc.where)
            return t, t.c[assoc.contact_column], t.c[assoc.company_column], visible
        store = self._store(Entity.CONTACT)
        assert assoc.fk_column is not None
        return store.table, store.pk, store.table.c[assoc.fk_column], store.visible

    async def counts(self) -> dict[str, int]:
        """How many contacts, companies, associations, activities and tasks are stored (that
        the adapter sees: soft-deleted rows are not counted)."""
        assoc, _, company_col, assoc_visible = self._assoc_source()

        def count(t: sa.Table, *where: Any) -> Any:
            stmt = sa.select(sa.func.count()).select_from(t)
            conditions = [w for w in where if w is not None]
            return (stmt.where(*conditions) if conditions else stmt).scalar_subquery()

        fk_mode = self.options.associations is not None and self.options.associations.table is None
        contacts, companies = self._store(Entity.CONTACT), self._store(Entity.COMPANY)
        stmt = sa.select(
            count(contacts.table, contacts.visible),
            count(companies.table, companies.visible),
            count(assoc, company_col.is_not(None) if fk_mode else None, assoc_visible),
            count(self.tables.activities),
            count(self.tables.tasks),
        )
        async with self._tx("count", write=False) as conn:
            row = (await conn.execute(stmt)).one()
        return dict(
            zip(
                ("contacts", "companies", "associations", "activities", "tasks"),
                (int(v) for v in row),
                strict=True,
            )
        )

    async def list_records(
        self, entity: Entity, *, limit: int = 50, offset: int = 0, search: str | None = None
    ) -> list[StoredRecord]:
        """Stored records, newest first; ``search`` scans the ids, the text columns and the
        JSON column (``lower(...) LIKE``: on SQLite case folds ASCII letters only)."""
        store = self._store(entity)
        stmt = store.only_visible(
            sa.select(store.pk).order_by(store.order.desc()).limit(limit).offset(offset)
        )
        if search:
            stmt = self._search_records(stmt, store, search)
        async with self._tx(f"list {entity.plural}", write=False) as conn:
            ids = (await conn.execute(stmt)).scalars().all()
            crm_ids = [store.format_id(i) for i in ids]
            loaded = await self._load(conn, store, crm_ids)
        return [loaded[c][1] for c in crm_ids if c in loaded]

    async def list_associated(self, entity: Entity, crm_id: str) -> list[StoredRecord]:
        """A contact's companies (``CONTACT``) or a company's contacts (``COMPANY``)."""
        _, contact_col, company_col, visible = self._assoc_source()
        own = self._store(entity)
        other = self._store(Entity.COMPANY if entity is Entity.CONTACT else Entity.CONTACT)
        pk = own.parse_id(crm_id)
        if pk is None:
            return []
        mine, theirs = (
            (contact_col, company_col) if entity is Entity.CONTACT else (company_col, contact_col)
        )
        stmt = sa.select(theirs).where(mine == pk, theirs.is_not(None))
        if visible is not None:
            stmt = stmt.where(visible)
        async with self._tx("list associations", write=False) as conn:
            ids = (await conn.execute(stmt)).scalars().all()
            loaded = await self._load(conn, other, [other.format_id(i) for i in ids])
        return [r for _, r in sorted(loaded.values(), key=lambda p: p[0])]

    async def list_activities(
        self, *, contact_id: str | None = None, company_id: str | None = None, limit: int = 100
    ) -> list[Activity]:
        """Activities, newest ``occurred_at`` first (then newest stored)."""
        t = self.tables.activities
        stmt = (
            sa.select(t)
            .order_by(t.c.occurred_at.is_(None), t.c.occurred_at.desc(), t.c.seq.desc())
            .limit(limit)
        )
        if contact_id is not None:
            stmt = stmt.where(t.c.contact_id == contact_id)
        if company_id is not None:
            stmt = stmt.where(t.c.company_id == company_id)
        async with self._tx("list activities", write=False) as conn:
            return [self._activity(r) for r in (await conn.execute(stmt)).mappings()]

    def _search_records(self, stmt: sa.Select[Any], store: RecordStore, search: str) -> Any:
        """``stmt`` restricted to the records where ``search`` appears (see list_records)."""
        texts: list[Any] = [sa.cast(store.pk, sa.String())]
        # Text columns only (PostgreSQL has no lower() of an enum).
        texts += [c for c in store.columns.values() if column_is_text(c)]
        if store.json_col is not None:
            texts.append(sa.cast(store.json_col, sa.Text()))
        if store.ext_col is not None:
            texts.append(store.ext_col)
        else:  # mapped mode: the external ids live in <prefix>links
            links = self.tables.links
            # DISTINCT: a record may hold several external ids (mapped order = the key).
            stmt = stmt.select_from(
                store.table.outerjoin(links, self._links_on(store, from_links=False))
            ).distinct()
            texts.append(links.c.external_id)
        return stmt.where(sa.or_(*(_contains(text, search) for text in texts)))

    async def list_tasks(
        self,
        *,
        contact_id: str | None = None,
        company_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        completed: bool | None = None,
        search: str | None = None,
    ) -> list[Task]:
        """Tasks, newest first."""
        t = self.tables.tasks
        stmt = sa.select(t).order_by(t.c.seq.desc()).limit(limit).offset(offset)
        if contact_id is not None:
            stmt = stmt.where(t.c.contact_id == contact_id)
        if company_id is not None:
            stmt = stmt.where(t.c.company_id == company_id)
        if completed is not None:
            stmt = stmt.where(t.c.completed.is_(sa.true() if completed else sa.false()))
        if search:
            stmt = stmt.where(
                sa.or_(_contains(t.c.subject, search), _contains(t.c.description, search))
            )
        async with self._tx("list tasks", write=False) as conn:
            return [self._task(r) for r in (await conn.execute(stmt)).mappings()]


def _contains(text: Any, search: str) -> Any:
    """``lower(text) LIKE '%<search>%'`` with ``%``, ``_`` and the escape character escaped."""
    return sa.func.lower(text).contains(search.lower(), autoescape=True)
