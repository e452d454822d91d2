"""The drivers' copy of the key normalisers (backends/keys.py) gives what the front's
(adapter/matching.py) gives, so a value a CRM stores as typed compares equal to the key the
front hands the driver."""

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
def test_the_two_copies_agree(kind: str, value: str) -> None:
    assert normalise_for_key(kind, value) == NORMALISERS[kind](value)


def test_key_names_map_to_the_fronts_default_normalisers() -> None:
    assert NORMALISER_BY_KEY["linkedinUrl"] == key_kind("linkedinUrl") == "linkedin"
    assert NORMALISER_BY_KEY["domain"] == key_kind("domain") == "domain"
    assert NORMALISER_BY_KEY["email"] == key_kind("email") == "email"
