"""Search and associations of the HubSpot fake (see :mod:`backends.testing.hubspot.portal`)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from backends.testing.hubspot.schema import ASSOCIATION_TYPES, DEFAULT_TYPE, TYPE_IDS

__all__ = ["OBJECT_ALIASES_SAFE", "FakeError", "SearchAndLinks", "contains_token"]

BATCH_LIMIT = 100
OBJECT_ALIASES_SAFE = {
    "contacts": "contacts",
    "contact": "contacts",
    "companies": "companies",
    "company": "companies",
    "tasks": "tasks",
    "emails": "emails",
    "notes": "notes",
    "communications": "communications",
}


class FakeError(Exception):
    """An error answer in HubSpot's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        category: str | None,
        *,
        op: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.category, self.op = status, message, category, op
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
        }
        if self.category:
            body["category"] = self.category
        body.update(self.extra)
        return body

    def response(self) -> httpx.Response:
        return httpx.Response(self.status, json=self.body(), headers=self.headers)


def contains_token(stored: str, value: str) -> bool:
    """HubSpot's ``CONTAINS_TOKEN`` (developers.hubspot.com/docs/api/crm/search, "Filter search
    results": "Contains a token. In your request, you can use wildcards (*) to complete a
    partial search. For example, use the value ``*@hubspot.com`` to retrieve contacts with a
    HubSpot email address").

    * Tokens are the stored value's white-space separated words. The docs' example shows that
      an e-mail address is one token (``*@hubspot.com`` matches ``ana@hubspot.com`` as a whole:
      ``@`` and ``.`` do not split); how HubSpot splits other punctuation is not documented,
      and the fake treats a URL like an address, as one token.
    * ``*`` stands for any run of characters (none included), anywhere in the value; without
      one the value must equal a whole token (``hubspot.com`` does not match
      ``ana@hubspot.com``).
    * Case is ignored ("values are case-insensitive", except ``IN`` on strings and
      enumerations).
    * A value of several words needs each of them as a token.
    """
    tokens = stored.lower().split()
    for word in value.lower().split():
        pattern = re.compile(".*".join(re.escape(part) for part in word.split("*")))
        if not any(pattern.fullmatch(token) for token in tokens):
            return False
    return True


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SearchAndLinks:
    """The search index (lagging writes by ``search_lag``) and the association store."""

    clock: Callable[[], float]
    objects: dict[str, dict[str, dict[str, Any]]]
    properties: dict[str, dict[str, dict[str, Any]]]
    associations: set[tuple[str, str, str, str, int]]
    _index: dict[str, dict[str, dict[str, Any]]]
    _pending: list[tuple[float, str, str, dict[str, Any] | None]]

    def _public(
        self,
        object_type: str,
        obj: dict[str, Any],
        names: list[str] | None,
        trace: str | None = None,
    ) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def _batch_payload(results: list[Any], errors: list[Any]) -> dict[str, Any]:
        now = _iso(datetime.now(UTC))
        payload: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": now,
            "completedAt": now,
        }
        if errors:
            payload["numErrors"] = len(errors)
            payload["errors"] = errors
        return payload

    # -- search ---------------------------------------------------------------------------------

    def _refresh_index(self) -> None:
        now = self.clock()
        due = [p for p in self._pending if p[0] <= now]
        self._pending = [p for p in self._pending if p[0] > now]
        for _, object_type, object_id, props in due:
            if props is None:
                self._index[object_type].pop(object_id, None)
            else:
                self._index[object_type][object_id] = props

    def search(self, object_type: str, body: dict[str, Any]) -> dict[str, Any]:
        op = f"search:{object_type}"
        groups = body.get("filterGroups") or []
        total_filters = sum(len(g.get("filters") or []) for g in groups)
        if (
            len(groups) > 5
            or any(len(g.get("filters") or []) > 6 for g in groups)
            or total_filters > 18
        ):
            raise FakeError(
                400,
                "Too many filters or filterGroups (max 5 groups, 6 filters per group, 18 total)",
                "VALIDATION_ERROR",
                op=op,
            )
        limit = int(body.get("limit", 10))
        after = int(body.get("after") or 0)
        if limit > 200:
            raise FakeError(400, "limit must be <= 200", "VALIDATION_ERROR", op=op)
        if after + limit > 10_000:
            raise FakeError(
                400, "Paging past 10,000 results is not allowed", "VALIDATION_ERROR", op=op
            )
        sorts = body.get("sorts") or []
        if sorts and not isinstance(sorts[0], dict):
            sorts = []  # HubSpot silently ignores string sorts
        named = [f.get("propertyName", "") for g in groups for f in g.get("filters") or []]
        named += [s.get("propertyName", "") for s in sorts]
        unknown = sorted(
            {
                n
                for n in named
                if n and not n.startswith("associations.") and n not in self.properties[object_type]
            }
        )
        if unknown:
            # A stock portal lacking a property the caller filters on fails the whole search.
            raise FakeError(
                400,
                f"There was a problem with the request. Property {unknown[0]!r} does not exist",
                "VALIDATION_ERROR",
                op=op,
            )
        self._refresh_index()
        hits = []
        for object_id, props in self._index[object_type].items():
            if not groups or any(
                all(self._match(object_type, object_id, props, f) for f in g.get("filters") or [])
                for g in groups
            ):
                hits.append((object_id, props))
        key = sorts[0].get("propertyName", "hs_object_id") if sorts else "hs_object_id"
        reverse = bool(sorts and sorts[0].get("direction") == "DESCENDING")
        hits.sort(key=lambda h: (str(h[1].get(key) or ""), int(h[0])), reverse=reverse)
        page = hits[after : after + limit]
        names = body.get("properties") or None
        results = []
        for object_id, _ in page:
            obj = self.objects[object_type].get(object_id)
            if obj is not None:  # the index may lag a delete too; HubSpot then skips it
                results.append(self._public(object_type, obj, names))
        payload: dict[str, Any] = {"total": len(hits), "results": results}
        if after + limit < len(hits):
            payload["paging"] = {"next": {"after": str(after + limit)}}
        return payload

    def _match(
        self, object_type: str, object_id: str, props: dict[str, Any], f: dict[str, Any]
    ) -> bool:
        name, op = f.get("propertyName", ""), f.get("operator", "EQ")
        if name.startswith("associations."):
            other = OBJECT_ALIASES_SAFE.get(name.split(".", 1)[1], "")
            return any(
                a[0] == object_type
                and a[1] == object_id
                and a[2] == other
                and a[3] == str(f.get("value"))
                for a in self.associations
            )
        stored = props.get(name)
        text = None if stored is None else str(stored)
        if op == "HAS_PROPERTY":
            return bool(text)
        if op == "NOT_HAS_PROPERTY":
            return not text
        if op in ("IN", "NOT_IN"):
            # IN on strings only matches lower-case values (HubSpot docs); stored values are
            # compared case-insensitively.
            values = [str(v) for v in f.get("values") or []]
            hit = text is not None and any(v == text.lower() for v in values if v == v.lower())
            return hit if op == "IN" else not hit
        value = str(f.get("value", ""))
        if op == "EQ":
            return text is not None and text.lower() == value.lower()
        if op == "NEQ":
            return text is None or text.lower() != value.lower()
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            if not value:
                raise FakeError(400, f"{op} needs a value", "VALIDATION_ERROR")
            hit = text is not None and contains_token(text, value)
            return hit if op == "CONTAINS_TOKEN" else not hit
        if op in ("GT", "GTE", "LT", "LTE"):
            try:
                a, b = float(text or "nan"), float(value)
            except ValueError:
                a, b = text or "", value  # type: ignore[assignment]
            return {"GT": a > b, "GTE": a >= b, "LT": a < b, "LTE": a <= b}[op]
        raise FakeError(400, f"Unsupported operator {op}", "VALIDATION_ERROR")

    # -- associations ----------------------------------------------------------------------------

    def _link(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int) -> None:
        self.associations.add((from_type, from_id, to_type, to_id, type_id))
        inverse = DEFAULT_TYPE.get((to_type, from_type))
        if type_id == 1:  # primary also creates the unlabelled row
            self.associations.add((from_type, from_id, to_type, to_id, 279))
        if inverse is not None:
            self.associations.add((to_type, to_id, from_type, from_id, inverse))

    def assoc_batch(
        self, from_type: str, to_type: str, op: str, body: dict[str, Any]
    ) -> tuple[str, int, Any]:
        name = f"assoc:{from_type}->{to_type}:{op}"
        inputs = body.get("inputs") or []
        limit = 1000 if op == "read" else BATCH_LIMIT
        if len(inputs) > limit:
            raise FakeError(400, f"Batch input size exceeds {limit}", "VALIDATION_ERROR", op=name)
        results: list[Any] = []
        errors: list[Any] = []
        if op == "read":
            for item in inputs:
                rows = [
                    a
                    for a in self.associations
                    if a[0] == from_type and a[1] == str(item.get("id")) and a[2] == to_type
                ]
                if rows:
                    by_target: dict[str, list[int]] = {}
                    for row in rows:
                        by_target.setdefault(row[3], []).append(row[4])
                    results.append(
                        {
                            "from": {"id": str(item.get("id"))},
                            "to": [
                                {
                                    "toObjectId": int(t),
                                    "associationTypes": [
                                        {
                                            "category": "HUBSPOT_DEFINED",
                                            "typeId": tid,
                                            "label": None,
                                        }
                                        for tid in sorted(ids)
                                    ],
                                }
                                for t, ids in sorted(by_target.items())
                            ],
                        }
                    )
            return name, 200, self._batch_payload(results, errors)
        if op not in ("associate/default", "create"):
            raise FakeError(404, f"{op} not served by the fake", None, op=name)
        for item in inputs:
            from_id = str((item.get("from") or {}).get("id"))
            to_id = str((item.get("to") or {}).get("id"))
            missing = [
                f"{t} {i}"
                for t, i in ((from_type, from_id), (to_type, to_id))
                if i not in self.objects.get(t, {})
            ]
            if missing:
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": f"No such objects: {', '.join(missing)}",
                        "context": {"fromObjectId": [from_id], "toObjectId": [to_id]},
                    }
                )
                continue
            if op == "create":
                type_ids = [int(t.get("associationTypeId", 0)) for t in item.get("types") or []]
                for type_id in type_ids:
                    if ASSOCIATION_TYPES.get(type_id) != (from_type, to_type):
                        raise FakeError(
                            400,
                            f"association type {type_id} is not valid for {from_type} -> {to_type}",
                            "VALIDATION_ERROR",
                            op=name,
                        )
                for type_id in type_ids:
                    self._link(from_type, from_id, to_type, to_id, type_id)
                results.append(
                    {
                        "fromObjectTypeId": TYPE_IDS[from_type],
                        "fromObjectId": int(from_id),
                        "toObjectTypeId": TYPE_IDS[to_type],
                        "toObjectId": int(to_id),
                        "labels": [],
                    }
                )
            else:
                type_id = DEFAULT_TYPE[(from_type, to_type)]
                self._link(from_type, from_id, to_type, to_id, type_id)
                results.append(
                    {
                        "from": {"id": from_id},
                        "to": {"id": to_id},
                        "associationSpec": {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": type_id,
                        },
                    }
                )
        # HubSpot has answered 200 where its spec says 201 here; the fake does the same.
        return name, (207 if errors else 200), self._batch_payload(results, errors)

    def assoc_record(self, args: list[str], method: str, body: Any) -> tuple[str, int, Any]:
        from_type, from_id = args[0], args[1]
        rest = args[2:]
        default = rest[:1] == ["default"]
        if default:
            rest = rest[1:]
        to_type = OBJECT_ALIASES_SAFE.get(rest[0], rest[0]) if rest else ""
        name = f"assoc:{from_type}->{to_type}:{method.lower()}"
        if len(rest) == 1 and method == "GET":
            ids = sorted(
                {a[3] for a in self.associations if a[:3] == (from_type, from_id, to_type)}, key=int
            )
            return (
                name,
                200,
                {"results": [{"toObjectId": int(i), "associationTypes": []} for i in ids]},
            )
        to_id = rest[1] if len(rest) > 1 else ""
        if method == "DELETE":
            self.associations = {
                a
                for a in self.associations
                if not (
                    a[:4] == (from_type, from_id, to_type, to_id)
                    or a[:4] == (to_type, to_id, from_type, from_id)
                )
            }
            return name, 204, None
        for t, i in ((from_type, from_id), (to_type, to_id)):
            if i not in self.objects.get(t, {}):
                raise FakeError(404, f"{t} {i} not found", "OBJECT_NOT_FOUND", op=name)
        if default:
            self._link(from_type, from_id, to_type, to_id, DEFAULT_TYPE[(from_type, to_type)])
        else:
            for spec in body or []:
                self._link(from_type, from_id, to_type, to_id, int(spec["associationTypeId"]))
        return name, 200, {"status": "COMPLETE", "results": []}
