"""Configuration: YAML shape, interpolation, environment variables, errors with their YAML path
and without secrets, building the driver (issue 2 §4)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from adapter.config import (
    DEFAULT_BACKEND,
    DEFAULT_MATCH_KEYS,
    DEFAULT_MAX_BODY_BYTES,
    ConfigError,
    KeySpec,
    NullPolicy,
    Settings,
    UnmappedPolicy,
    build_backend,
    interpolate,
    load_settings,
)
from adapter.config.errors import _find_model
from backends.base import Entity
from backends.memory import MemoryBackend

SECRET = "s3cr3t-value-never-printed"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Settings:
    return load_settings(write(tmp_path, text), environ or {})


def error_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, environ)
    return str(info.value)


# -- defaults ----------------------------------------------------------------------------------


def test_no_configuration_at_all_gives_every_default() -> None:
    settings = load_settings(None, {})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.server.root_path == ""
    assert settings.server.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 10 * 1024 * 1024
    assert settings.server.health_cache_seconds == 5
    assert settings.auth.header == "X-API-Key"
    assert settings.auth.keys == []
    assert settings.backend.driver == DEFAULT_BACKEND["driver"]
    assert settings.backend.options == dict(DEFAULT_BACKEND["options"])
    assert settings.mapping.contacts.unmapped is UnmappedPolicy.KEEP
    assert settings.mapping.contacts.nulls is NullPolicy.IGNORE
    assert settings.mapping.companies.sync_back is None
    assert settings.matching.keys() == DEFAULT_MATCH_KEYS
    assert settings.users is None


def test_empty_file_and_empty_sections_are_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "") == Settings()
    assert load(tmp_path, "server:\nauth:\nmapping:\nmatching:\n") == Settings()


def test_full_configuration_loads(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
        server:
          host: 0.0.0.0
          port: 9000
          root_path: /enginy/
          max_body_bytes: 1000
          health_cache_seconds: 0
        auth:
          header: X-Enginy-Key
          keys: [one, two]
        backend:
          driver: memory
          options: {}
        mapping:
          contacts:
            fields: {email: email_address}
            unmapped: reject
            sync_back: [email, leadScore]
            nulls: clear
          companies:
            unmapped: drop
        matching:
          contacts: [email, {field: mobilePhone, normaliser: phone}]
          companies: [domain]
        users:
          - {id: u1, name: Ann, email: ann@acme.com}
          - {id: u2, name: Bob}
        """,
    )
    assert settings.server.port == 9000
    assert settings.server.root_path == "/enginy"  # trailing slash removed
    assert [k.get_secret_value() for k in settings.auth.keys] == ["one", "two"]
    assert settings.mapping.contacts.fields == {"email": "email_address"}
    assert settings.mapping.contacts.unmapped is UnmappedPolicy.REJECT
    assert settings.mapping.contacts.nulls is NullPolicy.CLEAR
    assert settings.mapping.contacts.sync_back == ["email", "leadScore"]
    assert settings.mapping.companies.unmapped is UnmappedPolicy.DROP
    assert settings.matching.keys() == {
        Entity.CONTACT: (KeySpec("email", "email"), KeySpec("mobilePhone", "phone")),
        Entity.COMPANY: (KeySpec("domain", "domain"),),
    }
    assert settings.users is not None
    assert [(u.id, u.email) for u in settings.users] == [("u1", "ann@acme.com"), ("u2", None)]


def test_the_example_configuration_is_the_defaults() -> None:
    # It says so: every value written out is the default, so copying it changes nothing
    # (in particular the data goes to the embedded SQLite file, not to memory).
    example = Path(__file__).resolve().parent.parent / "config.example.yaml"
    settings = load_settings(example, {})
    assert settings == load_settings(None, {})
    assert settings.backend.driver == "sql"
    assert settings.backend.options["url"].startswith("sqlite+aiosqlite:///")
    build_backend(settings)
    # The documented variable is the one the service reads.
    with_key = load_settings(example, {"ENGINY_ADAPTER_API_KEY": SECRET})
    assert [k.get_secret_value() for k in with_key.auth.keys] == [SECRET]


