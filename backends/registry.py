"""Find a driver class by name: built-ins, installed plugins, or a ``module:Class`` path.

``backend.driver`` in the YAML names the driver. It is looked up, in order, in
:data:`BUILTIN_DRIVERS` (imported lazily, so an optional dependency of one driver never
breaks another), then in the ``enginy_adapter.backends`` entry-point group that third-party
packages register in their own ``pyproject.toml``::

    [project.entry-points."enginy_adapter.backends"]
    pipedrive = "enginy_pipedrive:PipedriveBackend"

and finally, when it contains a colon, as a ``module:Class`` path. Built-in names win over
entry points of the same name, so an installed package cannot silently replace a built-in.
"""

from __future__ import annotations

import difflib
import importlib
from importlib import metadata

from backends.base import Backend

__all__ = [
    "BUILTIN_DRIVERS",
    "ENTRY_POINT_GROUP",
    "EXTRAS_FOR_MODULE",
    "DriverImportError",
    "DriverLoadError",
    "DriverNotFound",
    "InvalidDriver",
    "available_drivers",
    "install_hint",
    "load_driver",
]

#: Built-in driver names and the ``module:Class`` they load.
BUILTIN_DRIVERS: dict[str, str] = {
    "memory": "backends.memory:MemoryBackend",
    "sql": "backends.sql:SQLBackend",
    "hubspot": "backends.hubspot:HubSpotBackend",
    "rest": "backends.rest:RestBackend",
}

#: The entry-point group through which installed packages add drivers.
ENTRY_POINT_GROUP = "enginy_adapter.backends"

#: Optional dependencies (top-level module names) and the package extra that installs them.
EXTRAS_FOR_MODULE: dict[str, str] = {"asyncpg": "postgresql", "aiomysql": "mysql"}

_DISTRIBUTION = "enginy-crm-adapter"


class DriverLoadError(Exception):
    """Root of the registry's errors: the configured driver cannot be loaded."""


class DriverNotFound(DriverLoadError):
    """No driver has this name (the message suggests close names and lists the known ones)."""


class InvalidDriver(DriverNotFound):
    """The name resolves to something that is not a :class:`~backends.base.Backend` subclass.

    A subclass of :class:`DriverNotFound` so that callers handling "no usable driver by that
    name" handle this too.
    """


class DriverImportError(DriverLoadError):
    """The driver exists but a module it needs is not installed (the message says what to
    install, as an exact ``pip install`` line when the module belongs to one of our extras)."""


def install_hint(exc: ImportError) -> str | None:
    """The ``pip install`` line that fixes ``exc``, when the missing module is one of ours.

    Exposed for drivers that import an optional dependency late (the SQL driver only needs
    ``asyncpg`` when it opens a PostgreSQL URL).
    """
    missing = (exc.name or "").split(".")[0]
    extra = EXTRAS_FOR_MODULE.get(missing)
    if extra is None:
        return None
    return f'pip install "{_DISTRIBUTION}[{extra}]"'


def _entry_points() -> dict[str, metadata.EntryPoint]:
    # Looked up through the module attribute on every call so that tests can monkeypatch
    # ``importlib.metadata.entry_points``; a driver package installed at runtime is seen too.
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_drivers() -> dict[str, str]:
    """Every driver name that :func:`load_driver` accepts, with the ``module:Class`` it loads.

    Built-ins are listed even when their optional dependencies are missing. Read-only.
    """
    found = {name: ep.value for name, ep in _entry_points().items()}
    found.update(BUILTIN_DRIVERS)
    return dict(sorted(found.items()))


def _import(path: str, name: str) -> object:
    module_name, _, attr = path.partition(":")
    module_name, attr = module_name.strip(), attr.strip()
    if not module_name or not attr:
        raise DriverNotFound(f"backend driver {name!r}: expected 'module:Class', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or ""
        # The driver's own module (or a parent package) is absent: a wrong name, not a missing
        # dependency of an existing driver.
        if isinstance(exc, ModuleNotFoundError) and (
            module_name == missing or module_name.startswith(missing + ".")
        ):
            raise DriverNotFound(
                f"backend driver {name!r}: module {module_name!r} cannot be found"
            ) from exc
        if not isinstance(exc, ModuleNotFoundError):  # e.g. "cannot import name X from Y"
            raise DriverImportError(
                f"backend driver {name!r}: importing {module_name!r} failed: {exc}"
            ) from exc
        hint = install_hint(exc)
        todo = f"run: {hint}" if hint else f"install the package that provides {missing!r}"
        raise DriverImportError(
            f"backend driver {name!r} needs the module {missing!r}, which is not installed; {todo}"
        ) from exc
    obj: object = module
    try:
        for part in attr.split("."):  # "module:Outer.Inner" is a valid entry-point object
            obj = getattr(obj, part)
    except AttributeError:
        raise DriverNotFound(
            f"backend driver {name!r}: module {module_name!r} has no attribute {attr!r}"
        ) from None
    return obj


def _check(obj: object, name: str, path: str) -> type[Backend]:
    if obj is Backend:
        raise InvalidDriver(
            f"backend driver {name!r} ({path}) is the interface itself; name a driver class "
            "that subclasses backends.base.Backend"
        )
    if not (isinstance(obj, type) and issubclass(obj, Backend)):
        raise InvalidDriver(
            f"backend driver {name!r} ({path}) is {obj!r}, not a Backend subclass (a subclass "
            "of backends.base.Backend is required)"
        )
    return obj


def load_driver(name: str) -> type[Backend]:
    """Return the driver class for ``name``: a built-in name, an entry-point name, or a
    ``module:Class`` path.

    Raises :class:`DriverNotFound` for an unknown name (with "did you mean ..." and the known
    names), :class:`DriverImportError` when an optional dependency is missing (with the
    ``pip install`` line) and :class:`InvalidDriver` when the object is not a ``Backend``
    subclass. Imports the driver's module, nothing else; idempotent.
    """
    name = name.strip()
    if name in BUILTIN_DRIVERS:
        path = BUILTIN_DRIVERS[name]
    else:
        entry_points = _entry_points()
        if name in entry_points:
            ep = entry_points[name]
            path = f"{ep.module}:{ep.attr}"  # drops an "[extras]" suffix of the value
        elif ":" in name:
            path = name
        else:
            known = sorted({*BUILTIN_DRIVERS, *entry_points})
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            if not close:  # "Memory", "SQL": the same name in another case
                close = [k for k in known if k.lower() == name.lower()]
            suggestion = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
            raise DriverNotFound(
                f"unknown backend driver {name!r}; {suggestion}known drivers: "
                f"{', '.join(known)} (or give a full 'module:Class' path)"
            )
    return _check(_import(path, name), name, path)
