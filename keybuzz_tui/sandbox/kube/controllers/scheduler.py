"""default-scheduler: filter nodes like the real plugins, bind, or explain why not.

The FailedScheduling text is assembled the way the scheduler's FitError does it (counts per
reason, sorted, then the preemption summary), because operators and the wizard read it to find
the port conflict: "1 node(s) didn't have free ports for the requested pod ports".
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from typing import Any

from ..registry import core
from ..selectors import parse_label_selector
from ..store import Event

PODS = core("pods")
NODES = core("nodes")

PORTS_REASON = "node(s) didn't have free ports for the requested pod ports"
AFFINITY_PLUGIN_REASON = "node(s) didn't satisfy plugin(s) [NodeAffinity]"
SELECTOR_REASON = "node(s) didn't match Pod's node affinity/selector"
UNSCHEDULABLE_REASON = "node(s) were unschedulable"


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for t in tolerations:
        effect = t.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        op = t.get("operator", "Equal")
        key = t.get("key")
        if op == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def untolerated_taint(pod_spec: dict[str, Any], node: dict[str, Any], effects: tuple[str, ...]) -> dict[str, Any] | None:
    tols = pod_spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in effects and not tolerates(tols, taint):
            return taint
    return None


def _match_expr(values_of: dict[str, str], expr: dict[str, Any]) -> bool:
    key, op, vals = expr.get("key"), expr.get("operator"), expr.get("values") or []
    present = key in values_of
    v = values_of.get(key)
    if op == "In":
        return present and v in vals
    if op == "NotIn":
        return not present or v not in vals
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and vals:
        try:
            return int(v) > int(vals[0]) if op == "Gt" else int(v) < int(vals[0])
        except (TypeError, ValueError):
            return False
    return False


def affinity_pins(pod_spec: dict[str, Any]) -> bool:
    """DaemonSet pods pin their node with matchFields metadata.name (a PreFilter result)."""
    terms = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
        .get("nodeSelectorTerms")
        or []
    )
    return any(any(f.get("key") == "metadata.name" for f in t.get("matchFields") or []) for t in terms)


def pinned_names(pod_spec: dict[str, Any]) -> set[str] | None:
    """The NodeAffinity PreFilter result: when every required term names its nodes with
    `matchFields metadata.name In [...]` (a DaemonSet pod), only those nodes can match; None when
    some term does not restrict by name (every node is a candidate)."""
    terms = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
        .get("nodeSelectorTerms")
        or []
    )
    if not terms:
        return None
    names: set[str] = set()
    for t in terms:
        ins = [f for f in t.get("matchFields") or [] if f.get("key") == "metadata.name" and f.get("operator") == "In"]
        if not ins:
            return None
        allowed = set(ins[0].get("values") or [])
        for f in ins[1:]:
            allowed &= set(f.get("values") or [])
        names |= allowed
    return names


def node_matches(pod_spec: dict[str, Any], node: dict[str, Any]) -> bool:
    labels = node.get("metadata", {}).get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
        .get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    if not required:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    for term in required.get("nodeSelectorTerms") or []:
        ok = all(_match_expr(labels, e) for e in term.get("matchExpressions") or [])
        ok = ok and all(_match_expr(fields, e) for e in term.get("matchFields") or [])
        if ok and (term.get("matchExpressions") or term.get("matchFields")):
            return True
    return False


def host_ports(pod: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) the pod asks for, hostNetwork containerPorts included."""
    spec = pod.get("spec") or {}
    out = []
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for p in c.get("ports") or []:
            hp = p.get("hostPort") or (p.get("containerPort") if spec.get("hostNetwork") else 0)
            if hp:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol", "TCP"), int(hp)))
    return out


def ports_conflict(wanted: list[tuple[str, str, int]], used: list[tuple[str, str, int]]) -> bool:
    for ip, proto, port in wanted:
        for uip, uproto, uport in used:
            if port == uport and proto == uproto and (ip == uip or "0.0.0.0" in (ip, uip)):
                return True
    return False


