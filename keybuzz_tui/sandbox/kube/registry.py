"""The resource types the sandbox serves, with the discovery facts a real K3s server reports.

One table drives discovery (/api/v1, /apis/GROUP/VERSION), URL routing, field-selector support,
Status messages ("daemonsets.apps \"api\" not found") and RBAC resource names, so that these can
never disagree with each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

READ = ("get", "list", "watch")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

# Field selectors the real apiserver accepts beyond metadata.name / metadata.namespace
# (kubernetes pkg/apis/core/v1/conversion.go, see shared/reference/kubernetes.md 2.8).
POD_FIELDS = frozenset(
    {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    }
)
SERVICE_FIELDS = frozenset({"spec.clusterIP", "spec.type"})
EVENT_FIELDS = frozenset(
    {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    }
)
NODE_FIELDS = frozenset({"spec.unschedulable"})
SECRET_FIELDS = frozenset({"type"})
NAMESPACE_FIELDS = frozenset({"status.phase"})


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    extra_fields: frozenset[str] = field(default_factory=frozenset)
    # generation is bumped on spec changes for these (workloads, ingresses, pods since 1.33)
    has_generation: bool = False
    # status is only written through the /status subresource
    has_status: bool = False
    # DELETE answers with the deleted object rather than a Status (registry ReturnDeletedObject)
    returns_deleted_object: bool = False

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def group_resource(self) -> str:
        """`daemonsets.apps` / `pods`: how Status messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self) -> str:
        """Store key: `apps/daemonsets`, `core/pods`."""
        return f"{self.group or 'core'}/{self.plural}"

    @property
    def field_selectors(self) -> frozenset[str]:
        return frozenset({"metadata.name", "metadata.namespace"}) | self.extra_fields

    def base_path(self, namespace: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"


_TYPES: list[ResourceType] = [
    # core/v1
    ResourceType("", "v1", "Namespace", "namespaces", False, ("ns",), verbs=("create", "delete", "get", "list", "patch", "update", "watch"), subresources=("status", "finalize"), extra_fields=NAMESPACE_FIELDS, has_status=True),
    ResourceType("", "v1", "Node", "nodes", False, ("no",), subresources=("status",), extra_fields=NODE_FIELDS, has_status=True),
    ResourceType("", "v1", "Pod", "pods", True, ("po",), categories=("all",), subresources=("status", "log", "binding", "eviction"), extra_fields=POD_FIELDS, has_generation=True, has_status=True, returns_deleted_object=True),
    ResourceType("", "v1", "Service", "services", True, ("svc",), verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"), categories=("all",), subresources=("status",), extra_fields=SERVICE_FIELDS, has_status=True, returns_deleted_object=True),
    ResourceType("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    ResourceType("", "v1", "Secret", "secrets", True, extra_fields=SECRET_FIELDS),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    ResourceType("", "v1", "Event", "events", True, ("ev",), extra_fields=EVENT_FIELDS),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",), returns_deleted_object=True),
    # apps/v1
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), categories=("all",), subresources=("status",), has_generation=True, has_status=True),
    ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), categories=("all",), subresources=("status", "scale"), has_generation=True, has_status=True),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), categories=("all",), subresources=("status", "scale"), has_generation=True, has_status=True),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), categories=("all",), subresources=("status", "scale"), has_generation=True, has_status=True),
    ResourceType("apps", "v1", "ControllerRevision", "controllerrevisions", True),
    # discovery.k8s.io/v1
    ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True),
    # networking.k8s.io/v1
    ResourceType("networking.k8s.io", "v1", "Ingress", "ingresses", True, ("ing",), subresources=("status",), has_generation=True, has_status=True),
    ResourceType("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    # coordination.k8s.io/v1
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True),
    # authorization.k8s.io/v1
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False, verbs=("create",)),
]

BY_KEY: dict[str, ResourceType] = {t.key: t for t in _TYPES}
BY_GV_PLURAL: dict[tuple[str, str, str], ResourceType] = {(t.group, t.version, t.plural): t for t in _TYPES}
BY_KIND: dict[tuple[str, str], ResourceType] = {(t.api_version, t.kind): t for t in _TYPES}
GROUPS: dict[str, list[str]] = {}
for _t in _TYPES:
    GROUPS.setdefault(_t.group, [])
    if _t.version not in GROUPS[_t.group]:
        GROUPS[_t.group].append(_t.version)

# The order `kubectl api-resources` shows for a K3s server: core first, then groups alphabetically
# except that apps sits right after core as on a real server.
GROUP_ORDER = ["", "apps", "authorization.k8s.io", "coordination.k8s.io", "discovery.k8s.io", "networking.k8s.io"]


def all_types() -> list[ResourceType]:
    return list(_TYPES)


def types_in(group: str, version: str) -> list[ResourceType]:
    return [t for t in _TYPES if t.group == group and t.version == version]


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    return BY_GV_PLURAL.get((group, version, plural))


def for_kind(api_version: str, kind: str) -> ResourceType | None:
    return BY_KIND.get((api_version, kind))


def core(plural: str) -> ResourceType:
    return BY_KEY[f"core/{plural}"]


def apps(plural: str) -> ResourceType:
    return BY_KEY[f"apps/{plural}"]
