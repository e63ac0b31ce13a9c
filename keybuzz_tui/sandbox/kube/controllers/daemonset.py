"""The DaemonSet controller, after kubernetes `pkg/controller/daemon` (daemon_controller.go, update.go).

One pass of `reconcile` is `syncDaemonSet`: build the revision history (ControllerRevisions whose
`data` is the `{"spec":{"template":{..., "$patch":"replace"}}}` patch kubectl rolls back with),
`manage` (one pod per eligible node, pinned with a `metadata.name` matchFields affinity and left for
the scheduler to bind; pods on nodes that may no longer run them deleted), `rollingUpdate`, history
cleanup, then status. The status counters are the ones `kubectl rollout status`, Helm and k9s read,
computed node by node from the oldest pod exactly as `updateDaemonSetStatus` does, which is why a
pod stuck Pending on a port conflict leaves "4 of 5 updated pods are available" forever.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import ApiError
from ..registry import apps
from ..store import Event
from .replicaset import (
    CONTROLLER_REVISIONS,
    NODES,
    PODS,
    Availability,
    OwnerIndex,
    canonical_template,
    claim,
    compute_hash,
    controller_ref,
    create_pod,
    delete_pod,
    int_or_percent,
    is_pod_ready,
    is_terminal,
    is_terminating,
    labels_of,
    later,
    meta,
    new_controller_ref,
    owners_matching,
    patch_template,
    pod_from_template,
    selector_is_empty,
    selector_of,
    template_patch,
)
from .scheduler import node_matches, tolerates

DAEMONSETS = apps("daemonsets")
COMPONENT = "daemonset-controller"
HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"

# util.AddOrUpdateDaemonPodTolerations: what every DaemonSet pod tolerates without asking
_AUTO_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}

# failedPodsBackoff = flowcontrol.NewBackOff(1s, 15m)
_BACKOFF_INITIAL = 1.0
_BACKOFF_MAX = 900.0


# --------------------------------------------------------------------------------------------
# Spec reading
# --------------------------------------------------------------------------------------------


def strategy(ds: dict[str, Any]) -> dict[str, Any]:
    """spec.updateStrategy with the apps/v1 defaults (RollingUpdate, maxUnavailable 1, maxSurge 0)."""
    s = copy.deepcopy((ds.get("spec") or {}).get("updateStrategy") or {})
    s.setdefault("type", "RollingUpdate")
    if s["type"] == "RollingUpdate":
        ru = s.setdefault("rollingUpdate", {}) or {}
        s["rollingUpdate"] = ru
        ru.setdefault("maxUnavailable", 1)
        ru.setdefault("maxSurge", 0)
    return s


def history_limit(ds: dict[str, Any]) -> int:
    limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
    return 10 if limit is None else int(limit)


def template_generation(ds: dict[str, Any]) -> int | None:
    """util.GetTemplateGeneration: the deprecated annotation the apiserver keeps on every DaemonSet.

    Without it (an apiserver that does not maintain it) metadata.generation stands in: it moves
    whenever the template moves, and IsPodUpdated ORs this test with the hash, so a generation
    bumped by a non-template change can never make an old pod look updated.
    """
    value = (meta(ds).get("annotations") or {}).get(GENERATION_ANNOTATION)
    if value is None:
        gen = meta(ds).get("generation")
        return int(gen) if gen is not None else None
    try:
        return int(value)
    except ValueError:
        return None


def surge_count(ds: dict[str, Any], desired: int) -> int:
    s = strategy(ds)
    if s["type"] != "RollingUpdate":
        return 0
    return int_or_percent((s.get("rollingUpdate") or {}).get("maxSurge"), desired, True)


def unavailable_count(ds: dict[str, Any], desired: int) -> int:
    s = strategy(ds)
    if s["type"] != "RollingUpdate":
        return 0
    return int_or_percent((s.get("rollingUpdate") or {}).get("maxUnavailable"), desired, True)


def allows_surge(ds: dict[str, Any]) -> bool:
    return surge_count(ds, 1) != 0


def daemon_tolerations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The template's tolerations plus the automatic ones, as AddOrUpdateDaemonPodTolerations adds them."""
    tols = [dict(t) for t in spec.get("tolerations") or []]
    wanted = list(_AUTO_TOLERATIONS) + ([_NETWORK_TOLERATION] if spec.get("hostNetwork") else [])
    for auto in wanted:
        tols = _add_or_update_toleration(tols, auto)
    return tols


