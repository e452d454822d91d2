"""Twenty on PostgreSQL: a workspace schema's ``person``, ``company``, ``note`` +
``noteTarget``, ``task`` + ``taskTarget`` and ``workspaceMember`` tables as Twenty creates
them, seeded as Twenty writes, and the queries its record pages run.

Source: twentyhq/twenty (the 1.x line, decorator-based standard objects; stored copies):

* ``packages/twenty-server/src/modules/person/standard-objects/person.workspace-entity.ts``
  (name FULL_NAME nullable, emails EMAILS unique + nullable, linkedinLink/xLink LINKS,
  jobTitle/city/avatarUrl TEXT nullable, the deprecated ``phone`` TEXT, phones PHONES,
  position POSITION ``defaultValue: 0`` not nullable, createdBy/updatedBy ACTOR, company
  MANY_TO_ONE with join column ``companyId`` ``ON DELETE SET NULL``, searchVector TS_VECTOR
  generated); ``company/standard-objects/company.workspace-entity.ts`` (name, domainName
  LINKS unique, employees NUMBER, linkedinLink, xLink, annualRecurringRevenue CURRENCY,
  address ADDRESS, idealCustomerProfile BOOLEAN ``defaultValue: false``, position,
  accountOwner → workspaceMember, the deprecated ``addressOld``); ``task/standard-objects/
  task.workspace-entity.ts`` (title, bodyV2 RICH_TEXT_V2, dueAt, status SELECT
  TODO/IN_PROGRESS/DONE default ``'TODO'``, assignee → workspaceMember); ``note`` and the
  ``noteTarget``/``taskTarget`` link objects (one nullable join column per target object);
* ``BaseWorkspaceEntity``: ``id`` uuid default ``public.uuid_generate_v4()``,
  ``createdAt``/``updatedAt`` timestamptz ``NOT NULL DEFAULT now()``, ``deletedAt``
  timestamptz (soft delete);
* composite columns: ``twenty-shared/src/types/composite-types/*.composite-type.ts`` and
  ``workspace-migration/factories/composite-column-action.factory.ts``: one quoted camelCase
  column per property (``"nameFirstName"``, ``"emailsPrimaryEmail"``,
  ``"linkedinLinkPrimaryLinkUrl"``...), nullable when the field is nullable or the
  property is not required; defaults from ``generateDefaultValue``: text properties
  ``''``, ACTOR ``source 'MANUAL'`` / ``name 'System'``; SELECT → a Postgres enum type
  ``"<table>_<column>_enum"`` (ACTOR sources ``EMAIL, CALENDAR, WORKFLOW, API, IMPORT,
  MANUAL, SYSTEM`` as in ``actor.composite-type.ts`` of that line); POSITION and NUMBER →
  ``double precision``.

Not reproduced: the unique indexes Twenty adds for ``emails``/``domainName`` (their WHERE
clause changed between releases), and the exact ``searchVector`` expression (Twenty's calls
its own ``unaccent_immutable`` function; here it is a plain ``to_tsvector('simple', ...)``
over the same fields - what matters to an adapter is that the column is ``GENERATED`` and
cannot be written). ``workspaceMember`` keeps the columns the member picker reads plus its
``NOT NULL`` ones.
"""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ._shared import (
    POSTGRES_URL,
    CompanyDetail,
    ContactDetail,
    Email,
    ListedCompany,
    ListedContact,
    ListedUser,
    OpenTask,
    Seed,
    TimelineEntry,
    fresh_database,
    rows,
)

__all__ = ["ACTOR_SOURCES", "TABLES", "Twenty", "database", "ddl"]

ACTOR_SOURCES = ("EMAIL", "CALENDAR", "WORKFLOW", "API", "IMPORT", "MANUAL", "SYSTEM")

TABLES: tuple[str, ...] = (
    "workspaceMember",
    "company",
    "person",
    "note",
    "noteTarget",
    "task",
    "taskTarget",
)


def _text(name: str, *, nullable: bool = True) -> str:
    return f"\"{name}\" text DEFAULT ''::text" + ("" if nullable else " NOT NULL")


