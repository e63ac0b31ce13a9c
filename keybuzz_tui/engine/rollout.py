"""Watch the DaemonSets roll out, node by node, and say why a pod is not progressing.

"Rolled out" is kubectl's definition (reference/kubernetes.md 3a, DaemonSetStatusViewer): the
controller observed the current generation, and updated == available == desired. Two things it
does not tell, and the operator needs:

- the REASON a pod is stuck: the FailedScheduling text, the image pull error, the CrashLoopBackOff
  exit and the last line the previous container logged ("address already in use"), the NotReady
  node. kubectl leaves that to `describe` and `logs --previous`; we read it as it happens.
- the trap: a NotReady worker gets the unreachable NoSchedule taint, which DaemonSet pods do not
  tolerate, so `desired` silently drops from 5 to 4 and kubectl reports success. We count the
  workers the DaemonSet should run on ourselves and report the missing one.

Everything is driven by watches (LIST, then WATCH from its resourceVersion; re-watch when the
stream ends, re-list on 410 Gone), one thread per collection feeding one queue, so the caller's
thread reacts to changes at once and checks the cancel token and the deadline every half second.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..cancel import Cancelled
from ..events import Info, KubeEvent, PodProgress, RolloutProgress, StepFinished, StepStarted, Warning_
from ..redact import REDACTOR, safe_error
from . import kubeio
from .context import FIELD_MANAGER, Context
from .plan import FieldDiff, diff_objects

STEP = "rollout"
WATCH_SECONDS = 20  # server-side watch timeout; the stream is resumed from its resourceVersion
TICK = 0.5  # how often the caller's thread looks at the cancel token and the deadline
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
POD_TEMPLATE_GENERATION = "pod-template-generation"
# taints the node lifecycle controller adds when a node stops reporting: a worker carrying them
# is still a worker the app should run on, which is the point of the desired-count check
CONDITION_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
# util.AddOrUpdateDaemonPodTolerations: what every DaemonSet pod tolerates without asking
AUTO_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
HOSTNET_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}


class RolloutError(Exception):
    """History or rollback cannot proceed: what is wrong and what to do."""

    def __init__(self, message: str, remediation: str = "") -> None:
        super().__init__(REDACTOR.redact(message))
        self.remediation = remediation


# --- results ---------------------------------------------------------------------------------


@dataclass
class NodeRollout:
    """One app on one worker: its pod and, when it is not Running+Ready+updated, why."""

    node: str
    pod: str = ""
    phase: str = ""  # Pending | ContainerCreating | ErrImagePull | ImagePullBackOff | CrashLoopBackOff | Running | Terminating | Missing
    ready: bool = False
    updated: bool = False
    reason: str = ""
    message: str = ""
    restarts: int = 0
    last_log: str = ""
    remediation: str = ""

    @property
    def ok(self) -> bool:
        return self.ready and self.updated

    def line(self) -> str:
        who = f"{self.node} ({self.pod})" if self.pod else self.node
        if self.ok:
            return f"{who}: Running, Ready"
        why = f"{self.reason}: {self.message}" if self.message else self.reason or self.phase
        return f"{who}: {self.phase}" + (f" - {why}" if why and why != self.phase else "")


@dataclass
class AppRollout:
    app: str
    status: str = "progressing"  # complete | degraded | progressing | missing | deleted
    message: str = ""  # kubectl rollout status's words
    desired: int = 0
    current: int = 0
    updated: int = 0
    ready: int = 0
    available: int = 0
    expected_nodes: list[str] = field(default_factory=list)  # the workers it should run on
    nodes: dict[str, NodeRollout] = field(default_factory=dict)
    note: str = ""  # what kubectl would not say (the desired-count trap)

    def stuck(self) -> list[NodeRollout]:
        return [n for n in self.nodes.values() if not n.ok]


@dataclass
class RolloutResult:
    status: str  # complete | degraded | timeout | cancelled | failed
    apps: dict[str, AppRollout]
    elapsed: float
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    def stuck(self) -> list[tuple[str, NodeRollout]]:
        return [(a.app, n) for a in self.apps.values() for n in a.stuck()]

    @property
    def summary(self) -> str:
        """The message, then per app and stuck node the reason, the last log line and the fix."""
        lines = [self.message]
        for a in self.apps.values():
            lines.append(f"{a.app}: {a.status} - {a.message}" + (f" ({a.note})" if a.note else ""))
            for n in a.stuck():
                lines.append(f"  {n.line()}")
                if n.last_log and n.last_log not in n.message:
                    lines.append(f"    last log line: {n.last_log}")
                if n.remediation:
                    lines.append(f"    -> {n.remediation}")
        return REDACTOR.redact("\n".join(lines))


# --- watching --------------------------------------------------------------------------------


class _Watch(threading.Thread):
    """LIST then WATCH one collection until stopped: re-watch from the last resourceVersion when
    the stream ends (server timeout, dropped connection), re-list on 410 Gone."""

    def __init__(self, ctx: Context, key: str, path: str, query: dict[str, Any], out: queue.Queue[tuple[str, str, Any]], stop: threading.Event) -> None:
        super().__init__(name=f"keybuzz-watch-{key}", daemon=True)
        self.ctx, self.key, self.path, self.query, self.out, self.stop = ctx, key, path, query, out, stop

    def _stopped(self) -> bool:
        return self.stop.is_set() or self.ctx.cancel.cancelled

    def run(self) -> None:
        backoff = 0.5
        while not self._stopped():
            try:
                listed = kubeio.get(self.ctx, self.path, **self.query)
                rv = str((listed.get("metadata") or {}).get("resourceVersion") or "")
                self.out.put((self.key, "LIST", listed.get("items") or []))
                backoff = 0.5
                while not self._stopped():
                    gone = False
                    for ev in kubeio.watch(self.ctx, self.path, resource_version=rv, timeout_seconds=WATCH_SECONDS, **self.query):
                        if self._stopped():
                            return
                        etype, obj = ev.get("type"), ev.get("object") or {}
                        if etype == "ERROR":
                            if obj.get("code") == 410:
                                gone = True
                                break
                            raise kubeio.KubeError(int(obj.get("code") or 500), obj.get("reason") or "", obj.get("message") or "watch error")
                        rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                        if etype in ("ADDED", "MODIFIED", "DELETED"):
                            self.out.put((self.key, etype, obj))
                    if gone:
                        break  # the resourceVersion is too old: list again
            except Cancelled:
                return
            except (kubeio.KubeError, kubeio.Unreachable, OSError, ValueError) as e:
                if self._stopped():
                    return
                self.out.put((self.key, "FAILED", e))
                if isinstance(e, kubeio.KubeError) and e.status in (401, 403):
                    return  # will not get better by retrying
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)


@dataclass
class _State:
    namespace: str
    apps: list[str]
    ds: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)  # pod name -> pod
    seen_pods: dict[str, str] = field(default_factory=dict)  # pod name -> app (also deleted ones)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)
    failures: dict[str, str] = field(default_factory=dict)

    def take(self, key: str, etype: str, payload: Any) -> None:
        if etype == "FAILED":
            self.failures[key] = safe_error(payload)
            return
        store = {"ds": self.ds, "pods": self.pods, "events": self.events, "nodes": self.nodes}[key]
        if etype == "LIST":
            store.clear()
            self.listed.add(key)
            self.failures.pop(key, None)
            for obj in payload:
                self._put(key, store, obj)
            return
        name = (payload.get("metadata") or {}).get("name", "")
        if etype == "DELETED":
            store.pop(name, None)
            if key == "ds" and name in self.apps:
                self.deleted.add(name)
            return
        self._put(key, store, payload)

    def _put(self, key: str, store: dict[str, dict[str, Any]], obj: dict[str, Any]) -> None:
        name = (obj.get("metadata") or {}).get("name", "")
        if key == "ds" and name not in self.apps:
            return
        if key == "pods":
            app = _owner_app(obj)
            if app not in self.apps:
                return
            self.seen_pods[name] = app
        if key == "ds":
            self.deleted.discard(name)
        store[name] = obj


def _owner_app(pod: dict[str, Any]) -> str:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "DaemonSet" and ref.get("controller"):
            return str(ref.get("name"))
    return ""


def watch_rollout(ctx: Context, apps: list[str], timeout: float) -> RolloutResult:
    """Follow the apps' DaemonSets until they are rolled out, the timeout passes or the operator
    cancels; emits RolloutProgress, PodProgress (per node, on every change) and KubeEvent (Warning
    events of our pods and DaemonSets). Never raises for a stuck rollout: the result says per
    app and node what is stuck and why."""
    ns = ctx.config.namespace
    started = time.monotonic()
    deadline = started + max(0.0, float(timeout))
    ctx.emit(StepStarted(step=STEP, title=f"Rollout of {', '.join(apps)}"))
    ctx.kube()  # build the shared client once, before the threads use it
    q: queue.Queue[tuple[str, str, Any]] = queue.Queue()
    stop = threading.Event()
    selector = f"app.kubernetes.io/name in ({','.join(apps)})"
    watches = [
        _Watch(ctx, "ds", kubeio.resource_path("apps/v1", "daemonsets", ns), {}, q, stop),
        _Watch(ctx, "pods", kubeio.resource_path("v1", "pods", ns), {"labelSelector": selector}, q, stop),
        _Watch(ctx, "events", kubeio.resource_path("v1", "events", ns), {}, q, stop),
        _Watch(ctx, "nodes", kubeio.resource_path("v1", "nodes"), {}, q, stop),
    ]
    for w in watches:
        w.start()
    board = _Board(ctx, apps)
    state = _State(ns, list(apps))
    status = "timeout"
    try:
        while True:
            if ctx.cancel.cancelled:
                status = "cancelled"
                break
            left = deadline - time.monotonic()
            if left <= 0:
                status = "timeout"
                break
            try:
                items = [q.get(timeout=min(TICK, left))]
            except queue.Empty:
                items = []
            while True:
                try:
                    items.append(q.get_nowait())
                except queue.Empty:
                    break
            for key, etype, payload in items:
                state.take(key, etype, payload)
                if etype == "FAILED":
                    board.warn_failure(key, state.failures[key])
            if not items or not {"ds", "pods", "nodes"} <= state.listed:
                continue
            verdict = board.refresh(state)
            if verdict is not None:
                status = verdict
                break
    finally:
        stop.set()
    if {"ds", "pods", "nodes"} <= state.listed:
        board.refresh(state)  # the last word on every app, whatever ended the watch
    result = board.result(status, time.monotonic() - started, state)
    level = "ok" if result.ok else ("warn" if status in ("degraded", "cancelled") else "fail")
    ctx.emit(StepFinished(step=STEP, status=level, summary=result.message))
    return result


# --- reading the objects ---------------------------------------------------------------------


def _meta(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("metadata") or {}


def kubectl_status(ds: dict[str, Any]) -> tuple[bool, str]:
    """DaemonSetStatusViewer.Status: (done, message), word for word."""
    name = _meta(ds).get("name", "")
    st = ds.get("status") or {}
    strategy = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy != "RollingUpdate":
        return False, "rollout status is only available for RollingUpdate strategy type"
    gen = int(_meta(ds).get("generation") or 0)
    observed = st.get("observedGeneration")
    if observed is None or gen > int(observed):
        return False, "Waiting for daemon set spec update to be observed..."
    desired = int(st.get("desiredNumberScheduled") or 0)
    updated = int(st.get("updatedNumberScheduled") or 0)
    available = int(st.get("numberAvailable") or 0)
    if updated < desired:
        return False, f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods have been updated...'
    if available < desired:
        return False, f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} updated pods are available...'
    return True, f'daemon set "{name}" successfully rolled out'


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        if op == "Exists" and (not t.get("key") or t.get("key") == taint.get("key")):
            return True
        if op == "Equal" and t.get("key") == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _match_expression(labels: dict[str, str], expr: dict[str, Any]) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return labels.get(key) in values  # type: ignore[arg-type]
    if op == "NotIn":
        return labels.get(key) not in values  # type: ignore[arg-type]
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return True  # Gt/Lt: not used by our templates; do not exclude a node over them


def should_run(template_spec: dict[str, Any], node: dict[str, Any]) -> bool:
    """Would the DaemonSet run on this node if the node were healthy? nodeSelector, required node
    affinity and taints, as NodeShouldRunDaemonPod, except the taints a node gets for being
    NotReady/unreachable: those are the trap this module reports."""
    labels = _meta(node).get("labels") or {}
    for k, v in (template_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    terms = ((((template_spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms")) or []
    if terms and not any(all(_match_expression(labels, e) for e in t.get("matchExpressions") or []) for t in terms):
        return False
    tolerations = list(template_spec.get("tolerations") or []) + list(AUTO_TOLERATIONS)
    if template_spec.get("hostNetwork"):
        tolerations.append(HOSTNET_TOLERATION)
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("key") in CONDITION_TAINTS:
            continue
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tolerations, taint):
            return False
    return True


def node_ready(node: dict[str, Any] | None) -> tuple[bool, str]:
    """(ready, why not) from the node's Ready condition."""
    if node is None:
        return False, "the node is gone"
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            if c.get("status") == "True":
                return True, ""
            return False, f"Ready={c.get('status')} ({c.get('reason') or 'no reason'}: {c.get('message') or 'no message'})"
    return False, "the node reports no Ready condition"


