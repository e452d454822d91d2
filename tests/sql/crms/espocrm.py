"""EspoCRM on MariaDB: contact, account, their link table, e-mail addresses, the Stream's notes,
tasks and users as EspoCRM creates them, seeded as EspoCRM writes, and its screens' queries.

Source: espocrm/espocrm, tag ``9.3.10`` (the latest release in the stored snapshot):

* fields: ``application/Espo/Modules/Crm/Resources/metadata/entityDefs/{Contact,Account,
  Task}.json`` and ``application/Espo/Resources/metadata/entityDefs/{User,Note,
  EmailAddress}.json``; sub-fields from the field types in
  ``application/Espo/Resources/metadata/fields/*.json`` (``personName`` adds
  ``middleName``, ``address`` gives city/state/country ``varchar(100)`` and postal code
  ``varchar(40)``, ``email``/``phone`` are not stored on the entity), merged by
  ``Core/Utils/Metadata/AdditionalBuilder/Fields.php``;
* attributes → columns: ``Core/Utils/Database/Orm/Converter.php`` (``id`` first, then
  ``deleted``; varchar defaults to 255; bool gets ``DEFAULT 0``), ``FieldConverters/Link.php``
  (``<link>_id``), ``FieldConverters/Email.php`` (the ``entity_email_address`` link with
  ``entity_type varchar(100)`` and ``primary``), ``LinkConverters/ManyMany.php`` and
  ``Converter::createEntityTypesFromRelations`` / ``Schema/Builder::buildManyMany`` (link
  tables: ``id BIGINT AUTO_INCREMENT``, both ids, additional columns, ``deleted``, a unique
  key on the id pair), ``Metadata/AdditionalBuilder/DeleteIdField.php`` (``user.delete_id``);
* ids: ``Core/Utils/Database/MetadataProvider.php`` (``DEFAULT_ID_LENGTH = 24``: id columns
  are ``VARCHAR(24)``) while ``Core/Utils/Id/DefaultRecordIdGenerator.php`` /
  ``Util::generateId()`` (``uniqid()`` + 4 hex digits) makes **17-character** ids;
* column types and collation: ``Schema/ColumnPreparators/MysqlColumnPreparator.php`` (every
  string column ``CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci``, text →
  ``MEDIUMTEXT``, bool ``NOT NULL`` when the field type says so (``fields/bool.json``:
  ``notNull``), ``deleted`` and link-table booleans nullable); table options from Doctrine DBAL
  3.10 (``composer.lock``), ``AbstractMySQLPlatform::buildTableOptions``: ``DEFAULT CHARACTER
  SET utf8 COLLATE utf8_unicode_ci ENGINE = InnoDB`` (MariaDB reports utf8mb3) - so the
  *columns* collate as utf8mb4_unicode_ci whatever the table default says.

Writes as Espo makes them: ``Hooks/Contact/Accounts.php`` keeps ``contact.account_id`` and an
``account_contact`` row (``role`` = the contact's title) together;
``Hooks/Task/ParentLink.php`` fills ``task.contact_id``/``account_id`` from the parent; the url
field with ``strip`` (``Account.website``) is saved without scheme or trailing slash
(``client/src/views/fields/url.js``); a soft delete only sets ``deleted = 1`` (link rows
stay, so an email still points at a deleted contact).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ._shared import (
    MYSQL_URL,
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

__all__ = ["DDL", "NOT_ACTUAL_TASK_STATUSES", "TABLES", "EspoCRM", "database", "espo_id"]

_COLLATE = "CHARACTER SET utf8mb4 {null} COLLATE `utf8mb4_unicode_ci`"
_TABLE_OPTIONS = "DEFAULT CHARACTER SET utf8 COLLATE `utf8_unicode_ci` ENGINE = InnoDB"


def _str(name: str, length: int, *, not_null: bool = False, default: str | None = None) -> str:
    """A string column as DBAL declares it with Espo's platform options."""
    null = "NOT NULL" if not_null else "DEFAULT NULL"
    if default is not None:
        null = f"DEFAULT '{default}'" + (" NOT NULL" if not_null else "")
    return f"`{name}` VARCHAR({length}) " + _COLLATE.format(null=null)


def _text(name: str) -> str:
    return f"`{name}` MEDIUMTEXT " + _COLLATE.format(null="DEFAULT NULL")


def _id(name: str, *, primary: bool = False) -> str:
    return _str(name, 24, not_null=primary)


