"""Property-based testing of the whole API from its own OpenAPI document (schemathesis).

The service runs for real (uvicorn with the guarded protocol, on a port of its own, the SQLite
driver on a file) and schemathesis sends it what the document allows and what it does not,
a bounded number of examples per operation, with the key. Every answer must be no 5xx and must
match the document's schema for its status (the error shape included).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from adapter.app import create_app
from adapter.http.openapi import build_openapi
from adapter.ops.connections import guarded_protocol
from tests.conftest import API_KEY, make_settings

#: Examples per operation: enough to reach every branch of the validation, small enough that
#: the 17 operations take well under a minute.
EXAMPLES = 40

SCHEMA = schemathesis.openapi.from_dict(build_openapi(make_settings()))


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on SQLite, served by uvicorn in a thread for the whole module."""
    db = Path(tmp_path_factory.mktemp("schemathesis")) / "adapter.db"
    app_settings = make_settings(
        backend={"driver": "sql", "options": {"url": f"sqlite+aiosqlite:///{db}"}},
        server={"health_cache_seconds": 0},
        # GET /users answers 501 without a user list (A.11), which counts as a 5xx here.
        users=[{"id": "u1", "name": "Ada Lovelace", "email": "ada@example.com"}],
    )
    app = create_app(app_settings)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    config = uvicorn.Config(
        app,
        http=guarded_protocol(app_settings.server.limits, "h11"),
        log_config=None,
        access_log=False,
        lifespan="on",
        ws="none",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_every_answer_matches_the_document(
    case: schemathesis.Case, base_url: str
) -> None:
    case.call_and_validate(
        base_url=base_url,
        headers={"X-API-Key": API_KEY},
        checks=[not_a_server_error, response_schema_conformance],
        timeout=30,
    )
