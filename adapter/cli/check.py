"""``enginy-adapter check``: validate the configuration, build the driver, open it, ping it,
check its setup and close it; exit 0 with ``ok: ...`` or 1 with a one-line reason. No
traceback, no secret (every message passes :func:`adapter.redaction.redact`).

Read-only: the driver is opened with :attr:`backends.base.Backend.read_only`, so nothing is
created or migrated (the SQL driver reports its own tables that ``serve`` would create).
``--migrate`` opens it as ``serve`` does: the adapter's tables are created or migrated."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Mapping

from adapter.cli.common import Command, driver_label, fail, load_for_command
from adapter.config import ConfigError, build_backend
from adapter.mapping import build_mappers
from adapter.matching import Matcher
from adapter.redaction import redact
from backends.base import Backend, BackendError, Entity, SetupReport

__all__ = ["COMMAND"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        help="seconds to wait for the backend to open and answer (default: 15)",
    )
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="create or migrate what the backend needs, as serve does (default: change nothing)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the configuration without reaching the CRM (drivers: rest)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show the driver's log lines (retries, connection attempts)",
    )


async def _open_ping_close(
    backend: Backend, timeout: float, field_maps: Mapping[Entity, Mapping[str, str]]
) -> SetupReport:
    try:
        await asyncio.wait_for(backend.open(), timeout)
        await asyncio.wait_for(backend.ping(), timeout)
        return await asyncio.wait_for(backend.check_setup(field_maps), timeout)
    finally:
        # close() must not hide the real outcome (and must not raise, per the interface).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(backend.close(), timeout)


def run(args: argparse.Namespace) -> int:
    """``enginy-adapter check``: 0 with ``ok: ...``, 1 with a one-line reason."""
    out = sys.stdout
    root = logging.getLogger()
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    elif not root.handlers:
        # The answer is one line: drivers' warnings (retries...) would otherwise reach stderr
        # through logging's last-resort handler. --verbose shows them.
        root.addHandler(logging.NullHandler())
    try:
        settings = load_for_command(args)
        backend = build_backend(settings)
        backend.read_only = not args.migrate
        # Build what the app builds, so that a mapping collision is reported here too.
        mappers = build_mappers(settings.mapping, backend.default_field_map)
        Matcher(settings.matching.keys())
    except ConfigError as exc:
        return fail(str(exc))
    except ValueError as exc:
        return fail(f"matching: {exc}")

    label = driver_label(backend)
    secrets = settings.secret_values()
    try:
        field_maps = {entity: mapper.fields for entity, mapper in mappers.items()}
        report = asyncio.run(_open_ping_close(backend, args.timeout, field_maps))
    except TimeoutError:
        return fail(f"backend {label} did not answer within {args.timeout:g}s")
    except BackendError as exc:
        return fail(redact(f"backend {label} is not usable: {exc}", secrets))
    except Exception as exc:  # a driver bug must still give one line, no traceback
        first = (str(exc).strip().splitlines() or [""])[0]
        return fail(redact(f"backend {label} failed: {type(exc).__name__}: {first}", secrets))

    for note in report.notes:
        print(redact(f"note: {note}", secrets), file=out)
    if report.problems:
        listed = "; ".join(report.problems)
        return fail(redact(f"backend {label} is reachable but not set up: {listed}", secrets))

    keys = len(settings.auth.keys)
    key_note = (
        f"{keys} API key(s) in header {settings.auth.header}"
        if keys
        else "no API key configured (serve will generate one at start-up)"
    )
    print(f"ok: configuration valid; backend {label} reachable; {key_note}", file=out)
    return 0


COMMAND = Command(
    help="validate the configuration and check that the backend is reachable",
    add_arguments=add_arguments,
    run=run,
)
