"""A real BottleCRM (PyPI ``django-crm``, pinned in ``bottlecrm-requirements.txt``) for tests.

``BottleCRMServer`` clones the migrated template database (``bottlecrm_template.py``), serves
it with gunicorn on 127.0.0.1 and a free port, and bootstraps a first organisation with nothing
done by hand, the way BottleCRM's own tooling allows without a browser (its sign-in is Google
OAuth or an e-mailed magic link only):

1. ``manage.py devlogin <admin> --create`` (a local-development command that refuses to run
   unless ``DEBUG=True``, so ``DEBUG`` is on for that one command; the server runs with
   ``DEBUG=False``, which is what makes its errors JSON instead of 300 KB HTML pages) mints a JWT
   for a new user who belongs to no organisation yet;
2. ``POST /api/org/`` creates an organisation and makes that user its ADMIN;
3. ``POST /api/auth/switch-org/`` gives a JWT bound to that organisation;
4. ``POST /api/profile/tokens/`` mints the ADMIN's personal access token (``bcrm_pat_...``), the
   credential an integration uses (``Authorization: Bearer``);
5. ``POST /api/users/`` adds a second member, role USER.

``new_tenant()`` repeats steps 2-5 for a fresh organisation in well under a second (the same
ADMIN user, who then belongs to several organisations); the ``bottlecrm`` fixture gives every
test its own. BottleCRM isolates organisations with PostgreSQL row-level security: a token sees
only its organisation's records.

Stopping the server stops gunicorn's process group, drops the cloned database and deletes the
server's Redis keys (celery queues every create there under a key prefix of its own; no worker
runs, none is needed for the API).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
import redis

from tests.rest.servers import _layout, _pg
from tests.rest.servers._proc import ServerProcess, free_port, run_checked, wait_until

__all__ = [
    "BottleCRMServer",
    "BottleCRMTenant",
    "NotAvailable",
    "availability",
    "delete_redis_keys",
    "redis_keys",
]

ADMIN_EMAIL = "admin@example.com"
MEMBER_EMAIL = "member@example.com"
# An unbound JWT lives one hour (SIMPLE_JWT in crm/settings.py); refresh it well before.
_JWT_REFRESH_AFTER = 45 * 60


class NotAvailable(Exception):
    """The server cannot run here (not installed, or a service it needs is down); the message
    says what to do."""


@dataclass(frozen=True)
class BottleCRMTenant:
    """One organisation on a running BottleCRM, as an integration sees it.

    ``token`` is the organisation ADMIN's personal access token: send it as
    ``Authorization: Bearer <token>`` (``headers``). A USER-role token would see only records it
    created or is assigned to, so integrations use an ADMIN's. ``member_profile_id`` and
    ``admin_profile_id`` are the ids ``/api/users/`` lists (what ``assigned_to`` takes).
    """

    base_url: str
    token: str = field(repr=False)
    org_id: str
    org_name: str
    admin_email: str
    admin_profile_id: str
    member_email: str
    member_profile_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` on ``base_url`` that sends the token."""
        return httpx.Client(base_url=self.base_url, headers=self.headers, **kwargs)


