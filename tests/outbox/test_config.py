"""The ``outbox:`` section: defaults, and every mistake reported with its YAML path."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.config import DEFAULT_OUTBOX_URL, ConfigError, Settings, load_settings


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_settings(path, {})


def test_off_by_default_with_a_queue_file_beside_the_store(tmp_path: Path) -> None:
    settings = load(tmp_path, "")
    assert settings.outbox.enabled is False
    assert settings.outbox.url == DEFAULT_OUTBOX_URL
    assert settings.outbox.dialect == "sqlite"


def test_postgres_queue_with_its_password_kept_secret(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "outbox: {enabled: true, url: 'postgresql+asyncpg://enginy@queue.internal/q', "
        "password: 'Pa55@word!'}\n",
    )
    assert settings.outbox.dialect == "postgresql"
    assert settings.outbox.engine_url.password == "Pa55@word!"
    assert "Pa55@word!" not in settings.outbox.safe_url
    assert "Pa55@word!" in settings.secret_values()
    assert "Pa55@word!" not in repr(settings.outbox)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("outbox: {url: 'mysql+aiomysql://root@db/q'}", "outbox.url: the outbox lives in SQLite"),
        ("outbox: {url: 'sqlite+aiosqlite:///:memory:'}", "outbox.url: an in-memory SQLite"),
        ("outbox: {url: 'sqlite+aiosqlite://'}", "outbox.url: an in-memory SQLite"),
        ("outbox: {url: 'not a url'}", "outbox.url: not a database URL"),
        ("outbox: {batchsize: 5}", "outbox.batchsize: unknown option (did you mean 'batch_size'"),
        ("outbox: {backoff: {frist: 1}}", "outbox.backoff.frist: unknown option"),
        ("outbox: {backoff: {cap: 0}}", "outbox.backoff.cap: "),
        ("outbox: {table: 'drop table'}", "outbox.table: letters, digits and _ only"),
        ("outbox: {max_age_seconds: -1}", "outbox.max_age_seconds: "),
        (
            "outbox: {url: 'postgresql+asyncpg://u:pw@h/q', password: x}",
            "give the password either inside 'url' or as 'password'",
        ),
    ],
)
def test_mistakes_name_their_yaml_path(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text + "\n")
    assert expected in str(caught.value)
    assert "pw@" not in str(caught.value)


def test_the_openapi_document_shows_the_queued_answers() -> None:
    from adapter.http.openapi import build_openapi

    doc = build_openapi()
    schemas = doc["components"]["schemas"]

    def answer(path: str, method: str) -> dict[str, object]:
        content = doc["paths"][path][method]["responses"]["200"]["content"]
        schema: dict[str, object] = content["application/json"]["schema"]
        return schema

    assert answer("/activities", "post")["anyOf"][1] == {  # type: ignore[index]
        "$ref": "#/components/schemas/QueuedActivityOut"
    }
    assert "queued" in schemas["QueuedActivityOut"]["properties"]
    assert answer("/tasks/{taskId}", "patch")["anyOf"][1] == {  # type: ignore[index]
        "$ref": "#/components/schemas/QueuedTaskOut"
    }
    assert schemas["QueuedTaskOut"]["required"] == ["id"]
    batch = answer("/tasks/batch", "patch")
    assert batch["type"] == "array" and len(batch["items"]["anyOf"]) == 2  # type: ignore[index]
    assert "queued" in schemas["AssociationsResponse"]["properties"]
    assert "queued" in schemas["UpdateResult"]["properties"]
    assert "outbox" in doc["paths"]["/contacts"]["put"]["description"]
