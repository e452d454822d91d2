"""HubSpot driver: Enginy's contract onto the HubSpot CRM REST API (or a HubSpot-like one).

Connects to
    ``https://api.hubapi.com`` (``base_url``) with a private-app token or Service Key sent as
    ``Authorization: Bearer``; legacy ``/crm/v3`` + ``/crm/v4`` paths or the date-versioned
    ``/crm/objects/2026-03/...`` family (``api_version``), all spelt in :mod:`.paths`.
Capabilities
    contacts and companies (core), ASSOCIATIONS (v4 default contact→company, type 279; primary
    1 on request), ACTIVITIES (emails, LinkedIn communications, notes, connection tasks), TASKS,
    USERS (owners). Not BROWSE: the portal itself is the place to browse.
Options
    :class:`HubSpotOptions` — ``token`` (required), ``api_version``, the unique properties the
    driver owns (``external_id_property``, ``linkedin_key_property``, ``domain_key_property``,
    created by ``open()``; ``domain_name_key_property``, created on the first use of a
    ``domain_any_extension`` key), ``unknown_properties`` (create/note/drop/reject),
    ``linkedin_connection_as``, ``rate_limit`` (``requests_per_10s``, ``searches_per_second``,
    ``redis_url`` for a budget shared by every replica), ``budget_seconds``, cache TTLs,
    timeouts. See ``docs/hubspot.md``.
Limits and quirks handled
    A stock portal: HubSpot-defined properties only in the default mapping, enumeration values
    translated by option label or value (a value with no option drops that field, named in the
    result); 100 inputs per batch call; 207 opted into with a unique ``objectWriteTraceId`` per
    input; 409 duplicate email resolved to the existing contact; companies de-duplicated by
    domain (and HubSpot's own companies for contact e-mail domains, through the contacts'
    associations); never search to de-duplicate after a write (search lags writes):
    normalised keys live in unique properties read with ``batch/read``, and records without
    them (made by hand) are found by search, ``CONTAINS_TOKEN`` with ``*`` for LinkedIn URLs,
    each candidate confirmed by the normaliser; search 5/s, 5 filter groups, 3,000-char bodies,
    lower-case ``IN`` values, a filter on a missing property skipped; 429
    ``TEN_SECONDLY_ROLLING`` waits the window, search's secondly limit ~1 s, ``DAILY`` is not
    retried; 423/477/5xx/timeouts retried within a per-call budget, then ``Unavailable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from backends.base import Capability, Entity
from backends.hubspot.associations import AssociationsMixin
from backends.hubspot.check import SetupMixin, SetupReport
from backends.hubspot.client import HubSpotClient
from backends.hubspot.options import HubSpotOptions
from backends.hubspot.owners import OwnersMixin
from backends.hubspot.records import RecordsMixin
from backends.hubspot.tasks import TasksMixin
from backends.hubspot.updates import UpdatesMixin

__all__ = ["HubSpotBackend", "HubSpotClient", "HubSpotOptions", "SetupReport"]


class HubSpotBackend(
    RecordsMixin, UpdatesMixin, AssociationsMixin, TasksMixin, OwnersMixin, SetupMixin
):
    """The HubSpot driver (see the module docstring for what it does and how)."""

    name: ClassVar[str] = "hubspot"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.ASSOCIATIONS, Capability.ACTIVITIES, Capability.TASKS, Capability.USERS}
    )
    Options = HubSpotOptions
    #: Enginy name → HubSpot property: HubSpot-defined properties only, so a stock portal
    #: takes every mapped field (``industry`` is an enumeration: values are translated to
    #: its options).
    default_field_map: ClassVar[Mapping[Entity, Mapping[str, str]]] = {
        Entity.CONTACT: {
            "email": "email",
            "firstName": "firstname",
            "lastName": "lastname",
            "phone": "phone",
            "mobilePhone": "mobilephone",
            "company": "company",
            "title": "jobtitle",
            "linkedinUrl": "hs_linkedin_url",
            "website": "website",
            "city": "city",
            "country": "country",
            "ownerId": "hubspot_owner_id",
        },
        Entity.COMPANY: {
            "name": "name",
            "domain": "domain",
            "website": "website",
            "industry": "industry",
            "numberOfEmployees": "numberofemployees",
            "linkedinUrl": "linkedin_company_page",
            "phone": "phone",
            "city": "city",
            "country": "country",
            "description": "description",
            "ownerId": "hubspot_owner_id",
        },
    }
