"""The ReplicaSet controller, and the helpers every workload controller shares.

The ReplicaSet half follows kubernetes `pkg/controller/replicaset/replica_set.go`: claim the pods
(adopt matching orphans, release owned pods that stopped matching), create or delete the
difference to `spec.replicas` (deleting the least valuable pods first, as `ActivePodsWithRanks`
ranks them), then write status counted from the pods seen *before* acting, exactly as the real
controller does, so `replicas` catches up on the next pass triggered by the pod events.

The shared half (hashes, pod readiness/availability, owner indexes, claiming, int-or-percent)
lives here because the DaemonSet, Deployment and StatefulSet controllers need the same answers
as this one; a DaemonSet that judged "available" differently from a ReplicaSet would be a bug an
operator could see in `kubectl get`.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from ..api import MERGE_PATCH
from ..errors import ApiError
from ..registry import ResourceType, apps, core
from ..selectors import LabelSelector, selector_from_label_selector, selector_from_set
from ..store import Event

log = logging.getLogger("keybuzz.sandbox.controllers.workloads")

PODS = core("pods")
NODES = core("nodes")
REPLICASETS = apps("replicasets")
CONTROLLER_REVISIONS = apps("controllerrevisions")

RS_COMPONENT = "replicaset-controller"
# controller.BurstReplicas: no controller creates or deletes more than this in one pass
BURST_REPLICAS = 500

_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


# --------------------------------------------------------------------------------------------
# Hashes (controller.ComputeHash, history.HashControllerRevision, rand.SafeEncodeString)
# --------------------------------------------------------------------------------------------


def fnv32a(data: bytes, h: int = 0x811C9DC5) -> int:
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def fnv32(data: bytes, h: int = 0x811C9DC5) -> int:
    for b in data:
        h = (h * 0x01000193) & 0xFFFFFFFF
        h ^= b
    return h


def safe_encode(s: str) -> str:
    """rand.SafeEncodeString: maps bytes onto consonants and digits so no words are spelled."""
    return "".join(_SAFE_ALPHANUMS[b % len(_SAFE_ALPHANUMS)] for b in s.encode())


def canonical(obj: Any) -> Any:
    """A template as Go's typed decode would see it, keys sorted: what hashes and compares use.

    Nulls disappear (Go has no "null" for a value field), and the `creationTimestamp: null` and
    `resources: {}` that Go renders into every template are dropped, so a template restored by
    `kubectl rollout undo` (which sends them) equals the one originally applied (which lacked them).
    """
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k in sorted(obj):
            v = obj[k]
            if v is None:
                continue
            out[k] = canonical(v)
        return out
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    return obj


def canonical_template(template: dict[str, Any] | None) -> dict[str, Any]:
    t = canonical(copy.deepcopy(template or {}))
    meta = t.get("metadata")
    if isinstance(meta, dict):
        meta.pop("creationTimestamp", None)
        if not meta:
            t.pop("metadata")
    spec = t.get("spec") or {}
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict) and c.get("resources") == {}:
                c.pop("resources")
    return t


def go_template(template: dict[str, Any] | None) -> dict[str, Any]:
    """The template as Go's json.Marshal renders a v1.PodTemplateSpec, keys sorted.

    This is what `getPatch` stores in a ControllerRevision and what kubectl recomputes to decide
    "current template already matches revision N", so it carries Go's always-present fields.
    """
    t = canonical_template(template)
    meta = t.setdefault("metadata", {})
    meta["creationTimestamp"] = None
    spec = t.get("spec") or {}
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                c.setdefault("resources", {})
    return _sorted(t)


def _sorted(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _sorted(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [_sorted(v) for v in obj]
    return obj


def template_patch(template: dict[str, Any] | None) -> dict[str, Any]:
    """`{"spec":{"template":{..., "$patch":"replace"}}}`: daemon/update.go and stateful_set_utils.go getPatch."""
    t = go_template(template)
    t["$patch"] = "replace"
    return {"spec": {"template": _sorted(t)}}


def patch_template(data: Any) -> dict[str, Any] | None:
    """The template a ControllerRevision's data restores, or None if it is not a template patch."""
    try:
        t = dict(data["spec"]["template"])
    except (KeyError, TypeError):
        return None
    t.pop("$patch", None)
    return t


