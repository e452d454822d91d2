"""What every sub-command shares: the :class:`Command` record, loading the settings with the
command's flags, and the one-line failure answer."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from pydantic import ValidationError

from adapter.config import (
    ENV_DRY_RUN,
    ConfigError,
    ServerConfig,
    Settings,
    check_combinations,
    format_validation_error,
    load_settings,
)
from backends.base import Backend

__all__ = ["PROG", "Command", "driver_label", "fail", "load_for_command"]

PROG = "enginy-adapter"


@dataclass(frozen=True)
class Command:
    """One sub-command: its one-line help, how it adds its arguments, and how it runs.

    ``run`` receives the parsed arguments (``args.config`` included) and returns the exit code.
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    #: Whether the command reads the configuration (gets ``--config FILE``).
    uses_config: bool = True


def fail(message: str, stream: TextIO | None = None) -> int:
    """Print ``error: <message>`` on one line (stderr by default) and return exit code 1."""
    # One line, always: a multi-line message would be cut by log shippers and health tooling.
    line = " ".join(message.split())
    print(f"error: {line}", file=stream if stream is not None else sys.stderr)
    return 1


def load_for_command(args: argparse.Namespace) -> Settings:
    """Load the settings for a command: ``--config`` or ``$ENGINY_ADAPTER_CONFIG``, then
    ``--host`` / ``--port`` / ``--ssl-certfile`` / ``--ssl-keyfile`` when the command has
    them. Raises :class:`ConfigError`."""
    environ = {**os.environ, ENV_DRY_RUN: "1"} if getattr(args, "dry_run", False) else os.environ
    settings = load_settings(getattr(args, "config", None), environ=environ)
    server_updates: dict[str, Any] = {}
    if getattr(args, "host", None):
        server_updates["host"] = args.host
    if getattr(args, "port", None) is not None:
        server_updates["port"] = args.port
    server_updates.update(_tls_flags(args, settings))
    if server_updates:
        try:
            server = ServerConfig.model_validate({**settings.server.model_dump(), **server_updates})
        except ValidationError as exc:
            flags = {f"server.{name}": f"--{name}" for name in server_updates}
            flags.update(_TLS_FLAG_SOURCES)
            raise format_validation_error(exc, prefix="server", sources=flags) from None
        settings = settings.model_copy(update={"server": server})
        check_combinations(settings)
    return settings


#: The YAML paths the ``--ssl-*`` flags set, for error messages.
_TLS_FLAG_SOURCES = {
    "server.tls.certfile": "--ssl-certfile",
    "server.tls.keyfile": "--ssl-keyfile",
}


def _tls_flags(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """``{"tls": {...}}`` when ``--ssl-certfile`` / ``--ssl-keyfile`` are given: they replace
    the files of ``server.tls`` (a password configured there is kept)."""
    certfile = getattr(args, "ssl_certfile", None)
    keyfile = getattr(args, "ssl_keyfile", None)
    if not certfile and not keyfile:
        return {}
    current = settings.server.tls
    if not certfile and current is None:
        raise ConfigError("--ssl-keyfile needs --ssl-certfile (or server.tls.certfile)")
    tls: dict[str, Any] = current.model_dump() if current is not None else {}
    if certfile:
        tls["certfile"] = certfile
        # A new certificate comes with its own key: the configured one no longer applies.
        tls["keyfile"] = keyfile or None
    else:
        tls["keyfile"] = keyfile
    return {"tls": tls}


def driver_label(backend: Backend) -> str:
    """How answers name the driver: ``'sql' (backends.sql.driver:SQLBackend)``."""
    cls = type(backend)
    return f"{backend.name!r} ({cls.__module__}:{cls.__qualname__})"
