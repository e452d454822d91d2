"""Loading the configuration: one YAML file plus a few environment variables, validated.

* ``${VAR}`` and ``${VAR:-default}`` are interpolated in every string value (``$$`` is a literal
  ``$``), so secrets stay in the environment.
* ``ENGINY_ADAPTER_CONFIG`` (file path), ``ENGINY_ADAPTER_API_KEY`` (one more valid key),
  ``ENGINY_ADAPTER_UI_PASSWORD`` (``ui.password``), ``ENGINY_ADAPTER_HOST`` and
  ``ENGINY_ADAPTER_PORT`` cover the essentials without a file;
  ``ENGINY_ADAPTER_DRY_RUN=1`` (``--dry-run``) sets ``backend.options.dry_run``.
* Duplicate keys, which YAML would silently resolve by keeping the last one, are refused.
* Every problem is a :class:`~adapter.config.errors.ConfigError` naming the YAML path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from adapter.config.errors import ConfigError, format_loc, format_validation_error
from adapter.config.observability import split_listen
from adapter.config.schema import Settings

__all__ = [
    "ENV_API_KEY",
    "ENV_CONFIG",
    "ENV_DRY_RUN",
    "ENV_HOST",
    "ENV_PORT",
    "ENV_UI_PASSWORD",
    "check_combinations",
    "interpolate",
    "load_settings",
]

ENV_CONFIG: Final = "ENGINY_ADAPTER_CONFIG"
ENV_API_KEY: Final = "ENGINY_ADAPTER_API_KEY"
ENV_HOST: Final = "ENGINY_ADAPTER_HOST"
ENV_PORT: Final = "ENGINY_ADAPTER_PORT"
ENV_UI_PASSWORD: Final = "ENGINY_ADAPTER_UI_PASSWORD"
#: ``1``: the backend sends nothing and logs what it would send (drivers with ``dry_run``).
ENV_DRY_RUN: Final = "ENGINY_ADAPTER_DRY_RUN"

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
        return interpolate(node, environ, format_loc(loc) or "(top level)")
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
                    path=format_loc([*loc, key]),
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
    ``ENGINY_ADAPTER_UI_PASSWORD`` sets ``ui.password``;
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
    if environ.get(ENV_UI_PASSWORD, "").strip():
        _section(raw, "ui")["password"] = environ[ENV_UI_PASSWORD].strip()
    if environ.get(ENV_DRY_RUN, "").strip().lower() in ("1", "true", "yes"):
        backend = _section(raw, "backend")
        options = backend.get("options")
        if options is None:
            options = backend["options"] = {}
        if not isinstance(options, dict):
            raise ConfigError("must be a mapping", path="backend.options")
        options["dry_run"] = True
    if environ.get(ENV_API_KEY, "").strip():
        auth = _section(raw, "auth")
        keys = auth.get("keys")
        if keys is None:
            keys = []
        if not isinstance(keys, list):
            raise ConfigError("must be a list of keys", path="auth.keys")
        auth["keys"] = [*keys, environ[ENV_API_KEY]]

    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise format_validation_error(exc, model=Settings, sources=sources) from None
    check_combinations(settings)
    return settings


def check_combinations(settings: Settings) -> None:
    """Options that are valid alone but not together (:class:`ConfigError` with the path)."""
    ui = settings.ui
    if ui.enabled and ui.listen is not None:
        if settings.server.workers > 1:
            raise ConfigError(
                "a listener of its own needs server.workers: 1 (every worker process would "
                "try to bind it)",
                path="ui.listen",
            )
        if split_listen(ui.listen)[1] == settings.server.port:
            raise ConfigError("must be another port than server.port", path="ui.listen")
