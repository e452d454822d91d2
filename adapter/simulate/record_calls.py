"""The record calls both flows make, as Enginy makes them, each feeding its checks: create and
sync in batches, update, read back by sync, compare what sync returns around an update, and
"land" a synced batch (update what matched, create the rest)."""

from __future__ import annotations

from typing import Any

from adapter.simulate.context import SHOULD, Context, chunks
from adapter.simulate.shapes import SyncMatch, check_created, check_synced, check_updated

__all__ = ["compare_properties", "create_records", "land", "read_back", "sync_records", "update"]


async def create_records(
    ctx: Context, entity: str, records: list[dict[str, Any]]
) -> dict[str, str]:
    """``POST /<entity>`` in batches; feeds ``<entity>.create`` and ``.create.complete``."""
    created: dict[str, str] = {}
    for batch in chunks(records, ctx.batch_size):
        sent = [r["externalId"] for r in batch]
        reply = await ctx.http.call("POST", f"/{entity}", json_body={entity: list(batch)})
        problems, got = check_created(reply.body, sent)
        ctx.shape(f"{entity}.create", reply, problems)
        missing = [e for e in sent if e not in got]
        if reply.ok and not problems:
            totals = ctx.create_totals.setdefault(entity, [0, 0])
            totals[0] += len(sent)
            totals[1] += len(sent) - len(missing)
            ctx.should(
                f"{entity}.create.complete",
                not missing,
                f"no result for {len(missing)} of {len(sent)}, e.g. {missing[:3]}"
                if missing
                else f"{totals[1]} of {totals[0]} records sent so far are in results",
            )
        created.update(got)
    return created


async def sync_records(
    ctx: Context, entity: str, records: list[dict[str, Any]]
) -> dict[str, SyncMatch]:
    """``POST /<entity>/sync`` in batches; feeds ``<entity>.sync``."""
    matches: dict[str, SyncMatch] = {}
    for batch in chunks(records, ctx.batch_size):
        sent = {r["externalId"] for r in batch}
        reply = await ctx.http.call("POST", f"/{entity}/sync", json_body={entity: list(batch)})
        problems, got = check_synced(reply.body, sent)
        ctx.shape(f"{entity}.sync", reply, problems)
        matches.update(got)
    return matches


async def update(ctx: Context, entity: str, updates: list[dict[str, Any]], check: str) -> bool:
    """``PUT /<entity>`` in batches; ``check`` passes when every item reports success."""
    all_ok = True
    for batch in chunks(updates, ctx.batch_size):
        sent = [u["crmId"] for u in batch]
        reply = await ctx.http.call("PUT", f"/{entity}", json_body={entity: list(batch)})
        problems, outcomes = check_updated(reply.body, sent)
        if not ctx.shape(check, reply, problems):
            all_ok = False
            continue
        failed = [c for c in sent if outcomes.get(c, {}).get("success") is not True]
        all_ok &= ctx.must(
            check,
            not failed,
            f"no success for {failed[:3]}: {reply.excerpt}" if failed else f"{len(sent)} updated",
        )
    return all_ok


async def read_back(ctx: Context, entity: str, record: dict[str, Any]) -> SyncMatch | None:
    """Sync one record this run created and return its match (for ``properties`` checks)."""
    matches = await sync_records(ctx, entity, [record])
    match = matches.get(record["externalId"])
    ctx.should(
        f"{entity}.sync.finds_created",
        match is not None,
        "found by externalId/match keys"
        if match
        else f"{record['externalId']} was created by this run but sync did not find it",
    )
    return match


def compare_properties(
    ctx: Context,
    name: str,
    before: SyncMatch | None,
    after: SyncMatch | None,
    *,
    why: str,
    kept: tuple[str, ...] = (),
    set_to: dict[str, Any] | None = None,
) -> None:
    """SHOULD ``name``: between two syncs of one record around an update, the ``kept`` fields
    the server returned before are returned unchanged after, and ``set_to`` are returned with
    the values sent.

    ``properties`` are optional (B.2.3) and may be limited to a configured list, so only the
    fields the server showed *before* the update are held against it; with nothing to compare
    the check is a SKIP, never a PASS.
    """
    if before is None or after is None:
        ctx.skip(name, SHOULD, "the record was not found by sync")
        return
    old, new = before.properties or {}, after.properties or {}
    problems = [
        f"{key}: {old[key]!r} became {new.get(key, '<absent>')!r}"
        for key in kept
        if key in old and new.get(key, _ABSENT) != old[key]
    ]
    problems += [
        f"{key}: sent {value!r}, synced back {new.get(key, '<absent>')!r}"
        for key, value in (set_to or {}).items()
        if new.get(key, _ABSENT) != value
    ]
    compared = [k for k in kept if k in old] + list(set_to or {})
    if not compared or (not old and not new):
        ctx.skip(name, SHOULD, "sync returns none of the fields to compare in properties")
        return
    ctx.should(
        name,
        not problems,
        f"{why}: " + "; ".join(problems[:4]) if problems else f"{len(compared)} fields as expected",
    )


_ABSENT = object()


async def land(
    ctx: Context,
    entity: str,
    records: list[dict[str, Any]],
    matches: dict[str, SyncMatch],
    ids: dict[str, str],
    changes: dict[str, Any],
) -> dict[str, str]:
    """What Enginy does after a sync: update what it matched (with ``changes``), create the
    rest. Notes every crmId in ``ids``; returns the created ones."""
    matched = [r for r in records if r["externalId"] in matches]
    if matched:
        await update(
            ctx,
            entity,
            [{"crmId": matches[r["externalId"]].crm_id, **changes} for r in matched],
            f"{entity}.update",
        )
        for r in matched:
            ids[r["externalId"]] = matches[r["externalId"]].crm_id
    unmatched = [r for r in records if r["externalId"] not in matches]
    created = await create_records(ctx, entity, unmatched) if unmatched else {}
    ids.update(created)
    return created
