"""The outbox: a durable queue for the writes Enginy does not wait on (``outbox:`` in the YAML).

When the backend cannot take a record update, an association, an activity or a task update
for a reason that can pass (unreachable, timeout, 429, upstream 503), the write is stored in a
queue (SQLite or PostgreSQL) and answered as accepted; a background deliverer hands it to the
backend later, in arrival order per record, with backoff, until it is delivered or becomes a
dead letter. ``docs/outbox.md`` is the user's guide.

* :mod:`adapter.outbox.items` — what a queued write is (a driver call as JSON) and its key;
* :mod:`adapter.outbox.rows` — the queue's table and its rows: schema, heads, a claim's outcomes;
* :mod:`adapter.outbox.store` — the queue's database: enqueue, claim, finish, list, retry, drop;
* :mod:`adapter.outbox.writes` — the request path: direct, or queued (what the service calls);
* :mod:`adapter.outbox.delivery` — the background deliverer;
* :mod:`adapter.outbox.events` — what the outbox reports (for the metrics);
* :mod:`adapter.outbox.runtime` — the three together, as the app runs them.

Below the service in the front's layers: it needs the configuration and the driver
interface only.
"""

from __future__ import annotations

from adapter.outbox.delivery import EXPIRED, Deliverer
from adapter.outbox.events import NoEvents, OutboxEvents
from adapter.outbox.items import OutboxItem, State, Write, WriteKind
from adapter.outbox.rows import Claim, OutboxStats
from adapter.outbox.runtime import Outbox, OutboxStatus, format_duration
from adapter.outbox.store import OutboxStore, OutboxUnavailable
from adapter.outbox.writes import DirectWrites, Queued, QueueingWrites, Writes

__all__ = [
    "EXPIRED",
    "Claim",
    "Deliverer",
    "DirectWrites",
    "NoEvents",
    "Outbox",
    "OutboxEvents",
    "OutboxItem",
    "OutboxStats",
    "OutboxStatus",
    "OutboxStore",
    "OutboxUnavailable",
    "Queued",
    "QueueingWrites",
    "State",
    "Write",
    "WriteKind",
    "Writes",
    "format_duration",
]
