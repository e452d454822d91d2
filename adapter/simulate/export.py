"""The export flow, as Enginy runs it (B.6): companies first, then contacts, then associations.

To exercise "sync finds what already exists", each entity starts with a *seed* record created
under one externalId; the export then syncs a record with a *different* externalId whose email
or domain is a variant of the seed's (case, ``www.``, scheme, path, whitespace), so only the
server's normalised matching can find it (Part A.7).
"""

from __future__ import annotations

from typing import Any

from adapter.simulate.context import MUST, SHOULD, Context, chunks
from adapter.simulate.record_calls import (
    compare_properties,
    create_records,
    land,
    read_back,
    sync_records,
    update,
)
from adapter.simulate.shapes import SyncMatch

__all__ = ["export"]


async def export(ctx: Context) -> None:
    await _companies(ctx)
    await _contacts(ctx)
    await _associations(ctx)


# -- companies --------------------------------------------------------------------------------


async def _companies(ctx: Context) -> None:
    seed_crm = await _seed_company(ctx)
    alpha, beta = _company_probes(ctx)
    matches = await sync_records(ctx, "companies", [alpha, beta])
    _check_company_sync(ctx, alpha, beta, matches, seed_crm)
    created = await land(
        ctx,
        "companies",
        [alpha, beta],
        matches,
        ctx.company_ids,
        {"industry": "Simulation (updated)", "enginySimulationRun": ctx.run_id},
    )
    if beta["externalId"] in ctx.company_ids:
        ctx.main_company = beta["externalId"]
    beta_crm = created.get(beta["externalId"])
    if beta_crm is not None:
        await _check_company_resend_and_update(ctx, beta, beta_crm)


async def _seed_company(ctx: Context) -> str | None:
    rid = ctx.run_id
    seed: dict[str, Any] = {
        "externalId": ctx.tag("co-seed"),
        "name": f"Sim {rid} Seed Corp",
        "domain": ctx.domain("seed"),
        "industry": "Simulation",
        "numberOfEmployees": 42,
        "linkedinUrl": f"https://www.linkedin.com/company/sim-{rid}-seed",
        "description": "Written by enginy-adapter simulate; safe to delete.",
        "enginySimulationRun": rid,
    }
    seed_crm = (await create_records(ctx, "companies", [seed])).get(seed["externalId"])
    if seed_crm:
        ctx.company_ids[seed["externalId"]] = seed_crm
    return seed_crm


