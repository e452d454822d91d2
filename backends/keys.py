"""Match-key normalisation: the one set of normalisers (contract Part A.7).

The front (``adapter/matching.py``) applies them to Enginy's values to make the keys it hands
drivers and stores with records; a driver that reads a CRM's own values back (a REST API's
filter answers, a HubSpot search's hits, a mapped table's columns) normalises them with the same
functions before comparing, so ``https://www.Acme.com/about`` stored by hand finds the key
``acme.com``. They live here, below both, so that drivers never import the front.

Every normaliser takes any object and returns a non-empty string or ``None``: a value that is not
a string, or that is empty once normalised, is not a key (it must never match another empty key).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "NORMALISERS",
    "NORMALISER_BY_KEY",
    "Normaliser",
    "compound_value",
    "key_kind",
    "normalise_domain",
    "normalise_domain_any_extension",
    "normalise_email",
    "normalise_for_key",
    "normalise_linkedin_url",
    "normalise_name",
    "normalise_phone",
]

Normaliser = Callable[[object], "str | None"]

# A leading URL scheme (``https://``, ``HTTP://``, ``//``): Enginy sends domains and LinkedIn
# URLs with or without one, and users paste both forms into their CRM.
_SCHEME = re.compile(r"^(?:[a-z][a-z0-9+.\-]*:)?//", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_PORT = re.compile(r":\d*$")


def normalise_email(value: object) -> str | None:
    """Trim and lower-case an email address (``" John@ACME.com "`` → ``john@acme.com``).

    A ``mailto:`` prefix is removed because CRMs that store links keep it.
    """
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if email.startswith("mailto:"):
        email = email[len("mailto:") :].strip()
    return email or None


def normalise_linkedin_url(value: object) -> str | None:
    """Reduce a LinkedIn URL to ``linkedin.com/in/<slug>`` form.

    Removes the scheme, ``www.`` (and the country/mobile sub-domains LinkedIn redirects from,
    such as ``uk.`` or ``m.``, which name the same profile), the query string, the fragment and
    trailing slashes; lower-cases the result. ``https://www.linkedin.com/in/JohnDoe/?trk=x``
    → ``linkedin.com/in/johndoe``.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    # The usual scheme without the regular expression (the same match: a scheme ends at the
    # first colon); every other form through it.
    https = text[:8].lower() == "https://"
    url = (text[8:] if https else _SCHEME.sub("", text)).lower()
    if "#" in url:
        url = url.split("#", 1)[0]
    if "?" in url:
        url = url.split("?", 1)[0]
    host, sep, path = url.partition("/")
    if ":" in host:
        host = _PORT.sub("", host)
    host = host.rstrip(".")
    if host.endswith(".linkedin.com"):
        host = "linkedin.com"
    elif host.startswith("www."):
        host = host[len("www.") :]
    url = (host + sep + path).rstrip("/")
    return url or None


def normalise_domain(value: object) -> str | None:
    """Reduce a website or domain to its bare host name.

    Removes the scheme, any ``user@`` part, ``www.``, the port, the path, the query string, the
    fragment and trailing dots; trims and lower-cases. ``https://www.acme.com/about`` →
    ``acme.com``; ``WWW.ACME.COM`` → ``acme.com``; ``acme.com.:443`` → ``acme.com``.
    """
    if not isinstance(value, str):
        return None
    host = _SCHEME.sub("", value.strip()).lower()
    for stop in "/?#":
        host = host.split(stop, 1)[0]
    # "john@acme.com" (an email in a domain field) and "user:pw@host" both name the host.
    host = host.rsplit("@", 1)[-1]
    host = _PORT.sub("", host).strip()
    if host.startswith("www."):
        host = host[len("www.") :]
    return host.rstrip(".") or None


def normalise_name(value: object) -> str | None:
    """Fold case and whitespace: ``"  ACME\\tInc "`` → ``acme inc``.

    NFKC first, so that full-width letters and non-breaking spaces compare equal to their
    plain forms; ``casefold`` rather than ``lower`` so that ``Straße`` equals ``STRASSE``.
    """
    if not isinstance(value, str):
        return None
    name = _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", value).casefold()).strip()
    return name or None


def normalise_phone(value: object) -> str | None:
    """Keep the digits of a phone number, and a leading ``+``: ``+1 (555) 012-3456`` →
    ``+15550123456``. A value without any digit is not a key."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
    if not digits:
        return None
    return "+" + digits if text.startswith("+") else digits


# Second-level labels under a country code that are part of the extension, not the name:
# acme.co.uk, acme.com.br, acme.org.au, acme.ne.jp.
_SECOND_LEVEL = frozenset(
    {"co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc", "gob", "nic", "or", "ne",
     "go", "gv", "nom", "biz", "info", "mil", "sch"}
)  # fmt: skip


def normalise_domain_any_extension(value: object) -> str | None:
    """The name a domain has under any extension: ``acme.com``, ``www.acme.es``,
    ``https://shop.acme.co.uk/about`` → ``acme``, so that one company's sites in several
    countries are one key. The extension is the last label, with the second-level label of a
    country code (``co.uk``, ``com.br``) when there is one; sub-domains are dropped."""
    host = normalise_domain(value)
    if host is None:
        return None
    labels = [label for label in host.split(".") if label]
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        labels = labels[:-2]
    elif len(labels) >= 2:
        labels = labels[:-1]
    return labels[-1] if labels else None


#: Normaliser name (as written in the YAML, :data:`adapter.config.NORMALISER_NAMES`) → function.
NORMALISERS: dict[str, Normaliser] = {
    "email": normalise_email,
    "linkedin": normalise_linkedin_url,
    "domain": normalise_domain,
    "domain_any_extension": normalise_domain_any_extension,
    "name": normalise_name,
    "phone": normalise_phone,
}


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


def normalise_for_key(kind: str, value: Any) -> str | None:
    """``value`` normalised by the normaliser named ``kind`` (an unknown kind folds like a
    name)."""
    return NORMALISERS.get(kind, normalise_name)(value)


def compound_value(parts: Sequence[str]) -> str:
    """A compound key's value: its normalised parts, unambiguously (a JSON array)."""
    return json.dumps(list(parts), ensure_ascii=False, separators=(",", ":"))
