"""Associations, activities and users: the optional groups a manifest may configure.

Before a call that names contacts or companies (an association, an activity), the driver
makes sure they exist (``verify_links``): many APIs accept a dangling id silently (Directus
answers a PATCH of a missing item with 204, BottleCRM files an interaction under one record and
ignores the other), and Enginy must get ``NotFound`` for them. Ids the driver has created,
found or read lately are known without a call.

An activity with an idempotency key (Enginy's ``messageId``) is looked up by it first
(``activities.find``) and after a create whose answer was lost, under a lock per key, so a
repeated or retried activity is logged once.
"""

from __future__ import annotations

import logging
from functools import partial
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from backends.base import (
    Activity,
    AssociationPair,
    Conflict,
    Entity,
    InvalidRecord,
    ItemResult,
    NewActivity,
    NotFound,
    RateLimited,
    Unavailable,
    Unsupported,
    User,
)
from backends.rest.finding import KeyPlan, run_strategy
from backends.rest.lookups import StrategyHost
from backends.rest.paths import MISSING, get_path
from backends.rest.records import RecordsMixin

__all__ = ["EngagementsMixin"]

log = logging.getLogger("backends.rest")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _when(value: Any) -> datetime | None:
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


class EngagementsMixin(RecordsMixin):
    """Associations, activities and users of :class:`backends.rest.RestBackend`."""

    async def require_records(self, checks: Mapping[Entity, Sequence[str | None]]) -> None:
        """Raise :class:`NotFound` unless every id names a record (``verify_links``)."""
        if not self.options.verify_links or self.options.dry_run:
            return
        for entity, ids in checks.items():
            wanted = [i for i in dict.fromkeys(ids) if i and (entity, i) not in self.known]
            if not wanted:
                continue
            found = await self.get_records(entity, wanted)
            missing = [i for i in wanted if i not in found]
            if missing:
                raise NotFound(f"No {entity.value} exists with ID: {', '.join(missing)}")

    # -- associations -------------------------------------------------------------------------

    async def create_associations(self, pairs: Sequence[AssociationPair]) -> list[ItemResult]:
        """Link each contact to its company; an unknown id fails that pair alone (NotFound),
        a link that exists already succeeds."""
        spec = self.options.associations
        if spec is None:
            raise Unsupported("backend.options.associations is not configured")

        async def one(pair: AssociationPair) -> ItemResult:
            try:
                await self.require_records(
                    {Entity.CONTACT: [pair.contact_id], Entity.COMPANY: [pair.company_id]}
                )
                ctx = {"contact_id": pair.contact_id, "company_id": pair.company_id}
                await self.client.send(spec.request, spec.response, ctx)
            except Conflict:
                pass  # already linked
            except (NotFound, InvalidRecord) as exc:
                return ItemResult(error=exc)
            return ItemResult(crm_id=pair.contact_id)

        with self.client.budget():
            return await self.gather([partial(one, p) for p in pairs])

    # -- activities ---------------------------------------------------------------------------

    async def create_activity(self, activity: NewActivity) -> Activity:
        """Log one activity; idempotent on its key when ``activities.find`` is configured."""
        spec = self.options.activities
        if spec is None:
            raise Unsupported("backend.options.activities is not configured")
        ctx: dict[str, Any] = {
            "type": activity.type,
            "direction": activity.direction,
            "subject": activity.subject,
            "body": activity.body,
            "owner_id": activity.owner_id,
            "occurred_at": _iso(activity.occurred_at),
            "contact_id": activity.contact_id,
            "company_id": activity.company_id,
            "metadata": dict(activity.metadata),
            "idempotency_key": activity.idempotency_key,
            "extra": dict(activity.extra),
        }
        with self.client.budget():
            await self.require_records(
                {Entity.CONTACT: [activity.contact_id], Entity.COMPANY: [activity.company_id]}
            )
            key = activity.idempotency_key
            if key is None or not spec.find:
                return await self._log_activity(ctx, activity, None)
            async with self.lock("activity", key):
                existing = await self._find_activity(ctx, key)
                if existing is not None:
                    return self._activity(existing, activity)
                return await self._log_activity(ctx, activity, key)

    async def _find_activity(self, ctx: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
        spec = self.options.activities
        assert spec is not None
        if self.options.dry_run:
            return None
        plan = KeyPlan("idempotency_key", (), "exact")
        host = StrategyHost(self)
        for strategy in spec.find:
            hits = await run_strategy(strategy, host, plan, [key], ctx)
            if hits and hits.get(key):
                return hits[key][0]
        return None

    async def _log_activity(
        self, ctx: Mapping[str, Any], activity: NewActivity, key: str | None
    ) -> Activity:
        spec = self.options.activities
        assert spec is not None
        for attempt in range(1, self.options.max_attempts + 1):
            try:
                answer = await self.client.send(
                    spec.create.request, spec.create.response, ctx, idempotent=key is None
                )
            except Conflict:
                found = await self._find_activity(ctx, key) if key else None
                if found is None:
                    raise
                return self._activity(found, activity)
            except RateLimited as exc:
                await self._sleep(exc.retry_after or 1.0)
                continue
            except Unavailable:
                if key is None or attempt == self.options.max_attempts:
                    raise
                await self._sleep(self.client.http.policy.backoff(attempt))
                found = await self._find_activity(ctx, key)
                if found is not None:
                    return self._activity(found, activity)
                continue
            record = spec.create.response.record_of(answer.body)
            activity_id = spec.create.response.id_of(answer.body)
            if activity_id is None and key is not None:
                found = await self._find_activity(ctx, key)
                activity_id = None if found is None else self._activity(found, activity).id
            if activity_id is None:
                raise InvalidRecord("the activity's create answer holds no id")
            shaped = dict(record) if isinstance(record, Mapping) else {}
            shaped.setdefault(spec.record.id, activity_id)
            return self._activity(shaped, activity)
        raise Unavailable("the activity could not be logged within the attempts allowed")

    def _activity(self, record: Mapping[str, Any], sent: NewActivity) -> Activity:
        """The stored activity: the record's values where the shape names a path, the values
        sent elsewhere."""
        shape = self.options.activities.record  # type: ignore[union-attr]

        def read(path: str | None, fallback: Any) -> Any:
            value = get_path(record, path) if path else MISSING
            return fallback if value in (MISSING, None) else value

        occurred = read(shape.occurred_at, None)
        return Activity(
            id=str(get_path(record, shape.id)),
            type=sent.type,
            direction=sent.direction,
            subject=read(shape.subject, sent.subject),
            body=read(shape.body, sent.body),
            owner_id=sent.owner_id,
            occurred_at=_when(occurred) or sent.occurred_at,
            contact_id=sent.contact_id,
            company_id=sent.company_id,
            metadata=dict(sent.metadata),
        )

    # -- users ----------------------------------------------------------------------------------

    async def list_users(self) -> list[User]:
        """The CRM's users, every page."""
        spec = self.options.users
        if spec is None:
            raise Unsupported("backend.options.users is not configured")
        with self.client.budget():
            items = await self.client.collect(spec.request, spec.response, spec.pagination, {})
        users: list[User] = []
        for item in items:
            user_id = get_path(item, spec.id)
            if user_id in (MISSING, None):
                continue
            parts = [spec.name] if isinstance(spec.name, str) else spec.name
            name = " ".join(
                str(v) for v in (get_path(item, p) for p in parts) if v not in (MISSING, None, "")
            )
            email = get_path(item, spec.email) if spec.email else None
            users.append(
                User(
                    id=str(user_id),
                    name=name or str(user_id),
                    email=None if email in (MISSING, None, "") else str(email),
                )
            )
        return users
