"""The queue's table and its rows: the schema, a row as an item, a claim and its outcomes.

:mod:`adapter.outbox.store` runs the statements; this module says what the table looks like,
which rows a deliverer takes (the heads of the queue) and how a claim's outcomes are written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from adapter.outbox.items import OutboxItem, State

__all__ = [
    "MAX_TEXT",
    "Claim",
    "OutboxStats",
    "build_table",
    "finish_claim",
    "heads_query",
    "item_from_row",
]

#: ``id`` auto-increments; SQLite only does so for an ``INTEGER PRIMARY KEY``.
_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MAX_TEXT = 500


def build_table(name: str) -> sa.Table:
    """The queue table called ``name``."""
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", _Seq, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        # Seconds since the epoch: portable, and compared only with each other.
        sa.Column("created_at", sa.Double(), nullable=False),
        # When the current delivery effort began: created_at, or when an operator retried it.
        sa.Column("since", sa.Double(), nullable=False),
        sa.Column("next_attempt_at", sa.Double(), nullable=False),
        sa.Column("last_attempt_at", sa.Double()),
        sa.Column("last_error", sa.String(MAX_TEXT)),
        sa.Column("error_code", sa.String(64)),
        sa.Column("dedupe", sa.String(255)),
        # The heads query's probe: "an earlier pending item of this key?" (partial: dead
        # letters are kept for good and must not slow it down).
        sa.Index(
            f"{name}_pending_key_id",
            "key",
            "id",
            postgresql_where=sa.text("state = 'pending'"),
            sqlite_where=sa.text("state = 'pending'"),
        ),
        sa.Index(f"{name}_state_due", "state", "next_attempt_at"),
        sa.Index(f"{name}_dedupe", "dedupe"),
    )


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """How the queue stands (all replicas' items: the queue is shared)."""

    pending: int = 0
    dead: int = 0
    #: ``created_at`` of the oldest pending item (``None`` when none is pending).
    oldest_pending_at: float | None = None
    #: The earliest ``next_attempt_at`` of a pending item.
    next_due_at: float | None = None


@dataclass(slots=True)
class Claim:
    """The items a deliverer took, and what became of each (applied when the claim ends).

    An item given no outcome is left as it was (not attempted).
    """

    items: list[OutboxItem]
    delivered: list[int] = field(default_factory=list)
    retries: list[dict[str, Any]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)

    def done(self, item: OutboxItem) -> None:
        self.delivered.append(item.id)

    def retry(self, item: OutboxItem, code: str, message: str, at: float, now: float) -> None:
        self.retries.append(
            {
                "b_id": item.id,
                "b_next": at,
                "b_now": now,
                "b_error": message[:MAX_TEXT],
                "b_code": code[:64],
            }
        )

    def give_up(self, item: OutboxItem, code: str, message: str, now: float) -> None:
        self.dead.append(
            {"b_id": item.id, "b_now": now, "b_error": message[:MAX_TEXT], "b_code": code[:64]}
        )


def heads_query(table: sa.Table, limit: int, due_before: float) -> sa.Select[Any]:
    """Up to ``limit`` heads of the queue ``table`` due by ``due_before``: pending items with no
    earlier pending item of the same key, oldest first."""
    t = table
    # The first pending item of each key, in one pass over the partial (key, id) index.
    # (A correlated "no earlier pending item" test reads the same, but on PostgreSQL it
    # needs fresh table statistics to probe the index: on a queue that filled up during
    # an outage the planner's estimate is stale and the plan turns quadratic.)
    firsts = sa.select(sa.func.min(t.c.id)).where(t.c.state == State.PENDING).group_by(t.c.key)
    return (
        sa.select(t)
        .where(t.c.id.in_(firsts), t.c.next_attempt_at <= due_before)
        .order_by(t.c.id)
        .limit(limit)
    )


async def finish_claim(conn: AsyncConnection, table: sa.Table, claim: Claim) -> None:
    """Write the outcomes recorded on ``claim`` to the queue ``table``: delete the delivered
    items, reschedule the retried ones, mark the dead letters."""
    t = table
    if claim.delivered:
        await conn.execute(sa.delete(t).where(t.c.id.in_(claim.delivered)))
    if claim.retries:
        await conn.execute(
            sa.update(t)
            .where(t.c.id == sa.bindparam("b_id"))
            .values(
                attempts=t.c.attempts + 1,
                next_attempt_at=sa.bindparam("b_next"),
                last_attempt_at=sa.bindparam("b_now"),
                last_error=sa.bindparam("b_error"),
                error_code=sa.bindparam("b_code"),
            ),
            claim.retries,
        )
    if claim.dead:
        await conn.execute(
            sa.update(t)
            .where(t.c.id == sa.bindparam("b_id"))
            .values(
                state=State.DEAD.value,
                attempts=t.c.attempts + 1,
                last_attempt_at=sa.bindparam("b_now"),
                last_error=sa.bindparam("b_error"),
                error_code=sa.bindparam("b_code"),
            ),
            claim.dead,
        )


def item_from_row(row: Any) -> OutboxItem:
    """The :class:`OutboxItem` a table row holds."""
    return OutboxItem(
        id=int(row["id"]),
        uid=row["uid"],
        kind=row["kind"],
        key=row["key"],
        payload=json.loads(row["payload"]),
        state=State(row["state"]),
        attempts=int(row["attempts"]),
        created_at=float(row["created_at"]),
        since=float(row["since"]),
        next_attempt_at=float(row["next_attempt_at"]),
        last_error=row["last_error"],
        error_code=row["error_code"],
    )
