"""The sandbox's etcd: objects, one resourceVersion counter, watch history and fan-out.

Stored objects are plain dicts that are never mutated once stored, each with its JSON bytes
serialised once at write time. A LIST of 20,000 pods is then a join of cached bytes, and every
watcher of an event shares the same bytes, which keeps the sandbox far from being the bottleneck
of the benchmarks that drive it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .registry import ResourceType


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Entry:
    __slots__ = ("obj", "raw", "rv")

    def __init__(self, obj: dict[str, Any], rv: int) -> None:
        self.obj = obj
        self.raw = dumps(obj)
        self.rv = rv


@dataclass
class Event:
    type: str  # ADDED | MODIFIED | DELETED
    rt: ResourceType
    entry: Entry
    old: dict[str, Any] | None

    @property
    def obj(self) -> dict[str, Any]:
        return self.entry.obj

    @property
    def rv(self) -> int:
        return self.entry.rv


@dataclass(eq=False)
class Watcher:
    """One open watch: what it wants, and the queue the HTTP layer drains."""

    rt: ResourceType
    namespace: str | None
    matches: Callable[[dict[str, Any]], bool]
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    closed: bool = False

    def offer(self, ev: Event) -> None:
        if self.closed or ev.rt.key != self.rt.key:
            return
        ns = ev.obj.get("metadata", {}).get("namespace")
        if self.namespace is not None and ns != self.namespace:
            return
        new_ok = self.matches(ev.obj)
        old_ok = ev.old is not None and self.matches(ev.old)
        if ev.type == "MODIFIED":
            # the cacher turns selector transitions into ADDED / DELETED, as a real server does
            if new_ok and not old_ok:
                ev = Event("ADDED", ev.rt, ev.entry, ev.old)
            elif old_ok and not new_ok:
                ev = Event("DELETED", ev.rt, ev.entry, ev.old)
            elif not new_ok:
                return
        elif not new_ok:
            return
        self.queue.put_nowait(ev)


@dataclass
class ListPage:
    entries: list[Entry]
    rv: int
    continue_token: str | None
    remaining: int | None


class Store:
    """All objects of the world, keyed by resource then (namespace, name)."""

    HISTORY = 20_000
    SNAPSHOTS = 64

    def __init__(self, start_rv: int = 1000) -> None:
        self.rv = start_rv
        self._data: dict[str, dict[tuple[str, str], Entry]] = {}
        self._history: deque[Event] = deque(maxlen=self.HISTORY)
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self._snapshots: OrderedDict[str, list[Entry]] = OrderedDict()
        self._snap_seq = 0

    # --- reading -----------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        e = self._data.get(rt.key, {}).get((namespace or "", name))
        return e.obj if e else None

    def entry(self, rt: ResourceType, namespace: str | None, name: str) -> Entry | None:
        return self._data.get(rt.key, {}).get((namespace or "", name))

    def entries(self, rt: ResourceType, namespace: str | None = None) -> list[Entry]:
        bucket = self._data.get(rt.key, {})
        if namespace is None:
            keys = sorted(bucket)
        else:
            keys = sorted(k for k in bucket if k[0] == namespace)
        return [bucket[k] for k in keys]

    def list(self, rt: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        return [e.obj for e in self.entries(rt, namespace)]

    def count(self, rt: ResourceType) -> int:
        return len(self._data.get(rt.key, {}))

    def list_page(
        self,
        rt: ResourceType,
        namespace: str | None,
        matches: Callable[[dict[str, Any]], bool] | None,
        limit: int | None,
        continue_token: str | None,
    ) -> ListPage:
        """A consistent, paged LIST: pages of one LIST come from the same snapshot."""
        if continue_token:
            snap_id, start = self._decode_continue(continue_token)
            snapshot = self._snapshots.get(snap_id)
            if snapshot is None:
                raise errors.expired(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter, or use the continue token "
                    "in this response to retrieve the remainder of the results. Continuing with the "
                    "provided token results in an inconsistent list - objects that were created, modified, "
                    "or deleted between the time the first chunk was returned and now may show up in the list."
                )
            rv = int(snap_id.split(":")[0])
        else:
            snapshot = self.entries(rt, namespace)
            if matches is not None:
                snapshot = [e for e in snapshot if matches(e.obj)]
            rv, start, snap_id = self.rv, 0, ""
        if not limit or limit <= 0 or start + limit >= len(snapshot):
            return ListPage(snapshot[start:], rv, None, None)
        if not snap_id:
            self._snap_seq += 1
            snap_id = f"{rv}:{self._snap_seq}"
            self._snapshots[snap_id] = snapshot
            while len(self._snapshots) > self.SNAPSHOTS:
                self._snapshots.popitem(last=False)
        end = start + limit
        token = base64.urlsafe_b64encode(dumps({"v": "sandbox/v1", "s": snap_id, "o": end})).decode()
        return ListPage(snapshot[start:end], rv, token, len(snapshot) - end)

    @staticmethod
    def _decode_continue(token: str) -> tuple[str, int]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
            return str(data["s"]), int(data["o"])
        except Exception as exc:  # any malformed token is the client's fault
            raise errors.bad_request(f"continue key is not valid: {exc}") from None

    # --- writing -----------------------------------------------------------------------------

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _stamp(self, obj: dict[str, Any], rv: int) -> dict[str, Any]:
        meta = dict(obj.get("metadata") or {})
        meta["resourceVersion"] = str(rv)
        out = dict(obj)
        out["metadata"] = meta
        return out

    def put(self, rt: ResourceType, obj: dict[str, Any], *, quiet: bool = False) -> dict[str, Any]:
        """Create or replace; the caller has already done admission and validation.

        quiet: bulk loading (scale scenario) - no watch event, no controller wake-up.
        """
        meta = obj["metadata"]
        key = (meta.get("namespace", "") if rt.namespaced else "", meta["name"])
        bucket = self._data.setdefault(rt.key, {})
        old = bucket.get(key)
        rv = self._next_rv()
        entry = Entry(self._stamp(obj, rv), rv)
        bucket[key] = entry
        if not quiet:
            self._emit(Event("MODIFIED" if old else "ADDED", rt, entry, old.obj if old else None))
        return entry.obj

    def remove(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        bucket = self._data.get(rt.key, {})
        old = bucket.pop((namespace or "" if rt.namespaced else "", name), None)
        if old is None:
            return None
        rv = self._next_rv()
        entry = Entry(self._stamp(old.obj, rv), rv)
        self._emit(Event("DELETED", rt, entry, old.obj))
        return entry.obj

    def _emit(self, ev: Event) -> None:
        self._history.append(ev)
        for w in list(self._watchers):
            w.offer(ev)
        for listener in list(self._listeners):
            listener(ev)

    # --- watching ----------------------------------------------------------------------------

    def add_listener(self, fn: Callable[[Event], None]) -> None:
        """In-process subscribers (controllers): called synchronously on every change."""
        self._listeners.append(fn)

    def oldest_rv(self) -> int:
        return self._history[0].rv - 1 if self._history else self.rv

    def history_since(self, rv: int) -> Iterable[Event]:
        if rv < self.oldest_rv():
            raise errors.expired(f"too old resource version: {rv} ({self.oldest_rv() + 1})")
        return [e for e in self._history if e.rv > rv]

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        matches: Callable[[dict[str, Any]], bool],
        since_rv: int | None,
    ) -> tuple[Watcher, list[Event]]:
        """Register a watcher; return it with the backlog to send first (history after since_rv)."""
        backlog: list[Event] = []
        w = Watcher(rt, namespace, matches)
        if since_rv is not None:
            for ev in self.history_since(since_rv):
                w.offer(ev)
            while not w.queue.empty():
                item = w.queue.get_nowait()
                if item is not None:
                    backlog.append(item)
        self._watchers.add(w)
        return w, backlog

    def unwatch(self, w: Watcher) -> None:
        w.closed = True
        self._watchers.discard(w)

    def close_all_watches(self) -> None:
        for w in list(self._watchers):
            w.queue.put_nowait(None)
            self.unwatch(w)

    def drop_watches(self, fraction_predicate: Callable[[Watcher], bool]) -> int:
        """Flaky-API scenario: end some watches early, as a restarting apiserver does."""
        dropped = 0
        for w in list(self._watchers):
            if fraction_predicate(w):
                w.queue.put_nowait(None)
                self.unwatch(w)
                dropped += 1
        return dropped
