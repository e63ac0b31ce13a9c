"""Continuous validation (the board): watches keep the Kubernetes side current, a timer the rest.

A watch-fed cache (informer) of the namespace's pods, DaemonSets, Services and Endpoints and of
the cluster's nodes is listed once and then updated from WATCH events; a relevant event (bursts
coalesced) re-runs the checks whose state lives in Kubernetes from that cache, for no LIST at all.
Every `interval` seconds everything is re-checked: the network probes, DNS, the Hetzner API, and
the kinds that are not watched (Deployments, Ingresses, the ingress controller's Service) are
re-listed. A dropped watch is resumed from its last resourceVersion, a 410 re-lists that kind.
Cancelling shuts the watch sockets down, so the loop and its threads end within about a second.

Two refreshes may run at once. The timed (network) refresh runs in its own thread, because one
probe to a worker whose port is dropped waits for its whole timeout; the loop thread keeps
re-running the Kubernetes checks on watch events meanwhile, so a Kubernetes-side change reaches the
board in a fraction of a second even while a network refresh hangs. Each result carries a `Stamp`
(how recent the watch-fed objects, the LISTed kinds and the network observations it was computed
from are) and a result is published (as a CheckResult/HopResult event or in a report) only if it is
at least as recent as what was published before: a network refresh that started before a watch
event never overwrites the Kubernetes results computed after it. When it had to keep something
back, a Kubernetes refresh follows at once that combines the newest of everything. A refresh
whose matrix (trace) cannot be published because the one shown is newer on one side publishes no
verdict either: the Kubernetes refresh that follows judges its checks again, on its network
observations (carried, no new probe) and the newest Kubernetes objects, and publishes them with
the matrix. Otherwise a newer NodePort verdict would stand next to an older matrix until then.

A refresh publishes its verdicts (CheckResult and HopResult events) together with its report, not
as each check finishes: the checks and the worker x hop matrix shown at any moment then come from
the same observations (the trace judges the checks' own probes with the checks' own functions).
Only the first refresh streams them, since nothing was shown before it.

The fast lane (FastLane): a dropped SYN is only known when a probe's timeout ends, and the timed
refresh comes only every `interval` seconds, so a firewall change would take seconds to show. A
thread probes every port the checks probe on the workers a few times a second (connect, one GET,
the status line, a short timeout; never an API request) and a connect to the LB's listeners.
When an answer changes, a provisional refresh is published at once from the last observations
with that one standing for the port ("no answer within 0.4s, confirming with the full check…":
checks and matrix alike), and the full network refresh starts at once to confirm or correct it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..cancel import Cancelled
from ..events import CheckResult, Event, HopResult, StepFinished, StepStarted, Warning_
from ..redact import safe_error
from . import kubeio
from .checks_base import CheckRecord, plural
from .checks_counter import ApiCounter, shutdown_streams
from .checks_probe import HttpProbe, QuickAnswer, probe_class, quick_probes
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

    def seed(self, snap: KubeSnapshot) -> int:
        """Take a fresh LIST of every watched kind; returns the change count it is as recent as."""
        with self.lock:
            for kind in WATCHED_KINDS:
                self.objects[kind] = dict(getattr(snap, kind))
                self.versions[kind] = snap.versions.get(kind, "")
            self.events += 1
            return self.events

    @property
    def seq(self) -> int:
        """How many relevant changes the cache has taken in (a result computed from a snapshot
        taken at a higher count is more recent)."""
        with self.lock:
            return self.events

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
        return self.snapshot_at(base)[1]

    def snapshot_at(self, base: KubeSnapshot | None) -> tuple[int, KubeSnapshot]:
        """(the change count, the watched kinds from the cache on top of `base`'s LISTed ones)."""
        snap = base.copy() if base is not None else KubeSnapshot(self.ctx.config.namespace)
        with self.lock:
            for kind in WATCHED_KINDS:
                setattr(snap, kind, dict(self.objects[kind]))
                snap.versions[kind] = self.versions.get(kind, "")
            return self.events, snap


@dataclass(frozen=True)
class Stamp:
    """How recent the inputs of a refresh are: `seq` the watch-fed objects (the informer's change
    count when its snapshot was taken), `gen` the LISTed kinds (which timed refresh listed them),
    `net` the network observations (which timed refresh, or fast-lane change, made them)."""

    seq: int
    gen: int
    net: int

    def kube_covers(self, other: Stamp | None) -> bool:
        """At least as recent on the Kubernetes side (what a "kube" check reads): the watch-fed
        objects first (what changes), then the LISTed kinds. A timed refresh whose LIST is newer
        but whose watch snapshot is older loses, and a Kubernetes refresh follows it that has both."""
        return other is None or (self.seq, self.gen) >= (other.seq, other.gen)

    def covers(self, other: Stamp | None) -> bool:
        """At least as recent on every side (what the trace reads)."""
        return other is None or (self.seq >= other.seq and self.gen >= other.gen and self.net >= other.net)


class _RefreshContext:
    """The watcher's context as one refresh sees it: the same clients, config, cancel and journal.

    A refresh's verdicts (CheckResult and HopResult events) are held back and published with its
    report, together and only when fresh enough (Watcher._publish): the checks and the matrix
    shown together then always come from the same observations. The first refresh (nothing is
    published yet) streams them through `stream` as they come, so the board fills in at once."""

    def __init__(self, ctx: Context, stream: Callable[[Event], bool] | None = None) -> None:
        self._ctx = ctx
        self._stream = stream
        self._held: list[Event] = []
        self._held_lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    def emit(self, event: Event) -> None:
        if not isinstance(event, (CheckResult, HopResult)):
            self._ctx.emit(event)
            return
        if self._stream is not None:
            if self._stream(event):
                self._ctx.emit(event)
            return
        if isinstance(event, CheckResult) and event.status in ("running", "pending"):
            return  # a held-back refresh publishes its verdicts, not its progress
        with self._held_lock:
            self._held.append(event)

    def held(self) -> list[Event]:
        with self._held_lock:
            return list(self._held)


# --- the fast lane ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FastTarget:
    """One port the fast lane watches: a worker's port the checks probe (`path` the one they ask
    for), or one of the LB's listeners (`path` None: connect only)."""

    ip: str
    port: int
    path: str | None
    host: str | None = None
    worker: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.ip, self.port)


