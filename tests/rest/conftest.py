"""Fixtures of the REST tests: real servers installed from the package registries, and the fault
proxy (see tests/rest/servers/fixtures.py and docs/rest-servers.md)."""

from tests.rest.servers.fixtures import (
    bottlecrm,
    bottlecrm_server,
    directus,
    directus_server,
    fault_proxy,
)

__all__ = ["bottlecrm", "bottlecrm_server", "directus", "directus_server", "fault_proxy"]
