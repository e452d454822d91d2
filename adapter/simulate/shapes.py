"""Exact-shape validators for the contract's response bodies (Part A.1, Part B.2).

Each validator takes a decoded JSON body and returns a list of problems (empty = the shape is
right) plus, where useful, what it extracted. They are deliberately strict about what Enginy
reads (names, casing, bare arrays, string ids) and lenient about the rest (extra keys are
allowed, Part A.1).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

__all__ = [
    "SyncMatch",
    "check_created",
    "check_error_body",
    "check_has_id",
    "check_synced",
    "check_task_array",
    "check_updated",
    "check_users",
]


def _is_id(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _results(body: Any, problems: list[str]) -> list[Any]:
    if not isinstance(body, dict):
        problems.append(f"body is {_kind(body)}, expected an object with 'results'")
        return []
    results = body.get("results")
    if not isinstance(results, list):
        problems.append(f"'results' is {_kind(results)}, expected an array")
        return []
    return results


def _kind(value: object) -> str:
    if value is None:
        return "missing/null"
    if isinstance(value, bool):
        return "a boolean"
    names: dict[type, str] = {dict: "an object", list: "an array", str: "a string"}
    return names.get(type(value), f"a {type(value).__name__}")


def check_created(body: Any, sent: Collection[str]) -> tuple[list[str], dict[str, str]]:
    """``{"results": [{"externalId", "crmId"}]}`` for ``POST /contacts|/companies``.

    Returns the problems and the externalId -> crmId mapping of the valid entries.
    """
    problems: list[str] = []
    created: dict[str, str] = {}
    for i, item in enumerate(_results(body, problems)):
        if not isinstance(item, dict):
            problems.append(f"results[{i}] is {_kind(item)}")
            continue
        ext, crm = item.get("externalId"), item.get("crmId")
        if not _is_id(ext):
            problems.append(f"results[{i}].externalId is {_kind(ext)}, expected a string")
        elif ext not in sent:
            problems.append(f"results[{i}].externalId {ext!r} was not sent")
        if not _is_id(crm):
            problems.append(f"results[{i}].crmId is {_kind(crm)}, expected a non-empty string")
        if _is_id(ext) and _is_id(crm):
            created[str(ext)] = str(crm)
    return problems, created


class SyncMatch:
    """One entry of a sync response."""

    __slots__ = ("crm_id", "properties")

    def __init__(self, crm_id: str, properties: dict[str, Any] | None) -> None:
        self.crm_id = crm_id
        self.properties = properties


def check_synced(body: Any, sent: Collection[str]) -> tuple[list[str], dict[str, SyncMatch]]:
    """``{"results": [{"externalId", "crmId", "properties"?}]}`` for the sync endpoints."""
    problems: list[str] = []
    matches: dict[str, SyncMatch] = {}
    for i, item in enumerate(_results(body, problems)):
        if not isinstance(item, dict):
            problems.append(f"results[{i}] is {_kind(item)}")
            continue
        ext, crm, props = item.get("externalId"), item.get("crmId"), item.get("properties")
        if not _is_id(ext):
            problems.append(f"results[{i}].externalId is {_kind(ext)}, expected a string")
        elif ext not in sent:
            problems.append(f"results[{i}].externalId {ext!r} was not sent")
        if not _is_id(crm):
            problems.append(f"results[{i}].crmId is {_kind(crm)}, expected a non-empty string")
        if "properties" in item and props is not None and not isinstance(props, dict):
            problems.append(f"results[{i}].properties is {_kind(props)}, expected an object")
            props = None
        if _is_id(ext) and _is_id(crm):
            matches[str(ext)] = SyncMatch(str(crm), props if isinstance(props, dict) else None)
    return problems, matches


def check_updated(body: Any, sent: Collection[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """``{"results": [{"crmId", "success": bool, ...}]}`` for ``PUT /contacts|/companies``."""
    problems: list[str] = []
    outcomes: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(_results(body, problems)):
        if not isinstance(item, dict):
            problems.append(f"results[{i}] is {_kind(item)}")
            continue
        crm, success = item.get("crmId"), item.get("success")
        if not _is_id(crm):
            problems.append(f"results[{i}].crmId is {_kind(crm)}, expected a string")
        elif crm not in sent:
            problems.append(f"results[{i}].crmId {crm!r} was not sent")
        if not isinstance(success, bool):
            problems.append(f"results[{i}].success is {_kind(success)}, expected a boolean")
        if _is_id(crm):
            outcomes[str(crm)] = item
    return problems, outcomes


def check_error_body(body: Any) -> list[str]:
    """``{"error": str, "message": str}`` (Part A.3)."""
    if not isinstance(body, dict):
        return [f"error body is {_kind(body)}, expected {{'error', 'message'}}"]
    return [
        f"'{key}' is {_kind(body.get(key))}, expected a string"
        for key in ("error", "message")
        if not isinstance(body.get(key), str)
    ]


def check_has_id(body: Any) -> list[str]:
    """A single object with a non-empty string ``id``: a task (B.2.10) or an activity (B.2.9)."""
    if not isinstance(body, dict):
        return [f"body is {_kind(body)}, expected an object with 'id'"]
    if not _is_id(body.get("id")):
        return [f"'id' is {_kind(body.get('id'))}, expected a non-empty string"]
    return []


def check_task_array(body: Any) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """A **bare** JSON array of task objects (B.2.13, B.2.14)."""
    if not isinstance(body, list):
        keys = f" with keys {sorted(body)}" if isinstance(body, dict) else ""
        return [f"body is {_kind(body)}{keys}, expected a bare array of tasks"], {}
    problems: list[str] = []
    tasks: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(body):
        for problem in check_has_id(item):
            problems.append(f"[{i}]: {problem}")
        if isinstance(item, dict) and _is_id(item.get("id")):
            tasks[str(item["id"])] = item
    return problems, tasks


def check_users(body: Any) -> tuple[list[str], list[str]]:
    """A **bare** array of ``{"id": str, "name": str, "email"?: str}`` (B.2.15).

    Returns the problems and the user ids.
    """
    if not isinstance(body, list):
        keys = f" with keys {sorted(body)}" if isinstance(body, dict) else ""
        return [f"body is {_kind(body)}{keys}, expected a bare array of users"], []
    problems: list[str] = []
    ids: list[str] = []
    for i, user in enumerate(body):
        if not isinstance(user, dict):
            problems.append(f"[{i}] is {_kind(user)}, expected an object")
            continue
        for key in ("id", "name"):
            if not _is_id(user.get(key)):
                problems.append(f"[{i}].{key} is {_kind(user.get(key))}, expected a string")
        if _is_id(user.get("id")):
            ids.append(str(user["id"]))
    return problems, ids
