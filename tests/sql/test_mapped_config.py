"""Mapped mode's options as the configuration loads them: every mistake is reported with the
YAML path of the offending key before anything connects; values, templates and id strategies
compute what the documentation says."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapter.config import ConfigError, build_backend, load_settings
from backends.sql.id_strategies import check_id_strategy, id_generator
from backends.sql.mapped_options import ValueSpec
from backends.sql.options import SQLOptions
from backends.sql.values import evaluate, render_template

NOW = dt.datetime(2030, 1, 2, 3, 4, 5)


def mapped(**contacts: Any) -> dict[str, Any]:
    return {
        "mode": "mapped",
        "contacts": {"table": "people", **contacts},
        "companies": {"table": "orgs"},
    }


def load(tmp_path: Path, options: dict[str, Any]) -> None:
    path = tmp_path / "adapter.yaml"
    path.write_text(yaml.safe_dump({"backend": {"driver": "sql", "options": options}}))
    build_backend(load_settings(path, environ={}))


@pytest.mark.parametrize(
    ("contacts", "path", "message"),
    [
        ({"where": {"deleted": {"in": [0]}}}, "contacts.where.deleted", "a condition is"),
        ({"on_create": {"name": {"template": "{first!r}"}}}, "contacts.on_create.name.template",
         "plain field name"),
        ({"on_create": {"name": {"template": "{first"}}}, "contacts.on_create.name.template",
         "template"),
        ({"on_create": {"at": {"now": True, "const": 1}}}, "contacts.on_create.at",
         "exactly one of"),
        ({"on_create": {"x": {"const": 1, "map": {"a": 1}}}}, "contacts.on_create.x",
         "'map' applies to"),
        ({"id_strategy": "uuid7"}, "contacts.id_strategy", "unknown id strategy"),
        ({"id_strategy": "json:no_such_function"}, "contacts.id_strategy", "has no function"),
        ({"table": "people; drop"}, "contacts.table", "plain SQL identifier"),
        ({"extra_fields": "json_column"}, "contacts", "needs 'json_column'"),
        ({"children": {"email": {"table": "e", "column": "v"}}}, "contacts.children.email",
         "exactly one of 'record_column'"),
        ({"lookups": {"email": {"stored": "title"}}}, "contacts.lookups.email.stored", "lower"),
        ({"spelling": 1}, "contacts.spelling", ""),
    ],
)  # fmt: skip
def test_a_mistake_is_reported_with_its_yaml_path(
    tmp_path: Path, contacts: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, mapped(**contacts))
    text = str(caught.value)
    assert text.startswith(f"backend.options.{path}"), text
    assert message in text


def test_activities_and_tasks_options_are_checked_too(tmp_path: Path) -> None:
    options = mapped()
    options["activities"] = {"table": "notes", "columns": {"subject": "name"}}
    with pytest.raises(ConfigError, match=r"backend\.options\.activities.*link rows"):
        load(tmp_path, options)
    options["activities"] = {"table": "notes", "columns": {"due": "x"}, "contact_column": "c"}
    with pytest.raises(ConfigError, match="unknown attribute"):
        load(tmp_path, options)
    options["activities"] = {"table": "notes", "contact_column": "c",
                             "completed": {"column": "s", "done": 1, "open": 0}}  # fmt: skip
    with pytest.raises(ConfigError, match="describes tasks"):
        load(tmp_path, options)
    with pytest.raises(ConfigError, match="apply to mode 'mapped'"):
        load(tmp_path, {"activities": {"table": "notes", "contact_column": "c"}})


def test_the_schema_option_reaches_every_customer_table() -> None:
    options = SQLOptions.model_validate(
        {
            **mapped(on_create={"t": {"lookup": {"table": "types", "column": "id"}}}),
            "schema": "crm",
            "tasks": {"table": "todo", "contact_column": "c",
                      "targets": {"table": "todo_who", "owner_column": "t",
                                  "rows": [{"who": {"field": "contact_id"}}]}},
        }
    )  # fmt: skip
    assert options.contacts is not None and options.tasks is not None
    assert options.contacts.db_schema == "crm"
    assert options.contacts.on_create["t"].lookup is not None
    assert options.contacts.on_create["t"].lookup.db_schema == "crm"
    assert options.tasks.targets is not None and options.tasks.targets.db_schema == "crm"


@pytest.mark.parametrize(
    ("template", "inputs", "expected"),
    [
        ("{first} {last}", {"first": "Ada", "last": "Lovelace"}, "Ada Lovelace"),
        ("{last}, {first}", {"last": "Lovelace"}, "Lovelace"),
        ("{last}, {first}", {"first": "Ada"}, "Ada"),
        ("{last}, {first}", {}, None),
        (["{first} {last}", "{email}"], {"first": "Ada", "email": "a@b"}, "a@b"),
        (["{first} {last}", "{email}"], {}, None),
        ("Dear {first}", {"first": " "}, "Dear"),
        ("{metadata.messageId}", {"metadata": {"messageId": 7}}, "7"),
        ("{{literal}} {x}", {"x": 1}, "{literal} 1"),
        ("{flag}", {"flag": True}, "true"),
    ],
)
def test_templates(template: Any, inputs: dict[str, Any], expected: str | None) -> None:
    assert render_template(template, inputs) == expected


def test_values() -> None:
    def value(spec: Any, **inputs: Any) -> Any:
        return evaluate(ValueSpec.model_validate(spec), inputs, NOW)

    assert value(0) == 0 and value(None) is None and value("x") == "x"
    assert value({"now": True}) == NOW
    assert value({"field": "a", "case": "upper"}, a="ada@x") == "ADA@X"
    assert value({"field": "t", "map": {"EMAIL": 3}, "default": 1}, t="EMAIL") == 3
    assert value({"field": "t", "map": {"EMAIL": 3}, "default": 1}, t="CALL") == 1
    assert value({"field": "done", "map": {True: "Done", False: "Open"}}, done=False) == "Open"
    assert value({"field": "due", "default": {"now": True}}) == NOW
    html = value({"template": "<p>{b}</p>", "escape": "html"}, b="a < b\nc")
    assert html == "<p>a &lt; b<br>c</p>"
    assert value({"template": '"{b}"', "escape": "json"}, b='say "hi"') == '"say \\"hi\\""'
    assert re.fullmatch(r"[0-9a-f]{32}", value({"generate": "uuid_hex"}))


def test_id_strategies() -> None:
    espo = id_generator("espo")()
    assert re.fullmatch(r"[0-9a-f]{17}", espo)
    # time-ordered like PHP's uniqid(): later ids sort after earlier ones
    assert id_generator("espo")()[:13] >= espo[:13]
    assert len(id_generator("uuid")()) == 36
    assert check_id_strategy("secrets:token_hex") == "secrets:token_hex"
    assert len(id_generator("secrets:token_hex")()) == 64
    with pytest.raises(ValueError, match="cannot import"):
        check_id_strategy("no_such_module_here:f")
    with pytest.raises(ValueError, match="unknown id strategy"):
        check_id_strategy("database", generated=True)


def test_column_types() -> None:
    import uuid

    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql, postgresql

    from backends.sql.coerce import ValueRejected, coerce, unsupported

    def column(type_: Any, nullable: bool = True) -> sa.Column[Any]:
        return sa.Column("c", type_, nullable=nullable)

    assert coerce(column(postgresql.DOUBLE_PRECISION()), 51) == 51
    assert coerce(column(mysql.TINYINT(display_width=1)), True) == 1
    assert coerce(column(sa.Boolean()), 1) is True
    assert coerce(column(sa.Enum("TODO", "DONE", name="s")), "DONE") == "DONE"
    with pytest.raises(ValueRejected, match="one of: TODO, DONE"):
        coerce(column(sa.Enum("TODO", "DONE", name="s")), "LATER")
    value = "6F9619FF-8B86-D011-B42D-00C04FC964FF"
    assert coerce(column(postgresql.UUID(as_uuid=True)), value) == uuid.UUID(value)
    with pytest.raises(ValueRejected, match="UUIDs"):
        coerce(column(postgresql.UUID()), "not-a-uuid")
    stamp = coerce(column(sa.DateTime(timezone=True)), "2030-01-02T03:04:05")
    assert stamp.tzinfo is not None  # naive values are UTC
    assert coerce(column(sa.Date()), NOW) == NOW.date()
    assert coerce(column(sa.String(5)), "abcdefgh", truncate=True) == "abcde"
    with pytest.raises(ValueRejected, match="at most 5"):
        coerce(column(sa.String(5)), "abcdefgh")
    with pytest.raises(ValueRejected, match="finite"):
        coerce(column(sa.Float()), float("inf"))
    for refused in (sa.LargeBinary(), sa.ARRAY(sa.Integer()), postgresql.TSVECTOR()):
        assert unsupported(column(refused)) is not None
        with pytest.raises(ValueRejected):
            coerce(column(refused), "x")
    assert unsupported(column(postgresql.JSONB())) is None
