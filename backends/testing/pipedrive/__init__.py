"""A stateful, in-memory fake of a Pipedrive company (the API subset the Pipedrive preset of the
REST driver uses), served through an httpx transport::

    pipedrive = FakePipedrive(api_token="pd-test")
    driver = RestBackend(options, transport=pipedrive.transport())

Each behaviour follows Pipedrive's public API reference, so the preset is tested against
Pipedrive's rules rather than an idealised API. The sources:

* Pipedrive's own generated client reference, github.com/pipedrive/client-php, docs/versions/v2:
  ``Api/PersonsApi.md`` (POST/GET/PATCH ``/persons``, ``GET /persons?ids=`` up to 100 ids with
  unknown ones left out, cursor pages of at most 500, ``/persons/search`` with ``term``,
  ``fields``, ``exact_match`` not case sensitive, a 2-character minimum unless exact, custom
  fields searchable by type), ``Model/PersonRequestBody.md`` and ``Model/PersonItem.md`` (``name``,
  ``emails``/``phones`` as ``{value, primary, label}`` with only ``value`` required, read-only
  ``first_name``/``last_name``, ``custom_fields`` by 40-character hash, ``null`` clears one),
  ``Model/PersonSearchItemItem.md``, ``Api/OrganizationsApi.md`` and ``Model/OrganizationItem.md``,
  ``Api/PersonFieldsApi.md`` with ``Model/CreatePersonFieldRequest.md`` and
  ``Model/PersonFieldItem.md`` (``field_name``, ``field_type``, the ``field_code`` hash),
  ``Api/ActivitiesApi.md`` with ``Model/ActivityRequestBody.md`` and ``Model/ActivityItem.md``
  (a primary participant sets ``person_id``; ``done``, ``marked_as_done_time``; filters
  ``person_id``, ``org_id``, ``ids``, ``done``);
* developers.pipedrive.com/docs/api/v1/ActivityTypes (``Activity.type`` is an activity type's
  ``key_string``; the default types) and the v1 Notes and Users endpoints (``POST /v1/notes``
  with ``content`` and a person or organization, start/limit pages; ``GET /v1/users``);
* pipedrive.readme.io/docs/core-api-concepts-responses (``{"success", "data",
  "additional_data"}``, errors ``{"success": false, "error", "error_info"}``),
  .../core-api-concepts-rate-limiting (a per-token 2-second window, ``x-ratelimit-limit``,
  ``x-ratelimit-remaining``, ``x-ratelimit-reset``, 429 when exceeded) and
  .../marketplace-oauth-and-api-proxy-status-codes (401 for a missing or invalid token).

Where the reference is silent this fake says so in a comment (the split of ``name`` into first
and last names). ``calls`` lists every request answered; ``fail`` scripts faults before or
after the work is done, or a lost answer.
"""

from __future__ import annotations

from backends.testing.pipedrive.fake import Call, FakePipedrive
from backends.testing.pipedrive.store import ACTIVITY_TYPES, FakeError, Store

__all__ = ["ACTIVITY_TYPES", "Call", "FakeError", "FakePipedrive", "Store"]
