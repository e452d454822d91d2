"""Field mapping both ways, aliases, unmapped policies and sync-back (contract Part A.8)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from adapter import mapping as mapping_module
from adapter.config import ConfigError, MappingConfig, UnmappedPolicy
from adapter.mapping import (
    FIELD_ALIASES,
    FieldMapper,
    UnmappedField,
    build_mappers,
    canonical_name,
)
from backends.base import Entity


@pytest.fixture(autouse=True)
def _fresh_drop_warnings() -> Iterator[None]:
    # The "one warning per field name" memory is process-wide by design; isolate each test.
    mapping_module._warned_dropped.clear()
    yield
    mapping_module._warned_dropped.clear()


CONTACT_MAP = {"email": "email_address", "firstName": "first_name"}


# -- to_backend --------------------------------------------------------------------------------


def test_to_backend_renames_mapped_fields_and_keeps_unmapped_by_default() -> None:
    mapper = FieldMapper(CONTACT_MAP, UnmappedPolicy.KEEP)
    out = mapper.to_backend(
        {"email": "a@b.com", "firstName": "Ann", "genesy_engagement_status": "Replied"}
    )
    assert out == {
        "email_address": "a@b.com",
        "first_name": "Ann",
        "genesy_engagement_status": "Replied",
    }


def test_to_backend_does_not_modify_its_input() -> None:
    fields = {"email": "a@b.com"}
    FieldMapper(CONTACT_MAP).to_backend(fields)
    assert fields == {"email": "a@b.com"}


def test_to_backend_leaves_the_envelope_out() -> None:
    mapper = FieldMapper(CONTACT_MAP, UnmappedPolicy.REJECT)
    # externalId/crmId identify the record; even under "reject" they are not fields.
    assert mapper.to_backend({"externalId": "e1", "crmId": "c1", "email": "x"}) == {
        "email_address": "x"
    }


def test_to_backend_keeps_values_of_any_type() -> None:
    mapper = FieldMapper({}, UnmappedPolicy.KEEP)
    value = {"nested": [1, 2, None]}
    out = mapper.to_backend({"n": 5, "flag": False, "none": None, "obj": value})
    assert out == {"n": 5, "flag": False, "none": None, "obj": value}


def test_drop_policy_leaves_unmapped_out_and_warns_once_per_field_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mapper = FieldMapper(CONTACT_MAP, UnmappedPolicy.DROP)
    with caplog.at_level(logging.WARNING, logger="adapter.mapping"):
        for _ in range(3):
            out = mapper.to_backend({"email": "a@b.com", "campaigns": "c", "leadCountry": "ES"})
            assert out == {"email_address": "a@b.com"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    named = sorted(str(r.args[0]) for r in warnings if isinstance(r.args, tuple))
    assert named == ["campaigns", "leadCountry"]


def test_drop_warning_names_the_field_but_not_its_value(caplog: pytest.LogCaptureFixture) -> None:
    mapper = FieldMapper({}, UnmappedPolicy.DROP)
    with caplog.at_level(logging.WARNING, logger="adapter.mapping"):
        mapper.to_backend({"secretNote": "do-not-log-me"})
    assert "secretNote" in caplog.text
    assert "do-not-log-me" not in caplog.text


def test_reject_policy_raises_naming_every_unmapped_field() -> None:
    mapper = FieldMapper(CONTACT_MAP, UnmappedPolicy.REJECT)
    with pytest.raises(UnmappedField) as info:
        mapper.to_backend({"email": "a@b.com", "campaigns": "c", "leadCountry": "ES"})
    assert info.value.fields == ("campaigns", "leadCountry")
    assert "campaigns" in str(info.value) and "leadCountry" in str(info.value)


def test_reject_policy_accepts_a_record_with_only_mapped_fields() -> None:
    mapper = FieldMapper(CONTACT_MAP, UnmappedPolicy.REJECT)
    assert mapper.to_backend({"firstName": "Ann"}) == {"first_name": "Ann"}


@pytest.mark.parametrize(
    "fields",
    [
        {"email_address": "custom", "email": "real@b.com"},
        {"email": "real@b.com", "email_address": "custom"},
    ],
)
def test_kept_unmapped_field_never_overwrites_a_mapped_one(fields: dict[str, str]) -> None:
    # Enginy sends "email_address" as a custom field while "email" maps onto that column.
    mapper = FieldMapper(CONTACT_MAP, UnmappedPolicy.KEEP)
    assert mapper.to_backend(fields) == {"email_address": "real@b.com"}
    # Alone, it is still left out: stored there it would read back as "email".
    assert mapper.to_backend({"email_address": "custom"}) == {}


@pytest.mark.parametrize(
    "stored",
    [
        {"email": "stale", "email_address": "real@b.com"},
        {"email_address": "real@b.com", "email": "stale"},
    ],
)
def test_mapped_field_wins_over_a_backend_field_with_its_enginy_name(
    stored: dict[str, str],
) -> None:
    mapper = FieldMapper(CONTACT_MAP, UnmappedPolicy.KEEP)
    assert mapper.from_backend(stored) == {"email": "real@b.com"}


def test_without_any_mapping_keep_returns_a_copy() -> None:
    stored = {"a": 1}
    out = FieldMapper({}, UnmappedPolicy.KEEP).from_backend(stored)
    assert out == stored and out is not stored
    assert FieldMapper({}, UnmappedPolicy.DROP).from_backend(stored) == {}


# -- aliases -----------------------------------------------------------------------------------


def test_employee_count_is_number_of_employees() -> None:
    assert FIELD_ALIASES["employeeCount"] == "numberOfEmployees"
    assert canonical_name("employeeCount") == "numberOfEmployees"
    assert canonical_name("numberOfEmployees") == "numberOfEmployees"


def test_alias_is_stored_under_the_canonical_name() -> None:
    mapper = FieldMapper({}, UnmappedPolicy.KEEP)
    assert mapper.to_backend({"employeeCount": 500}) == {"numberOfEmployees": 500}


def test_alias_follows_the_mapping_of_its_canonical_name() -> None:
    mapper = FieldMapper({"numberOfEmployees": "employees"}, UnmappedPolicy.REJECT)
    assert mapper.to_backend({"employeeCount": 500}) == {"employees": 500}
    assert mapper.backend_name("employeeCount") == "employees"


def test_mapping_written_with_the_alias_applies_to_both_spellings() -> None:
    mapper = FieldMapper({"employeeCount": "employees"}, UnmappedPolicy.REJECT)
    assert mapper.to_backend({"numberOfEmployees": 7}) == {"employees": 7}
    assert mapper.from_backend({"employees": 7}) == {"numberOfEmployees": 7}


def test_canonical_spelling_wins_when_both_are_sent() -> None:
    mapper = FieldMapper({}, UnmappedPolicy.KEEP)
    out = mapper.to_backend({"employeeCount": 1, "numberOfEmployees": 2})
    assert out == {"numberOfEmployees": 2}


# -- from_backend ------------------------------------------------------------------------------


def test_from_backend_renames_back_to_enginy_names() -> None:
    mapper = FieldMapper(CONTACT_MAP, UnmappedPolicy.KEEP)
    stored = {"email_address": "a@b.com", "first_name": "Ann", "leadScore": 85}
    assert mapper.from_backend(stored) == {"email": "a@b.com", "firstName": "Ann", "leadScore": 85}


def test_round_trip_under_keep_returns_what_enginy_sent() -> None:
    mapper = FieldMapper(CONTACT_MAP, UnmappedPolicy.KEEP)
    sent = {"email": "a@b.com", "firstName": "Ann", "campaignOpens": 5}
    assert mapper.from_backend(mapper.to_backend(sent)) == sent


@pytest.mark.parametrize("policy", [UnmappedPolicy.DROP, UnmappedPolicy.REJECT])
def test_from_backend_hides_backend_only_fields_unless_keep(policy: UnmappedPolicy) -> None:
    mapper = FieldMapper(CONTACT_MAP, policy)
    stored = {"email_address": "a@b.com", "hs_object_id": "123", "createdate": "2024"}
    assert mapper.from_backend(stored) == {"email": "a@b.com"}


def test_sync_back_restricts_properties_to_the_listed_fields() -> None:
    mapper = FieldMapper(CONTACT_MAP, UnmappedPolicy.KEEP, sync_back=["email", "leadScore"])
    stored = {"email_address": "a@b.com", "first_name": "Ann", "leadScore": 85, "x": 1}
    assert mapper.from_backend(stored) == {"email": "a@b.com", "leadScore": 85}


def test_sync_back_skips_fields_the_record_does_not_hold() -> None:
    mapper = FieldMapper(CONTACT_MAP, UnmappedPolicy.DROP, sync_back=["email", "leadScore"])
    assert mapper.from_backend({"first_name": "Ann"}) == {}


def test_sync_back_accepts_aliases() -> None:
    mapper = FieldMapper({"numberOfEmployees": "employees"}, sync_back=["employeeCount"])
    assert mapper.from_backend({"employees": 10, "other": 1}) == {"numberOfEmployees": 10}


def test_two_enginy_fields_on_one_backend_field_is_an_error() -> None:
    with pytest.raises(ValueError, match="both map to 'mail'"):
        FieldMapper({"email": "mail", "workEmail": "mail"})


def test_backend_and_enginy_name_lookups() -> None:
    mapper = FieldMapper(CONTACT_MAP)
    assert mapper.backend_name("email") == "email_address"
    assert mapper.backend_name("unmapped") == "unmapped"
    assert mapper.enginy_name("email_address") == "email"
    assert mapper.enginy_name("other") == "other"


# -- build_mappers -----------------------------------------------------------------------------


def test_build_mappers_lets_yaml_override_driver_defaults_field_by_field() -> None:
    config = MappingConfig.model_validate(
        {
            "contacts": {"fields": {"email": "work_email"}, "unmapped": "drop"},
            "companies": {"sync_back": ["domain"]},
        }
    )
    defaults = {
        Entity.CONTACT: {"email": "email", "firstName": "firstname"},
        Entity.COMPANY: {"domain": "website"},
    }
    mappers = build_mappers(config, defaults)
    contact = mappers[Entity.CONTACT]
    assert contact.fields == {"email": "work_email", "firstName": "firstname"}
    assert contact.unmapped is UnmappedPolicy.DROP
    company = mappers[Entity.COMPANY]
    assert company.to_backend({"domain": "acme.com"}) == {"website": "acme.com"}
    assert company.from_backend({"website": "acme.com", "name": "Acme"}) == {"domain": "acme.com"}


def test_build_mappers_without_defaults_or_yaml_keeps_everything() -> None:
    mappers = build_mappers(MappingConfig(), {})
    assert set(mappers) == {Entity.CONTACT, Entity.COMPANY}
    assert mappers[Entity.CONTACT].to_backend({"anything": 1}) == {"anything": 1}


def test_build_mappers_reports_a_collision_with_its_yaml_path() -> None:
    config = MappingConfig.model_validate({"companies": {"fields": {"industry": "website"}}})
    with pytest.raises(ConfigError) as info:
        build_mappers(config, {Entity.COMPANY: {"domain": "website"}})
    assert str(info.value).startswith("mapping.companies.fields: ")
