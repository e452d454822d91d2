"""Campaign activity (B.3, B.5): the eight activity kinds, their dedupe, and engagement fields
pushed through ``PUT /contacts`` under user-chosen names."""

from __future__ import annotations

from typing import Any

from adapter.simulate.context import MUST, SHOULD, Context
from adapter.simulate.record_calls import compare_properties, read_back, update
from adapter.simulate.shapes import check_has_id

__all__ = ["ACTIVITY_TYPES", "DIRECTIONS", "campaign"]

ACTIVITY_TYPES = ("EMAIL", "LINKEDIN", "LINKEDIN_INMAIL", "LINKEDIN_CONNECTION")
DIRECTIONS = ("OUTBOUND", "INBOUND")


def _activity(ctx: Context, kind: str, direction: str, contact: str, company: str | None) -> Any:
    rid = ctx.run_id
    subject = (
        f"[1/3] [FROM Sim {rid} Corp] Simulation Sender"
        if direction == "OUTBOUND"
        else f"[Sim {rid} Beta Ltd] Lead 001"
    )
    activity: dict[str, Any] = {
        "type": kind,
        "subject": f"{subject} [sim-{rid}]",
        "body": "<p>Hello from <b>enginy-adapter simulate</b></p>"
        if kind == "EMAIL"
        else "Hello from enginy-adapter simulate",
        "direction": direction,
        "occurredAt": "2024-12-31T10:00:00Z",
        "contactId": contact,
        "metadata": {
            "messageId": ctx.tag(f"msg-{kind.lower()}-{direction.lower()}"),
            "sequenceIndex": 1,
            "sequenceMessageCount": 3,
            "enginySimulationRun": rid,
        },
    }
    if company:
        activity["companyId"] = company
    if ctx.owner_id:
        activity["ownerId"] = ctx.owner_id
    return activity


async def campaign(ctx: Context) -> None:
    first = ctx.first_contact()
    if first is None:
        for kind in ACTIVITY_TYPES:
            for direction in DIRECTIONS:
                ctx.skip(f"activity.{kind}.{direction}", MUST, "no contact was exported")
        ctx.skip("engagement.update", MUST, "no contact was exported")
        return
    target, contact = first
    company = ctx.company_ids.get(ctx.main_company or "")

    first_id: str | None = None
    first_body: Any = None
    for kind in ACTIVITY_TYPES:
        for direction in DIRECTIONS:
            body = _activity(ctx, kind, direction, contact, company)
            reply = await ctx.http.call("POST", "/activities", json_body=body)
            ok = ctx.shape(f"activity.{kind}.{direction}", reply, check_has_id(reply.body))
            if ok and first_id is None:
                first_id, first_body = reply.body["id"], body

    if first_id is None:
        ctx.skip("activities.idempotent", SHOULD, "no activity was created")
    else:
        reply = await ctx.http.call("POST", "/activities", json_body=first_body)
        again = reply.body.get("id") if reply.ok and isinstance(reply.body, dict) else None
        ctx.should(
            "activities.idempotent",
            again == first_id,
            "same messageId returned the same id"
            if again == first_id
            else f"same type/direction/messageId returned {again!r}, first {first_id!r} (Part A.9)",
        )

    await _engagement(ctx, target, contact)


async def _engagement(ctx: Context, external_id: str, crm_id: str) -> None:
    """Engagement fields under logical and user-chosen names (B.5.1), then read back."""
    fields: dict[str, Any] = {
        "campaignEngagementStatus": "Message Replied (2/3) - LINKEDIN",
        "campaignSequenceStatus": "Replied",
        "campaignOpens": 5,
        "campaignClicks": 2,
        "genesy_engagement_status": "Message Replied (2/3) - LINKEDIN",
        "genesy_last_activity": "2024-12-31T10:00:00Z",
        f"sim_{ctx.run_id}_custom_field": "user-named field",
    }
    sent = ctx.sent_contacts.get(external_id, {})
    probe = {"externalId": external_id, "email": sent.get("email")}
    before = await read_back(ctx, "contacts", probe)
    ok = await update(
        ctx,
        "contacts",
        [{"crmId": crm_id, **fields, "enginySimulationRun": ctx.run_id}],
        "engagement.update",
    )
    if not ok:
        ctx.skip("engagement.synced_back", SHOULD, "engagement update failed")
        return
    after = await read_back(ctx, "contacts", probe)
    compare_properties(
        ctx,
        "engagement.synced_back",
        before,
        after,
        why="Part A.8: any field name is stored (and synced back)",
        set_to=fields,
    )
    compare_properties(
        ctx,
        "contacts.update.partial",
        before,
        after,
        why="Part A.6: PUT with engagement fields only must not blank the others",
        kept=("email", "firstName", "lastName", "title", "phone", "linkedinUrl", "company"),
    )
