"""``enginy-adapter outbox list|retry|drop``: what an operator sees and can do."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from adapter.cli import main
from adapter.config import OutboxConfig
from adapter.outbox import OutboxStore, State, Write, WriteKind


@pytest.fixture
def queue(tmp_path: Path) -> tuple[Path, OutboxConfig]:
    """A configuration file and its queue: two pending writes of one contact, one dead
    letter."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}"
    config = tmp_path / "c.yaml"
    config.write_text(f"outbox: {{url: '{url}'}}\n")  # enabled or not: the CLI reads it
    outbox = OutboxConfig(url=url)

    async def fill() -> None:
        store = OutboxStore(outbox)
        await store.open()
        await store.enqueue(
            [
                Write(WriteKind.CONTACTS_UPDATE, "contact:ct_1", {"status": "Replied"}),
                Write(WriteKind.CONTACTS_UPDATE, "contact:ct_1", {"status": "Finished"}),
                Write(WriteKind.ASSOCIATIONS_CREATE, "contact:ct_2", {"company_id": "co_9"}),
            ],
            "backend_unavailable: connection refused",
        )
        async with store.claim(10) as claim:
            for item in claim.items:
                if item.kind == WriteKind.ASSOCIATIONS_CREATE:
                    claim.give_up(item, "not_found", "No company exists with ID: co_9", 0)
        await store.close()

    asyncio.run(fill())
    return config, outbox


def states(outbox: OutboxConfig) -> list[tuple[int, State]]:
    async def read() -> list[tuple[int, State]]:
        store = OutboxStore(outbox)
        await store.open(create=False)
        try:
            return [(i.id, i.state) for i in await store.list_items()]
        finally:
            await store.close()

    return asyncio.run(read())


def test_list_shows_items_and_a_summary(
    queue: tuple[Path, OutboxConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = queue
    assert main(["outbox", "list", "--config", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "ID",
        "STATE",
        "KIND",
        "RECORD",
        "AGE",
        "ATTEMPTS",
        "NEXT",
        "LAST",
        "ERROR",
    ]
    assert out[1].split()[:4] == ["1", "pending", "contacts.update", "contact:ct_1"]
    assert out[3].split()[:4] == ["3", "dead", "associations.create", "contact:ct_2"]
    assert "not_found: No company exists with ID: co_9" in out[3]
    assert out[-1].startswith("2 queued, 1 dead letter(s); oldest queued ")
    assert "outbox.db (table enginy_outbox)" in out[-1]


def test_list_json_leaves_the_payload_out_unless_asked(
    queue: tuple[Path, OutboxConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = queue
    assert main(["outbox", "--config", str(config), "list", "--state", "dead", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    item = json.loads(line)
    assert (item["id"], item["state"], item["error_code"]) == (3, "dead", "not_found")
    assert item["receipt"].startswith("queued-") and "payload" not in item
    assert main(["outbox", "list", "--json", "--payload", "--config", str(config)]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first["payload"] == {"status": "Replied"}


def test_retry_puts_a_dead_letter_back(
    queue: tuple[Path, OutboxConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    config, outbox = queue
    assert main(["outbox", "retry", "3", "--config", str(config)]) == 0
    assert "1 dead letter(s) back in the queue" in capsys.readouterr().out
    assert states(outbox) == [(1, State.PENDING), (2, State.PENDING), (3, State.PENDING)]
    # Not a dead letter (any more): said so, exit 1.
    assert main(["outbox", "retry", "3", "--config", str(config)]) == 1
    assert "not dead letters" in capsys.readouterr().err
    assert main(["outbox", "retry", "--config", str(config)]) == 1
    assert "--all-dead" in capsys.readouterr().err


def test_drop_deletes_only_what_it_is_told(
    queue: tuple[Path, OutboxConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    config, outbox = queue
    assert main(["outbox", "drop", "1", "3", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == "dropped 3 (dead, associations.create, contact:ct_2)"
    assert "not dropped: 1" in captured.err and "--pending" in captured.err
    assert states(outbox) == [(1, State.PENDING), (2, State.PENDING)]
    assert main(["outbox", "drop", "1", "--pending", "--config", str(config)]) == 0
    assert states(outbox) == [(2, State.PENDING)]


def test_a_missing_queue_is_an_error_and_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nowhere.db"
    config = tmp_path / "c.yaml"
    config.write_text(f"outbox: {{url: 'sqlite+aiosqlite:///{path}'}}\n")
    assert main(["outbox", "list", "--config", str(config)]) == 1
    assert f"no outbox database at {path}" in capsys.readouterr().err
    assert not path.exists()