def _bool(name: str, *, not_null: bool, default: int = 0) -> str:
    return f"`{name}` TINYINT(1) DEFAULT {default}" + (" NOT NULL" if not_null else "")


def _dt(name: str, kind: str = "DATETIME") -> str:
    return f"`{name}` {kind} DEFAULT NULL"


def _table(name: str, *parts: str) -> str:
    return f"CREATE TABLE `{name}` (\n  " + ",\n  ".join(parts) + f"\n) {_TABLE_OPTIONS}"


#: ``CREATE TABLE`` statements as Espo's schema builder and DBAL 3 emit them.
DDL: tuple[str, ...] = (
    _table(
        "user",
        _id("id", primary=True),
        _bool("deleted", not_null=False),
        _str("user_name", 50),
        _str("type", 24, default="regular"),
        _str("password", 150),
        _str("auth_method", 24),
        _str("api_key", 100),
        _str("salutation_name", 255),
        _str("first_name", 100),
        _str("last_name", 100),
        _bool("is_active", not_null=True, default=1),
        _str("title", 100),
        _str("avatar_color", 7),
        _str("gender", 255),
        _dt("created_at"),
        _dt("modified_at"),
        _str("middle_name", 100),
        _str("delete_id", 17, not_null=True, default="0"),
        _id("default_team_id"),
        _id("contact_id"),
        _id("avatar_id"),
        _id("created_by_id"),
        _id("dashboard_template_id"),
        _id("working_time_calendar_id"),
        _id("layout_set_id"),
        "PRIMARY KEY(`id`)",
        "INDEX `IDX_USER_NAME` (`user_name`)",
        "INDEX `IDX_TYPE` (`type`)",
        "UNIQUE INDEX `UNIQ_USER_NAME_DELETE_ID` (`user_name`, `delete_id`)",
        "INDEX `IDX_DEFAULT_TEAM_ID` (`default_team_id`)",
        "INDEX `IDX_CONTACT_ID` (`contact_id`)",
    ),
    _table(
        "account",
        _id("id", primary=True),
        _str("name", 249),
        _bool("deleted", not_null=False),
        _str("website", 255),
        _str("type", 255),
        _str("industry", 255),
        _str("sic_code", 40),
        _str("billing_address_street", 255),
        _str("billing_address_city", 100),
        _str("billing_address_state", 100),
        _str("billing_address_country", 100),
        _str("billing_address_postal_code", 40),
        _str("shipping_address_street", 255),
        _str("shipping_address_city", 100),
        _str("shipping_address_state", 100),
        _str("shipping_address_country", 100),
        _str("shipping_address_postal_code", 40),
        _text("description"),
        _dt("created_at"),
        _dt("modified_at"),
        _id("campaign_id"),
        _id("created_by_id"),
        _id("modified_by_id"),
        _id("assigned_user_id"),
        "PRIMARY KEY(`id`)",
        "INDEX `IDX_CREATED_AT` (`created_at`, `deleted`)",
        "UNIQUE INDEX `UNIQ_CREATED_AT_ID` (`created_at`, `id`)",
        "INDEX `IDX_NAME` (`name`, `deleted`)",
        "INDEX `IDX_ASSIGNED_USER` (`assigned_user_id`, `deleted`)",
        "INDEX `IDX_CAMPAIGN_ID` (`campaign_id`)",
    ),
    _table(
        "contact",
        _id("id", primary=True),
        _bool("deleted", not_null=False),
        _str("salutation_name", 255),
        _str("first_name", 100),
        _str("last_name", 100),
        _text("description"),
        _bool("do_not_call", not_null=True),
        _str("address_street", 255),
        _str("address_city", 100),
        _str("address_state", 100),
        _str("address_country", 100),
        _str("address_postal_code", 40),
        _dt("created_at"),
        _dt("modified_at"),
        _str("middle_name", 100),
        _id("account_id"),
        _id("campaign_id"),
        _id("created_by_id"),
        _id("modified_by_id"),
        _id("assigned_user_id"),
        "PRIMARY KEY(`id`)",
        "INDEX `IDX_CREATED_AT` (`created_at`, `deleted`)",
        "UNIQUE INDEX `UNIQ_CREATED_AT_ID` (`created_at`, `id`)",
        "INDEX `IDX_FIRST_NAME` (`first_name`, `deleted`)",
        "INDEX `IDX_NAME` (`first_name`, `last_name`)",
        "INDEX `IDX_ASSIGNED_USER` (`assigned_user_id`, `deleted`)",
        "INDEX `IDX_ACCOUNT_ID` (`account_id`)",
    ),
    _table(
        "account_contact",
        "`id` BIGINT AUTO_INCREMENT NOT NULL",
        _id("account_id"),
        _id("contact_id"),
        _str("role", 100),
        _bool("is_inactive", not_null=False),
        _bool("deleted", not_null=False),
        "PRIMARY KEY(`id`)",
        "INDEX `IDX_ACCOUNT_ID` (`account_id`)",
        "INDEX `IDX_CONTACT_ID` (`contact_id`)",
        "UNIQUE INDEX `UNIQ_ACCOUNT_ID_CONTACT_ID` (`account_id`, `contact_id`)",
    ),
    _table(
        "email_address",
        _id("id", primary=True),
        _str("name", 255),
        _bool("deleted", not_null=False),
        _str("lower", 255),
        _bool("invalid", not_null=True),
        _bool("opt_out", not_null=True),
        "PRIMARY KEY(`id`)",
        "INDEX `IDX_LOWER` (`lower`)",
    ),
    _table(
        "entity_email_address",
        "`id` BIGINT AUTO_INCREMENT NOT NULL",
        _id("entity_id"),
        _id("email_address_id"),
        _str("entity_type", 100),
        _bool("primary", not_null=False),
        _bool("deleted", not_null=False),
        "PRIMARY KEY(`id`)",
        "INDEX `IDX_ENTITY_ID` (`entity_id`)",
        "INDEX `IDX_EMAIL_ADDRESS_ID` (`email_address_id`)",
        "UNIQUE INDEX `UNIQ_ENTITY_ID_EMAIL_ADDRESS_ID_ENTITY_TYPE` "
        "(`entity_id`, `email_address_id`, `entity_type`)",
    ),
    _table(
        "note",
        _id("id", primary=True),
        _bool("deleted", not_null=False),
        _text("post"),
        _text("data"),
        _str("type", 24, default="Post"),
        _str("target_type", 7),
        "`number` BIGINT UNSIGNED AUTO_INCREMENT NOT NULL",
        _bool("is_global", not_null=True),
        _bool("is_internal", not_null=True),
        _bool("is_pinned", not_null=True),
        _dt("created_at"),
        _dt("modified_at"),
        _id("parent_id"),
        _str("parent_type", 100),
        _id("related_id"),
        _str("related_type", 100),
        _id("created_by_id"),
        _id("modified_by_id"),
        _id("super_parent_id"),
        _str("super_parent_type", 100),
        "PRIMARY KEY(`id`)",
        "UNIQUE INDEX `UNIQ_NUMBER` (`number`)",
        "INDEX `IDX_CREATED_AT` (`created_at`)",
        "INDEX `IDX_CREATED_BY_NUMBER` (`created_by_id`, `number`)",
        "INDEX `IDX_TYPE` (`type`)",
        "INDEX `IDX_TARGET_TYPE` (`target_type`)",
        "INDEX `IDX_PARENT_ID` (`parent_id`)",
        "INDEX `IDX_PARENT_TYPE` (`parent_type`)",
        "INDEX `IDX_RELATED_ID` (`related_id`)",
        "INDEX `IDX_RELATED_TYPE` (`related_type`)",
        "INDEX `IDX_SUPER_PARENT_TYPE` (`super_parent_type`)",
        "INDEX `IDX_SUPER_PARENT_ID` (`super_parent_id`)",
    ),
    _table(
        "task",
        _id("id", primary=True),
        _str("name", 255),
        _bool("deleted", not_null=False),
        _str("status", 255, default="Not Started"),
        _str("priority", 255, default="Normal"),
        _dt("date_start"),
        _dt("date_end"),
        _dt("date_start_date", "DATE"),
        _dt("date_end_date", "DATE"),
        _dt("date_completed"),
        _text("description"),
        _dt("created_at"),
        _dt("modified_at"),
        _id("parent_id"),
        _str("parent_type", 100),
        _id("account_id"),
        _id("contact_id"),
        _id("created_by_id"),
        _id("modified_by_id"),
        _id("assigned_user_id"),
        _id("email_id"),
        "PRIMARY KEY(`id`)",
        "INDEX `IDX_DATE_START_STATUS` (`date_start`, `status`)",
        "INDEX `IDX_DATE_END_STATUS` (`date_end`, `status`)",
        "INDEX `IDX_DATE_START` (`date_start`, `deleted`)",
        "INDEX `IDX_STATUS` (`status`, `deleted`)",
        "INDEX `IDX_ASSIGNED_USER` (`assigned_user_id`, `deleted`)",
        "INDEX `IDX_ASSIGNED_USER_STATUS` (`assigned_user_id`, `status`)",
        "INDEX `IDX_PARENT` (`parent_id`, `parent_type`)",
        "INDEX `IDX_CONTACT_ID` (`contact_id`)",
    ),
)

