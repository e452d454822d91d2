"""``pagination:`` alone: each scheme's requests, and stop rules that never trust a short
page alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import TypeAdapter

from backends.http import HttpResponse
from backends.rest.components import tagged
from backends.rest.pagination import Pagination

pytestmark = pytest.mark.anyio
SPEC: TypeAdapter[Any] = TypeAdapter(tagged(Pagination))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Server:
    """25 rows; pages capped at 10 whatever is asked (as BottleCRM's default limit)."""

    def __init__(self, rows: int = 25, cap: int = 10, total: bool = True) -> None:
        self.rows = list(range(rows))
        self.cap, self.total = cap, total
        self.asked: list[tuple[dict[str, Any], str | None]] = []

    async def send(self, params: Mapping[str, Any], url: str | None) -> HttpResponse:
        self.asked.append((dict(params), url))
        if url is not None:
            start = int(url.rsplit("=", 1)[1])
        elif "cursor" in params:
            start = int(params["cursor"])
        elif "page" in params:
            start = (params["page"] - 1) * min(params.get("limit", 100), self.cap)
        else:
            start = params.get("offset", 0)
        size = min(params.get("limit", 100), self.cap) if url is None else self.cap
        page = self.rows[start : start + size]
        end = start + len(page)
        body: dict[str, Any] = {"data": page}
        if self.total:
            body["count"] = len(self.rows)
        if end < len(self.rows):
            body["next"] = str(end)
            body["link"] = f"https://api.test/rows?start={end}"
        headers = (
            {"link": f'<https://api.test/rows?start={end}>; rel="next"'} if "next" in body else {}
        )
        return HttpResponse(200, body, headers)


async def walk(config: dict[str, Any], server: Server) -> list[int]:
    items: list[int] = []
    async for page in SPEC.validate_python(config).pages(server.send, lambda b: b.get("data", [])):
        items.extend(page)
    return items


async def test_offset_with_total_stops_at_the_total() -> None:
    server = Server()
    assert await walk({"type": "offset", "page_size": 100, "total": "count"}, server) == list(
        range(25)
    )
    assert [p["offset"] for p, _ in server.asked] == [0, 10, 20]


async def test_a_short_page_does_not_end_a_walk_without_a_total() -> None:
    server = Server(total=False)
    assert await walk({"type": "offset", "page_size": 100}, server) == list(range(25))
    assert [p["offset"] for p, _ in server.asked] == [0, 10, 20, 25]  # the empty page ends it


async def test_short_page_ends_only_when_asked() -> None:
    server = Server(total=False)
    assert await walk(
        {"type": "offset", "page_size": 100, "short_page_ends": True}, server
    ) == list(range(10))


async def test_page_numbers() -> None:
    server = Server(cap=100)
    assert await walk({"type": "page", "page_size": 10, "total": "count"}, server) == list(
        range(25)
    )
    assert [p["page"] for p, _ in server.asked] == [1, 2, 3]


async def test_cursor() -> None:
    server = Server()
    assert await walk({"type": "cursor", "next_cursor": "next", "page_size": 10}, server) == list(
        range(25)
    )
    assert [p.get("cursor") for p, _ in server.asked] == [None, "10", "20"]


@pytest.mark.parametrize("where", [{"in": "header"}, {"in": "body", "path": "link"}])
async def test_next_link(where: dict[str, str]) -> None:
    server = Server()
    assert await walk({"type": "next_link", **where}, server) == list(range(25))
    assert [u for _, u in server.asked] == [
        None,
        "https://api.test/rows?start=10",
        "https://api.test/rows?start=20",
    ]


async def test_max_pages_bounds_every_walk() -> None:
    server = Server(rows=1000, total=False)
    assert len(await walk({"type": "offset", "max_pages": 3}, server)) == 30
