"""The SQL driver: SQLite, PostgreSQL and MySQL/MariaDB through SQLAlchemy 2 async Core.

See :mod:`backends.sql.driver` for what it does and :mod:`backends.sql.options` for its
options; ``docs/sql.md`` for configuration examples.
"""

from __future__ import annotations

from .driver import SQLBackend
from .options import DEFAULT_URL, SQLOptions

__all__ = ["DEFAULT_URL", "SQLBackend", "SQLOptions"]
