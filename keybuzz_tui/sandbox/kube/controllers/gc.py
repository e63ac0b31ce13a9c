"""The garbage collector: ownerReferences decide what goes when an owner goes.

Background (the default) deletes dependents whose owners are all gone; Orphan strips the owner
reference and lets the owner go; Foreground deletes the dependents first and only then the owner.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

from ..errors import ApiError
from ..registry import BY_KEY, ResourceType
from ..store import Event


class GarbageCollector:
    name = "garbage-collector"

    def __init__(self, cluster: Any) -> None:
        self.c = cluster
        self.api = cluster.api
        self.dependents: dict[str, set[tuple[str, str | None, str]]] = defaultdict(set)
        self.owners: dict[str, tuple[str, str | None, str]] = {}

    def keys_for(self, ev: Event):
        meta = ev.obj["metadata"]
        uid = meta.get("uid")
        me = (ev.rt.key, meta.get("namespace"), meta["name"])
        if ev.type == "DELETED":
            self.owners.pop(uid, None)
            for ref in meta.get("ownerReferences") or []:
                self.dependents[ref["uid"]].discard(me)
            if uid in self.dependents:
                yield None, uid
            return
        self.owners[uid] = me
        old_refs = {r["uid"] for r in ((ev.old or {}).get("metadata") or {}).get("ownerReferences") or []}
        new_refs = {r["uid"] for r in meta.get("ownerReferences") or []}
        for u in old_refs - new_refs:
            self.dependents[u].discard(me)
        for u in new_refs:
            self.dependents[u].add(me)
            if u not in self.owners:
                yield None, u  # dangling reference: its owner is already gone
        fins = meta.get("finalizers") or []
        if meta.get("deletionTimestamp") and ("orphan" in fins or "foregroundDeletion" in fins):
            yield None, uid

    def reconcile(self, _ns: str | None, uid: str) -> float | None:
        deps = list(self.dependents.get(uid, ()))
        owner_key = self.owners.get(uid)
        owner = None
        if owner_key is not None:
            owner = self.api.store.get(BY_KEY[owner_key[0]], owner_key[1], owner_key[2])
        if owner is None:
            for key, ns, name in deps:
                rt = BY_KEY[key]
                obj = self.api.store.get(rt, ns, name)
                if obj is None:
                    self.dependents[uid].discard((key, ns, name))
                    continue
                alive = [r for r in obj["metadata"].get("ownerReferences") or [] if r["uid"] != uid and r["uid"] in self.owners]
                if alive:
                    self._strip(rt, obj, uid)
                elif not obj["metadata"].get("deletionTimestamp"):
                    try:
                        self.api.delete(rt, ns, name)
                    except ApiError:
                        pass
            if not self.dependents.get(uid):
                self.dependents.pop(uid, None)
            return None
        fins = owner["metadata"].get("finalizers") or []
        rt = BY_KEY[owner_key[0]]  # type: ignore[index]
        if "orphan" in fins:
            for key, ns, name in deps:
                dep = self.api.store.get(BY_KEY[key], ns, name)
                if dep is not None:
                    self._strip(BY_KEY[key], dep, uid)
            self._drop_finalizer(rt, owner, "orphan")
            return None
        if "foregroundDeletion" in fins:
            live = []
            for key, ns, name in deps:
                dep = self.api.store.get(BY_KEY[key], ns, name)
                if dep is None:
                    continue
                live.append(dep)
                if not dep["metadata"].get("deletionTimestamp"):
                    try:
                        self.api.delete(BY_KEY[key], ns, name, propagation="Foreground")
                    except ApiError:
                        pass
            if not live:
                self._drop_finalizer(rt, owner, "foregroundDeletion")
                return None
            return 1.0
        return None

    def _strip(self, rt: ResourceType, obj: dict[str, Any], uid: str) -> None:
        new = copy.deepcopy(obj)
        new["metadata"]["ownerReferences"] = [r for r in new["metadata"].get("ownerReferences") or [] if r["uid"] != uid]
        if not new["metadata"]["ownerReferences"]:
            del new["metadata"]["ownerReferences"]
        self.api.write(rt, new, manager="k3s")

    def _drop_finalizer(self, rt: ResourceType, obj: dict[str, Any], fin: str) -> None:
        self.api.remove_finalizer(rt, obj, fin)


def controllers(cluster: Any) -> list[Any]:
    return [GarbageCollector(cluster)]
