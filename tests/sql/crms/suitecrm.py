"""SuiteCRM 7 on MariaDB: the contact, account, e-mail, note, task and user tables as SuiteCRM
creates them, seeded as SuiteCRM writes, and the queries its own screens run.

Source: salesagility/SuiteCRM, tag ``v7.14.6`` (commit e572230abd0dad205b24a96acce72590b20bf69d,
``suitecrm_version.php`` 7.14.6):

* columns from the vardefs: ``include/SugarObjects/templates/basic/vardefs.php`` (id,
  dates, ``deleted``), ``templates/person/vardefs.php`` and ``templates/company/vardefs.php``,
  ``include/SugarObjects/implements/assignable/vardefs.php``, ``modules/Contacts/vardefs.php``,
  ``modules/Accounts/vardefs.php``, ``modules/Notes/vardefs.php``, ``modules/Tasks/vardefs.php``,
  ``modules/Users/vardefs.php``, ``metadata/accounts_contactsMetaData.php`` and
  ``metadata/email_addressesMetaData.php`` (``email_addresses``, ``email_addr_bean_rel``),
  merged in the order ``VardefManager::addTemplate`` merges them;
* the DDL those vardefs become: ``include/database/MysqlManager.php`` (``$type_map``: id →
  ``char(36)``, bool → ``bool``, enum → ``varchar``; ``createTableSQLParams`` adds the
  charset/collation) and ``DBManager::oneColumnSQLRep`` (only ``id``, auto-increment and
  required ``id``-type columns are ``NOT NULL``; a vardef default becomes a quoted
  ``DEFAULT``; ``len`` applies to varchar/char/text, ``length`` is ignored, so
  ``email_addresses.email_address`` is ``varchar(255)``);
* charset/collation ``utf8mb4`` / ``utf8mb4_general_ci``: the installer's first (default)
  choice in ``install/suite_install/collations.php``;
* ``*_cstm`` tables: ``modules/DynamicFields/DynamicField.php::createCustomTable`` (``id_c``
  ``char(36) NOT NULL`` primary key) with the Google Maps fields the installer adds to
  Accounts and Contacts (``install/suite_install/GoogleMaps.php``: ``jjwg_maps_*_c``), plus
  ``contacts_cstm.linkedin_c``, a ``varchar(255)`` text field as an administrator adds it in
  Studio (SuiteCRM has no LinkedIn field of its own);
* ids from ``create_guid()`` (``include/utils.php``): 36 lowercase hex characters in
  8-4-4-4-12 groups, not RFC 4122 UUIDs; the admin user's id is ``'1'``; dates are UTC
  ``Y-m-d H:i:s`` (``TimeDate::nowDb``).

Screens mirrored (each function names its code path): the Contacts list view
(``Contact::create_new_list_query``), the contact detail view
(``SugarEmailAddress::getAddressesByGUID``, ``Contact::fill_in_additional_detail_fields``),
the Accounts list and its Contacts subpanel, the contact's History subpanel (notes through
``contact_id``, closed tasks) and Activities subpanel (open tasks through ``contact_id`` or
``parent_type``/``parent_id``) from ``modules/Contacts/metadata/subpaneldefs.php`` and
``modules/Tasks/metadata/subpanels/For{Activities,History}.php``, and the assigned-user
picker (``get_user_array`` in ``include/utils.php``).
"""

from __future__ import annotations

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

__all__ = ["DDL", "TABLES", "SuiteCRM", "database", "guid", "now_db"]

_TABLE_OPTIONS = "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"

