"""The driver registry: built-in names, entry points, module:Class paths and their errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from backends.base import Backend
from backends.memory import MemoryBackend
from backends.registry import (
    BUILTIN_DRIVERS,
    ENTRY_POINT_GROUP,
    DriverImportError,
    DriverLoadError,
    DriverNotFound,
    InvalidDriver,
    available_drivers,
    install_hint,
    load_driver,
)

MODULES = {
    "regtest_plugin": """
        from backends.base import Backend

        class PluginBackend(Backend):
            name = "plugin"

            class Nested(Backend):
                name = "nested"

        class NotABackend:
            pass

        NOT_A_CLASS = 3
    """,
    # What importing a driver module looks like when an optional dependency is absent.
    "regtest_needs_pg": """
        import asyncpg
    """,
    "regtest_needs_mysql": """
        import aiomysql.sa
    """,
    "regtest_needs_other": """
        import regtest_not_installed_anywhere
    """,
    "regtest_broken_inside": """
        from regtest_plugin import DoesNotExist
    """,
}


@pytest.fixture(autouse=True)
def plugin_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, source in MODULES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in MODULES:
        sys.modules.pop(name, None)


@pytest.fixture
def without_db_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes "import asyncpg" fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    monkeypatch.setitem(sys.modules, "aiomysql", None)


def use_entry_points(monkeypatch: pytest.MonkeyPatch, **drivers: str) -> None:
    eps = [metadata.EntryPoint(n, v, ENTRY_POINT_GROUP) for n, v in drivers.items()]
    eps.append(metadata.EntryPoint("elsewhere", "regtest_plugin:PluginBackend", "other.group"))

    def entry_points(*, group: str) -> metadata.EntryPoints:
        return metadata.EntryPoints(eps).select(group=group)

    monkeypatch.setattr(metadata, "entry_points", entry_points)


# -- built-ins --------------------------------------------------------------------------------


def test_builtin_name_loads_its_class() -> None:
    assert load_driver("memory") is MemoryBackend
    assert load_driver(" memory ") is MemoryBackend


@pytest.mark.parametrize("name", sorted(BUILTIN_DRIVERS))
def test_every_builtin_loads_a_driver_of_that_name(name: str) -> None:
    driver = load_driver(name)
    assert issubclass(driver, Backend)
    assert driver.name == name


def test_builtin_table_is_the_agreed_one() -> None:
    assert BUILTIN_DRIVERS == {
        "memory": "backends.memory:MemoryBackend",
        "sql": "backends.sql:SQLBackend",
        "hubspot": "backends.hubspot:HubSpotBackend",
        "rest": "backends.rest:RestBackend",
    }
    assert ENTRY_POINT_GROUP == "enginy_adapter.backends"


def test_builtins_are_imported_lazily() -> None:
    # Importing the registry (or listing drivers) must not import any driver, so that one
    # driver's optional dependency never breaks another.
    code = (
        "import sys, backends.registry as r; r.available_drivers(); "
        "print(sorted(m for m in sys.modules if m in ('backends.memory', 'backends.sql', "
        "'backends.hubspot')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- module:Class and entry points ----------------------------------------------------------


def test_module_class_path_loads() -> None:
    driver = load_driver("regtest_plugin:PluginBackend")
    assert issubclass(driver, Backend)
    assert driver.name == "plugin"


def test_entry_point_name_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    use_entry_points(monkeypatch, pipedrive="regtest_plugin:PluginBackend")
    assert load_driver("pipedrive").name == "plugin"


def test_entry_point_with_dotted_attribute_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    use_entry_points(monkeypatch, nested="regtest_plugin:PluginBackend.Nested")
    assert load_driver("nested").name == "nested"


def test_builtin_wins_over_entry_point_of_same_name(monkeypatch: pytest.MonkeyPatch) -> None:
    use_entry_points(monkeypatch, memory="regtest_plugin:PluginBackend")
    assert load_driver("memory") is MemoryBackend


def test_available_drivers_lists_builtins_and_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_entry_points(monkeypatch, pipedrive="regtest_plugin:PluginBackend")
    assert available_drivers() == {
        **BUILTIN_DRIVERS,
        "pipedrive": "regtest_plugin:PluginBackend",
    }


# -- unknown names ----------------------------------------------------------------------------


def test_unknown_name_suggests_close_names_and_lists_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_entry_points(monkeypatch, pipedrive="regtest_plugin:PluginBackend")
    with pytest.raises(DriverNotFound) as caught:
        load_driver("memroy")
    message = str(caught.value)
    assert "did you mean 'memory'?" in message
    assert "known drivers: hubspot, memory, pipedrive, rest, sql" in message


def test_unknown_plugin_name_is_suggested(monkeypatch: pytest.MonkeyPatch) -> None:
    use_entry_points(monkeypatch, pipedrive="regtest_plugin:PluginBackend")
    with pytest.raises(DriverNotFound, match="did you mean 'pipedrive'"):
        load_driver("pipedrve")


def test_other_case_is_suggested() -> None:
    with pytest.raises(DriverNotFound, match="did you mean 'sql'"):
        load_driver("SQL")


def test_far_name_has_no_suggestion_but_lists_known() -> None:
    with pytest.raises(DriverNotFound) as caught:
        load_driver("salesforce")
    assert "did you mean" not in str(caught.value)
    assert "known drivers: hubspot, memory, rest, sql" in str(caught.value)


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("regtest_nowhere:Driver", "module 'regtest_nowhere' cannot be found"),
        ("regtest_nowhere.sub:Driver", "module 'regtest_nowhere.sub' cannot be found"),
        ("regtest_plugin:Missing", "has no attribute 'Missing'"),
        ("regtest_plugin:", "expected 'module:Class'"),
    ],
)
def test_bad_module_class_path_is_not_found(path: str, needle: str) -> None:
    with pytest.raises(DriverNotFound, match=needle):
        load_driver(path)


# -- missing dependencies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "extra"),
    [("regtest_needs_pg:Driver", "postgresql"), ("regtest_needs_mysql:Driver", "mysql")],
)
@pytest.mark.usefixtures("without_db_drivers")
def test_missing_optional_dependency_gives_pip_line(path: str, extra: str) -> None:
    with pytest.raises(DriverImportError) as caught:
        load_driver(path)
    assert f'run: pip install "enginy-crm-adapter[{extra}]"' in str(caught.value)
    assert isinstance(caught.value.__cause__, ImportError)


def test_missing_unknown_dependency_names_the_module() -> None:
    with pytest.raises(DriverImportError) as caught:
        load_driver("regtest_needs_other:Driver")
    message = str(caught.value)
    assert "install the package that provides 'regtest_not_installed_anywhere'" in message
    assert "pip install" not in message


def test_import_error_inside_a_found_module_is_an_import_error() -> None:
    with pytest.raises(DriverImportError) as caught:
        load_driver("regtest_broken_inside:Driver")
    message = str(caught.value)
    assert "importing 'regtest_broken_inside' failed: cannot import name 'DoesNotExist'" in message
    assert "not installed" not in message


def test_install_hint() -> None:
    assert install_hint(ModuleNotFoundError("x", name="asyncpg")) == (
        'pip install "enginy-crm-adapter[postgresql]"'
    )
    assert install_hint(ModuleNotFoundError("x", name="aiomysql.cursors")) == (
        'pip install "enginy-crm-adapter[mysql]"'
    )
    assert install_hint(ModuleNotFoundError("x", name="numpy")) is None
    assert install_hint(ImportError("x")) is None


# -- not a driver -----------------------------------------------------------------------------


@pytest.mark.parametrize("attr", ["NotABackend", "NOT_A_CLASS"])
def test_object_that_is_not_a_backend_subclass_is_rejected(attr: str) -> None:
    with pytest.raises(InvalidDriver, match="not a Backend subclass"):
        load_driver(f"regtest_plugin:{attr}")


def test_the_base_class_itself_is_rejected() -> None:
    with pytest.raises(InvalidDriver, match="is the interface itself"):
        load_driver("backends.base:Backend")


def test_error_hierarchy() -> None:
    assert issubclass(InvalidDriver, DriverNotFound)
    assert issubclass(DriverNotFound, DriverLoadError)
    assert issubclass(DriverImportError, DriverLoadError)
    assert not issubclass(DriverImportError, DriverNotFound)
