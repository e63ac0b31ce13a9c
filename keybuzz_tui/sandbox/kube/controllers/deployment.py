"""The Deployment controller, after kubernetes `pkg/controller/deployment` (sync.go, rolling.go,
recreate.go, progress.go, util/deployment_util.go), plus the ReplicaSet controller it drives.

A Deployment owns ReplicaSets named `<deployment>-<pod-template-hash>`; the one whose template
equals the Deployment's (ignoring the hash label) is "new", every other is "old". A rollout scales
the new one up and the old ones down within maxSurge / maxUnavailable; `kubectl rollout undo`
patches an old template back, which makes that old ReplicaSet new again with the next revision
number. Status and the Available / Progressing conditions carry the real reasons and messages,
because `kubectl rollout status` and operators read them verbatim.
"""

from __future__ import annotations

import copy
import math
from datetime import timedelta
from typing import Any

from ..errors import ApiError
from ..registry import apps
from ..store import Event
from . import replicaset
from .replicaset import (
    PODS,
    REPLICASETS,
    OwnerIndex,
    by_creation,
    canonical_template,
    claim,
    compute_hash,
    controller_ref,
    int_or_percent,
    is_terminal,
    is_terminating,
    later,
    meta,
    new_controller_ref,
    owners_matching,
    parse_time,
    selector_is_empty,
    selector_of,
)

DEPLOYMENTS = apps("deployments")
COMPONENT = "deployment-controller"
HASH_LABEL = "pod-template-hash"

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_SKIP_ANNOTATIONS = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO})
# kube-controller-manager --deployment-controller-... default for the revision-history annotation
MAX_REV_HISTORY_CHARS = 2000

# condition reasons (deployment/util)
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_CREATED = "NewReplicaSetCreated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
FAILED_RS_CREATE = "ReplicaSetCreateError"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
MAX_INT32 = 2**31 - 1


# --------------------------------------------------------------------------------------------
# Spec reading (apps/v1 defaults applied on read, so a bare object still behaves)
# --------------------------------------------------------------------------------------------


