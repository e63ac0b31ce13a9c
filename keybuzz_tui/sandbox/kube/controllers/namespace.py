"""Namespace deletion: Terminating, every object inside deleted, then the `kubernetes` finalizer
removed through /finalize so the namespace disappears, with the status conditions kubectl shows."""

from __future__ import annotations

import copy
from typing import Any

from ..registry import all_types, core
from ..store import Event

NAMESPACES = core("namespaces")


class NamespaceController:
    name = "namespace"

    def __init__(self, cluster: Any) -> None:
        self.c = cluster
        self.api = cluster.api

    def keys_for(self, ev: Event):
        if ev.rt.key == NAMESPACES.key and ev.obj["metadata"].get("deletionTimestamp") and ev.type != "DELETED":
            yield None, ev.obj["metadata"]["name"]
        elif ev.type == "DELETED" and ev.rt.namespaced:
            ns = ev.obj["metadata"].get("namespace")
            cur = self.api.store.get(NAMESPACES, None, ns) if ns else None
            if cur is not None and cur["metadata"].get("deletionTimestamp"):
                yield None, ns

    def reconcile(self, _ns: str | None, name: str) -> float | None:
        ns = self.api.store.get(NAMESPACES, None, name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        remaining = 0
        for rt in all_types():
            if not rt.namespaced or "delete" not in rt.verbs:
                continue
            for obj in self.api.store.list(rt, name):
                remaining += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    try:
                        self.api.delete(rt, name, obj["metadata"]["name"])
                    except Exception:
                        pass
        if remaining:
            status = copy.deepcopy(ns.get("status") or {})
            status["phase"] = "Terminating"
            status["conditions"] = [
                {"type": "NamespaceContentRemaining", "status": "True", "lastTransitionTime": self.api.now(), "reason": "SomeResourcesRemain", "message": f"Some resources are remaining: {remaining} objects"},
            ]
            self.api.write_status(NAMESPACES, ns, status)
            return 1.0
        new = copy.deepcopy(ns)
        new.setdefault("spec", {})["finalizers"] = []
        self.api.update(NAMESPACES, None, name, new, subresource="finalize")
        return None


def controllers(cluster: Any) -> list[Any]:
    return [NamespaceController(cluster)]
