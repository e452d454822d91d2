"""The Pipedrive preset (examples/rest/pipedrive.yaml) against the fake Pipedrive of
backends/testing/pipedrive: the conformance suite, the requests it sends (Pipedrive's paths,
the x-api-token header, custom fields by hash), its rate budget, and exactly-once creates."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from backends.base import Backend, Entity, MatchKey, NewActivity, NewRecord, User
from backends.rest import RestBackend, RestOptions
from backends.testing import DEFAULT_RECORD_FIELDS, ConformanceSuite, RecordFields
from backends.testing.pipedrive import FakePipedrive
from tests.rest.support import VirtualClock, preset_settings

TOKEN = "pd-api-token-0123456789"
BASE = "https://acme.pipedrive.test"


def driver_on(
    fake: FakePipedrive, clock: VirtualClock | None = None, **overrides: object
) -> RestBackend:
    options = {**preset_settings("pipedrive", BASE, TOKEN).backend.options, **overrides}
    clock = clock or VirtualClock()
    return RestBackend(
        RestOptions.model_validate(options),
        transport=fake.transport(),
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: 0.0,
    )


def company() -> FakePipedrive:
    fake = FakePipedrive(api_token=TOKEN)
    fake.add_user("Ada Owner", "ada@acme.test")
    fake.add_user("Bob Seller", "bob@acme.test")
    return fake


class TestPipedriveConformance(ConformanceSuite):
    @pytest.fixture
    async def backend(self) -> AsyncIterator[Backend]:
        driver = driver_on(company())
        await driver.open()
        try:
            yield driver
        finally:
            await driver.close()

    @pytest.fixture
    def record_fields(self) -> RecordFields:
        names = {
            Entity.CONTACT: {
                **DEFAULT_RECORD_FIELDS[Entity.CONTACT],
                "firstName": "first_name",
                "lastName": "last_name",
            },
            Entity.COMPANY: DEFAULT_RECORD_FIELDS[Entity.COMPANY],
        }
        return lambda entity: names[entity]

    # Pipedrive sets an activity's marked_as_done_time itself; a time Enginy gives is not kept.
    _OWN_CLOCK = "Pipedrive records its own completion time (marked_as_done_time)"

    @pytest.mark.anyio
    async def test_complete_with_given_time_stores_it(self) -> None:
        pytest.skip(self._OWN_CLOCK)

    @pytest.mark.anyio
    async def test_complete_without_time_uses_now(self) -> None:
        pytest.skip(self._OWN_CLOCK)

    @pytest.mark.anyio
    async def test_completing_again_keeps_completed_at_unless_given(self) -> None:
        pytest.skip(self._OWN_CLOCK)

    @pytest.mark.anyio
    async def test_update_tasks_skips_unknown_ids(self) -> None:
        pytest.skip(self._OWN_CLOCK)

    @pytest.mark.anyio
    async def test_field_update_does_not_touch_completion(self) -> None:
        pytest.skip(self._OWN_CLOCK)

    @pytest.fixture
    def expected_users(self) -> list[User]:
        return [
            User("1000", "Ada Owner", "ada@acme.test"),
            User("1001", "Bob Seller", "bob@acme.test"),
        ]


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_open_defines_the_drivers_fields_and_a_create_writes_them_by_hash() -> None:
    fake = company()
    driver = driver_on(fake)
    await driver.open()
    result = await driver.create_record(
        Entity.CONTACT,
        NewRecord(
            "ext-1",
            {
                "email": "Ada@Acme.test",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "campaignOpens": 5,
            },
            {"email": "ada@acme.test"},
        ),
    )
    await driver.close()
    labels = {f.field_name: f.field_code for f in fake.store.fields["person"]}
    assert {"enginy_id", "enginy_linkedin_key", "campaignOpens"} <= set(labels)
    person = fake.store.persons[int(result.crm_id or 0)]
    assert person["name"] == "Ada Lovelace"
    assert person["emails"] == [{"value": "Ada@Acme.test", "primary": True, "label": "work"}]
    assert person["custom_fields"] == {labels["enginy_id"]: "ext-1", labels["campaignOpens"]: 5}
    assert {c.path for c in fake.calls} >= {"/api/v2/personFields", "/api/v2/persons/search"}
    assert all(c.status != 401 for c in fake.calls)


async def test_the_token_travels_in_the_x_api_token_header_and_never_in_a_url() -> None:
    seen: list[httpx.Request] = []
    fake = company()

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return fake.handle(request)

    options = preset_settings("pipedrive", BASE, TOKEN).backend.options
    driver = RestBackend(RestOptions.model_validate(options), transport=httpx.MockTransport(spy))
    await driver.ping()
    await driver.close()
    assert seen and all(r.headers["x-api-token"] == TOKEN for r in seen)
    assert all(TOKEN not in str(r.url) for r in seen)


async def test_a_second_sync_of_the_same_people_finds_them_by_email_case_insensitively() -> None:
    fake = company()
    driver = driver_on(fake)
    await driver.open()
    made = await driver.create_record(
        Entity.CONTACT,
        NewRecord(
            "ext-1", {"email": "Ada@Acme.test", "first_name": "Ada"}, {"email": "ada@acme.test"}
        ),
    )
    found = await driver.find_records(Entity.CONTACT, MatchKey("email", "email"), ["ada@acme.test"])
    await driver.close()
    assert found["ada@acme.test"].crm_id == made.crm_id
    assert found["ada@acme.test"].fields["email"] == "Ada@Acme.test"


async def test_linkedin_activities_are_notes_and_emails_are_done_activities() -> None:
    fake = company()
    driver = driver_on(fake)
    await driver.open()
    person = await driver.create_record(
        Entity.CONTACT,
        NewRecord("ext-1", {"email": "a@b.test", "first_name": "Ada"}, {"email": "a@b.test"}),
    )
    email = await driver.create_activity(
        NewActivity(
            type="EMAIL",
            direction="OUTBOUND",
            subject="Intro",
            body="<p>Hi</p>",
            contact_id=person.crm_id,
            idempotency_key="EMAIL|OUTBOUND|m1",
        )
    )
    note = await driver.create_activity(
        NewActivity(
            type="LINKEDIN",
            direction="INBOUND",
            body="Sure, let's talk",
            contact_id=person.crm_id,
            idempotency_key="LINKEDIN|INBOUND|m2",
        )
    )
    again = await driver.create_activity(
        NewActivity(
            type="LINKEDIN",
            direction="INBOUND",
            body="changed",
            contact_id=person.crm_id,
            idempotency_key="LINKEDIN|INBOUND|m2",
        )
    )
    await driver.close()
    activity = fake.store.activities[int(email.id)]
    assert (activity["type"], activity["done"], activity["person_id"]) == (
        "email",
        True,
        int(person.crm_id or 0),
    )
    assert again.id == note.id and len(fake.store.notes) == 1
    assert fake.store.notes[int(note.id)]["content"].startswith(
        "LINKEDIN inbound<br>Sure, let's talk"
    )


async def test_the_rate_budget_keeps_pipedrive_from_answering_429() -> None:
    clock = VirtualClock()
    fake = FakePipedrive(api_token=TOKEN, requests_per_window=20, window_seconds=2.0, clock=clock)
    driver = driver_on(fake, clock)
    await driver.open()
    records = [
        NewRecord(f"e{n}", {"email": f"p{n}@x.test", "first_name": "P"}, {"email": f"p{n}@x.test"})
        for n in range(30)
    ]
    results = await driver.create_records(Entity.CONTACT, records)
    await driver.close()
    assert all(r.ok for r in results)
    assert not [c for c in fake.calls if c.status == 429]
    assert clock.sleeps  # the budget made it wait instead


async def test_a_429_waits_the_reset_pipedrive_names() -> None:
    clock = VirtualClock()
    fake = FakePipedrive(api_token=TOKEN, requests_per_window=3, window_seconds=2.0, clock=clock)
    driver = driver_on(fake, clock, rate_limit={})  # no client-side budget: meet the 429s
    await driver.open()
    result = await driver.create_record(Entity.CONTACT, NewRecord("e1", {"first_name": "P"}, {}))
    await driver.close()
    assert result.ok and [c for c in fake.calls if c.status == 429]
    assert len(fake.store.persons) == 1


async def test_a_lost_create_answer_makes_one_person() -> None:
    fake = company()
    fake.fail("POST", "/api/v2/persons", None, after_write=True)
    fake.fail("POST", "/api/v2/persons", 500, after_write=True)
    driver = driver_on(fake)
    await driver.open()
    first = await driver.create_record(Entity.CONTACT, NewRecord("e1", {"first_name": "P"}, {}))
    second = await driver.create_record(Entity.CONTACT, NewRecord("e2", {"first_name": "Q"}, {}))
    await driver.close()
    assert first.ok and second.ok and len(fake.store.persons) == 2


async def test_the_fake_follows_the_reference() -> None:
    fake = company()
    async with httpx.AsyncClient(
        transport=fake.transport(), base_url=BASE, headers={"x-api-token": TOKEN}
    ) as client:
        created = await client.post(
            "/api/v2/persons", json={"name": "Ada Lovelace", "emails": [{"value": "A@B.test"}]}
        )
        assert created.status_code == 201 and created.json()["data"]["last_name"] == "Lovelace"
        search = await client.get(
            "/api/v2/persons/search",
            params={"term": "a@b.TEST", "fields": "email", "exact_match": "true"},
        )
        assert [i["item"]["id"] for i in search.json()["data"]["items"]] == [
            created.json()["data"]["id"]
        ]
        assert (await client.get("/api/v2/persons/search", params={"term": "a"})).status_code == 400
        assert (await client.get("/api/v2/persons/999")).json() == {
            "success": False,
            "error": "Person not found",
            "error_info": "Please check developers.pipedrive.com for more information about "
            "Pipedrive API.",
            "data": None,
            "additional_data": None,
        }
        bad = await client.post("/api/v2/activities", json={"type": "linkedin"})
        assert bad.status_code == 400
        many = await client.get("/api/v2/persons", params={"ids": ",".join(map(str, range(101)))})
        assert many.status_code == 400
    async with httpx.AsyncClient(transport=fake.transport(), base_url=BASE) as anonymous:
        assert (await anonymous.get("/api/v1/users")).status_code == 401
        body = json.loads(
            (await anonymous.get("/api/v1/users", params={"api_token": TOKEN})).content
        )
        assert [u["name"] for u in body["data"]] == ["Ada Owner", "Bob Seller"]


async def test_simulate_passes_every_must_and_should_on_the_fake() -> None:
    from adapter.app import create_app
    from adapter.simulate.runner import simulate
    from tests.rest.support import API_KEY

    fake = company()
    settings = preset_settings("pipedrive", BASE, TOKEN)
    app = create_app(settings, driver_on(fake))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://adapter") as client,
    ):
        report = await simulate(client, api_key=API_KEY, timeout=60)
    failed = [(c.name, c.detail) for c in report.checks if c.status.value == "FAIL"]
    assert not failed
    assert {c.name for c in report.checks if c.status.value == "SKIP"} <= {
        "connect.users.off_status",
        "errors.invalid_value_listed",
    }
