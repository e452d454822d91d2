"""Record-link templates to paste into Enginy (A.14), and ``enginy-adapter links``.

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

import argparse
import io
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO

from backends.base import Backend, BackendError, Capability

if TYPE_CHECKING:
    from adapter.config import Settings

__all__ = [
    "COMPANY_KEY",
    "CONTACT_KEY",
    "PLACEHOLDER",
    "add_arguments",
    "link_templates",
    "run",
    "run_links",
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
        if isinstance(provided, Mapping) and provided.get(CONTACT_KEY) and provided.get(
                COMPANY_KEY):
            return {CONTACT_KEY: str(provided[CONTACT_KEY]),
                    COMPANY_KEY: str(provided[COMPANY_KEY])}
    if Capability.BROWSE in backend.capabilities:
        base = base_url.rstrip("/")
        return {CONTACT_KEY: f"{base}/ui/contacts/{PLACEHOLDER}",
                COMPANY_KEY: f"{base}/ui/companies/{PLACEHOLDER}"}
    return None


def service_base_url(settings: Settings) -> str:
    """``ui.public_base_url`` when configured, else the URL built from the listen address."""
    ui = getattr(settings, "ui", None)
    public = getattr(ui, "public_base_url", None)
    if public:
        return str(public).rstrip("/")
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}{settings.server.root_path}"


async def run_links(settings: Settings, backend: Backend, out: TextIO,
                    base_url: str | None = None) -> int:
    """Print the templates for the configured driver; exit status 0, or 1 when there are
    none or the backend could not be opened."""
    base = base_url.rstrip("/") if base_url else service_base_url(settings)
    try:
        await backend.open()
    except BackendError as exc:
        print(f"error: could not open the {backend.name} backend: {exc}", file=out)
        return 1
    try:
        templates = link_templates(backend, base)
    finally:
        await backend.close()
    print(f"driver: {backend.name}", file=out)
    if templates is None:
        print(f"The {backend.name} driver has no record pages to link to; leave the link "
              "templates empty in Enginy.", file=out)
        return 1
    for key, value in templates.items():
        print(f"{key}: {value}", file=out)
    if not base_url and not getattr(getattr(settings, "ui", None), "public_base_url", None) \
            and Capability.BROWSE in backend.capabilities:
        print("note: built from server.host/port; set ui.public_base_url (or --base-url) to "
              "the address Enginy uses.", file=out)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``links`` sub-command's own arguments (``--config`` is the CLI's)."""
    parser.add_argument(
        "--base-url",
        help="public URL Enginy reaches this service at (default: ui.public_base_url, else "
        "built from server.host/port/root_path)",
    )


def run(args: argparse.Namespace) -> int:
    """``enginy-adapter links``: 0 with the templates printed, 1 otherwise."""
    import asyncio

    from adapter.cli import _fail, load_for_command, redact
    from adapter.config import ConfigError, build_backend

    try:
        settings = load_for_command(args)
        backend = build_backend(settings)
    except ConfigError as exc:
        return _fail(str(exc))
    out = io.StringIO()
    code = asyncio.run(run_links(settings, backend, out, getattr(args, "base_url", None)))
    # The driver's error message passes the same secret filter as `check`'s.
    sys.stdout.write(redact(out.getvalue(), settings))
    return code
