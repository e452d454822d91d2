"""``enginy-adapter simulate``: it passes against servers that keep the contract, names the
failing check when one does not, writes nothing with ``--read-only``, and never prints the key.

Two kinds of server are simulated against:

* a small in-test Starlette **stub** of the contract (``Stub``), which can be broken one behaviour
  at a time (``breaks``), so that each check is shown to fail when the behaviour it names is
  broken;
* **our adapter** (``adapter.app.create_app``) on the memory driver and on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from simulate_stub import ENTITIES, KEY, READ_POSTS, Stub
from starlette.applications import Starlette

from adapter.simulate import Level, Report, Status, add_arguments, run, run_async, simulate


async def simulate_against(
    app: Starlette, base_url: str = "http://crm.test", **options: Any
) -> tuple[Report, list[tuple[str, str]]]:
    """Run the simulation through an ASGI transport; return the report and the request log."""
    log: list[tuple[str, str]] = []

    async def record(request: httpx.Request) -> None:
        log.append((request.method, request.url.path))

    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url=base_url, event_hooks={"request": [record]}
    ) as client:
        report = await simulate(client, api_key=KEY, **options)
    return report, log


def failed(report: Report) -> dict[str, str]:
    return {c.name: c.level.value for c in report.checks if c.status is Status.FAIL}


def status_of(report: Report, name: str) -> Status:
    return next(c.status for c in report.checks if c.name == name)


# --------------------------------------------------------------------------------------------
# Against the stub
# --------------------------------------------------------------------------------------------

pytestmark = pytest.mark.anyio

EXPECTED_CHECKS = {
    "connect.health",
    "connect.users",
    "auth.missing_key",
    "auth.wrong_key",
    "auth.health.missing_key",
    "auth.health.wrong_key",
    "contacts.sync",
    "companies.sync",
    "contacts.sync.only_matches",
    "companies.sync.only_matches",
    "contacts.create",
    "companies.create",
    "contacts.update",
    "companies.update",
    "associations.create",
    "contacts.sync.normalised_email",
    "companies.sync.normalised_domain",
    "contacts.create.idempotent",
    "companies.create.idempotent",
    "activities.idempotent",
    "contacts.update.partial",
    "companies.update.partial",
    "engagement.update",
    "engagement.synced_back",
    "tasks.create",
    "tasks.get",
    "tasks.complete",
    "tasks.batch_get",
    "tasks.batch_complete",
    "tasks.get.unknown",
    "errors.malformed_json",
    "errors.missing_external_id",
    "errors.bad_record_reported",
    "errors.body",
    "security.key_not_echoed",
} | {
    f"activity.{t}.{d}"
    for t in ("EMAIL", "LINKEDIN", "LINKEDIN_INMAIL", "LINKEDIN_CONNECTION")
    for d in ("OUTBOUND", "INBOUND")
}


async def test_full_run_passes_against_a_server_that_keeps_the_contract() -> None:
    stub = Stub()
    report, _ = await simulate_against(stub.app())
    assert failed(report) == {}, report.to_table()
    assert report.exit_code == 0
    assert {c.name for c in report.checks if c.status is Status.PASS} >= EXPECTED_CHECKS
    levels = {c.name: c.level for c in report.checks}
    assert levels["tasks.batch_get"] is Level.MUST
    assert levels["contacts.create.idempotent"] is Level.SHOULD


async def test_everything_written_carries_the_run_id() -> None:
    stub = Stub()
    report, _ = await simulate_against(stub.app(), run_id="abc123")
    rid = report.run_id
    assert rid == "abc123"
    stored = [r for entity in ENTITIES for r in stub.records[entity].values()]
    assert len(stored) > 100
    for record in stored:
        assert record["externalId"].startswith(f"sim-{rid}-")
        assert record["enginySimulationRun"] == rid
        if "@" in record.get("email", ""):
            assert record["email"].strip().lower().endswith(f"+sim-{rid}@example.invalid")
    for activity in stub.activities.values():
        assert activity["metadata"]["messageId"].startswith(f"sim-{rid}-")
        assert activity["metadata"]["enginySimulationRun"] == rid
    assert stub.tasks and all(f"sim-{rid}" in t["subject"] for t in stub.tasks.values())


async def test_contacts_go_in_batches_of_at_most_100() -> None:
    stub = Stub()
    await simulate_against(stub.app(), contacts=230)
    assert max(stub.batch_sizes) == 100
    assert stub.batch_sizes.count(100) == 2  # 229 unmatched leads: 100 + 100 + 29


async def test_a_base_url_with_a_path_prefix_is_kept() -> None:
    stub = Stub()
    report, log = await simulate_against(stub.app("/enginy"), "http://crm.test/enginy")
    assert failed(report) == {}
    assert all(path.startswith("/enginy/") for _, path in log)


async def test_read_only_writes_nothing_even_on_a_server_without_auth() -> None:
    stub = Stub("no_auth")
    report, log = await simulate_against(stub.app(), read_only=True)
    assert stub.written() == 0
    writes = [(m, p) for m, p in log if m not in ("GET", "HEAD")]
    assert writes, "the read-only run sends its sync/batch probes"
    assert {p for _, p in writes} <= READ_POSTS
    assert {m for m, _ in writes} == {"POST"}
    # The missing key is a MUST failure, the rest of the read-only checks still ran.
    assert failed(report) == {
        "auth.missing_key": "MUST",
        "auth.wrong_key": "MUST",
        "auth.health.missing_key": "SHOULD",
        "auth.health.wrong_key": "SHOULD",
    }
    assert status_of(report, "tasks.get.unknown") is Status.PASS
    assert status_of(report, "writes.*") is Status.SKIP


async def test_read_only_passes_against_a_good_server() -> None:
    report, log = await simulate_against(Stub().app(), read_only=True)
    assert failed(report) == {} and report.exit_code == 0
    assert len(log) < 25


async def test_broken_server_exits_non_zero_naming_the_failed_musts() -> None:
    stub = Stub("health_no_auth", "users_object", "tasks_batch_wrapped")
    out = StringIO()
    code = await run_async(_args("--url", "http://crm.test"), transport=_transport(stub), out=out)
    assert code == 1
    text = out.getvalue()
    must_line = next(line for line in text.splitlines() if line.startswith("MUST failures:"))
    for name in ("connect.users", "tasks.batch_get", "tasks.batch_complete"):
        assert name in must_line
    assert "auth.health.missing_key" not in must_line  # a SHOULD: reported, not fatal
    row = next(line for line in text.splitlines() if line.startswith("auth.health.missing_key"))
    assert row.split()[1:3] == ["SHOULD", "FAIL"]


ACTIVITY_ROWS = {
    f"activity.{t}.{d}": "MUST"
    for t in ("EMAIL", "LINKEDIN", "LINKEDIN_INMAIL", "LINKEDIN_CONNECTION")
    for d in ("OUTBOUND", "INBOUND")
}

# Each breakage fails exactly these checks: the one naming the behaviour, plus the consequences
# the comment gives (Enginy's later calls depend on what the broken one answered).
BREAKAGES: list[tuple[str, dict[str, str]]] = [
    ("health_no_auth", {"auth.health.missing_key": "SHOULD", "auth.health.wrong_key": "SHOULD"}),
    ("users_object", {"connect.users": "MUST"}),
    ("tasks_batch_wrapped", {"tasks.batch_get": "MUST", "tasks.batch_complete": "MUST"}),
    ("crm_id_renamed", {"contacts.create": "MUST", "companies.create": "MUST"}),
    (
        "update_no_success",
        {"contacts.update": "MUST", "companies.update": "MUST", "engagement.update": "MUST"},
    ),
    # A re-sent association cannot be accepted where the first one was not.
    (
        "associations_no_success",
        {"associations.create": "MUST", "associations.idempotent": "SHOULD"},
    ),
    ("activity_no_id", ACTIVITY_ROWS),
    ("patch_ignores_completed", {"tasks.complete": "MUST", "tasks.batch_complete": "MUST"}),
    ("task_404_as_500", {"tasks.get.unknown": "MUST", "errors.patch_unknown_task": "SHOULD"}),
    ("malformed_500", {"errors.malformed_json": "MUST", "errors.body": "SHOULD"}),
    # Enginy then updates the made-up crmIds the server claimed, and those updates fail.
    (
        "sync_matches_all",
        {
            "contacts.sync.only_matches": "MUST",
            "companies.sync.only_matches": "MUST",
            "contacts.update": "MUST",
            "companies.update": "MUST",
        },
    ),
    (
        "externalid_only",
        {"contacts.sync.normalised_email": "SHOULD", "companies.sync.normalised_domain": "SHOULD"},
    ),
    # The duplicate is what sync finds afterwards, so the engagement update is not seen there.
    (
        "create_not_idempotent",
        {
            "contacts.create.idempotent": "SHOULD",
            "companies.create.idempotent": "SHOULD",
            "engagement.synced_back": "SHOULD",
        },
    ),
    ("put_overwrites", {"contacts.update.partial": "SHOULD", "companies.update.partial": "SHOULD"}),
    ("activity_not_idempotent", {"activities.idempotent": "SHOULD"}),
    ("plain_errors", {"errors.body": "SHOULD"}),
    ("echo_key", {"security.key_not_echoed": "SHOULD"}),
]


@pytest.mark.parametrize(("breaks", "expected"), BREAKAGES, ids=[b for b, _ in BREAKAGES])
async def test_each_broken_behaviour_fails_its_check(breaks: str, expected: dict[str, str]) -> None:
    report, _ = await simulate_against(Stub(breaks).app())
    assert failed(report) == expected, report.to_table()
    assert report.exit_code == (1 if "MUST" in expected.values() else 0)


async def test_a_rejected_value_must_be_listed_in_errors_when_the_server_rejects_it() -> None:
    report, _ = await simulate_against(Stub().app())
    assert status_of(report, "errors.invalid_value_listed") is Status.SKIP
    report, _ = await simulate_against(Stub("rejects_bad_email").app())
    assert status_of(report, "errors.invalid_value_listed") is Status.PASS


@pytest.mark.parametrize(
    ("stub", "off_status"),
    [
        (Stub(users=None), Status.PASS),  # 501 {"error", "message"}
        (Stub("users_plain_404"), Status.PASS),  # a framework's bare 404 is fine too
        (Stub(users=-1), Status.FAIL),  # 500: Enginy carries on, but it is not the way to say it
    ],
    ids=["501", "plain-404", "500"],
)
async def test_users_off_is_fine_and_only_404_405_501_say_so_cleanly(
    stub: Stub, off_status: Status
) -> None:
    report, _ = await simulate_against(stub.app())
    assert status_of(report, "connect.users") is Status.PASS
    assert status_of(report, "connect.users.off_status") is off_status
    assert set(failed(report)) <= {"connect.users.off_status"}
    assert report.exit_code == 0


async def test_the_request_budget_stops_the_run() -> None:
    report, log = await simulate_against(Stub().app(), max_requests=12)
    assert len(log) == 12
    assert failed(report)["run.request_budget"] == "MUST"
    assert report.exit_code == 1


async def test_a_wrong_key_stops_after_health() -> None:
    stub = Stub()
    transport = httpx.ASGITransport(stub.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        report = await simulate(client, api_key="not-the-key")
    assert failed(report)["connect.health"] == "MUST"
    assert len(stub.seen) == 3 and stub.written() == 0


# --------------------------------------------------------------------------------------------
# The command: arguments, output, masking, real sockets
# --------------------------------------------------------------------------------------------


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="enginy-adapter simulate")
    add_arguments(parser)
    defaults = [] if "--api-key" in argv else ["--api-key", KEY]
    return parser.parse_args([*defaults, *argv])


def _transport(stub: Stub) -> httpx.ASGITransport:
    return httpx.ASGITransport(stub.app(), raise_app_exceptions=False)


@pytest.mark.parametrize("as_json", [False, True])
async def test_the_key_is_never_printed_even_when_the_server_echoes_it(as_json: bool) -> None:
    out = StringIO()
    argv = ["--url", f"http://user:{KEY}@crm.test", *(["--json"] if as_json else [])]
    code = await run_async(_args(*argv), transport=_transport(Stub("echo_key")), out=out)
    text = out.getvalue()
    assert code == 0
    assert KEY not in text
    assert "security.key_not_echoed" in text
    if as_json:
        doc = json.loads(text)
        assert doc["exitCode"] == 0 and doc["readOnly"] is False
        echo = next(c for c in doc["checks"] if c["name"] == "security.key_not_echoed")
        assert echo == {**echo, "level": "SHOULD", "status": "FAIL"}
    else:
        assert text.startswith("Simulating Enginy against http://crm.test")
        assert "CHECK" in text and "LEVEL" in text and "RESULT" in text


async def test_the_key_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINY_ADAPTER_API_KEY", KEY)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--url", "http://crm.test", "--read-only"])
    out = StringIO()
    assert await run_async(args, transport=_transport(Stub()), out=out) == 0
    monkeypatch.delenv("ENGINY_ADAPTER_API_KEY")
    assert await run_async(args, transport=_transport(Stub()), out=out) == 2


@pytest.mark.parametrize(
    "argv",
    [["--timeout", "0"], ["--timeout", "abc"], ["--contacts", "0"], ["--max-requests", "5"]],
)
def test_bad_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _args("--url", "http://crm.test", *argv)
    assert exc.value.code == 2


async def test_a_url_without_host_is_a_usage_error() -> None:
    assert await run_async(_args("--url", "crm.test"), out=StringIO()) == 2


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


def test_an_unreachable_server_is_a_must_failure(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(_args("--url", f"http://127.0.0.1:{closed_port}", "--timeout", "2"))
    out = capsys.readouterr().out
    assert code == 1
    assert "connect.reachable" in out and "MUST failures: connect.reachable" in out
    assert KEY not in out


async def test_every_request_has_a_timeout() -> None:
    stop = asyncio.Event()
    handlers: list[asyncio.Task[None]] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await stop.wait()  # accept the connection, never answer
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    out = StringIO()
    try:
        args = _args("--url", f"http://127.0.0.1:{port}", "--timeout", "0.2")
        code = await asyncio.wait_for(run_async(args, out=out), timeout=10)
    finally:
        stop.set()
        server.close()
        await server.wait_closed()
        await asyncio.gather(*handlers)
    assert code == 1
    assert "no answer within 0.2s" in out.getvalue()


async def test_a_short_retry_after_is_honoured_and_counted() -> None:
    _, plain = await simulate_against(Stub().app(), read_only=True)
    stub = Stub("rate_limit_once")
    report, log = await simulate_against(stub.app(), read_only=True)
    assert stub.limited and failed(report) == {}
    assert len(log) == len(plain) + 1 == report.requests  # the retry counts against the budget


async def test_an_oversized_body_is_not_read_to_the_end() -> None:
    big = b"[" + b"0," * (6 * 1024 * 1024) + b"0]"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=big)

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handler), base_url="http://crm.test"
    ) as client:
        report = await simulate(client, api_key=KEY, read_only=True)
    assert "not read" in next(c.detail for c in report.checks if c.name == "connect.users")
    assert failed(report)["connect.users"] == "MUST"


async def test_a_server_that_trickles_bytes_hits_the_deadline() -> None:
    stop = asyncio.Event()
    handlers: list[asyncio.Task[None]] = []

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not stop.is_set():  # a byte every 50 ms: no read timeout ever fires
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    out = StringIO()
    try:
        args = _args("--url", f"http://127.0.0.1:{port}", "--timeout", "0.5")
        code = await asyncio.wait_for(run_async(args, out=out), timeout=10)
    finally:
        stop.set()
        server.close()
        await server.wait_closed()
        await asyncio.gather(*handlers)
    assert code == 1
    assert "no answer within 0.5s" in out.getvalue()


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


def test_only_a_failed_must_fails_the_run() -> None:
    report = Report(run_id="r", url="http://x", read_only=False)
    report.record("a", Level.SHOULD, False, "should fails")
    report.skip("b", Level.MUST, "not run")
    assert report.exit_code == 0
    report.record("c", Level.MUST, True)
    report.record("c", Level.MUST, False, "second call broke")
    report.record("c", Level.MUST, True)
    assert report.exit_code == 1
    check = report.checks[-1]
    assert (check.status, check.detail, check.observations) == (
        Status.FAIL,
        "second call broke",
        3,
    )
    assert "MUST failures: c" in report.to_table()


# --------------------------------------------------------------------------------------------
# Against our adapter (the project's end-to-end test of every built-in embedded driver)
# --------------------------------------------------------------------------------------------


def _settings(**sections: Any) -> Any:
    from adapter.config import Settings

    return Settings.model_validate({"auth": {"keys": [KEY]}, **sections})


async def _simulate_adapter(
    settings: Any, backend: Any = None, base_url: str = "http://adapter", **options: Any
) -> Report:
    from adapter.app import create_app

    app = create_app(settings, backend)
    async with app.router.lifespan_context(app):
        report, _ = await simulate_against(app, base_url, **options)
    return report


async def test_our_adapter_on_the_memory_driver_passes_every_check() -> None:
    from backends.memory import MemoryBackend

    users = [{"id": "owner-1", "name": "Owner One", "email": "owner@example.invalid"}]
    backend = MemoryBackend(MemoryBackend.Options.model_validate({"users": users}))
    report = await _simulate_adapter(_settings(), backend)
    assert failed(report) == {}, report.to_table()
    assert {c.name for c in report.checks if c.status is Status.PASS} >= EXPECTED_CHECKS
    assert next(c.detail for c in report.checks if c.name == "connect.users").startswith(
        "1 user(s)"
    )


async def test_read_only_leaves_our_memory_driver_empty() -> None:
    from backends.memory import MemoryBackend

    backend = MemoryBackend()
    report = await _simulate_adapter(_settings(), backend, read_only=True)
    assert failed(report) == {}, report.to_table()
    assert set((await backend.counts()).values()) == {0}


async def test_our_adapter_on_sqlite_passes_every_check(tmp_path: Path) -> None:
    pytest.importorskip("backends.sql")
    url = f"sqlite+aiosqlite:///{tmp_path / 'simulate.db'}"
    report = await _simulate_adapter(_settings(backend={"driver": "sql", "options": {"url": url}}))
    assert failed(report) == {}, report.to_table()
    assert report.exit_code == 0


async def test_a_configured_key_header_is_used() -> None:
    from backends.memory import MemoryBackend

    settings = _settings(auth={"header": "X-Enginy-Key", "keys": [KEY]})
    report = await _simulate_adapter(settings, MemoryBackend(), header="X-Enginy-Key")
    assert failed(report) == {}, report.to_table()
    report = await _simulate_adapter(settings, MemoryBackend())  # default X-API-Key
    assert failed(report)["connect.health"] == "MUST"


def test_the_command_fits_the_cli_table(closed_port: int) -> None:
    """What ``adapter/cli/commands.py`` wires in: no option clashes with ``--config``."""
    from adapter import cli
    from adapter import simulate as command

    entry = cli.Command(help="simulate", add_arguments=command.add_arguments, run=command.run)
    parser = cli.build_parser({"simulate": entry})
    args = parser.parse_args(
        ["simulate", "--url", f"http://127.0.0.1:{closed_port}", "--api-key", KEY, "--read-only"]
    )
    assert (args.read_only, args.header, args.timeout, args.config) == (True, "X-API-Key", 10, None)
    assert args._run(args) == 1  # nothing listens there: connect.reachable fails


async def test_our_adapter_under_a_root_path() -> None:
    from backends.memory import MemoryBackend

    settings = _settings(server={"root_path": "/enginy"})
    report = await _simulate_adapter(settings, MemoryBackend(), "http://adapter/enginy")
    assert failed(report) == {}, report.to_table()


async def test_our_adapter_on_the_hubspot_driver_meets_every_must() -> None:
    hubspot = pytest.importorskip("backends.hubspot")
    from backends.testing.hubspot import FakeHubSpot

    class Clock:
        """Virtual time: the fake's search rate limit and the driver's waits cost nothing."""

        now = 1000.0

        def __call__(self) -> float:
            return self.now

        async def sleep(self, seconds: float) -> None:
            self.now += max(0.0, seconds)
            await asyncio.sleep(0)

    clock = Clock()
    token = "pat-na1-simulate-0000-token"
    fake = FakeHubSpot(token=token, clock=clock)
    fake.add_owner("Ada", "Lovelace", "ada@example.com")
    options = hubspot.HubSpotOptions(token=token, unknown_properties="create")
    backend = hubspot.HubSpotBackend(
        options, transport=fake.transport(), sleep=clock.sleep, clock=clock
    )
    report = await _simulate_adapter(_settings(), backend)
    assert report.exit_code == 0, report.to_table()
    assert failed(report).keys() <= {
        # HubSpot property names are lower-case: camelCase engagement fields need a mapping.
        "engagement.synced_back",
    }, report.to_table()


def test_a_very_short_key_does_not_garble_the_output() -> None:
    from adapter.simulate.report import scrub_secret

    assert scrub_secret("--read-only: export, campaign", "e") == "--read-only: export, campaign"
    assert "s3cret-key-123" not in scrub_secret("got s3cret-key-123 back", "s3cret-key-123")
