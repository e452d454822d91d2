"""Drivers normalise what a CRM stores as typed with ``backends.keys.normalise_for_key``: for
every kind it gives what the front's normaliser of that name gives (the key it hands drivers)."""

from __future__ import annotations

import pytest

from adapter.matching import NORMALISERS
from backends.keys import NORMALISER_BY_KEY, key_kind, normalise_for_key

SAMPLES = {
    "email": [" John@ACME.com ", "mailto:Ada@Example.org", "", "  ", "plain"],
    "linkedin": [
        "https://www.linkedin.com/in/JohnDoe/?trk=x",
        "uk.linkedin.com/in/ana/",
        "HTTP://LinkedIn.com/company/Acme#about",
        "linkedin.com:443/in/x",
        "",
    ],
    "domain": [
        "https://www.Acme.com/about",
        "WWW.ACME.COM",
        "acme.com.:443",
        "john@acme.com",
        "//cdn.acme.io?x=1",
        "",
    ],
    "name": ["  ACME\tInc ", "Straße", "\uff21\uff23\uff2d\uff25", "a\u00a0b", ""],
    "phone": ["+1 (555) 012-3456", "555.012", "no digits", ""],
    "domain_any_extension": [
        "https://shop.acme.co.uk/about",
        "www.acme.es",
        "acme.com",
        "localhost",
        "a.b.c.com.br",
        "",
    ],
}


@pytest.mark.parametrize(
    ("kind", "value"), [(kind, value) for kind, values in SAMPLES.items() for value in values]
)
def test_normalise_for_key_is_the_fronts_normaliser(kind: str, value: str) -> None:
    assert normalise_for_key(kind, value) == NORMALISERS[kind](value)


def test_key_names_map_to_the_fronts_default_normalisers() -> None:
    assert NORMALISER_BY_KEY["linkedinUrl"] == key_kind("linkedinUrl") == "linkedin"
    assert NORMALISER_BY_KEY["domain"] == key_kind("domain") == "domain"
    assert NORMALISER_BY_KEY["email"] == key_kind("email") == "email"