def _options(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type[BaseModel], str]]:
    """Every option of ``model`` and the sections inside it: (YAML path, model, field name)."""
    options: list[tuple[str, type[BaseModel], str]] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        options.append((path, model, name))
        inner = _find_model(info.annotation)
        if inner is not None:
            options.extend(_options(inner, path))
    return options


_EXAMPLE_KEY = re.compile(r"^(\s*)(- )?([A-Za-z_]\w*):(?:\s|$)")
_EXAMPLE_ITEM = re.compile(r"^(\s*)- (?=[{\[])")
_FLOW_TOKEN = re.compile(r"([A-Za-z_]\w*)\s*:|[{}\[\],]")


def _flow_keys(text: str, base: str) -> set[str]:
    """The key paths inside a flow collection (``{first: 1, cap: 60}``, ``[{field: x}]``)
    that follows the key ``base`` on one line."""
    found: set[str] = set()
    stack, pending = [base], ""
    for token in _FLOW_TOKEN.finditer(text):
        if token.group(1) is not None:
            if len(stack) > 1:  # a key inside braces, not a word of a trailing comment
                pending = f"{stack[-1]}.{token.group(1)}"
                found.add(pending)
        elif token.group(0) in "{[":
            stack.append(pending or stack[-1])
            pending = ""
        elif token.group(0) in "}]":
            if len(stack) > 1:
                stack.pop()
            pending = ""
        else:
            pending = ""
    return found


def _documented_paths(text: str) -> set[str]:
    """The key paths a YAML example shows, written out or commented out (``# tls:`` then
    ``#   certfile: ...``), by indentation, with the keys of flow collections and of list items
    (``- {id: "42", name: ...}``)."""
    found: set[str] = set()
    stack: list[tuple[int, str]] = []
    for raw in text.splitlines():
        line = re.sub(r"^(\s*)# ?", r"\1", raw, count=1)
        key, item = _EXAMPLE_KEY.match(line), _EXAMPLE_ITEM.match(line)
        match = key or item
        if match is None:
            continue
        # A list item's keys sit two columns in, after the "- ".
        indent = len(match.group(1)) + (2 if item is not None or match.group(2) else 0)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = ".".join(name for _, name in stack)
        if key is None:
            found |= _flow_keys(line, parent)
            continue
        path = f"{parent}.{key.group(3)}" if parent else key.group(3)
        found.add(path)
        found |= _flow_keys(line[key.end() :], path)
        stack.append((indent, key.group(3)))
    return found


def test_the_example_configuration_documents_every_option() -> None:
    # Each option of every section (list items included) appears in the example at its place
    # (server.limits.max_connections under limits: under server:), written out or in a comment:
    # adding an option to Settings means documenting it there. A section model used in several
    # places (mapping.contacts and mapping.companies) is documented once.
    text = (Path(__file__).resolve().parent.parent / "config.example.yaml").read_text("utf-8")
    shown = _documented_paths(text)
    places: dict[tuple[type[BaseModel], str], list[str]] = {}
    for path, model, name in _options(Settings):
        places.setdefault((model, name), []).append(path)
    missing = [paths[0] for paths in places.values() if not shown.intersection(paths)]
    assert missing == []


def test_the_option_check_reads_nested_and_commented_keys() -> None:
    example = textwrap.dedent(
        """\
        server:
          limits:
            header_timeout_seconds: 10
          # tls:
          #   certfile: a.pem
        outbox:
          backoff: {first: 1, cap: 60}
        matching:
          contacts:
            - email
            # - {fields: [firstName, {field: company, normaliser: name}]}
        # users:
        #   - {id: "42", name: Grace}
        """
    )
    assert _documented_paths(example) >= {
        "server.limits.header_timeout_seconds",
        "server.tls.certfile",
        "outbox.backoff.first",
        "outbox.backoff.cap",
        "matching.contacts.fields",
        "matching.contacts.fields.field",
        "matching.contacts.fields.normaliser",
        "users.id",
        "users.name",
    }
    # A key of the same name elsewhere does not count: listen under metrics is not ui.listen.
    assert "ui.listen" not in _documented_paths("observability:\n  metrics:\n    listen: null\n")


