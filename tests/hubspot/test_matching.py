"""Finding records the adapter did not write, and keys that stay right: hand-made LinkedIn URLs
in any spelling, domains under any extension, companies HubSpot makes from contact e-mails
right after the contact, and updates onto a key another record holds. Against the fake of a
stock portal, whose search lags writes and follows HubSpot's documented operators."""

from __future__ import annotations

import logging
import uuid

import pytest

from backends.base import Entity, MatchKey, NewRecord, RecordUpdate
from backends.hubspot import HubSpotBackend, HubSpotOptions
from backends.testing.hubspot import FakeHubSpot
from tests.redis_support import require_redis

from .conftest import TOKEN, MakeBackend, VirtualClock, serve

pytestmark = pytest.mark.anyio

LINKEDIN = MatchKey("linkedinUrl", "hs_linkedin_url", "linkedin")
DOMAIN = MatchKey("domain", "domain", "domain")
ANY_EXTENSION = MatchKey("domain", "domain", "domain_any_extension")


def hand_made(fake: FakeHubSpot, object_type: str, **props: str) -> str:
    """A record made in HubSpot's UI: HubSpot's properties only, none of the driver's."""
    return str(fake.store._new(object_type, dict(props))["id"])


def search_filters(fake: FakeHubSpot) -> list[list[list[tuple[str, str, str]]]]:
    """Per search the fake answered: its groups of (property, operator, value) filters."""
    return [
        [
            [(f["propertyName"], f["operator"], str(f.get("value", ""))) for f in g["filters"]]
            for g in call.body["filterGroups"]
        ]
        for call in fake.calls
        if call.op.startswith("search")
    ]


def ops(fake: FakeHubSpot) -> list[str]:
    return [c.op for c in fake.calls]


# -- LinkedIn URLs typed by hand --------------------------------------------------------------


