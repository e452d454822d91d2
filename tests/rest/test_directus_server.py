"""The Directus fixtures give a working CRM with the schema of examples/rest/directus-schema.yaml
applied: a contact created with its email, its company and extra fields through Directus' items
API (https://docs.directus.io/reference/items.html, Directus 11.3.5) reads back through a
filter, shows under its company, its email is unique, and a stopped server leaves nothing."""

from __future__ import annotations

import httpx
import pytest
import yaml

from tests.rest.servers import _layout, _pg
from tests.rest.servers._proc import wait_group_gone
from tests.rest.servers.directus import CRM_COLLECTIONS, DirectusServer, availability
from tests.rest.servers.fixtures import require

pytestmark = pytest.mark.directus


def test_contact_with_email_and_company_reads_back(directus: DirectusServer) -> None:
    with directus.client(timeout=30) as client:
        assert client.get("/items/contacts").json() == {"data": []}  # emptied for this test
        company = client.post(
            "/items/companies", json={"name": "Acme Analytics", "domain": "acme.example"}
        )
        assert company.status_code == 200, company.text
        company_id = company.json()["data"]["id"]
        contact = client.post(
            "/items/contacts",
            json={
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": "ada@acme.example",
                "company": company_id,
                "owner": directus.member_id,
                "extra": {"lead_score": 5, "source": "enginy"},
            },
        )
        assert contact.status_code == 200, contact.text
        contact_id = contact.json()["data"]["id"]

        found = client.get(
            "/items/contacts",
            params={
                "filter[email][_eq]": "ada@acme.example",
                "fields": "id,email,extra,company.id,company.name,owner.email",
            },
        )
        assert found.json()["data"] == [
            {
                "id": contact_id,
                "email": "ada@acme.example",
                "extra": {"lead_score": 5, "source": "enginy"},
                "company": {"id": company_id, "name": "Acme Analytics"},
                "owner": {"email": directus.member_email},
            }
        ]
        # The company's own page lists the contact (the o2m the schema declares).
        page = client.get(f"/items/companies/{company_id}", params={"fields": "contacts.email"})
        assert page.json()["data"] == {"contacts": [{"email": "ada@acme.example"}]}


def test_contact_email_is_unique(directus: DirectusServer) -> None:
    with directus.client(timeout=30) as client:
        first = client.post("/items/contacts", json={"email": "grace@navy.example"})
        assert first.status_code == 200, first.text
        again = client.post("/items/contacts", json={"email": "grace@navy.example"})
    assert again.status_code == 400
    [error] = again.json()["errors"]
    assert error["extensions"]["code"] == "RECORD_NOT_UNIQUE"
    assert error["extensions"]["field"] == "email"


def test_the_applied_schema_is_the_example_file(directus: DirectusServer) -> None:
    expected = yaml.safe_load(_layout.DIRECTUS_SCHEMA.read_text())
    with directus.client(timeout=30) as client:
        actual = client.get("/schema/snapshot").json()["data"]

    def fields(snapshot: dict) -> dict:
        return {
            (f["collection"], f["field"]): (
                f["type"],
                (f.get("schema") or {}).get("is_unique"),
                (f.get("schema") or {}).get("is_nullable"),
                (f.get("schema") or {}).get("default_value"),
                f["meta"]["special"],
            )
            for f in snapshot["fields"]
        }

    def relations(snapshot: dict) -> set:
        return {
            (r["collection"], r["field"], r["related_collection"], r["schema"]["on_delete"])
            for r in snapshot["relations"]
        }

    assert {c["collection"] for c in actual["collections"]} == set(CRM_COLLECTIONS)
    assert fields(actual) == fields(expected)
    assert relations(actual) == relations(expected)
    assert fields(actual)[("contacts", "email")][1] is True  # unique


def test_users_are_the_admin_and_a_member(directus: DirectusServer) -> None:
    with directus.client(timeout=30) as client:
        users = client.get("/users", params={"fields": "id,email,role.name"}).json()["data"]
    assert {(u["id"], u["email"], u["role"]["name"]) for u in users} == {
        (directus.admin_id, directus.admin_email, "Administrator"),
        (directus.member_id, directus.member_email, "Sales"),
    }


def test_the_token_is_what_authenticates(directus: DirectusServer) -> None:
    forged = {"Authorization": "Bearer not-the-token"}
    answer = httpx.get(f"{directus.base_url}/items/contacts", headers=forged, timeout=30)
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["extensions"]["code"] == "INVALID_CREDENTIALS"


def test_sqlite_flavour_and_a_stopped_server_leaves_nothing_behind() -> None:
    require(lambda: availability("sqlite"))
    server = DirectusServer(database="sqlite")
    server.start()
    try:
        with server.client(timeout=30) as client:
            created = client.post(
                "/items/contacts", json={"email": "alan@bletchley.example", "extra": {"a": 1}}
            )
            assert created.status_code == 200, created.text
            assert created.json()["data"]["extra"] == {"a": 1}  # cast-json: an object here too
        assert server._process is not None
        group = server._process.pid
        run_dir = server._run_dir
        assert run_dir is not None and (run_dir / "directus.db").exists()
    finally:
        server.stop()
    assert wait_group_gone(group) == []
    assert not run_dir.exists()
    assert not _pg.database_exists(server.database)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/server/ping", timeout=5)
