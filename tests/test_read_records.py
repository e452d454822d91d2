"""``read_records`` (adapter/http/endpoints.py) parses a create or sync batch once and checks
each record's ``externalId`` itself: whatever the body, it must give what the pydantic model
gives, or the model's own 400."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.requests import Request

from adapter.contract import CreateCompaniesRequest, CreateContactsRequest
from adapter.errors import ApiError, ValidationFailed
from adapter.http.endpoints import read_records

pytestmark = pytest.mark.anyio

LIMIT = 1 << 20


def _request(body: bytes) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/contacts",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


BODIES = [
    # The usual batch: externalId first in the result whatever its place in the record.
    {"contacts": [{"email": "a@x.io", "externalId": "e1", "tags": ["x", {"n": 1}]}]},
    {"contacts": [{"externalId": "e1"}, {"externalId": "e2", "score": 1.5, "vip": True}]},
    {"contacts": [], "other": 1},
    # An id given twice in one record, and a top-level key given twice: the last one wins.
    b'{"contacts": [{"externalId": "a", "externalId": "b"}]}',
    b'{"contacts": [{"externalId": "a"}], "contacts": [{"externalId": "c"}]}',
    # What only the model settles: an integer id (kept as its text).
    {"contacts": [{"externalId": "e1"}, {"externalId": 42}]},
]

INVALID = [
    {"contacts": [{"externalId": ""}]},
    {"contacts": [{"email": "a@x.io"}]},
    {"contacts": [{"externalId": 1.5}]},
    {"contacts": [{"externalId": True}]},
    {"contacts": ["e1"]},
    {"contacts": {"externalId": "e1"}},
    {"companies": [{"externalId": "e1"}]},
    [{"externalId": "e1"}],
    b'{"contacts": [',
]


def _bytes(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


@pytest.mark.parametrize("body", BODIES)
async def test_a_valid_batch_reads_as_the_model_reads_it(body: Any) -> None:
    raw = _bytes(body)
    records = await read_records(_request(raw), CreateContactsRequest, LIMIT)
    expected = CreateContactsRequest.model_validate_json(raw).contacts
    assert records == expected
    assert [list(r) for r in records] == [list(r) for r in expected]  # the keys' order too


@pytest.mark.parametrize("body", INVALID)
async def test_an_invalid_batch_gets_the_models_answer(body: Any) -> None:
    raw = _bytes(body)
    with pytest.raises(ApiError) as caught:
        await read_records(_request(raw), CreateContactsRequest, LIMIT)
    with pytest.raises(ValidationError) as direct:
        CreateContactsRequest.model_validate_json(raw)
    expected = ValidationFailed.from_pydantic(direct.value)
    assert type(caught.value) is type(expected)
    assert (caught.value.message, caught.value.extra) == (expected.message, expected.extra)


async def test_companies_are_read_from_their_own_key() -> None:
    raw = _bytes({"companies": [{"name": "Acme", "externalId": "c1"}], "contacts": []})
    records = await read_records(_request(raw), CreateCompaniesRequest, LIMIT)
    assert records == [{"externalId": "c1", "name": "Acme"}]