def compute_hash(template: dict[str, Any] | None, collision_count: int | None) -> str:
    """controller.ComputeHash: fnv32a of the template (plus the collision count), safe-encoded.

    Go hashes the spew dump of the struct; we hash its canonical JSON, which is just as stable
    and renders the same way (`5d9b9b7c6f`, `7db6d8ff4d`).
    """
    data = json.dumps(canonical_template(template), separators=(",", ":"), sort_keys=True).encode()
    h = fnv32a(data)
    if collision_count is not None:
        h = fnv32a(int(collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0", h)
    return safe_encode(str(h))


def revision_hash(data: Any, collision_count: int | None) -> str:
    """history.HashControllerRevision: fnv32 of the revision's raw data (plus the probe)."""
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    h = fnv32(raw)
    if collision_count is not None:
        h = fnv32(str(int(collision_count)).encode(), h)
    return safe_encode(str(h))


# --------------------------------------------------------------------------------------------
# Small readers
# --------------------------------------------------------------------------------------------


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def labels_of(obj: dict[str, Any] | None) -> dict[str, str]:
    return (meta(obj or {}).get("labels")) or {}


def controller_ref(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """metav1.GetControllerOf: the owner reference with controller: true."""
    for ref in meta(obj or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: dict[str, Any], kind: str, api_version: str = "apps/v1") -> dict[str, Any]:
    """metav1.NewControllerRef, field order as the apiserver prints it."""
    m = meta(owner)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": m["name"],
        "uid": m["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_controlled_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == meta(owner).get("uid")


def selector_of(obj: dict[str, Any]) -> LabelSelector:
    return selector_from_label_selector((obj.get("spec") or {}).get("selector"))


def selector_is_empty(obj: dict[str, Any]) -> bool:
    sel = (obj.get("spec") or {}).get("selector")
    return isinstance(sel, dict) and not sel.get("matchLabels") and not sel.get("matchExpressions")


def parse_time(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def pod_condition(pod: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def is_pod_ready(pod: dict[str, Any]) -> bool:
    """podutil.IsPodReady: the Ready condition is True (the phase does not matter)."""
    c = pod_condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def is_running_and_ready(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and is_pod_ready(pod)


def is_terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_terminating(obj: dict[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def is_active(pod: dict[str, Any]) -> bool:
    """controller.IsPodActive: not finished and not being deleted."""
    return not is_terminal(pod) and not is_terminating(pod)


class Availability:
    """podutil.IsPodAvailable against the sandbox clock, with `minReadySeconds` scaled like every delay.

    `wait` collects how long (in simulated seconds) until the next pod turns available, so a
    reconcile can ask to run again exactly then instead of polling.
    """

    def __init__(self, clock: Any, min_ready_seconds: int | None) -> None:
        self.clock = clock
        self.min_ready = int(min_ready_seconds or 0)
        self.now = clock.now()
        self.wait: float | None = None

    def available(self, pod: dict[str, Any]) -> bool:
        if not is_pod_ready(pod):
            return False
        if self.min_ready <= 0:
            return True
        since = parse_time((pod_condition(pod, "Ready") or {}).get("lastTransitionTime"))
        if since is None:
            return False
        remaining = (since.timestamp() + self.clock.scaled(self.min_ready)) - self.now.timestamp()
        if remaining < 0:
            return True
        simulated = remaining * getattr(self.clock, "speed", 1.0) + 0.05
        self.wait = simulated if self.wait is None else min(self.wait, simulated)
        return False


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent (the apiserver has already validated the value)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        try:
            pct = int(text[:-1])
        except ValueError:
            return 0
        exact = pct * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    try:
        return int(text)
    except ValueError:
        return 0


def later(*delays: float | None) -> float | None:
    """The soonest requeue asked for (simulated seconds), or None when nothing waits on time."""
    real = [d for d in delays if d is not None]
    return max(0.0, min(real)) if real else None


# --------------------------------------------------------------------------------------------
# Owner index and claiming (controller.ControllerRefManager)
# --------------------------------------------------------------------------------------------


class OwnerIndex:
    """Objects of one resource grouped by their controller of one kind, plus the orphans.

    Fed from every store event in `keys_for`, so a reconcile finds "the pods of this DaemonSet"
    without listing the namespace (the scale scenario has 20,000 pods).
    """

    def __init__(self, owner_kind: str) -> None:
        self.owner_kind = owner_kind
        self.owned: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.orphans: dict[str, set[str]] = defaultdict(set)
        self._where: dict[tuple[str, str], tuple[str, str] | None] = {}

    def observe(self, ev: Event) -> list[tuple[str, str]]:
        """Update the index; return the owners (namespace, name) this event concerns."""
        m = meta(ev.obj)
        ns, name = m.get("namespace") or "", m["name"]
        owners: list[tuple[str, str]] = []
        for obj in (ev.old, ev.obj):
            ref = controller_ref(obj)
            if ref is not None and ref.get("kind") == self.owner_kind:
                key = (ns, ref["name"])
                if key not in owners:
                    owners.append(key)
        prev = self._where.pop((ns, name), None)
        if prev is not None:
            self.owned[prev].discard(name)
            if not self.owned[prev]:
                del self.owned[prev]
        self.orphans[ns].discard(name)
        if ev.type != "DELETED":
            ref = controller_ref(ev.obj)
            if ref is None:
                self.orphans[ns].add(name)
                self._where[(ns, name)] = None
            elif ref.get("kind") == self.owner_kind:
                key = (ns, ref["name"])
                self.owned[key].add(name)
                self._where[(ns, name)] = key
        if not self.orphans[ns]:
            del self.orphans[ns]
        return owners

    def names(self, ns: str, owner: str) -> list[str]:
        return sorted(self.owned.get((ns, owner), ()))

    def orphan_names(self, ns: str) -> list[str]:
        return sorted(self.orphans.get(ns, ()))


def claim(
    api: Any,
    rt: ResourceType,
    owner: dict[str, Any],
    owner_kind: str,
    selector: LabelSelector,
    index: OwnerIndex,
) -> list[dict[str, Any]]:
    """ClaimPods / ClaimControllerRevisions / ClaimReplicaSets.

    Owned and matching: kept. Owned but no longer matching: released (our reference removed).
    Orphans that match: adopted, unless the owner or the orphan is being deleted.
    """
    m = meta(owner)
    ns, uid = m.get("namespace") or "", m.get("uid")
    deleting = bool(m.get("deletionTimestamp"))
    out: list[dict[str, Any]] = []
    for name in index.names(ns, m["name"]):
        obj = api.store.get(rt, ns, name)
        if obj is None or not is_controlled_by(obj, owner):
            continue
        if selector.matches(labels_of(obj)):
            out.append(obj)
        elif not deleting and not is_terminating(obj):
            _release(api, rt, obj, uid)
    if deleting:
        return out
    for name in index.orphan_names(ns):
        obj = api.store.get(rt, ns, name)
        if obj is None or controller_ref(obj) is not None or is_terminating(obj):
            continue
        if selector.empty() or not selector.matches(labels_of(obj)):
            continue
        adopted = _adopt(api, rt, obj, new_controller_ref(owner, owner_kind))
        if adopted is not None:
            out.append(adopted)
    return out


def _adopt(api: Any, rt: ResourceType, obj: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any] | None:
    m = meta(obj)
    refs = [r for r in m.get("ownerReferences") or [] if r.get("uid") != ref["uid"]] + [ref]
    try:
        new, _ = api.patch(rt, m.get("namespace"), m["name"], MERGE_PATCH, {"metadata": {"ownerReferences": refs}})
        return new
    except ApiError as e:
        log.info("adopting %s %s failed: %s", rt.kind, m["name"], e.message)
        return None


def _release(api: Any, rt: ResourceType, obj: dict[str, Any], uid: str | None) -> None:
    m = meta(obj)
    refs = [r for r in m.get("ownerReferences") or [] if r.get("uid") != uid]
    try:
        api.patch(rt, m.get("namespace"), m["name"], MERGE_PATCH, {"metadata": {"ownerReferences": refs or None}})
    except ApiError as e:
        log.info("releasing %s %s failed: %s", rt.kind, m["name"], e.message)


def owners_matching(api: Any, owner_rt: ResourceType, obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Owners in the object's namespace whose selector matches it: who might adopt an orphan."""
    ns = meta(obj).get("namespace")
    labels = labels_of(obj)
    if not labels:
        return
    for owner in api.store.list(owner_rt, ns):
        if selector_is_empty(owner) or is_terminating(owner):
            continue
        try:
            if selector_of(owner).matches(labels):
                yield ns, meta(owner)["name"]
        except ApiError:
            continue


# --------------------------------------------------------------------------------------------
# Pods from templates (controller.GetPodFromTemplate / RealPodControl)
# --------------------------------------------------------------------------------------------


def pod_from_template(template: dict[str, Any], owner: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    tmeta = template.get("metadata") or {}
    pmeta: dict[str, Any] = {"generateName": f"{meta(owner)['name']}-", "namespace": meta(owner).get("namespace")}
    if tmeta.get("labels"):
        pmeta["labels"] = dict(tmeta["labels"])
    if tmeta.get("annotations"):
        pmeta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pmeta["finalizers"] = list(tmeta["finalizers"])
    pmeta["ownerReferences"] = [ref]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pmeta, "spec": copy.deepcopy(template.get("spec") or {})}


def create_pod(cluster: Any, owner: dict[str, Any], pod: dict[str, Any], component: str) -> dict[str, Any] | ApiError:
    """RealPodControl.CreatePods: create, then the SuccessfulCreate / FailedCreate event on the owner.

    Returns the created pod, or the error (its text becomes a ReplicaFailure condition).
    """
    try:
        created = cluster.api.create(PODS, meta(owner).get("namespace"), pod)
    except ApiError as e:
        cluster.recorder.record(owner, "Warning", "FailedCreate", f"Error creating: {e.message}", component=component)
        return e
    cluster.recorder.record(owner, "Normal", "SuccessfulCreate", f"Created pod: {meta(created)['name']}", component=component)
    return created


def delete_pod(cluster: Any, owner: dict[str, Any], name: str, component: str) -> bool:
    """RealPodControl.DeletePod: a NotFound is not a failure (someone was faster)."""
    ns = meta(owner).get("namespace")
    try:
        cluster.api.delete(PODS, ns, name)
    except ApiError as e:
        if e.code == 404:
            return True
        cluster.recorder.record(owner, "Warning", "FailedDelete", f"Error deleting: {e.message}", component=component)
        return False
    cluster.recorder.record(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}", component=component)
    return True


def _creation_key(obj: dict[str, Any]) -> tuple[str, str]:
    return (meta(obj).get("creationTimestamp") or "", meta(obj)["name"])


def by_creation(objs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """controller.ReplicaSetsByCreationTimestamp and friends: oldest first, name breaks ties."""
    return sorted(objs, key=_creation_key)


# --------------------------------------------------------------------------------------------
# ReplicaSet controller
# --------------------------------------------------------------------------------------------

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _deletion_rank(pod: dict[str, Any]) -> tuple[Any, ...]:
    """ActivePodsWithRanks: the pod sorting first is the one deleted first.

    Unassigned < assigned; Pending < Unknown < Running; not ready < ready; ready for less time <
    ready for longer; more restarts < fewer; newer < older.
    """
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    ready = is_pod_ready(pod)
    ready_since = (pod_condition(pod, "Ready") or {}).get("lastTransitionTime") or "" if ready else ""
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    created = meta(pod).get("creationTimestamp") or ""
    return (
        1 if spec.get("nodeName") else 0,
        _PHASE_RANK.get(status.get("phase", "Pending"), 0),
        1 if ready else 0,
        _Desc(ready_since),
        -restarts,
        _Desc(created),
        meta(pod)["name"],
    )


class _Desc:
    """Sorts strings in reverse (later timestamps first) inside an ascending tuple sort."""

    __slots__ = ("v",)

    def __init__(self, v: str) -> None:
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return self.v > other.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v


def pods_to_delete(pods: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    return sorted(pods, key=_deletion_rank)[:count]


class ReplicaSetController:
    """pkg/controller/replicaset: keep `spec.replicas` pods, report what they are doing."""

    name = "replicaset"

    def __init__(self, cluster: Any) -> None:
        self.c = cluster
        self.api = cluster.api
        self.pods = OwnerIndex("ReplicaSet")

    def keys_for(self, ev: Event) -> Iterable[tuple[str | None, str]]:
        if ev.rt.key == REPLICASETS.key:
            return [(meta(ev.obj).get("namespace"), meta(ev.obj)["name"])]
        if ev.rt.key == PODS.key:
            owners: list[tuple[str | None, str]] = list(self.pods.observe(ev))
            if ev.type != "DELETED" and controller_ref(ev.obj) is None and not is_terminating(ev.obj):
                old_labels = labels_of(ev.old) if ev.old is not None else None
                if ev.old is None or old_labels != labels_of(ev.obj) or controller_ref(ev.old) is not None:
                    owners.extend(owners_matching(self.api, REPLICASETS, ev.obj))
            return owners
        return ()

    def reconcile(self, namespace: str | None, name: str) -> float | None:
        rs = self.api.store.get(REPLICASETS, namespace, name)
        if rs is None:
            return None
        if selector_is_empty(rs):
            return None  # validation forbids it; the real controller refuses to act on it too
        selector = selector_of(rs)
        pods = claim(self.api, PODS, rs, "ReplicaSet", selector, self.pods)
        active = [p for p in pods if is_active(p)]
        error: str | None = None
        if not is_terminating(rs):
            error = self._manage(rs, active)
        return self._update_status(rs, active, error)

    def _manage(self, rs: dict[str, Any], active: list[dict[str, Any]]) -> str | None:
        """manageReplicas: returns the error text of a failed create/delete, for ReplicaFailure."""
        want = int((rs.get("spec") or {}).get("replicas", 1))
        diff = len(active) - want
        if diff < 0:
            template = (rs.get("spec") or {}).get("template") or {}
            for _ in range(min(-diff, BURST_REPLICAS)):
                pod = pod_from_template(template, rs, new_controller_ref(rs, "ReplicaSet"))
                created = create_pod(self.c, rs, pod, RS_COMPONENT)
                if isinstance(created, ApiError):
                    return created.message
        elif diff > 0:
            for pod in pods_to_delete(active, min(diff, BURST_REPLICAS)):
                if not delete_pod(self.c, rs, meta(pod)["name"], RS_COMPONENT):
                    return f"could not delete pod {meta(pod)['name']}"
        return None

    def _update_status(self, rs: dict[str, Any], active: list[dict[str, Any]], error: str | None) -> float | None:
        spec = rs.get("spec") or {}
        avail = Availability(self.c.clock, spec.get("minReadySeconds"))
        template_sel = selector_from_set(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})
        fully = ready = available = 0
        for pod in active:
            if template_sel.matches(labels_of(pod)):
                fully += 1
            if is_pod_ready(pod):
                ready += 1
                if avail.available(pod):
                    available += 1
        old = rs.get("status") or {}
        conditions = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        failure = next((c for c in old.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
        if error and failure is None:
            want = int(spec.get("replicas", 1))
            reason = "FailedCreate" if len(active) < want else "FailedDelete"
            failure = {"type": "ReplicaFailure", "status": "True", "lastTransitionTime": self.api.now(), "reason": reason, "message": error}
        elif not error:
            failure = None
        if failure is not None:
            conditions.append(failure)
        status: dict[str, Any] = {"replicas": len(active)}
        if fully:
            status["fullyLabeledReplicas"] = fully
        if ready:
            status["readyReplicas"] = ready
        if available:
            status["availableReplicas"] = available
        status["observedGeneration"] = int(meta(rs).get("generation", 1))
        if conditions:
            status["conditions"] = conditions
        self.api.write_status(REPLICASETS, rs, status)
        want = int(spec.get("replicas", 1))
        if error:
            return later(1.0)
        if avail.min_ready > 0 and ready == want and available != want:
            return later(avail.wait if avail.wait is not None else float(avail.min_ready))
        return None


def controllers(cluster: Any) -> list[Any]:
    return [ReplicaSetController(cluster)]


__all__ = [
    "Availability",
    "OwnerIndex",
    "ReplicaSetController",
    "canonical_template",
    "claim",
    "compute_hash",
    "controller_ref",
    "go_template",
    "int_or_percent",
    "is_pod_ready",
    "new_controller_ref",
    "template_patch",
]
