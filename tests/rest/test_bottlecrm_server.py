"""The BottleCRM fixtures give a working CRM: a contact created with its email and company through
BottleCRM's REST API (https://github.com/Django-CRM/Django-CRM, django-crm 1.35.0: /api/accounts/,
/api/contacts/, /api/users/) is read back from its list endpoint and shows under its company,
tenants are isolated, and a stopped server leaves nothing behind."""

from __future__ import annotations

import httpx
import pytest

from tests.rest.servers import _pg
from tests.rest.servers._proc import wait_group_gone
from tests.rest.servers.bottlecrm import BottleCRMServer, BottleCRMTenant, availability, redis_keys
from tests.rest.servers.fixtures import require

pytestmark = pytest.mark.bottlecrm


def test_contact_with_email_and_company_reads_back(bottlecrm: BottleCRMTenant) -> None:
    with bottlecrm.client(timeout=30) as client:
        account = client.post(
            "/api/accounts/", json={"name": "Acme Analytics", "website": "https://acme.example"}
        )
        assert account.status_code == 200, account.text
        assert account.json()["error"] is False
        account_id = account.json()["id"]
        contact = client.post(
            "/api/contacts/",
            json={
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": "ada@acme.example",
                "account": account_id,
            },
        )
        assert contact.status_code == 200, contact.text
        contact_id = contact.json()["id"]

        listed = client.get("/api/contacts/", params={"email": "ada@acme.example"})
        assert listed.status_code == 200
        assert listed.json()["count"] == 1
        [row] = listed.json()["results"]
        assert (row["id"], row["email"], row["account"]) == (
            contact_id,
            "ada@acme.example",
            account_id,
        )
        assert row["account_detail"]["name"] == "Acme Analytics"
        # The company's own page lists the contact (what BottleCRM's screen shows).
        company = client.get(f"/api/accounts/{account_id}/")
        assert [c["id"] for c in company.json()["contacts"]] == [contact_id]


def test_each_test_gets_its_own_organisation(
    bottlecrm_server: BottleCRMServer, bottlecrm: BottleCRMTenant
) -> None:
    other = bottlecrm_server.new_tenant()
    assert other.org_id != bottlecrm.org_id
    with bottlecrm.client(timeout=30) as mine, other.client(timeout=30) as theirs:
        created = mine.post(
            "/api/contacts/",
            json={"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.example"},
        )
        assert created.status_code == 200, created.text
        assert mine.get("/api/contacts/").json()["count"] == 1
        assert theirs.get("/api/contacts/").json()["count"] == 0
        # Row-level security: the other organisation's token cannot read it by id.
        assert theirs.get(f"/api/contacts/{created.json()['id']}/").status_code == 404


def test_users_are_the_admin_and_a_member(bottlecrm: BottleCRMTenant) -> None:
    with bottlecrm.client(timeout=30) as client:
        users = client.get("/api/users/").json()["active_users"]["active_users"]
    by_email = {row["user_details"]["email"]: row for row in users}
    assert set(by_email) == {bottlecrm.admin_email, bottlecrm.member_email}
    assert by_email[bottlecrm.admin_email]["role"] == "ADMIN"
    assert by_email[bottlecrm.admin_email]["id"] == bottlecrm.admin_profile_id
    assert by_email[bottlecrm.member_email]["role"] == "USER"
    assert by_email[bottlecrm.member_email]["id"] == bottlecrm.member_profile_id


def test_the_token_is_what_authenticates(bottlecrm: BottleCRMTenant) -> None:
    assert bottlecrm.token.startswith("bcrm_pat_")
    forged = {"Authorization": "Bearer bcrm_pat_" + "x" * 43}
    answer = httpx.get(f"{bottlecrm.base_url}/api/contacts/", headers=forged, timeout=30)
    assert answer.status_code == 403  # BottleCRM says 403, never 401, for a bad token


def test_a_stopped_server_leaves_nothing_behind() -> None:
    require(availability)
    server = BottleCRMServer(workers=1, threads=2)
    server.start()
    try:
        with server.tenant.client(timeout=30) as client:
            created = client.post(
                "/api/contacts/",
                json={
                    "first_name": "Alan",
                    "last_name": "Turing",
                    "email": "alan@bletchley.example",
                },
            )
            assert created.status_code == 200, created.text  # queues a celery task in Redis
        assert server._process is not None
        group = server._process.pid
        assert redis_keys(server.redis_prefix) > 0
        assert _pg.database_exists(server.database)
    finally:
        server.stop()
    assert wait_group_gone(group) == []  # gunicorn's master and its workers
    assert not _pg.database_exists(server.database)
    assert redis_keys(server.redis_prefix) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/api/contacts/", timeout=5)