def _add_or_update_toleration(tols: list[dict[str, Any]], tol: dict[str, Any]) -> list[dict[str, Any]]:
    """v1helper.AddOrUpdateTolerationInPodSpec: same key/operator/value/effect is replaced in place."""
    out: list[dict[str, Any]] = []
    updated = False
    for t in tols:
        if all((t.get(k) or "") == (tol.get(k) or "") for k in ("key", "operator", "value", "effect")):
            if t == tol:
                return tols
            out.append(dict(tol))
            updated = True
            continue
        out.append(t)
    if not updated:
        out.append(dict(tol))
    return out


def node_should_run(ds: dict[str, Any], node: dict[str, Any]) -> tuple[bool, bool]:
    """NodeShouldRunDaemonPod: (shouldRun, shouldContinueRunning). Ports are never considered.

    Node name, nodeSelector and required node affinity must match; then every NoSchedule and
    NoExecute taint must be tolerated to run, and every NoExecute one to keep running.
    """
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    nname = meta(node)["name"]
    if spec.get("nodeName") and spec["nodeName"] != nname:
        return False, False
    if not node_matches(spec, node):
        return False, False
    tols = daemon_tolerations(spec)
    taints = (node.get("spec") or {}).get("taints") or []
    untolerated = [t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tols, t)]
    if not untolerated:
        return True, True
    return False, not any(t.get("effect") == "NoExecute" for t in untolerated)


