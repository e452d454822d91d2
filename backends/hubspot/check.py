"""Set-up check: token, scopes, driver properties, and the record-link templates.

``enginy-adapter check`` / ``links`` call :meth:`SetupMixin.check` and print its report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from backends.base import AuthFailed, BackendError, Entity
from backends.base import SetupReport as CheckSummary
from backends.hubspot.core import OBJECT_TYPES, HubSpotCore

__all__ = ["SetupMixin", "SetupReport"]

log = logging.getLogger("backends.hubspot")

#: What each probe needs (facts §1.2); a 403 on a probe names the scope to add.
SCOPE_PROBES: tuple[tuple[str, str], ...] = (
    ("crm.objects.contacts.read", "contacts"),
    ("crm.objects.companies.read", "companies"),
    ("crm.objects.owners.read", "owners"),
    ("crm.schemas.contacts.read", "properties:contacts"),
    ("crm.schemas.companies.read", "properties:companies"),
)

#: Scopes a working set-up needs (writes can only be proven by writing, so they are listed).
REQUIRED_SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.owners.read",
    "sales-email-read",
    "crm.schemas.contacts.read",
    "crm.schemas.companies.read",
    "crm.schemas.contacts.write",
    "crm.schemas.companies.write",
)


@dataclass
class SetupReport:
    """What :meth:`SetupMixin.check` found."""

    ok: bool
    portal_id: str | None
    contact_link_template: str | None
    company_link_template: str | None
    missing_scopes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    missing_properties: dict[str, list[str]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [
            f"HubSpot portal: {self.portal_id or 'unknown'}",
            f"token: {'ok' if self.ok else 'PROBLEMS'}",
        ]
        out += [f"missing scope: {s}" for s in self.missing_scopes]
        out += [f"problem: {p}" for p in self.problems]
        for object_type, names in self.missing_properties.items():
            out.append(
                f"{object_type}: mapped properties missing in the portal: {', '.join(names)}"
            )
        if self.contact_link_template:
            out.append(f"contactLinkTemplate: {self.contact_link_template}")
            out.append(f"companyLinkTemplate: {self.company_link_template}")
        return out


class SetupMixin(HubSpotCore):
    """``check()`` and ``link_templates()`` for the CLI."""

    _portal_info: tuple[str, str] | None = None

    def link_templates(self) -> dict[str, str] | None:
        """``{"contactLinkTemplate", "companyLinkTemplate"}``: the portal's record URLs with
        Enginy's ``{{crmId}}`` placeholder (the hook ``adapter/links.py`` calls after
        :meth:`open`). ``None`` when the portal id is neither configured nor learnt."""
        portal = self._portal_info or (
            (self.options.portal_id, self.options.app_host or "app.hubspot.com")
            if self.options.portal_id
            else None
        )
        if portal is None:
            return None
        base = f"https://{portal[1]}/contacts/{portal[0]}/record"
        return {
            "contactLinkTemplate": f"{base}/0-1/{{{{crmId}}}}",
            "companyLinkTemplate": f"{base}/0-2/{{{{crmId}}}}",
        }

    async def fetch_link_templates(self) -> dict[str, str] | None:
        """Like :meth:`link_templates`, asking HubSpot for the portal id when needed."""
        await self.learn_portal()
        return self.link_templates()

    async def learn_portal(self) -> None:
        """Read the portal id and web host (``account-info``) unless configured."""
        portal, host = self.options.portal_id, self.options.app_host
        if portal is None or host is None:
            response = await self.client.request("GET", self.client.paths.account_details())
            data = response.json_dict()
            portal = portal or str(data.get("portalId") or "") or None
            host = host or str(data.get("uiDomain") or "app.hubspot.com")
        if portal:
            self._portal_info = (portal, host)

    async def open(self) -> None:
        """As :meth:`HubSpotCore.open`, then learn the portal id for the record links (a
        failure there only costs the links, and is logged)."""
        await super().open()
        try:
            with self.client.budget(min(10.0, self.options.budget_seconds)):
                await self.learn_portal()
        except BackendError as exc:
            log.warning(
                "hubspot: portal id unknown, no record links (set backend.options.portal_id): %s",
                exc.message,
            )

    async def check_setup(self, field_maps: Mapping[Entity, Mapping[str, str]]) -> CheckSummary:
        """:meth:`check`, in the interface's terms: missing scopes and problems stop the set-up;
        mapped properties missing in the portal do too under ``unknown_properties: reject``,
        else they are notes (dropped, or created on first write)."""
        # ``enginy-adapter check`` without ``--migrate`` creates nothing in the portal.
        report = await self.check(field_maps=field_maps, create=False if self.read_only else None)
        problems = [f"missing scope: {s}" for s in report.missing_scopes] + report.problems
        notes = [f"HubSpot portal: {report.portal_id or 'unknown'}"]
        policy = self.options.unknown_properties
        for object_type, names in report.missing_properties.items():
            line = f"{object_type}: mapped properties missing in the portal: {', '.join(names)}"
            if policy == "reject":
                problems.append(f"{line} (unknown_properties: reject refuses such records)")
            else:
                fate = "dropped" if policy == "drop" else "created on first write"
                notes.append(f"{line} (will be {fate})")
        notes += self._skipped_match_keys(report, field_maps)
        if report.contact_link_template:
            notes.append(f"contactLinkTemplate: {report.contact_link_template}")
            notes.append(f"companyLinkTemplate: {report.company_link_template}")
        return CheckSummary(problems=tuple(problems), notes=tuple(notes))

    #: The contract's default match keys (Part A.7) whose fields ``check`` looks for.
    MATCH_KEYS: ClassVar[dict[Entity, tuple[str, ...]]] = {
        Entity.CONTACT: ("email", "linkedinUrl"),
        Entity.COMPANY: ("domain", "linkedinUrl", "name"),
    }

    def _skipped_match_keys(
        self, report: SetupReport, field_maps: Mapping[Entity, Mapping[str, str]]
    ) -> list[str]:
        """Notes for match keys whose property the portal lacks: sync skips them (a warning
        per key at run time), it never fails."""
        out = []
        for entity, keys in self.MATCH_KEYS.items():
            missing = set(report.missing_properties.get(OBJECT_TYPES[entity], []))
            for key in keys:
                prop = field_maps.get(entity, {}).get(key)
                if prop in missing:
                    out.append(
                        f"{OBJECT_TYPES[entity]}: match key {key} is skipped: the portal has no "
                        f"property {prop!r}"
                    )
        return out

    async def check(
        self,
        *,
        create: bool | None = None,
        field_maps: Mapping[Entity, Mapping[str, str]] | None = None,
    ) -> SetupReport:
        """Verify the token and scopes, make sure the external-id property exists (creating it
        when allowed), list mapped properties (``field_maps``, default: the driver's default
        mapping) missing in the portal, and compute the link templates. Never raises for a
        missing scope: the report lists it."""
        maps = self.default_field_map if field_maps is None else field_maps
        missing_scopes: list[str] = []
        problems: list[str] = []
        with self.client.budget():
            for scope, probe in SCOPE_PROBES:
                try:
                    if probe.startswith("properties:"):
                        self.catalog.invalidate(probe.split(":")[1])
                        await self.catalog.definitions(probe.split(":")[1])
                    elif probe == "owners":
                        await self.client.request(
                            "GET", self.client.paths.owners(), params={"limit": "1"}
                        )
                    else:
                        await self.client.request(
                            "GET", self.client.paths.objects(probe), params={"limit": "1"}
                        )
                except AuthFailed as exc:
                    if "refused the token" in exc.message:
                        return SetupReport(False, None, None, None, problems=[exc.message])
                    missing_scopes.append(scope)
                except BackendError as exc:
                    problems.append(f"{probe}: {exc.message}")
            missing_properties: dict[str, list[str]] = {}
            for entity, object_type in OBJECT_TYPES.items():
                try:
                    allowed = self.options.create_properties if create is None else create
                    if not await self.catalog.ensure(
                        object_type,
                        self.options.external_id_property,
                        "Enginy external ID",
                        unique=True,
                        create=allowed,
                    ):
                        fix = (
                            "`serve` (or `check --migrate`) creates it"
                            if self.options.create_properties
                            else "run with create_properties: true"
                        )
                        problems.append(
                            f"{object_type}.{self.options.external_id_property} is missing ({fix})"
                        )
                    known = await self.catalog.definitions(object_type)
                    names = [n for n in maps.get(entity, {}).values() if n not in known]
                    if names:
                        missing_properties[object_type] = names
                except BackendError as exc:
                    problems.append(f"{object_type} properties: {exc.message}")
            links: dict[str, str] = {}
            try:
                links = await self.fetch_link_templates() or {}
            except BackendError as exc:
                problems.append(f"portal id: {exc.message} (set backend.options.portal_id)")
            portal = self._portal_info[0] if self._portal_info else None
        return SetupReport(
            ok=not missing_scopes and not problems,
            portal_id=portal,
            contact_link_template=links.get("contactLinkTemplate"),
            company_link_template=links.get("companyLinkTemplate"),
            missing_scopes=missing_scopes,
            problems=problems,
            missing_properties=missing_properties,
        )
