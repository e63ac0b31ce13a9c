"""Events as components record them: named <object>.<hex>, aggregated by count like the
client-go event recorder, with the reporting component and host that `kubectl describe` shows."""

from __future__ import annotations

import random
from typing import Any

from ..api import KubeApi
from ..errors import ApiError
from ..registry import core

EVENTS = core("events")


class Recorder:
    def __init__(self, api: KubeApi, seed: int = 11) -> None:
        self.api = api
        self._rand = random.Random(seed)
        self._index: dict[tuple[str, ...], str] = {}

    def record(
        self,
        obj: dict[str, Any],
        etype: str,
        reason: str,
        message: str,
        *,
        component: str,
        host: str | None = None,
        field_path: str | None = None,
    ) -> None:
        if self.api.bootstrapping:
            return
        meta = obj.get("metadata", {})
        ns = meta.get("namespace") or "default"
        involved = {
            "kind": obj.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "apiVersion": obj.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if field_path:
            involved["fieldPath"] = field_path
        involved = {k: v for k, v in involved.items() if v is not None}
        key = (ns, str(meta.get("uid")), etype, reason, message, component, host or "", field_path or "")
        now = self.api.now()
        source: dict[str, Any] = {"component": component}
        if host:
            source["host"] = host
        existing = self._index.get(key)
        if existing is not None:
            cur = self.api.store.get(EVENTS, ns, existing)
            if cur is not None:
                new = dict(cur)
                new["count"] = int(cur.get("count", 1)) + 1
                new["lastTimestamp"] = now
                try:
                    self.api.write(EVENTS, new, manager=component)
                except ApiError:
                    pass
                return
        name = f"{meta.get('name')}.{self._rand.getrandbits(64):016x}"[:253]
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": etype,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host or "",
        }
        try:
            self.api.create(EVENTS, ns, event)
        except ApiError:
            return  # the namespace is going away: events are best effort, as in a real cluster
        self._index[key] = name
