"""REST driver: Enginy's contract onto any CRM with an HTTP API, configured by YAML alone.

Connects to
    the HTTP API at ``base_url``, as the manifest in ``backend.options`` describes it: how to
    authenticate (:mod:`.auth`), each operation's request and where its answer holds what
    (:mod:`.requests`), how lists page (:mod:`.pagination`), how records are found by each
    match key (:mod:`.finding`), what an error means (:mod:`.errors`), and where fields the
    CRM has no column for go (:mod:`.customfields`). The manifest is validated when the
    configuration loads (:mod:`.manifest`), every problem named by its YAML path.
Capabilities
    contacts and companies (core); ASSOCIATIONS, ACTIVITIES, TASKS and USERS when the manifest
    configures ``associations``, ``activities``, ``tasks``, ``users`` (the instance declares
    what its manifest configures; an unconfigured group answers the contract's 501).
Options
    :class:`RestOptions` (the manifest); presets for BottleCRM, Directus and Pipedrive in
    ``examples/rest/``. ``dry_run: true`` sends nothing and logs what would be sent.
Limits and quirks handled
    Creates are exactly once across retries (an idempotency header, else a lookup by the
    stored external id before sending again, see :mod:`.records`); a create refused as a
    duplicate answers with the existing record; APIs without batch endpoints get one call per
    record with bounded concurrency; filters that are not exact (``icontains``) or fuzzy
    searches are checked against the normalised value; short pages never end a walk alone;
    ``Retry-After`` as seconds, an HTTP date, a body field or a reset header; OAuth2 tokens
    refreshed once for all concurrent callers. The HTTP layer (client, retries, rate budget
    per process or in Redis) is the one the HubSpot driver uses (:mod:`backends.http`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from backends.base import Capability, Entity
from backends.rest.client import DRY_RUN_PREFIX
from backends.rest.manifest import RestOptions
from backends.rest.tasks import TasksMixin

__all__ = ["DRY_RUN_PREFIX", "RestBackend", "RestOptions"]


class RestBackend(TasksMixin):
    """The declarative REST driver (see the module docstring)."""

    name: ClassVar[str] = "rest"
    #: Every group the driver can serve; an instance declares those its manifest configures.
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.ASSOCIATIONS, Capability.ACTIVITIES, Capability.TASKS, Capability.USERS}
    )
    Options = RestOptions
    #: No defaults: the preset's ``mapping:`` names the CRM's fields.
    default_field_map: ClassVar[Mapping[Entity, Mapping[str, str]]] = {}