#: ``CREATE TABLE`` statements in the form ``MysqlManager::createTableSQLParams`` emits them.
DDL: tuple[str, ...] = (
    f"""CREATE TABLE users (
  id char(36) NOT NULL, user_name varchar(60) NULL, user_hash varchar(255) NULL,
  system_generated_password bool NULL, pwd_last_changed datetime NULL,
  authenticate_id varchar(100) NULL, sugar_login bool DEFAULT '1' NULL,
  first_name varchar(255) NULL, last_name varchar(255) NULL, is_admin bool DEFAULT '0' NULL,
  external_auth_only bool DEFAULT '0' NULL, receive_notifications bool DEFAULT '1' NULL,
  description text NULL, date_entered datetime NULL, date_modified datetime NULL,
  modified_user_id char(36) NULL, created_by char(36) NULL, title varchar(50) NULL,
  photo varchar(255) NULL, department varchar(50) NULL, phone_home varchar(50) NULL,
  phone_mobile varchar(50) NULL, phone_work varchar(50) NULL, phone_other varchar(50) NULL,
  phone_fax varchar(50) NULL, status varchar(100) NULL, address_street varchar(150) NULL,
  address_city varchar(100) NULL, address_state varchar(100) NULL,
  address_country varchar(100) NULL, address_postalcode varchar(20) NULL,
  deleted bool NULL, portal_only bool DEFAULT '0' NULL, show_on_employees bool DEFAULT '1' NULL,
  employee_status varchar(100) NULL, messenger_id varchar(100) NULL,
  messenger_type varchar(100) NULL, reports_to_id char(36) NULL, is_group bool NULL,
  factor_auth bool NULL, factor_auth_interface varchar(255) NULL,
  PRIMARY KEY (id),
  KEY idx_user_name (user_name, is_group, status, last_name(30), first_name(30), id)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE accounts (
  id char(36) NOT NULL, name varchar(150) NULL, date_entered datetime NULL,
  date_modified datetime NULL, modified_user_id char(36) NULL, created_by char(36) NULL,
  description text NULL, deleted bool DEFAULT '0' NULL, assigned_user_id char(36) NULL,
  account_type varchar(50) NULL, industry varchar(50) NULL, annual_revenue varchar(100) NULL,
  phone_fax varchar(100) NULL, billing_address_street varchar(150) NULL,
  billing_address_city varchar(100) NULL, billing_address_state varchar(100) NULL,
  billing_address_postalcode varchar(20) NULL, billing_address_country varchar(255) NULL,
  rating varchar(100) NULL, phone_office varchar(100) NULL, phone_alternate varchar(100) NULL,
  website varchar(255) NULL, ownership varchar(100) NULL, employees varchar(10) NULL,
  ticker_symbol varchar(10) NULL, shipping_address_street varchar(150) NULL,
  shipping_address_city varchar(100) NULL, shipping_address_state varchar(100) NULL,
  shipping_address_postalcode varchar(20) NULL, shipping_address_country varchar(255) NULL,
  parent_id char(36) NULL, sic_code varchar(10) NULL, campaign_id char(36) NULL,
  PRIMARY KEY (id),
  KEY idx_accnt_id_del (id, deleted), KEY idx_accnt_name_del (name, deleted),
  KEY idx_accnt_assigned_del (deleted, assigned_user_id), KEY idx_accnt_parent_id (parent_id)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE accounts_cstm (
  id_c char(36) NOT NULL,
  jjwg_maps_lng_c float(11,8) DEFAULT '0.00000000' NULL,
  jjwg_maps_lat_c float(10,8) DEFAULT '0.00000000' NULL,
  jjwg_maps_geocode_status_c varchar(255) NULL, jjwg_maps_address_c varchar(255) NULL,
  PRIMARY KEY (id_c)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE contacts (
  id char(36) NOT NULL, date_entered datetime NULL, date_modified datetime NULL,
  modified_user_id char(36) NULL, created_by char(36) NULL, description text NULL,
  deleted bool DEFAULT '0' NULL, assigned_user_id char(36) NULL, salutation varchar(255) NULL,
  first_name varchar(100) NULL, last_name varchar(100) NULL, title varchar(100) NULL,
  photo varchar(255) NULL, department varchar(255) NULL, do_not_call bool DEFAULT '0' NULL,
  phone_home varchar(100) NULL, phone_mobile varchar(100) NULL, phone_work varchar(100) NULL,
  phone_other varchar(100) NULL, phone_fax varchar(100) NULL, lawful_basis text(100) NULL,
  date_reviewed date NULL, lawful_basis_source varchar(100) NULL,
  primary_address_street varchar(150) NULL, primary_address_city varchar(100) NULL,
  primary_address_state varchar(100) NULL, primary_address_postalcode varchar(20) NULL,
  primary_address_country varchar(255) NULL, alt_address_street varchar(150) NULL,
  alt_address_city varchar(100) NULL, alt_address_state varchar(100) NULL,
  alt_address_postalcode varchar(20) NULL, alt_address_country varchar(255) NULL,
  assistant varchar(75) NULL, assistant_phone varchar(100) NULL, lead_source varchar(255) NULL,
  reports_to_id char(36) NULL, birthdate date NULL, campaign_id char(36) NULL,
  joomla_account_id varchar(255) NULL, portal_account_disabled bool NULL,
  portal_user_type varchar(100) DEFAULT 'Single' NULL,
  PRIMARY KEY (id),
  KEY idx_cont_last_first (last_name, first_name, deleted),
  KEY idx_contacts_del_last (deleted, last_name),
  KEY idx_cont_del_reports (deleted, reports_to_id, last_name),
  KEY idx_reports_to_id (reports_to_id), KEY idx_del_id_user (deleted, id, assigned_user_id),
  KEY idx_cont_assigned (assigned_user_id)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE contacts_cstm (
  id_c char(36) NOT NULL,
  jjwg_maps_lng_c float(11,8) DEFAULT '0.00000000' NULL,
  jjwg_maps_lat_c float(10,8) DEFAULT '0.00000000' NULL,
  jjwg_maps_geocode_status_c varchar(255) NULL, jjwg_maps_address_c varchar(255) NULL,
  linkedin_c varchar(255) NULL,
  PRIMARY KEY (id_c)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE accounts_contacts (
  id varchar(36) NOT NULL, contact_id varchar(36) NULL, account_id varchar(36) NULL,
  date_modified datetime NULL, deleted bool DEFAULT '0' NULL,
  PRIMARY KEY (id),
  KEY idx_account_contact (account_id, contact_id),
  KEY idx_contid_del_accid (contact_id, deleted, account_id)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE email_addresses (
  id char(36) NOT NULL, email_address varchar(255) NULL, email_address_caps varchar(255) NULL,
  invalid_email bool DEFAULT '0' NULL, opt_out bool DEFAULT '0' NULL,
  confirm_opt_in varchar(255) DEFAULT 'not-opt-in' NULL, confirm_opt_in_date datetime NULL,
  confirm_opt_in_sent_date datetime NULL, confirm_opt_in_fail_date datetime NULL,
  confirm_opt_in_token varchar(255) NULL, date_created datetime NULL,
  date_modified datetime NULL, deleted bool DEFAULT '0' NULL,
  PRIMARY KEY (id),
  KEY idx_ea_caps_opt_out_invalid (email_address_caps, opt_out, invalid_email),
  KEY idx_ea_opt_out_invalid (email_address, opt_out, invalid_email)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE email_addr_bean_rel (
  id char(36) NOT NULL, email_address_id char(36) NOT NULL, bean_id char(36) NOT NULL,
  bean_module varchar(100) NULL, primary_address bool DEFAULT '0' NULL,
  reply_to_address bool DEFAULT '0' NULL, date_created datetime NULL,
  date_modified datetime NULL, deleted bool DEFAULT '0' NULL,
  PRIMARY KEY (id),
  KEY idx_email_address_id (email_address_id), KEY idx_bean_id (bean_id, bean_module)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE notes (
  assigned_user_id char(36) NULL, id char(36) NOT NULL, date_entered datetime NULL,
  date_modified datetime NULL, modified_user_id char(36) NULL, created_by char(36) NULL,
  name varchar(255) NULL, file_mime_type varchar(100) NULL, filename varchar(255) NULL,
  parent_type varchar(255) NULL, parent_id char(36) NULL, contact_id char(36) NULL,
  portal_flag bool NULL, embed_flag bool DEFAULT '0' NULL, description text NULL,
  deleted bool DEFAULT '0' NULL,
  PRIMARY KEY (id),
  KEY idx_note_name (name), KEY idx_notes_parent (parent_id, parent_type),
  KEY idx_note_contact (contact_id), KEY idx_notes_assigned_del (deleted, assigned_user_id)
) {_TABLE_OPTIONS}""",
    f"""CREATE TABLE tasks (
  id char(36) NOT NULL, name varchar(50) NULL, date_entered datetime NULL,
  date_modified datetime NULL, modified_user_id char(36) NULL, created_by char(36) NULL,
  description text NULL, deleted bool DEFAULT '0' NULL, assigned_user_id char(36) NULL,
  status varchar(100) DEFAULT 'Not Started' NULL, date_due_flag bool DEFAULT '0' NULL,
  date_due datetime NULL, date_start_flag bool DEFAULT '0' NULL, date_start datetime NULL,
  parent_type varchar(255) NULL, parent_id char(36) NULL, contact_id char(36) NULL,
  priority varchar(100) NULL,
  PRIMARY KEY (id),
  KEY idx_tsk_name (name), KEY idx_task_con_del (contact_id, deleted),
  KEY idx_task_par_del (parent_id, parent_type, deleted),
  KEY idx_task_assigned (assigned_user_id), KEY idx_task_status (status)
) {_TABLE_OPTIONS}""",
)

