"""The one place where database exceptions become :mod:`backends.base` errors.

Every statement the driver runs goes through :func:`db_errors`. Messages keep the database's own
first line (``value too long for type character varying(50)``) but never the SQL text, the bound
parameters or the connection URL's password.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import exc as sa_exc

from backends.base import AuthFailed, BackendError, InvalidRecord, SchemaError, Unavailable

from .options import safe_url

__all__ = [
    "RecordRejected",
    "db_errors",
    "is_record_error",
    "is_retryable_conflict",
    "is_schema_error",
    "reason",
    "scrub",
]

#: A URL with credentials inside a message (up to white space or a quote).
_DSN = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"]*@[^\s'\"]*")

# SQLSTATE classes / MySQL error numbers that mean "this row's values", not "the database".
_PG_RECORD_STATES = ("22", "23")  # data exception, integrity constraint violation
_MYSQL_RECORD_CODES = {1048, 1062, 1264, 1265, 1292, 1366, 1406, 1364, 1452, 1451, 3140, 4025}
_MYSQL_AUTH_CODES = {1044, 1045, 1049, 1698}
_MYSQL_RETRY_CODES = {1205, 1213}  # lock wait timeout, deadlock
_PG_RETRY_STATES = {"40001", "40P01"}  # serialization failure, deadlock
# Permanent until someone changes the schema or the configuration: syntax error or access
# rule violation (undefined table/column/function, "operator does not exist: character
# varying = uuid", datatype mismatch, insufficient privilege), feature not supported, invalid
# schema name.
_PG_SCHEMA_CLASSES = ("42", "0A", "3F")
_MYSQL_SCHEMA_CODES = {
    1054,  # unknown column
    1064,  # syntax error
    1142,  # command denied to user for table
    1143,  # command denied to user for column
    1146,  # table does not exist
    1253,  # collation not valid for character set
    1267,  # illegal mix of collations (2 operands)
    1270,  # illegal mix of collations (3 operands)
    1271,  # illegal mix of collations (n operands)
    1305,  # function does not exist
}
_SQLITE_SCHEMA_WORDS = (
    "no such table",
    "no such column",
    "has no column named",
    "no such function",
    "syntax error",
)


class RecordRejected(Exception):
    """Internal: a batch statement failed because of some row's values; the caller retries the
    batch row by row (savepoints) to find which."""


def _sqlstate(exc: sa_exc.DBAPIError) -> str | None:
    """PostgreSQL's SQLSTATE (``None`` for MySQL/MariaDB, whose error numbers say more: the
    driver's SQLSTATE there is ``HY000`` for most of them)."""
    if _mysql_code(exc) is not None:
        return None
    orig = exc.orig
    for attr in ("sqlstate", "pgcode"):
        value = getattr(orig, attr, None)
        if isinstance(value, str):
            return value
    # asyncpg errors arrive wrapped by SQLAlchemy's adapter; the original is in __cause__.
    cause = getattr(orig, "__cause__", None)
    value = getattr(cause, "sqlstate", None)
    return value if isinstance(value, str) else None


