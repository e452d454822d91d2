"""Odoo 17/18 on PostgreSQL: ``res_partner`` (people and companies in one table), the users,
and the chatter's ``mail_message`` / ``mail_activity`` tables as the Odoo ORM creates them,
seeded as Odoo writes, and the queries the Contacts app and the chatter run.

Sources read (odoo/odoo is too large to mirror here, so these are the stored copies):

* ``odoo/addons/base/models/res_partner.py`` as of the 17.x/18.0 line (``complete_name``
  stored and indexed, no stored ``display_name`` any more; ``title``, ``mobile``,
  ``company_registry``, ``commercial_company_name`` stored; ``barcode`` is company-dependent,
  which is not a ``res_partner`` column in 17 and a ``jsonb`` one in 18, so it is left out);
  ``_sql_constraints`` ``check_name``; ``_clean_website`` (a website without scheme is stored
  as ``http://...``); ``_compute_complete_name`` (``"<company>, <name>"`` for a person with a
  parent); ``_compute_commercial_partner``;
* ``addons/mail/models/mail_activity.py`` (17.0: ``res_model_id`` required, ``res_id``
  ``Many2oneReference`` with the ``check_res_id_is_set`` constraint, ``date_deadline`` and
  ``user_id`` required, ``active``/``date_done`` for done activities kept archived),
  ``mail_activity_type.py`` and ``data/mail_activity_type_data.xml`` (Email, Call, Meeting,
  To-Do, Upload Document, Exception with their sequences, icons and categories),
  ``mail_message.py`` (``message_type`` required; ``model``/``res_id`` point at the
  document), ``mail.thread.blacklist`` (``res_partner.email_normalized``) and
  ``mail.thread`` (``message_bounce``);
* the ORM's DDL (``odoo/models.py``, ``odoo/fields.py``): ``id SERIAL``; Char →
  ``varchar`` without length, Html/Text → ``text``, Boolean → ``boolean``, Float with digits
  → ``numeric``, Many2one → ``int4`` with a ``FOREIGN KEY ... ON DELETE SET NULL`` (or the
  field's ``ondelete``), translated Char → ``jsonb``; ``required=True`` → ``NOT NULL``;
  **no column defaults**: Odoo applies ``default=`` in Python, so a row inserted by SQL gets
  ``NULL`` for ``active``, ``type``, ``is_company``... and Odoo's screens (which test
  ``active = True``) never show it. Index names ``<table>__<column>_index``; ``create_uid``,
  ``create_date``, ``write_uid``, ``write_date`` on every table (timestamps UTC, without
  time zone).

Foreign keys to tables this fixture does not build (``res_company``, ``res_country``,
``res_partner_title``, ``res_partner_industry``, ``mail_alias_domain``, ``ir_mail_server``...)
are left out; their columns are kept. ``ir_model`` and ``mail_message_subtype`` are reduced to
the columns the chatter code reads plus every ``NOT NULL`` one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

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

__all__ = ["DDL", "TABLES", "Odoo", "database"]

_LOG = """create_uid integer, create_date timestamp without time zone,
  write_uid integer, write_date timestamp without time zone"""

#: DDL as the ORM leaves the tables (constraint and index names as Odoo names them).
DDL: tuple[str, ...] = (
    f"""CREATE TABLE res_users (
  id SERIAL NOT NULL, company_id integer NOT NULL, partner_id integer NOT NULL,
  active boolean, login varchar NOT NULL, password varchar, action_id integer,
  signature text, share boolean, notification_type varchar NOT NULL, {_LOG},
  CONSTRAINT res_users_pkey PRIMARY KEY (id),
  CONSTRAINT res_users_login_key UNIQUE (login)
)""",
    f"""CREATE TABLE res_partner (
  id SERIAL NOT NULL, company_id integer, name varchar, complete_name varchar,
  title integer, parent_id integer, ref varchar, lang varchar, tz varchar, user_id integer,
  vat varchar, company_registry varchar, website varchar, comment text, active boolean,
  employee boolean, function varchar, type varchar, street varchar, street2 varchar,
  zip varchar, city varchar, state_id integer, country_id integer,
  partner_latitude numeric, partner_longitude numeric, email varchar, phone varchar,
  mobile varchar, is_company boolean, industry_id integer, color integer,
  partner_share boolean, commercial_partner_id integer, commercial_company_name varchar,
  company_name varchar, email_normalized varchar, message_bounce integer, {_LOG},
  CONSTRAINT res_partner_pkey PRIMARY KEY (id),
  CONSTRAINT res_partner_check_name
    CHECK ( (type='contact' AND name IS NOT NULL) or (type!='contact') ),
  CONSTRAINT res_partner_parent_id_fkey FOREIGN KEY (parent_id)
    REFERENCES res_partner (id) ON DELETE SET NULL,
  CONSTRAINT res_partner_commercial_partner_id_fkey FOREIGN KEY (commercial_partner_id)
    REFERENCES res_partner (id) ON DELETE SET NULL,
  CONSTRAINT res_partner_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES res_users (id) ON DELETE SET NULL,
  CONSTRAINT res_partner_create_uid_fkey FOREIGN KEY (create_uid)
    REFERENCES res_users (id) ON DELETE SET NULL,
  CONSTRAINT res_partner_write_uid_fkey FOREIGN KEY (write_uid)
    REFERENCES res_users (id) ON DELETE SET NULL
)""",
    "CREATE INDEX res_partner__name_index ON res_partner (name)",
    "CREATE INDEX res_partner__complete_name_index ON res_partner (complete_name)",
    "CREATE INDEX res_partner__parent_id_index ON res_partner (parent_id)",
    "CREATE INDEX res_partner__ref_index ON res_partner (ref)",
    "CREATE INDEX res_partner__vat_index ON res_partner (vat)",
    "CREATE INDEX res_partner__company_id_index ON res_partner (company_id)",
    "CREATE INDEX res_partner__commercial_partner_id_index ON res_partner (commercial_partner_id)",
    "CREATE INDEX res_partner__email_normalized_index ON res_partner (email_normalized)",
    """ALTER TABLE res_users ADD CONSTRAINT res_users_partner_id_fkey
  FOREIGN KEY (partner_id) REFERENCES res_partner (id) ON DELETE RESTRICT""",
    f"""CREATE TABLE ir_model (
  id SERIAL NOT NULL, model varchar NOT NULL, "order" varchar NOT NULL, state varchar,
  name jsonb NOT NULL, info text, transient boolean, is_mail_thread boolean,
  is_mail_activity boolean, is_mail_blacklist boolean, {_LOG},
  CONSTRAINT ir_model_pkey PRIMARY KEY (id),
  CONSTRAINT ir_model_obj_name_uniq UNIQUE (model)
)""",
    f"""CREATE TABLE mail_message_subtype (
  id SERIAL NOT NULL, name jsonb NOT NULL, description jsonb, internal boolean,
  parent_id integer, relation_field varchar, res_model varchar, "default" boolean,
  sequence integer, hidden boolean, track_recipients boolean, {_LOG},
  CONSTRAINT mail_message_subtype_pkey PRIMARY KEY (id)
)""",
    f"""CREATE TABLE mail_activity_type (
  id SERIAL NOT NULL, name jsonb NOT NULL, summary jsonb, sequence integer, active boolean,
  delay_count integer, delay_unit varchar NOT NULL, delay_from varchar NOT NULL,
  icon varchar, decoration_type varchar, res_model varchar,
  triggered_next_type_id integer, chaining_type varchar NOT NULL, category varchar,
  default_user_id integer, default_note jsonb, {_LOG},
  CONSTRAINT mail_activity_type_pkey PRIMARY KEY (id),
  CONSTRAINT mail_activity_type_triggered_next_type_id_fkey
    FOREIGN KEY (triggered_next_type_id) REFERENCES mail_activity_type (id)
    ON DELETE RESTRICT,
  CONSTRAINT mail_activity_type_default_user_id_fkey FOREIGN KEY (default_user_id)
    REFERENCES res_users (id) ON DELETE SET NULL
)""",
    f"""CREATE TABLE mail_activity (
  id SERIAL NOT NULL, res_model_id integer NOT NULL, res_model varchar, res_id integer,
  res_name varchar, activity_type_id integer, summary varchar, note text,
  date_deadline date NOT NULL, date_done date, automated boolean, user_id integer NOT NULL,
  request_partner_id integer, recommended_activity_type_id integer,
  previous_activity_type_id integer, active boolean, {_LOG},
  CONSTRAINT mail_activity_pkey PRIMARY KEY (id),
  CONSTRAINT mail_activity_check_res_id_is_set CHECK (res_id IS NOT NULL AND res_id !=0 ),
  CONSTRAINT mail_activity_res_model_id_fkey FOREIGN KEY (res_model_id)
    REFERENCES ir_model (id) ON DELETE CASCADE,
  CONSTRAINT mail_activity_activity_type_id_fkey FOREIGN KEY (activity_type_id)
    REFERENCES mail_activity_type (id) ON DELETE RESTRICT,
  CONSTRAINT mail_activity_user_id_fkey FOREIGN KEY (user_id)
    REFERENCES res_users (id) ON DELETE CASCADE,
  CONSTRAINT mail_activity_request_partner_id_fkey FOREIGN KEY (request_partner_id)
    REFERENCES res_partner (id) ON DELETE SET NULL,
  CONSTRAINT mail_activity_recommended_activity_type_id_fkey
    FOREIGN KEY (recommended_activity_type_id) REFERENCES mail_activity_type (id)
    ON DELETE SET NULL,
  CONSTRAINT mail_activity_previous_activity_type_id_fkey
    FOREIGN KEY (previous_activity_type_id) REFERENCES mail_activity_type (id)
    ON DELETE SET NULL
)""",
    "CREATE INDEX mail_activity__res_model_id_index ON mail_activity (res_model_id)",
    "CREATE INDEX mail_activity__res_model_index ON mail_activity (res_model)",
    "CREATE INDEX mail_activity__res_id_index ON mail_activity (res_id)",
    "CREATE INDEX mail_activity__date_deadline_index ON mail_activity (date_deadline)",
    "CREATE INDEX mail_activity__user_id_index ON mail_activity (user_id)",
    f"""CREATE TABLE mail_message (
  id SERIAL NOT NULL, subject varchar, date timestamp without time zone, body text,
  parent_id integer, model varchar, res_id integer, record_name varchar,
  record_alias_domain_id integer, record_company_id integer, message_type varchar NOT NULL,
  subtype_id integer, mail_activity_type_id integer, is_internal boolean,
  email_from varchar, author_id integer, author_guest_id integer,
  reply_to_force_new boolean, message_id varchar, reply_to varchar, mail_server_id integer,
  email_layout_xmlid varchar, email_add_signature boolean,
  pinned_at timestamp without time zone, {_LOG},
  CONSTRAINT mail_message_pkey PRIMARY KEY (id),
  CONSTRAINT mail_message_parent_id_fkey FOREIGN KEY (parent_id)
    REFERENCES mail_message (id) ON DELETE SET NULL,
  CONSTRAINT mail_message_subtype_id_fkey FOREIGN KEY (subtype_id)
    REFERENCES mail_message_subtype (id) ON DELETE SET NULL,
  CONSTRAINT mail_message_mail_activity_type_id_fkey FOREIGN KEY (mail_activity_type_id)
    REFERENCES mail_activity_type (id) ON DELETE SET NULL,
  CONSTRAINT mail_message_author_id_fkey FOREIGN KEY (author_id)
    REFERENCES res_partner (id) ON DELETE SET NULL
)""",
    "CREATE INDEX mail_message_model_res_id_idx ON mail_message (model, res_id)",
    "CREATE INDEX mail_message__subtype_id_index ON mail_message (subtype_id)",
    "CREATE INDEX mail_message__author_id_index ON mail_message (author_id)",
    "CREATE INDEX mail_message__message_id_index ON mail_message (message_id)",
)

TABLES: tuple[str, ...] = (
    "res_users",
    "res_partner",
    "ir_model",
    "mail_message_subtype",
    "mail_activity_type",
    "mail_activity",
    "mail_message",
)


def _tr(value: str) -> str:
    """A translated field's value as stored since Odoo 16: ``{"en_US": ...}`` jsonb."""
    return json.dumps({"en_US": value})


