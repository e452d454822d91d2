"""State shared by the simulation's scenarios: the HTTP side, the report, the run's tags and what
the server answered so far (crmIds, task ids, the owner id)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

from adapter.simulate.http import Reply, SimHttp
from adapter.simulate.report import Level, Report
from adapter.simulate.shapes import check_error_body

__all__ = ["Context", "chunks", "task_path"]

T = TypeVar("T")

MUST, SHOULD = Level.MUST, Level.SHOULD


def task_path(task_id: str) -> str:
    """``/tasks/<id>`` with the server's id escaped: ids are opaque and may hold ``/`` or ``?``."""
    return "/tasks/" + quote(task_id, safe="")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class Context:
    http: SimHttp
    report: Report
    run_id: str
    read_only: bool
    #: How many contacts the export writes (chunked by ``batch_size``, as Enginy does).
    contacts: int = 110
    batch_size: int = 100
    owner_id: str | None = None
    #: externalId -> crmId for the companies and contacts this run created or matched.
    company_ids: dict[str, str] = field(default_factory=dict)
    contact_ids: dict[str, str] = field(default_factory=dict)
    #: externalId -> the record as sent, for checks that read fields back.
    sent_contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: externalIds of the contacts this run's export created (not the ones sync matched), in
    #: order: the campaign and task scenarios work on these, whose fields are known exactly.
    created_contacts: list[str] = field(default_factory=list)
    #: Per entity, [records sent, records in results] over every create so far.
    create_totals: dict[str, list[int]] = field(default_factory=dict)
    #: The company the exported contacts belong to (externalId), once created.
    main_company: str | None = None

    # -- tags: everything this run writes can be found (and deleted) by its run id -----------

    def tag(self, suffix: str) -> str:
        """An externalId / messageId of this run: ``sim-<runid>-<suffix>``."""
        return f"sim-{self.run_id}-{suffix}"

    def email(self, local: str) -> str:
        """An address of this run on the reserved ``.invalid`` TLD, so nothing is ever mailed."""
        return f"{local}+sim-{self.run_id}@example.invalid"

    def domain(self, label: str) -> str:
        return f"{label}-{self.run_id}.sim.example.invalid"

    # -- recording --------------------------------------------------------------------------

    def must(self, name: str, ok: bool, detail: str = "") -> bool:
        return self.report.record(name, MUST, ok, detail)

    def should(self, name: str, ok: bool, detail: str = "") -> bool:
        return self.report.record(name, SHOULD, ok, detail)

    def first_contact(self) -> tuple[str, str] | None:
        """(externalId, crmId) of the first contact the export created, if any."""
        for ext in self.created_contacts:
            if ext in self.contact_ids:
                return ext, self.contact_ids[ext]
        return None

    def skip(self, name: str, level: Level, reason: str) -> None:
        self.report.skip(name, level, reason)

    def shape(self, name: str, reply: Reply, problems: list[str], level: Level = MUST) -> bool:
        """Record ``name`` as: a 2xx answer whose body has no shape problems."""
        if not reply.ok:
            return self.report.record(name, level, False, f"expected 2xx: {reply.describe()}")
        if not reply.is_json:
            return self.report.record(name, level, False, f"not JSON: {reply.describe()}")
        if problems:
            return self.report.record(
                name, level, False, f"{reply.method} {reply.path}: " + "; ".join(problems[:3])
            )
        return self.report.record(
            name, level, True, f"{reply.method} {reply.path} -> {reply.status}"
        )

    def status(
        self,
        name: str,
        level: Level,
        reply: Reply,
        expected: Sequence[int],
        what: str = "",
        *,
        error_body: bool = True,
    ) -> bool:
        """Record ``name`` as: the answer's status is one of ``expected``. A 4xx/5xx answer
        also feeds ``errors.body`` (Part A.3: every error is ``{"error", "message"}``) unless
        ``error_body`` is false."""
        ok = reply.status in expected
        if isinstance(expected, range):
            want = f"{expected.start}-{expected.stop - 1}"
        else:
            want = "/".join(str(s) for s in expected)
        detail = f"{what}: " if what else ""
        detail += (
            f"{reply.describe()}" if not ok else f"{reply.method} {reply.path} -> {reply.status}"
        )
        if not ok:
            detail += f" (expected {want})"
        self.report.record(name, level, ok, detail)
        if reply.status >= 400 and error_body:
            self.error_body(reply)
        return ok

    def error_body(self, reply: Reply) -> None:
        problems = check_error_body(reply.body)
        self.should(
            "errors.body",
            not problems,
            f"{reply.method} {reply.path} -> {reply.status}: " + "; ".join(problems)
            if problems
            else "",
        )
