"""Sandbox time: real wall-clock timestamps, with every simulated delay divided by `speed`.

Timestamps must stay real because kubectl prints AGE from them; delays (image pulls, Hetzner
actions, health-check intervals) shrink in tests (speed 20+) and stay readable in the demo (1-2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Clock:
    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed

    def now(self) -> datetime:
        return datetime.now(UTC)

    def stamp(self) -> str:
        """RFC 3339 with second precision, as metav1.Time serialises."""
        return rfc3339(self.now())

    def stamp_micro(self) -> str:
        """RFC 3339 with microseconds, as metav1.MicroTime (events, leases) serialises."""
        return rfc3339_micro(self.now())

    def scaled(self, seconds: float) -> float:
        return max(0.0, seconds / self.speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(self.scaled(seconds))

    def call_later(self, seconds: float, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(self.scaled(seconds), callback, *args)
