"""The driver on a stock portal (HubSpot-defined properties only, search lagging writes):
LinkedIn keys, enumerations, engagement fields, companies de-duplicated by domain, activity
set-up refusals."""

from __future__ import annotations

import logging

import pytest

from backends.base import Entity, MatchKey, NewActivity, NewRecord, RecordUpdate
from backends.hubspot import HubSpotBackend
from backends.testing.hubspot import FakeHubSpot

from .conftest import TOKEN, MakeBackend, VirtualClock

pytestmark = pytest.mark.anyio

LINKEDIN = MatchKey("linkedinUrl", "hs_linkedin_url")


def lead(n: int, url: str | None = None, **fields: object) -> NewRecord:
    data: dict[str, object] = {"email": f"p{n}@x.io", "firstname": f"P{n}", **fields}
    if url:
        data["hs_linkedin_url"] = url
    return NewRecord(f"ext-{n}", data)


async def test_linkedin_key_is_normalised_and_found_right_after_the_create(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    (created,) = await backend.create_records(
        Entity.CONTACT, [lead(1, "http://uk.linkedin.com/in/Ana-Ruiz/?trk=x")]
    )
    stored = fake.objects["contacts"][created.crm_id or ""]["properties"]
    assert stored["hs_linkedin_url"] == "http://uk.linkedin.com/in/Ana-Ruiz/?trk=x"  # as sent
    assert stored["enginy_linkedin_key"] == "linkedin.com/in/ana-ruiz"
    # The search index has not caught up (search_lag), yet the key is found.
    found = await backend.find_records(Entity.CONTACT, LINKEDIN, ["linkedin.com/in/ana-ruiz"])
    assert found["linkedin.com/in/ana-ruiz"].crm_id == created.crm_id
    assert fake.count("search") == 0


async def test_the_key_follows_an_update_of_the_url(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    (created,) = await backend.create_records(Entity.CONTACT, [lead(1, "linkedin.com/in/old")])
    crm_id = created.crm_id or ""
    update = RecordUpdate(
        crm_id,
        {"hs_linkedin_url": "https://www.linkedin.com/in/new/"},
        match_keys={"linkedinUrl": "linkedin.com/in/new"},
    )
    assert (await backend.update_records(Entity.CONTACT, [update]))[0].ok
    found = await backend.find_records(
        Entity.CONTACT, LINKEDIN, ["linkedin.com/in/old", "linkedin.com/in/new"]
    )
    assert set(found) == {"linkedin.com/in/new"}


async def test_a_second_contact_with_the_same_linkedin_url_is_created_without_the_key(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    (first,) = await backend.create_records(Entity.CONTACT, [lead(1, "linkedin.com/in/ana")])
    (second,) = await backend.create_records(Entity.CONTACT, [lead(2, "linkedin.com/in/ana")])
    assert second.ok and second.created and second.crm_id != first.crm_id
    assert fake.objects["contacts"][second.crm_id or ""]["properties"]["hs_linkedin_url"]
    found = await backend.find_records(Entity.CONTACT, LINKEDIN, ["linkedin.com/in/ana"])
    assert found["linkedin.com/in/ana"].crm_id == first.crm_id  # the oldest stays the match


async def test_enumeration_values_by_label_or_value_and_a_bad_one_drops_only_that_field(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    results = await backend.create_records(
        Entity.COMPANY,
        [
            NewRecord("c1", {"name": "Acme", "industry": "computer software", "type": "partner"}),
            NewRecord("c2", {"name": "Beta", "industry": "INFORMATION_TECHNOLOGY_AND_SERVICES"}),
            NewRecord("c3", {"name": "Gamma", "industry": "Technology", "city": "Madrid"}),
        ],
    )
    assert all(r.ok for r in results)
    props = [fake.objects["companies"][r.crm_id or ""]["properties"] for r in results]
    assert (props[0]["industry"], props[0]["type"]) == ("COMPUTER_SOFTWARE", "PARTNER")
    assert props[1]["industry"] == "INFORMATION_TECHNOLOGY_AND_SERVICES"
    assert props[2].get("industry") is None and props[2]["city"] == "Madrid"
    assert results[0].dropped == {} and results[1].dropped == {}
    assert list(results[2].dropped) == ["industry"]
    assert results[2].dropped["industry"].startswith("'Technology' is not an option")
    assert "Computer Software" in results[2].dropped["industry"]  # the options are named
    # An update with a bad option reports it too, and writes the rest.
    (updated,) = await backend.update_records(
        Entity.COMPANY,
        [RecordUpdate(results[0].crm_id or "", {"industry": "Tech", "city": "Rome"})],
    )
    assert updated.ok and "Tech" in updated.dropped["industry"]
    assert props[0]["industry"] == "COMPUTER_SOFTWARE" and props[0]["city"] == "Rome"


async def test_engagement_fields_are_text_so_later_values_of_another_shape_fit(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    (created,) = await backend.create_records(Entity.CONTACT, [lead(1)])
    crm_id = created.crm_id or ""
    for value in (5, "5+", 7):
        (result,) = await backend.update_records(
            Entity.CONTACT, [RecordUpdate(crm_id, {"campaignOpens": value})]
        )
        assert result.ok and result.dropped == {}
        record = (await backend.get_records(Entity.CONTACT, [crm_id]))[crm_id]
        assert record.fields["campaignOpens"] == value
    definition = fake.store.properties["contacts"]["campaign_opens"]
    assert (definition["type"], definition["groupName"]) == ("string", "enginy")


async def test_drop_policy_names_the_field_in_the_result(make_backend: MakeBackend) -> None:
    driver = make_backend(unknown_properties="drop")
    await driver.open()
    (result,) = await driver.create_records(Entity.CONTACT, [lead(1, campaignStatus="x")])
    assert result.ok and result.dropped == {"campaignStatus": "no such HubSpot property"}


async def test_note_policy_keeps_unknown_fields_in_a_note_on_the_record(
    make_backend: MakeBackend, fake: FakeHubSpot
) -> None:
    driver = make_backend(unknown_properties="note")
    await driver.open()
    (created,) = await driver.create_records(
        Entity.CONTACT, [lead(1, campaignEngagementStatus="Replied")]
    )
    assert created.ok and created.dropped == {}
    (note,) = fake.objects["notes"].values()
    assert "campaignEngagementStatus: Replied" in note["properties"]["hs_note_body"]
    assert ("notes", note["id"], "contacts", created.crm_id, 202) in fake.store.associations
    assert "campaign_engagement_status" not in fake.store.properties["contacts"]


async def test_a_company_with_a_known_domain_is_the_same_company(
    backend: HubSpotBackend, fake: FakeHubSpot
) -> None:
    (first,) = await backend.create_records(
        Entity.COMPANY, [NewRecord("c1", {"name": "Acme", "domain": "acme.io"})]
    )
    # Another external id, the domain written differently, right away (search lags).
    again, twin_a, twin_b = await backend.create_records(
        Entity.COMPANY,
        [
            NewRecord("c2", {"name": "ACME Inc", "domain": "https://www.Acme.io/about"}),
            NewRecord("c3", {"name": "New", "domain": "new.io"}),
            NewRecord("c4", {"name": "New Co", "domain": "www.new.io"}),
        ],
    )
    assert again.crm_id == first.crm_id and not again.created
    assert twin_a.crm_id == twin_b.crm_id and twin_a.created
    assert len(fake.objects["companies"]) == 2


async def test_a_company_hubspot_made_from_a_contact_email_is_reused(
    clock: VirtualClock, make_backend: MakeBackend
) -> None:
    fake = FakeHubSpot(token=TOKEN, clock=clock, auto_create_companies=True)
    driver = HubSpotBackend(
        type(make_backend().options)(token=TOKEN),
        transport=fake.transport(),
        sleep=clock.sleep,
        clock=clock,
    )
    await driver.open()
    await driver.create_records(Entity.CONTACT, [lead(1, email="ana@acme.io")])
    (auto,) = fake.objects["companies"].values()  # HubSpot's own, without our keys
    clock.now += fake.store.search_lag + 1
    (result,) = await driver.create_records(
        Entity.COMPANY, [NewRecord("acct-1", {"name": "Acme", "domain": "acme.io"})]
    )
    assert result.crm_id == auto["id"] and not result.created
    assert len(fake.objects["companies"]) == 1
    # Tagged: the next lookup by domain or external id reads the primary store.
    assert auto["properties"]["enginy_domain_key"] == "acme.io"
    assert auto["properties"]["enginy_external_id"] == "acct-1"
    fake.calls.clear()
    (again,) = await driver.create_records(
        Entity.COMPANY, [NewRecord("acct-1", {"name": "Acme", "domain": "acme.io"})]
    )
    assert again.crm_id == auto["id"]
    assert [c.op for c in fake.calls] == ["companies.batch/read"]
    await driver.close()


async def test_activity_set_up_refused_with_400_is_tried_once_and_activities_still_land(
    backend: HubSpotBackend, fake: FakeHubSpot, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"status": "error", "category": "VALIDATION_ERROR", "message": "Invalid group"}
    fake.fail_next(400, body, path_contains="/properties/notes/groups")
    with caplog.at_level(logging.WARNING, "backends.hubspot"):
        first = await backend.create_activity(NewActivity(type="OTHER", body="a"))
        second = await backend.create_activity(NewActivity(type="OTHER", body="b"))
    assert {first.id, second.id} <= set(fake.objects["notes"])
    assert sum(1 for c in fake.calls if c.path.endswith("/properties/notes/groups")) == 1
    assert (
        sum(
            "cannot create the Enginy properties on notes" in r.getMessage() for r in caplog.records
        )
        == 1
    )


async def test_check_notes_match_keys_the_portal_cannot_serve(make_backend: MakeBackend) -> None:
    driver = make_backend()
    maps = {
        Entity.CONTACT: {"email": "email", "linkedinUrl": "linkedin_profile_url"},
        Entity.COMPANY: dict(HubSpotBackend.default_field_map[Entity.COMPANY]),
    }
    report = await driver.check_setup(maps)
    assert any(
        "match key linkedinUrl is skipped" in n and "linkedin_profile_url" in n
        for n in report.notes
    )
    assert not report.problems
