"""Normalisers and match keys (contract Part A.7 and B.2 §2.3 / §2.6)."""

from __future__ import annotations

import pytest

from adapter.config import DEFAULT_MATCH_KEYS, DEFAULT_NORMALISER_BY_FIELD, KeySpec
from adapter.matching import (
    NORMALISERS,
    Matcher,
    normalise_domain,
    normalise_email,
    normalise_linkedin_url,
    normalise_name,
    normalise_phone,
)
from backends.base import Entity

NOT_STRINGS = [None, 42, 4.2, True, ["a@b.com"], {"email": "a@b.com"}, b"acme.com"]


@pytest.mark.parametrize("normaliser", sorted(NORMALISERS))
@pytest.mark.parametrize("value", NOT_STRINGS, ids=repr)
def test_every_normaliser_returns_none_for_non_strings(normaliser: str, value: object) -> None:
    assert NORMALISERS[normaliser](value) is None


@pytest.mark.parametrize("normaliser", sorted(NORMALISERS))
@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_every_normaliser_returns_none_for_blank_strings(normaliser: str, value: str) -> None:
    # An empty key must never be stored: it would match every other empty key.
    assert NORMALISERS[normaliser](value) is None


# -- email -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("john@acme.com", "john@acme.com"),
        ("John@ACME.com", "john@acme.com"),
        ("  john@acme.com  ", "john@acme.com"),
        ("\tJOHN@Acme.Com\n", "john@acme.com"),
        ("mailto:John@acme.com", "john@acme.com"),
        ("first.last+tag@sub.acme.co.uk", "first.last+tag@sub.acme.co.uk"),
    ],
)
def test_normalise_email(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


# -- LinkedIn URL ------------------------------------------------------------------------------

LINKEDIN_SAME_PROFILE = [
    "https://linkedin.com/in/johndoe",
    "http://linkedin.com/in/johndoe",
    "https://www.linkedin.com/in/johndoe",
    "http://www.linkedin.com/in/johndoe/",
    "https://www.linkedin.com/in/JohnDoe/",
    "https://www.linkedin.com/in/johndoe?trk=public_profile",
    "https://www.linkedin.com/in/johndoe/?originalSubdomain=uk",
    "https://www.linkedin.com/in/johndoe#about",
    "www.linkedin.com/in/johndoe",
    "linkedin.com/in/johndoe",
    "  LinkedIn.com/in/johndoe//  ",
    "HTTPS://WWW.LINKEDIN.COM/IN/JOHNDOE",
    "https://uk.linkedin.com/in/johndoe",
    "https://www.linkedin.com:443/in/johndoe",
]


@pytest.mark.parametrize("raw", LINKEDIN_SAME_PROFILE)
def test_linkedin_url_variants_normalise_to_one_key(raw: str) -> None:
    assert normalise_linkedin_url(raw) == "linkedin.com/in/johndoe"


def test_linkedin_company_page_keeps_its_path() -> None:
    assert (
        normalise_linkedin_url("https://www.linkedin.com/company/Acme/about/")
        == "linkedin.com/company/acme/about"
    )


def test_linkedin_distinct_profiles_stay_distinct() -> None:
    assert normalise_linkedin_url("linkedin.com/in/john") != normalise_linkedin_url(
        "linkedin.com/in/johndoe"
    )


@pytest.mark.parametrize("raw", ["https://", "https:///", "?x=1", "/"])
def test_linkedin_url_without_content_is_not_a_key(raw: str) -> None:
    assert normalise_linkedin_url(raw) is None


# -- domain ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # The three examples of Enginy's docs.
        ("https://www.acme.com/about", "acme.com"),
        ("WWW.ACME.COM", "acme.com"),
        ("acme.com", "acme.com"),
        # Scheme, port, trailing dot, query string, fragment, trailing slash, spaces.
        ("http://acme.com", "acme.com"),
        ("https://acme.com/", "acme.com"),
        ("acme.com:8080", "acme.com"),
        ("https://www.acme.com:443/about?x=1", "acme.com"),
        ("acme.com.", "acme.com"),
        ("www.acme.com.:443", "acme.com"),
        ("acme.com?utm_source=x", "acme.com"),
        ("acme.com#top", "acme.com"),
        ("  Acme.COM  ", "acme.com"),
        ("//acme.com/path", "acme.com"),
        # An email pasted into a domain field, or credentials in a URL, name the host.
        ("john@acme.com", "acme.com"),
        ("https://user:pw@www.acme.com/", "acme.com"),
        # Sub-domains other than www. are a different site.
        ("shop.acme.com", "shop.acme.com"),
        ("https://www2.acme.com", "www2.acme.com"),
    ],
)
def test_normalise_domain(raw: str, expected: str) -> None:
    assert normalise_domain(raw) == expected


