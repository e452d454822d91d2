"""Typed options of the HubSpot driver (``backend.options`` in the YAML)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from backends.base import DriverOptions
from backends.http import RateLimitOptions

__all__ = ["HubSpotOptions", "HubSpotRateLimit"]


class HubSpotRateLimit(RateLimitOptions):
    """``backend.options.rate_limit``: HubSpot's two budgets and where they are kept.

    HubSpot's limits belong to the portal (the 10-second one per app, search and the daily
    quota per account), so every replica must share one budget: set ``redis_url``.
    """

    #: Calls per rolling 10 s (HubSpot: 100 Free/Starter, 190 Pro/Enterprise per app). The
    #: default leaves a tenth for other clients of the same app.
    requests_per_10s: int = Field(default=90, ge=1)
    #: Search calls per second (HubSpot: 5 per account, shared by every app in the portal).
    searches_per_second: int = Field(default=4, ge=1)


class HubSpotOptions(DriverOptions):
    """Options of :class:`backends.hubspot.HubSpotBackend`.

    Only ``token`` is required. Every limit defaults to a value that keeps a Free/Starter
    portal (100 requests per 10 s per app, search 5/s per account) out of 429s.
    """

    #: Private-app token or Service Key (``pat-na1-...``), sent as ``Authorization: Bearer``.
    #: Write ``token: ${HUBSPOT_TOKEN}`` in the YAML; it is never logged or echoed.
    token: SecretStr
    base_url: str = "https://api.hubapi.com"
    #: ``v3`` (legacy /crm/v3 + /crm/v4 paths) or a date version (``2026-03``, ``2026-09``).
    api_version: Literal["v3", "2026-03", "2026-09"] = "v3"

    # -- portal / record links --------------------------------------------------------------
    #: The portal (hub) id; used only for record-link templates. Read from the account-info
    #: API when not set.
    portal_id: str | None = None
    #: The HubSpot web app host (``app-eu1.hubspot.com`` for EU portals).
    app_host: str | None = None

    # -- idempotency ----------------------------------------------------------------------------
    #: Unique custom property holding Enginy's ``externalId`` on contacts and companies.
    external_id_property: str = "enginy_external_id"
    #: Create the external-id property (and the engagement properties) when missing. When
    #: ``false`` and they are missing, ``open()`` fails with a message naming them.
    create_properties: bool = True
    #: Group in which the driver creates its properties.
    property_group: str = "enginy"
    #: Unique property on engagements holding the activity idempotency key.
    activity_key_property: str = "enginy_activity_key"
    #: JSON property on engagements with the activity's type, direction and metadata.
    activity_data_property: str = "enginy_activity_data"

    # -- mapping policy -------------------------------------------------------------------------
    #: A field whose HubSpot property does not exist in the portal (Enginy's engagement fields,
    #: most often): ``create`` a text property in ``property_group`` and write it (default),
    #: ``note`` (write such fields into a note on the record), ``drop`` it (named in the
    #: response and logged once) or ``reject`` the record.
    unknown_properties: Literal["create", "note", "drop", "reject"] = "create"
    #: Unique properties the driver owns and keeps in step with the record, so lookups read
    #: HubSpot's primary store instead of the lagging search index: the normalised LinkedIn
    #: URL (contacts and companies) and the normalised company domain.
    linkedin_key_property: str = "enginy_linkedin_key"
    domain_key_property: str = "enginy_domain_key"
    #: Unique property with a company domain's name under any extension (``acme`` for
    #: ``acme.co.uk``), made on the first use of a ``domain_any_extension`` match key.
    domain_name_key_property: str = "enginy_domain_name_key"
    #: Extra properties read back on find/get (besides the default map and custom ones).
    read_properties: tuple[str, ...] = ()

    # -- activities / tasks ---------------------------------------------------------------------
    #: Where a ``LINKEDIN_CONNECTION`` activity goes.
    linkedin_connection_as: Literal["communication", "note", "task"] = "task"
    #: Associate contacts to companies as *primary* (type 1) instead of unlabelled (279).
    primary_company: bool = False

    # -- transport, limits, retries ---------------------------------------------------------------
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    write_timeout: float = Field(30.0, gt=0)
    pool_timeout: float = Field(10.0, gt=0)
    max_connections: int = Field(20, ge=1)
    #: Total time one driver call (one Enginy request) may spend, retries and waits included;
    #: past it the call fails with ``Unavailable`` (503 to Enginy, which retries).
    budget_seconds: float = Field(25.0, gt=0)
    #: Attempts per HTTP call (first try included).
    max_attempts: int = Field(5, ge=1)
    #: Client-side rate budgets, per process or shared by every replica through Redis.
    rate_limit: HubSpotRateLimit = Field(default_factory=HubSpotRateLimit)

    # -- caches ---------------------------------------------------------------------------------
    owners_ttl_seconds: float = Field(300.0, ge=0)
    properties_ttl_seconds: float = Field(600.0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// for a local fake)")
        return value.rstrip("/")

    @field_validator("token")
    @classmethod
    def _non_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty (set it from ${HUBSPOT_TOKEN})")
        return value
