"""POST /associations: success, created count, per-pair errors, idempotency, capability."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
import pytest

from backends.base import Capability, Entity
from backends.memory import MemoryBackend

pytestmark = pytest.mark.anyio


class NoAssociationsBackend(MemoryBackend):
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability) - {
        Capability.ASSOCIATIONS
    }


async def setup_records(client: httpx.AsyncClient) -> tuple[list[str], str]:
    contacts = await client.post(
        "/contacts", json={"contacts": [{"externalId": "l1"}, {"externalId": "l2"}]}
    )
    companies = await client.post("/companies", json={"companies": [{"externalId": "c1"}]})
    return [r["crmId"] for r in contacts.json()["results"]], companies.json()["results"][0]["crmId"]


async def test_associations_link_contacts_to_a_company(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    contacts, company = await setup_records(client)
    response = await client.post(
        "/associations",
        json={"associations": [{"contactCRMId": c, "companyCRMId": company} for c in contacts]},
    )
    assert response.status_code == 200
    assert response.json() == {"success": True, "created": 2}
    linked = await backend.list_associated(Entity.COMPANY, company)
    assert sorted(r.crm_id for r in linked) == sorted(contacts)


async def test_associations_partial_failure_lists_errors_with_200(
    client: httpx.AsyncClient,
) -> None:
    contacts, company = await setup_records(client)
    response = await client.post(
        "/associations",
        json={
            "associations": [
                {"contactCRMId": contacts[0], "companyCRMId": company},
                {"contactCRMId": "contact_invalid", "companyCRMId": company},
            ]
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["created"] == 1
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["contactCRMId"] == "contact_invalid"
    assert error["companyCRMId"] == company
    assert error["error"] == "invalid_reference"
    assert error["message"] == "contactCRMId: no contact exists with ID: contact_invalid"


async def test_associations_all_failed_is_400_naming_each_field(
    client: httpx.AsyncClient,
) -> None:
    contacts, _company = await setup_records(client)
    response = await client.post(
        "/associations",
        json={
            "associations": [
                {"contactCRMId": "x", "companyCRMId": "y"},
                {"contactCRMId": contacts[0], "companyCRMId": "y"},
            ]
        },
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "batch_failed"
    assert body["success"] is False
    assert body["created"] == 0
    assert [(e["contactCRMId"], e["error"], e["message"]) for e in body["errors"]] == [
        (
            "x",
            "invalid_reference",
            "contactCRMId: no contact exists with ID: x; "
            "companyCRMId: no company exists with ID: y",
        ),
        (contacts[0], "invalid_reference", "companyCRMId: no company exists with ID: y"),
    ]


async def test_associations_are_idempotent(
    client: httpx.AsyncClient, backend: MemoryBackend
) -> None:
    contacts, company = await setup_records(client)
    body = {"associations": [{"contactCRMId": contacts[0], "companyCRMId": company}]}
    first = await client.post("/associations", json=body)
    second = await client.post("/associations", json=body)
    assert first.json() == second.json() == {"success": True, "created": 1}
    assert (await backend.counts())["associations"] == 1


async def test_associations_exact_casing_is_required(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/associations", json={"associations": [{"contactCrmId": "a", "companyCrmId": "b"}]}
    )
    assert response.status_code == 400
    assert "associations[0].contactCRMId: field required" in response.json()["message"]


async def test_associations_empty_list(client: httpx.AsyncClient) -> None:
    response = await client.post("/associations", json={"associations": []})
    assert response.json() == {"success": True, "created": 0}


async def test_associations_unsupported_backend_is_501(serve: Any) -> None:
    async with serve(backend=NoAssociationsBackend()) as client:
        response = await client.post(
            "/associations", json={"associations": [{"contactCRMId": "a", "companyCRMId": "b"}]}
        )
    assert response.status_code == 501
    assert response.json()["error"] == "not_implemented"


async def test_a1_association_errors_use_the_exact_crm_id_casing(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/associations", json={"associations": [{"contactCRMId": "x", "companyCRMId": "y"}]}
    )
    assert set(response.json()["errors"][0]) == {"contactCRMId", "companyCRMId", "error", "message"}
