"""The driver against the stateful fake: idempotency, HubSpot quirks, policies, caches,
secrets."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from backends.base import (
    EXTERNAL_ID,
    AuthFailed,
    Conflict,
    Entity,
    InvalidRecord,
    MatchKey,
    NewActivity,
    NewRecord,
    NotFound,
    RecordUpdate,
    Unavailable,
)
from backends.hubspot import HubSpotBackend, HubSpotOptions
from backends.testing.hubspot import FakeHubSpot

from .conftest import TOKEN, MakeBackend, VirtualClock

pytestmark = pytest.mark.anyio


def contact(n: int, **fields: object) -> NewRecord:
    return NewRecord(f"ext-{n}", {"email": f"p{n}@x.io", "firstname": f"P{n}", **fields})


async def test_open_creates_a_unique_external_id_property(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    for object_type in ("contacts", "companies"):
        definition = fake.store.properties[object_type]["enginy_external_id"]
        assert definition["hasUniqueValue"] is True
        assert definition["groupName"] == "enginy"


async def test_open_without_permission_to_create_fails_naming_the_property(
    make_backend: MakeBackend,
) -> None:
    driver = make_backend(create_properties=False)
    with pytest.raises(Unavailable, match="enginy_external_id"):
        await driver.open()


async def test_create_of_100_new_records_costs_two_calls(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    fake.calls.clear()
    results = await backend.create_records(Entity.CONTACT, [contact(i) for i in range(100)])
    assert all(r.ok and r.created for r in results)
    assert [c.op for c in fake.calls] == ["contacts.batch/read", "contacts.batch/create"]


async def test_repeat_create_writes_nothing_even_when_search_lags(
    make_backend: MakeBackend, fake: FakeHubSpot
) -> None:
    fake.store.search_lag = 1e9  # the search index never catches up
    driver = make_backend()
    await driver.open()
    first = await driver.create_records(Entity.CONTACT, [contact(1), contact(2)])
    fake.calls.clear()
    again = await driver.create_records(Entity.CONTACT, [contact(1), contact(2)])
    assert [r.crm_id for r in again] == [r.crm_id for r in first]
    assert not any(r.created for r in again)
    assert [c.op for c in fake.calls] == ["contacts.batch/read"]
    assert len(fake.objects["contacts"]) == 2


async def test_duplicate_email_resolves_to_the_existing_contact(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    (existing,) = await backend.create_records(Entity.CONTACT, [contact(1)])
    other = NewRecord("someone-else", {"email": "P1@x.io"})
    results = await backend.create_records(Entity.CONTACT, [contact(2), other])
    assert results[0].created and results[0].ok
    assert results[1].crm_id == existing.crm_id and results[1].created is False
    assert len(fake.objects["contacts"]) == 2


async def test_same_email_twice_in_one_batch_gives_one_contact(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    results = await backend.create_records(
        Entity.CONTACT, [contact(1), NewRecord("twin", {"email": "p1@x.io"})]
    )
    assert results[0].crm_id == results[1].crm_id
    assert len(fake.objects["contacts"]) == 1


async def test_one_bad_record_fails_alone_with_its_trace_id(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    records = [
        NewRecord("c1", {"name": "Good"}),
        NewRecord("c2", {"name": "Bad", "numberofemployees": "lots"}),
        NewRecord("c3", {"name": "Good too"}),
    ]
    results = await backend.create_records(Entity.COMPANY, records)
    assert results[0].ok and results[2].ok
    assert isinstance(results[1].error, InvalidRecord)
    assert "objectWriteTraceId=" in results[1].error.message
    assert (
        "INVALID_INTEGER" in results[1].error.message or "valid number" in results[1].error.message
    )
    assert len(fake.objects["companies"]) == 2


async def test_whole_batch_400_is_split_to_isolate_the_bad_record(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    body = {"status": "error", "category": "VALIDATION_ERROR", "message": "Invalid input"}
    fake.fail_next(400, body, path_contains="batch/create")
    results = await backend.create_records(
        Entity.COMPANY, [NewRecord(f"c{i}", {"name": f"N{i}"}) for i in range(4)]
    )
    assert all(r.ok for r in results)  # the retried halves went through
    assert len(fake.objects["companies"]) == 4


async def test_concurrent_creates_of_one_external_id_store_one_record(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    results = await asyncio.gather(
        *[
            backend.create_records(Entity.COMPANY, [NewRecord("same", {"name": "Acme"})])
            for _ in range(8)
        ]
    )
    ids = {r[0].crm_id for r in results}
    assert len(ids) == 1 and None not in ids
    assert len(fake.objects["companies"]) == 1


async def test_owned_keys_are_found_at_once_while_search_lags(
    backend: HubSpotBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    await backend.create_records(
        Entity.COMPANY,
        [
            NewRecord(
                "c1",
                {
                    "name": "Acme Inc",
                    "domain": "www.acme.io",
                    "linkedin_company_page": "https://uk.linkedin.com/company/acme/",
                },
            )
        ],
    )
    fake.calls.clear()
    by_domain = await backend.find_records(
        Entity.COMPANY, MatchKey("domain", "domain"), ["acme.io"]
    )
    by_url = await backend.find_records(
        Entity.COMPANY,
        MatchKey("linkedinUrl", "linkedin_company_page"),
        ["linkedin.com/company/acme"],
    )
    assert by_domain["acme.io"].external_id == "c1"
    assert by_url["linkedin.com/company/acme"].external_id == "c1"
    assert [c.op for c in fake.calls] == ["companies.batch/read"] * 2  # no search at all
    assert "enginy_domain_key" not in by_domain["acme.io"].fields  # the driver's own
    # A name has no key property: only search finds it, once the index caught up.
    assert await backend.find_records(Entity.COMPANY, MatchKey("name", "name"), ["acme inc"]) == {}
    clock.now += fake.store.search_lag + 1
    by_name = await backend.find_records(Entity.COMPANY, MatchKey("name", "name"), ["acme inc"])
    assert by_name["acme inc"].external_id == "c1"


async def test_a_match_key_on_a_missing_property_is_skipped_not_failed(
    backend: HubSpotBackend, fake: FakeHubSpot, caplog: pytest.LogCaptureFixture
) -> None:
    (created,) = await backend.create_records(Entity.CONTACT, [contact(1)])
    with caplog.at_level(logging.WARNING, "backends.hubspot"):
        found = await backend.find_records(
            Entity.CONTACT, MatchKey("linkedinUrl", "linkedin_profile_url"), ["linkedin.com/in/a"]
        )
        again = await backend.find_records(
            Entity.CONTACT, MatchKey("linkedinUrl", "linkedin_profile_url"), ["linkedin.com/in/b"]
        )
    assert found == {} and again == {}
    assert not any(c.status == 400 for c in fake.calls)
    lines = [r.getMessage() for r in caplog.records if "linkedin_profile_url" in r.getMessage()]
    assert len(lines) == 1 and "skipped" in lines[0]
    by_email = await backend.find_records(Entity.CONTACT, MatchKey("email", "email"), ["p1@x.io"])
    assert by_email["p1@x.io"].crm_id == created.crm_id


async def test_find_by_external_id_and_email_never_search(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    await backend.create_records(Entity.CONTACT, [contact(1)])
    fake.calls.clear()
    assert "ext-1" in await backend.find_records(Entity.CONTACT, MatchKey(EXTERNAL_ID), ["ext-1"])
    assert "p1@x.io" in await backend.find_records(
        Entity.CONTACT, MatchKey("email", "email"), ["p1@x.io"]
    )
    assert fake.count("search") == 0


async def test_update_unknown_id_is_a_per_item_not_found(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    (created,) = await backend.create_records(Entity.CONTACT, [contact(1)])
    fake.calls.clear()
    results = await backend.update_records(
        Entity.CONTACT,
        [
            RecordUpdate(created.crm_id or "", {"firstname": "New"}),
            RecordUpdate("999999", {"firstname": "Ghost"}),
            RecordUpdate("not-a-hubspot-id", {"firstname": "Ghost"}),
        ],
    )
    assert results[0].ok
    assert isinstance(results[1].error, NotFound) and isinstance(results[2].error, NotFound)
    assert [c.op for c in fake.calls] == ["contacts.batch/update"]
    assert fake.objects["contacts"][created.crm_id or ""]["properties"]["firstname"] == "New"


async def test_drop_policy_warns_once_per_field(
    make_backend: MakeBackend, fake: FakeHubSpot, caplog: pytest.LogCaptureFixture
) -> None:
    driver = make_backend(unknown_properties="drop")
    await driver.open()
    with caplog.at_level(logging.WARNING, "backends.hubspot"):
        await driver.create_records(
            Entity.CONTACT, [contact(1, mystery="a"), contact(2, mystery="b")]
        )
        await driver.create_records(Entity.CONTACT, [contact(3, mystery="c")])
    assert sum("mystery" in r.getMessage() for r in caplog.records) == 1
    assert "mystery" not in fake.store.properties["contacts"]
    assert len(fake.objects["contacts"]) == 3


async def test_reject_policy_fails_the_record(make_backend: MakeBackend, fake: FakeHubSpot) -> None:
    driver = make_backend(unknown_properties="reject")
    await driver.open()
    results = await driver.create_records(Entity.CONTACT, [contact(1, mystery="a"), contact(2)])
    assert isinstance(results[0].error, InvalidRecord) and "mystery" in results[0].error.message
    assert results[1].ok


async def test_create_policy_makes_the_property_in_the_enginy_group(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    await backend.create_records(Entity.CONTACT, [contact(1, genesy_engagement_status="REPLIED")])
    definition = fake.store.properties["contacts"]["genesy_engagement_status"]
    assert definition["groupName"] == "enginy"
    stored = next(iter(fake.objects["contacts"].values()))
    assert stored["properties"]["genesy_engagement_status"] == "REPLIED"


async def test_property_definitions_are_read_once_per_ttl(
    make_backend: MakeBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    driver = make_backend(properties_ttl_seconds=600)
    await driver.open()
    before = fake.count("properties:contacts")
    for n in range(5):
        await driver.create_records(Entity.CONTACT, [contact(n)])
    assert fake.count("properties:contacts") == before
    clock.now += 601
    await driver.create_records(Entity.CONTACT, [contact(9)])
    assert fake.count("properties:contacts") == before + 1


async def test_owners_are_fetched_once_per_ttl(
    make_backend: MakeBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    driver = make_backend(owners_ttl_seconds=300)
    await asyncio.gather(*[driver.list_users() for _ in range(20)])
    assert fake.count("owners") == 1
    clock.now += 301
    users = await driver.list_users()
    assert fake.count("owners") == 2
    assert users[0].name == "Ada Lovelace" and users[0].id == fake.owners[0]["id"]


async def test_activity_idempotency_under_concurrency(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    (created,) = await backend.create_records(Entity.CONTACT, [contact(1)])
    activity = NewActivity(
        type="EMAIL",
        direction="OUTBOUND",
        subject="Hi",
        body="Hello",
        contact_id=created.crm_id,
        idempotency_key="EMAIL|OUTBOUND|m-1",
        metadata={"messageId": "m-1"},
    )
    results = await asyncio.gather(*[backend.create_activity(activity) for _ in range(5)])
    assert len({a.id for a in results}) == 1
    assert len(fake.objects["emails"]) == 1
    assert results[0].metadata == {"messageId": "m-1"}


async def test_activity_for_unknown_contact_is_not_found(backend: HubSpotBackend) -> None:
    with pytest.raises(NotFound):
        await backend.create_activity(NewActivity(type="LINKEDIN", contact_id="424242"))


async def test_activity_with_a_non_owner_is_invalid(backend: HubSpotBackend) -> None:
    with pytest.raises(InvalidRecord):
        await backend.create_activity(NewActivity(type="LINKEDIN", owner_id="31337"))


@pytest.mark.parametrize(
    ("choice", "object_type"),
    [("communication", "communications"), ("note", "notes"), ("task", "tasks")],
)
async def test_linkedin_connection_destination_is_configurable(
    make_backend: MakeBackend, fake: FakeHubSpot, choice: str, object_type: str
) -> None:
    driver = make_backend(linkedin_connection_as=choice)
    await driver.open()
    activity = await driver.create_activity(
        NewActivity(type="LINKEDIN_CONNECTION", direction="OUTBOUND")
    )
    assert activity.id in fake.objects[object_type]
    assert activity.type == "LINKEDIN_CONNECTION"


async def test_connection_task_falls_back_to_todo_when_the_portal_lacks_the_option(
    make_backend: MakeBackend, fake: FakeHubSpot
) -> None:
    options = fake.store.properties["tasks"]["hs_task_type"]["options"]
    options[:] = [o for o in options if o["value"] != "LINKED_IN_CONNECT"]
    driver = make_backend(linkedin_connection_as="task")
    await driver.open()
    activity = await driver.create_activity(NewActivity(type="LINKEDIN_CONNECTION", subject="Ada"))
    props = fake.objects["tasks"][activity.id]["properties"]
    assert props["hs_task_type"] == "TODO"
    assert props["hs_task_subject"] == "[LinkedIn connect] Ada"


async def test_bad_token_is_auth_failed_without_the_token(
    fake: FakeHubSpot, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "pat-na1-this-must-never-leak"
    driver = HubSpotBackend(
        HubSpotOptions(token=secret), transport=fake.transport(), sleep=clock.sleep, clock=clock
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthFailed) as info:
        await driver.open()
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert secret not in caplog.text
    assert secret not in repr(driver.options) and secret not in str(driver.options)


async def test_network_error_messages_never_carry_the_token(
    fake: FakeHubSpot, make_backend: MakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    driver = make_backend(max_attempts=2)
    fake.fail_next(error=httpx.ConnectError(f"boom Bearer {TOKEN}"), times=5)
    with caplog.at_level(logging.DEBUG), pytest.raises(Unavailable) as info:
        await driver.ping()
    assert TOKEN not in str(info.value)
    assert TOKEN not in caplog.text


async def test_check_reports_scopes_and_link_templates(
    make_backend: MakeBackend, fake: FakeHubSpot
) -> None:
    fake.missing_scopes.add("crm.objects.owners.read")
    driver = make_backend()
    report = await driver.check()
    assert report.missing_scopes == ["crm.objects.owners.read"]
    assert (
        report.contact_link_template
        == f"https://app.hubspot.com/contacts/{fake.portal_id}/record/0-1/{{{{crmId}}}}"
    )
    assert report.company_link_template.endswith("/record/0-2/{{crmId}}")  # type: ignore[union-attr]
    assert report.missing_properties == {}  # a stock portal has every default-mapped property
    assert "enginy_external_id" in fake.store.properties["contacts"]


async def test_link_templates_use_configured_portal_without_a_call(
    make_backend: MakeBackend, fake: FakeHubSpot
) -> None:
    driver = make_backend(portal_id="99", app_host="app-eu1.hubspot.com")
    links = driver.link_templates()
    assert links is not None
    assert links["companyLinkTemplate"] == (
        "https://app-eu1.hubspot.com/contacts/99/record/0-2/{{crmId}}"
    )
    assert fake.calls == []


async def test_open_learns_the_portal_for_the_links_hook(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    from adapter.links import link_templates

    links = link_templates(backend, "http://adapter")
    assert links == {
        "contactLinkTemplate": f"https://app.hubspot.com/contacts/{fake.portal_id}/record/0-1/{{{{crmId}}}}",
        "companyLinkTemplate": f"https://app.hubspot.com/contacts/{fake.portal_id}/record/0-2/{{{{crmId}}}}",
    }


async def test_unknown_portal_means_no_links_but_open_succeeds(
    make_backend: MakeBackend, fake: FakeHubSpot
) -> None:
    fake.fail_next(
        403,
        {"status": "error", "message": "no", "category": "MISSING_SCOPES"},
        path_contains="account-info",
    )
    driver = make_backend()
    await driver.open()
    assert driver.link_templates() is None


async def test_conflict_that_cannot_be_resolved_is_a_per_item_conflict(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    body = {"status": "error", "category": "CONFLICT", "message": "Something already exists"}
    fake.fail_next(409, body, path_contains="batch/create", times=10)
    (result,) = await backend.create_records(Entity.COMPANY, [NewRecord("c1", {"name": "A"})])
    assert isinstance(result.error, Conflict)


async def test_many_fallback_values_are_split_under_the_search_body_limit(
    backend: HubSpotBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    domains = [f"a-rather-long-company-domain-number-{i}.example.com" for i in range(60)]
    for i, domain in enumerate(domains):  # made by hand: no key property, so search finds them
        fake.store._new("companies", {"name": f"Acme {i}", "domain": f"www.{domain}"})
    clock.now += fake.store.search_lag + 1
    fake.calls.clear()
    found = await backend.find_records(Entity.COMPANY, MatchKey("domain", "domain"), domains)
    assert set(found) == set(domains)
    searches = [c for c in fake.calls if c.op.startswith("search")]
    assert len(searches) > 1  # the fake rejects any body over 3,000 characters
    assert all(c.status == 200 for c in searches)


async def test_portal_with_many_custom_properties_searches_ids_then_reads(
    backend: HubSpotBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    for i in range(150):
        fake.add_property("companies", f"custom_property_number_{i}")
    backend.catalog.invalidate("companies")
    await backend.create_records(
        Entity.COMPANY, [NewRecord("c1", {"name": "Acme", "custom_property_number_7": "seven"})]
    )
    clock.now += fake.store.search_lag + 1
    fake.calls.clear()
    found = await backend.find_records(Entity.COMPANY, MatchKey("name", "name"), ["acme"])
    assert found["acme"].fields["custom_property_number_7"] == "seven"
    assert [c.op for c in fake.calls] == ["search:companies", "companies.batch/read"]


async def test_burst_under_a_rate_limited_portal_neither_fails_nor_duplicates(
    clock: VirtualClock,
) -> None:
    fake = FakeHubSpot(token=TOKEN, clock=clock, rate_limit=100)
    driver = HubSpotBackend(
        HubSpotOptions(token=TOKEN), transport=fake.transport(), sleep=clock.sleep, clock=clock
    )
    await driver.open()
    batches = [
        [NewRecord(f"e{n}", {"name": f"N{n}"}) for n in range(i * 5, i * 5 + 10)] for i in range(50)
    ]
    results = await asyncio.gather(*[driver.create_records(Entity.COMPANY, b) for b in batches])
    assert all(r.ok for batch in results for r in batch)
    values = [o["properties"]["enginy_external_id"] for o in fake.objects["companies"].values()]
    assert len(values) == len(set(values)) == 255
    assert not [c for c in fake.calls if c.status == 429]


async def test_hubspot_429_pauses_and_recovers(
    backend: HubSpotBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    body = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "policyName": "TEN_SECONDLY_ROLLING",
    }
    fake.fail_next(429, body, headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    start = clock.now
    results = await backend.create_records(Entity.COMPANY, [NewRecord("c1", {"name": "A"})])
    assert results[0].ok
    assert clock.now - start >= 10.0


async def test_a_per_item_clash_with_a_concurrent_create_is_resolved_by_reading_back(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    (first,) = await backend.create_records(Entity.COMPANY, [NewRecord("c1", {"name": "A"})])
    # The other request's create landed between our read and our create; HubSpot reports
    # the unique-value clash as a validation error of that input.
    fake.fail_next(200, {"status": "COMPLETE", "results": []}, path_contains="batch/read")
    clash = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "enginy_external_id: a company already has the value c1",
        "context": {"objectWriteTraceId": ["enginy-0"]},
    }
    fake.fail_next(
        207,
        {"status": "COMPLETE", "results": [], "numErrors": 1, "errors": [clash]},
        path_contains="batch/create",
    )
    (again,) = await backend.create_records(Entity.COMPANY, [NewRecord("c1", {"name": "A"})])
    assert again.ok and again.crm_id == first.crm_id and again.created is False
    assert len(fake.objects["companies"]) == 1


async def test_batch_complete_reads_once_and_updates_once(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    from datetime import UTC, datetime

    from backends.base import NewTask, TaskChanges

    (created,) = await backend.create_records(Entity.CONTACT, [contact(1)])
    tasks = [
        await backend.create_task(NewTask(subject=f"T{i}", contact_id=created.crm_id))
        for i in range(3)
    ]
    fake.calls.clear()
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    done = await backend.update_tasks(
        [t.id for t in tasks] + ["999999"], TaskChanges(now=now, completed=True)
    )
    assert [t.id for t in done] == [t.id for t in tasks]
    assert all(
        t.completed and t.completed_at == now and t.contact_id == created.crm_id for t in done
    )
    assert [c.op for c in fake.calls].count("tasks.batch/update") == 1
    assert [c.op for c in fake.calls].count("tasks.batch/read") == 1
    assert all(
        fake.objects["tasks"][t.id]["properties"]["hs_task_status"] == "COMPLETED" for t in tasks
    )


async def test_activities_without_schema_scope_are_logged_but_not_deduplicated(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    fake.missing_scopes.add("crm.schemas.notes.write")
    first = await backend.create_activity(NewActivity(type="OTHER", body="x", idempotency_key="k"))
    assert first.id in fake.objects["notes"]
    assert any(c.status == 403 and c.op == "property_groups" for c in fake.calls)


async def test_task_type_and_status_follow_the_portal_options(
    make_backend: MakeBackend, fake: FakeHubSpot
) -> None:
    from backends.base import NewTask

    definitions = fake.store.properties["tasks"]
    definitions["hs_task_type"]["options"] = [{"value": "TODO"}, {"value": "EMAIL"}]
    definitions["hs_task_status"]["options"] = [{"value": "WAITING"}, {"value": "COMPLETED"}]
    driver = make_backend()
    await driver.open()
    task = await driver.create_task(NewTask(subject="Ring", type="call"))
    stored = fake.objects["tasks"][task.id]["properties"]
    assert stored["hs_task_type"] == "TODO"  # the portal has no CALL option
    assert stored["hs_task_status"] == "WAITING"
    assert task.type == "call" and task.completed is False  # Enginy's value kept


async def test_camel_case_engagement_fields_get_a_snake_case_property_and_come_back(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    (created,) = await backend.create_records(Entity.CONTACT, [contact(1)])
    crm_id = created.crm_id or ""
    (updated,) = await backend.update_records(
        Entity.CONTACT,
        [
            RecordUpdate(
                crm_id,
                {"campaignEngagementStatus": "REPLIED", "campaignOpens": 5, "bounced": False},
            )
        ],
    )
    assert updated.ok and updated.dropped == {}
    # Text properties, whatever the first value: a later "5+" must still fit.
    assert fake.store.properties["contacts"]["campaign_opens"]["type"] == "string"
    assert fake.store.properties["contacts"]["bounced"]["type"] == "string"
    definition = fake.store.properties["contacts"]["campaign_engagement_status"]
    assert definition["groupName"] == "enginy"
    assert fake.objects["contacts"][crm_id]["properties"]["campaign_engagement_status"] == "REPLIED"
    record = (await backend.get_records(Entity.CONTACT, [crm_id]))[crm_id]
    assert record.fields["campaignEngagementStatus"] == "REPLIED"
    assert "campaign_engagement_status" not in record.fields
    assert record.fields["campaignOpens"] == 5 and record.fields["bounced"] is False
    (cleared,) = await backend.update_records(
        Entity.CONTACT, [RecordUpdate(crm_id, {}, clear=frozenset({"campaignEngagementStatus"}))]
    )
    assert cleared.ok
    assert fake.objects["contacts"][crm_id]["properties"]["campaign_engagement_status"] is None


@pytest.mark.parametrize(("policy", "is_problem"), [("drop", False), ("reject", True)])
async def test_check_setup_weighs_missing_mapped_properties_by_policy(
    make_backend: MakeBackend, fake: FakeHubSpot, policy: str, is_problem: bool
) -> None:
    from backends.base import Entity

    driver = make_backend(unknown_properties=policy)
    maps = {Entity.CONTACT: {"email": "email", "campaignStatus": "enginy_campaign_status"}}
    report = await driver.check_setup(maps)
    line = "contacts: mapped properties missing in the portal: enginy_campaign_status"
    assert any(line in p for p in report.problems) is is_problem
    assert any(line in n for n in report.notes) is not is_problem
    assert any(n.startswith("contactLinkTemplate: https://") for n in report.notes)


async def test_a_read_only_check_creates_no_property(
    make_backend: MakeBackend, fake: FakeHubSpot
) -> None:
    """``enginy-adapter check`` without ``--migrate`` sets ``read_only``: nothing is created
    in the portal, and the missing property is reported instead."""
    from backends.base import Entity

    driver = make_backend()
    driver.read_only = True
    await driver.open()
    report = await driver.check_setup({Entity.CONTACT: {"email": "email"}})
    for object_type in ("contacts", "companies"):
        assert "enginy_external_id" not in fake.store.properties[object_type]
    assert any(
        "contacts.enginy_external_id is missing (`serve` (or `check --migrate`) creates it)" in p
        for p in report.problems
    ), report.problems


async def test_a_compound_key_is_one_search_then_checked_part_by_part(
    backend: HubSpotBackend, fake: FakeHubSpot, clock: VirtualClock
) -> None:
    """First + last name + company (a matching rule of the front): one ``IN`` search on the
    first part, the other parts compared on the results (case and spaces folded)."""
    from backends.base import MatchKey

    made = await backend.create_records(
        Entity.CONTACT,
        [
            NewRecord("a", {"firstname": "Ada", "lastname": "Lovelace", "company": "Acme"}),
            NewRecord("b", {"firstname": "Ada", "lastname": "Lovelace", "company": "Globex"}),
            NewRecord("c", {"firstname": "Ada", "lastname": "King", "company": "Acme"}),
        ],
    )
    ids = [r.crm_id for r in made]
    await clock.sleep(5)  # HubSpot's search index catches up with the writes
    key = MatchKey("firstName+lastName+company", None, "compound",
                   ("firstname", "lastname", "company"))  # fmt: skip
    wanted = ['["ada","lovelace","globex"]', '["ada","king","acme"]', '["ada","lovelace","x"]']
    fake.calls.clear()
    found = await backend.find_records(Entity.CONTACT, key, wanted)
    assert {v: r.crm_id for v, r in found.items()} == {wanted[0]: ids[1], wanted[1]: ids[2]}
    assert [c.op for c in fake.calls if "search" in c.op] == ["search:contacts"]
