"""Resolving ``backend:``: the driver named by ``backend.driver`` and its validated options.

The last step of validating the configuration: ``backend.options`` are checked by the driver's
own ``Options`` model, so a misspelt option fails at start-up with its YAML path.
"""

from __future__ import annotations

from pydantic import ValidationError

from adapter.config.errors import ConfigError, format_validation_error
from adapter.config.schema import Settings
from backends.base import Backend
from backends.registry import DriverLoadError, load_driver

__all__ = ["build_backend"]


def build_backend(settings: Settings) -> Backend:
    """Resolve ``backend.driver`` through the registry and construct the driver with its
    validated ``backend.options``. Does not open it.

    Raises :class:`ConfigError` (``backend.driver: ...`` for an unknown driver or a missing
    optional dependency, ``backend.options.<key>: ...`` for bad options).
    """
    try:
        driver = load_driver(settings.backend.driver)
    except DriverLoadError as exc:
        raise ConfigError(str(exc), path="backend.driver") from None
    if settings.backend.options.get("dry_run") and "dry_run" not in driver.Options.model_fields:
        raise ConfigError(
            f"driver {driver.name!r} has no dry run (--dry-run, ENGINY_ADAPTER_DRY_RUN): only "
            "drivers that send requests to a CRM (rest) can log them instead",
            path="backend.options.dry_run",
        )
    try:
        options = driver.Options.model_validate(settings.backend.options)
    except ValidationError as exc:
        raise format_validation_error(exc, prefix="backend.options", model=driver.Options) from None
    return driver(options)