@dataclass
class Odoo:
    """A live Odoo database (see the module docstring) and its screens."""

    url: str
    engine: AsyncEngine
    seed: Seed
    #: ``ir_model.id`` of ``res.partner`` (``mail_activity.res_model_id``)
    partner_model_id: int
    #: ``mail_message_subtype`` ids of ``mail.mt_note`` and ``mail.mt_comment``
    note_subtype_id: int
    comment_subtype_id: int
    #: ``mail_activity_type`` ids by xml id suffix (``todo``, ``call``, ``email``...)
    activity_type_ids: dict[str, int]
    key: str = "odoo"

    async def contacts(self) -> list[ListedContact]:
        """Contacts app, list/kanban with the *Individuals* filter: the ORM's ``active_test``
        (``active = True``), ``is_company = False``, and only real contacts
        (``type = 'contact'``; invoice/delivery addresses are child addresses). The name
        shown is ``display_name``, i.e. the stored ``complete_name``; the company column is
        the parent's name. Order: ``_order = "complete_name ASC, id DESC"``."""
        found = await rows(
            self.engine,
            """SELECT p.id, p.complete_name, p.email, parent.name AS parent_name
               FROM res_partner p
               LEFT JOIN res_partner parent ON parent.id = p.parent_id
               WHERE p.active = True AND p.is_company = False AND p.type = 'contact'
               ORDER BY p.complete_name ASC, p.id DESC""",
        )
        return [
            ListedContact(
                id=str(r["id"]),
                name=r["complete_name"],
                email=r["email"],
                company=r["parent_name"],
            )
            for r in found
        ]

    async def contact(self, contact_id: str) -> ContactDetail | None:
        """The partner form as reached from the Contacts app (archived partners are not
        reachable there: ``active = True``); a person's one address is ``email``."""
        found = await rows(
            self.engine,
            """SELECT p.*, parent.name AS parent_name FROM res_partner p
               LEFT JOIN res_partner parent ON parent.id = p.parent_id
               WHERE p.id = :id AND p.active = True AND p.is_company = False""",
            id=int(contact_id),
        )
        if not found:
            return None
        p = found[0]
        first, _, last = (p["name"] or "").partition(" ")
        return ContactDetail(
            id=str(p["id"]),
            first_name=first or None,
            last_name=last or None,
            name=p["complete_name"],
            title=p["function"],
            emails=(Email(p["email"], True),) if p["email"] else (),
            company_id=str(p["parent_id"]) if p["parent_id"] else None,
            company=p["parent_name"],
            extra={
                "type": p["type"],
                "commercial_partner_id": p["commercial_partner_id"],
                "email_normalized": p["email_normalized"],
                "phone": p["phone"],
            },
        )

    async def companies(self) -> list[ListedCompany]:
        """Contacts app with the *Companies* filter: ``active = True`` and
        ``is_company = True``."""
        found = await rows(
            self.engine,
            """SELECT id, complete_name, website FROM res_partner
               WHERE active = True AND is_company = True
               ORDER BY complete_name ASC, id DESC""",
        )
        return [
            ListedCompany(id=str(r["id"]), name=r["complete_name"], website=r["website"])
            for r in found
        ]

    async def company(self, company_id: str) -> CompanyDetail | None:
        """The company's form and its *Contacts & Addresses* tab (``child_ids``, whose domain
        is ``active = True``), keeping the contacts (``type = 'contact'``)."""
        async with self.engine.connect() as conn:
            found = await rows(
                conn,
                """SELECT * FROM res_partner
                   WHERE id = :id AND active = True AND is_company = True""",
                id=int(company_id),
            )
            if not found:
                return None
            people = await rows(
                conn,
                """SELECT id FROM res_partner
                   WHERE parent_id = :id AND active = True AND type = 'contact'
                   ORDER BY complete_name ASC, id DESC""",
                id=int(company_id),
            )
        c = found[0]
        return CompanyDetail(
            id=str(c["id"]),
            name=c["name"],
            website=c["website"],
            contact_ids=tuple(str(p["id"]) for p in people),
            extra={"commercial_partner_id": c["commercial_partner_id"]},
        )

    async def timeline(self, contact_id: str) -> list[TimelineEntry]:
        """The partner's chatter: ``mail.thread._message_fetch`` domain ``res_id = id``,
        ``model = 'res.partner'``, ``message_type != 'user_notification'``, newest first."""
        found = await rows(
            self.engine,
            """SELECT m.id, m.message_type, st.name AS subtype, m.subject, m.body, m.date
               FROM mail_message m
               LEFT JOIN mail_message_subtype st ON st.id = m.subtype_id
               WHERE m.model = 'res.partner' AND m.res_id = :id
                 AND m.message_type != 'user_notification'
               ORDER BY m.id DESC""",
            id=int(contact_id),
        )
        return [
            TimelineEntry(
                id=str(r["id"]),
                kind=r["message_type"],
                subject=r["subject"],
                body=r["body"],
                at=r["date"],
            )
            for r in found
        ]

    async def open_tasks(self, contact_id: str) -> list[OpenTask]:
        """The chatter's *Planned activities*: the partner's ``activity_ids``
        (``mail.activity.mixin``: ``res_model = 'res.partner'``, ``res_id = id``; the ORM's
        ``active_test`` hides done ones, which 17+ keeps archived), by
        ``date_deadline ASC, id ASC``."""
        found = await rows(
            self.engine,
            """SELECT a.id, a.summary, t.name AS type_name, a.date_deadline, a.user_id
               FROM mail_activity a
               LEFT JOIN mail_activity_type t ON t.id = a.activity_type_id
               WHERE a.res_model = 'res.partner' AND a.res_id = :id AND a.active = True
               ORDER BY a.date_deadline ASC, a.id ASC""",
            id=int(contact_id),
        )
        return [
            OpenTask(
                id=str(r["id"]),
                title=r["summary"] or (r["type_name"] or {}).get("en_US"),
                status="planned",
                due=r["date_deadline"],
                assignee_id=str(r["user_id"]),
            )
            for r in found
        ]

    async def users(self) -> list[ListedUser]:
        """The Salesperson field's choices: internal users (``share = False``) that are active;
        name and email come from the user's partner (``_inherits``)."""
        found = await rows(
            self.engine,
            """SELECT u.id, p.name, p.email FROM res_users u
               JOIN res_partner p ON p.id = u.partner_id
               WHERE u.active = True AND u.share = False ORDER BY p.name""",
        )
        return [ListedUser(id=str(r["id"]), name=r["name"], email=r["email"]) for r in found]


