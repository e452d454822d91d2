"""Error cases that need a writing endpoint (skipped with ``--read-only``): bad input is a 4xx
with ``{"error", "message"}``, never a 5xx, and never a half-written record."""

from __future__ import annotations

from typing import Any

from adapter.simulate.context import MUST, SHOULD, Context
from adapter.simulate.shapes import check_created, check_updated

__all__ = ["write_errors"]


async def write_errors(ctx: Context) -> None:
    http = ctx.http
    rid = ctx.run_id

    reply = await http.call("POST", "/contacts", content=b'{"contacts": [{"externalId": "x"')
    ctx.status("errors.malformed_json", MUST, reply, (400,))
    reply = await http.call("POST", "/activities", content=b'{"type": "EMAIL", ')
    ctx.status("errors.malformed_json", MUST, reply, (400,))

    no_id = {"email": ctx.email("no-external-id"), "firstName": "NoId", "lastName": f"Sim {rid}"}
    reply = await http.call("POST", "/contacts", json_body={"contacts": [no_id]})
    ctx.status("errors.missing_external_id", MUST, reply, range(400, 500), "B.2.2 requires it")

    await _bad_records(ctx, no_id)

    reply = await http.call(
        "POST",
        "/activities",
        json_body={"subject": f"[sim-{rid}] no type", "direction": "OUTBOUND"},
    )
    ctx.status("errors.activity_missing_type", SHOULD, reply, (400,), "Part A.9")
    reply = await http.call(
        "POST", "/tasks", json_body={"description": f"[sim-{rid}] no subject", "type": "call"}
    )
    ctx.status("errors.task_missing_subject", SHOULD, reply, (400,), "Part A.10")

    unknown = ctx.tag("no-such-task")
    reply = await http.call("PATCH", f"/tasks/{unknown}", json_body={"completed": True})
    ctx.status("errors.patch_unknown_task", SHOULD, reply, (404,), "Part A.10")

    ghost = ctx.tag("no-such-contact")
    reply = await http.call(
        "PUT", "/contacts", json_body={"contacts": [{"crmId": ghost, "title": "nobody"}]}
    )
    problems, outcomes = check_updated(reply.body, {ghost})
    outcome = outcomes.get(ghost, {})
    ok = reply.ok and not problems and outcome.get("success") is False
    ctx.should(
        "errors.update_unknown_crm_id",
        ok,
        f"success false, error {outcome.get('error')!r}"
        if ok
        else f"Part A.6 expects 200 with success false: {reply.describe()}",
    )


async def _bad_records(ctx: Context, no_id: dict[str, Any]) -> None:
    """A batch with one good record and one bad one.

    Part A.5 wants a record that fails *for a reason of its own* listed in a top-level
    ``errors`` array while the rest of the batch goes through (HTTP 200). A record without
    ``externalId`` is a *shape* error, which Part A.3 allows to fail the whole request, so that
    probe only rules out the two wrong answers: a 2xx that drops the record without a word, and a
    5xx. A value the server rejects is backend-specific (an embedded store keeps any string; a
    CRM such as HubSpot refuses a malformed email), so the second probe sends one and SKIPs when
    the server accepted it.
    """
    await _record_without_id(ctx, _good_contact(ctx, "good-a"), no_id)
    await _record_with_invalid_value(ctx, _good_contact(ctx, "good-b"))


def _good_contact(ctx: Context, suffix: str) -> dict[str, Any]:
    return {
        "externalId": ctx.tag(f"ct-{suffix}"),
        "email": ctx.email(suffix),
        "firstName": "Good",
        "lastName": f"Sim {ctx.run_id}",
        "enginySimulationRun": ctx.run_id,
    }


async def _record_without_id(ctx: Context, good: dict[str, Any], no_id: dict[str, Any]) -> None:
    """A record without ``externalId`` beside a good one: listed in ``errors``, or a 4xx."""
    reply = await ctx.http.call("POST", "/contacts", json_body={"contacts": [good, no_id]})
    errors = reply.body.get("errors") if isinstance(reply.body, dict) else None
    listed = isinstance(errors, list) and len(errors) >= 1
    if reply.ok:
        ctx.should(
            "errors.bad_record_reported",
            listed,
            "200 with the record in `errors`"
            if listed
            else f"the record without externalId was dropped silently: {reply.describe()}",
        )
    else:
        ctx.status("errors.bad_record_reported", SHOULD, reply, range(400, 500), "Part A.3/A.5")


async def _record_with_invalid_value(ctx: Context, good: dict[str, Any]) -> None:
    """A malformed email beside a good record: the good one created, the bad one in
    ``errors`` (SKIP when the server keeps any string)."""
    bad = {**_good_contact(ctx, "bad-email"), "email": "not an email address"}
    reply = await ctx.http.call("POST", "/contacts", json_body={"contacts": [good, bad]})
    problems, created = check_created(reply.body, {good["externalId"], bad["externalId"]})
    errors = reply.body.get("errors") if isinstance(reply.body, dict) else None
    named = isinstance(errors, list) and any(
        isinstance(e, dict) and e.get("externalId") == bad["externalId"] for e in errors
    )
    if reply.ok and problems:
        ctx.skip(
            "errors.invalid_value_listed", SHOULD, "malformed create response: contacts.create"
        )
    elif reply.ok and bad["externalId"] in created:
        ctx.skip("errors.invalid_value_listed", SHOULD, "the server accepted a malformed email")
    else:
        ok = reply.ok and not problems and good["externalId"] in created and named
        ctx.should(
            "errors.invalid_value_listed",
            ok,
            "good record created, the malformed email listed in `errors`"
            if ok
            else f"Part A.5 expects 200, the good record in results and the bad one in "
            f"errors[].externalId: {reply.describe()}",
        )