TABLES: tuple[str, ...] = (
    "user",
    "account",
    "contact",
    "account_contact",
    "email_address",
    "entity_email_address",
    "note",
    "task",
)

#: ``entityDefs/Task.json`` ``status.notActualOptions``: what the ``actual`` filter hides.
NOT_ACTUAL_TASK_STATUSES = ("Completed", "Canceled", "Deferred")


def espo_id() -> str:
    """A record id as ``Util::generateId()`` makes it: ``uniqid()`` (8 hex digits of seconds,
    5 of microseconds) followed by 4 hex digits of ``md5(rand())`` - 17 characters."""
    now = time.time()
    uniqid = f"{int(now):08x}{int((now % 1) * 1_000_000):05x}"
    return uniqid + hashlib.md5(str(random.random()).encode()).hexdigest()[:4]


def _now(offset: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + offset).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class EspoCRM:
    """A live EspoCRM database (see the module docstring) and its screens."""

    url: str
    engine: AsyncEngine
    seed: Seed
    key: str = "espocrm"

    async def contacts(self) -> list[ListedContact]:
        """Contacts list view (``collection.orderBy createdAt desc``): ``contact.deleted = 0``;
        the Email column is the ``emailAddress`` attribute's select
        (``FieldConverters/Email.php``: the ``emailAddresses`` relation joined with
        ``primary = 1``, i.e. ``entity_email_address.entity_type = 'Contact'``, link and
        address ``deleted = 0``); Account Name through ``contact.account_id``."""
        found = await rows(
            self.engine,
            """SELECT c.id, c.first_name, c.last_name, a.name AS account_name,
                      ea.name AS email
               FROM contact c
               LEFT JOIN account a ON a.id = c.account_id AND a.deleted = 0
               LEFT JOIN entity_email_address eea ON eea.entity_id = c.id
                    AND eea.entity_type = 'Contact' AND eea.`primary` = 1
                    AND eea.deleted = 0
               LEFT JOIN email_address ea ON ea.id = eea.email_address_id AND ea.deleted = 0
               WHERE c.deleted = 0
               ORDER BY c.created_at DESC, c.id""",
        )
        return [
            ListedContact(
                id=r["id"],
                name=_full_name(r["first_name"], r["last_name"]),
                email=r["email"],
                company=r["account_name"],
            )
            for r in found
        ]

    async def contact(self, contact_id: str) -> ContactDetail | None:
        """Contact detail view: ``deleted = 0``; ``emailAddressData`` (all addresses, primary
        first, links and addresses not deleted); ``title`` is not a column: it is the
        ``role`` of the ``account_contact`` row of the contact's ``account_id``
        (``Contact.json`` ``title.select``, join ``accountContactPrimary``)."""
        async with self.engine.connect() as conn:
            found = await rows(
                conn,
                """SELECT c.*, a.name AS account_name, ac.role
                   FROM contact c
                   LEFT JOIN account a ON a.id = c.account_id AND a.deleted = 0
                   LEFT JOIN account_contact ac ON ac.contact_id = c.id
                        AND ac.account_id = c.account_id AND ac.deleted = 0
                   WHERE c.id = :id AND c.deleted = 0""",
                id=contact_id,
            )
            if not found:
                return None
            emails = await self._emails(conn, contact_id, "Contact")
        contact = found[0]
        return ContactDetail(
            id=contact["id"],
            first_name=contact["first_name"],
            last_name=contact["last_name"],
            name=_full_name(contact["first_name"], contact["last_name"]),
            title=contact["role"],
            emails=emails,
            company_id=contact["account_id"] if contact["account_name"] else None,
            company=contact["account_name"],
            extra={"do_not_call": contact["do_not_call"]},
        )

    async def companies(self) -> list[ListedCompany]:
        """Accounts list view: ``account.deleted = 0``, newest first."""
        found = await rows(
            self.engine,
            "SELECT id, name, website FROM account WHERE deleted = 0 ORDER BY created_at DESC, id",
        )
        return [ListedCompany(id=r["id"], name=r["name"], website=r["website"]) for r in found]

    async def company(self, company_id: str) -> CompanyDetail | None:
        """Account detail view and its Contacts panel: the ``contacts`` many-to-many relation
        (``account_contact.deleted = 0``, contact ``deleted = 0``)."""
        async with self.engine.connect() as conn:
            found = await rows(
                conn,
                "SELECT * FROM account WHERE id = :id AND deleted = 0",
                id=company_id,
            )
            if not found:
                return None
            people = await rows(
                conn,
                """SELECT c.id FROM account_contact ac
                   JOIN contact c ON c.id = ac.contact_id AND c.deleted = 0
                   WHERE ac.account_id = :id AND ac.deleted = 0
                   ORDER BY c.created_at DESC""",
                id=company_id,
            )
        account = found[0]
        return CompanyDetail(
            id=account["id"],
            name=account["name"],
            website=account["website"],
            contact_ids=tuple(p["id"] for p in people),
            extra={"industry": account["industry"], "type": account["type"]},
        )

    async def timeline(self, contact_id: str) -> list[TimelineEntry]:
        """The contact's Stream panel: ``Tools/Stream/RecordService::prepareSelectBuilder``
        (notes whose ``parent_type``/``parent_id`` or ``super_parent_type``/
        ``super_parent_id`` is the contact), ``deleted = 0``, newest ``number`` first."""
        found = await rows(
            self.engine,
            """SELECT id, type, post, data, created_at FROM note
               WHERE ((parent_type = 'Contact' AND parent_id = :id)
                      OR (super_parent_type = 'Contact' AND super_parent_id = :id))
                 AND deleted = 0
               ORDER BY number DESC""",
            id=contact_id,
        )
        return [
            TimelineEntry(
                id=r["id"], kind=r["type"], subject=None, body=r["post"], at=r["created_at"]
            )
            for r in found
        ]

    async def open_tasks(self, contact_id: str) -> list[OpenTask]:
        """The contact's Tasks side panel (``client/modules/crm/src/views/record/panels/
        tasks.js``: link ``tasks``, i.e. ``parent_type = 'Contact'``) under its ``actual``
        filter (``Classes/Select/Task/PrimaryFilters/Actual.php``: status not in
        ``notActualOptions``), ``deleted = 0``."""
        found = await rows(
            self.engine,
            """SELECT id, name, status, date_end, assigned_user_id FROM task
               WHERE parent_type = 'Contact' AND parent_id = :id AND deleted = 0
                 AND status NOT IN ('Completed', 'Canceled', 'Deferred')
               ORDER BY created_at DESC""",
            id=contact_id,
        )
        return [
            OpenTask(
                id=r["id"],
                title=r["name"],
                status=r["status"],
                due=r["date_end"],
                assignee_id=r["assigned_user_id"],
            )
            for r in found
        ]

    async def users(self) -> list[ListedUser]:
        """The Assigned User select: primary filter ``active``
        (``Classes/Select/User/PrimaryFilters/Active.php``: ``is_active`` and type regular or
        admin), ``deleted = 0``; the user's primary address as for contacts."""
        found = await rows(
            self.engine,
            """SELECT u.id, u.first_name, u.last_name, u.user_name, ea.name AS email
               FROM user u
               LEFT JOIN entity_email_address eea ON eea.entity_id = u.id
                    AND eea.entity_type = 'User' AND eea.`primary` = 1 AND eea.deleted = 0
               LEFT JOIN email_address ea ON ea.id = eea.email_address_id AND ea.deleted = 0
               WHERE u.deleted = 0 AND u.is_active = 1 AND u.type IN ('regular', 'admin')
               ORDER BY u.user_name""",
        )
        return [
            ListedUser(
                id=r["id"],
                name=_full_name(r["first_name"], r["last_name"]) or r["user_name"],
                email=r["email"],
            )
            for r in found
        ]

    async def find_by_email(self, address: str, entity_type: str = "Contact") -> list[str]:
        """The duplicate check / email search: ``email_address.lower`` equal to the lower-cased
        address, linked to a not-deleted record of ``entity_type``."""
        table = {"Contact": "contact", "Account": "account", "User": "user"}[entity_type]
        found = await rows(
            self.engine,
            f"""SELECT r.id FROM email_address ea
                JOIN entity_email_address eea ON eea.email_address_id = ea.id
                     AND eea.entity_type = :type AND eea.deleted = 0
                JOIN `{table}` r ON r.id = eea.entity_id AND r.deleted = 0
                WHERE ea.lower = :lower AND ea.deleted = 0""",
            type=entity_type,
            lower=address.strip().lower(),
        )
        return [r["id"] for r in found]

    async def _emails(
        self, conn: AsyncConnection, entity_id: str, entity_type: str
    ) -> tuple[Email, ...]:
        found = await rows(
            conn,
            """SELECT ea.name, eea.`primary` FROM entity_email_address eea
               JOIN email_address ea ON ea.id = eea.email_address_id AND ea.deleted = 0
               WHERE eea.entity_id = :id AND eea.entity_type = :type AND eea.deleted = 0
               ORDER BY eea.`primary` DESC, ea.name""",
            id=entity_id,
            type=entity_type,
        )
        return tuple(Email(r["name"], bool(r["primary"])) for r in found)


