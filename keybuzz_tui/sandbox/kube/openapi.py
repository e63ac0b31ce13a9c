"""Generated /openapi/v3 documents: what kubectl downloads before `apply`, `create` and `explain`.

Why this exists: kubectl 1.32 fetches `GET /openapi/v3` and then one group-version document for
three things, and without them it falls back to a protobuf `/openapi/v2` that the sandbox does not
serve, so `kubectl apply` (default `--validate=strict`) fails with "failed to download openapi":

1. `--validate=strict` support check (cli-runtime `pkg/resource/query_param_verifier_v3.go`,
   `supportsQueryParamV3`): for the object's GVK it looks at the PATCH operations whose
   `x-kubernetes-group-version-kind` (a single object on operations) equals the GVK and wants a
   `fieldValidation` query parameter on the *first* one it meets. Go map order is random, so every
   PATCH tagged with the kind (the main path, `/status`, `/ephemeralcontainers`) declares it.
2. client-side `kubectl apply` (kubectl `pkg/cmd/apply/patcher.go`, `patchSimple`): if the kind's
   PATCH operation accepts `application/strategic-merge-patch+json`, the three-way patch is computed
   from the component schema whose `x-kubernetes-group-version-kind` (an *array* on schemas)
   contains the GVK, walking `properties`, `items`, `allOf[0]` and `$ref` and reading
   `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`. A manifest field missing from
   the schema makes that computation fail ("unable to find api field"), so the schemas carry every
   field the installed python client knows.
3. `kubectl explain` (kubectl `pkg/explain/v2`): renders the group-version document as JSON,
   finding the kind through the operations' GVK and following `$ref`s; it prints `description`s.

The documents are generated here, never copied: types, fields, descriptions and `required` come
from the installed `kubernetes` python client's models (`openapi_types`, `attribute_map`, pydantic
`model_fields`); list merge semantics come from `schema.py` (one table shared with the SMP and SSA
engines); paths come from `registry.py`. A few facts the python models lose (int64 vs int32,
Quantity, MicroTime, IntOrString, RawExtension) are restored from small tables below.

Documents are built once per process and cached; `document_hash` is the SHA-512 of the exact bytes
served, as kube-openapi does, so `?hash=` in the index changes exactly when a document changes.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import threading
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import util as importlib_util
from pathlib import Path
from typing import Any

from . import registry, schema
from .registry import ResourceType

__all__ = [
    "build",
    "clear_cache",
    "document_hash",
    "document_paths",
    "openapi_v3_document",
    "openapi_v3_index",
]

REF = "#/components/schemas/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
TIME = f"{META}.Time"
MICRO_TIME = f"{META}.MicroTime"
FIELDS_V1 = f"{META}.FieldsV1"
PATCH = f"{META}.Patch"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"

# Python client classes that are apimachinery meta/v1 types (no API group owns them).
_META_CLASSES = frozenset(
    {
        "V1APIGroup",
        "V1APIGroupList",
        "V1APIResource",
        "V1APIResourceList",
        "V1APIVersions",
        "V1Condition",
        "V1DeleteOptions",
        "V1FieldSelectorRequirement",
        "V1GroupVersionForDiscovery",
        "V1LabelSelector",
        "V1LabelSelectorRequirement",
        "V1ListMeta",
        "V1ManagedFieldsEntry",
        "V1ObjectMeta",
        "V1OwnerReference",
        "V1Preconditions",
        "V1ServerAddressByClientCIDR",
        "V1Status",
        "V1StatusCause",
        "V1StatusDetails",
        "V1WatchEvent",
    }
)

# API module prefix (kubernetes/client/api/<prefix>_<version>_api.py) -> schema package.
_API_PACKAGES = {
    "rbac_authorization": "io.k8s.api.rbac",
    "flowcontrol_apiserver": "io.k8s.api.flowcontrol",
    "internal_apiserver": "io.k8s.api.apiserverinternal",
    "apiextensions": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
    "apiregistration": "io.k8s.kube-aggregator.pkg.apis.apiregistration",
}

# Integer fields the apiserver declares int64 (Go int64); every other integer is int32. The python
# client says only `int`. Keyed by JSON field name: within the served kinds no name is both.
_INT64_FIELDS = frozenset(
    {
        "activeDeadlineSeconds",
        "deletionGracePeriodSeconds",
        "expirationSeconds",
        "fsGroup",
        "generation",
        "gracePeriodSeconds",
        "observedGeneration",
        "remainingItemCount",
        "revision",
        "runAsGroup",
        "runAsUser",
        "seconds",
        "sizeBytes",
        "supplementalGroups",
        "terminationGracePeriodSeconds",
        "tolerationSeconds",
    }
)

# resource.Quantity fields (the python client types them `str` / `Dict[str, str]`).
_QUANTITY_FIELDS = frozenset(
    {
        ("V1ResourceRequirements", "limits"),
        ("V1ResourceRequirements", "requests"),
        ("V1VolumeResourceRequirements", "limits"),
        ("V1VolumeResourceRequirements", "requests"),
        ("V1PodSpec", "overhead"),
        ("V1NodeStatus", "allocatable"),
        ("V1NodeStatus", "capacity"),
        ("V1PersistentVolumeClaimStatus", "allocatedResources"),
        ("V1PersistentVolumeClaimStatus", "capacity"),
        ("V1PersistentVolumeSpec", "capacity"),
        ("V1ContainerStatus", "allocatedResources"),
        ("V1EmptyDirVolumeSource", "sizeLimit"),
        ("V1ResourceFieldSelector", "divisor"),
        ("V1ResourceQuotaSpec", "hard"),
        ("V1ResourceQuotaStatus", "hard"),
        ("V1ResourceQuotaStatus", "used"),
        ("V1LimitRangeItem", "default"),
        ("V1LimitRangeItem", "defaultRequest"),
        ("V1LimitRangeItem", "max"),
        ("V1LimitRangeItem", "maxLimitRequestRatio"),
        ("V1LimitRangeItem", "min"),
    }
)

# metav1.MicroTime fields (the python client says `datetime` for both Time and MicroTime).
_MICRO_TIME_FIELDS = frozenset(
    {
        ("CoreV1Event", "eventTime"),
        ("CoreV1EventSeries", "lastObservedTime"),
        ("EventsV1Event", "eventTime"),
        ("EventsV1EventSeries", "lastObservedTime"),
        ("V1LeaseSpec", "acquireTime"),
        ("V1LeaseSpec", "renewTime"),
    }
)

# `object` fields that are named apimachinery types rather than free-form JSON.
_OBJECT_FIELDS = {
    ("V1ManagedFieldsEntry", "fieldsV1"): FIELDS_V1,
    ("V1ControllerRevision", "data"): RAW_EXTENSION,
    ("V1WatchEvent", "object"): RAW_EXTENSION,
}

# Patch strategies on struct (non-list) fields. schema.py only describes lists; this is the one
# struct-level strategy in the served kinds: switching Deployment strategy type drops the other
# type's parameters (`$retainKeys`).
_STRUCT_PATCH_STRATEGY = {("V1DeploymentSpec", "strategy"): "retainKeys"}

# Schemas that have no python class: apimachinery scalars and opaque objects.
_BUILTIN_SCHEMAS: dict[str, dict[str, Any]] = {
    INT_OR_STRING: {
        "description": "IntOrString holds either an int32 or a string; in JSON it is a number or a string.",
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    },
    QUANTITY: {
        "description": 'Quantity is a fixed-point number written as a string such as "500m", "1Gi" or '
        '"2"; a bare number is accepted on input.',
        "oneOf": [{"type": "string"}, {"type": "number"}],
    },
    TIME: {
        "description": "Time is an RFC 3339 timestamp with second precision, always in UTC.",
        "format": "date-time",
        "type": "string",
    },
    MICRO_TIME: {
        "description": "MicroTime is an RFC 3339 timestamp with microsecond precision.",
        "format": "date-time",
        "type": "string",
    },
    FIELDS_V1: {
        "description": "FieldsV1 is the set of fields a manager owns, as a trie of f:<name>, k:<keys>, "
        "v:<value> and i:<index> entries.",
        "type": "object",
    },
    RAW_EXTENSION: {
        "description": "RawExtension holds an embedded object of any kind, as JSON.",
        "type": "object",
    },
    PATCH: {
        "description": "Patch is the body of a PATCH request; its shape depends on the Content-Type.",
        "type": "object",
    },
}

_MEDIA_JSON = "application/json"
_PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)

# Query parameters, written for the sandbox (the server reads the same names).
_QUERY: dict[str, tuple[str, str]] = {
    "pretty": ("string", "If 'true', the JSON reply is indented."),
    "dryRun": (
        "string",
        "When present (only 'All' is valid), the request is checked and answered but nothing is stored.",
    ),
    "fieldManager": (
        "string",
        (
            "Name of the actor making the change, recorded in managedFields. Required for "
            "apply patches (application/apply-patch+yaml)."
        ),
    ),
    "fieldValidation": (
        "string",
        (
            "How unknown or duplicate fields in the body are handled: Ignore (drop "
            "silently), Warn (drop and send a Warning header, the default) or Strict (fail with "
            "400 BadRequest)."
        ),
    ),
    "force": (
        "boolean",
        (
            "Only for apply patches: take ownership of fields other managers own instead of "
            "failing with a conflict."
        ),
    ),
    "allowWatchBookmarks": (
        "boolean",
        "With watch=true, ask for BOOKMARK events carrying only a resourceVersion.",
    ),
    "continue": ("string", "The continue token from the previous page of a limited list."),
    "fieldSelector": (
        "string",
        "Only return objects whose fields match, e.g. metadata.name=x or spec.nodeName=node-1.",
    ),
    "labelSelector": ("string", "Only return objects whose labels match (equality and set-based selectors)."),
    "limit": (
        "integer",
        "Maximum number of objects per page; a continue token is returned when more remain.",
    ),
    "resourceVersion": (
        "string",
        "Which version of the data the list or watch starts from; see resourceVersionMatch.",
    ),
    "resourceVersionMatch": ("string", "How resourceVersion is applied to a list: Exact or NotOlderThan."),
    "sendInitialEvents": (
        "boolean",
        (
            "With watch=true, start the stream with ADDED events for existing "
            "objects, ended by a BOOKMARK annotated k8s.io/initial-events-end."
        ),
    ),
    "timeoutSeconds": ("integer", "End the list or watch call after this many seconds."),
    "watch": ("boolean", "Stream ADDED, MODIFIED and DELETED events instead of returning a list."),
    "gracePeriodSeconds": (
        "integer",
        (
            "Seconds before the object is deleted; 0 deletes at once. Defaults to "
            "the object's own grace period."
        ),
    ),
    "orphanDependents": ("boolean", "Deprecated, use propagationPolicy: if true, dependents are orphaned."),
    "propagationPolicy": (
        "string",
        "What happens to dependents: Orphan, Background (the default for most kinds) or Foreground.",
    ),
    "ignoreStoreReadErrorWithClusterBreakingPotential": (
        "boolean",
        "Delete an object that cannot be read back from storage. Dangerous.",
    ),
    "container": ("string", "The container to read logs from; may be omitted when the pod has exactly one."),
    "follow": ("boolean", "Keep the connection open and stream new log lines."),
    "insecureSkipTLSVerifyBackend": ("boolean", "Do not verify the kubelet's serving certificate."),
    "limitBytes": ("integer", "Stop after this many bytes of log output."),
    "previous": ("boolean", "Return the logs of the previous, terminated instance of the container."),
    "sinceSeconds": ("integer", "Only logs newer than this many seconds."),
    "sinceTime": ("string", "Only logs written after this RFC 3339 time."),
    "stream": ("string", "Which stream to return: All (default), Stdout or Stderr."),
    "tailLines": ("integer", "Only the last N lines of the log."),
    "timestamps": ("boolean", "Prefix every line with an RFC 3339 timestamp."),
}

_LIST_PARAMS = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
_PATCH_PARAMS = (*_WRITE_PARAMS, "force")
_DELETE_PARAMS = (
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
)
_DELETECOLLECTION_PARAMS = (
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
)
_LOG_PARAMS = (
    "container",
    "follow",
    "insecureSkipTLSVerifyBackend",
    "limitBytes",
    "previous",
    "sinceSeconds",
    "sinceTime",
    "stream",
    "tailLines",
    "timestamps",
)

_RESPONSE_TEXT = {"200": "OK", "201": "Created", "202": "Accepted", "401": "Unauthorized"}


@dataclass(frozen=True)
class _SubKind:
    """The body of a subresource whose kind is not its parent's (scale, eviction, binding, token).

    These kinds have no list operation of their own in the python client, so the API-file scan in
    `_Types._assign_packages` cannot tell their package; this table does.
    """

    cls: str
    group: str
    version: str
    kind: str


_SUB_KINDS = {
    "scale": _SubKind("V1Scale", "autoscaling", "v1", "Scale"),
    "eviction": _SubKind("V1Eviction", "policy", "v1", "Eviction"),
    "binding": _SubKind("V1Binding", "", "v1", "Binding"),
    "token": _SubKind("AuthenticationV1TokenRequest", "authentication.k8s.io", "v1", "TokenRequest"),
}

_TYPE_RE = re.compile(r"^(?P<prefix>(?:[A-Z][a-z]+)*?)(?P<ver>V\d+(?:alpha\d+|beta\d+)?)(?P<name>[A-Z]\w*)$")
_API_FILE_RE = re.compile(r"^(?P<prefix>[a-z_]+?)_(?P<ver>v\d+(?:alpha\d+|beta\d+)?)_api\.py$")
_LIST_RETURN_RE = re.compile(r"'200': \"(\w+List)\"")


def _models() -> Any:
    return importlib.import_module("kubernetes.client.models")


def _pkg_for_group(group: str) -> str:
    """Schema package of a served API group: "" -> io.k8s.api.core, "networking.k8s.io" -> ...networking."""
    return f"io.k8s.api.{group.split('.')[0] if group else 'core'}"


def _group_head(group: str) -> str:
    """`Core`, `Apps`, `Networking`: how the python client and operationIds name a group."""
    return "".join(p.capitalize() for p in (group.split(".")[0] if group else "core").split("-"))


def _camel(group: str, version: str) -> str:
    """`CoreV1`, `AppsV1`, `NetworkingV1`: the group-version part of operationIds."""
    return f"{_group_head(group)}{version.capitalize()}"


def _flatten_annotation(ann: Any) -> list[Any]:
    """The concrete member types of an Optional/Union/Annotated pydantic annotation."""
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return _flatten_annotation(typing.get_args(ann)[0])
    if origin is typing.Union or origin is types.UnionType:
        out: list[Any] = []
        for a in typing.get_args(ann):
            out.extend(_flatten_annotation(a))
        return [a for a in out if a is not type(None)]
    return [ann]


def _class_description(cls: type) -> str:
    doc = cls.__doc__ or ""
    text = doc.split("Attributes:")[0]
    return " ".join(line.strip() for line in text.strip().splitlines()).strip()


class _Types:
    """Python client model classes -> OpenAPI component schemas named like the apiserver names them."""

    def __init__(self, served: Sequence[ResourceType]) -> None:
        self.models = _models()
        self.names = set(self.models.__all__)
        self.package: dict[str, str] = {}  # class name -> schema package
        self.meta_classes: set[str] = set(_META_CLASSES)  # + what only meta types reach (V1ShardInfo)
        self.kind_gvk: dict[str, list[dict[str, str]]] = {}  # class name -> x-kubernetes-group-version-kind
        self._schemas: dict[str, dict[str, Any]] = {}
        self._class_by_schema: dict[str, str] = {}
        self.list_ext: dict[tuple[str, str], schema.ListMeta] = {}
        self.list_conflicts: list[str] = []
        self._list_seen: dict[tuple[str, str], tuple[schema.ListMeta, str, tuple[str, ...]]] = {}
        self._assign_packages(served)
        for rt in served:
            self._collect_list_meta(rt)

    # -- naming ---------------------------------------------------------------------------------

    def cls(self, name: str) -> type:
        return typing.cast(type, getattr(self.models, name))

    def kind_class(self, group: str, version: str, kind: str) -> str:
        """The python class of a served kind: `CoreV1Event` when the name is shared, else `V1Pod`."""
        for candidate in (f"{_camel(group, version)}{kind}", f"{version.capitalize()}{kind}"):
            if candidate in self.names:
                return candidate
        raise LookupError(f"no python client model for {group}/{version} {kind}")

    def schema_name(self, cls_name: str) -> str:
        m = _TYPE_RE.match(cls_name)
        if cls_name in self.meta_classes:
            name = f"{META}.{m['name'] if m else cls_name}"
        elif m is None or cls_name not in self.package:
            raise LookupError(f"cannot name the schema of {cls_name}")
        else:
            name = f"{self.package[cls_name]}.{m['ver'].lower()}.{m['name']}"
        self._class_by_schema[name] = cls_name
        return name

    def _refs(self, cls_name: str) -> list[str]:
        cls = self.cls(cls_name)
        out: list[str] = []
        for t in cls.openapi_types.values():
            out.extend(n for n in re.findall(r"\w+", t) if n in self.names and n not in out)
        return out

    def _mark(self, roots: Iterable[str], package: str) -> None:
        """Give `package` to every not-yet-named, non-meta class reachable from `roots`."""
        stack = [r for r in roots]
        seen: set[str] = set()
        while stack:
            c = stack.pop()
            if c in seen or c in self.meta_classes:
                continue
            seen.add(c)
            self.package.setdefault(c, package)
            stack.extend(self._refs(c))

    def _assign_packages(self, served: Sequence[ResourceType]) -> None:
        """Which Go package each class lives in, so names match the real server's.

        Kinds are tagged from the python client's API modules (a `list` operation returning
        `<Kind>List` belongs to that module's group). A nested type gets core/v1 when any core kind
        reaches it (k8s.io/api/core/v1 imports no other API package), otherwise the package of the
        served kind that reaches it (apps, networking... only import core and meta).
        """
        kinds: dict[str, str] = {}
        api_dir = Path(
            next(iter(importlib_util.find_spec("kubernetes.client.api").submodule_search_locations))
        )
        for path in sorted(api_dir.glob("*_api.py")):
            m = _API_FILE_RE.match(path.name)
            if m is None:
                continue
            pkg = _API_PACKAGES.get(m["prefix"], f"io.k8s.api.{m['prefix'].split('_')[0]}")
            for list_cls in _LIST_RETURN_RE.findall(path.read_text()):
                item = list_cls[: -len("List")]
                if item in self.names and item not in _META_CLASSES:
                    kinds.setdefault(item, pkg)
        for sk in _SUB_KINDS.values():
            kinds[sk.cls] = _pkg_for_group(sk.group)
        for rt in served:
            kinds[self.kind_class(rt.group, rt.version, rt.kind)] = _pkg_for_group(rt.group)
        self.package.update(kinds)
        for c, pkg in kinds.items():
            m = _TYPE_RE.match(c)
            if pkg == "io.k8s.api.core" and m is not None:
                # every core kind is tagged, as the apiserver does (PersistentVolumeClaim in apps/v1)
                self.kind_gvk[c] = [{"group": "", "kind": m["name"], "version": m["ver"].lower()}]
        stack = sorted(_META_CLASSES)
        while stack:
            c = stack.pop()
            for r in self._refs(c):
                if r not in self.meta_classes and r not in kinds:
                    self.meta_classes.add(r)
                    stack.append(r)
        self._mark(sorted(c for c, p in kinds.items() if p == "io.k8s.api.core"), "io.k8s.api.core")
        for rt in served:
            c = self.kind_class(rt.group, rt.version, rt.kind)
            self._mark([c], kinds[c])
            self.kind_gvk[c] = [{"group": rt.group, "kind": rt.kind, "version": rt.version}]
            list_cls = f"{c}List"
            if list_cls in self.names:
                self.package.setdefault(list_cls, kinds[c])
                self.kind_gvk[list_cls] = [{"group": rt.group, "kind": rt.list_kind, "version": rt.version}]
        for sub in _SUB_KINDS.values():
            self._mark([sub.cls], self.package[sub.cls])
            self.kind_gvk[sub.cls] = [{"group": sub.group, "kind": sub.kind, "version": sub.version}]
        self.kind_gvk["V1Status"] = [{"group": "", "kind": "Status", "version": "v1"}]
        self.kind_gvk["V1APIResourceList"] = [{"group": "", "kind": "APIResourceList", "version": "v1"}]
        self.kind_gvk["V1APIGroupList"] = [{"group": "", "kind": "APIGroupList", "version": "v1"}]
        self.kind_gvk["V1APIGroup"] = [{"group": "", "kind": "APIGroup", "version": "v1"}]
        self.kind_gvk["V1APIVersions"] = [{"group": "", "kind": "APIVersions", "version": "v1"}]
        groups = [("", "v1")] + sorted({(rt.group, rt.version) for rt in served if rt.group})
        self.kind_gvk["V1DeleteOptions"] = [
            {"group": g, "kind": "DeleteOptions", "version": v} for g, v in groups
        ]

    # -- list semantics from schema.py ----------------------------------------------------------

    def _collect_list_meta(self, rt: ResourceType) -> None:
        """Map schema.py's (kind, path) rules onto (type, property), the way a document keys them.

        Walks the kind's type tree; every list property found at a path where schema.py says the
        list is not atomic gets that ListMeta on its owning type. Two paths reaching the same
        (type, property) with different answers (atomic included: a rule missing at one of the
        paths) are recorded in `list_conflicts` (a test keeps it empty), because a document can
        only say one thing per type.
        """
        root = self.kind_class(rt.group, rt.version, rt.kind)
        stack: list[tuple[str, tuple[str, ...], frozenset[str]]] = [(root, (), frozenset())]
        while stack:
            cls_name, path, ancestors = stack.pop()
            cls = self.cls(cls_name)
            for attr, t in cls.openapi_types.items():
                prop = cls.attribute_map[attr]
                sub = (*path, prop)
                if t.startswith("List["):
                    meta = schema.list_meta(rt.kind, sub)
                    key = (cls_name, prop)
                    old = self._list_seen.setdefault(key, (meta, rt.kind, sub))
                    if old[0] != meta:
                        self.list_conflicts.append(
                            f"{cls_name}.{prop}: {old[0]} at {old[1]} {'.'.join(old[2])} "
                            f"vs {meta} at {rt.kind} {'.'.join(sub)}"
                        )
                    if meta != schema.ATOMIC:
                        self.list_ext.setdefault(key, meta)
                    inner = t[len("List[") : -1]
                elif t.startswith("Dict["):
                    continue  # map values have arbitrary keys in their path: no rule can name them
                else:
                    inner = t
                if inner in self.names and inner not in ancestors and len(sub) < 24:
                    stack.append((inner, sub, ancestors | {cls_name}))

    # -- schemas --------------------------------------------------------------------------------

    def ref(self, name: str) -> dict[str, str]:
        return {"$ref": REF + name}

    def _scalar(self, cls_name: str, prop: str, t: str, field_ann: Any) -> dict[str, Any] | None:
        if t == "str":
            if (cls_name, prop) in _QUANTITY_FIELDS:
                return self.ref(QUANTITY)
            return {"type": "string"}
        if t == "int":
            return {"type": "integer", "format": "int64" if prop in _INT64_FIELDS else "int32"}
        if t == "float":
            return {"type": "number", "format": "double"}
        if t == "bool":
            return {"type": "boolean"}
        if t == "bytes":
            return {"type": "string", "format": "byte"}
        if t == "datetime":
            return self.ref(MICRO_TIME if (cls_name, prop) in _MICRO_TIME_FIELDS else TIME)
        if t == "object":
            members = _flatten_annotation(field_ann) if field_ann is not None else []
            if {int, str} <= set(members):
                return self.ref(INT_OR_STRING)
            if (cls_name, prop) in _OBJECT_FIELDS:
                return self.ref(_OBJECT_FIELDS[(cls_name, prop)])
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        if t in self.names:
            return self.ref(self.schema_name(t))
        return None

    def _value(self, cls_name: str, prop: str, t: str, field_ann: Any, *, wrap: bool) -> dict[str, Any]:
        """Schema of one value; `wrap` puts a $ref under allOf, as the apiserver does for properties
        and list items (so a description/default may sit next to it)."""
        if t.startswith("List[") and t.endswith("]"):
            inner = self._value(cls_name, prop, t[5:-1], None, wrap=True)
            return {"type": "array", "items": inner}
        if t.startswith("Dict[str, ") and t.endswith("]"):
            inner = self._value(cls_name, prop, t[len("Dict[str, ") : -1], None, wrap=False)
            return {"type": "object", "additionalProperties": inner}
        out = self._scalar(cls_name, prop, t, field_ann)
        if out is None:
            raise LookupError(f"unknown python client type {t!r} at {cls_name}.{prop}")
        if wrap and "$ref" in out:
            return {"allOf": [out]}
        return out

    def type_schema(self, cls_name: str) -> tuple[str, dict[str, Any]]:
        """(schema name, schema) of a python client model class, memoised."""
        name = self.schema_name(cls_name)
        if name in self._schemas:
            return name, self._schemas[name]
        cls = self.cls(cls_name)
        fields = getattr(cls, "model_fields", {})
        props: dict[str, Any] = {}
        required: list[str] = []
        for attr, t in cls.openapi_types.items():
            prop = cls.attribute_map[attr]
            f = fields.get(attr)
            p = self._value(cls_name, prop, t, f.annotation if f is not None else None, wrap=True)
            if f is not None and f.description:
                p["description"] = f.description
            elif "allOf" in p:
                # the python client drops the property's own description next to a $ref; the
                # referenced type's description is the best text we have for `kubectl explain`
                ref_cls = self._class_by_schema.get(p["allOf"][0]["$ref"][len(REF) :])
                if ref_cls is not None:
                    desc = _class_description(self.cls(ref_cls))
                    if desc:
                        p["description"] = desc
            if (cls_name, prop) in _STRUCT_PATCH_STRATEGY:
                p["x-kubernetes-patch-strategy"] = _STRUCT_PATCH_STRATEGY[(cls_name, prop)]
            meta = self.list_ext.get((cls_name, prop))
            if meta is not None and p.get("type") == "array":
                if meta.smp_strategy != "replace":
                    p["x-kubernetes-patch-strategy"] = meta.smp_strategy
                    if meta.smp_key:
                        p["x-kubernetes-patch-merge-key"] = meta.smp_key
                if meta.ssa_type != "atomic":
                    p["x-kubernetes-list-type"] = meta.ssa_type
                    if meta.ssa_type == "map":
                        p["x-kubernetes-list-map-keys"] = list(meta.keys)
            props[prop] = p
            if f is not None and f.is_required():
                required.append(prop)
        out: dict[str, Any] = {"type": "object", "properties": props}
        desc = _class_description(cls)
        if desc:
            out["description"] = desc
        if required:
            out["required"] = required
        if cls_name in self.kind_gvk:
            out["x-kubernetes-group-version-kind"] = self.kind_gvk[cls_name]
        self._schemas[name] = out
        return name, out

    def closure(self, roots: Iterable[str]) -> dict[str, dict[str, Any]]:
        """All component schemas reachable from the given schema names."""
        out: dict[str, dict[str, Any]] = {}
        stack = list(roots)
        while stack:
            name = stack.pop()
            if name in out:
                continue
            if name in _BUILTIN_SCHEMAS:
                out[name] = _BUILTIN_SCHEMAS[name]
                continue
            cls_name = self._class_by_schema.get(name)
            if cls_name is None:
                raise LookupError(f"no schema source for {name}")
            _, s = self.type_schema(cls_name)
            out[name] = s
            stack.extend(_refs_in(s))
        return out


def _refs_in(obj: Any) -> list[str]:
    out: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "$ref" and isinstance(v, str) and v.startswith(REF):
                out.append(v[len(REF) :])
            else:
                out.extend(_refs_in(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(_refs_in(v))
    return out


# -- paths --------------------------------------------------------------------------------------


def _param(name: str, where: str = "query", description: str | None = None) -> dict[str, Any]:
    if where == "path":
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": description or "",
            "schema": {"type": "string", "uniqueItems": True},
        }
    t, text = _QUERY[name]
    return {"name": name, "in": "query", "description": text, "schema": {"type": t, "uniqueItems": True}}


def _content(ref: dict[str, Any], media: Sequence[str] = (_MEDIA_JSON,)) -> dict[str, Any]:
    return {m: {"schema": ref} for m in media}


@dataclass
class _Op:
    """One operation, rendered the way kube-openapi renders it."""

    method: str
    op_id: str
    action: str
    gvk: dict[str, str]
    description: str
    params: Sequence[str] = ()
    body: dict[str, Any] | None = None
    body_media: Sequence[str] = ("*/*",)
    body_required: bool = True
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    tag: str = ""

    def render(self) -> dict[str, Any]:
        op: dict[str, Any] = {
            "description": self.description,
            "operationId": self.op_id,
            "responses": {
                **{
                    code: {"description": _RESPONSE_TEXT[code], "content": c}
                    for code, c in self.responses.items()
                },
                "401": {"description": "Unauthorized"},
            },
            "tags": [self.tag],
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": self.gvk,
        }
        if self.params:
            op["parameters"] = [_param(p) for p in self.params]
        if self.body is not None:
            op["requestBody"] = {"content": _content(self.body, self.body_media)}
            if self.body_required:
                op["requestBody"]["required"] = True
        return op


class _Builder:
    """Builds every document for one list of resource types (the registry's, or a test's)."""

    def __init__(self, served: Sequence[ResourceType]) -> None:
        self.served = list(served)
        self.types = _Types(self.served)

    def _r(self, cls_name: str) -> dict[str, str]:
        return self.types.ref(self.types.type_schema(cls_name)[0])

    def gv_paths(self, group: str, version: str) -> dict[str, Any]:
        tag = f"{group.split('.')[0] if group else 'core'}_{version}"
        root = f"/apis/{group}/{version}" if group else f"/api/{version}"
        camel = _camel(group, version)
        paths: dict[str, Any] = {
            f"{root}/": {
                "get": {
                    "description": "get available resources",
                    "operationId": f"get{camel}APIResources",
                    "responses": {
                        "200": {"description": "OK", "content": _content(self._r("V1APIResourceList"))},
                        "401": {"description": "Unauthorized"},
                    },
                    "tags": [tag],
                }
            }
        }
        for rt in sorted(
            (t for t in self.served if t.group == group and t.version == version), key=lambda t: t.plural
        ):
            self._resource_paths(rt, root, camel, tag, paths)
        return paths

    def _resource_paths(
        self, rt: ResourceType, root: str, camel: str, tag: str, paths: dict[str, Any]
    ) -> None:
        t = self.types
        kind_cls = t.kind_class(rt.group, rt.version, rt.kind)
        kind_ref = self._r(kind_cls)
        list_cls = f"{kind_cls}List"
        list_ref = self._r(list_cls) if "list" in rt.verbs and list_cls in t.names else None
        status_ref = self._r("V1Status")
        delete_ref = self._r("V1DeleteOptions")
        gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
        ns = "Namespaced" if rt.namespaced else ""
        name_p = _param("name", "path", f"name of the {rt.kind}")
        ns_p = _param("namespace", "path", "object name and auth scope, such as for teams and projects")
        pretty = _param("pretty")
        coll = f"{root}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{root}/{rt.plural}"
        item = f"{coll}/{{name}}"
        coll_params = [ns_p, pretty] if rt.namespaced else [pretty]
        item_params = [name_p, ns_p, pretty] if rt.namespaced else [name_p, pretty]
        kind_c = _content(kind_ref)

        def op(**kw: Any) -> dict[str, Any]:
            return _Op(gvk=kw.pop("gvk", gvk), tag=tag, **kw).render()

        coll_ops: dict[str, Any] = {}
        if list_ref is not None:
            coll_ops["get"] = op(
                method="get",
                op_id=f"list{camel}{ns}{rt.kind}",
                action="list",
                description=f"list or watch objects of kind {rt.kind}",
                params=_LIST_PARAMS,
                responses={"200": _content(list_ref, (_MEDIA_JSON, "application/json;stream=watch"))},
            )
            if rt.namespaced:
                paths[f"{root}/{rt.plural}"] = {
                    "get": op(
                        method="get",
                        op_id=f"list{camel}{rt.kind}ForAllNamespaces",
                        action="list",
                        description=f"list or watch objects of kind {rt.kind}",
                        responses={"200": _content(list_ref, (_MEDIA_JSON, "application/json;stream=watch"))},
                    ),
                    "parameters": [pretty, *[_param(p) for p in _LIST_PARAMS]],
                }
        if "create" in rt.verbs:
            coll_ops["post"] = op(
                method="post",
                op_id=f"create{camel}{ns}{rt.kind}",
                action="post",
                description=f"create a {rt.kind}",
                params=_WRITE_PARAMS,
                body=kind_ref,
                responses={"200": kind_c, "201": kind_c, "202": kind_c},
            )
        if "deletecollection" in rt.verbs:
            coll_ops["delete"] = op(
                method="delete",
                op_id=f"delete{camel}Collection{ns}{rt.kind}",
                action="deletecollection",
                description=f"delete collection of {rt.kind}",
                params=_DELETECOLLECTION_PARAMS,
                body=delete_ref,
                body_required=False,
                responses={"200": _content(status_ref)},
            )
        if coll_ops:
            paths[coll] = {**coll_ops, "parameters": coll_params}

        item_ops: dict[str, Any] = {}
        if "get" in rt.verbs:
            item_ops["get"] = op(
                method="get",
                op_id=f"read{camel}{ns}{rt.kind}",
                action="get",
                description=f"read the specified {rt.kind}",
                responses={"200": kind_c},
            )
        if "update" in rt.verbs:
            item_ops["put"] = op(
                method="put",
                op_id=f"replace{camel}{ns}{rt.kind}",
                action="put",
                description=f"replace the specified {rt.kind}",
                params=_WRITE_PARAMS,
                body=kind_ref,
                responses={"200": kind_c, "201": kind_c},
            )
        if "patch" in rt.verbs:
            item_ops["patch"] = self._patch_op(op, f"patch{camel}{ns}{rt.kind}", rt.kind, kind_c)
        if "delete" in rt.verbs:
            # pods, services... answer DELETE with the object itself (registry ReturnDeletedObject)
            gone = kind_c if getattr(rt, "returns_deleted_object", False) else _content(status_ref)
            item_ops["delete"] = op(
                method="delete",
                op_id=f"delete{camel}{ns}{rt.kind}",
                action="delete",
                description=f"delete a {rt.kind}",
                params=_DELETE_PARAMS,
                body=delete_ref,
                body_required=False,
                responses={"200": gone, "202": gone},
            )
        if item_ops:
            paths[item] = {**item_ops, "parameters": item_params}

        for sub in rt.subresources:
            self._subresource(sub, rt, op, camel, ns, item, item_params, kind_ref, paths)

    def _patch_op(self, op: Any, op_id: str, what: str, reply: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return op(
            method="patch",
            op_id=op_id,
            action="patch",
            description=f"partially update the specified {what}",
            params=_PATCH_PARAMS,
            body=self.types.ref(PATCH),
            body_media=_PATCH_TYPES,
            responses={"200": reply, "201": reply},
            **kw,
        )

    def _subresource(
        self,
        sub: str,
        rt: ResourceType,
        op: Any,
        camel: str,
        ns: str,
        item: str,
        item_params: list[dict[str, Any]],
        kind_ref: dict[str, str],
        paths: dict[str, Any],
    ) -> None:
        """The subresources the sandbox serves; others (proxy, attach, exec...) are left out."""
        path = f"{item}/{sub}"
        suffix = sub[:1].upper() + sub[1:]
        base = f"{camel}{ns}{rt.kind}{suffix}"
        kind_c = _content(kind_ref)
        if sub in ("status", "ephemeralcontainers"):
            label = f"{sub} of the specified {rt.kind}"
            paths[path] = {
                "get": op(
                    method="get",
                    op_id=f"read{base}",
                    action="get",
                    description=f"read {label}",
                    responses={"200": kind_c},
                ),
                "put": op(
                    method="put",
                    op_id=f"replace{base}",
                    action="put",
                    description=f"replace {label}",
                    params=_WRITE_PARAMS,
                    body=kind_ref,
                    responses={"200": kind_c, "201": kind_c},
                ),
                "patch": self._patch_op(op, f"patch{base}", label, kind_c),
                "parameters": item_params,
            }
        elif sub == "finalize":
            paths[path] = {
                "put": op(
                    method="put",
                    op_id=f"replace{base}",
                    action="put",
                    description=f"replace finalize of the specified {rt.kind}",
                    params=_WRITE_PARAMS,
                    body=kind_ref,
                    responses={"200": kind_c, "201": kind_c},
                ),
                "parameters": item_params,
            }
        elif sub == "log":
            text = {"type": "string"}
            paths[path] = {
                "get": op(
                    method="get",
                    op_id=f"read{base}",
                    action="get",
                    description=f"read log of the specified {rt.kind}",
                    responses={"200": _content(text, (_MEDIA_JSON, "text/plain"))},
                ),
                "parameters": [*item_params, *[_param(p) for p in _LOG_PARAMS]],
            }
        elif sub in _SUB_KINDS:
            sk = _SUB_KINDS[sub]
            sub_ref = self._r(sk.cls)
            sub_c = _content(sub_ref)
            sgvk = {"group": sk.group, "kind": sk.kind, "version": sk.version}
            if sub == "scale":
                label = f"scale of the specified {rt.kind}"
                paths[path] = {
                    "get": op(
                        method="get",
                        op_id=f"read{base}",
                        action="get",
                        description=f"read {label}",
                        gvk=sgvk,
                        responses={"200": sub_c},
                    ),
                    "put": op(
                        method="put",
                        op_id=f"replace{base}",
                        action="put",
                        description=f"replace {label}",
                        gvk=sgvk,
                        params=_WRITE_PARAMS,
                        body=sub_ref,
                        responses={"200": sub_c, "201": sub_c},
                    ),
                    "patch": self._patch_op(op, f"patch{base}", label, sub_c, gvk=sgvk),
                    "parameters": item_params,
                }
            else:
                paths[path] = {
                    "post": op(
                        method="post",
                        op_id=f"create{base}",
                        action="post",
                        description=f"create {sub} of a {rt.kind}",
                        gvk=sgvk,
                        params=_WRITE_PARAMS,
                        body=sub_ref,
                        responses={"200": sub_c, "201": sub_c, "202": sub_c},
                    ),
                    "parameters": item_params,
                }

    # -- documents ------------------------------------------------------------------------------

    def _doc(self, paths: dict[str, Any]) -> dict[str, Any]:
        schemas = self.types.closure(_refs_in(paths))
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "BearerToken": {
                        "type": "apiKey",
                        "name": "authorization",
                        "in": "header",
                        "description": "Bearer Token authentication",
                    }
                },
            },
        }

    def _discovery_doc(
        self, path: str, op_id: str, cls_name: str, tag: str, description: str
    ) -> dict[str, Any]:
        ref = self._r(cls_name)
        return self._doc(
            {
                path: {
                    "get": {
                        "description": description,
                        "operationId": op_id,
                        "responses": {
                            "200": {"description": "OK", "content": _content(ref)},
                            "401": {"description": "Unauthorized"},
                        },
                        "tags": [tag],
                    }
                }
            }
        )

    def documents(self) -> dict[str, dict[str, Any]]:
        """Every document, keyed by its index path ("api/v1", "apis/apps/v1", "api", "apis", "apis/apps")."""
        docs: dict[str, dict[str, Any]] = {
            "api": self._discovery_doc(
                "/api/", "getCoreAPIVersions", "V1APIVersions", "core", "get available API versions"
            ),
            "apis": self._discovery_doc(
                "/apis/", "getAPIVersions", "V1APIGroupList", "apis", "get available API versions"
            ),
        }
        gvs: list[tuple[str, str]] = []
        for rt in self.served:
            if (rt.group, rt.version) not in gvs:
                gvs.append((rt.group, rt.version))
        for group, version in gvs:
            key = f"apis/{group}/{version}" if group else f"api/{version}"
            docs[key] = self._doc(self.gv_paths(group, version))
            if group and f"apis/{group}" not in docs:
                docs[f"apis/{group}"] = self._discovery_doc(
                    f"/apis/{group}/",
                    f"get{_group_head(group)}APIGroup",
                    "V1APIGroup",
                    group.split(".")[0],
                    "get information of a group",
                )
        return docs


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _hash(data: bytes) -> str:
    # kube-openapi's etag: upper-case hex SHA-512 of the served bytes
    return hashlib.sha512(data).hexdigest().upper()


@dataclass(frozen=True)
class _Built:
    documents: dict[str, bytes]
    hashes: dict[str, str]
    list_conflicts: tuple[str, ...]


def build(served: Sequence[ResourceType] | None = None) -> _Built:
    """Generate every document for `served` (default: the registry). Uncached; tests use it directly."""
    builder = _Builder(registry.all_types() if served is None else served)
    docs = {k: _encode(v) for k, v in builder.documents().items()}
    return _Built(docs, {k: _hash(v) for k, v in docs.items()}, tuple(builder.types.list_conflicts))


_CACHE: _Built | None = None
_LOCK = threading.Lock()


def _built() -> _Built:
    global _CACHE
    if _CACHE is None:
        with _LOCK:
            if _CACHE is None:
                _CACHE = build()
    return _CACHE


def clear_cache() -> None:
    """Forget the generated documents (the registry or schema tables changed, e.g. in a test)."""
    global _CACHE
    with _LOCK:
        _CACHE = None


def document_paths() -> list[str]:
    """The index keys, e.g. ["api", "api/v1", "apis", "apis/apps", "apis/apps/v1", ...]."""
    return sorted(_built().documents)


def _key(group_version_path: str) -> str:
    # tolerate the request path as it comes: "/openapi/v3/apis/apps/v1/" -> "apis/apps/v1"
    return group_version_path.strip("/").removeprefix("openapi/v3/")


def openapi_v3_document(group_version_path: str) -> bytes | None:
    """The JSON document for "api/v1", "apis/apps/v1", ... or None (the server answers 404)."""
    return _built().documents.get(_key(group_version_path))


def document_hash(group_version_path: str) -> str | None:
    """The `hash` query value of a document (also a good ETag), or None when there is no such path."""
    return _built().hashes.get(_key(group_version_path))


def openapi_v3_index(server_base: str = "") -> dict[str, Any]:
    """The `GET /openapi/v3` body: every document with its `serverRelativeURL` (`?hash=` included).

    client-go (`openapi/client.go`, `groupversion.go`) requests each URL as given, carrying the
    `hash` query parameter through, and caches by it.
    """
    b = _built()
    return {
        "paths": {
            key: {"serverRelativeURL": f"{server_base}/openapi/v3/{key}?hash={b.hashes[key]}"}
            for key in sorted(b.documents)
        }
    }