def _answered(answer: QuickAnswer) -> bool:
    return answer.kind in ("answer", "open")


class FastLane:
    """The network side's fast lane: every `interval` seconds, one cheap probe of every port the
    checks probe on the workers (connect, one GET, the status line only, within `timeout`) and a
    connect to each of the LB's listeners; no API request, ever.

    When a port's answer changes (from the previous round) and differs from what the published
    observations say, the watcher publishes at once a provisional refresh in which that
    observation stands for the port ("no answer within 0.4s, confirming with the full check…"),
    so the board turns within a second, and starts the full network refresh that confirms (or
    corrects) it. A change on an LB listener only starts the full refresh.

    A round in which every worker port stops answering at once is held for one round: that is
    what a stall of this machine looks like (the answers are late, not missing), and the board
    would flash every worker "confirming…". If the next round sees the same, it is acted on."""

    def __init__(self, watcher: Watcher, interval: float, timeout: float) -> None:
        self.watcher = watcher
        self.interval = max(0.1, float(interval))
        self.timeout = max(0.05, float(timeout))
        self._lock = threading.Lock()
        self.targets: list[FastTarget] = []
        self.published: dict[tuple[str, int], str] = {}  # what the published observations saw on each port (answer_class)
        self.last: dict[tuple[str, int], str] = {}  # what the previous round saw
        self.rounds = 0
        self.probes = 0
        self.changes = 0
        self.held = 0  # rounds held back because every worker port missed at once
        self._held_last = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def info(self) -> dict[str, Any]:
        """The fast lane's budget, for the report (and the board's header)."""
        with self._lock:
            return {"interval": self.interval, "timeout": self.timeout, "targets": len(self.targets), "rounds": self.rounds,
                    "probes": self.probes, "changes": self.changes, "held": self.held, "api_requests": 0}

    def learn(self, state: ValidationState) -> None:
        """The ports to watch and what the published observations saw there, from an adopted
        state: the HTTP probes it holds on the workers' addresses (one per port, the host-less
        one first) and the LB's listeners. Reads only what the state already holds."""
        workers = state.peek(("workers",)) or []
        names = {w.ip: w.name for w in workers if w.ip}
        chosen: dict[tuple[str, int], tuple[str, str | None, HttpProbe]] = {}
        for (ip, port, path, host), probe in sorted(state.probes().items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][3] is not None, kv[0][2])):
            if ip in names and (ip, port) not in chosen:
                chosen[(ip, port)] = (path, host, probe)
        targets = [FastTarget(ip, port, path, host, names[ip]) for (ip, port), (path, host, _) in sorted(chosen.items())]
        published = {k: probe_class(p) for k, (_, _, p) in chosen.items()}
        cloud = state.peek(("cloud",))
        lb_ip = cloud.lb_ipv4 if cloud is not None and getattr(cloud, "lb", None) is not None else None
        if lb_ip:
            for svc in sorted(cloud.lb.services or [], key=lambda s: int(s.listen_port)):
                targets.append(FastTarget(lb_ip, state.lb_port(lb_ip, int(svc.listen_port)), None))
        with self._lock:
            self.targets = targets
            self.published = published

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="keybuzz-validate-fast", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() or self.watcher.ctx.cancel.cancelled or self.watcher._stopped

    def _main(self) -> None:
        try:
            while not self.stopping:
                t0 = time.monotonic()
                with self._lock:
                    targets = list(self.targets)
                if targets:
                    answers = quick_probes([(t.ip, t.port, t.path, t.host) for t in targets], timeout=self.timeout)
                    if self.stopping:
                        return
                    self.observe(targets, answers)
                if self._stop.wait(max(0.02, self.interval - (time.monotonic() - t0))):
                    return
        except Exception as e:  # noqa: BLE001 - the fast lane is an accelerator: the timed refreshes go on without it
            self.watcher.ctx.emit(Warning_(step="validate", message=f"the fast network probes stopped: {safe_error(e)}"))

    def observe(self, targets: list[FastTarget], answers: list[QuickAnswer]) -> None:
        """One round's answers: compare, and act on what changed (see the class docstring)."""
        changed: dict[tuple[str, int], QuickAnswer] = {}
        listener = False
        with self._lock:
            self.rounds += 1
            self.probes += len(targets)
            ports = [(t, a) for t, a in zip(targets, answers) if t.path is not None]
            all_missed = len({t.worker for t, _ in ports}) > 1 and not any(_answered(a) for _, a in ports)
            if all_missed and not self._held_last and any(self.last.get(t.key, "").startswith("http ") for t, _ in ports):
                self._held_last = True  # likely a stall here: the next round says whether it lasts
                self.held += 1
                return
            self._held_last = False
            for t, a in zip(targets, answers):
                now = a.klass
                before = self.last.get(t.key)
                self.last[t.key] = now
                if before is None or before == now:
                    continue
                if t.path is None:
                    listener = True
                elif self.published.get(t.key) != now:
                    changed[t.key] = a
            if changed or listener:
                self.changes += 1
        if changed:
            self.watcher.fast_refresh(changed)
        elif listener:
            self.watcher.confirm_now()


