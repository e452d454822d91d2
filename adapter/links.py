"""Record-link templates to paste into Enginy (A.14).

Enginy turns ``contactLinkTemplate`` / ``companyLinkTemplate`` into a link on each exported
record by replacing ``{{crmId}}``. Where those links point depends on the driver:

* A driver may say it itself through an optional method
  ``link_templates(self) -> Mapping[str, str] | None`` returning
  ``{"contactLinkTemplate": ..., "companyLinkTemplate": ...}`` — HubSpot points at the
  portal's record pages. It is called after :meth:`~backends.base.Backend.open`, so a driver
  may use what it learnt there (a portal id). ``None`` means "no opinion".
* Otherwise, a driver with the BROWSE capability (memory, SQL) is served by this service's own
  dashboard: ``<public base url>/ui/contacts/{{crmId}}`` and ``.../ui/companies/{{crmId}}``.
* Otherwise there is no page to link to, and the templates are ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping

from adapter.config import Settings
from backends.base import Backend, Capability

__all__ = [
    "COMPANY_KEY",
    "CONTACT_KEY",
    "PLACEHOLDER",
    "link_templates",
    "service_base_url",
]

CONTACT_KEY = "contactLinkTemplate"
COMPANY_KEY = "companyLinkTemplate"
#: The placeholder Enginy replaces, written literally into the templates.
PLACEHOLDER = "{{crmId}}"


def link_templates(backend: Backend, base_url: str) -> dict[str, str] | None:
    """The two templates for ``backend``, or ``None`` when no record page exists for it.

    ``base_url`` is the URL Enginy reaches this service at (with its root path, no trailing
    slash); it is used only for the dashboard's own record pages.
    """
    hook = getattr(backend, "link_templates", None)
    if callable(hook):
        provided = hook()
        if (
            isinstance(provided, Mapping)
            and provided.get(CONTACT_KEY)
            and provided.get(COMPANY_KEY)
        ):
            return {
                CONTACT_KEY: str(provided[CONTACT_KEY]),
                COMPANY_KEY: str(provided[COMPANY_KEY]),
            }
    if Capability.BROWSE in backend.capabilities:
        base = base_url.rstrip("/")
        return {
            CONTACT_KEY: f"{base}/ui/contacts/{PLACEHOLDER}",
            COMPANY_KEY: f"{base}/ui/companies/{PLACEHOLDER}",
        }
    return None


def service_base_url(settings: Settings) -> str:
    """``ui.public_base_url`` when configured, else the URL built from the listen address."""
    public = settings.ui.public_base_url
    if public:
        return public.rstrip("/")
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    scheme = "https" if settings.server.tls is not None else "http"
    return f"{scheme}://{host}:{settings.server.port}{settings.server.root_path}"
