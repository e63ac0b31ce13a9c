"""A tiny controller-runtime: store events -> keyed work queue -> reconcile, on the sandbox loop.

Reconcilers are plain synchronous functions that read and write through KubeApi; because the loop
is single-threaded they run atomically. A reconcile may ask to run again later (a pod that becomes
Running after its image pull, a DaemonSet waiting for a pod to be ready) by returning a delay in
simulated seconds, which the clock scales.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ..api import KubeApi
from ..store import Event

log = logging.getLogger("keybuzz.sandbox.controllers")

Key = tuple[str, str | None, str]  # (controller name, namespace, name)


class Controller(Protocol):
    name: str

    def keys_for(self, ev: Event) -> Iterable[tuple[str | None, str]]:
        """Which (namespace, name) keys of this controller an event concerns."""
        ...

    def reconcile(self, namespace: str | None, name: str) -> float | None:
        """Bring one object towards its desired state; return a delay to be called again."""
        ...


class ControllerManager:
    def __init__(self, api: KubeApi, clock: Any) -> None:
        self.api = api
        self.clock = clock
        self.controllers: dict[str, Controller] = {}
        self._pending: dict[Key, None] = {}  # insertion-ordered: drain() runs keys FIFO
        self._queue: asyncio.Queue[Key] | None = None
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._deferred: dict[Key, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.errors: list[str] = []
        self.reconciles = 0
        api.store.add_listener(self._on_event)

    def add(self, controller: Controller) -> None:
        self.controllers[controller.name] = controller

    # --- queue -------------------------------------------------------------------------------

    def _on_event(self, ev: Event) -> None:
        for c in self.controllers.values():
            try:
                keys = list(c.keys_for(ev))
            except Exception:  # a controller bug must not break writes
                log.exception("keys_for failed in %s", c.name)
                continue
            delay = getattr(c, "coalesce", 0.0)
            for ns, name in keys:
                if delay:
                    self.enqueue_soon(c.name, ns, name, delay)
                else:
                    self.enqueue(c.name, ns, name)

    def enqueue_soon(self, controller: str, namespace: str | None, name: str, seconds: float) -> None:
        """Batch bursts: one reconcile `seconds` after the first of many events for a key."""
        key = (controller, namespace, name)
        if self._queue is None:
            self.enqueue(*key)  # bootstrap: FIFO draining with de-duplication batches already
            return
        if key in self._pending or key in self._timers:
            return
        self.enqueue_after(controller, namespace, name, seconds)

    def enqueue(self, controller: str, namespace: str | None, name: str) -> None:
        key = (controller, namespace, name)
        if key in self._pending:
            return
        self._pending[key] = None
        if self._queue is not None:
            self._queue.put_nowait(key)

    def enqueue_after(self, controller: str, namespace: str | None, name: str, seconds: float) -> None:
        key = (controller, namespace, name)
        if self._queue is None:
            # not running yet (world bootstrap): arm the timer when the manager starts
            self._deferred[key] = seconds
            return
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(self.clock.scaled(seconds), self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.enqueue(*key)

    def enqueue_all(self, controller: str, items: Iterable[tuple[str | None, str]]) -> None:
        for ns, name in items:
            self.enqueue(controller, ns, name)

    # --- running -----------------------------------------------------------------------------

    def start(self) -> None:
        self._queue = asyncio.Queue()
        for key in list(self._pending):
            self._queue.put_nowait(key)
        for key, seconds in self._deferred.items():
            self.enqueue_after(*key, seconds)
        self._deferred.clear()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="controller-manager")

    async def stop(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            key = await self._queue.get()
            self._pending.pop(key, None)
            self.run_one(key)
            # let HTTP handlers interleave with long reconcile bursts (scale scenario)
            if self._queue.empty() or self.reconciles % 50 == 0:
                await asyncio.sleep(0)

    def run_one(self, key: Key) -> None:
        cname, ns, name = key
        c = self.controllers.get(cname)
        if c is None:
            return
        self.reconciles += 1
        try:
            delay = c.reconcile(ns, name)
        except Exception as e:
            log.exception("reconcile %s %s/%s failed", cname, ns, name)
            self.errors.append(f"{cname} {ns}/{name}: {type(e).__name__}: {e}")
            delay = 1.0
        if delay is not None:
            self.enqueue_after(cname, ns, name, delay)

    def drain(self, max_steps: int = 1_000_000) -> int:
        """Run reconciles synchronously until nothing is pending (world bootstrap)."""
        steps = 0
        while self._pending and steps < max_steps:
            key = next(iter(self._pending))
            del self._pending[key]
            self.run_one(key)
            steps += 1
        return steps

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until the queue is empty (timers may still be armed). For tests."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self._pending and loop.time() < end:
            await asyncio.sleep(0.005)


def obj_key(obj: dict[str, Any]) -> tuple[str | None, str]:
    m = obj.get("metadata", {})
    return m.get("namespace"), m["name"]


def owner_keys(obj: dict[str, Any], kind: str) -> list[tuple[str | None, str]]:
    m = obj.get("metadata", {})
    return [(m.get("namespace"), r["name"]) for r in m.get("ownerReferences") or [] if r.get("kind") == kind]


Callback = Callable[[], None]
