"""Matching rules as Enginy's own CRM integrations offer them: compound keys (first name + last
name + company), alternatives tried in order (LinkedIn URL *or* first + last + company), and
"any domain extension" for companies (acme.com = acme.es). Configuration, the matcher, and
the whole sync through the app on the memory driver (the SQL driver's are in
``tests/sql/test_mapped_lookups.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapter.app import create_app
from adapter.config import KeySpec, MatchingConfig, Settings
from adapter.matching import Matcher, normalise_domain_any_extension
from backends.base import Entity
from backends.memory import MemoryBackend

pytestmark = pytest.mark.anyio
KEY = "rules-test-key"

RULES = {
    "contacts": ["linkedinUrl", {"fields": ["firstName", "lastName", "company"]}],
    "companies": [{"field": "domain", "normaliser": "domain_any_extension"}, "name"],
}


@pytest.mark.parametrize(
    ("raw", "stem"),
    [
        ("acme.com", "acme"),
        ("acme.es", "acme"),
        ("https://www.Acme.co.uk/about", "acme"),
        ("shop.acme.com.br", "acme"),
        ("acme", "acme"),
        ("www.acme.example:8080", "acme"),
        ("mail@acme.de", "acme"),
        ("co.uk", "co"),
        ("", None),
        (None, None),
    ],
)
def test_any_domain_extension(raw: object, stem: str | None) -> None:
    assert normalise_domain_any_extension(raw) == stem


def test_compound_keys_are_configured_by_their_fields() -> None:
    config = MatchingConfig.model_validate(RULES)
    keys = config.keys()
    linkedin, people = keys[Entity.CONTACT]
    assert linkedin == KeySpec("linkedinUrl", "linkedin")
    assert people.field == "firstName+lastName+company"
    assert [(p.field, p.normaliser) for p in people.parts] == [
        ("firstName", "name"),
        ("lastName", "name"),
        ("company", "name"),
    ]
    assert keys[Entity.COMPANY][0] == KeySpec("domain", "domain_any_extension")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ({"fields": ["firstName"]}, "at least two fields"),
        ({"fields": ["firstName", "firstName"]}, "listed twice"),
        ({"field": "email", "fields": ["firstName", "lastName"]}, "give 'field'"),
        ({"fields": ["firstName", {"field": "email", "normaliser": "fuzzy"}]}, "fuzzy"),
        ({"fields": ["firstName", "lastName"], "normaliser": "name"}, "its own normaliser"),
    ],
)
def test_bad_compound_keys_are_refused(key: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MatchingConfig.model_validate({"contacts": [key]})


def test_a_compound_key_needs_every_part_and_ignores_case_and_spaces() -> None:
    matcher = Matcher(MatchingConfig.model_validate(RULES).keys())
    keys = matcher.match_keys(
        Entity.CONTACT, {"firstName": " Ada ", "lastName": "LOVELACE", "company": "Acme  Ltd"}
    )
    assert keys == {"firstName+lastName+company": '["ada","lovelace","acme ltd"]'}
    assert matcher.match_keys(Entity.CONTACT, {"firstName": "Ada", "lastName": "Lovelace"}) == {}


def test_an_update_of_one_part_takes_the_others_from_the_stored_record() -> None:
    matcher = Matcher(MatchingConfig.model_validate(RULES).keys())
    assert matcher.needs_stored(Entity.CONTACT, {"lastName": "King"}) == {"firstName", "company"}
    assert matcher.needs_stored(Entity.CONTACT, {"title": "CEO"}) == frozenset()
    changed = matcher.changed_match_keys(
        Entity.CONTACT, {"lastName": "King"}, stored={"firstName": "Ada", "company": "Acme"}
    )
    assert changed == {"firstName+lastName+company": '["ada","king","acme"]'}
    # clearing a part removes the key
    assert matcher.changed_match_keys(Entity.CONTACT, {}, ["company"], {"firstName": "A"}) == {
        "firstName+lastName+company": None
    }


def settings(**matching: Any) -> Settings:
    return Settings.model_validate(
        {"auth": {"keys": [KEY]}, "backend": {"driver": "memory"}, "matching": matching}
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings(**RULES), MemoryBackend())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://a", headers={"X-API-Key": KEY}
        ) as http,
    ):
        yield http


async def test_sync_tries_the_rules_in_order(client: httpx.AsyncClient) -> None:
    made = await client.post(
        "/contacts",
        json={
            "contacts": [
                {"externalId": "a", "firstName": "Ada", "lastName": "Lovelace",
                 "company": "Acme", "linkedinUrl": "https://linkedin.com/in/ada"},
                {"externalId": "b", "firstName": "Bob", "lastName": "Byte", "company": "Acme"},
            ]
        },
    )  # fmt: skip
    ids = {r["externalId"]: r["crmId"] for r in made.json()["results"]}
    synced = await client.post(
        "/contacts/sync",
        json={
            "contacts": [
                # LinkedIn URL written differently
                {"externalId": "x1", "linkedinUrl": "http://www.linkedin.com/in/Ada/"},
                # first + last + company, other case and spacing
                {"externalId": "x2", "firstName": "BOB", "lastName": " byte ", "company": "ACME"},
                # the same person at another company is someone else
                {"externalId": "x3", "firstName": "Bob", "lastName": "Byte", "company": "Globex"},
                # the email is no rule here
                {"externalId": "x4", "email": "ada@acme.example"},
            ]
        },
    )  # fmt: skip
    found = {r["externalId"]: r["crmId"] for r in synced.json()["results"]}
    assert found == {"x1": ids["a"], "x2": ids["b"]}


async def test_a_renamed_contact_is_found_by_its_new_name(client: httpx.AsyncClient) -> None:
    made = await client.post(
        "/contacts",
        json={"contacts": [{"externalId": "a", "firstName": "Ada", "lastName": "Lovelace",
                            "company": "Acme"}]},
    )  # fmt: skip
    crm_id = made.json()["results"][0]["crmId"]
    await client.put("/contacts", json={"contacts": [{"crmId": crm_id, "lastName": "King"}]})

    async def find(last: str) -> list[str]:
        body = {"contacts": [{"externalId": "z", "firstName": "Ada", "lastName": last,
                              "company": "Acme"}]}  # fmt: skip
        answer = await client.post("/contacts/sync", json=body)
        return [r["crmId"] for r in answer.json()["results"]]

    assert await find("King") == [crm_id]
    assert await find("Lovelace") == []


async def test_companies_match_under_any_domain_extension(client: httpx.AsyncClient) -> None:
    made = await client.post(
        "/companies",
        json={"companies": [{"externalId": "c", "name": "Acme", "domain": "acme.com"}]},
    )
    crm_id = made.json()["results"][0]["crmId"]
    synced = await client.post(
        "/companies/sync",
        json={
            "companies": [
                {"externalId": "es", "domain": "https://www.acme.es/"},
                {"externalId": "uk", "domain": "acme.co.uk"},
                {"externalId": "other", "domain": "acmecorp.com"},
            ]
        },
    )
    found = {r["externalId"]: r["crmId"] for r in synced.json()["results"]}
    assert found == {"es": crm_id, "uk": crm_id}