def _full_name(first: str | None, last: str | None) -> str:
    """``personName`` with the default ``personNameFormat`` (first, space, last)."""
    return " ".join(part for part in (first, last) if part)


async def _add_email(
    conn: AsyncConnection, entity_id: str, entity_type: str, address: str, *, primary: bool
) -> None:
    """What saving ``emailAddressData`` writes: an ``email_address`` row (``lower`` = the
    lower-cased address) and an ``entity_email_address`` link."""
    address_id = espo_id()
    await conn.execute(
        sa.text(
            """INSERT INTO email_address (id, name, deleted, `lower`, invalid, opt_out)
               VALUES (:id, :name, 0, :lower, 0, 0)"""
        ),
        {"id": address_id, "name": address, "lower": address.lower()},
    )
    await conn.execute(
        sa.text(
            """INSERT INTO entity_email_address (entity_id, email_address_id, entity_type,
                   `primary`, deleted)
               VALUES (:entity, :address, :type, :primary, 0)"""
        ),
        {"entity": entity_id, "address": address_id, "type": entity_type,
         "primary": int(primary)},
    )  # fmt: skip


async def _seed(conn: AsyncConnection) -> Seed:
    created = _now(timedelta(days=-30))
    admin, will = espo_id(), espo_id()
    for user in (
        {"id": admin, "user_name": "admin", "type": "admin", "first": None,
         "last": "Admin", "email": "admin@crm.example"},
        {"id": will, "user_name": "will", "type": "regular", "first": "Will",
         "last": "Westin", "email": "will@crm.example"},
    ):  # fmt: skip
        await conn.execute(
            sa.text(
                """INSERT INTO user (id, deleted, user_name, type, password, first_name,
                       last_name, is_active, created_at, modified_at, delete_id)
                   VALUES (:id, 0, :user_name, :type, 'hash', :first, :last, 1, :now, :now,
                       '0')"""
            ),
            {**user, "now": created},
        )
        await _add_email(conn, user["id"], "User", user["email"], primary=True)

    acme, globex = espo_id(), espo_id()
    for account in (
        {"id": acme, "name": "Acme Corporation", "website": "www.acme.example",
         "industry": "Manufacturing", "type": "Customer"},
        {"id": globex, "name": "Globex", "website": "globex.example",
         "industry": "Energy", "type": "Partner"},
    ):  # fmt: skip
        await conn.execute(
            sa.text(
                """INSERT INTO account (id, name, deleted, website, type, industry,
                       created_at, modified_at, created_by_id, modified_by_id,
                       assigned_user_id)
                   VALUES (:id, :name, 0, :website, :type, :industry, :now, :now, :admin,
                       :admin, :owner)"""
            ),
            {**account, "now": created, "admin": admin, "owner": will},
        )

    jane, old, john = espo_id(), espo_id(), espo_id()
    for person, account_id, title in (
        ({"id": jane, "first": "Jane", "last": "Doe", "deleted": 0}, acme, "Head of Sales"),
        ({"id": old, "first": "Oliver", "last": "Gone", "deleted": 1}, acme, "Former Buyer"),
        ({"id": john, "first": "John", "last": "Smith", "deleted": 0}, globex, "CTO"),
    ):
        await conn.execute(
            sa.text(
                """INSERT INTO contact (id, deleted, salutation_name, first_name, last_name,
                       do_not_call, created_at, modified_at, account_id, created_by_id,
                       modified_by_id, assigned_user_id)
                   VALUES (:id, :deleted, '', :first, :last, 0, :now, :now, :account, :admin,
                       :admin, :owner)"""
            ),
            {**person, "now": created, "account": account_id, "admin": admin, "owner": will},
        )
        # Hooks/Contact/Accounts.php: the link row carries the title as its role.
        await conn.execute(
            sa.text(
                """INSERT INTO account_contact (account_id, contact_id, role, is_inactive,
                       deleted) VALUES (:account, :contact, :role, 0, 0)"""
            ),
            {"account": account_id, "contact": person["id"], "role": title},
        )
    await _add_email(conn, jane, "Contact", "jane.doe@acme.example", primary=True)
    await _add_email(conn, jane, "Contact", "jane@home.example", primary=False)
    await _add_email(conn, old, "Contact", "oliver.gone@acme.example", primary=True)
    await _add_email(conn, john, "Contact", "John.Smith@Globex.Example", primary=True)

    # Stream: the 'Create' note Espo writes for a new followed record, and a user's post.
    for number, (note_type, post, data) in enumerate(
        (
            ("Create", None, json.dumps({"assignedUserId": will})),
            ("Post", "Intro call: talked about the Q3 roll-out.", "{}"),
        ),
        start=1,
    ):
        await conn.execute(
            sa.text(
                """INSERT INTO note (id, deleted, post, data, type, number, is_global,
                       is_internal, is_pinned, created_at, modified_at, parent_id,
                       parent_type, created_by_id, super_parent_id, super_parent_type)
                   VALUES (:id, 0, :post, :data, :type, :number, 0, 0, 0, :now, :now,
                       :contact, 'Contact', :user, :account, 'Account')"""
            ),
            {"id": espo_id(), "post": post, "data": data, "type": note_type,
             "number": number, "now": _now(timedelta(days=-2, seconds=number)),
             "contact": jane, "user": will, "account": acme},
        )  # fmt: skip

    # Tasks created from Jane's Tasks panel: parent = Contact; the ParentLink hook copies
    # contact_id and her account_id.
    for name, status, due in (
        ("Send the proposal", "Not Started", timedelta(days=3)),
        ("Book the demo", "Completed", timedelta(days=-1)),
    ):
        await conn.execute(
            sa.text(
                """INSERT INTO task (id, name, deleted, status, priority, date_end,
                       date_completed, created_at, modified_at, parent_id, parent_type,
                       account_id, contact_id, created_by_id, modified_by_id,
                       assigned_user_id)
                   VALUES (:id, :name, 0, :status, 'High', :due, :completed, :now, :now,
                       :contact, 'Contact', :account, :contact, :user, :user, :user)"""
            ),
            {"id": espo_id(), "name": name, "status": status, "due": _now(due),
             "completed": _now(due) if status == "Completed" else None, "now": created,
             "contact": jane, "account": acme, "user": will},
        )  # fmt: skip

    return Seed(
        contact_id=jane,
        contact_email="jane.doe@acme.example",
        deleted_contact_id=old,
        deleted_contact_email="oliver.gone@acme.example",
        company_id=acme,
        company_name="Acme Corporation",
        company_website="www.acme.example",
        company_domain="acme.example",
        other_company_id=globex,
        user_id=will,
    )


@asynccontextmanager
async def database(server_url: str = MYSQL_URL) -> AsyncIterator[EspoCRM]:
    """A fresh EspoCRM database on ``server_url``'s MariaDB server, seeded; dropped after.

    Seed: users ``admin`` and ``will``; accounts *Acme Corporation* (website
    ``www.acme.example``, as the url field stores it) and *Globex*; contacts *Jane Doe*
    (primary ``jane.doe@acme.example`` and a second address; ``account_id`` = Acme and an
    ``account_contact`` row with role *Head of Sales*), *Oliver Gone* (``deleted = 1``, his
    email link still live) and *John Smith* (``John.Smith@Globex.Example`` as typed); Jane's
    Stream (a Create note and a post) and two tasks, one completed.
    """
    async with fresh_database(server_url, "espocrm", DDL) as (url, engine):
        async with engine.begin() as conn:
            seed = await _seed(conn)
        yield EspoCRM(url=url, engine=engine, seed=seed)
