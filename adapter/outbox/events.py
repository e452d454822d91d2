"""What the outbox reports as it works: queued, delivered, failed and dead items, and the
queue's statistics. The operations layer turns them into metrics (:mod:`adapter.ops`)."""

from __future__ import annotations

from typing import Protocol

from adapter.outbox.rows import OutboxStats

__all__ = ["NoEvents", "OutboxEvents"]


class OutboxEvents(Protocol):
    """What the deliverer and the request path report (metrics: :mod:`adapter.ops`)."""

    def enqueued(self, kind: str, count: int) -> None: ...
    def delivered(self, kind: str, count: int) -> None: ...
    def attempt_failed(self, kind: str, code: str) -> None: ...
    def dead_letter(self, kind: str, code: str) -> None: ...
    def stats(self, stats: OutboxStats) -> None: ...


class NoEvents:
    """Reports nowhere."""

    def enqueued(self, kind: str, count: int) -> None:
        pass

    def delivered(self, kind: str, count: int) -> None:
        pass

    def attempt_failed(self, kind: str, code: str) -> None:
        pass

    def dead_letter(self, kind: str, code: str) -> None:
        pass

    def stats(self, stats: OutboxStats) -> None:
        pass
