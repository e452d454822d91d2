"""The few administrative statements the servers need on the shared PostgreSQL: clone, create
and drop their own databases, and drop those left behind by a test run that was killed.

Synchronous wrappers over asyncpg (a test dependency already), each run on a fresh event loop in a
helper thread, so that they work from fixtures whether or not an event loop is running.

Every database a server creates is named ``<prefix><pid>_<random>``, ``pid`` being the Python
process that owns it, and carries a comment naming that process exactly (kernel boot, PID
namespace, pid). ``drop_orphans`` drops those whose owner is no longer running, so a ``kill -9``
costs disk space only until the next start; it never touches a database whose owner it cannot
see (another machine or container using the same PostgreSQL).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg

from tests.rest.servers import _layout

__all__ = [
    "create_database",
    "database_exists",
    "drop_database",
    "drop_orphans",
    "new_database_name",
    "reachable",
]

T = TypeVar("T")


def _run(job: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    result: list[T] = []
    error: list[BaseException] = []

    async def main() -> None:
        conn = await asyncpg.connect(_layout.postgres_url(), timeout=10)
        try:
            result.append(await job(conn))
        finally:
            await conn.close()

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the calling thread
            error.append(exc)

    thread = threading.Thread(target=target, name="enginy-pg-admin")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _ident(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"unexpected database name {name!r}")
    return f'"{name}"'


def reachable() -> bool:
    async def ping(conn: asyncpg.Connection) -> bool:
        return bool(await conn.fetchval("SELECT 1"))

    try:
        return _run(ping)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False


def new_database_name(prefix: str) -> str:
    return f"{prefix}{os.getpid()}_{secrets.token_hex(4)}"


def _owner(pid: int) -> str:
    """This process as seen from anywhere: boot id, PID namespace and pid."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    namespace = os.stat("/proc/self/ns/pid").st_ino
    return f"enginy test server owner {boot}/{namespace}/{pid}"


def database_exists(name: str) -> bool:
    async def exists(conn: asyncpg.Connection) -> bool:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))

    return _run(exists)


def create_database(name: str, *, template: str | None = None, owner: str | None = None) -> None:
    statement = f"CREATE DATABASE {_ident(name)}"
    if template is not None:
        statement += f" TEMPLATE {_ident(template)}"
    if owner is not None:
        statement += f" OWNER {_ident(owner)}"

    comment = _owner(os.getpid()).replace("'", "")

    async def create(conn: asyncpg.Connection) -> None:
        await conn.execute(statement)
        await conn.execute(f"COMMENT ON DATABASE {_ident(name)} IS '{comment}'")

    _run(create)


def drop_database(name: str) -> None:
    async def drop(conn: asyncpg.Connection) -> None:
        await conn.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")

    _run(drop)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_orphans(prefix: str) -> list[str]:
    """Drop the ``<prefix>*`` databases created by a process of this machine that is gone;
    their names."""
    owner = re.compile(r"enginy test server owner (\S+)/(\d+)/(\d+)")
    me = owner.fullmatch(_owner(os.getpid()))
    assert me is not None

    async def orphans(conn: asyncpg.Connection) -> list[str]:
        rows = await conn.fetch(
            "SELECT datname, shobj_description(oid, 'pg_database') AS comment "
            "FROM pg_database WHERE starts_with(datname, $1)",
            prefix,
        )
        dropped = []
        for row in rows:
            found = owner.fullmatch(row["comment"] or "")
            if found is None or found.group(1, 2) != me.group(1, 2):
                continue  # not ours to judge
            if _pid_alive(int(found.group(3))):
                continue
            await conn.execute(f"DROP DATABASE IF EXISTS {_ident(row['datname'])} WITH (FORCE)")
            dropped.append(row["datname"])
        return dropped

    return _run(orphans)