def _links(field: str) -> str:
    return ", ".join(
        (
            _text(f"{field}PrimaryLinkLabel"),
            _text(f"{field}PrimaryLinkUrl"),
            f'"{field}SecondaryLinks" jsonb',
        )
    )


def _actor(schema: str, table: str, field: str) -> str:
    enum = f'"{schema}"."{table}_{field}Source_enum"'
    return (
        f"\"{field}Source\" {enum} DEFAULT 'MANUAL'::{enum} NOT NULL, "
        f'"{field}WorkspaceMemberId" uuid, '
        f"\"{field}Name\" text DEFAULT 'System'::text NOT NULL, "
        f'"{field}Context" jsonb'
    )


_BASE = (
    '"createdAt" timestamp with time zone DEFAULT now() NOT NULL, '
    '"updatedAt" timestamp with time zone DEFAULT now() NOT NULL, '
    '"deletedAt" timestamp with time zone'
)
_ID = "id uuid DEFAULT public.uuid_generate_v4() NOT NULL PRIMARY KEY"


def ddl(schema: str) -> tuple[str, ...]:
    """The statements that build a workspace schema named ``schema``."""
    s = f'"{schema}"'
    enums = [
        f'CREATE TYPE {s}."{table}_{field}Source_enum" AS ENUM '
        f"({', '.join(repr(v) for v in ACTOR_SOURCES)})"
        for table in ("person", "company", "note", "task")
        for field in ("createdBy", "updatedBy")
    ]
    return (
        'CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA public',
        f"CREATE SCHEMA {s}",
        *enums,
        f"CREATE TYPE {s}.\"task_status_enum\" AS ENUM ('TODO', 'IN_PROGRESS', 'DONE')",
        f"""CREATE TABLE {s}."workspaceMember" (
  {_ID}, {_text("nameFirstName")}, {_text("nameLastName")},
  "colorScheme" text DEFAULT 'System'::text NOT NULL,
  "locale" text DEFAULT 'en'::text NOT NULL, {_text("avatarUrl")},
  {_text("userEmail")}, "userId" uuid NOT NULL, {_BASE}
)""",
        f"""CREATE TABLE {s}."company" (
  {_ID}, {_text("name")}, {_links("domainName")}, "employees" double precision,
  {_links("linkedinLink")}, {_links("xLink")},
  "annualRecurringRevenueAmountMicros" numeric,
  {_text("annualRecurringRevenueCurrencyCode")},
  {_text("addressAddressStreet1")}, {_text("addressAddressStreet2")},
  {_text("addressAddressCity")}, {_text("addressAddressState")},
  {_text("addressAddressCountry")}, {_text("addressAddressPostcode")},
  "addressAddressLat" numeric, "addressAddressLng" numeric,
  "idealCustomerProfile" boolean DEFAULT false NOT NULL,
  "position" double precision DEFAULT 0 NOT NULL,
  {_actor(schema, "company", "createdBy")}, {_actor(schema, "company", "updatedBy")},
  "accountOwnerId" uuid, {_text("addressOld")},
  "searchVector" tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig,
      COALESCE("name", '') || ' ' || COALESCE("domainNamePrimaryLinkUrl", ''))) STORED,
  {_BASE},
  CONSTRAINT "FK_company_accountOwnerId" FOREIGN KEY ("accountOwnerId")
    REFERENCES {s}."workspaceMember"(id) ON DELETE SET NULL
)""",
        f"""CREATE TABLE {s}."person" (
  {_ID}, {_text("nameFirstName")}, {_text("nameLastName")},
  {_text("emailsPrimaryEmail")}, "emailsAdditionalEmails" jsonb,
  {_links("linkedinLink")}, {_links("xLink")}, {_text("jobTitle")}, {_text("phone")},
  {_text("phonesPrimaryPhoneNumber")}, {_text("phonesPrimaryPhoneCountryCode")},
  {_text("phonesPrimaryPhoneCallingCode")}, "phonesAdditionalPhones" jsonb,
  {_text("city")}, {_text("avatarUrl")},
  "position" double precision DEFAULT 0 NOT NULL,
  {_actor(schema, "person", "createdBy")}, {_actor(schema, "person", "updatedBy")},
  "companyId" uuid,
  "searchVector" tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig,
      COALESCE("nameFirstName", '') || ' ' || COALESCE("nameLastName", '') || ' ' ||
      COALESCE("emailsPrimaryEmail", '') || ' ' || COALESCE("phonesPrimaryPhoneNumber", '')
      || ' ' || COALESCE("jobTitle", ''))) STORED,
  {_BASE},
  CONSTRAINT "FK_person_companyId" FOREIGN KEY ("companyId")
    REFERENCES {s}."company"(id) ON DELETE SET NULL
)""",
        f"""CREATE TABLE {s}."note" (
  {_ID}, "position" double precision DEFAULT 0 NOT NULL, {_text("title")},
  "bodyV2Blocknote" text, "bodyV2Markdown" text,
  {_actor(schema, "note", "createdBy")}, {_actor(schema, "note", "updatedBy")},
  "searchVector" tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig,
      COALESCE("title", '') || ' ' || COALESCE("bodyV2Markdown", ''))) STORED,
  {_BASE}
)""",
        f"""CREATE TABLE {s}."noteTarget" (
  {_ID}, "noteId" uuid, "personId" uuid, "companyId" uuid, "opportunityId" uuid, {_BASE},
  CONSTRAINT "FK_noteTarget_noteId" FOREIGN KEY ("noteId")
    REFERENCES {s}."note"(id) ON DELETE CASCADE,
  CONSTRAINT "FK_noteTarget_personId" FOREIGN KEY ("personId")
    REFERENCES {s}."person"(id) ON DELETE CASCADE,
  CONSTRAINT "FK_noteTarget_companyId" FOREIGN KEY ("companyId")
    REFERENCES {s}."company"(id) ON DELETE CASCADE
)""",
        f"""CREATE TABLE {s}."task" (
  {_ID}, "position" double precision DEFAULT 0 NOT NULL, {_text("title")},
  "bodyV2Blocknote" text, "bodyV2Markdown" text, "dueAt" timestamp with time zone,
  "status" {s}."task_status_enum" DEFAULT 'TODO'::{s}."task_status_enum",
  {_actor(schema, "task", "createdBy")}, {_actor(schema, "task", "updatedBy")},
  "assigneeId" uuid,
  "searchVector" tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig,
      COALESCE("title", '') || ' ' || COALESCE("bodyV2Markdown", ''))) STORED,
  {_BASE},
  CONSTRAINT "FK_task_assigneeId" FOREIGN KEY ("assigneeId")
    REFERENCES {s}."workspaceMember"(id) ON DELETE SET NULL
)""",
        f"""CREATE TABLE {s}."taskTarget" (
  {_ID}, "taskId" uuid, "personId" uuid, "companyId" uuid, "opportunityId" uuid, {_BASE},
  CONSTRAINT "FK_taskTarget_taskId" FOREIGN KEY ("taskId")
    REFERENCES {s}."task"(id) ON DELETE CASCADE,
  CONSTRAINT "FK_taskTarget_personId" FOREIGN KEY ("personId")
    REFERENCES {s}."person"(id) ON DELETE CASCADE,
  CONSTRAINT "FK_taskTarget_companyId" FOREIGN KEY ("companyId")
    REFERENCES {s}."company"(id) ON DELETE CASCADE
)""",
        f'CREATE INDEX "IDX_person_companyId" ON {s}."person" ("companyId")',
        f'CREATE INDEX "IDX_person_searchVector" ON {s}."person" USING gin ("searchVector")',
        f'CREATE INDEX "IDX_company_searchVector" ON {s}."company" USING gin ("searchVector")',
        f'CREATE INDEX "IDX_noteTarget_personId" ON {s}."noteTarget" ("personId")',
        f'CREATE INDEX "IDX_noteTarget_noteId" ON {s}."noteTarget" ("noteId")',
        f'CREATE INDEX "IDX_taskTarget_personId" ON {s}."taskTarget" ("personId")',
        f'CREATE INDEX "IDX_taskTarget_taskId" ON {s}."taskTarget" ("taskId")',
    )


