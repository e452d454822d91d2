"""Dry run (``backend.options.dry_run``, ``--dry-run``, ``ENGINY_ADAPTER_DRY_RUN``): nothing
reaches the CRM, each request that would have been sent is logged with its secrets masked, and
the answers say their ids are not real."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from adapter.cli import main
from adapter.config import ENV_DRY_RUN, load_settings
from backends.base import (
    Entity,
    MatchKey,
    NewActivity,
    NewRecord,
    NewTask,
    RecordUpdate,
    TaskChanges,
)
from backends.rest import DRY_RUN_PREFIX
from tests.rest.support import EXAMPLES, preset_driver

pytestmark = pytest.mark.anyio
TOKEN = "bcrm_pat_dry-run-secret-token-value"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a dry run sent {request.method} {request.url}")


async def test_nothing_is_sent_and_every_answer_says_it_is_not_real(
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver = preset_driver(
        "bottlecrm",
        "https://crm.example.test",
        TOKEN,
        transport=httpx.MockTransport(refuse),
        dry_run=True,
    )
    caplog.set_level(logging.WARNING, logger="backends.rest")
    await driver.open()
    await driver.ping()
    record = NewRecord(
        "ext-1",
        {"email": "ada@acme.test", "first_name": "Ada", "score": 3},
        {"email": "ada@acme.test"},
    )
    [created] = await driver.create_records(Entity.CONTACT, [record])
    assert created.ok and created.created and (created.crm_id or "").startswith(DRY_RUN_PREFIX)
    assert (
        await driver.find_records(Entity.CONTACT, MatchKey("email", "email"), ["ada@acme.test"])
        == {}
    )
    [updated] = await driver.update_records(
        Entity.CONTACT, [RecordUpdate(created.crm_id or "", {"first_name": "Grace"})]
    )
    assert updated.ok
    activity = await driver.create_activity(
        NewActivity(
            type="EMAIL", subject="Hi", contact_id="c-1", idempotency_key="EMAIL|OUTBOUND|m1"
        )
    )
    assert activity.id.startswith(DRY_RUN_PREFIX)
    task = await driver.create_task(
        NewTask(subject="Call", due_date=datetime(2026, 1, 2, tzinfo=UTC))
    )
    assert task.id.startswith(DRY_RUN_PREFIX) and task.subject == "Call"
    await driver.update_task(task.id, TaskChanges(now=datetime.now(UTC), completed=True))
    await driver.close()
    lines = driver.client.dry_run_log
    [create] = [line for line in lines if line.startswith("POST /api/contacts/ body=")]
    assert '"email": "ada@acme.test"' in create and '"enginy_id": "ext-1"' in create
    assert any(line.startswith("POST /api/interactions/") for line in lines)
    assert any(line.startswith("PATCH /api/tasks/dry-run-") for line in lines)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "dry run: would send POST /api/contacts/" in logged
    assert TOKEN not in logged and TOKEN not in "\n".join(lines)


async def test_a_key_in_the_query_is_masked() -> None:
    driver = preset_driver(
        "pipedrive",
        "https://acme.pipedrive.test",
        TOKEN,
        transport=httpx.MockTransport(refuse),
        dry_run=True,
        auth={"type": "api_key", "in": "query", "name": "api_token", "key": TOKEN},
    )
    await driver.create_record(Entity.COMPANY, NewRecord("co-1", {"name": "Acme"}, {}))
    await driver.close()
    assert driver.client.dry_run_log
    assert all(
        "api_token=[redacted]" in line and TOKEN not in line for line in driver.client.dry_run_log
    )


def test_the_environment_and_the_flag_turn_it_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"CRM_BASE_URL": "https://unreachable.invalid", "CRM_TOKEN": TOKEN, ENV_DRY_RUN: "1"}
    settings = load_settings(EXAMPLES / "bottlecrm.yaml", environ=env)
    assert settings.backend.options["dry_run"] is True
    config = tmp_path / "config.yaml"
    options = dict(
        load_settings(EXAMPLES / "bottlecrm.yaml", environ={**env, ENV_DRY_RUN: ""}).backend.options
    )
    config.write_text(yaml.safe_dump({"backend": {"driver": "rest", "options": options}}))
    # The CRM cannot be reached: check passes only because nothing is sent.
    assert main(["check", "--dry-run", "--config", str(config)]) == 0
    assert ENV_DRY_RUN not in os.environ  # the flag does not leak into later commands
    out = capsys.readouterr().out
    assert "dry run: nothing is sent" in out and "ok: configuration valid" in out


def test_a_driver_without_a_dry_run_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_DRY_RUN, raising=False)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"backend": {"driver": "memory"}}))
    assert main(["check", "--dry-run", "--config", str(config)]) == 1
    assert "backend.options.dry_run: driver 'memory' has no dry run" in capsys.readouterr().err