class Scheduler:
    name = "scheduler"

    def __init__(self, cluster: Any) -> None:
        self.c = cluster
        self.api = cluster.api
        self.by_node: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.pending: set[tuple[str, str]] = set()
        self.attempts: Counter[tuple[str, str]] = Counter()

    # --- index -------------------------------------------------------------------------------

    def keys_for(self, ev: Event):
        if ev.rt.key == PODS.key:
            meta = ev.obj["metadata"]
            key = (meta["namespace"], meta["name"])
            old_node = ((ev.old or {}).get("spec") or {}).get("nodeName")
            new_node = (ev.obj.get("spec") or {}).get("nodeName")
            if old_node and (ev.type == "DELETED" or old_node != new_node):
                self.by_node[old_node].discard(key)
            if ev.type == "DELETED":
                self.pending.discard(key)
                self.attempts.pop(key, None)
                if old_node or new_node:
                    # a freed port or slot: retry what could not be placed
                    yield from list(self.pending)
                return
            if new_node:
                self.by_node[new_node].add(key)
                self.pending.discard(key)
            else:
                yield key
        elif ev.rt.key == NODES.key and ev.type in ("ADDED", "MODIFIED"):
            if ev.old is None or (ev.old.get("spec") != ev.obj.get("spec")) or (ev.old.get("metadata", {}).get("labels") != ev.obj.get("metadata", {}).get("labels")):
                yield from list(self.pending)

    def pods_on(self, node: str) -> list[dict[str, Any]]:
        out = []
        for ns, name in list(self.by_node.get(node, ())):
            p = self.api.store.get(PODS, ns, name)
            if p is not None:
                out.append(p)
        return out

    # --- scheduling --------------------------------------------------------------------------

    def reconcile(self, ns: str | None, name: str) -> float | None:
        pod = self.api.store.get(PODS, ns, name)
        if pod is None:
            return None
        spec = pod.get("spec") or {}
        if spec.get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            return None
        if spec.get("schedulerName", "default-scheduler") != "default-scheduler" or spec.get("schedulingGates"):
            return None
        key = (ns or "", name)
        reasons: Counter[str] = Counter()
        feasible: list[dict[str, Any]] = []
        wanted = host_ports(pod)
        pinned = affinity_pins(spec)
        names = pinned_names(spec)
        if names is None:
            nodes = self.api.store.list(NODES)
            total = len(nodes)
        else:
            # PreFilter: only the named nodes are evaluated, the others fail NodeAffinity (this
            # keeps a 1,000-node DaemonSet from costing a million node checks)
            nodes = [n for n in (self.api.store.get(NODES, None, nm) for nm in sorted(names)) if n is not None]
            total = self.api.store.count(NODES)
            if total > len(nodes):
                reasons[AFFINITY_PLUGIN_REASON] += total - len(nodes)
        for node in nodes:
            nname = node["metadata"]["name"]
            if not node_matches(spec, node):
                reasons[AFFINITY_PLUGIN_REASON if pinned else SELECTOR_REASON] += 1
                continue
            if (node.get("spec") or {}).get("unschedulable") and not any(
                t.get("key") == "node.kubernetes.io/unschedulable" for t in spec.get("tolerations") or []
            ):
                reasons[UNSCHEDULABLE_REASON] += 1
                continue
            taint = untolerated_taint(spec, node, ("NoSchedule", "NoExecute"))
            if taint is not None:
                # TaintToleration's reason prints key and value even when the value is empty
                reasons[f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"] += 1
                continue
            if wanted:
                used = [hp for p in self.pods_on(nname) if p["metadata"]["name"] != name and not _terminal(p) for hp in host_ports(p)]
                if ports_conflict(wanted, used):
                    reasons[PORTS_REASON] += 1
                    continue
            feasible.append(node)
        if feasible:
            node = min(feasible, key=lambda n: (len(self.by_node.get(n["metadata"]["name"], ())), n["metadata"]["name"]))
            self._bind(pod, node["metadata"]["name"])
            return None
        self.pending.add(key)
        self.attempts[key] += 1
        self._fail(pod, total, reasons)
        return min(60.0, 2.0 ** min(self.attempts[key], 6))

    def _bind(self, pod: dict[str, Any], node: str) -> None:
        new = copy.deepcopy(pod)
        new["spec"]["nodeName"] = node
        stored = self.api.write(PODS, new, manager="k3s")
        status = copy.deepcopy(stored.get("status") or {})
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conds.insert(0, {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": self.api.now()})
        status["conditions"] = conds
        stored = self.api.write_status(PODS, stored, status) or stored
        meta = pod["metadata"]
        self.c.recorder.record(
            stored, "Normal", "Scheduled", f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}", component="default-scheduler"
        )

    def _fail(self, pod: dict[str, Any], total: int, reasons: Counter[str]) -> None:
        parts = sorted(f"{n} {r}" for r, n in reasons.items())
        not_helpful = sum(n for r, n in reasons.items() if r != PORTS_REASON)
        victims = reasons.get(PORTS_REASON, 0)
        pre = []
        if victims:
            pre.append(f"{victims} No preemption victims found for incoming pod")
        if not_helpful:
            pre.append(f"{not_helpful} Preemption is not helpful for scheduling")
        msg = f"0/{total} nodes are available: {', '.join(parts)}."
        if pre:
            msg += f" preemption: 0/{total} nodes are available: {', '.join(sorted(pre))}."
        if total == 0:
            msg = "no nodes available to schedule pods"
        status = copy.deepcopy(pod.get("status") or {})
        cond = {"type": "PodScheduled", "status": "False", "lastProbeTime": None, "lastTransitionTime": self.api.now(), "reason": "Unschedulable", "message": msg}
        old = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        if old is None or old.get("message") != msg or old.get("status") != "False":
            status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"] + [cond]
            status["phase"] = "Pending"
            self.api.write_status(PODS, pod, status)
        self.c.recorder.record(pod, "Warning", "FailedScheduling", msg, component="default-scheduler")


def _terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def controllers(cluster: Any) -> list[Any]:
    return [Scheduler(cluster)]


__all__ = ["Scheduler", "tolerates", "untolerated_taint", "node_matches", "host_ports", "parse_label_selector"]
