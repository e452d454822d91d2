"""The service's configuration: one YAML file, validated at start-up.

Shape (``config.example.yaml`` documents every option)::

    server:   {host, port, root_path, max_body_bytes, health_cache_seconds}
    auth:     {header, keys}
    backend:  {driver, options}          # options validated by the driver's Options model
    mapping:  {contacts: {...}, companies: {...}}
    matching: {contacts: [...], companies: [...]}
    users:    null | [{id, name, email}]

Rules:

* Every model rejects unknown keys, so a misspelt option fails at start-up instead of being
  silently ignored; each option has one spelling.
* ``${VAR}`` and ``${VAR:-default}`` are interpolated in every string value (``$$`` is a literal
  ``$``), so secrets stay in the environment.
* ``ENGINY_ADAPTER_CONFIG`` (file path), ``ENGINY_ADAPTER_API_KEY`` (one more valid key),
  ``ENGINY_ADAPTER_HOST`` and ``ENGINY_ADAPTER_PORT`` cover the essentials without a file.
* Every problem is a :class:`ConfigError` whose message starts with the YAML path of the
  offending key (``backend.options.pool_size: ...``) and never contains a value, so that it is
  safe to print and to log.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from adapter.mapping import NullPolicy, UnmappedPolicy
from adapter.matching import (
    DEFAULT_MATCH_KEYS,
    DEFAULT_NORMALISER_BY_FIELD,
    NORMALISERS,
    KeySpec,
)
from adapter.telemetry import TelemetryConfig  # observability: (helper OPS)
from adapter.ui import UIConfig  # ui: (helper OPS)
from backends.base import EXTERNAL_ID, Entity

if TYPE_CHECKING:
    from backends.base import Backend

__all__ = [
    "DEFAULT_BACKEND",
    "DEFAULT_MAX_BODY_BYTES",
    "ENV_API_KEY",
    "ENV_CONFIG",
    "ENV_HOST",
    "ENV_PORT",
    "AuthConfig",
    "BackendConfig",
    "ConfigError",
    "EntityMappingConfig",
    "MappingConfig",
    "MatchKeyConfig",
    "MatchingConfig",
    "ServerConfig",
    "Settings",
    "UserConfig",
    "build_backend",
    "format_validation_error",
    "interpolate",
    "load_settings",
]

#: The embedded default backend: what ``serve`` runs on when the configuration names no driver.
#: The single place to change it. An SQLite file in the working directory, so data survives a
#: restart (the SQL driver's ``url`` option moves it).
DEFAULT_BACKEND: Final[Mapping[str, Any]] = MappingProxyType(
    {"driver": "sql", "options": {"url": "sqlite+aiosqlite:///./enginy-adapter.db"}}
)

DEFAULT_MAX_BODY_BYTES: Final = 10 * 1024 * 1024

ENV_CONFIG: Final = "ENGINY_ADAPTER_CONFIG"
ENV_API_KEY: Final = "ENGINY_ADAPTER_API_KEY"
ENV_HOST: Final = "ENGINY_ADAPTER_HOST"
ENV_PORT: Final = "ENGINY_ADAPTER_PORT"


class ConfigError(Exception):
    """The configuration is invalid. The message starts with the YAML path of the offending key
    (or the file / environment variable concerned) and never contains a configured value."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        self.detail = message
        super().__init__(f"{path}: {message}" if path else message)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class _Section(BaseModel):
    # Unknown keys are errors everywhere; new sections are added as new fields of Settings.
    model_config = ConfigDict(extra="forbid")


