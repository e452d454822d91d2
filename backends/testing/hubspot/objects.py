"""State and endpoint behaviour of the HubSpot fake (see :mod:`.portal`)."""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from backends.testing.hubspot.admin import PortalAdmin
from backends.testing.hubspot.links import OBJECT_ALIASES_SAFE, FakeError, SearchAndLinks
from backends.testing.hubspot.schema import ASSOCIATION_TYPES, TYPE_IDS, default_properties

__all__ = ["FakeError", "ObjectStore"]

BATCH_LIMIT = 100
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UNIQUE_BUILTIN = {"contacts": {"email"}}
REQUIRED_TIMESTAMP = {"tasks", "emails", "communications", "notes"}


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _invalid(name: str, error: str, message: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": error, "name": name}


class ObjectStore(PortalAdmin, SearchAndLinks):
    """Objects, properties and associations of one fake portal."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        search_lag: float,
        auto_create_companies: bool = False,
        auto_create_delay: float = 0.0,
    ) -> None:
        self.clock = clock
        self.search_lag = search_lag
        self.auto_create_companies = auto_create_companies
        self.auto_create_delay = auto_create_delay
        #: Contacts whose company HubSpot has yet to make: (due at, contact id).
        self._deferred: list[tuple[float, str]] = []
        self._running_deferred = False
        self.objects: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPE_IDS}
        self.properties = default_properties()
        self.groups: dict[str, set[str]] = {t: {"hubspot"} for t in TYPE_IDS}
        #: (from type, from id, to type, to id, type id)
        self.associations: set[tuple[str, str, str, str, int]] = set()
        self.owner_ids: set[str] = set()
        self._ids = itertools.count(1001)
        #: What search sees: id → (visible at, properties snapshot), per type.
        self._index: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in TYPE_IDS}
        self._pending: list[tuple[float, str, str, dict[str, Any] | None]] = []

    # -- entry point ----------------------------------------------------------------------------

    def serve(
        self, kind: str, args: list[str], method: str, body: Any, params: dict[str, str], fake: Any
    ) -> tuple[str, int, Any]:
        self._run_deferred()
        if kind == "batch":
            object_type, op = args
            handler = {
                "create": self.batch_create,
                "read": self.batch_read,
                "update": self.batch_update,
                "archive": self.batch_archive,
            }.get(op)
            if handler is None:
                raise FakeError(404, f"batch/{op} is not served by the fake", None)
            name = f"{object_type}.batch/{op}"
            inputs = (body or {}).get("inputs") or []
            if len(inputs) > BATCH_LIMIT:
                raise FakeError(
                    400,
                    f"Batch input size {len(inputs)} exceeds the maximum of {BATCH_LIMIT}",
                    "VALIDATION_ERROR",
                    op=name,
                )
            try:
                status, payload = handler(object_type, body or {})
            except FakeError as exc:
                exc.op = name
                raise
            return name, status, payload
        if kind == "search":
            return f"search:{args[0]}", 200, self.search(args[0], body or {})
        if kind == "object":
            return self.single(args[0], args[1], method, body, params)
        if kind == "objects":
            return self.collection(args[0], method, body, params)
        if kind == "assoc_batch":
            return self.assoc_batch(args[0], args[1], args[2], body or {})
        if kind == "assoc_record":
            return self.assoc_record(args, method, body)
        if kind == "owners":
            return "owners", 200, self.list_owners(fake, params)
        if kind in ("properties", "property_groups"):
            return self.props(kind, args, method, body or {})
        if kind == "account":
            return (
                "account",
                200,
                {
                    "portalId": fake.portal_id,
                    "uiDomain": "app.hubspot.com",
                    "timeZone": "UTC",
                    "dataHostingLocation": "na1",
                },
            )
        raise FakeError(404, "not served", None)

    # -- objects ------------------------------------------------------------------------------

    def _public(
        self,
        object_type: str,
        obj: dict[str, Any],
        names: list[str] | None,
        trace: str | None = None,
    ) -> dict[str, Any]:
        defaults = [
            "hs_object_id",
            "createdate",
            "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate",
        ]
        wanted = list(dict.fromkeys([*(names or []), *defaults])) if names else None
        props = obj["properties"]
        shown = {k: props.get(k) for k in wanted} if wanted is not None else dict(props)
        out = {
            "id": obj["id"],
            "properties": shown,
            "createdAt": obj["createdAt"],
            "updatedAt": obj["updatedAt"],
            "archived": False,
        }
        if trace is not None:
            out["objectWriteTraceId"] = trace
        return out

    def _validate(
        self, object_type: str, props: dict[str, Any], *, create: bool
    ) -> list[dict[str, Any]]:
        problems = []
        defs = self.properties[object_type]
        for name, value in props.items():
            definition = defs.get(name)
            if definition is None:
                problems.append(
                    _invalid(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if definition["modificationMetadata"].get("readOnlyValue"):
                problems.append(
                    _invalid(name, "READ_ONLY_VALUE", f"{name} is a read only property")
                )
                continue
            if not isinstance(value, str):
                problems.append(_invalid(name, "INVALID_TYPE", f"{name} must be a string"))
                continue
            if value == "":
                continue
            if definition["type"] == "number":
                try:
                    float(value)
                except ValueError:
                    problems.append(
                        _invalid(name, "INVALID_INTEGER", f"{value} was not a valid number")
                    )
            if definition["type"] == "enumeration" and definition.get("options"):
                allowed = {o["value"] for o in definition["options"]}
                for part in value.split(";"):
                    if part not in allowed:
                        problems.append(
                            _invalid(
                                name, "INVALID_OPTION", f"{part} was not one of the allowed options"
                            )
                        )
            if name == "email" and not _EMAIL.match(value):
                # HubSpot validates contact emails (error code INVALID_EMAIL).
                problems.append(
                    _invalid(name, "INVALID_EMAIL", f"Email address {value} is invalid")
                )
            if name == "hubspot_owner_id" and value not in self.owner_ids:
                problems.append(_invalid(name, "INVALID_OWNER_ID", f"{value} is not a valid owner"))
            if name == "hs_email_headers":
                try:
                    json.loads(value)
                except ValueError:
                    problems.append(_invalid(name, "INVALID_JSON", "headers must be JSON"))
        if create and object_type in REQUIRED_TIMESTAMP and not props.get("hs_timestamp"):
            problems.append(
                _invalid("hs_timestamp", "REQUIRED_PROPERTY", "hs_timestamp is required")
            )
        if (
            object_type == "communications"
            and create
            and props.get("hs_communication_logged_from") != "CRM"
        ):
            problems.append(
                _invalid(
                    "hs_communication_logged_from",
                    "INVALID_OPTION",
                    "hs_communication_logged_from must be CRM",
                )
            )
        return problems

    def _unique_props(self, object_type: str) -> set[str]:
        custom = {n for n, d in self.properties[object_type].items() if d.get("hasUniqueValue")}
        return custom | UNIQUE_BUILTIN.get(object_type, set())

    def _find_unique(self, object_type: str, prop: str, value: str) -> dict[str, Any] | None:
        fold = prop == "email"
        for obj in self.objects[object_type].values():
            stored = obj["properties"].get(prop)
            if stored and (stored.lower() == value.lower() if fold else stored == value):
                return obj
        return None

    def _conflict(
        self,
        object_type: str,
        props: dict[str, Any],
        claimed: dict[tuple[str, str], str],
        own_id: str | None = None,
    ) -> FakeError | None:
        for prop in self._unique_props(object_type):
            value = props.get(prop)
            if not value:
                continue
            key = value.lower() if prop == "email" else value
            holder = self._find_unique(object_type, prop, value)
            holder_id = holder["id"] if holder else claimed.get((prop, key))
            if holder_id and holder_id != own_id:
                if prop == "email":
                    return FakeError(
                        409, f"Contact already exists. Existing ID: {holder_id}", "CONFLICT"
                    )
                return FakeError(
                    409,
                    f"A {object_type[:-1]} with the unique value {value!r} for "
                    f"property {prop!r} already exists. Existing ID: {holder_id}",
                    "CONFLICT",
                )
        return None

    def _write(self, object_type: str, obj: dict[str, Any], props: dict[str, Any]) -> None:
        for name, value in props.items():
            obj["properties"][name] = value if value != "" else None
        if object_type == "tasks" and "hs_task_status" in props:
            done = props["hs_task_status"] == "COMPLETED"
            obj["properties"]["hs_task_completion_date"] = _iso(datetime.now(UTC)) if done else None
        now = _iso(datetime.now(UTC))
        obj["updatedAt"] = now
        obj["properties"][
            "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
        ] = now
        self._pending.append(
            (
                self.clock() + self.search_lag,
                object_type,
                obj["id"],
                copy.deepcopy(obj["properties"]),
            )
        )

    def _new(self, object_type: str, props: dict[str, Any]) -> dict[str, Any]:
        object_id = str(next(self._ids))
        now = _iso(datetime.now(UTC))
        obj = {
            "id": object_id,
            "properties": {"hs_object_id": object_id, "createdate": now},
            "createdAt": now,
            "updatedAt": now,
        }
        self.objects[object_type][object_id] = obj
        self._write(object_type, obj, props)
        return obj

    def _errors_for(self, problems: list[dict[str, Any]], trace: str | None) -> dict[str, Any]:
        error: dict[str, Any] = {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": f"Property values were not valid: {json.dumps(problems)}",
            "context": {"propertyName": [p["name"] for p in problems]},
        }
        if trace is not None:
            error["context"]["objectWriteTraceId"] = [trace]
        return error

    def _multi(self, inputs: list[dict[str, Any]]) -> bool:
        """207 only if every input carries a unique objectWriteTraceId."""
        traces = [i.get("objectWriteTraceId") for i in inputs]
        return all(traces) and len(set(traces)) == len(traces)

    def _associate_inline(
        self, object_type: str, object_id: str, specs: list[dict[str, Any]], check_only: bool
    ) -> str | None:
        for spec in specs or []:
            target = str((spec.get("to") or {}).get("id"))
            for t in spec.get("types") or []:
                type_id = int(t.get("associationTypeId", 0))
                pair = ASSOCIATION_TYPES.get(type_id)
                if pair is None or pair[0] != object_type:
                    return f"association type {type_id} is not valid from {object_type}"
                if target not in self.objects[pair[1]]:
                    return f"associated object {pair[1]} {target} does not exist"
                if not check_only:
                    self._link(object_type, object_id, pair[1], target, type_id)
        return None

    def batch_create(self, object_type: str, body: dict[str, Any]) -> tuple[int, Any]:
        inputs = body.get("inputs") or []
        multi = self._multi(inputs)
        claimed: dict[tuple[str, str], str] = {}
        plan: list[tuple[dict[str, Any], str | None]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            props = item.get("properties") or {}
            trace = item.get("objectWriteTraceId")
            problems = self._validate(object_type, props, create=True)
            bad_assoc = self._associate_inline(
                object_type, "", item.get("associations") or [], check_only=True
            )
            if problems or bad_assoc:
                if not multi:
                    if problems:
                        raise FakeError(
                            400, self._errors_for(problems, None)["message"], "VALIDATION_ERROR"
                        )
                    raise FakeError(400, str(bad_assoc), "VALIDATION_ERROR")
                error = (
                    self._errors_for(problems, trace)
                    if problems
                    else {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": bad_assoc,
                        "context": {"objectWriteTraceId": [trace]},
                    }
                )
                errors.append(error)
                continue
            conflict = self._conflict(object_type, props, claimed)
            if conflict is not None:
                raise conflict  # the first conflict fails the whole batch, naming one id
            for prop in self._unique_props(object_type):
                if props.get(prop):
                    key = props[prop].lower() if prop == "email" else props[prop]
                    claimed[(prop, key)] = "(this batch)"
            plan.append((item, trace))
        results = []
        for item, trace in plan:
            obj = self._new(object_type, item.get("properties") or {})
            self._associate_inline(object_type, obj["id"], item.get("associations") or [], False)
            self._company_for_contact(object_type, obj)
            results.append(self._public(object_type, obj, None, trace))
        payload = self._batch_payload(results, errors)
        return (207 if errors else 201), payload

    def _lookup(
        self, object_type: str, value: str, id_property: str | None
    ) -> dict[str, Any] | None:
        if not id_property or id_property == "hs_object_id":
            return self.objects[object_type].get(str(value))
        return self._find_unique(object_type, id_property, str(value))

    def batch_read(self, object_type: str, body: dict[str, Any]) -> tuple[int, Any]:
        id_property = body.get("idProperty")
        if (
            id_property
            and id_property != "hs_object_id"
            and id_property not in self._unique_props(object_type)
        ):
            raise FakeError(
                400,
                f"Unable to perform read by non-unique "
                f"{TYPE_IDS[object_type]} property {id_property}",
                "VALIDATION_ERROR",
            )
        names = body.get("properties") or []
        results, missing = [], []
        for item in body.get("inputs") or []:
            obj = self._lookup(object_type, str(item.get("id")), id_property)
            if obj is None:
                missing.append(str(item.get("id")))
            else:
                results.append(self._public(object_type, obj, names))
        errors = []
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {object_type} objects, they may be "
                    "deleted or not exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            )
        return (207 if errors else 200), self._batch_payload(results, errors)

    def batch_update(self, object_type: str, body: dict[str, Any]) -> tuple[int, Any]:
        inputs = body.get("inputs") or []
        ids = [str(i.get("id")) for i in inputs]
        if len(set(ids)) != len(ids):
            raise FakeError(400, "Duplicate IDs found in batch input", "VALIDATION_ERROR")
        multi = self._multi(inputs)
        plan: list[tuple[dict[str, Any], dict[str, Any], Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            trace = item.get("objectWriteTraceId")
            if (
                item.get("idProperty")
                and item["idProperty"] != "hs_object_id"
                and item["idProperty"] not in self._unique_props(object_type) - {"email"}
            ):
                raise FakeError(
                    400,
                    "Unable to perform update/upsert by non-unique "
                    f"{TYPE_IDS[object_type]} property {item['idProperty']}",
                    "VALIDATION_ERROR",
                )
            if item.get("idProperty") == "hs_object_id":
                raise FakeError(
                    400,
                    "Unable to perform update/upsert by non-unique "
                    f"{TYPE_IDS[object_type]} property hs_object_id",
                    "VALIDATION_ERROR",
                )
            obj = self._lookup(object_type, str(item.get("id")), item.get("idProperty"))
            props = item.get("properties") or {}
            problems = self._validate(object_type, props, create=False)
            error: dict[str, Any] | None = None
            if obj is None:
                error = {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Object {item.get('id')} not found",
                    "context": {"ids": [str(item.get("id"))]},
                }
                if trace:
                    error["context"]["objectWriteTraceId"] = [trace]
            elif problems:
                error = self._errors_for(problems, trace)
            else:
                conflict = self._conflict(object_type, props, {}, own_id=obj["id"])
                if conflict is not None:
                    error = {**conflict.body(), "context": {"objectWriteTraceId": [trace]}}
            if error is not None:
                if not multi:
                    status = (
                        404
                        if error["category"] == "OBJECT_NOT_FOUND"
                        else (409 if error["category"] == "CONFLICT" else 400)
                    )
                    raise FakeError(status, error["message"], error["category"])
                errors.append(error)
                continue
            assert obj is not None
            plan.append((obj, props, trace))
        results = []
        for obj, props, trace in plan:
            self._write(object_type, obj, props)
            results.append(self._public(object_type, obj, list(props), trace))
        return (207 if errors else 200), self._batch_payload(results, errors)

    def batch_archive(self, object_type: str, body: dict[str, Any]) -> tuple[int, Any]:
        for item in body.get("inputs") or []:
            self.objects[object_type].pop(str(item.get("id")), None)
            self._pending.append((self.clock(), object_type, str(item.get("id")), None))
        return 204, None

    def single(
        self, object_type: str, object_id: str, method: str, body: Any, params: dict[str, str]
    ) -> tuple[str, int, Any]:
        op = f"{object_type}.{method.lower()}"
        obj = self._lookup(object_type, object_id, params.get("idProperty"))
        if obj is None:
            raise FakeError(
                404, "Object not found. objectId are usually numeric.", "OBJECT_NOT_FOUND", op=op
            )
        if method == "PATCH":
            props = (body or {}).get("properties") or {}
            problems = self._validate(object_type, props, create=False)
            if problems:
                raise FakeError(
                    400, self._errors_for(problems, None)["message"], "VALIDATION_ERROR", op=op
                )
            self._write(object_type, obj, props)
            return op, 200, self._public(object_type, obj, None)
        if method == "DELETE":
            del self.objects[object_type][obj["id"]]
            return op, 204, None
        names = [n for n in params.get("properties", "").split(",") if n]
        public = self._public(object_type, obj, names)
        wanted = [w for w in params.get("associations", "").split(",") if w]
        if wanted:
            public["associations"] = {}
            for other in wanted:
                other_type = OBJECT_ALIASES_SAFE.get(other, other)
                ids = sorted(
                    {
                        a[3]
                        for a in self.associations
                        if a[0] == object_type and a[1] == obj["id"] and a[2] == other_type
                    },
                    key=int,
                )
                if ids:
                    public["associations"][other_type] = {
                        "results": [
                            {"id": i, "type": f"{object_type[:-1]}_to_{other_type[:-1]}"}
                            for i in ids
                        ]
                    }
        return op, 200, public

    def collection(
        self, object_type: str, method: str, body: Any, params: dict[str, str]
    ) -> tuple[str, int, Any]:
        if method == "POST":
            op = f"{object_type}.create"
            props = (body or {}).get("properties") or {}
            problems = self._validate(object_type, props, create=True)
            bad = self._associate_inline(
                object_type, "", (body or {}).get("associations") or [], check_only=True
            )
            if problems or bad:
                message = self._errors_for(problems, None)["message"] if problems else str(bad)
                raise FakeError(400, message, "VALIDATION_ERROR", op=op)
            conflict = self._conflict(object_type, props, {})
            if conflict is not None:
                conflict.op = op
                raise conflict
            obj = self._new(object_type, props)
            self._associate_inline(
                object_type, obj["id"], (body or {}).get("associations") or [], False
            )
            self._company_for_contact(object_type, obj)
            return op, 201, self._public(object_type, obj, None)
        limit = int(params.get("limit", "10"))
        if limit > 100:
            raise FakeError(
                400, "limit must be <= 100", "VALIDATION_ERROR", op=f"{object_type}.list"
            )
        objs = sorted(self.objects[object_type].values(), key=lambda o: int(o["id"]))
        start = int(params.get("after", "0"))
        page = objs[start : start + limit]
        payload: dict[str, Any] = {"results": [self._public(object_type, o, None) for o in page]}
        if start + limit < len(objs):
            payload["paging"] = {"next": {"after": str(start + limit)}}
        return f"{object_type}.list", 200, payload
