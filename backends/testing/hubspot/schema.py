"""Static data of the HubSpot fake: the HubSpot-defined properties and association type ids.

Kept apart from :mod:`backends.testing.hubspot.portal` so each file stays readable. Values follow
``shared/contract/hubspot.md`` (§2, §5.2, §6).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ASSOCIATION_TYPES", "OBJECT_ALIASES", "TYPE_IDS", "default_properties"]

#: Path spellings of the object types → canonical plural name.
OBJECT_ALIASES = {
    "contacts": "contacts",
    "contact": "contacts",
    "0-1": "contacts",
    "companies": "companies",
    "company": "companies",
    "0-2": "companies",
    "tasks": "tasks",
    "task": "tasks",
    "0-27": "tasks",
    "emails": "emails",
    "email": "emails",
    "0-49": "emails",
    "communications": "communications",
    "communication": "communications",
    "0-18": "communications",
    "notes": "notes",
    "note": "notes",
    "0-46": "notes",
}
TYPE_IDS = {
    "contacts": "0-1",
    "companies": "0-2",
    "tasks": "0-27",
    "emails": "0-49",
    "communications": "0-18",
    "notes": "0-46",
}

#: HUBSPOT_DEFINED association type id → (from type, to type). Direction matters.
ASSOCIATION_TYPES: dict[int, tuple[str, str]] = {
    279: ("contacts", "companies"),
    1: ("contacts", "companies"),
    280: ("companies", "contacts"),
    2: ("companies", "contacts"),
    203: ("contacts", "tasks"),
    197: ("contacts", "emails"),
    201: ("contacts", "notes"),
    82: ("contacts", "communications"),
    191: ("companies", "tasks"),
    185: ("companies", "emails"),
    189: ("companies", "notes"),
    88: ("companies", "communications"),
    204: ("tasks", "contacts"),
    192: ("tasks", "companies"),
    198: ("emails", "contacts"),
    186: ("emails", "companies"),
    202: ("notes", "contacts"),
    190: ("notes", "companies"),
    81: ("communications", "contacts"),
    87: ("communications", "companies"),
}
#: The unlabelled ("default") type per direction.
DEFAULT_TYPE = {pair: tid for tid, pair in ASSOCIATION_TYPES.items() if tid not in (1, 2)}


def _p(name: str, type: str = "string", field: str = "text", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "label": name.replace("_", " ").title(),
        "type": type,
        "fieldType": field,
        "groupName": "hubspot",
        "hubspotDefined": True,
        "hasUniqueValue": False,
        "options": [],
        "archived": False,
        "modificationMetadata": {"readOnlyValue": False, "archivable": False},
        **extra,
    }


def _ro(name: str, type: str = "string") -> dict[str, Any]:
    return _p(name, type, modificationMetadata={"readOnlyValue": True, "archivable": False})


def _enum(name: str, values: list[str] | list[tuple[str, str]]) -> dict[str, Any]:
    """An enumeration; ``values`` are internal values (labelled in title case) or
    ``(label, value)`` pairs."""
    pairs = [v if isinstance(v, tuple) else (v.replace("_", " ").title(), v) for v in values]
    options = [
        {"label": label, "value": value, "hidden": False, "displayOrder": i}
        for i, (label, value) in enumerate(pairs)
    ]
    return _p(name, "enumeration", "select", options=options)


#: (label, internal value) of HubSpot's classic company ``industry`` options (a subset).
INDUSTRIES: list[tuple[str, str]] = [
    ("Accounting", "ACCOUNTING"),
    ("Banking", "BANKING"),
    ("Biotechnology", "BIOTECHNOLOGY"),
    ("Computer & Network Security", "COMPUTER_NETWORK_SECURITY"),
    ("Computer Hardware", "COMPUTER_HARDWARE"),
    ("Computer Software", "COMPUTER_SOFTWARE"),
    ("Construction", "CONSTRUCTION"),
    ("Consumer Goods", "CONSUMER_GOODS"),
    ("Education Management", "EDUCATION_MANAGEMENT"),
    ("Financial Services", "FINANCIAL_SERVICES"),
    ("Hospital & Health Care", "HOSPITAL_HEALTH_CARE"),
    ("Information Technology and Services", "INFORMATION_TECHNOLOGY_AND_SERVICES"),
    ("Insurance", "INSURANCE"),
    ("Internet", "INTERNET"),
    ("Management Consulting", "MANAGEMENT_CONSULTING"),
    ("Marketing and Advertising", "MARKETING_AND_ADVERTISING"),
    ("Real Estate", "REAL_ESTATE"),
    ("Retail", "RETAIL"),
    ("Staffing and Recruiting", "STAFFING_AND_RECRUITING"),
    ("Telecommunications", "TELECOMMUNICATIONS"),
]
LIFECYCLE_STAGES: list[tuple[str, str]] = [
    ("Subscriber", "subscriber"),
    ("Lead", "lead"),
    ("Marketing Qualified Lead", "marketingqualifiedlead"),
    ("Sales Qualified Lead", "salesqualifiedlead"),
    ("Opportunity", "opportunity"),
    ("Customer", "customer"),
    ("Evangelist", "evangelist"),
    ("Other", "other"),
]


def default_properties() -> dict[str, dict[str, dict[str, Any]]]:
    """A fresh copy of the HubSpot-defined property definitions per object type."""
    owner = _p("hubspot_owner_id", "enumeration", "select")
    common = [_ro("hs_object_id", "number"), _ro("createdate", "datetime"), owner]
    contacts = [
        *common,
        _ro("lastmodifieddate", "datetime"),
        _p("email"),
        _p("firstname"),
        _p("lastname"),
        _p("phone", "string", "phonenumber"),
        _p("mobilephone"),
        _p("company"),
        _p("jobtitle"),
        _p("website"),
        _p("hs_linkedin_url"),
        _p("address"),
        _p("city"),
        _p("state"),
        _p("zip"),
        _p("country"),
        _p("industry"),
        _p("hs_additional_emails"),
        _enum("lifecyclestage", LIFECYCLE_STAGES),
        _enum(
            "hs_lead_status",
            [
                "NEW",
                "OPEN",
                "IN_PROGRESS",
                "OPEN_DEAL",
                "UNQUALIFIED",
                "ATTEMPTED_TO_CONTACT",
                "CONNECTED",
                "BAD_TIMING",
            ],
        ),
    ]
    companies = [
        *common,
        _ro("hs_lastmodifieddate", "datetime"),
        _p("name"),
        _p("domain"),
        _enum("industry", INDUSTRIES),
        _enum("type", ["PROSPECT", "PARTNER", "RESELLER", "VENDOR", "OTHER"]),
        _enum("lifecyclestage", LIFECYCLE_STAGES),
        _p("numberofemployees", "number", "number"),
        _p("annualrevenue", "number", "number"),
        _p("founded_year"),
        _p("linkedin_company_page"),
        _p("website"),
        _p("phone"),
        _p("address"),
        _p("city"),
        _p("state"),
        _p("zip"),
        _p("country"),
        _p("description", "string", "textarea"),
    ]
    timestamp = _p("hs_timestamp", "datetime", "date")
    tasks = [
        *common,
        timestamp,
        _p("hs_task_subject"),
        _p("hs_task_body", "string", "html"),
        _enum("hs_task_status", ["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"]),
        _enum("hs_task_priority", ["NONE", "LOW", "MEDIUM", "HIGH"]),
        _enum("hs_task_type", ["EMAIL", "CALL", "TODO", "LINKED_IN_MESSAGE", "LINKED_IN_CONNECT"]),
        _ro("hs_task_completion_date", "datetime"),
        _p("hs_task_reminders"),
    ]
    emails = [
        *common,
        timestamp,
        _enum("hs_email_direction", ["EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"]),
        _enum("hs_email_status", ["BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"]),
        _p("hs_email_subject"),
        _p("hs_email_text"),
        _p("hs_email_html"),
        _p("hs_email_headers"),
        _p("hs_attachment_ids"),
        _ro("hs_email_from_email"),
    ]
    communications = [
        *common,
        timestamp,
        _enum("hs_communication_channel_type", ["LINKEDIN_MESSAGE", "WHATS_APP", "SMS"]),
        _enum("hs_communication_logged_from", ["CRM"]),
        _p("hs_communication_body"),
    ]
    notes = [*common, timestamp, _p("hs_note_body", "string", "html"), _p("hs_attachment_ids")]
    table = {
        "contacts": contacts,
        "companies": companies,
        "tasks": tasks,
        "emails": emails,
        "communications": communications,
        "notes": notes,
    }
    return {t: {p["name"]: p for p in props} for t, props in table.items()}
