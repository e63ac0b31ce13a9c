"""Continuous validation (the board): watches keep the Kubernetes side current, a timer the rest.

A watch-fed cache (informer) of the namespace's pods, DaemonSets, Services and Endpoints and of
the cluster's nodes is listed once and then updated from WATCH events; a relevant event (bursts
coalesced) re-runs the checks whose state lives in Kubernetes from that cache, for no LIST at all.
Every `interval` seconds everything is re-checked: the network probes, DNS, the Hetzner API, and
the kinds that are not watched (Deployments, Ingresses, the ingress controller's Service) are
re-listed. A dropped watch is resumed from its last resourceVersion, a 410 re-lists that kind.
Cancelling shuts the watch sockets down, so the loop and its threads end within about a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..cancel import Cancelled
from ..events import StepFinished, StepStarted, Warning_
from ..redact import safe_error
from . import kubeio
from .checks_base import Check, CheckRecord, plural
from .checks_counter import ApiCounter, shutdown_streams
from .checks_registry import build_checks, select_checks, wants_trace
from .checks_run import ValidationReport, info_for, run_checks, traces_for
from .checks_state import (
    LISTED_KINDS,
    WATCHED_KINDS,
    KubeSnapshot,
    ValidationState,
    list_paths,
    load_kinds,
    node_ready,
)
from .context import Context
from .trace import Hop


def _node_digest(node: dict[str, Any]) -> tuple[Any, ...]:
    """What of a node matters to validation: heartbeats (status timestamps) do not."""
    spec = node.get("spec") or {}
    ready, why = node_ready(node)
    taints = tuple(sorted((t.get("key"), t.get("effect")) for t in spec.get("taints") or []))
    addrs = tuple(sorted((a.get("type"), a.get("address")) for a in (node.get("status") or {}).get("addresses") or []))
    labels = tuple(sorted(((node.get("metadata") or {}).get("labels") or {}).items()))
    return ready, why, taints, bool(spec.get("unschedulable")), addrs, labels


class Informer:
    """A watch-fed cache of the watched kinds (list once, then apply events), one thread per
    kind. Notes when a relevant event arrives (`changed_at`, `first_change_at`) and wakes the
    loop; node heartbeats that change nothing validation reads are ignored."""

    def __init__(self, ctx: Context, counter: ApiCounter, wake: threading.Event, watch_timeout: int) -> None:
        self.ctx = ctx
        self.counter = counter
        self.wake = wake
        self.watch_timeout = watch_timeout
        self.lock = threading.Lock()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in WATCHED_KINDS}
        self.versions: dict[str, str] = {}
        self.broken: dict[str, str] = {}
        self.changed_at: float | None = None
        self.first_change_at: float | None = None
        self.events = 0
        self._threads: list[threading.Thread] = []
        self._streams: dict[str, list[Any]] = {}
        self._stop = threading.Event()
        self.paths = list_paths(ctx.config.namespace)

    def seed(self, snap: KubeSnapshot) -> None:
        with self.lock:
            for kind in WATCHED_KINDS:
                self.objects[kind] = dict(getattr(snap, kind))
                self.versions[kind] = snap.versions.get(kind, "")

    def start(self) -> None:
        for kind in WATCHED_KINDS:
            t = threading.Thread(target=self._run, args=(kind,), name=f"keybuzz-validate-watch-{kind}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        for streams in self._streams.values():
            shutdown_streams(streams)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() or self.ctx.cancel.cancelled

    def _relist(self, kind: str) -> None:
        snap = KubeSnapshot(self.ctx.config.namespace)
        load_kinds(self.ctx, snap, (kind,), lambda fns: [f() for f in fns])
        if kind in snap.errors:
            raise kubeio.KubeError(403, "Forbidden", snap.errors[kind])
        with self.lock:
            self.objects[kind] = dict(getattr(snap, kind))
            self.versions[kind] = snap.versions.get(kind, "")
        self._mark()

    def _mark(self) -> None:
        now = time.monotonic()
        with self.lock:
            self.events += 1
            self.changed_at = now
            if self.first_change_at is None:
                self.first_change_at = now
        self.wake.set()

    def _apply(self, kind: str, ev: dict[str, Any]) -> None:
        typ = ev.get("type")
        obj = ev.get("object") or {}
        meta = obj.get("metadata") or {}
        rv = meta.get("resourceVersion")
        if typ == "BOOKMARK":
            if rv:
                with self.lock:
                    self.versions[kind] = rv
            return
        if typ == "ERROR":
            code = obj.get("code")
            if code == 410:  # too old a resourceVersion: start over from a fresh LIST
                self._relist(kind)
                return
            raise kubeio.KubeError(int(code or 500), str(obj.get("reason") or ""), str(obj.get("message") or "watch error"))
        name = meta.get("name")
        if not name:
            return
        with self.lock:
            old = self.objects[kind].get(name)
            if typ == "DELETED":
                self.objects[kind].pop(name, None)
            else:
                self.objects[kind][name] = obj
            if rv:
                self.versions[kind] = rv
        if kind == "nodes" and typ == "MODIFIED" and old is not None and _node_digest(old) == _node_digest(obj):
            return
        self._mark()

    def _run(self, kind: str) -> None:
        streams: list[Any] = []
        self._streams[kind] = streams
        self.counter.track_streams(streams)
        backoff = 0.5
        while not self.stopping:
            try:
                if not self.versions.get(kind) or kind in self.broken:
                    self._relist(kind)
                    self.broken.pop(kind, None)
                for ev in kubeio.watch(self.ctx, self.paths[kind], resource_version=self.versions[kind], timeout_seconds=self.watch_timeout):
                    if self.stopping:
                        return
                    self._apply(kind, ev)
                streams.clear()
                backoff = 0.5
            except Exception as e:  # noqa: BLE001 - a dropped watch is retried, the board shows the state as of the last event
                streams.clear()
                if self.stopping:
                    return
                self.broken[kind] = safe_error(e)
                if self.ctx.cancel.wait(backoff) or self._stop.wait(0):
                    return
                backoff = min(backoff * 2, 10.0)

    def take_change(self) -> bool:
        with self.lock:
            changed = self.first_change_at is not None
            self.first_change_at = None
            self.changed_at = None
            return changed

    def pending(self, debounce: float, max_delay: float) -> bool:
        """A change is waiting and the burst it belongs to is over (or has lasted max_delay)."""
        with self.lock:
            if self.first_change_at is None or self.changed_at is None:
                return False
            now = time.monotonic()
            return now - self.changed_at >= debounce or now - self.first_change_at >= max_delay

    def snapshot(self, base: KubeSnapshot | None) -> KubeSnapshot:
        snap = base.copy() if base is not None else KubeSnapshot(self.ctx.config.namespace)
        with self.lock:
            for kind in WATCHED_KINDS:
                setattr(snap, kind, dict(self.objects[kind]))
                snap.versions[kind] = self.versions.get(kind, "")
        return snap


class Watcher:
    """The continuous loop behind `validate.watch` (see the module docstring)."""

    def __init__(self, ctx: Context, interval: float, on_report: Callable[[ValidationReport], None], *, only: set[str] | None,
                 skip: Iterable[str], http_timeout: float | None, debounce: float, watch_timeout: int,
                 refresh: threading.Event | None = None) -> None:
        self.ctx = ctx
        self.interval = max(1.0, float(interval))
        self.on_report = on_report
        self.checks, self.skipped = select_checks(build_checks(ctx.config), only, skip)
        self.want_trace = wants_trace(only, skip)
        self.http_timeout = http_timeout
        self.debounce = debounce
        self.counter = ApiCounter.for_context(ctx)
        self.wake = threading.Event()
        self.informer = Informer(ctx, self.counter, self.wake, watch_timeout)
        self.records: dict[str, CheckRecord] = {}
        self.traces: dict[str, dict[str, list[Hop]]] = {}
        self.net_state: ValidationState | None = None
        self.base: KubeSnapshot | None = None  # the last LISTed snapshot (the unwatched kinds)
        self.refresh = 0
        self.started_total = self.counter.total
        self.started_watches = self.counter.watches
        self.watching = False
        self.refresh_now = refresh  # set by the caller ("refresh now" on the board): a full refresh at once

    def _publish(self, state: ValidationState, trigger: str, ran: list[Check], scope: Any, t0: float, started: float, cancelled: bool) -> None:
        if self.want_trace and not cancelled:
            try:
                self.traces = self.counter.bind(scope, lambda: traces_for(self.ctx, state))()
            except Cancelled:
                cancelled = True
        report = ValidationReport(
            [self.records[c.id] for c in self.checks if c.id in self.records], dict(self.traces), started, time.monotonic() - t0,
            scope.count, self.refresh, trigger, [c.id for c in ran], cancelled, info_for(self.ctx, state),
            self.counter.total - self.started_total, self.counter.watches - self.started_watches,
        )
        self.refresh += 1
        try:
            self.on_report(report)
        except Exception as e:  # the consumer's bug must not stop the board's data
            self.ctx.emit(Warning_(step="validate", message=f"the report consumer failed: {safe_error(e)}"))

    def _run(self, trigger: str) -> None:
        started, t0 = time.time(), time.monotonic()
        scope = self.counter.scope()
        ctx = self.ctx

        def work() -> None:
            cancelled = False
            if trigger == "kube":
                snap = self.informer.snapshot(self.base)
                state = ValidationState(ctx, http_timeout=self.http_timeout, kube=snap, carry=self.net_state, keep_net=True,
                                        counter=self.counter, scope=scope)
                ran = [c for c in self.checks if c.source == "kube"]
            else:
                state, snap = self._net_state(scope)
                ran = list(self.checks)
            try:
                records, cancelled = run_checks(ctx, ran, state, skipped=self.skipped, previous=self.records)
                self.records.update(records)
                if trigger != "kube":
                    if self.net_state is not None:
                        self.net_state.close()
                    self.net_state = state
                self._publish(state, trigger, ran, scope, t0, started, cancelled)
            finally:
                if state is not self.net_state:
                    state.close()
            if snap is not None and not self.watching and not ctx.cancel.cancelled:
                self.informer.seed(snap)
                self.informer.start()
                self.watching = True

        self.counter.bind(scope, work)()

    def _net_state(self, scope: Any) -> tuple[ValidationState, KubeSnapshot | None]:
        """A fresh state for a timed refresh: the unwatched kinds re-LISTed (all kinds when no
        watch runs yet or one is broken), the watched ones from the watch-fed cache."""
        ctx = self.ctx
        state = ValidationState(ctx, http_timeout=self.http_timeout, counter=self.counter, scope=scope)
        if self.net_state is not None:
            state.server_version = self.net_state.server_version
            state.logs = self.net_state.logs
        healthy_watch = self.watching and not self.informer.broken
        kinds = LISTED_KINDS if healthy_watch else WATCHED_KINDS + LISTED_KINDS
        try:
            fresh = KubeSnapshot(ctx.config.namespace)
            load_kinds(ctx, fresh, kinds, state.run_parallel)
        except (kubeio.Unreachable, kubeio.KubeError):
            return state, None  # the state will try again and the checks will say why
        if healthy_watch:
            snap = self.informer.snapshot(fresh)
        else:
            snap = fresh
            if self.watching:
                self.informer.seed(fresh)
                self.informer.broken.clear()
        self.base = fresh
        state.use_kube(snap)
        return state, snap

    def run(self) -> None:
        ctx = self.ctx
        ctx.emit(StepStarted(step="validate", title="Validation (continuous)"))
        try:
            self._run("full")
            next_net = time.monotonic() + self.interval
            while not ctx.cancel.cancelled:
                now = time.monotonic()
                self.wake.wait(max(0.0, min(next_net - now, self.debounce if self.informer.changed_at else 0.5)))
                self.wake.clear()
                if ctx.cancel.cancelled:
                    break
                if self.informer.pending(self.debounce, max(1.0, self.debounce * 5)):
                    self.informer.take_change()
                    self._run("kube")
                poked = self.refresh_now is not None and self.refresh_now.is_set()
                if poked and self.refresh_now is not None:
                    self.refresh_now.clear()
                if poked or time.monotonic() >= next_net:
                    self.informer.take_change()
                    self._run("net")
                    next_net = time.monotonic() + self.interval
        except Cancelled:
            pass
        finally:
            self.informer.stop()
            if self.net_state is not None:
                self.net_state.close()
            ctx.emit(StepFinished(step="validate", status="ok", summary=f"continuous validation stopped after {plural(self.refresh, 'refresh', 'refreshes')}"))
