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
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
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
from backends.rest.paths import MISSING, get_path, set_path
from backends.rest.records import RecordsMixin
from backends.rest.resources import ActivitiesSpec

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
        """Log one activity through the first route that takes its type; idempotent on its
        key when that route has ``find``."""
        routes = self.options.activities
        if not routes:
            raise Unsupported("backend.options.activities is not configured")
        spec = next((r for r in routes if r.types is None or activity.type in r.types), None)
        if spec is None:
            raise InvalidRecord(f"no activities route takes type {activity.type!r}")
        key = activity.idempotency_key
        token = key or uuid.uuid4().hex
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
            "idempotency_key": key,
            "extra": dict(activity.extra),
            "token": token,
        }
        ctx = {name: value for name, value in ctx.items() if value is not None}
        with self.client.budget():
            await self.require_records(
                {Entity.CONTACT: [activity.contact_id], Entity.COMPANY: [activity.company_id]}
            )
            if key is None or not spec.find:
                return await self._log_activity(spec, ctx, activity, token)
            async with self.lock("activity", key):
                existing = await self._find_activity(spec, ctx, key)
                if existing is not None:
                    return self._activity(spec, existing, activity)
                return await self._log_activity(spec, ctx, activity, token)

    async def _find_activity(
        self, spec: ActivitiesSpec, ctx: Mapping[str, Any], token: str
    ) -> Mapping[str, Any] | None:
        if self.options.dry_run or not spec.find:
            return None
        plan = KeyPlan("token", (), "exact")
        host = StrategyHost(self)
        for strategy in spec.find:
            hits = await run_strategy(strategy, host, plan, [token], ctx)
            if hits and hits.get(token):
                return hits[token][0]
        return None

    async def _log_activity(
        self, spec: ActivitiesSpec, ctx: Mapping[str, Any], activity: NewActivity, token: str
    ) -> Activity:
        findable = bool(spec.find)
        for attempt in range(1, self.options.max_attempts + 1):
            try:
                answer = await self.client.send(
                    spec.create.request, spec.create.response, ctx, idempotent=not findable
                )
            except Conflict:
                found = await self._find_activity(spec, ctx, token)
                if found is None:
                    raise
                return self._activity(spec, found, activity)
            except RateLimited as exc:
                await self._sleep(exc.retry_after or 1.0)
                continue
            except Unavailable:
                if not findable or attempt == self.options.max_attempts:
                    raise
                # The CRM may have logged it: look before sending again.
                await self._sleep(self.client.http.policy.backoff(attempt))
                found = await self._find_activity(spec, ctx, token)
                if found is not None:
                    return self._activity(spec, found, activity)
                continue
            record = spec.create.response.record_of(answer.body)
            activity_id = spec.create.response.id_of(answer.body)
            if activity_id is None and not self.options.dry_run:
                found = await self._find_activity(spec, ctx, token)
                if found is None:
                    raise InvalidRecord("the activity's create answer holds no id (set find)")
                return self._activity(spec, found, activity)
            shaped = dict(record) if isinstance(record, Mapping) else {}
            set_path(shaped, spec.record.id, activity_id)
            return self._activity(spec, shaped, activity)
        raise Unavailable("the activity could not be logged within the attempts allowed")

    def _activity(
        self, spec: ActivitiesSpec, record: Mapping[str, Any], sent: NewActivity
    ) -> Activity:
        """The stored activity: the record's values where the shape names a path, the values
        sent elsewhere."""
        shape = spec.record

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
