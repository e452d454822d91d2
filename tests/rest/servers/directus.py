"""A real Directus (npm ``directus@11.3.5``, pinned in ``directus-npm/package-lock.json``) with
the CRM schema of ``examples/rest/directus-schema.yaml``, for tests.

``DirectusServer`` gives each start a database of its own (PostgreSQL by default, or an SQLite
file: ``ENGINY_TEST_DIRECTUS_DB=sqlite``) and prepares it exactly as an administrator would from
the docs, with Directus' own command line:

1. ``directus bootstrap`` with ``ADMIN_EMAIL``, ``ADMIN_PASSWORD`` and ``ADMIN_TOKEN`` (the
   admin's static token, the credential an integration sends as ``Authorization: Bearer``);
2. ``directus schema apply --yes examples/rest/directus-schema.yaml`` (the schema snapshot:
   companies, contacts with a unique email, an m2o company and a JSON ``extra``, activities,
   tasks; owners are Directus users);
3. ``directus start`` on 127.0.0.1 and a free port; then a second user (role "Sales") through
   ``POST /users``, for ``/users`` tests.

That takes about 8 seconds. The ``directus`` fixture empties the CRM collections before each
test instead of starting again. ``env`` passes Directus settings through, e.g.
``{"RATE_LIMITER_ENABLED": "true", "RATE_LIMITER_POINTS": "5"}`` to meet its 429s, or
``QUERY_LIMIT_MAX`` / ``MAX_BATCH_MUTATION``.

The command line is entered at ``@directus/api``'s ``cli/run.js``, which is what the
``directus`` bin runs after asking the npm registry whether a newer Directus exists.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import unquote, urlsplit

import httpx

from tests.rest.servers import _layout, _pg
from tests.rest.servers._proc import ServerProcess, free_port, run_checked, wait_until
from tests.rest.servers.bottlecrm import NotAvailable

__all__ = ["CRM_COLLECTIONS", "DirectusServer", "availability"]

#: The schema's collections, children before parents (the order ``clear`` empties them in).
CRM_COLLECTIONS = ("activities", "tasks", "contacts", "companies")
ADMIN_EMAIL = "admin@example.com"
MEMBER_EMAIL = "member@example.com"

Database = Literal["postgres", "sqlite"]


def default_database() -> Database:
    chosen = os.environ.get("ENGINY_TEST_DIRECTUS_DB", "postgres")
    if chosen not in ("postgres", "sqlite"):
        raise ValueError(f"ENGINY_TEST_DIRECTUS_DB must be postgres or sqlite, not {chosen!r}")
    return chosen  # type: ignore[return-value]


def availability(database: Database | None = None) -> None:
    """Raise ``NotAvailable`` unless Directus is installed, Node runs, and (for the PostgreSQL
    flavour) PostgreSQL answers."""
    home = _layout.directus_home()
    if not _layout.installed(home):
        raise NotAvailable(
            f"Directus is not installed in {home}: run tests/rest/servers/install.sh directus"
        )
    if shutil.which("node") is None:
        raise NotAvailable("Directus needs Node.js (node on the PATH)")
    if (database or default_database()) == "postgres" and not _pg.reachable():
        raise NotAvailable("PostgreSQL does not answer (or set ENGINY_TEST_DIRECTUS_DB=sqlite)")


class DirectusServer:
    """One Directus with the CRM schema applied.

    ``token`` is the admin's static token; ``admin_id`` / ``member_id`` are ``directus_users``
    ids (what the schema's ``owner`` fields take); ``schema`` is the snapshot applied.
    """

    def __init__(
        self,
        *,
        database: Database | None = None,
        env: Mapping[str, str] | None = None,
        schema: Path = _layout.DIRECTUS_SCHEMA,
    ) -> None:
        self.database_kind: Database = database or default_database()
        self.extra_env = dict(env or {})
        self.schema = schema
        self.database = _pg.new_database_name(_layout.DIRECTUS_RUN_PREFIX)
        self.token = secrets.token_urlsafe(32)
        self.admin_email = ADMIN_EMAIL
        self.member_email = MEMBER_EMAIL
        self.admin_id = ""
        self.member_id = ""
        self.port = 0
        self._password = secrets.token_urlsafe(16)
        self._secret = secrets.token_hex(32)
        self._run_dir: Path | None = None
        self._process: ServerProcess | None = None
        self._created_database = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def log(self) -> Path | None:
        """Directus' output, while it runs."""
        return None if self._run_dir is None else self._run_dir / "directus.log"

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` on ``base_url`` that sends the admin token."""
        return httpx.Client(base_url=self.base_url, headers=self.headers, **kwargs)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        availability(self.database_kind)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self._run_dir = Path(tempfile.mkdtemp(prefix="enginy-directus-"))
        for sub in ("uploads", "extensions"):
            (self._run_dir / sub).mkdir()
        if self.database_kind == "postgres":
            _pg.drop_orphans(_layout.DIRECTUS_RUN_PREFIX)
            _pg.create_database(self.database)
            self._created_database = True
        node = shutil.which("node") or "node"
        cli = str(_layout.directus_cli())
        for args, what in (
            (["bootstrap"], "directus bootstrap"),
            (["schema", "apply", "--yes", str(self.schema)], "directus schema apply"),
        ):
            run_checked(
                [node, cli, *args], env=self._env(), cwd=self._run_dir, what=what, timeout=180
            )
        for attempt in range(3):
            self.port = free_port()
            self._process = ServerProcess(
                [node, cli, "start"],
                env=self._env(),
                cwd=self._run_dir,
                log=self._run_dir / "directus.log",
                name="Directus",
            )
            try:
                wait_until(
                    self._answers,
                    timeout=60,
                    what=f"Directus (port {self.port})",
                    alive=self._process.alive,
                    log=self.log,
                )
                break
            except RuntimeError:
                process, self._process = self._process, None
                process.stop()
                if attempt == 2 or "EADDRINUSE" not in (self.log.read_text() if self.log else ""):
                    raise
        self._add_users()

    def stop(self) -> None:
        """Stop Directus and drop its database; idempotent."""
        if self._process is not None:
            self._process.stop()
            self._process = None
        if self._created_database:
            with contextlib.suppress(Exception):
                _pg.drop_database(self.database)
            self._created_database = False
        if self._run_dir is not None:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def clear(self) -> None:
        """Delete every item of the CRM collections (users and the schema stay)."""
        with self.client(timeout=60) as client:
            for collection in CRM_COLLECTIONS:
                response = client.request(
                    "DELETE", f"/items/{collection}", json={"query": {"limit": -1}}
                )
                if response.status_code != 204:
                    raise RuntimeError(
                        f"emptying {collection}: {response.status_code} {response.text[:300]}"
                    )

    # -- plumbing ----------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        assert self._run_dir is not None
        kept = ("PATH", "HOME", "LANG", "TMPDIR")
        env = {key: os.environ[key] for key in kept if key in os.environ}
        env.update(
            {
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "PUBLIC_URL": self.base_url,
                "SECRET": self._secret,
                "ADMIN_EMAIL": self.admin_email,
                "ADMIN_PASSWORD": self._password,
                "ADMIN_TOKEN": self.token,
                "TELEMETRY": "false",
                "LOG_LEVEL": "info",
                "LOG_STYLE": "raw",
                # Module extensions are looked up in the package.json of the working directory
                # unless told where it is; the installation's has none.
                "PACKAGE_FILE_LOCATION": str(_layout.directus_home()),
                "EXTENSIONS_PATH": str(self._run_dir / "extensions"),
                "STORAGE_LOCAL_ROOT": str(self._run_dir / "uploads"),
            }
        )
        if self.database_kind == "postgres":
            url = urlsplit(_layout.postgres_url())
            env.update(
                {
                    "DB_CLIENT": "pg",
                    "DB_HOST": url.hostname or "127.0.0.1",
                    "DB_PORT": str(url.port or 5432),
                    "DB_DATABASE": self.database,
                    "DB_USER": unquote(url.username or "postgres"),
                    "DB_PASSWORD": unquote(url.password or ""),
                }
            )
        else:
            env.update({"DB_CLIENT": "sqlite3", "DB_FILENAME": str(self._run_dir / "directus.db")})
        env.update(self.extra_env)
        return env

    def _answers(self) -> bool:
        try:
            response = httpx.get(f"{self.base_url}/server/ping", timeout=2)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _add_users(self) -> None:
        with self.client(timeout=60) as client:
            self.admin_id = _data(client.get("/users/me", params={"fields": "id"}))["id"]
            role = _data(client.post("/roles", json={"name": "Sales", "icon": "handshake"}))
            member = _data(
                client.post(
                    "/users",
                    json={
                        "email": self.member_email,
                        "password": secrets.token_urlsafe(16),
                        "first_name": "Morgan",
                        "last_name": "Member",
                        "role": role["id"],
                    },
                )
            )
            self.member_id = member["id"]


def _data(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(
            f"Directus bootstrap: {response.request.method} {response.request.url.path} "
            f"answered {response.status_code}: {response.text[:500]}"
        )
    return response.json()["data"]
