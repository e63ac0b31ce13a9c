"""The project's request budget: a token bucket, as the spec's "Rate Limiting" section describes.

`limit` requests per hour, refilled gradually (1 per second at 3600/h); every request, successful
or not, costs one; an empty bucket answers 429 `rate_limit_exceeded`. Real (wall) time drives it,
not the sandbox clock: the budget is about real requests, so speeding the world up must not
hand out more of them. The headers go on every reply (hcloud ignores them; the wizard shows them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        limit: int,
        refill_per_second: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1:
            raise ValueError("rate limit must be >= 1 request per hour")
        self.limit = limit
        self.refill = refill_per_second if refill_per_second is not None else limit / 3600.0
        self._monotonic = monotonic
        self._wall = wall
        self._tokens = float(limit)
        self._last = monotonic()

    def _update(self) -> None:
        now = self._monotonic()
        if self.refill > 0:
            self._tokens = min(float(self.limit), self._tokens + (now - self._last) * self.refill)
        self._last = now

    def take(self) -> bool:
        """Spend one request; False when the budget is exhausted (the request gets a 429)."""
        self._update()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    @property
    def remaining(self) -> int:
        self._update()
        return math.floor(self._tokens)

    def headers(self) -> dict[str, str]:
        self._update()
        missing = self.limit - self._tokens
        if self.refill > 0:
            reset = self._wall() + missing / self.refill
        else:
            reset = self._wall() + 3600
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(math.floor(self._tokens)),
            "RateLimit-Reset": str(math.ceil(reset)),
        }

    def reset(self) -> None:
        """Refill completely (scenario helper)."""
        self._tokens = float(self.limit)
        self._last = self._monotonic()