async def test_hand_made_linkedin_urls_in_any_spelling_are_found_with_one_search(
    backend: HubSpotBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    spellings = {
        "linkedin.com/in/jane-doe": "http://uk.linkedin.com/in/Jane-Doe/?trk=x",
        "linkedin.com/in/bo": "https://www.linkedin.com/in/bo/",
        "linkedin.com/in/cy": "LINKEDIN.COM/in/Cy",
        "linkedin.com/in/dee": "https://linkedin.com/in/dee#about",
        "linkedin.com/in/eve": "www.linkedin.com/in/eve?originalSubdomain=es",
    }
    ids = {
        key: hand_made(fake, "contacts", email=f"{n}@x.io", hs_linkedin_url=url)
        for n, (key, url) in enumerate(spellings.items())
    }
    # Near misses: a search by wildcard returns them too, the normaliser turns them away.
    hand_made(fake, "contacts", email="near@x.io", hs_linkedin_url="linkedin.com/in/jane-doe-2")
    hand_made(fake, "contacts", email="far@x.io", hs_linkedin_url="linkedin.com/in/bob")
    clock.now += fake.store.search_lag + 1
    fake.calls.clear()
    found = await backend.find_records(
        Entity.CONTACT, LINKEDIN, [*spellings, "linkedin.com/in/nobody"]
    )
    assert {v: r.crm_id for v, r in found.items()} == ids
    assert ops(fake) == ["contacts.batch/read", "search:contacts"]
    assert search_filters(fake) == [
        [
            [
                ("hs_linkedin_url", "HAS_PROPERTY", ""),
                ("enginy_linkedin_key", "NOT_HAS_PROPERTY", ""),
            ]
        ]
    ]


async def test_the_oldest_hand_made_record_is_the_match(
    backend: HubSpotBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    first = hand_made(fake, "contacts", email="a@x.io", hs_linkedin_url="linkedin.com/in/ana/")
    hand_made(fake, "contacts", email="b@x.io", hs_linkedin_url="https://www.linkedin.com/in/ANA")
    clock.now += fake.store.search_lag + 1
    found = await backend.find_records(Entity.CONTACT, LINKEDIN, ["linkedin.com/in/ana"])
    assert found["linkedin.com/in/ana"].crm_id == first


async def test_many_records_without_the_key_are_searched_by_token_five_values_a_call(
    backend: HubSpotBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    for i in range(1_150):  # six pages of hand-made contacts with a LinkedIn URL
        hand_made(fake, "contacts", email=f"o{i}@x.io", hs_linkedin_url=f"linkedin.com/in/o-{i}")
    target = hand_made(
        fake, "contacts", email="l3@x.io", hs_linkedin_url="HTTP://LinkedIn.com/in/Lead-3/"
    )
    clock.now += fake.store.search_lag + 1
    fake.calls.clear()
    wanted = [f"linkedin.com/in/lead-{i}" for i in range(7)]
    found = await backend.find_records(Entity.CONTACT, LINKEDIN, wanted)
    assert {v: r.crm_id for v, r in found.items()} == {"linkedin.com/in/lead-3": target}
    # The census's first page, then 2 CONTAINS_TOKEN searches (5 values each) instead of 5
    # more census pages; HubSpot's limits: 5 groups, 2 filters each, bodies under 3,000.
    assert ops(fake) == ["contacts.batch/read"] + ["search:contacts"] * 3
    census, *targeted = search_filters(fake)
    assert census == [
        [
            ("hs_linkedin_url", "HAS_PROPERTY", ""),
            ("enginy_linkedin_key", "NOT_HAS_PROPERTY", ""),
        ]
    ]
    assert [len(groups) for groups in targeted] == [5, 2]
    sent = [group[0] for groups in targeted for group in groups]
    assert sent == [("hs_linkedin_url", "CONTAINS_TOKEN", f"*{v}*") for v in sorted(wanted)]
    assert all(
        group[1] == ("enginy_linkedin_key", "NOT_HAS_PROPERTY", "")
        for groups in targeted
        for group in groups
    )
    assert all(len(str(c.body)) < 3000 for c in fake.calls if c.op.startswith("search"))


async def test_a_few_hundred_records_without_the_key_are_read_page_by_page(
    backend: HubSpotBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    ids = [
        hand_made(fake, "contacts", email=f"o{i}@x.io", hs_linkedin_url=f"linkedin.com/in/o-{i}/")
        for i in range(450)
    ]
    clock.now += fake.store.search_lag + 1
    fake.calls.clear()
    present = [f"linkedin.com/in/o-{i}" for i in (5, 250, 420)]
    ghosts = [f"linkedin.com/in/ghost-{i}" for i in range(30)]
    found = await backend.find_records(Entity.CONTACT, LINKEDIN, present + ghosts)
    assert {v: r.crm_id for v, r in found.items()} == {
        v: ids[i] for v, i in zip(present, (5, 250, 420), strict=True)
    }
    # 3 census pages (all 450 records) cost less than 7 token searches for 32 values.
    assert ops(fake) == ["contacts.batch/read"] + ["search:contacts"] * 3
    assert {f[1] for groups in search_filters(fake) for g in groups for f in g} == {
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
    }


async def test_the_mixed_sync_takes_four_calls_and_finds_hand_made_records_too(
    make_backend: MakeBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    async with serve(make_backend()) as client:
        leads = [
            {
                "externalId": f"lead-{i}",
                "email": f"lead{i}@example.com",
                "linkedinUrl": f"https://www.linkedin.com/in/lead-{i}",
            }
            for i in range(80)
        ]
        created = await client.post("/contacts", json={"contacts": leads})
        assert created.status_code == 200, created.text
        by_hand = hand_made(
            fake,
            "contacts",
            email="h@example.org",
            hs_linkedin_url="http://uk.linkedin.com/in/Hand/?trk=x",
        )
        clock.now += fake.store.search_lag + 1
        items: list[dict[str, str]] = []
        for i in range(100):
            item = {"externalId": f"other-{i}"}
            if i < 60:
                item["email"] = leads[i]["email"].upper()
            elif i < 80:
                item["linkedinUrl"] = leads[i]["linkedinUrl"].replace("https://www.", "")
                item["email"] = f"nobody{i}@example.org"
            elif i == 80:
                item["linkedinUrl"] = "https://www.linkedin.com/in/hand"
            else:
                item["linkedinUrl"] = f"linkedin.com/in/ghost-{i}"
                item["email"] = f"ghost{i}@example.org"
            items.append(item)
        fake.calls.clear()
        synced = await client.post("/contacts/sync", json={"contacts": items})
    assert synced.status_code == 200, synced.text
    by_external = {r["externalId"]: r["crmId"] for r in synced.json()["results"]}
    assert len(by_external) == 81 and by_external["other-80"] == by_hand
    # external id, email, LinkedIn key, and one search for the records made by hand.
    assert ops(fake) == ["contacts.batch/read"] * 3 + ["search:contacts"]


# -- domains under any extension ----------------------------------------------------------------


async def test_any_extension_key_lives_in_its_own_unique_property_found_at_once(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    assert "enginy_domain_name_key" not in fake.store.properties["companies"]
    (acme,) = await backend.create_records(
        Entity.COMPANY,
        [
            NewRecord(
                "c1", {"name": "Acme", "domain": "https://www.Acme.co.uk/"}, {"domain": "acme"}
            )
        ],
    )
    definition = fake.store.properties["companies"]["enginy_domain_name_key"]
    assert definition["hasUniqueValue"] and definition["groupName"] == "enginy"
    stored = fake.objects["companies"][acme.crm_id or ""]["properties"]
    assert (stored["enginy_domain_key"], stored["enginy_domain_name_key"]) == ("acme.co.uk", "acme")
    fake.calls.clear()
    found = await backend.find_records(Entity.COMPANY, ANY_EXTENSION, ["acme"])  # search lags
    assert found["acme"].crm_id == acme.crm_id
    assert ops(fake) == ["companies.batch/read"]
    # The plain domain key keeps the full domain whatever the configured normaliser.
    by_domain = await backend.find_records(Entity.COMPANY, DOMAIN, ["acme.co.uk"])
    assert by_domain["acme.co.uk"].crm_id == acme.crm_id


async def test_hand_made_companies_are_found_under_any_extension_by_token(
    backend: HubSpotBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    for i in range(1_200):  # enough companies without the key that a census would not do
        hand_made(fake, "companies", name=f"C{i}", domain=f"c{i}.example.com")
    beta = hand_made(fake, "companies", name="Beta", domain="www.Beta.co.uk")
    gamma = hand_made(fake, "companies", name="Gamma", domain="shop.gamma.es")
    for near in ("notbeta.com", "beta-group.com", "beta.example.org"):
        hand_made(fake, "companies", name=near, domain=near)
    clock.now += fake.store.search_lag + 1
    fake.calls.clear()
    found = await backend.find_records(Entity.COMPANY, ANY_EXTENSION, ["beta", "gamma", "delta"])
    assert {v: r.crm_id for v, r in found.items()} == {"beta": beta, "gamma": gamma}
    assert "enginy_domain_name_key" in fake.store.properties["companies"]  # made on first use
    (census, targeted) = search_filters(fake)
    assert census[0][0] == ("domain", "HAS_PROPERTY", "")
    assert all(g[1] == ("enginy_domain_name_key", "NOT_HAS_PROPERTY", "") for g in targeted)
    assert [g[0] for g in targeted] == [
        ("domain", "CONTAINS_TOKEN", "*beta.*"),
        ("domain", "CONTAINS_TOKEN", "*delta.*"),
        ("domain", "CONTAINS_TOKEN", "*gamma.*"),
    ]


async def test_creates_under_an_any_extension_key_are_one_company_per_name(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    (first,) = await backend.create_records(
        Entity.COMPANY,
        [NewRecord("c1", {"name": "Acme", "domain": "acme.com"}, {"domain": "acme"})],
    )
    # Other Enginy records, right away (search lags): another extension, and two new names
    # under two extensions in one batch.
    es, fr, de = await backend.create_records(
        Entity.COMPANY,
        [
            NewRecord("c2", {"name": "Acme ES", "domain": "acme.es"}, {"domain": "acme"}),
            NewRecord("c3", {"name": "Nova", "domain": "nova.fr"}, {"domain": "nova"}),
            NewRecord("c4", {"name": "Nova DE", "domain": "www.nova.de"}, {"domain": "nova"}),
        ],
    )
    assert es.crm_id == first.crm_id and not es.created
    assert fr.crm_id == de.crm_id and fr.created
    assert len(fake.objects["companies"]) == 2


async def test_an_adopted_hand_made_company_is_tagged_from_its_own_domain(
    backend: HubSpotBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    old = hand_made(fake, "companies", name="Acme", domain="acme.com")
    clock.now += fake.store.search_lag + 1
    (result,) = await backend.create_records(
        Entity.COMPANY,
        [NewRecord("c9", {"name": "Acme ES", "domain": "acme.es"}, {"domain": "acme"})],
    )
    assert result.crm_id == old and not result.created
    stored = fake.objects["companies"][old]["properties"]
    assert stored["enginy_domain_key"] == "acme.com"  # its own domain, not the record's
    assert stored["enginy_domain_name_key"] == "acme"
    assert stored["enginy_external_id"] == "c9"


@pytest.mark.parametrize("refusal", ["create_properties false", "scope missing"])
async def test_without_the_name_key_property_any_extension_works_through_search(
    backend: HubSpotBackend,
    make_backend: MakeBackend,
    fake: FakeHubSpot,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
    refusal: str,
) -> None:
    # The other properties exist (``backend`` made them); the name key cannot be made.
    fake.calls.clear()
    if refusal == "scope missing":
        fake.missing_scopes.add("crm.schemas.companies.write")
        driver = make_backend()
    else:
        driver = make_backend(create_properties=False)
    await driver.open()
    with caplog.at_level(logging.WARNING, "backends.hubspot"):
        (first,) = await driver.create_records(
            Entity.COMPANY,
            [NewRecord("c1", {"name": "Acme", "domain": "acme.com"}, {"domain": "acme"})],
        )
        assert first.ok and "enginy_domain_name_key" not in fake.store.properties["companies"]
        clock.now += fake.store.search_lag + 1
        found = await driver.find_records(Entity.COMPANY, ANY_EXTENSION, ["acme"])
        assert found["acme"].crm_id == first.crm_id
        (again,) = await driver.create_records(
            Entity.COMPANY,
            [NewRecord("c2", {"name": "Acme", "domain": "acme.es"}, {"domain": "acme"})],
        )
    assert again.crm_id == first.crm_id and len(fake.objects["companies"]) == 1
    warnings = [
        r.getMessage() for r in caplog.records if "enginy_domain_name_key" in r.getMessage()
    ]
    assert len(warnings) == 1 and "search only" in warnings[0]
    attempts = [c for c in fake.calls if c.method == "POST" and "/properties/" in c.path]
    assert len(attempts) == (1 if refusal == "scope missing" else 0)  # tried once, not per call
    await driver.close()


async def test_a_plain_domain_key_keeps_companies_of_other_extensions_apart(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    com, es = await backend.create_records(
        Entity.COMPANY,
        [
            NewRecord("c1", {"name": "Acme", "domain": "acme.com"}, {"domain": "acme.com"}),
            NewRecord("c2", {"name": "Acme ES", "domain": "acme.es"}, {"domain": "acme.es"}),
        ],
    )
    assert com.created and es.created and com.crm_id != es.crm_id
    assert "enginy_domain_name_key" not in fake.store.properties["companies"]


async def test_sync_through_the_front_with_a_domain_any_extension_key(
    make_backend: MakeBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    matching = {"companies": [{"field": "domain", "normaliser": "domain_any_extension"}]}
    hand = hand_made(fake, "companies", name="Hand", domain="hand.de")
    clock.now += fake.store.search_lag + 1
    async with serve(make_backend(), matching=matching) as client:
        made = await client.post(
            "/companies",
            json={"companies": [{"externalId": "a1", "name": "Acme", "domain": "acme.com"}]},
        )
        assert made.status_code == 200, made.text
        crm_id = made.json()["results"][0]["crmId"]
        synced = await client.post(
            "/companies/sync",
            json={
                "companies": [
                    {"externalId": "a2", "domain": "https://shop.acme.co.uk/about"},
                    {"externalId": "h2", "domain": "www.hand.com"},
                    {"externalId": "z2", "domain": "zeta.com"},
                ]
            },
        )
    assert synced.status_code == 200, synced.text
    found = {r["externalId"]: r["crmId"] for r in synced.json()["results"]}
    assert found == {"a2": crm_id, "h2": hand}


# -- companies HubSpot makes from contact e-mails ------------------------------------------------


def auto_portal(clock: VirtualClock, delay: float = 0.0) -> tuple[FakeHubSpot, HubSpotBackend]:
    fake = FakeHubSpot(
        token=TOKEN, clock=clock, auto_create_companies=True, auto_create_delay=delay
    )
    driver = HubSpotBackend(
        HubSpotOptions(token=TOKEN), transport=fake.transport(), sleep=clock.sleep, clock=clock
    )
    return fake, driver


async def test_a_company_hubspot_just_made_for_a_contact_is_not_made_twice(
    clock: VirtualClock,
) -> None:
    fake, driver = auto_portal(clock)
    await driver.open()
    await driver.create_records(Entity.CONTACT, [NewRecord("p1", {"email": "ana@gamma.io"})])
    (auto,) = fake.objects["companies"].values()  # HubSpot's own: no key, not searchable yet
    fake.calls.clear()
    found = await driver.find_records(Entity.COMPANY, DOMAIN, ["gamma.io"])
    assert found["gamma.io"].crm_id == auto["id"]
    assert ops(fake) == [
        "companies.batch/read",  # the domain key: not HubSpot's
        "search:companies",  # the index has not caught up
        "assoc:contacts->companies:read",  # the contact created a moment ago
        "companies.batch/read",
    ]
    (result,) = await driver.create_records(
        Entity.COMPANY, [NewRecord("acct-1", {"name": "Gamma", "domain": "gamma.io"})]
    )
    assert result.crm_id == auto["id"] and not result.created
    assert len(fake.objects["companies"]) == 1
    assert auto["properties"]["enginy_domain_key"] == "gamma.io"  # tagged: exact from now on
    await driver.close()


async def test_the_window_left_is_hubspot_s_own_delay(clock: VirtualClock) -> None:
    fake, driver = auto_portal(clock, delay=1.0)
    await driver.open()
    await driver.create_records(Entity.CONTACT, [NewRecord("p1", {"email": "bo@delta.io"})])
    # HubSpot has not made the company yet: there is nothing to find.
    assert await driver.find_records(Entity.COMPANY, DOMAIN, ["delta.io"]) == {}
    clock.now += 1.5  # made now, still invisible to search (2 s lag)
    (result,) = await driver.create_records(
        Entity.COMPANY, [NewRecord("acct-2", {"name": "Delta", "domain": "delta.io"})]
    )
    assert not result.created and len(fake.objects["companies"]) == 1
    await driver.close()


async def test_replicas_sharing_redis_know_each_other_s_new_contacts(clock: VirtualClock) -> None:
    redis_url = require_redis()
    fake = FakeHubSpot(token=TOKEN, clock=clock, auto_create_companies=True)
    limits = {"redis_url": redis_url, "key_prefix": f"enginy-test:{uuid.uuid4().hex}"}

    def replica() -> HubSpotBackend:
        options = HubSpotOptions(token=TOKEN, rate_limit=limits)
        return HubSpotBackend(options, transport=fake.transport(), sleep=clock.sleep, clock=clock)

    first, second = replica(), replica()
    await first.open()
    await second.open()
    try:
        await first.create_records(Entity.CONTACT, [NewRecord("p1", {"email": "cy@kappa.io"})])
        (auto,) = fake.objects["companies"].values()
        (result,) = await second.create_records(
            Entity.COMPANY, [NewRecord("acct-1", {"name": "Kappa", "domain": "kappa.io"})]
        )
        assert result.crm_id == auto["id"] and len(fake.objects["companies"]) == 1
        # A replica of another deployment (another prefix) does not see them.
        other = HubSpotBackend(
            HubSpotOptions(token=TOKEN, rate_limit={**limits, "key_prefix": "enginy-test:other"}),
            transport=fake.transport(),
            sleep=clock.sleep,
            clock=clock,
        )
        assert await other.recent.recall("domain", ["kappa.io"]) == set()
        await other.close()
    finally:
        await first.close()
        await second.close()


async def test_without_redis_the_process_s_own_memory_still_answers(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    from backends.hubspot.recent import RedisRecentContacts

    down = RedisRecentContacts(
        url="redis://127.0.0.1:1/0", key_prefix="enginy-test:down", clock=clock
    )
    with caplog.at_level(logging.WARNING, "backends.hubspot"):
        await down.remember([("7", "ana@lambda.co.uk"), ("8", "no-address")])
        assert await down.recall("domain", ["lambda.co.uk"]) == {"7"}
        assert await down.recall("domain_any_extension", ["lambda"]) == {"7"}
    assert sum("Redis unreachable" in r.getMessage() for r in caplog.records) == 1
    await down.aclose()


async def test_an_email_changed_by_update_is_remembered_too(clock: VirtualClock) -> None:
    fake, driver = auto_portal(clock)
    await driver.open()
    (contact,) = await driver.create_records(Entity.CONTACT, [NewRecord("p1", {"firstname": "A"})])
    await driver.update_records(
        Entity.CONTACT, [RecordUpdate(contact.crm_id or "", {"email": "a@omega.io"})]
    )
    # The fake makes companies on create only; HubSpot's own company for a changed address
    # would be found the same way. Here: a hand-made association stands for it.
    company = hand_made(fake, "companies", name="Omega", domain="omega.io")
    fake.store._link("contacts", contact.crm_id or "", "companies", company, 1)
    found = await driver.find_records(Entity.COMPANY, DOMAIN, ["omega.io"])
    assert found["omega.io"].crm_id == company
    await driver.close()


# -- updates onto a key another record holds -----------------------------------------------------


async def test_an_update_to_a_linkedin_url_another_contact_holds_still_lands(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    first, second = await backend.create_records(
        Entity.CONTACT,
        [
            NewRecord("p1", {"email": "a@q.io", "hs_linkedin_url": "linkedin.com/in/a"}),
            NewRecord("p2", {"email": "b@q.io"}),
        ],
    )
    (updated,) = await backend.update_records(
        Entity.CONTACT,
        [
            RecordUpdate(
                second.crm_id or "",
                {"hs_linkedin_url": "https://www.linkedin.com/in/A/", "firstname": "Bo"},
                match_keys={"linkedinUrl": "linkedin.com/in/a"},
            )
        ],
    )
    assert updated.ok
    stored = fake.objects["contacts"][second.crm_id or ""]["properties"]
    assert (
        stored["firstname"] == "Bo"
        and stored["hs_linkedin_url"] == "https://www.linkedin.com/in/A/"
    )
    assert stored.get("enginy_linkedin_key") is None  # the key stays with the first contact
    found = await backend.find_records(Entity.CONTACT, LINKEDIN, ["linkedin.com/in/a"])
    assert found["linkedin.com/in/a"].crm_id == first.crm_id


async def test_a_company_moved_to_a_domain_another_company_has_is_updated(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    acme, beta = await backend.create_records(
        Entity.COMPANY,
        [
            NewRecord("c1", {"name": "Acme", "domain": "acme.com"}),
            NewRecord("c2", {"name": "Beta", "domain": "beta.com"}),
        ],
    )
    fake.calls.clear()
    (updated,) = await backend.update_records(
        Entity.COMPANY,
        [RecordUpdate(beta.crm_id or "", {"domain": "acme.com", "city": "Lyon"})],
    )
    assert updated.ok
    stored = fake.objects["companies"][beta.crm_id or ""]["properties"]
    assert (stored["domain"], stored["city"]) == ("acme.com", "Lyon")
    assert stored.get("enginy_domain_key") is None  # acme.com stays Acme's key
    found = await backend.find_records(Entity.COMPANY, DOMAIN, ["acme.com", "beta.com"])
    assert {v: r.crm_id for v, r in found.items()} == {"acme.com": acme.crm_id}
    assert ops(fake)[:2] == ["companies.batch/update"] * 2
