"""Two customer schemas shaped like the ones real CRMs have, for mapped mode's capability tests.

These are not copies of any CRM (``tests/sql/crms/`` has those); each has the *kind* of
structure a CRM has, so that one capability is tested at a time:

* ``party`` (integer identity keys): people and organisations in one table told apart by
  ``kind``, a soft-delete flag, computed display and sort names, an employer foreign key, a
  direct child table of e-mail addresses with a primary flag, a one-to-one extension table,
  and an activity table with a targets table;
* ``bean`` (text keys the application makes): people and accounts in their own tables,
  ``deleted`` flags and dates, e-mail addresses shared between records through a link table
  (with an upper-cased copy of the address, indexed), a link table of associations with its
  own key, a task table with a polymorphic parent and a note table.

Every table's name starts with a per-test tag; :func:`schema` creates them and drops them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from backends.base import Entity

Flag = sa.SmallInteger


@dataclass
class Schema:
    url: str
    tag: str
    metadata: sa.MetaData

    def t(self, name: str) -> sa.Table:
        return self.metadata.tables[f"{self.tag}{name}"]

    def name(self, name: str) -> str:
        return f"{self.tag}{name}"

    async def rows(self, name: str, **where: Any) -> list[dict[str, Any]]:
        table = self.t(name)
        stmt = sa.select(table).order_by(*table.primary_key.columns)
        for column, value in where.items():
            stmt = stmt.where(table.c[column] == value)
        engine = create_async_engine(self.url)
        try:
            async with engine.connect() as conn:
                return [dict(r) for r in (await conn.execute(stmt)).mappings()]
        finally:
            await engine.dispose()

    async def execute(self, *statements: Any) -> None:
        engine = create_async_engine(self.url)
        try:
            async with engine.begin() as conn:
                for stmt in statements:
                    await conn.execute(stmt)
        finally:
            await engine.dispose()


def party_tables(md: sa.MetaData, tag: str) -> None:
    sa.Table(
        f"{tag}party",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("first_name", sa.String(64)),
        sa.Column("last_name", sa.String(64)),
        sa.Column("org_name", sa.String(128)),
        sa.Column("display_name", sa.String(128)),
        sa.Column("sort_name", sa.String(128)),
        sa.Column("job_title", sa.String(255)),
        sa.Column("website", sa.String(255)),
        sa.Column("employer_id", sa.Integer),
        sa.Column("hash", sa.String(32)),
        sa.Column("is_deleted", Flag, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime),
        sa.Column("modified_at", sa.DateTime),
        sa.Index(f"{tag}party_website_ix", "website"),
    )
    sa.Table(
        f"{tag}email",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("party_id", sa.Integer, nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("is_primary", Flag, nullable=False, server_default="0"),
        sa.Column("location", sa.Integer, nullable=False),
        sa.Index(f"{tag}email_ix", "email"),
        sa.Index(f"{tag}email_party_ix", "party_id"),
    )
    sa.Table(
        f"{tag}party_ext",
        md,
        sa.Column("party_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("linkedin", sa.String(255)),
        sa.Column("score", sa.Integer),
    )
    sa.Table(
        f"{tag}location_type",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(20)),
        sa.Column("is_default", Flag, nullable=False, server_default="0"),
    )
    sa.Table(
        f"{tag}activity",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("type_id", sa.Integer, nullable=False),
        sa.Column("subject", sa.String(255)),
        sa.Column("details", sa.Text),
        sa.Column("happened_at", sa.DateTime, nullable=False),
        sa.Column("status_id", sa.Integer, nullable=False),
        sa.Column("is_deleted", Flag, nullable=False, server_default="0"),
    )
    sa.Table(
        f"{tag}activity_party",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("activity_id", sa.Integer, nullable=False),
        sa.Column("party_id", sa.Integer, nullable=False),
        sa.Column("role", sa.Integer, nullable=False),
    )


def bean_tables(md: sa.MetaData, tag: str) -> None:
    def dates() -> list[sa.Column[Any]]:
        return [sa.Column("date_entered", sa.DateTime), sa.Column("date_modified", sa.DateTime)]

    sa.Table(
        f"{tag}lead",
        md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("first_name", sa.String(100)),
        sa.Column("last_name", sa.String(100)),
        sa.Column("title", sa.String(100)),
        sa.Column("deleted", Flag, nullable=False, server_default="0"),
        *dates(),
    )
    sa.Table(
        f"{tag}lead_cstm",
        md,
        sa.Column("id_c", sa.String(36), primary_key=True),
        sa.Column("linkedin_c", sa.String(255)),
    )
    sa.Table(
        f"{tag}account",
        md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(150)),
        sa.Column("website", sa.String(255)),
        sa.Column("deleted", Flag, nullable=False, server_default="0"),
        *dates(),
    )
    sa.Table(
        f"{tag}address",
        md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("address", sa.String(255)),
        sa.Column("address_caps", sa.String(255)),
        sa.Column("deleted", Flag, nullable=False, server_default="0"),
        sa.Index(f"{tag}address_caps_ix", "address_caps"),
    )
    sa.Table(
        f"{tag}address_rel",
        md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("address_id", sa.String(36), nullable=False),
        sa.Column("bean_id", sa.String(36), nullable=False),
        sa.Column("bean_module", sa.String(100)),
        sa.Column("primary_address", Flag, nullable=False, server_default="0"),
        sa.Column("deleted", Flag, nullable=False, server_default="0"),
        sa.Index(f"{tag}address_rel_bean_ix", "bean_id"),
        sa.Index(f"{tag}address_rel_address_ix", "address_id"),
    )
    sa.Table(
        f"{tag}account_lead",
        md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("lead_id", sa.String(36)),
        sa.Column("account_id", sa.String(36)),
        sa.Column("deleted", Flag, nullable=False, server_default="0"),
        sa.Column("date_modified", sa.DateTime),
    )
    sa.Table(
        f"{tag}task",
        md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(50)),
        sa.Column("description", sa.Text),
        sa.Column("status", sa.String(100)),
        sa.Column("date_due", sa.DateTime),
        sa.Column("parent_type", sa.String(255)),
        sa.Column("parent_id", sa.String(36)),
        sa.Column("lead_id", sa.String(36)),
        sa.Column("deleted", Flag, nullable=False, server_default="0"),
        *dates(),
    )
    sa.Table(
        f"{tag}note",
        md,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("description", sa.Text),
        sa.Column("lead_id", sa.String(36)),
        sa.Column("parent_type", sa.String(255)),
        sa.Column("parent_id", sa.String(36)),
        sa.Column("deleted", Flag, nullable=False, server_default="0"),
        *dates(),
    )


@asynccontextmanager
async def schema(url: str, *builders: Any) -> AsyncIterator[Schema]:
    """Create the tables ``builders`` define (under a unique tag), drop them after."""
    tag = f"m{uuid.uuid4().hex[:6]}_"
    md = sa.MetaData()
    for build in builders:
        build(md, tag)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(md.create_all)
        yield Schema(url, tag, md)
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(md.drop_all)
        await engine.dispose()


def party_options(s: Schema, **overrides: Any) -> dict[str, Any]:
    """Mapped options for the ``party`` schema: people and organisations in one table."""
    people = {
        "table": s.name("party"),
        "where": {"kind": "person", "is_deleted": 0},
        "extra_fields": "side_table",
        "on_create": {
            "display_name": {"template": "{first_name} {last_name}"},
            "sort_name": {"template": "{last_name}, {first_name}"},
            "hash": {"generate": "uuid_hex"},
            "created_at": {"now": True},
            "modified_at": {"now": True},
        },
        "on_update": {
            "display_name": {"template": "{first_name} {last_name}"},
            "sort_name": {"template": "{last_name}, {first_name}"},
            "modified_at": {"now": True},
        },
        "children": {
            "email": {
                "table": s.name("email"),
                "column": "email",
                "record_column": "party_id",
                "primary": {"is_primary": 1},
                "on_create": {
                    "location": {
                        "lookup": {
                            "table": s.name("location_type"),
                            "column": "id",
                            "where": {"is_default": 1},
                        }
                    }
                },
            }
        },
        "extension": {"table": s.name("party_ext"), "key": "party_id"},
    }
    orgs = {
        "table": s.name("party"),
        "where": {"kind": "org", "is_deleted": 0},
        "on_create": {
            "display_name": {"field": "org_name"},
            "sort_name": {"field": "org_name"},
            "created_at": {"now": True},
        },
        "lookups": {"website": {}},
    }
    return {
        "mode": "mapped",
        # The adapter's own tables under the schema's tag: the test servers are shared.
        "table_prefix": f"{s.tag}enginy_",
        "contacts": people,
        "companies": orgs,
        "associations": {
            "fk_column": "employer_id",
            "on_link": {"org_name": {"field": "company.org_name"}},
        },
        **overrides,
    }


#: Enginy names → the ``party`` schema's fields.
PARTY_FIELDS: dict[Entity, dict[str, str]] = {
    Entity.CONTACT: {
        "firstName": "first_name",
        "lastName": "last_name",
        "title": "job_title",
        "email": "email",
        "linkedinUrl": "linkedin",
    },
    Entity.COMPANY: {"name": "org_name", "domain": "website"},
}


def bean_options(s: Schema, **overrides: Any) -> dict[str, Any]:
    """Mapped options for the ``bean`` schema."""
    stamps = {"date_entered": {"now": True}, "date_modified": {"now": True}}
    return {
        "mode": "mapped",
        "table_prefix": f"{s.tag}enginy_",
        "contacts": {
            "table": s.name("lead"),
            "id_strategy": "uuid",
            "where": {"deleted": 0},
            "on_create": stamps,
            "on_update": {"date_modified": {"now": True}},
            "extension": {"table": s.name("lead_cstm"), "key": "id_c"},
            "children": {
                "email": {
                    "table": s.name("address"),
                    "column": "address",
                    "id_strategy": "uuid",
                    "where": {"deleted": 0},
                    "on_create": {"address_caps": {"field": "email", "case": "upper"}},
                    "lookup": {"column": "address_caps", "stored": "upper"},
                    "link": {
                        "table": s.name("address_rel"),
                        "id_strategy": "uuid",
                        "record_column": "bean_id",
                        "child_column": "address_id",
                        "primary": {"primary_address": 1},
                        "where": {"bean_module": "Leads", "deleted": 0},
                        "on_delete": {"deleted": 1},
                    },
                }
            },
        },
        "companies": {
            "table": s.name("account"),
            "id_strategy": "uuid",
            "where": {"deleted": 0},
            "on_create": stamps,
        },
        "associations": {
            "table": s.name("account_lead"),
            "contact_column": "lead_id",
            "company_column": "account_id",
            "primary_key": "id",
            "id_strategy": "uuid",
            "where": {"deleted": 0},
            "on_create": {"date_modified": {"now": True}},
        },
        **overrides,
    }


BEAN_FIELDS: dict[Entity, dict[str, str]] = {
    Entity.CONTACT: {
        "firstName": "first_name",
        "lastName": "last_name",
        "title": "title",
        "email": "email",
        "linkedinUrl": "linkedin_c",
    },
    Entity.COMPANY: {"name": "name", "domain": "website"},
}
