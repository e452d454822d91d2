"""The HubSpot driver normalises what the portal stores with the front's own normalisers (the
driver never imports the front, and a key it stores must be the one the front looks up), and
builds its CONTAINS_TOKEN patterns only for open-ended spellings."""

from __future__ import annotations

import pytest

from adapter.matching import NORMALISERS
from backends.hubspot.keys import normalise_for_key, token_pattern

SAMPLES = [
    "",
    "   ",
    "Ana@Acme.IO ",
    "mailto: Bo@x.io",
    "https://www.Acme.co.uk/about?x=1#top",
    "HTTP://shop.acme.com.br:8080/",
    "user:pw@www.acme.es.",
    "acme",
    "www.acme",
    "http://uk.linkedin.com/in/Jane-Doe/?trk=x",
    "https://www.linkedin.com/company/Acme/",
    "//m.linkedin.com/in/bo#about",
    "linkedin.com/in/José",
    "+34 (600) 12-34-56",
    "ext. 12",
    "  \uff21\uff23\uff2d\uff25\u00a0Inc  ",  # full-width letters, a no-break space
    "Straße",
    "O'Brien   & Co",
]


@pytest.mark.parametrize("kind", sorted(NORMALISERS))
def test_the_driver_normalises_as_the_front(kind: str) -> None:
    front = NORMALISERS[kind]
    for sample in SAMPLES:
        assert normalise_for_key(kind, sample) == front(sample), (kind, sample)


def test_token_patterns_only_for_open_ended_spellings() -> None:
    assert token_pattern("linkedin", "linkedin.com/in/ana") == "*linkedin.com/in/ana*"
    assert token_pattern("domain_any_extension", "acme") == "*acme.*"
    assert token_pattern("domain", "acme.com") is None  # IN on its spellings
    assert token_pattern("linkedin", "linkedin.com/in/a b") is None  # not one token
    assert token_pattern("linkedin", "linkedin.com/in/*") is None  # a wildcard of its own
