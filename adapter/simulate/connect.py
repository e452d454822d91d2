"""Connecting and the read-only probes: what runs in every mode, ``--read-only`` included.

Nothing here can write, even on a broken server: the only POSTs go to the sync endpoints and to
``POST /tasks/batch``, which only read, and the malformed-JSON and non-JSON probes go to
``POST /contacts/sync`` too, so a server that misparses them still has nothing to create.
"""

from __future__ import annotations

from adapter.simulate.context import MUST, SHOULD, Context
from adapter.simulate.http import Auth
from adapter.simulate.shapes import check_synced, check_task_array, check_users

__all__ = ["connect", "read_only_probes"]

#: Statuses with which ``GET /users`` turns owner selection off without an error (B.2.15).
USERS_OFF = (404, 405, 501)

_BAD_KEYS: tuple[tuple[Auth, str], ...] = (("none", "missing_key"), ("wrong", "wrong_key"))


async def connect(ctx: Context) -> bool:
    """Health with, without and with a wrong key; the users probe; 401 on data routes.

    Returns False when ``GET /health`` with the key is not a 2xx: Enginy would not connect,
    so the rest of the run would only repeat that failure.
    """
    http = ctx.http
    reply = await http.call("GET", "/health")
    healthy = ctx.status("connect.health", MUST, reply, range(200, 300), "with the key")
    for auth, name in _BAD_KEYS:
        reply = await http.call("GET", "/health", auth=auth)
        ctx.status(f"auth.health.{name}", SHOULD, reply, (401,), "Part A.2: /health checks keys")
    if not healthy:
        return False

    ghost = {"contacts": [{"externalId": ctx.tag("auth-ghost"), "email": ctx.email("auth")}]}
    for auth, name in _BAD_KEYS:
        # Read-only routes on purpose: a server that forgets the key check must not get a
        # chance to store what the probe sends.
        reply = await http.call("POST", "/contacts/sync", json_body=ghost, auth=auth)
        ctx.status(f"auth.{name}", MUST, reply, (401,))
        reply = await http.call("GET", f"/tasks/{ctx.tag('auth-ghost')}", auth=auth)
        ctx.status(f"auth.{name}", MUST, reply, (401,))

    reply = await http.call("GET", "/users")
    if reply.ok:
        problems, ids = check_users(reply.body)
        if problems:
            ctx.shape("connect.users", reply, problems)
        else:
            ctx.must("connect.users", True, f"{len(ids)} user(s): owner selection on")
            ctx.owner_id = ids[0] if ids else None
        ctx.skip("connect.users.off_status", SHOULD, "users are served")
        for auth, name in _BAD_KEYS:
            reply = await http.call("GET", "/users", auth=auth)
            ctx.status(f"auth.{name}", MUST, reply, (401,))
    else:
        # Any non-2xx turns owner selection off and the connection still goes ahead (B.2.15);
        # only 404/405/501 are the documented ways to say "not implemented".
        ctx.must("connect.users", True, f"{reply.describe()}: owner selection off")
        # A bare framework 404 is a fine way to say "no users", so its body is not held to A.3.
        ctx.status(
            "connect.users.off_status",
            SHOULD,
            reply,
            USERS_OFF,
            "users not served",
            error_body=False,
        )
    return True


async def read_only_probes(ctx: Context) -> None:
    """Sync of records that cannot exist, an unknown task, and unparseable bodies."""
    ghosts = [
        {
            "externalId": ctx.tag(f"ghost-{i}"),
            "email": ctx.email(f"ghost{i}"),
            "firstName": "Ghost",
            "lastName": f"Sim {ctx.run_id}",
            "linkedinUrl": f"https://www.linkedin.com/in/sim-{ctx.run_id}-ghost-{i}",
        }
        for i in range(2)
    ]
    await _sync_matches_nothing(ctx, "contacts", ghosts)
    ghost_company = {
        "externalId": ctx.tag("ghost-co"),
        "name": f"Sim {ctx.run_id} Ghost Company",
        "domain": ctx.domain("ghost"),
        "linkedinUrl": f"https://www.linkedin.com/company/sim-{ctx.run_id}-ghost",
    }
    await _sync_matches_nothing(ctx, "companies", [ghost_company])
    await _unknown_task(ctx)
    await _unparseable_bodies(ctx)


async def _sync_matches_nothing(ctx: Context, entity: str, ghosts: list[dict[str, str]]) -> None:
    """``POST /<entity>/sync`` of records that cannot exist matches none of them."""
    reply = await ctx.http.call("POST", f"/{entity}/sync", json_body={entity: ghosts})
    problems, matches = check_synced(reply.body, {g["externalId"] for g in ghosts})
    if ctx.shape(f"{entity}.sync", reply, problems):
        ctx.must(
            f"{entity}.sync.only_matches",
            not matches,
            f"records that cannot exist were matched: {sorted(matches)}"
            if matches
            else "records that cannot exist were not matched",
        )


async def _unknown_task(ctx: Context) -> None:
    """An unknown task id: 404 alone, left out of a batch read."""
    unknown = ctx.tag("no-such-task")
    reply = await ctx.http.call("GET", f"/tasks/{unknown}")
    ctx.status("tasks.get.unknown", MUST, reply, (404,))

    reply = await ctx.http.call("POST", "/tasks/batch", json_body={"ids": [unknown]})
    problems, tasks = check_task_array(reply.body)
    if ctx.shape("tasks.batch_get", reply, problems):
        ctx.must(
            "tasks.batch_get.skips_unknown",
            not tasks,
            f"unknown ids returned: {sorted(tasks)}" if tasks else "unknown id left out",
        )


async def _unparseable_bodies(ctx: Context) -> None:
    """Malformed JSON and a body that is not JSON are 400 (or 415), sent to a read-only route."""
    http = ctx.http
    reply = await http.call("POST", "/contacts/sync", content=b'{"contacts": [{"externalId": ')
    ctx.status("errors.malformed_json", MUST, reply, (400,))
    reply = await http.call(
        "POST", "/contacts/sync", content=b"contacts=1", content_type="text/plain"
    )
    ctx.status("errors.non_json_body", SHOULD, reply, (400, 415), "Part A.3")
