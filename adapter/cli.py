"""The ``enginy-adapter`` command line (also ``python -m adapter``).

Sub-commands live in one table, :data:`COMMANDS`: each entry says how to add its arguments and
how to run. Every command gets ``--config FILE`` (default ``$ENGINY_ADAPTER_CONFIG``; with
neither, the built-in defaults and the embedded backend). Adding a command (``simulate``,
``links``) is one more :func:`register` call; its module is imported only when it runs.

* ``serve``: run the HTTP service with uvicorn. It never serves without an API key: when none is
  configured it generates one at start-up and prints it once, on stderr.
* ``check``: validate the configuration, build the driver, open it, ping it and close it; exit
  0 with ``ok: ...`` or 1 with a one-line reason. No traceback, no secret.

Exit codes: 0 success, 1 failure (configuration, backend), 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import secrets
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from pydantic import SecretStr, ValidationError

from adapter import __version__
from adapter.config import (
    ENV_CONFIG,
    ConfigError,
    ServerConfig,
    Settings,
    build_backend,
    format_validation_error,
    load_settings,
)
from backends.base import Backend, BackendError, Entity, SetupReport

__all__ = [
    "COMMANDS",
    "Command",
    "build_parser",
    "ensure_api_key",
    "load_for_command",
    "main",
    "redact",
    "register",
]

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


#: Sub-command name → command, in the order ``--help`` lists them.
COMMANDS: dict[str, Command] = {}


def register(name: str, command: Command) -> None:
    """Add (or replace) a sub-command."""
    COMMANDS[name] = command


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _fail(message: str, stream: TextIO | None = None) -> int:
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


def ensure_api_key(settings: Settings, stream: TextIO) -> Settings:
    """Return ``settings`` with at least one API key.

    When none is configured, a random key (``secrets.token_urlsafe``, 256 bits) is generated for
    this run and printed once to ``stream`` with how to use it; it is never logged anywhere
    else. With configured keys nothing is printed and ``settings`` is returned unchanged.
    """
    if settings.auth.keys:
        return settings
    key = secrets.token_urlsafe(32)
    header = settings.auth.header
    server = settings.server
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "") else server.host
    host = f"[{host}]" if ":" in host else host
    health = f"http://{host}:{server.port}{server.root_path}/health"
    print(
        f"{PROG}: no API key configured; generated one for this run:\n"
        f"\n    {key}\n\n"
        f"Send it in the {header} header (in Enginy: apiKey = this key, apiKeyHeader = {header}),"
        f" e.g.  curl -H '{header}: {key}' {health}\n"
        f"It changes at every start; set ENGINY_ADAPTER_API_KEY or auth.keys to keep one.",
        file=stream,
        flush=True,
    )
    auth = settings.auth.model_copy(update={"keys": [SecretStr(key)]})
    return settings.model_copy(update={"auth": auth})


_SECRET_OPTION = re.compile(r"pass|secret|token|key|credential|auth", re.IGNORECASE)
# Up to the LAST "@" of the token: a password may itself contain "@" (unencoded), and masking
# too much of a URL is harmless where masking too little leaks the rest of the password.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)[^\s'\"]*@", re.IGNORECASE)


def _option_secrets(node: object, key: str = "") -> Iterable[str]:
    if isinstance(node, SecretStr):
        yield node.get_secret_value()
    elif isinstance(node, str):
        if _SECRET_OPTION.search(key):
            yield node
    elif isinstance(node, Mapping):
        for k, v in node.items():
            yield from _option_secrets(v, str(k))
    elif isinstance(node, list | tuple):
        for v in node:
            yield from _option_secrets(v, key)


def redact(text: str, settings: Settings | None) -> str:
    """Remove what may be a secret from a message before printing it: the configured API keys,
    option values whose name looks secret (``password``, ``token``, ...) and the credentials
    part of any URL (``scheme://user:password@``)."""
    text = _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)
    if settings is None:
        return text
    values = [k.get_secret_value() for k in settings.auth.keys]
    values.extend(_option_secrets(settings.backend.options))
    for value in sorted({v for v in values if len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def _driver_label(backend: Backend) -> str:
    cls = type(backend)
    return f"{backend.name!r} ({cls.__module__}:{cls.__qualname__})"


# --------------------------------------------------------------------------------------------
# serve
# --------------------------------------------------------------------------------------------


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="interface to listen on (default: server.host)")
    parser.add_argument("--port", type=int, help="TCP port (default: server.port)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default: info)",
    )


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = load_for_command(args)
        # Built before a key is generated, so that a bad configuration fails without printing
        # a key that will never be used.
        backend = build_backend(settings)
    except ConfigError as exc:
        return _fail(str(exc))
    settings = ensure_api_key(settings, sys.stderr)

    # Imported here: `check` and `--help` must not pay for (or fail on) the web stack.
    from adapter.app import create_app

    try:
        app = create_app(settings, backend)
    except ConfigError as exc:
        return _fail(str(exc))
    # Logging format, workers and graceful shutdown (helper OPS: adapter/ops.py). The root
    # path is handled by the app's own mount (server.root_path), never passed to uvicorn.
    from adapter.ops import WorkersRefused, run_server

    try:
        run_server(settings, app, backend, log_level=args.log_level, config_path=args.config)
    except WorkersRefused as exc:
        return _fail(str(exc))
    except SystemExit:
        # uvicorn exits 3 when the lifespan fails. A backend that cannot start for a
        # configuration reason (adapter/startup.py) has already said why in one log line: exit 1
        # like every other configuration error. Anything else keeps uvicorn's own exit.
        if getattr(app.state, "backend_gate", None) is not None and app.state.backend_gate.fatal:
            return 1
        raise
    return 0


# --------------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------------


def _check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        help="seconds to wait for the backend to open and answer (default: 15)",
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


def _check(args: argparse.Namespace) -> int:
    out = sys.stdout
    root = logging.getLogger()
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    elif not root.handlers:
        # The answer is one line: drivers' warnings (retries...) would otherwise reach stderr
        # through logging's last-resort handler. --verbose shows them.
        root.addHandler(logging.NullHandler())
    settings: Settings | None = None
    try:
        settings = load_for_command(args)
        backend = build_backend(settings)
        # Build what the app builds, so that a mapping collision is reported here too.
        from adapter.mapping import build_mappers
        from adapter.matching import Matcher

        mappers = build_mappers(settings.mapping, backend.default_field_map)
        Matcher(settings.matching.keys())
    except ConfigError as exc:
        return _fail(str(exc))
    except ValueError as exc:
        return _fail(f"matching: {exc}")

    label = _driver_label(backend)
    try:
        field_maps = {entity: mapper.fields for entity, mapper in mappers.items()}
        report = asyncio.run(_open_ping_close(backend, args.timeout, field_maps))
    except TimeoutError:
        return _fail(f"backend {label} did not answer within {args.timeout:g}s")
    except BackendError as exc:
        return _fail(redact(f"backend {label} is not usable: {exc}", settings))
    except Exception as exc:  # a driver bug must still give one line, no traceback
        first = (str(exc).strip().splitlines() or [""])[0]
        return _fail(redact(f"backend {label} failed: {type(exc).__name__}: {first}", settings))

    for note in report.notes:
        print(redact(f"note: {note}", settings), file=out)
    if report.problems:
        listed = "; ".join(report.problems)
        return _fail(redact(f"backend {label} is reachable but not set up: {listed}", settings))

    keys = len(settings.auth.keys)
    key_note = (
        f"{keys} API key(s) in header {settings.auth.header}"
        if keys
        else "no API key configured (serve will generate one at start-up)"
    )
    print(f"ok: configuration valid; backend {label} reachable; {key_note}", file=out)
    return 0


register(
    "serve",
    Command(
        help="run the HTTP service (uvicorn)",
        add_arguments=_serve_arguments,
        run=_serve,
    ),
)
register(
    "check",
    Command(
        help="validate the configuration and check that the backend is reachable",
        add_arguments=_check_arguments,
        run=_check,
    ),
)


def _links_arguments(parser: argparse.ArgumentParser) -> None:
    from adapter.links import add_arguments  # helper OPS

    add_arguments(parser)


def _links(args: argparse.Namespace) -> int:
    from adapter.links import run

    return run(args)


register(
    "links",
    Command(
        help="print the record-link templates to paste into Enginy",
        add_arguments=_links_arguments,
        run=_links,
    ),
)


def _simulate_arguments(parser: argparse.ArgumentParser) -> None:
    from adapter.simulate import command  # helper SIM; imported only for this command

    command.add_arguments(parser)


def _simulate(args: argparse.Namespace) -> int:
    from adapter.simulate import command

    return command.run(args)


register(
    "simulate",
    Command(
        help="play Enginy's side of the contract against a running server and report",
        add_arguments=_simulate_arguments,
        run=_simulate,
        uses_config=False,  # it talks to a server by URL, whatever its configuration
    ),
)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def build_parser(commands: Mapping[str, Command] | None = None) -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per command of ``commands`` (default: all)."""
    table = COMMANDS if commands is None else commands
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve Enginy's Custom CRM contract in front of your CRM.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML configuration (default: ${ENV_CONFIG}; none: built-in defaults)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in table.items():
        parents = [common] if command.uses_config else []
        child = sub.add_parser(name, help=command.help, description=command.help, parents=parents)
        command.add_arguments(child)
        child.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args._run
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
