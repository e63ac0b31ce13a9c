"""The StatefulSet controller, after kubernetes `pkg/controller/statefulset` (stateful_set_control.go).

Pods are `<set>-0 .. <set>-N-1`, each with its stable identity (hostname, subdomain, the
`statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index` labels) and the name of
the ControllerRevision it was made from in `controller-revision-hash`. With the default
OrderedReady policy one pod at a time is created (in order) or removed (in reverse order), each
waiting for the previous to be Running and Ready; a RollingUpdate replaces pods from the highest
ordinal down. The status counters and revisions are what `kubectl get sts` and
`kubectl rollout status sts` read, and what the wizard's port scan looks through.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ..errors import ApiError
from ..registry import apps
from ..store import Event
from .replicaset import (
    CONTROLLER_REVISIONS,
    PODS,
    Availability,
    OwnerIndex,
    canonical_template,
    claim,
    controller_ref,
    is_running_and_ready,
    is_terminating,
    labels_of,
    later,
    meta,
    new_controller_ref,
    owners_matching,
    patch_template,
    pod_from_template,
    revision_hash,
    selector_is_empty,
    selector_of,
    template_patch,
)

STATEFULSETS = apps("statefulsets")
COMPONENT = "statefulset-controller"
REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


def replicas(sts: dict[str, Any]) -> int:
    value = (sts.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def strategy(sts: dict[str, Any]) -> dict[str, Any]:
    s = copy.deepcopy((sts.get("spec") or {}).get("updateStrategy") or {})
    s.setdefault("type", "RollingUpdate")
    if s["type"] == "RollingUpdate":
        ru = s.get("rollingUpdate") or {}
        ru.setdefault("partition", 0)
        s["rollingUpdate"] = ru
    return s


def ordinal(sts: dict[str, Any], pod: dict[str, Any]) -> int | None:
    """getParentNameAndOrdinal: `<set>-<n>`; anything else is not one of the set's identities."""
    m = _ORDINAL.match(meta(pod)["name"])
    if m is None or m.group(1) != meta(sts)["name"]:
        return None
    return int(m.group(2))


def pod_revision(pod: dict[str, Any]) -> str:
    return labels_of(pod).get(REVISION_LABEL, "")


def is_created(pod: dict[str, Any] | None) -> bool:
    return pod is not None and bool((pod.get("status") or {}).get("phase"))


