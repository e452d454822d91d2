"""Tasks (B.2.10-B.2.14, Part A.10): create, get, complete, batch get, batch complete."""

from __future__ import annotations

from typing import Any

from adapter.simulate.context import MUST, Context, task_path
from adapter.simulate.shapes import check_has_id, check_task_array

__all__ = ["tasks"]


def _task(ctx: Context, n: int) -> dict[str, Any]:
    task: dict[str, Any] = {
        # The run id goes into the subject and description only: extra task fields are not
        # documented, and a strict server may refuse them.
        "subject": f"[sim-{ctx.run_id}] Follow up with Lead {n:03d}",
        "description": f"Written by enginy-adapter simulate, run {ctx.run_id}; safe to delete.",
        "type": "call",
        "dueDate": "2030-01-15T10:00:00Z",
    }
    first = ctx.first_contact()
    contact = first[1] if first else None
    company = ctx.company_ids.get(ctx.main_company or "")
    if contact:
        task["contactId"] = contact
    if company:
        task["companyId"] = company
    if ctx.owner_id:
        task["ownerId"] = ctx.owner_id
    return task


async def _create(ctx: Context, n: int) -> tuple[str | None, dict[str, Any]]:
    sent = _task(ctx, n)
    reply = await ctx.http.call("POST", "/tasks", json_body=sent)
    if not ctx.shape("tasks.create", reply, check_has_id(reply.body)):
        return None, sent
    body = reply.body
    problems = []
    if body.get("completed") is not False:
        problems.append(f"completed is {body.get('completed')!r}, expected false")
    if body.get("subject") != sent["subject"]:
        problems.append(f"subject is {body.get('subject')!r}, expected the one sent")
    ctx.should("tasks.create.fields", not problems, "; ".join(problems) or "subject, completed")
    return str(body["id"]), sent


async def tasks(ctx: Context) -> None:
    task_id, sent = await _create(ctx, 1)
    if task_id is None:
        for name in ("tasks.get", "tasks.complete", "tasks.batch_get", "tasks.batch_complete"):
            ctx.skip(name, MUST, "task creation failed")
        return
    await _get_and_complete(ctx, task_id, sent)
    if await _batch_get_and_complete(ctx):
        await _uncomplete(ctx, task_id)


async def _get_and_complete(ctx: Context, task_id: str, sent: dict[str, Any]) -> None:
    """``GET /tasks/:id`` returns the task sent; ``PATCH`` completes it, with a time."""
    reply = await ctx.http.call("GET", task_path(task_id))
    problems = check_has_id(reply.body)
    if not problems and (
        reply.body["id"] != task_id or reply.body.get("subject") != sent["subject"]
    ):
        problems.append(f"got id {reply.body['id']!r} subject {reply.body.get('subject')!r}")
    ctx.shape("tasks.get", reply, problems)

    reply = await ctx.http.call("PATCH", task_path(task_id), json_body={"completed": True})
    problems = check_has_id(reply.body)
    if not problems and reply.body.get("completed") is not True:
        problems.append(f"completed is {reply.body.get('completed')!r} after completing")
    if ctx.shape("tasks.complete", reply, problems):
        done_at = reply.body.get("completedAt")
        ctx.should(
            "tasks.complete.completed_at",
            isinstance(done_at, str) and done_at != "",
            f"completedAt is {done_at!r}",
        )


async def _batch_get_and_complete(ctx: Context) -> bool:
    """Two more tasks, read and completed in batches (an unknown id is skipped). Returns
    whether they could be created."""
    http = ctx.http
    ids = [i for i in [(await _create(ctx, n))[0] for n in (2, 3)] if i is not None]
    if len(ids) < 2:
        ctx.skip("tasks.batch_complete", MUST, "task creation failed")
        return False
    unknown = ctx.tag("no-such-task")
    reply = await http.call("POST", "/tasks/batch", json_body={"ids": [*ids, unknown]})
    problems, got = check_task_array(reply.body)
    if not problems and set(got) != set(ids):
        problems.append(f"returned ids {sorted(got)}, expected {sorted(ids)}")
    ctx.shape("tasks.batch_get", reply, problems)

    reply = await http.call("PATCH", "/tasks/batch", json_body={"ids": ids, "completed": True})
    problems, got = check_task_array(reply.body)
    if not problems:
        if set(got) != set(ids):
            problems.append(f"returned ids {sorted(got)}, expected {sorted(ids)}")
        problems += [f"{i} not completed" for i, t in got.items() if t.get("completed") is not True]
    if ctx.shape("tasks.batch_complete", reply, problems):
        reply = await http.call("GET", task_path(ids[0]))
        done = reply.ok and isinstance(reply.body, dict) and reply.body.get("completed") is True
        ctx.should(
            "tasks.batch_complete.persisted",
            done,
            "GET after batch complete shows completed" if done else reply.describe(),
        )
    return True


async def _uncomplete(ctx: Context, task_id: str) -> None:
    """Un-completing clears completedAt (Part A.10)."""
    reply = await ctx.http.call("PATCH", task_path(task_id), json_body={"completed": False})
    body = reply.body if isinstance(reply.body, dict) else {}
    ok = reply.ok and body.get("completed") is False and body.get("completedAt") in (None, "")
    ctx.should(
        "tasks.uncomplete",
        ok,
        "completed false, completedAt cleared" if ok else reply.describe(),
    )