TABLES: tuple[str, ...] = (
    "users",
    "accounts",
    "accounts_cstm",
    "contacts",
    "contacts_cstm",
    "accounts_contacts",
    "email_addresses",
    "email_addr_bean_rel",
    "notes",
    "tasks",
)

#: Task statuses the History subpanel shows; the Activities subpanel shows the others.
CLOSED_TASK_STATUSES = ("Completed", "Deferred")


def guid() -> str:
    """An id as SuiteCRM's ``create_guid()`` makes it: the microseconds and seconds of the
    clock in hex with random hex digits between, grouped 8-4-4-4-12."""
    now = time.time()
    dec_hex = format(int((now % 1) * 1_000_000), "x").rjust(5, "0")[:5]
    sec_hex = format(int(now), "x").rjust(6, "0")[:6]

    def section(n: int) -> str:
        return "".join(random.choice("0123456789abcdef") for _ in range(n))

    return f"{dec_hex}{section(3)}-{section(4)}-{section(4)}-{section(4)}-{sec_hex}{section(6)}"


def now_db(offset: timedelta = timedelta(0)) -> str:
    """UTC ``Y-m-d H:i:s``, as ``TimeDate::nowDb()`` stores dates."""
    return (datetime.now(UTC) + offset).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class SuiteCRM:
    """A live SuiteCRM 7 database (see the module docstring) and its screens."""

    url: str
    engine: AsyncEngine
    seed: Seed
    #: the admin user's id (SuiteCRM installs it as ``'1'``)
    admin_id: str = "1"
    key: str = "suitecrm"

    async def contacts(self) -> list[ListedContact]:
        """Contacts list view: ``Contact::create_new_list_query`` (``contacts.deleted=0``; the
        account through ``accounts_contacts.deleted = 0`` and ``accounts.deleted=0``; the email
        column through ``email_addr_bean_rel`` with ``bean_module='Contacts'``,
        ``primary_address = 1`` and ``deleted=0``)."""
        found = await rows(
            self.engine,
            """SELECT contacts.id, contacts.first_name, contacts.last_name,
                      accounts.name AS account_name, ea.email_address
               FROM contacts
               LEFT JOIN accounts_contacts ON contacts.id = accounts_contacts.contact_id
                    AND accounts_contacts.deleted = 0
               LEFT JOIN accounts ON accounts_contacts.account_id = accounts.id
                    AND accounts.deleted = 0
               LEFT JOIN email_addr_bean_rel eabl ON eabl.bean_id = contacts.id
                    AND eabl.bean_module = 'Contacts' AND eabl.primary_address = 1
                    AND eabl.deleted = 0
               LEFT JOIN email_addresses ea ON ea.id = eabl.email_address_id
               WHERE contacts.deleted = 0
               ORDER BY contacts.last_name, contacts.first_name""",
        )
        return [
            ListedContact(
                id=r["id"],
                name=_full_name(r["first_name"], r["last_name"]),
                email=r["email_address"],
                company=r["account_name"],
            )
            for r in found
        ]

    async def contact(self, contact_id: str) -> ContactDetail | None:
        """Contact detail view: the bean is retrieved with ``deleted=0``; its addresses come
        from ``SugarEmailAddress::getAddressesByGUID`` (``ear.deleted = 0``, ordered by
        ``reply_to_address, primary_address DESC``); its account from
        ``Contact::fill_in_additional_detail_fields`` (``a_c.deleted=0``, ``acc.deleted=0``,
        latest ``a_c.date_modified`` first); Studio fields from ``contacts_cstm``."""
        async with self.engine.connect() as conn:
            found = await rows(
                conn,
                """SELECT c.*, cstm.linkedin_c FROM contacts c
                   LEFT JOIN contacts_cstm cstm ON cstm.id_c = c.id
                   WHERE c.id = :id AND c.deleted = 0""",
                id=contact_id,
            )
            if not found:
                return None
            contact = found[0]
            emails = await self._emails(conn, contact_id, "Contacts")
            account = await rows(
                conn,
                """SELECT acc.id, acc.name FROM contacts
                   LEFT JOIN accounts_contacts a_c ON a_c.contact_id = contacts.id
                        AND a_c.deleted = 0
                   LEFT JOIN accounts acc ON a_c.account_id = acc.id AND acc.deleted = 0
                   WHERE contacts.id = :id ORDER BY a_c.date_modified DESC""",
                id=contact_id,
            )
        first = account[0] if account else {"id": None, "name": None}
        return ContactDetail(
            id=contact["id"],
            first_name=contact["first_name"],
            last_name=contact["last_name"],
            name=_full_name(contact["first_name"], contact["last_name"]),
            title=contact["title"],
            emails=emails,
            company_id=first["id"],
            company=first["name"],
            extra={"linkedin_c": contact["linkedin_c"], "phone_work": contact["phone_work"]},
        )

    async def companies(self) -> list[ListedCompany]:
        """Accounts list view: ``SugarBean::create_new_list_query`` with ``accounts.deleted=0``."""
        found = await rows(
            self.engine,
            "SELECT id, name, website FROM accounts WHERE deleted = 0 ORDER BY name",
        )
        return [ListedCompany(id=r["id"], name=r["name"], website=r["website"]) for r in found]

    async def company(self, company_id: str) -> CompanyDetail | None:
        """Account detail view and its Contacts subpanel (relationship ``accounts_contacts``:
        link rows with ``deleted=0`` to contacts with ``deleted=0``)."""
        async with self.engine.connect() as conn:
            found = await rows(
                conn,
                "SELECT * FROM accounts WHERE id = :id AND deleted = 0",
                id=company_id,
            )
            if not found:
                return None
            people = await rows(
                conn,
                """SELECT contacts.id FROM accounts_contacts
                   JOIN contacts ON contacts.id = accounts_contacts.contact_id
                        AND contacts.deleted = 0
                   WHERE accounts_contacts.account_id = :id AND accounts_contacts.deleted = 0
                   ORDER BY contacts.last_name""",
                id=company_id,
            )
        account = found[0]
        return CompanyDetail(
            id=account["id"],
            name=account["name"],
            website=account["website"],
            contact_ids=tuple(p["id"] for p in people),
            extra={"industry": account["industry"], "employees": account["employees"]},
        )

    async def timeline(self, contact_id: str) -> list[TimelineEntry]:
        """The contact's History subpanel (``subpaneldefs.php``, collection ``history``): notes
        of the ``notes`` link (``notes.contact_id``, not ``parent_id``) and tasks of the
        ``tasks`` / ``tasks_parent`` links whose status is Completed or Deferred
        (``Tasks/metadata/subpanels/ForHistory.php``), newest ``date_entered`` first."""
        found = await rows(
            self.engine,
            """SELECT id, 'note' AS kind, name, description, date_entered FROM notes
               WHERE contact_id = :id AND deleted = 0
               UNION ALL
               SELECT id, 'task', name, description, date_entered FROM tasks
               WHERE (contact_id = :id OR (parent_type = 'Contacts' AND parent_id = :id))
                 AND deleted = 0 AND status IN ('Completed', 'Deferred')
               ORDER BY date_entered DESC""",
            id=contact_id,
        )
        return [
            TimelineEntry(
                id=r["id"],
                kind=r["kind"],
                subject=r["name"],
                body=r["description"],
                at=r["date_entered"],
            )
            for r in found
        ]

    async def open_tasks(self, contact_id: str) -> list[OpenTask]:
        """The contact's Activities subpanel, tasks part: the ``tasks`` link
        (``tasks.contact_id``) and ``tasks_parent`` (``parent_type='Contacts'``), ``deleted=0``,
        status neither Completed nor Deferred (``ForActivities.php``), by ``date_due``."""
        found = await rows(
            self.engine,
            """SELECT id, name, status, date_due, assigned_user_id FROM tasks
               WHERE (contact_id = :id OR (parent_type = 'Contacts' AND parent_id = :id))
                 AND deleted = 0 AND status != 'Completed' AND status != 'Deferred'
               ORDER BY date_due DESC""",
            id=contact_id,
        )
        return [
            OpenTask(
                id=r["id"],
                title=r["name"],
                status=r["status"],
                due=r["date_due"],
                assignee_id=r["assigned_user_id"],
            )
            for r in found
        ]

    async def users(self) -> list[ListedUser]:
        """The assigned-user picker: ``get_user_array()`` (``status='Active'`` and
        ``portal_only=0``; deleted users are not filtered there), with the user's primary
        address from ``email_addr_bean_rel`` (``bean_module='Users'``)."""
        found = await rows(
            self.engine,
            """SELECT users.id, users.first_name, users.last_name, users.user_name,
                      ea.email_address
               FROM users
               LEFT JOIN email_addr_bean_rel eabl ON eabl.bean_id = users.id
                    AND eabl.bean_module = 'Users' AND eabl.primary_address = 1
                    AND eabl.deleted = 0
               LEFT JOIN email_addresses ea ON ea.id = eabl.email_address_id
               WHERE users.status = 'Active' AND users.portal_only = 0
               ORDER BY users.user_name""",
        )
        return [
            ListedUser(
                id=r["id"],
                name=_full_name(r["first_name"], r["last_name"]) or r["user_name"],
                email=r["email_address"],
            )
            for r in found
        ]

    async def find_by_email(self, address: str, module: str = "Contacts") -> list[str]:
        """``SugarEmailAddress::getRelatedId``: beans of ``module`` holding ``address``
        (compared on ``email_address_caps``, the upper-cased copy), link ``deleted=0``.
        Like SuiteCRM's own lookup it does not look at the bean's ``deleted`` flag."""
        found = await rows(
            self.engine,
            """SELECT bean_id FROM email_addr_bean_rel eabr
               JOIN email_addresses ea ON eabr.email_address_id = ea.id
               WHERE bean_module = :module AND ea.email_address_caps = :caps
                 AND eabr.deleted = 0""",
            module=module,
            caps=address.strip().upper(),
        )
        return [r["bean_id"] for r in found]

    async def _emails(self, conn: AsyncConnection, bean_id: str, module: str) -> tuple[Email, ...]:
        found = await rows(
            conn,
            """SELECT ea.email_address, ear.primary_address
               FROM email_addresses ea
               LEFT JOIN email_addr_bean_rel ear ON ea.id = ear.email_address_id
               WHERE ear.bean_module = :module AND ear.bean_id = :id AND ear.deleted = 0
               ORDER BY ear.reply_to_address, ear.primary_address DESC""",
            module=module,
            id=bean_id,
        )
        return tuple(Email(r["email_address"], bool(r["primary_address"])) for r in found)


