"""``pagination:``: how a list is walked, one component per scheme, chosen by ``type``.

* ``none``: one page;
* ``offset``: ``offset`` (+ ``limit``) parameters; stops at an empty page or when ``offset``
  reaches the ``total`` read at its path;
* ``page``: a page number (+ size); stops at an empty page or the ``total``;
* ``cursor``: the cursor read at ``next_cursor``; stops without a cursor or at an empty page;
* ``next_link``: the URL in ``Link: <...>; rel="next"`` or at a body path; stops without one.

A page shorter than the size asked for does **not** end the walk by itself (servers cap page
sizes silently: BottleCRM's default is 10, Directus' ``QUERY_LIMIT_MAX``); set
``short_page_ends: true`` only for an API documented to fill every page. Every walk is bounded
by ``max_pages``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backends.http import HttpResponse
from backends.rest.paths import MISSING, check_path, get_path

__all__ = [
    "CursorPagination",
    "NextLinkPagination",
    "NoPagination",
    "OffsetPagination",
    "PagePagination",
    "Pagination",
    "Send",
]

#: Sends one page request: extra query parameters, and a full URL replacing the path (a
#: next link) or ``None``.
Send = Callable[[Mapping[str, Any], str | None], Awaitable[HttpResponse]]
Items = Callable[[Any], list[Any]]

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;[^,]*rel="?next"?', re.IGNORECASE)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    #: A hard bound on the pages one walk reads.
    max_pages: int = Field(50, ge=1)
    #: Whether a page shorter than asked ends the walk (only for APIs that fill every page).
    short_page_ends: bool = False

    async def pages(self, send: Send, items: Items) -> AsyncIterator[list[Any]]:
        raise NotImplementedError
        yield []  # pragma: no cover


def _total(body: Any, path: str | None) -> int | None:
    if path is None:
        return None
    value = get_path(body, path)
    try:
        return int(value) if value is not MISSING and value is not None else None
    except (TypeError, ValueError):
        return None  # Directus' aggregate count is a string; anything unreadable is unknown


async def _counted_pages(
    spec: _Spec,
    send: Send,
    items: Items,
    request: Callable[[int, int], dict[str, Any]],
    page_size: int,
    total_path: str | None,
) -> AsyncIterator[list[Any]]:
    """The walk of the counted schemes (offset, page number): ``request(n, seen)`` gives the
    parameters of page ``n`` (from 0) after ``seen`` items. Ends at an empty page, when ``seen``
    reaches the total read at ``total_path``, at a short page when ``short_page_ends``, and
    after ``max_pages``."""
    seen = 0
    for number in range(spec.max_pages):
        response = await send(request(number, seen), None)
        page = items(response.body)
        if not page:
            return
        yield page
        seen += len(page)
        total = _total(response.body, total_path)
        if total is not None and seen >= total:
            return
        if spec.short_page_ends and len(page) < page_size:
            return


class NoPagination(_Spec):
    type: Literal["none"]

    async def pages(self, send: Send, items: Items) -> AsyncIterator[list[Any]]:
        response = await send({}, None)
        yield items(response.body)


class OffsetPagination(_Spec):
    type: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str | None = "limit"
    page_size: int = Field(100, ge=1)
    #: Body path of the total number of records, when the API gives one.
    total: str | None = None

    @field_validator("total")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else check_path(value)

    async def pages(self, send: Send, items: Items) -> AsyncIterator[list[Any]]:
        def request(_number: int, seen: int) -> dict[str, Any]:
            params: dict[str, Any] = {self.offset_param: seen}
            if self.limit_param:
                params[self.limit_param] = self.page_size
            return params

        async for page in _counted_pages(self, send, items, request, self.page_size, self.total):
            yield page


class PagePagination(_Spec):
    type: Literal["page"]
    page_param: str = "page"
    size_param: str | None = "limit"
    page_size: int = Field(100, ge=1)
    first_page: int = 1
    total: str | None = None

    @field_validator("total")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else check_path(value)

    async def pages(self, send: Send, items: Items) -> AsyncIterator[list[Any]]:
        def request(number: int, _seen: int) -> dict[str, Any]:
            params: dict[str, Any] = {self.page_param: self.first_page + number}
            if self.size_param:
                params[self.size_param] = self.page_size
            return params

        async for page in _counted_pages(self, send, items, request, self.page_size, self.total):
            yield page


class CursorPagination(_Spec):
    type: Literal["cursor"]
    cursor_param: str = "cursor"
    #: Body path of the next page's cursor (absent or null: no next page).
    next_cursor: str
    size_param: str | None = "limit"
    page_size: int = Field(100, ge=1)

    @field_validator("next_cursor")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_path(value)

    async def pages(self, send: Send, items: Items) -> AsyncIterator[list[Any]]:
        cursor: Any = None
        for _ in range(self.max_pages):
            params: dict[str, Any] = {self.size_param: self.page_size} if self.size_param else {}
            if cursor is not None:
                params[self.cursor_param] = cursor
            response = await send(params, None)
            page = items(response.body)
            if page:
                yield page
            cursor = get_path(response.body, self.next_cursor)
            if not page or cursor in (MISSING, None, ""):
                return


class NextLinkPagination(_Spec):
    type: Literal["next_link"]
    #: ``header``: RFC 8288 ``Link: <url>; rel="next"``; ``body``: the URL at ``path``.
    in_: Literal["header", "body"] = Field("header", alias="in")
    path: str | None = None
    size_param: str | None = None
    page_size: int = Field(100, ge=1)

    @field_validator("path")
    @classmethod
    def _check(cls, value: str | None) -> str | None:
        return None if value is None else check_path(value)

    def _next(self, response: HttpResponse) -> str | None:
        if self.in_ == "header":
            match = _LINK_NEXT.search(response.headers.get("link", ""))
            return match.group(1) if match else None
        value = get_path(response.body, self.path or "next")
        return value if isinstance(value, str) and value else None

    async def pages(self, send: Send, items: Items) -> AsyncIterator[list[Any]]:
        url: str | None = None
        for _ in range(self.max_pages):
            params = {self.size_param: self.page_size} if self.size_param and url is None else {}
            response = await send(params, url)
            page = items(response.body)
            if page:
                yield page
            url = self._next(response)
            if not page or url is None:
                return


Pagination = (
    NoPagination | OffsetPagination | PagePagination | CursorPagination | NextLinkPagination
)
