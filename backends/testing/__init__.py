"""The conformance suite every driver runs, shipped in the package (as fsspec ships its own).

Plain pytest classes, one per resource group, that test a driver through the interface of
:mod:`backends.base` and skip by declared :class:`~backends.base.Capability` (never by driver
name). A driver's test module is a few lines::

    # tests/test_mydriver.py
    from collections.abc import AsyncIterator

    import pytest

    from backends.base import Backend
    from backends.testing import ConformanceSuite
    from mydriver import MyBackend


    class TestMyBackend(ConformanceSuite):
        @pytest.fixture
        async def backend(self) -> AsyncIterator[Backend]:
            driver = MyBackend(MyBackend.Options(url="..."))
            await driver.open()  # the store must start EMPTY for every test
            try:
                yield driver
            finally:
                await driver.close()

Fixtures (see :class:`~backends.testing._base.SuiteBase`):

``backend`` (required)
    An async fixture yielding an opened driver with an empty store.
``record_fields`` (override for a fixed schema)
    A callable ``entity -> {Enginy field name: backend field name}`` for the fields the suite
    writes: contacts ``email``, ``firstName``, ``lastName`` and optionally ``linkedinUrl``;
    companies ``name``, ``domain`` and optionally ``linkedinUrl``. Default: the same names.
    Start from :data:`DEFAULT_RECORD_FIELDS`.
``missing_id``
    An id in the backend's format that exists nowhere (default ``"999999999"``).
``expected_users``
    The users ``list_users`` must return (default ``None``: only their shape is checked).
``anyio_backend``
    ``"asyncio"`` by default.
``records``
    The :class:`RecordFactory` the tests build records with (values unique to each test); not
    meant to be overridden, and a name a driver's test class should not reuse.

Use :class:`ConformanceSuite` for everything, or pick classes (``RecordsSuite``,
``AssociationsSuite``, ``ActivitiesSuite``, ``TasksSuite``, ``UsersSuite``, ``BrowseSuite``,
``CapabilitiesSuite``). The suite relies on the anyio pytest plugin (installed with anyio) and
asserts specific outcomes: a stored value read back, a ``NotFound`` per item, an order.
"""

from __future__ import annotations

from backends.testing._base import (
    DEFAULT_RECORD_FIELDS,
    RecordFactory,
    RecordFields,
    SuiteBase,
    require,
    same_instant,
)
from backends.testing.activities import ActivitiesSuite
from backends.testing.associations import AssociationsSuite
from backends.testing.browse import BrowseSuite
from backends.testing.capabilities import CapabilitiesSuite
from backends.testing.records import RecordsSuite
from backends.testing.tasks import TasksSuite
from backends.testing.users import UsersSuite

__all__ = [
    "DEFAULT_RECORD_FIELDS",
    "ActivitiesSuite",
    "AssociationsSuite",
    "BrowseSuite",
    "CapabilitiesSuite",
    "ConformanceSuite",
    "RecordFactory",
    "RecordFields",
    "RecordsSuite",
    "SuiteBase",
    "TasksSuite",
    "UsersSuite",
    "require",
    "same_instant",
]


class ConformanceSuite(
    RecordsSuite,
    AssociationsSuite,
    ActivitiesSuite,
    TasksSuite,
    UsersSuite,
    BrowseSuite,
    CapabilitiesSuite,
):
    """Every conformance test; subclass it and provide the ``backend`` fixture."""
