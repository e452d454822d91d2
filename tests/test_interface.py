"""``backends.base`` is the documented driver interface (ADDING_A_BACKEND.md): drivers import
every name from it, wherever the name is defined. The interface is spread over four modules by
job; these tests pin that ``backends.base`` exports each public name of the other three, as the
same object, so that a type added to one of them cannot be missing from the interface."""

from __future__ import annotations

from types import ModuleType

import pytest

import backends.base
import backends.capabilities
import backends.errors
import backends.records


@pytest.mark.parametrize(
    "module", [backends.capabilities, backends.errors, backends.records], ids=lambda m: m.__name__
)
def test_backends_base_exports_every_public_name_of_the_interface(module: ModuleType) -> None:
    missing = sorted(set(module.__all__) - set(backends.base.__all__))
    assert missing == []
    for name in module.__all__:
        assert getattr(backends.base, name) is getattr(module, name), name


def test_every_name_backends_base_exports_exists() -> None:
    # A star import by a third-party driver must not fail on a stale name.
    absent = [name for name in backends.base.__all__ if not hasattr(backends.base, name)]
    assert absent == []
    namespace: dict[str, object] = {}
    exec("from backends.base import *", namespace)  # the import a third-party driver may write
    assert {"Backend", "BackendError", "Capability", "NewRecord"} <= namespace.keys()
