"""Endpoints and EndpointSlices for every Service with a selector, as kube-controller-manager
keeps them: ready pods in addresses, others in notReadyAddresses, hostNetwork pods with their
node's IP (which is why NodePort -> hostPort works without the overlay)."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from ..registry import BY_KEY, core
from ..selectors import parse_label_selector
from ..store import Event

PODS = core("pods")
SERVICES = core("services")
ENDPOINTS = core("endpoints")
SLICES = BY_KEY["discovery.k8s.io/endpointslices"]


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _pod_ready(pod: dict[str, Any]) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def _resolve_port(pod: dict[str, Any], target: Any) -> int | None:
    if isinstance(target, int):
        return target
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return int(p["containerPort"])
    return None


class EndpointsController:
    name = "endpoints"
    # a rollout touches every pod of a Service within milliseconds: recompute once per burst
    coalesce = 0.05

    def __init__(self, cluster: Any) -> None:
        self.c = cluster
        self.api = cluster.api

    def keys_for(self, ev: Event):
        if ev.rt.key == SERVICES.key:
            yield ev.obj["metadata"]["namespace"], ev.obj["metadata"]["name"]
        elif ev.rt.key == PODS.key:
            ns = ev.obj["metadata"]["namespace"]
            if ev.type == "MODIFIED" and ev.old is not None and _endpoint_view(ev.old) == _endpoint_view(ev.obj):
                return
            labels = [ev.obj["metadata"].get("labels") or {}]
            if ev.old is not None:
                labels.append(ev.old["metadata"].get("labels") or {})
            for svc in self.api.store.list(SERVICES, ns):
                sel = (svc.get("spec") or {}).get("selector")
                if sel and any(_labels_match(sel, lb) for lb in labels):
                    yield ns, svc["metadata"]["name"]

    def reconcile(self, ns: str | None, name: str) -> float | None:
        svc = self.api.store.get(SERVICES, ns, name)
        if svc is None:
            for rt in (ENDPOINTS,):
                if self.api.store.get(rt, ns, name) is not None:
                    self.api.delete(rt, ns, name)
            for sl in self.api.store.list(SLICES, ns):
                if (sl["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == name:
                    self.api.delete(SLICES, ns, sl["metadata"]["name"])
            return None
        spec = svc.get("spec") or {}
        selector = spec.get("selector")
        if not selector or spec.get("type") == "ExternalName":
            return None
        pods = [
            p
            for p in self.api.store.list(PODS, ns)
            if _labels_match(selector, p["metadata"].get("labels") or {})
            and (p.get("status") or {}).get("podIP")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        self._endpoints(svc, pods)
        self._slice(svc, pods)
        return None

    def _endpoints(self, svc: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        groups: dict[tuple, dict[str, Any]] = {}
        for pod in sorted(pods, key=lambda p: p["status"]["podIP"]):
            ports = []
            for sp in (svc.get("spec") or {}).get("ports") or []:
                port = _resolve_port(pod, sp.get("targetPort", sp.get("port")))
                if port is None:
                    continue
                ep: dict[str, Any] = {"port": port, "protocol": sp.get("protocol", "TCP")}
                if sp.get("name"):
                    ep["name"] = sp["name"]
                ports.append(ep)
            if not ports:
                continue
            key = tuple(sorted((p.get("name", ""), p["port"], p["protocol"]) for p in ports))
            g = groups.setdefault(key, {"ports": ports})
            addr = {
                "ip": pod["status"]["podIP"],
                "nodeName": pod["spec"].get("nodeName"),
                "targetRef": {"kind": "Pod", "namespace": ns, "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]},
            }
            terminating = bool(pod["metadata"].get("deletionTimestamp"))
            bucket = "addresses" if _pod_ready(pod) and not terminating else "notReadyAddresses"
            g.setdefault(bucket, []).append(addr)
        subsets = [groups[k] for k in sorted(groups)]
        labels = dict(svc["metadata"].get("labels") or {})
        body = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns, "labels": labels}}
        if subsets:
            body["subsets"] = subsets
        cur = self.api.store.get(ENDPOINTS, ns, name)
        if cur is None:
            self.api.create(ENDPOINTS, ns, body)
        elif cur.get("subsets") != body.get("subsets") or (cur["metadata"].get("labels") or {}) != labels:
            new = copy.deepcopy(cur)
            new["metadata"]["labels"] = labels
            if subsets:
                new["subsets"] = subsets
            else:
                new.pop("subsets", None)
            self.api.write(ENDPOINTS, new, manager="k3s")

    def _slice(self, svc: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        ports = []
        for sp in (svc.get("spec") or {}).get("ports") or []:
            target = sp.get("targetPort", sp.get("port"))
            port = next((p for p in (_resolve_port(pod, target) for pod in pods) if p is not None), target if isinstance(target, int) else None)
            entry: dict[str, Any] = {"name": sp.get("name", ""), "port": port, "protocol": sp.get("protocol", "TCP")}
            ports.append(entry)
        endpoints = []
        for pod in sorted(pods, key=lambda p: p["status"]["podIP"]):
            terminating = bool(pod["metadata"].get("deletionTimestamp"))
            ready = _pod_ready(pod)
            endpoints.append(
                {
                    "addresses": [pod["status"]["podIP"]],
                    "conditions": {"ready": ready and not terminating, "serving": ready, "terminating": terminating},
                    "nodeName": pod["spec"].get("nodeName"),
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]},
                    "zone": "fsn1",
                }
            )
        labels = dict(svc["metadata"].get("labels") or {})
        labels.update({"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"})
        existing = [s for s in self.api.store.list(SLICES, ns) if (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == name]
        if not existing:
            suffix = hashlib.sha1(svc["metadata"]["uid"].encode()).hexdigest()[:5]
            body = {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-{suffix}",
                    "namespace": ns,
                    "labels": labels,
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name, "uid": svc["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}],
                },
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": ports,
            }
            self.api.create(SLICES, ns, body)
            return
        cur = existing[0]
        if cur.get("endpoints") != endpoints or cur.get("ports") != ports or cur["metadata"].get("labels") != labels:
            new = copy.deepcopy(cur)
            new["endpoints"], new["ports"] = endpoints, ports
            new["metadata"]["labels"] = labels
            self.api.write(SLICES, new, manager="k3s")


def _endpoint_view(pod: dict[str, Any]) -> tuple:
    st = pod.get("status") or {}
    return (
        st.get("podIP"),
        _pod_ready(pod),
        st.get("phase"),
        bool(pod["metadata"].get("deletionTimestamp")),
        tuple(sorted((pod["metadata"].get("labels") or {}).items())),
        (pod.get("spec") or {}).get("nodeName"),
    )


def controllers(cluster: Any) -> list[Any]:
    return [EndpointsController(cluster)]


__all__ = ["EndpointsController", "parse_label_selector"]
