"""The manifest is validated when the configuration loads: every problem named by its YAML
path (through ``check`` too), union tags never in the path, no configured value echoed."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapter.cli import main
from adapter.config import ConfigError, build_backend, load_settings
from backends.base import Capability
from tests.rest.fakecrm import TOKEN, manifest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rest"


def load(tmp_path: Path, options: dict[str, Any]) -> Any:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"backend": {"driver": "rest", "options": options}}))
    return build_backend(load_settings(path, environ={}))


def error_for(tmp_path: Path, options: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, options)
    return str(info.value)


def edited(path: list[Any], value: Any) -> dict[str, Any]:
    options = copy.deepcopy(manifest())
    node: Any = options
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return options


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (["auth"], {"type": "bearer"}, "backend.options.auth.token: required option is missing"),
        (["auth"], {"type": "bearr", "token": "t"}, "backend.options.auth: needs a type, one of:"),
        (
            ["auth"],
            {"type": "api_key", "key": "k", "name": "x", "in": "cookie"},
            "backend.options.auth.in:",
        ),
        (
            ["contacts", "find", "email", 0, "request", "query"],
            {"email": "=vlue"},
            "backend.options.contacts: find.email[0].request reads vlue, which this operation",
        ),
        (
            ["contacts", "find", "email", 0, "pagination"],
            {"type": "offset", "pge_size": 5},
            "backend.options.contacts.find.email[0].pagination.pge_size: unknown option",
        ),
        (
            ["contacts", "create", "body"],
            "=fields | lowr",
            "backend.options.contacts.create.request.body: in expression '=fields | lowr': unknown",
        ),
        (["contacts", "find"], {"email": []}, "find.externalId is required"),
        (
            ["companies", "update", "body"],
            {"x": "=vars.a | map(kinds)"},
            "map() names tables that are not in tables: kinds",
        ),
        (["base_url"], "crm.example.com", "backend.options.base_url: must start with https://"),
        (
            ["contacts", "unknown_fields"],
            {"type": "defined", "target": "Contact"},
            "the custom_fields section",
        ),
        (
            ["errors", "rules"],
            [{"status": 400, "class": "conflcit"}],
            "backend.options.errors.rules[0].class",
        ),
    ],
)
def test_problems_are_named_by_their_yaml_path(
    tmp_path: Path, path: list[Any], value: Any, expected: str
) -> None:
    message = error_for(tmp_path, edited(path, value))
    assert expected in message
    assert not re.search(r"\[[a-z_]+\]", message.split(":")[0])  # no union tag in the path


def test_a_secret_is_never_echoed_in_an_error(tmp_path: Path) -> None:
    options = edited(["auth"], {"type": "bearer", "token": "s3cr3t-token-value", "extra": 1})
    message = error_for(tmp_path, options)
    assert "s3cr3t" not in message and "backend.options.auth.extra" in message


def test_capabilities_follow_the_configured_groups(tmp_path: Path) -> None:
    driver = load(tmp_path, manifest())
    assert driver.capabilities == frozenset()
    options = manifest(users={"method": "GET", "path": "/users", "response": {"items": "data"}})
    assert load(tmp_path, options).capabilities == {Capability.USERS}


def test_check_names_the_path_of_a_bad_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    options = edited(["contacts", "get", "path"], "api/contacts/{id}")
    path.write_text(yaml.safe_dump({"backend": {"driver": "rest", "options": options}}))
    assert main(["check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "backend.options.contacts.get.request.path" in err and "must start with '/'" in err


@pytest.mark.parametrize(
    "preset", sorted(p.name for p in EXAMPLES.glob("*.yaml") if "schema" not in p.name)
)
def test_every_preset_loads(preset: str) -> None:
    env = {
        "CRM_BASE_URL": "https://crm.example.test",
        "CRM_TOKEN": "t0ken-value",
        "CRM_COMPANY_DOMAIN": "acme",
        "ENGINY_API_KEY": "k",
    }
    settings = load_settings(EXAMPLES / preset, environ=env)
    driver = build_backend(settings)
    assert driver.name == "rest"
    assert {Capability.ASSOCIATIONS, Capability.ACTIVITIES, Capability.TASKS} <= driver.capabilities


def test_contacts_and_companies_are_required(tmp_path: Path) -> None:
    options = manifest()
    del options["companies"]
    assert "backend.options.companies: required option is missing" in error_for(tmp_path, options)


def test_the_rate_budget_is_shared_in_redis_like_hubspots(tmp_path: Path) -> None:
    from backends.http import LocalLimiter, RedisLimiter

    options = manifest(
        rate_limit={"requests": 10, "per_seconds": 2, "redis_url": "redis://127.0.0.1:6379/0"}
    )
    driver = load(tmp_path, options)
    assert isinstance(driver.client.limiter, RedisLimiter)
    assert driver.client.limiter.key_prefix.startswith("enginy:rest:")
    assert TOKEN not in driver.client.limiter.key_prefix
    assert driver.client.limiter.budgets["general"].calls == 10
    local = load(tmp_path, manifest(rate_limit={"requests": 10}))
    assert isinstance(local.client.limiter, LocalLimiter)
