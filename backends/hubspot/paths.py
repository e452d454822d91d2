"""Every HubSpot API path the driver uses, in one table.

HubSpot ships two path families with the same bodies: the *legacy* ``/crm/v3`` + ``/crm/v4``
paths (v4 associations unsupported after 30 March 2027, v1-v3 after September 2027) and the
*date-versioned* paths (``/crm/objects/2026-03/...``, next ``2026-09``). The option
``api_version`` picks the family; nothing outside this module spells a path.
"""

from __future__ import annotations

from typing import Final

__all__ = ["API_VERSIONS", "PATH_TABLE", "Paths"]

#: ``v3`` = legacy family; a date string selects the date-versioned family.
API_VERSIONS: Final = ("v3", "2026-03", "2026-09")

#: name → (legacy template, date-versioned template). ``{v}`` is the date version.
PATH_TABLE: Final[dict[str, tuple[str, str]]] = {
    "objects": ("/crm/v3/objects/{type}", "/crm/objects/{v}/{type}"),
    "object": ("/crm/v3/objects/{type}/{id}", "/crm/objects/{v}/{type}/{id}"),
    "batch": ("/crm/v3/objects/{type}/batch/{op}", "/crm/objects/{v}/{type}/batch/{op}"),
    "search": ("/crm/v3/objects/{type}/search", "/crm/objects/{v}/{type}/search"),
    "assoc_batch": (
        "/crm/v4/associations/{type}/{to}/batch/{op}",
        "/crm/associations/{v}/{type}/{to}/batch/{op}",
    ),
    "assoc_default": (
        "/crm/v4/objects/{type}/{id}/associations/default/{to}/{to_id}",
        "/crm/objects/{v}/{type}/{id}/associations/default/{to}/{to_id}",
    ),
    "assoc_record": (
        "/crm/v4/objects/{type}/{id}/associations/{to}/{to_id}",
        "/crm/objects/{v}/{type}/{id}/associations/{to}/{to_id}",
    ),
    "owners": ("/crm/v3/owners", "/crm/owners/{v}"),
    "properties": ("/crm/v3/properties/{type}", "/crm/properties/{v}/{type}"),
    "property_groups": ("/crm/v3/properties/{type}/groups", "/crm/properties/{v}/{type}/groups"),
    # (unverified) no date-versioned account-info path is documented; the legacy one is used
    # for both families. Only needed when ``portal_id`` is not configured.
    "account_details": ("/account-info/v3/details", "/account-info/v3/details"),
}


class Paths:
    """Builds paths for one API version. ``Paths("v3").batch("contacts", "read")``."""

    def __init__(self, version: str = "v3") -> None:
        if version not in API_VERSIONS:
            raise ValueError(f"unknown HubSpot API version {version!r}; use one of {API_VERSIONS}")
        self.version = version
        self._index = 0 if version == "v3" else 1

    def path(self, name: str, **parts: str) -> str:
        """Fill the template ``name`` of :data:`PATH_TABLE` for this version."""
        return PATH_TABLE[name][self._index].format(v=self.version, **parts)

    def objects(self, type: str) -> str:
        return self.path("objects", type=type)

    def object(self, type: str, id: str) -> str:
        return self.path("object", type=type, id=id)

    def batch(self, type: str, op: str) -> str:
        return self.path("batch", type=type, op=op)

    def search(self, type: str) -> str:
        return self.path("search", type=type)

    def assoc_batch(self, type: str, to: str, op: str) -> str:
        return self.path("assoc_batch", type=type, to=to, op=op)

    def assoc_default(self, type: str, id: str, to: str, to_id: str) -> str:
        return self.path("assoc_default", type=type, id=id, to=to, to_id=to_id)

    def assoc_record(self, type: str, id: str, to: str, to_id: str) -> str:
        return self.path("assoc_record", type=type, id=id, to=to, to_id=to_id)

    def owners(self) -> str:
        return self.path("owners")

    def properties(self, type: str) -> str:
        return self.path("properties", type=type)

    def property_groups(self, type: str) -> str:
        return self.path("property_groups", type=type)

    def account_details(self) -> str:
        return self.path("account_details")
