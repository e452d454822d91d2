"""A plausible in-house CRM schema for the mapped-mode tests.

``crm_people`` / ``crm_accounts`` / ``crm_people_accounts`` / ``crm_users`` (under a per-test
name tag), integer identity keys, column names unlike Enginy's, and a ``VARCHAR(50)`` job title
that a long title overflows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from backends.base import Entity


@dataclass
class CRM:
    url: str
    tag: str
    metadata: sa.MetaData
    people: sa.Table
    accounts: sa.Table
    links: sa.Table
    users: sa.Table

    def options(self, **overrides: Any) -> dict[str, Any]:
        """``backend.options`` for mapped mode on this schema."""
        return {
            "url": self.url,
            "mode": "mapped",
            "table_prefix": f"{self.tag}enginy_",
            "contacts": {
                "table": self.people.name,
                "primary_key": "person_id",
                "json_column": "custom_json",
            },
            "companies": {"table": self.accounts.name, "primary_key": "account_id"},
            "associations": {
                "table": self.links.name,
                "contact_column": "person_id",
                "company_column": "account_id",
            },
            "users": {
                "table": self.users.name,
                "id_column": "user_id",
                "name_column": "full_name",
                "email_column": "email_address",
            },
            **overrides,
        }


#: The YAML ``mapping`` section: Enginy names → this CRM's columns.
FIELD_MAP: dict[Entity, dict[str, str]] = {
    Entity.CONTACT: {
        "firstName": "given_name",
        "lastName": "family_name",
        "email": "mail",
        "phone": "phone_no",
        "title": "job_title",
        "linkedinUrl": "li_profile",
    },
    Entity.COMPANY: {
        "name": "account_name",
        "domain": "website",
        "industry": "sector",
        "numberOfEmployees": "headcount",
        "linkedinUrl": "li_page",
    },
}


def define(tag: str) -> tuple[sa.MetaData, sa.Table, sa.Table, sa.Table, sa.Table]:
    md = sa.MetaData()
    accounts = sa.Table(
        f"{tag}crm_accounts",
        md,
        sa.Column("account_id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("account_name", sa.String(200), nullable=False),
        sa.Column("website", sa.String(255)),
        sa.Column("sector", sa.String(100)),
        sa.Column("headcount", sa.Integer),
        sa.Column("li_page", sa.String(255)),
        # A rule only the database knows: the up-front checks pass, the INSERT fails.
        sa.CheckConstraint("headcount IS NULL OR headcount >= 0", name=f"{tag}headcount_ck"),
    )
    people = sa.Table(
        f"{tag}crm_people",
        md,
        sa.Column("person_id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("given_name", sa.String(100)),
        sa.Column("family_name", sa.String(100)),
        sa.Column("mail", sa.String(254)),
        sa.Column("phone_no", sa.String(40)),
        sa.Column("job_title", sa.String(50)),
        sa.Column("li_profile", sa.String(255)),
        sa.Column("custom_json", sa.Text),
        sa.Column("status", sa.String(20), nullable=False, server_default="lead"),
    )
    links = sa.Table(
        f"{tag}crm_people_accounts",
        md,
        sa.Column("person_id", sa.Integer, sa.ForeignKey(people.c.person_id), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey(accounts.c.account_id), primary_key=True),
    )
    users = sa.Table(
        f"{tag}crm_users",
        md,
        sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("full_name", sa.String(100), nullable=False),
        sa.Column("email_address", sa.String(254)),
    )
    return md, people, accounts, links, users


@asynccontextmanager
async def crm_schema(url: str, *, pre_existing: bool = True) -> AsyncIterator[CRM]:
    """Create the CRM's tables (with two users and, unless told not to, one person the adapter
    did not write), drop them after."""
    tag = f"t{uuid.uuid4().hex[:6]}_"
    md, people, accounts, links, users = define(tag)
    engine: AsyncEngine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(md.create_all)
            await conn.execute(
                sa.insert(users),
                [
                    {"user_id": 1, "full_name": "Ada Lovelace", "email_address": "ada@example.com"},
                    {"user_id": 2, "full_name": "Grace Hopper", "email_address": None},
                ],
            )
            if pre_existing:
                await conn.execute(
                    sa.insert(people).values(
                        given_name="Pre",
                        family_name="Existing",
                        mail="Pre.Existing@Acme.example",
                    )
                )
        yield CRM(url, tag, md, people, accounts, links, users)
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(md.drop_all)
        await engine.dispose()
        await engine.dispose()
