"""``enginy-adapter serve``: run the HTTP service with uvicorn.

It never serves without an API key: when none is configured it generates one at start-up and
prints it once, on stderr (:func:`ensure_api_key`); likewise the dashboard's password
(:func:`ensure_ui_password`), which is never an API key. :func:`run_server` configures logging and
runs uvicorn: in-process with one worker, else ``server.workers`` processes that each rebuild
the app from the same configuration (:func:`adapter.app.worker_app`), with the connection limits
of ``server.limits`` (:mod:`adapter.ops.connections`). SIGTERM/SIGINT: uvicorn stops
accepting, lets in-flight requests finish for up to ``server.graceful_shutdown_seconds``, then
runs the lifespan shutdown (driver close).

The web stack is imported only when the command runs: ``check`` and ``--help`` must not pay for
it (or fail on it).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import socket
import sys
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import SecretStr

from adapter.cli.common import PROG, Command, fail, load_for_command
from adapter.config import (
    ENV_API_KEY,
    ENV_CONFIG,
    ENV_DRY_RUN,
    ENV_HOST,
    ENV_PORT,
    ENV_UI_PASSWORD,
    ConfigError,
    Settings,
    build_backend,
    split_listen,
)
from backends.base import Backend

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = [
    "COMMAND",
    "WorkersRefused",
    "check_listeners",
    "check_workers",
    "ensure_api_key",
    "ensure_ui_password",
    "is_process_local",
    "run_server",
]


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
    scheme = "https" if server.tls is not None else "http"
    health = f"{scheme}://{host}:{server.port}{server.root_path}/health"
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


def ensure_ui_password(settings: Settings, stream: TextIO) -> Settings:
    """Return ``settings`` with a dashboard password when the dashboard is on.

    Like :func:`ensure_api_key`: when ``ui.password`` is not configured, a random one
    (``secrets.token_urlsafe``, 144 bits) is generated for this run and printed once to
    ``stream`` with the dashboard's address. The dashboard never takes an API key instead.
    """
    ui = settings.ui
    if not ui.enabled or ui.password is not None:
        return settings
    password = secrets.token_urlsafe(18)
    print(
        f"{PROG}: no dashboard password configured; generated one for this run:\n"
        f"\n    {password}\n\n"
        f"Open {_dashboard_url(settings)} and log in with it (any user name).\n"
        f"It changes at every start; set ENGINY_ADAPTER_UI_PASSWORD or ui.password to keep one.",
        file=stream,
        flush=True,
    )
    return settings.model_copy(
        update={"ui": ui.model_copy(update={"password": SecretStr(password)})}
    )


def _dashboard_url(settings: Settings) -> str:
    server = settings.server
    scheme = "https" if server.tls is not None else "http"
    if settings.ui.listen is not None:
        host, port = split_listen(settings.ui.listen)
        root = ""
    else:
        host, port, root = server.host, server.port, server.root_path
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}{root}/ui"


def check_listeners(settings: Settings) -> None:
    """Raise :class:`ConfigError` when the dashboard's own listener cannot be bound, before
    anything starts (the app binds it again in its lifespan)."""
    listen = settings.ui.listen
    if not settings.ui.enabled or listen is None:
        return
    host, port = split_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {listen} ({exc.strerror})", path="ui.listen"
            ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="interface to listen on (default: server.host)")
    parser.add_argument("--port", type=int, help="TCP port (default: server.port)")
    parser.add_argument(
        "--ssl-certfile",
        metavar="FILE",
        help="serve HTTPS with this PEM certificate chain (default: server.tls.certfile)",
    )
    parser.add_argument(
        "--ssl-keyfile",
        metavar="FILE",
        help="the certificate's PEM private key (default: server.tls.keyfile)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing to the CRM: log each request the driver would send (secrets masked) "
        "and answer as if it succeeded, with ids starting dry-run- (drivers: rest)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default: info)",
    )


def run(args: argparse.Namespace) -> int:
    """``enginy-adapter serve``: 0 after a clean shutdown, 1 for a configuration error."""
    try:
        settings = load_for_command(args)
        # Built before a key is generated, so that a bad configuration fails without printing
        # a key that will never be used.
        backend = build_backend(settings)
        check_listeners(settings)
    except ConfigError as exc:
        return fail(str(exc))
    settings = ensure_api_key(settings, sys.stderr)
    settings = ensure_ui_password(settings, sys.stderr)

    # Imported here: `check` and `--help` must not pay for (or fail on) the web stack.
    from adapter.app import create_app

    try:
        app = create_app(settings, backend)
    except ConfigError as exc:
        return fail(str(exc))
    # The root path is handled by the app's own mount (server.root_path), never passed to
    # uvicorn.
    try:
        run_server(settings, app, backend, log_level=args.log_level, config_path=args.config)
    except WorkersRefused as exc:
        return fail(str(exc))
    except SystemExit:
        # uvicorn exits 3 when the lifespan fails. A backend that cannot start for a
        # configuration reason (adapter/ops/startup.py) has already said why in one log line: exit 1
        # like every other configuration error. Anything else keeps uvicorn's own exit.
        if getattr(app.state, "backend_gate", None) is not None and app.state.backend_gate.fatal:
            return 1
        raise
    return 0


class WorkersRefused(Exception):
    """``server.workers`` > 1 with a driver whose data lives in one process."""


def is_process_local(backend: Backend) -> bool:
    """Whether the driver's data lives in this process only (several workers would each see
    their own copy): drivers say so with :attr:`Backend.process_local`."""
    return backend.process_local


def check_workers(settings: Settings, backend: Backend) -> None:
    """Raise :class:`WorkersRefused` when ``server.workers`` cannot work with ``backend``."""
    workers = settings.server.workers
    if workers > 1 and is_process_local(backend):
        raise WorkersRefused(
            f"server.workers: {workers} workers with the {backend.name} driver would split its "
            "data between processes (each worker would see only the records it stored); use "
            "1 worker, or a shared backend (sql on PostgreSQL/MySQL, hubspot)"
        )


def run_server(
    settings: Settings, app: Starlette, backend: Backend, *, log_level: str, config_path: str | None
) -> None:
    """Configure logging and run uvicorn: in-process with one worker, else ``workers``
    processes that each rebuild the app from the same configuration.

    SIGTERM/SIGINT: uvicorn stops accepting, lets in-flight requests finish for up to
    ``server.graceful_shutdown_seconds``, then runs the lifespan shutdown (driver close).
    """
    import uvicorn

    from adapter.ops.connections import guarded_protocol
    from adapter.ops.logs import configure_logging

    check_workers(settings, backend)
    configure_logging(settings.observability.logs)
    _quiet_duplicate_startup_failure(app)
    common: dict[str, Any] = {
        "host": settings.server.host,
        "port": settings.server.port,
        "log_level": log_level,
        "log_config": None,  # configure_logging above owns the handlers and format
        "access_log": False,  # the telemetry middleware writes one line per request
        "server_header": False,
        "timeout_graceful_shutdown": settings.server.graceful_shutdown_seconds or None,
        **_limit_options(settings),
    }
    if settings.server.tls is not None:
        common.update(settings.server.tls.uvicorn_options())
    if settings.server.workers == 1:
        uvicorn.run(app, http=guarded_protocol(settings.server.limits), **common)
        return
    _hand_settings_to_workers(settings, config_path)
    uvicorn.run(
        "adapter.app:worker_app",
        factory=True,
        workers=settings.server.workers,
        # Each worker builds the guarded protocol from the same configuration as its app.
        http="adapter.ops.connections:WorkerHTTPProtocol",
        **common,
    )


def _quiet_duplicate_startup_failure(app: Starlette) -> None:
    # A start-up stopped for a configuration reason is logged in one line by the app
    # (adapter/ops/startup.py); uvicorn's own "Application startup failed" would be a second one.
    gate = getattr(getattr(app, "state", None), "backend_gate", None)
    logging.getLogger("uvicorn.error").addFilter(
        lambda record: (
            gate is None
            or gate.fatal is None
            or record.getMessage() != "Application startup failed. Exiting."
        )
    )


def _hand_settings_to_workers(settings: Settings, config_path: str | None) -> None:
    """Worker processes are spawned fresh and load the settings again: hand them the same
    inputs through the variables ``load_settings`` already reads (never on a command line)."""
    if config_path:
        os.environ[ENV_CONFIG] = os.path.abspath(config_path)
    os.environ[ENV_HOST] = settings.server.host
    if settings.backend.options.get("dry_run"):
        os.environ[ENV_DRY_RUN] = "1"  # --dry-run: the workers too
    os.environ[ENV_PORT] = str(settings.server.port)
    keys = settings.auth.keys
    if keys and not os.environ.get(ENV_API_KEY):
        # A key generated for this run (ensure_api_key) exists only in memory; the workers
        # must accept it too. A configured key is already in the file or the environment.
        os.environ[ENV_API_KEY] = keys[-1].get_secret_value()
    password = settings.ui.password
    if password is not None and not os.environ.get(ENV_UI_PASSWORD):
        # Likewise a generated dashboard password (set in the file, it is the same value).
        os.environ[ENV_UI_PASSWORD] = password.get_secret_value()


def _limit_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's own part of ``server.limits``: the idle keep-alive timeout. The header
    deadline and the connection cap are in the protocol (:mod:`adapter.ops.connections`);
    uvicorn's ``limit_concurrency`` stays off: the app answers its own 503 with Retry-After
    (:mod:`adapter.ops.limits`)."""
    return {"timeout_keep_alive": settings.server.limits.keep_alive_seconds}


COMMAND = Command(help="run the HTTP service (uvicorn)", add_arguments=add_arguments, run=run)
