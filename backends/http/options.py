"""Options every HTTP driver shares (``backend.options.rate_limit`` in the YAML)."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from backends.http.limiter import Budget, Clock, Limiter, LocalLimiter, RedisLimiter, Sleep

__all__ = ["RateLimitOptions", "build_limiter"]


class RateLimitOptions(BaseModel):
    """Where the rate budgets live.

    Without ``redis_url`` each process keeps its own window (run one worker, or divide the
    limits by the number of processes). With it, every replica that uses the same Redis and the
    same credentials shares one window: the upstream's limit belongs to the account, not to a
    process.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``redis://[:password@]host:port/db`` (or ``rediss://``); write ``${REDIS_URL}``.
    redis_url: SecretStr | None = None
    #: Prefix of the Redis keys. Default: derived from the driver and a hash of its credentials,
    #: so replicas with the same token share a budget and different tokens never do.
    key_prefix: str | None = None

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        if value is not None and not all(importlib.util.find_spec(m) for m in ("redis", "limits")):
            raise ValueError('a shared rate limit needs: pip install "enginy-crm-adapter[redis]"')
        return value


def build_limiter(
    options: RateLimitOptions,
    budgets: Iterable[Budget],
    *,
    driver: str,
    credential: str,
    clock: Clock,
    sleep: Sleep,
) -> Limiter:
    """The limiter the options ask for: Redis-shared when ``redis_url`` is set, else local.

    ``credential`` (a token) is only hashed into the default key prefix, never stored.
    """
    if options.redis_url is None:
        return LocalLimiter(budgets, clock=clock, sleep=sleep)
    digest = hashlib.sha256(credential.encode()).hexdigest()[:16]
    prefix = options.key_prefix or f"enginy:{driver}:{digest}"
    return RedisLimiter(
        budgets,
        url=options.redis_url.get_secret_value(),
        key_prefix=prefix,
        clock=clock,
        sleep=sleep,
    )
