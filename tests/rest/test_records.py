"""Record operations against a minimal JSON API: exactly-once creates when answers are lost,
idempotency keys, duplicates answered with the existing record, native batches, updates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from backends.base import (
    Backend,
    Entity,
    InvalidRecord,
    MatchKey,
    NewActivity,
    NewRecord,
    NotFound,
    RecordUpdate,
    Unsupported,
)
from backends.testing import CapabilitiesSuite
from tests.rest.fakecrm import FakeCRM, manifest, resource
from tests.rest.support import VirtualClock, make_driver

pytestmark = pytest.mark.anyio
C = Entity.CONTACT


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def ada(n: int = 1, **fields: object) -> NewRecord:
    email = f"ada{n}@example.com"
    return NewRecord(f"ext-{n}", {"email": email, "first_name": "Ada", **fields}, {"email": email})


@pytest.mark.parametrize(
    ("status", "after_write"),
    [(500, True), (None, True), (502, False)],
    ids=["500-after-write", "answer-lost", "502-before-write"],
)
async def test_a_create_whose_answer_fails_makes_one_record(
    status: int | None, after_write: bool
) -> None:
    crm = FakeCRM()
    crm.fail("POST", "/contacts", status, after_write=after_write)
    driver = make_driver(manifest(), crm.transport())
    result = await driver.create_record(C, ada())
    assert result.ok and result.created is True
    assert len(crm.records["contacts"]) == 1
    assert result.crm_id in crm.records["contacts"]
    # Written or not, the create was never sent twice without a lookup in between.
    methods = [(r.method, r.url.path) for r in crm.requests]
    assert (
        methods == [("GET", "/contacts"), ("POST", "/contacts")] * 2
        if not after_write
        else (methods[:3] == [("GET", "/contacts"), ("POST", "/contacts"), ("GET", "/contacts")])
    )
    await driver.close()


async def test_a_refused_connection_is_sent_again_at_once() -> None:
    crm = FakeCRM()
    crm.fail("POST", "/contacts", None)  # before the write: the connection was never made
    driver = make_driver(manifest(), crm.transport())
    result = await driver.create_record(C, ada())
    assert result.ok and len(crm.records["contacts"]) == 1
    methods = [(r.method, r.url.path) for r in crm.requests]
    assert methods == [("GET", "/contacts"), ("POST", "/contacts"), ("POST", "/contacts")]
    await driver.close()


async def test_an_honoured_idempotency_key_is_resent_unchanged_without_lookups() -> None:
    crm = FakeCRM(honour_idempotency=True)
    crm.fail("POST", "/contacts", 500, after_write=True, times=2)
    options = manifest(contacts=resource("contacts"))
    options["contacts"]["create"]["idempotency_header"] = "Idempotency-Key"
    driver = make_driver(options, crm.transport())
    result = await driver.create_record(C, ada())
    assert result.ok and len(crm.records["contacts"]) == 1
    posts = crm.calls("POST", "/contacts")
    assert len(posts) == 3
    keys = {r.headers["idempotency-key"] for r in posts}
    assert len(keys) == 1 and keys.pop().startswith("enginy-contact-")
    assert len(crm.calls("GET", "/contacts")) == 1  # the lookup before the first attempt only
    await driver.close()


async def test_a_second_create_of_one_external_id_writes_nothing() -> None:
    crm = FakeCRM()
    driver = make_driver(manifest(), crm.transport())
    first = await driver.create_record(C, ada())
    again = await driver.create_record(C, ada(first_name="Changed"))
    assert (again.crm_id, again.created) == (first.crm_id, False)
    assert len(crm.calls("POST", "/contacts")) == 1
    await driver.close()


async def test_concurrent_creates_of_one_external_id_make_one_record() -> None:
    crm = FakeCRM()
    driver = make_driver(manifest(), crm.transport())
    results = await asyncio.gather(*(driver.create_record(C, ada()) for _ in range(5)))
    assert len({r.crm_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len(crm.records["contacts"]) == 1
    await driver.close()


async def test_a_duplicate_answers_with_the_existing_record_which_gets_the_external_id() -> None:
    crm = FakeCRM()
    crm.records["contacts"]["77"] = {"id": "77", "email": "ADA1@example.com", "created_at": "x"}
    driver = make_driver(manifest(), crm.transport())
    result = await driver.create_record(C, ada())
    assert (result.crm_id, result.created, result.error) == ("77", False, None)
    assert crm.records["contacts"]["77"]["external_id"] == "ext-1"
    assert len(crm.records["contacts"]) == 1
    await driver.close()


async def test_a_rate_limited_create_waits_the_servers_time_and_resends() -> None:
    crm = FakeCRM()
    crm.fail("POST", "/contacts", 429, headers={"Retry-After": "7"})
    clock = VirtualClock()
    driver = make_driver(manifest(), crm.transport(), clock)
    result = await driver.create_record(C, ada())
    assert result.ok and len(crm.records["contacts"]) == 1
    assert any(s >= 7 for s in clock.sleeps)
    await driver.close()


async def test_an_invalid_record_fails_alone_in_its_batch() -> None:
    crm = FakeCRM()
    crm.fail("POST", "/contacts", 422)
    driver = make_driver(manifest(), crm.transport())
    results = await driver.create_records(C, [ada(1), ada(2)])
    errors = [r for r in results if r.error is not None]
    assert len(errors) == 1 and isinstance(errors[0].error, InvalidRecord)
    assert len(crm.records["contacts"]) == 1
    await driver.close()


def batched() -> dict[str, object]:
    options = manifest()
    contacts = options["contacts"]
    contacts["create"]["batch"] = {
        "request": {"method": "POST", "path": "/contacts/batch", "body": "=records"},
        "response": {"items": "data"},
        "max_size": 2,
    }
    contacts["find"]["externalId"].insert(
        0,
        {
            "type": "filter",
            "per_call": 50,
            "min_values": 2,
            "request": {
                "path": "/contacts",
                "query": {"external_ids": '=values | join(",")', "limit": 100},
            },
            "response": {"items": "data"},
        },
    )
    return options


async def test_a_native_batch_sends_max_size_records_per_call() -> None:
    crm = FakeCRM()
    driver = make_driver(batched(), crm.transport())
    results = await driver.create_records(C, [ada(n) for n in range(5)])
    assert [r.created for r in results] == [True] * 5
    assert len(crm.calls("POST", "/contacts/batch")) == 3  # 2 + 2 + 1
    assert len(crm.records["contacts"]) == 5
    await driver.close()


async def test_an_atomic_batch_refused_for_one_record_goes_record_by_record() -> None:
    crm = FakeCRM()
    crm.records["contacts"]["9"] = {"id": "9", "email": "ada1@example.com", "external_id": None}
    driver = make_driver(batched(), crm.transport())
    results = await driver.create_records(C, [ada(1), ada(2)])
    assert results[0].crm_id == "9" and results[0].created is False
    assert results[1].created is True
    assert len(crm.records["contacts"]) == 2
    await driver.close()


async def test_a_batch_whose_answer_is_lost_resends_only_what_did_not_land() -> None:
    crm = FakeCRM()
    crm.fail("POST", "/contacts/batch", None, after_write=True)
    driver = make_driver(batched(), crm.transport())
    results = await driver.create_records(C, [ada(1), ada(2)])
    assert all(r.ok and r.created for r in results)
    assert len(crm.records["contacts"]) == 2
    assert len(crm.calls("POST", "/contacts/batch")) == 1
    await driver.close()


async def test_find_keeps_exact_matches_of_a_contains_filter_and_the_oldest() -> None:
    crm = FakeCRM()
    store = crm.records["contacts"]
    store["2"] = {"id": "2", "email": "Ada@Example.com", "created_at": "2026-01-02T00:00:00Z"}
    store["1"] = {"id": "1", "email": "ada@example.com", "created_at": "2026-01-01T00:00:00Z"}
    store["3"] = {"id": "3", "email": "grandma.ada@example.com", "created_at": "2025-01-01"}
    driver = make_driver(manifest(), crm.transport())
    found = await driver.find_records(C, MatchKey("email", "email"), ["ada@example.com", "x@y"])
    assert set(found) == {"ada@example.com"}
    assert found["ada@example.com"].crm_id == "1"
    await driver.close()


async def test_update_is_partial_merges_the_extra_object_and_reports_unknown_ids() -> None:
    crm = FakeCRM()
    driver = make_driver(manifest(), crm.transport())
    made = await driver.create_record(C, ada(score=1, tier="gold"))
    assert made.crm_id is not None
    result = await driver.update_record(
        C, RecordUpdate(made.crm_id, {"score": 2}, frozenset({"first_name"}))
    )
    assert result.ok
    stored = crm.records["contacts"][made.crm_id]
    assert stored["extra"] == {"score": 2, "tier": "gold"}
    assert "first_name" not in stored and stored["email"] == "ada1@example.com"
    patch = json.loads(crm.calls("PATCH")[-1].content)
    assert patch == {"first_name": None, "extra": {"score": 2, "tier": "gold"}}
    missing = await driver.update_record(C, RecordUpdate("404", {"first_name": "X"}))
    assert isinstance(missing.error, NotFound)
    got = await driver.get_records(C, [made.crm_id, "404"])
    assert set(got) == {made.crm_id}
    assert got[made.crm_id].fields["score"] == 2 and got[made.crm_id].external_id == "ext-1"
    await driver.close()


async def test_an_upsert_by_external_id_needs_no_lookup_and_retries_safely() -> None:
    crm = FakeCRM()
    crm.fail("PUT", "/contacts/by-external-id/ext-1", 500, after_write=True)
    options = manifest()
    options["contacts"]["create"] = {
        "method": "PUT",
        "path": "/contacts/by-external-id/{external_id}",
        "body": "=fields",
        "response": {"record": "data"},
        "upsert": True,
    }
    driver = make_driver(options, crm.transport())
    first = await driver.create_record(C, ada())
    again = await driver.create_record(C, ada(first_name="Changed"))
    await driver.close()
    assert first.ok and again.crm_id == first.crm_id and again.created is False
    assert len(crm.records["contacts"]) == 1
    # The failed attempt and its retry; no GET look-up; the repeat wrote nothing.
    assert [r.method for r in crm.requests] == ["PUT", "PUT"]


async def test_fields_the_crm_has_no_column_for_are_named_when_dropped() -> None:
    crm = FakeCRM()
    options = manifest()
    options["contacts"]["unknown_fields"] = {"type": "drop"}
    driver = make_driver(options, crm.transport())
    result = await driver.create_record(C, ada(campaignOpens=5))
    await driver.close()
    assert result.ok and set(result.dropped) == {"campaignOpens"}
    assert "campaignOpens" not in json.dumps(crm.records["contacts"])


def with_list() -> dict[str, object]:
    options = manifest()
    contacts = options["contacts"]
    for key in ("externalId", "email"):
        contacts["find"][key].insert(0, {
            "type": "list", "min_values": 10, "max_records": 50,
            "request": {"path": "/contacts"}, "response": {"items": "data"},
            "pagination": {"type": "offset", "page_size": 20, "total": "total"},
            **({"match": "email"} if key == "email" else {}),
        })  # fmt: skip
    return options


async def test_a_batch_is_one_look_up_then_one_create_per_record() -> None:
    crm = FakeCRM()
    driver = make_driver(with_list(), crm.transport())
    results = await driver.create_records(C, [ada(n) for n in range(20)])
    assert all(r.ok and r.created for r in results)
    assert len(crm.calls("GET", "/contacts")) == 1 and len(crm.calls("POST", "/contacts")) == 20
    await driver.close()


async def test_a_complete_list_read_ends_the_search_and_a_longer_one_gives_way() -> None:
    crm = FakeCRM()
    for n in range(30):
        crm.records["contacts"][str(n)] = {
            "id": str(n),
            "email": f"p{n}@x.test",
            "external_id": f"e{n}",
        }
    driver = make_driver(with_list(), crm.transport())
    wanted = [f"e{n}" for n in range(0, 30, 2)] + [f"new{n}" for n in range(15)]
    found = await driver.find_records(C, MatchKey("externalId"), wanted)
    assert set(found) == {f"e{n}" for n in range(0, 30, 2)}
    assert len(crm.requests) == 2  # two pages of 20, no per-value filter for the 15 new ones
    for n in range(30, 60):  # now 60 records: more than the list's bound of 50
        crm.records["contacts"][str(n)] = {
            "id": str(n),
            "email": f"p{n}@x.test",
            "external_id": f"e{n}",
        }
    crm.requests.clear()
    found = await driver.find_records(C, MatchKey("externalId"), [f"e{n}" for n in range(50, 60)])
    assert len(found) == 10
    assert len(crm.calls("GET", "/contacts")) == 3 + 10  # 3 pages read, then 10 filters
    await driver.close()


class TestCoreOnlyManifest(CapabilitiesSuite):
    """A manifest with contacts and companies only declares no optional group, and every group
    it leaves out answers Unsupported (the front's 501)."""

    @pytest.fixture
    async def backend(self) -> AsyncIterator[Backend]:
        driver = make_driver(manifest(), FakeCRM().transport())
        try:
            yield driver
        finally:
            await driver.close()

    @pytest.mark.anyio
    async def test_activities_are_unsupported_too(self, backend: Backend) -> None:
        assert backend.capabilities == frozenset()
        with pytest.raises(Unsupported):
            await backend.create_activity(NewActivity(type="EMAIL"))


async def test_the_fronts_compound_and_any_extension_keys_are_compared_as_it_writes_them() -> None:
    crm = FakeCRM()
    store = crm.records["contacts"]
    store["1"] = {"id": "1", "first_name": " Ada ", "last_name": "LOVELACE", "domain": "acme.co.uk"}
    store["2"] = {
        "id": "2",
        "first_name": "Ada",
        "last_name": "Byron",
        "domain": "https://www.acme.es/",
    }
    options = manifest()
    for key in ("fullName", "site"):
        options["contacts"]["find"][key] = [{
            "type": "list", "request": {"path": "/contacts"}, "response": {"items": "data"},
            "pagination": {"type": "offset", "page_size": 50, "total": "total"},
        }]  # fmt: skip
    driver = make_driver(options, crm.transport())
    compound = MatchKey("fullName", None, "compound", ("first_name", "last_name"))
    found = await driver.find_records(C, compound, ['["ada","lovelace"]', '["ada","smith"]'])
    assert {v: r.crm_id for v, r in found.items()} == {'["ada","lovelace"]': "1"}
    site = MatchKey("site", "domain", "domain_any_extension")
    found = await driver.find_records(C, site, ["acme"])
    assert found["acme"].crm_id == "1"  # both hold "acme": the oldest (created first) wins
    await driver.close()
