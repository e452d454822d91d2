"""Match keys on HubSpot: the normalisers, the keys the driver holds in properties of its own,
and how a key's field is searched for records that do not hold them.

HubSpot's search index lags writes, and ``IN`` filters match whole (lower-cased) strings, so a
key searched on the field itself misses a record created a moment ago and a URL stored as
``http://uk.linkedin.com/in/ana/``. The driver therefore keeps the *normalised* key in a unique
property of its own, written with every create and update, and reads it back with
``batch/read`` by that property - HubSpot's primary store, one call per 100 values, no search
budget:

* ``linkedinUrl`` → ``enginy_linkedin_key`` (``linkedin.com/in/ana``; contacts, companies);
* ``domain`` → ``enginy_domain_key`` (``acme.co.uk``; companies);
* ``domain`` under ``domain_any_extension`` → ``enginy_domain_name_key`` (``acme``; companies,
  made on first use). See :mod:`.owned`.

Records that hold no key (made by hand in HubSpot, by HubSpot itself or by another
integration) are found by a search on the field, each candidate confirmed by the front's own
normaliser (:func:`backends.keys.normalise_for_key`): an ``IN`` of the value's usual spellings
for domains, e-mails, names and phones; ``CONTAINS_TOKEN`` with ``*`` wildcards
(:func:`token_pattern`) for LinkedIn URLs and domains under any extension, whose hand-typed
spellings are open-ended.
"""

from __future__ import annotations

from backends.keys import key_kind, normalise_for_key

__all__ = [
    "TOKEN_KINDS",
    "fallback_spellings",
    "key_kind",
    "normalise_for_key",
    "token_pattern",
]

#: Kinds whose fallback search is ``CONTAINS_TOKEN`` (see :func:`token_pattern`).
TOKEN_KINDS = frozenset({"linkedin", "domain_any_extension"})


def fallback_spellings(kind: str, value: str) -> list[str]:
    """Spellings of a normalised key worth an ``IN`` search on the field itself (lower-case, as
    HubSpot requires), for records that carry no key property. The results are re-normalised
    before matching, so a near miss never matches the wrong record."""
    value = value.lower()
    if kind == "domain":
        return [value, f"www.{value}"]
    return [value]


def token_pattern(kind: str, value: str) -> str | None:
    """The ``CONTAINS_TOKEN`` value that finds every spelling of a normalised key, or ``None``
    when the value cannot be one token (white space, or a ``*`` of its own).

    HubSpot's search takes ``*`` as "any characters" in a ``CONTAINS_TOKEN`` value (its docs
    find every ``@hubspot.com`` address with ``*@hubspot.com``: an address is one token) and
    ignores case there. So ``*linkedin.com/in/ana*`` finds ``http://uk.linkedin.com/in/Ana/?trk=x``
    and ``https://www.linkedin.com/in/ana/``; ``*acme.*`` finds ``acme.com``, ``www.acme.es`` and
    ``shop.acme.co.uk``. It finds more than that (``linkedin.com/in/ana-maria``,
    ``notacme.com``): every candidate is normalised again and kept only when equal.
    """
    if kind not in TOKEN_KINDS or not value or "*" in value:
        return None
    if any(ch.isspace() for ch in value):
        return None
    return f"*{value}*" if kind == "linkedin" else f"*{value}.*"