def workspace_schema_name() -> str:
    """``workspace_`` + 25 base-36 characters, the shape of Twenty's schema names."""
    return "workspace_" + "".join(random.choices(string.ascii_lowercase + string.digits, k=25))


@dataclass
class Twenty:
    """A live Twenty workspace database (see the module docstring) and its screens."""

    url: str
    engine: AsyncEngine
    seed: Seed
    #: the workspace's schema: every table name must be qualified with it
    schema: str
    key: str = "twenty"

    def table(self, name: str) -> str:
        """``"<schema>"."<name>"``, as Twenty's queries name a workspace table."""
        return f'"{self.schema}"."{name}"'

    async def contacts(self) -> list[ListedContact]:
        """The People index view: the workspace ORM's default ``"deletedAt" IS NULL``; name
        from ``nameFirstName``/``nameLastName``, Emails column ``emailsPrimaryEmail``, Company
        through ``companyId`` (a deleted company shows empty); ordered by ``position``."""
        found = await rows(
            self.engine,
            f"""SELECT p.id, p."nameFirstName", p."nameLastName", p."emailsPrimaryEmail",
                       c.name AS company
                FROM {self.table("person")} p
                LEFT JOIN {self.table("company")} c ON c.id = p."companyId"
                     AND c."deletedAt" IS NULL
                WHERE p."deletedAt" IS NULL
                ORDER BY p.position, p.id""",
        )
        return [
            ListedContact(
                id=str(r["id"]),
                name=_full_name(r["nameFirstName"], r["nameLastName"]),
                email=r["emailsPrimaryEmail"] or None,
                company=r["company"],
            )
            for r in found
        ]

    async def contact(self, contact_id: str) -> ContactDetail | None:
        """A person's record page (not soft-deleted): the Emails field shows
        ``emailsPrimaryEmail`` then ``emailsAdditionalEmails``."""
        found = await rows(
            self.engine,
            f"""SELECT p.*, c.name AS company FROM {self.table("person")} p
                LEFT JOIN {self.table("company")} c ON c.id = p."companyId"
                     AND c."deletedAt" IS NULL
                WHERE p.id = :id AND p."deletedAt" IS NULL""",
            id=uuid.UUID(contact_id),
        )
        if not found:
            return None
        p = found[0]
        emails = [Email(p["emailsPrimaryEmail"], True)] if p["emailsPrimaryEmail"] else []
        emails += [Email(e, False) for e in p["emailsAdditionalEmails"] or []]
        return ContactDetail(
            id=str(p["id"]),
            first_name=p["nameFirstName"] or None,
            last_name=p["nameLastName"] or None,
            name=_full_name(p["nameFirstName"], p["nameLastName"]),
            title=p["jobTitle"] or None,
            emails=tuple(emails),
            company_id=str(p["companyId"]) if p["company"] else None,
            company=p["company"],
            extra={
                "linkedinLinkPrimaryLinkUrl": p["linkedinLinkPrimaryLinkUrl"],
                "createdBySource": p["createdBySource"],
                "position": p["position"],
            },
        )

    async def companies(self) -> list[ListedCompany]:
        """The Companies index view: ``"deletedAt" IS NULL``, the Domain column is
        ``domainNamePrimaryLinkUrl``."""
        found = await rows(
            self.engine,
            f"""SELECT id, name, "domainNamePrimaryLinkUrl" FROM {self.table("company")}
                WHERE "deletedAt" IS NULL ORDER BY position, id""",
        )
        return [
            ListedCompany(
                id=str(r["id"]), name=r["name"], website=r["domainNamePrimaryLinkUrl"] or None
            )
            for r in found
        ]

    async def company(self, company_id: str) -> CompanyDetail | None:
        """A company's record page and its People relation (``person.companyId``, people not
        soft-deleted)."""
        async with self.engine.connect() as conn:
            found = await rows(
                conn,
                f"""SELECT * FROM {self.table("company")}
                    WHERE id = :id AND "deletedAt" IS NULL""",
                id=uuid.UUID(company_id),
            )
            if not found:
                return None
            people = await rows(
                conn,
                f"""SELECT id FROM {self.table("person")}
                    WHERE "companyId" = :id AND "deletedAt" IS NULL ORDER BY position, id""",
                id=uuid.UUID(company_id),
            )
        c = found[0]
        return CompanyDetail(
            id=str(c["id"]),
            name=c["name"],
            website=c["domainNamePrimaryLinkUrl"] or None,
            contact_ids=tuple(str(p["id"]) for p in people),
            extra={"employees": c["employees"], "idealCustomerProfile": c["idealCustomerProfile"]},
        )

    async def timeline(self, contact_id: str) -> list[TimelineEntry]:
        """The person's Notes tab: notes reached through ``noteTarget."personId"`` (link and
        note not soft-deleted), newest first."""
        found = await rows(
            self.engine,
            f"""SELECT n.id, n.title, n."bodyV2Markdown", n."createdAt"
                FROM {self.table("noteTarget")} nt
                JOIN {self.table("note")} n ON n.id = nt."noteId" AND n."deletedAt" IS NULL
                WHERE nt."personId" = :id AND nt."deletedAt" IS NULL
                ORDER BY n."createdAt" DESC""",
            id=uuid.UUID(contact_id),
        )
        return [
            TimelineEntry(
                id=str(r["id"]),
                kind="note",
                subject=r["title"] or None,
                body=r["bodyV2Markdown"],
                at=r["createdAt"],
            )
            for r in found
        ]

    async def open_tasks(self, contact_id: str) -> list[OpenTask]:
        """The person's Tasks tab, *To do* group: tasks reached through
        ``taskTarget."personId"`` whose status is not ``DONE``, not soft-deleted."""
        found = await rows(
            self.engine,
            f"""SELECT t.id, t.title, t.status, t."dueAt", t."assigneeId"
                FROM {self.table("taskTarget")} tt
                JOIN {self.table("task")} t ON t.id = tt."taskId" AND t."deletedAt" IS NULL
                WHERE tt."personId" = :id AND tt."deletedAt" IS NULL
                  AND (t.status IS NULL OR t.status != 'DONE')
                ORDER BY t."dueAt" NULLS LAST, t.position""",
            id=uuid.UUID(contact_id),
        )
        return [
            OpenTask(
                id=str(r["id"]),
                title=r["title"] or None,
                status=r["status"],
                due=r["dueAt"],
                assignee_id=str(r["assigneeId"]) if r["assigneeId"] else None,
            )
            for r in found
        ]

    async def users(self) -> list[ListedUser]:
        """The workspace-member picker (Assignee, Account Owner): members not soft-deleted."""
        found = await rows(
            self.engine,
            f"""SELECT id, "nameFirstName", "nameLastName", "userEmail"
                FROM {self.table("workspaceMember")} WHERE "deletedAt" IS NULL
                ORDER BY "nameFirstName", "nameLastName" """,
        )
        return [
            ListedUser(
                id=str(r["id"]),
                name=_full_name(r["nameFirstName"], r["nameLastName"]),
                email=r["userEmail"] or None,
            )
            for r in found
        ]


