"""Match keys on HubSpot: which key lives in a property the driver owns, and how the others
are searched.

HubSpot's search index lags writes, and ``IN`` filters match exact (lower-cased) strings, so a
key searched on the field itself misses a record created a moment ago and a URL stored as
``http://uk.linkedin.com/in/ana/``. The driver therefore keeps the *normalised* key (the front's
normaliser output: ``linkedin.com/in/ana``, ``acme.com``) in a unique property of its own,
written with every create and update, and reads it back with ``batch/read`` by that property -
HubSpot's primary store, one call per 100 values, no search budget. Records made by hand in
HubSpot (no key property) are still found by a fallback search on the field in its usual
spellings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from backends.base import Entity

__all__ = ["KEY_KINDS", "fallback_spellings", "key_kind", "normalise_for_key"]

#: Match-key name → normaliser kind, per entity, for the keys held in a driver property.
KEY_KINDS: Mapping[Entity, Mapping[str, str]] = {
    Entity.CONTACT: {"linkedinUrl": "linkedin"},
    Entity.COMPANY: {"domain": "domain", "linkedinUrl": "linkedin"},
}

_SCHEME = re.compile(r"^(?:[a-z][a-z0-9+.\-]*:)?//", re.IGNORECASE)


def key_kind(key_name: str) -> str:
    """The normaliser kind of a key name (``linkedinUrl`` → ``linkedin``)."""
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


def normalise_for_key(kind: str, value: Any) -> str | None:
    """A stored value in the front's normalised form (same rules as ``adapter/matching.py``,
    repeated so that the driver never imports the front)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if kind == "email":
        text = text.lower()
        return text.removeprefix("mailto:").strip() or None
    if kind in ("linkedin", "domain"):
        text = _SCHEME.sub("", text).lower().split("#", 1)[0].split("?", 1)[0]
        host, sep, path = text.partition("/")
        host = re.sub(r":\d*$", "", host.rsplit("@", 1)[-1]).rstrip(".")
        if kind == "domain":
            return host.removeprefix("www.") or None
        host = "linkedin.com" if host.endswith(".linkedin.com") else host.removeprefix("www.")
        return (host + sep + path).rstrip("/") or None
    if kind == "phone":
        digits = re.sub(r"\D", "", text)
        return ("+" + digits if text.startswith("+") else digits) or None
    return " ".join(text.casefold().split()) or None


def fallback_spellings(kind: str, value: str) -> list[str]:
    """Spellings of a normalised key worth an ``IN`` search on the field itself (lower-case, as
    HubSpot requires), for records that carry no key property (made by hand or by another
    integration). The results are re-normalised before matching, so a near miss never
    matches the wrong record; a spelling not listed here is not found."""
    value = value.lower()
    if kind == "linkedin":
        return [f"https://www.{value}", f"https://www.{value}/", value]
    if kind == "domain":
        return [value, f"www.{value}"]
    return [value]
