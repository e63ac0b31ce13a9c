"""How lists merge, for the kinds the sandbox serves: the facts both patch styles need.

A real apiserver reads these from its OpenAPI schema: strategic merge patch uses
`x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`, server-side apply uses
`x-kubernetes-list-type` / `x-kubernetes-list-map-keys`. Both are kept here side by side,
per location, so the SMP engine, the SSA engine and the generated /openapi/v3 documents all read
one table. Any list not named here is atomic (replaced as a whole), which is also the real default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SSAType = Literal["atomic", "set", "map"]
SMPStrategy = Literal["replace", "merge", "merge,retainKeys"]


@dataclass(frozen=True)
class ListMeta:
    ssa_type: SSAType = "atomic"
    keys: tuple[str, ...] = ()
    smp_strategy: SMPStrategy = "replace"
    smp_key: str | None = None


ATOMIC = ListMeta()

# Defaults the apiserver fills in before it compares associative-list keys.
KEY_DEFAULTS: dict[str, object] = {"protocol": "TCP"}

_META = {
    ("finalizers",): ListMeta("set", (), "merge", None),
    ("ownerReferences",): ListMeta("map", ("uid",), "merge", "uid"),
}

_CONTAINER = {
    ("ports",): ListMeta("map", ("containerPort", "protocol"), "merge", "containerPort"),
    ("env",): ListMeta("map", ("name",), "merge", "name"),
    ("volumeMounts",): ListMeta("map", ("mountPath",), "merge", "mountPath"),
    ("volumeDevices",): ListMeta("map", ("devicePath",), "merge", "devicePath"),
    ("resizePolicy",): ListMeta("atomic"),
    ("resources", "claims"): ListMeta("map", ("name",)),
}

_POD_SPEC = {
    ("containers",): ListMeta("map", ("name",), "merge", "name"),
    ("initContainers",): ListMeta("map", ("name",), "merge", "name"),
    ("ephemeralContainers",): ListMeta("map", ("name",), "merge", "name"),
    ("volumes",): ListMeta("map", ("name",), "merge,retainKeys", "name"),
    ("imagePullSecrets",): ListMeta("map", ("name",), "merge", "name"),
    ("hostAliases",): ListMeta("map", ("ip",), "merge", "ip"),
    ("topologySpreadConstraints",): ListMeta("map", ("topologyKey", "whenUnsatisfiable"), "merge", "topologyKey"),
    ("resourceClaims",): ListMeta("map", ("name",), "merge,retainKeys", "name"),
    ("schedulingGates",): ListMeta("map", ("name",), "merge", "name"),
    ("resources", "claims"): ListMeta("map", ("name",)),
    # ObjectMeta embedded in ephemeral volume claim templates keeps its type's list semantics
    ("volumes", "ephemeral", "volumeClaimTemplate", "metadata", "finalizers"): _META[("finalizers",)],
    ("volumes", "ephemeral", "volumeClaimTemplate", "metadata", "ownerReferences"): _META[("ownerReferences",)],
}

_POD_STATUS = {
    ("conditions",): ListMeta("map", ("type",), "merge", "type"),
    ("podIPs",): ListMeta("map", ("ip",), "merge", "ip"),
    ("hostIPs",): ListMeta("atomic"),
    ("resources", "claims"): ListMeta("map", ("name",)),
    ("containerStatuses", "resources", "claims"): ListMeta("map", ("name",)),
    ("initContainerStatuses", "resources", "claims"): ListMeta("map", ("name",)),
    ("ephemeralContainerStatuses", "resources", "claims"): ListMeta("map", ("name",)),
}

_CONDITIONS = {("conditions",): ListMeta("map", ("type",), "merge", "type")}

_SERVICE_SPEC = {
    ("ports",): ListMeta("map", ("port", "protocol"), "merge", "port"),
    ("clusterIPs",): ListMeta("atomic"),
    ("ipFamilies",): ListMeta("atomic"),
    ("externalIPs",): ListMeta("atomic"),
}

_NODE = {
    ("spec", "podCIDRs"): ListMeta("set", (), "merge", None),
    ("status", "addresses"): ListMeta("map", ("type",), "merge", "type"),
    ("status", "conditions"): ListMeta("map", ("type",), "merge", "type"),
}

# Where a PodSpec / PodTemplateSpec lives in each kind.
POD_SPEC_AT: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "DaemonSet": ("spec", "template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
}
STATUS_WITH_CONDITIONS = {"DaemonSet", "Deployment", "ReplicaSet", "StatefulSet", "Namespace", "Service"}


def _strip(path: tuple[str, ...], prefix: tuple[str, ...]) -> tuple[str, ...] | None:
    return path[len(prefix) :] if path[: len(prefix)] == prefix else None


def list_meta(kind: str, path: tuple[str, ...]) -> ListMeta:
    """List semantics at `path` (field names only, no indices) inside an object of `kind`."""
    # metadata, at the root and in pod templates
    for meta_root in (("metadata",), POD_SPEC_AT.get(kind, ("-",))[:-1] + ("metadata",)):
        rest = _strip(path, meta_root)
        if rest is not None and rest in _META:
            return _META[rest]
    pod_spec = POD_SPEC_AT.get(kind)
    if pod_spec is not None:
        rest = _strip(path, pod_spec)
        if rest is not None:
            if rest in _POD_SPEC:
                return _POD_SPEC[rest]
            for containers in (("containers",), ("initContainers",), ("ephemeralContainers",)):
                inner = _strip(rest, containers)
                if inner is not None and inner in _CONTAINER:
                    return _CONTAINER[inner]
            if rest[:2] == ("affinity", "nodeAffinity"):
                return ATOMIC
    if kind == "Pod":
        rest = _strip(path, ("status",))
        if rest is not None and rest in _POD_STATUS:
            return _POD_STATUS[rest]
    if kind == "Service":
        rest = _strip(path, ("spec",))
        if rest is not None and rest in _SERVICE_SPEC:
            return _SERVICE_SPEC[rest]
    if kind == "Node" and path in _NODE:
        return _NODE[path]
    if kind in STATUS_WITH_CONDITIONS and path == ("status", "conditions"):
        return _CONDITIONS[("conditions",)]
    return ATOMIC


def smp_strategy(kind: str, path: tuple[str, ...]) -> tuple[SMPStrategy, str | None]:
    m = list_meta(kind, path)
    return m.smp_strategy, m.smp_key
