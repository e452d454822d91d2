"""CiviCRM on MariaDB: contacts (people and organisations in one table), e-mails, websites,
activities with their contact links, option groups/values and CMS user links as CiviCRM
creates them, seeded as CiviCRM writes, and the queries its screens run.

Source: civicrm/civicrm-core, the entity schema files of the 5.7x/6.x line (``schema/**/
*.entityType.php``; stored copies read at these commits): ``schema/Contact/
Contact.entityType.php`` (0ef20221), ``schema/Core/Email.entityType.php`` (07e57e88),
``schema/Core/Website.entityType.php`` (1d804b8f), ``schema/Activity/
Activity.entityType.php`` (1d804b8f), ``schema/Activity/ActivityContact.entityType.php``
(71b29065), ``schema/Core/OptionGroup.entityType.php`` (0ed3c7a3),
``schema/Core/OptionValue.entityType.php`` (0157ab00), ``schema/Core/
UFMatch.entityType.php`` (3416176b); the DDL they become: ``Civi/Schema/SqlGenerator.php``
(``required`` and every ``boolean`` are ``NOT NULL``, booleans default ``FALSE``, foreign
keys named ``FK_<table>_<column>``, table options ``ENGINE=InnoDB DEFAULT CHARACTER SET
utf8mb4 COLLATE utf8mb4_unicode_ci ROW_FORMAT=DYNAMIC`` for a database initialised by
civicrm-core >= 5.33).

Option values as shipped: ``xml/templates/civicrm_data/option_group/activity_type.sqldata.php``
(Meeting 1, Phone Call 2, Email 3, Outbound SMS 4, ..., Inbound Email 12, Bulk Email 19,
Print PDF Letter 22), ``activity_status`` (Scheduled 1 ... No_show 8, with ``filter`` 0 =
incomplete, 1 = completed, 2 = cancelled), ``activity_contacts`` (Activity Assignees 1,
Activity Source 2, Activity Targets 3), ``website_type`` (Work 1 - the default -, Main 2,
Social 3), ``priority`` (Urgent 1, Normal 2, Low 3).

How CiviCRM writes a contact (``CRM/Contact/BAO/Contact.php::add``,
``CRM/Contact/BAO/Individual::format``): ``contact_type`` ``Individual``/``Organization``;
an organisation's ``display_name`` and ``sort_name`` are its ``organization_name``; a
person's are ``"First Last"`` and ``"Last, First"`` (default ``display_name_format`` /
``sort_name_format`` settings); ``hash`` is a random 32-hex md5 on create; a current employer
sets ``employer_id`` and caches the employer's name in the person's ``organization_name``
(``Contact_Utils::createCurrentEmployerRelationship``, which also records an *Employee of*
relationship in ``civicrm_relationship``, not built here). Trash is ``is_deleted = 1``; the
contact's e-mail rows stay.

Foreign keys to tables not built here (``civicrm_phone``, ``civicrm_relationship``,
``civicrm_campaign``, ``civicrm_component``, ``civicrm_domain``) are left out.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

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

__all__ = ["ACTIVITY_TYPES", "DDL", "RECORD_TYPES", "TABLES", "CiviCRM", "database"]

_OPTIONS = (
    "ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci ROW_FORMAT=DYNAMIC"
)
_BOOL = "boolean NOT NULL DEFAULT FALSE"
_ID = "int unsigned NOT NULL AUTO_INCREMENT"

#: ``CREATE TABLE`` statements in the form ``Civi\\Schema\\SqlGenerator`` writes them.
DDL: tuple[str, ...] = (
    f"""CREATE TABLE `civicrm_contact` (
  `id` {_ID}, `contact_type` varchar(64), `external_identifier` varchar(64),
  `display_name` varchar(128), `organization_name` varchar(128),
  `contact_sub_type` varchar(255), `first_name` varchar(64), `middle_name` varchar(64),
  `last_name` varchar(64), `do_not_email` {_BOOL}, `do_not_phone` {_BOOL},
  `do_not_mail` {_BOOL}, `do_not_sms` {_BOOL}, `do_not_trade` {_BOOL}, `is_opt_out` {_BOOL},
  `legal_identifier` varchar(32), `sort_name` varchar(128), `nick_name` varchar(128),
  `legal_name` varchar(128), `image_URL` text, `preferred_communication_method` varchar(255),
  `preferred_language` varchar(5), `hash` varchar(32), `api_key` varchar(32),
  `source` varchar(255), `prefix_id` int unsigned, `suffix_id` int unsigned,
  `formal_title` varchar(64), `communication_style_id` int unsigned,
  `email_greeting_id` int unsigned, `email_greeting_custom` varchar(128),
  `email_greeting_display` varchar(255), `postal_greeting_id` int unsigned,
  `postal_greeting_custom` varchar(128), `postal_greeting_display` varchar(255),
  `addressee_id` int unsigned, `addressee_custom` varchar(128),
  `addressee_display` varchar(255), `job_title` varchar(255), `gender_id` int unsigned,
  `birth_date` date, `is_deceased` {_BOOL}, `deceased_date` date,
  `household_name` varchar(128), `primary_contact_id` int unsigned, `sic_code` varchar(8),
  `user_unique_id` varchar(255), `employer_id` int unsigned, `is_deleted` {_BOOL},
  `created_date` timestamp DEFAULT NULL,
  `modified_date` timestamp DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  `preferred_mail_format` varchar(8) DEFAULT 'Both',
  PRIMARY KEY (`id`),
  INDEX `index_contact_type`(`contact_type`),
  UNIQUE INDEX `UI_external_identifier`(`external_identifier`),
  INDEX `index_organization_name`(`organization_name`),
  INDEX `index_contact_sub_type`(`contact_sub_type`),
  INDEX `index_first_name`(`first_name`), INDEX `index_last_name`(`last_name`),
  INDEX `index_sort_name`(`sort_name`),
  INDEX `index_preferred_communication_method`(`preferred_communication_method`),
  INDEX `index_hash`(`hash`), INDEX `index_api_key`(`api_key`),
  INDEX `UI_prefix`(`prefix_id`), INDEX `UI_suffix`(`suffix_id`),
  INDEX `index_communication_style_id`(`communication_style_id`),
  INDEX `UI_gender`(`gender_id`), INDEX `index_is_deceased`(`is_deceased`),
  INDEX `index_household_name`(`household_name`),
  INDEX `index_is_deleted_sort_name`(`is_deleted`, `sort_name`, `id`),
  INDEX `index_created_date`(`created_date`), INDEX `index_modified_date`(`modified_date`),
  CONSTRAINT `FK_civicrm_contact_primary_contact_id` FOREIGN KEY (`primary_contact_id`)
    REFERENCES `civicrm_contact`(`id`) ON DELETE SET NULL,
  CONSTRAINT `FK_civicrm_contact_employer_id` FOREIGN KEY (`employer_id`)
    REFERENCES `civicrm_contact`(`id`) ON DELETE SET NULL
)
{_OPTIONS}""",
    f"""CREATE TABLE `civicrm_email` (
  `id` {_ID}, `contact_id` int unsigned, `location_type_id` int unsigned,
  `email` varchar(254), `is_primary` {_BOOL}, `is_billing` {_BOOL},
  `on_hold` int unsigned NOT NULL DEFAULT 0, `is_bulkmail` {_BOOL}, `hold_date` datetime,
  `reset_date` datetime, `signature_text` text DEFAULT NULL,
  `signature_html` text DEFAULT NULL,
  PRIMARY KEY (`id`),
  INDEX `index_location_type`(`location_type_id`), INDEX `UI_email`(`email`),
  INDEX `index_is_primary`(`is_primary`), INDEX `index_is_billing`(`is_billing`),
  CONSTRAINT `FK_civicrm_email_contact_id` FOREIGN KEY (`contact_id`)
    REFERENCES `civicrm_contact`(`id`) ON DELETE CASCADE
)
{_OPTIONS}""",
    f"""CREATE TABLE `civicrm_website` (
  `id` {_ID}, `contact_id` int unsigned, `url` varchar(2048), `website_type_id` int unsigned,
  PRIMARY KEY (`id`),
  INDEX `UI_website_type_id`(`website_type_id`),
  CONSTRAINT `FK_civicrm_website_contact_id` FOREIGN KEY (`contact_id`)
    REFERENCES `civicrm_contact`(`id`) ON DELETE CASCADE
)
{_OPTIONS}""",
    f"""CREATE TABLE `civicrm_activity` (
  `id` {_ID}, `source_record_id` int unsigned,
  `activity_type_id` int unsigned NOT NULL DEFAULT 1, `subject` varchar(255),
  `activity_date_time` datetime DEFAULT CURRENT_TIMESTAMP, `duration` int unsigned,
  `location` varchar(2048), `phone_id` int unsigned, `phone_number` varchar(64),
  `details` longtext, `status_id` int unsigned, `priority_id` int unsigned,
  `parent_id` int unsigned, `is_test` {_BOOL}, `medium_id` int unsigned DEFAULT NULL,
  `is_auto` {_BOOL}, `relationship_id` int unsigned DEFAULT NULL,
  `is_current_revision` boolean NOT NULL DEFAULT TRUE, `original_id` int unsigned,
  `result` varchar(255), `is_deleted` {_BOOL}, `campaign_id` int unsigned,
  `engagement_level` int unsigned, `weight` int, `is_star` {_BOOL},
  `created_date` timestamp DEFAULT CURRENT_TIMESTAMP,
  `modified_date` timestamp DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  INDEX `UI_source_record_id`(`source_record_id`),
  INDEX `UI_activity_type_id`(`activity_type_id`),
  INDEX `index_activity_date_time`(`activity_date_time`), INDEX `index_status_id`(`status_id`),
  INDEX `index_is_current_revision`(`is_current_revision`),
  INDEX `index_is_deleted`(`is_deleted`),
  CONSTRAINT `FK_civicrm_activity_parent_id` FOREIGN KEY (`parent_id`)
    REFERENCES `civicrm_activity`(`id`) ON DELETE SET NULL,
  CONSTRAINT `FK_civicrm_activity_original_id` FOREIGN KEY (`original_id`)
    REFERENCES `civicrm_activity`(`id`) ON DELETE SET NULL
)
{_OPTIONS}""",
    f"""CREATE TABLE `civicrm_activity_contact` (
  `id` {_ID}, `activity_id` int unsigned NOT NULL, `contact_id` int unsigned NOT NULL,
  `record_type_id` int unsigned,
  PRIMARY KEY (`id`),
  UNIQUE INDEX `UI_activity_contact`(`contact_id`, `activity_id`, `record_type_id`),
  INDEX `index_record_type`(`activity_id`, `record_type_id`),
  CONSTRAINT `FK_civicrm_activity_contact_activity_id` FOREIGN KEY (`activity_id`)
    REFERENCES `civicrm_activity`(`id`) ON DELETE CASCADE,
  CONSTRAINT `FK_civicrm_activity_contact_contact_id` FOREIGN KEY (`contact_id`)
    REFERENCES `civicrm_contact`(`id`) ON DELETE CASCADE
)
{_OPTIONS}""",
    f"""CREATE TABLE `civicrm_option_group` (
  `id` {_ID}, `name` varchar(64) NOT NULL, `title` varchar(255), `description` text,
  `data_type` varchar(128), `is_reserved` boolean NOT NULL DEFAULT TRUE,
  `is_active` boolean NOT NULL DEFAULT TRUE, `is_locked` {_BOOL},
  `option_value_fields` varchar(128) DEFAULT 'name,label,description',
  PRIMARY KEY (`id`),
  UNIQUE INDEX `UI_name`(`name`)
)
{_OPTIONS}""",
    f"""CREATE TABLE `civicrm_option_value` (
  `id` {_ID}, `option_group_id` int unsigned NOT NULL, `label` varchar(512) NOT NULL,
  `value` varchar(512) NOT NULL, `name` varchar(255), `grouping` varchar(255),
  `filter` int unsigned DEFAULT 0, `is_default` boolean NOT NULL DEFAULT FALSE,
  `weight` int unsigned NOT NULL, `description` text, `is_optgroup` {_BOOL},
  `is_reserved` {_BOOL}, `is_active` boolean NOT NULL DEFAULT TRUE,
  `component_id` int unsigned, `domain_id` int unsigned,
  `visibility_id` int unsigned DEFAULT NULL, `icon` varchar(255) DEFAULT NULL,
  `color` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`),
  INDEX `index_option_group_id_value`(`value`(128), `option_group_id`),
  INDEX `index_option_group_id_name`(`name`(128), `option_group_id`),
  CONSTRAINT `FK_civicrm_option_value_option_group_id` FOREIGN KEY (`option_group_id`)
    REFERENCES `civicrm_option_group`(`id`) ON DELETE CASCADE
)
{_OPTIONS}""",
    f"""CREATE TABLE `civicrm_uf_match` (
  `id` {_ID}, `domain_id` int unsigned NOT NULL, `uf_id` int unsigned NOT NULL,
  `uf_name` varchar(128), `contact_id` int unsigned, `language` varchar(5),
  PRIMARY KEY (`id`),
  INDEX `I_civicrm_uf_match_uf_id`(`uf_id`),
  INDEX `UI_uf_match_uf_id_domain_id`(`uf_id`, `domain_id`),
  UNIQUE INDEX `UI_uf_name_domain_id`(`uf_name`, `domain_id`),
  UNIQUE INDEX `UI_contact_domain_id`(`contact_id`, `domain_id`),
  CONSTRAINT `FK_civicrm_uf_match_contact_id` FOREIGN KEY (`contact_id`)
    REFERENCES `civicrm_contact`(`id`) ON DELETE CASCADE
)
{_OPTIONS}""",
)

TABLES: tuple[str, ...] = (
    "civicrm_contact",
    "civicrm_email",
    "civicrm_website",
    "civicrm_activity",
    "civicrm_activity_contact",
    "civicrm_option_group",
    "civicrm_option_value",
    "civicrm_uf_match",
)

#: ``activity_type`` values as shipped (name → value); the component ones are left out.
ACTIVITY_TYPES: dict[str, int] = {
    "Meeting": 1,
    "Phone Call": 2,
    "Email": 3,
    "SMS": 4,
    "Tell a Friend": 9,
    "Inbound Email": 12,
    "Bulk Email": 19,
    "Print PDF Letter": 22,
}
#: ``activity_contacts`` values: a contact's role in an activity.
RECORD_TYPES: dict[str, int] = {
    "Activity Assignees": 1,
    "Activity Source": 2,
    "Activity Targets": 3,
}
#: ``activity_status``: (label, name, value, filter) - filter 0 incomplete, 1 done, 2 cancelled
_STATUSES = (
    ("Scheduled", "Scheduled", 1, 0),
    ("Completed", "Completed", 2, 1),
    ("Cancelled", "Cancelled", 3, 2),
    ("Left Message", "Left Message", 4, 0),
    ("Unreachable", "Unreachable", 5, 2),
    ("Not Required", "Not Required", 6, 2),
    ("Available", "Available", 7, 0),
    ("No-show", "No_show", 8, 2),
)
_ACTIVITY_TYPE_ROWS = (
    # label, name, value, weight, filter, icon, description
    ("Meeting", "Meeting", 1, 1, 0, "fa-slideshare", None),
    ("Phone Call", "Phone Call", 2, 2, 0, "fa-phone", None),
    ("Email", "Email", 3, 3, 1, "fa-envelope-o", "Email sent."),
    ("Outbound SMS", "SMS", 4, 4, 1, "fa-mobile", "Text message (SMS) sent."),
    ("Tell a Friend", "Tell a Friend", 9, 9, 1, None,
     "Send information about a contribution campaign or event to a friend."),
    ("Inbound Email", "Inbound Email", 12, 12, 1, None, "Inbound Email."),
    ("Bulk Email", "Bulk Email", 19, 19, 1, None, "Bulk Email Sent."),
    ("Print/Merge Document", "Print PDF Letter", 22, 22, 0, "fa-file-pdf-o",
     "Export letters and other printable documents."),
)  # fmt: skip


@dataclass
class CiviCRM:
    """A live CiviCRM database (see the module docstring) and its screens."""

    url: str
    engine: AsyncEngine
    seed: Seed
    #: ``civicrm_option_group.id`` by name (``activity_type``, ``activity_status``...)
    option_group_ids: dict[str, int]
    #: the logged-in user's contact (``civicrm_uf_match``), source of activities
    admin_contact_id: int
    key: str = "civicrm"

    async def contacts(self) -> list[ListedContact]:
        """Search → Find Contacts (and the SearchKit *Contacts* display) for Individuals:
        ``is_deleted = 0`` (trash hidden), ``contact_type = 'Individual'``, shown by
        ``display_name`` with the primary e-mail (``civicrm_email.is_primary = 1``) and the
        cached employer name (``organization_name``), ordered by ``sort_name``."""
        found = await rows(
            self.engine,
            """SELECT c.id, c.display_name, c.organization_name, e.email
               FROM civicrm_contact c
               LEFT JOIN civicrm_email e ON e.contact_id = c.id AND e.is_primary = 1
               WHERE c.is_deleted = 0 AND c.contact_type = 'Individual'
               ORDER BY c.sort_name, c.id""",
        )
        return [
            ListedContact(
                id=str(r["id"]),
                name=r["display_name"],
                email=r["email"],
                company=r["organization_name"],
            )
            for r in found
        ]

    async def contact(self, contact_id: str) -> ContactDetail | None:
        """Contact Summary (``civicrm/contact/view``) of an Individual not in the trash: its
        e-mail block (primary first), the *Employer* link (``employer_id``), job title and
        websites."""
        async with self.engine.connect() as conn:
            found = await rows(
                conn,
                """SELECT c.*, emp.display_name AS employer_name FROM civicrm_contact c
                   LEFT JOIN civicrm_contact emp ON emp.id = c.employer_id
                        AND emp.is_deleted = 0
                   WHERE c.id = :id AND c.is_deleted = 0 AND c.contact_type = 'Individual'""",
                id=int(contact_id),
            )
            if not found:
                return None
            emails = await rows(
                conn,
                """SELECT email, is_primary FROM civicrm_email WHERE contact_id = :id
                   ORDER BY is_primary DESC, id""",
                id=int(contact_id),
            )
            websites = await rows(
                conn,
                "SELECT url, website_type_id FROM civicrm_website WHERE contact_id = :id",
                id=int(contact_id),
            )
        c = found[0]
        return ContactDetail(
            id=str(c["id"]),
            first_name=c["first_name"],
            last_name=c["last_name"],
            name=c["display_name"],
            title=c["job_title"],
            emails=tuple(Email(e["email"], bool(e["is_primary"])) for e in emails),
            company_id=str(c["employer_id"]) if c["employer_name"] else None,
            company=c["employer_name"],
            extra={
                "sort_name": c["sort_name"],
                "organization_name": c["organization_name"],
                "websites": {w["url"]: w["website_type_id"] for w in websites},
            },
        )

    async def companies(self) -> list[ListedCompany]:
        """Find Contacts for Organizations: ``is_deleted = 0``,
        ``contact_type = 'Organization'``, by ``sort_name``; the first website shown."""
        found = await rows(
            self.engine,
            """SELECT c.id, c.display_name,
                      (SELECT w.url FROM civicrm_website w WHERE w.contact_id = c.id
                       ORDER BY w.id LIMIT 1) AS url
               FROM civicrm_contact c
               WHERE c.is_deleted = 0 AND c.contact_type = 'Organization'
               ORDER BY c.sort_name, c.id""",
        )
        return [
            ListedCompany(id=str(r["id"]), name=r["display_name"], website=r["url"]) for r in found
        ]

    async def company(self, company_id: str) -> CompanyDetail | None:
        """An Organization's summary and its current employees (Individuals whose
        ``employer_id`` is the organisation, trash excluded)."""
        async with self.engine.connect() as conn:
            found = await rows(
                conn,
                """SELECT c.*, (SELECT w.url FROM civicrm_website w WHERE w.contact_id = c.id
                                ORDER BY w.id LIMIT 1) AS url
                   FROM civicrm_contact c
                   WHERE c.id = :id AND c.is_deleted = 0
                     AND c.contact_type = 'Organization'""",
                id=int(company_id),
            )
            if not found:
                return None
            people = await rows(
                conn,
                """SELECT id FROM civicrm_contact WHERE employer_id = :id AND is_deleted = 0
                   ORDER BY sort_name""",
                id=int(company_id),
            )
        c = found[0]
        return CompanyDetail(
            id=str(c["id"]),
            name=c["display_name"],
            website=c["url"],
            contact_ids=tuple(str(p["id"]) for p in people),
            extra={"organization_name": c["organization_name"], "sort_name": c["sort_name"]},
        )

    async def timeline(self, contact_id: str) -> list[TimelineEntry]:
        """The contact's Activities tab (``CRM_Activity_BAO_Activity::getContactActivity``
        selector): activities the contact is linked to in ``civicrm_activity_contact`` (any
        role), ``is_deleted = 0`` and ``is_test = 0``, newest ``activity_date_time`` first; the
        kind is the activity type's name."""
        found = await rows(
            self.engine,
            """SELECT DISTINCT a.id, a.subject, a.details, a.activity_date_time,
                      ov.name AS type_name
               FROM civicrm_activity_contact ac
               JOIN civicrm_activity a ON a.id = ac.activity_id
               LEFT JOIN civicrm_option_group og ON og.name = 'activity_type'
               LEFT JOIN civicrm_option_value ov ON ov.option_group_id = og.id
                    AND ov.value = a.activity_type_id
               WHERE ac.contact_id = :id AND a.is_deleted = 0 AND a.is_test = 0
               ORDER BY a.activity_date_time DESC, a.id DESC""",
            id=int(contact_id),
        )
        return [
            TimelineEntry(
                id=str(r["id"]),
                kind=r["type_name"],
                subject=r["subject"],
                body=r["details"],
                at=r["activity_date_time"],
            )
            for r in found
        ]

    async def open_tasks(self, contact_id: str) -> list[OpenTask]:
        """CiviCRM has no task entity: a to-do is an activity whose status is *incomplete*
        (``activity_status`` options with ``filter = 0``, as
        ``CRM_Activity_BAO_Activity::getStatusesByType(INCOMPLETE)`` reads them) where the
        contact is the target; the assignee is the ``Activity Assignees`` contact."""
        found = await rows(
            self.engine,
            """SELECT a.id, a.subject, st.name AS status, a.activity_date_time,
                      (SELECT MIN(asg.contact_id) FROM civicrm_activity_contact asg
                       WHERE asg.activity_id = a.id AND asg.record_type_id = 1) AS assignee
               FROM civicrm_activity_contact ac
               JOIN civicrm_activity a ON a.id = ac.activity_id
               JOIN civicrm_option_group sg ON sg.name = 'activity_status'
               JOIN civicrm_option_value st ON st.option_group_id = sg.id
                    AND st.value = a.status_id
               WHERE ac.contact_id = :id AND ac.record_type_id = 3 AND a.is_deleted = 0
                 AND a.is_test = 0 AND st.filter = 0
               ORDER BY a.activity_date_time""",
            id=int(contact_id),
        )
        return [
            OpenTask(
                id=str(r["id"]),
                title=r["subject"],
                status=r["status"],
                due=r["activity_date_time"],
                assignee_id=str(r["assignee"]) if r["assignee"] is not None else None,
            )
            for r in found
        ]

    async def users(self) -> list[ListedUser]:
        """Contacts that are CMS users (``civicrm_uf_match``) and not in the trash - who an
        activity can be assigned to as a logged-in person."""
        found = await rows(
            self.engine,
            """SELECT c.id, c.display_name, e.email FROM civicrm_uf_match uf
               JOIN civicrm_contact c ON c.id = uf.contact_id AND c.is_deleted = 0
               LEFT JOIN civicrm_email e ON e.contact_id = c.id AND e.is_primary = 1
               ORDER BY c.sort_name""",
        )
        return [
            ListedUser(id=str(r["id"]), name=r["display_name"], email=r["email"]) for r in found
        ]


def _hash() -> str:
    """``md5(uniqid(rand(), TRUE))``: 32 hex characters."""
    return hashlib.md5(str(random.random()).encode()).hexdigest()


async def _insert(conn: AsyncConnection, table: str, values: dict[str, object]) -> int:
    columns = ", ".join(f"`{c}`" for c in values)
    params = ", ".join(f":{c}" for c in values)
    result = await conn.execute(
        sa.text(f"INSERT INTO `{table}` ({columns}) VALUES ({params})"), values
    )
    return int(result.lastrowid)


async def _options(conn: AsyncConnection) -> dict[str, int]:
    groups: dict[str, int] = {}
    for name, title, data_type, locked in (
        ("activity_type", "Activity Type", "Integer", False),
        ("activity_status", "Activity Status", "Integer", False),
        ("activity_contacts", "Activity Contacts", None, True),
        ("priority", "Priority", None, False),
        ("website_type", "Website Type", None, False),
    ):
        groups[name] = await _insert(
            conn,
            "civicrm_option_group",
            {"name": name, "title": title, "data_type": data_type, "is_reserved": True,
             "is_active": True, "is_locked": locked},
        )  # fmt: skip

    async def value(group: str, label: str, name: str, val: int, weight: int,
                    **extra: object) -> None:  # fmt: skip
        await _insert(
            conn,
            "civicrm_option_value",
            {"option_group_id": groups[group], "label": label, "value": str(val),
             "name": name, "weight": weight, "is_active": True, **extra},
        )  # fmt: skip

    for label, name, val, weight, filt, icon, description in _ACTIVITY_TYPE_ROWS:
        await value("activity_type", label, name, val, weight, filter=filt, icon=icon,
                    description=description, is_reserved=True)  # fmt: skip
    for label, name, val, filt in _STATUSES:
        await value("activity_status", label, name, val, val, filter=filt,
                    is_default=val == 1, is_reserved=val in (1, 2, 3))  # fmt: skip
    for name, val in RECORD_TYPES.items():
        await value("activity_contacts", name, name, val, val, is_reserved=False)
    for name, val in (("Urgent", 1), ("Normal", 2), ("Low", 3)):
        await value("priority", name, name, val, val, is_default=val == 2)
    for name, val in (("Work", 1), ("Main", 2), ("Social", 3)):
        await value("website_type", name, name, val, val, is_default=val == 1)
    return groups


async def _seed(conn: AsyncConnection) -> tuple[Seed, dict[str, int], int]:
    groups = await _options(conn)
    created = datetime.now().replace(microsecond=0) - timedelta(days=30)
    base = {"preferred_language": "en_US", "preferred_mail_format": "Both",
            "communication_style_id": 1, "created_date": created}  # fmt: skip

    async def organization(name: str, website: str | None) -> int:
        cid = await _insert(
            conn,
            "civicrm_contact",
            {**base, "contact_type": "Organization", "organization_name": name,
             "display_name": name, "sort_name": name, "hash": _hash(), "addressee_id": 3,
             "addressee_display": name},
        )  # fmt: skip
        if website:
            await _insert(
                conn, "civicrm_website",
                {"contact_id": cid, "url": website, "website_type_id": 1},
            )  # fmt: skip
        return cid

    async def individual(
        first: str, last: str, email: str | None, employer: tuple[int, str] | None,
        *, deleted: bool = False, title: str | None = None,
    ) -> int:  # fmt: skip
        cid = await _insert(
            conn,
            "civicrm_contact",
            {**base, "contact_type": "Individual", "first_name": first, "last_name": last,
             "display_name": f"{first} {last}", "sort_name": f"{last}, {first}",
             "hash": _hash(), "job_title": title, "is_deleted": deleted,
             "employer_id": employer[0] if employer else None,
             "organization_name": employer[1] if employer else None,
             "email_greeting_id": 1, "email_greeting_display": f"Dear {first}",
             "postal_greeting_id": 1, "postal_greeting_display": f"Dear {first}",
             "addressee_id": 1, "addressee_display": f"{first} {last}"},
        )  # fmt: skip
        if email:
            await _insert(
                conn, "civicrm_email",
                {"contact_id": cid, "location_type_id": 1, "email": email,
                 "is_primary": True},
            )  # fmt: skip
        return cid

    domain_org = await organization("Default Organization", None)
    acme = await organization("Acme Corporation", "https://acme.example/")
    globex = await organization("Globex", "http://www.globex.example")
    admin = await individual(
        "Ada", "Admin", "admin@crm.example", (domain_org, "Default Organization")
    )
    await _insert(
        conn, "civicrm_uf_match",
        {"domain_id": 1, "uf_id": 1, "uf_name": "admin@crm.example", "contact_id": admin},
    )  # fmt: skip
    jane = await individual(
        "Jane", "Doe", "jane.doe@acme.example", (acme, "Acme Corporation"),
        title="Head of Sales",
    )  # fmt: skip
    await _insert(
        conn, "civicrm_email",
        {"contact_id": jane, "location_type_id": 2, "email": "jane@home.example",
         "is_primary": False},
    )  # fmt: skip
    await _insert(
        conn, "civicrm_website",
        {"contact_id": jane, "url": "https://www.linkedin.com/in/jane-doe",
         "website_type_id": 3},
    )  # fmt: skip
    old = await individual(
        "Oliver", "Gone", "oliver.gone@acme.example", (acme, "Acme Corporation"),
        deleted=True,
    )  # fmt: skip
    await individual("John", "Smith", "John.Smith@Globex.Example", (globex, "Globex"))

    # A logged phone call (Completed) and a scheduled follow-up assigned to the admin: the
    # user is the source, Jane the target.
    for subject, type_value, status, when, assignee in (
        ("Intro call", 2, 2, created + timedelta(days=28), None),
        ("Send the proposal", 1, 1, created + timedelta(days=33), admin),
    ):
        activity = await _insert(
            conn,
            "civicrm_activity",
            {"activity_type_id": type_value, "subject": subject,
             "activity_date_time": when, "details": "<p>Q3 roll-out, 200 seats.</p>",
             "status_id": status, "priority_id": 2, "created_date": created},
        )  # fmt: skip
        links = [(admin, RECORD_TYPES["Activity Source"]),
                 (jane, RECORD_TYPES["Activity Targets"])]  # fmt: skip
        if assignee:
            links.append((assignee, RECORD_TYPES["Activity Assignees"]))
        for contact_id, record_type in links:
            await _insert(
                conn, "civicrm_activity_contact",
                {"activity_id": activity, "contact_id": contact_id,
                 "record_type_id": record_type},
            )  # fmt: skip

    seed = Seed(
        contact_id=str(jane),
        contact_email="jane.doe@acme.example",
        deleted_contact_id=str(old),
        deleted_contact_email="oliver.gone@acme.example",
        company_id=str(acme),
        company_name="Acme Corporation",
        company_website="https://acme.example/",
        company_domain="acme.example",
        other_company_id=str(globex),
        user_id=str(admin),
    )
    return seed, groups, admin


@asynccontextmanager
async def database(server_url: str = MYSQL_URL) -> AsyncIterator[CiviCRM]:
    """A fresh CiviCRM database on ``server_url``'s MariaDB server, seeded; dropped after.

    Seed: the option groups/values above; organisations *Default Organization* (the domain's),
    *Acme Corporation* (website ``https://acme.example/``) and *Globex*
    (``http://www.globex.example``); Individuals *Ada Admin* (a CMS user via
    ``civicrm_uf_match``), *Jane Doe* (employee of Acme, primary ``jane.doe@acme.example``, a
    second address, a LinkedIn URL as a *Social* website), *Oliver Gone* (in the trash) and
    *John Smith* (``John.Smith@Globex.Example``); on Jane a completed phone call and a
    scheduled meeting assigned to Ada.
    """
    async with fresh_database(server_url, "civicrm", DDL) as (url, engine):
        async with engine.begin() as conn:
            seed, groups, admin = await _seed(conn)
        yield CiviCRM(
            url=url, engine=engine, seed=seed, option_group_ids=groups, admin_contact_id=admin
        )
