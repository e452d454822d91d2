"""``enginy-adapter outbox list|retry|drop``: look at the outbox's queue and act on it.

Works on the queue named by ``outbox.url`` / ``outbox.table`` whether or not the server is
running (SQLite allows a second process; PostgreSQL is shared anyway), and whether or not
``outbox.enabled`` is on (to inspect what is left in a queue after turning it off). It never
creates a queue: a missing one is an error.

* ``list [--state pending|dead|all] [--limit N] [--json] [--payload]``: the items, oldest
  first, and a summary line. ``--payload`` adds what each write carries (Enginy's data: field
  values, e-mail addresses) to the JSON lines.
* ``retry ID... | --all-dead``: put dead letters back in the queue, due now.
* ``drop ID... [--pending]``: delete dead letters (with ``--pending``, queued writes too);
  prints each item deleted. Nothing is ever deleted without being named.

Exit codes: 0 done, 1 an error (or some named item was not retried / dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from adapter.cli.common import Command, fail, load_for_command
from adapter.config import ConfigError
from adapter.outbox import OutboxItem, OutboxStore, OutboxUnavailable, State, format_duration
from adapter.redaction import redact

__all__ = ["COMMAND"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list queued writes and dead letters")
    listing.add_argument(
        "--state", choices=["pending", "dead", "all"], default="all", help="default: all"
    )
    listing.add_argument("--limit", type=int, default=100, help="at most N items (default 100)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument(
        "--payload", action="store_true", help="with --json: include what each write carries"
    )
    retry = actions.add_parser("retry", help="put dead letters back in the queue")
    retry.add_argument("ids", nargs="*", type=int, metavar="ID")
    retry.add_argument("--all-dead", action="store_true", help="every dead letter")
    drop = actions.add_parser("drop", help="delete dead letters (named by id)")
    drop.add_argument("ids", nargs="+", type=int, metavar="ID")
    drop.add_argument(
        "--pending", action="store_true", help="also delete queued (not yet delivered) writes"
    )
    for action in (listing, retry, drop):
        # Also after the action (``outbox list --config c.yaml``); SUPPRESS keeps a value
        # given before it.
        action.add_argument(
            "--config", metavar="FILE", default=argparse.SUPPRESS, help="YAML configuration"
        )


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_for_command(args)
    except ConfigError as exc:
        return fail(str(exc))
    if args.action == "retry" and not args.ids and not args.all_dead:
        return fail("outbox retry: name the dead letters (ID...) or pass --all-dead")
    store = OutboxStore(settings.outbox)
    try:
        return asyncio.run(_run(store, args, sys.stdout))
    except OutboxUnavailable as exc:
        return fail(redact(f"outbox: {exc.message}", settings.secret_values()))


async def _run(store: OutboxStore, args: argparse.Namespace, out: TextIO) -> int:
    await store.open(create=False)
    try:
        if args.action == "list":
            return await _list(store, args, out)
        if args.action == "retry":
            return await _retry(store, args, out)
        return await _drop(store, args, out)
    finally:
        await store.close()


async def _list(store: OutboxStore, args: argparse.Namespace, out: TextIO) -> int:
    state = None if args.state == "all" else State(args.state)
    items = await store.list_items(state, limit=max(args.limit, 0))
    now = time.time()
    if args.json:
        for item in items:
            print(json.dumps(_as_json(item, payload=args.payload)), file=out)
        return 0
    if items:
        print(_table(items, now), file=out)
    stats = await store.stats()
    oldest = (
        f"; oldest queued {format_duration(now - stats.oldest_pending_at)} ago"
        if stats.oldest_pending_at is not None
        else ""
    )
    print(
        f"{stats.pending} queued, {stats.dead} dead letter(s){oldest} (queue: {store.where})",
        file=out,
    )
    return 0


async def _retry(store: OutboxStore, args: argparse.Namespace, out: TextIO) -> int:
    count = await store.retry(args.ids, all_dead=args.all_dead)
    print(f"{count} dead letter(s) back in the queue, due now", file=out)
    if not args.all_dead and count < len(set(args.ids)):
        return fail("some ids are not dead letters (already queued, delivered or unknown)")
    return 0


async def _drop(store: OutboxStore, args: argparse.Namespace, out: TextIO) -> int:
    dropped = await store.drop(args.ids, pending_too=args.pending)
    for item in dropped:
        print(f"dropped {item.id} ({item.state}, {item.kind}, {item.key})", file=out)
    missing = sorted(set(args.ids) - {item.id for item in dropped})
    if missing:
        hint = "" if args.pending else " (queued writes are dropped only with --pending)"
        listed = ", ".join(map(str, missing))
        return fail(f"not dropped: {listed}: no such dead letter{hint}")
    return 0


def _as_json(item: OutboxItem, *, payload: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": item.id,
        "receipt": item.receipt,
        "state": item.state.value,
        "kind": item.kind,
        "key": item.key,
        "attempts": item.attempts,
        "created_at": item.created_at,
        "next_attempt_at": item.next_attempt_at,
        "error_code": item.error_code,
        "last_error": item.last_error,
    }
    if payload:
        data["payload"] = item.payload
    return data


def _table(items: Sequence[OutboxItem], now: float) -> str:
    rows = [("ID", "STATE", "KIND", "RECORD", "AGE", "ATTEMPTS", "NEXT", "LAST ERROR")]
    for item in items:
        if item.state is State.DEAD:
            nxt = "-"
        elif item.next_attempt_at > now:
            nxt = "in " + format_duration(item.next_attempt_at - now)
        else:
            nxt = "due"
        error = f"{item.error_code}: {item.last_error}" if item.error_code else item.last_error
        rows.append(
            (
                str(item.id),
                item.state.value,
                item.kind,
                item.key,
                format_duration(now - item.created_at),
                str(item.attempts),
                nxt,
                " ".join((error or "").split())[:120],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    )


COMMAND = Command(
    help="list, retry or drop the outbox's queued writes and dead letters",
    add_arguments=add_arguments,
    run=run,
)