# -- matching ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "normaliser"),
    [
        ("email", "email"),
        ("linkedinUrl", "linkedin"),
        ("domain", "domain"),
        ("name", "name"),
        ("phone", "phone"),
        ("mobilePhone", "phone"),
    ],
)
def test_a_bare_match_field_gets_its_default_normaliser(
    tmp_path: Path, field: str, normaliser: str
) -> None:
    settings = load(tmp_path, f"matching: {{contacts: [{field}]}}")
    assert settings.matching.keys()[Entity.CONTACT] == (KeySpec(field, normaliser),)


def test_an_unknown_match_field_needs_an_explicit_normaliser(tmp_path: Path) -> None:
    message = error_of(tmp_path, "matching: {contacts: [email, crmScore]}")
    assert message.startswith("matching.contacts[1]: ")
    assert "normaliser" in message


def test_an_unknown_normaliser_is_reported_with_the_known_ones(tmp_path: Path) -> None:
    message = error_of(tmp_path, "matching: {companies: [{field: vat, normaliser: fuzzy}]}")
    assert message.startswith("matching.companies[0]: ")
    assert "email, linkedin, domain, domain_any_extension, name, phone" in message


@pytest.mark.parametrize(
    "text",
    [
        "matching: {contacts: [email, email]}",
        "matching: {contacts: [externalId]}",
    ],
)
def test_bad_match_key_lists(tmp_path: Path, text: str) -> None:
    assert error_of(tmp_path, text).startswith("matching.contacts")


def test_an_empty_match_list_means_external_id_only(tmp_path: Path) -> None:
    assert load(tmp_path, "matching: {contacts: []}").matching.keys()[Entity.CONTACT] == ()


# -- unknown keys and bad values: the YAML path starts the message -----------------------------


@pytest.mark.parametrize(
    ("text", "path", "hint"),
    [
        ("server: {prot: 1}", "server.prot: ", "did you mean 'port'"),
        ("sever: {port: 1}", "sever: ", "did you mean 'server'"),
        ("auth: {keys: [a], headers: X}", "auth.headers: ", "did you mean 'header'"),
        ("mapping: {contacts: {unmaped: drop}}", "mapping.contacts.unmaped: ", "unmapped"),
        ("mapping: {leads: {}}", "mapping.leads: ", "unknown option"),
        ("users: [{id: u1, name: A, mail: x}]", "users[0].mail: ", "did you mean 'email'"),
        ("backend: {driver: memory, option: {}}", "backend.option: ", "did you mean 'options'"),
    ],
)
def test_unknown_keys_are_rejected_with_their_path(
    tmp_path: Path, text: str, path: str, hint: str
) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith(path), message
    assert "unknown option" in message
    assert hint in message


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("server: {port: eighty}", "server.port: "),
        ("server: {port: 70000}", "server.port: "),
        ("server: {max_body_bytes: 0}", "server.max_body_bytes: "),
        ("server: {health_cache_seconds: -1}", "server.health_cache_seconds: "),
        ("server: {root_path: enginy}", "server.root_path: "),
        ("auth: {header: 'X API Key'}", "auth.header: "),
        ("auth: {keys: key-as-a-string}", "auth.keys: "),
        ("backend: {driver: ''}", "backend.driver: "),
        ("mapping: {contacts: {unmapped: ignore}}", "mapping.contacts.unmapped: "),
        ("mapping: {companies: {nulls: keep}}", "mapping.companies.nulls: "),
        ("mapping: {contacts: {fields: {externalId: id}}}", "mapping.contacts.fields: "),
        ("users: [{name: Ann}]", "users[0].id: "),
        ("server: 5", "server: "),
    ],
)
def test_bad_values_are_reported_with_their_path(tmp_path: Path, text: str, path: str) -> None:
    assert error_of(tmp_path, text).startswith(path)


