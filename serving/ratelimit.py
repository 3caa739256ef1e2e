"""Per-key rate limits: Redis when ``BIZOS_REDIS_URL`` is set, in-process otherwise.

The in-process limiter is a token bucket per key (``rate`` a second, bursts of
twice that): exact for one process, and per worker with several. Redis makes the
limit shared by every worker and host: one counter per key and second (INCR with a
short expiry), so the limit is ``2 x rate`` over a one-second window. If Redis stops
answering, the in-process limiter takes over for that request rather than failing
it: a rate limit outage must not become an API outage.

Keys are counted by their hash; the key itself never reaches Redis.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Protocol

log = logging.getLogger(__name__)

RATE_WAIT = "bizos_rate_wait"
"""Request state: the limiter's answer for this request (None: allowed), present when
the ASGI fast path (serving/fastpath.py) already counted it before handing it on."""


class RateLimiter(Protocol):
    async def hit(self, key_hash: str) -> float | None:
        """None when allowed; else seconds until the key may try again."""
        ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    def __init__(self, rate: int) -> None:
        self.rate = float(rate)
        self.burst = float(2 * rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    async def hit(self, key_hash: str) -> float | None:
        return self.take(key_hash)

    def take(self, key_hash: str) -> float | None:
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key_hash, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[key_hash] = (tokens - 1, now)
                return None
            self._buckets[key_hash] = (tokens, now)
            return (1 - tokens) / self.rate

    async def close(self) -> None:
        return None


class RedisRateLimiter:
    def __init__(self, url: str, rate: int) -> None:
        import redis.asyncio as redis

        self.limit = 2 * rate
        self._redis = redis.Redis.from_url(
            url, socket_timeout=0.25, socket_connect_timeout=0.25, health_check_interval=30
        )
        self._fallback = MemoryRateLimiter(rate)

    async def hit(self, key_hash: str) -> float | None:
        now = time.time()
        window = math.floor(now)
        name = f"bizos:ratelimit:{key_hash[:32]}:{window}"
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(name)
                pipe.expire(name, 2)
                count, _ = await pipe.execute()
        except Exception as exc:  # any Redis failure: degrade, do not fail the request
            log.warning(
                "rate limits fall back to in-process: Redis failed (%s)", type(exc).__name__
            )
            return self._fallback.take(key_hash)
        if int(count) <= self.limit:
            return None
        return max(0.01, window + 1 - now)

    async def close(self) -> None:
        await self._redis.aclose()


def rate_limiter(redis_url: str | None, rate: int) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(redis_url, rate)
    return MemoryRateLimiter(rate)