class Watcher:
    """The continuous loop behind `validate.watch` (see the module docstring).

    Threads: the caller's thread runs the loop and the Kubernetes refreshes ("kube", on watch
    events); one more thread at a time runs a timed refresh ("net"); the fast lane's thread probes
    and runs its provisional refreshes ("fast"); the informer has one thread per watched kind.
    Everything published (the merged results, their stamps, the traces, the verdict events, the
    refresh counter, on_report calls) goes through `_lock`, so reports come out in order and each
    is the newest of everything."""

    def __init__(self, ctx: Context, interval: float, on_report: Callable[[ValidationReport], None], *, only: set[str] | None,
                 skip: Iterable[str], http_timeout: float | None, debounce: float, watch_timeout: int,
                 refresh: threading.Event | None = None, fast_interval: float | None = 0.5, fast_timeout: float = 0.4) -> None:
        self.ctx = ctx
        self.interval = max(1.0, float(interval))
        self.on_report = on_report
        self.checks, self.skipped = select_checks(build_checks(ctx.config), only, skip)
        self.source = {c.id: c.source for c in self.checks}
        self.want_trace = wants_trace(only, skip)
        self.http_timeout = http_timeout
        self.debounce = debounce
        self.counter = ApiCounter.for_context(ctx)
        self.wake = threading.Event()
        self.informer = Informer(ctx, self.counter, self.wake, watch_timeout)
        self._lock = threading.RLock()
        self.records: dict[str, CheckRecord] = {}
        self.stamps: dict[str, Stamp] = {}  # check id -> the stamp of the result published for it
        self.traces: dict[str, dict[str, list[Hop]]] = {}
        self.trace_stamp: Stamp | None = None
        self.net_state: ValidationState | None = None  # the newest network observations published (timed refresh or fast lane)
        self.net_gen = 0  # ... and their number
        self.base: KubeSnapshot | None = None  # the last LISTed snapshot (the unwatched kinds)
        self.base_gen = 0
        self._gens = 0  # numbers handed to timed refreshes when they start (and to fast-lane changes)
        self.refresh = 0
        self.started_total = self.counter.total
        self.started_watches = self.counter.watches
        self.watching = False
        self.refresh_now = refresh  # set by the caller ("refresh now" on the board): a full refresh at once
        self._force_kube = False  # a Kubernetes refresh must follow (something stale was kept back)
        self._rejudge_net = False  # ... and it judges the network checks too (a refresh's verdicts were held back)
        self._net_now = False  # the fast lane saw a change: the full network refresh, now
        self._net_thread: threading.Thread | None = None
        self._net_error: BaseException | None = None
        self._net_finished_at = 0.0
        self._net_again = False
        self._stopped = False
        self.fast = FastLane(self, fast_interval, fast_timeout) if fast_interval and self.want_trace_or_net() else None

    def want_trace_or_net(self) -> bool:
        """The fast lane watches what the network checks and the matrix probe: nothing to do without them."""
        return self.want_trace or any(c.source == "net" for c in self.checks)

    # --- freshness -------------------------------------------------------------------------------

    def _allow(self, stamp: Stamp) -> Callable[[Event], bool]:
        """The filter of the first refresh's streamed verdicts (later refreshes publish theirs
        with their report, see _publish)."""

        def allow(event: Event) -> bool:
            if isinstance(event, CheckResult):
                with self._lock:
                    if self._stopped:
                        return False
                    if not self._fresh_record(event.check, stamp):
                        return False
                    if event.status not in ("running", "pending"):
                        self.stamps[event.check] = stamp
                    return True
            if isinstance(event, HopResult):
                with self._lock:
                    return not self._stopped and stamp.covers(self.trace_stamp)
            return True

        return allow

    def _fresh_record(self, check: str, stamp: Stamp) -> bool:
        cur = self.stamps.get(check)
        if self.source.get(check) == "net":
            return cur is None or stamp.net >= cur.net
        return stamp.kube_covers(cur)

    def _trace_behind(self, trigger: str, stamp: Stamp) -> bool:
        """Under _lock: this refresh's matrix could not be published (the one shown is newer on one
        side), and a Kubernetes refresh that joins the newest of both sides is now due. A watch-fed
        refresh asks for one only when its objects are newer (else the next would be the same)."""
        if stamp.covers(self.trace_stamp):
            return False
        if trigger != "kube" or (self.trace_stamp is not None and stamp.seq > self.trace_stamp.seq):
            self._force_kube = True
            return True
        return False

    def _publish(self, rctx: _RefreshContext, trigger: str, stamp: Stamp, records: dict[str, CheckRecord],
                 traces: dict[str, dict[str, list[Hop]]] | None, behind: bool = False) -> None:
        """Under _lock: adopt what is fresh of one refresh (its records, its traces) and emit the
        verdict events of what was adopted, together, just before its report. `behind`: its matrix
        is older than the one shown on one side and a Kubernetes refresh follows: its verdicts wait
        for that one (see the module docstring), which judges the network checks again."""
        took = False
        if traces is not None:
            if stamp.covers(self.trace_stamp):
                self.traces, self.trace_stamp, took = traces, stamp, True
            else:
                behind = self._trace_behind(trigger, stamp) or behind
        if behind:
            if any(self.source.get(cid) == "net" for cid in records):
                self._rejudge_net = True
            return
        adopted: set[str] = set()
        for cid, rec in records.items():
            if self._fresh_record(cid, stamp):
                self.records[cid] = rec
                self.stamps[cid] = stamp
                adopted.add(cid)
        for e in rctx.held():
            if (isinstance(e, CheckResult) and e.check in adopted) or (isinstance(e, HopResult) and took):
                self.ctx.emit(e)

    # --- one refresh -------------------------------------------------------------------------------

    def _run(self, trigger: str, seen: dict[tuple[str, int], QuickAnswer] | None = None) -> None:
        started, t0 = time.time(), time.monotonic()
        scope = self.counter.scope()
        self.counter.bind(scope, lambda: self._refresh(trigger, scope, started, t0, seen))()

    def _refresh(self, trigger: str, scope: Any, started: float, t0: float, seen: dict[tuple[str, int], QuickAnswer] | None = None) -> None:
        ctx = self.ctx
        fresh: KubeSnapshot | None = None
        listed = False
        if trigger in ("kube", "fast"):
            with self._lock:
                base, base_gen, carry, net_gen = self.base, self.base_gen, self.net_state, self.net_gen
                if trigger == "fast":
                    if carry is None or not self.watching or self._stopped:
                        return  # nothing published to stand on yet: the full refresh will tell
                    self._gens += 1  # newer than every timed refresh started before the change was seen
                    net_gen = self._gens
                seq, snap = self.informer.snapshot_at(base)
                stamp = Stamp(seq, base_gen, net_gen)
            rctx = _RefreshContext(ctx)
            state = ValidationState(rctx, http_timeout=self.http_timeout, kube=snap, carry=carry, keep_net=True,  # type: ignore[arg-type]
                                    counter=self.counter, scope=scope)
            if trigger == "fast":
                assert carry is not None and seen is not None
                state.reuse_kube_reads(carry)
                state.override_probes(seen, lambda a: not _answered(a))
                ran = [c for c in self.checks if c.source == "net"]
            else:
                with self._lock:
                    rejudge, self._rejudge_net = self._rejudge_net, False
                ran = [c for c in self.checks if c.source == "kube" or (rejudge and c.source == "net")]
        else:
            with self._lock:
                self._gens += 1
                gen = self._gens
                first = self.refresh == 0 and not self.records
            holder: list[Stamp] = []
            rctx = _RefreshContext(ctx, (lambda e: self._allow(holder[0])(e) if holder else True) if first else None)
            state, fresh, seq = self._net_state(rctx, scope)
            listed = fresh is not None
            stamp = Stamp(seq, gen, gen)
            holder.append(stamp)
            ran = list(self.checks)
        adopted = False
        try:
            with self._lock:
                previous = dict(self.records)
            records, cancelled = run_checks(rctx, ran, state, skipped=self.skipped, previous=previous)  # type: ignore[arg-type]
            traces: dict[str, dict[str, list[Hop]]] | None = None
            behind = False
            if self.want_trace and not cancelled:
                with self._lock:
                    wanted = stamp.covers(self.trace_stamp)
                    behind = not wanted and self._trace_behind(trigger, stamp)
                if wanted:
                    try:
                        traces = traces_for(rctx, state)  # type: ignore[arg-type]
                    except Cancelled:
                        cancelled = True
            info = info_for(ctx, state)
            with self._lock:
                if self._stopped:
                    return
                self._publish(rctx, trigger, stamp, records, traces, behind)
                if trigger != "kube" and not cancelled:
                    if stamp.net >= self.net_gen:  # never an older network side over a newer one
                        old, self.net_state, self.net_gen = self.net_state, state, stamp.net
                        adopted = True
                        if old is not None:
                            old.close()
                        if self.fast is not None:
                            self.fast.learn(state)
                    if listed and stamp.gen >= self.base_gen:
                        self.base, self.base_gen = fresh, stamp.gen
                    if self.watching and self.informer.seq > stamp.seq:
                        self._force_kube = True  # watch events came in while this refresh ran
                report = ValidationReport(
                    [self.records[c.id] for c in self.checks if c.id in self.records], dict(self.traces), started,
                    time.monotonic() - t0, scope.count, self.refresh, trigger, [c.id for c in ran], cancelled, info,
                    self.counter.total - self.started_total, self.counter.watches - self.started_watches,
                    self.fast.info() if self.fast is not None else {},
                )
                self.refresh += 1
                try:
                    self.on_report(report)
                except Exception as e:  # the consumer's bug must not stop the board's data
                    ctx.emit(Warning_(step="validate", message=f"the report consumer failed: {safe_error(e)}"))
        finally:
            if not adopted:
                state.close()
            if self._force_kube:
                self.wake.set()
        if trigger in ("full", "net") and fresh is not None and not ctx.cancel.cancelled:
            with self._lock:  # the first refresh that could LIST everything starts the watches
                start, self.watching = not self.watching, True
            if start:
                self.informer.seed(fresh)
                self.informer.start()

    def _net_state(self, ctx: Any, scope: Any) -> tuple[ValidationState, KubeSnapshot | None, int]:
        """A fresh state for a timed refresh: the unwatched kinds re-LISTed (all kinds when no
        watch runs yet or one is broken), the watched ones from the watch-fed cache. Returns the
        state, what was LISTed (None when the API could not be read) and the informer's change
        count the snapshot is as recent as."""
        state = ValidationState(ctx, http_timeout=self.http_timeout, counter=self.counter, scope=scope)
        with self._lock:
            prev = self.net_state
            if prev is not None:
                state.server_version = prev.server_version
                state.logs = prev.logs
        healthy_watch = self.watching and not self.informer.broken
        kinds = LISTED_KINDS if healthy_watch else WATCHED_KINDS + LISTED_KINDS
        try:
            fresh = KubeSnapshot(self.ctx.config.namespace)
            load_kinds(ctx, fresh, kinds, state.run_parallel)
        except (kubeio.Unreachable, kubeio.KubeError):
            return state, None, self.informer.seq  # the state will try again and the checks will say why
        if healthy_watch:
            seq, snap = self.informer.snapshot_at(fresh)
        elif self.watching:
            snap = fresh
            seq = self.informer.seed(fresh)
            self.informer.broken.clear()
        else:
            snap, seq = fresh, self.informer.seq
        state.use_kube(snap)
        return state, fresh, seq

    # --- the fast lane's side ----------------------------------------------------------------------

    def fast_refresh(self, seen: dict[tuple[str, int], QuickAnswer]) -> None:
        """The fast lane saw these ports change (its thread): publish the provisional refresh
        now, then have the full network refresh confirm it."""
        try:
            self._run("fast", seen)
        except Cancelled:
            return
        except Exception as e:  # noqa: BLE001 - the full refresh that follows says what is what
            self.ctx.emit(Warning_(step="validate", message=f"a fast refresh failed: {safe_error(e)}"))
        finally:
            self.confirm_now()

    def confirm_now(self) -> None:
        """A full network refresh as soon as possible (right after the one running, if any)."""
        with self._lock:
            self._net_now = True
        self.wake.set()

    def _take_net_now(self) -> bool:
        with self._lock:
            now, self._net_now = self._net_now, False
            return now

    # --- the timed refresh's thread ----------------------------------------------------------------

    def _start_net(self) -> None:
        self._net_again = False
        t = threading.Thread(target=self._net_main, name="keybuzz-validate-net", daemon=True)
        self._net_thread = t
        t.start()

    def _net_main(self) -> None:
        try:
            self._run("net")
        except Cancelled:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the loop, which raises it like before
            self._net_error = e
        finally:
            self._net_finished_at = time.monotonic()
            self.wake.set()

    def _net_busy(self) -> bool:
        return self._net_thread is not None and self._net_thread.is_alive()

    def _take_force(self) -> bool:
        with self._lock:
            force, self._force_kube = self._force_kube, False
            return force

    # --- the loop ----------------------------------------------------------------------------------

    def run(self) -> None:
        ctx = self.ctx
        ctx.emit(StepStarted(step="validate", title="Validation (continuous)"))
        try:
            self._run("full")
            if self.fast is not None and not ctx.cancel.cancelled:
                self.fast.start()
            next_net = time.monotonic() + self.interval
            while not ctx.cancel.cancelled:
                busy = self._net_busy()
                if self.informer.changed_at:
                    timeout = self.debounce
                elif busy:
                    timeout = 0.5
                else:
                    timeout = max(0.0, min(next_net - time.monotonic(), 0.5))
                self.wake.wait(timeout)
                self.wake.clear()
                if ctx.cancel.cancelled:
                    break
                if self._net_error is not None:
                    err, self._net_error = self._net_error, None
                    raise err
                if self.informer.pending(self.debounce, max(1.0, self.debounce * 5)) or self._take_force():
                    self.informer.take_change()
                    self._run("kube")
                poked = self.refresh_now is not None and self.refresh_now.is_set()
                if poked and self.refresh_now is not None:
                    self.refresh_now.clear()
                poked = self._take_net_now() or poked
                if self._net_busy():
                    self._net_again = self._net_again or poked
                    continue
                if self._net_thread is not None:  # a timed refresh just ended: the next one an interval later
                    self._net_thread = None
                    next_net = self._net_finished_at + self.interval
                if poked or self._net_again or time.monotonic() >= next_net:
                    self._start_net()
        except Cancelled:
            pass
        finally:
            with self._lock:
                self._stopped = True
            if self.fast is not None:
                self.fast.stop()
            self.informer.stop()
            t = self._net_thread
            if t is not None:
                t.join(2.0)
            with self._lock:
                if self.net_state is not None:
                    self.net_state.close()
            ctx.emit(StepFinished(step="validate", status="ok", summary=f"continuous validation stopped after {plural(self.refresh, 'refresh', 'refreshes')}"))