class ServerConfig(_Section):
    """``server:`` — where and how the HTTP front listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    #: Path prefix the service is served under (Enginy's ``baseUrl`` may carry one), e.g.
    #: ``/enginy``. Empty: served at the root.
    root_path: str = ""
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    #: How long a ``/health`` backend check is reused, so probes never hammer the CRM.
    health_cache_seconds: float = Field(default=5.0, ge=0)
    #: Worker processes. More than one needs a backend shared between processes (SQL on a
    #: database server, HubSpot); the memory driver refuses (helper OPS, docs/operations.md).
    workers: int = Field(default=1, ge=1, le=64)
    #: After SIGTERM, seconds in-flight requests get to finish before connections are closed.
    graceful_shutdown_seconds: float = Field(default=25.0, ge=0)

    @field_validator("root_path")
    @classmethod
    def _check_root_path(cls, value: str) -> str:
        value = value.strip()
        if value in ("", "/"):
            return ""
        if not value.startswith("/"):
            raise ValueError("must start with '/' (for example /enginy)")
        if any(ch in value for ch in "?#") or any(ch.isspace() for ch in value):
            raise ValueError("must be a plain path without query, fragment or spaces")
        return value.rstrip("/")


_HEADER_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class AuthConfig(_Section):
    """``auth:`` — the API key(s) Enginy sends, and in which header."""

    #: Header name, matched case-insensitively (Enginy's ``apiKeyHeader``).
    header: str = "X-API-Key"
    #: Valid keys; several at once allow rotation. Empty values are ignored, so that
    #: ``${ENGINY_API_KEY:-}`` means "none configured" (then ``serve`` generates one).
    keys: list[SecretStr] = Field(default_factory=list)

    @field_validator("header")
    @classmethod
    def _check_header(cls, value: str) -> str:
        value = value.strip()
        if not _HEADER_TOKEN.match(value):
            raise ValueError("must be a valid HTTP header name (letters, digits, '-')")
        return value

    @field_validator("keys")
    @classmethod
    def _drop_empty_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        kept: list[SecretStr] = []
        seen: set[str] = set()
        for key in keys:
            secret = key.get_secret_value().strip()
            if secret and secret not in seen:
                seen.add(secret)
                kept.append(SecretStr(secret))
        return kept


class BackendConfig(_Section):
    """``backend:`` — the driver and its options (checked by the driver's ``Options`` model
    when the backend is built, see :func:`build_backend`)."""

    #: A built-in name (``memory``, ``sql``, ``hubspot``), an entry-point name, or
    #: ``package.module:Class``.
    driver: str = Field(default=DEFAULT_BACKEND["driver"], min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _embedded_default(cls, data: Any) -> Any:
        # The default options belong to the default driver only: ``backend: {driver: hubspot}``
        # must not inherit the embedded store's options.
        if isinstance(data, Mapping) and "driver" not in data:
            data = {"driver": DEFAULT_BACKEND["driver"], **data}
            data.setdefault("options", dict(DEFAULT_BACKEND["options"]))
        return data

    @field_validator("driver")
    @classmethod
    def _strip_driver(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must name a driver")
        return value

    @field_validator("options", mode="before")
    @classmethod
    def _null_options(cls, value: Any) -> Any:
        return {} if value is None else value


class EntityMappingConfig(_Section):
    """``mapping.contacts`` / ``mapping.companies``."""

    #: Enginy field name → backend field name; overrides the driver's defaults field by field.
    fields: dict[str, str] = Field(default_factory=dict)
    unmapped: UnmappedPolicy = UnmappedPolicy.KEEP
    #: Enginy field names returned in ``properties`` by sync; ``null``: every mapped field.
    sync_back: list[str] | None = None
    nulls: NullPolicy = NullPolicy.IGNORE

    @field_validator("fields", mode="before")
    @classmethod
    def _null_fields(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for enginy_name, backend_name in value.items():
            if enginy_name in (EXTERNAL_ID, "crmId"):
                raise ValueError(f"{enginy_name} identifies the record and cannot be mapped")
            if not enginy_name.strip() or not backend_name.strip():
                raise ValueError("field names must not be empty")
        return value


class MappingConfig(_Section):
    """``mapping:`` — field names between Enginy and the backend, per entity."""

    contacts: EntityMappingConfig = Field(default_factory=EntityMappingConfig)
    companies: EntityMappingConfig = Field(default_factory=EntityMappingConfig)

    def for_entity(self, entity: Entity) -> EntityMappingConfig:
        return self.contacts if entity is Entity.CONTACT else self.companies


class MatchKeyConfig(_Section):
    """One match key: ``{field, normaliser}``; a bare string is a field with its default
    normaliser."""

    field: str = Field(min_length=1)
    normaliser: str | None = None

    @model_validator(mode="after")
    def _resolve_normaliser(self) -> MatchKeyConfig:
        if self.field == EXTERNAL_ID:
            raise ValueError(f"{EXTERNAL_ID} is always matched first; do not list it")
        if self.normaliser is None:
            default = DEFAULT_NORMALISER_BY_FIELD.get(self.field)
            if default is None:
                raise ValueError(
                    f"field {self.field!r} has no default normaliser; write "
                    f"{{field: {self.field}, normaliser: <{'|'.join(NORMALISERS)}>}}"
                )
            self.normaliser = default
        elif self.normaliser not in NORMALISERS:
            raise ValueError(
                f"unknown normaliser {self.normaliser!r} (one of: {', '.join(NORMALISERS)})"
            )
        return self

    def spec(self) -> KeySpec:
        assert self.normaliser is not None  # resolved by the validator
        return KeySpec(self.field, self.normaliser)


def _default_keys(entity: Entity) -> list[MatchKeyConfig]:
    return [
        MatchKeyConfig(field=k.field, normaliser=k.normaliser) for k in DEFAULT_MATCH_KEYS[entity]
    ]


class MatchingConfig(_Section):
    """``matching:`` — the keys sync uses after ``externalId``, in priority order."""

    contacts: list[MatchKeyConfig] = Field(default_factory=lambda: _default_keys(Entity.CONTACT))
    companies: list[MatchKeyConfig] = Field(default_factory=lambda: _default_keys(Entity.COMPANY))

    @field_validator("contacts", "companies", mode="before")
    @classmethod
    def _bare_field_names(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, list):
            return [{"field": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("contacts", "companies")
    @classmethod
    def _no_duplicates(cls, value: list[MatchKeyConfig]) -> list[MatchKeyConfig]:
        names = [key.field for key in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"match key {name!r} is listed twice")
        return value

    def keys(self) -> dict[Entity, tuple[KeySpec, ...]]:
        """The keys in the form :class:`adapter.matching.Matcher` takes."""
        return {
            Entity.CONTACT: tuple(key.spec() for key in self.contacts),
            Entity.COMPANY: tuple(key.spec() for key in self.companies),
        }


class UserConfig(_Section):
    """One entry of the static ``users:`` list served by ``GET /users``."""

    id: str = Field(min_length=1)
    name: str
    email: str | None = None


class Settings(_Section):
    """The whole configuration."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    matching: MatchingConfig = Field(default_factory=MatchingConfig)
    #: ``null``: ``GET /users`` asks the backend (501 when it cannot list users).
    users: list[UserConfig] | None = None
    #: Metrics and request logs (``adapter/telemetry.py``).
    observability: TelemetryConfig = Field(default_factory=TelemetryConfig)
    #: The dashboard at ``/ui`` (``adapter/ui.py``).
    ui: UIConfig = Field(default_factory=UIConfig)

    @field_validator(
        "server", "auth", "backend", "mapping", "matching", "observability", "ui", mode="before"
    )
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        # ``server:`` with nothing under it loads as None; treat it as "all defaults".
        return {} if value is None else value


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def _format_loc(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _find_model(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation (``Model``, ``list[Model] | None``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _find_model(arg)
        if found is not None:
            return found
    return None


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class that holds the key at ``loc[-1]`` (to suggest a spelling)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        info = current.model_fields.get(part) if current is not None else None
        if info is None:
            return None
        current = _find_model(info.annotation)
    return current


def format_validation_error(
    exc: ValidationError,
    *,
    prefix: str = "",
    model: type[BaseModel] | None = None,
    sources: Mapping[str, str] | None = None,
) -> ConfigError:
    """Turn a pydantic error into a one-line :class:`ConfigError`.

    Each problem reads ``<yaml.path>: <reason>``; the input value is never included (pydantic's
    ``msg`` does not contain it, its ``input`` field does and is not used). ``prefix`` is
    prepended to each path (``backend.options``); ``model`` enables "did you mean" for unknown
    keys; ``sources`` names the environment variable a path came from.
    """
    problems: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = [part for part in error["loc"] if part != "__root__"]
        # A failed union member adds the member's type name to the location; drop it.
        loc = [p for p in loc if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS))]
        path = _format_loc([*prefix.split("."), *loc] if prefix else loc) or "(top level)"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown option"
            owner = _model_at(model, loc) if model is not None and loc else None
            if owner is not None and isinstance(loc[-1], str):
                close = difflib.get_close_matches(loc[-1], list(owner.model_fields), n=1)
                if close:
                    message += f" (did you mean {close[0]!r}?)"
                else:
                    message += f" (known: {', '.join(owner.model_fields)})"
        elif error["type"] == "missing":
            message = "required option is missing"
        if sources and path in sources:
            path = f"{path} (from {sources[path]})"
        problems.append(f"{path}: {message}")
    # Deduplicate (a union reports the same location per member) while keeping order.
    unique = list(dict.fromkeys(problems))
    return ConfigError("; ".join(unique))


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "MatchKeyConfig"})


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|(\{))")


