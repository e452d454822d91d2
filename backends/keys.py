"""Match-key normalisation for drivers that compare values the CRM stores as typed.

The front normalises every key it hands a driver (``adapter/matching.py``: ``Ada@Acme.com`` →
``ada@acme.com``, ``https://www.acme.com/about`` → ``acme.com``). A driver that reads a CRM's own
values back (a REST API's filter answers, a search's hits) normalises them the same way before
comparing, with the rules repeated here, for any driver, so that drivers never import the front.
The two copies are held equal by ``tests/rest/test_keys.py``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

__all__ = ["NORMALISER_BY_KEY", "compound_value", "key_kind", "normalise_for_key"]

#: The normaliser of the contract's keys, by key name (what the front applies to them).
NORMALISER_BY_KEY = {
    "email": "email",
    "linkedinUrl": "linkedin",
    "domain": "domain",
    "website": "domain",
    "name": "name",
    "phone": "phone",
    "mobilePhone": "phone",
}

#: Second-level labels under a two-letter country code (``co.uk``, ``com.br``): part of the
#: extension for ``domain_any_extension``.
_SECOND_LEVEL = frozenset(
    {"co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc", "gob", "nic", "or", "ne",
     "go", "gv", "nom", "biz", "info", "mil", "sch"}
)  # fmt: skip

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
    if kind == "domain_any_extension":
        bare = normalise_for_key("domain", value) or ""
        labels = [label for label in bare.split(".") if label]
        if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
            labels = labels[:-2]
        elif len(labels) >= 2:
            labels = labels[:-1]
        return labels[-1] if labels else None
    if kind == "phone":
        digits = re.sub(r"\D", "", text)
        return ("+" + digits if text.startswith("+") else digits) or None
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split()) or None


def compound_value(parts: list[str]) -> str:
    """A compound key's value as the front writes it: its normalised parts as a JSON array."""
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