def _full_name(first: str | None, last: str | None) -> str:
    return " ".join(part for part in (first, last) if part)


async def _add_email(
    conn: AsyncConnection,
    bean_id: str,
    module: str,
    address: str,
    *,
    primary: bool,
    when: str,
    deleted: bool = False,
) -> None:
    """``SugarEmailAddress::AddUpdateEmailAddress`` + ``saveEmail``: the address row (with
    its upper-cased copy) and the link row naming the bean's module."""
    address_id = guid()
    await conn.execute(
        sa.text(
            """INSERT INTO email_addresses (id, email_address, email_address_caps,
                   date_created, date_modified, deleted, invalid_email, opt_out)
               VALUES (:id, :address, :caps, :now, :now, 0, 0, 0)"""
        ),
        {"id": address_id, "address": address, "caps": address.upper(), "now": when},
    )
    await conn.execute(
        sa.text(
            """INSERT INTO email_addr_bean_rel (id, email_address_id, bean_id, bean_module,
                   primary_address, reply_to_address, date_created, date_modified, deleted)
               VALUES (:id, :address_id, :bean_id, :module, :primary, 0, :now, :now,
                       :deleted)"""
        ),
        {
            "id": guid(),
            "address_id": address_id,
            "bean_id": bean_id,
            "module": module,
            "primary": int(primary),
            "now": when,
            "deleted": int(deleted),
        },
    )


