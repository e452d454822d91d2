"""A transaction that hit a deadlock, a serialization failure or a dead pooled connection is
run again, whole, at most three times; any other database error is not replayed.

The errors stand for what the DBAPIs raise: PostgreSQL's SQLSTATE 40P01 ``deadlock_detected``
and 40001 ``serialization_failure`` (https://www.postgresql.org/docs/16/errcodes-appendix.html,
as asyncpg's ``sqlstate``), MySQL/MariaDB's error 1213 ``ER_LOCK_DEADLOCK``
(https://mariadb.com/kb/en/mariadb-error-code-reference/, as the first of aiomysql's ``args``),
each wrapped by SQLAlchemy in a ``DBAPIError`` and by the driver's ``db_errors`` in
``Unavailable``.
"""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa_exc

from backends.base import Unavailable
from backends.sql import SQLBackend, SQLOptions

pytestmark = pytest.mark.anyio


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _failure(orig: Exception, *, invalidated: bool = False) -> Unavailable:
    cause = sa_exc.DBAPIError("UPDATE ...", {}, orig, connection_invalidated=invalidated)
    error = Unavailable("database error")
    error.__cause__ = cause
    return error


def _backend() -> SQLBackend:
    return SQLBackend(SQLOptions(url="sqlite+aiosqlite:///:memory:"))


async def _run(failures: list[Unavailable]) -> tuple[int, str | Unavailable]:
    calls = 0

    async def transaction() -> str:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        return "done"

    outcome: str | Unavailable
    try:
        outcome = await _backend()._retrying(transaction)
    except Unavailable as exc:
        outcome = exc
    return calls, outcome


@pytest.mark.parametrize(
    "orig",
    [_PgError("40P01"), _PgError("40001"), Exception(1213, "Deadlock found when trying to get")],
    ids=["pg-deadlock", "pg-serialization", "mysql-deadlock"],
)
async def test_a_conflict_is_replayed_until_the_transaction_commits(orig: Exception) -> None:
    calls, result = await _run([_failure(orig), _failure(orig)])
    assert (calls, result) == (3, "done")


async def test_a_dead_pooled_connection_is_replayed() -> None:
    calls, result = await _run([_failure(Exception("connection reset"), invalidated=True)])
    assert (calls, result) == (2, "done")


async def test_three_conflicts_in_a_row_give_up_with_the_last_error() -> None:
    failures = [_failure(_PgError("40P01")) for _ in range(4)]
    last = failures[2]
    calls, result = await _run(failures)
    assert calls == 3 and result is last


async def test_any_other_database_error_is_not_replayed() -> None:
    error = _failure(_PgError("23505"))  # unique_violation: replaying would not help
    calls, result = await _run([error])
    assert calls == 1 and result is error
