"""The outcome of a simulation: checks, their levels, and how they are printed.

A check is one named expectation about the server, marked ``MUST`` (Part B of the contract, what
Enginy relies on) or ``SHOULD`` (Part A, this project's decisions, which another implementation
may legitimately not share). Several calls may feed the same check (every ``POST /contacts`` batch
feeds ``contacts.create``); the check fails if any of them failed.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Check", "Level", "Report", "Status", "mask_secret", "scrub_secret"]


class Level(enum.StrEnum):
    """How binding a check is: a failed MUST makes the run exit non-zero."""

    MUST = "MUST"
    SHOULD = "SHOULD"


class Status(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass
class Check:
    name: str
    level: Level
    status: Status
    detail: str = ""
    #: How many observations fed this check (several batches may feed one check).
    observations: int = 1

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "level": self.level.value,
            "status": self.status.value,
            "detail": self.detail,
            "observations": self.observations,
        }


#: Shorter keys are not replaced inside other text: a one- or two-letter key would garble every
#: word containing those letters, and a key that short is no secret to protect anyway.
MIN_SCRUBBED_LENGTH = 6


def scrub_secret(text: str, secret: str) -> str:
    """``text`` with every occurrence of ``secret`` masked (see :data:`MIN_SCRUBBED_LENGTH`)."""
    if len(secret) < MIN_SCRUBBED_LENGTH:
        return text
    return text.replace(secret, mask_secret(secret))


def mask_secret(secret: str) -> str:
    """What the output shows instead of a secret: nothing of its value, only its length."""
    return f"****({len(secret)} chars)" if secret else "(empty)"


# Details are one line in the table; longer ones are cut so one bad body cannot flood the output.
_MAX_DETAIL = 300


@dataclass
class Report:
    run_id: str
    url: str
    read_only: bool
    checks: list[Check] = field(default_factory=list)
    requests: int = 0

    # -- recording --------------------------------------------------------------------------

    def _find(self, name: str) -> Check | None:
        for check in self.checks:
            if check.name == name:
                return check
        return None

    def record(self, name: str, level: Level, ok: bool, detail: str = "") -> bool:
        """Record one observation for ``name``; merge with earlier ones (a FAIL is sticky, and
        the first failure's detail is kept, because it is the one worth debugging from; while
        passing, the latest detail is kept)."""
        status = Status.PASS if ok else Status.FAIL
        detail = _one_line(detail)
        existing = self._find(name)
        if existing is None:
            self.checks.append(Check(name, level, status, detail))
            return ok
        existing.observations += 1
        if existing.status is Status.SKIP:
            existing.status, existing.detail = status, detail
        elif existing.status is Status.PASS and not ok:
            existing.status, existing.detail = Status.FAIL, detail
        elif existing.status is Status.PASS and detail:
            # Passing observations: the latest detail is the most complete (running totals).
            existing.detail = detail
        return ok

    def skip(self, name: str, level: Level, reason: str) -> None:
        """Record that ``name`` could not be checked; an earlier observation wins."""
        if self._find(name) is None:
            self.checks.append(Check(name, level, Status.SKIP, _one_line(reason)))

    # -- outcome ----------------------------------------------------------------------------

    def failed(self, level: Level | None = None) -> list[Check]:
        return [
            c
            for c in self.checks
            if c.status is Status.FAIL and (level is None or c.level is level)
        ]

    @property
    def exit_code(self) -> int:
        """1 iff a MUST failed; SHOULD failures are reported but do not fail the run."""
        return 1 if self.failed(Level.MUST) else 0

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for check in self.checks:
            out[check.status.value] += 1
        out["MUST_FAIL"] = len(self.failed(Level.MUST))
        out["SHOULD_FAIL"] = len(self.failed(Level.SHOULD))
        return out

    # -- rendering --------------------------------------------------------------------------

    def as_dict(self) -> dict[str, object]:
        return {
            "runId": self.run_id,
            "url": self.url,
            "readOnly": self.read_only,
            "requests": self.requests,
            "summary": self.counts(),
            "exitCode": self.exit_code,
            "checks": [c.as_dict() for c in self.checks],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def to_table(self) -> str:
        header = ("CHECK", "LEVEL", "RESULT", "DETAIL")
        rows = [(c.name, c.level.value, c.status.value, _detail(c)) for c in self.checks]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
        lines = [_row(header, widths), _row((*("-" * w for w in widths), "------"), widths)]
        lines.extend(_row(r, widths) for r in rows)
        counts = self.counts()
        lines.append("")
        lines.append(
            f"run {self.run_id}: {len(self.checks)} checks, {counts['PASS']} passed, "
            f"{counts['FAIL']} failed ({counts['MUST_FAIL']} MUST, {counts['SHOULD_FAIL']} "
            f"SHOULD), {counts['SKIP']} skipped; {self.requests} requests"
        )
        must = self.failed(Level.MUST)
        if must:
            lines.append("MUST failures: " + ", ".join(c.name for c in must))
        else:
            lines.append("No MUST failed: the server meets the contract Enginy relies on.")
        return "\n".join(lines)


def _row(cells: Iterable[str], widths: list[int]) -> str:
    cells = list(cells)
    padded = [cells[i].ljust(widths[i]) for i in range(3)]
    return "  ".join([*padded, cells[3]]).rstrip()


def _detail(check: Check) -> str:
    if check.observations > 1:
        return f"[{check.observations} calls] {check.detail}".rstrip()
    return check.detail


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
