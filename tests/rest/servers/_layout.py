"""Where the test servers are installed, and under which names (standard library only).

Shared by the fixtures, by ``bottlecrm_template.py`` (which runs in BottleCRM's own venv) and by
``install.sh`` (``python3 _layout.py KEY`` prints one value), so that all three agree.

Each installation lives in the cache directory under a name carrying the hash of its pin file:
editing ``bottlecrm-requirements.txt`` or ``directus-npm/package-lock.json`` makes a new one
beside the old, never a half-updated mixture, and two worktrees on different pins share the
cache.

| what | where |
| --- | --- |
| cache | ``$ENGINY_TEST_SERVERS_DIR``, else ``${XDG_CACHE_HOME:-~/.cache}/enginy-test-servers`` |
| BottleCRM | ``<cache>/bottlecrm-<hash>/venv`` (a Python 3.12 venv) |
| Directus | ``<cache>/directus-<hash>/node_modules`` |
| BottleCRM's template | database ``enginy_bottlecrm_tpl_<hash>``, owner ``enginy_test_bottlecrm`` |

An installation is complete when its ``.installed`` file exists.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

BOTTLECRM_REQUIREMENTS = HERE / "bottlecrm-requirements.txt"
#: manage.py and the settings module BottleCRM runs with (put on its PYTHONPATH).
BOTTLECRM_SITE = HERE / "bottlecrm_site"
DIRECTUS_PACKAGE = HERE / "directus-npm" / "package.json"
DIRECTUS_LOCK = HERE / "directus-npm" / "package-lock.json"
DIRECTUS_SCHEMA = REPO / "examples" / "rest" / "directus-schema.yaml"

#: The PostgreSQL role BottleCRM connects as. Not a superuser: a superuser bypasses the row-level
#: security BottleCRM's tenant isolation relies on.
BOTTLECRM_ROLE = "enginy_test_bottlecrm"
#: Prefix of every database a BottleCRM server start clones (``<prefix><pid>_<random>``).
BOTTLECRM_RUN_PREFIX = "enginy_bottlecrm_run_"
#: Prefix of every database a Directus server start creates on PostgreSQL.
DIRECTUS_RUN_PREFIX = "enginy_directus_run_"
#: Marks a finished installation.
STAMP = ".installed"


def postgres_url() -> str:
    """The PostgreSQL server for the tests' databases, as a libpq URL (an administrator: it
    creates roles and databases). ``$ENGINY_TEST_POSTGRES_URL`` as the SQL tests use it."""
    url = os.environ.get(
        "ENGINY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgresql") else url


def redis_url() -> str:
    """The Redis server BottleCRM queues its celery tasks in: ``$ENGINY_TEST_REDIS_URL``."""
    return os.environ.get("ENGINY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def cache_root() -> Path:
    explicit = os.environ.get("ENGINY_TEST_SERVERS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "enginy-test-servers"


def pin_key(*files: Path) -> str:
    """The first 12 hex digits of the SHA-256 of the files' contents, in order."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def bottlecrm_home() -> Path:
    return cache_root() / f"bottlecrm-{pin_key(BOTTLECRM_REQUIREMENTS)}"


def bottlecrm_python() -> Path:
    return bottlecrm_home() / "venv" / "bin" / "python"


def bottlecrm_template() -> str:
    return f"enginy_bottlecrm_tpl_{pin_key(BOTTLECRM_REQUIREMENTS)}"


def directus_home() -> Path:
    return cache_root() / f"directus-{pin_key(DIRECTUS_PACKAGE, DIRECTUS_LOCK)}"


def directus_cli() -> Path:
    """Directus' command line, entered below the ``directus`` bin script: that script first asks
    the npm registry whether a newer Directus exists (up to 8 s, and a banner on every call)."""
    return directus_home() / "node_modules" / "@directus" / "api" / "dist" / "cli" / "run.js"


def installed(home: Path) -> bool:
    return (home / STAMP).is_file()


_VALUES = {
    "cache": cache_root,
    "bottlecrm-home": bottlecrm_home,
    "bottlecrm-template": bottlecrm_template,
    "directus-home": directus_home,
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in _VALUES:
        sys.exit(f"usage: {Path(sys.argv[0]).name} {{{','.join(_VALUES)}}}")
    print(_VALUES[sys.argv[1]]())
