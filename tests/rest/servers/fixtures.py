"""pytest fixtures for the REST tests: real BottleCRM and Directus servers, and a fault proxy.

Import them into a ``conftest.py`` (``tests/rest/conftest.py`` does)::

    from tests.rest.servers.fixtures import (bottlecrm, bottlecrm_server, directus,
                                             directus_server, fault_proxy)

| fixture | scope | gives |
| --- | --- | --- |
| ``bottlecrm_server`` | session | a running ``BottleCRMServer`` (``tenant``, ``new_tenant()``) |
| ``bottlecrm`` | test | a ``BottleCRMTenant``: a fresh organisation (``base_url``, ``token``) |
| ``directus_server`` | session | a running ``DirectusServer`` with the CRM schema |
| ``directus`` | test | the same server, its CRM collections emptied |
| ``fault_proxy`` | test | ``fault_proxy(upstream_url, plan) -> FaultProxy``, stopped after |

When a server cannot run here (not installed by ``tests/rest/servers/install.sh``, PostgreSQL or
Redis down), its tests are skipped with the reason, or fail when ``ENGINY_REQUIRE_REST_SERVERS=1``
(CI). A server that is installed but fails to start always fails its tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.rest.servers.bottlecrm import BottleCRMServer, BottleCRMTenant, NotAvailable
from tests.rest.servers.bottlecrm import availability as bottlecrm_availability
from tests.rest.servers.directus import DirectusServer
from tests.rest.servers.directus import availability as directus_availability
from tests.rest.servers.faultproxy import FaultPlan, FaultProxy

__all__ = [
    "MakeFaultProxy",
    "bottlecrm",
    "bottlecrm_server",
    "directus",
    "directus_server",
    "fault_proxy",
    "require",
]

MakeFaultProxy = Callable[..., FaultProxy]


def require(check: Callable[[], None]) -> None:
    """Run an availability check; skip (or fail under ``ENGINY_REQUIRE_REST_SERVERS=1``) with
    its reason."""
    try:
        check()
    except NotAvailable as exc:
        if os.environ.get("ENGINY_REQUIRE_REST_SERVERS") == "1":
            pytest.fail(f"{exc} (ENGINY_REQUIRE_REST_SERVERS=1)", pytrace=False)
        pytest.skip(f"{exc}; ENGINY_REQUIRE_REST_SERVERS=1 makes this mandatory")


@pytest.fixture(scope="session")
def bottlecrm_server() -> Iterator[BottleCRMServer]:
    """BottleCRM, started once per test session (a clone of the migrated template, gunicorn
    on a free port, a first organisation bootstrapped)."""
    require(bottlecrm_availability)
    with BottleCRMServer() as server:
        yield server


@pytest.fixture
def bottlecrm(bottlecrm_server: BottleCRMServer) -> BottleCRMTenant:
    """A fresh organisation of its own for this test, with an ADMIN personal access token and a
    USER member; nothing another test wrote is visible to it."""
    return bottlecrm_server.new_tenant()


@pytest.fixture(scope="session")
def directus_server() -> Iterator[DirectusServer]:
    """Directus with the CRM schema applied, started once per test session."""
    require(directus_availability)
    with DirectusServer() as server:
        yield server


@pytest.fixture
def directus(directus_server: DirectusServer) -> DirectusServer:
    """The session's Directus with its CRM collections emptied for this test."""
    directus_server.clear()
    return directus_server


@pytest.fixture
def fault_proxy() -> Iterator[MakeFaultProxy]:
    """``fault_proxy(upstream_url, plan=None, **options)``: a started ``FaultProxy`` in front of
    ``upstream_url`` (each on its own thread and event loop), stopped when the test ends."""
    with ExitStack() as stack:

        def make(upstream: str, plan: FaultPlan | None = None, **options: float) -> FaultProxy:
            return stack.enter_context(FaultProxy(upstream, plan, **options).in_thread())

        yield make
