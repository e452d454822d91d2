"""Mapped mode on a table shared by people and organisations (integer keys): row filters,
configured values (constants, timestamps, templates, generated values, values read from the
database), a direct child table of e-mails, an extension table, the extra-fields side table,
and a foreign-key association whose values read the linked company. SQLite, PostgreSQL,
MariaDB."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from backends.base import (
    EXTERNAL_ID,
    AssociationPair,
    Entity,
    MatchKey,
    NewRecord,
    NotFound,
    RecordUpdate,
)

from .conftest import OpenBackend
from .mapped_schemas import Schema, party_options, party_tables, schema

pytestmark = pytest.mark.anyio

EMAIL = MatchKey("email", "email")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
async def party(request: pytest.FixtureRequest) -> AsyncIterator[Schema]:
    url = request.getfixturevalue(f"{request.param}_url")
    async with schema(url, party_tables) as s:
        await s.execute(
            sa.insert(s.t("location_type")).values(
                [
                    {"id": 1, "name": "Home", "is_default": 0},
                    {"id": 7, "name": "Work", "is_default": 1},
                ]
            )
        )
        yield s


def ada(ext: str = "ada", **more: Any) -> NewRecord:
    fields = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "job_title": "CTO",
        "email": "Ada@Acme.example",
        "linkedin": "https://linkedin.com/in/ada",
        "campaignEngagementStatus": "OPENED",
        **more,
    }
    return NewRecord(ext, fields, {"email": "ada@acme.example"})


async def test_a_created_person_lands_as_the_crm_writes_people(
    party: Schema, open_backend: OpenBackend
) -> None:
    async with open_backend(party.url, **party_options(party)) as backend:
        [made] = await backend.create_records(Entity.CONTACT, [ada()])
        assert made.ok and made.created, made.error
        [row] = await party.rows("party")
        assert row["id"] == int(made.crm_id or 0)
        # the table's discriminator and soft-delete flag (equality conditions of ``where``)
        assert (row["kind"], row["is_deleted"]) == ("person", 0)
        # templates over the record's fields, a generated hash, timestamps
        assert (row["display_name"], row["sort_name"]) == ("Ada Lovelace", "Lovelace, Ada")
        assert re.fullmatch(r"[0-9a-f]{32}", row["hash"])
        assert row["created_at"] is not None and row["modified_at"] is not None
        assert row["job_title"] == "CTO"
        # the e-mail in the child table, primary, with the default location read at open
        [email] = await party.rows("email")
        assert (email["party_id"], email["email"], email["is_primary"], email["location"]) == (
            row["id"],
            "Ada@Acme.example",
            1,
            7,
        )
        [ext] = await party.rows("party_ext")
        assert (ext["party_id"], ext["linkedin"]) == (row["id"], "https://linkedin.com/in/ada")
        # read back: the child's value, the extension's column, the side table's field
        got = (await backend.get_records(Entity.CONTACT, [made.crm_id or ""]))[made.crm_id]
        assert got.fields["email"] == "Ada@Acme.example"
        assert got.fields["linkedin"] == "https://linkedin.com/in/ada"
        assert got.fields["campaignEngagementStatus"] == "OPENED"
        assert got.external_id == "ada"
        # idempotent: the same external id makes nothing new
        [again] = await backend.create_records(Entity.CONTACT, [ada(job_title="CEO")])
        assert (again.crm_id, again.created) == (made.crm_id, False)
        assert len(await party.rows("party")) == 1
        assert len(await party.rows("email")) == 1


async def test_filters_keep_other_kinds_and_deleted_rows_out(
    party: Schema, open_backend: OpenBackend
) -> None:
    t, e = party.t("party"), party.t("email")
    await party.execute(
        sa.insert(t).values(id=10, kind="person", first_name="Pre", last_name="Existing"),
        sa.insert(t).values(id=11, kind="person", first_name="Gone", is_deleted=1),
        sa.insert(t).values(id=12, kind="org", org_name="Acme", website="www.acme.example"),
        sa.insert(e).values(
            party_id=10, email="Pre.Existing@Acme.example", is_primary=1, location=1
        ),
        sa.insert(e).values(party_id=10, email="pre@home.example", is_primary=0, location=1),
        sa.insert(e).values(party_id=11, email="gone@acme.example", is_primary=1, location=1),
    )
    async with open_backend(party.url, **party_options(party)) as backend:
        # rows the adapter did not write are found through the child table, any case
        found = await backend.find_records(
            Entity.CONTACT,
            EMAIL,
            ["pre.existing@acme.example", "pre@home.example", "gone@acme.example"],
        )
        assert {v: r.crm_id for v, r in found.items()} == {
            "pre.existing@acme.example": "10",
            "pre@home.example": "10",  # a secondary address finds its person too
        }
        # the record shows its primary address
        assert found["pre@home.example"].fields["email"] == "Pre.Existing@Acme.example"
        # a soft-deleted person and an organisation are not contacts
        assert set(await backend.get_records(Entity.CONTACT, ["10", "11", "12"])) == {"10"}
        assert set(await backend.get_records(Entity.COMPANY, ["10", "11", "12"])) == {"12"}
        # updates never touch them
        results = await backend.update_records(
            Entity.CONTACT,
            [RecordUpdate("11", {"job_title": "x"}), RecordUpdate("12", {"job_title": "x"})],
        )
        assert all(isinstance(r.error, NotFound) for r in results)
        rows = {r["id"]: r for r in await party.rows("party")}
        assert rows[11]["job_title"] is None and rows[12]["job_title"] is None
        assert (await backend.counts())["contacts"] == 1
        # a company sync never returns a person, by any key
        domain = MatchKey("domain", "website")
        assert set(await backend.find_records(Entity.COMPANY, domain, ["acme.example"])) == {
            "acme.example"
        }
        name = await backend.find_records(Entity.COMPANY, MatchKey("name", "org_name"), ["pre"])
        assert name == {}


async def test_an_update_recomputes_templates_and_replaces_the_primary_email(
    party: Schema, open_backend: OpenBackend
) -> None:
    async with open_backend(party.url, **party_options(party)) as backend:
        [made] = await backend.create_records(Entity.CONTACT, [ada()])
        crm_id = made.crm_id or ""
        await party.execute(
            sa.insert(party.t("email")).values(
                party_id=int(crm_id), email="second@acme.example", is_primary=0, location=1
            )
        )
        before = (await party.rows("party"))[0]["modified_at"]
        [done] = await backend.update_records(
            Entity.CONTACT,
            [
                RecordUpdate(
                    crm_id,
                    {"last_name": "King", "email": "ada@king.example"},
                    match_keys={"email": "ada@king.example"},
                )
            ],
        )
        assert done.ok, done.error
        [row] = await party.rows("party")
        # the stored first name and the new last name
        assert (row["display_name"], row["sort_name"]) == ("Ada King", "King, Ada")
        assert row["modified_at"] >= before
        emails = {r["email"]: r["is_primary"] for r in await party.rows("email")}
        assert emails == {"ada@king.example": 1, "second@acme.example": 0}
        # sync by the new address finds it, by the old one no longer
        assert set(await backend.find_records(Entity.CONTACT, EMAIL, ["ada@king.example"])) == {
            "ada@king.example"
        }
        assert await backend.find_records(Entity.CONTACT, EMAIL, ["ada@acme.example"]) == {}
        # a field only the side table holds, then cleared, and the e-mail cleared
        [cleared] = await backend.update_records(
            Entity.CONTACT,
            [
                RecordUpdate(
                    crm_id, {"score": 5}, clear=frozenset({"email", "campaignEngagementStatus"})
                )
            ],
        )
        assert cleared.ok, cleared.error
        emails = {r["email"]: r["is_primary"] for r in await party.rows("email")}
        assert emails == {"second@acme.example": 0}
        got = (await backend.get_records(Entity.CONTACT, [crm_id]))[crm_id].fields
        assert "campaignEngagementStatus" not in got
        assert got["score"] == 5  # the extension table's column
        # a template whose inputs the update does not touch is not rewritten
        await party.execute(sa.update(party.t("party")).values(display_name="Countess Lovelace"))
        await backend.update_records(Entity.CONTACT, [RecordUpdate(crm_id, {"job_title": "CEO"})])
        assert (await party.rows("party"))[0]["display_name"] == "Countess Lovelace"


async def test_a_foreign_key_association_copies_the_company_name(
    party: Schema, open_backend: OpenBackend
) -> None:
    async with open_backend(party.url, **party_options(party)) as backend:
        [person] = await backend.create_records(Entity.CONTACT, [ada()])
        [org] = await backend.create_records(
            Entity.COMPANY, [NewRecord("acme", {"org_name": "Acme Ltd", "website": "acme.example"})]
        )
        rows = {r["id"]: r for r in await party.rows("party")}
        org_row = rows[int(org.crm_id or 0)]
        assert (org_row["kind"], org_row["display_name"]) == ("org", "Acme Ltd")
        [linked] = await backend.create_associations(
            [AssociationPair(person.crm_id or "", org.crm_id or "")]
        )
        assert linked.ok, linked.error
        rows = {r["id"]: r for r in await party.rows("party")}
        person_row = rows[int(person.crm_id or 0)]
        assert (person_row["employer_id"], person_row["org_name"]) == (org_row["id"], "Acme Ltd")
        companies = await backend.list_associated(Entity.CONTACT, person.crm_id or "")
        assert [c.crm_id for c in companies] == [org.crm_id]
        by_ext = await backend.find_records(Entity.COMPANY, MatchKey(EXTERNAL_ID), ["acme"])
        assert by_ext["acme"].crm_id == org.crm_id


async def test_a_field_that_only_feeds_a_template_is_reported_not_stored(
    party: Schema, open_backend: OpenBackend
) -> None:
    options = party_options(party)
    people = options["contacts"]
    people["extra_fields"] = "reject"
    people["on_create"]["display_name"] = {"template": "{nickname} {last_name}"}
    async with open_backend(party.url, **options) as backend:
        [made] = await backend.create_records(
            Entity.CONTACT, [NewRecord("n", {"nickname": "Ace", "last_name": "Lovelace"})]
        )
        assert made.ok and set(made.dropped) == {"nickname"}
        assert "only feeds configured values" in made.dropped["nickname"]
        [row] = await party.rows("party")
        assert row["display_name"] == "Ace Lovelace"
        # a field that feeds nothing and has no column is still refused
        [refused] = await backend.create_records(
            Entity.CONTACT, [NewRecord("m", {"shoe_size": 44})]
        )
        assert refused.error is not None and "shoe_size" in refused.error.message
