"""What every sub-command shares: the :class:`Command` record, loading the settings with the
command's flags, and the one-line failure answer."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from pydantic import ValidationError

from adapter.config import ServerConfig, Settings, format_validation_error, load_settings
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
    ``--host`` / ``--port`` when the command has them. Raises :class:`ConfigError`."""
    settings = load_settings(getattr(args, "config", None))
    server_updates: dict[str, Any] = {}
    if getattr(args, "host", None):
        server_updates["host"] = args.host
    if getattr(args, "port", None) is not None:
        server_updates["port"] = args.port
    if server_updates:
        try:
            server = ServerConfig.model_validate({**settings.server.model_dump(), **server_updates})
        except ValidationError as exc:
            flags = {f"server.{name}": f"--{name}" for name in server_updates}
            raise format_validation_error(exc, prefix="server", sources=flags) from None
        settings = settings.model_copy(update={"server": server})
    return settings


def driver_label(backend: Backend) -> str:
    """How answers name the driver: ``'sql' (backends.sql.driver:SQLBackend)``."""
    cls = type(backend)
    return f"{backend.name!r} ({cls.__module__}:{cls.__qualname__})"
