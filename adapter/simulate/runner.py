"""The simulation's core: run the scenarios in Enginy's order against an ``httpx.AsyncClient``.

The core takes a client (not a URL) so the tests can hand it an ``httpx.ASGITransport`` around
any Starlette app; :mod:`adapter.simulate.command` builds the real client from ``--url``.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

import httpx

from adapter.simulate.campaign import campaign
from adapter.simulate.connect import connect, read_only_probes
from adapter.simulate.context import MUST, Context
from adapter.simulate.errors import write_errors
from adapter.simulate.export import export
from adapter.simulate.http import BudgetExhausted, SimHttp, Unreachable
from adapter.simulate.report import Report
from adapter.simulate.tasks import tasks

__all__ = ["DEFAULT_MAX_REQUESTS", "simulate"]

#: Enough for the full run with the default 110 contacts (about 70 requests) with room for a
#: larger ``--contacts``; a hard stop against loops, not a target.
DEFAULT_MAX_REQUESTS = 400

Scenario = Callable[[Context], Awaitable[None]]

#: The writing scenarios, in Enginy's order: export, then campaign activity, then tasks.
WRITING: tuple[tuple[str, Scenario], ...] = (
    ("export", export),
    ("campaign", campaign),
    ("tasks", tasks),
    ("errors", write_errors),
)


async def simulate(
    client: httpx.AsyncClient,
    *,
    api_key: str,
    header: str = "X-API-Key",
    read_only: bool = False,
    run_id: str | None = None,
    timeout: float = 10.0,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    contacts: int = 110,
    batch_size: int = 100,
    url: str | None = None,
) -> Report:
    """Play Enginy's side against the server behind ``client`` (its ``base_url`` is the
    server's base URL, path prefix included) and return the report.

    Never raises for a misbehaving or unreachable server: every problem becomes a failed check.
    With ``read_only`` only reads are sent (see :mod:`adapter.simulate.connect`).
    """
    run_id = run_id or secrets.token_hex(4)
    http = SimHttp(client, api_key, header=header, timeout=timeout, max_requests=max_requests)
    shown = url or str(client.base_url.copy_with(username=None, password=None))
    report = Report(run_id=run_id, url=shown, read_only=read_only)
    ctx = Context(http, report, run_id, read_only, contacts=contacts, batch_size=batch_size)

    async def _connect(c: Context) -> None:
        if not await connect(c):
            raise _Stop("GET /health with the key did not answer 2xx")
        await read_only_probes(c)

    scenarios: list[tuple[str, Scenario]] = [("connect", _connect)]
    if not read_only:
        scenarios.extend(WRITING)
    for index, (name, scenario) in enumerate(scenarios):
        try:
            await scenario(ctx)
        except (_Stop, Unreachable, BudgetExhausted) as exc:
            if isinstance(exc, Unreachable):
                ctx.must(f"{name}.reachable", False, str(exc))
            elif isinstance(exc, BudgetExhausted):
                ctx.must("run.request_budget", False, str(exc))
            for rest, _ in scenarios[index + 1 :]:
                ctx.skip(f"{rest}.*", MUST, f"not run: {exc}")
            break
        except Exception as exc:
            # A shape the scenarios did not anticipate must not pass silently, nor hide the
            # checks already made behind a traceback.
            ctx.must(f"{name}.completed", False, f"simulate stopped: {type(exc).__name__}: {exc}")
    if read_only:
        ctx.skip("writes.*", MUST, "--read-only: export, campaign, tasks and write errors not run")

    ctx.should(
        "security.key_not_echoed",
        not http.key_echoes,
        f"the API key appeared in responses to {http.key_echoes[:3]}" if http.key_echoes else "",
    )
    report.requests = http.count
    return report


class _Stop(Exception):
    """Stop the run early; the message says why."""
