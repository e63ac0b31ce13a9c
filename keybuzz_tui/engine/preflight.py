"""Before anything changes: can we reach the cluster, which version is it, and may we do what
the install needs? Asked with SelfSubjectAccessReview for every verb and resource the engine
uses, so a restricted kubeconfig is told exactly what is missing before the first write, rather
than failing half-way through an apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..events import CheckResult
from . import kubeio
from .context import Context

# (verb, group, resource, where) the engine uses: True = the platform namespace, False =
# cluster-wide, a string = that namespace (the lock of a first install lives in kube-system)
NEEDED: list[tuple[str, str, str, bool | str]] = [
    ("get", "", "namespaces", False),
    ("create", "", "namespaces", False),
    ("patch", "", "namespaces", False),
    ("list", "", "nodes", False),
    ("watch", "", "nodes", False),
    ("list", "", "services", False),
    ("list", "", "pods", False),
    ("get", "", "secrets", True),
    ("create", "", "secrets", True),
    ("patch", "", "secrets", True),
    ("get", "", "configmaps", True),
    ("patch", "", "configmaps", True),
    ("create", "", "configmaps", True),
    ("get", "", "services", True),
    ("create", "", "services", True),
    ("patch", "", "services", True),
    ("get", "", "endpoints", True),
    ("watch", "", "pods", True),
    ("get", "", "pods/log", True),
    ("list", "", "events", True),
    ("watch", "", "events", True),
    ("get", "apps", "daemonsets", True),
    ("create", "apps", "daemonsets", True),
    ("patch", "apps", "daemonsets", True),
    ("watch", "apps", "daemonsets", True),
    ("list", "apps", "daemonsets", False),
    ("list", "apps", "deployments", False),
    ("list", "apps", "statefulsets", False),
    ("list", "apps", "controllerrevisions", True),
    ("get", "networking.k8s.io", "ingresses", True),
    ("create", "networking.k8s.io", "ingresses", True),
    ("patch", "networking.k8s.io", "ingresses", True),
    ("create", "coordination.k8s.io", "leases", True),
    ("update", "coordination.k8s.io", "leases", True),
    ("create", "coordination.k8s.io", "leases", "kube-system"),
    ("update", "coordination.k8s.io", "leases", "kube-system"),
]


@dataclass
class PermissionGap:
    verb: str
    group: str
    resource: str
    namespace: str | None

    def render(self) -> str:
        grp = self.group or "core"
        where = f" in namespace {self.namespace}" if self.namespace else " cluster-wide"
        return f"{self.verb} {self.resource} ({grp}){where}"


@dataclass
class Preflight:
    reachable: bool = False
    version: str = ""
    user_message: str = ""
    missing: list[PermissionGap] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reachable and not self.missing


def server_version(ctx: Context) -> str:
    v = kubeio.get(ctx, "/version")
    return str(v.get("gitVersion", "?"))


def permissions(ctx: Context, needed: list[tuple[str, str, str, bool | str]] | None = None) -> list[PermissionGap]:
    ns = ctx.config.namespace
    gaps: list[PermissionGap] = []
    for verb, group, resource, namespaced in needed or NEEDED:
        ctx.cancel.check()
        res, _, sub = resource.partition("/")
        attrs: dict[str, Any] = {"verb": verb, "group": group, "resource": res}
        if sub:
            attrs["subresource"] = sub
        where = namespaced if isinstance(namespaced, str) else (ns if namespaced else None)
        if where:
            attrs["namespace"] = where
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes": attrs}}
        out = kubeio.request(ctx, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=body)
        if not (out.get("status") or {}).get("allowed"):
            gaps.append(PermissionGap(verb, group, resource, where))
    return gaps


def run(ctx: Context, *, check_permissions: bool = True) -> Preflight:
    pf = Preflight()
    try:
        pf.version = server_version(ctx)
        pf.reachable = True
    except kubeio.Unreachable as e:
        pf.user_message = f"cannot reach the Kubernetes API: {e}"
        ctx.emit(CheckResult(step="preflight", check="k8s.reachable", layer="kubernetes", status="fail", title="Kubernetes API reachable", detail=pf.user_message, remediation="Check the kubeconfig context (keybuzz-tui --context), the API address and that you are on the right network/VPN."))
        return pf
    except kubeio.KubeError as e:
        pf.user_message = f"the Kubernetes API refused us: {e.status} {e.message}"
        remediation = "The kubeconfig's credentials are not accepted: refresh the token or pick another context." if e.status == 401 else ""
        ctx.emit(CheckResult(step="preflight", check="k8s.reachable", layer="kubernetes", status="fail", title="Kubernetes API reachable", detail=pf.user_message, remediation=remediation))
        return pf
    ctx.emit(CheckResult(step="preflight", check="k8s.reachable", layer="kubernetes", status="ok", title="Kubernetes API reachable", detail=f"server version {pf.version}"))
    if check_permissions:
        pf.missing = permissions(ctx)
        if pf.missing:
            listing = "; ".join(g.render() for g in pf.missing)
            ctx.emit(CheckResult(
                step="preflight", check="k8s.permissions", layer="kubernetes", status="fail", title="Permissions the install needs",
                detail=f"missing {len(pf.missing)} permission(s): {listing}",
                remediation="Use a kubeconfig context bound to cluster-admin (or a Role granting these verbs in the namespace), e.g. the K3s admin kubeconfig /etc/rancher/k3s/k3s.yaml.",
            ))
        else:
            ctx.emit(CheckResult(step="preflight", check="k8s.permissions", layer="kubernetes", status="ok", title="Permissions the install needs", detail=f"all {len(NEEDED)} verbs allowed"))
    return pf