def target_node(pod: dict[str, Any]) -> str | None:
    """util.GetTargetNodeName: spec.nodeName, else the node the matchFields affinity pins."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    terms = (
        (((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or {})
        .get("nodeSelectorTerms")
        or []
    )
    for term in terms:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return f["values"][0]
    return None


def pin_to_node(affinity: dict[str, Any] | None, node: str) -> dict[str, Any]:
    """util.ReplaceDaemonSetPodNodeNameNodeAffinity: the required terms become one matchFields term."""
    aff = copy.deepcopy(affinity or {})
    na = aff.setdefault("nodeAffinity", {})
    req = na.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    req["nodeSelectorTerms"] = [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
    return aff


def is_pod_updated(pod: dict[str, Any], hash_: str, generation: int | None) -> bool:
    """util.IsPodUpdated: the revision hash matches, or (legacy) the template generation does."""
    labels = labels_of(pod)
    if generation is not None and labels.get(GENERATION_LABEL) == str(generation):
        return True
    return bool(hash_) and labels.get(HASH_LABEL) == hash_


def _oldest_first(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """podByCreationTimestampAndPhase: scheduled pods first, then by creation time, then name."""
    return sorted(pods, key=lambda p: (0 if (p.get("spec") or {}).get("nodeName") else 1, meta(p).get("creationTimestamp") or "", meta(p)["name"]))


# --------------------------------------------------------------------------------------------
# Controller
# --------------------------------------------------------------------------------------------


class DaemonSetController:
    name = "daemonset"

    def __init__(self, cluster: Any) -> None:
        self.c = cluster
        self.api = cluster.api
        self.store = cluster.store
        self.pods = OwnerIndex("DaemonSet")
        self.revisions = OwnerIndex("DaemonSet")
        # (ds uid, node) -> (loop-independent wall time of next allowed delete, current delay)
        self._backoff: dict[str, tuple[float, float]] = {}
        # eligibility cache: ds key -> (template spec object, {node: (labels obj, spec obj, result)})
        self._eligible: dict[tuple[str, str], tuple[Any, dict[str, tuple[Any, Any, tuple[bool, bool]]]]] = {}

    # --- events ------------------------------------------------------------------------------

    def keys_for(self, ev: Event) -> list[tuple[str | None, str]]:
        key = ev.rt.key
        if key == DAEMONSETS.key:
            return [(meta(ev.obj).get("namespace"), meta(ev.obj)["name"])]
        if key == PODS.key:
            owners: list[tuple[str | None, str]] = list(self.pods.observe(ev))
            if ev.type != "DELETED" and controller_ref(ev.obj) is None and not is_terminating(ev.obj):
                if ev.old is None or labels_of(ev.old) != labels_of(ev.obj) or controller_ref(ev.old) is not None:
                    owners.extend(owners_matching(self.api, DAEMONSETS, ev.obj))
            return owners
        if key == CONTROLLER_REVISIONS.key:
            return list(self.revisions.observe(ev))
        if key == NODES.key:
            return self._keys_for_node(ev)
        return []

    def _keys_for_node(self, ev: Event) -> list[tuple[str | None, str]]:
        """addNode / updateNode / deleteNode: only label or taint changes can change eligibility."""
        if ev.type == "MODIFIED" and ev.old is not None:
            if labels_of(ev.old) == labels_of(ev.obj) and (ev.old.get("spec") or {}).get("taints") == (ev.obj.get("spec") or {}).get("taints"):
                return []
        return [(meta(ds).get("namespace"), meta(ds)["name"]) for ds in self.store.list(DAEMONSETS)]

    # --- sync --------------------------------------------------------------------------------

    def reconcile(self, namespace: str | None, name: str) -> float | None:
        ds = self.store.get(DAEMONSETS, namespace, name)
        if ds is None:
            self._eligible.pop((namespace or "", name), None)
            return None
        if selector_is_empty(ds):
            self.c.recorder.record(ds, "Warning", "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.", component=COMPONENT)
            return None
        if is_terminating(ds):
            return None  # the GC owns it now; status of a dying DaemonSet is not computed
        nodes = sorted(self.store.list(NODES), key=lambda n: meta(n)["name"])
        cur, old = self._construct_history(ds)
        if cur is None:
            return later(0.05)  # a hash collision bumped collisionCount: try again
        hash_ = labels_of(cur).get(HASH_LABEL, "")
        ds = self.store.get(DAEMONSETS, namespace, name) or ds
        delays: list[float | None] = [self._manage(ds, nodes, hash_)]
        if strategy(ds)["type"] == "RollingUpdate":
            delays.append(self._rolling_update(ds, nodes, hash_))
        self._cleanup_history(ds, old)
        delays.append(self._update_status(ds, nodes, hash_))
        return later(*delays)

    def should_run(self, ds: dict[str, Any], node: dict[str, Any]) -> tuple[bool, bool]:
        """node_should_run, cached while neither the template nor the node's labels/taints change."""
        dkey = (meta(ds).get("namespace") or "", meta(ds)["name"])
        tspec = (ds.get("spec") or {}).get("template")
        cached = self._eligible.get(dkey)
        if cached is None or cached[0] is not tspec:
            cached = (tspec, {})
            self._eligible[dkey] = cached
        nname = meta(node)["name"]
        labels, nspec = meta(node).get("labels"), node.get("spec")
        hit = cached[1].get(nname)
        if hit is not None and hit[0] is labels and hit[1] is nspec:
            return hit[2]
        result = node_should_run(ds, node)
        cached[1][nname] = (labels, nspec, result)
        return result

    def _node_to_pods(self, ds: dict[str, Any], include_deleted_terminal: bool = False) -> dict[str, list[dict[str, Any]]]:
        """getNodesToDaemonPods: claimed pods grouped by the node they run on or are pinned to."""
        out: dict[str, list[dict[str, Any]]] = {}
        for pod in claim(self.api, PODS, ds, "DaemonSet", selector_of(ds), self.pods):
            if not include_deleted_terminal and is_terminal(pod) and is_terminating(pod):
                continue
            node = target_node(pod)
            if node is None:
                continue
            out.setdefault(node, []).append(pod)
        return out

    # --- manage ------------------------------------------------------------------------------

    def _manage(self, ds: dict[str, Any], nodes: list[dict[str, Any]], hash_: str) -> float | None:
        node_pods = self._node_to_pods(ds)
        create: list[str] = []
        delete: list[str] = []
        waits: list[float | None] = []
        for node in nodes:
            c, d, w = self._pods_should_be_on_node(ds, node, node_pods, hash_)
            create += c
            delete += d
            waits.append(w)
        names = {meta(n)["name"] for n in nodes}
        for nname, pods in node_pods.items():
            if nname not in names:
                # pinned to a node that no longer exists: the scheduler will never bind them
                delete += [meta(p)["name"] for p in pods if not (p.get("spec") or {}).get("nodeName")]
        self._sync_nodes(ds, delete, create, hash_)
        return later(*waits)

    def _pods_should_be_on_node(
        self, ds: dict[str, Any], node: dict[str, Any], node_pods: dict[str, list[dict[str, Any]]], hash_: str
    ) -> tuple[list[str], list[str], float | None]:
        should_run, should_continue = self.should_run(ds, node)
        nname = meta(node)["name"]
        pods = node_pods.get(nname)
        create: list[str] = []
        delete: list[str] = []
        wait: float | None = None
        if should_run and pods is None:
            return [nname], [], None
        if should_continue:
            running: list[dict[str, Any]] = []
            for pod in pods or []:
                if is_terminating(pod):
                    continue
                phase = (pod.get("status") or {}).get("phase")
                if phase == "Failed":
                    wait_left = self._failed_pod(ds, pod, nname)
                    if wait_left is not None:
                        wait = wait_left
                        continue
                    delete.append(meta(pod)["name"])
                elif phase == "Succeeded":
                    msg = f"Found succeeded daemon pod {meta(pod).get('namespace')}/{meta(pod)['name']} on node {nname}, will try to delete it"
                    self.c.recorder.record(ds, "Normal", "SucceededDaemonPod", msg, component=COMPONENT)
                    delete.append(meta(pod)["name"])
                else:
                    running.append(pod)
            if not allows_surge(ds):
                delete += [meta(p)["name"] for p in _oldest_first(running)[1:]]
                return create, delete, wait
            if len(running) <= 1:
                if not running and should_run:
                    create.append(nname)
                return create, delete, wait
            delete += self._surge_excess(ds, running, hash_)
            return create, delete, wait
        if pods:
            delete += [meta(p)["name"] for p in pods if not is_terminating(p)]
        return create, delete, wait

    def _surge_excess(self, ds: dict[str, Any], running: list[dict[str, Any]], hash_: str) -> list[str]:
        """With surge, keep the oldest new pod and the oldest old one until the new one is available."""
        delete: list[str] = []
        oldest_new = oldest_old = None
        for pod in _oldest_first(running):
            if labels_of(pod).get(HASH_LABEL) == hash_:
                if oldest_new is None:
                    oldest_new = pod
                    continue
            elif oldest_old is None:
                oldest_old = pod
                continue
            delete.append(meta(pod)["name"])
        if oldest_new is not None and oldest_old is not None:
            avail = Availability(self.c.clock, (ds.get("spec") or {}).get("minReadySeconds"))
            if not is_pod_ready(oldest_old) or avail.available(oldest_new):
                delete.append(meta(oldest_old)["name"])
        return delete

    def _failed_pod(self, ds: dict[str, Any], pod: dict[str, Any], node: str) -> float | None:
        """A Failed daemon pod is killed and recreated, with a per-node backoff; returns the wait left."""
        key = f"{meta(ds).get('uid')}/{(ds.get('status') or {}).get('observedGeneration', 0)}/{node}"
        now = self.c.clock.now().timestamp()
        until, delay = self._backoff.get(key, (0.0, 0.0))
        if now < until:
            return (until - now) * getattr(self.c.clock, "speed", 1.0)
        delay = _BACKOFF_INITIAL if delay == 0 else min(_BACKOFF_MAX, delay * 2)
        self._backoff[key] = (now + self.c.clock.scaled(delay), delay)
        msg = f"Found failed daemon pod {meta(pod).get('namespace')}/{meta(pod)['name']} on node {node}, will try to kill it"
        self.c.recorder.record(ds, "Warning", "FailedDaemonPod", msg, component=COMPONENT)
        return None

    def _sync_nodes(self, ds: dict[str, Any], delete: list[str], create: list[str], hash_: str) -> None:
        """syncNodes: create pinned pods from the template (plus tolerations and labels), delete the rest."""
        if create:
            template = self._pod_template(ds, hash_)
            for nname in create:
                t = copy.deepcopy(template)
                t["spec"]["affinity"] = pin_to_node(t["spec"].get("affinity"), nname)
                pod = pod_from_template(t, ds, new_controller_ref(ds, "DaemonSet"))
                if isinstance(create_pod(self.c, ds, pod, COMPONENT), ApiError):
                    break  # slow start: the rest would fail the same way
        for name in dict.fromkeys(delete):
            delete_pod(self.c, ds, name, COMPONENT)

    def _pod_template(self, ds: dict[str, Any], hash_: str) -> dict[str, Any]:
        """util.CreatePodTemplate: automatic tolerations, pod-template-generation and the hash label."""
        template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
        template.setdefault("metadata", {})
        template["metadata"].pop("creationTimestamp", None)
        spec = template.setdefault("spec", {})
        spec["tolerations"] = daemon_tolerations(spec)
        labels = dict(template["metadata"].get("labels") or {})
        generation = template_generation(ds)
        if generation is not None:
            labels[GENERATION_LABEL] = str(generation)
        if hash_:
            labels[HASH_LABEL] = hash_
        template["metadata"]["labels"] = labels
        return template

    # --- rolling update ----------------------------------------------------------------------

    def _rolling_update(self, ds: dict[str, Any], nodes: list[dict[str, Any]], hash_: str) -> float | None:
        node_pods = self._node_to_pods(ds)
        desired = 0
        for node in nodes:
            if self.should_run(ds, node)[0]:
                desired += 1
                node_pods.setdefault(meta(node)["name"], [])
        max_surge = surge_count(ds, desired)
        max_unavailable = unavailable_count(ds, desired)
        if desired > 0 and max_unavailable == 0 and max_surge == 0:
            max_unavailable = 1
        avail = Availability(self.c.clock, (ds.get("spec") or {}).get("minReadySeconds"))
        generation = template_generation(ds)
        if max_surge == 0:
            delete = self._roll_without_surge(ds, node_pods, hash_, generation, avail, max_unavailable)
            self._sync_nodes(ds, delete, [], hash_)
        else:
            delete, create = self._roll_with_surge(ds, node_pods, hash_, generation, avail, max_surge, desired)
            self._sync_nodes(ds, delete, create, hash_)
        return avail.wait

    def _roll_without_surge(
        self, ds: dict[str, Any], node_pods: dict[str, list[dict[str, Any]]], hash_: str, generation: int | None,
        avail: Availability, max_unavailable: int,
    ) -> list[str]:
        """Delete old pods on at most maxUnavailable nodes, counting nodes already unavailable."""
        unavailable = 0
        replace: list[str] = []
        candidates: list[str] = []
        for nname in sorted(node_pods):
            found = _updated_pods_on_node(node_pods[nname], hash_, generation)
            if found is None:
                unavailable += 1  # excess pods: the manage loop prunes them first
                continue
            new, old = found
            if (old is None and new is None) or (old is not None and new is not None):
                unavailable += 1
            elif new is not None:
                if not avail.available(new):
                    unavailable += 1
            elif not avail.available(old):  # type: ignore[arg-type]
                replace.append(meta(old)["name"])  # type: ignore[index]
                unavailable += 1
            elif unavailable < max_unavailable:
                candidates.append(meta(old)["name"])  # type: ignore[index]
        remaining = max(0, min(max_unavailable - unavailable, len(candidates)))
        return replace + candidates[:remaining]

    def _roll_with_surge(
        self, ds: dict[str, Any], node_pods: dict[str, list[dict[str, Any]]], hash_: str, generation: int | None,
        avail: Availability, max_surge: int, desired: int,
    ) -> tuple[list[str], list[str]]:
        """Surge: start new pods next to old ones (maxSurge at a time), delete old ones once replaced."""
        delete: list[str] = []
        should_not_run: list[str] = []
        allowed_new: list[str] = []
        candidate_new: list[str] = []
        surge = available = 0
        nodes = {meta(n)["name"]: n for n in self.store.list(NODES)}
        for nname in sorted(node_pods):
            found = _updated_pods_on_node(node_pods[nname], hash_, generation)
            if found is None:
                surge += 1
                continue
            new, old = found
            if old is not None and avail.available(old) or old is None and new is not None and avail.available(new):
                available += 1
            if old is None:
                continue
            node = nodes.get(nname)
            runs = node is not None and self.should_run(ds, node)[0]
            if new is None:
                if not avail.available(old):
                    if not runs:
                        delete.append(meta(old)["name"])
                        continue
                    allowed_new.append(nname)
                elif not runs:
                    should_not_run.append(meta(old)["name"])
                elif surge < max_surge:
                    candidate_new.append(nname)
            elif not avail.available(new):
                surge += 1
            else:
                delete.append(meta(old)["name"])
        deletable = available - desired
        if deletable > 0:
            delete += should_not_run[: min(deletable, len(should_not_run))]
        remaining = max(0, min(max_surge - surge, len(candidate_new)))
        return delete, allowed_new + candidate_new[:remaining]

    # --- history -----------------------------------------------------------------------------

    def _controlled_histories(self, ds: dict[str, Any]) -> list[dict[str, Any]]:
        return claim(self.api, CONTROLLER_REVISIONS, ds, "DaemonSet", selector_of(ds), self.revisions)

    def _construct_history(self, ds: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """constructHistory: find (or create) the revision of the current template, renumber it last."""
        want = canonical_template((ds.get("spec") or {}).get("template"))
        current: list[dict[str, Any]] = []
        old: list[dict[str, Any]] = []
        for h in self._controlled_histories(ds):
            if canonical_template(patch_template(h.get("data"))) == want:
                current.append(h)
            else:
                old.append(h)
        next_revision = max((int(h.get("revision") or 0) for h in old), default=0) + 1
        if not current:
            return self._snapshot(ds, next_revision), old
        cur = self._dedup(ds, current)
        if int(cur.get("revision") or 0) < next_revision:
            new = copy.deepcopy(cur)
            new["revision"] = next_revision
            try:
                cur = self.api.update(CONTROLLER_REVISIONS, meta(cur).get("namespace"), meta(cur)["name"], new)
            except ApiError:
                return None, old
        return cur, old

    def _dedup(self, ds: dict[str, Any], current: list[dict[str, Any]]) -> dict[str, Any]:
        """dedupCurHistories: keep the highest revision, relabel pods to its hash, drop the others."""
        keep = max(current, key=lambda h: int(h.get("revision") or 0))
        if len(current) == 1:
            return keep
        keep_hash = labels_of(keep).get(HASH_LABEL)
        for pods in self._node_to_pods(ds, True).values():
            for pod in pods:
                if labels_of(pod).get(HASH_LABEL) != keep_hash:
                    labels = dict(labels_of(pod))
                    labels[HASH_LABEL] = keep_hash
                    new = copy.deepcopy(pod)
                    new["metadata"]["labels"] = labels
                    self.api.write(PODS, new)
        for h in current:
            if h is not keep:
                self._delete_revision(h)
        return keep

    def _snapshot(self, ds: dict[str, Any], revision: int) -> dict[str, Any] | None:
        """snapshot: create `<ds>-<hash>`; a same-named revision with other data is a hash collision."""
        m = meta(ds)
        status = ds.get("status") or {}
        collision = status.get("collisionCount")
        template = (ds.get("spec") or {}).get("template") or {}
        hash_ = compute_hash(template, collision)
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels[HASH_LABEL] = hash_
        cmeta: dict[str, Any] = {"name": f"{m['name']}-{hash_}", "namespace": m.get("namespace"), "labels": labels}
        if m.get("annotations"):
            cmeta["annotations"] = dict(m["annotations"])
        cmeta["ownerReferences"] = [new_controller_ref(ds, "DaemonSet")]
        body = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": cmeta, "data": template_patch(template), "revision": revision}
        try:
            return self.api.create(CONTROLLER_REVISIONS, m.get("namespace"), body)
        except ApiError as e:
            if e.code != 409:
                return None
        existing = self.store.get(CONTROLLER_REVISIONS, m.get("namespace"), cmeta["name"])
        if existing is not None and canonical_template(patch_template(existing.get("data"))) == canonical_template(template):
            return existing
        new_status = copy.deepcopy(status)
        new_status["collisionCount"] = int(collision or 0) + 1
        self.api.write_status(DAEMONSETS, ds, new_status)
        return None

    def _cleanup_history(self, ds: dict[str, Any], old: list[dict[str, Any]]) -> None:
        """cleanupHistory: beyond revisionHistoryLimit, delete the oldest revisions no pod still uses."""
        to_kill = len(old) - history_limit(ds)
        if to_kill <= 0:
            return
        live = {labels_of(p).get(HASH_LABEL) for pods in self._node_to_pods(ds, True).values() for p in pods}
        for h in sorted(old, key=lambda h: int(h.get("revision") or 0)):
            if to_kill <= 0:
                break
            if labels_of(h).get(HASH_LABEL) in live:
                continue
            self._delete_revision(h)
            to_kill -= 1

    def _delete_revision(self, h: dict[str, Any]) -> None:
        try:
            self.api.delete(CONTROLLER_REVISIONS, meta(h).get("namespace"), meta(h)["name"])
        except ApiError:
            pass

    # --- status ------------------------------------------------------------------------------

    def _update_status(self, ds: dict[str, Any], nodes: list[dict[str, Any]], hash_: str) -> float | None:
        """updateDaemonSetStatus + storeDaemonSetStatus; returns the wait for minReadySeconds."""
        node_pods = self._node_to_pods(ds)
        avail = Availability(self.c.clock, (ds.get("spec") or {}).get("minReadySeconds"))
        generation = template_generation(ds)
        desired = current = misscheduled = ready = updated = available = 0
        for node in nodes:
            should_run, _ = self.should_run(ds, node)
            pods = node_pods.get(meta(node)["name"]) or []
            if not should_run:
                if pods:
                    misscheduled += 1
                continue
            desired += 1
            if not pods:
                continue
            current += 1
            pod = _oldest_first(pods)[0]
            if is_pod_ready(pod):
                ready += 1
                if avail.available(pod):
                    available += 1
            if is_pod_updated(pod, hash_, generation):
                updated += 1
        ds = self.store.get(DAEMONSETS, meta(ds).get("namespace"), meta(ds)["name"]) or ds
        old = ds.get("status") or {}
        gen = int(meta(ds).get("generation", 1))
        status: dict[str, Any] = {
            "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled,
            "desiredNumberScheduled": desired,
            "numberReady": ready,
        }
        status["observedGeneration"] = gen
        for key, value in (("updatedNumberScheduled", updated), ("numberAvailable", available), ("numberUnavailable", desired - available)):
            if value:
                status[key] = value
        for key in ("collisionCount", "conditions"):
            if old.get(key) is not None:
                status[key] = old[key]
        self.api.write_status(DAEMONSETS, ds, status)
        if avail.min_ready > 0 and ready != available:
            return avail.wait if avail.wait is not None else float(avail.min_ready)
        return None


def _updated_pods_on_node(
    pods: list[dict[str, Any]], hash_: str, generation: int | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None] | None:
    """findUpdatedPodsOnNode: (new, old) among the non-deleted pods, or None when either repeats."""
    new = old = None
    for pod in pods:
        if is_terminating(pod):
            continue
        if is_pod_updated(pod, hash_, generation):
            if new is not None:
                return None
            new = pod
        else:
            if old is not None:
                return None
            old = pod
    return new, old


def controllers(cluster: Any) -> list[Any]:
    return [DaemonSetController(cluster)]


__all__ = [
    "DaemonSetController",
    "daemon_tolerations",
    "node_should_run",
    "target_node",
]
