"""Build BottleCRM's migrated template database, once per pinned version.

Run with BottleCRM's own interpreter (it needs Django and psycopg from that venv)::

    <cache>/bottlecrm-<hash>/venv/bin/python tests/rest/servers/bottlecrm_template.py

``install.sh`` runs it after installing BottleCRM; the fixture runs it when the template is
missing (PostgreSQL was reset, or install.sh ran while PostgreSQL was down). BottleCRM's 223
migrations take 3-5 minutes of CPU here; each server start then clones the template in a fraction
of a second (``CREATE DATABASE ... TEMPLATE``).

Safe to run concurrently: the first holds a PostgreSQL advisory lock while it migrates into a
scratch database, renames it into place when migrate has succeeded, and the others find it done.
The template refuses connections (``ALLOW_CONNECTIONS false``), so that no stray session can make
a clone fail with "source database is being accessed by other users".

Environment: ``ENGINY_TEST_POSTGRES_URL`` (an administrator, default
``postgres@127.0.0.1:5432/test``). The role BottleCRM connects as, ``enginy_test_bottlecrm``, is
created without superuser rights: a superuser bypasses the row-level security that BottleCRM's
tenant isolation relies on. It logs in without a password, as the tests' PostgreSQL (trust
authentication on 127.0.0.1) allows.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit

import _layout
import psycopg
from psycopg import sql


def _lock_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def ensure_role(conn: psycopg.Connection) -> None:
    # CREATE ROLE has no IF NOT EXISTS; a concurrent creator raises duplicate_object.
    conn.execute(
        sql.SQL(
            "DO $$ BEGIN CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        ).format(sql.Identifier(_layout.BOTTLECRM_ROLE))
    )


def database_exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def migrate(database: str) -> None:
    url = urlsplit(_layout.postgres_url())
    with tempfile.TemporaryDirectory(prefix="enginy-bottlecrm-migrate-") as scratch:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", scratch),
            "PYTHONPATH": str(_layout.BOTTLECRM_SITE),
            "DJANGO_SETTINGS_MODULE": "enginy_test_settings",
            "DBNAME": database,
            "DBUSER": _layout.BOTTLECRM_ROLE,
            "DBPASSWORD": "",
            "DBHOST": url.hostname or "127.0.0.1",
            "DBPORT": str(url.port or 5432),
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DEBUG": "False",
            "CELERY_BROKER_URL": _layout.redis_url(),
            "CELERY_RESULT_BACKEND": _layout.redis_url(),
            "ENGINY_REDIS_PREFIX": f"enginy-test:{database}:",
            "ENGINY_STATIC_ROOT": scratch,
        }
        subprocess.run(
            [sys.executable, str(_layout.BOTTLECRM_SITE / "manage.py"), "migrate", "--noinput"],
            env=env,
            cwd=scratch,
            check=True,
            stdout=subprocess.DEVNULL,
        )


def ensure_template() -> str:
    """Create the template unless it exists; a line saying which happened."""
    name = _layout.bottlecrm_template()
    with psycopg.connect(_layout.postgres_url(), autocommit=True) as conn:
        ensure_role(conn)
        if database_exists(conn, name):
            return f"template database {name} already exists"
        conn.execute("SELECT pg_advisory_lock(%s)", (_lock_id(name),))
        try:
            if database_exists(conn, name):
                return f"template database {name} was built meanwhile"
            scratch = f"{name}_build"
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(scratch), sql.Identifier(_layout.BOTTLECRM_ROLE)
                )
            )
            started = time.monotonic()
            try:
                migrate(scratch)
            except BaseException:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(scratch)
                    )
                )
                raise
            conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(scratch), sql.Identifier(name)
                )
            )
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(
                    sql.Identifier(name)
                )
            )
            return f"template database {name} migrated in {time.monotonic() - started:.0f} s"
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_lock_id(name),))


if __name__ == "__main__":
    try:
        print(ensure_template())
    except subprocess.CalledProcessError as exc:
        sys.exit(f"BottleCRM's migrate failed (exit {exc.returncode})")
    except psycopg.OperationalError as exc:
        sys.exit(f"PostgreSQL: {exc}")
