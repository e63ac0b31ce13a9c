"""Hetzner Actions with a real lifecycle on the sandbox clock.

An action is `running` from the moment its request is answered; `progress` rises with the elapsed
(clock-scaled) time; when its duration has passed it becomes `success` (or `error` when the
outcome callback says so) and its completion callbacks run, still on the sandbox loop. hcloud's
`wait_until_finished` polls GET /actions/{id}, so tests see exactly what a real project shows.

Locking: an action started with `lock=True` locks its subject (the first resource it names, e.g.
the Load Balancer of an add_target, not the server being added) until it finishes;
`ensure_unlocked` raises 423 `locked` for a new conflicting request, as the real API does for
Load Balancers (hcloud does not retry `locked`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock
from .errors import locked

Outcome = tuple[str, str] | None  # (error code, message) or None for success


@dataclass
class Action:
    id: int
    command: str
    resources: list[tuple[int, str]]  # (id, type)
    started: str
    start_loop_time: float
    duration: float  # scaled seconds on the loop clock
    lock: bool
    status: str = "running"
    finished: str | None = None
    error: dict[str, str] | None = None
    decide: Callable[[], Outcome] | None = None
    on_success: list[Callable[[], None]] = field(default_factory=list)
    on_error: list[Callable[[], None]] = field(default_factory=list)
    handle: asyncio.TimerHandle | None = None

    def progress(self, now: float) -> int:
        if self.status != "running":
            return 100
        if self.duration <= 0:
            return 99
        return max(0, min(99, int(100 * (now - self.start_loop_time) / self.duration)))

    def touches(self, rtype: str, rid: int) -> bool:
        return (rid, rtype) in self.resources


class ActionManager:
    def __init__(
        self,
        clock: Clock,
        duration: float | tuple[float, float],
        on_finished: Callable[[Action], None],
        random_seed: int | None = 0,
    ) -> None:
        self.clock = clock
        self.duration = duration
        self._on_finished = on_finished
        self._rng = random.Random(random_seed)
        self._next_id = 1
        self.actions: dict[int, Action] = {}

    # ---- lifecycle -------------------------------------------------------------------------
    def _draw_duration(self) -> float:
        d = self.duration
        if isinstance(d, tuple):
            return self._rng.uniform(d[0], d[1])
        return float(d)

    def start(
        self,
        command: str,
        resources: list[tuple[int, str]],
        *,
        lock: bool = False,
        duration: float | None = None,
        decide: Callable[[], Outcome] | None = None,
        on_success: Callable[[], None] | None = None,
        on_error: Callable[[], None] | None = None,
    ) -> Action:
        """Start an action; `decide` is called at completion time to pick success or error."""
        seconds = self._draw_duration() if duration is None else duration
        scaled = self.clock.scaled(seconds)
        loop = asyncio.get_running_loop()
        action = Action(
            id=self._next_id,
            command=command,
            resources=list(resources),
            started=self.clock.stamp(),
            start_loop_time=loop.time(),
            duration=scaled,
            lock=lock,
            decide=decide,
        )
        if on_success:
            action.on_success.append(on_success)
        if on_error:
            action.on_error.append(on_error)
        self._next_id += 1
        self.actions[action.id] = action
        if scaled <= 0:
            self._finish(action)
        else:
            action.handle = loop.call_later(scaled, self._finish, action)
        return action

    def start_finished(self, command: str, resources: list[tuple[int, str]]) -> Action:
        """An action that is already `success` when returned (used for instant bookkeeping)."""
        return self.start(command, resources, duration=0)

    def _finish(self, action: Action) -> None:
        if action.status != "running":
            return
        outcome = action.decide() if action.decide else None
        action.finished = self.clock.stamp()
        if outcome is None:
            action.status = "success"
            callbacks = action.on_success
        else:
            action.status = "error"
            action.error = {"code": outcome[0], "message": outcome[1]}
            callbacks = action.on_error
        for cb in callbacks:
            cb()
        self._on_finished(action)

    # ---- queries ---------------------------------------------------------------------------
    def running_lock(self, rtype: str, rid: int) -> Action | None:
        for action in self.actions.values():
            if action.status == "running" and action.lock and action.resources[:1] == [(rid, rtype)]:
                return action
        return None

    def ensure_unlocked(self, rtype: str, rid: int, what: str) -> None:
        running = self.running_lock(rtype, rid)
        if running is not None:
            raise locked(what, running.id, running.command)

    def running_for(self, rtype: str, rid: int) -> list[Action]:
        return [a for a in self.actions.values() if a.status == "running" and a.touches(rtype, rid)]

    def for_resource(self, rtype: str, rid: int | None = None) -> list[Action]:
        return [
            a
            for a in self.actions.values()
            if any(t == rtype and (rid is None or i == rid) for i, t in a.resources)
        ]

    def render(self, action: Action) -> dict[str, Any]:
        now = asyncio.get_running_loop().time()
        return {
            "id": action.id,
            "command": action.command,
            "status": action.status,
            "progress": action.progress(now),
            "started": action.started,
            "finished": action.finished,
            "resources": [{"id": rid, "type": rtype} for rid, rtype in action.resources],
            "error": dict(action.error) if action.error else None,
        }

    def cancel_all(self) -> None:
        for action in self.actions.values():
            if action.handle is not None:
                action.handle.cancel()
