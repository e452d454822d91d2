"""Conformance tests of a driver's declarations: name, options model, capabilities."""

from __future__ import annotations

import pytest

from backends.base import (
    CAPABILITY_METHODS,
    AssociationPair,
    Backend,
    Capability,
    DriverOptions,
    Unsupported,
    overridden_capabilities,
)
from backends.testing._base import SuiteBase

__all__ = ["CapabilitiesSuite"]


class CapabilitiesSuite(SuiteBase):
    """Declared capabilities match the overridden methods; undeclared ones are ``Unsupported``."""

    @pytest.mark.anyio
    async def test_declared_capabilities_match_overridden_methods(self, backend: Backend) -> None:
        declared = type(backend).capabilities
        assert isinstance(declared, frozenset)
        overridden = overridden_capabilities(type(backend))
        missing = {c.name: CAPABILITY_METHODS[c] for c in declared - overridden}
        undeclared = sorted(c.name for c in overridden - declared)
        assert not missing, f"declared but methods not overridden: {missing}"
        assert not undeclared, f"methods overridden but capability not declared: {undeclared}"

    @pytest.mark.anyio
    async def test_name_and_options_model(self, backend: Backend) -> None:
        driver = type(backend)
        assert isinstance(driver.name, str) and driver.name and driver.name != "base"
        assert issubclass(driver.Options, DriverOptions)
        assert isinstance(backend.options, driver.Options)

    @pytest.mark.anyio
    async def test_ping_succeeds_on_an_open_backend(self, backend: Backend) -> None:
        await backend.ping()  # raises Unavailable or AuthFailed when it fails

    @pytest.mark.anyio
    async def test_undeclared_associations_are_unsupported(self, backend: Backend) -> None:
        if Capability.ASSOCIATIONS in backend.capabilities:
            pytest.skip("driver declares Capability.ASSOCIATIONS")
        with pytest.raises(Unsupported):
            await backend.create_associations([AssociationPair("1", "2")])

    @pytest.mark.anyio
    async def test_undeclared_users_are_unsupported(self, backend: Backend) -> None:
        if Capability.USERS in backend.capabilities:
            pytest.skip("driver declares Capability.USERS")
        with pytest.raises(Unsupported):
            await backend.list_users()

    @pytest.mark.anyio
    async def test_undeclared_tasks_are_unsupported(self, backend: Backend) -> None:
        if Capability.TASKS in backend.capabilities:
            pytest.skip("driver declares Capability.TASKS")
        with pytest.raises(Unsupported):
            await backend.get_tasks(["1"])
