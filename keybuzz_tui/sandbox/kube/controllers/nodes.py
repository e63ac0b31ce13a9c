"""Node health as the kubelet reports it and the node lifecycle controller reacts to it.

A Ready node carries the four kubelet conditions with fresh heartbeats; a node whose kubelet
"stopped posting" turns Unknown, gets the unreachable taints, and its pods are marked not ready,
which is what an operator sees during an outage and what the wizard must explain.
"""

from __future__ import annotations

import copy
from typing import Any

from ..registry import BY_KEY, core
from ..store import Event

NODES = core("nodes")
PODS = core("pods")
LEASES = BY_KEY["coordination.k8s.io/leases"]
HEARTBEAT = 40.0
LEASE_RENEW = 10.0
LEASE_LIMIT = 50  # beyond this many nodes, leases are not renewed (scale scenario)

_TYPES = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)


def _ready_conditions(now: str, since: str) -> list[dict[str, Any]]:
    conds = [
        {"type": t, "status": "False", "lastHeartbeatTime": now, "lastTransitionTime": since, "reason": r, "message": m}
        for t, r, m in _TYPES
    ]
    conds.append(
        {"type": "Ready", "status": "True", "lastHeartbeatTime": now, "lastTransitionTime": since, "reason": "KubeletReady", "message": "kubelet is posting ready status"}
    )
    return conds


def _unknown_conditions(old: list[dict[str, Any]], now: str) -> list[dict[str, Any]]:
    out = []
    for c in old:
        c = dict(c)
        if c.get("status") != "Unknown":
            c["lastTransitionTime"] = now
        c["status"] = "Unknown"
        c["reason"] = "NodeStatusUnknown"
        c["message"] = "Kubelet stopped posting node status."
        out.append(c)
    return out


class NodeLifecycle:
    name = "node-lifecycle"

    def __init__(self, cluster: Any) -> None:
        self.c = cluster
        self.api = cluster.api
        self.not_ready: set[str] = set(cluster.scenario.not_ready_nodes)

    def keys_for(self, ev: Event):
        if ev.rt.key == NODES.key and ev.type == "ADDED":
            yield None, ev.obj["metadata"]["name"]

    def set_ready(self, node: str, ready: bool) -> None:
        """Scenario switch: stop or restart a node's kubelet."""
        if ready:
            self.not_ready.discard(node)
        else:
            self.not_ready.add(node)
        self.c.manager.enqueue(self.name, None, node)

    def is_ready(self, node: str) -> bool:
        obj = self.api.store.get(NODES, None, node)
        if obj is None:
            return False
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Ready":
                return cond.get("status") == "True"
        return False

    def reconcile(self, _ns: str | None, name: str) -> float | None:
        node = self.api.store.get(NODES, None, name)
        if node is None:
            return None
        now = self.api.now()
        status = copy.deepcopy(node.get("status") or {})
        conds = status.get("conditions") or []
        was_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if not t["key"].startswith("node.kubernetes.io/unreachable")]
        if name in self.not_ready:
            if conds and all(c.get("status") == "Unknown" for c in conds):
                return None  # already down: nothing more happens until it comes back
            status["conditions"] = _unknown_conditions(conds or _ready_conditions(now, now), now)
            taints += [
                {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": now},
                {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": now},
            ]
            self._write(node, status, taints)
            self._mark_pods_not_ready(name, now)
            self.c.recorder.record(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady", component="node-controller")
            return None
        since = now if not was_ready else next((c["lastTransitionTime"] for c in conds if c.get("type") == "Ready"), now)
        status["conditions"] = _ready_conditions(now, since)
        self._write(node, status, taints)
        if not was_ready:
            if conds:
                self.c.recorder.record(node, "Normal", "NodeReady", f"Node {name} status is now: NodeReady", component="kubelet", host=name)
            for pod in self._pods_on(name):
                self.c.manager.enqueue("kubelet", pod["metadata"]["namespace"], pod["metadata"]["name"])
        self._renew_lease(node, now)
        return HEARTBEAT if self.api.store.count(NODES) <= LEASE_LIMIT else None

    def _write(self, node: dict[str, Any], status: dict[str, Any], taints: list[dict[str, Any]]) -> None:
        cur_taints = (node.get("spec") or {}).get("taints") or []
        if taints != cur_taints:
            new = copy.deepcopy(node)
            if taints:
                new.setdefault("spec", {})["taints"] = taints
            else:
                new.get("spec", {}).pop("taints", None)
            node = self.api.write(NODES, new, manager="k3s")
        self.api.write_status(NODES, node, status)

    def _pods_on(self, node: str) -> list[dict[str, Any]]:
        sched = self.c.manager.controllers.get("scheduler")
        if sched is not None:
            return sched.pods_on(node)
        return [p for p in self.api.store.list(PODS) if (p.get("spec") or {}).get("nodeName") == node]

    def _mark_pods_not_ready(self, node: str, now: str) -> None:
        for pod in self._pods_on(node):
            status = copy.deepcopy(pod.get("status") or {})
            changed = False
            for cond in status.get("conditions") or []:
                if cond.get("type") in ("Ready", "ContainersReady") and cond.get("status") != "False":
                    cond["status"] = "False"
                    cond["lastTransitionTime"] = now
                    changed = True
            for cs in status.get("containerStatuses") or []:
                if cs.get("ready"):
                    cs["ready"] = False
                    changed = True
            if changed:
                self.api.write_status(PODS, pod, status)

    def _renew_lease(self, node: dict[str, Any], now_s: str) -> None:
        if self.api.store.count(NODES) > LEASE_LIMIT:
            return
        name = node["metadata"]["name"]
        micro = self.c.clock.stamp_micro() if not self.api.bootstrapping else now_s.replace("Z", ".000000Z")
        lease = self.api.store.get(LEASES, "kube-node-lease", name)
        if self.api.store.get(core("namespaces"), None, "kube-node-lease") is None:
            return
        if lease is None:
            self.api.create(
                LEASES,
                "kube-node-lease",
                {
                    "metadata": {
                        "name": name,
                        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": node["metadata"]["uid"]}],
                    },
                    "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro},
                },
            )
        else:
            new = copy.deepcopy(lease)
            new["spec"]["renewTime"] = micro
            self.api.write(LEASES, new, manager="k3s")


def controllers(cluster: Any) -> list[Any]:
    return [NodeLifecycle(cluster)]