def test_several_problems_are_reported_on_one_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, "server: {port: x, prot: 1}")
    assert "\n" not in message
    assert "server.port: " in message and "server.prot: " in message


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        f"""
        auth: {{keys: [{{nested: {SECRET}}}]}}
        server: {{port: {SECRET}, host: [{SECRET}]}}
        """,
    )
    assert "auth.keys[0]: " in message and "server.port: " in message
    assert SECRET not in message


def test_keys_are_secret_in_repr_and_dump(tmp_path: Path) -> None:
    settings = load(tmp_path, f"auth: {{keys: [{SECRET}]}}")
    assert isinstance(settings.auth.keys[0], SecretStr)
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert SECRET not in settings.model_dump_json()


def test_empty_keys_are_ignored_and_duplicates_collapsed(tmp_path: Path) -> None:
    settings = load(tmp_path, "auth: {keys: ['', '  ', a, a, ' b ']}")
    assert [k.get_secret_value() for k in settings.auth.keys] == ["a", "b"]


# -- files ------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "nope.yaml", {})


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, "server:\n  port: [1\n")
    assert "config.yaml:" in message and "invalid YAML" in message


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    # Plain YAML keeps the last one silently; a duplicated port is almost always a mistake.
    message = error_of(tmp_path, "server:\n  port: 1\n  port: 2\n")
    assert message == "server.port: duplicate key (lines 2 and 3)"
    message = error_of(tmp_path, "users:\n  - {id: a, name: A, id: b}\n")
    assert message.startswith("users[0].id: duplicate key")


def test_anchors_and_merge_keys_still_work(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
        mapping:
          contacts: &policy {unmapped: drop, nulls: clear}
          companies:
            <<: *policy
            fields: {domain: website}
        """,
    )
    assert settings.mapping.companies.unmapped is UnmappedPolicy.DROP
    assert settings.mapping.companies.fields == {"domain": "website"}


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "must hold a mapping" in error_of(tmp_path, "- a\n- b\n")


# -- interpolation -----------------------------------------------------------------------------


def test_interpolation_in_any_string(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
        server: {host: "${HOST}", port: "${PORT:-9001}", root_path: "/${PREFIX}/v1"}
        auth: {keys: ["${KEY}", "static-${SUFFIX:-x}"]}
        users: [{id: "${UID:-u1}", name: "${NAME}"}]
        """,
        {"HOST": "10.0.0.1", "PREFIX": "enginy", "KEY": SECRET, "NAME": "Ann Lee"},
    )
    assert settings.server.host == "10.0.0.1"
    assert settings.server.port == 9001
    assert settings.server.root_path == "/enginy/v1"
    assert [k.get_secret_value() for k in settings.auth.keys] == [SECRET, "static-x"]
    assert settings.users is not None and settings.users[0].id == "u1"
    assert settings.users[0].name == "Ann Lee"


def test_interpolation_in_driver_options(tmp_path: Path) -> None:
    settings = load(
        tmp_path, "backend: {driver: sql, options: {url: '${DB_URL}'}}", {"DB_URL": "x"}
    )
    assert settings.backend.options == {"url": "x"}


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("${A}", {"A": "1"}, "1"),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),  # like the shell: unset or empty
        ("${A:-}", {}, ""),
        ("${A}", {"A": ""}, ""),
        ("$$", {}, "$"),
        ("$${A}", {"A": "1"}, "${A}"),
        ("pa$word", {}, "pa$word"),  # a lone $ stays
        ("${A}${B:-b}-$A", {"A": "a"}, "ab-$A"),
        ("${A:-http://x:1/}", {}, "http://x:1/"),
    ],
)
def test_interpolate(text: str, environ: dict[str, str], expected: str) -> None:
    assert interpolate(text, environ, "p") == expected


def test_interpolated_value_is_not_interpolated_again() -> None:
    assert interpolate("${A}", {"A": "${B}", "B": "x"}, "p") == "${B}"


def test_missing_variable_names_path_and_variable_but_no_value(tmp_path: Path) -> None:
    message = error_of(tmp_path, "auth:\n  keys: ['${ENGINY_API_KEY}']\n", {"OTHER": SECRET})
    assert message.startswith("auth.keys[0]: ")
    assert "ENGINY_API_KEY is not set" in message
    assert SECRET not in message