async def _seed(conn: AsyncConnection) -> Seed:
    created = now_db(timedelta(days=-30))
    admin = "1"
    sally = guid()
    for user in (
        {"id": admin, "user_name": "admin", "first_name": "", "last_name": "Administrator",
         "is_admin": 1, "email": "admin@crm.example"},
        {"id": sally, "user_name": "sally", "first_name": "Sally", "last_name": "Bronsen",
         "is_admin": 0, "email": "sally@crm.example"},
    ):  # fmt: skip
        await conn.execute(
            sa.text(
                """INSERT INTO users (id, user_name, user_hash, system_generated_password,
                       sugar_login, first_name, last_name, is_admin, external_auth_only,
                       receive_notifications, date_entered, date_modified, modified_user_id,
                       created_by, status, deleted, portal_only, show_on_employees,
                       employee_status, is_group, factor_auth)
                   VALUES (:id, :user_name, '$2y$10$hash', 0, 1, :first_name, :last_name,
                       :is_admin, 0, 1, :now, :now, '1', '1', 'Active', 0, 0, 1, 'Active', 0,
                       0)"""
            ),
            {**user, "now": created},
        )
        await _add_email(conn, user["id"], "Users", user["email"], primary=True, when=created)

    acme, globex = guid(), guid()
    for account in (
        {"id": acme, "name": "Acme Corporation", "website": "http://www.acme.example",
         "industry": "Technology", "employees": "51-200"},
        {"id": globex, "name": "Globex", "website": "www.globex.example",
         "industry": "Energy", "employees": "1000"},
    ):  # fmt: skip
        await conn.execute(
            sa.text(
                """INSERT INTO accounts (id, name, date_entered, date_modified,
                       modified_user_id, created_by, deleted, assigned_user_id, industry,
                       website, employees, account_type)
                   VALUES (:id, :name, :now, :now, '1', '1', 0, '1', :industry, :website,
                       :employees, 'Customer')"""
            ),
            {**account, "now": created},
        )
        await conn.execute(
            sa.text("INSERT INTO accounts_cstm (id_c) VALUES (:id)"), {"id": account["id"]}
        )

    jane, old, john = guid(), guid(), guid()
    for person in (
        {"id": jane, "first": "Jane", "last": "Doe", "title": "Head of Sales", "deleted": 0,
         "linkedin": "https://www.linkedin.com/in/jane-doe"},
        {"id": old, "first": "Oliver", "last": "Gone", "title": "Former Buyer", "deleted": 1,
         "linkedin": None},
        {"id": john, "first": "John", "last": "Smith", "title": "CTO", "deleted": 0,
         "linkedin": None},
    ):  # fmt: skip
        await conn.execute(
            sa.text(
                """INSERT INTO contacts (id, date_entered, date_modified, modified_user_id,
                       created_by, deleted, assigned_user_id, salutation, first_name,
                       last_name, title, do_not_call, phone_work, lead_source,
                       portal_user_type)
                   VALUES (:id, :now, :now, '1', '1', :deleted, :owner, '', :first, :last,
                       :title, 0, '+1 555 0100', 'Web Site', 'Single')"""
            ),
            {**person, "now": created, "owner": sally},
        )
        await conn.execute(
            sa.text("INSERT INTO contacts_cstm (id_c, linkedin_c) VALUES (:id, :linkedin)"),
            {"id": person["id"], "linkedin": person["linkedin"]},
        )

    await _add_email(conn, jane, "Contacts", "jane.doe@acme.example", primary=True, when=created)
    await _add_email(conn, jane, "Contacts", "jane@home.example", primary=False, when=created)
    # mark_deleted() marks the bean and its relationships deleted; the address row stays.
    await _add_email(
        conn, old, "Contacts", "oliver.gone@acme.example", primary=True, when=created,
        deleted=True,
    )  # fmt: skip
    await _add_email(
        conn, john, "Contacts", "John.Smith@Globex.Example", primary=True, when=created
    )
    for contact_id, account_id, deleted in ((jane, acme, 0), (old, acme, 1), (john, globex, 0)):
        await conn.execute(
            sa.text(
                """INSERT INTO accounts_contacts (id, contact_id, account_id, date_modified,
                       deleted) VALUES (:id, :contact, :account, :now, :deleted)"""
            ),
            {
                "id": guid(),
                "contact": contact_id,
                "account": account_id,
                "now": created,
                "deleted": deleted,
            },
        )

    # A note created from Jane's History subpanel: the button fills contact_id and, for a
    # contact, parent = her account (SugarWidgetSubPanelTopButton).
    await conn.execute(
        sa.text(
            """INSERT INTO notes (assigned_user_id, id, date_entered, date_modified,
                   modified_user_id, created_by, name, parent_type, parent_id, contact_id,
                   portal_flag, embed_flag, description, deleted)
               VALUES (:owner, :id, :now, :now, :owner, :owner, 'Intro call', 'Accounts',
                   :account, :contact, 0, 0, 'Talked about the Q3 roll-out.', 0)"""
        ),
        {"owner": sally, "id": guid(), "now": now_db(timedelta(days=-2)), "account": acme,
         "contact": jane},
    )  # fmt: skip
    for name, status, due in (
        ("Send the proposal", "Not Started", timedelta(days=3)),
        ("Book the demo", "Completed", timedelta(days=-1)),
    ):
        await conn.execute(
            sa.text(
                """INSERT INTO tasks (id, name, date_entered, date_modified, modified_user_id,
                       created_by, description, deleted, assigned_user_id, status,
                       date_due_flag, date_due, date_start_flag, parent_type, parent_id,
                       contact_id, priority)
                   VALUES (:id, :name, :now, :now, :owner, :owner, NULL, 0, :owner, :status,
                       0, :due, 0, 'Accounts', :account, :contact, 'High')"""
            ),
            {"id": guid(), "name": name, "now": created, "owner": sally, "status": status,
             "due": now_db(due), "account": acme, "contact": jane},
        )  # fmt: skip

    return Seed(
        contact_id=jane,
        contact_email="jane.doe@acme.example",
        deleted_contact_id=old,
        deleted_contact_email="oliver.gone@acme.example",
        company_id=acme,
        company_name="Acme Corporation",
        company_website="http://www.acme.example",
        company_domain="acme.example",
        other_company_id=globex,
        user_id=sally,
    )


@asynccontextmanager
async def database(server_url: str = MYSQL_URL) -> AsyncIterator[SuiteCRM]:
    """A fresh SuiteCRM database on ``server_url``'s MariaDB server, seeded; dropped after.

    Seed: users ``admin`` (id ``'1'``) and ``sally``; accounts *Acme Corporation* (website
    ``http://www.acme.example``) and *Globex* (``www.globex.example``); contacts *Jane Doe*
    (primary ``jane.doe@acme.example``, a second address, linked to Acme, a LinkedIn URL in
    ``contacts_cstm.linkedin_c``), *Oliver Gone* (``deleted = 1``, his links deleted too) and
    *John Smith* (``John.Smith@Globex.Example`` as typed); a note and two tasks on Jane.
    """
    async with fresh_database(server_url, "suitecrm", DDL) as (url, engine):
        async with engine.begin() as conn:
            seed = await _seed(conn)
        yield SuiteCRM(url=url, engine=engine, seed=seed)