def is_healthy(pod: dict[str, Any]) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def is_finished(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


class StatefulSetController:
    name = "statefulset"

    def __init__(self, cluster: Any) -> None:
        self.c = cluster
        self.api = cluster.api
        self.store = cluster.store
        self.pods = OwnerIndex("StatefulSet")
        self.revisions = OwnerIndex("StatefulSet")

    def keys_for(self, ev: Event) -> list[tuple[str | None, str]]:
        key = ev.rt.key
        if key == STATEFULSETS.key:
            return [(meta(ev.obj).get("namespace"), meta(ev.obj)["name"])]
        if key == PODS.key:
            owners: list[tuple[str | None, str]] = list(self.pods.observe(ev))
            if ev.type != "DELETED" and controller_ref(ev.obj) is None and not is_terminating(ev.obj):
                if ev.old is None or labels_of(ev.old) != labels_of(ev.obj) or controller_ref(ev.old) is not None:
                    owners.extend(owners_matching(self.api, STATEFULSETS, ev.obj))
            return owners
        if key == CONTROLLER_REVISIONS.key:
            return list(self.revisions.observe(ev))
        return []

    # --- sync --------------------------------------------------------------------------------

    def reconcile(self, namespace: str | None, name: str) -> float | None:
        sts = self.store.get(STATEFULSETS, namespace, name)
        if sts is None:
            return None
        if selector_is_empty(sts):
            self.c.recorder.record(sts, "Warning", "SelectingAll", "This statefulset is selecting all pods. A non-empty selector is required.", component=COMPONENT)
            return None
        selector = selector_of(sts)
        revisions = sorted(
            claim(self.api, CONTROLLER_REVISIONS, sts, "StatefulSet", selector, self.revisions),
            key=lambda r: (int(r.get("revision") or 0), meta(r)["name"]),
        )
        current, update, collision = self._revisions(sts, revisions)
        if update is None:
            return later(0.05)
        pods = claim(self.api, PODS, sts, "StatefulSet", selector, self.pods)
        wait = None
        if not is_terminating(sts):
            wait = self._update_pods(sts, current, update, pods)
            pods = claim(self.api, PODS, sts, "StatefulSet", selector, self.pods)
        status_wait = self._update_status(sts, current, update, collision, pods)
        self._truncate_history(sts, pods, current, update)
        return later(wait, status_wait)

    # --- revisions ---------------------------------------------------------------------------

    def _revisions(
        self, sts: dict[str, Any], revisions: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, Any] | None, int]:
        """getStatefulSetRevisions: the update revision is the template's; current comes from status."""
        status = sts.get("status") or {}
        collision = int(status.get("collisionCount") or 0)
        want = canonical_template((sts.get("spec") or {}).get("template"))
        next_rev = (int(revisions[-1].get("revision") or 0) + 1) if revisions else 1
        equal = [r for r in revisions if canonical_template(patch_template(r.get("data"))) == want]
        update: dict[str, Any] | None
        if equal and revisions and meta(equal[-1])["name"] == meta(revisions[-1])["name"]:
            update = revisions[-1]
        elif equal:
            new = copy.deepcopy(equal[-1])
            new["revision"] = next_rev
            try:
                update = self.api.update(CONTROLLER_REVISIONS, meta(new).get("namespace"), meta(new)["name"], new)
            except ApiError:
                update = None
        else:
            update, collision = self._create_revision(sts, next_rev, collision)
        current = next((r for r in revisions if meta(r)["name"] == status.get("currentRevision")), None)
        if current is None:
            current = update
        return current or {}, update, collision

    def _create_revision(self, sts: dict[str, Any], revision: int, collision: int) -> tuple[dict[str, Any] | None, int]:
        """newRevision + CreateControllerRevision: on a same-named revision with other data, probe on."""
        m = meta(sts)
        template = (sts.get("spec") or {}).get("template") or {}
        data = template_patch(template)
        for _ in range(16):
            hash_ = revision_hash(data, collision)
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            labels[REVISION_LABEL] = hash_
            cmeta: dict[str, Any] = {"name": f"{m['name'][:223]}-{hash_}", "namespace": m.get("namespace"), "labels": labels}
            if m.get("annotations"):
                cmeta["annotations"] = dict(m["annotations"])
            cmeta["ownerReferences"] = [new_controller_ref(sts, "StatefulSet")]
            body = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": cmeta, "data": data, "revision": revision}
            try:
                return self.api.create(CONTROLLER_REVISIONS, m.get("namespace"), body), collision
            except ApiError as e:
                if e.code != 409:
                    return None, collision
            existing = self.store.get(CONTROLLER_REVISIONS, m.get("namespace"), cmeta["name"])
            if existing is not None and existing.get("data") == data:
                return existing, collision
            collision += 1
        return None, collision

    def _truncate_history(self, sts: dict[str, Any], pods: list[dict[str, Any]], current: dict[str, Any], update: dict[str, Any]) -> None:
        live = {meta(current).get("name"), meta(update).get("name")} | {pod_revision(p) for p in pods}
        revisions = sorted(
            (r for r in self.revisions.names(meta(sts).get("namespace") or "", meta(sts)["name"])),
        )
        objs = [self.store.get(CONTROLLER_REVISIONS, meta(sts).get("namespace"), n) for n in revisions]
        history = sorted(
            (r for r in objs if r is not None and meta(r)["name"] not in live),
            key=lambda r: int(r.get("revision") or 0),
        )
        limit = (sts.get("spec") or {}).get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        for r in history[: max(0, len(history) - limit)]:
            try:
                self.api.delete(CONTROLLER_REVISIONS, meta(r).get("namespace"), meta(r)["name"])
            except ApiError:
                pass

    # --- pods --------------------------------------------------------------------------------

    def _update_pods(self, sts: dict[str, Any], current: dict[str, Any], update: dict[str, Any], pods: list[dict[str, Any]]) -> float | None:
        """updateStatefulSet: create/replace in order, condemn in reverse, then roll the update."""
        n = replicas(sts)
        slots: list[dict[str, Any] | None] = [None] * n
        condemned: list[dict[str, Any]] = []
        for pod in pods:
            o = ordinal(sts, pod)
            if o is None:
                continue
            if o < n:
                slots[o] = pod
            else:
                condemned.append(pod)
        condemned.sort(key=lambda p: -(ordinal(sts, p) or 0))
        monotonic = (sts.get("spec") or {}).get("podManagementPolicy", "OrderedReady") != "Parallel"
        avail = Availability(self.c.clock, (sts.get("spec") or {}).get("minReadySeconds"))
        for i in range(n):
            pod = slots[i]
            if pod is not None and is_finished(pod) and not is_terminating(pod):
                self._delete(sts, pod)
                if monotonic:
                    return None
                continue
            if pod is None:
                created = self._create(sts, i, current, update)
                if monotonic or created is None:
                    return None
                continue
            if is_terminating(pod):
                if monotonic:
                    return None
                continue
            if not is_running_and_ready(pod):
                if monotonic:
                    return None
                continue
            if not avail.available(pod) and monotonic:
                return avail.wait
        first_unhealthy = next((p for p in [*slots, *condemned] if p is not None and not is_healthy(p)), None)
        for pod in condemned:
            if is_terminating(pod):
                if monotonic:
                    return None
                continue
            if not is_running_and_ready(pod) and monotonic and pod is not first_unhealthy:
                return None
            self._delete(sts, pod)
            if monotonic:
                return None
        s = strategy(sts)
        if s["type"] != "RollingUpdate":
            return None
        partition = int((s.get("rollingUpdate") or {}).get("partition") or 0)
        for target in range(n - 1, partition - 1, -1):
            pod = slots[target]
            if pod is None:
                continue
            if pod_revision(pod) != meta(update).get("name") and not is_terminating(pod):
                self._delete(sts, pod)
                return None
            if not is_healthy(pod):
                return None
        return None

    def _create(self, sts: dict[str, Any], i: int, current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any] | None:
        """newVersionedStatefulSetPod: ordinals below the partition keep the current revision."""
        s = strategy(sts)
        partition = int((s.get("rollingUpdate") or {}).get("partition") or 0)
        use_current = s["type"] == "RollingUpdate" and i < partition
        revision = current if use_current else update
        template = patch_template(revision.get("data")) if revision.get("data") else None
        if template is None:
            template = (sts.get("spec") or {}).get("template") or {}
        pod = self._pod(sts, i, template, meta(revision).get("name", ""))
        try:
            created = self.api.create(PODS, meta(sts).get("namespace"), pod)
        except ApiError as e:
            msg = f"create Pod {meta(pod)['name']} in StatefulSet {meta(sts)['name']} failed error: {e.message}"
            self.c.recorder.record(sts, "Warning", "FailedCreate", msg, component=COMPONENT)
            return None
        self.c.recorder.record(sts, "Normal", "SuccessfulCreate", f"create Pod {meta(created)['name']} in StatefulSet {meta(sts)['name']} successful", component=COMPONENT)
        return created

    def _pod(self, sts: dict[str, Any], i: int, template: dict[str, Any], revision: str) -> dict[str, Any]:
        """newStatefulSetPod + initIdentity + updateStorage."""
        t = copy.deepcopy(template)
        (t.get("metadata") or {}).pop("creationTimestamp", None)
        pod = pod_from_template(t, sts, new_controller_ref(sts, "StatefulSet"))
        name = f"{meta(sts)['name']}-{i}"
        pod["metadata"]["name"] = name
        labels = dict(pod["metadata"].get("labels") or {})
        labels[POD_NAME_LABEL] = name
        labels[POD_INDEX_LABEL] = str(i)
        if revision:
            labels[REVISION_LABEL] = revision
        pod["metadata"]["labels"] = labels
        spec = pod["spec"]
        spec["hostname"] = name
        if (sts.get("spec") or {}).get("serviceName"):
            spec["subdomain"] = sts["spec"]["serviceName"]
        claims = (sts.get("spec") or {}).get("volumeClaimTemplates") or []
        if claims:
            volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in {meta(c).get("name") for c in claims}]
            for c in claims:
                cname = meta(c).get("name")
                volumes.append({"name": cname, "persistentVolumeClaim": {"claimName": f"{cname}-{meta(sts)['name']}-{i}"}})
            spec["volumes"] = volumes
        return pod

    def _delete(self, sts: dict[str, Any], pod: dict[str, Any]) -> None:
        name = meta(pod)["name"]
        try:
            self.api.delete(PODS, meta(pod).get("namespace"), name)
        except ApiError as e:
            if e.code != 404:
                msg = f"delete Pod {name} in StatefulSet {meta(sts)['name']} failed error: {e.message}"
                self.c.recorder.record(sts, "Warning", "FailedDelete", msg, component=COMPONENT)
            return
        self.c.recorder.record(sts, "Normal", "SuccessfulDelete", f"delete Pod {name} in StatefulSet {meta(sts)['name']} successful", component=COMPONENT)

    # --- status ------------------------------------------------------------------------------

    def _update_status(
        self, sts: dict[str, Any], current: dict[str, Any], update: dict[str, Any], collision: int, pods: list[dict[str, Any]]
    ) -> float | None:
        avail = Availability(self.c.clock, (sts.get("spec") or {}).get("minReadySeconds"))
        cur_name, upd_name = meta(current).get("name", ""), meta(update).get("name", "")
        count = ready = available = cur = upd = 0
        for pod in pods:
            if ordinal(sts, pod) is None:
                continue
            if is_created(pod):
                count += 1
            if is_running_and_ready(pod):
                ready += 1
                if avail.available(pod):
                    available += 1
            if is_created(pod) and not is_terminating(pod):
                if pod_revision(pod) == cur_name:
                    cur += 1
                if pod_revision(pod) == upd_name:
                    upd += 1
        if strategy(sts)["type"] == "RollingUpdate" and upd == count and ready == count:
            cur, cur_name = upd, upd_name
        sts = self.store.get(STATEFULSETS, meta(sts).get("namespace"), meta(sts)["name"]) or sts
        status: dict[str, Any] = {"observedGeneration": int(meta(sts).get("generation", 1)), "replicas": count}
        if ready:
            status["readyReplicas"] = ready
        if cur:
            status["currentReplicas"] = cur
        if upd:
            status["updatedReplicas"] = upd
        if cur_name:
            status["currentRevision"] = cur_name
        if upd_name:
            status["updateRevision"] = upd_name
        status["collisionCount"] = collision
        status["availableReplicas"] = available
        old = sts.get("status") or {}
        if old.get("conditions"):
            status["conditions"] = old["conditions"]
        self.api.write_status(STATEFULSETS, sts, status)
        if avail.min_ready > 0 and ready != available:
            return avail.wait if avail.wait is not None else float(avail.min_ready)
        return None


def controllers(cluster: Any) -> list[Any]:
    return [StatefulSetController(cluster)]


__all__ = ["StatefulSetController", "ordinal"]
