"""The verbs of the Kubernetes API with the apiserver's semantics, over the Store.

Both the HTTP layer and the in-process controllers go through this class, so a pod created by the
DaemonSet controller is defaulted, validated, versioned and watched exactly like one created by
kubectl. The per-kind rules mirror the apiserver's registry strategies: what create resets, what an
update may change, when generation moves, which allocator a Service needs.
"""

from __future__ import annotations

import copy
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..clock import rfc3339
from . import errors, patching, ssa, validation
from .allocators import ClusterIPAllocator, NodePortAllocator
from .errors import ApiError, FieldError
from .registry import ResourceType, core
from .selectors import parse_field_selector, parse_label_selector
from .store import ListPage, Store

_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"
SYSTEM_MANAGER = "k3s"
DS_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"

MERGE_PATCH = "application/merge-patch+json"
SMP = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, SMP, APPLY_PATCH)


@dataclass
class Caller:
    """Who is asking: decides managedFields names and nothing else (RBAC is the server's job)."""

    user: str = "system:admin"
    manager: str = SYSTEM_MANAGER


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def _spec_view(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


class KubeApi:
    def __init__(self, store: Store, clock: Any, *, nodeport_range: tuple[int, int] = (30000, 32767)) -> None:
        self.store = store
        self.clock = clock
        self.nodeports = NodePortAllocator(*nodeport_range)
        self.cluster_ips = ClusterIPAllocator()
        self._rand = random.Random(7)
        # hooks the controllers install: called after a delete is accepted (GC, namespaces)
        self.on_delete: list[Callable[[ResourceType, dict[str, Any], str], None]] = []
        # while the world is being built: timestamps are back-dated and no events are recorded
        self.bootstrapping = False
        self.backdate = timedelta(days=42, hours=5, minutes=17)

    # --- helpers -----------------------------------------------------------------------------

    def now(self) -> str:
        if self.bootstrapping:
            return rfc3339(self.clock.now() - self.backdate)
        return self.clock.stamp()

    def _check_namespace(self, rt: ResourceType, namespace: str | None, creating: bool) -> None:
        if not rt.namespaced or namespace is None:
            return
        ns = self.store.get(core("namespaces"), None, namespace)
        if ns is None:
            raise errors.not_found(core("namespaces"), namespace)
        if creating and ns.get("metadata", {}).get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{rt.group_resource} "{{name}}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated",
            )

    def _identity(self, rt: ResourceType, namespace: str | None, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body of the request is not a {rt.kind} object")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        if api_version and api_version != rt.api_version:
            group = api_version.split("/")[0] if "/" in api_version else ""
            if group != rt.group:
                raise errors.bad_request(
                    f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
                )
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = _meta(obj)
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if namespace is not None and body_ns and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            if namespace is not None:
                meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    # --- reads -------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(rt, namespace if rt.namespaced else None, name)
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    def matcher(
        self, rt: ResourceType, label_selector: str | None, field_selector: str | None
    ) -> Callable[[dict[str, Any]], bool] | None:
        ls = parse_label_selector(label_selector) if label_selector else None
        fs = parse_field_selector(field_selector, rt) if field_selector else None
        if ls is None and fs is None:
            return None

        def matches(obj: dict[str, Any]) -> bool:
            if ls is not None and not ls.matches(obj.get("metadata", {}).get("labels") or {}):
                return False
            return fs is None or fs.matches(obj)

        return matches

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListPage:
        matches = self.matcher(rt, label_selector, field_selector)
        return self.store.list_page(rt, namespace if rt.namespaced else None, matches, limit, continue_token)

    # --- create ------------------------------------------------------------------------------

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Any,
        caller: Caller | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        caller = caller or Caller()
        obj = self._identity(rt, namespace, body)
        meta = _meta(obj)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(self._rand.choice(_GEN_CHARS) for _ in range(5))
        name = meta.get("name") or ""
        if rt.namespaced and namespace is None and not meta.get("namespace"):
            raise errors.bad_request("the server could not find the requested resource")
        ns = meta.get("namespace") if rt.namespaced else None
        if rt.namespaced:
            try:
                self._check_namespace(rt, ns, creating=True)
            except ApiError as e:
                e.message = e.message.replace("{name}", name)
                raise
        obj = validation.default(rt, obj)
        meta = _meta(obj)
        self._prepare_create(rt, obj)
        validation.validate(rt, obj, None, namespace=ns)
        if self.store.get(rt, ns, name) is not None:
            raise errors.already_exists(rt, name)
        self._admit(rt, obj, None, dry_run=dry_run)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.now()
        meta.pop("resourceVersion", None)
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        if rt.has_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        obj = ssa.record_update(rt.kind, rt.api_version, None, obj, caller.manager, self.now())
        if dry_run:
            return obj
        return self.store.put(rt, obj)

    def _prepare_create(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        kind = rt.kind
        if kind == "Pod":
            obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj)}
        elif kind == "Namespace":
            obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
            obj["status"] = {"phase": "Active"}
        elif kind == "DaemonSet":
            # the apiserver's DaemonSet strategy tracks template changes in this annotation
            _meta(obj).setdefault("annotations", {})[DS_TEMPLATE_GENERATION] = "1"
            obj["status"] = {
                "currentNumberScheduled": 0,
                "desiredNumberScheduled": 0,
                "numberMisscheduled": 0,
                "numberReady": 0,
            }
        elif kind in ("Deployment", "ReplicaSet"):
            obj["status"] = {}
        elif kind == "StatefulSet":
            obj["status"] = {"replicas": 0, "availableReplicas": 0}
        elif kind == "Service":
            obj["status"] = {"loadBalancer": {}}
        elif kind == "Ingress":
            obj["status"] = {"loadBalancer": {}}
        elif kind == "Node":
            obj.setdefault("status", {})
        elif rt.has_status:
            obj.pop("status", None)

    # --- admission: allocators ---------------------------------------------------------------

    def _admit(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None, *, dry_run: bool) -> None:
        if rt.kind == "Service":
            self._admit_service(obj, old, dry_run=dry_run)

    def _admit_service(self, obj: dict[str, Any], old: dict[str, Any] | None, *, dry_run: bool) -> None:
        meta, spec = obj["metadata"], obj.setdefault("spec", {})
        owner = f"{meta.get('namespace')}/{meta['name']}"
        name = meta["name"]
        stype = spec.get("type", "ClusterIP")
        errs: list[FieldError] = []
        old_ports = {
            p.get("nodePort") for p in ((old or {}).get("spec", {}).get("ports") or []) if p.get("nodePort")
        }
        wants_nodeports = stype in ("NodePort", "LoadBalancer")
        to_allocate: list[int] = []
        for i, port in enumerate(spec.get("ports") or []):
            np = port.get("nodePort")
            if wants_nodeports and np:
                err = self.nodeports.check(int(np), owner, f"spec.ports[{i}].nodePort")
                if err is None and int(np) in to_allocate:
                    err = FieldError("Duplicate", f"spec.ports[{i}].nodePort", "", np)
                if err:
                    errs.append(err)
                else:
                    to_allocate.append(int(np))
        # cluster IP
        cip = spec.get("clusterIP")
        old_cip = (old or {}).get("spec", {}).get("clusterIP")
        if old is not None and old_cip and cip and cip != old_cip:
            errs.append(FieldError("Invalid", "spec.clusterIPs[0]", "may not change once set", cip))
        elif cip and cip != "None" and old is None:
            err = self.cluster_ips.check(cip, owner, "spec.clusterIPs")
            if err:
                errs.append(err)
        if errs:
            raise errors.invalid("Service", "", name, errs)
        if dry_run:
            return
        if spec.get("type") == "ExternalName":
            return
        if not cip and old_cip:
            spec["clusterIP"] = old_cip
        elif not cip:
            spec["clusterIP"] = self.cluster_ips.allocate_next(owner)
        elif cip != "None":
            self.cluster_ips.allocate(cip, owner)
        if spec.get("clusterIP"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        for p in to_allocate:
            self.nodeports.allocate(p, owner)
        new_ports: set[int] = set(to_allocate)
        if wants_nodeports:
            for port in spec.get("ports") or []:
                if not port.get("nodePort"):
                    port["nodePort"] = self.nodeports.allocate_next(owner)
                    new_ports.add(port["nodePort"])
        else:
            # leaving NodePort/LoadBalancer wipes what only those types may carry (ServiceStrategy)
            for port in spec.get("ports") or []:
                port.pop("nodePort", None)
            for k in ("externalTrafficPolicy", "healthCheckNodePort", "allocateLoadBalancerNodePorts", "loadBalancerClass"):
                spec.pop(k, None)
        for p in old_ports - new_ports:
            self.nodeports.release(int(p), owner)

    def _release_service(self, obj: dict[str, Any]) -> None:
        meta, spec = obj["metadata"], obj.get("spec", {})
        owner = f"{meta.get('namespace')}/{meta['name']}"
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                self.nodeports.release(int(port["nodePort"]), owner)
        if spec.get("clusterIP") and spec["clusterIP"] != "None":
            self.cluster_ips.release(spec["clusterIP"], owner)

    # --- update / patch ----------------------------------------------------------------------

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        caller: Caller | None = None,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        caller = caller or Caller()
        obj = self._identity(rt, namespace, body)
        meta = _meta(obj)
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        old = self.store.get(rt, namespace if rt.namespaced else None, name)
        if old is None:
            raise errors.not_found(rt, name)
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.stale_update(rt, name)
        return self._commit_update(rt, old, obj, caller, subresource=subresource, dry_run=dry_run)

    def _commit_update(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        obj: dict[str, Any],
        caller: Caller,
        *,
        subresource: str | None,
        dry_run: bool,
        managed_already: bool = False,
    ) -> dict[str, Any]:
        ns = old["metadata"].get("namespace")
        om = old["metadata"]
        meta = _meta(obj)
        if subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = copy.deepcopy(obj.get("status", {}))
            obj = new
            meta = obj["metadata"]
        elif subresource == "finalize" and rt.kind == "Namespace":
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["finalizers"] = list((obj.get("spec") or {}).get("finalizers") or [])
            obj = new
            meta = obj["metadata"]
        else:
            obj = validation.default(rt, obj)
            meta = _meta(obj)
            if rt.has_status or rt.kind in ("Namespace",):
                if "status" in old:
                    obj["status"] = copy.deepcopy(old["status"])
                else:
                    obj.pop("status", None)
        # the server owns these
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if k in om:
                meta[k] = om[k]
            else:
                meta.pop(k, None)
        meta.pop("resourceVersion", None)
        if rt.has_generation:
            gen = int(om.get("generation", 1))
            if subresource is None and _spec_view(obj) != _spec_view(old):
                gen += 1
            meta["generation"] = gen
        if rt.kind == "Pod" and subresource is None:
            _check_pod_update(old, obj)
        if rt.kind == "DaemonSet" and subresource is None:
            old_gen = int((om.get("annotations") or {}).get(DS_TEMPLATE_GENERATION, "1") or 1)
            changed = (obj.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template")
            meta.setdefault("annotations", {})[DS_TEMPLATE_GENERATION] = str(old_gen + 1 if changed else old_gen)
        validation.validate(rt, obj, old, namespace=ns)
        if subresource is None:
            self._admit(rt, obj, old, dry_run=dry_run)
        if not managed_already:
            obj = ssa.record_update(
                rt.kind, rt.api_version, old, obj, caller.manager, self.now(), subresource=subresource
            )
        if dry_run:
            obj["metadata"]["resourceVersion"] = om["resourceVersion"]
            return obj
        if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers") and _finalizers_done(rt, obj):
            # the last finalizer was removed from an object being deleted: it goes away now
            self.store.put(rt, obj)
            return self._remove(rt, obj)
        return self.store.put(rt, obj)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        caller: Caller | None = None,
        *,
        subresource: str | None = None,
        force: bool = False,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Returns (object, created). Only apply patches may create."""
        caller = caller or Caller()
        ns = namespace if rt.namespaced else None
        old = self.store.get(rt, ns, name)
        if content_type == APPLY_PATCH:
            return self._apply(rt, ns, name, old, patch, caller, force=force, dry_run=dry_run, subresource=subresource)
        if force:
            raise errors.bad_request("force may not be specified for non-apply patch")
        if old is None:
            raise errors.not_found(rt, name)
        # PatchError is an ApiError carrying the apiserver's code and text for each failure
        if content_type == JSON_PATCH:
            new = patching.json_patch(old, patch)
        elif content_type == MERGE_PATCH:
            new = patching.merge_patch(old, patch)
        elif content_type == SMP:
            new = patching.strategic_merge(rt.kind, old, patch)
        else:
            raise errors.unsupported_media(content_type, list(PATCH_TYPES))
        if not isinstance(new, dict):
            raise errors.bad_request("patch produced an object that is not a JSON object")
        new_meta = _meta(new)
        if new_meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({new_meta.get('name')}) does not match the name on the URL ({name})"
            )
        new_meta["name"] = name
        rv = new_meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.stale_update(rt, name)
        obj = self._identity(rt, namespace, new)
        return self._commit_update(rt, old, obj, caller, subresource=subresource, dry_run=dry_run), False

    def _apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        old: dict[str, Any] | None,
        applied: Any,
        caller: Caller,
        *,
        force: bool,
        dry_run: bool,
        subresource: str | None,
    ) -> tuple[dict[str, Any], bool]:
        if not isinstance(applied, dict):
            raise errors.bad_request("error decoding YAML: the apply configuration is not an object")
        meta = applied.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and meta.get("namespace") and namespace and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        # ApplyConflict / ApplyError are ApiErrors with the apiserver's exact texts: let them through
        result = ssa.apply(
            rt.kind,
            rt.api_version,
            old,
            applied,
            caller.manager,
            force,
            self.now(),
            name=name,
            namespace=namespace,
            has_status=rt.has_status,
            subresource=subresource,
        )
        if old is None:
            result = self._identity(rt, namespace, result)
            _meta(result)["name"] = name
            managed = result["metadata"].get("managedFields")
            created = self._create_with_managed(rt, namespace, result, managed, dry_run=dry_run)
            return created, True
        obj = self._identity(rt, namespace, result)
        return (
            self._commit_update(
                rt, old, obj, caller, subresource=subresource, dry_run=dry_run, managed_already=True
            ),
            False,
        )

    def _create_with_managed(
        self,
        rt: ResourceType,
        namespace: str | None,
        obj: dict[str, Any],
        managed: list[dict[str, Any]] | None,
        *,
        dry_run: bool,
    ) -> dict[str, Any]:
        ns = obj["metadata"].get("namespace") if rt.namespaced else None
        if rt.namespaced:
            self._check_namespace(rt, ns, creating=True)
        obj = validation.default(rt, obj)
        self._prepare_create(rt, obj)
        validation.validate(rt, obj, None, namespace=ns)
        self._admit(rt, obj, None, dry_run=dry_run)
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.now()
        meta.pop("resourceVersion", None)
        if rt.has_generation:
            meta["generation"] = 1
        if managed is not None:
            meta["managedFields"] = managed
        if dry_run:
            return obj
        return self.store.put(rt, obj)

    # --- delete ------------------------------------------------------------------------------

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        grace_period: int | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Returns (object or Status, finished). Graceful pods and finalizers defer the removal."""
        ns = namespace if rt.namespaced else None
        old = self.store.get(rt, ns, name)
        if old is None:
            raise errors.not_found(rt, name)
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise errors.conflict(
                rt,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {old['metadata']['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
            raise errors.conflict(
                rt,
                name,
                "Precondition failed: ResourceVersion in precondition: "
                f"{pre['resourceVersion']}, ResourceVersion in object meta: {old['metadata']['resourceVersion']}",
            )
        if dry_run:
            return old, True
        policy = propagation or "Background"
        meta = old["metadata"]
        if meta.get("deletionTimestamp"):
            if rt.kind == "Pod" and grace_period == 0:
                return self._remove(rt, old), True
            return old, False
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Foreground" and rt.kind not in ("Pod",):
            finalizers = [*finalizers, "foregroundDeletion"] if "foregroundDeletion" not in finalizers else finalizers
        if policy == "Orphan":
            finalizers = [*finalizers, "orphan"] if "orphan" not in finalizers else finalizers
        graceful = rt.kind == "Pod" and old.get("spec", {}).get("nodeName") and grace_period != 0
        needs_ns_finalize = rt.kind == "Namespace"
        if finalizers or graceful or needs_ns_finalize:
            new = copy.deepcopy(old)
            nm = new["metadata"]
            nm["deletionTimestamp"] = self.now()
            nm["deletionGracePeriodSeconds"] = (
                grace_period
                if grace_period is not None
                else int(old.get("spec", {}).get("terminationGracePeriodSeconds", 30))
                if rt.kind == "Pod"
                else 0
            )
            if finalizers:
                nm["finalizers"] = finalizers
            if rt.kind == "Namespace":
                new.setdefault("status", {})["phase"] = "Terminating"
            nm.pop("resourceVersion", None)
            stored = self.store.put(rt, new)
            for hook in self.on_delete:
                hook(rt, stored, policy)
            return stored, False
        removed = self._remove(rt, old)
        for hook in self.on_delete:
            hook(rt, removed, policy)
        return removed, True

    def _remove(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        removed = self.store.remove(rt, meta.get("namespace") if rt.namespaced else None, meta["name"])
        if rt.kind == "Service":
            self._release_service(obj)
        return removed or obj

    def finish_delete(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        """Controllers call this when a deferred deletion may complete (grace over, finalizers gone)."""
        obj = self.store.get(rt, namespace if rt.namespaced else None, name)
        if obj is None:
            return None
        return self._remove(rt, obj)

    # --- controller conveniences -------------------------------------------------------------

    def write_status(self, rt: ResourceType, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any] | None:
        """Update status as a controller would (manager k3s); a no-op when nothing changed."""
        meta = obj["metadata"]
        cur = self.store.get(rt, meta.get("namespace") if rt.namespaced else None, meta["name"])
        if cur is None or cur.get("status") == status:
            return cur
        new = dict(cur)
        new["status"] = status
        new = ssa.record_update(rt.kind, rt.api_version, cur, new, SYSTEM_MANAGER, self.now(), subresource="status")
        return self.store.put(rt, new)

    def remove_finalizer(self, rt: ResourceType, obj: dict[str, Any], finalizer: str) -> dict[str, Any] | None:
        """Drop one finalizer; an object being deleted goes away with its last finalizer."""
        meta = obj["metadata"]
        cur = self.store.get(rt, meta.get("namespace") if rt.namespaced else None, meta["name"])
        if cur is None or finalizer not in (cur["metadata"].get("finalizers") or []):
            return cur
        new = copy.deepcopy(cur)
        fins = [f for f in new["metadata"]["finalizers"] if f != finalizer]
        if fins:
            new["metadata"]["finalizers"] = fins
        else:
            del new["metadata"]["finalizers"]
        stored = self.store.put(rt, new)
        if stored["metadata"].get("deletionTimestamp") and not fins and _finalizers_done(rt, stored):
            if rt.kind == "Pod" and stored.get("spec", {}).get("nodeName"):
                return stored  # the kubelet still has to stop the containers
            return self._remove(rt, stored)
        return stored

    def write(self, rt: ResourceType, obj: dict[str, Any], manager: str = SYSTEM_MANAGER) -> dict[str, Any]:
        """Replace an object as a controller would (no RV check, no validation of foreign fields)."""
        meta = obj["metadata"]
        cur = self.store.get(rt, meta.get("namespace") if rt.namespaced else None, meta["name"])
        if cur is None:
            raise errors.not_found(rt, meta["name"])
        new = ssa.record_update(rt.kind, rt.api_version, cur, obj, manager, self.now())
        if rt.has_generation and _spec_view(new) != _spec_view(cur):
            new["metadata"]["generation"] = int(cur["metadata"].get("generation", 1)) + 1
        return self.store.put(rt, new)


def _finalizers_done(rt: ResourceType, obj: dict[str, Any]) -> bool:
    if rt.kind == "Namespace":
        return not (obj.get("spec") or {}).get("finalizers")
    return True


def _qos_class(pod: dict[str, Any]) -> str:
    containers = (pod.get("spec") or {}).get("containers") or []
    any_req = False
    guaranteed = bool(containers)
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_req = True
        if not (lim.get("cpu") and lim.get("memory")) or (req and req != lim):
            guaranteed = False
    if guaranteed and any_req:
        return "Guaranteed"
    return "Burstable" if any_req else "BestEffort"


_MUTABLE_POD_SPEC = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates")


def _check_pod_update(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Pod specs are immutable but for images and a few fields (validation.go ValidatePodUpdate)."""
    o, n = copy.deepcopy(old.get("spec") or {}), copy.deepcopy(new.get("spec") or {})
    if not o.get("nodeName") and n.get("nodeName"):
        o["nodeName"] = n["nodeName"]
    for spec in (o, n):
        for k in _MUTABLE_POD_SPEC:
            spec.pop(k, None)
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            c.pop("image", None)
    if o != n:
        name = new["metadata"]["name"]
        raise errors.invalid(
            "Pod",
            "",
            name,
            [
                FieldError(
                    "Forbidden",
                    "spec",
                    "pod updates may not change fields other than `spec.containers[*].image`,"
                    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                    "(allow it to be set to 1 if it was previously negative)",
                )
            ],
        )


def random_suffix(n: int = 5, rand: random.Random | None = None) -> str:
    r = rand or random
    return "".join(r.choice(_GEN_CHARS) for _ in range(n))


def pod_name_suffix(rand: random.Random) -> str:
    return "".join(rand.choice(string.ascii_lowercase + string.digits) for _ in range(5))