async def _insert(conn: AsyncConnection, table: str, values: dict[str, object]) -> int:
    columns = ", ".join(f'"{c}"' for c in values)
    params = ", ".join(f":{c}" for c in values)
    result = await conn.execute(
        sa.text(f"INSERT INTO {table} ({columns}) VALUES ({params}) RETURNING id"), values
    )
    return int(result.scalar_one())


async def _seed(conn: AsyncConnection) -> tuple[Seed, dict[str, int], dict[str, int]]:
    now = datetime.now(UTC).replace(tzinfo=None)
    created = now - timedelta(days=30)
    log = {"create_date": created, "write_date": created}
    partner_base = {
        "active": True, "type": "contact", "lang": "en_US", "color": 0,
        "partner_share": True, "message_bounce": 0, "employee": False,
    }  # fmt: skip

    # base: partner 1 is the company's, users 1 (__system__, OdooBot) and 2 (admin).
    my_company = await _insert(
        conn,
        "res_partner",
        {**partner_base, "name": "My Company", "complete_name": "My Company",
         "is_company": True, "partner_share": False, **log},
    )  # fmt: skip
    await conn.execute(
        sa.text("UPDATE res_partner SET commercial_partner_id = id, "
                "commercial_company_name = name WHERE id = :id"),
        {"id": my_company},
    )  # fmt: skip
    people: dict[str, int] = {}
    for key, name, email, active in (
        ("odoobot", "OdooBot", "odoobot@example.com", False),
        ("admin", "Mitchell Admin", "admin@crm.example", True),
        ("marc", "Marc Demo", "marc.demo@crm.example", True),
    ):
        pid = await _insert(
            conn,
            "res_partner",
            {**partner_base, "name": name, "complete_name": name, "email": email,
             "email_normalized": email, "is_company": False, "active": active,
             "partner_share": False, "company_id": 1, **log},
        )  # fmt: skip
        await conn.execute(
            sa.text("UPDATE res_partner SET commercial_partner_id = id WHERE id = :id"),
            {"id": pid},
        )
        people[key] = pid
    users: dict[str, int] = {}
    for key, login, active in (
        ("odoobot", "__system__", False),
        ("admin", "admin", True),
        ("marc", "demo", True),
    ):
        users[key] = await _insert(
            conn,
            "res_users",
            {"company_id": 1, "partner_id": people[key], "active": active, "login": login,
             "password": "$pbkdf2-sha512$hash", "share": False,
             "notification_type": "email", **log},
        )  # fmt: skip
    uid = users["admin"]
    log = {**log, "create_uid": uid, "write_uid": uid}

    # Companies: created with is_company, commercial_partner_id = themselves (computed).
    companies: dict[str, int] = {}
    for key, name, website in (
        ("acme", "Acme Corporation", "http://www.acme.example"),
        ("globex", "Globex", "https://globex.example/"),
    ):
        cid = await _insert(
            conn,
            "res_partner",
            {**partner_base, "name": name, "complete_name": name, "is_company": True,
             "website": website, "street": "1 Main Street", "city": "Springfield",
             "user_id": users["marc"], **log},
        )  # fmt: skip
        await conn.execute(
            sa.text("UPDATE res_partner SET commercial_partner_id = id, "
                    "commercial_company_name = name WHERE id = :id"),
            {"id": cid},
        )  # fmt: skip
        companies[key] = cid

    async def person(name: str, email: str, company: str, *, active: bool = True) -> int:
        # A contact created under a company: company_name cleared, commercial fields and
        # the address synced from the parent, complete_name "<company>, <name>".
        parent = companies[company]
        company_name = "Acme Corporation" if company == "acme" else "Globex"
        return await _insert(
            conn,
            "res_partner",
            {**partner_base, "name": name, "complete_name": f"{company_name}, {name}",
             "is_company": False, "active": active, "parent_id": parent,
             "commercial_partner_id": parent, "commercial_company_name": company_name,
             "email": email, "email_normalized": email.lower(), "function": "Head of Sales",
             "street": "1 Main Street", "city": "Springfield", "user_id": users["marc"],
             **log},
        )  # fmt: skip

    jane = await person("Jane Doe", "jane.doe@acme.example", "acme")
    old = await person("Oliver Gone", "oliver.gone@acme.example", "acme", active=False)
    await person("John Smith", "John.Smith@Globex.Example", "globex")
    # An invoice address under Acme: a child partner without a name, not a person.
    await _insert(
        conn,
        "res_partner",
        {**partner_base, "name": None, "type": "invoice",
         "complete_name": "Acme Corporation, Invoice", "is_company": False,
         "parent_id": companies["acme"], "commercial_partner_id": companies["acme"],
         "commercial_company_name": "Acme Corporation", "email": "billing@acme.example",
         "email_normalized": "billing@acme.example", **log},
    )  # fmt: skip

    partner_model = await _insert(
        conn,
        "ir_model",
        {"model": "res.partner", "order": "complete_name ASC, id DESC", "state": "base",
         "name": _tr("Contact"), "transient": False, "is_mail_thread": True,
         "is_mail_activity": True, "is_mail_blacklist": True, **log},
    )  # fmt: skip
    subtypes: dict[str, int] = {}
    for key, name, internal, sequence, default in (
        ("comment", "Discussions", False, 0, True),
        ("note", "Note", True, 100, False),
        ("activities", "Activities", True, 90, False),
    ):
        subtypes[key] = await _insert(
            conn,
            "mail_message_subtype",
            {"name": _tr(name), "internal": internal, "sequence": sequence,
             "default": default, "hidden": False, "track_recipients": False, **log},
        )  # fmt: skip
    activity_types: dict[str, int] = {}
    for key, name, icon, sequence, delay, category, decoration, active in (
        ("email", "Email", "fa-envelope", 3, 0, "default", None, True),
        ("call", "Call", "fa-phone", 6, 2, "phonecall", None, True),
        ("meeting", "Meeting", "fa-users", 9, 0, "default", None, True),
        ("todo", "To-Do", "fa-check", 12, 5, "default", None, True),
        ("upload_document", "Upload Document", "fa-upload", 25, 5, "upload_file", None, True),
        ("warning", "Exception", "fa-warning", 99, 0, "default", "warning", False),
    ):
        activity_types[key] = await _insert(
            conn,
            "mail_activity_type",
            {"name": _tr(name), "summary": _tr(name) if key != "warning" else None,
             "icon": icon, "sequence": sequence, "delay_count": delay,
             "delay_unit": "days", "delay_from": "previous_activity",
             "chaining_type": "suggest", "category": category,
             "decoration_type": decoration, "active": active, **log},
        )  # fmt: skip

    # Chatter: the "Contact created" notification and a logged note.
    for message_type, subtype, body in (
        ("notification", "note", "<p>Contact created</p>"),
        ("comment", "note", "<p>Intro call: talked about the Q3 roll-out.</p>"),
    ):
        await _insert(
            conn,
            "mail_message",
            {"date": now - timedelta(days=2), "body": body, "model": "res.partner",
             "res_id": jane, "record_name": "Acme Corporation, Jane Doe",
             "message_type": message_type, "subtype_id": subtypes[subtype],
             "is_internal": True, "author_id": people["admin"],
             "email_from": '"Mitchell Admin" <admin@crm.example>',
             "message_id": f"<{jane}.{message_type}@crm.example>",
             "email_add_signature": True, "reply_to_force_new": False, **log},
        )  # fmt: skip
    # Activities: one planned, one done (kept archived since 17).
    for summary, deadline, active in (
        ("Send the proposal", date.today() + timedelta(days=3), True),
        ("Book the demo", date.today() - timedelta(days=1), False),
    ):
        await _insert(
            conn,
            "mail_activity",
            {"res_model_id": partner_model, "res_model": "res.partner", "res_id": jane,
             "res_name": "Acme Corporation, Jane Doe",
             "activity_type_id": activity_types["todo"], "summary": summary,
             "note": "<p>Pricing for 200 seats.</p>", "date_deadline": deadline,
             "date_done": None if active else date.today(), "automated": False,
             "user_id": users["marc"], "active": active, **log},
        )  # fmt: skip

    seed = Seed(
        contact_id=str(jane),
        contact_email="jane.doe@acme.example",
        deleted_contact_id=str(old),
        deleted_contact_email="oliver.gone@acme.example",
        company_id=str(companies["acme"]),
        company_name="Acme Corporation",
        company_website="http://www.acme.example",
        company_domain="acme.example",
        other_company_id=str(companies["globex"]),
        user_id=str(users["marc"]),
    )
    refs = {
        "partner_model_id": partner_model,
        "note_subtype_id": subtypes["note"],
        "comment_subtype_id": subtypes["comment"],
    }
    return seed, refs, activity_types


@asynccontextmanager
async def database(server_url: str = POSTGRES_URL) -> AsyncIterator[Odoo]:
    """A fresh Odoo database on ``server_url``'s PostgreSQL server, seeded; dropped after.

    Seed: partner *My Company* and users ``__system__`` (archived), ``admin`` and ``demo``
    (Marc Demo); companies *Acme Corporation* (website ``http://www.acme.example``, what
    ``_clean_website`` makes of ``www.acme.example``) and *Globex*
    (``https://globex.example/``); people *Jane Doe* (under Acme, ``complete_name``
    ``"Acme Corporation, Jane Doe"``), *Oliver Gone* (archived: ``active = False``) and *John
    Smith* (``John.Smith@Globex.Example``, ``email_normalized`` lower-case); an invoice
    address under Acme; the mail activity types and subtypes; two chatter messages and two
    activities (one done, archived) on Jane.
    """
    async with fresh_database(server_url, "odoo", DDL) as (url, engine):
        async with engine.begin() as conn:
            seed, refs, activity_types = await _seed(conn)
        yield Odoo(url=url, engine=engine, seed=seed, activity_type_ids=activity_types, **refs)