def target_node(pod: dict[str, Any]) -> str | None:
    """spec.nodeName, else the node the DaemonSet pinned the pod to (matchFields metadata.name)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    terms = ((((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms")) or []
    for term in terms:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and len(f.get("values") or []) == 1:
                return str(f["values"][0])
    return None


def _is_updated(pod: dict[str, Any], ds: dict[str, Any], current_hash: str | None = None) -> bool:
    """Kubernetes' util.IsPodUpdated: the template generation matches, or the pod already runs the
    current ControllerRevision (after a rollback the generation moves on but the pods of the
    restored revision are up to date)."""
    labels = _meta(pod).get("labels") or {}
    if current_hash and labels.get(REVISION_HASH) == current_hash:
        return True
    want = (_meta(ds).get("annotations") or {}).get(TEMPLATE_GENERATION)
    have = labels.get(POD_TEMPLATE_GENERATION)
    if want is None or have is None:
        return True  # cannot tell: the counters still decide
    return str(want) == str(have)


REVISION_HASH = "controller-revision-hash"
_HASH_CACHE: dict[tuple[str, str, str, str], str | None] = {}


def current_revision_hash(ctx: Context, ds: dict[str, Any]) -> str | None:
    """The hash of the DaemonSet's newest ControllerRevision (one LIST per template generation).

    Remembered only once the controller has observed the DaemonSet's generation: it writes the
    ControllerRevision of a new template (or bumps the old one's number after a rollback) before
    it reports observedGeneration, so until then the newest revision may still be the previous
    template's, and remembering it would make the restored pods look outdated for the rest of the
    rollout. The key holds the uid, so a DaemonSet deleted and created again starts afresh."""
    meta = _meta(ds)
    key = (meta.get("namespace", ""), meta.get("name", ""), str(meta.get("uid", "")),
           str((meta.get("annotations") or {}).get(TEMPLATE_GENERATION)))
    observed = (ds.get("status") or {}).get("observedGeneration")
    settled = observed is not None and int(observed) >= int(meta.get("generation") or 0)
    if settled and key in _HASH_CACHE:
        return _HASH_CACHE[key]
    try:
        sel = ",".join(f"{k}={v}" for k, v in (((ds.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}).items())
        revs = kubeio.get(ctx, f"/apis/apps/v1/namespaces/{key[0]}/controllerrevisions", labelSelector=sel).get("items") or []
        owned = [r for r in revs if any(o.get("uid") == meta.get("uid") for o in _meta(r).get("ownerReferences") or [])]
        newest = max(owned, key=lambda r: int(r.get("revision") or 0), default=None)
        value = (_meta(newest).get("labels") or {}).get(REVISION_HASH) if newest else None
    except Exception:  # no revision known (API error, no client): the generation alone decides
        return None
    if settled:
        _HASH_CACHE[key] = value
    return value


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])


# --- the board: per app and node, with reasons -------------------------------------------------


STUCK_GRACE = 20.0  # seconds every missing pod must look hopeless before the watch gives up
_HOPELESS_PHASES = {"ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"}


def _hopeless(n: NodeRollout) -> bool:
    if n.phase == "CrashLoopBackOff" and n.restarts >= 3:
        return True
    if n.phase in _HOPELESS_PHASES:
        return True
    return n.reason == "FailedScheduling" and "free ports" in n.message


class _Board:
    def __init__(self, ctx: Context, apps: list[str]) -> None:
        self.ctx = ctx
        self.apps = apps
        self._stuck_since: float | None = None
        self.rollouts: dict[str, AppRollout] = {a: AppRollout(a, message="waiting for the DaemonSet") for a in apps}
        self._sent_progress: dict[str, tuple[Any, ...]] = {}
        self._sent_pod: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._sent_events: set[tuple[str, int]] = set()
        self._logs: dict[tuple[str, str, int], str] = {}
        self._warned: set[str] = set()

    def warn_failure(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        what = {"ds": "DaemonSets", "pods": "pods", "events": "events", "nodes": "nodes"}[key]
        self.ctx.emit(Warning_(step=STEP, message=f"cannot watch {what}: {message}", remediation="The rollout view may miss changes; check the connection and permissions (list/watch)."))

    # --- analysis ----------------------------------------------------------------------------

    def refresh(self, state: _State) -> str | None:
        """Recompute every app from the watched objects, emit what changed, return a verdict when
        the rollout is over (complete / degraded / failed)."""
        events_by_obj: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for ev in state.events.values():
            inv = ev.get("involvedObject") or {}
            events_by_obj.setdefault((str(inv.get("kind")), str(inv.get("name"))), []).append(ev)
        for evs in events_by_obj.values():
            evs.sort(key=lambda e: (e.get("lastTimestamp") or e.get("eventTime") or "", int(e.get("count") or 1)))
        for app in self.apps:
            self.rollouts[app] = self._analyse(app, state, events_by_obj)
        self._emit_events(state, events_by_obj)
        statuses = {r.status for r in self.rollouts.values()}
        if "deleted" in statuses:
            return "failed"
        if statuses <= {"complete"}:
            return "complete"
        if statuses <= {"complete", "degraded"}:
            return "degraded"
        return self._stuck_verdict()

    def _stuck_verdict(self) -> str | None:
        """"failed" once every pod still missing has been in a state that does not heal by itself
        (CrashLoopBackOff after 3 restarts, ImagePullBackOff, no free port) for STUCK_GRACE seconds:
        waiting out the whole timeout would only delay the diagnosis at 3 a.m."""
        pending = [n for r in self.rollouts.values() if r.status == "progressing" for n in r.nodes.values() if not n.ok]
        if pending and all(_hopeless(n) for n in pending):
            now = time.monotonic()
            if self._stuck_since is None:
                self._stuck_since = now
            elif now - self._stuck_since >= STUCK_GRACE:
                return "failed"
        else:
            self._stuck_since = None
        return None

    def _analyse(self, app: str, state: _State, events: dict[tuple[str, str], list[dict[str, Any]]]) -> AppRollout:
        ds = state.ds.get(app)
        if ds is None:
            status = "deleted" if app in state.deleted else "missing"
            msg = "object has been deleted" if status == "deleted" else f'daemonsets.apps "{app}" not found in namespace {state.namespace} (apply first)'
            out = AppRollout(app, status, msg)
            self._emit_progress(out)
            return out
        st = ds.get("status") or {}
        done, message = kubectl_status(ds)
        out = AppRollout(
            app,
            "progressing",
            message,
            desired=int(st.get("desiredNumberScheduled") or 0),
            current=int(st.get("currentNumberScheduled") or 0),
            updated=int(st.get("updatedNumberScheduled") or 0),
            ready=int(st.get("numberReady") or 0),
            available=int(st.get("numberAvailable") or 0),
        )
        tspec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
        out.expected_nodes = sorted(n for n, node in state.nodes.items() if should_run(tspec, node))
        by_node: dict[str, list[dict[str, Any]]] = {}
        for pod in state.pods.values():
            if _owner_app(pod) == app:
                node = target_node(pod)
                if node:
                    by_node.setdefault(node, []).append(pod)
        for node in sorted(set(out.expected_nodes) | set(by_node)):
            out.nodes[node] = self._node_state(app, ds, node, state.nodes.get(node), by_node.get(node) or [], events, state.namespace)
        missing = [n for n in out.expected_nodes if not out.nodes[n].ok]
        if done and not missing:
            out.status = "complete"
        elif done:
            # kubectl is satisfied; if what is missing is only NotReady workers, this is the trap
            # (otherwise the pod watch is a beat behind the DaemonSet's counters: keep watching)
            down = [n for n in missing if not node_ready(state.nodes.get(n))[0]]
            if down and len(down) == len(missing):
                out.status = "degraded"
                out.note = (
                    f"kubectl counts {out.desired} desired, but the DaemonSet should run on {len(out.expected_nodes)} workers: "
                    f"{', '.join(down)} NotReady, no Ready pod there"
                )
        elif out.expected_nodes and out.desired < len(out.expected_nodes):
            gaps = [n for n in out.expected_nodes if not node_ready(state.nodes.get(n))[0]]
            if gaps:
                out.note = f"desired {out.desired} of {len(out.expected_nodes)} workers: {', '.join(gaps)} NotReady"
        self._emit_progress(out)
        for n in out.nodes.values():
            self._emit_pod(app, n)
        return out

    def _node_state(
        self, app: str, ds: dict[str, Any], node: str, node_obj: dict[str, Any] | None,
        pods: list[dict[str, Any]], events: dict[tuple[str, str], list[dict[str, Any]]], namespace: str,
    ) -> NodeRollout:
        live = [p for p in pods if not _meta(p).get("deletionTimestamp")]
        chash = current_revision_hash(self.ctx, ds)
        # the pod that matters: the updated one, else the newest; a terminating one only if alone
        pick = sorted(live, key=lambda p: (_is_updated(p, ds, chash), _meta(p).get("creationTimestamp") or ""), reverse=True)
        pod = pick[0] if pick else (pods[0] if pods else None)
        ready_node, why_node = node_ready(node_obj)
        if pod is None:
            if not ready_node:
                return NodeRollout(
                    node, phase="Missing", reason="NodeNotReady",
                    message=f"no {app} pod: {node} is NotReady, {why_node}; the DaemonSet controller skips it (unreachable taint), so kubectl does not count it",
                    remediation=f"Bring {node} back (check its k3s-agent and kubelet), or drain and remove it; the app keeps running on the other workers.",
                )
            return NodeRollout(node, phase="Missing", reason="NoPod", message="the DaemonSet controller has not created a pod here yet")
        name = _meta(pod).get("name", "")
        updated = _is_updated(pod, ds, chash)
        ready = _pod_ready(pod)
        out = NodeRollout(node, pod=name, updated=updated, ready=ready)
        st = pod.get("status") or {}
        cstats = st.get("containerStatuses") or []
        out.restarts = sum(int(c.get("restartCount") or 0) for c in cstats)
        pod_events = events.get(("Pod", name), [])
        if _meta(pod).get("deletionTimestamp"):
            out.phase, out.reason, out.message = "Terminating", "Terminating", "the old pod is shutting down"
            return out
        if not ready_node:
            out.phase = st.get("phase") or "Unknown"
            out.reason, out.message = "NodeNotReady", f"{node} is NotReady, {why_node}: its kubelet does not report, the pod cannot progress"
            out.remediation = f"Bring {node} back (check its k3s-agent and kubelet), or drain and remove it."
            out.ready = False
            return out
        if not (pod.get("spec") or {}).get("nodeName"):
            out.phase = "Pending"
            sched = next((c for c in st.get("conditions") or [] if c.get("type") == "PodScheduled" and c.get("status") == "False"), None)
            failed = [e for e in pod_events if e.get("reason") == "FailedScheduling"]
            if failed:
                out.reason, out.message = "FailedScheduling", str(failed[-1].get("message") or "")
            elif sched is not None:
                out.reason, out.message = str(sched.get("reason") or "Unschedulable"), str(sched.get("message") or "")
            else:
                out.reason, out.message = "Pending", "not scheduled yet, and no event says why (is the scheduler running?)"
            if "free ports" in out.message:
                port = _ports_of(ds)
                out.remediation = f"Another pod on {node} already declares hostPort {port}: find it with the Ports step and move one of them to another port."
            return out
        for c in cstats:
            state = c.get("state") or {}
            if "waiting" in state:
                w = state["waiting"] or {}
                reason, msg = str(w.get("reason") or "Waiting"), str(w.get("message") or "")
                out.phase, out.reason = reason, reason
                if reason in ("ErrImagePull", "ImagePullBackOff"):
                    pulls = [e for e in pod_events if "Failed to pull image" in str(e.get("message") or "")]
                    detail = str(pulls[-1]["message"]) if pulls else msg
                    out.message = detail or msg
                    out.remediation = f"Check apps[].image for {app} in keybuzz.yaml (registry, name, tag) and that the workers may pull it (registry credentials)."
                elif reason == "CrashLoopBackOff":
                    out.message, out.last_log = self._crash_detail(namespace, name, c)
                    out.remediation = _crash_fix(ds, app, node, namespace, name, out.message)
                else:
                    out.message = msg or ("pulling the image and starting the container" if reason == "ContainerCreating" else msg)
                    if reason in ("CreateContainerConfigError", "CreateContainerError"):
                        out.remediation = "A Secret or ConfigMap the pod needs is missing or wrong: apply again after the Credentials step."
                return out
            last = (c.get("lastState") or {}).get("terminated") or {}
            if "terminated" in state:
                t = state["terminated"] or {}
                out.phase = out.reason = str(t.get("reason") or "Terminated")
                out.message = f"exit code {t.get('exitCode')}" + (f": {t['message']}" if t.get("message") else "")
                return out
            if not c.get("ready") and int(c.get("restartCount") or 0) > 0 and last.get("exitCode") not in (None, 0):
                # between two crashes the container shows Running for a moment: still a crash loop
                out.phase = out.reason = "CrashLoopBackOff"
                detail, out.last_log = self._crash_detail(namespace, name, c)
                out.message = f"running again, not ready; {detail}"
                out.remediation = _crash_fix(ds, app, node, namespace, name, out.message)
                return out
        out.phase = str(st.get("phase") or "Pending")
        if ready:
            return out
        if out.phase == "Running":
            probes = [e for e in pod_events if e.get("reason") == "Unhealthy"]
            out.reason = "NotReady"
            out.message = str(probes[-1]["message"]) if probes else "running, waiting for the readiness probe to pass"
        elif not cstats:
            out.phase, out.reason, out.message = "ContainerCreating", "ContainerCreating", "scheduled, the kubelet is preparing the pod"
        return out

    def _crash_detail(self, namespace: str, pod: str, cstatus: dict[str, Any]) -> tuple[str, str]:
        term = ((cstatus.get("lastState") or {}).get("terminated")) or {}
        restarts = int(cstatus.get("restartCount") or 0)
        parts = []
        if term:
            parts.append(f"exit code {term.get('exitCode')} ({term.get('reason') or 'Error'})")
            if term.get("finishedAt"):
                parts.append(f"at {term['finishedAt']}")
        parts.append(f"restarted {restarts} time(s)")
        line = self._last_log(namespace, pod, str(cstatus.get("name") or ""), restarts)
        msg = ", ".join(parts)
        if line:
            msg += f"; last log line: {line}"
        return msg, line

    def _last_log(self, namespace: str, pod: str, container: str, restarts: int) -> str:
        """The last line the previous container wrote (logs --previous --tail 5), once per restart."""
        key = (pod, container, restarts)
        if key in self._logs:
            return self._logs[key]
        line = ""
        try:
            path = kubeio.resource_path("v1", "pods", namespace, pod) + "/log"
            resp = kubeio.request(
                self.ctx, "GET", path, query={"container": container, "previous": True, "tailLines": 5},
                timeout=min(self.ctx.request_timeout, 5.0), stream=True,
            )
            try:
                text = resp.read().decode("utf-8", errors="replace")
            finally:
                resp.response.release_conn()
            lines = [ln for ln in text.splitlines() if ln.strip()]
            line = REDACTOR.redact(lines[-1].strip()) if lines else ""
        except (kubeio.KubeError, kubeio.Unreachable, OSError) as e:
            line = ""
            self._logs[key] = line
            self.ctx.emit(Info(step=STEP, message=f"cannot read the previous log of {pod}: {safe_error(e)}"))
            return line
        self._logs[key] = line
        return line

    # --- events out --------------------------------------------------------------------------

    def _emit_progress(self, r: AppRollout) -> None:
        key = (r.desired, r.current, r.updated, r.ready, r.available, r.message, r.note, r.status)
        if self._sent_progress.get(r.app) == key:
            return
        self._sent_progress[r.app] = key
        msg = r.message + (f" ({r.note})" if r.note else "")
        self.ctx.emit(RolloutProgress(step=STEP, app=r.app, desired=r.desired, current=r.current, updated=r.updated, ready=r.ready, available=r.available, message=msg))

    def _emit_pod(self, app: str, n: NodeRollout) -> None:
        key = (n.pod, n.phase, n.ready, n.updated, n.reason, n.message, n.restarts)
        if self._sent_pod.get((app, n.node)) == key:
            return
        self._sent_pod[(app, n.node)] = key
        self.ctx.emit(PodProgress(step=STEP, app=app, node=n.node, pod=n.pod, phase=n.phase, ready=n.ready and n.updated, reason=n.reason, message=n.message, restarts=n.restarts))

    def _emit_events(self, state: _State, events: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        for (kind, name), evs in events.items():
            ours = (kind == "DaemonSet" and name in self.apps) or (kind == "Pod" and name in state.seen_pods)
            if not ours:
                continue
            for ev in evs:
                if ev.get("type") != "Warning":
                    continue
                key = (str(_meta(ev).get("name")), int(ev.get("count") or 1))
                if key in self._sent_events:
                    continue
                self._sent_events.add(key)
                self.ctx.emit(KubeEvent(
                    step=STEP, kind=kind, name=name, reason=str(ev.get("reason") or ""), message=str(ev.get("message") or ""),
                    type_="Warning", count=int(ev.get("count") or 1),
                ))

    # --- the result --------------------------------------------------------------------------

    def result(self, status: str, elapsed: float, state: _State) -> RolloutResult:
        apps = dict(self.rollouts)
        if status == "timeout":
            stuck = [f"{a.app} on {n.node}" for a in apps.values() for n in a.stuck()]
            missing = [a.app for a in apps.values() if a.status == "missing"]
            detail = "; ".join(stuck) if stuck else ", ".join(f"{a}: DaemonSet not found" for a in missing) or "counters not converged"
            message = f"rollout not finished after {elapsed:.0f}s: {detail}"
        elif status == "cancelled":
            message = f"rollout watch cancelled after {elapsed:.0f}s ({self.ctx.cancel.reason}); the pods keep rolling in the cluster"
        elif status == "complete":
            n = sum(len(a.expected_nodes) for a in apps.values())
            message = f"rolled out: {n} pods Running and Ready on every worker ({', '.join(apps)})"
        elif status == "degraded":
            notes = "; ".join(f"{a.app}: {len([n for n in a.expected_nodes if a.nodes[n].ok])}/{len(a.expected_nodes)} workers" for a in apps.values())
            down = sorted({n.node for a in apps.values() for n in a.stuck()})
            message = f"rolled out on the reachable workers only ({notes}); not running on {', '.join(down)} (NotReady): kubectl would call this a success"
        else:
            gone = "; ".join(f"{a.app}: {a.message}" for a in apps.values() if a.status in ("deleted", "missing"))
            stuck = "; ".join(n.line() for a in apps.values() for n in a.stuck())
            message = gone or (f"rollout stuck after {elapsed:.0f}s, nothing left will heal by itself: {stuck}" if stuck else "rollout failed")
        if state.failures:
            message += " [watch problems: " + "; ".join(f"{k}: {v}" for k, v in state.failures.items()) + "]"
        return RolloutResult(status, apps, elapsed, REDACTOR.redact(message))


def _crash_fix(ds: dict[str, Any], app: str, node: str, namespace: str, pod: str, message: str) -> str:
    if "address already in use" in message.lower():
        port = _ports_of(ds)
        return (
            f"Something on {node} already listens on port {port} outside Kubernetes (the scheduler cannot see it): "
            f"find it with `ss -ltnp 'sport = :{port}'` on the node and stop it, or choose another port for {app}."
        )
    return f"Read the container's log (`kubectl logs -n {namespace} {pod} --previous`) and fix its configuration."


def _ports_of(ds: dict[str, Any]) -> str:
    ports = []
    for c in ((((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or []:
        for p in c.get("ports") or []:
            if p.get("containerPort"):
                ports.append(str(p.get("hostPort") or p["containerPort"]))
    return "/".join(ports) or "?"


# --- history and rollback --------------------------------------------------------------------


@dataclass(frozen=True)
class Revision:
    """One ControllerRevision of an app's DaemonSet, as `kubectl rollout history` lists it, plus
    what rolling back to it would change (current template -> this one)."""

    revision: int
    name: str
    images: tuple[str, ...]
    change_cause: str
    created: str
    current: bool
    config_hash: str = ""
    diff: tuple[FieldDiff, ...] = ()

    def lines(self) -> list[str]:
        return [d.render() for d in self.diff]


def _ds_path(ctx: Context, app: str) -> str:
    return kubeio.resource_path("apps/v1", "daemonsets", ctx.config.namespace, app)


def _template_of(revision: dict[str, Any]) -> dict[str, Any]:
    tmpl = dict((((revision.get("data") or {}).get("spec") or {}).get("template")) or {})
    tmpl.pop("$patch", None)
    return tmpl


def _revisions(ctx: Context, app: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ds = kubeio.get_or_none(ctx, _ds_path(ctx, app))
    if ds is None:
        raise RolloutError(f'daemonsets.apps "{app}" not found in namespace {ctx.config.namespace}', "Apply the platform first; there is no history to show.")
    uid = _meta(ds).get("uid")
    sel = ",".join(f"{k}={v}" for k, v in (((ds.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}).items())
    path = kubeio.resource_path("apps/v1", "controllerrevisions", ctx.config.namespace)
    items = kubeio.get(ctx, path, **({"labelSelector": sel} if sel else {})).get("items") or []
    owned = [r for r in items if any(o.get("uid") == uid and o.get("controller") for o in _meta(r).get("ownerReferences") or [])]
    return ds, sorted(owned, key=lambda r: int(r.get("revision") or 0))


def history(ctx: Context, app: str) -> list[Revision]:
    """The app's ControllerRevisions, oldest first, each with its images and its diff from now."""
    ds, revs = _revisions(ctx, app)
    current = (ds.get("spec") or {}).get("template") or {}
    out = []
    for r in revs:
        tmpl = _template_of(r)
        diff = tuple(FieldDiff(".spec.template" + d.path, d.old, d.new) for d in diff_objects(current, tmpl))
        images = tuple(str(c.get("image")) for c in ((tmpl.get("spec") or {}).get("containers") or []))
        out.append(Revision(
            revision=int(r.get("revision") or 0),
            name=str(_meta(r).get("name")),
            images=images,
            change_cause=str((_meta(r).get("annotations") or {}).get("kubernetes.io/change-cause") or ""),
            created=str(_meta(r).get("creationTimestamp") or ""),
            current=not diff,
            config_hash=str(((tmpl.get("metadata") or {}).get("annotations") or {}).get("keybuzz.io/config-hash") or ""),
            diff=diff,
        ))
    return out


@dataclass
class RollbackResult:
    app: str
    from_revision: int | None
    to_revision: int
    skipped: bool = False  # the DaemonSet already runs that template
    resource_version: str | None = None
    rollout: RolloutResult | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.rollout is None or self.rollout.ok


def rollback(ctx: Context, app: str, revision: int | None = None, *, timeout: float | None = None, watch: bool = True) -> RollbackResult:
    """Take the DaemonSet back to a ControllerRevision (the previous one by default), as
    `kubectl rollout undo` does: a strategic merge patch with the revision's own data
    (`{"spec":{"template":{..., "$patch":"replace"}}}`), journaled, then watch that rollout.

    keybuzz.yaml is not changed: the next plan shows the difference, so the operator decides
    whether to pin the old image there or roll forward again.
    """
    ctx.cancel.check()
    ds, revs = _revisions(ctx, app)
    hist = history(ctx, app)
    if not hist:
        raise RolloutError(f"{app} has no ControllerRevision yet", "Wait for the DaemonSet controller to record the first revision, then try again.")
    cur = next((h for h in reversed(hist) if h.current), None)
    if revision is None:
        older = [h for h in hist if not h.current and (cur is None or h.revision < cur.revision)]
        if not older:
            raise RolloutError(f"{app} has no previous revision to roll back to (revisions: {', '.join(str(h.revision) for h in hist)})", "Nothing to undo.")
        target = older[-1]
    else:
        found = [h for h in hist if h.revision == revision]
        if not found:
            raise RolloutError(f"{app} has no revision {revision} (revisions: {', '.join(str(h.revision) for h in hist)})", "Pick one of the listed revisions.")
        target = found[0]
    from_rev = cur.revision if cur else None
    if target.current:
        msg = f"skipped rollback: {app} already runs revision {target.revision}"
        ctx.emit(Info(step=STEP, message=msg))
        return RollbackResult(app, from_rev, target.revision, skipped=True, message=msg)
    raw = next(r for r in revs if int(r.get("revision") or 0) == target.revision)
    ctx.cancel.check()
    try:
        res = kubeio.request(
            ctx, "PATCH", _ds_path(ctx, app), query={"fieldManager": FIELD_MANAGER}, body=raw.get("data") or {},
            content_type="application/strategic-merge-patch+json",
        )
    except kubeio.KubeError as e:
        ctx.journal.write("rollback-failed", kind="DaemonSet", namespace=ctx.config.namespace, name=app, to_revision=target.revision, error=e.message)
        raise RolloutError(f"rollback of {app} to revision {target.revision} refused: {e.message}", "Check the permissions (patch daemonsets) and try again.") from None
    rv = _meta(res).get("resourceVersion")
    ctx.journal.write(
        "rollback", kind="DaemonSet", namespace=ctx.config.namespace, name=app, action="rollback",
        from_revision=from_rev, to_revision=target.revision, images=list(target.images), resourceVersion=rv,
    )
    msg = f"{app}: rolled back from revision {from_rev} to {target.revision} ({', '.join(target.images)}); keybuzz.yaml still holds the newer settings"
    ctx.emit(Info(step=STEP, message=msg))
    result = RollbackResult(app, from_rev, target.revision, resource_version=rv, message=msg)
    if watch:
        result.rollout = watch_rollout(ctx, [app], ctx.config.rollout.timeout if timeout is None else timeout)
    return result