def _company_probes(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    """Alpha is the seed seen by Enginy under another id, its domain written another way;
    beta is a new company."""
    rid = ctx.run_id
    alpha: dict[str, Any] = {
        "externalId": ctx.tag("co-alpha"),
        "name": f"Sim {rid} Alpha (seed as Enginy knows it)",
        "domain": f"https://WWW.{ctx.domain('seed').upper()}/about",
        "employeeCount": 42,
        "enginySimulationRun": rid,
    }
    beta: dict[str, Any] = {
        "externalId": ctx.tag("co-beta"),
        "name": f"Sim {rid} Beta Ltd",
        "domain": ctx.domain("beta"),
        "industry": "Software",
        "numberOfEmployees": 150,
        "linkedinUrl": f"https://www.linkedin.com/company/sim-{rid}-beta",
        "enginySimulationRun": rid,
    }
    if ctx.owner_id:
        beta["ownerId"] = ctx.owner_id
    return alpha, beta


def _check_company_sync(
    ctx: Context,
    alpha: dict[str, Any],
    beta: dict[str, Any],
    matches: dict[str, SyncMatch],
    seed_crm: str | None,
) -> None:
    found = matches.get(alpha["externalId"])
    if seed_crm is None:
        ctx.skip("companies.sync.normalised_domain", SHOULD, "seed company not created")
    else:
        ctx.should(
            "companies.sync.normalised_domain",
            found is not None and found.crm_id == seed_crm,
            f"{alpha['domain']!r} found {ctx.domain('seed')!r}"
            if found is not None and found.crm_id == seed_crm
            else f"{alpha['domain']!r} did not find the company with domain "
            f"{ctx.domain('seed')!r} ({'matched ' + found.crm_id if found else 'no match'})",
        )
    ctx.must(
        "companies.sync.only_matches",
        beta["externalId"] not in matches,
        f"{beta['externalId']} (a new domain) was matched"
        if beta["externalId"] in matches
        else "a new domain was not matched",
    )


async def _check_company_resend_and_update(
    ctx: Context, beta: dict[str, Any], beta_crm: str
) -> None:
    again = await create_records(ctx, "companies", [beta])
    repeat = again.get(beta["externalId"])
    ctx.should(
        "companies.create.idempotent",
        repeat == beta_crm,
        f"re-sent create returned {repeat!r}, first create {beta_crm!r}"
        if repeat != beta_crm
        else "re-sent create returned the same crmId",
    )

    # Partial update: only `industry` is sent; everything else must survive.
    probe = {"externalId": beta["externalId"], "domain": beta["domain"]}
    before = await read_back(ctx, "companies", probe)
    change = [{"crmId": beta_crm, "industry": "Software (updated)"}]
    if await update(ctx, "companies", change, "companies.update"):
        compare_properties(
            ctx,
            "companies.update.partial",
            before,
            await read_back(ctx, "companies", probe),
            why="Part A.6: PUT changes only the keys sent",
            kept=("name", "domain", "numberOfEmployees", "linkedinUrl", "enginySimulationRun"),
        )


# -- contacts ---------------------------------------------------------------------------------


def _contact(ctx: Context, i: int) -> dict[str, Any]:
    rid = ctx.run_id
    record: dict[str, Any] = {
        "externalId": ctx.tag(f"ct-{i:03d}"),
        "email": ctx.email(f"lead{i:03d}"),
        "firstName": "Lead",
        "lastName": f"{i:03d} Sim {rid}",
        "title": "Head of Simulations",
        "company": f"Sim {rid} Beta Ltd",
        "linkedinUrl": f"https://www.linkedin.com/in/sim-{rid}-lead-{i:03d}/",
        "phone": f"+1555{i:07d}",
        "enginySimulationRun": rid,
    }
    if ctx.owner_id:
        record["ownerId"] = ctx.owner_id
    return record


async def _contacts(ctx: Context) -> None:
    seed_crm = await _seed_contact(ctx)
    records = [_contact(ctx, i) for i in range(ctx.contacts)]
    # Lead 000 is the seed as Enginy knows it: another id, the email cased and padded.
    variant = f"  {ctx.email('seed').upper()} "
    records[0].update(email=variant, firstName="Seed", title="Existing Contact")
    for record in records:
        ctx.sent_contacts[record["externalId"]] = record

    matches = await sync_records(ctx, "contacts", records)
    _check_contact_sync(ctx, records, matches, seed_crm, variant)
    unmatched = [r for r in records if r["externalId"] not in matches]
    created = await land(
        ctx, "contacts", records, matches, ctx.contact_ids, {"title": "Existing Contact (updated)"}
    )
    ctx.created_contacts.extend(r["externalId"] for r in unmatched if r["externalId"] in created)
    await _check_contacts_resend(
        ctx, [r for r in unmatched if r["externalId"] in created][:2], created
    )


async def _seed_contact(ctx: Context) -> str | None:
    seed: dict[str, Any] = {
        "externalId": ctx.tag("ct-seed"),
        "email": ctx.email("seed"),
        "firstName": "Seed",
        "lastName": f"Sim {ctx.run_id}",
        "title": "Existing Contact",
        "enginySimulationRun": ctx.run_id,
    }
    seed_crm = (await create_records(ctx, "contacts", [seed])).get(seed["externalId"])
    if seed_crm:
        ctx.contact_ids[seed["externalId"]] = seed_crm
    return seed_crm


def _check_contact_sync(
    ctx: Context,
    records: list[dict[str, Any]],
    matches: dict[str, SyncMatch],
    seed_crm: str | None,
    variant: str,
) -> None:
    first = matches.get(records[0]["externalId"])
    if seed_crm is None:
        ctx.skip("contacts.sync.normalised_email", SHOULD, "seed contact not created")
    else:
        hit = first is not None and first.crm_id == seed_crm
        ctx.should(
            "contacts.sync.normalised_email",
            hit,
            f"{variant!r} found {ctx.email('seed')!r}"
            if hit
            else f"{variant!r} did not find the contact with email {ctx.email('seed')!r}",
        )
    false_hits = sorted(e for e in matches if e != records[0]["externalId"])
    ctx.must(
        "contacts.sync.only_matches",
        not false_hits,
        f"new contacts were matched: {false_hits[:3]}" if false_hits else "no new contact matched",
    )


async def _check_contacts_resend(
    ctx: Context, resend: list[dict[str, Any]], created: dict[str, str]
) -> None:
    if not resend:
        return
    again = await create_records(ctx, "contacts", resend)
    changed = {
        r["externalId"]: again.get(r["externalId"])
        for r in resend
        if again.get(r["externalId"]) != created[r["externalId"]]
    }
    ctx.should(
        "contacts.create.idempotent",
        not changed,
        f"re-sent creates returned other crmIds: {changed}"
        if changed
        else "re-sent creates returned the same crmIds",
    )


async def _associations(ctx: Context) -> None:
    company_crm = ctx.company_ids.get(ctx.main_company or "")
    seed_company = ctx.company_ids.get(ctx.tag("co-seed"))
    pairs = [
        {"contactCRMId": crm, "companyCRMId": company_crm}
        for ext, crm in ctx.contact_ids.items()
        if company_crm and ext != ctx.tag("ct-seed")
    ]
    if seed_company and ctx.tag("ct-seed") in ctx.contact_ids:
        pairs.append(
            {"contactCRMId": ctx.contact_ids[ctx.tag("ct-seed")], "companyCRMId": seed_company}
        )
    if not pairs:
        ctx.skip("associations.create", MUST, "no contact/company pairs were created")
        return
    batches = list(chunks(pairs, ctx.batch_size))
    for batch in batches:
        reply = await ctx.http.call("POST", "/associations", json_body={"associations": batch})
        body = reply.body
        problems = (
            []
            if isinstance(body, dict) and body.get("success") is True
            else [f"expected {{'success': true}}, got {reply.excerpt or 'no body'}"]
        )
        ctx.shape("associations.create", reply, problems)
    reply = await ctx.http.call("POST", "/associations", json_body={"associations": batches[0]})
    ok = reply.ok and isinstance(reply.body, dict) and reply.body.get("success") is True
    ctx.should(
        "associations.idempotent",
        ok,
        "re-sent pairs accepted" if ok else f"re-sent pairs: {reply.describe()}",
    )