def availability() -> None:
    """Raise ``NotAvailable`` unless BottleCRM is installed and PostgreSQL and Redis answer."""
    home = _layout.bottlecrm_home()
    if not _layout.installed(home):
        raise NotAvailable(
            f"BottleCRM is not installed in {home}: run tests/rest/servers/install.sh bottlecrm"
        )
    if not _pg.reachable():
        raise NotAvailable(f"PostgreSQL does not answer at {_safe(_layout.postgres_url())}")
    try:
        with redis.Redis.from_url(_layout.redis_url(), socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        raise NotAvailable(f"Redis does not answer at {_safe(_layout.redis_url())}") from exc


def _safe(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


class BottleCRMServer:
    """One BottleCRM: its own database (a clone of the template), gunicorn on a free port.

    ``with BottleCRMServer() as server:`` starts it and bootstraps ``server.tenant``; or call
    ``start()`` and ``stop()``. ``workers`` and ``threads`` are gunicorn's (2 x 4 by default, as
    measured in the notes: about 70 ms per contact create on 2 cores).
    """

    def __init__(self, *, workers: int = 2, threads: int = 4) -> None:
        self.workers = workers
        self.threads = threads
        self.database = _pg.new_database_name(_layout.BOTTLECRM_RUN_PREFIX)
        self.redis_prefix = _redis_prefix(self.database)
        self.port = 0
        # Signs every JWT: devlogin and gunicorn must share it.
        self._secret_key = secrets.token_urlsafe(48)
        self._run_dir: Path | None = None
        self._process: ServerProcess | None = None
        self._jwt: tuple[str, str, float] | None = None  # access, refresh, minted at
        self._tenant: BottleCRMTenant | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tenant(self) -> BottleCRMTenant:
        """The organisation bootstrapped at start."""
        if self._tenant is None:
            raise RuntimeError("BottleCRM is not started")
        return self._tenant

    @property
    def log(self) -> Path | None:
        """gunicorn's output (access log included), while the server runs."""
        return None if self._run_dir is None else self._run_dir / "gunicorn.log"

    def start(self) -> None:
        availability()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        template = _layout.bottlecrm_template()
        if not _pg.database_exists(template):
            # PostgreSQL lost it, or install.sh ran while PostgreSQL was down: build it now
            # (minutes, once).
            run_checked(
                [str(_layout.bottlecrm_python()), str(_layout.HERE / "bottlecrm_template.py")],
                env=self._base_env(),
                cwd=_layout.HERE,
                what="building BottleCRM's template database",
                timeout=1800,
            )
        for orphan in _pg.drop_orphans(_layout.BOTTLECRM_RUN_PREFIX):
            # Left by a run that was killed: its Redis keys go with its database.
            delete_redis_keys(_redis_prefix(orphan))
        _pg.create_database(self.database, template=template, owner=_layout.BOTTLECRM_ROLE)
        self._run_dir = Path(tempfile.mkdtemp(prefix="enginy-bottlecrm-"))
        (self._run_dir / "static").mkdir()

        for attempt in range(3):
            self.port = free_port()
            self._process = ServerProcess(
                [
                    str(_layout.bottlecrm_home() / "venv" / "bin" / "gunicorn"),
                    "crm.wsgi:application",
                    f"--bind=127.0.0.1:{self.port}",
                    f"--workers={self.workers}",
                    f"--threads={self.threads}",
                    "--graceful-timeout=5",
                    # gunicorn 27 opens a control socket at a fixed path in the home folder,
                    # which two servers would fight over.
                    "--no-control-socket",
                    "--access-logfile=-",
                ],
                env=self._server_env(),
                cwd=self._run_dir,
                log=self._run_dir / "gunicorn.log",
                name="BottleCRM",
            )
            if attempt == 0:
                # Minting the JWT starts Django once more (about 3 s): overlap it with gunicorn.
                self._jwt = self._devlogin()
            try:
                wait_until(
                    self._answers,
                    timeout=60,
                    what=f"BottleCRM (gunicorn on port {self.port})",
                    alive=self._process.alive,
                    log=self.log,
                )
                break
            except RuntimeError:
                process, self._process = self._process, None
                process.stop()
                if attempt == 2 or "in use" not in (self.log.read_text() if self.log else ""):
                    raise
        self._tenant = self.new_tenant()

    def stop(self) -> None:
        """Stop gunicorn, drop the database, delete the Redis keys; idempotent."""
        if self._process is not None:
            self._process.stop()
            self._process = None
        with contextlib.suppress(Exception):
            _pg.drop_database(self.database)
        if self._run_dir is not None:
            with contextlib.suppress(Exception):
                delete_redis_keys(self.redis_prefix)
            shutil.rmtree(self._run_dir, ignore_errors=True)
            self._run_dir = None
        self._tenant = None

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

    # -- tenants -----------------------------------------------------------------------------

    def new_tenant(self, name: str | None = None) -> BottleCRMTenant:
        """A fresh organisation with its ADMIN (the bootstrap user), an ADMIN personal access
        token and a USER member."""
        name = name or f"Enginy test {secrets.token_hex(3)}"
        with httpx.Client(base_url=self.base_url, timeout=60) as client:
            jwt = self._admin_jwt(client)
            created = _ok(client.post("/api/org/", json={"name": name}, headers=_bearer(jwt)))
            org_id = created["org"]["id"]
            switched = _ok(
                client.post("/api/auth/switch-org/", json={"org_id": org_id}, headers=_bearer(jwt))
            )
            bound = _bearer(switched["access_token"])
            token = _ok(
                client.post(
                    "/api/profile/tokens/", json={"name": "enginy-crm-adapter tests"}, headers=bound
                )
            )["token"]
            _ok(
                client.post(
                    "/api/users/", json={"email": MEMBER_EMAIL, "role": "USER"}, headers=bound
                )
            )
            users = _ok(client.get("/api/users/", headers=_bearer(token)))["active_users"]
            profiles = {row["user_details"]["email"]: row["id"] for row in users["active_users"]}
        return BottleCRMTenant(
            base_url=self.base_url,
            token=token,
            org_id=org_id,
            org_name=name,
            admin_email=ADMIN_EMAIL,
            admin_profile_id=switched["profile"]["id"],
            member_email=MEMBER_EMAIL,
            member_profile_id=profiles[MEMBER_EMAIL],
        )

    def _admin_jwt(self, client: httpx.Client) -> str:
        assert self._jwt is not None
        access, refresh, minted = self._jwt
        if time.monotonic() - minted > _JWT_REFRESH_AFTER:
            renewed = _ok(client.post("/api/auth/refresh-token/", json={"refresh": refresh}))
            self._jwt = (renewed["access"], renewed["refresh"], time.monotonic())
            access = renewed["access"]
        return access

    # -- plumbing ----------------------------------------------------------------------------

    def _base_env(self) -> dict[str, str]:
        kept = (
            "PATH",
            "HOME",
            "LANG",
            "TMPDIR",
            "ENGINY_TEST_POSTGRES_URL",
            "ENGINY_TEST_REDIS_URL",
        )
        return {key: os.environ[key] for key in kept if key in os.environ}

    def _server_env(self) -> dict[str, str]:
        assert self._run_dir is not None
        postgres = urlsplit(_layout.postgres_url())
        return {
            **self._base_env(),
            "PYTHONPATH": str(_layout.BOTTLECRM_SITE),
            "DJANGO_SETTINGS_MODULE": "enginy_test_settings",
            "DBNAME": self.database,
            "DBUSER": _layout.BOTTLECRM_ROLE,
            "DBPASSWORD": "",
            "DBHOST": postgres.hostname or "127.0.0.1",
            "DBPORT": str(postgres.port or 5432),
            "SECRET_KEY": self._secret_key,
            "DEBUG": "False",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CELERY_BROKER_URL": _layout.redis_url(),
            "CELERY_RESULT_BACKEND": _layout.redis_url(),
            "ENGINY_REDIS_PREFIX": self.redis_prefix,
            "ENGINY_STATIC_ROOT": str(self._run_dir / "static"),
        }

    def _devlogin(self) -> tuple[str, str, float]:
        assert self._run_dir is not None
        env = {**self._server_env(), "DEBUG": "True"}  # devlogin refuses to run otherwise
        output = run_checked(
            [
                str(_layout.bottlecrm_python()),
                str(_layout.BOTTLECRM_SITE / "manage.py"),
                "devlogin",
                ADMIN_EMAIL,
                "--create",
            ],
            env=env,
            cwd=self._run_dir,
            what="manage.py devlogin",
            timeout=120,
        )
        found = {}
        for line in output.splitlines():
            key, sep, value = line.partition(":")
            if sep and key in ("access_token", "refresh_token"):
                found[key] = value
        access = found.get("access_token", "").strip()
        refresh = found.get("refresh_token", "").strip()
        if not access or not refresh:
            raise RuntimeError("manage.py devlogin printed no access_token / refresh_token")
        return access, refresh, time.monotonic()

    def _answers(self) -> bool:
        try:
            response = httpx.get(f"{self.base_url}/api/org/timezones/", timeout=2)
        except httpx.HTTPError:
            return False
        return response.status_code < 500


def _redis_prefix(database: str) -> str:
    return f"enginy-test:{database}:"


def redis_keys(prefix: str) -> int:
    """How many keys under ``prefix`` the tests' Redis holds."""
    with redis.Redis.from_url(_layout.redis_url()) as client:
        return sum(1 for _ in client.scan_iter(match=f"{prefix}*", count=1000))


def delete_redis_keys(prefix: str) -> int:
    """Delete the keys under ``prefix``; how many there were."""
    with redis.Redis.from_url(_layout.redis_url()) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(
            f"BottleCRM bootstrap: {response.request.method} {response.request.url.path} "
            f"answered {response.status_code}: {response.text[:500]}"
        )
    return response.json()