def interpolate(value: str, environ: Mapping[str, str], path: str) -> str:
    """Substitute ``${VAR}`` and ``${VAR:-default}`` in one string; ``$$`` is a literal ``$``.

    ``${VAR:-default}`` uses the default when the variable is unset or empty. A ``${VAR}``
    whose variable is unset is a :class:`ConfigError` naming ``path`` and the variable.
    """

    def substitute(match: re.Match[str]) -> str:
        escaped, name, default, broken = match.groups()
        if escaped:
            return "$"
        if broken:
            raise ConfigError(
                "malformed ${...} reference (write ${NAME} or ${NAME:-default}; $$ for a '$')",
                path=path,
            )
        current = environ.get(name)
        if default is not None:
            return current if current else default
        if current is None:
            raise ConfigError(
                f"environment variable {name} is not set (set it, or write ${{{name}:-default}})",
                path=path,
            )
        return current

    return _VARIABLE.sub(substitute, value)


def _interpolate_tree(node: Any, environ: Mapping[str, str], loc: list[int | str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, environ, _format_loc(loc) or "(top level)")
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, environ, [*loc, str(k)]) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate_tree(v, environ, [*loc, i]) for i, v in enumerate(node)]
    return node


def _check_duplicate_keys(node: yaml.Node, loc: list[int | str], seen: set[int]) -> None:
    """Refuse duplicate keys, which YAML would silently resolve by keeping the last one."""
    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None or key == "<<":
                _check_duplicate_keys(value_node, loc, seen)
                continue
            line = key_node.start_mark.line + 1
            if key in lines:
                raise ConfigError(
                    f"duplicate key (lines {lines[key]} and {line})",
                    path=_format_loc([*loc, key]),
                )
            lines[key] = line
            _check_duplicate_keys(value_node, [*loc, key], seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicate_keys(item, [*loc, index], seen)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("configuration file not found", path=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror})", path=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("the file is not UTF-8 text", path=str(path)) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}
        _check_duplicate_keys(node, [], set())
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"invalid YAML: {exc.problem or exc.context}", path=where) from None
    except yaml.YAMLError:
        raise ConfigError("invalid YAML", path=str(path)) from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            "the file must hold a mapping (server:, auth:, backend: ...)", path=str(path)
        )
    return data


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    section = raw.get(name)
    if section is None:
        section = raw[name] = {}
    if not isinstance(section, dict):
        raise ConfigError("must be a mapping", path=name)
    return section


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] = os.environ
) -> Settings:
    """Load, interpolate and validate the configuration.

    ``path`` falls back to ``$ENGINY_ADAPTER_CONFIG``; with neither, every option takes its
    default (the embedded backend). ``ENGINY_ADAPTER_API_KEY`` adds a valid key;
    ``ENGINY_ADAPTER_HOST`` / ``ENGINY_ADAPTER_PORT`` override ``server.host`` / ``server.port``.
    Raises :class:`ConfigError`.
    """
    if path is None or str(path) == "":
        path = environ.get(ENV_CONFIG) or None
    raw: dict[str, Any] = _read_yaml(Path(path)) if path is not None else {}
    raw = _interpolate_tree(raw, environ, [])

    sources: dict[str, str] = {}
    if environ.get(ENV_HOST):
        _section(raw, "server")["host"] = environ[ENV_HOST]
        sources["server.host"] = ENV_HOST
    if environ.get(ENV_PORT):
        _section(raw, "server")["port"] = environ[ENV_PORT].strip()
        sources["server.port"] = ENV_PORT
    if environ.get(ENV_API_KEY, "").strip():
        auth = _section(raw, "auth")
        keys = auth.get("keys")
        if keys is None:
            keys = []
        if not isinstance(keys, list):
            raise ConfigError("must be a list of keys", path="auth.keys")
        auth["keys"] = [*keys, environ[ENV_API_KEY]]

    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(exc, model=Settings, sources=sources) from None


# --------------------------------------------------------------------------------------------
# Building the backend
# --------------------------------------------------------------------------------------------


def build_backend(settings: Settings) -> Backend:
    """Resolve ``backend.driver`` through the registry and construct the driver with its
    validated ``backend.options``. Does not open it.

    Raises :class:`ConfigError` (``backend.driver: ...`` for an unknown driver or a missing
    optional dependency, ``backend.options.<key>: ...`` for bad options).
    """
    from backends.registry import DriverLoadError, load_driver

    try:
        driver = load_driver(settings.backend.driver)
    except DriverLoadError as exc:
        raise ConfigError(str(exc), path="backend.driver") from None
    try:
        options = driver.Options.model_validate(settings.backend.options)
    except ValidationError as exc:
        raise format_validation_error(exc, prefix="backend.options", model=driver.Options) from None
    return driver(options)