def _mysql_code(exc: sa_exc.DBAPIError) -> int | None:
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` without the password: every spelling in ``secrets`` (see
    :attr:`SQLOptions.secrets`) and the credentials of any URL in it (a DBAPI's message may
    echo its DSN) are replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return _DSN.sub(lambda m: safe_url(m.group(0)), text)


def reason(exc: BaseException, secrets: Sequence[str] = ()) -> str:
    """The database's own first line of the error, without SQL, parameters or password."""
    orig = exc.orig if isinstance(exc, sa_exc.StatementError) and exc.orig is not None else exc
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = args[1]  # (1406, "Data too long for column 'name' at row 1")
    else:
        text = str(orig)
    text = text.strip().splitlines()[0] if text.strip() else type(orig).__name__
    # asyncpg's adapter prefixes "<class '...'>: "; drop it.
    if text.startswith("<class '") and ">: " in text:
        text = text.split(">: ", 1)[1]
    # Scrubbed before cutting, so that a cut cannot leave part of a password behind.
    return scrub(text, secrets)[:300]


def is_record_error(exc: BaseException) -> bool:
    """Whether ``exc`` blames the values of a row (so other rows may still be written)."""
    if not isinstance(exc, sa_exc.DBAPIError) or exc.connection_invalidated:
        return False
    if isinstance(exc, (sa_exc.DataError, sa_exc.IntegrityError)):
        return True
    state = _sqlstate(exc)
    if state is not None:
        return state[:2] in _PG_RECORD_STATES
    code = _mysql_code(exc)
    return code in _MYSQL_RECORD_CODES


def is_retryable_conflict(exc: BaseException | None) -> bool:
    """A deadlock or serialization failure: the same transaction may simply be run again."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    return _sqlstate(exc) in _PG_RETRY_STATES or _mysql_code(exc) in _MYSQL_RETRY_CODES


def is_schema_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the schema or the configuration is wrong (retrying cannot help)."""
    if not isinstance(exc, sa_exc.DBAPIError) or exc.connection_invalidated:
        return False
    state = _sqlstate(exc)
    if state is not None:
        return state[:2] in _PG_SCHEMA_CLASSES
    code = _mysql_code(exc)
    if code is not None:
        return code in _MYSQL_SCHEMA_CODES
    if type(exc.orig).__module__.startswith("sqlite3"):
        text = str(exc.orig).lower()
        return any(word in text for word in _SQLITE_SCHEMA_WORDS)
    return False


def _is_auth_error(exc: sa_exc.DBAPIError) -> bool:
    state = _sqlstate(exc)
    if state is not None and state[:2] in ("28", "3D"):  # invalid authorization / catalog
        return True
    if _mysql_code(exc) in _MYSQL_AUTH_CODES:
        return True
    name = type(exc.orig).__name__
    return "Password" in name or "Authorization" in name


@contextmanager
def db_errors(what: str, secrets: Sequence[str] = ()) -> Iterator[None]:
    """Translate database exceptions raised inside the block.

    ``what`` says what the driver was doing ("create contacts") and starts the message;
    ``secrets`` are scrubbed from the database's text (:func:`scrub`).

    * pool exhausted, connection lost or refused, statement timeout → :class:`Unavailable`
      (retryable; the transaction was rolled back, nothing is half-written);
    * credentials refused → :class:`AuthFailed`;
    * a value the database rejects → :class:`InvalidRecord` (callers that write batches catch
      it per row, see :class:`RecordRejected`);
    * a statement the schema cannot run (a missing column, an operator between mismatched
      types, mixed collations, a missing privilege) → :class:`SchemaError`: not retryable.
    """
    try:
        yield
    except BackendError:
        raise
    except sa_exc.TimeoutError as exc:  # QueuePool: no connection free within pool_timeout
        raise Unavailable(f"{what}: no database connection free in time", retry_after=1) from exc
    except sa_exc.DBAPIError as exc:
        if _is_auth_error(exc):
            raise AuthFailed(
                f"{what}: the database refused the credentials: {reason(exc, secrets)}"
            ) from exc
        if is_record_error(exc):
            raise InvalidRecord(f"{what}: {reason(exc, secrets)}") from exc
        if is_schema_error(exc):
            raise SchemaError(
                f"{what}: the database refused the statement: {reason(exc, secrets)} (a schema "
                "or configuration problem: `enginy-adapter check` lists them)"
            ) from exc
        raise Unavailable(f"{what}: database error: {reason(exc, secrets)}", retry_after=1) from exc
    except (TimeoutError, OSError, ConnectionError) as exc:
        raise Unavailable(
            f"{what}: database unreachable: {reason(exc, secrets)}", retry_after=1
        ) from exc
    except sa_exc.SQLAlchemyError as exc:
        raise Unavailable(f"{what}: database error: {type(exc).__name__}", retry_after=1) from exc