def _full_name(first: str | None, last: str | None) -> str:
    return " ".join(part for part in (first, last) if part)


async def _insert(
    conn: AsyncConnection, schema: str, table: str, values: dict[str, object]
) -> uuid.UUID:
    columns = ", ".join(f'"{c}"' for c in values)
    params = ", ".join(f":{c}" for c in values)
    result = await conn.execute(
        sa.text(f'INSERT INTO "{schema}"."{table}" ({columns}) VALUES ({params}) RETURNING id'),
        values,
    )
    value = result.scalar_one()
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def _seed(conn: AsyncConnection, schema: str) -> Seed:
    created = datetime.now(UTC) - timedelta(days=30)
    member = await _insert(
        conn, schema, "workspaceMember",
        {"nameFirstName": "Tim", "nameLastName": "Apple", "userEmail": "tim@crm.example",
         "userId": uuid.uuid4(), "createdAt": created, "updatedAt": created},
    )  # fmt: skip
    # Records created in the app carry the member as their actor.
    actor = {"createdBySource": "MANUAL", "createdByWorkspaceMemberId": member,
             "createdByName": "Tim Apple", "updatedBySource": "MANUAL",
             "updatedByWorkspaceMemberId": member, "updatedByName": "Tim Apple",
             "createdAt": created, "updatedAt": created}  # fmt: skip
    acme = await _insert(
        conn, schema, "company",
        {"name": "Acme Corporation", "domainNamePrimaryLinkUrl": "https://acme.example",
         "employees": 150.0, "position": 1.0, "accountOwnerId": member, **actor},
    )  # fmt: skip
    globex = await _insert(
        conn, schema, "company",
        {"name": "Globex", "domainNamePrimaryLinkUrl": "https://www.globex.example",
         "position": 2.0, **actor},
    )  # fmt: skip
    jane = await _insert(
        conn, schema, "person",
        {"nameFirstName": "Jane", "nameLastName": "Doe",
         "emailsPrimaryEmail": "jane.doe@acme.example",
         "emailsAdditionalEmails": '["jane@home.example"]',
         "linkedinLinkPrimaryLinkUrl": "https://www.linkedin.com/in/jane-doe",
         "jobTitle": "Head of Sales", "position": 1.0, "companyId": acme, **actor},
    )  # fmt: skip
    old = await _insert(
        conn, schema, "person",
        {"nameFirstName": "Oliver", "nameLastName": "Gone",
         "emailsPrimaryEmail": "oliver.gone@acme.example", "position": 2.0,
         "companyId": acme, "deletedAt": created + timedelta(days=10), **actor},
    )  # fmt: skip
    await _insert(
        conn, schema, "person",
        {"nameFirstName": "John", "nameLastName": "Smith",
         "emailsPrimaryEmail": "John.Smith@Globex.Example", "position": 3.0,
         "companyId": globex, **actor},
    )  # fmt: skip
    note = await _insert(
        conn, schema, "note",
        {"title": "Intro call", "bodyV2Markdown": "Talked about the Q3 roll-out.",
         "bodyV2Blocknote": '[{"type":"paragraph","content":[{"type":"text",'
                            '"text":"Talked about the Q3 roll-out."}]}]',
         "position": 1.0, **actor},
    )  # fmt: skip
    await _insert(conn, schema, "noteTarget", {"noteId": note, "personId": jane})
    for title, status, due in (
        ("Send the proposal", "TODO", timedelta(days=33)),
        ("Book the demo", "DONE", timedelta(days=29)),
    ):
        task = await _insert(
            conn, schema, "task",
            {"title": title, "status": status, "dueAt": created + due,
             "assigneeId": member, "position": 1.0, **actor},
        )  # fmt: skip
        await _insert(conn, schema, "taskTarget", {"taskId": task, "personId": jane})
    return Seed(
        contact_id=str(jane),
        contact_email="jane.doe@acme.example",
        deleted_contact_id=str(old),
        deleted_contact_email="oliver.gone@acme.example",
        company_id=str(acme),
        company_name="Acme Corporation",
        company_website="https://acme.example",
        company_domain="acme.example",
        other_company_id=str(globex),
        user_id=str(member),
    )


@asynccontextmanager
async def database(server_url: str = POSTGRES_URL) -> AsyncIterator[Twenty]:
    """A fresh Twenty workspace database on ``server_url``'s PostgreSQL server, seeded;
    dropped after.

    Seed: member *Tim Apple*; companies *Acme Corporation* (``domainNamePrimaryLinkUrl``
    ``https://acme.example``, as the app stores a domain) and *Globex*; people *Jane Doe*
    (primary ``jane.doe@acme.example`` plus one in ``emailsAdditionalEmails``, a LinkedIn URL,
    ``companyId`` Acme), *Oliver Gone* (soft-deleted: ``deletedAt`` set) and *John Smith*
    (``John.Smith@Globex.Example``); a note and two tasks (one DONE) targeting Jane.
    """
    schema = workspace_schema_name()
    async with fresh_database(server_url, "twenty", ddl(schema)) as (url, engine):
        async with engine.begin() as conn:
            seed = await _seed(conn, schema)
        yield Twenty(url=url, engine=engine, seed=seed, schema=schema)