def test_malformed_reference_is_an_error(tmp_path: Path) -> None:
    assert error_of(tmp_path, "server: {host: '${HOST'}").startswith("server.host: ")


def test_interpolated_value_is_validated_with_the_key_path(tmp_path: Path) -> None:
    message = error_of(tmp_path, "server: {port: '${PORT}'}", {"PORT": "not-a-port"})
    assert message.startswith("server.port: ")
    assert "not-a-port" not in message


# -- environment variables ---------------------------------------------------------------------


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "server: {port: 9100}")
    assert load_settings(None, {"ENGINY_ADAPTER_CONFIG": str(path)}).server.port == 9100


def test_explicit_path_wins_over_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "server: {port: 9100}")
    other = tmp_path / "missing.yaml"
    assert load_settings(path, {"ENGINY_ADAPTER_CONFIG": str(other)}).server.port == 9100


def test_host_port_and_key_from_environment_override_the_file(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "server: {host: 127.0.0.1, port: 8080}\nauth: {keys: [file-key]}",
        {
            "ENGINY_ADAPTER_HOST": "0.0.0.0",
            "ENGINY_ADAPTER_PORT": "9200",
            "ENGINY_ADAPTER_API_KEY": SECRET,
        },
    )
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 9200)
    assert [k.get_secret_value() for k in settings.auth.keys] == ["file-key", SECRET]


def test_environment_without_a_file() -> None:
    settings = load_settings(None, {"ENGINY_ADAPTER_API_KEY": SECRET, "ENGINY_ADAPTER_PORT": "1"})
    assert [k.get_secret_value() for k in settings.auth.keys] == [SECRET]
    assert settings.server.port == 1


def test_bad_port_from_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, {"ENGINY_ADAPTER_PORT": "http"})
    assert str(info.value).startswith("server.port (from ENGINY_ADAPTER_PORT): ")


# -- backend -----------------------------------------------------------------------------------


def test_default_options_belong_to_the_default_driver_only(tmp_path: Path) -> None:
    settings = load(tmp_path, "backend: {driver: hubspot}")
    assert settings.backend.options == {}
    settings = load(tmp_path, "backend: {options: null}")
    assert settings.backend.driver == DEFAULT_BACKEND["driver"]


def test_build_backend_constructs_the_driver_with_validated_options(tmp_path: Path) -> None:
    settings = load(tmp_path, "backend: {driver: memory, options: {users: [{id: u1, name: Ann}]}}")
    backend = build_backend(settings)
    assert isinstance(backend, MemoryBackend)
    assert backend.options.users[0].id == "u1"  # type: ignore[attr-defined]


def test_build_backend_reports_bad_options_with_their_path(tmp_path: Path) -> None:
    settings = load(tmp_path, "backend: {driver: memory, options: {pool_size: 5}}")
    with pytest.raises(ConfigError) as info:
        build_backend(settings)
    assert str(info.value).startswith("backend.options.pool_size: unknown option")


def test_build_backend_reports_nested_option_errors(tmp_path: Path) -> None:
    settings = load(tmp_path, "backend: {driver: memory, options: {users: [{id: u1}]}}")
    with pytest.raises(ConfigError) as info:
        build_backend(settings)
    assert str(info.value).startswith("backend.options.users[0].name: ")


def test_build_backend_unknown_driver_suggests_a_name(tmp_path: Path) -> None:
    settings = load(tmp_path, "backend: {driver: memroy}")
    with pytest.raises(ConfigError) as info:
        build_backend(settings)
    message = str(info.value)
    assert message.startswith("backend.driver: ")
    assert "did you mean" in message and "memory" in message


def test_build_backend_accepts_a_module_class_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_crm_driver.py").write_text(
        "from backends.memory import MemoryBackend\n"
        "class MyBackend(MemoryBackend):\n"
        "    name = 'mine'\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = load(tmp_path, "backend: {driver: 'my_crm_driver:MyBackend'}")
    backend: Any = build_backend(settings)
    assert backend.name == "mine"