def replicas(d: dict[str, Any]) -> int:
    value = (d.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def rs_replicas(rs: dict[str, Any] | None) -> int:
    if rs is None:
        return 0
    value = (rs.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def strategy(d: dict[str, Any]) -> dict[str, Any]:
    s = copy.deepcopy((d.get("spec") or {}).get("strategy") or {})
    s.setdefault("type", "RollingUpdate")
    if s["type"] == "RollingUpdate":
        ru = s.get("rollingUpdate") or {}
        ru.setdefault("maxSurge", "25%")
        ru.setdefault("maxUnavailable", "25%")
        s["rollingUpdate"] = ru
    return s


def is_rolling(d: dict[str, Any]) -> bool:
    return strategy(d)["type"] == "RollingUpdate"


def resolve_fenceposts(d: dict[str, Any]) -> tuple[int, int]:
    """ResolveFenceposts: surge rounds up, unavailability down, and both zero means one unavailable."""
    ru = strategy(d).get("rollingUpdate") or {}
    desired = replicas(d)
    surge = int_or_percent(ru.get("maxSurge"), desired, True)
    unavailable = int_or_percent(ru.get("maxUnavailable"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: dict[str, Any]) -> int:
    return resolve_fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: dict[str, Any]) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas(d))


def progress_deadline(d: dict[str, Any]) -> int | None:
    value = (d.get("spec") or {}).get("progressDeadlineSeconds", 600)
    if value is None or int(value) == MAX_INT32:
        return None
    return int(value)


def history_limit(d: dict[str, Any]) -> int | None:
    value = (d.get("spec") or {}).get("revisionHistoryLimit", 10)
    return None if value is None else int(value)


def revision_of(obj: dict[str, Any] | None) -> int:
    try:
        return int((meta(obj or {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def equal_ignore_hash(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """EqualIgnoreHash: templates equal once the pod-template-hash label is taken out of both."""

    def strip(t: dict[str, Any] | None) -> dict[str, Any]:
        t = canonical_template(t)
        labels = (t.get("metadata") or {}).get("labels")
        if labels is not None:
            labels.pop(HASH_LABEL, None)
            if not labels:
                t["metadata"].pop("labels")
            if not t["metadata"]:
                t.pop("metadata")
        return t

    return strip(a) == strip(b)


def rs_template(rs: dict[str, Any]) -> dict[str, Any]:
    return (rs.get("spec") or {}).get("template") or {}


def d_template(d: dict[str, Any]) -> dict[str, Any]:
    return (d.get("spec") or {}).get("template") or {}


def active(rss: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """FilterActiveReplicaSets: the ones asked for at least one replica."""
    return [rs for rs in rss if rs is not None and rs_replicas(rs) > 0]


def total_spec(rss: list[dict[str, Any] | None]) -> int:
    return sum(rs_replicas(rs) for rs in rss if rs is not None)


def total_status(rss: list[dict[str, Any] | None], key: str) -> int:
    return sum(int((rs.get("status") or {}).get(key) or 0) for rs in rss if rs is not None)


# --------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------


def get_condition(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in status.get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def set_condition(status: dict[str, Any], cond: dict[str, Any]) -> None:
    """SetDeploymentCondition: same status and reason is a no-op; same status keeps the transition time."""
    cur = get_condition(status, cond["type"])
    if cur is not None and cur.get("status") == cond["status"] and cur.get("reason") == cond["reason"]:
        return
    if cur is not None and cur.get("status") == cond["status"]:
        cond["lastTransitionTime"] = cur.get("lastTransitionTime")
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: dict[str, Any], ctype: str) -> None:
    conds = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


class DeploymentController:
    """pkg/controller/deployment: ReplicaSets per template, rollouts, status and conditions."""

    name = "deployment"

    def __init__(self, cluster: Any) -> None:
        self.c = cluster
        self.api = cluster.api
        self.store = cluster.store
        self.rss = OwnerIndex("Deployment")

    # --- events ------------------------------------------------------------------------------

    def keys_for(self, ev: Event) -> list[tuple[str | None, str]]:
        key = ev.rt.key
        if key == DEPLOYMENTS.key:
            return [(meta(ev.obj).get("namespace"), meta(ev.obj)["name"])]
        if key == REPLICASETS.key:
            owners: list[tuple[str | None, str]] = list(self.rss.observe(ev))
            if ev.type != "DELETED" and controller_ref(ev.obj) is None and not is_terminating(ev.obj):
                owners.extend(owners_matching(self.api, DEPLOYMENTS, ev.obj))
            return owners
        if key == PODS.key and ev.type == "DELETED":
            return self._recreate_owner(ev.obj)
        return []

    def _recreate_owner(self, pod: dict[str, Any]) -> list[tuple[str | None, str]]:
        """deletePod: a Recreate rollout waits for the last old pod to be gone."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return []
        ns = meta(pod).get("namespace")
        rs = self.store.get(REPLICASETS, ns, ref["name"])
        dref = controller_ref(rs) if rs is not None else None
        if dref is None or dref.get("kind") != "Deployment":
            return []
        d = self.store.get(DEPLOYMENTS, ns, dref["name"])
        if d is None or strategy(d)["type"] != "Recreate":
            return []
        return [(ns, dref["name"])]

    # --- sync --------------------------------------------------------------------------------

    def reconcile(self, namespace: str | None, name: str) -> float | None:
        d = self.store.get(DEPLOYMENTS, namespace, name)
        if d is None:
            return None
        if selector_is_empty(d):
            self.c.recorder.record(d, "Warning", "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.", component=COMPONENT)
            if int((d.get("status") or {}).get("observedGeneration") or 0) < int(meta(d).get("generation", 1)):
                status = copy.deepcopy(d.get("status") or {})
                status["observedGeneration"] = int(meta(d).get("generation", 1))
                self.api.write_status(DEPLOYMENTS, d, status)
            return None
        rs_list = claim(self.api, REPLICASETS, d, "Deployment", selector_of(d), self.rss)
        if is_terminating(d):
            return self._sync_status_only(d, rs_list)
        d = self._check_paused_conditions(d)
        if (d.get("spec") or {}).get("paused"):
            return self._sync(d, rs_list)
        if self._is_scaling_event(d, rs_list):
            return self._sync(d, rs_list)
        if strategy(d)["type"] == "Recreate":
            return self._rollout_recreate(d, rs_list)
        return self._rollout_rolling(d, rs_list)

    def _refresh(self, d: dict[str, Any]) -> dict[str, Any]:
        return self.store.get(DEPLOYMENTS, meta(d).get("namespace"), meta(d)["name"]) or d

    def _owned_rss(self, d: dict[str, Any]) -> list[dict[str, Any]]:
        ns = meta(d).get("namespace") or ""
        out = []
        for n in self.rss.names(ns, meta(d)["name"]):
            rs = self.store.get(REPLICASETS, ns, n)
            if rs is not None and controller_ref(rs) is not None and controller_ref(rs).get("uid") == meta(d).get("uid"):  # type: ignore[union-attr]
                out.append(rs)
        return out

    # --- revisions and the new ReplicaSet -----------------------------------------------------

    def _split(self, d: dict[str, Any], rs_list: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """FindNewReplicaSet / FindOldReplicaSets: the oldest RS with the Deployment's template is new."""
        new = None
        for rs in by_creation(rs_list):
            if equal_ignore_hash(rs_template(rs), d_template(d)):
                new = rs
                break
        old = [rs for rs in rs_list if new is None or meta(rs)["name"] != meta(new)["name"]]
        return new, old

    def _all_rss(
        self, d: dict[str, Any], rs_list: list[dict[str, Any]], create: bool
    ) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]:
        """getAllReplicaSetsAndSyncRevision: returns (deployment, new RS or None, old RSs)."""
        d = self._refresh(d)
        existing, old = self._split(d, rs_list)
        new_revision = max((revision_of(rs) for rs in old), default=0) + 1
        if existing is not None:
            return self._sync_existing_new(d, existing, old, new_revision)
        if not create:
            return d, None, old
        return self._create_new(d, old, new_revision)

    def _sync_existing_new(
        self, d: dict[str, Any], rs: dict[str, Any], old: list[dict[str, Any]], new_revision: int
    ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        new_rs = copy.deepcopy(rs)
        changed = self._set_new_rs_annotations(d, new_rs, new_revision, exists=True)
        min_ready = (d.get("spec") or {}).get("minReadySeconds", 0) or 0
        if int((new_rs.get("spec") or {}).get("minReadySeconds", 0) or 0) != int(min_ready):
            new_rs["spec"]["minReadySeconds"] = min_ready
            changed = True
        if changed:
            rs = self._update_rs(new_rs) or rs
        d = self._set_revision(d, str(revision_of(rs)))
        status = copy.deepcopy(d.get("status") or {})
        if get_condition(status, "Progressing") is None and progress_deadline(d) is not None:
            set_condition(status, self._cond("Progressing", "True", FOUND_NEW_RS, f'Found new replica set "{meta(rs)["name"]}"'))
            d = self._write_status(d, status)
        return d, rs, old

    def _create_new(
        self, d: dict[str, Any], old: list[dict[str, Any]], new_revision: int
    ) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]:
        m = meta(d)
        ns = m.get("namespace")
        template = copy.deepcopy(d_template(d))
        template.setdefault("metadata", {}).pop("creationTimestamp", None)
        collision = (d.get("status") or {}).get("collisionCount")
        hash_ = compute_hash(template, collision)
        labels = dict(template["metadata"].get("labels") or {})
        labels[HASH_LABEL] = hash_
        template["metadata"]["labels"] = labels
        selector = copy.deepcopy((d.get("spec") or {}).get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = hash_
        rs: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": f"{m['name']}-{hash_}", "namespace": ns, "labels": dict(labels), "ownerReferences": [new_controller_ref(d, "Deployment")]},
            "spec": {"replicas": 0, "minReadySeconds": (d.get("spec") or {}).get("minReadySeconds", 0) or 0, "selector": selector, "template": template},
        }
        count = self._new_rs_replicas(d, [*old, rs], rs)
        rs["spec"]["replicas"] = count
        self._set_new_rs_annotations(d, rs, new_revision, exists=False)
        try:
            created = self.api.create(REPLICASETS, ns, rs)
        except ApiError as e:
            return self._create_failed(d, rs, old, e)
        if count > 0:
            self.c.recorder.record(d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {meta(created)['name']} from 0 to {count}", component=COMPONENT)
        d = self._set_revision(d, str(new_revision))
        if progress_deadline(d) is not None:
            status = copy.deepcopy(d.get("status") or {})
            set_condition(status, self._cond("Progressing", "True", NEW_RS_CREATED, f'Created new replica set "{meta(created)["name"]}"'))
            d = self._write_status(d, status)
        return d, created, old

    def _create_failed(
        self, d: dict[str, Any], rs: dict[str, Any], old: list[dict[str, Any]], e: ApiError
    ) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]:
        """AlreadyExists with our template is ours; with another template it is a hash collision."""
        ns, name = meta(d).get("namespace"), meta(rs)["name"]
        if e.code == 409:
            existing = self.store.get(REPLICASETS, ns, name)
            if existing is not None and controller_ref(existing) is not None and controller_ref(existing).get("uid") == meta(d).get("uid") and equal_ignore_hash(rs_template(existing), d_template(d)):  # type: ignore[union-attr]
                return d, existing, old
            status = copy.deepcopy(d.get("status") or {})
            status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
            d = self._write_status(d, status)
            return d, None, old
        msg = f'Failed to create new replica set "{name}": {e.message}'
        if progress_deadline(d) is not None:
            status = copy.deepcopy(d.get("status") or {})
            set_condition(status, self._cond("Progressing", "False", FAILED_RS_CREATE, msg))
            d = self._write_status(d, status)
        self.c.recorder.record(d, "Warning", FAILED_RS_CREATE, msg, component=COMPONENT)
        return d, None, old

    def _set_new_rs_annotations(self, d: dict[str, Any], rs: dict[str, Any], new_revision: int, *, exists: bool) -> bool:
        """SetNewReplicaSetAnnotations: Deployment annotations, revision (+history on rollback), replicas."""
        rmeta = rs.setdefault("metadata", {})
        ann = dict(rmeta.get("annotations") or {})
        changed = False
        for k, v in (meta(d).get("annotations") or {}).items():
            if k in _SKIP_ANNOTATIONS or ann.get(k) == v:
                continue
            ann[k] = v
            changed = True
        old_text = ann.get(REVISION)
        try:
            old_rev = int(old_text) if old_text else 0
        except ValueError:
            rmeta["annotations"] = ann
            return changed
        if old_rev < new_revision:
            ann[REVISION] = str(new_revision)
            changed = True
            if old_text:
                history = ann.get(REVISION_HISTORY, "")
                revs = [r for r in history.split(",") if r] if history else []
                revs.append(old_text)
                while len(",".join(revs)) > MAX_REV_HISTORY_CHARS and len(revs) > 1:
                    revs.pop(0)
                ann[REVISION_HISTORY] = ",".join(revs)
        if not exists:
            changed = _set_replicas_annotations(ann, replicas(d), replicas(d) + max_surge(d)) or changed
        rmeta["annotations"] = ann
        return changed

    def _set_revision(self, d: dict[str, Any], revision: str) -> dict[str, Any]:
        """SetDeploymentRevision: the Deployment carries its new RS's revision annotation."""
        d = self._refresh(d)
        if (meta(d).get("annotations") or {}).get(REVISION) == revision:
            return d
        new = copy.deepcopy(d)
        new["metadata"].setdefault("annotations", {})[REVISION] = revision
        try:
            return self.api.write(DEPLOYMENTS, new)
        except ApiError:
            return d

    def _new_rs_replicas(self, d: dict[str, Any], all_rss: list[dict[str, Any]], new_rs: dict[str, Any]) -> int:
        """NewRSNewReplicas: how far the new RS may grow now."""
        if not is_rolling(d):
            return replicas(d)
        current = total_spec(all_rss)
        max_total = replicas(d) + max_surge(d)
        if current >= max_total:
            return rs_replicas(new_rs)
        grow = min(max_total - current, replicas(d) - rs_replicas(new_rs))
        return rs_replicas(new_rs) + grow

    # --- scaling -------------------------------------------------------------------------------

    def _update_rs(self, rs: dict[str, Any]) -> dict[str, Any] | None:
        m = meta(rs)
        try:
            return self.api.update(REPLICASETS, m.get("namespace"), m["name"], rs)
        except ApiError:
            return None

    def _scale_rs(self, d: dict[str, Any], rs: dict[str, Any], count: int) -> tuple[bool, dict[str, Any]]:
        """scaleReplicaSet(+AndRecordEvent): set replicas and the replica annotations, say so in an event."""
        old_count = rs_replicas(rs)
        ann = dict(meta(rs).get("annotations") or {})
        ann_changed = _set_replicas_annotations(ann, replicas(d), replicas(d) + max_surge(d))
        if old_count == count and not ann_changed:
            return False, rs
        new = copy.deepcopy(rs)
        new["spec"]["replicas"] = count
        new["metadata"]["annotations"] = ann
        updated = self._update_rs(new)
        if updated is None:
            return False, rs
        if old_count != count:
            direction = "up" if old_count < count else "down"
            self.c.recorder.record(
                d, "Normal", "ScalingReplicaSet", f"Scaled {direction} replica set {meta(rs)['name']} from {old_count} to {count}", component=COMPONENT
            )
            return True, updated
        return False, updated

    def _is_scaling_event(self, d: dict[str, Any], rs_list: list[dict[str, Any]]) -> bool:
        """isScalingEvent: an active RS was sized for another replica count than the Deployment's."""
        d, new, old = self._all_rss(d, rs_list, False)
        for rs in active([*old, *([new] if new else [])]):
            desired = (meta(rs).get("annotations") or {}).get(DESIRED_REPLICAS)
            if desired is None:
                continue
            try:
                if int(desired) != replicas(d):
                    return True
            except ValueError:
                continue
        return False

    def _sync(self, d: dict[str, Any], rs_list: list[dict[str, Any]]) -> float | None:
        """sync: scale (proportionally when mid-rollout) without starting a rollout, then status."""
        d, new, old = self._all_rss(d, rs_list, False)
        self._scale(d, new, old)
        d = self._refresh(d)
        d, new, old = self._all_rss(d, self._owned_rss(d), False)
        if (d.get("spec") or {}).get("paused"):
            self._cleanup(d, old)
        all_rss = [*old, *([new] if new else [])]
        status = self._calculate_status(d, all_rss, new)
        self._write_status(d, status)
        return None

    def _scale(self, d: dict[str, Any], new: dict[str, Any] | None, old: list[dict[str, Any]]) -> None:
        target = _active_or_latest(new, old)
        if target is not None:
            if rs_replicas(target) != replicas(d):
                self._scale_rs(d, target, replicas(d))
            return
        if _saturated(d, new):
            for rs in active(old):
                self._scale_rs(d, rs, 0)
            return
        if not is_rolling(d):
            return
        all_rss = active([*old, *([new] if new else [])])
        allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
        to_add = allowed - total_spec(all_rss)
        if to_add > 0:
            all_rss.sort(key=lambda rs: (-rs_replicas(rs), _Newest(rs)))
        elif to_add < 0:
            all_rss.sort(key=lambda rs: (-rs_replicas(rs), meta(rs).get("creationTimestamp") or "", meta(rs)["name"]))
        sizes: dict[str, int] = {}
        added = 0
        for rs in all_rss:
            if to_add != 0:
                share = _proportion(d, rs, to_add, added)
                sizes[meta(rs)["name"]] = rs_replicas(rs) + share
                added += share
            else:
                sizes[meta(rs)["name"]] = rs_replicas(rs)
        for i, rs in enumerate(all_rss):
            n = meta(rs)["name"]
            if i == 0 and to_add != 0:
                sizes[n] = max(0, sizes[n] + to_add - added)
            self._scale_rs(d, rs, sizes[n])

    # --- rollouts ----------------------------------------------------------------------------

    def _rollout_rolling(self, d: dict[str, Any], rs_list: list[dict[str, Any]]) -> float | None:
        d, new, old = self._all_rss(d, rs_list, True)
        if new is None:
            return later(0.05)  # collision or create failure: retry (the real one requeues)
        all_rss = [*old, new]
        scaled, new = self._reconcile_new(d, all_rss, new)
        if scaled:
            return self._sync_rollout_status(d, [*old, new], new)
        scaled_down, old = self._reconcile_old(d, [*old, new], active(old), old, new)
        if scaled_down:
            return self._sync_rollout_status(d, [*old, new], new)
        if _complete(d, d.get("status") or {}):
            self._cleanup(d, old)
        return self._sync_rollout_status(d, [*old, new], new)

    def _reconcile_new(self, d: dict[str, Any], all_rss: list[dict[str, Any]], new: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        if rs_replicas(new) == replicas(d):
            return False, new
        if rs_replicas(new) > replicas(d):
            return self._scale_rs(d, new, replicas(d))
        return self._scale_rs(d, new, self._new_rs_replicas(d, all_rss, new))

    def _reconcile_old(
        self, d: dict[str, Any], all_rss: list[dict[str, Any]], active_old: list[dict[str, Any]], old: list[dict[str, Any]], new: dict[str, Any]
    ) -> tuple[bool, list[dict[str, Any]]]:
        """reconcileOldReplicaSets: clean up unhealthy old replicas first, then scale down old ones."""
        if total_spec(active_old) == 0:
            return False, old
        min_available = replicas(d) - max_unavailable(d)
        new_unavailable = rs_replicas(new) - int((new.get("status") or {}).get("availableReplicas") or 0)
        max_scaled_down = total_spec(all_rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False, old
        cleaned = 0
        for rs in by_creation(active_old):
            if cleaned >= max_scaled_down:
                break
            avail = int((rs.get("status") or {}).get("availableReplicas") or 0)
            if rs_replicas(rs) == 0 or rs_replicas(rs) == avail:
                continue
            down = min(max_scaled_down - cleaned, rs_replicas(rs) - avail)
            self._scale_rs(d, rs, rs_replicas(rs) - down)
            cleaned += down
        old = [self.store.get(REPLICASETS, meta(rs).get("namespace"), meta(rs)["name"]) or rs for rs in old]
        scaled = self._scale_down_old(d, [*old, new], active(old))
        return cleaned + scaled > 0, [self.store.get(REPLICASETS, meta(rs).get("namespace"), meta(rs)["name"]) or rs for rs in old]

    def _scale_down_old(self, d: dict[str, Any], all_rss: list[dict[str, Any]], old: list[dict[str, Any]]) -> int:
        """scaleDownOldReplicaSetsForRollingUpdate: down to maxUnavailable below the desired count."""
        min_available = replicas(d) - max_unavailable(d)
        available = total_status(all_rss, "availableReplicas")
        if available <= min_available:
            return 0
        budget = available - min_available
        done = 0
        for rs in by_creation(old):
            if done >= budget:
                break
            if rs_replicas(rs) == 0:
                continue
            down = min(rs_replicas(rs), budget - done)
            self._scale_rs(d, rs, rs_replicas(rs) - down)
            done += down
        return done

    def _rollout_recreate(self, d: dict[str, Any], rs_list: list[dict[str, Any]]) -> float | None:
        d, new, old = self._all_rss(d, rs_list, False)
        all_rss = [*old, *([new] if new else [])]
        scaled = False
        for rs in active(old):
            s, _ = self._scale_rs(d, rs, 0)
            scaled = scaled or s
        if scaled:
            return self._sync_rollout_status(d, all_rss, new)
        if self._old_pods_running(d, new, old):
            return self._sync_rollout_status(d, all_rss, new)
        if new is None:
            d, new, old = self._all_rss(d, self._owned_rss(d), True)
            if new is None:
                return later(0.05)
            all_rss = [*old, new]
        if rs_replicas(new) != replicas(d):
            self._scale_rs(d, new, replicas(d))
        if _complete(d, d.get("status") or {}):
            self._cleanup(d, old)
        return self._sync_rollout_status(d, all_rss, new)

    def _old_pods_running(self, d: dict[str, Any], new: dict[str, Any] | None, old: list[dict[str, Any]]) -> bool:
        """oldPodsRunning: old RSs still report pods, or any non-finished pod of an old RS exists."""
        if total_status(old, "replicas") > 0:
            return True
        idx: OwnerIndex = self.c.manager.controllers["replicaset"].pods
        ns = meta(d).get("namespace") or ""
        for rs in old:
            for n in idx.names(ns, meta(rs)["name"]):
                pod = self.store.get(PODS, ns, n)
                if pod is not None and controller_ref(pod).get("uid") == meta(rs).get("uid") and not is_terminal(pod):  # type: ignore[union-attr]
                    return True
        return False

    def _cleanup(self, d: dict[str, Any], old: list[dict[str, Any]]) -> None:
        """cleanupDeployment: beyond revisionHistoryLimit, delete the oldest empty old RSs."""
        limit = history_limit(d)
        if limit is None:
            return
        alive = [rs for rs in old if rs is not None and not is_terminating(rs)]
        diff = len(alive) - limit
        if diff <= 0:
            return
        for rs in sorted(alive, key=lambda r: (revision_of(r), meta(r).get("creationTimestamp") or ""))[:diff]:
            status = rs.get("status") or {}
            if int(status.get("replicas") or 0) != 0 or rs_replicas(rs) != 0:
                continue
            if int(meta(rs).get("generation", 1)) > int(status.get("observedGeneration") or 0):
                continue
            try:
                self.api.delete(REPLICASETS, meta(rs).get("namespace"), meta(rs)["name"])
            except ApiError:
                pass

    # --- status ------------------------------------------------------------------------------

    def _cond(self, ctype: str, status: str, reason: str, message: str) -> dict[str, Any]:
        now = self.api.now()
        return {"type": ctype, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message}

    def _calculate_status(self, d: dict[str, Any], all_rss: list[dict[str, Any]], new: dict[str, Any] | None) -> dict[str, Any]:
        """calculateStatus: counters from the ReplicaSets, then the Available condition."""
        all_rss = [self.store.get(REPLICASETS, meta(rs).get("namespace"), meta(rs)["name"]) or rs for rs in all_rss if rs is not None]
        if new is not None:
            new = self.store.get(REPLICASETS, meta(new).get("namespace"), meta(new)["name"]) or new
        available = total_status(all_rss, "availableReplicas")
        unavailable = max(0, total_spec(all_rss) - available)
        old = d.get("status") or {}
        status: dict[str, Any] = {"observedGeneration": int(meta(d).get("generation", 1))}
        for key, value in (
            ("replicas", total_status(all_rss, "replicas")),
            ("updatedReplicas", total_status([new] if new else [], "replicas")),
            ("readyReplicas", total_status(all_rss, "readyReplicas")),
            ("availableReplicas", available),
            ("unavailableReplicas", unavailable),
        ):
            if value:
                status[key] = value
        if old.get("conditions"):
            status["conditions"] = copy.deepcopy(old["conditions"])
        if old.get("collisionCount") is not None:
            status["collisionCount"] = old["collisionCount"]
        if available >= replicas(d) - max_unavailable(d):
            set_condition(status, self._cond("Available", "True", MIN_AVAILABLE, "Deployment has minimum availability."))
        else:
            set_condition(status, self._cond("Available", "False", MIN_UNAVAILABLE, "Deployment does not have minimum availability."))
        return status

    def _sync_rollout_status(self, d: dict[str, Any], all_rss: list[dict[str, Any]], new: dict[str, Any] | None) -> float | None:
        """syncRolloutStatus: counters, Available, and Progressing with its deadline."""
        d = self._refresh(d)
        if new is not None:
            new = self.store.get(REPLICASETS, meta(new).get("namespace"), meta(new)["name"]) or new
        status = self._calculate_status(d, all_rss, new)
        deadline = progress_deadline(d)
        if deadline is None:
            remove_condition(status, "Progressing")
        current = get_condition(d.get("status") or {}, "Progressing")
        complete_before = (
            status.get("replicas", 0) == status.get("updatedReplicas", 0) and current is not None and current.get("reason") == NEW_RS_AVAILABLE
        )
        if deadline is not None and not complete_before:
            self._progress(d, status, new, current)
        failure = _replica_failure(all_rss, new)
        if failure is not None:
            set_condition(status, failure)
        else:
            remove_condition(status, "ReplicaFailure")
        if status != (d.get("status") or {}):
            self._write_status(d, status)
            return self._requeue_stuck(d, status)
        return self._requeue_stuck(d, status)

    def _progress(self, d: dict[str, Any], status: dict[str, Any], new: dict[str, Any] | None, current: dict[str, Any] | None) -> None:
        rs_name = meta(new)["name"] if new is not None else None
        if _complete(d, status):
            msg = f'ReplicaSet "{rs_name}" has successfully progressed.' if rs_name else f'Deployment "{meta(d)["name"]}" has successfully progressed.'
            set_condition(status, self._cond("Progressing", "True", NEW_RS_AVAILABLE, msg))
        elif _progressing(d, status):
            msg = f'ReplicaSet "{rs_name}" is progressing.' if rs_name else f'Deployment "{meta(d)["name"]}" is progressing.'
            cond = self._cond("Progressing", "True", RS_UPDATED, msg)
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, "Progressing")
            set_condition(status, cond)
        elif self._timed_out(d, status):
            msg = f'ReplicaSet "{rs_name}" has timed out progressing.' if rs_name else f'Deployment "{meta(d)["name"]}" has timed out progressing.'
            set_condition(status, self._cond("Progressing", "False", TIMED_OUT, msg))

    def _timed_out(self, d: dict[str, Any], status: dict[str, Any]) -> bool:
        return self._deadline_left(d, status) == 0.0

    def _deadline_left(self, d: dict[str, Any], status: dict[str, Any]) -> float | None:
        """Simulated seconds until the Progressing condition exceeds progressDeadlineSeconds (0: now)."""
        deadline = progress_deadline(d)
        cond = get_condition(status, "Progressing")
        if deadline is None or cond is None:
            return None
        if cond.get("reason") == NEW_RS_AVAILABLE:
            return None
        if cond.get("reason") == TIMED_OUT:
            return 0.0
        since = parse_time(cond.get("lastUpdateTime"))
        if since is None:
            return None
        end = since + timedelta(seconds=self.c.clock.scaled(deadline))
        left = (end - self.c.clock.now()).total_seconds()
        return 0.0 if left < 0 else left * getattr(self.c.clock, "speed", 1.0)

    def _requeue_stuck(self, d: dict[str, Any], status: dict[str, Any]) -> float | None:
        """requeueStuckDeployment: come back when the deadline would pass, to mark the timeout."""
        cond = get_condition(status, "Progressing")
        if cond is None or cond.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT) or _complete(d, status):
            return None
        left = self._deadline_left(d, status)
        return later(None if left is None else left + 1.0)

    def _sync_status_only(self, d: dict[str, Any], rs_list: list[dict[str, Any]]) -> float | None:
        d, new, old = self._all_rss(d, rs_list, False)
        status = self._calculate_status(d, [*old, *([new] if new else [])], new)
        self._write_status(d, status)
        return None

    def _check_paused_conditions(self, d: dict[str, Any]) -> dict[str, Any]:
        if progress_deadline(d) is None:
            return d
        status = copy.deepcopy(d.get("status") or {})
        cond = get_condition(status, "Progressing")
        if cond is not None and cond.get("reason") == TIMED_OUT:
            return d
        paused = bool((d.get("spec") or {}).get("paused"))
        has_paused = cond is not None and cond.get("reason") == PAUSED
        if paused and not has_paused:
            set_condition(status, self._cond("Progressing", "Unknown", PAUSED, "Deployment is paused"))
        elif not paused and has_paused:
            set_condition(status, self._cond("Progressing", "Unknown", RESUMED, "Deployment is resumed"))
        else:
            return d
        return self._write_status(d, status)

    def _write_status(self, d: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        return self.api.write_status(DEPLOYMENTS, d, status) or d


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------


class _Newest:
    """ReplicaSetsBySizeNewer tie-break: newer first."""

    __slots__ = ("key",)

    def __init__(self, rs: dict[str, Any]) -> None:
        self.key = (meta(rs).get("creationTimestamp") or "", meta(rs)["name"])

    def __lt__(self, other: _Newest) -> bool:
        return self.key > other.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Newest) and self.key == other.key


def _set_replicas_annotations(ann: dict[str, str], desired: int, max_replicas: int) -> bool:
    changed = False
    for k, v in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if ann.get(k) != v:
            ann[k] = v
            changed = True
    return changed


def _active_or_latest(new: dict[str, Any] | None, old: list[dict[str, Any]]) -> dict[str, Any] | None:
    """FindActiveOrLatest: the only active RS, else the newest one if none is active."""
    if new is None and not old:
        return None
    old_sorted = sorted(old, key=lambda rs: (meta(rs).get("creationTimestamp") or "", meta(rs)["name"]), reverse=True)
    candidates = active([*old_sorted, *([new] if new else [])])
    if len(candidates) == 0:
        return new if new is not None else old_sorted[0]
    if len(candidates) == 1:
        return candidates[0]
    return None


def _saturated(d: dict[str, Any], new: dict[str, Any] | None) -> bool:
    if new is None:
        return False
    desired = (meta(new).get("annotations") or {}).get(DESIRED_REPLICAS)
    return (
        rs_replicas(new) == replicas(d)
        and desired == str(replicas(d))
        and int((new.get("status") or {}).get("availableReplicas") or 0) == replicas(d)
    )


def _proportion(d: dict[str, Any], rs: dict[str, Any], to_add: int, added: int) -> int:
    """GetReplicaSetProportion: this RS's share of the replicas being added or removed."""
    if rs_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _fraction(d, rs)
    allowed = to_add - added
    if to_add > 0:
        return min(fraction, allowed)
    return max(fraction, allowed)


def _fraction(d: dict[str, Any], rs: dict[str, Any]) -> int:
    """getReplicaSetFraction: rs size scaled from the max-replicas it was sized for to the new one."""
    if replicas(d) == 0:
        return -rs_replicas(rs)
    total = replicas(d) + max_surge(d)
    annotated = (meta(rs).get("annotations") or {}).get(MAX_REPLICAS)
    try:
        annotated_total = int(annotated) if annotated is not None else None
    except ValueError:
        annotated_total = None
    if not annotated_total:
        annotated_total = (d.get("status") or {}).get("replicas") or 0
    if not annotated_total:
        return 0
    new_size = math.floor(rs_replicas(rs) * total / annotated_total + 0.5)  # integer.RoundToInt32
    return int(new_size) - rs_replicas(rs)


def _complete(d: dict[str, Any], status: dict[str, Any]) -> bool:
    """DeploymentComplete."""
    want = replicas(d)
    return (
        int(status.get("updatedReplicas") or 0) == want
        and int(status.get("replicas") or 0) == want
        and int(status.get("availableReplicas") or 0) == want
        and int(status.get("observedGeneration") or 0) >= int(meta(d).get("generation", 1))
    )


def _progressing(d: dict[str, Any], new: dict[str, Any]) -> bool:
    """DeploymentProgressing: more updated, fewer old, more ready or more available than before."""
    old = d.get("status") or {}

    def g(s: dict[str, Any], k: str) -> int:
        return int(s.get(k) or 0)

    old_old = g(old, "replicas") - g(old, "updatedReplicas")
    new_old = g(new, "replicas") - g(new, "updatedReplicas")
    return (
        g(new, "updatedReplicas") > g(old, "updatedReplicas")
        or new_old < old_old
        or g(new, "readyReplicas") > g(old, "readyReplicas")
        or g(new, "availableReplicas") > g(old, "availableReplicas")
    )


def _replica_failure(all_rss: list[dict[str, Any]], new: dict[str, Any] | None) -> dict[str, Any] | None:
    """getReplicaFailures: the new RS's ReplicaFailure first, else any old one's."""
    ordered = ([new] if new is not None else []) + [rs for rs in all_rss if new is None or meta(rs)["name"] != meta(new)["name"]]
    for rs in ordered:
        if rs is None:
            continue
        for c in (rs.get("status") or {}).get("conditions") or []:
            if c.get("type") == "ReplicaFailure":
                return {
                    "type": "ReplicaFailure",
                    "status": c.get("status"),
                    "lastUpdateTime": c.get("lastTransitionTime"),
                    "lastTransitionTime": c.get("lastTransitionTime"),
                    "reason": c.get("reason"),
                    "message": c.get("message"),
                }
    return None


def controllers(cluster: Any) -> list[Any]:
    return [DeploymentController(cluster), *replicaset.controllers(cluster)]


__all__ = ["DeploymentController", "equal_ignore_hash"]
