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
integration) are found by a search on the field, each candidate confirmed by the same
normaliser (:func:`normalise_for_key`): an ``IN`` of the value's usual spellings for domains,
e-mails, names and phones; ``CONTAINS_TOKEN`` with ``*`` wildcards (:func:`token_pattern`) for
LinkedIn URLs and domains under any extension, whose hand-typed spellings are open-ended.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

__all__ = [
    "TOKEN_KINDS",
    "fallback_spellings",
    "key_kind",
    "normalise_for_key",
    "token_pattern",
]

#: Kinds whose fallback search is ``CONTAINS_TOKEN`` (see :func:`token_pattern`).
TOKEN_KINDS = frozenset({"linkedin", "domain_any_extension"})

_SCHEME = re.compile(r"^(?:[a-z][a-z0-9+.\-]*:)?//", re.IGNORECASE)
_PORT = re.compile(r":\d*$")

# Second-level labels under a country code that belong to the extension (acme.co.uk).
_SECOND_LEVEL = frozenset(
    {"co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc", "gob", "nic", "or", "ne",
     "go", "gv", "nom", "biz", "info", "mil", "sch"}
)  # fmt: skip


def key_kind(key_name: str, normaliser: str | None = None) -> str:
    """The normaliser of a key: the one the front names (``MatchKey.normaliser``), else guessed
    from the key's name (``linkedinUrl`` → ``linkedin``)."""
    if normaliser and normaliser != "compound":
        return normaliser
    name = key_name.lower()
    if "linkedin" in name:
        return "linkedin"
    if "url" in name or "website" in name or "domain" in name:
        return "domain"
    if "email" in name:
        return "email"
    if "phone" in name:
        return "phone"
    return "name"


def _host(text: str) -> str:
    host = _SCHEME.sub("", text).lower()
    for stop in "/?#":
        host = host.split(stop, 1)[0]
    host = _PORT.sub("", host.rsplit("@", 1)[-1]).strip()
    return host.removeprefix("www.").rstrip(".")


def normalise_for_key(kind: str, value: Any) -> str | None:
    """A stored value in the front's normalised form (the rules of ``adapter/matching.py``,
    repeated so that the driver never imports the front; a test keeps them equal)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if kind == "email":
        text = text.lower()
        return text.removeprefix("mailto:").strip() or None
    if kind == "domain":
        return _host(text) or None
    if kind == "domain_any_extension":
        labels = [label for label in _host(text).split(".") if label]
        if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
            labels = labels[:-2]
        elif len(labels) >= 2:
            labels = labels[:-1]
        return labels[-1] if labels else None
    if kind == "linkedin":
        text = _SCHEME.sub("", text).lower().split("#", 1)[0].split("?", 1)[0]
        host, sep, path = text.partition("/")
        host = _PORT.sub("", host).rstrip(".")
        host = "linkedin.com" if host.endswith(".linkedin.com") else host.removeprefix("www.")
        return (host + sep + path).rstrip("/") or None
    if kind == "phone":
        digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
        return ("+" + digits if text.startswith("+") else digits) or None
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split()) or None


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
