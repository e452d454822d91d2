"""Removing secrets from what the service prints, logs or shows: one function, :func:`redact`.

Every place that writes something which may hold a secret goes through it: the CLI's one-line
answers (``check``, ``links``), the start-up gate's log lines, and the request/response bodies
of the debug body log. What counts as a secret:

* the values given in ``secrets`` (the configured API keys, secret-looking backend options,
  the dashboard password: :meth:`adapter.config.Settings.secret_values` collects them), in any
  string, wherever they appear (a key pasted into a free-text field has a harmless name);
* the credentials part of any URL (``scheme://user:password@host`` → ``scheme://***@host``), up
  to the **last** ``@`` of the token, because a password may itself hold an unencoded ``@``
  and masking too much of a URL is harmless where masking too little leaks the rest;
* in a JSON object, the value of any key whose name looks secret (``apiKey``, ``password``,
  ``accessToken``, ``Authorization``...) or is one of ``names`` (the configured API-key header).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import SecretStr

__all__ = [
    "MASK",
    "SECRET_NAME",
    "mask_words",
    "option_locations",
    "option_secrets",
    "redact",
]

T = TypeVar("T")

#: What a secret is replaced with, unless the caller asks for another mark.
MASK = "***"

#: A key or option name whose value is a secret.
SECRET_NAME = re.compile(
    r"key|token|pass|secret|credential|auth|cookie",
    re.IGNORECASE,
)

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)[^\s'\"]*@", re.IGNORECASE)

# Option values shorter than this are not treated as secrets: a heuristic match on a name
# (``auth: "no"``) would otherwise mask every occurrence of a common word.
_MIN_OPTION_SECRET = 4


def option_secrets(node: object, name: str = "") -> Iterator[str]:
    """The secret values in a tree of driver options: every :class:`~pydantic.SecretStr`, and
    every string held under a name that looks secret (``password``, ``api_token``...)."""
    if isinstance(node, SecretStr):
        yield node.get_secret_value()
    elif isinstance(node, str):
        if SECRET_NAME.search(name) and len(node) >= _MIN_OPTION_SECRET:
            yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from option_secrets(value, str(key))
    elif isinstance(node, list | tuple):
        for value in node:
            yield from option_secrets(value, name)


#: Option names whose string value says where the backend lives.
LOCATION_NAME = re.compile(
    r"^(host|hostname|server|user|username|login|database|db|dbname|path|file|filename)$",
    re.IGNORECASE,
)
_URL = re.compile(r"^[a-z][a-z0-9+.\-]*://", re.IGNORECASE)
# Shorter values are not masked: "db" or "1" would blank common words of every message.
_MIN_LOCATION = 3


def option_locations(node: object, name: str = "") -> Iterator[str]:
    """Where the backend lives, from a tree of driver options: the host, user, database and
    file of every URL option (``postgresql://crm@db.internal/crm``,
    ``sqlite:///./data/crm.db``), and the strings under names such as ``host``, ``user``,
    ``database`` or ``path``. These never belong in an answer to a caller."""
    if isinstance(node, str):
        if _URL.match(node):
            yield from _url_locations(node)
        elif LOCATION_NAME.match(name) and len(node) >= _MIN_LOCATION:
            yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from option_locations(value, str(key))
    elif isinstance(node, list | tuple):
        for value in node:
            yield from option_locations(value, name)


def _url_locations(url: str) -> Iterator[str]:
    try:
        parts = urlsplit(url)
        host, user = parts.hostname, parts.username
    except ValueError:
        return
    path = parts.path
    if parts.scheme.startswith("sqlite") and path.startswith("/"):
        path = path[1:]  # sqlite:///relative.db and sqlite:////abs/olute.db
    else:
        path = path.strip("/")
    candidates = [host, user, path]
    if "/" in path:
        candidates.append(path.rsplit("/", 1)[1])
    for value in candidates:
        if value and len(value) >= _MIN_LOCATION and value != ":memory:":
            yield value


def redact(
    value: T, secrets: Iterable[str] = (), *, names: Iterable[str] = (), mask: str = MASK
) -> T:
    """A copy of ``value`` (a string, or a JSON value: dicts, lists, strings, numbers) with
    every secret replaced by ``mask`` (see the module docstring for what is a secret).

    ``names`` are further key names whose values are secret (compared case-insensitively).
    """
    # Longest first, so that a secret containing another is replaced whole.
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
    extra = {n.lower() for n in names}

    def text(node: str) -> str:
        for secret in ordered:
            if secret in node:
                node = node.replace(secret, mask)
        return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{mask}@", node)

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return text(node)
        if isinstance(node, dict):
            return {
                text(str(k)): mask
                if SECRET_NAME.search(str(k)) or str(k).lower() in extra
                else walk(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: T = walk(value)
    return result


def mask_words(text: str, words: Iterable[str], *, mask: str = MASK) -> str:
    """``text`` with every whole occurrence of ``words`` replaced by ``mask``: not inside a
    longer name (``crm`` is masked in ``crm@db`` and `` `crm` ``, not in ``crm_contacts``). For
    the backend's location (:func:`option_locations`), whose short names would otherwise blank
    parts of table and column names; secrets are masked anywhere, by :func:`redact`."""
    ordered = sorted({w for w in words if w}, key=len, reverse=True)
    if not ordered:
        return text
    pattern = re.compile(
        r"(?<![A-Za-z0-9_])(?:" + "|".join(re.escape(w) for w in ordered) + r")(?![A-Za-z0-9_])"
    )
    return pattern.sub(mask, text)