@pytest.mark.parametrize("raw", ["https://", "www.", ".", "http:///about", ":8080"])
def test_domain_without_host_is_not_a_key(raw: str) -> None:
    assert normalise_domain(raw) is None


# -- name --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Acme Inc", "acme inc"),
        ("  ACME   Inc  ", "acme inc"),
        ("Acme\tInc\n", "acme inc"),
        ("Acme\u00a0Inc", "acme inc"),  # non-breaking space
        ("\uff21\uff23\uff2d\uff25 Inc", "acme inc"),  # full-width letters
        ("Straße GmbH", "strasse gmbh"),
    ],
)
def test_normalise_name(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


# -- phone -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1-555-0123", "+15550123"),
        ("+1 (555) 012-3456", "+15550123456"),
        ("555.012.3456", "5550123456"),
        ("  +34 600 11 22 33 ", "+34600112233"),
        ("(555) 0123", "5550123"),
        ("0044 20 7946 0958", "00442079460958"),
    ],
)
def test_normalise_phone(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize("raw", ["+", "n/a", "---", "+ ( ) -"])
def test_phone_without_digits_is_not_a_key(raw: str) -> None:
    assert normalise_phone(raw) is None


def test_a_plus_inside_the_number_is_not_kept() -> None:
    assert normalise_phone("555+0123") == "5550123"


# -- defaults ----------------------------------------------------------------------------------


def test_default_match_keys_follow_the_contract_priority() -> None:
    assert [k.field for k in DEFAULT_MATCH_KEYS[Entity.CONTACT]] == ["email", "linkedinUrl"]
    assert [k.field for k in DEFAULT_MATCH_KEYS[Entity.COMPANY]] == [
        "domain",
        "linkedinUrl",
        "name",
    ]


def test_default_normalisers_by_field_exist() -> None:
    assert set(DEFAULT_NORMALISER_BY_FIELD.values()) <= set(NORMALISERS)
    assert DEFAULT_NORMALISER_BY_FIELD["mobilePhone"] == "phone"


# -- Matcher -----------------------------------------------------------------------------------


def test_match_keys_for_a_create_include_every_present_key() -> None:
    matcher = Matcher()
    keys = matcher.match_keys(
        Entity.CONTACT,
        {"email": " John@Acme.com", "linkedinUrl": "https://www.linkedin.com/in/JD/", "x": 1},
    )
    assert keys == {"email": "john@acme.com", "linkedinUrl": "linkedin.com/in/jd"}


def test_match_keys_skip_absent_and_unnormalisable_fields() -> None:
    matcher = Matcher()
    assert matcher.match_keys(Entity.CONTACT, {"email": "  ", "linkedinUrl": None}) == {}
    assert matcher.match_keys(Entity.COMPANY, {"domain": "https://www.acme.com/about"}) == {
        "domain": "acme.com"
    }


def test_keys_for_keeps_the_configured_order() -> None:
    keys = (KeySpec("mobilePhone", "phone"), KeySpec("email", "email"))
    matcher = Matcher({Entity.CONTACT: keys})
    assert matcher.keys_for(Entity.CONTACT) == keys
    assert matcher.keys_for(Entity.COMPANY) == ()


def test_custom_key_uses_its_normaliser() -> None:
    matcher = Matcher({Entity.CONTACT: (KeySpec("mobilePhone", "phone"),)})
    assert matcher.match_keys(Entity.CONTACT, {"mobilePhone": "+1 (555) 0123"}) == {
        "mobilePhone": "+15550123"
    }


def test_changed_match_keys_only_names_touched_fields() -> None:
    matcher = Matcher()
    changed = matcher.changed_match_keys(
        Entity.COMPANY, {"domain": "WWW.NEW.COM", "industry": "x"}, cleared=["name"]
    )
    # linkedinUrl untouched → absent (the driver keeps the stored key).
    assert changed == {"domain": "new.com", "name": None}


def test_changed_match_keys_removes_a_key_set_to_an_unnormalisable_value() -> None:
    matcher = Matcher()
    assert matcher.changed_match_keys(Entity.CONTACT, {"email": "   "}) == {"email": None}


def test_matcher_normalise_applies_the_key_normaliser() -> None:
    matcher = Matcher()
    spec = matcher.keys_for(Entity.COMPANY)[0]
    assert matcher.normalise(spec, "https://www.acme.com/about") == "acme.com"


@pytest.mark.parametrize(
    "keys",
    [
        (KeySpec("email", "nope"),),
        (KeySpec("externalId", "email"),),
        (KeySpec("email", "email"), KeySpec("email", "email")),
    ],
)
def test_matcher_rejects_bad_key_specs(keys: tuple[KeySpec, ...]) -> None:
    with pytest.raises(ValueError):
        Matcher({Entity.CONTACT: keys})
