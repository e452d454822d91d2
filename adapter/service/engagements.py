"""Associations, activities, tasks and users: the optional groups of the contract (A.9-A.11).

Tasks have their own module, :mod:`adapter.service.tasks`. Each group needs its
:class:`~backends.base.Capability`; a driver without it gets one contract-level answer (501
``not_implemented``) before any work is done. Before a write, the checks of
:mod:`adapter.service.checks` (keys that are almost fields, numbers that are not finite) and the
owner check of :mod:`adapter.service.references` run; a contact or company that does not exist
is found by the driver and named there (400 ``invalid_reference``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence

from cachetools import LRUCache

from adapter.contract import (
    ActivityCreated,
    ActivityIn,
    AssociationError,
    AssociationIn,
    AssociationsResponse,
    KeyWarning,
    QueuedActivityOut,
    UserOut,
)
from adapter.errors import ApiError
from adapter.outbox import Queued
from adapter.service.checks import check_keys, reject_non_finite, require_capability
from adapter.service.references import InvalidReference, describe
from adapter.service.tasks import TaskOperations
from backends.base import (
    Activity,
    AssociationPair,
    Capability,
    Entity,
    NewActivity,
    NotFound,
    Unsupported,
    User,
)

__all__ = ["KNOWN_ACTIVITY_TYPES", "EngagementOperations", "SeenTypes"]

logger = logging.getLogger("adapter.service")

#: The activity types Enginy documents (A.9); any other type is stored as a generic activity.
KNOWN_ACTIVITY_TYPES = frozenset({"EMAIL", "LINKEDIN", "LINKEDIN_INMAIL", "LINKEDIN_CONNECTION"})


class SeenTypes:
    """The activity types already warned about (A.9: one warning per new type).

    Types are input: only the most recent ``size`` are remembered, each as a fixed-size digest,
    so that a client sending ever new (or huge) types cannot grow the set; a forgotten type is
    warned about again when it comes back.
    """

    def __init__(self, known: frozenset[str], size: int = 1024) -> None:
        self._known = known
        self._seen: LRUCache[bytes, None] = LRUCache(maxsize=size)

    def first_time(self, activity_type: str) -> bool:
        """Whether ``activity_type`` is undocumented and not seen lately (and remember it)."""
        if activity_type in self._known:
            return False
        key = hashlib.blake2b(
            activity_type.encode("utf-8", "surrogatepass"), digest_size=16
        ).digest()
        if key in self._seen:
            return False
        self._seen[key] = None
        return True

    def __len__(self) -> int:
        return len(self._seen)


def _activity_out(
    activity: Activity,
    warnings: list[KeyWarning] | None = None,
    model: type[ActivityCreated] = ActivityCreated,
) -> ActivityCreated:
    return model(
        warnings=warnings or None,
        id=activity.id,
        type=activity.type,
        subject=activity.subject,
        body=activity.body,
        direction=activity.direction,
        owner_id=activity.owner_id,
        occurred_at=activity.occurred_at,
        contact_id=activity.contact_id,
        company_id=activity.company_id,
        metadata=dict(activity.metadata),
        created_at=activity.created_at,
    )


#: What a new activity and a stored one share: a queued activity is shown as it will be stored.
_NEW_ACTIVITY_FIELDS = tuple(
    f.name for f in dataclasses.fields(Activity) if f.name not in ("id", "created_at")
)


def _queued_activity(
    receipt: str, new: NewActivity, warnings: list[KeyWarning] | None = None
) -> ActivityCreated:
    # The id is the queue's receipt: the CRM's id does not exist until delivery.
    values = {name: getattr(new, name) for name in _NEW_ACTIVITY_FIELDS}
    return _activity_out(Activity(id=receipt, **values), warnings, QueuedActivityOut)


class EngagementOperations(TaskOperations):
    """The associations, activities, tasks and users half of :class:`adapter.service.Service`
    (tasks from :class:`~adapter.service.tasks.TaskOperations`)."""

    users: list[User] | None
    _seen_activity_types: SeenTypes

    # -- associations -------------------------------------------------------------------------

    async def create_associations(self, items: Sequence[AssociationIn]) -> AssociationsResponse:
        """Link contacts to companies; ``created`` counts the pairs that succeeded, ``queued``
        (only when some were) the pairs accepted into the outbox. A pair naming a contact or
        company that does not exist is an ``invalid_reference`` error naming the field; when no
        pair could be linked nor queued, the answer is 400."""
        require_capability(self.backend, Capability.ASSOCIATIONS, "associations")
        warnings: list[KeyWarning] = []
        for index, item in enumerate(items):
            warnings += check_keys(
                item, "an association", where=f"associations[{index}]", kept=False
            )
        pairs = [AssociationPair(i.contact_crm_id, i.company_crm_id) for i in items]
        outcomes = await self.writes.create_associations(pairs) if pairs else []
        failed = [
            (pair, outcome.error)
            for pair, outcome in zip(pairs, outcomes, strict=True)
            if not isinstance(outcome, Queued) and outcome.error is not None
        ]
        missing = await self._missing_in_pairs([p for p, e in failed if isinstance(e, NotFound)])
        errors: list[AssociationError] = []
        for pair, error in failed:
            named = missing.get(pair)
            errors.append(
                AssociationError(
                    contactCRMId=pair.contact_id,
                    companyCRMId=pair.company_id,
                    error=InvalidReference.code if named else error.code,
                    message="; ".join(named) if named else self.scrub(error.message),
                )
            )
        queued = sum(1 for outcome in outcomes if isinstance(outcome, Queued))
        created = len(pairs) - len(errors) - queued
        response = AssociationsResponse(
            success=created > 0 or queued > 0 or not errors,
            created=created,
            errors=errors or None,
            queued=queued or None,
            warnings=warnings or None,
        )
        if errors and not created and not queued:
            raise ApiError(
                f"none of the {len(errors)} pairs could be linked; see errors",
                code="batch_failed",
                extra=response.model_dump(mode="json", by_alias=True, exclude_none=True),
            )
        return response

    async def _missing_in_pairs(
        self, pairs: Sequence[AssociationPair]
    ) -> dict[AssociationPair, list[str]]:
        """For pairs the driver reported ``NotFound``: which of their ids name nothing, as
        messages naming the field (one ``get_records`` per entity for all of them)."""
        if not pairs:
            return {}
        contacts = await self.backend.get_records(
            Entity.CONTACT, sorted({p.contact_id for p in pairs})
        )
        companies = await self.backend.get_records(
            Entity.COMPANY, sorted({p.company_id for p in pairs})
        )
        named: dict[AssociationPair, list[str]] = {}
        for pair in pairs:
            problems = []
            if pair.contact_id not in contacts:
                problems.append(describe("contactCRMId", Entity.CONTACT, pair.contact_id))
            if pair.company_id not in companies:
                problems.append(describe("companyCRMId", Entity.COMPANY, pair.company_id))
            if problems:
                named[pair] = problems
        return named

    # -- activities ---------------------------------------------------------------------------

    async def create_activity(self, item: ActivityIn) -> ActivityCreated:
        """Store one activity, idempotently on ``(type, direction, metadata.messageId)`` (A.9).

        Accepted into the outbox: the activity as it will be stored, its ``id`` the queue's
        receipt (:class:`~adapter.contract.QueuedActivityOut`)."""
        require_capability(self.backend, Capability.ACTIVITIES, "activities")
        warnings = check_keys(item, "an activity", kept=True)
        reject_non_finite({"metadata": item.metadata, **(item.model_extra or {})})
        await self._check_owner(item.owner_id)
        metadata = item.metadata or {}
        message_id = metadata.get("messageId")
        # Only a scalar id is a key; an object or list there is carried in metadata as sent.
        usable = isinstance(message_id, str | int) and not isinstance(message_id, bool)
        key = None
        if usable and message_id != "":
            # Case and surrounding spaces do not make another activity: "email"/"outbound" and
            # "EMAIL"/"OUTBOUND" are one message sent once. The values are stored as sent (A.9);
            # only the key is folded. Upper case keeps the keys of documented values unchanged.
            direction = item.direction.strip().upper() if item.direction is not None else None
            key = f"{item.type.strip().upper()}|{direction}|{message_id}"
        if self._seen_activity_types.first_time(item.type):
            # The type is Enginy's text, shown with repr and cut short: it is input.
            logger.warning(
                "activity type %r is not one of the documented types; storing it as a "
                "generic activity (logged once per type)",
                item.type[:64],
            )
        new = NewActivity(
            type=item.type,
            direction=item.direction,
            subject=item.subject,
            body=item.body,
            owner_id=item.owner_id,
            occurred_at=item.occurred_at,
            contact_id=item.contact_id,
            company_id=item.company_id,
            metadata=metadata,
            idempotency_key=key,
            extra=dict(item.model_extra or {}),
        )
        try:
            activity = await self.writes.create_activity(new)
        except NotFound as exc:
            raise await self._reference_error(exc, item.contact_id, item.company_id) from exc
        if isinstance(activity, Queued):
            return _queued_activity(activity.receipt, new, warnings)
        return _activity_out(activity, warnings)

    # -- users and health ---------------------------------------------------------------------

    async def list_users(self) -> list[UserOut]:
        """The YAML list when one is configured, else the backend's users, else 501 (A.11).

        An explicit ``users:`` list wins over the backend (as ``config.example.yaml`` documents):
        every built-in driver declares :attr:`Capability.USERS`, so a list that only applied
        to drivers without it would never be served.
        """
        if self.users is not None:
            users = self.users
        elif Capability.USERS in self.backend.capabilities:
            users = await self.backend.list_users()
        else:
            raise Unsupported("user listing is not available: no backend users and no static list")
        return [UserOut(id=u.id, name=u.name, email=u.email) for u in users]
