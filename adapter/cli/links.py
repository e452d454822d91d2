"""``enginy-adapter links``: print the record-link templates to paste into Enginy (A.14)."""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from typing import TextIO

from adapter.cli.common import Command, fail, load_for_command
from adapter.config import ConfigError, Settings, build_backend
from adapter.links import link_templates, service_base_url
from adapter.redaction import redact
from backends.base import Backend, BackendError, Capability

__all__ = ["COMMAND", "run_links"]


async def run_links(
    settings: Settings, backend: Backend, out: TextIO, base_url: str | None = None
) -> int:
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
        print(
            f"The {backend.name} driver has no record pages to link to; leave the link "
            "templates empty in Enginy.",
            file=out,
        )
        return 1
    for key, value in templates.items():
        print(f"{key}: {value}", file=out)
    browse = Capability.BROWSE in backend.capabilities
    if not base_url and not settings.ui.public_base_url and browse:
        print(
            "note: built from server.host/port; set ui.public_base_url (or --base-url) to "
            "the address Enginy uses.",
            file=out,
        )
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
    try:
        settings = load_for_command(args)
        backend = build_backend(settings)
    except ConfigError as exc:
        return fail(str(exc))
    out = io.StringIO()
    code = asyncio.run(run_links(settings, backend, out, getattr(args, "base_url", None)))
    # The driver's error message passes the same secret filter as `check`'s.
    sys.stdout.write(redact(out.getvalue(), settings.secret_values()))
    return code


COMMAND = Command(
    help="print the record-link templates to paste into Enginy",
    add_arguments=add_arguments,
    run=run,
)
